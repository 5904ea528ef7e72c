"""Data: import a dataset from a server path or an upload, map its columns, read its validation report."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, dcc, html, no_update

from components import ids
from components.common import dataset_meta, list_datasets
from components.jobs import job_card, job_store
from components.layout import empty_state, error_alert, info_alert, page_header, section
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
        "The folder with orders.csv, order_products__prior.csv, products.csv...",
    ),
    "rees46": (
        "REES46 e-commerce events",
        "file",
        "A month of events (event_time, event_type, product_id...).",
    ),
    "csv": (
        "Generic CSV / Parquet",
        "file",
        "One row per event (or a folder with interactions.csv and catalog.csv); map its columns below.",
    ),
}

#: Schema fields the generic-CSV mapping offers, with whether each is required.
MAPPING_FIELDS: tuple[tuple[str, bool, str], ...] = (
    ("sequence_id", True, "session, order or basket id"),
    ("item_id", True, "product id"),
    ("user_id", False, ""),
    ("timestamp", False, "ISO 8601 or Unix time"),
    ("event_type", False, "view / cart / purchase"),
    ("quantity", False, ""),
    ("title", False, ""),
    ("category", False, "path like Women > Shoes"),
    ("brand", False, ""),
    ("gender", False, ""),
    ("price", False, ""),
    ("adult", False, ""),
    ("description", False, ""),
    ("image_url", False, ""),
)

#: Largest upload the server accepts (``$RECSYS_MAX_UPLOAD_MB``, default 20 MB); bigger
#: exports go in the import folder. The server refuses a longer request before reading it.
UPLOAD_MAX_BYTES = upload_max_bytes()
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".parquet", ".pq", ".xlsx")


# -- plain helpers -----------------------------------------------------------------
def save_upload(contents: str, filename: str, root: Any = None) -> Path:
    """Decode a dcc.Upload data URL and store it under ``<import dir>/uploads/``.

    Raises
    ------
    DataValidationError
        Unsupported file type or content that is not a base64 data URL.
    """
    name = Path(filename or "upload").name
    if not name.lower().endswith(_SUFFIXES):
        raise DataValidationError(f"unsupported file type; upload a {', '.join(_SUFFIXES)} file", file=name)
    try:
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
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    path = folder / safe
    path.write_bytes(raw)
    return path


def peek_columns(path: str | Path, n_rows: int = 5) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and first rows of a CSV / CSV.gz / Parquet file (without reading it all).

    Raises
    ------
    DataValidationError
        Missing file, a folder, an unsupported type, or an unreadable file.
    """
    import pandas as pd

    p = resolve_import_path(str(path), allow_dir=True)
    src = str(p)
    if p.is_dir():
        files = _folder_files(p)
        if "interactions" not in files:
            raise DataValidationError(
                "no interactions.csv (or .csv.gz/.parquet) in this folder; choose the events file itself",
                file=src,
            )
        columns, rows = peek_columns(files["interactions"], n_rows)
        if "catalog" in files:
            cat_cols, _ = peek_columns(files["catalog"], n_rows)
            columns = columns + [c for c in cat_cols if c not in columns]
        return columns, rows
    lower = p.name.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(p)
            columns = list(pf.schema_arrow.names)
            head = next(pf.iter_batches(batch_size=n_rows), None)
            rows = head.to_pandas().head(n_rows) if head is not None else pd.DataFrame(columns=columns)
        elif lower.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
            sep = "\t" if ".tsv" in lower else ","
            rows = pd.read_csv(
                p,
                sep=sep,
                nrows=n_rows,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
                compression="infer",
            )
            columns = [str(c).strip() for c in rows.columns]
            rows.columns = columns
        else:
            raise DataValidationError("unsupported file type; use .csv, .csv.gz, .tsv or .parquet", file=src)
    except DataValidationError:
        raise
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", file=src
        ) from exc
    except Exception as exc:  # pandas/pyarrow raise many types for broken files
        raise DataValidationError(
            f"the file could not be read ({type(exc).__name__}: {exc})", file=src
        ) from exc
    if not columns:
        raise DataValidationError("the file has no header", file=src)
    return columns, rows.astype(str).to_dict("records")


def _folder_files(folder: Path) -> dict[str, Path]:
    """``interactions.*`` and ``catalog.*`` in a folder (what the generic import reads there)."""
    found: dict[str, Path] = {}
    for stem in ("catalog", "interactions"):
        for suffix in (".csv", ".csv.gz", ".parquet", ".pq", ".tsv"):
            try:  # each file is checked like a typed path: a link must not lead out
                found[stem] = resolve_import_path(str(folder / f"{stem}{suffix}"))
            except DataValidationError:
                continue
            break
    return found


