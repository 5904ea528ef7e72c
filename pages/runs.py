"""Runs: train a new variant as a background job, watch it, activate, project or delete runs."""

from __future__ import annotations

import json
import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from components import ids
from components.common import dataset_meta, list_datasets
from components.datasets import catalogue_only
from components.forms import choice_col, dom_id
from components.image_features import image_features_section
from components.jobs import device_status, is_active, job_cards, job_store, jobs_snapshot
from components.layout import empty_state, error_alert, info_alert, page_header, section, viewer_note
from components.metrics import HEADLINE_METRICS, metrics_grid, run_rows
from components.tuning import SHAPE_ERRORS, run_summary, tune_section, tuning_view
from components.vectors_io import export_section as vectors_export_section
from recsys.auth import can_edit
from recsys.config import data_dir
from recsys.errors import RecsysError
from recsys.models import FAMILIES, catalog_only_families, get_model_class
from recsys.registry import MAX_LABEL, Registry, run_label

logger = logging.getLogger(__name__)


dash.register_page(__name__, path="/runs", title="RecSys Lab · Runs", name="Runs", order=4)

RUN_METRICS = (*HEADLINE_METRICS, "mrr@10", "fallback_share", "no_recommendation_share")
#: The form's starting points: the family's recommended settings (its defaults), or the
#: underlying library's own defaults where the family names them (gensim for Prod2Vec).
PARAM_PRESETS = ("recommended", "library defaults")
RUN_EXTRAS = ("status", "device", "fit_s", "created", "error")
JOB_KINDS_SHOWN = ("train", "tune", "project", "demo")
DEVICE_POLL = ids.RUNS_DEVICE_POLL


# -- plain helpers -----------------------------------------------------------------
def family_options() -> list[dict[str, Any]]:
    """Dropdown options: every family, the ones whose module cannot load disabled."""
    out = []
    for family in FAMILIES:
        try:
            get_model_class(family)
            out.append({"label": family, "value": family})
        except Exception as exc:  # a family under construction must not break the page
            logger.info("family %s unavailable: %s", family, exc)
            out.append({"label": f"{family} (unavailable)", "value": family, "disabled": True})
    return out


def family_for(
    dataset: str | None, family: str | None, options: list[dict[str, Any]], root: Any
) -> str | None:
    """The family the form shows for ``dataset``: ``family``, unless the dataset holds no
    interactions (a catalogue only) and ``family`` needs them; then the first family of
    ``options`` that trains on a catalogue alone (the content model, TF-IDF), so that the form
    does not start on a run that can only fail."""
    alone = catalog_only_families()
    if not dataset or family in alone:
        return family
    try:
        if not catalogue_only(dataset_meta(dataset, root)):
            return family
    except (OSError, RecsysError):
        return family
    return next((o["value"] for o in options if not o.get("disabled") and o["value"] in alone), family)


#: Under the form's "Evaluation" for a dataset without interactions (a catalogue only)
NOT_EVALUATED = (
    "This dataset has no interactions, so the run is not evaluated (no HR@k): "
    "the split settings below do not apply to it."
)


def evaluation_note(dataset: str | None, root: Any) -> str:
    """What the form says under "Evaluation" for ``dataset``: :data:`NOT_EVALUATED` for a
    catalogue only (BigBasket's form offered "time: the latest sequences" and a repeats
    protocol for a dataset without a sequence, and its run's metrics were all "—"); nothing
    otherwise."""
    if not dataset:
        return ""
    try:
        return NOT_EVALUATED if catalogue_only(dataset_meta(dataset, root)) else ""
    except (OSError, RecsysError):
        return ""


