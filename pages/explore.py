"""Explore: pick a seed item, see its neighbours live under the post-filters, tune and save presets.

The URL carries ``seed``, ``run`` and ``preset`` (``/explore?seed=i42&run=prod2vec-...&preset=mid``)
so a shared link reproduces the view; the page keeps the address bar in step with
``history.replaceState`` (a ``dcc.Location`` update would make Dash's page router rebuild the
page and drop unsaved filter changes). ``preset`` stays in the URL only while the filters
equal the loaded preset.

Every list comes from the run's cached searcher (``get_searcher(...).search``), the code path of
:func:`recsys.search.similar_items` and the REST API.
"""

from __future__ import annotations

import logging
import math
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from components import ids
from components.api_call import OPEN_ID as API_CALL_OPEN
from components.api_call import api_call_view
from components.common import (
    bounded_int,
    bounded_k,
    data_registry,
    run_catalog_view,
    run_dataset,
    run_searcher,
    unavailable_run,
)
from components.filter_panel import (
    OPTION_FIELDS,
    control_id,
    controls_from_filter_config,
    filter_config_from_controls,
    filter_inputs,
    filter_panel,
    option_deps,
    options_holding,
    rule_items,
    similarity_slider_props,
)
from components.item_card import ITEM_ADD_TYPE, card_grid, card_rows, item_card, item_titles, mark_same_title
from components.layout import empty_state, error_alert, no_embedding_runs, page_header
from components.pickers import (
    SERVER_SEARCHED,
    best_run,
    default_seed,
    embedding_runs,
    lacking_attributes,
    opening_run,
    run_names,
    run_options,
    seed_options,
    top_brands,
)
from components.presets import (
    PRESET_DELETE,
    PRESET_DOWNLOAD,
    PRESET_JSON,
    PRESET_MESSAGE,
    PRESET_NAME,
    PRESET_SAVE,
    PRESET_SELECT,
    PRESET_UPLOAD,
    PRESET_YAML,
    download_preset,
    import_upload,
    message,
    pid,
    preset_bar,
    preset_names,
    preset_options,
    safe_load,
)
from components.recent_views import (
    add_to_session,
    recent_views_panel,
    recommendations_view,
    remove_from_session,
    session_chips,
    session_outputs,
    session_run_choices,
)
from recsys.config import data_dir
from recsys.errors import FilterConfigError, RecsysError
from recsys.filters import FilterConfig, PresetStore
from recsys.registry import run_label
from recsys.search.rules import MOVING_RULES, RULE_LABELS  # noqa: F401  (the rule table: one label per rule)
from recsys.serving import DEFAULT_MAX_K, ApiError, parse_k

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/explore", title="RecSys Lab · Explore", name="Explore", order=1)

PANEL = ids.EXPLORE_PANEL
K_CHOICES = (5, 10, 20, 30, 50)

PLAN_LABELS = {
    "exact_range": "exact search over the category slice",
    "exact_subset": "exact search over the eligible items",
    "hnsw_overfetch": "HNSW with over-fetch + post-filter",
    "hnsw_overfetch+exact_fallback": "HNSW over-fetch, then exact fallback",
    "hnsw_filter": "HNSW with filter callback",
    "hnsw_filter+exact_fallback": "HNSW filter callback, then exact fallback",
    "hnsw_subindex": "HNSW over the filter's own graph",
    "empty": "nothing eligible",
}


def plan_label(plan: str, config: FilterConfig | None = None, skipped: Any = ()) -> str:
    """The plan in words. ``<plan>+ties_exact`` (``recsys.search.ties``): the plan's list ended
    among items with identical vectors (Taobao: thousands share their category's mean vector),
    so the list shown came from exact search; it read "hnsw_overfetch+ties_exact".

    ``exact_range`` scans one slice of the category-ordered catalogue: the seed's category
    when "Same category" applies to this seed (on in ``config`` and not in ``skipped``, the
    seed's skipped rules), else the whole catalogue. It read "exact search over the category
    slice" with no category rule on (s44's walk)."""
    base, tied = (plan.removesuffix("+ties_exact"), plan.endswith("+ties_exact"))
    text = PLAN_LABELS.get(base, base)
    if base == "exact_range" and config is not None:
        by_category = config.same_category and "same_category" not in (skipped or ())
        text = (
            "exact search over the seed's category"
            if by_category
            else "exact search over the whole catalogue"
        )
    return f"exact search (items with identical vectors tied in {text})" if tied else text


# -- data helpers (plain functions, tested directly) -------------------------------------
#: What the rules that are on for every list leave out, said under the bars (not drawn as bars:
#: they are not the reader's doing), so that "4,960 eligible of 5,000" adds up.
ALWAYS_LEFT_OUT = {
    "exclude_seed": lambda n: "the seed itself" if n == 1 else f"{n:,} seed items",
    "adult_next_to_non_adult": lambda n: (
        f"{n:,} adult item{'s' if n != 1 else ''} (never next to a non-adult seed)"
    ),
}


