"""Data: import a dataset from a server path or an upload, map its columns, read its validation report."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from components import ids
from components.common import dataset_meta, list_datasets
from components.datasets import datasets_table, form_words, validation_report
from components.forms import choice_col, dom_id, form_job
from components.jobs import job_store
from components.layout import empty_state, error_alert, info_alert, page_header, section, viewer_note
from components.vectors_io import import_section as vectors_import_section
from recsys._io import atomic_create_bytes, atomic_write_bytes
from recsys.auth import can_edit
from recsys.config import data_dir, import_dir, resolve_import_path, upload_max_bytes
from recsys.errors import DataValidationError, RecsysError

logger = logging.getLogger(__name__)


dash.register_page(__name__, path="/data", title="RecSys Lab · Data", name="Data", order=5)

#: source value -> (label, what the path is, hint)
SOURCES: dict[str, tuple[str, str, str]] = {
    "online_retail": (
        "Online Retail (UCI)",
        "file",
        "The Online Retail .xlsx/.csv export: one row per invoice line.",
    ),
    "instacart": (
        "Instacart",
        "folder",
        "The folder with products.csv, aisles.csv, departments.csv and the order lines: "
        "order_products.csv (the sample), or Kaggle's order_products__prior.csv and "
        "order_products__train.csv with orders.csv (.csv.gz or .parquet too).",
    ),
    "rees46": (
        "REES46 e-commerce events",
        "file",
        "A month of events (event_time, event_type, product_id...).",
    ),
    "csv": (
        "Generic file (CSV, JSON lines, Excel, Parquet)",
        "file",
        "One row per event: .csv/.tsv/.txt/.dat, .jsonl/.json, .xlsx or .parquet, gzipped or zipped text too, a product feed in .xml (or a "
        "folder with interactions.csv and catalog.csv); map its columns below.",
    ),
}

#: Reading options of the generic import, as the form offers them: (option, label, kind, choices
#: or placeholder). The same options as ``recsys import csv`` (see README "Importing your own export").
READ_FORM: tuple[tuple[str, str, str, Any], ...] = (
    (
        "role",
        "The file holds",
        "radio",
        [("events", "events (catalogue optional)"), ("catalog", "a catalogue only")],
    ),
    (
        "catalog",
        "Catalogue file (optional, path on the server)",
        "text",
        "e.g. products.csv beside the events",
    ),
    (
        "sep",
        "Separator",
        "select",
        [("", "detect"), ("comma", "comma"), ("semicolon", "semicolon"), ("tab", "tab"), ("pipe", "pipe")]
        + [("::", "double colon (::)")],
    ),
    ("header", "Header row", "select", [("", "detect"), ("yes", "yes"), ("no", "no: the first row is data")]),
    ("columns", "Column names (for a file without header)", "text", "e.g. user_id,item_id,timestamp"),
    ("encoding", "Encoding", "text", "utf-8 (e.g. cp1252, latin-1)"),
    (
        "decimal",
        "Decimal mark of prices",
        "select",
        [("", "detect"), (".", "point: 1,234.50"), (",", "comma: 1.234,50")],
    ),
    ("tz", "Time zone of times written without one", "text", "UTC (e.g. UTC+8, Europe/London)"),
    ("session_gap", "Cut sessions on a gap (no session column)", "text", "e.g. 30m"),
    ("event_map", "Event codes", "text", "e.g. pv=view cart=cart buy=purchase"),
    (
        "infer_category",
        "Category when no column is mapped to it",
        "select",
        [("", "read off the titles"), ("off", "none")],
    ),
)


#: The path box's example per source kind: a path inside the import folder (relative to it), as
#: the label says; an absolute ``/path/to/...`` example sent newcomers outside it.
PATH_EXAMPLES = {"file": "e.g. shop/events.csv.gz", "folder": "e.g. instacart (the folder)"}


def options_from_form(
    values: list[Any] | None, option_ids: list[dict[str, str]] | None, events: str | None = None
) -> dict[str, Any]:
    """The reading-option controls -> ``import_dataset`` keyword arguments (blank ones left out).

    ``role`` "catalog" and ``catalog`` (a typed path, resolved inside the import folder) become
    ``catalog_path``; the others are the options of :func:`recsys.data.adapters.import_generic`.
    A relative catalogue path is looked for beside the ``events`` file first, as the field's
    placeholder says ("products.csv beside the events"), then from the import folder's root.
    """
    raw = {i["option"]: v for i, v in zip(option_ids or [], values or [])}
    out: dict[str, Any] = {}
    for key in ("sep", "encoding", "decimal", "tz", "session_gap"):
        value = (raw.get(key) or "").strip() if isinstance(raw.get(key), str) else raw.get(key)
        if value:
            out[key] = value
    if raw.get("header") in ("yes", "no"):
        out["header"] = raw["header"] == "yes"
    if (raw.get("columns") or "").strip():
        out["columns"] = [c.strip() for c in raw["columns"].split(",")]
    if (raw.get("event_map") or "").strip():
        out["event_map"] = raw["event_map"].replace(",", " ").split()
    if (raw.get("catalog") or "").strip():
        out["catalog_path"] = str(_catalog_path(raw["catalog"].strip(), events).resolve())
    if raw.get("role") == "catalog":
        out["role"] = "catalog"
    if raw.get("infer_category") == "off":
        out["infer_category"] = False
    return out


def _catalog_path(typed: str, events: str | None) -> Path:
    """The catalogue file a user typed: beside the events file (a relative path, when the events
    file is in the import folder and the catalogue is there), else from the import folder."""
    if events and events.strip() and not Path(typed).is_absolute():
        try:
            beside = resolve_import_path(events.strip()).parent / typed
            return resolve_import_path(str(beside))
        except DataValidationError:
            pass  # the events file is not readable, or nothing of that name beside it
    return resolve_import_path(typed)


def _split_role(path: str | None, options: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(events path, import options): a catalogue-only file travels as ``catalog_path``."""
    opts = dict(options)
    if opts.pop("role", None) == "catalog":
        opts["catalog_path"] = path
        return None, opts
    return path, opts


