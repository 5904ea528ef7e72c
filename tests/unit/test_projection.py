"""Projections (PCA, UMAP), their per-run storage, and neighbourhood purity."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.errors import RunNotFoundError
from recsys.models import FAMILIES, EmbeddingModel
from recsys.projection import (
    ProjectionError,
    load_projection,
    neighbourhood_purity,
    project,
    project_run,
)
from recsys.registry import Registry


def _clusters(n_per: int, n_clusters: int, dim: int, seed: int, spread: float = 0.15):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)) * 3
    labels = np.repeat(np.arange(n_clusters), n_per)
    x = centres[labels] + rng.normal(scale=spread, size=(len(labels), dim))
    return x.astype(np.float32), labels


class FixedVectors(EmbeddingModel):
    """An embedding model whose vectors are given (test double for the registry)."""

    family = "fixed_test"
    default_params = {"seed": 0}

    def fit(self, dataset, progress=None):
        x, _ = _clusters(40, 3, 8, seed=self.params["seed"])
        self.vectors_ = x
        self.item_ids_ = np.array([f"item{i:03d}" for i in range(len(x))])
        self._set_coverage(self.item_ids_)
        return self


@pytest.fixture()
def run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(FAMILIES, "fixed_test", f"{__name__}:FixedVectors")
    model = FixedVectors().fit(None)
    meta = Registry(tmp_path).create_run(model, dataset_name="toy", dataset_fingerprint="abc")
    return meta["run_id"]


# -- project ---------------------------------------------------------------------


def test_pca_separates_two_clusters_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 20)) * 0.1 + np.r_[np.ones(10), np.zeros(10)]
    b = rng.normal(size=(50, 20)) * 0.1 + np.r_[np.zeros(10), np.ones(10)]
    coords = project(np.vstack([a, b]), method="pca")
    assert coords.shape == (100, 2) and coords.dtype == np.float32
    xa, xb = coords[:50, 0], coords[50:, 0]
    assert xa.max() < xb.min() or xb.max() < xa.min()  # split along the first axis
    gap = abs(np.median(xa) - np.median(xb))
    assert gap > 5 * max(xa.std(), xb.std())
    np.testing.assert_array_equal(coords, project(np.vstack([a, b]), method="pca"))


def test_pca_is_scale_invariant_per_row() -> None:
    # rows are normalised first: cosine geometry, as the models' similarity
    x, _ = _clusters(20, 2, 6, seed=3)
    scaled = x * np.linspace(0.5, 50, len(x), dtype=np.float32)[:, None]
    np.testing.assert_allclose(project(x), project(scaled), atol=1e-4)


def test_project_rejects_bad_input() -> None:
    with pytest.raises(ProjectionError, match="unknown projection method 'tsne'"):
        project(np.ones((5, 3)), method="tsne")
    with pytest.raises(ProjectionError, match="2-D"):
        project(np.ones(5))
    with pytest.raises(ProjectionError, match="NaN"):
        project(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ProjectionError, match="min_dist cannot be negative"):
        project(np.ones((20, 3)), method="umap", min_dist=-1)


@pytest.mark.slow  # numba compiles UMAP on first use in a process (~15-80 s on a busy 2-core box)
def test_umap_keeps_three_clusters_apart() -> None:
    x, labels = _clusters(100, 3, 10, seed=7)
    calls = []
    coords = project(x, method="umap", seed=42, progress=lambda d, t, m: calls.append((d, t)))
    assert coords.shape == (300, 2) and coords.dtype == np.float32
    assert np.isfinite(coords).all()
    # every point's 2-D neighbours are from its own cluster
    assert neighbourhood_purity(coords, labels, k=10)["purity"].min() == 1.0
    centres = np.array([coords[labels == c].mean(axis=0) for c in range(3)])
    radius = max(np.linalg.norm(coords[labels == c] - centres[c], axis=1).max() for c in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * radius
    assert calls[-1][0] == calls[-1][1]  # progress reached its total

    # above max_points: fitted on a sample, the rest placed by transform, clusters still apart
    coords2 = project(x, method="umap", seed=42, max_points=150, batch_size=100)
    assert coords2.shape == (300, 2) and np.isfinite(coords2).all()
    assert neighbourhood_purity(coords2, labels, k=10)["purity"].min() > 0.95


# -- project_run / load_projection ---------------------------------------------------


def test_project_run_writes_parquet_and_load_reads_it(tmp_path: Path, run_id: str) -> None:
    assert load_projection(tmp_path, run_id, "pca") is None
    out = project_run(run_id, method="pca", root=tmp_path)
    assert out["run_id"] == run_id and out["method"] == "pca" and out["n_points"] == 120
    assert out["seconds"] >= 0 and out["sampled"] is False
    run_dir = Registry(tmp_path).run_dir(run_id)
    assert (run_dir / "projection_pca.parquet").exists()
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]

    df = load_projection(tmp_path, run_id, "pca")
    assert list(df.columns) == ["item_id", "x", "y"]
    assert df["x"].dtype == np.float32 and df["y"].dtype == np.float32
    model = Registry(tmp_path).load_model(run_id)
    assert df["item_id"].tolist() == list(model.item_ids_)
    np.testing.assert_array_equal(df[["x", "y"]].to_numpy(), project(model.vectors_, "pca"))
    assert df.attrs["method"] == "pca"
    # cached: a second read is the same data; a caller's new column does not leak into the cache
    df["colour"] = "red"
    again = load_projection(tmp_path, run_id, "pca")
    assert "colour" not in again.columns and len(again) == 120


def test_load_projection_sees_a_recomputed_file(tmp_path: Path, run_id: str) -> None:
    project_run(run_id, method="pca", root=tmp_path)
    first = load_projection(tmp_path, run_id, "pca")
    path = Registry(tmp_path).artifact_path(run_id, "projection_pca.parquet")
    pd.DataFrame(
        {"item_id": ["a"], "x": np.array([1], np.float32), "y": np.array([2], np.float32)}
    ).to_parquet(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = load_projection(tmp_path, run_id, "pca")
    assert len(first) == 120 and second["item_id"].tolist() == ["a"]


def test_failed_write_keeps_the_previous_projection(tmp_path: Path, run_id: str, monkeypatch) -> None:
    import pyarrow.parquet as pq

    project_run(run_id, method="pca", root=tmp_path)
    before = load_projection(tmp_path, run_id, "pca")

    def broken_write(table, where, **kw):  # a disk filling up half way
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="No space"):
        project_run(run_id, method="pca", root=tmp_path)
    run_dir = Registry(tmp_path).run_dir(run_id)
    assert sorted(p for p in os.listdir(run_dir) if "projection" in p) == ["projection_pca.parquet"]
    monkeypatch.undo()
    after = load_projection(tmp_path, run_id, "pca")
    pd.testing.assert_frame_equal(before, after)


def test_load_projection_compute_and_errors(tmp_path: Path, run_id: str) -> None:
    df = load_projection(tmp_path, run_id, "pca", compute=True)
    assert len(df) == 120
    with pytest.raises(RunNotFoundError):
        load_projection(tmp_path, "no-such-run", "pca")
    with pytest.raises(ProjectionError, match="unknown projection method"):
        project_run(run_id, method="tsne", root=tmp_path)


def _project_fixed(root: str, progress=None, **kw):
    """Job function for the test kind below: registers the test family in the job process."""
    FAMILIES["fixed_test"] = "tests.unit.test_projection:FixedVectors"
    return project_run(root=root, progress=progress, **kw)


def test_project_job_runs_in_background(tmp_path: Path, run_id: str, monkeypatch) -> None:
    from recsys.jobs import JOB_KINDS, JobStore

    # The fresh job interpreter imports this file as tests.unit.test_projection (repo root on its path).
    monkeypatch.setitem(JOB_KINDS, "project_fixed", "tests.unit.test_projection:_project_fixed")
    store = JobStore(tmp_path)
    job_id = store.submit("project_fixed", {"run_id": run_id, "method": "pca"})
    job = store.wait(job_id, timeout=60)
    assert job["status"] == "done", (job, store.log_tail(job_id))
    assert job["result"]["n_points"] == 120 and job["progress"]["fraction"] == 1.0
    assert len(load_projection(tmp_path, run_id, "pca")) == 120


# -- neighbourhood purity ------------------------------------------------------------


def _angles(degrees):
    r = np.radians(degrees)
    return np.c_[np.cos(r), np.sin(r)].astype(np.float32)


def test_purity_known_answer() -> None:
    # A at 0, 10, 20 degrees; B at 90, 100, 110 and one B intruder at 15 degrees.
    # k=2 by angle: A0 -> A10, B15 (1/2); A10 -> B15 + an A (1/2); A20 -> B15, A10 (1/2)
    # B15 -> A10, A20 (0); B90/B100/B110 -> two Bs (1). So A = 0.5, B = 0.75.
    vectors = _angles([0, 10, 20, 90, 100, 110, 15]) * np.array(
        [[1], [2], [3], [1], [5], [1], [7]], np.float32
    )
    labels = ["A", "A", "A", "B", "B", "B", "B"]
    for method in ("exact", "hnsw"):
        df = neighbourhood_purity(vectors, labels, k=2, method=method)
        assert df["label"].tolist() == ["B", "A"]  # most frequent first
        assert df["n_items"].tolist() == [4, 3]
        np.testing.assert_allclose(df["purity"], [0.75, 0.5])
        np.testing.assert_allclose(df["baseline"], [3 / 6, 2 / 6])
        np.testing.assert_allclose(df["lift"], [1.5, 1.5])
        assert df.attrs["k"] == 2 and df.attrs["method"] == method
        assert df.attrs["overall"] == pytest.approx((0.5 * 3 + 0.75 * 4) / 7)


def test_purity_missing_labels_singletons_and_k_cap() -> None:
    vectors = _angles([0, 5, 90, 95])
    df = neighbourhood_purity(vectors, ["x", None, "y", "z"], k=10)
    assert df.attrs["k"] == 3
    got = dict(zip(df["label"], df["purity"]))
    assert set(got) == {"x", "(missing)", "y", "z"}
    assert all(v == 0.0 for v in got.values())  # every label is a singleton
    assert df["baseline"].eq(0).all() and df["lift"].isna().all()


def test_purity_hnsw_and_sampling_agree_with_exact() -> None:
    x, labels = _clusters(300, 4, 16, seed=5, spread=2.5)  # overlapping clusters: purity < 1
    exact = neighbourhood_purity(x, labels, k=10, method="exact", batch_size=97)
    approx = neighbourhood_purity(x, labels, k=10, method="hnsw")
    assert 0.3 < exact["purity"].mean() < 0.99
    np.testing.assert_allclose(approx["purity"], exact["purity"], atol=0.02)
    sampled = neighbourhood_purity(x, labels, k=10, max_queries=400, seed=1)
    assert sampled["n_queries"].sum() == 400 and sampled["n_items"].sum() == 1200
    np.testing.assert_allclose(sampled["purity"], exact["purity"], atol=0.08)


def test_exact_top_k_selection_matches_full_sort() -> None:
    from recsys.projection import _topk_unordered

    rng = np.random.default_rng(0)
    smooth = rng.normal(size=(50, 20_000)).astype(np.float32)
    tied = rng.integers(0, 200, size=(50, 20_000)).astype(np.float32)  # ~100 ties at the top value
    duplicate = tied.copy()
    duplicate[3, :] = 1.0  # a row of identical values (duplicate vectors): the fallback path
    for sims in (smooth, tied, duplicate):
        got = _topk_unordered(sims, 10)
        want = np.sort(sims, axis=1)[:, ::-1][:, :10]
        np.testing.assert_array_equal(np.sort(np.take_along_axis(sims, got, 1), axis=1)[:, ::-1], want)
        assert all(len(set(row)) == 10 for row in got)
        # the same columns as the one top-k over the whole row (ties: the lower columns)
        stable = np.argsort(-sims, axis=1, kind="stable")[:, :10]
        np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(stable, axis=1))


def test_purity_rejects_mismatched_labels() -> None:
    with pytest.raises(ProjectionError, match="labels has 2 entries but vectors has 3 rows"):
        neighbourhood_purity(np.eye(3), ["a", "b"])


def test_demo_projection_pca_now_umap_as_one_job_per_embedding_run(tmp_path: Path) -> None:
    from recsys.data.schema import save_dataset
    from recsys.data.synthetic import generate_demo
    from recsys.jobs import JobStore
    from recsys.pipeline import project_in_background, train_run
    from recsys.projection import load_projection

    root = tmp_path / "data"
    save_dataset(generate_demo(n_items=120, n_sequences=200, seed=0), root)
    p2v = train_run("prod2vec", {"vector_size": 8, "epochs": 1, "min_count": 1, "workers": 1}, "demo", root)
    pop = train_run("popularity", {}, "demo", root)
    jobs = project_in_background([p2v["run_id"], pop["run_id"]], root)
    store = JobStore(root)
    try:
        assert len(jobs) == 1
        job = store.get(jobs[0])
        assert job["kind"] == "project" and job["params"] == {"run_id": p2v["run_id"], "method": "umap"}
        pca = load_projection(root, p2v["run_id"], "pca")
        assert pca is not None and len(pca) == len(Registry(root).load_model(p2v["run_id"]).item_ids_)
    finally:
        for job_id in jobs:
            store.cancel(job_id, grace=1.0)


def test_umap_progress_follows_the_epochs_and_numba_caches_to_a_folder() -> None:
    from recsys.projection import numba_cache_dir, project

    x = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    seen: list[tuple[int, int, str]] = []
    project(x, method="umap", seed=0, progress=lambda d, t, m: seen.append((d, t, m)))
    epochs = [d for d, _, m in seen if "epoch" in m]
    assert len(epochs) >= 3 and epochs == sorted(epochs) and epochs[-1] == 1000  # moves, to the end
    assert seen[-1][0] == seen[-1][1]
    # the neighbour phase (exact neighbours at this size) reports before the first epoch
    first_epoch = next(i for i, (_, _, m) in enumerate(seen) if "epoch" in m)
    phases = [(d, m.split(": ", 1)[1]) for d, _, m in seen[:first_epoch] if ": " in m]
    assert (270, "neighbours found; building the fuzzy graph") in phases, phases
    assert [d for d, _ in phases] == sorted(d for d, _ in phases)
    assert numba_cache_dir().is_dir()
    assert os.environ.get("NUMBA_CACHE_DIR")  # set before numba was imported (or by the user)


def test_umap_and_pynndescent_functions_compile_into_the_disk_cache() -> None:
    """Functions umap-learn/pynndescent left uncached (the random-projection trees took ~13 s
    to compile in every job) get numba's disk cache when UMAP is imported for a projection."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    from recsys.projection import _import_umap

    _import_umap()
    import pynndescent.rp_trees as rp

    jitted = [v for v in vars(rp).values() if isinstance(v, Dispatcher) and v.__module__ == rp.__name__]
    assert jitted and not any(isinstance(f._cache, NullCache) for f in jitted)
    assert not isinstance(sys.modules["pynndescent.pynndescent_"].nn_descent_internal._cache, NullCache)


