"""Compare: two to four variants side by side for one seed (or one session) under the same filters.

A session of several items (oldest first) replaces the seed: every run recommends from the
whole session (session kNN, two-tower; item runs from the mean of the items' vectors), through
the Explore panel's and REST ``/recommend``'s code path.

Shows each run's list (embedding runs through :func:`recsys.search.similar_items` with the
filters; runs without vectors through their own ``similar``, completed by their fallback chain
and filtered by the same rules), overlap@k and
rank-biased overlap between every pair (:mod:`recsys.compare`), the metrics table of all
runs, their vetted precision on the merchandisers' judged pairs, HR@10 per top-level category,
and the seeds where two variants disagree most (or where one gets more thumbs-down).

URL: ``/compare?seed=<item>&runs=<run a>,<run b>``.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from components import ids
from components.common import bounded_k, data_registry, run_catalog_view, run_dataset
from components.filter_panel import (
    controls_from_filter_config,
    filter_config_from_controls,
    filter_inputs,
    filter_panel,
    option_deps,
    options_holding,
    rule_items,
)
from components.item_card import (
    SAME_TITLE,
    SAME_TITLE_WHY,
    card_rows,
    explore_href,
    item_titles,
    mark_same_title,
    price_text,
    thumbnail,
)
from components.layout import empty_state, error_alert, info_alert, labelled_col, page_header
from components.metrics import NOT_EVALUATED, metric_keys, metrics_grid, not_evaluated
from components.pickers import SERVER_SEARCHED, run_names
from components.presets import preset_names, safe_load
from components.vetting_panels import vetted_table
from recsys.compare import find_disagreements, per_category_table, side_by_side, side_by_side_session
from recsys.config import data_dir
from recsys.errors import FilterConfigError, RecsysError
from recsys.filters import PresetStore
from recsys.registry import run_label

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/compare", title="RecSys Lab · Compare", name="Compare", order=3)

PANEL = ids.COMPARE_PANEL
MAX_RUNS = 4
RUN_COLORS = ("#2c7be5", "#e8837a", "#16a085", "#8e6fd8")


def seed_facts(row: dict[str, Any]) -> str:
    """ " · brand · category · id" of the seed line: the parts it has (Online Retail has no brands:
    the line read "Regency Cakestand 3 Tier · · ")."""
    category = str(row.get("category") or "").replace(" > ", " › ")
    parts = [str(p) for p in (row.get("brand"), category, row.get("item_id")) if p]
    return "".join(f" · {p}" for p in parts)


def compare_href(seed: str, runs: list[str]) -> str:
    """The Compare URL for a seed and runs."""
    return "/compare?" + urlencode({"seed": seed, "runs": ",".join(runs)})


def default_runs(runs: list[dict[str, Any]], dataset: str | None = None) -> list[str]:
    """Two runs to start with: the active embedding runs (those of ``dataset``, the one served
    by default, first) best first by Overview's rule, so a presenter coming from Overview sees
    the variant it names beside the next best (beside the baseline Overview names, when one
    wins); then the newest others."""
    from components.pickers import best_run, by_merit

    emb = [r for r in runs if r.get("is_embedding")]
    active = by_merit([r for r in emb if r.get("active")])
    active.sort(key=lambda r: (r.get("dataset") or {}).get("name") != dataset)
    ordered = active + [r for r in emb if not r.get("active")]
    # a baseline that Overview calls the best (dunnhumby: popularity) beside the best embedding
    # run, not the newest baseline (it opened on Prod2Vec beside session kNN there)
    best, _ = best_run([r for r in runs if (r.get("dataset") or {}).get("name") == dataset])
    if best is not None and not best.get("is_embedding"):
        ordered.insert(1, best)
    ordered += [r for r in runs if not r.get("is_embedding") and r not in ordered]
    return [r["run_id"] for r in ordered[:2]]


def list_column(
    run: dict[str, Any],
    entry: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    shared: set[str],
    color: str,
    seed: str,
    name: str | None = None,
) -> dbc.Col:
    """One run's list: header (its name, family, filtered badge) and ranked rows."""
    badge = (
        dbc.Badge("filters applied", color="success", className="ms-1")
        if entry.get("filtered")
        else dbc.Badge("baseline · unfiltered", color="secondary", className="ms-1")
    )
    head = html.Div(
        [
            html.Div(
                [
                    html.Span(className="run-dot", style={"background": color}),
                    html.Span(name or run_label(run), className="fw-semibold"),
                ]
            ),
            html.Div([html.Span(run.get("family", ""), className="text-muted small"), badge]),
            *(
                [
                    html.Div(
                        f"from the session: {SESSION_METHODS.get(entry['method'], entry['method'])}",
                        className="text-muted small cmp-method",
                    )
                ]
                if entry.get("method")
                else []
            ),
        ],
        className="compare-col-head",
    )
    if entry.get("error"):
        body: Any = dbc.Alert(entry["error"], color="warning", className="small mb-0")
    elif not entry.get("item_ids"):
        body = html.Div("No results under these filters.", className="text-muted small")
    else:
        items = []
        for rank, (item, score) in enumerate(zip(entry["item_ids"], entry["scores"], strict=False), start=1):
            row = rows.get(item, {})
            items.append(
                html.Li(
                    [
                        html.Span(f"{rank}", className="cmp-rank"),
                        *(
                            [thumbnail(row["image"], str(row.get("title") or item), "cmp-img")]
                            if row.get("image")
                            else []
                        ),
                        html.Div(
                            [
                                html.A(
                                    str(row.get("title") or item),
                                    href=explore_href(item, run["run_id"]),
                                    className="cmp-title",
                                ),
                                *(  # on its title's line: the meta line's columns keep their places
                                    [
                                        html.Span(
                                            SAME_TITLE,
                                            className="same-title-badge ms-1",
                                            title=SAME_TITLE_WHY,
                                        )
                                    ]
                                    if row.get("same_title")
                                    else []
                                ),
                                html.Div(
                                    [
                                        html.Span(str(row.get("brand") or "")),
                                        html.Span(price_text(row)),
                                        # two items of one title (Online Retail) told apart
                                        html.Span(item, className="cmp-id"),
                                    ],
                                    className="cmp-meta",
                                ),
                            ],
                            className="cmp-text",
                        ),
                        html.Span(f"{score:.3f}" if np.isfinite(score) else "", className="cmp-score"),
                    ],
                    className="cmp-item shared" if item in shared else "cmp-item",
                    title="also in another list" if item in shared else "only in this list",
                    **{"data-item": item},
                )
            )
        body = html.Ol(items, className="cmp-list")
    return dbc.Col(html.Div([head, body], className="compare-col"), lg=6)