#: Largest upload the server accepts (``$RECSYS_MAX_UPLOAD_MB``, default 20 MB); bigger
#: exports go in the import folder. The server refuses a longer request before reading it.
UPLOAD_MAX_BYTES = upload_max_bytes()
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: Rows the Preview button parses (of the events file, or of a catalogue alone).
PREVIEW_ROWS = 1000
#: Rows read to guess the mapping (the table shows the first 5).
GUESS_ROWS = 200
_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".dat", ".dat.gz", ".parquet", ".pq", ".xlsx")
_SUFFIXES += (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".xml", ".xml.gz", ".zip")
#: Longest stored upload name (the browser's name is shortened, its suffix kept).
MAX_UPLOAD_NAME = 120


# -- plain helpers -----------------------------------------------------------------
def save_upload(contents: str, filename: str, root: Any = None) -> Path:
    """Decode a dcc.Upload data URL and store it under ``<import dir>/uploads/``.

    Raises
    ------
    DataValidationError
        Unsupported file type or content that is not a base64 data URL.
    DiskFullError
        The disk is full; nothing is stored.
    """
    name = Path(filename if isinstance(filename, str) and filename else "upload").name
    if not name.lower().endswith(_SUFFIXES):
        raise DataValidationError(f"unsupported file type; upload a {', '.join(_SUFFIXES)} file", file=name)
    try:
        if not isinstance(contents, str):
            raise ValueError("not a data URL")
        _header, encoded = contents.split(",", 1)
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise DataValidationError(f"the upload could not be decoded ({exc})", file=name) from exc
    if len(raw) > UPLOAD_MAX_BYTES:
        raise DataValidationError(
            f"the upload is {len(raw) / 1e6:.1f} MB; at most {UPLOAD_MAX_BYTES / 1e6:.0f} MB are accepted. "
            f"Put bigger files in the import folder {import_dir(root)} and type their path",
            file=name,
        )
    folder = import_dir(root) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    from recsys.stored import disk_full_guard

    path = folder / stored_upload_name(name)
    with disk_full_guard("the upload", folder):
        if atomic_create_bytes(path, raw) or path.read_bytes() == raw:
            return path
    # another file of that name is there (an earlier upload another import may be reading):
    # keep it, and store this one under its content's digest
    path = folder / stored_upload_name(name, tag=hashlib.sha256(raw).hexdigest()[:10])
    atomic_write_bytes(path, raw, what="the upload")
    return path