@pytest.mark.slow  # pynndescent's NN-descent is compiled by numba in each process (~30-100 s here)
def test_umap_progress_moves_through_the_neighbour_phase_before_the_first_epoch() -> None:
    """Real UMAP: labelled progress reports arrive during the nearest-neighbour search, before
    the layout's first epoch, and the fraction never goes back. 4,200 points: above 4,096
    umap-learn uses NN-descent (below it, exact neighbours), which reports its iterations."""
    from recsys.projection import project

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 5)).astype(np.float32) * 4
    x = centres[rng.integers(0, 6, 4_200)] + rng.standard_normal((4_200, 5)).astype(np.float32)
    seen: list[tuple[int, int, str]] = []
    project(x, method="umap", seed=0, progress=lambda d, t, m: seen.append((d, t, m)))
    first_epoch = next(i for i, (_, _, m) in enumerate(seen) if "epoch" in m)
    before = seen[:first_epoch]
    neighbour = [(d, m) for d, _, m in before if "neighbours" in m]
    labels = {m.split(": ", 1)[1] for _, m in neighbour}
    assert {"finding neighbours", "neighbours found; building the fuzzy graph"} <= labels, labels
    iterations = [d for d, m in neighbour if "NN-descent " in m and "/" in m]
    assert len(iterations) >= 2 and iterations == sorted(iterations), neighbour
    # the bar moves inside the neighbour phase (between 5% and 30%), and never goes back
    assert len({d for d, _ in neighbour if 50 < d < 300}) >= 3, neighbour
    done = [d for d, _, _ in seen if d > 0]
    assert done == sorted(done)


