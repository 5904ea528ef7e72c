"""The page shown for an address no page has (Dash uses a module named ``not_found_404``)."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from components.layout import nav_pages, page_header

dash.register_page(__name__, path="/404", title="RecSys Lab · Page not found", name="Not found", nav=False)


def layout(**_query: Any) -> html.Div:
    """What there is instead: one link per page."""
    return html.Div(
        [
            page_header("Page not found", "No page lives at this address."),
            html.P("Go to one of these pages:", className="mb-2"),
            html.Ul(
                [html.Li(dcc.Link(name, href=path)) for name, path in nav_pages()],
                className="not-found-links",
            ),
        ],
        className="not-found",
    )
