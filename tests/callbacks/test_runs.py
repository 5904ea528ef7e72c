"""Runs page callbacks and helpers, called as plain functions."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pytest
from dash import no_update

from components import ids
from components.metrics import metric_keys, run_rows
from recsys.jobs import JobStore
from recsys.models import get_model_class
from recsys.registry import Registry
from tests.callbacks._pages import find, page, text_of, triggered


@pytest.fixture
def runs_page():
    return page("runs")


def test_the_form_has_one_input_per_default_param_of_the_family(runs_page):
    defaults = get_model_class("prod2vec").default_params
    inputs = find(runs_page.show_params("prod2vec"), lambda c: isinstance(getattr(c, "id", None), dict))
    assert [c.id["name"] for c in inputs] == list(defaults)
    by_name = {c.id["name"]: c for c in inputs}
    assert by_name["window"].type == "number" and by_name["window"].value == defaults["window"]
    assert by_name["window"].step == 1 and by_name["alpha"].step == "any"
    assert by_name["separate_by"].value == ""  # None default: empty text means None

    switches = find(runs_page.show_params("meta_prod2vec"), lambda c: isinstance(c, dbc.Switch))
    assert "use_brand" in {s.id["name"] for s in switches}


def test_a_parameter_with_a_few_allowed_values_is_a_list_to_pick_from(runs_page):
    from dash import dcc

    from recsys.models.prod2vec import VECTORS

    drops = find(runs_page.show_params("prod2vec"), lambda c: isinstance(c, dcc.Dropdown))
    vectors = {d.id["name"]: d for d in drops}["vectors"]
    assert [o["value"] for o in vectors.options] == list(VECTORS) and vectors.value == "auto"
    assert runs_page.parse_params("prod2vec", ["vectors"], ["input"]) == ({"vectors": "input"}, [])


def test_parse_params_keeps_changes_only_and_names_bad_inputs(runs_page):
    names = ["window", "alpha", "separate_by", "epochs", "max_len"]
    params, errors = runs_page.parse_params("prod2vec", names, [10, "0.05", "category", 40, 20])
    assert errors == []
    assert params == {"window": 10, "separate_by": "category"}  # alpha/epochs/max_len unchanged

    params, errors = runs_page.parse_params("prod2vec", ["window", "epochs", "alpha"], [2.5, None, "x"])
    assert params == {}
    assert any(e.startswith("window:") and "whole number" in e for e in errors)
    assert any(e.startswith("epochs:") for e in errors) and any(e.startswith("alpha:") for e in errors)

    params, errors = runs_page.parse_params("content", ["hidden_units"], ["[128, 64]"])
    assert params == {"hidden_units": [128, 64]} and errors == []
    _, errors = runs_page.parse_params("content", ["hidden_units"], ["128"])
    assert errors and "JSON list" in errors[0]


def test_train_submits_a_job_with_the_form_values(root, runs_page):
    out = runs_page.start_training(
        1, "popularity", "demo", "  my label ", [None], [{"type": ids.RUNS_PARAM, "name": "event_weights"}]
    )
    assert "Training started" in text_of(out)
    store = JobStore(root)
    (job,) = store.list_jobs(kind="train")
    assert job["params"] == {
        "family": "popularity",
        "params": {},
        "dataset_name": "demo",
        "label": "my label",
    }
    store.cancel(job["job_id"])


def test_invalid_form_gives_a_readable_error_and_submits_nothing(root, runs_page):
    pid = [{"type": ids.RUNS_PARAM, "name": "window"}]
    out = runs_page.start_training(1, "prod2vec", "demo", "", [1.5], pid)
    assert isinstance(out, dbc.Alert) and out.color == "danger"
    assert "window" in text_of(out)
    out = runs_page.start_training(1, "prod2vec", None, "", [5], pid)
    assert "No dataset chosen" in text_of(out)
    assert JobStore(root).list_jobs() == []


def test_activate_delete_and_project_act_on_the_selected_run(root, runs_page):
    registry = Registry(root)
    p2v = registry.list_runs("prod2vec")[0]
    pop = registry.list_runs("popularity")[0]
    rows = {r["family"]: r for r in run_rows(registry.list_runs())}

    # Buttons: an active run cannot be activated again; a baseline has no vectors to project.
    assert runs_page.enable_actions(None) == (True, True, True)
    assert runs_page.enable_actions([rows["prod2vec"]]) == (True, False, False)
    assert runs_page.enable_actions([rows["popularity"]]) == (True, True, False)

    # Activate a second prod2vec run: it replaces the first as the active one.
    second = registry.create_run(
        registry.load_model(p2v["run_id"]), dataset_name="demo", dataset_fingerprint="x"
    )
    msg, refresh = triggered(
        f"{ids.RUNS_ACTIVATE}.n_clicks", runs_page.run_action, 1, None, [{"run_id": second["run_id"]}], 3
    )
    assert "is now the active prod2vec run" in text_of(msg) and refresh == 4
    assert registry.active()["prod2vec"] == second["run_id"]

    # Projection: a "project" job for the selected run.
    msg, refresh = triggered(
        f"{ids.RUNS_PROJECT}.n_clicks", runs_page.run_action, None, 1, [{"run_id": p2v["run_id"]}], 4
    )
    assert "UMAP" in text_of(msg) and refresh is no_update
    # the run named as the grid names it, in the message and the job card (not its raw id)
    assert f"UMAP projection of {p2v['label']} (job" in text_of(msg) and p2v["run_id"] not in text_of(msg)
    (job,) = JobStore(root).list_jobs(kind="project")
    assert job["params"] == {"run_id": p2v["run_id"], "method": "umap"}
    assert job["label"] == f"Projection of {p2v['label']}"
    # its job card too (it read "Projection (UMAP) of <run id>", s44's walk)
    from components.jobs import jobs_snapshot

    card = text_of(runs_page.show_jobs(jobs_snapshot()))
    assert f"Projection (UMAP) of {p2v['label']}" in card and p2v["run_id"] not in card
    JobStore(root).cancel(job["job_id"])

    # Delete asks first, names the run, warns when it is active; confirming deletes it.
    is_open, text = triggered(
        f"{ids.RUNS_DELETE}.n_clicks", runs_page.ask_delete, 1, None, [rows["popularity"]]
    )
    assert is_open and "popularity test run" in text_of(text)
    assert "no other popularity run of demo is left" in text_of(text)
    is_open, _ = triggered(
        f"{ids.RUNS_DELETE_CANCEL}.n_clicks", runs_page.ask_delete, 1, 1, [rows["popularity"]]
    )
    assert is_open is False and Registry(root).list_runs("popularity")

    is_open, msg, refresh, selected = runs_page.confirm_delete(1, [rows["popularity"]], 0)
    assert is_open is False and selected == [] and refresh == 1
    assert Registry(root).list_runs("popularity") == []
    assert "popularity" not in Registry(root).active()
    assert "no other run of its dataset and family is left" in text_of(msg)

    # Deleting the active prod2vec run: the dialog and the message name its successor.
    _, text = triggered(
        f"{ids.RUNS_DELETE}.n_clicks",
        runs_page.ask_delete,
        1,
        None,
        [{**rows["prod2vec"], "run_id": second["run_id"], "active": True}],
    )
    assert "becomes active" in text_of(text)
    _, msg, _, _ = runs_page.confirm_delete(1, [{"run_id": second["run_id"]}], 1)
    # both named as the grid names them: the deleted one had no label (family · dataset · date)
    assert text_of(msg).startswith(f"Deleted run prod2vec · demo · {second['created'][:10]} ")
    assert f"; {p2v['label']} is now the active run" in text_of(msg) and p2v["run_id"] not in text_of(msg)
    assert Registry(root).active()["prod2vec"] == p2v["run_id"]
    assert pop["run_id"] not in {r["run_id"] for r in runs_page.refresh_runs("v", 1)}


def test_jobs_panel_lists_active_jobs_first_then_recent_ones(runs_page):
    store = {
        "jobs": [
            {
                "id": "t2",
                "kind": "train",
                "status": "done",
                "fraction": 1.0,
                "params": {"family": "prod2vec"},
            },
            {"id": "i1", "kind": "import", "status": "running", "fraction": 0.3, "params": {"name": "x"}},
            {
                "id": "t1",
                "kind": "train",
                "status": "running",
                "fraction": 0.5,
                "params": {"family": "content"},
            },
        ]
    }
    assert [j["id"] for j in runs_page.runs_jobs(store)] == ["t1", "t2"]  # imports belong to the Data page
    assert "No jobs yet" in text_of(runs_page.show_jobs({"jobs": []}))


def test_device_badge_says_cpu_gpu_or_detecting(runs_page):
    assert "detecting" in text_of(runs_page.device_badge(None))
    gpu = runs_page.device_badge(
        {"backend": "tensorflow", "device": "GPU: NVIDIA H100", "mixed_precision": True}
    )
    assert "GPU: NVIDIA H100" in text_of(gpu) and "mixed precision" in text_of(gpu) and gpu.color == "success"
    assert "CPU" in text_of(runs_page.device_badge({"device": "CPU"}))


def test_metric_keys_lists_scalar_metrics_headline_first():
    runs = [
        {"metrics": {"recall@10": 0.1, "hr@10": 0.2, "per_category": {"a": 1}, "n_cases": 5, "mrr@10": 0.1}},
        {"metrics": {"ndcg@10": 0.3, "coverage@10": 0.4}},
    ]
    assert metric_keys(runs) == ["hr@10", "ndcg@10", "mrr@10", "recall@10", "coverage@10"]


def test_rows_carry_intervals_cases_and_warnings_for_every_grid():
    from components.metrics import column_defs

    runs = [
        {
            "run_id": "r1",
            "metrics": {
                "hr@10": 0.25,
                "n_cases": 320,
                "ci95": {"hr@10": [0.2, 0.3]},
                "seeds_without_recs": 40,
                "warnings": ["only 320 test cases (fewer than 500): the intervals are wide"],
            },
        },
        {"run_id": "old", "metrics": {"hr@10": 0.1}},  # a run stored before intervals existed
        # an interval with a NaN or missing bound (read back from a run's file) is not shown
        {"run_id": "nan", "metrics": {"hr@10": 0.352, "ci95": {"hr@10": [float("nan"), 0.4]}}},
        {"run_id": "none", "metrics": {"hr@10": 0.352, "ci95": {"hr@10": [None, 0.4]}}},
    ]
    assert metric_keys(runs) == ["hr@10"]  # counters are not metric columns
    new, old, *broken = run_rows(runs, ["hr@10"])
    assert all("hr@10_ci" not in r and r["hr@10"] == 0.352 for r in broken)
    assert new["hr@10_ci"] == [0.2, 0.3] and new["cases"] == 320
    assert "0.2000 to 0.3000 over 320 cases" in new["hr@10_ci_text"]
    assert "fewer than 500" in new["notes"]
    assert "hr@10_ci" not in old and old["cases"] is None and old["notes"] == ""
    # an imported run's stored caution reads in its notes, after its warnings (s41-w)
    note = "the vectors were trained outside RecSys Lab: they may have seen the held-out part of the split"
    (imported,) = run_rows([{**runs[0], "family": "external", "metrics_note": note}], ["hr@10"])
    assert imported["notes"] == f"{runs[0]['metrics']['warnings'][0]}; {note}"
    cols = {c["field"]: c for c in column_defs(["hr@10"])}
    assert "params.data['hr@10_ci']" in cols["hr@10"]["valueFormatter"]["function"]
    assert cols["hr@10"]["tooltipField"] == "hr@10_ci_text" and "cases" in cols and "notes" in cols


def _split(**values):
    options = ("method", "value", "test", "repeats")
    defaults = {"method": "time", "value": "", "test": None, "repeats": "collapse"}
    return [values.get(o, defaults[o]) for o in options], [
        {"type": ids.RUNS_SPLIT, "option": o} for o in options
    ]


def test_the_form_trains_on_the_chosen_split_and_checks_its_value(root, runs_page):
    pid = [{"type": ids.RUNS_PARAM, "name": "event_weights"}]
    out = runs_page.start_training(
        1, "popularity", "demo", "", [None], pid, *_split(method="cutoff", value="soon")
    )
    assert "does not fit: date" in text_of(out) and JobStore(root).list_jobs() == []
    out = runs_page.start_training(1, "popularity", "demo", "", [None], pid, *_split(method="given"))
    assert "choose the test dataset" in text_of(out)

    out = runs_page.start_training(
        1, "popularity", "demo", "", [None], pid, *_split(method="last_days", value="3", repeats="keep")
    )
    assert "Training started" in text_of(out)
    store = JobStore(root)
    (job,) = store.list_jobs(kind="train")
    assert job["params"]["split_method"] == "last_days" and job["params"]["split_options"] == {
        "test_days": 3.0
    }
    done = store.wait(job["job_id"], timeout=120)
    assert done["status"] == "done", done.get("error")
    run = Registry(root).list_runs("popularity")[0]
    assert run["split"]["method"] == "last_days" and run["split"]["repeats"] == "keep"
    assert run["metrics"]["protocol"]["repeats"] == "keep" and run["metrics"]["ci95"]


def test_the_form_starts_from_the_recommended_settings_with_gensim_one_choice_away(runs_page):
    from recsys.models.prod2vec import GENSIM_DEFAULTS, RECOMMENDED_PARAMS

    def values(preset=None):
        inputs = find(
            runs_page.show_params("prod2vec", preset), lambda c: isinstance(getattr(c, "id", None), dict)
        )
        return {c.id["name"]: c.value for c in inputs}

    rec = values()
    assert (
        rec["min_count"] == 1 and rec["epochs"] == RECOMMENDED_PARAMS["epochs"] and rec["vectors"] == "auto"
    )
    gensim = values("library defaults")
    assert gensim["min_count"] == 5 and gensim["epochs"] == GENSIM_DEFAULTS["epochs"] == 5
    assert gensim["vectors"] == "input" and gensim["alpha"] == 0.025
    # what the form sends back: only what differs from the recommended settings
    names = list(gensim)
    params, errors = runs_page.parse_params("prod2vec", names, [gensim[n] for n in names])
    assert errors == [] and params["min_count"] == 5 and params["epochs"] == 5
    assert "help" not in rec
    text = text_of(runs_page.show_params("prod2vec"))
    assert "Items seen fewer times get no own vector" in text, "a help line per parameter"


def test_every_familys_parameters_each_have_a_help_line(runs_page):
    """A newcomer picking item_knn on the Runs form read 'top_k lmbd alpha ...' with no word of
    what they do (Prod2Vec's have had a line each): every family's parameter has one, the content
    and two-tower models' too (s43-u's walk found theirs bare)."""
    from recsys.models import FAMILIES

    assert {"content", "two_tower", "prod2vec"} <= set(FAMILIES)
    for family in FAMILIES:
        view = runs_page.show_params(family, "recommended")  # the family dropdown's value, the preset radio's
        names = [c.id["name"] for c in find(view, lambda c: isinstance(getattr(c, "id", None), dict))]
        helps = find(view, lambda c: "form-text" in str(getattr(c, "className", "")))
        assert names and len(helps) == len(names), (family, names, [text_of(h) for h in helps])
    assert "Shrinkage added to both items' counts" in text_of(
        runs_page.show_params("item_knn", "recommended")
    )


def test_selecting_a_tuned_run_shows_its_trials(root, runs_page):
    import plotly.graph_objects as go

    reg = Registry(root)
    run = reg.list_runs()[0]
    trials = [
        {
            "number": i,
            "params": {"window": w, "vectors": v},
            "value": val,
            "mrr": 0.1,
            "seconds": 1.5,
            "state": "complete",
        }
        for i, (w, v, val) in enumerate([(1, "in-out", 0.31), (5, "input", 0.22), (2, "in-out", 0.33)])
    ]
    tuning = {
        "trials": trials,
        "n_trials": 3,
        "seconds": 4.5,
        "metric": "hr@20 (validation, every position)",
        "best_value": 0.33,
        "best_trial": 2,
        "validation": {"validation_cases": 123},
    }
    reg.update(run["run_id"], tuning=tuning)
    view = runs_page.show_tuning([{"run_id": run["run_id"]}])
    text = text_of(view)
    assert "3 trials" in text and "best hr@20" in text and "0.3300" in text and "123 cases" in text
    rows = find(view, lambda c: getattr(c, "__class__", None).__name__ == "Tr")
    assert len(rows) == 4  # header + one row per trial
    graph = find(view, lambda c: c.__class__.__name__ == "Graph")[0]
    dims = (
        graph.figure.data[0].dimensions
        if isinstance(graph.figure, go.Figure)
        else graph.figure["data"][0]["dimensions"]
    )
    assert [d["label"] for d in dims] == ["window", "vectors", "validation"]
    # an untuned run: its settings, no trials; nothing selected: nothing
    others = [r for r in reg.list_runs() if r["run_id"] != run["run_id"]]
    view = runs_page.show_tuning(run_rows(others[:1]))
    assert "trials" not in text_of(view) and not find(view, lambda c: c.__class__.__name__ == "Tr")
    assert text_of(runs_page.show_tuning([])) == ""


def test_selecting_a_run_shows_what_vectors_auto_chose_on_validation(root, runs_page):
    from recsys.pipeline import train_run

    meta = train_run(
        "prod2vec", {"vector_size": 8, "epochs": 1, "workers": 1}, "demo", root, max_cases=100, label="auto"
    )
    c = meta["auto_choice"]
    assert meta["params"]["vectors"] == "auto" and set(c["validation"]) == {"input+output", "in-out", "input"}
    row = next(r for r in run_rows(Registry(root).list_runs()) if r["run_id"] == meta["run_id"])
    text = text_of(runs_page.show_tuning([row]))  # the grid's selected row, as the browser sends it
    assert "Settings:" in text and "vectors=auto" in text and "epochs=1" in text
    assert f"vectors=auto chose {c['chosen']} on {c['cases']} validation cases" in text
    for space, v in c["validation"].items():
        assert f"{space} {v['hr@20']:.4f}" in text
    # who serves the items (issue 13): the catalogue's and the test seeds' shares, as recorded
    served = meta["served"]
    cat, seeds = served["catalog"], served["test_seeds"]
    assert cat["catalog_items"] == 200 and seeds["n_cases"] == meta["metrics"]["n_cases"]
    assert abs(cat["model"] + cat["fallback"] + cat["nothing"] - 1) < 1e-9
    assert f"Catalogue items as seeds (200): {cat['model']:.1%} by the model itself" in text
    assert f"Test seeds ({seeds['n_cases']:,} cases): {seeds['model']:.1%} by the model itself" in text
    assert f"{seeds['nothing']:.1%} by nothing" in text
    other = next(r for r in run_rows(Registry(root).list_runs()) if r["family"] == "popularity")
    text = text_of(runs_page.show_tuning([other]))
    assert "vectors=auto chose" not in text
    # a run from before the record (no served, no fallback shares in its metrics): no made-up zeros
    assert "not recorded for this run" in text and "by nothing" not in text


def test_a_catalogue_only_dataset_starts_the_form_on_a_family_that_trains_on_it(tmp_path, monkeypatch):
    """A merchandiser imported a catalogue without interactions (Myntra) and opened Runs: the
    form started on Prod2Vec, which can only fail there. The form starts on a family that trains
    on the catalogue alone, and choosing such a dataset switches a family that needs interactions
    to one (a catalogue-only family already chosen, or a dataset with interactions, keeps the
    user's choice)."""
    from dash import dcc

    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.models import catalog_only_families
    from tests._serving_data import make_serving_data
    from tests.callbacks._emc_data import catalog

    save_dataset(build_dataset("shop", catalog(), None), tmp_path)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    runs = page("runs")
    alone = catalog_only_families()
    (family,) = find(runs.layout(), lambda c: isinstance(c, dcc.Dropdown) and c.id == ids.RUNS_FAMILY)
    assert family.value in alone and family.value != "prod2vec"
    (note,) = find(runs.layout(), lambda c: getattr(c, "id", None) == ids.RUNS_EVAL_NOTE)
    assert "no interactions, so the run is not evaluated" in note.children

    make_serving_data(tmp_path)  # a dataset with interactions beside it
    (with_events,) = [d for d in runs.list_datasets(tmp_path) if d != "shop"]
    assert runs.family_for_dataset("shop", "prod2vec") in alone
    assert runs.family_for_dataset("shop", "tfidf") is no_update
    assert runs.family_for_dataset(with_events, "prod2vec") is no_update
    # the form says the run will not be evaluated there (its split settings offered "time: the
    # latest sequences" for BigBasket, and the run's metrics read "—": s44's walk)
    assert "no interactions, so the run is not evaluated" in runs.show_evaluation_note("shop")
    assert runs.show_evaluation_note(with_events) == ""