def param_inputs(family: str | None, preset: str | None = None) -> list:
    """One labelled input per parameter of ``family``'s ``default_params`` (the recommended
    settings), with its help line; ``preset="library defaults"`` starts from the library's
    own defaults where the family publishes them (``param_presets``).

    Booleans are switches, numbers are numeric inputs, everything else is text
    (JSON for lists, dicts and ``None`` defaults; empty means None).
    """
    if not family:
        return []
    try:
        cls = get_model_class(family)
        defaults, choices = cls.default_params, cls.param_choices
    except RecsysError as exc:
        return [error_alert(exc, "Unknown model family", dismissable=False)]
    except ImportError as exc:
        return [
            error_alert(f"{family} cannot be loaded here: {exc}", "Family unavailable", dismissable=False)
        ]
    if not defaults:
        return [html.Div(f"{family} has no parameters.", className="text-muted small")]
    presets = getattr(cls, "param_presets", {})
    start = dict(defaults)
    if preset == "library defaults" and presets:
        start.update({k: v for k, v in next(iter(presets.values())).items() if k in defaults})
    helps = getattr(cls, "param_help", {})
    rows = []
    for name, default in defaults.items():
        pid = {"type": ids.RUNS_PARAM, "name": name}
        value = start[name]
        if isinstance(default, str) and name in choices:
            options = [{"label": c, "value": c} for c in choices[name]]
            control = dcc.Dropdown(id=pid, options=options, value=value, clearable=False)
        elif isinstance(default, bool):
            # its own label (else an empty one) read by screen readers; the visible one is above
            control = dbc.Switch(
                id=pid, value=value, className="mt-1", label=name, label_class_name="visually-hidden"
            )
        elif isinstance(default, int):
            control = dbc.Input(id=pid, type="number", value=value, step=1, size="sm")
        elif isinstance(default, float):
            control = dbc.Input(id=pid, type="number", value=value, step="any", size="sm")
        elif isinstance(default, str):
            control = dbc.Input(id=pid, type="text", value=value, size="sm")
        else:
            control = dbc.Input(
                id=pid,
                type="text",
                value="" if value is None else json.dumps(value),
                placeholder="none" if default is None else "JSON",
                size="sm",
            )
        rows.append(
            dbc.Col(
                html.Div(
                    [
                        dbc.Label(name, html_for=dom_id(pid), className="param-label"),
                        control,
                        *([html.Div(helps[name], className="form-text small")] if name in helps else []),
                    ]
                ),
                md=6,
                className="mb-2",
            )
        )
    return [dbc.Row(rows, className="g-2")]