#: how a run answered a session (``RecentResult.method``), as the column says it
SESSION_METHODS = {
    "session_knn": "similar past sessions (session kNN)",
    "two_tower": "two-tower user vector",
    "mean_of_recent": "mean of the recent items' vectors",
    "last_item": "the run's own list for the most recent item it knows",
    "fallback": "the run's fallback chain (it knows none of the items)",
}


def agreement_table(pairs: list[dict[str, Any]], labels: dict[str, str], k: int) -> Any:
    """overlap@k and RBO of every pair, as a small table."""
    if not pairs:
        return html.Div("Pick at least two runs.", className="text-muted small")

    def fmt(v: float) -> str:
        return "—" if v is None or v != v else f"{v:.2f}"

    body = [
        html.Tr(
            [
                html.Td(labels.get(p["a"], p["a"])),
                html.Td(labels.get(p["b"], p["b"])),
                html.Td(fmt(p["overlap"]), className="fw-semibold", **{"data-metric": "overlap"}),
                html.Td(fmt(p["rbo"]), className="fw-semibold", **{"data-metric": "rbo"}),
                html.Td(f"{len(p['common'])}"),
            ]
        )
        for p in pairs
    ]
    return dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("Run A"),
                        html.Th("Run B"),
                        html.Th(f"overlap@{k}"),
                        html.Th("RBO (p=0.9)"),
                        html.Th("common"),
                    ]
                )
            ),
            html.Tbody(body),
        ],
        size="sm",
        hover=True,
        className="agreement-table mb-0",
    )


def compare_view(
    run_ids: list[str], seed: str | None, k: int, values: dict[str, Any], session: list[str] | None = None
) -> tuple[Any, Any, Any]:
    """(lists row, agreement table, message) for the selected runs and seed (plain function).

    With a ``session`` (several recent items, oldest first) every run recommends from the
    whole session instead (:func:`recsys.compare.side_by_side_session`: session kNN and
    two-tower runs read the session, item-embedding runs the mean of its vectors)."""
    session = [str(i) for i in (session or []) if i]
    if session and len(run_ids or []) >= 2:
        seed = session[-1]
    if not seed or len(run_ids or []) < 2:
        return empty_state("Pick a seed (or a session) and two to four runs."), "", None
    run_ids = run_ids[:MAX_RUNS]
    try:
        config = filter_config_from_controls(values)
    except FilterConfigError as exc:
        return no_update, no_update, error_alert(exc, "These filters are not valid", dismissable=False)
    registry = data_registry()
    try:
        metas = {r: registry.get(r) for r in run_ids}
    except RecsysError as exc:
        return no_update, no_update, error_alert(exc, "Unknown run")
    if session:
        result = side_by_side_session(registry, run_ids, session, config, k)
    else:
        result = side_by_side(registry, run_ids, seed, config, k)
    all_ids = sorted({i for e in result["lists"].values() for i in e["item_ids"]} | {seed} | set(session))
    # a list item titled as the seed is marked, as on Explore (not for a session: no one seed)
    rows = _rows_for(run_ids, all_ids, None if session or config.exclude_same_title else seed)
    counts: dict[str, int] = {}
    for e in result["lists"].values():
        for i in set(e["item_ids"]):
            counts[i] = counts.get(i, 0) + 1
    shared = {i for i, c in counts.items() if c > 1}
    width = 12 // len(run_ids)
    labels = run_names([metas[r] for r in run_ids], with_family=False)  # the family is under it
    cols = []
    for n, r in enumerate(run_ids):
        color = RUN_COLORS[n % len(RUN_COLORS)]
        col = list_column(metas[r], result["lists"][r], rows, shared, color, seed, labels[r])
        col.lg = width
        cols.append(col)
    seed_row = rows.get(seed, {})
    seed_line = (
        session_line(session, rows, run_ids[0])
        if session
        else html.Div(
            [
                html.Span("Seed", className="card-seed-tag me-2"),
                html.A(
                    str(seed_row.get("title") or seed),
                    href=explore_href(seed, run_ids[0]),
                    className="fw-semibold",
                ),
                html.Span(seed_facts(seed_row), className="text-muted small compare-seed-facts"),
            ],
            className="mb-3",
        )
    )
    return (
        html.Div([seed_line, dbc.Row(cols, className="g-3")]),
        agreement_table(result["pairs"], labels, k),
        [],
    )


