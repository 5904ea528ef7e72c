"""The Vetting page's measurement panels: vetted precision and behavioural checks.

``precision_panel()`` and ``checks_panel()`` are layouts the Vetting page places beside its
judging queue. They read the page's ``vetting-run`` and ``vetting-preset`` dropdowns and its
``vetting-judged-rev`` store (a counter bumped whenever a judgment is stored), so vetted
precision follows every judgment. The checks run on a button press ("Run checks"): a read-only
computation on the run's lists (nothing is written).

``vetted_table(rows)`` is shared with Compare, which shows vetted precision for every run.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html

from components.common import bounded_k, data_registry
from components.layout import empty_state, error_alert, viewer_note
from recsys.errors import RecsysError

# ids of the Vetting page (pages/vetting.py, the contract of issue 16)
VETTING_RUN = "vetting-run"
VETTING_PRESET = "vetting-preset"
VETTING_JUDGED_REV = "vetting-judged-rev"
# this module's own ids
PRECISION_K = "vetting-precision-k"
PRECISION_BODY = "vetting-precision"
CHECKS_K = "vetting-checks-k"
CHECKS_BUTTON = "vetting-checks-run"
CHECKS_BODY = "vetting-checks"
#: seeds the panel checks (drawn reproducibly, plus the held-out cases' seeds for the slices)
PANEL_MAX_SEEDS = 2000


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def vetted_table(rows: list[dict[str, Any]], labels: dict[str, str] | None = None) -> Any:
    """Vetted precision per run: p@k, judged pairs shown, thumbs-down shown, thumbs-up lost."""
    labels = labels or {}
    if not rows:
        return html.Div("No run.", className="text-muted small")
    k = next((r["k"] for r in rows if r.get("k")), 10)
    body = []
    for r in rows:
        run = r["run"]
        if r.get("error"):
            cells = [html.Td(r["error"], colSpan=5, className="text-warning small")]
        elif r.get("message"):
            cells = [html.Td(r["message"], colSpan=5, className="text-muted small")]
        else:
            cells = [
                html.Td(_fmt(r["precision"]), className="fw-semibold", **{"data-metric": "vetted-precision"}),
                html.Td(f"{r['judged_shown']}"),
                html.Td(f"{r['down_shown']}", className="text-danger" if r["down_shown"] else ""),
                html.Td(f"{r['up_lost']}"),
                html.Td(f"{r['judged']} on {r['seeds']} seeds"),
            ]
        body.append(html.Tr([html.Td(labels.get(run, run)), *cells], **{"data-run": run}))
    head = html.Tr(
        [
            html.Th("Run"),
            html.Th(f"vetted p@{k}"),
            html.Th("judged shown"),
            html.Th("👎 shown"),
            html.Th("👍 lost"),
            html.Th("judged pairs"),
        ]
    )
    return dbc.Table(
        [html.Thead(head), html.Tbody(body)], size="sm", hover=True, className="vetted-table mb-0"
    )


def _k_dropdown(ident: str) -> Any:
    # "top 10", not a bare "10": the number is the list length the panel measures
    return dcc.Dropdown(
        id=ident,
        options=[{"label": f"top {k}", "value": k} for k in (5, 10, 20)],
        value=10,
        clearable=False,
        style={"width": "7rem"},
    )


def precision_panel() -> dbc.Card:
    """Vetted precision of the chosen run and preset, updated whenever a judgment is stored."""
    return dbc.Card(
        [
            dbc.CardHeader(
                html.Div(
                    [html.H5("Vetted precision", className="mb-0"), _k_dropdown(PRECISION_K)],
                    className="d-flex justify-content-between align-items-center",
                )
            ),
            dbc.CardBody(dcc.Loading(html.Div(id=PRECISION_BODY), type="dot", delay_show=300)),
        ],
        className="section-card mb-3",
    )


def checks_panel() -> dbc.Card:
    """Behavioural checks of the chosen run and preset, on demand."""
    return dbc.Card(
        [
            dbc.CardHeader(
                html.Div(
                    [
                        html.H5("Behavioural checks", className="mb-0"),
                        html.Div(
                            [
                                _k_dropdown(CHECKS_K),
                                dbc.Button(
                                    "Run checks", id=CHECKS_BUTTON, size="sm", color="primary", n_clicks=0
                                ),
                            ],
                            className="d-flex gap-2 align-items-center",
                        ),
                    ],
                    className="d-flex justify-content-between align-items-center",
                )
            ),
            dbc.CardBody(dcc.Loading(html.Div(_checks_hint(), id=CHECKS_BODY), type="dot", delay_show=300)),
        ],
        className="section-card mb-3",
    )


def keys_help() -> list[Any]:
    """The Vetting page's line of keys, and (shown to viewers only) what a viewer can do."""
    line = html.Div(
        [
            html.Kbd("j"),
            "/",
            html.Kbd("k"),
            " next / previous pair · ",
            html.Kbd("1"),
            " thumbs up · ",
            html.Kbd("2"),
            " thumbs down (the card's reason, ",
            html.Em("other"),
            " unless chosen) · ",
            html.Kbd("3"),
            "–",
            html.Kbd("9"),
            " thumbs down because: ",
            "3 wrong category, 4 wrong gender, 5 adult or unsafe, 6 brand clash, 7 price mismatch, 8 duplicate, 9 other. ",
            "The focus moves on after each judgment; a judged pair's ",
            html.Em("Rule…"),
            " button (or ",
            html.Kbd("r"),
            ") turns it into a preset rule.",
        ],
        className="small text-muted mb-2 vet-keys",
        id="vetting-keys-help",
    )
    note = viewer_note(
        "j / k move through the queue; judging, building queues, importing and adding rules need "
        "the editor role.",
        id="vetting-viewer-note",
    )
    return [line, note]