def stored_upload_name(name: str, tag: str = "") -> str:
    """The file name an upload is stored under: ASCII letters, digits, ``_.-`` only, at most
    ``MAX_UPLOAD_NAME`` characters with its type suffix kept (a browser may send a 255-byte name,
    which the temporary file of the atomic write would push past the file system's limit), never
    hidden; ``tag`` goes before the suffix (``events-<tag>.csv``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    suffix = next(s for s in sorted(_SUFFIXES, key=len, reverse=True) if safe.lower().endswith(s))
    tail = (f"-{tag}" if tag else "") + safe[len(safe) - len(suffix) :]
    stem = safe[: len(safe) - len(suffix)][: MAX_UPLOAD_NAME - len(tail)].lstrip(".")
    return (stem or "upload") + tail


def import_params(
    source: str,
    path: str,
    name: str,
    mapping: dict[str, str] | None,
    kind: str = "sessions",
    errors: str = "drop",
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the form and build the ``import`` job's parameters.

    ``options`` are the generic import's reading options (see :func:`options_from_form`).

    Raises
    ------
    DataValidationError
        Unknown source, invalid dataset name, or a path that does not exist / has the wrong kind.
    """
    if source not in SOURCES:
        raise DataValidationError(f"unknown source '{source}'; choose one of: {', '.join(SOURCES)}")
    if not name or not _SAFE_NAME.fullmatch(name):
        raise DataValidationError(
            "give the dataset a name of letters, digits, '_', '-' or '.' (starting with a letter or digit)"
        )
    if not path:
        raise DataValidationError("choose a file: type its path on the server or upload it")
    p = resolve_import_path(path, allow_dir=True)
    want = SOURCES[source][1]
    if want == "folder" and not p.is_dir():
        raise DataValidationError(f"{SOURCES[source][0]} needs the folder holding its CSV files", file=str(p))
    if want == "file" and p.is_dir() and source != "csv":
        raise DataValidationError("is a folder; choose the data file inside it", file=str(p))
    params: dict[str, Any] = {"source": source, "path": str(p.resolve()), "name": name}
    if source == "csv":
        # the form's dropdowns showed the guesses and the user chose: its mapping is the whole one
        params.update(mapping=mapping or {}, kind=kind, errors=errors, guess=False)
        if options:
            path_, opts = _split_role(params["path"], options)
            params.update(path=path_, **opts)
    return params


def mapping_controls(
    columns: list[str], rows: list[dict[str, Any]] | None = None, required: set[str] | None = None
) -> list:
    """One dropdown per schema field, pre-filled from the column names (and, given the first
    ``rows``, not guessing a column of names as an id); ``required`` (default: the form's
    required fields) get a star: a catalogue alone, or sessions cut on a gap, need no sequence."""
    from recsys.data.mapping import MAPPING_FIELDS, guess_fields  # recsys.data is off the start path

    samples = None if rows is None else {c: [r.get(c) for r in rows if c in r] for c in columns}
    guess = guess_fields(columns, samples)
    options = [{"label": c, "value": c} for c in columns]
    cols = []
    for field, starred, hint in MAPPING_FIELDS:
        needed = starred if required is None else field in required
        label = [field, html.Span(" *", className="text-danger") if needed else None]
        cols.append(
            dbc.Col(
                [
                    dbc.Label(label, className="param-label mb-0"),
                    dcc.Dropdown(
                        id={"type": ids.DATA_MAP, "field": field},
                        options=options,
                        value=(
                            ([guess[field]] if guess.get(field) else [])
                            if field == "category"
                            else guess.get(field)
                        ),
                        placeholder=hint or "(not in the file)",
                        clearable=not needed,
                        multi=field == "category",
                        className="mb-2",
                    ),
                ],
                md=4,
                sm=6,
            )
        )
    return [html.Div("Column mapping", className="form-subtitle mb-2"), dbc.Row(cols, className="g-2")]


