"""Overview of ONE dataset (a selector, ``?dataset=``; default: the dataset served by default):
its counts, its runs and their headline metrics, its active variant per family. Each card's
buttons open a page that works for that run: Explore and Map for embedding runs, Compare
(against the dataset's active embedding run) for baselines without item vectors."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from components import ids
from components.common import dataset_meta, list_datasets
from components.datasets import catalogue_only, kind_label
from components.jobs import is_active, job_cards, job_title, jobs_snapshot
from components.layout import (
    empty_state,
    error_alert,
    fmt_metric,
    info_alert,
    page_header,
    section,
    stat_card,
)
from components.metrics import HEADLINE_METRICS, NOT_EVALUATED, metrics_grid, not_evaluated
from components.pickers import best_choice  # the one rule, shared with the run Explore and the Map open on
from recsys.config import data_dir
from recsys.errors import RecsysError
from recsys.registry import Registry, run_label
from recsys.selection import SAME_LIST_FAMILIES

logger = logging.getLogger(__name__)


dash.register_page(__name__, path="/", title="RecSys Lab · Overview", name="Overview", order=0)

FAMILY_NAMES = {
    "popularity": "Popularity",
    "cooccurrence": "Co-occurrence",
    "prod2vec": "Prod2Vec",
    "meta_prod2vec": "Meta-Prod2Vec",
    "content": "Content",
    "two_tower": "Two-tower",
}

PAGE_LINKS = (
    ("Explore", "/explore", "Pick a product, see its nearest neighbours, tune the post-filters live."),
    ("Map", "/map", "The embedding space as a map, coloured by category, brand, gender or price."),
    ("Compare", "/compare", "Variants side by side: overlap, rank-biased overlap, where they disagree."),
    ("Runs", "/runs", "Train a new variant, watch its progress, activate or delete runs."),
    ("Data", "/data", "Import a dataset from a file or an upload and read its validation report."),
)


def dataset_choices(root: Any = None) -> tuple[list[str], str | None]:
    """(datasets the page can describe: stored ones and those with runs, the default one)."""
    try:
        root = data_dir(root)
        registry = Registry(root)
        runs = registry.list_runs()
        stored = list_datasets(root)
        default = registry.default_dataset()
    except (OSError, RecsysError):
        return [], None
    names = list(dict.fromkeys([*stored, *((r.get("dataset") or {}).get("name") for r in runs)]))
    names = [n for n in names if n]
    if default not in names:
        default = _primary_dataset(runs, stored)
    return names, default


def layout(dataset: str | None = None, **_query: Any) -> html.Div:
    """The page for ``?dataset=`` (default: the dataset served by default); refreshed when runs change."""
    names, default = dataset_choices()
    chosen = dataset if dataset in names else default
    selector = html.Div(
        [
            html.Span("Dataset", className="small text-muted me-2"),
            dcc.Dropdown(
                id=ids.OVERVIEW_DATASET_SELECT,
                options=[
                    {"label": n + (" (served by default)" if n == default else ""), "value": n} for n in names
                ],
                value=chosen,
                clearable=False,
                searchable=False,
                className="overview-dataset-select",
                style={"minWidth": "260px"},
            ),
        ],
        className="d-flex align-items-center mb-3" if len(names) > 1 else "d-none",
    )
    jobs = jobs_snapshot()  # one read of the job store for the page
    return html.Div(
        [
            page_header(
                "Overview",
                "Embedding-based “similar items” and “bought together” recommendations, vetted offline.",
            ),
            html.Div(id=ids.OVERVIEW_DEMO_JOB, children=demo_job_section(jobs)),
            dcc.Store(id=ids.OVERVIEW_BUILDING, data=_demo_building(jobs)),
            selector,
            html.Div(id=ids.OVERVIEW_DATASET, children=overview_content(dataset=chosen, jobs=jobs)),
        ]
    )


# -- content -------------------------------------------------------------------
def overview_content(root: Any = None, dataset: str | None = None, jobs: dict | None = None) -> list:
    """Summary, headline, active variants and runs table of ONE dataset, and links (plain
    function; ``dataset`` None: the dataset served by default; ``jobs``: the job store's
    snapshot when the caller has read it)."""
    try:
        root = data_dir(root)
        registry = Registry(root)
        all_runs = registry.list_runs()
        datasets = list_datasets(root)
        default = registry.default_dataset()
    except (OSError, RecsysError) as exc:
        return [error_alert(exc, "Could not read the data directory")]
    primary = dataset or (default if default else _primary_dataset(all_runs, datasets))
    runs = [r for r in all_runs if (r.get("dataset") or {}).get("name") == primary] if primary else all_runs
    if not runs and not datasets:
        if _demo_building(jobs if jobs is not None else jobs_snapshot()):
            first = "The demo build is under way and appears here in a minute or two; "
        else:  # started with --no-demo / RECSYS_NO_DEMO=1, or the build was stopped
            first = "The demo build is not running (`recsys demo` builds it); "
        return [
            empty_state(
                "No datasets or runs yet.",
                [first, "or import your own data on the ", dcc.Link("Data page", href="/data"), "."],
            ),
            _links_row(),
        ]
    out: list = []
    if primary in datasets:
        out.append(_dataset_row(primary, root, datasets))
    elif primary:
        out.append(
            info_alert(
                f"Dataset “{primary}” is no longer stored; its runs are listed below.", color="warning"
            )
        )
    jobs = jobs if jobs is not None else jobs_snapshot()
    out.append(
        _headline(
            runs, building=primary == "demo" and _demo_building(jobs), training=_training_on(jobs, primary)
        )
    )
    out.append(_active_variants(runs))
    out.append(
        section(
            "Runs",
            metrics_grid(ids.OVERVIEW_RUNS_GRID, runs, metrics=HEADLINE_METRICS, extra=("created",))
            if runs
            else empty_state("No runs yet.", ["Train one on the ", dcc.Link("Runs page", href="/runs"), "."]),
            actions=[dcc.Link("Manage runs →", href="/runs", className="small")],
        )
    )
    out.append(_links_row(registry, all_runs, primary))
    return out


def _primary_dataset(runs: list[dict], datasets: list[str]) -> str | None:
    for run in runs:
        name = (run.get("dataset") or {}).get("name")
        if run.get("active") and name in datasets:
            return name
    for run in runs:
        name = (run.get("dataset") or {}).get("name")
        if name in datasets:
            return name
    if "demo" in datasets:
        return "demo"
    return datasets[0] if datasets else None


def _dataset_row(name: str, root: Any, datasets: list[str]) -> html.Div:
    try:
        meta = dataset_meta(name, root)
    except RecsysError as exc:
        return error_alert(exc, f"Could not read dataset '{name}'")
    s = meta.get("summary", {})
    others = [d for d in datasets if d != name]
    subtitle = [
        html.Span(f"Dataset “{name}”", className="fw-semibold"),
        f" · {kind_label(meta)}",
    ]
    if others:
        subtitle += [" · also stored: ", ", ".join(others[:5]) + ("…" if len(others) > 5 else "")]
    # a 0 says why (BigBasket's "0 sequences · 0 events", Instacart's bare "0" brands: s45's walk)
    cards = [
        ("Items", s.get("items"), f"{s.get('items_with_interactions', 0):,} with interactions"),
        (
            "Sequences",
            s.get("sequences"),
            "catalogue only: no events" if catalogue_only(meta) else f"{s.get('interactions', 0):,} events",
        ),
        ("Categories", s.get("categories"), f"{s.get('top_categories', 0):,} top-level"),
        ("Brands", s.get("brands"), "none in this catalogue" if s.get("brands") == 0 else None),
    ]
    return html.Div(
        [
            html.Div(subtitle, className="text-muted small mb-2"),
            dbc.Row([dbc.Col(stat_card(*c), md=3, sm=6, className="mb-3") for c in cards]),
        ],
        className="mb-2",
    )


#: Families that are baselines: when one of them is the best variant, the headline says so.
BASELINE_FAMILIES = {
    "popularity": "popularity",
    "cooccurrence": "co-occurrence",
    "item_knn": "item kNN",
    "sknn": "session kNN",
    "vsknn": "vector session kNN",
    "tfidf": "TF-IDF",
}


def _upper_first(text: str) -> str:
    # "TF-IDF", not str.capitalize()'s "Tf-idf"
    return text[:1].upper() + text[1:]


def _demo_building(store: dict | None) -> bool:
    """Whether the demo build is queued or running (its runs are not all trained yet)."""
    return any(j.get("kind") == "demo" and is_active(j) for j in (store or {}).get("jobs", []))


def _training_on(jobs: dict | None, dataset: str | None) -> list[str]:
    """The families a train or tune job is training on ``dataset`` now (queued or running)."""
    out = []
    for job in (jobs or {}).get("jobs", []):
        params = job.get("params") if isinstance(job.get("params"), dict) else {}
        if job.get("kind") in ("train", "tune") and is_active(job) and params.get("dataset_name") == dataset:
            family = str(params.get("family") or "")
            if family and family not in out:
                out.append(family)
    return out


def _headline(runs: list[dict], building: bool = False, training: list[str] | None = None) -> Any:
    """The best variant, chosen on validation (carved from the training data, never the test
    split), its test HR@10 with a 95% interval and its lift over popularity; says so when a
    baseline wins. While the demo build still trains (``building``) or a job trains another
    variant on this dataset (``training``: its families), it is the best *so far* and no family
    is called the best of the dataset (popularity, trained first, led alone); nor is a family
    when it is the only one trained on the dataset (nothing was compared)."""
    scored = [r for r in runs if isinstance((r.get("metrics") or {}).get("hr@10"), (int, float))]
    choice = best_choice(runs)
    best = choice["run"]
    if best is None:
        return html.Div()
    m = best["metrics"]
    base = [r for r in scored if r.get("family") == "popularity"]
    parts: list = [
        html.Span("Best variant so far: " if building or training else "Best variant: "),
        html.Strong(run_label(best)),
        html.Span(" finds the next item in its top 10 for "),
        html.Strong(f"{100 * m['hr@10']:.1f}%"),
    ]
    ci = m.get("hr@10_ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        parts.append(html.Span(f" (95% interval {100 * ci[0]:.1f}–{100 * ci[1]:.1f}%)"))
    parts.append(html.Span(" of held-out cases"))
    if base and base[0]["metrics"]["hr@10"] > 0 and best.get("family") != "popularity":
        lift = m["hr@10"] / base[0]["metrics"]["hr@10"]
        parts += [html.Span(", "), html.Strong(f"{lift:.1f}×"), html.Span(" the popularity baseline")]
    parts.append(html.Span("."))
    lines: list = [html.Div(parts)]
    if best.get("metrics_note"):  # imported vectors: stored with the run, shown nowhere (s41-w)
        lines.append(html.Div(f"Its score may be optimistic: {best['metrics_note']}.", className="small"))
    if choice["rule"] == "paired":
        lines.append(html.Div(_paired_why(choice, scored), className="small choice-why"))
    families = {r.get("family") for r in scored}
    if building:
        lines.append(html.Div("The demo build is still training the other variants.", className="small"))
    elif training:
        lines.append(
            html.Div(
                f"Still training on this dataset: {', '.join(training)}; the best variant may change.",
                className="small",
            )
        )
    elif len(families) == 1:
        name = FAMILY_NAMES.get(best.get("family"), best.get("family"))
        lines.append(
            html.Div(
                f"The only model trained on this dataset so far ({name}): train another on the Runs page to compare.",
                className="small",
            )
        )
    elif best.get("family") in BASELINE_FAMILIES:
        name = _upper_first(BASELINE_FAMILIES[best["family"]])
        within = choice["rule"] == "paired" and choice["best"]["run_id"] != best["run_id"]
        lines.append(
            html.Div(
                html.Strong(
                    f"{name} is the recommended model on this dataset: a baseline, within one standard "
                    "error of the best on validation."
                    if within
                    else f"{name} is the best model on this dataset."
                ),
                className="baseline-wins",
            )
        )
        lines.append(html.Div(_baseline_advice(best, scored), className="small baseline-advice"))
    lines.append(html.Div(_how_chosen(choice), className="small text-muted"))
    return dbc.Alert(lines, color="primary", className="headline mb-4")


def _name(run: dict) -> str:
    return run_label(run)


def _paired_why(choice: dict, runs: list[dict]) -> str:
    """Why the one-standard-error rule recommends its run: its validation HR@10 with the 95%
    interval, and, when a more complex run led it on validation, by how much and the paired
    standard error of that lead (the simpler is recommended). A same-list baseline (popularity)
    is named only when one of ``runs`` was compared: Taobao's Overview spoke of popularity where
    no popularity run existed."""
    run, best = choice["run"], choice["best"]
    v = run["metrics"]["validation"]
    ci = v.get("hr@10_ci")
    interval = (
        f" (95% interval {100 * ci[0]:.1f}–{100 * ci[1]:.1f}%)"
        if isinstance(ci, (list, tuple)) and len(ci) == 2
        else ""
    )
    own = f"On validation: {100 * v['hr@10']:.1f}%{interval} of {choice['n_cases']:,} cases."
    if best["run_id"] != run["run_id"]:
        return (
            f"{own} {_name(run)}: within one standard error of {_name(best)}, the best on validation "
            f"({100 * best['metrics']['validation']['hr@10']:.1f}%; {100 * choice['gap']:.1f} points ahead, "
            f"paired standard error {100 * choice['se']:.1f} points over the same cases); the simpler "
            "is recommended."
        )
    if len(choice["compared"]) > 1:
        compared = set(choice["compared"])
        same = [r for r in runs if r["run_id"] in compared and r.get("family") in SAME_LIST_FAMILIES]
        # it read "(popularity (demo), the same list after every item, is recommended only as the
        # best itself)", a sentence a newcomer parsed twice (s45's walk)
        shows = "shows" if len(same) == 1 else "show"
        note = (
            f" ({', '.join(_name(r) for r in same)} {shows} the same list after every item, so it is "
            "recommended only when it is the best)"
            if same
            else ""
        )
        return (
            f"{own} {_name(run)} is the best on validation, and no simpler variant that answers from the "
            f"seed is within one standard error of it{note}."
        )
    return own


def _how_chosen(choice: dict) -> str:
    """The rule that chose the headline's run, in a line."""
    if choice["rule"] == "paired":
        out = (
            "chosen on validation data carved from the training data: the simplest variant (baselines "
            "first) within one paired standard error of the best, the rule bench/quality.py recommends by"
        )
        if choice["left_out"]:
            names = ", ".join(_name(r) for r in choice["left_out"][:3])
            more = "…" if len(choice["left_out"]) > 3 else ""
            out += (
                f"; not compared by it (no per-case hits on these cases; lower on validation): {names}{more}"
            )
        return out + "."
    if choice["rule"] == "highest_validation":
        return (
            "chosen on validation data carved from the training data, by the highest validation HR@10 "
            f"({choice['reason']}: the one-standard-error rule compares only runs that stored their hits "
            "on the same validation cases; retrain to compare)."
        )
    return "no run has a validation score yet: chosen on the test split."