def always_left_out(removed: dict[str, int]) -> Any:
    """The line naming what the always-on rules left out ("Always left out: the seed itself,
    40 adult items (never next to a non-adult seed)."), or None when they left out nothing.
    The summary read "4,960 eligible of 5,000" beside "No rule removed anything" (s44's walk)."""
    parts = [say(int(removed[r])) for r, say in ALWAYS_LEFT_OUT.items() if int(removed.get(r) or 0) > 0]
    if not parts:
        return None
    return html.Div(
        f"Always left out: {', '.join(parts)}.",
        className="removed-always text-muted small",
        title="on for every list, whatever the filters: not counted in the bars",
    )


def removed_bars(removed: dict[str, int], n_items: int) -> Any:
    """One bar per rule with the number of candidates it removed on its own, and a line naming
    what the always-on rules (the seed, adult items next to a non-adult seed) left out."""
    shown = {r: int(c) for r, c in removed.items() if c and r not in ALWAYS_LEFT_OUT}
    always = always_left_out(removed)
    if not shown:
        nothing = html.Div(
            "No rule you set removed anything." if always else "No rule removed anything.",
            className="text-muted small",
        )
        return html.Div([nothing, always]) if always else nothing
    rows = []
    for rule, count in sorted(shown.items(), key=lambda kv: -kv[1]):
        share = count / n_items if n_items else 0.0
        rows.append(
            html.Div(
                [
                    html.Span(RULE_LABELS.get(rule, rule), className="removed-label"),
                    html.Div(className="removed-track", style={"--w": f"{min(share, 1) * 100:.1f}%"}),
                    html.Span(
                        f"{'↕' if rule in MOVING_RULES else '−'}{count:,}",
                        className="removed-count",
                        **{"data-rule": rule},
                    ),
                ],
                className="removed-row",
                title=(
                    f"{rule}: moves {count:,} items (re-scored or placed)"
                    if rule in MOVING_RULES
                    else f"{rule}: removes {count:,} of {n_items:,} candidates ({share:.1%}) on its own"
                ),
            )
        )
    bars = html.Div(rows, className="removed-bars")
    return html.Div([bars, always]) if always else bars


def results_view(
    result: Any, view: Any, run_id: str, k: int, config: FilterConfig, seed: str | None = None
) -> tuple[Any, Any, Any]:
    """(cards, summary line, removed bars) for a SearchResult of ``seed``."""
    n_same = 0
    if len(result.item_ids) == 0:
        cards: Any = empty_state(
            "No item passes these filters.", "Loosen a rule: the bars show what each removed."
        )
    else:
        pos = view.pos_of_row[np.asarray(result.rows, dtype=np.int64)]
        rows = card_rows(view, pos, run_dataset(run_id))
        # BigBasket repeats 2,998 names (7,053 items; 5,471 under one brand): a seed's first
        # neighbour could be the same product under another id, unmarked (s44's walk). Marked,
        # not hidden by an Explore-only default: Explore shows what is served under the same
        # rules (the API's and a precomputed table's default keeps them); hiding them belongs in
        # the preset that is served
        if not config.exclude_same_title:
            mark_same_title(view, view.position(seed or result.seed_item_id or ""), pos, rows)
        cards = card_grid(rows, result.scores, run_id=run_id, panel=PANEL)
        n_same = sum(1 for row in rows if row.get("same_title"))
    short = len(result.item_ids) < k
    summary = [
        dbc.Badge(f"{len(result.item_ids)} / {k}", color="warning" if short else "success", className="me-2"),
        f"{result.n_eligible:,} eligible of {view.n:,} · ",
        html.Span(
            plan_label(result.plan, config, result.skipped_rules),
            className="plan-name me-2",
            title=result.plan,
            **{"data-plan": result.plan},
        ),
        html.Span(f"· {result.elapsed_ms:.1f} ms", className="text-muted", title="server search time"),
    ]
    if n_same:
        summary.append(
            html.Span(
                f" · {n_same} share{'s' if n_same == 1 else ''} the seed's title (the same product "
                "under another id?): “Exclude same title” hides them",
                className="text-warning small same-title-note",
            )
        )
    if result.skipped_rules:
        summary.append(
            html.Span(
                f" · skipped (seed lacks the attribute): {', '.join(result.skipped_rules)}",
                className="text-warning small",
            )
        )
    return cards, html.Div(summary, className="results-summary"), removed_bars(result.removed_by_rule, view.n)


