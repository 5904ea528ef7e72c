"""The Runs page's "Tune" section: search a family's settings on a dataset as a background job.

An editor picks a dataset, a tunable family (:data:`recsys.tuning.TUNABLE`), a wall-clock
budget and at most how many trials, and clicks **Tune**. The request goes through
:func:`recsys.jobs.submit_tune` (the one check and submit function that ``recsys tune
--background`` and ``POST /api/v1/tune`` use too) and runs as a ``tune`` job: Optuna
searches the settings on a time split carved from the training part (never the test
split), then the best setting is trained into a run. While it runs, the section shows
the trials done and the best validation score so far; when it finishes, the run it
trained and its trial table with a parallel-coordinates chart (:func:`tuning_view`, also
what the runs grid shows for a selected tuned run).

``pages/runs.py`` includes :func:`tune_section` with one line.
"""

from __future__ import annotations

import logging
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from components import ids
from components.jobs import is_active, job_card, job_store
from components.layout import error_alert, info_alert, section, viewer_note
from recsys.errors import RecsysError
from recsys.registry import MAX_LABEL

logger = logging.getLogger(__name__)

TUNE_FAMILY = "tune-family"
TUNE_DATASET = "tune-dataset"
TUNE_BUDGET = "tune-budget"
TUNE_TRIALS = "tune-trials"
TUNE_SAMPLE = "tune-sample"
TUNE_LABEL = "tune-label"
TUNE_SUBMIT = "tune-submit"
TUNE_MSG = "tune-msg"
TUNE_JOB = "tune-job"  # dcc.Store: the id of the tuning job started here
TUNE_STATUS = "tune-status"  # its progress, then its trials

DEFAULT_BUDGET = "5m"
DEFAULT_TRIALS = 20


def tunable_families() -> tuple[str, ...]:
    from recsys.tuning import TUNABLE

    return TUNABLE


def tune_section(datasets: list[str], read_only: bool = False) -> Any:
    """The "Tune" card: dataset, family, budget, trials, sample share, label and the Tune button.

    ``read_only`` (a viewer): the fields are a disabled fieldset and a line says tuning needs the
    editor role, as on the training form (the fields took a viewer's input, with no button)."""
    families = tunable_families()
    value = "demo" if "demo" in datasets else (datasets[0] if datasets else None)

    def col(label: str, control: Any, help_text: str | None = None, md: int = 4) -> dbc.Col:
        extra = [html.Div(help_text, className="form-text small")] if help_text else []
        return dbc.Col([dbc.Label(label, html_for=control.id), control, *extra], md=md, className="mb-2")

    return section(
        "Tune on a dataset",
        [
            html.Div(
                "Search a family's settings (Optuna TPE) on the latest 10% of the training sequences, "
                "never the test split; the best setting is then trained into a run that records every "
                "trial. The family's recommended settings are the first trial.",
                className="small text-muted mb-2",
            ),
            viewer_note("tuning needs the editor role.", "tune-viewer-note"),
            html.Fieldset(
                dbc.Row(
                    [
                        col(
                            "Dataset",
                            dcc.Dropdown(
                                id=TUNE_DATASET,
                                options=datasets,
                                value=value,
                                clearable=False,
                                placeholder="none",
                            ),
                        ),
                        col(
                            "Model family",
                            dcc.Dropdown(
                                id=TUNE_FAMILY, options=list(families), value=families[0], clearable=False
                            ),
                        ),
                        col(
                            "Label (optional)",
                            dbc.Input(
                                id=TUNE_LABEL,
                                placeholder="e.g. prod2vec tuned",
                                size="sm",
                                maxLength=MAX_LABEL,
                            ),
                        ),
                        col(
                            "Time budget",
                            dbc.Input(id=TUNE_BUDGET, value=DEFAULT_BUDGET, size="sm"),
                            "90s, 5m, 1h: the trial running when it ends is finished",
                        ),
                        col(
                            "At most trials",
                            dbc.Input(
                                id=TUNE_TRIALS, type="number", value=DEFAULT_TRIALS, min=1, step=1, size="sm"
                            ),
                            "empty: as many as the budget allows",
                        ),
                        col(
                            "Sample share (optional)",
                            dbc.Input(id=TUNE_SAMPLE, type="number", min=0, max=1, step="any", size="sm"),
                            "fit trials on this share of the sequences, e.g. 0.1 (faster)",
                        ),
                    ],
                    className="g-2",
                ),
                disabled=read_only,
                className="train-form-fields",
            ),
            dbc.Button("Tune", id=TUNE_SUBMIT, color="primary", outline=True, className="w-100 editor-only"),
            html.Div(id=TUNE_MSG, className="mt-3"),
            html.Div(id=TUNE_STATUS, className="mt-2"),
            dcc.Store(id=TUNE_JOB),
        ],
    )