def guess_mapping(columns: list[str]) -> dict[str, str | None]:
    """Schema field -> file column, where a column's name matches a field (case/spacing ignored)."""
    norm = {re.sub(r"[^a-z0-9]", "", c.lower()): c for c in columns}
    aliases = {
        "sequence_id": ("sequenceid", "sessionid", "session", "orderid", "basketid", "invoiceno", "invoice"),
        "item_id": ("itemid", "productid", "sku", "stockcode", "item", "product"),
        "user_id": ("userid", "customerid", "user", "customer"),
        "timestamp": ("timestamp", "time", "eventtime", "date", "datetime", "invoicedate"),
        "event_type": ("eventtype", "event", "action"),
        "quantity": ("quantity", "qty"),
        "title": ("title", "name", "productname", "description_short"),
        "category": ("category", "categorycode", "categorypath"),
        "brand": ("brand",),
        "gender": ("gender", "sex"),
        "price": ("price", "unitprice"),
        "adult": ("adult",),
        "description": ("description", "desc"),
        "image_url": ("imageurl", "image", "imagelink"),
    }
    out: dict[str, str | None] = {}
    used: set[str] = set()
    for field, names in aliases.items():
        out[field] = None
        for alias in names:
            col = norm.get(alias)
            if col and col not in used:
                out[field] = col
                used.add(col)
                break
    return out


def mapping_from_form(fields: list[str], chosen: list[str | None]) -> dict[str, str]:
    """Form dropdowns (schema field -> file column) -> loader mapping (file column -> schema field).

    Raises
    ------
    DataValidationError
        A required field is not mapped, or one column is mapped to two fields.
    """
    mapping: dict[str, str] = {}
    required = {f for f, req, _ in MAPPING_FIELDS if req}
    for field, column in zip(fields, chosen):
        if not column:
            if field in required:
                raise DataValidationError(f"map a column to the required field '{field}'", column=field)
            continue
        if column in mapping:
            raise DataValidationError(
                f"column '{column}' is mapped to both '{mapping[column]}' and '{field}'; map it once",
                column=column,
            )
        mapping[column] = field
    return mapping


def import_params(
    source: str,
    path: str,
    name: str,
    mapping: dict[str, str] | None,
    kind: str = "sessions",
    errors: str = "drop",
) -> dict[str, Any]:
    """Check the form and build the ``import`` job's parameters.

    Raises
    ------
    DataValidationError
        Unknown source, invalid dataset name, or a path that does not exist / has the wrong kind.
    """
    if source not in SOURCES:
        raise DataValidationError(f"unknown source '{source}'; choose one of: {', '.join(SOURCES)}")
    if not name or not _SAFE_NAME.match(name):
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
        params.update(mapping=mapping or {}, kind=kind, errors=errors)
    return params


def validation_report(meta: dict[str, Any]) -> list:
    """The stored report of a dataset as readable components (counts, drops, warnings)."""
    report = meta.get("report", {})
    summary = meta.get("summary", {})
    read = report.get("rows_read", {})
    dropped = report.get("rows_dropped", {})
    facts = [
        ("Items", summary.get("items")),
        ("Interactions", summary.get("interactions")),
        ("Sequences", summary.get("sequences")),
        ("Categories", summary.get("categories")),
        ("Brands", summary.get("brands")),
        ("Unknown items (dropped events)", report.get("unknown_items", 0)),
        ("Duplicate item ids (dropped)", report.get("duplicate_ids", 0)),
        ("Items without price", report.get("missing_prices", 0)),
    ]
    rows = [
        html.Tr([html.Td(k), html.Td(f"{v:,}" if isinstance(v, int) else str(v), className="text-end")])
        for k, v in facts
        if v is not None
    ]
    rows += [
        html.Tr([html.Td(f"Rows read: {k}"), html.Td(f"{v:,}", className="text-end")])
        for k, v in read.items()
    ]
    out: list = [
        html.H6(
            [
                f"Dataset “{meta.get('name', '')}”",
                dbc.Badge(meta.get("kind", ""), color="info", className="ms-2"),
            ]
        ),
        dbc.Table(html.Tbody(rows), size="sm", className="report-table", striped=True),
    ]
    if dropped:
        out.append(html.Div("Rows dropped", className="fw-semibold mt-2"))
        out.append(
            dbc.Table(
                html.Tbody(
                    [
                        html.Tr([html.Td(reason), html.Td(f"{n:,}", className="text-end")])
                        for reason, n in dropped.items()
                    ]
                ),
                size="sm",
                className="report-table",
            )
        )
    else:
        out.append(html.Div("No rows dropped.", className="text-success small"))
    for warning in report.get("warnings", []):
        out.append(dbc.Alert(warning, color="warning", className="py-2 small mb-2"))
    return out


