"""Overview page and the app-level job poller, called as plain functions."""

from __future__ import annotations

import json

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pytest
from dash import html, no_update

from components import ids
from components.jobs import ensure_demo_job, job_card, job_summary, poll_jobs, runs_version
from recsys.jobs import JobStore
from recsys.registry import Registry
from tests.callbacks._dashboard_data import METRICS, N_ITEMS
from tests.callbacks._pages import find, page, text_of


@pytest.fixture
def overview():
    return page("overview")


def test_overview_shows_dataset_counts_runs_metrics_and_active_variants(root, overview):
    content = overview.update_content("any-version")
    text = text_of(content)
    assert f"{N_ITEMS:,}" in text  # items stat card
    assert "Sequences" in text and "Brands" in text and "Categories" in text

    grid = find(content, lambda c: isinstance(c, dag.AgGrid))[0]
    assert grid.id == ids.OVERVIEW_RUNS_GRID
    rows = {r["family"]: r for r in grid.rowData}
    assert set(rows) == {"popularity", "prod2vec"}
    assert rows["prod2vec"]["hr@10"] == METRICS["prod2vec"]["hr@10"]
    assert rows["popularity"]["coverage@10"] == METRICS["popularity"]["coverage@10"]
    assert all(r["active"] for r in rows.values())

    # The headline names the best variant and its lift over popularity: 0.25 / 0.125 = 2.0x.
    assert "prod2vec test run" in text and "25.0%" in text and "2.0×" in text
    # One card per active variant, with its metrics and links into Explore/Map for that run.
    run_ids = {r["family"]: r["run_id"] for r in grid.rowData}
    hrefs = {b.href for b in find(content, lambda c: isinstance(c, dbc.Button))}
    assert f"/explore?run={run_ids['prod2vec']}" in hrefs and f"/map?run={run_ids['prod2vec']}" in hrefs
    assert f"/map?run={run_ids['popularity']}" not in hrefs  # no vectors, no map
    # ... and no Explore either (Explore lists embedding runs): it is compared with the embedding run
    assert f"/explore?run={run_ids['popularity']}" not in hrefs
    assert f"/compare?runs={run_ids['prod2vec']}%2C{run_ids['popularity']}" in hrefs
    assert "0.188" in text  # prod2vec ndcg@10 = 0.1875 on its card


def test_overview_describes_one_dataset_and_keeps_the_default_when_another_is_trained(root, overview):
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import load_dataset, save_dataset
    from recsys.pipeline import train_run

    demo = load_dataset("demo", root)
    cat, inter = demo.catalog.head(80).copy(), demo.interactions.copy()
    inter = inter[inter["item_id"].isin(set(cat["item_id"]))]
    save_dataset(build_dataset("shop", cat, inter), root)
    shop_run = train_run("popularity", {}, "shop", root, label="shop popularity")["run_id"]
    names, default = overview.dataset_choices()
    assert set(names) == {"demo", "shop"} and default == "demo"  # training "shop" changed nothing
    demo_text = text_of(overview.update_content("v", "demo"))
    assert "demo" in demo_text and "shop popularity" not in demo_text and "prod2vec test run" in demo_text
    shop = overview.update_content("v", "shop")
    shop_text = text_of(shop)
    assert "Dataset “shop”" in shop_text and "80" in shop_text and "prod2vec test run" not in shop_text
    grid = find(shop, lambda c: isinstance(c, dag.AgGrid))[0]
    assert [r["run_id"] for r in grid.rowData] == [shop_run]
    # no embedding run in "shop": its baseline card sends to the Runs page, not to a broken Explore
    assert {b.href for b in find(shop, lambda c: isinstance(c, dbc.Button))} == {"/runs"}
    (select,) = find(overview.layout(), lambda c: getattr(c, "id", None) == ids.OVERVIEW_DATASET_SELECT)
    assert select.value == "demo" and [
        o["label"] for o in select.options if "served by default" in o["label"]
    ] == ["demo (served by default)"]
    assert (
        find(
            overview.layout(dataset="shop"), lambda c: getattr(c, "id", None) == ids.OVERVIEW_DATASET_SELECT
        )[0].value
        == "shop"
    )