def session_line(session: list[str], rows: dict[str, dict[str, Any]], run_id: str) -> Any:
    """The session the lists answer, oldest first."""
    links: list[Any] = []
    for n, item in enumerate(session):
        if n:
            links.append(html.Span(" → ", className="text-muted"))
        links.append(
            html.A(
                str(rows.get(item, {}).get("title") or item),
                href=explore_href(item, run_id),
                **{"data-item": item},
            )
        )
    return html.Div(
        [
            html.Span("Session", className="card-seed-tag me-2"),
            *links,
            html.Span(f" · {len(session)} items, oldest first", className="text-muted small"),
        ],
        className="mb-3 compare-session-line",
    )


def _rows_for(run_ids: list[str], item_ids: list[str], seed: str | None = None) -> dict[str, dict[str, Any]]:
    """Catalogue rows of items, from the first run whose catalogue view can be built; with a
    ``seed``, the other items titled as it are marked (``same_title``, :func:`mark_same_title`)."""
    for r in run_ids:
        try:
            view = run_catalog_view(r)
        except RecsysError:
            continue
        pos = np.array([view.position(i) for i in item_ids], dtype=np.int64)
        known = pos >= 0
        if not known.any():
            continue
        rows = card_rows(view, pos[known], run_dataset(r))
        if seed is not None:
            mark_same_title(view, view.position(seed), pos[known], rows)
        out = {str(row["item_id"]): row for row in rows}
        out.get(seed or "", {}).pop("same_title", None)  # the seed itself is not "titled as the seed"
        return out
    return {}


#: At most this many categories in the per-category chart; the rest are one bar group.
TOP_CATEGORIES = 12


def per_category_figure(runs: list[dict[str, Any]], metric: str = "hr@10") -> Any:
    """Grouped bars of a metric per top-level category, one colour per run: the
    :data:`TOP_CATEGORIES` categories with the most cases, the rest as "other N categories"
    (:func:`recsys.compare.top_categories`), anonymised ids read as "category 2520377"."""
    from recsys.compare import top_categories
    from recsys.labels import readable_label

    table = top_categories(per_category_table(runs, metric), TOP_CATEGORIES)
    if table.empty and runs and all(not_evaluated(r) for r in runs):  # BigBasket's (s45's walk)
        return empty_state(f"No per-category {metric}: these runs are {NOT_EVALUATED}.")
    if table.empty:
        return empty_state(f"No per-category {metric} in these runs' metrics.")
    table["category"] = table["category"].map(readable_label)
    fig = go.Figure()
    names = run_names([r for r in runs if r.get("run_id")])
    for n, (run_id, part) in enumerate(table.groupby("run_id", sort=False)):
        fig.add_bar(
            x=part["category"],
            y=part["value"],
            name=names.get(str(run_id)) or str(part["label"].iloc[0]),
            marker_color=RUN_COLORS[n % len(RUN_COLORS)] if n < len(RUN_COLORS) else None,
            customdata=part["n_cases"].astype("float").to_numpy(),
            hovertemplate="%{x}: %{y:.3f} (%{customdata:.0f} cases)<extra>%{fullData.name}</extra>",
        )
    fig.update_layout(
        template="plotly_white",
        barmode="group",
        height=340,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"title": metric, "tickformat": ".2f"},
        # category names, never numbers: Plotly read Taobao's digit ids as a numeric axis
        xaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": list(dict.fromkeys(table["category"])),
        },
        legend={"orientation": "h", "y": 1.12},
    )
    return dcc.Graph(figure=fig, config={"displayModeBar": False})


DIS_SORTS = {
    "overlap": "lowest overlap",
    "down_a": "more 👎 in A",
    "down_b": "more 👎 in B",
}


#: What the disagreement card says before "Find" (two different runs picked).
DIS_IDLE = "Samples seeds both runs know and lists those whose top-k lists overlap least."


def pick_two_runs(n_runs: int | None = None) -> Any:
    """The disagreement card's line while its pair is one run twice (one run chosen above, or
    the same run picked on both sides): a run never disagrees with itself."""
    more = (
        "there is one run: train a second on the Runs page."
        if n_runs is not None and n_runs < 2
        else "choose a second run after “vs”."
    )
    return html.Div(f"Pick two different runs: {more}", className="text-muted small dis-pick-two")


