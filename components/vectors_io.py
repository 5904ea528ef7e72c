"""Bring your own vectors in the UI: the Data page's "Import vectors" form, the Runs page's export
download and MLflow link.

The form submits an ``import_vectors`` background job (:func:`recsys.external.import_vectors_job`);
every path typed here is resolved inside the import folder (:func:`recsys.config.resolve_import_path`)
before the job starts, and again inside the job. The export builds the files of
:func:`recsys.external.export_run` in a temporary folder and sends them as one zip.
"""

from __future__ import annotations

import logging
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from components import ids
from components.common import list_datasets
from components.forms import choice_col, form_job
from components.jobs import job_store
from components.layout import empty_state, error_alert, info_alert, section, viewer_note
from recsys.config import data_dir, import_dir, resolve_import_path
from recsys.errors import DataValidationError, RecsysError
from recsys.fallback import served_lines
from recsys.registry import MAX_LABEL, label_problem

logger = logging.getLogger(__name__)

FORMAT_OPTIONS = [
    {"label": "from the file name", "value": "auto"},
    {"label": ".npy matrix (+ ids file)", "value": "npy"},
    {"label": "Parquet (item_id + vector)", "value": "parquet"},
    {"label": "CSV (item_id + vector)", "value": "csv"},
    {"label": "word2vec text", "value": "word2vec"},
    {"label": "word2vec binary", "value": "word2vec-binary"},
    {"label": "Projector vectors.tsv (+ metadata.tsv)", "value": "projector"},
]
EXPORT_OPTIONS = [
    {"label": "Embedding Projector (vectors.tsv, metadata.tsv, config)", "value": "projector"},
    {"label": "Parquet (item_id, vector)", "value": "parquet"},
    {"label": "word2vec text", "value": "word2vec"},
    {"label": ".npy (vectors + ids)", "value": "npy"},
]
#: form field -> (label, placeholder, import_vectors keyword)
_PATH_FIELDS = (
    (ids.VIO_PATH, "Vectors file", "vectors.npy, vectors.parquet, model.bin, vectors.tsv ...", "path"),
    (ids.VIO_IDS, "Ids file (npy / Projector)", "item_ids.txt, item_ids.npy or metadata.tsv", "ids"),
    (ids.VIO_INDEX, "hnswlib index (optional)", "index.bin built with hnswlib save_index", "index"),
    (ids.VIO_QUERY, "Query vectors (optional)", "a second space seeds are looked up by", "query_vectors"),
    (ids.VIO_QUERY_IDS, "Query ids (optional)", "ids of the query vectors, when they need them", "query_ids"),
)


# -- plain helpers -------------------------------------------------------------------
def import_params(
    dataset: str | None,
    name: str | None,
    paths: dict[str, str | None],
    fmt: str | None,
    metric: str | None,
    errors: str | None,
    root: Any = None,
) -> dict[str, Any]:
    """The ``import_vectors`` job parameters of the form, checked; raises DataValidationError.

    Paths are checked inside the import folder here (a clear message before any job
    starts) and passed on as typed; the job resolves them again.
    """
    if not dataset:
        raise DataValidationError("choose the dataset whose catalogue the vectors belong to")
    if dataset not in list_datasets(data_dir(root)):
        raise DataValidationError(f"dataset '{dataset}' does not exist; import it first")
    if not (name or "").strip():
        raise DataValidationError("give the imported run a name (e.g. 'clip-vit-b32 2024-05')")
    problem = label_problem(name, "imported run's name")
    if problem:
        raise DataValidationError(problem)
    if not (paths.get("path") or "").strip():
        raise DataValidationError(
            f"type the path of the vectors file in the import folder {import_dir(root)}"
        )
    params: dict[str, Any] = {"dataset": dataset, "name": name.strip()}
    for key, typed in paths.items():
        if typed and typed.strip():
            try:
                resolve_import_path(typed, root)
            except DataValidationError as exc:
                label = next(f[1] for f in _PATH_FIELDS if f[3] == key)
                raise DataValidationError(f"{label}: {exc}") from None
            params[key] = typed.strip()
    if fmt and fmt != "auto":
        params["fmt"] = fmt
    params["metric"] = metric if metric in ("cosine", "ip") else "cosine"
    params["errors"] = errors if errors in ("raise", "drop") else "raise"
    return params


