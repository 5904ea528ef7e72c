"""The Runs page's Tune section (components/tuning.py), its callbacks called as plain functions."""

from __future__ import annotations

import dash_bootstrap_components as dbc

from components import tuning
from components.jobs import list_job_summaries
from recsys.jobs import JobStore
from recsys.registry import Registry
from tests.callbacks._pages import find, page, text_of


def _poll() -> dict:
    """What the app's job poller puts in the jobs store (components.jobs.poll_jobs)."""
    jobs = list_job_summaries()
    return {"jobs": jobs, "active": [j["id"] for j in jobs if j["status"] in ("queued", "running")]}


def test_the_tune_button_is_editor_only_and_lists_the_tunable_families(root):
    layout = page("runs").layout()
    (button,) = find(layout, lambda c: getattr(c, "id", None) == tuning.TUNE_SUBMIT)
    assert "editor-only" in button.className.split()
    (family,) = find(layout, lambda c: getattr(c, "id", None) == tuning.TUNE_FAMILY)
    assert family.options == ["prod2vec", "meta_prod2vec", "content", "sknn", "vsknn", "item_knn"]
    (dataset,) = find(layout, lambda c: getattr(c, "id", None) == tuning.TUNE_DATASET)
    assert dataset.value == "demo"


def test_tune_starts_a_job_that_shows_progress_then_the_run_it_trained(root):
    before = {r["run_id"] for r in Registry(root).list_runs()}
    msg, job_id = tuning.start_tuning(1, "prod2vec", "demo", "2m", 2, None, " p2v tuned ")
    assert "Tuning started" in text_of(msg) and job_id
    store = JobStore(root)
    job = store.get(job_id)
    assert job["kind"] == "tune" and job["params"]["tune"] == {
        "budget_s": 120.0,
        "n_trials": 2,
        "sample": None,
    }
    assert job["params"]["label"] == "p2v tuned"
    # while it is queued or running: its progress card (the job may already be done on a fast machine)
    polled = _poll()
    (summary,) = [j for j in polled["jobs"] if j["id"] == job_id]
    if summary["status"] in ("queued", "running"):
        running = tuning.show_tuning_job(polled, job_id)
        assert "Tuning prod2vec on demo" in text_of(running) and "Tuning done" not in text_of(running)
    job = store.wait(job_id, timeout=300)
    assert job["status"] == "done", store.log_tail(job_id)
    (new_run,) = [r for r in Registry(root).list_runs() if r["run_id"] not in before]
    assert new_run["family"] == "prod2vec" and new_run["label"] == "p2v tuned"
    view = tuning.show_tuning_job(_poll(), job_id)
    text = text_of(view)
    assert "Tuning done" in text and new_run["run_id"] in text and "2 trials" in text
    rows = find(view, lambda c: c.__class__.__name__ == "Tr")
    assert len(rows) == 3  # header + one row per trial
    t = Registry(root).get(new_run["run_id"])["tuning"]
    for name, value in t["best_params"].items():  # the best setting is what the run trained with
        assert new_run["params"][name] == value, name


def test_a_bad_tune_form_says_what_is_wrong_and_submits_nothing(root):
    cases = [
        (("popularity", "demo", "5m", 10, None), "family"),
        (("prod2vec", "demo", "soon", 10, None), "budget"),
        (("prod2vec", "demo", "5m", 2.5, None), "whole number"),
        (("prod2vec", "demo", "5m", 0, None), "trials"),
        (("prod2vec", "demo", "5m", 10, 1.5), "sample"),
        (("prod2vec", "nope", "5m", 10, None), "nope"),
        (("prod2vec", None, "5m", 10, None), "Choose a dataset"),
    ]
    for (family, dataset, budget, trials, sample), expected in cases:
        msg, job = tuning.start_tuning(1, family, dataset, budget, trials, sample, "")
        assert isinstance(msg, dbc.Alert) and msg.color == "danger", (family, dataset, budget, trials)
        assert expected in text_of(msg), text_of(msg)
        assert job is tuning.no_update
    assert JobStore(root).list_jobs() == []
    # a catalogue alone (BigBasket): refused before a job starts, with the reason the job gave
    # seconds after "Tuning started" (s44's walk)
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from tests.callbacks._emc_data import catalog

    save_dataset(build_dataset("shop", catalog(), None), root)
    msg, job = tuning.start_tuning(1, "prod2vec", "shop", "5m", 10, None, "")
    assert isinstance(msg, dbc.Alert) and msg.color == "danger" and job is tuning.no_update
    assert "cannot tune on 'shop': it has no interactions" in text_of(msg), text_of(msg)
    assert JobStore(root).list_jobs() == []
