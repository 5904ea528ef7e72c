"""Parity: a run imported from vectors answers exactly like the run trained here with the same vectors
(Explore's filtered search, the REST list, Compare's overlap, precompute, evaluation), driven through
the command line an analyst types."""

from __future__ import annotations

import json

import flask
import numpy as np
import pytest

from recsys.__main__ import main
from recsys.data.schema import save_dataset
from recsys.registry import Registry


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_small):
    from recsys.filters import PresetStore
    from recsys.pipeline import train_run

    root = tmp_path_factory.mktemp("parity") / "data"
    save_dataset(demo_small, root)
    PresetStore(root).save("same-cat", {"same_category": True, "category_level": 1})
    trained = train_run("prod2vec", {"epochs": 3, "vector_size": 16, "workers": 1}, "demo", root)
    other = train_run("cooccurrence", {}, "demo", root, max_cases=300)
    out = root.parent / "export"
    assert (
        main(
            [
                "--data-dir",
                str(root),
                "-q",
                "runs",
                "export",
                trained["run_id"],
                "--format",
                "npy",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    args = [
        "--data-dir",
        str(root),
        "-q",
        "import-vectors",
        str(out / "vectors.npy"),
        "--ids",
        str(out / "item_ids.npy"),
    ]
    args += ["--dataset", "demo", "--name", "p2v from outside"]
    if (out / "query_vectors.npy").exists():
        args += ["--query-vectors", str(out / "query_vectors.npy"), "--query-ids", str(out / "item_ids.npy")]
    assert main(args) == 0
    imported = Registry(root).list_runs("external")[0]
    return {"root": root, "trained": trained, "imported": imported, "other": other}


def seeds(runs, n=25):
    model = Registry(runs["root"]).load_model(runs["trained"]["run_id"])
    return [str(i) for i in model.item_ids_[:: max(1, len(model.item_ids_) // n)][:n]]


def test_the_import_is_an_external_run_with_provenance_and_metrics(runs):
    imp, trained = runs["imported"], runs["trained"]
    assert imp["family"] == "external" and imp["label"] == "p2v from outside"
    assert (
        imp["provenance"]["source"] == "cli"
        and imp["provenance"]["files"]["vectors"]["name"] == "vectors.npy"
    )
    assert imp["import_report"]["rows_kept"] == trained["coverage"]["items_with_vector"]
    # the same items have a vector (how the trainer filled some, e.g. its category fallback, is its own)
    same = ("catalog_items", "items_with_vector", "coverage")
    assert {k: imp["coverage"][k] for k in same} == {k: trained["coverage"][k] for k in same}
    # same vectors, same split: the same offline metrics
    for key in ("hr@10", "ndcg@10", "coverage@10"):
        assert imp["metrics"][key] == pytest.approx(trained["metrics"][key]), key


@pytest.mark.parametrize("preset", [None, "same-cat"])
def test_explore_lists_are_identical(runs, preset):
    from recsys.filters import PresetStore
    from recsys.search import similar_items

    reg = Registry(runs["root"])
    config = PresetStore(runs["root"]).load(preset) if preset else None
    for seed in seeds(runs):
        a = similar_items(reg, runs["trained"]["run_id"], seed, config, 10)
        b = similar_items(reg, runs["imported"]["run_id"], seed, config, 10)
        assert list(a.item_ids) == list(b.item_ids), seed
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


def test_rest_lists_are_identical(runs):
    from recsys.serving import register_api

    app = flask.Flask("parity")
    register_api(app, runs["root"], token="")
    client = app.test_client()
    for seed in seeds(runs, 10):
        got = []
        for run in (runs["trained"], runs["imported"]):
            resp = client.get(f"/api/v1/similar/{seed}?run={run['run_id']}&k=10&preset=same-cat")
            assert resp.status_code == 200, resp.get_data(as_text=True)
            got.append([i["item_id"] for i in resp.get_json()["items"]])
        assert got[0] == got[1] and got[0], seed


def test_compare_overlap_is_identical(runs):
    from recsys.compare import side_by_side

    reg = Registry(runs["root"])
    t, i, o = runs["trained"]["run_id"], runs["imported"]["run_id"], runs["other"]["run_id"]
    for seed in seeds(runs, 10):
        with_trained = side_by_side(reg, [t, o], seed, None, 10)["pairs"][0]
        with_imported = side_by_side(reg, [i, o], seed, None, 10)["pairs"][0]
        for key in ("overlap", "rbo", "common"):
            assert with_trained[key] == with_imported[key], (seed, key)
        self_pair = side_by_side(reg, [t, i], seed, None, 10)["pairs"][0]
        assert self_pair["overlap"] == 1.0 and self_pair["rbo"] == pytest.approx(1.0)


def test_precompute_writes_the_same_lists(runs):
    from recsys.filters import PresetStore
    from recsys.precompute import open_store, precompute

    root = runs["root"]
    path = root / "pre.sqlite"
    metas = [
        precompute(root, runs[r]["run_id"], "same-cat", k=10, store=str(path))
        for r in ("trained", "imported")
    ]
    store = open_store(str(path), root)
    for seed in seeds(runs, 10):
        a = store.get(runs["trained"]["run_id"], metas[0]["preset_hash"], seed)
        b = store.get(runs["imported"]["run_id"], metas[1]["preset_hash"], seed)
        assert a is not None and [e[0] for e in a] == [e[0] for e in b]
    assert PresetStore(root).load("same-cat").same_category


def test_cli_reports_a_failed_import_and_stores_nothing(runs, tmp_path, capsys):
    root = runs["root"]
    before = sorted(p.name for p in (root / "runs").iterdir())
    vec = np.ones((5, 4), dtype=np.float32)
    vec[2, 1] = np.nan
    np.save(tmp_path / "v.npy", vec)
    (tmp_path / "ids.txt").write_text("\n".join(seeds(runs, 5)))
    capsys.readouterr()
    rc = main(
        [
            "--data-dir",
            str(root),
            "-q",
            "import-vectors",
            str(tmp_path / "v.npy"),
            "--ids",
            str(tmp_path / "ids.txt"),
            "--dataset",
            "demo",
            "--name",
            "bad",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 2 and "NaN" in captured.err and "Traceback" not in captured.err
    assert json.loads(captured.out)["stored"] is False
    assert sorted(p.name for p in (root / "runs").iterdir()) == before


def test_the_map_projects_an_imported_run_like_the_trained_one(runs):
    from recsys.projection import load_projection, project_run

    root = runs["root"]
    frames = []
    for key in ("trained", "imported"):
        project_run(runs[key]["run_id"], "pca", root)
        frames.append(load_projection(root, runs[key]["run_id"], "pca"))
    assert frames[0]["item_id"].tolist() == frames[1]["item_id"].tolist()
    np.testing.assert_allclose(frames[0][["x", "y"]].to_numpy(), frames[1][["x", "y"]].to_numpy(), atol=1e-5)