def test_a_catalogue_only_runs_card_and_row_say_it_is_not_evaluated(root, overview):
    """BigBasket's Overview: its runs' cards read "—" under hr@10, ndcg@10 and coverage@10, and
    the grid "—" in each metric cell, without saying why (s44's and s45's walks)."""
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import load_dataset, save_dataset
    from recsys.pipeline import train_run

    shelf_items = load_dataset("demo", root).catalog.head(60).assign(brand="")  # no brands either
    save_dataset(build_dataset("shelf", shelf_items, None), root)
    train_run("tfidf", {}, "shelf", root, label="shelf tfidf")
    shelf = overview.update_content("v", "shelf")
    # the dataset's tiles say why they read 0
    tiles = [text_of(c) for c in find(shelf, lambda c: "stat-card" in str(getattr(c, "className", "")))]
    assert "Sequences 0 catalogue only: no events" in tiles and "Brands 0 none in this catalogue" in tiles
    (card,) = find(shelf, lambda c: "variant-card" in str(getattr(c, "className", "")))
    said = text_of(card)
    assert "Not evaluated: catalogue only (the dataset has no interactions to score on)." in said
    assert "—" not in said
    (row,) = find(shelf, lambda c: isinstance(c, dag.AgGrid))[0].rowData
    assert row["not_evaluated"] is True and row["notes"].startswith("not evaluated: catalogue only")
    # the demo's evaluated runs keep their figures
    demo = overview.update_content("v", "demo")
    assert "Not evaluated" not in text_of(demo) and "0.188" in text_of(demo)


def test_where_next_opens_the_pages_on_the_dataset_shown(root, overview):
    """Instacart's Overview led to the demo's Explore, Map and Compare: its "Where next" links
    were bare, and those pages open on the dataset served by default (s45's walk)."""
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import load_dataset, save_dataset
    from recsys.pipeline import train_run

    demo = load_dataset("demo", root)
    cat, inter = demo.catalog.head(80).copy(), demo.interactions.copy()
    save_dataset(build_dataset("shop", cat, inter[inter["item_id"].isin(set(cat["item_id"]))]), root)
    base = train_run("popularity", {}, "shop", root, label="shop popularity")["run_id"]
    emb = train_run("prod2vec", {"epochs": 1, "vector_size": 8}, "shop", root, label="shop p2v")["run_id"]

    def links(content: list) -> dict[str, str]:
        (row,) = find(content, lambda c: getattr(c, "id", None) == ids.OVERVIEW_LINKS)
        return {text_of(c).split(" →")[0]: c.href for c in find(row, lambda c: getattr(c, "href", None))}

    shop = links(overview.update_content("v", "shop"))
    assert shop["Explore"] == f"/explore?run={emb}" and shop["Map"] == f"/map?run={emb}"
    assert shop["Compare"] == f"/compare?runs={emb}%2C{base}"
    # the dataset served by default: the pages open on it already
    assert links(overview.update_content("v", "demo"))["Explore"] == "/explore"


def test_overview_on_an_empty_data_dir_says_what_happens_next(tmp_path, monkeypatch, overview):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    text = text_of(overview.update_content(None))  # no demo job (the app started with --no-demo)
    assert "No datasets or runs yet" in text and "demo build is not running" in text and "recsys demo" in text
    store = JobStore(tmp_path)  # the demo build queued, written as the store writes it
    (store.jobs_dir / "demo-queued").mkdir(parents=True)
    job = {"job_id": "demo-queued", "kind": "demo", "status": "queued", "params": {}, "created": "2030-01-01"}
    (store.jobs_dir / "demo-queued" / "job.json").write_text(json.dumps(job))
    text = text_of(overview.update_content(None))
    assert "demo build is under way" in text and "not running" not in text


