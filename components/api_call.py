"""The REST call that returns the list on screen (Explore): an analyst copies it to hand the
list to whoever integrates it, or to check it outside the app.

``GET /api/v1/similar/<seed>?run=&k=&preset=`` when the filters are a saved preset's, else
``POST /api/v1/similar`` with the filters that differ from the defaults inline (the API's
``filters`` field). The token is never written out: the command reads ``$RECSYS_API_TOKEN``.
"""

from __future__ import annotations

import functools
import json
import shlex
from typing import Any
from urllib.parse import quote, urlencode

from dash import ALL, dcc, html

from recsys.filters import FilterConfig

API_PREFIX = "/api/v1"  # recsys.serving.core.API_PREFIX (not imported: the serving stack is not needed here)
AUTH = '-H "Authorization: Bearer $RECSYS_API_TOKEN"'


def _host() -> str:
    try:
        from flask import request

        return request.host_url.rstrip("/")
    except RuntimeError:  # outside a request (tests calling the plain function)
        return "http://127.0.0.1:8050"


@functools.cache
def _defaults() -> dict[str, Any]:
    return FilterConfig().model_dump(mode="json")


def inline_filters(config: FilterConfig) -> dict[str, Any]:
    """The config's fields that differ from the defaults, as the API's ``filters`` takes them."""
    data = config.model_dump(mode="json")
    defaults = _defaults()
    return {key: value for key, value in data.items() if value != defaults.get(key)}


def similar_call(seed: str, run_id: str, k: int, config: FilterConfig, preset: str | None = None) -> str:
    """A ``curl`` command that answers ``seed``'s list as Explore shows it."""
    base = f"{_host()}{API_PREFIX}/similar"
    if preset or not inline_filters(config):
        query = {"run": run_id, "k": k, **({"preset": preset} if preset else {})}
        url = f"{base}/{quote(seed, safe='')}?{urlencode(query)}"
        return f"curl -s {AUTH} {shlex.quote(url)}"
    body = {"item_id": seed, "run": run_id, "k": k, "filters": inline_filters(config)}
    return (
        f"curl -s {AUTH} -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body, ensure_ascii=False))} \\\n  {base}"
    )


#: The box's summary (pattern id: read back with ``State(OPEN_ID, "n_clicks")``, an empty list
#: before the first list is drawn): each click opens or folds it, so an odd count means open.
OPEN_ID = {"type": "api-call-open", "box": ALL}


def is_open(clicks: Any) -> tuple[int, bool]:
    """(clicks on the summary, whether the box is open) from ``State(OPEN_ID, "n_clicks")``."""
    n = next((c for c in (clicks or []) if isinstance(c, int)), 0)
    return n, n % 2 == 1


def api_call_view(
    ident: str,
    seed: str,
    run_id: str,
    k: int,
    config: FilterConfig,
    preset: str | None,
    clicks: Any = None,
) -> Any:
    """A "Same list from the REST API" box with the command and a copy button: folded at
    first, and as the user left it when the list is redrawn (``clicks``: the summary's
    clicks, ``State(OPEN_ID, "n_clicks")``; a redraw carries them on)."""
    n, opened = is_open(clicks)
    command = similar_call(seed, run_id, k, config, preset)
    how = (
        f"the saved preset '{preset}'"
        if preset
        else ("the filters set here, inline" if "-d " in command else "no filters")
    )
    return html.Details(
        [
            html.Summary(
                "Same list from the REST API",
                id={"type": "api-call-open", "box": ident},
                n_clicks=n,
                className="small text-muted",
            ),
            html.Div(
                [
                    html.Pre(command, id=ident, className="api-call small mb-1"),
                    dcc.Clipboard(target_id=ident, title="Copy the command", className="api-call-copy"),
                ],
                className="d-flex align-items-start gap-2",
            ),
            html.Div(
                f"With {how}; an editor's or viewer's token in $RECSYS_API_TOKEN when the app has a login.",
                className="small text-muted",
            ),
        ],
        open=opened,
        className="api-call-box mt-3",
    )
