"""Form pieces shared by the pages' forms (Data, Runs, the vectors import)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html


def dom_id(cid: Any) -> str:
    """The DOM id Dash gives a component id, for a label's ``html_for``: a string as is; a dict id
    as the JSON of its keys sorted, without spaces (dash-renderer's ``stringifyId``)."""
    if isinstance(cid, dict):
        return json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return str(cid)


def hidden_label(text: str, cid: Any) -> html.Label:
    """A label for screen readers only (Bootstrap's ``visually-hidden``), tied to ``cid``: for an
    input whose visible label is a placeholder or a shared span."""
    return html.Label(text, htmlFor=dom_id(cid), className="visually-hidden")


def choice_col(
    label: Any,
    cid: Any,
    choices: Sequence[tuple[Any, str]],
    value: Any,
    *,
    kind: str = "radio",
    label_class: str | None = None,
    **col_kwargs: Any,
) -> dbc.Col:
    """A form column: a label above inline radio buttons (``kind="radio"``) or a dropdown that
    cannot be cleared (``kind="select"``), offering ``choices`` as (value, text) pairs.

    ``label_class`` styles the label; ``col_kwargs`` go to :class:`dbc.Col` (e.g. ``md=6``).
    """
    options = [{"label": text, "value": v} for v, text in choices]
    if kind == "radio":
        control = dbc.RadioItems(id=cid, options=options, value=value, inline=True)
    elif kind == "select":
        control = dcc.Dropdown(id=cid, options=options, value=value, clearable=False)
    else:
        raise ValueError(f"unknown kind of choice control '{kind}'; use radio or select")
    title = dbc.Label(label) if label_class is None else dbc.Label(label, className=label_class)
    return dbc.Col([title, control], **col_kwargs)


def form_job(store: dict[str, Any] | None, job_id: str) -> tuple[dict[str, Any] | None, Any]:
    """(summary, card) of the job a form submitted: from the app's jobs store, else read from
    the job folder (a finished job may have left the store); (None, an error alert) when the
    job is gone."""
    from components.jobs import job_card, job_store, job_summary
    from components.layout import error_alert
    from recsys.errors import RecsysError

    job = next((j for j in (store or {}).get("jobs", []) if j.get("id") == job_id), None)
    if job is None:
        try:
            job = job_summary(job_store().get(job_id))
        except RecsysError as exc:
            return None, error_alert(exc, "Import job not found")
    return job, job_card({**job, "error": ""}, show_cancel=True)