def parse_params(family: str, names: list[str], values: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """Form values -> model parameters (only those that differ from the defaults).

    Returns ``(params, errors)``; each error names the parameter and what it expects.
    """
    defaults = get_model_class(family).default_params
    params: dict[str, Any] = {}
    errors: list[str] = []
    for name, raw in zip(names, values):
        if name not in defaults:
            continue
        default = defaults[name]
        try:
            value = _parse_one(default, raw)
        except (TypeError, ValueError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        if value != default:
            params[name] = value
    return params, errors


def _parse_one(default: Any, raw: Any) -> Any:
    if isinstance(default, bool):
        return bool(raw)
    if isinstance(default, int):
        if raw is None or raw == "":
            raise ValueError("expects a whole number")
        number = float(raw)
        if not number.is_integer():
            raise ValueError(f"expects a whole number, got {raw}")
        return int(number)
    if isinstance(default, float):
        if raw is None or raw == "":
            raise ValueError("expects a number")
        return float(raw)
    if isinstance(default, str):
        return "" if raw is None else str(raw)
    text = "" if raw is None else str(raw).strip()
    if default is None:
        if text == "" or text.lower() == "none":
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # a plain string, e.g. separate_by = category
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"expects JSON like {json.dumps(default)}") from None
    if isinstance(default, (list, tuple)) and not isinstance(value, list):
        raise ValueError(f"expects a JSON list like {json.dumps(default)}")
    if isinstance(default, dict) and not isinstance(value, dict):
        raise ValueError(f"expects a JSON object like {json.dumps(default)}")
    return value


#: The evaluation splits the form offers: value -> (label, what the value box holds).
SPLITS: dict[str, tuple[str, str]] = {
    "time": ("time: the latest sequences", "share held out (default 0.1)"),
    "cutoff": ("cutoff date", "date, e.g. 2024-05-01"),
    "last_days": ("last days", "days held out, e.g. 7"),
    "leave_last_out": ("leave last out", "(no value)"),
    "given": ("my own test dataset", "(choose the test dataset)"),
}


def split_from_form(values: list[Any] | None, split_ids: list[dict[str, str]] | None) -> dict[str, Any]:
    """The evaluation controls -> ``train_run`` keyword arguments (split, options, test set, repeats).

    Raises
    ------
    DataValidationError
        A value that does not fit the chosen split (named as on the form).
    """
    import pandas as pd

    from recsys.errors import DataValidationError

    if not split_ids:
        return {}
    raw = {i["option"]: v for i, v in zip(split_ids, values or [])}
    method = raw.get("method") or "time"
    value = str(raw.get("value") or "").strip()
    out: dict[str, Any] = {"repeats": raw.get("repeats") or "collapse"}
    if method == "given":
        if not raw.get("test"):
            raise DataValidationError("choose the test dataset (Split: my own test dataset)")
        out["test_dataset"] = raw["test"]
        return out
    out["split_method"] = method
    try:
        if method == "time" and value:
            fraction = float(value)
            if not 0 < fraction < 1:
                raise ValueError
            out["split_options"] = {"test_fraction": fraction}
        elif method == "last_days":
            days = float(value)
            if days <= 0:
                raise ValueError
            out["split_options"] = {"test_days": days}
        elif method == "cutoff":
            pd.Timestamp(value)
            if not value:
                raise ValueError
            out["split_options"] = {"cutoff": value}
    except (ValueError, TypeError):
        raise DataValidationError(f"the split value {value!r} does not fit: {SPLITS[method][1]}") from None
    return out


def split_controls(datasets: list[str]) -> dbc.Row:
    """Split method, its value, a test dataset and the repeats protocol."""

    def sid(option: str) -> dict[str, str]:
        return {"type": ids.RUNS_SPLIT, "option": option}

    return dbc.Row(
        [
            choice_col(
                "Split",
                sid("method"),
                [(k, v[0]) for k, v in SPLITS.items()],
                "time",
                kind="select",
                label_class="param-label mb-0",
                md=6,
            ),
            dbc.Col(
                [
                    dbc.Label("Split value", html_for=dom_id(sid("value")), className="param-label mb-0"),
                    dbc.Input(id=sid("value"), placeholder="share, date or days", value="", size="sm"),
                ],
                md=6,
            ),
            dbc.Col(
                [
                    dbc.Label("Test dataset (own split)", className="param-label mb-0"),
                    dcc.Dropdown(id=sid("test"), options=datasets, value=None, placeholder="none"),
                ],
                md=6,
            ),
            choice_col(
                "Repeated items in a session",
                sid("repeats"),
                [("collapse", "collapse repeats"), ("keep", "every position a case")],
                "collapse",
                kind="select",
                label_class="param-label mb-0",
                md=6,
            ),
        ],
        className="g-2 mb-3",
    )


def submit_training(
    family: str,
    params: dict[str, Any],
    dataset: str,
    label: str | None = None,
    split: dict[str, Any] | None = None,
) -> str:
    """Submit a ``train`` job (checked now by :func:`recsys.jobs.submit_train`); return its id.

    ``split`` is :func:`split_from_form`'s result.
    """
    from recsys.jobs import submit_train

    return submit_train(job_store(), family, dataset, params, label=label, **(split or {}))


def runs_jobs(store: dict | None, n_recent: int = 3) -> list[dict[str, Any]]:
    """The jobs the Runs page shows: active train/project/demo jobs, then a few recent finished ones."""
    jobs = [j for j in (store or {}).get("jobs", []) if j.get("kind") in JOB_KINDS_SHOWN]
    active = [j for j in jobs if is_active(j)]
    finished = [j for j in jobs if not is_active(j)][:n_recent]
    return active + finished


def device_badge(info: dict[str, Any] | None) -> Any:
    """The compute device as a badge ("detecting…" until known)."""
    if not info:
        return dbc.Badge(
            "Compute device: detecting…", color="light", text_color="dark", className="device-badge"
        )
    device = str(info.get("device", "CPU"))
    extra = []
    if info.get("backend"):
        extra.append(str(info["backend"]))
    if info.get("mixed_precision"):
        extra.append("mixed precision")
    text = f"Compute device: {device}" + (f" ({', '.join(extra)})" if extra else "")
    return dbc.Badge(
        text, color="success" if device.upper().startswith("GPU") else "secondary", className="device-badge"
    )


def damage_notice(runs: list[dict[str, Any]], active_problem: str | None = None) -> Any:
    """A warning naming each damaged run and why (and a damaged active.json), or None."""
    bad = [r for r in runs if r.get("damaged")]
    if not bad and not active_problem:
        return None
    items = [html.Li([html.Strong(r["run_id"]), f": {r.get('error')}"]) for r in bad]
    if active_problem:
        items.append(html.Li(active_problem))
    text = (
        "These runs cannot be served or explored until their files are restored; select one to delete it."
        if bad
        else ""
    )
    return dbc.Alert(
        [
            html.Strong("Damaged stored data"),
            html.Ul(items, className="mb-1 mt-1 small"),
            html.Div(text, className="small"),
        ],
        color="warning",
        className="mb-3 damaged-runs",
    )


# -- layout ------------------------------------------------------------------------
def layout(**_query: Any) -> html.Div:
    root = data_dir()
    datasets = list_datasets(root)
    active_problem = None
    try:
        registry = Registry(root)
        runs = registry.list_runs(include_damaged=True)  # damaged ones listed with why
        active_problem = registry.active_problem()
    except (OSError, RecsysError) as exc:
        runs = []
        logger.warning("could not list runs: %s", exc)
    options = family_options()
    first = next((o["value"] for o in options if not o.get("disabled") and o["value"] == "prod2vec"), None)
    first = first or next((o["value"] for o in options if not o.get("disabled")), None)
    first_dataset = "demo" if "demo" in datasets else (datasets[0] if datasets else None)
    first = family_for(first_dataset, first, options, root)
    device = device_status(root)

    read_only = not can_edit()  # a viewer: the form shows what a run takes, and says why it is shut
    form = section(
        "Train a new variant",
        [
            viewer_note(
                "training needs the editor role. The form below is read-only; it shows what a run "
                "takes (family, dataset, split, settings).",
                "runs-viewer-note",
            ),
            html.Fieldset(
                [
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("Model family"),
                                    dcc.Dropdown(
                                        id=ids.RUNS_FAMILY, options=options, value=first, clearable=False
                                    ),
                                ],
                                md=6,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("Dataset"),
                                    dcc.Dropdown(
                                        id=ids.RUNS_DATASET,
                                        options=datasets,
                                        value=first_dataset,
                                        clearable=False,
                                        placeholder="no dataset yet",
                                    ),
                                ],
                                md=6,
                            ),
                        ],
                        className="mb-3",
                    ),
                    dbc.Label("Label (optional)", html_for=ids.RUNS_LABEL),
                    dbc.Input(
                        id=ids.RUNS_LABEL,
                        placeholder="e.g. prod2vec window 10",
                        className="mb-3",
                        size="sm",
                        maxLength=MAX_LABEL,
                    ),
                    html.Div("Evaluation", className="form-subtitle mb-2"),
                    html.Div(
                        evaluation_note(first_dataset, root),
                        id=ids.RUNS_EVAL_NOTE,
                        className="small text-muted mb-2",
                    ),
                    split_controls(datasets),
                    html.Div("Hyperparameters", className="form-subtitle mb-2"),
                    dcc.RadioItems(
                        id=ids.RUNS_PARAM_PRESET,
                        options=[
                            {"label": " recommended settings", "value": "recommended"},
                            {
                                "label": " the library's defaults (gensim's for Prod2Vec)",
                                "value": "library defaults",
                            },
                        ],
                        value="recommended",
                        inline=True,
                        className="small mb-2 d-flex gap-3",
                    ),
                    html.Div(param_inputs(first), id=ids.RUNS_PARAMS, className="params-box mb-3"),
                ],
                disabled=read_only,
                className="train-form-fields",
            ),
            dbc.Button("Train", id=ids.RUNS_SUBMIT, color="primary", className="w-100 editor-only"),
            html.Div(id=ids.RUNS_SUBMIT_MSG, className="mt-3"),
        ],
    )
    jobs = section("Jobs", html.Div(id=ids.RUNS_JOBS, children=show_jobs(jobs_snapshot())))
    grid_actions = [
        dbc.Button(
            "Activate",
            id=ids.RUNS_ACTIVATE,
            size="sm",
            color="primary",
            outline=True,
            disabled=True,
            className="editor-only",
        ),
        dbc.Button(
            "Compute projection (UMAP)",
            id=ids.RUNS_PROJECT,
            className="editor-only",
            size="sm",
            color="secondary",
            outline=True,
            disabled=True,
        ),
        dbc.Button(
            "Delete",
            id=ids.RUNS_DELETE,
            size="sm",
            color="danger",
            outline=True,
            disabled=True,
            className="editor-only",
        ),
    ]
    runs_card = section(
        "Runs",
        [
            html.Div(id=ids.RUNS_ACTION_MSG),
            damage_notice(runs, active_problem),
            metrics_grid(ids.RUNS_GRID, runs, metrics=RUN_METRICS, extra=RUN_EXTRAS, selectable=True),
            html.Div(
                "Select a run to activate it (serving and Explore use the active run of each family), "
                "compute its map projection, or delete it.",
                className="small text-muted mt-2 editor-only",
            ),
            viewer_note(  # the hint above named buttons a viewer does not have (s41-w)
                "activating, projecting and deleting runs need the editor role.",
                "runs-grid-viewer-note",
                "mt-2 mb-0",
            ),
            html.Div(id=ids.RUNS_TUNING, className="mt-3"),
        ],
        actions=grid_actions,
    )
    modal = dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Delete run?")),
            dbc.ModalBody(id=ids.RUNS_DELETE_TEXT),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id=ids.RUNS_DELETE_CANCEL, color="secondary", outline=True),
                    dbc.Button("Delete", id=ids.RUNS_DELETE_CONFIRM, color="danger"),
                ]
            ),
        ],
        id=ids.RUNS_DELETE_MODAL,
        is_open=False,
    )
    return html.Div(
        [
            page_header(
                "Runs",
                "Train model variants in the background, compare their offline metrics, "
                "choose the active one per family.",
                actions=html.Div(device_badge(device), id=ids.RUNS_DEVICE),
            ),
            dbc.Row([dbc.Col(form, lg=5), dbc.Col(jobs, lg=7)]),
            tune_section(datasets, read_only),
            runs_card,
            vectors_export_section(root),
            image_features_section(root),
            modal,
            dcc.Store(id=ids.RUNS_REFRESH, data=0),
            dcc.Interval(id=DEVICE_POLL, interval=2000, max_intervals=90, disabled=device is not None),
        ]
    )