# -- what the Map shows ------------------------------------------------------------


def _view():
    from recsys.catalog import CatalogView

    catalog = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e", "f"],
            "category": ["Women > Shoes", "Women > Bags", "Men > Shoes", "", "Women > Shoes", "Men"],
            "brand": ["Acme", "Acme", "Zed", "", "Acme", "Bolt"],
            "gender": ["women", "women", "men", "", "women", "men"],
        }
    )
    return CatalogView(catalog["item_id"], catalog)


def test_item_labels_by_category_level_brand_and_gender_with_top_n() -> None:
    from recsys.labels import OTHER_LABEL, item_labels

    view = _view()
    pos = view.pos_of_row  # catalogue rows a..f in the view's positions
    top = item_labels(view, pos, "category:0")
    assert top.tolist() == ["Women", "Women", "Men", "(no category)", "Women", "Men"]
    deep = item_labels(view, pos, "category:9")  # capped at the deepest level
    assert deep.tolist() == [
        "Women > Shoes", "Women > Bags", "Men > Shoes", "(no category)", "Women > Shoes", "Men",
    ]  # fmt: skip
    assert item_labels(view, pos, "brand").tolist()[3] == "(no brand)"
    assert item_labels(view, pos, "gender").tolist()[3] == "(unknown)"
    lumped = item_labels(view, pos, "category:0", top_n=2)  # Women (3), Men (2); the rest lumped
    assert lumped.tolist() == ["Women", "Women", "Men", OTHER_LABEL, "Women", "Men"]
    assert item_labels(view, pos, "category:0", top_n=3).tolist() == top.tolist()  # nothing to lump
    with pytest.raises(ValueError, match="unknown categorical colouring 'price'"):
        item_labels(view, pos, "price")