def read_option_controls() -> dbc.Row:
    """The generic import's reading options (ids ``{"type": DATA_OPT, "option": name}``)."""
    cols = []
    for option, label, kind, spec in READ_FORM:
        cid = {"type": ids.DATA_OPT, "option": option}
        width = 12 if option in ("role", "catalog") else 6
        if kind in ("radio", "select"):
            value = spec[0][0] if kind == "radio" else ""
            cols.append(
                choice_col(
                    label,
                    cid,
                    spec,
                    value,
                    kind=kind,
                    label_class="param-label mb-0",
                    md=width,
                    className="mb-2",
                )
            )
            continue
        control = dbc.Input(id=cid, placeholder=spec, value="", debounce=True)
        cols.append(
            dbc.Col(
                [dbc.Label(label, html_for=dom_id(cid), className="param-label mb-0"), control],
                md=width,
                className="mb-2",
            )
        )
    return dbc.Row(cols, className="g-2 mb-2 read-options")


# -- layout ------------------------------------------------------------------------
def layout(**_query: Any) -> html.Div:
    form = section(
        "Import a dataset",
        [
            viewer_note(  # the form read no different to a viewer, with Import hidden (s34-u)
                "you can inspect a file on the server and preview how it parses; importing or "
                "uploading needs the editor role.",
                "data-viewer-note",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Source"),
                            dcc.Dropdown(
                                id=ids.DATA_SOURCE,
                                options=[{"label": v[0], "value": k} for k, v in SOURCES.items()],
                                value="csv",
                                clearable=False,
                            ),
                        ],
                        md=6,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Dataset name", html_for=ids.DATA_NAME),
                            dbc.Input(id=ids.DATA_NAME, placeholder="e.g. retail", value=""),
                        ],
                        md=6,
                    ),
                ],
                className="mb-3",
            ),
            html.Div(SOURCES["csv"][2], id=ids.DATA_SOURCE_HINT, className="small text-muted mb-3"),
            dbc.Label(
                ["Path in the import folder ", html.Code(str(import_dir()), className="import-folder")],
                html_for=ids.DATA_PATH,
            ),
            dbc.InputGroup(
                [
                    dbc.Input(id=ids.DATA_PATH, placeholder=PATH_EXAMPLES["file"], debounce=True),
                    dbc.Button("Inspect", id=ids.DATA_INSPECT, color="secondary", outline=True),
                ],
                className="mb-2",
            ),
            dcc.Upload(
                id=ids.DATA_UPLOAD,
                children=html.Div(
                    [
                        "or drop a file here / ",
                        html.A("choose one"),
                        html.Span(
                            f" (CSV, JSON lines, Excel, Parquet, XML feeds, gzipped text too; up to {UPLOAD_MAX_BYTES // (1024 * 1024)} MB)",
                            className="text-muted",
                        ),
                    ]
                ),
                max_size=UPLOAD_MAX_BYTES,
                className="upload-box mb-2 editor-only",
            ),
            html.Div(id=ids.DATA_UPLOAD_INFO, className="small mb-3"),
            html.Div(
                [
                    dbc.Row(
                        [
                            choice_col(
                                "Sequences are",
                                ids.DATA_KIND,
                                [("sessions", "sessions (ordered)"), ("baskets", "baskets / orders")],
                                "sessions",
                                md=6,
                            ),
                            choice_col(
                                "Bad rows",
                                ids.DATA_ERRORS,
                                [("drop", "drop and report"), ("raise", "stop at the first")],
                                "drop",
                                md=6,
                            ),
                        ],
                        className="mb-2",
                    ),
                    html.Details(
                        [html.Summary("Reading options (detected unless set)"), read_option_controls()],
                        id="data-read-options",
                        className="mb-2",
                    ),
                ],
                id=ids.DATA_CSV_OPTIONS,
            ),
            html.Div(id=ids.DATA_MAPPING, className="mb-3"),
            dbc.Button(
                "Preview parsed rows",
                id=ids.DATA_PREVIEW,
                color="secondary",
                outline=True,
                className="w-100 mb-2",
            ),
            html.Div(id=ids.DATA_PREVIEW_OUT, className="mb-2"),
            dbc.Button("Import", id=ids.DATA_IMPORT, color="primary", className="w-100 editor-only"),
            html.Div(id=ids.DATA_MESSAGE, className="mt-3"),
        ],
    )
    result = section(
        "Import progress and validation report",
        [
            html.Div(id=ids.DATA_JOB),
            html.Div(
                empty_state(
                    "Nothing imported in this session yet.",
                    "The validation report appears here: rows read, rows dropped and why.",
                ),
                id=ids.DATA_REPORT,
            ),
        ],
    )
    return html.Div(
        [
            page_header(
                "Data",
                "Import a catalogue and its interactions; every row is checked and the "
                "report says what was dropped and why.",
            ),
            dbc.Row([dbc.Col(form, lg=6), dbc.Col(result, lg=6)]),
            section("Stored datasets", html.Div(datasets_table(), id=ids.DATA_DATASETS)),
            vectors_import_section(read_only=not can_edit()),
            dcc.Store(id=ids.DATA_FILE_STORE),
            dcc.Store(id=ids.DATA_JOB_STORE),
        ]
    )