def explore_results(run_id: str | None, seed: str | None, k: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Everything the filter-change callback outputs (a plain function: parse, search, format)."""
    out = {"results": [], "summary": "", "removed": "", "message": None, "url": None}
    if not run_id or not seed:
        out["results"] = empty_state("Pick a seed item: type part of its title or its id.")
        return out
    try:  # the API's bounds: a whole number in 1..DEFAULT_MAX_K
        k = parse_k(k, DEFAULT_MAX_K)
    except ApiError as exc:
        out["message"] = error_alert(exc.message, "Number of results")
        return out
    try:
        config = filter_config_from_controls(values)
    except FilterConfigError as exc:
        out["message"] = error_alert(exc, "These filters are not valid", dismissable=False)
        return out
    try:
        searcher = run_searcher(run_id)  # the run's cached searcher: similar_items' code path
        result = searcher.search(seed, config, k)
        view = searcher.view
    except RecsysError as exc:
        out["message"] = error_alert(exc, "Could not search")
        return out
    out["results"], out["summary"], out["removed"] = results_view(result, view, run_id, k, config, seed)
    out["config_hash"] = config.config_hash()
    out["request"] = (k, config)  # for the REST call under the list (update_results)
    return out


def seed_card_view(run_id: str | None, seed: str | None) -> Any:
    """The seed's card (empty when the seed or run is unknown: the results callback says why)."""
    if not run_id or not seed:
        return []
    try:
        view = run_catalog_view(run_id)
    except RecsysError:
        return []
    pos = view.position(seed)
    if pos < 0:
        return []
    return item_card(card_rows(view, [pos], run_dataset(run_id))[0], seed=True, panel=PANEL)


# -- layout ---------------------------------------------------------------------------
def _rule_titles(view: Any, config: Any) -> dict[str, str]:
    """The names of the items ``config``'s rules name (or of the rule control values
    ``config``), as their cards name them: the "Never together" and pin chips show them."""
    if config is None:
        return {}
    values = config if isinstance(config, dict) else controls_from_filter_config(config)
    return item_titles(view, rule_items(values))


def _scale(run_id: str) -> dict[str, Any] | None:
    """The run's similarity scale (None when the run cannot be searched: 0-1 then)."""
    from recsys.search import similarity_scale  # off the app's start path (as run_searcher)

    try:
        return similarity_scale(run_searcher(run_id))
    except RecsysError:
        return None


def _same_dataset_run(
    registry: Any, run_id: str, runs: list[dict[str, Any]], all_runs: list[dict[str, Any]] | None = None
) -> tuple[str | None, str | None]:
    """(dataset, run): for a run Explore cannot search (a baseline), its dataset and that
    dataset's embedding run served by default (None when it has none): a user who asked for
    their own dataset's run stays on their dataset rather than landing on the demo's (the run
    Explore opens on for that dataset: :func:`components.pickers.opening_run`)."""
    try:
        dataset = ((registry.get(run_id).get("dataset")) or {}).get("name")
    except RecsysError:
        return None, None
    if not dataset:
        return None, None
    mine = {r["run_id"] for r in runs if (r.get("dataset") or {}).get("name") == dataset}
    chosen, _ = opening_run(registry, runs, all_runs, dataset)
    return dataset, (chosen if chosen in mine else None)


def layout(seed: str | None = None, run: str | None = None, preset: str | None = None, **_: Any) -> html.Div:
    """The Explore page for an optional seed, run and preset (from the URL query)."""
    header = page_header("Explore", "Nearest neighbours of a product, live under the post-filters.")
    try:
        registry = data_registry()
        all_runs = registry.list_runs()  # once per layout: each listing reads every run.json
        runs = embedding_runs(registry, all_runs)
    except (OSError, RecsysError) as exc:
        return html.Div([header, error_alert(exc, "Could not read the runs")])
    if not runs:
        return no_embedding_runs(header, " (the demo build makes several)", all_runs)
    run_ids = [r["run_id"] for r in runs]
    message_children: list[Any] = []
    if run and run not in run_ids:
        asked, (dataset, run) = run, _same_dataset_run(registry, run, runs, all_runs)
        if run:
            shown = f"showing {run}, an embedding run of the same dataset"
        elif dataset:
            shown = (
                f"dataset '{dataset}' has none yet (train one on the Runs page: content learns from a "
                "catalogue alone); showing the default run"
            )
        else:
            shown = "showing the default run"
        message_children.append(
            error_alert(
                f"{unavailable_run(asked)}: neighbour search needs item vectors; {shown}",
                "This run cannot be explored",
            )
        )
    why = None
    if not run:  # Overview's best variant, so that a newcomer sees the model it names
        run, why = opening_run(registry, runs, all_runs)
    if run not in run_ids:
        run, why = run_ids[0], None
    try:
        view = run_catalog_view(run)
    except RecsysError as exc:
        return html.Div([header, error_alert(exc, f"Could not load run {run}")])
    if seed and view.position(seed) < 0:
        message_children.append(error_alert(f"item '{seed}' has no vector in run {run}", "Unknown seed"))
        seed = None
    seed = seed or default_seed(view)

    store = PresetStore(data_dir())
    names = preset_names(store)
    config, preset_error = (None, None)
    if preset:
        config, preset_error = safe_load(store, preset)
        if preset_error:
            message_children.append(error_alert(preset_error, "Preset not loaded"))
            preset = None
    loaded = {"name": preset, "hash": config.config_hash()} if config is not None else {}

    dataset = next(((r.get("dataset") or {}).get("name") for r in runs if r["run_id"] == run), None)
    session_runs, session_run = session_run_choices(
        run, runs, all_runs, registry.active(dataset).values() if dataset else ()
    )
    session_opts = run_options(session_runs)

    left = html.Div(
        [
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Label("Seed item", className="form-label fw-semibold"),
                        dcc.Dropdown(
                            id=ids.EXPLORE_SEED,
                            options=seed_options(view, None, seed),
                            value=seed,
                            placeholder="Type part of a title or an item id…",
                            clearable=False,
                            className="seed-dropdown",
                            **SERVER_SEARCHED,
                        ),
                        dbc.Row(
                            [
                                dbc.Col(
                                    [
                                        html.Label("Variant (run)", className="form-label small mt-3"),
                                        dcc.Dropdown(
                                            id=ids.EXPLORE_RUN,
                                            options=run_options(runs),
                                            value=run,
                                            clearable=False,
                                        ),
                                        # rewritten by describe_run when another run is picked
                                        html.Div(
                                            f"Opened on {why}." if why else "",
                                            id=ids.EXPLORE_RUN_WHY,
                                            className="small text-muted explore-run-why",
                                        ),
                                        dcc.Store(
                                            id=ids.EXPLORE_RUN_OPENED,
                                            data={"run": run, "why": why, "dataset": run_dataset(run)},
                                        ),
                                        # reopens the page on a run of another dataset (open_other_dataset)
                                        dcc.Location(id=ids.EXPLORE_NAV, refresh="callback-nav"),
                                    ],
                                    width=8,
                                ),
                                dbc.Col(
                                    [
                                        html.Label("k", className="form-label small mt-3"),
                                        dcc.Dropdown(
                                            id=ids.EXPLORE_K,
                                            options=list(K_CHOICES),
                                            value=10,
                                            clearable=False,
                                        ),
                                    ],
                                    width=4,
                                ),
                            ],
                            className="g-2",
                        ),
                    ]
                ),
                className="section-card mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader(html.H5("Filters", className="mb-0")),
                    dbc.CardBody(
                        [
                            preset_bar(PANEL, names, preset),
                            html.Hr(className="my-3"),
                            filter_panel(
                                PANEL,
                                config,
                                brands=top_brands(view),
                                n_levels=view.max_level + 1,
                                similarity=_scale(run),
                                columns=view.columns,
                                lacks=lacking_attributes(view),
                                titles=_rule_titles(view, config),
                            ),
                        ]
                    ),
                ],
                className="section-card mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader(
                        html.Div(
                            [
                                html.H5("Filter impact", className="mb-0"),
                                html.Div(
                                    [
                                        dcc.Dropdown(
                                            id=ids.EXPLORE_IMPACT_SEEDS,
                                            options=[100, 200, 500],
                                            value=200,
                                            clearable=False,
                                            className="impact-seeds",
                                            searchable=False,
                                        ),
                                        dbc.Button(
                                            "Run",
                                            id=ids.EXPLORE_IMPACT_RUN,
                                            size="sm",
                                            color="primary",
                                            n_clicks=0,
                                        ),
                                    ],
                                    className="d-flex gap-2 align-items-center",
                                ),
                            ],
                            className="d-flex justify-content-between align-items-center",
                        )
                    ),
                    dbc.CardBody(
                        dcc.Loading(
                            html.Div(
                                html.Div(
                                    "Fill rate, coverage and HR@k with and without these filters, over "
                                    "sampled seeds.",
                                    className="text-muted small",
                                ),
                                id=ids.EXPLORE_IMPACT,
                            ),
                            type="dot",
                        )
                    ),
                ],
                className="section-card mb-3",
            ),
        ]
    )
    right = html.Div(
        [
            html.Div(message_children, id=ids.EXPLORE_MESSAGE),
            html.Div(id=ids.EXPLORE_SEED_CARD, className="mb-3"),
            dbc.Card(
                [
                    dbc.CardHeader(
                        html.Div(
                            [
                                html.H5("Neighbours", className="mb-0"),
                                html.Div(id=ids.EXPLORE_SUMMARY, className="small"),
                            ],
                            className="d-flex justify-content-between align-items-center flex-wrap gap-2",
                        )
                    ),
                    dbc.CardBody(
                        [
                            html.Div(id=ids.EXPLORE_REMOVED, className="mb-3"),
                            html.Div(id=ids.EXPLORE_RESULTS),
                        ]
                    ),
                ],
                className="section-card mb-4",
            ),
            recent_views_panel(
                session_opts,
                session_run,
                store_id=ids.EXPLORE_SESSION_STORE,
                chips_id=ids.EXPLORE_SESSION,
                clear_id=ids.EXPLORE_SESSION_CLEAR,
                run_id=ids.EXPLORE_SESSION_RUN,
                results_id=ids.EXPLORE_SESSION_RESULTS,
                exclude_seen_id=ids.EXPLORE_SESSION_EXCLUDE_SEEN,
            ),
        ]
    )
    return html.Div(
        [
            header,
            dcc.Store(id=ids.EXPLORE_PRESET_STORE, data=loaded),
            dcc.Store(id=ids.EXPLORE_URL_SYNC),
            dbc.Row([dbc.Col(left, lg=4, className="explore-left"), dbc.Col(right, lg=8)], className="g-4"),
        ],
        className="explore-page",
    )