def run_summary(run: dict[str, Any] | None) -> Any:
    """The selected run's settings and, where a setting was chosen at fit time
    (``vectors="auto"``), what was chosen and each candidate's validation score, in the
    words ``recsys train`` prints."""
    if not run:
        return html.Div()
    from recsys.models.prod2vec import describe_auto_choice

    params = run.get("params") or {}
    lines = [
        html.Div(
            [html.Strong("Settings: "), ", ".join(f"{k}={v}" for k, v in params.items()) or "none"],
            className="run-params",
        )
    ]
    if run.get("auto_choice"):
        lines.append(
            html.Div(
                [html.Strong("Chosen on validation: "), describe_auto_choice(run["auto_choice"])],
                className="run-auto-choice",
            )
        )
    lines.append(served_view(run))
    return html.Div(lines, className="small text-muted mb-2")


#: the fallback chain's steps (``recsys.fallback``) in an analyst's words
STEP_WORDS = {
    "vector": "a stand-in vector from its category or attributes",
    "cooccurrence": "items seen with it in training sessions",
    "category": "popular items of its category",
    "brand": "popular items of its brand",
    "popular": "the most popular items",
}


def served_sentence(shares: dict[str, Any]) -> str:
    """``{"model", "fallback", "nothing", "fallback_steps"}`` shares in words: "92.0% by the model
    itself, 7.5% by the fallback (popular items of its category 7.5%), 0.5% by nothing"."""
    steps = ", ".join(
        f"{STEP_WORDS.get(step, step)} {share:.1%}"
        for step, share in (shares.get("fallback_steps") or {}).items()
    )
    return (
        f"{float(shares.get('model') or 0.0):.1%} by the model itself, "
        f"{float(shares.get('fallback') or 0.0):.1%} by the fallback{f' ({steps})' if steps else ''}, "
        f"{float(shares.get('nothing') or 0.0):.1%} by nothing"
    )


def served_view(run: dict[str, Any]) -> Any:
    """Who serves the run's items: the shares of catalogue items and of test seeds served by the
    model itself, by each fallback step and by nothing (run.json's ``served``, recorded by
    training and by an import since s43; an older trained run's test-seed shares from its
    evaluation). A run that recorded neither says so instead of showing zeros."""
    from recsys.fallback import seed_shares

    served = run.get("served") if isinstance(run.get("served"), dict) else {}
    catalog = served.get("catalog")
    seeds = served.get("test_seeds") or seed_shares(run.get("metrics") or {})
    items = []
    if catalog:
        n = int(catalog.get("catalog_items") or 0)
        items.append(html.Li(f"Catalogue items as seeds ({n:,}): {served_sentence(catalog)}."))
    if seeds:
        n = seeds.get("n_cases")
        cases = f" ({int(n):,} cases)" if isinstance(n, (int, float)) else ""
        items.append(html.Li(f"Test seeds{cases}: {served_sentence(seeds)}."))
    if served.get("note"):
        items.append(html.Li(str(served["note"])))
    if not items:
        return html.Div(
            [
                html.Strong("Who serves the items: "),
                "not recorded for this run (trained or imported before runs recorded it).",
            ],
            className="run-served",
        )
    if not catalog:
        items.append(
            html.Li("The catalogue's shares were not recorded for this run (trained before they were).")
        )
    catalogue_only = (run.get("split") or {}).get("method") == "none"
    return html.Div(
        [
            html.Strong("Who serves the items "),
            # a catalogue-only run has no chain: no co-occurrence, nothing popular (pipeline)
            "(a catalogue-only run has no fallback chain: an item without a vector gets no list):"
            if catalogue_only
            else "(a seed's list comes from the model, else from the fallback chain's first step that has items):",
            html.Ul(items, className="mb-0"),
        ],
        className="run-served",
    )


#: what a tuning record of another shape raises while it is drawn
SHAPE_ERRORS = (TypeError, KeyError, AttributeError, ValueError, IndexError)


def tuning_view(run: dict[str, Any] | None) -> Any:
    """A tuned run's search: every trial (table) and a parallel-coordinates chart; a record
    of another shape (run.json edited or damaged) is named instead (the run stays usable)."""
    try:
        return _tuning_view(run)
    except SHAPE_ERRORS as exc:
        run_id = (run or {}).get("run_id")
        return error_alert(
            f"run {run_id}: the tuning trials in its run.json are not of the stored shape "
            f"({type(exc).__name__}: {exc}); they cannot be shown. The run itself can be used.",
            "Damaged tuning record",
            dismissable=False,
        )