def disagreement_view(
    run_a: str, run_b: str, values: dict[str, Any], k: int, n_seeds: int = 150, sort: str | None = "overlap"
) -> Any:
    """Table of the seeds where the two runs' lists overlap least (``sort="overlap"``) or where one
    run shows more thumbs-down pairs (``"down_a"``/``"down_b"``, over the judged seeds), each
    linked to Explore and Compare."""
    if not run_a or not run_b or run_a == run_b:
        return pick_two_runs()
    config = filter_config_from_controls(values)
    registry = data_registry()
    if sort in ("down_a", "down_b"):
        from recsys.vetting.precision import thumbs_down_disagreements

        frame = thumbs_down_disagreements(registry, run_a, run_b, config, k=k, n=10, by=sort[-1])
        if frame.empty:
            return html.Div(
                "No judged seed with a thumbs-down that both runs can answer: judge pairs on the Vetting page.",
                className="text-muted small",
            )
        note = f"Judged seeds with a thumbs-down, {DIS_SORTS[sort]} first; same filters."
    else:
        frame = find_disagreements(registry, run_a, run_b, config, k=k, n_seeds=n_seeds, n=10)
        if frame.empty:
            return html.Div("No seed that both runs can answer.", className="text-muted small")
        note = f"Lowest overlap among {n_seeds} sampled seeds both runs know, same filters."
    downs = "down_a" in frame.columns
    rows = _rows_for([run_a, run_b], frame["seed"].tolist())
    body = []
    for rec in frame.to_dict("records"):
        s = rec["seed"]
        row = rows.get(s, {})
        body.append(
            html.Tr(
                [
                    html.Td(html.A(str(row.get("title") or s), href=explore_href(s, run_a))),
                    html.Td(str(row.get("category") or "").split(" > ")[0], className="text-muted"),
                    html.Td(f"{rec['overlap']:.2f}", className="fw-semibold"),
                    html.Td(f"{rec['rbo']:.2f}"),
                    *([html.Td(str(rec["down_a"])), html.Td(str(rec["down_b"]))] if downs else []),
                    html.Td(dcc.Link("compare →", href=compare_href(s, [run_a, run_b]), className="small")),
                ],
                **{"data-seed": s},
            )
        )
    return html.Div(
        [
            dbc.Table(
                [
                    html.Thead(
                        html.Tr(
                            [
                                html.Th("Seed"),
                                html.Th("Category"),
                                html.Th(f"overlap@{k}"),
                                html.Th("RBO"),
                                *([html.Th("👎 A"), html.Th("👎 B")] if downs else []),
                                html.Th(""),
                            ]
                        )
                    ),
                    html.Tbody(body),
                ],
                size="sm",
                hover=True,
                className="mb-1",
            ),
            html.Div(note, className="small text-muted"),
        ]
    )