# -- callbacks ------------------------------------------------------------------------
@callback(
    Output(ids.EXPLORE_SEED, "options"),
    Input(ids.EXPLORE_SEED, "search_value"),
    Input(ids.EXPLORE_RUN, "value"),
    State(ids.EXPLORE_SEED, "value"),
    prevent_initial_call=True,
)
def update_seed_options(search_value: str | None, run_id: str | None, current: str | None) -> Any:
    """Options matching the typed text (server-side search over titles and ids, 50 at most).
    After a switch to a run without the current seed, the options list the seed
    :func:`reseed_for_run` moves to."""
    if not run_id:
        return no_update
    if not search_value and ctx.triggered_id == ids.EXPLORE_SEED:
        return no_update  # keep the options while the box is empty (the selection must stay listed)
    try:
        view = run_catalog_view(run_id)
    except RecsysError:
        return []
    if current and view.position(current) < 0 and ctx.triggered_id == ids.EXPLORE_RUN:
        current = default_seed(view)
    return seed_options(view, search_value, current)


@callback(
    Output(ids.EXPLORE_SEED, "value"),
    Input(ids.EXPLORE_RUN, "value"),
    State(ids.EXPLORE_SEED, "value"),
    prevent_initial_call=True,
)
def reseed_for_run(run_id: str | None, seed: str | None) -> Any:
    """A switch to a run that has no vector for the seed (a run of another dataset: the demo's
    seed on Taobao) starts on that run's first seed, as the page opens on one; the seed box had
    gone blank and the lists said "Pick a seed item". A seed the run knows is kept."""
    if not run_id:
        return no_update
    try:
        view = run_catalog_view(run_id)
    except RecsysError:
        return no_update
    if seed and view.position(seed) >= 0:
        return no_update
    return default_seed(view) or no_update