#: The mapping form's values, in the order the Preview and Import callbacks take them:
#: (chosen columns, their field ids, kind, errors, reading-option values, their ids).
_MAPPING_STATES = (
    State({"type": ids.DATA_MAP, "field": ALL}, "value"),
    State({"type": ids.DATA_MAP, "field": ALL}, "id"),
    State(ids.DATA_KIND, "value"),
    State(ids.DATA_ERRORS, "value"),
    State({"type": ids.DATA_OPT, "option": ALL}, "value"),
    State({"type": ids.DATA_OPT, "option": ALL}, "id"),
)


# -- callbacks ---------------------------------------------------------------------
@callback(
    Output(ids.DATA_SOURCE_HINT, "children"),
    Output(ids.DATA_CSV_OPTIONS, "style"),
    Output(ids.DATA_PATH, "placeholder"),
    Input(ids.DATA_SOURCE, "value"),
)
def source_hint(source: str | None):
    """What the chosen source expects, and the path box's example (a folder for Instacart); the
    CSV options only for the generic import."""
    _label, what, hint = SOURCES.get(source or "", ("", "file", ""))
    return hint, None if source == "csv" else {"display": "none"}, PATH_EXAMPLES[what]


@callback(
    Output(ids.DATA_FILE_STORE, "data"),
    Output(ids.DATA_UPLOAD_INFO, "children"),
    Output(ids.DATA_PATH, "value"),
    Input(ids.DATA_UPLOAD, "contents"),
    State(ids.DATA_UPLOAD, "filename"),
    prevent_initial_call=True,
)
def receive_upload(contents: str | None, filename: str | None):
    """Store an uploaded file on the server and put its path in the path box."""
    if not contents:
        return no_update, no_update, no_update
    try:
        path = save_upload(contents, filename or "upload.csv")
    except RecsysError as exc:  # a bad file, or a full disk (DiskFullError): nothing is stored
        return None, error_alert(exc, "Upload rejected"), no_update
    size = path.stat().st_size
    return (
        {"path": str(path)},
        html.Span(f"Uploaded {path.name} ({size / 1e6:.1f} MB).", className="text-success"),
        str(path),
    )


def _trigger() -> Any:
    """The id of the input that fired the running callback (None when called outside one)."""
    try:
        return ctx.triggered_id
    except dash.exceptions.MissingCallbackContextException:
        return None