# -- layout -----------------------------------------------------------------------------
def layout(
    seed: str | None = None,
    runs: str | None = None,
    preset: str | None = None,
    session: str | None = None,
    **_: Any,
) -> html.Div:
    """The Compare page (``?seed=``, ``?runs=a,b``, ``?preset=``, ``?session=a,b,c``)."""
    header = page_header(
        "Compare", "Variants side by side: same seed, same filters; where they agree and differ."
    )
    try:
        registry = data_registry()
        listed = registry.list_runs()  # once per layout: each listing reads every run.json
        all_runs = [r for r in listed if r.get("status", "complete") == "complete"]
    except (OSError, RecsysError) as exc:
        return html.Div([header, error_alert(exc, "Could not read the runs")])
    if len(all_runs) < 1:
        return html.Div(
            [
                header,
                empty_state("No runs yet.", ["Train some on the ", dcc.Link("Runs page", href="/runs"), "."]),
            ]
        )
    known = [r["run_id"] for r in all_runs]
    asked = [r for r in (runs or "").split(",") if r]
    chosen = [r for r in asked if r in known][:MAX_RUNS] or default_runs(
        all_runs, registry.default_dataset(listed)
    )
    missing = [r for r in asked if r not in known]
    notice = (
        info_alert(f"Unknown or deleted run(s) left out: {', '.join(missing)}.", color="warning")
        if missing
        else None
    )
    from components.pickers import lacking_attributes, run_options, seed_options, top_brands

    seed_opts: list[dict[str, str]] = []
    session_items: list[str] = []
    session_opts: list[dict[str, str]] = []
    brands: list[str] = []
    n_levels = 3
    columns = None
    lacks: list[str] = []
    source = seed_source(chosen, seed, all_runs)
    if source.view is None and source.error is not None:  # e.g. the runs' dataset was deleted
        failed, exc = source.error
        return html.Div([header, error_alert(exc, f"Could not load run {failed}")])
    if source.view is not None:
        view, seed = source.view, source.seed
        seed_opts = seed_options(view, None, seed)
        session_items = [i for i in (session or "").split(",") if i and view.position(i) >= 0]
        session_opts = session_options(view, None, session_items)
        brands = top_brands(view)
        n_levels = view.max_level + 1
        columns = view.columns
        lacks = lacking_attributes(view)
    store = PresetStore(data_dir())
    names = preset_names(store)
    config = None
    if preset in names:
        config, _err = safe_load(store, preset)
    named = rule_items(controls_from_filter_config(config)) if config is not None else []
    titles = item_titles(source.view, named) if named and source.view is not None else None

    controls = dbc.Card(
        dbc.CardBody(
            [
                dbc.Row(
                    [
                        labelled_col(
                            "Runs (2 to 4)",
                            dcc.Dropdown(
                                id=ids.COMPARE_RUNS,
                                options=limit_options(run_options(all_runs), chosen),
                                value=chosen,
                                multi=True,
                            ),
                            lg=5,
                        ),
                        labelled_col(
                            "Seed item",
                            dcc.Dropdown(
                                id=ids.COMPARE_SEED,
                                options=seed_opts,
                                value=seed,
                                clearable=False,
                                placeholder="Type part of a title or an id…",
                                **SERVER_SEARCHED,
                            ),
                            lg=4,
                        ),
                        labelled_col(
                            "k",
                            dcc.Dropdown(id=ids.COMPARE_K, options=[5, 10, 20], value=10, clearable=False),
                            lg=1,
                        ),
                        labelled_col(
                            "Filters from preset",
                            dcc.Dropdown(
                                id=ids.COMPARE_PRESET,
                                options=names,
                                value=preset if config else None,
                                placeholder="none",
                            ),
                            lg=2,
                        ),
                    ],
                    className="g-3",
                ),
                dbc.Row(
                    labelled_col(
                        "Or a session (several recent items, oldest first): every run recommends from it",
                        dcc.Dropdown(
                            id=ids.COMPARE_SESSION,
                            options=session_opts,
                            value=session_items,
                            multi=True,
                            placeholder="Type to add items; session kNN, two-tower and item runs "
                            "answer the same session…",
                            **SERVER_SEARCHED,
                        ),
                        lg=12,
                    ),
                    className="g-3 mt-1",
                ),
                dbc.Accordion(
                    dbc.AccordionItem(
                        filter_panel(
                            PANEL,
                            config,
                            brands=brands,
                            n_levels=n_levels,
                            compact=True,
                            columns=columns,
                            lacks=lacks,
                            titles=titles,
                        ),
                        title="Filters (applied to every run)",
                    ),
                    start_collapsed=True,
                    flush=True,
                    className="mt-3 compare-filters",
                ),
            ]
        ),
        className="section-card mb-3 compare-controls",  # the pickers' space kept from the first paint
    )
    lists = dbc.Card(
        [
            dbc.CardHeader(html.H5("Side by side", className="mb-0")),
            dbc.CardBody(
                [
                    html.Div(id=ids.COMPARE_MESSAGE),
                    dcc.Loading(html.Div(id=ids.COMPARE_LISTS), type="dot", delay_show=300),
                    html.H6("Agreement", className="mt-4 mb-2 section-subtitle"),
                    html.Div(id=ids.COMPARE_AGREEMENT),
                ]
            ),
        ],
        className="section-card mb-3",
    )
    metric_cols = metric_keys(all_runs)
    metrics = dbc.Card(
        [
            dbc.CardHeader(html.H5("Metrics of all runs", className="mb-0")),
            dbc.CardBody(
                metrics_grid(ids.COMPARE_METRICS, all_runs, metrics=metric_cols, extra=("created",))
            ),
        ],
        className="section-card mb-3",
    )
    per_cat = dbc.Card(
        [
            dbc.CardHeader(html.H5("HR@10 per top-level category", className="mb-0")),
            dbc.CardBody(html.Div(id=ids.COMPARE_PER_CATEGORY)),
        ],
        className="section-card mb-3",
    )
    two = (chosen + chosen)[:2]
    one_run = two[0] == two[1]  # one run chosen: "Find" waits for a second one
    disagree = dbc.Card(
        [
            dbc.CardHeader(
                html.Div(
                    [
                        html.H5("Where two variants disagree", className="mb-0"),
                        html.Div(
                            [
                                dcc.Dropdown(
                                    id=ids.COMPARE_DIS_A,
                                    options=run_options(all_runs),
                                    value=two[0],
                                    clearable=False,
                                    className="dis-run",
                                ),
                                html.Span("vs", className="text-muted small"),
                                dcc.Dropdown(
                                    id=ids.COMPARE_DIS_B,
                                    options=run_options(all_runs),
                                    value=two[1],
                                    clearable=False,
                                    className="dis-run",
                                ),
                                dcc.Dropdown(
                                    id=ids.COMPARE_DIS_SORT,
                                    options=[{"label": v, "value": k} for k, v in DIS_SORTS.items()],
                                    value="overlap",
                                    clearable=False,
                                    className="dis-run",
                                ),
                                dbc.Button(
                                    "Find",
                                    id=ids.COMPARE_DIS_BUTTON,
                                    size="sm",
                                    color="primary",
                                    n_clicks=0,
                                    disabled=one_run,
                                ),
                            ],
                            # wraps inside the half-width card (at 1280 px "Find" was off the page)
                            className="d-flex gap-2 align-items-center flex-wrap dis-controls",
                        ),
                    ],
                    className="d-flex justify-content-between align-items-center flex-wrap gap-2",
                )
            ),
            dbc.CardBody(
                dcc.Loading(
                    html.Div(
                        pick_two_runs(len(all_runs))
                        if one_run
                        else html.Div(DIS_IDLE, className="text-muted small"),
                        id=ids.COMPARE_DISAGREE,
                    ),
                    type="dot",
                )
            ),
        ],
        className="section-card mb-3",
    )
    vetted = dbc.Card(
        [
            dbc.CardHeader(
                html.H5("Vetted precision of every run (judged pairs, same filters)", className="mb-0")
            ),
            dbc.CardBody(dcc.Loading(html.Div(id=ids.COMPARE_VETTED), type="dot", delay_show=300)),
        ],
        className="section-card mb-3",
    )
    return html.Div(
        [
            header,
            notice,
            controls,
            lists,
            dbc.Row([dbc.Col(per_cat, lg=6), dbc.Col(disagree, lg=6)], className="g-3"),
            metrics,
            vetted,
        ],
        className="compare-page",
    )