@callback(
    Output(ids.EXPLORE_SEED_CARD, "children"),
    Input(ids.EXPLORE_SEED, "value"),
    Input(ids.EXPLORE_RUN, "value"),
)
def update_seed_card(seed: str | None, run_id: str | None) -> Any:
    """The seed card: only when the seed or run changes, not on every filter change."""
    return seed_card_view(run_id, seed)


@callback(
    output={
        "results": Output(ids.EXPLORE_RESULTS, "children"),
        "summary": Output(ids.EXPLORE_SUMMARY, "children"),
        "removed": Output(ids.EXPLORE_REMOVED, "children"),
        "message": Output(ids.EXPLORE_MESSAGE, "children"),
        "url": Output(ids.EXPLORE_URL_SYNC, "data"),
    },
    inputs={
        "seed": Input(ids.EXPLORE_SEED, "value"),
        "run_id": Input(ids.EXPLORE_RUN, "value"),
        "k": Input(ids.EXPLORE_K, "value"),
        "values": filter_inputs(PANEL),
        "loaded": Input(ids.EXPLORE_PRESET_STORE, "data"),
    },
    state={
        "url_now": State(ids.EXPLORE_URL_SYNC, "data"),
        "message_now": State(ids.EXPLORE_MESSAGE, "children"),
        "api_clicks": State(API_CALL_OPEN, "n_clicks"),
    },
)
def update_results(
    seed: str | None,
    run_id: str | None,
    k: Any,
    values: dict[str, Any],
    loaded: dict[str, Any] | None,
    url_now: Any = None,
    message_now: Any = None,
    api_clicks: Any = None,
) -> dict[str, Any]:
    """Neighbours of the seed under the current filters (the live, <= 50 ms callback).

    ``url_now`` and ``message_now`` (what the page holds) turn outputs that would not change
    into ``no_update``: a filter change then updates only the results, the summary and the
    removed bars, and the address bar's clientside callback does not run (issue 14: each
    updated output and each chained callback costs the browser a pass of Dash's renderer
    over every component of the page). ``api_clicks`` (the REST box's summary clicks) keep
    that box open or folded as the user left it when the list is redrawn."""
    out = explore_results(run_id, seed, k, values)
    config_hash = out.pop("config_hash", None)
    request = out.pop("request", None)
    loaded = loaded or {}
    preset = loaded.get("name") if loaded.get("hash") and loaded.get("hash") == config_hash else None
    if request is not None and seed and run_id:  # the list shown: the REST call that answers it
        out["results"] = html.Div(
            [out["results"], api_call_view(ids.EXPLORE_API_CALL, seed, run_id, *request, preset, api_clicks)]
        )
    url = {"seed": seed, "run": run_id, "preset": preset} if seed and run_id else None
    out["url"] = no_update if url is None or url == url_now else url
    if out["message"] is None:
        out["message"] = no_update if ctx.triggered_id is None or not message_now else []
    return out


@callback(
    Output(control_id(PANEL, "min_similarity"), "max"),
    Output(control_id(PANEL, "min_similarity"), "step"),
    Output(control_id(PANEL, "min_similarity"), "marks"),
    Input(ids.EXPLORE_RUN, "value"),
    prevent_initial_call=True,
)
def similarity_range(run_id: str | None) -> tuple[Any, Any, Any]:
    """The min-similarity slider spans the chosen run's scores (they differ by model)."""
    from recsys.search import similarity_scale  # off the app's start path (as run_searcher)

    if not run_id:
        return no_update, no_update, no_update
    try:
        props = similarity_slider_props(similarity_scale(run_searcher(run_id)))
    except RecsysError:
        return no_update, no_update, no_update
    return props["max"], props["step"], props["marks"]


# Keep the address bar in step without a page reload (see the module docstring).
clientside_callback(
    """
    function(state) {
        if (!state || !state.seed) { return; }
        const q = new URLSearchParams();
        q.set("seed", state.seed);
        if (state.run) { q.set("run", state.run); }
        if (state.preset) { q.set("preset", state.preset); }
        const url = window.location.pathname + "?" + q.toString();
        if (url !== window.location.pathname + window.location.search) {
            window.history.replaceState(window.history.state, "", url);
        }
    }
    """,
    Input(ids.EXPLORE_URL_SYNC, "data"),
)