@callback(
    Output(ids.DATA_MAPPING, "children"),
    Output(ids.DATA_MESSAGE, "children"),
    Output(ids.DATA_KIND, "value"),
    Input(ids.DATA_INSPECT, "n_clicks"),
    Input(ids.DATA_PATH, "value"),
    Input(ids.DATA_SOURCE, "value"),
    Input({"type": ids.DATA_OPT, "option": ALL}, "value"),
    State({"type": ids.DATA_OPT, "option": ALL}, "id"),
    prevent_initial_call=True,
)
def inspect_file(_n, path: str | None, source: str | None, opt_values=None, opt_ids=None):
    """Read the file's first rows as the import would (separator, header detected) and offer a
    column mapping (generic CSV only). A shop platform's orders export sets Kind to baskets when
    the file is chosen or inspected (the user may change it back; a reading option changed later
    leaves it as the user set it)."""
    if source != "csv" or not path:
        return [], None, no_update
    from recsys.data.mapping import required_fields
    from recsys.data.tables import peek_table

    try:
        options = options_from_form(opt_values, opt_ids, path)
        columns, rows, reading = peek_table(path, GUESS_ROWS, options=options)
        preview = rows[:5]
        if options.get("catalog_path"):
            cat_cols, cat_rows, _ = peek_table(options["catalog_path"])
            columns = columns + [c for c in cat_cols if c not in columns]
            rows += cat_rows
    except DataValidationError as exc:
        return [], error_alert(form_words(exc), "Cannot read this file"), no_update
    table = dbc.Table.from_dataframe(
        _frame(preview), size="sm", className="preview-table small mb-3", striped=True
    )
    chosen_file = _trigger() in (ids.DATA_INSPECT, ids.DATA_PATH)
    kind = reading["kind"] if chosen_file and reading.get("kind") else no_update
    detected = "; ".join(f"{k}: {v}" for k, v in reading.items() if k not in ("file", "kind"))
    return (
        [
            html.Div(f"{len(columns)} columns; first rows as read:", className="small text-muted mb-1"),
            html.Div(detected, className="small text-muted mb-1 reading-detected"),
            html.Div(table, className="preview-box"),
            *mapping_controls(columns, rows, required_fields(options)),
        ],
        None,
        kind,
    )


@callback(
    Output(ids.DATA_PREVIEW_OUT, "children"),
    Input(ids.DATA_PREVIEW, "n_clicks"),
    State(ids.DATA_SOURCE, "value"),
    State(ids.DATA_PATH, "value"),
    *_MAPPING_STATES,
    prevent_initial_call=True,
)
def preview_import(
    n_clicks, source, path, chosen, map_ids, kind="sessions", errors="drop", opt_values=None, opt_ids=None
):
    """Parse the first rows with the form's mapping and options and show what the import would
    store: the report and the first parsed rows. Reads only; stores nothing."""
    from recsys.data.adapters import import_dataset
    from recsys.data.mapping import mapping_from_choices, required_fields

    if not n_clicks or source != "csv":
        return (
            no_update
            if not n_clicks
            else info_alert("The preview is for the generic CSV import.", color="info")
        )
    try:
        options = options_from_form(opt_values, opt_ids, path)
        if not map_ids:
            raise DataValidationError("inspect the file first (press Inspect) and map its columns")
        mapping = mapping_from_choices([m["field"] for m in map_ids], chosen or [], required_fields(options))
        p = resolve_import_path((path or "").strip(), allow_dir=True)
        events, opts = _split_role(str(p), options)
        ds = import_dataset(
            "csv",
            events,
            name="preview",
            mapping=mapping,
            kind=kind or "sessions",
            errors=errors or "drop",
            dry_run=True,
            preview_rows=PREVIEW_ROWS,
            guess=False,
            **opts,
        )
    except RecsysError as exc:
        return error_alert(form_words(exc), "The import would stop here")
    meta = {"name": "preview", "kind": ds.kind, "report": ds.report.to_dict(), "summary": ds.summary()}
    out: list = [
        html.Div(
            f"Preview of the first {PREVIEW_ROWS:,} rows; nothing is stored until you press Import.",
            className="small text-muted mb-1",
        ),
        *validation_report(meta),
    ]
    from recsys.data.schema import in_natural_order

    # sessions as a person reads them (by time, then "s2" before "s10"), not in stored string order
    events = in_natural_order(ds.interactions)
    for title, frame in (("Parsed events", events), ("Parsed catalogue", ds.catalog)):
        if len(frame):
            records = frame.head(5).astype(str).to_dict("records")
            out.append(html.Div(title, className="fw-semibold mt-2"))
            out.append(
                html.Div(
                    dbc.Table.from_dataframe(
                        _frame(records), size="sm", className="preview-table small", striped=True
                    ),
                    className="preview-box",
                )
            )
    return out