def _baseline_advice(best: dict, scored: list[dict]) -> str:
    """What an analyst does when a baseline wins (dunnhumby: popularity, 3.2%, beside Prod2Vec's
    3.2% and co-occurrence's 0.7%): which runs its 95% interval cannot tell from it, what the
    baseline's lists are, and where the lists of the best model with item vectors are read."""
    m = best["metrics"]
    name = BASELINE_FAMILIES[best["family"]]
    ci = m.get("hr@10_ci")
    others = [r for r in scored if r["run_id"] != best["run_id"]]
    tied = (
        [r for r in others if r["metrics"]["hr@10"] >= ci[0]]
        if isinstance(ci, (list, tuple)) and len(ci) == 2
        else []
    )

    def named(r: dict) -> str:
        family = FAMILY_NAMES.get(r.get("family"), r.get("family"))
        return f"{run_label(r)} ({family}, {100 * r['metrics']['hr@10']:.1f}%)"

    cases = m.get("n_cases")
    out = []
    if tied:
        out.append(
            f"Within its 95% interval: {', '.join(named(r) for r in tied)}: on these "
            f"{f'{cases:,} ' if isinstance(cases, int) else ''}held-out cases they are not told apart."
        )
    else:
        out.append("Every other run scores below its 95% interval.")
    if best["family"] == "popularity":
        coverage = m.get("coverage@10")
        cov = f" (coverage@10 {coverage:.3f})" if isinstance(coverage, (int, float)) else ""
        out.append(
            f"Popularity lists the same best sellers after every item{cov}: keep it where a list "
            "has no item to follow, and judge the item-to-item lists before serving one."
        )
    item_runs = [r for r in others if r.get("is_embedding")]
    if item_runs:
        top = max(item_runs, key=lambda r: r["metrics"]["hr@10"])
        out.append(f"The best model with item vectors is {named(top)}: Explore and the Map show its lists.")
    else:
        out.append(f"{_upper_first(name)} has no item vectors: train an embedding model to explore lists.")
    return " ".join(out)