def test_sample_points_aligns_a_projection_with_the_catalogue_and_samples_with_a_seed() -> None:
    from recsys.projection import sample_points

    frame = pd.DataFrame({"item_id": ["c", "zz", "a", "b"], "x": [1.0, 2.0, 3.0, 4.0], "y": [5, 6, 7, 8]})
    x, y, pos, total = sample_points(np.array(["a", "b", "c"]), frame)
    assert total == 3 and pos.dtype == np.int32 and x.dtype == y.dtype == np.float32
    assert pos.tolist() == [2, 0, 1] and x.tolist() == [1.0, 3.0, 4.0] and y.tolist() == [5, 7, 8]
    x2, _, pos2, total2 = sample_points(np.array(["a", "b", "c"]), frame, max_points=2, seed=3)
    assert total2 == 3 and len(pos2) == 2 and set(pos2) <= {0, 1, 2}
    assert pos2.tolist() == sample_points(np.array(["a", "b", "c"]), frame, max_points=2, seed=3)[2].tolist()
    order = [pos.tolist().index(p) for p in pos2]
    assert order == sorted(order)  # the sample keeps the frame's order


def test_run_projection_pca_in_memory_until_the_run_changes_and_a_stored_file_wins(
    tmp_path: Path, run_id: str
) -> None:
    from recsys.projection import run_projection

    assert run_projection(tmp_path, run_id, "umap") is None  # no job has computed it
    first = run_projection(tmp_path, run_id, "pca")
    assert len(first) == 120 and first["item_id"].iloc[0] == "item000"
    assert run_projection(tmp_path, run_id, "pca") is first  # cached
    run_json = Registry(tmp_path).run_dir(run_id) / "run.json"
    run_json.write_text(run_json.read_text() + " ")  # the run was rewritten: computed again
    again = run_projection(tmp_path, run_id, "pca")
    assert again is not first
    np.testing.assert_array_equal(again[["x", "y"]].to_numpy(), first[["x", "y"]].to_numpy())
    project_run(run_id, "pca", root=tmp_path)
    assert run_projection(tmp_path, run_id, "pca").attrs["method"] == "pca"  # the stored file
    with pytest.raises(RunNotFoundError):
        run_projection(tmp_path, "nope", "pca")