@callback(
    Output(ids.DATA_MESSAGE, "children", allow_duplicate=True),
    Output(ids.DATA_JOB_STORE, "data"),
    Input(ids.DATA_IMPORT, "n_clicks"),
    State(ids.DATA_SOURCE, "value"),
    State(ids.DATA_PATH, "value"),
    State(ids.DATA_NAME, "value"),
    *_MAPPING_STATES,
    prevent_initial_call=True,
)
def start_import(
    n_clicks,
    source,
    path,
    name,
    chosen,
    map_ids,
    kind="sessions",
    errors="drop",
    opt_values=None,
    opt_ids=None,
):
    """Validate the form and submit an ``import`` job."""
    from recsys.data.mapping import mapping_from_choices, required_fields

    if not n_clicks:
        return no_update, no_update
    try:
        mapping = None
        options: dict[str, Any] = {}
        if source == "csv":
            options = options_from_form(opt_values, opt_ids, path)
            if not map_ids:
                raise DataValidationError("inspect the file first (press Inspect) and map its columns")
            mapping = mapping_from_choices(
                [m["field"] for m in map_ids], chosen or [], required_fields(options)
            )
        params = import_params(
            source,
            (path or "").strip(),
            (name or "").strip(),
            mapping,
            kind or "sessions",
            errors or "drop",
            options,
        )
        if params["name"] in list_datasets(data_dir()):
            note = f"Dataset '{params['name']}' exists: it is replaced only if the import succeeds. "
        else:
            note = ""
        job_id = job_store().submit("import", params, label=f"Import {params['name']}")
    except RecsysError as exc:
        return error_alert(form_words(exc), "Cannot import"), no_update
    return info_alert(f"{note}Import started (job {job_id}).", color="info"), {
        "job_id": job_id,
        "name": params["name"],
    }


@callback(
    Output(ids.DATA_JOB, "children"),
    Output(ids.DATA_REPORT, "children"),
    Output(ids.DATA_DATASETS, "children"),
    Output(ids.DATA_MESSAGE, "children", allow_duplicate=True),
    Input(ids.JOBS_STORE, "data"),
    Input(ids.DATA_JOB_STORE, "data"),
    State(ids.DATA_MESSAGE, "children"),
    prevent_initial_call=True,
)
def show_import(store: dict | None, current: dict | None, message_now: Any = None):
    """Progress of this page's import job; when done, its validation report or its error.

    The form's "Import started (job …)" message is replaced once the job ends (it stayed, in
    blue, beside a report that said the dataset was stored); any other message is left."""
    if not current:
        return no_update, no_update, no_update, no_update
    job, card = form_job(store, current["job_id"])
    if job is None:
        return card, no_update, no_update, no_update
    status = job.get("status")
    started = f"Import started (job {current['job_id']})" in str(message_now or "")
    if status == "done":
        ended = no_update
        if started:
            ended = info_alert(
                [
                    f"Imported dataset '{current['name']}' (its report is beside this form). Next: ",
                    dcc.Link("train a model on the Runs page", href="/runs"),
                    ".",
                ],
                color="success",
            )
        try:
            meta = dataset_meta(current["name"], data_dir())
        except RecsysError as exc:
            return card, error_alert(exc, "The report could not be read"), datasets_table(), ended
        return card, validation_report(meta), datasets_table(), ended
    ended = [] if started else no_update  # the report says how it ended
    if status in ("failed", "error", "interrupted"):
        message = form_words(job.get("error") or "the import stopped without a message; see the job log")
        return (
            card,
            error_alert(message, "The import failed: nothing stored was changed", dismissable=False),
            no_update,
            ended,
        )
    if status == "cancelled":
        return (
            card,
            info_alert("Import cancelled: nothing stored was changed.", color="warning"),
            no_update,
            ended,
        )
    return card, no_update, no_update, no_update


def _frame(records: list[dict[str, Any]]):
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        frame[col] = frame[col].astype(str).str.slice(0, 40)
    return frame