def test_demo_job_progress_is_shown_while_running_and_hidden_after(root, overview):
    running = {
        "jobs": [
            {
                "id": "demo-1",
                "kind": "demo",
                "status": "running",
                "fraction": 0.42,
                "message": "prod2vec: epoch 2/5",
                "error": "",
                "params": {},
            }
        ]
    }
    section = overview.update_jobs(running)
    text = text_of(section)
    assert "Building the demo" in text and "prod2vec: epoch 2/5" in text
    bar = find(section, lambda c: isinstance(c, dbc.Progress))[0]
    assert bar.value == 42
    cancel = find(section, lambda c: isinstance(c, dbc.Button))[0]
    assert cancel.id == {"type": ids.JOB_CANCEL, "job": "demo-1"}

    done = {"jobs": [{**running["jobs"][0], "status": "done", "fraction": 1.0}]}
    assert overview.update_jobs(done) == []


def test_failed_job_card_shows_the_error_without_cancel():
    card = job_card(
        job_summary(
            {
                "job_id": "j1",
                "kind": "train",
                "status": "failed",
                "params": {"family": "prod2vec", "dataset_name": "demo"},
                "progress": {"done": 1, "total": 4, "message": "training"},
                "error": "ModelFitError: window must be >= 1",
            }
        )
    )
    text = text_of(card)
    assert "Training prod2vec on demo" in text and "window must be >= 1" in text
    assert not find(card, lambda c: isinstance(c, dbc.Button))


def _path_to(component, pred, path=()):
    """The child indexes from ``component`` down to the first descendant matching ``pred``."""
    if pred(component):
        return path
    children = getattr(component, "children", None)
    children = children if isinstance(children, (list, tuple)) else [children]
    for i, child in enumerate(children):
        if hasattr(child, "to_plotly_json"):
            got = _path_to(child, pred, (*path, i))
            if got is not None:
                return got
    return None


def test_a_running_jobs_cancel_button_keeps_its_place_as_its_message_and_log_appear():
    """React re-creates a child whose place in its parent's list changes: the button, last in the
    card, moved down as the message and the log appeared, and a click on it then was lost (the
    Runs browser test's stale element in CI)."""
    raw = {"job_id": "j2", "kind": "train", "status": "running", "params": {"family": "prod2vec"}}
    bare = job_card(job_summary(raw))
    busy = job_card(
        job_summary({**raw, "progress": {"done": 3, "total": 40, "message": "epoch 3/40"}}),
        "epoch 1\nepoch 2\nepoch 3",
    )
    is_cancel = lambda c: isinstance(c, dbc.Button) and c.id == {"type": ids.JOB_CANCEL, "job": "j2"}  # noqa: E731
    assert "epoch 3/40" in text_of(busy) and "epoch 2" in text_of(busy)
    where = _path_to(bare, is_cancel)
    assert where is not None and where == _path_to(busy, is_cancel)


def test_poll_jobs_reports_jobs_and_only_changes_what_changed(root):
    store = JobStore(root)
    job_id = store.submit("sleep", {"seconds": 0.2, "steps": 2})
    data, version, badge = poll_jobs(1, None, None, None)
    assert data["jobs"][0]["id"] == job_id and data["jobs"][0]["kind"] == "sleep"
    assert version == runs_version(root)
    store.wait(job_id, timeout=30)

    data2, version2, badge2 = poll_jobs(2, data, version, badge)
    assert data2["jobs"][0]["status"] == "done" and data2["active"] == []
    assert version2 is no_update  # runs did not change
    assert badge2 in (no_update, "")
    again = poll_jobs(3, data2, version, "")
    assert again == (no_update, no_update, no_update)  # nothing changed: nothing re-renders

    Registry(root).delete(Registry(root).list_runs()[0]["run_id"])
    assert poll_jobs(4, data2, version, "")[1] != version