# -- callbacks --------------------------------------------------------------------------
@callback(
    Output(ids.COMPARE_SEED, "options"),
    Input(ids.COMPARE_SEED, "search_value"),
    State(ids.COMPARE_RUNS, "value"),
    State(ids.COMPARE_SEED, "value"),
    prevent_initial_call=True,
)
def update_seed_options(search_value: str | None, run_ids: list[str] | None, current: str | None) -> Any:
    """Server-side seed search over the first embedding run's catalogue."""
    from components.pickers import seed_options

    if not search_value:
        return no_update
    return _first_run_options(run_ids, lambda view: seed_options(view, search_value, current))


def _first_run_options(run_ids: list[str] | None, make: Any) -> Any:
    """``make(view)`` over the catalogue view the seeds come from (:func:`seed_source`'s)."""
    order, _emb = _seed_order(list(run_ids or []))
    for r in order:
        try:
            return make(run_catalog_view(r))
        except RecsysError:
            continue
    return no_update


def session_options(view: Any, query: str | None, current: list[str] | None) -> list[dict[str, str]]:
    """Options of the session dropdown: the items a typed query finds, after the chosen ones
    (a multi dropdown keeps only values among its options)."""
    from components.pickers import seed_options

    kept: list[dict[str, str]] = []
    for item in current or []:
        kept.extend(o for o in seed_options(view, None, item)[:1] if o["value"] == item)
    chosen = {o["value"] for o in kept}
    found = seed_options(view, query, None) if query else []
    return kept + [o for o in found if o["value"] not in chosen]


@callback(
    Output(ids.COMPARE_SESSION, "options"),
    Input(ids.COMPARE_SESSION, "search_value"),
    State(ids.COMPARE_RUNS, "value"),
    State(ids.COMPARE_SESSION, "value"),
    prevent_initial_call=True,
)
def update_session_options(
    search_value: str | None, run_ids: list[str] | None, current: list[str] | None
) -> Any:
    """Server-side item search for the session, over the first chosen run's catalogue."""
    if not search_value:
        return no_update
    return _first_run_options(run_ids, lambda view: session_options(view, search_value, current))


@callback(
    Output(ids.COMPARE_LISTS, "children"),
    Output(ids.COMPARE_AGREEMENT, "children"),
    Output(ids.COMPARE_MESSAGE, "children"),
    Input(ids.COMPARE_RUNS, "value"),
    Input(ids.COMPARE_SEED, "value"),
    Input(ids.COMPARE_K, "value"),
    filter_inputs(PANEL),
    Input(ids.COMPARE_SESSION, "value"),
)
def update_lists(
    run_ids: list[str] | None,
    seed: str | None,
    k: Any,
    values: dict[str, Any],
    session: list[str] | None = None,
) -> tuple[Any, Any, Any]:
    """Each run's list for the seed (or the session, when one is chosen) under the same
    filters, and their agreement."""
    lists, agreement, msg = compare_view(list(run_ids or []), seed, bounded_k(k), values, session)
    if msg is None:
        msg = (
            []
            if len(run_ids or []) <= MAX_RUNS
            else dbc.Alert(f"Only the first {MAX_RUNS} runs are compared.", color="info", className="small")
        )
    return lists, agreement, msg


@callback(
    output={"controls": filter_inputs(PANEL, Output), "choices": option_deps(PANEL, Output)},
    inputs={
        "preset": Input(ids.COMPARE_PRESET, "value"),
        "choices": option_deps(PANEL, State),
        "runs": State(ids.COMPARE_RUNS, "value"),
    },
    prevent_initial_call=True,
)
def load_preset(
    preset: str | None, choices: dict[str, Any] | None = None, runs: list[str] | None = None
) -> dict[str, Any]:
    """Put a saved preset's filters into the panel (no preset: default filters); the panel's
    dropdowns get options for the preset's brands, level and banned pairs (or would drop them),
    the items of its rules named as their cards name them (the chosen runs' catalogue)."""
    config = None
    if preset:
        config, _err = safe_load(PresetStore(data_dir()), preset)
    controls = controls_from_filter_config(config)
    named = rule_items(controls)
    view = seed_source(list(runs or []), None).view if runs and named else None
    titles = item_titles(view, named) if view is not None else None
    return {"controls": controls, "choices": options_holding(controls, choices, titles)}