def _checks_hint() -> Any:
    return html.Div(
        "Checks the lists of the chosen run and preset: adult items next to non-adult seeds, complementary "
        "asymmetry, same-title duplicates, brand concentration, HR@k of slices against all cases.",
        className="text-muted small",
    )


def precision_view(run_id: str | None, preset: str | None, k: int) -> Any:
    """The precision panel's body for a run and preset (plain function)."""
    if not run_id:
        return empty_state("Pick a run.")
    from recsys.filters import PresetStore
    from recsys.vetting.precision import NO_JUDGMENTS, vetted_precision_for_run

    registry = data_registry()
    try:
        config = PresetStore(registry.root).load(preset) if preset else None
        v = vetted_precision_for_run(registry, run_id, config, k)
    except RecsysError as exc:
        return error_alert(exc, "Could not measure vetted precision", dismissable=False)
    if v["message"] == NO_JUDGMENTS:
        return html.Div(
            f"No judgments yet for dataset {v['dataset']}: judge pairs to measure this run.",
            className="text-muted small",
            id="vetting-precision-empty",
        )
    down = v["down_pairs"]
    down_gone = v["judged"] - v["judged_shown"] - v["up_lost"]  # the judged pairs neither shown nor thumbs-up
    return html.Div(
        [
            html.Div(
                [
                    html.Span(_fmt(v["precision"]), className="display-6 me-2", id="vetting-precision-value"),
                    html.Span(
                        f"precision@{k} on {v['judged_shown']} judged pairs shown", className="text-muted"
                    ),
                    html.Div(
                        f"The share of thumbs-up among the judged pairs that this run and preset show in "
                        f"the top {k} (1.000: every judged pair shown is a good one).",
                        className="small text-muted",
                        id="vetting-precision-meaning",
                    ),
                ]
            ),
            html.Ul(
                [
                    html.Li(f"{v['up_shown']} thumbs-up shown, {v['down_shown']} thumbs-down still shown"),
                    html.Li(f"{v['up_lost']} thumbs-up pairs no longer in the top {k}"),
                    html.Li(
                        f"{down_gone} thumbs-down pairs no longer shown (the preset's filters and rules "
                        "removed them, or the run ranks them lower)",
                        id="vetting-precision-down-gone",
                    ),
                    html.Li(
                        f"{v['judged']} pairs judged on {v['seeds']} seeds (any run or preset of the dataset)"
                    ),
                ]
                + (
                    [html.Li(f"{v['ties']} pairs split evenly between judges, not counted")]
                    if v["ties"]
                    else []
                ),
                className="small mb-2",
            ),
            html.Div(
                [html.Div("Thumbs-down pairs still shown", className="small fw-semibold")]
                + [
                    html.Div(f"{s} → {i} (rank {r})", className="small", **{"data-pair": f"{s}|{i}"})
                    for s, i, r in down[:10]
                ]
                + (
                    [html.Div(f"… and {len(down) - 10} more", className="small text-muted")]
                    if len(down) > 10
                    else []
                )
            )
            if down
            else None,
        ]
    )