# -- callbacks ---------------------------------------------------------------------
@callback(
    Output(ids.RUNS_TUNING, "children"), Input(ids.RUNS_GRID, "selectedRows"), prevent_initial_call=True
)
def show_tuning(selected: list[dict] | None) -> Any:
    """The selected run's settings, what ``vectors="auto"`` chose and why, and its trials
    when it was tuned (read only)."""
    if not selected or len(selected) != 1:
        return html.Div()
    try:
        run = Registry(data_dir()).get(selected[0]["run_id"])
    except (OSError, RecsysError, KeyError) as exc:
        return error_alert(exc, "Could not read the run")
    try:
        summary = run_summary(run)
    except SHAPE_ERRORS as exc:  # run.json's settings or choice of another shape
        summary = error_alert(
            f"run {run.get('run_id')}: its run.json holds settings of another shape "
            f"({type(exc).__name__}: {exc})",
            "Damaged run record",
            dismissable=False,
        )
    return html.Div([summary, tuning_view(run)])


@callback(
    Output(ids.RUNS_FAMILY, "value"),
    Input(ids.RUNS_DATASET, "value"),
    State(ids.RUNS_FAMILY, "value"),
    prevent_initial_call=True,
)
def family_for_dataset(dataset: str | None, family: str | None) -> Any:
    """A catalogue-only dataset chosen: a family that needs interactions gives way to one that
    trains on the catalogue alone (:func:`family_for`); the family's settings follow."""
    got = family_for(dataset, family, family_options(), data_dir())
    return no_update if got == family else got