def limit_options(options: list[dict[str, Any]], chosen: list[str] | None) -> list[dict[str, Any]]:
    """The run options with every unchosen one disabled once MAX_RUNS are chosen."""
    chosen = list(chosen or [])
    full = len(chosen) >= MAX_RUNS
    return [{**o, "disabled": full and o["value"] not in chosen} for o in options]


class SeedSource(NamedTuple):
    """Where Compare's seeds come from (:func:`seed_source`)."""

    seed: str | None
    view: Any
    run_id: str | None
    error: tuple[str, RecsysError] | None


def _seed_order(run_ids: list[str], runs: list[dict[str, Any]] | None = None) -> tuple[list[str], set[str]]:
    """(the chosen runs in the order Compare takes seeds from them, the embedding runs among
    them): embedding runs first (their catalogue view is the rows they have vectors for), then
    baselines (the dataset's catalogue)."""
    if runs is not None:
        emb = {r["run_id"] for r in runs if r.get("is_embedding")} & set(run_ids)
    else:  # the chosen runs alone (a typed search asks on each keystroke; listing read every run)
        registry, emb = data_registry(), set()
        for run_id in dict.fromkeys(run_ids):
            try:
                meta = registry.get(run_id)
                registry.check(run_id)  # a damaged run is one the listing leaves out
            except RecsysError:
                continue
            if meta.get("is_embedding"):
                emb.add(run_id)
    return [r for r in run_ids if r in emb] + [r for r in run_ids if r not in emb], emb


def seed_source(run_ids: list[str], seed: str | None, runs: list[dict[str, Any]] | None = None) -> SeedSource:
    """The seed Compare shows for the chosen ``run_ids`` and the catalogue view its seed picker
    searches: the one rule of the page's opening, of a change of runs and of a typed search (they
    had three, with different error handling: the opening took any embedding run's view, even one
    not chosen, and stopped on the first unreadable run; a change of runs skipped it; a typed
    search took the first chosen run, baseline or not).

    The view is the first chosen run's that can be read, embedding runs first
    (:func:`_seed_order`); ``seed`` is kept while that view has it, else a seed every readable
    chosen embedding run has a vector for (:func:`components.pickers.default_seed`; a baseline
    answers any item). A run that cannot be read (its dataset deleted) is skipped and the first
    such is returned as ``error`` (run id, why); with no readable run, seed and view are None.
    ``runs``: what ``registry.list_runs()`` gave the caller (listed here when not given)."""
    from components.pickers import default_seed

    order, emb = _seed_order(run_ids, runs)
    views: list[tuple[str, Any]] = []
    error: tuple[str, RecsysError] | None = None
    for run_id in order:
        if views and run_id not in emb:
            break  # a baseline answers any item: its catalogue adds nothing to the choice
        try:
            view = run_catalog_view(run_id)
        except RecsysError as exc:
            error = error or (run_id, exc)
            continue
        views.append((run_id, view))
        if len(views) == 1 and seed and view.position(seed) >= 0:
            return SeedSource(seed, view, run_id, error)
    if not views:
        return SeedSource(None, None, None, error)
    (first_id, first), others = views[0], [v for _, v in views[1:]]
    return SeedSource(default_seed(first, also_in=others), first, first_id, error)


@callback(
    Output(ids.COMPARE_SEED, "value"),
    Output(ids.COMPARE_SEED, "options", allow_duplicate=True),
    Output(ids.COMPARE_DIS_A, "value"),
    Output(ids.COMPARE_DIS_B, "value"),
    Input(ids.COMPARE_RUNS, "value"),
    State(ids.COMPARE_SEED, "value"),
    State(ids.COMPARE_DIS_A, "value"),
    State(ids.COMPARE_DIS_B, "value"),
    prevent_initial_call=True,
)
def follow_runs(
    run_ids: list[str] | None, seed: str | None, dis_a: str | None, dis_b: str | None
) -> tuple[Any, Any, Any, Any]:
    """The seed and the "where two variants disagree" pair follow the chosen runs. Picking another
    dataset's runs (Taobao's instead of the demo's) had kept the demo's seed (every list said the
    item has no vector) and the demo's pair below. A seed the runs know is kept; the pair is kept
    while both are among the chosen runs, else it becomes the first two of them."""
    chosen = list(run_ids or [])
    if not chosen:
        return no_update, no_update, no_update, no_update
    pair: tuple[Any, Any] = (no_update, no_update)
    if dis_a not in chosen or dis_b not in chosen:
        pair = tuple((chosen + chosen)[:2])  # type: ignore[assignment]
    source = seed_source(chosen, seed)
    if source.seed is None or source.seed == seed:
        return no_update, no_update, *pair
    from components.pickers import seed_options

    return source.seed, seed_options(source.view, None, source.seed), *pair