def _tuning_view(run: dict[str, Any] | None) -> Any:
    t = (run or {}).get("tuning")
    if not t or not t.get("trials"):
        return html.Div()
    import plotly.graph_objects as go

    trials = t["trials"]
    names = list(t.get("searched") or trials[0]["params"])
    header = ["trial", *names, "validation", "seconds"]
    rows = [
        [
            tr["number"],
            *[tr["params"].get(n) for n in names],
            "failed" if tr.get("value") is None else round(tr["value"], 4),
            tr["seconds"],
        ]
        for tr in trials
    ]
    scored = [tr for tr in trials if tr.get("value") is not None]
    dims = []
    for n in names:
        values = [tr["params"].get(n) for tr in scored]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append({"label": n, "values": values})
        else:
            cats = sorted({str(v) for v in values})
            dims.append(
                {
                    "label": n,
                    "values": [cats.index(str(v)) for v in values],
                    "tickvals": list(range(len(cats))),
                    "ticktext": cats,
                }
            )
    dims.append({"label": "validation", "values": [tr["value"] for tr in scored]})
    fig = go.Figure(
        go.Parcoords(line={"color": [tr["value"] for tr in scored], "colorscale": "Viridis"}, dimensions=dims)
    )
    fig.update_layout(height=320, margin={"l": 40, "r": 40, "t": 40, "b": 20})
    v = t.get("validation", {})
    return html.Div(
        [
            html.H6(
                f"Tuned on this dataset: {t['n_trials']} trials in {t.get('seconds')} s, best {t['metric']} "
                f"{t['best_value']:.4f} (trial {t['best_trial']}), on {v.get('validation_cases')} cases carved "
                "from the training part"
            ),
            *[html.P(f"Note: {n}", className="small text-warning mb-1") for n in t.get("notes") or ()],
            dcc.Graph(figure=fig, config={"displayModeBar": False}),
            dbc.Table(
                [
                    html.Thead(html.Tr([html.Th(h) for h in header])),
                    html.Tbody([html.Tr([html.Td(str(c)) for c in r]) for r in rows]),
                ],
                size="sm",
                striped=True,
                className="small",
            ),
        ]
    )


def _parse_trials(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer():
        raise RecsysError(f"'At most trials' must be a whole number >= 1, got {value!r}")
    return int(number)


def _parse_sample(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RecsysError(f"'Sample share' must be a number in (0, 1], got {value!r}") from None


def _finished_view(job_id: str) -> Any:
    """The run a finished tuning job trained, with its trials."""
    from recsys.registry import Registry

    result = job_store().get(job_id).get("result") or {}
    run_id = result.get("run_id")
    if not run_id:
        return error_alert("The tuning job finished without a run.", "No run")
    try:
        run = Registry(job_store().root).get(run_id)
    except (OSError, RecsysError, KeyError) as exc:
        return error_alert(exc, "Could not read the tuned run")
    t = run.get("tuning") if isinstance(run.get("tuning"), dict) else {}
    best_params = t.get("best_params")
    best = ", ".join(f"{k}={v}" for k, v in best_params.items()) if isinstance(best_params, dict) else ""
    return html.Div(
        [
            info_alert(
                [
                    html.Strong("Tuning done. "),
                    f"The best setting ({best}) was trained into run {run_id}",
                    f" ({run.get('label')})" if run.get("label") else "",
                    "; select it in the runs grid to activate it.",
                ]
            ),
            tuning_view(run),
        ]
    )


# -- callbacks ---------------------------------------------------------------
@callback(
    Output(TUNE_MSG, "children"),
    Output(TUNE_JOB, "data"),
    Input(TUNE_SUBMIT, "n_clicks"),
    State(TUNE_FAMILY, "value"),
    State(TUNE_DATASET, "value"),
    State(TUNE_BUDGET, "value"),
    State(TUNE_TRIALS, "value"),
    State(TUNE_SAMPLE, "value"),
    State(TUNE_LABEL, "value"),
    prevent_initial_call=True,
)
def start_tuning(n_clicks, family, dataset, budget, trials, sample, label):
    """Check the Tune form and submit a ``tune`` job (:func:`recsys.jobs.submit_tune`)."""
    from recsys.jobs import submit_tune

    if not n_clicks:
        return no_update, no_update
    if not dataset:
        return error_alert(
            "Choose a dataset to tune on (import one on the Data page).", "Nothing to tune"
        ), no_update
    try:
        job_id = submit_tune(
            job_store(),
            family,
            dataset,
            {},
            budget=(budget or "").strip() or DEFAULT_BUDGET,
            trials=_parse_trials(trials),
            sample=_parse_sample(sample),
            label=(label or "").strip() or None,
        )
    except RecsysError as exc:
        return error_alert(exc, "Could not start the tuning job"), no_update
    limit = f"at most {trials} trials, " if trials not in (None, "") else ""
    message = info_alert(
        [
            html.Strong("Tuning started. "),
            f"{family} on {dataset}, {limit}budget {budget or DEFAULT_BUDGET} (job {job_id}); "
            "the best setting is then trained into a run.",
        ]
    )
    return message, job_id


@callback(
    Output(TUNE_STATUS, "children"),
    Input(ids.JOBS_STORE, "data"),
    Input(TUNE_JOB, "data"),
    prevent_initial_call=True,
)
def show_tuning_job(jobs: dict | None, job_id: str | None) -> Any:
    """Progress of the tuning job started here (trials done, best validation score so far),
    then the run it trained and its trials (read only)."""
    if not job_id:
        return no_update
    summary = next((j for j in (jobs or {}).get("jobs", []) if j.get("id") == job_id), None)
    if summary is None:
        return html.Div(f"Tuning job {job_id} queued…", className="small text-muted")
    if is_active(summary) or summary.get("status") != "done":
        return job_card(summary)
    return _finished_view(job_id)
