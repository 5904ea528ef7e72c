"""Helpers every callback test uses: import a page module, search and read a rendered tree."""

from __future__ import annotations

import contextvars
import importlib
from typing import Any

import dash
from dash._callback_context import context_value
from dash._utils import AttributeDict


def page(name: str) -> Any:
    """The module ``pages.<name>`` (``register_page`` needs a Dash app with pages first)."""
    try:
        return importlib.import_module(f"pages.{name}")
    except dash.exceptions.PageError:
        dash.Dash("callback-tests", use_pages=True, pages_folder="")
        return importlib.import_module(f"pages.{name}")


def find(node: Any, predicate) -> list[Any]:
    """Every component in a rendered tree for which ``predicate`` is true.

    Walks ``children`` and, where a component has them, its ``header`` and ``body`` props.
    """
    out: list[Any] = []

    def walk(n: Any) -> None:
        if isinstance(n, (list, tuple)):
            for c in n:
                walk(c)
            return
        if n is None or isinstance(n, (str, int, float)) or not hasattr(n, "to_plotly_json"):
            return
        if predicate(n):
            out.append(n)
        walk(getattr(n, "children", None))
        for attr in ("header", "body"):
            if hasattr(n, attr):
                walk(getattr(n, attr))

    walk(node)
    return out


def text_of(node: Any) -> str:
    """All text in a rendered tree (components or their JSON form), space-joined."""
    parts: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, (list, tuple)):
            for c in n:
                walk(c)
        elif isinstance(n, (str, int, float)):
            parts.append(str(n))
        elif n is not None and hasattr(n, "to_plotly_json"):
            walk(getattr(n, "children", None))
        elif isinstance(n, dict) and "props" in n and "type" in n:  # a component in JSON form
            walk(n["props"].get("children"))

    walk(node)
    return " ".join(parts)


def triggered(prop_id: str, fn: Any, *args: Any) -> Any:
    """Call a callback with ``ctx.triggered_id`` set from ``prop_id`` (``"<id>.<prop>"``), as Dash
    does for the input that fired it."""

    def call() -> Any:
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": 1}]))
        return fn(*args)

    return contextvars.copy_context().run(call)