def _active_variants(runs: list[dict]) -> Any:
    active = [r for r in runs if r.get("active")]
    if not active:
        return html.Div()
    cols = []
    for run in sorted(
        active, key=lambda r: list(FAMILY_NAMES).index(r["family"]) if r["family"] in FAMILY_NAMES else 99
    ):
        m = run.get("metrics") or {}
        links = card_links(run, runs)
        body = [
            html.Div(FAMILY_NAMES.get(run["family"], run["family"]), className="variant-family"),
            html.Div(
                run_label(run),
                className="variant-label text-muted small mb-2",
                title=run["run_id"],
            ),
            # a catalogue-only run's card read "—" under each metric without saying why (s45's walk)
            html.Div(
                NOT_EVALUATED.capitalize() + ".", className="small text-muted mb-3 variant-not-evaluated"
            )
            if not_evaluated(run)
            else html.Div(
                [
                    html.Div(
                        [
                            html.Div(fmt_metric(m.get(k)), className="variant-metric"),
                            html.Div(k, className="variant-metric-name"),
                        ]
                    )
                    for k in HEADLINE_METRICS
                ],
                className="d-flex justify-content-between mb-3",
            ),
            html.Div(links, className="d-flex gap-2"),
        ]
        cols.append(
            dbc.Col(
                dbc.Card(dbc.CardBody(body), className="variant-card h-100"),
                lg=3,
                md=4,
                sm=6,
                className="mb-3",
            )
        )
    return html.Div(
        [html.H5("Active variants", className="section-title mb-3"), dbc.Row(cols)], className="mb-2"
    )