def report_view(result: dict[str, Any]) -> list:
    """The validation report of a finished import as a small table and its warnings."""
    report = result.get("report") or {}

    def count(key: str) -> str:
        v = report.get(key) or {}
        ex = ", ".join(v.get("examples") or [])
        return f"{v.get('count', 0):,}" + (f" (e.g. {ex})" if v.get("count") and ex else "")

    missing = report.get("catalog_items_without_vector") or {}
    rows = [
        ("File", f"{report.get('file')} ({report.get('format')})"),
        ("Rows read / kept", f"{report.get('rows', 0):,} / {report.get('rows_kept', 0):,}"),
        ("Dimension", str(report.get("dimension"))),
        ("Ids unknown to the catalogue", count("unknown_ids")),
        ("Duplicate ids", count("duplicate_ids")),
        ("NaN / inf rows", count("nan_rows")),
        ("All-zero rows", count("zero_rows")),
        ("Catalogue items without a vector", f"{missing.get('count', 0):,} of {missing.get('of', 0):,}"),
    ]
    rows += [("Served as seeds", line) for line in served_lines(report.get("served") or {})]
    index = report.get("index")
    if index:
        rows.append(("Index", f"{index.get('status')}: {index.get('reason')}"))
    table = dbc.Table(
        [html.Tbody([html.Tr([html.Th(k, className="fw-normal text-muted"), html.Td(v)]) for k, v in rows])],
        size="sm",
        className="mb-2",
    )
    out: list = [
        info_alert(f"Run '{result.get('label')}' ({result.get('run_id')}) stored.", dismissable=False),
        table,
    ]
    for warning in report.get("warnings") or []:
        out.append(html.Div(f"⚠ {warning}", className="small text-warning-emphasis"))
    return out


def embedding_run_options(root: Any = None) -> list[dict[str, str]]:
    """Dropdown options: every run with vectors, newest first."""
    from recsys.registry import Registry

    try:
        runs = Registry(data_dir(root)).list_runs()
    except (OSError, RecsysError):
        return []
    from components.pickers import run_options  # named as every run picker names them

    return run_options([r for r in runs if r.get("is_embedding")])


