"""Runs on disk: atomic creation, listing, activation, deletion, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.errors import RunNotFoundError
from recsys.models.base import EmbeddingModel
from recsys.registry import Registry


class TinyEmbedding(EmbeddingModel):
    """An embedding model with fixed vectors (the registry does not care how they were learnt)."""

    family = "prod2vec"  # a registered family, so Registry.load_model can resolve the class
    default_params = {"vector_size": 4}

    def fit(self, dataset, progress=None):
        self.item_ids_ = np.array(["a", "b", "c", "d"])
        self.vectors_ = np.array(
            [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float32
        )
        self._set_coverage(["a", "b", "c", "d", "e"])
        return self


def make_run(reg: Registry, dataset: str = "toy", **kw):
    model = TinyEmbedding().fit(None)
    return reg.create_run(model, dataset_name=dataset, dataset_fingerprint="f" * 16, **kw)


def test_run_json_records_what_a_run_needs(tmp_data_dir):
    reg = Registry(tmp_data_dir)
    meta = make_run(reg, metrics={"hr@10": 0.5}, timings={"fit_s": 1.0})
    stored = json.loads((tmp_data_dir / "runs" / meta["run_id"] / "run.json").read_text())
    assert stored["family"] == "prod2vec"
    assert stored["params"] == {"vector_size": 4}
    assert stored["dataset"] == {"name": "toy", "fingerprint": "f" * 16}
    assert stored["metrics"]["hr@10"] == 0.5
    assert stored["status"] == "complete"
    assert stored["coverage"]["items_with_vector"] == 4 and stored["coverage"]["catalog_items"] == 5
    assert stored["coverage"]["missing_examples"] == ["e"]
    assert {"numpy", "gensim", "hnswlib", "python"} <= set(stored["versions"])
    assert stored["timings"]["fit_s"] == 1.0


def test_a_failed_write_leaves_no_run_and_no_temporary_folder(tmp_data_dir):
    reg = Registry(tmp_data_dir)

    def broken_writer(folder):
        (folder / "index.bin").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        make_run(reg, writers=[broken_writer])
    assert reg.list_runs() == []
    assert list((tmp_data_dir / "runs").iterdir()) == []


def test_loaded_model_gives_the_same_neighbours(tmp_data_dir):
    reg = Registry(tmp_data_dir)
    meta = make_run(reg)
    model = reg.load_model(meta["run_id"])
    ids, scores = model.similar(["a", "zzz"], k=2)
    assert ids[0].tolist() == ["b", "c"]
    assert ids[1].tolist() == ["", ""] and np.isneginf(scores[1]).all()


def test_activate_default_and_delete(tmp_data_dir):
    reg = Registry(tmp_data_dir)
    first = make_run(reg)["run_id"]
    second = make_run(reg)["run_id"]
    assert [r["run_id"] for r in reg.list_runs()][0] in (first, second)
    assert reg.default_run() in (first, second)
    reg.activate(first)
    assert reg.active() == {"prod2vec": first}
    assert reg.default_run("prod2vec") == first
    assert reg.get(first)["active"] and not reg.get(second)["active"]
    assert reg.delete(first) == {"was_active": True, "replacement": second}
    assert reg.active() == {"prod2vec": second} and reg.get(second)["active"]
    assert [r["run_id"] for r in reg.list_runs()] == [second]
    with pytest.raises(RunNotFoundError, match=first):
        reg.get(first)
    # the last run of the family: nothing is left to activate, and the answer says so
    assert reg.delete(second) == {"was_active": True, "replacement": None}
    assert reg.active() == {} and reg.default_run() is None


def test_deleting_the_active_run_activates_the_newest_other_run_of_its_dataset_only(tmp_data_dir):
    import time

    reg = Registry(tmp_data_dir)
    old_toy = make_run(reg)["run_id"]
    time.sleep(1.1)  # "created" has one-second resolution
    other = make_run(reg, dataset="other")["run_id"]
    time.sleep(1.1)
    new_toy = make_run(reg)["run_id"]
    time.sleep(1.1)
    newest_other = make_run(reg, dataset="other")["run_id"]
    reg.activate(new_toy)
    reg.activate(other)
    assert reg.delete(new_toy) == {"was_active": True, "replacement": old_toy}
    assert reg.active("toy") == {"prod2vec": old_toy} and reg.active("other") == {"prod2vec": other}
    assert not reg.get(newest_other)["active"]
    # deleting a run that is not active changes nothing
    assert reg.delete(newest_other) == {"was_active": False, "replacement": None}
    assert reg.active_by_dataset() == {"toy": {"prod2vec": old_toy}, "other": {"prod2vec": other}}


def test_training_on_another_dataset_keeps_the_api_default_run(tmp_data_dir):
    """The issue's report: after training on a second dataset the API's default changed (404)."""
    import flask

    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.data.synthetic import generate_demo
    from recsys.pipeline import train_run
    from recsys.serving import register_api

    demo = generate_demo(n_items=150, n_sequences=300, seed=0)
    save_dataset(demo, tmp_data_dir)
    other = generate_demo(n_items=120, n_sequences=250, seed=1)
    other.catalog["item_id"] = "X" + other.catalog["item_id"].astype(str)
    other.interactions["item_id"] = "X" + other.interactions["item_id"].astype(str)
    save_dataset(build_dataset("other", other.catalog, other.interactions), tmp_data_dir)
    params = {"vector_size": 8, "epochs": 2, "min_count": 1, "workers": 1}
    first = train_run("prod2vec", params, "demo", tmp_data_dir)["run_id"]
    app = flask.Flask("t")
    register_api(app, tmp_data_dir, token="")
    client = app.test_client()
    seed = str(demo.catalog["item_id"].iloc[0])
    before = client.get(f"/api/v1/similar/{seed}")
    assert before.status_code == 200 and before.get_json()["run"] == first
    second = train_run("prod2vec", params, "other", tmp_data_dir)
    assert second["active"]  # the first run of its dataset is that dataset's active run ...
    after = client.get(f"/api/v1/similar/{seed}")  # ... but the default stays the demo's
    assert after.status_code == 200 and after.get_json()["run"] == first
    assert after.get_json()["items"] == before.get_json()["items"]
    Registry(tmp_data_dir).delete(first)  # no demo run left: other datasets are next
    assert client.get("/api/v1/runs").get_json()["default_run"] == second["run_id"]


def test_another_dataset_never_changes_what_the_default_dataset_serves(tmp_data_dir):
    reg = Registry(tmp_data_dir)
    toy = make_run(reg)["run_id"]
    reg.activate(toy)
    assert reg.default_dataset() == "toy"
    newer = make_run(reg, dataset="other")["run_id"]
    reg.activate(newer)  # what train_run does for the first run of a dataset
    assert reg.default_run() == toy and reg.default_run("prod2vec") == toy
    assert reg.default_run(dataset="other") == newer
    assert reg.active() == {"prod2vec": toy} and reg.active("other") == {"prod2vec": newer}
    # deleting the default dataset's last active run: its other runs, never the other dataset's
    spare = make_run(reg)["run_id"]
    reg.delete(toy)
    assert reg.default_run() == spare and reg.default_dataset() == "toy"
    reg.set_default_dataset("other")
    assert reg.default_run() == newer
    with pytest.raises(RunNotFoundError, match="no run of dataset 'nope'"):
        reg.set_default_dataset("nope")


def test_the_flat_active_file_of_earlier_versions_is_read_per_dataset(tmp_data_dir):
    reg = Registry(tmp_data_dir)
    toy = make_run(reg)["run_id"]
    (reg.runs_dir / "active.json").write_text(json.dumps({"prod2vec": toy, "popularity": "gone-run"}))
    assert reg.active() == {"prod2vec": toy} and reg.default_dataset() == "toy"
    assert reg.get(toy)["active"]
    other = make_run(reg, dataset="other")["run_id"]
    reg.activate(other)
    assert reg.active_by_dataset() == {"toy": {"prod2vec": toy}, "other": {"prod2vec": other}}
    assert reg.default_run() == toy


@pytest.mark.parametrize("bad", ["nope", "../etc", "a/b", "", "..", ".", ".hidden"])
def test_unknown_or_unsafe_run_ids_are_refused(tmp_data_dir, bad):
    reg = Registry(tmp_data_dir)
    with pytest.raises(RunNotFoundError):
        reg.run_dir(bad)


def test_update_merges_metrics_atomically(tmp_data_dir):
    reg = Registry(tmp_data_dir)
    run_id = make_run(reg, metrics={"hr@10": 0.5})["run_id"]
    reg.update(run_id, metrics={"ndcg@10": 0.25})
    assert reg.get(run_id)["metrics"] == {"hr@10": 0.5, "ndcg@10": 0.25}
    leftovers = [p.name for p in (tmp_data_dir / "runs" / run_id).iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "elsewhere"))
    reg = Registry()
    assert reg.root == (tmp_path / "elsewhere").resolve()
    assert (tmp_path / "elsewhere" / "runs").is_dir()


def test_model_cache_keeps_one_model_per_run(tmp_data_dir):
    from recsys import registry

    reg = Registry(tmp_data_dir)
    run_id = make_run(reg)["run_id"]
    path = str(reg.run_dir(run_id))
    first = reg.load_model(run_id)
    assert reg.load_model(run_id) is first
    for i in range(3):  # each update rewrites run.json; the stale model must not stay behind
        reg.update(run_id, metrics={"hr@10": i / 10})
        reg.load_model(run_id)
    assert sum(path in str(key) for key in registry._model_cache) == 1
    reg.delete(run_id)
    assert not any(path in str(key) for key in registry._model_cache)


def test_an_unreadable_run_json_is_a_clear_error(tmp_data_dir):
    from recsys.errors import StoredDataError

    reg = Registry(tmp_data_dir)
    run_id = make_run(reg)["run_id"]
    (tmp_data_dir / "runs" / run_id / "run.json").write_text("{not json")
    with pytest.raises(StoredDataError, match="damaged: run.json is not valid JSON"):
        reg.get(run_id)


@pytest.mark.parametrize("bad", ["../runs", "..", "a/b", ""])
def test_dataset_names_cannot_leave_the_data_directory(tmp_data_dir, bad):
    from recsys.data.schema import dataset_meta, load_dataset
    from recsys.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError):
        load_dataset(bad, tmp_data_dir)
    with pytest.raises(DatasetNotFoundError):
        dataset_meta(bad, tmp_data_dir)