def test_badge_tells_queued_jobs_from_running_ones(root, monkeypatch):
    """Two UMAP-class jobs with one slot: the second waits in the store, shown as queued."""
    import time

    monkeypatch.setenv("RECSYS_UMAP_SLOTS", "1")
    store = JobStore(root)
    first = store.submit("sleep", {"seconds": 3.0, "steps": 6, "slot": "umap"})
    second = store.submit("sleep", {"seconds": 0.2, "steps": 2, "slot": "umap"})
    deadline = time.monotonic() + 30
    while store.get(first)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    data, _, badge = poll_jobs(1, None, None, None)
    assert badge == "1 job running · 1 queued"
    states = {j["id"]: j for j in data["jobs"]}
    assert (
        states[second]["status"] == "queued" and "waiting for a free UMAP slot" in states[second]["message"]
    )
    for job_id in (first, second):
        store.cancel(job_id, grace=1.0)


def test_demo_build_is_submitted_once_and_not_when_runs_exist(root, tmp_path_factory):
    assert ensure_demo_job(root) is None  # runs exist: nothing to do

    empty = tmp_path_factory.mktemp("empty")
    store = JobStore(empty)
    # A demo job already queued (written as the store writes it): it is reused, not duplicated.
    (store.jobs_dir / "demo-queued").mkdir()
    job = {
        "job_id": "demo-queued",
        "kind": "demo",
        "status": "queued",
        "params": {},
        "created": "2030-01-01",
        "progress": {"done": 0, "total": 0, "message": "queued"},
    }
    (store.jobs_dir / "demo-queued" / "job.json").write_text(json.dumps(job))
    assert ensure_demo_job(empty) == "demo-queued"
    assert ensure_demo_job(empty) == "demo-queued"
    assert len(store.list_jobs(limit=None)) == 1


def test_best_variant_is_chosen_on_validation_with_its_interval_and_says_when_a_baseline_wins(overview):
    def run(family, test_hr, val_hr):
        metrics = {"hr@10": test_hr, "hr@10_ci": [test_hr - 0.02, test_hr + 0.02]}
        if val_hr is not None:
            metrics["validation"] = {"hr@10": val_hr}
        return {"run_id": f"{family}-1", "label": f"{family} run", "family": family, "metrics": metrics}

    runs = [run("popularity", 0.05, 0.04), run("cooccurrence", 0.20, 0.31), run("prod2vec", 0.22, 0.30)]
    text = text_of(overview._headline(runs))
    # prod2vec is better on the test split, but the choice is made on validation
    words = " ".join(text.split())  # the advice under it may name prod2vec (within the interval)
    assert "Best variant: cooccurrence run" in words and "Best variant: prod2vec run" not in words
    assert "20.0%" in text and "95% interval 18.0–22.0%" in text and "4.0×" in text
    assert "Co-occurrence is the best model on this dataset." in text
    assert "chosen on validation" in text
    runs[2]["metrics"]["validation"]["hr@10"] = 0.35
    text = text_of(overview._headline(runs))
    assert "prod2vec run" in text and "best model on this dataset" not in text
    no_val = [run("cooccurrence", 0.20, None), run("prod2vec", 0.22, None)]
    assert "chosen on the test split" in text_of(overview._headline(no_val))
    # imported vectors best on the test split: the caution the import stored is shown (s41-w)
    imported = {**run("external", 0.30, None), "metrics_note": "the vectors were trained outside RecSys Lab"}
    text = " ".join(text_of(overview._headline([*no_val, imported])).split())
    assert "Best variant: external run" in text
    assert "Its score may be optimistic: the vectors were trained outside RecSys Lab." in text