# -- layout pieces -------------------------------------------------------------------
def import_section(root: Any = None, read_only: bool = False) -> Any:
    """The Data page's "Import vectors" card; ``read_only`` (a viewer): the fields are a disabled
    fieldset and a line says importing needs the editor role (Import is hidden)."""
    datasets = list_datasets(data_dir(root))
    path_rows = [
        dbc.Col(
            [
                dbc.Label(label, html_for=cid, className="small"),
                dbc.Input(id=cid, placeholder=hint, size="sm"),
            ],
            md=6,
        )
        for cid, label, hint, _ in _PATH_FIELDS
    ]
    form = [
        html.Div(
            [
                "Vectors trained elsewhere (PyTorch, CLIP, your own Word2Vec) become a run of family "
                "'external' usable in Explore, Map, Compare and the API. Files are read from the import "
                f"folder {import_dir(root)}.",
            ],
            className="small text-muted mb-3",
        ),
        # Import vectors is hidden for a viewer: the form said nothing of it (s41-w)
        viewer_note("importing vectors needs the editor role.", "vio-viewer-note"),
        html.Fieldset(  # read-only for a viewer, as the Train and Tune forms (s41-w)
            [
                dbc.Row(
                    [
                        dbc.Col(
                            [
                                dbc.Label("Dataset", className="small"),
                                dcc.Dropdown(
                                    id=ids.VIO_DATASET,
                                    options=datasets,
                                    value="demo"
                                    if "demo" in datasets
                                    else (datasets[0] if datasets else None),
                                    placeholder="import a dataset first",
                                ),
                            ],
                            md=6,
                        ),
                        dbc.Col(
                            [
                                dbc.Label("Run name", html_for=ids.VIO_NAME, className="small"),
                                dbc.Input(
                                    id=ids.VIO_NAME,
                                    placeholder="e.g. clip-vit-b32",
                                    size="sm",
                                    maxLength=MAX_LABEL,
                                ),
                            ],
                            md=6,
                        ),
                    ],
                    className="g-2 mb-2",
                ),
                dbc.Row(path_rows, className="g-2 mb-2"),
                dbc.Row(
                    [
                        dbc.Col(
                            [
                                dbc.Label("Format", className="small"),
                                dcc.Dropdown(
                                    id=ids.VIO_FORMAT, options=FORMAT_OPTIONS, value="auto", clearable=False
                                ),
                            ],
                            md=6,
                        ),
                        choice_col(
                            "Similarity",
                            ids.VIO_METRIC,
                            [("cosine", "cosine"), ("ip", "inner product")],
                            "cosine",
                            label_class="small",
                            md=3,
                        ),
                        choice_col(
                            "NaN rows, duplicates",
                            ids.VIO_ERRORS,
                            [("raise", "refuse"), ("drop", "drop")],
                            "raise",
                            label_class="small",
                            md=3,
                        ),
                    ],
                    className="g-2 mb-3",
                ),
            ],
            disabled=read_only,
            className="train-form-fields",
        ),
        dbc.Button("Import vectors", id=ids.VIO_SUBMIT, color="primary", className="w-100 editor-only"),
        html.Div(id=ids.VIO_MESSAGE, className="mt-3"),
        html.Div(id=ids.VIO_JOB),
        html.Div(
            empty_state("No vectors imported in this session.", "The validation report appears here."),
            id=ids.VIO_REPORT,
        ),
        dcc.Store(id=ids.VIO_JOB_STORE),
    ]
    return section("Import vectors", form)