@callback(
    Output(ids.COMPARE_RUNS, "options"),
    Output(ids.COMPARE_RUNS, "value"),
    Input(ids.COMPARE_RUNS, "value"),
    State(ids.COMPARE_RUNS, "options"),
    prevent_initial_call=True,
)
def limit_runs(chosen: list[str] | None, options: list[dict[str, Any]] | None) -> tuple[Any, Any]:
    """2 to 4 runs: a fifth cannot be picked (the others are disabled at four) and a value of
    more than four (e.g. typed fast) is cut back to the first four."""
    chosen = list(chosen or [])
    kept = chosen[:MAX_RUNS]
    return limit_options(list(options or []), kept), (kept if len(kept) < len(chosen) else no_update)


# Keep the address bar in step (runs, seed, preset) without a page reload, as on Explore.
clientside_callback(
    """
    function(runs, seed, preset) {
        const q = new URLSearchParams();
        if (seed) { q.set("seed", seed); }
        if (runs && runs.length) { q.set("runs", runs.slice(0, MAX_RUNS).join(",")); }
        if (preset) { q.set("preset", preset); }
        const url = window.location.pathname + (q.toString() ? "?" + q.toString() : "");
        if (url !== window.location.pathname + window.location.search) {
            window.history.replaceState(window.history.state, "", url);
        }
    }
    """.replace("MAX_RUNS", str(MAX_RUNS)),
    Input(ids.COMPARE_RUNS, "value"),
    Input(ids.COMPARE_SEED, "value"),
    Input(ids.COMPARE_PRESET, "value"),
)


@callback(Output(ids.COMPARE_PER_CATEGORY, "children"), Input(ids.COMPARE_RUNS, "value"))
def update_per_category(run_ids: list[str] | None) -> Any:
    """HR@10 per top-level category of the selected runs; when fewer than two are picked, of
    every run of the picked run's dataset (the default dataset's without one). It drew every
    run of every dataset then: the demo's Women and Electronics beside Instacart's Produce and
    Dairy Eggs, six legend entries over the bars (s45's walk)."""
    registry = data_registry()
    runs = registry.list_runs()
    by_id = {r["run_id"]: r for r in runs}
    # in the order picked: a run's colour is its list column's (RUN_COLORS), not the newest first
    picked = [by_id[r] for r in dict.fromkeys(run_ids or []) if r in by_id]
    if len(picked) >= 2:
        return per_category_figure(picked)
    dataset = (picked[0].get("dataset") or {}).get("name") if picked else registry.default_dataset(runs)
    return per_category_figure([r for r in runs if (r.get("dataset") or {}).get("name") == dataset])


@callback(
    Output(ids.COMPARE_DISAGREE, "children"),
    Input(ids.COMPARE_DIS_BUTTON, "n_clicks"),
    State(ids.COMPARE_DIS_A, "value"),
    State(ids.COMPARE_DIS_B, "value"),
    State(ids.COMPARE_K, "value"),
    filter_inputs(PANEL, State),
    Input(ids.COMPARE_DIS_SORT, "value"),
    prevent_initial_call=True,
)
def update_disagreement(
    _n: int, run_a: str, run_b: str, k: Any, values: dict[str, Any], sort: str | None = "overlap"
) -> Any:
    """The seeds where the two runs' lists overlap least, or where one gets more thumbs-down."""
    try:
        return disagreement_view(run_a, run_b, values, bounded_k(k), sort=sort)
    except RecsysError as exc:
        return error_alert(exc, "Could not compare these runs")


@callback(
    Output(ids.COMPARE_DIS_BUTTON, "disabled"),
    Output(ids.COMPARE_DISAGREE, "children", allow_duplicate=True),
    Input(ids.COMPARE_DIS_A, "value"),
    Input(ids.COMPARE_DIS_B, "value"),
    prevent_initial_call=True,
)
def follow_pair(run_a: str | None, run_b: str | None) -> tuple[bool, Any]:
    """A pair of one run twice (one run chosen above, which the pair follows, or the same run
    picked on both sides) disables "Find" and asks for a second run; two different runs enable
    it. Either way the table of the previous pair, no longer the one shown, is cleared."""
    if not run_a or not run_b or run_a == run_b:
        return True, pick_two_runs()
    return False, html.Div(DIS_IDLE, className="text-muted small")


def vetted_view(k: int, values: dict[str, Any]) -> Any:
    """Vetted precision of every complete run under the panel's filters (plain function)."""
    from recsys.vetting.precision import vetted_precision_of_runs

    try:
        config = filter_config_from_controls(values)
    except FilterConfigError as exc:
        return error_alert(exc, "These filters are not valid", dismissable=False)
    registry = data_registry()
    runs = [r for r in registry.list_runs() if r.get("status", "complete") == "complete"]
    try:
        rows = vetted_precision_of_runs(registry, [r["run_id"] for r in runs], config, k)
    except RecsysError as exc:  # the judgments file is damaged or cannot be read: it says which
        return error_alert(exc, "Could not measure vetted precision", dismissable=False)
    # named as the run pickers name them: two runs of one label tell apart (dataset, date, id)
    return vetted_table(rows, run_names(runs))


@callback(Output(ids.COMPARE_VETTED, "children"), Input(ids.COMPARE_K, "value"), filter_inputs(PANEL))
def update_vetted(k: Any, values: dict[str, Any]) -> Any:
    """Vetted precision of every run on the judged pairs, with Compare's filters and k."""
    return vetted_view(bounded_k(k), values)