def card_links(run: dict, runs: list[dict]) -> list:
    """The buttons of a variant card, each opening a page that works for that run: Explore
    and Map need item vectors; a baseline is compared with the dataset's embedding run."""
    button = {"size": "sm", "color": "primary", "outline": True}
    if run.get("is_embedding"):
        return [
            dbc.Button("Explore", href=f"/explore?run={run['run_id']}", **button),
            dbc.Button("Map", href=f"/map?run={run['run_id']}", **button),
        ]
    emb = [r for r in runs if r.get("is_embedding")]
    emb.sort(key=lambda r: not r.get("active"))  # the active one first, then the newest
    if emb:
        pair = f"{emb[0]['run_id']},{run['run_id']}"
        return [dbc.Button("Compare", href=f"/compare?{urlencode({'runs': pair})}", **button)]
    return [dbc.Button("Runs", href="/runs", **button)]


def _links_row(
    registry: Registry | None = None, all_runs: list[dict] | None = None, dataset: str | None = None
) -> html.Div:
    """The "Where next" cards. On a dataset other than the one served by default (the Dataset
    picker's), Explore and the Map open on that dataset's run (the one they open on for it,
    :func:`components.pickers.opening_run`) and Compare on its active runs: the bare links
    opened on the default dataset's (Instacart's Overview led to the demo's Explore, s45's walk)."""
    hrefs = {title: href for title, href, _ in PAGE_LINKS}
    if (
        registry is not None
        and all_runs is not None
        and dataset
        and dataset != registry.default_dataset(all_runs)
    ):
        from components.pickers import by_merit, embedding_runs, opening_run

        run, _ = opening_run(registry, embedding_runs(registry, all_runs), all_runs, dataset)
        if run:
            hrefs["Explore"], hrefs["Map"] = f"/explore?run={run}", f"/map?run={run}"
        mine = [r for r in all_runs if (r.get("dataset") or {}).get("name") == dataset and r.get("active")]
        pair = list(dict.fromkeys([*([run] if run else []), *(r["run_id"] for r in by_merit(mine))]))[:2]
        if pair:
            hrefs["Compare"] = f"/compare?{urlencode({'runs': ','.join(pair)})}"
    cards = [
        dbc.Col(
            dcc.Link(
                dbc.Card(
                    dbc.CardBody(
                        [
                            html.Div(title + " →", className="link-title"),
                            html.Div(text, className="small text-muted"),
                        ]
                    ),
                    className="link-card h-100",
                ),
                href=hrefs[title],
                className="text-decoration-none",
            ),
            lg=True,
            md=4,
            sm=6,
            className="mb-3",
        )
        for title, _href, text in PAGE_LINKS
    ]
    return html.Div(
        [html.H5("Where next", className="section-title mb-3"), dbc.Row(cards)], id=ids.OVERVIEW_LINKS
    )