def test_while_the_demo_builds_the_headline_is_the_best_so_far(root, overview, monkeypatch):
    """A newcomer's first screen: popularity is trained first, and the headline called it "the
    best model on this dataset" while the demo build was still training the others."""
    running = {"jobs": [{"id": "demo-1", "kind": "demo", "status": "running", "params": {}}]}
    done = {"jobs": [{**running["jobs"][0], "status": "done"}]}
    runs = [
        {
            "run_id": "popularity-1",
            "label": "popularity (demo)",
            "family": "popularity",
            "metrics": {"hr@10": 0.03, "validation": {"hr@10": 0.03}},
        }
    ]
    building = text_of(overview._headline(runs, building=True))
    assert "Best variant so far" in building and "still training" in building
    assert "best model on this dataset" not in building
    # alone on its dataset, popularity is not called the best model (nothing was compared)
    alone = text_of(overview._headline(runs))
    assert "best model on this dataset" not in alone and "The only model trained on this dataset" in alone

    # the page asks the job store: the headline follows the build, and re-renders when it ends
    monkeypatch.setattr(overview, "jobs_snapshot", lambda: running)
    assert "Best variant so far" in text_of(overview.update_content("v", "demo"))
    assert overview.track_demo_build(running, False) is True
    assert overview.track_demo_build(running, True) is no_update  # no re-render on every poll
    assert overview.track_demo_build(done, True) is False
    monkeypatch.setattr(overview, "jobs_snapshot", lambda: done)
    text = text_of(overview.update_content("v", "demo"))
    assert "Best variant:" in text and "so far" not in text


def test_while_another_variant_trains_on_the_dataset_the_headline_is_the_best_so_far(overview):
    """The analyst's walk on Online Retail: TF-IDF finished first and the headline called it
    "the best model on this dataset" while Prod2Vec was still training on it."""

    def run(family, hr):
        return {
            "run_id": f"{family}-1",
            "label": f"{family} run",
            "family": family,
            "metrics": {"hr@10": hr, "validation": {"hr@10": hr}},
        }

    def job(status, dataset="retail", kind="train"):
        return {
            "id": "j",
            "kind": kind,
            "status": status,
            "params": {"family": "prod2vec", "dataset_name": dataset},
        }

    runs = [run("tfidf", 0.24), run("popularity", 0.05)]
    assert overview._training_on({"jobs": [job("running")]}, "retail") == ["prod2vec"]
    assert overview._training_on({"jobs": [job("running", "other"), job("done")]}, "retail") == []
    text = text_of(overview._headline(runs, training=["prod2vec"]))
    assert "Best variant so far" in text and "Still training on this dataset: prod2vec" in text
    assert "best model on this dataset" not in text
    assert "TF-IDF is the best model on this dataset." in text_of(overview._headline(runs))


def test_background_jobs_after_the_demo_take_one_line_each_without_logs(root, overview):
    """After the demo build, its UMAP projection jobs filled a 1280x720 projector's first screen
    as cards with open, scrolling logs, and the headline was out of sight: other jobs than the
    demo build are one line each (status, what, progress), their logs on the Runs page."""
    jobs = {
        "jobs": [
            {
                "id": f"project-{i}",
                "kind": "project",
                "status": status,
                "fraction": 0.38 if status == "running" else 0.0,
                "message": "UMAP layout: epoch 60/500"
                if status == "running"
                else "queued: waiting for a free UMAP slot",
                "error": "",
                "params": {"run_id": f"run-{i}"},
            }
            for i, status in enumerate(("running", "queued"))
        ]
    }
    section = overview.update_jobs(jobs)
    text = text_of(section)
    assert "UMAP layout: epoch 60/500" in text and "38%" in text and "waiting for a free UMAP slot" in text
    assert "Runs page" in text
    assert not find(section, lambda c: isinstance(c, html.Details))  # no log
    assert not find(section, lambda c: isinstance(c, dbc.Progress))
    lines = find(section, lambda c: "background-job-line" in str(getattr(c, "className", "")))
    assert len(lines) == 2