def checks_view(run_id: str | None, preset: str | None, k: int) -> Any:
    """The checks panel's body: one row per check, pass/fail with its number (plain function)."""
    if not run_id:
        return empty_state("Pick a run.")
    from recsys.checks import check_run, load_thresholds

    registry = data_registry()
    try:
        report = check_run(
            registry.root,
            run_id,
            preset,
            k=k,
            thresholds=load_thresholds(None, registry.root),
            max_seeds=PANEL_MAX_SEEDS,
        )
    except RecsysError as exc:
        return error_alert(exc, "Could not run the checks", dismissable=False)
    rows = []
    for r in report.results:
        badge = {True: ("pass", "success"), False: ("fail", "danger"), None: ("n/a", "secondary")}[r.passed]
        op = "≤" if r.direction == "max" else "≥"
        rows.append(
            html.Tr(
                [
                    html.Td(r.label),
                    html.Td(dbc.Badge(badge[0], color=badge[1])),
                    html.Td(_fmt(r.value), className="fw-semibold"),
                    html.Td(f"{op} {r.threshold:.3f}" + (" · blocking" if r.blocking else "")),
                    html.Td(r.detail, className="small text-muted"),
                ],
                **{"data-check": r.name, "data-passed": str(r.passed).lower()},
            )
        )
    summary = (
        dbc.Alert(
            "Every blocking check passes: precompute will publish this table.",
            color="success",
            className="small py-2",
        )
        if report.passed
        else dbc.Alert(report.failure_message(), color="danger", className="small py-2")
    )
    return html.Div(
        [
            summary,
            dbc.Table(
                [
                    html.Thead(
                        html.Tr(
                            [
                                html.Th("Check"),
                                html.Th(""),
                                html.Th("value"),
                                html.Th("threshold"),
                                html.Th(""),
                            ]
                        )
                    ),
                    html.Tbody(rows),
                ],
                size="sm",
                className="mb-1",
            ),
            html.Div(f"{report.n_lists} lists at k={k}.", className="small text-muted"),
        ]
    )


@callback(
    Output(PRECISION_BODY, "children"),
    Input(VETTING_RUN, "value"),
    Input(VETTING_PRESET, "value"),
    Input(VETTING_JUDGED_REV, "data"),
    Input(PRECISION_K, "value"),
)
def update_precision(run_id: str | None, preset: str | None, _rev: Any, k: Any) -> Any:
    """Vetted precision of the run and preset, again whenever a judgment is stored."""
    return precision_view(run_id, preset, bounded_k(k))


@callback(
    Output(CHECKS_BODY, "children"),
    Input(CHECKS_BUTTON, "n_clicks"),
    Input(VETTING_RUN, "value"),
    Input(VETTING_PRESET, "value"),
    State(CHECKS_K, "value"),
    prevent_initial_call=True,
)
def run_checks_panel(_n: int, run_id: str | None, preset: str | None, k: Any) -> Any:
    """The checks on "Run checks"; a new run or preset clears the previous results."""
    if ctx.triggered_id != CHECKS_BUTTON:
        return _checks_hint()
    return checks_view(run_id, preset, bounded_k(k))


def queue_modes(modes: dict[str, str], dataset: str, root: Any) -> tuple[list[dict[str, Any]], str]:
    """(options, value) of the Vetting page's queue modes for ``dataset``: "by traffic" needs
    interactions and "N per leaf category" categories; on a dataset without them (a catalogue
    alone: Myntra) each is disabled and says why, and the queue starts at random (by traffic,
    the default, answered "only 0 items have any interactions" on Build)."""
    from components.common import dataset_meta

    try:
        summary = dataset_meta(dataset, root).get("summary") or {}
    except (OSError, RecsysError):
        summary = {}
    lacks = {
        "traffic": "needs interactions; this dataset has none" if summary.get("interactions") == 0 else "",
        "category": "needs categories; this dataset has none" if summary.get("categories") == 0 else "",
    }
    options = [
        {
            "label": f"{label} ({lacks[key]})" if lacks.get(key) else label,
            "value": key,
            "disabled": bool(lacks.get(key)),
        }
        for key, label in modes.items()
    ]
    return options, "traffic" if not lacks["traffic"] else "random"