@callback(Output(ids.RUNS_EVAL_NOTE, "children"), Input(ids.RUNS_DATASET, "value"), prevent_initial_call=True)
def show_evaluation_note(dataset: str | None) -> str:
    """The line under "Evaluation" follows the dataset chosen (:func:`evaluation_note`)."""
    return evaluation_note(dataset, data_dir())


@callback(
    Output(ids.RUNS_PARAMS, "children"),
    Input(ids.RUNS_FAMILY, "value"),
    Input(ids.RUNS_PARAM_PRESET, "value"),
    prevent_initial_call=True,
)
def show_params(family: str | None, preset: str | None = None) -> list:
    """Regenerate the hyperparameter inputs for the chosen family and starting point."""
    return param_inputs(family, preset)


@callback(
    Output(ids.RUNS_SUBMIT_MSG, "children"),
    Input(ids.RUNS_SUBMIT, "n_clicks"),
    State(ids.RUNS_FAMILY, "value"),
    State(ids.RUNS_DATASET, "value"),
    State(ids.RUNS_LABEL, "value"),
    State({"type": ids.RUNS_PARAM, "name": ALL}, "value"),
    State({"type": ids.RUNS_PARAM, "name": ALL}, "id"),
    State({"type": ids.RUNS_SPLIT, "option": ALL}, "value"),
    State({"type": ids.RUNS_SPLIT, "option": ALL}, "id"),
    prevent_initial_call=True,
)
def start_training(n_clicks, family, dataset, label, values, param_ids, split_values=None, split_ids=None):
    """Validate the form and submit a training job."""
    if not n_clicks:
        return no_update
    if not family:
        return error_alert("Choose a model family.", "Nothing to train")
    if not dataset:
        return error_alert(
            [
                "No dataset chosen. Import one on the ",
                dcc.Link("Data page", href="/data"),
                " or wait for the demo build.",
            ],
            "Nothing to train on",
        )
    names = [pid["name"] for pid in (param_ids or [])]
    try:
        params, errors = parse_params(family, names, values or [])
    except RecsysError as exc:
        return error_alert(exc, "Cannot train this family")
    if errors:
        return error_alert(html.Ul([html.Li(e) for e in errors]), "Some parameters are invalid")
    try:
        split = split_from_form(split_values, split_ids)
    except RecsysError as exc:
        return error_alert(exc, "Check the evaluation split")
    try:
        job_id = submit_training(family, params, dataset, (label or "").strip() or None, split)
    except RecsysError as exc:
        return error_alert(exc, "Could not start the training job")
    changed = ", ".join(f"{k}={v}" for k, v in params.items()) or "the recommended settings shown in the form"
    return info_alert(
        [html.Strong("Training started. "), f"{family} on {dataset} with {changed} (job {job_id})."]
    )