def export_section(root: Any = None) -> Any:
    """The Runs page's "Export vectors" card (a download) with the run's MLflow link."""
    options = embedding_run_options(root)
    return section(
        "Export vectors",
        [
            dbc.Row(
                [
                    dbc.Col(
                        dcc.Dropdown(
                            id=ids.VIO_EXPORT_RUN,
                            options=options,
                            value=options[0]["value"] if options else None,
                            placeholder="no run with vectors yet",
                        ),
                        md=5,
                    ),
                    dbc.Col(
                        dcc.Dropdown(
                            id=ids.VIO_EXPORT_FORMAT,
                            options=EXPORT_OPTIONS,
                            value="projector",
                            clearable=False,
                        ),
                        md=5,
                    ),
                    dbc.Col(
                        dbc.Button("Download", id=ids.VIO_EXPORT_BUTTON, color="secondary", outline=True),
                        md=2,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(
                "The Projector export loads in TensorFlow's standalone Embedding Projector "
                "(projector.tensorflow.org: Load, or serve the folder and open it with ?config=projector_config.json). "
                "Every export holds export.json with the command that imports it back.",
                className="small text-muted",
            ),
            html.Div(id=ids.VIO_EXPORT_MSG, className="mt-2"),
            html.Div(id=ids.VIO_MLFLOW_LINK, className="small mt-2"),
            dcc.Download(id=ids.VIO_DOWNLOAD),
        ],
    )


# -- callbacks -----------------------------------------------------------------------
@callback(
    Output(ids.VIO_MESSAGE, "children"),
    Output(ids.VIO_JOB_STORE, "data"),
    Input(ids.VIO_SUBMIT, "n_clicks"),
    State(ids.VIO_DATASET, "value"),
    State(ids.VIO_NAME, "value"),
    State(ids.VIO_PATH, "value"),
    State(ids.VIO_IDS, "value"),
    State(ids.VIO_INDEX, "value"),
    State(ids.VIO_QUERY, "value"),
    State(ids.VIO_QUERY_IDS, "value"),
    State(ids.VIO_FORMAT, "value"),
    State(ids.VIO_METRIC, "value"),
    State(ids.VIO_ERRORS, "value"),
    prevent_initial_call=True,
)
def start_vectors_import(
    n_clicks, dataset, name, path, ids_path, index, query, query_ids, fmt, metric, errors
):
    """Check the form and submit an ``import_vectors`` job (changes server state)."""
    if not n_clicks:
        return no_update, no_update
    paths = {"path": path, "ids": ids_path, "index": index, "query_vectors": query, "query_ids": query_ids}
    try:
        params = import_params(dataset, name, paths, fmt, metric, errors)
        job_id = job_store().submit("import_vectors", params, label=f"Import vectors {params['name']}")
    except RecsysError as exc:
        return error_alert(exc, "Cannot import the vectors"), no_update
    return info_alert(f"Import started (job {job_id}).", color="info"), {"job_id": job_id}


@callback(
    Output(ids.VIO_JOB, "children"),
    Output(ids.VIO_REPORT, "children"),
    Input(ids.JOBS_STORE, "data"),
    Input(ids.VIO_JOB_STORE, "data"),
    prevent_initial_call=True,
)
def show_vectors_import(store: dict | None, current: dict | None):
    """Progress of this form's job; when done, the validation report, else the error (read only)."""
    if not current:
        return no_update, no_update
    job, card = form_job(store, current["job_id"])
    if job is None:
        return card, no_update
    status = job.get("status")
    if status == "done":
        try:  # the full result: the jobs store keeps a shortened copy
            result = job_store().get(current["job_id"]).get("result") or {}
        except RecsysError:
            result = job.get("result") or {}
        return card, report_view(result)
    if status in ("failed", "error", "interrupted"):
        message = job.get("error") or "the import stopped without a message; see the job log"
        return card, error_alert(
            message, "The vectors were not imported: nothing was stored", dismissable=False
        )
    if status == "cancelled":
        return card, info_alert("Import cancelled: nothing was stored.", color="warning")
    # queued or running: the last import's report (a failure, or another run stored) stayed here
    # under the new job's card and read as its outcome
    return card, empty_state("Import running…", "The validation report appears here when the job ends.")


@callback(
    Output(ids.VIO_DOWNLOAD, "data"),
    Output(ids.VIO_EXPORT_MSG, "children"),
    Input(ids.VIO_EXPORT_BUTTON, "n_clicks"),
    State(ids.VIO_EXPORT_RUN, "value"),
    State(ids.VIO_EXPORT_FORMAT, "value"),
    prevent_initial_call=True,
)
def download_export(n_clicks, run_id, fmt):
    """Send the chosen run's vectors as a zip in the chosen format (read only)."""
    if not n_clicks:
        return no_update, no_update
    if not run_id:
        return no_update, error_alert("Choose a run with vectors first.", "No run chosen")
    from recsys.external import export_zip

    try:
        name, payload = export_zip(run_id, fmt or "projector", data_dir())
    except RecsysError as exc:
        return no_update, error_alert(exc, "Export failed")
    return dcc.send_bytes(payload, name), None


@callback(
    Output(ids.VIO_EXPORT_RUN, "options"),
    Input(ids.RUNS_VERSION_STORE, "data"),
    prevent_initial_call=True,
)
def refresh_export_runs(_version):
    """Keep the export dropdown in step with the stored runs (read only)."""
    return embedding_run_options()


@callback(Output(ids.VIO_MLFLOW_LINK, "children"), Input(ids.VIO_EXPORT_RUN, "value"))
def show_mlflow_link(run_id):
    """The chosen run's MLflow entry: a link when RECSYS_MLFLOW_UI is set (read only)."""
    if not run_id:
        return None
    from recsys import tracking
    from recsys.registry import Registry

    try:
        meta = Registry(data_dir()).get(run_id)
    except RecsysError:
        return None
    link = tracking.run_link(meta)
    if link:
        return html.A("Open this run in MLflow ↗", href=link, target="_blank", rel="noopener")
    info = meta.get("mlflow") or {}
    if info.get("run_id"):
        return html.Span(
            f"MLflow run {info['run_id']} (set RECSYS_MLFLOW_UI to the MLflow UI's address to link it)",
            className="text-muted",
        )
    return None
