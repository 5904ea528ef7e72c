"""Layout helpers shared by every page: navbar, page header, stat cards, empty states, alerts.

All functions return Dash components and hold no state.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import html

from components import ids


#: (label, path) of the navbar links, in order.
def nav_pages() -> list[tuple[str, str]]:
    """(name, path) of every registered page for the navbar, in ``order``.

    Built from ``dash.page_registry``, so a new page module appears without editing this
    file; a page registered with ``nav=False`` (the 404 page) is left out.
    """
    pages = [p for p in dash.page_registry.values() if p.get("nav", True) and p.get("path") != "/404"]
    pages.sort(key=lambda p: (p.get("order") if p.get("order") is not None else 99, p.get("name", "")))
    return [(p["name"], p["path"]) for p in pages]


def navbar(user: str | None = None, role: str | None = None) -> dbc.Navbar:
    """The top bar: brand, one link per page, a badge counting running jobs and, when a
    login is configured, who is signed in (and as what) with a sign-out link."""
    account = []
    if role is not None:
        account = [
            html.Span(
                [html.Span(user or "", className="fw-semibold"), f" · {role}"],
                id=ids.NAVBAR_USER,
                className="navbar-text text-white-50 small ms-3",
                title="viewers see every page; editors also train, import, save and delete",
            ),
            html.A(
                "Sign out", href="/logout", className="nav-link text-white ms-2 small", id=ids.NAVBAR_LOGOUT
            ),
        ]
    links = [
        dbc.NavItem(dbc.NavLink(label, href=path, active="exact", className="px-3"))
        for label, path in nav_pages()
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand(
                    [html.Span("◆", className="brand-mark"), " RecSys Lab"],
                    href="/",
                    className="fw-semibold",
                ),
                dbc.Nav(links, navbar=True, className="me-auto"),
                html.A(
                    dbc.Badge("", id=ids.JOBS_BADGE, color="warning", pill=True, className="jobs-badge"),
                    href="/runs",
                    title="Background jobs running",
                ),
                *account,
            ],
            fluid=True,
        ),
        id=ids.NAVBAR,
        color="primary",
        dark=True,
        className="mb-4 app-navbar",
    )


def page_header(title: str, subtitle: str | None = None, actions: Any = None) -> html.Div:
    """A page title with an optional one-line description and right-aligned actions."""
    left = [html.H2(title, className="page-title mb-1")]
    if subtitle:
        left.append(html.P(subtitle, className="text-muted mb-0"))
    return html.Div(
        [html.Div(left), html.Div(actions or [], className="d-flex gap-2 align-items-center")],
        className="page-header d-flex justify-content-between align-items-end mb-4",
    )


def stat_card(label: str, value: Any, hint: str | None = None, id: str | None = None) -> dbc.Card:
    """A small card with a big number (``value``) and its label."""
    body = [html.Div(label, className="stat-label"), html.Div(_fmt_count(value), className="stat-value")]
    if hint:
        body.append(html.Div(hint, className="stat-hint text-muted"))
    kwargs = {"id": id} if id else {}
    return dbc.Card(dbc.CardBody(body), className="stat-card h-100", **kwargs)


def section(title: str, children: Any, actions: Any = None, className: str = "") -> dbc.Card:
    """A titled card holding one section of a page."""
    header = html.Div(
        [html.H5(title, className="mb-0"), html.Div(actions or [], className="d-flex gap-2")],
        className="d-flex justify-content-between align-items-center",
    )
    return dbc.Card(
        [dbc.CardHeader(header), dbc.CardBody(children)], className=f"section-card mb-4 {className}"
    )


def labelled_col(label: str, control: Any, **col_kwargs: Any) -> dbc.Col:
    """A column of a page's control bar: a small label above ``control``.

    ``col_kwargs`` go to :class:`dbc.Col` (e.g. ``lg=4``).
    """
    cid = getattr(control, "id", None)  # tie the label to its input (axe's "label" rule)
    target = {"htmlFor": cid} if isinstance(cid, str) else {}
    return dbc.Col([html.Label(label, className="form-label small", **target), control], **col_kwargs)


def empty_state(message: str, hint: Any = None, icon: str = "○") -> html.Div:
    """What a panel shows when it has nothing yet (no runs, no datasets...)."""
    children = [html.Div(icon, className="empty-icon"), html.Div(message, className="empty-message")]
    if hint:
        children.append(html.Div(hint, className="empty-hint text-muted"))
    return html.Div(children, className="empty-state")


def no_embedding_runs(header: Any, extra: str = "", runs: list[dict[str, Any]] | None = None) -> html.Div:
    """A page that needs an embedding run when there is none: the header and where to get one.

    While a build that makes runs (the demo build, a training job) is queued or running, the
    page says so and how far it is, rather than asking for a run that is on its way. ``runs``
    (every run, as the page listed them): when there are runs, but none with item vectors (a
    catalogue-only shop with a TF-IDF run), it says that those cannot be searched here and which
    family learns vectors from what the dataset has.
    """
    from dash import dcc

    from components.jobs import active_build  # the job store: read only when a page has no run

    job = active_build()
    if job is not None:
        progress = job.get("progress") or {}
        fraction = progress.get("fraction")
        step = str(progress.get("message") or job.get("status") or "")
        done = f"{fraction:.0%}: " if isinstance(fraction, (int, float)) and fraction > 0 else ""
        return html.Div(
            [
                header,
                empty_state(
                    f"{job.get('label') or 'A build'} is {job.get('status', 'running')} ({done}{step}).",
                    [
                        "Its runs appear here when it finishes: reload this page then, or follow it on the ",
                        dcc.Link("Runs page", href="/runs"),
                        ".",
                    ],
                    icon="◔",
                ),
            ]
        )
    if runs:
        names = sorted({str(r.get("family") or "") for r in runs} - {""})
        sets = sorted({str((r.get("dataset") or {}).get("name") or "") for r in runs} - {""})
        return html.Div(
            [
                header,
                empty_state(
                    f"No run here has item vectors: {', '.join(names)} "
                    f"({'runs' if len(runs) > 1 else 'a run'} on {', '.join(sets)}) "
                    "ranks without them, and this page searches item vectors.",
                    [
                        "Train Prod2Vec, Meta-Prod2Vec, two-tower or the content model on the ",
                        dcc.Link("Runs page", href="/runs"),
                        "; on a catalogue without interactions, the content model (it learns from "
                        "titles, brands and categories alone).",
                    ],
                ),
            ]
        )
    return html.Div(
        [
            header,
            empty_state(
                "No embedding run yet.",
                ["Train one on the ", dcc.Link("Runs page", href="/runs"), f"{extra}."],
            ),
        ]
    )


def error_alert(message: Any, title: str = "Something went wrong", dismissable: bool = True) -> dbc.Alert:
    """A readable error on the page (never a traceback)."""
    return dbc.Alert(
        [html.Strong(title), html.Div(str(message), className="mt-1 error-text")],
        color="danger",
        dismissable=dismissable,
        className="mb-3",
    )


def info_alert(message: Any, color: str = "success", dismissable: bool = True) -> dbc.Alert:
    """A short confirmation or notice."""
    return dbc.Alert(message, color=color, dismissable=dismissable, className="mb-3")


def viewer_note(text: str, name: str = "", spacing: str = "mb-2", **props: Any) -> html.Div:
    """The line a viewer sees where an editor's controls are hidden (``viewer-only``: shown only
    when a token is configured and the user cannot edit): "You are signed in as a viewer: "
    ``text``; ``name`` a class of its own (tests and styles find it by it); ``props`` the Div's
    others (its ``id``)."""
    return html.Div(
        f"You are signed in as a viewer: {text}",
        className=f"small alert alert-secondary py-1 px-2 {spacing} viewer-only {name}".rstrip(),
        **props,
    )


def _fmt_count(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:.3f}"
    return str(value)


def fmt_metric(value: Any, digits: int = 3) -> str:
    """A metric value for display ('—' when missing)."""
    if value is None:
        return "—"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)
