"""The Data page's read-outs of stored datasets: the validation report, how files were read, the table.

``form_words`` rewrites the library's messages, which name command-line options
(``--sep tab``), in the words of the import form ("Separator “tab”").
"""

from __future__ import annotations

import re
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from components.common import dataset_meta, list_datasets
from components.layout import empty_state
from recsys.config import data_dir
from recsys.errors import RecsysError

#: Command-line words in library messages -> the words of this form.
_FORM_WORDS: tuple[tuple[str, str], ...] = (
    (r"--errors drop", "“Bad rows: drop and report”"),
    (r"--catalog-encoding (\S+)", r"Encoding “\1” (catalogue)"),
    (r"--encoding (\S+)", r"Encoding “\1”"),
    (r"--sep (\S+)", r"Separator “\1”"),
    (r"--decimal ,", "Decimal mark “comma”"),
    (r"--decimal", "Decimal mark"),
    (r"--session-gap (\S+)", r"Cut sessions on a gap “\1”"),
    (r"--session-gap", "Cut sessions on a gap"),
    (r"--event-map ([^;)]+)", r"Event codes “\1”"),
    (r"--event-map", "Event codes"),
    (r"--tz", "Time zone"),
    (r"--no-header", "Header row “no”"),
    (r"--columns", "Column names"),
    (r"--category-sep", "category separator"),
    (r"--kind baskets", "“Sequences are: baskets / orders”"),
    (r"--map category=-", "“Category when no column is mapped to it: none”"),
    (r"--map COLUMN=category", "the category dropdown"),
    (r"--map (\S+)=(\S+)", r"the mapping of column \1 to \2"),
    (r"--map of column", "mapping of column"),
    (r"--map", "the column mapping"),
    (r"--catalog\b", "Catalogue file"),
)


def form_words(message: Any) -> str:
    """A library message with its command-line options named as this form names them."""
    text = str(message)
    for pattern, repl in _FORM_WORDS:
        text = re.sub(pattern, repl, text)
    return text


def catalogue_only(meta: dict[str, Any]) -> bool:
    """Whether a stored dataset (its ``meta``) holds no interactions: only the families that learn
    from the catalogue train on it."""
    s = meta.get("summary", {})
    return bool(s) and not s.get("interactions")


def kind_label(meta: dict[str, Any]) -> str:
    """A stored dataset's kind as a user reads it: "catalogue only" when it holds no
    interactions (its stored kind is the import's default, "sessions"), else its kind."""
    if catalogue_only(meta):
        return "catalogue only"
    return str(meta.get("summary", {}).get("kind", meta.get("kind", "")))


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
    rows += [
        html.Tr([html.Td(f"Filled from the events: {k}"), html.Td(f"{v:,} items", className="text-end")])
        for k, v in report.get("filled", {}).items()
    ]
    out: list = [
        html.H6(
            [
                f"Dataset “{meta.get('name', '')}”",
                dbc.Badge(kind_label(meta), color="info", className="ms-2"),
            ]
        ),
        dbc.Table(html.Tbody(rows), size="sm", className="report-table", striped=True),
    ]
    out += reading_notes(report.get("reading", {}))
    if dropped:
        out.append(html.Div("Rows dropped", className="fw-semibold mt-2"))
        out.append(
            dbc.Table(
                html.Tbody(
                    [
                        html.Tr([html.Td(form_words(reason)), html.Td(f"{n:,}", className="text-end")])
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
        out.append(dbc.Alert(form_words(warning), color="warning", className="py-2 small mb-2"))
    return out


def reading_notes(reading: dict[str, dict[str, str]]) -> list:
    """How each file was read ("separator: tab (detected)"), as the CLI report says it."""
    out: list = []
    for table, notes in reading.items():
        items = [html.Li(form_words(f"{k}: {v}")) for k, v in notes.items() if k != "file"]
        if items:
            name = notes.get("file", table)
            out.append(html.Div(f"How {table} ({name}) was read", className="fw-semibold mt-2"))
            out.append(html.Ul(items, className="small mb-2 reading-notes"))
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
        except RecsysError as exc:  # a damaged report.json: named with why, the others still shown
            body.append(
                html.Tr(
                    [html.Td(html.Strong(name)), html.Td(str(exc), colSpan=7, className="text-danger small")],
                    className="dataset-damaged",
                )
            )
            continue
        s = meta.get("summary", {})
        body.append(
            html.Tr(
                [
                    html.Td(html.Strong(name)),
                    html.Td(kind_label(meta)),
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