@callback(
    output={
        "controls": filter_inputs(PANEL, Output),
        "choices": option_deps(PANEL, Output),
        "options": Output(pid(PRESET_SELECT, PANEL), "options"),
        "selected": Output(pid(PRESET_SELECT, PANEL), "value"),
        "loaded": Output(ids.EXPLORE_PRESET_STORE, "data"),
        "message": Output(pid(PRESET_MESSAGE, PANEL), "children"),
        "name": Output(pid(PRESET_NAME, PANEL), "value"),
    },
    inputs={
        "selected": Input(pid(PRESET_SELECT, PANEL), "value"),
        "save": Input(pid(PRESET_SAVE, PANEL), "n_clicks"),
        "delete": Input(pid(PRESET_DELETE, PANEL), "n_clicks"),
        "upload": Input(pid(PRESET_UPLOAD, PANEL), "contents"),
        "filename": State(pid(PRESET_UPLOAD, PANEL), "filename"),
        "name": State(pid(PRESET_NAME, PANEL), "value"),
        "values": filter_inputs(PANEL, State),
        "choices": option_deps(PANEL, State),
        "run": State(ids.EXPLORE_RUN, "value"),
    },
    prevent_initial_call=True,
)
def preset_action(
    selected: str | None,
    save: int,
    delete: int,
    upload: str | None,
    filename: str | None,
    name: str | None,
    values: dict[str, Any],
    choices: dict[str, Any],
    run: str | None = None,
) -> dict[str, Any]:
    """Load (select), save, delete or upload a preset."""
    return preset_action_impl(
        ctx.triggered_id, selected, upload, filename, name, values, choices=choices, run_id=run
    )