def datasets_table(root: Any = None) -> Any:
    """The stored datasets with their sizes."""
    root = data_dir(root)
    names = list_datasets(root)
    if not names:
        return empty_state("No datasets stored yet.", "Import one above, or wait for the demo build.")
    body = []
    for name in names:
        try:
            meta = dataset_meta(name, root)
        except RecsysError:
            continue
        s = meta.get("summary", {})
        body.append(
            html.Tr(
                [
                    html.Td(html.Strong(name)),
                    html.Td(meta.get("kind", "")),
                    *[
                        html.Td(f"{s.get(k, 0):,}", className="text-end")
                        for k in ("items", "interactions", "sequences", "categories", "brands")
                    ],
                    html.Td(html.Code(meta.get("fingerprint", ""), className="small")),
                ]
            )
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th(h, className=("text-end" if i > 1 and i < 7 else ""))
                for i, h in enumerate(
                    ["Name", "Kind", "Items", "Events", "Sequences", "Categories", "Brands", "Fingerprint"]
                )
            ]
        )
    )
    return dbc.Table([head, html.Tbody(body)], hover=True, size="sm", className="datasets-table mb-0")


def mapping_controls(columns: list[str]) -> list:
    """One dropdown per schema field, pre-filled from the column names."""
    guess = guess_mapping(columns)
    options = [{"label": c, "value": c} for c in columns]
    cols = []
    for field, required, hint in MAPPING_FIELDS:
        label = [field, html.Span(" *", className="text-danger") if required else None]
        cols.append(
            dbc.Col(
                [
                    dbc.Label(label, className="param-label mb-0"),
                    dcc.Dropdown(
                        id={"type": ids.DATA_MAP, "field": field},
                        options=options,
                        value=guess.get(field),
                        placeholder=hint or "(not in the file)",
                        clearable=not required,
                        className="mb-2",
                    ),
                ],
                md=4,
                sm=6,
            )
        )
    return [html.Div("Column mapping", className="form-subtitle mb-2"), dbc.Row(cols, className="g-2")]


# -- layout ------------------------------------------------------------------------
def layout(**_query: Any) -> html.Div:
    form = section(
        "Import a dataset",
        [
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
                            dbc.Label("Dataset name"),
                            dbc.Input(id=ids.DATA_NAME, placeholder="e.g. retail", value=""),
                        ],
                        md=6,
                    ),
                ],
                className="mb-3",
            ),
            html.Div(SOURCES["csv"][2], id=ids.DATA_SOURCE_HINT, className="small text-muted mb-3"),
            dbc.Label("Path on the server"),
            dbc.InputGroup(
                [
                    dbc.Input(id=ids.DATA_PATH, placeholder="/path/to/events.csv.gz", debounce=True),
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
                            f" (CSV, CSV.gz, Parquet; up to {UPLOAD_MAX_BYTES // (1024 * 1024)} MB)",
                            className="text-muted",
                        ),
                    ]
                ),
                max_size=UPLOAD_MAX_BYTES,
                className="upload-box mb-2 editor-only",
            ),
            html.Div(id=ids.DATA_UPLOAD_INFO, className="small mb-3"),
            html.Div(
                dbc.Row(
                    [
                        dbc.Col(
                            [
                                dbc.Label("Sequences are"),
                                dbc.RadioItems(
                                    id=ids.DATA_KIND,
                                    options=[
                                        {"label": "sessions (ordered)", "value": "sessions"},
                                        {"label": "baskets / orders", "value": "baskets"},
                                    ],
                                    value="sessions",
                                    inline=True,
                                ),
                            ],
                            md=6,
                        ),
                        dbc.Col(
                            [
                                dbc.Label("Bad rows"),
                                dbc.RadioItems(
                                    id=ids.DATA_ERRORS,
                                    options=[
                                        {"label": "drop and report", "value": "drop"},
                                        {"label": "stop at the first", "value": "raise"},
                                    ],
                                    value="drop",
                                    inline=True,
                                ),
                            ],
                            md=6,
                        ),
                    ],
                    className="mb-2",
                ),
                id=ids.DATA_CSV_OPTIONS,
            ),
            html.Div(id=ids.DATA_MAPPING, className="mb-3"),
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
            dcc.Store(id=ids.DATA_FILE_STORE),
            dcc.Store(id=ids.DATA_JOB_STORE),
        ]
    )