def demo_job_section(store: dict | None, root: Any = None) -> list:
    """Cards of the jobs running now (the demo build above all), or nothing."""
    jobs = [j for j in (store or {}).get("jobs", []) if is_active(j)]
    failed_demo = [
        j
        for j in (store or {}).get("jobs", [])[:1]
        if j.get("kind") == "demo" and j.get("status") in ("failed", "error")
    ]
    if not jobs and not failed_demo:
        return []
    jobs.sort(key=lambda j: j.get("kind") != "demo")
    if any(j.get("kind") == "demo" for j in jobs) or failed_demo:
        return [
            section(
                "Building the demo", job_cards(jobs + failed_demo, root, log_lines=6), className="demo-job"
            )
        ]
    return [_background_lines(jobs)]


def _background_lines(jobs: list[dict]) -> html.Div:
    """Jobs other than the demo build (the Map's UMAP projections queued after it, a training
    run): one line each, without logs. As full cards with open logs they filled a 1280x720
    projector's whole first screen, pushing the headline out of sight, and their logs scrolled at
    every poll; their cards and logs are on the Runs page."""
    lines = [
        html.Div(
            [
                dbc.Badge(j.get("status", "queued"), color="secondary", className="text-uppercase me-2"),
                html.Span(job_title(j), className="fw-semibold me-2"),
                html.Span(
                    " · ".join(
                        t
                        for t in (
                            f"{round(100 * float(j.get('fraction') or 0))}%"
                            if j.get("status") == "running"
                            else "",
                            str(j.get("message") or ""),
                        )
                        if t
                    ),
                    className="text-muted text-truncate",
                ),
            ],
            className="d-flex align-items-center small background-job-line",
        )
        for j in jobs
    ]
    return html.Div(
        [
            html.Div(
                [
                    html.Span("Background jobs", className="fw-semibold small me-2"),
                    dcc.Link("progress and logs on the Runs page →", href="/runs", className="small"),
                ]
            ),
            *lines,
        ],
        className="background-jobs mb-3 px-3 py-2 border rounded bg-white",
    )