def preset_action_impl(
    trigger: Any,
    selected: str | None,
    upload: str | None,
    filename: str | None,
    name: str | None,
    values: dict[str, Any],
    root: Any = None,
    choices: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The preset callback as a plain function (``trigger`` is the id that fired).

    ``choices`` are the options of the panel's dropdowns: a loaded preset's brands, category
    level and banned pairs are added to them, or the dropdowns would drop those values.
    ``run_id``: the run shown, whose catalogue names the items of a loaded preset's rules.
    """

    def holding(controls: dict[str, Any]) -> dict[str, Any]:
        try:
            titles = _rule_titles(run_catalog_view(run_id), controls) if run_id else {}
        except RecsysError:  # the run is gone: the rules keep their ids
            titles = {}
        return options_holding(controls, choices, titles)

    store = PresetStore(data_dir(root))
    keep = {f: no_update for f in values}
    out: dict[str, Any] = {
        "controls": keep,
        "choices": {f: no_update for f in OPTION_FIELDS},
        "options": no_update,
        "selected": no_update,
        "loaded": no_update,
        "message": no_update,
        "name": no_update,
    }
    kind = trigger.get("type") if isinstance(trigger, dict) else None
    try:
        if kind == PRESET_SELECT:
            if not selected:
                out["loaded"] = {}
                return out
            config, error = safe_load(store, selected)
            if error:
                out["message"] = message(error, "danger")
                return out
            out["controls"] = controls_from_filter_config(config)
            out["choices"] = holding(out["controls"])
            out["loaded"] = {"name": selected, "hash": config.config_hash()}
            out["name"] = selected
            out["message"] = message(f"Loaded preset “{selected}”.")
        elif kind == PRESET_SAVE:
            preset_name = (name or "").strip()
            if not preset_name:
                out["message"] = message("Type a name for the preset first.", "warning")
                return out
            config = filter_config_from_controls(values)
            version = store.save(preset_name, config)
            out["options"] = preset_options(store)
            out["selected"] = preset_name
            out["loaded"] = {"name": preset_name, "hash": config.config_hash()}
            out["message"] = message(f"Saved “{preset_name}” (version {version}).")
        elif kind == PRESET_DELETE:
            if not selected:
                out["message"] = message("Select a preset to delete.", "warning")
                return out
            store.delete(selected)
            out["options"] = preset_options(store)
            out["selected"] = None
            out["loaded"] = {}
            out["message"] = message(f"Deleted preset “{selected}”.", "secondary")
        elif kind == PRESET_UPLOAD:
            if not upload:
                return out
            preset_name, config = import_upload(store, upload, filename)
            out["controls"] = controls_from_filter_config(config)
            out["choices"] = holding(out["controls"])
            out["options"] = preset_options(store)
            out["selected"] = preset_name
            out["name"] = preset_name
            out["loaded"] = {"name": preset_name, "hash": config.config_hash()}
            out["message"] = message(f"Imported “{preset_name}” from {filename}.")
    except RecsysError as exc:
        out["message"] = message(str(exc), "danger")
    return out


@callback(
    Output(pid(PRESET_DOWNLOAD, PANEL), "data"),
    Output(pid(PRESET_MESSAGE, PANEL), "children", allow_duplicate=True),
    Input(pid(PRESET_JSON, PANEL), "n_clicks"),
    Input(pid(PRESET_YAML, PANEL), "n_clicks"),
    State(pid(PRESET_SELECT, PANEL), "value"),
    prevent_initial_call=True,
)
def download(_json: int, _yaml: int, selected: str | None) -> tuple[Any, Any]:
    """Download the selected preset as JSON or YAML."""
    if not selected:
        return no_update, message("Select (or save) a preset to download it.", "warning")
    fmt = (
        "yaml"
        if isinstance(ctx.triggered_id, dict) and ctx.triggered_id.get("type") == PRESET_YAML
        else "json"
    )
    try:
        return download_preset(PresetStore(data_dir()), selected, fmt), no_update
    except RecsysError as exc:
        return no_update, message(str(exc), "danger")


def impact_view(report: dict[str, Any]) -> Any:
    """The filter-impact report as a small table of before/after figures."""

    def pct(v: Any) -> str:
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.1f}%"

    def num(v: Any) -> str:
        return "—" if v is None else f"{float(v):.3f}"

    k = report.get("k", 10)
    rows = [
        (
            "Fill rate (seeds with k results)",
            pct(report.get("fill_rate_before")),
            pct(report.get("fill_rate")),
        ),
        ("Catalogue coverage", pct(report.get("coverage_before")), pct(report.get("coverage_after"))),
        (f"HR@{k} on held-out cases", num(report.get("hr_before")), num(report.get("hr_after"))),
        (
            "Mean similarity",
            num(report.get("mean_similarity_before")),
            num(report.get("mean_similarity_after")),
        ),
    ]
    table = dbc.Table(
        [
            html.Thead(html.Tr([html.Th(""), html.Th("No filter"), html.Th("These filters")])),
            html.Tbody(
                [html.Tr([html.Td(a), html.Td(b), html.Td(c, className="fw-semibold")]) for a, b, c in rows]
            ),
        ],
        size="sm",
        className="impact-table mb-2",
    )
    removed = report.get("removed_by_rule") or {}
    per_seed = ", ".join(
        f"{RULE_LABELS.get(r, r)} {v:,.0f}"
        for r, v in sorted(removed.items(), key=lambda x: -x[1])
        if v and r not in ("exclude_seed", "adult_next_to_non_adult")
    )
    foot = f"{report.get('n_seeds', 0)} seeds, k = {k}, {report.get('mean_elapsed_ms', 0):.1f} ms per query"
    if report.get("n_cases") is not None:
        foot += f", {report['n_cases']} held-out cases"
    children = [table]
    if per_seed:
        children.append(html.Div(["Removed per seed on average: ", per_seed], className="small text-muted"))
    children.append(html.Div(foot, className="small text-muted"))
    return html.Div(children)


@callback(
    Output(ids.EXPLORE_IMPACT, "children"),
    Input(ids.EXPLORE_IMPACT_RUN, "n_clicks"),
    State(ids.EXPLORE_RUN, "value"),
    State(ids.EXPLORE_K, "value"),
    State(ids.EXPLORE_IMPACT_SEEDS, "value"),
    filter_inputs(PANEL, State),
    prevent_initial_call=True,
)
def run_impact(_n: int, run_id: str | None, k: Any, n_seeds: Any, values: dict[str, Any]) -> Any:
    """Filter impact over sampled seeds (fill rate, coverage, HR@k before/after)."""
    from recsys.search import filter_impact_for_run

    if not run_id:
        return no_update
    try:
        config = filter_config_from_controls(values)
        report = filter_impact_for_run(
            data_registry(), run_id, config, k=bounded_k(k), n_seeds=bounded_int(n_seeds, 200, 10, 5000)
        )
    except RecsysError as exc:
        return error_alert(exc, "Could not compute the impact")
    return impact_view(report)


# -- recent views (session) -----------------------------------------------------------------
@callback(
    Output(ids.EXPLORE_SESSION_STORE, "data"),
    Input({"type": ITEM_ADD_TYPE, "item": ALL, "panel": PANEL}, "n_clicks"),
    Input({"type": ids.EXPLORE_SESSION_REMOVE, "item": ALL}, "n_clicks"),
    Input(ids.EXPLORE_SESSION_CLEAR, "n_clicks"),
    State(ids.EXPLORE_SESSION_STORE, "data"),
    prevent_initial_call=True,
)
def edit_session(_adds: list, _removes: list, _clear: int, session: list[str] | None) -> Any:
    """Add a clicked card to the session, remove a chip, or clear it."""
    trigger = ctx.triggered_id
    value = ctx.triggered[0].get("value") if ctx.triggered else None
    if not value:  # new buttons appearing fire with n_clicks 0
        return no_update
    if trigger == ids.EXPLORE_SESSION_CLEAR:
        return []
    if isinstance(trigger, dict) and trigger.get("type") == ITEM_ADD_TYPE:
        return add_to_session(session, trigger["item"])
    if isinstance(trigger, dict) and trigger.get("type") == ids.EXPLORE_SESSION_REMOVE:
        return remove_from_session(session, trigger["item"])
    return no_update


@callback(
    Output(ids.EXPLORE_RUN_WHY, "children"),
    Input(ids.EXPLORE_RUN, "value"),
    State(ids.EXPLORE_RUN_OPENED, "data"),
    prevent_initial_call=True,
)
def describe_run(run_id: str | None, opened: dict | None) -> str:
    """The Variant line under the run picker says what the run shown is: the page's reason for
    the run it opened on (Overview's best variant...) while that run is shown; for a run the
    user picked, its name, family and dataset, and whether it is Overview's best variant there
    (the line had kept saying "Opened on the best variant" after another run was picked)."""
    opened = opened if isinstance(opened, dict) else {}
    if not run_id or run_id == opened.get("run"):
        return f"Opened on {opened['why']}." if opened.get("why") else ""
    registry = data_registry()
    all_runs = registry.list_runs()
    run = next((r for r in all_runs if r["run_id"] == run_id), None)
    if run is None:
        return ""
    name = run_names([run], with_family=False)[run_id].removesuffix(" ★")
    dataset = str((run.get("dataset") or {}).get("name") or "")
    served = "active" if run.get("active") else "not active"
    family = str(run.get("family") or "")
    what = name if family in name else f"{name}, a {family} run"
    line = f"Showing {what} on '{dataset}' ({served}), picked here"
    best, on_validation = best_run([r for r in all_runs if (r.get("dataset") or {}).get("name") == dataset])
    if best is None:
        return f"{line}."
    if best["run_id"] == run_id:
        return f"{line}: Overview's best variant on '{dataset}'."
    how = "on validation" if on_validation else "on test HR@10"
    return f"{line}; Overview's best variant on '{dataset}' ({how}) is {run_label(best)}."


@callback(
    Output(ids.EXPLORE_NAV, "href"),
    Input(ids.EXPLORE_RUN, "value"),
    State(ids.EXPLORE_RUN_OPENED, "data"),
    prevent_initial_call=True,
)
def open_other_dataset(run_id: str | None, opened: dict | None) -> Any:
    """A switch to a run of another dataset reopens the page on that run: the filter panel is the
    catalogue's (its brands, category levels, the rules its attributes allow: Instacart's price
    inputs are disabled, it has no prices), and a panel built for the demo kept offering the demo's
    brands and a price band that left Instacart with no item (s45-u's walk). Within a dataset
    the page stays as it is, unsaved filter changes kept."""
    opened = opened if isinstance(opened, dict) else {}
    if not run_id or "dataset" not in opened or run_dataset(run_id) == opened["dataset"]:
        return no_update
    return "/explore?" + urlencode({"run": run_id})


@callback(
    Output(ids.EXPLORE_SESSION_RUN, "value"),
    Input(ids.EXPLORE_RUN, "value"),
    State(ids.EXPLORE_SESSION_RUN, "value"),
    prevent_initial_call=True,
)
def follow_run_dataset(run_id: str | None, session_run: str | None) -> Any:
    """A switch of the Explore run to another dataset's run moves the recent-views panel to a
    run of that dataset (:func:`components.recent_views.session_run_choices`); a panel run of
    the same dataset (the user's choice) is kept."""
    if not run_id or run_dataset(run_id) == run_dataset(session_run):
        return no_update
    registry = data_registry()
    all_runs = registry.list_runs()
    dataset = run_dataset(run_id)
    active = registry.active(dataset).values() if dataset else ()
    return session_run_choices(run_id, embedding_runs(registry, all_runs), all_runs, active)[1]


@callback(
    Output(ids.EXPLORE_SESSION, "children"),
    Output(ids.EXPLORE_SESSION_RESULTS, "children"),
    Input(ids.EXPLORE_SESSION_STORE, "data"),
    Input(ids.EXPLORE_SESSION_RUN, "value"),
    Input(ids.EXPLORE_K, "value"),
    Input(ids.EXPLORE_SESSION_EXCLUDE_SEEN, "value"),
    filter_inputs(PANEL),
)
def update_session(
    session: list[str] | None, run_id: str | None, k: Any, hide_seen: list[str] | None, values: dict[str, Any]
) -> tuple[Any, Any]:
    """The session chips and the recommendations for it (two-tower, session kNN or mean of vectors).

    With no recent views the panel shows its two fixed hints, whatever the run, k or filters:
    a change of those then leaves the panel alone (``no_update``), so that a filter change
    re-renders only the results (issue 14); the hints are drawn on the first call and when
    the session store changes (e.g. cleared)."""
    if not session and ctx.triggered_id not in (None, ids.EXPLORE_SESSION_STORE):
        return no_update, no_update
    return session_view(session or [], run_id, bounded_k(k), values, exclude_seen=bool(hide_seen))


def session_view(
    session: list[str], run_id: str | None, k: int, values: dict[str, Any], exclude_seen: bool = True
) -> tuple[Any, Any]:
    """Plain-function body of :func:`update_session` (recsys.search.recommend_for_recent).

    An empty session gives the two hints whatever the run, k and filters (invalid filters
    are reported by the results panel), which :func:`update_session` relies on."""
    if not session:
        return session_chips([], {}, ids.EXPLORE_SESSION_REMOVE), recommendations_view(None, [])
    view = None
    try:
        if run_id:
            view = run_catalog_view(run_id)
        config = filter_config_from_controls(values)
    except RecsysError as exc:
        return session_chips(session, {}, ids.EXPLORE_SESSION_REMOVE), recommendations_view(
            None, [], str(exc)
        )
    return session_outputs(
        data_registry(), view, session, run_id, config, k, ids.EXPLORE_SESSION_REMOVE, exclude_seen
    )