@callback(Output(ids.RUNS_JOBS, "children"), Input(ids.JOBS_STORE, "data"), prevent_initial_call=True)
def show_jobs(store: dict | None) -> list:
    """Progress cards of the training, projection and demo jobs."""
    jobs = runs_jobs(store)
    if not jobs:
        return [empty_state("No jobs yet.", "Jobs you start here keep running when you leave the page.")]
    return job_cards(jobs)


@callback(
    Output(ids.RUNS_GRID, "rowData"),
    Input(ids.RUNS_VERSION_STORE, "data"),
    Input(ids.RUNS_REFRESH, "data"),
    prevent_initial_call=True,
)
def refresh_runs(_version, _refresh) -> list[dict]:
    """Reload the runs table when runs change on disk (damaged runs included, with why)."""
    return run_rows(Registry(data_dir()).list_runs(include_damaged=True), RUN_METRICS)


@callback(
    Output(ids.RUNS_ACTIVATE, "disabled"),
    Output(ids.RUNS_PROJECT, "disabled"),
    Output(ids.RUNS_DELETE, "disabled"),
    Input(ids.RUNS_GRID, "selectedRows"),
)
def enable_actions(selected: list[dict] | None):
    """Row actions are enabled while a run is selected (projection: embedding runs only)."""
    if not selected:
        return True, True, True
    row = selected[0]
    if row.get("status") == "damaged":  # it can only be deleted
        return True, True, False
    try:
        is_embedding = bool(Registry(data_dir()).get(row["run_id"]).get("is_embedding"))
    except RecsysError:
        return True, True, True
    return bool(row.get("active")), not is_embedding, False


@callback(
    Output(ids.RUNS_ACTION_MSG, "children"),
    Output(ids.RUNS_REFRESH, "data"),
    Input(ids.RUNS_ACTIVATE, "n_clicks"),
    Input(ids.RUNS_PROJECT, "n_clicks"),
    State(ids.RUNS_GRID, "selectedRows"),
    State(ids.RUNS_REFRESH, "data"),
    prevent_initial_call=True,
)
def run_action(_activate, _project, selected, refresh):
    """Activate the selected run, or submit a projection job for it."""
    if not selected:
        return error_alert("Select a run first.", "No run selected"), no_update
    run_id = selected[0]["run_id"]
    try:
        if ctx.triggered_id == ids.RUNS_ACTIVATE:
            meta = Registry(data_dir()).get(run_id)
            Registry(data_dir()).activate(run_id)
            ds = (meta.get("dataset") or {}).get("name") or "?"
            return info_alert(f"{run_label(meta)} is now the active {meta['family']} run of dataset {ds}."), (
                refresh or 0
            ) + 1
        if ctx.triggered_id == ids.RUNS_PROJECT:
            name = run_label(Registry(data_dir()).get(run_id))
            job_id = job_store().submit(
                "project", {"run_id": run_id, "method": "umap"}, label=f"Projection of {name}"
            )
            return info_alert(f"Computing the UMAP projection of {name} (job {job_id})."), no_update
    except RecsysError as exc:
        return error_alert(exc, "Action failed"), (refresh or 0) + 1
    return no_update, no_update