# -- callbacks -------------------------------------------------------------------
@callback(
    Output(ids.OVERVIEW_BUILDING, "data"),
    Input(ids.JOBS_STORE, "data"),
    State(ids.OVERVIEW_BUILDING, "data"),
    prevent_initial_call=True,
)
def track_demo_build(store: dict | None, was: bool | None) -> Any:
    """Whether the demo build runs, written only when that changes (the headline re-renders then)."""
    now = _demo_building(store)
    return no_update if now == bool(was) else now


@callback(
    Output(ids.OVERVIEW_DEMO_JOB, "children"),
    Input(ids.JOBS_STORE, "data"),
    prevent_initial_call=True,
)
def update_jobs(store: dict | None) -> list:
    """Show job progress as the app-level poller reports it."""
    return demo_job_section(store)


@callback(
    Output(ids.OVERVIEW_DATASET, "children"),
    Input(ids.RUNS_VERSION_STORE, "data"),
    Input(ids.OVERVIEW_DATASET_SELECT, "value"),
    Input(ids.OVERVIEW_BUILDING, "data"),
    prevent_initial_call=True,
)
def update_content(_version: str | None, dataset: str | None = None, _building: bool | None = None) -> list:
    """Re-render for the chosen dataset, and when a run appears, disappears or is activated,
    or the demo build starts or ends."""
    return overview_content(dataset=dataset)