def test_when_a_baseline_wins_overview_says_what_to_do_and_compare_opens_on_it(tmp_path, monkeypatch):
    """On dunnhumby popularity won (3.2%, interval 2.7 to 4.0%) with the recommended Prod2Vec at
    3.2% and co-occurrence at 0.7%. Overview said only "Popularity is the best model on this
    dataset"; Compare opened on Prod2Vec beside session kNN, without the winner. Overview now says
    which runs its interval cannot tell from it, what popularity's lists are and where the best
    model with item vectors is read; Compare opens on that model beside popularity."""
    from dash import dcc

    from recsys.data.schema import load_dataset
    from recsys.models import make_model
    from tests.callbacks import _emc_data

    runs = _emc_data.make_data_dir(tmp_path)  # A: Prod2Vec-family, test HR@10 0.5; B 0.467
    ds = load_dataset("tiny", tmp_path)
    metrics = {
        "hr@10": 0.6,
        "hr@10_ci": [0.48, 0.7],
        "coverage@10": 0.001,
        "n_cases": 300,
        "validation": {"hr@10": 0.55},
    }
    registry = Registry(tmp_path)
    pop = registry.create_run(
        make_model("popularity").fit(ds),
        dataset_name="tiny",
        dataset_fingerprint=ds.fingerprint(),
        metrics=metrics,
        label="pop",
    )["run_id"]
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    text = " ".join(text_of(page("overview").overview_content(tmp_path)).split())
    assert "Best variant: pop" in text and "Popularity is the best model on this dataset." in text
    assert (
        "Within its 95% interval: A (Prod2Vec, 50.0%): on these 300 held-out cases they are not told apart."
        in text
    )
    assert "B (" not in text  # 46.7%: below the interval
    assert "the same best sellers after every item (coverage@10 0.001)" in text
    assert (
        "The best model with item vectors is A (Prod2Vec, 50.0%): Explore and the Map show its lists." in text
    )
    tree = page("compare").layout()
    (picker,) = find(tree, lambda c: isinstance(c, dcc.Dropdown) and c.id == ids.COMPARE_RUNS)
    assert picker.value == [runs["A"], pop]


@pytest.fixture(scope="module")
def close_runs(tmp_path_factory):
    """Runs made by the real training path (``train_run``) on small seeded data: on validation
    sknn leads co-occurrence by 1 case of 144 (0.9375 against 0.9306), a lead the paired cases
    cannot see; popularity trails far behind."""
    from recsys.data.schema import save_dataset
    from recsys.pipeline import train_run
    from tests.unit.test_model_contract import grouped_dataset

    root = tmp_path_factory.mktemp("close-runs")
    save_dataset(grouped_dataset(n_sequences=400, seq_len=5, seed=0), root)
    for family in ("popularity", "cooccurrence", "sknn"):
        train_run(family, None, "grouped", root, max_cases=300, label=f"{family} run")
    return root


def _runs(root) -> dict[str, dict]:
    return {r["family"]: r for r in Registry(root).list_runs()}


def test_overview_recommends_the_simpler_variant_within_one_standard_error_of_the_best(close_runs, overview):
    """The bench recommends by the paired one-standard-error rule (recsys.selection); Overview took
    the highest validation HR@10. Each run now stores its per-case validation hits and the cases'
    fingerprint, and Overview recommends by the same rule: co-occurrence, not sknn."""
    from components.pickers import best_choice, best_run, validation_hr
    from recsys.selection import unpack_hits

    runs = _runs(close_runs)
    stored = {f: unpack_hits(r["metrics"]["validation"]["per_case"]) for f, r in runs.items()}
    assert len({cases for _, cases in stored.values()}) == 1  # the same validation cases
    for family, (hits, _) in stored.items():
        assert hits.mean() == pytest.approx(validation_hr(runs[family]))
    assert validation_hr(runs["sknn"]) > validation_hr(runs["cooccurrence"])  # the argmax: sknn
    choice = best_choice(list(runs.values()))
    assert choice["rule"] == "paired" and choice["best"]["family"] == "sknn"
    assert choice["run"]["family"] == "cooccurrence" and 0 < choice["gap"] <= choice["se"]
    assert best_run(list(runs.values()))[0]["family"] == "cooccurrence"  # Explore and the Map open on it

    text = " ".join(text_of(overview.overview_content(close_runs, "grouped")).split())
    assert "Best variant: cooccurrence run" in text
    assert (
        "cooccurrence run: within one standard error of sknn run, the best on validation (93.8%; 0.7 points "
        "ahead, paired standard error 1.2 points over the same cases); the simpler is recommended." in text
    )
    assert "On validation: 93.1% (95% interval" in text and "of 144 cases." in text
    assert "Co-occurrence is the recommended model on this dataset: a baseline" in text
    assert "the simplest variant (baselines first) within one paired standard error of the best" in text