# -- callbacks ---------------------------------------------------------------------
@callback(
    Output(ids.DATA_SOURCE_HINT, "children"),
    Output(ids.DATA_CSV_OPTIONS, "style"),
    Input(ids.DATA_SOURCE, "value"),
)
def source_hint(source: str | None):
    """What the chosen source expects; the CSV options only for the generic import."""
    return SOURCES.get(source or "", ("", "", ""))[2], None if source == "csv" else {"display": "none"}


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
    except DataValidationError as exc:
        return None, error_alert(exc, "Upload rejected"), no_update
    size = path.stat().st_size
    return (
        {"path": str(path)},
        html.Span(f"Uploaded {path.name} ({size / 1e6:.1f} MB).", className="text-success"),
        str(path),
    )


@callback(
    Output(ids.DATA_MAPPING, "children"),
    Output(ids.DATA_MESSAGE, "children"),
    Input(ids.DATA_INSPECT, "n_clicks"),
    Input(ids.DATA_PATH, "value"),
    Input(ids.DATA_SOURCE, "value"),
    prevent_initial_call=True,
)
def inspect_file(_n, path: str | None, source: str | None):
    """Read the file's header and offer a column mapping (generic CSV only)."""
    if source != "csv":
        return [], None
    if not path:
        return [], None
    try:
        columns, preview = peek_columns(path)
    except DataValidationError as exc:
        return [], error_alert(exc, "Cannot read this file")
    table = dbc.Table.from_dataframe(
        _frame(preview), size="sm", className="preview-table small mb-3", striped=True
    )
    return [
        html.Div(f"{len(columns)} columns; first rows:", className="small text-muted mb-1"),
        html.Div(table, className="preview-box"),
        *mapping_controls(columns),
    ], None


@callback(
    Output(ids.DATA_MESSAGE, "children", allow_duplicate=True),
    Output(ids.DATA_JOB_STORE, "data"),
    Input(ids.DATA_IMPORT, "n_clicks"),
    State(ids.DATA_SOURCE, "value"),
    State(ids.DATA_PATH, "value"),
    State(ids.DATA_NAME, "value"),
    State({"type": ids.DATA_MAP, "field": ALL}, "value"),
    State({"type": ids.DATA_MAP, "field": ALL}, "id"),
    State(ids.DATA_KIND, "value"),
    State(ids.DATA_ERRORS, "value"),
    prevent_initial_call=True,
)
def start_import(n_clicks, source, path, name, chosen, map_ids, kind="sessions", errors="drop"):
    """Validate the form and submit an ``import`` job."""
    if not n_clicks:
        return no_update, no_update
    try:
        mapping = None
        if source == "csv":
            if not map_ids:
                raise DataValidationError("inspect the file first (press Inspect) and map its columns")
            mapping = mapping_from_form([m["field"] for m in map_ids], chosen or [])
        params = import_params(
            source, (path or "").strip(), (name or "").strip(), mapping, kind or "sessions", errors or "drop"
        )
        if params["name"] in list_datasets(data_dir()):
            note = f"Dataset '{params['name']}' exists: it is replaced only if the import succeeds. "
        else:
            note = ""
        job_id = job_store().submit("import", params, label=f"Import {params['name']}")
    except RecsysError as exc:
        return error_alert(exc, "Cannot import"), no_update
    return info_alert(f"{note}Import started (job {job_id}).", color="info"), {
        "job_id": job_id,
        "name": params["name"],
    }


@callback(
    Output(ids.DATA_JOB, "children"),
    Output(ids.DATA_REPORT, "children"),
    Output(ids.DATA_DATASETS, "children"),
    Input(ids.JOBS_STORE, "data"),
    Input(ids.DATA_JOB_STORE, "data"),
    prevent_initial_call=True,
)
def show_import(store: dict | None, current: dict | None):
    """Progress of this page's import job; when done, its validation report or its error."""
    if not current:
        return no_update, no_update, no_update
    job = next((j for j in (store or {}).get("jobs", []) if j.get("id") == current["job_id"]), None)
    if job is None:
        try:
            from components.jobs import job_summary

            job = job_summary(job_store().get(current["job_id"]))
        except RecsysError as exc:
            return error_alert(exc, "Import job not found"), no_update, no_update
    card = job_card({**job, "error": ""}, show_cancel=True)
    status = job.get("status")
    if status == "done":
        try:
            meta = dataset_meta(current["name"], data_dir())
        except RecsysError as exc:
            return card, error_alert(exc, "The report could not be read"), datasets_table()
        return card, validation_report(meta), datasets_table()
    if status in ("failed", "error", "interrupted"):
        message = job.get("error") or "the import stopped without a message; see the job log"
        return (
            card,
            error_alert(message, "The import failed: nothing stored was changed", dismissable=False),
            no_update,
        )
    if status == "cancelled":
        return card, info_alert("Import cancelled: nothing stored was changed.", color="warning"), no_update
    return card, no_update, no_update


def _frame(records: list[dict[str, Any]]):
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        frame[col] = frame[col].astype(str).str.slice(0, 40)
    return frame