@callback(
    Output(ids.RUNS_DELETE_MODAL, "is_open"),
    Output(ids.RUNS_DELETE_TEXT, "children"),
    Input(ids.RUNS_DELETE, "n_clicks"),
    Input(ids.RUNS_DELETE_CANCEL, "n_clicks"),
    State(ids.RUNS_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def ask_delete(_delete, _cancel, selected):
    """Open the confirmation dialog for the selected run (or close it on Cancel)."""
    if ctx.triggered_id != ids.RUNS_DELETE or not selected:
        return False, no_update
    row = selected[0]
    text = [
        "Delete ",
        html.Strong(run_label(row)),
        f" ({row.get('family', '')})? ",
        "Its model, index and projection are removed from disk. This cannot be undone.",
    ]
    if row.get("active"):
        text.append(html.Div(delete_fallback_text(row["run_id"]), className="text-danger mt-2"))
    return True, text


def delete_fallback_text(run_id: str) -> str:
    """What deleting the active run ``run_id`` does to its dataset's active run of the family."""
    registry = Registry(data_dir())
    try:
        meta = registry.get(run_id)
    except RecsysError as exc:
        return str(exc)
    ds = (meta.get("dataset") or {}).get("name") or "?"
    family = meta.get("family")
    others = [
        r
        for r in registry.list_runs(family)
        if r["run_id"] != run_id and (r.get("dataset") or {}).get("name") == ds
    ]
    if others:
        nxt = others[0]
        return (
            f"It is the active {family} run of dataset {ds}: {run_label(nxt)} "
            f"(the newest other {family} run of {ds}) becomes active."
        )
    return (
        f"It is the active {family} run of dataset {ds} and no other {family} run of {ds} is left: "
        f"{ds} will have no active {family} run until you train or activate one."
    )


def delete_message(name: str, outcome: dict[str, Any], replacement: str | None = None) -> str:
    """The message after a delete: which run became active, or that none is left (``name`` and
    ``replacement``: the runs' names, :func:`recsys.registry.run_label`; the replacement's id
    when its name is not given)."""
    if not outcome.get("was_active"):
        return f"Deleted run {name}."
    if outcome.get("replacement"):
        return (
            f"Deleted run {name}; {replacement or outcome['replacement']} is now the active run of its dataset "
            "and family."
        )
    return f"Deleted run {name}; no other run of its dataset and family is left, so none is active."


@callback(
    Output(ids.RUNS_DELETE_MODAL, "is_open", allow_duplicate=True),
    Output(ids.RUNS_ACTION_MSG, "children", allow_duplicate=True),
    Output(ids.RUNS_REFRESH, "data", allow_duplicate=True),
    Output(ids.RUNS_GRID, "selectedRows"),
    Input(ids.RUNS_DELETE_CONFIRM, "n_clicks"),
    State(ids.RUNS_GRID, "selectedRows"),
    State(ids.RUNS_REFRESH, "data"),
    prevent_initial_call=True,
)
def confirm_delete(n_clicks, selected, refresh):
    """Delete the selected run once confirmed."""
    if not n_clicks or not selected:
        return False, no_update, no_update, no_update
    run_id = selected[0]["run_id"]
    registry = Registry(data_dir())
    try:
        name = run_label(registry.get(run_id))  # named as the grid names it, read before it goes
        outcome = registry.delete(run_id)
    except RecsysError as exc:
        return False, error_alert(exc, "Could not delete the run"), (refresh or 0) + 1, []
    replacement = None
    if outcome.get("replacement"):
        try:
            replacement = run_label(registry.get(outcome["replacement"]))
        except RecsysError:
            replacement = None
    color = "warning" if outcome.get("was_active") and not outcome.get("replacement") else "secondary"
    return False, info_alert(delete_message(name, outcome, replacement), color=color), (refresh or 0) + 1, []


@callback(
    Output(ids.RUNS_DEVICE, "children"),
    Output(DEVICE_POLL, "disabled"),
    Input(DEVICE_POLL, "n_intervals"),
    prevent_initial_call=True,
)
def poll_device(_n):
    """Show the compute device once the (out-of-process) probe has written it."""
    info = device_status(start=False)
    if info is None:
        return no_update, False
    return device_badge(info), True
