"""A user trains a run from the Runs page (a ``train`` job): its UMAP map is queued as a background
job, as the demo's are, and the Map shows PCA meanwhile and says UMAP is on its way."""

from __future__ import annotations

from recsys.data.schema import save_dataset
from recsys.jobs import JobStore, submit_train
from tests.callbacks._pages import page, text_of


def test_a_trained_run_gets_its_umap_queued_and_the_map_says_so(tmp_path, monkeypatch, demo_small):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    monkeypatch.setenv("RECSYS_UMAP_AFTER_TRAIN", "on")  # the suite's default is off (tests/conftest.py)
    save_dataset(demo_small, root)
    store = JobStore(root)
    job = store.wait(submit_train(store, "prod2vec", "demo", {"epochs": 2}), timeout=400)
    assert job["status"] == "done", job.get("error")
    run_id, umap_id = job["result"]["run_id"], job["result"]["umap_job"]
    try:
        umap = store.get(umap_id)
        assert umap["kind"] == "project" and umap["params"] == {"run_id": run_id, "method": "umap"}

        from components.jobs import jobs_snapshot

        mapp = page("map")
        assert mapp.projection_frame(run_id, "pca") is not None  # stored at once, with the run
        out = mapp.map_state(run_id, "auto", "category:0", jobs_snapshot(), None)
        status = text_of(out["status"])
        if out["meta"]["method"] == "pca":  # the UMAP job has not landed yet: the Map says so
            assert "UMAP queued" in status or "UMAP computing" in status, status
        else:  # it landed already: the Map shows it without a click
            assert out["meta"]["method"] == "umap"
    finally:
        store.cancel(umap_id)