def test_catalogue_purity_measures_the_colouring_labels() -> None:
    from recsys.projection import catalogue_purity

    view = _view()
    # vectors in the view's position order: Women items together, Men items together
    x = np.zeros((6, 2), dtype=np.float32)
    women = view.pos_of_row[[0, 1, 4]]
    x[:, 1] = 1.0
    x[women] = [1.0, 0.0]
    table = catalogue_purity(view, x, "category:0", k=1, max_queries=None)
    got = dict(zip(table["label"], table["purity"], strict=True))
    assert got["Women"] == 1.0  # each Women item's neighbour is a Women item
    assert table.attrs["k"] == 1 and table.attrs["method"] == "exact" and table.attrs["n_queries"] == 6


def test_umap_projections_queue_for_the_machines_slots(tmp_path: Path, monkeypatch) -> None:
    """A second projection waits (reporting "queued") until the first frees the slot;
    with two slots it starts at once."""
    import threading

    from recsys.projection import umap_slot

    def second(waits: list[int], entered: threading.Event) -> threading.Thread:
        def body() -> None:
            with umap_slot(lambda: waits.append(1), poll=0.02, lock_dir=tmp_path):
                entered.set()

        t = threading.Thread(target=body)
        t.start()
        return t

    waits: list[int] = []
    entered = threading.Event()
    with umap_slot(lock_dir=tmp_path):
        t = second(waits, entered)
        assert not entered.wait(0.3)  # still queued behind the first
        assert len(waits) >= 3
    assert entered.wait(5)  # ... and runs once the slot is free
    t.join(5)

    monkeypatch.setenv("RECSYS_UMAP_SLOTS", "2")
    waits, entered = [], threading.Event()
    with umap_slot(lock_dir=tmp_path):
        t = second(waits, entered)
        assert entered.wait(5) and waits == []
    t.join(5)