def test_runs_stored_before_the_hits_fall_back_to_the_highest_validation_score_and_say_so(
    close_runs, overview, tmp_path
):
    """A run.json from before the per-case hits were kept loads as it did: no crash, the highest
    validation HR@10, and the reason; a damaged entry reads the same way."""
    import shutil

    from components.pickers import best_choice

    root = tmp_path / "old"
    shutil.copytree(close_runs, root)
    runs = _runs(root)
    for run in runs.values():
        del run["metrics"]["validation"]["per_case"]  # as stored before
    choice = best_choice(list(runs.values()))
    assert choice["run"]["family"] == "sknn" and choice["rule"] == "highest_validation"
    assert "no run has per-case validation hits stored" in choice["reason"]
    words = " ".join(text_of(overview._headline(list(runs.values()))).split())
    assert "Best variant: sknn run" in words and "by the highest validation HR@10 (no run has" in words

    # only the best on validation is old: the rule cannot compare it, so it is not overruled
    runs = _runs(root)
    del runs["sknn"]["metrics"]["validation"]["per_case"]
    choice = best_choice(list(runs.values()))
    assert choice["run"]["family"] == "sknn" and choice["rule"] == "highest_validation"
    assert choice["reason"].startswith("sknn run, the highest on validation, has no per-case validation hits")
    # a damaged entry, on disk: the page still renders, with the reason
    path = next(root.rglob("run.json"))
    for p in root.rglob("run.json"):
        meta = json.loads(p.read_text())
        if meta["family"] == "sknn":
            path = p
    meta = json.loads(path.read_text())
    meta["metrics"]["validation"]["per_case"]["hits"] = "not base64!"
    path.write_text(json.dumps(meta))
    words = " ".join(text_of(overview.overview_content(root, "grouped")).split())
    assert "Best variant: sknn run" in words and "sknn run, the highest on validation, has damaged" in words
    # an old run lower on validation than the compared ones: the rule runs, and names it
    runs = _runs(close_runs)
    del runs["popularity"]["metrics"]["validation"]["per_case"]
    choice = best_choice(list(runs.values()))
    assert choice["run"]["family"] == "cooccurrence" and [r["family"] for r in choice["left_out"]] == [
        "popularity"
    ]
    assert (
        "not compared by it (no per-case hits on these cases; lower on validation): popularity run"
        in " ".join(text_of(overview._headline(list(runs.values()))).split())
    )


def test_the_headline_names_popularity_only_where_the_dataset_has_a_popularity_run(overview):
    """Taobao's Overview (no popularity run) said why the best was chosen with "(popularity, the
    same list after every item, is recommended only as the best itself)": it names only runs
    that exist."""
    import numpy as np

    from recsys.selection import pack_hits

    rng = np.random.default_rng(0)
    strong = rng.random(300) < 0.5

    def run(family, hits):
        hr = float(hits.mean())
        return {
            "run_id": f"{family}-1",
            "label": f"{family} run",
            "family": family,
            "metrics": {"hr@10": hr, "validation": {"hr@10": hr, "per_case": pack_hits(hits, "same-cases")}},
        }

    runs = [run("item_knn", strong & (rng.random(300) < 0.2)), run("prod2vec", strong)]
    words = " ".join(text_of(overview._headline(runs)).split())
    assert "Best variant: prod2vec run" in words and "no simpler variant" in words
    assert "popularity" not in words.lower()
    runs.append(run("popularity", strong & (rng.random(300) < 0.1)))
    words = " ".join(text_of(overview._headline(runs)).split())
    assert (
        "(popularity run shows the same list after every item, so it is recommended only when it is the best)"
        in words
    )
