"""The "recent views" panel: build a shopping session by clicking items, see recommendations for it.

The session is a list of item ids (oldest first) kept in the browser (a ``dcc.Store``); the
recommendations come from :func:`recsys.search.recommend_for_recent`, the code path of the REST
``/recommend`` endpoint: a two-tower run's user vector, or the mean of the recent items' vectors
for other embedding runs, queried against the run's index with the active filters.

``recent_views_panel(...)`` draws the panel; ``add_to_session`` / ``remove_from_session`` are
the pure list operations the page's callbacks use; ``session_outputs`` computes what the page
shows (``session_chips`` and ``recommendations_view``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.common import run_dataset
from components.item_card import card_grid, card_rows
from recsys.errors import RecsysError
from recsys.registry import run_label

#: Most recent views kept in a session (the two-tower model reads at most its max_recent).
MAX_SESSION = 20


def session_run_choices(
    run_id: str | None, runs: Sequence[Mapping[str, Any]], all_runs: Sequence[Mapping[str, Any]], active=()
) -> tuple[list[Mapping[str, Any]], str | None]:
    """(runs the panel offers, in order; the one it opens on) for Explore's run ``run_id``.

    The panel answers a session of the items shown, so the runs of ``run_id``'s dataset come
    first and it opens on one of them: that dataset's two-tower run (an ``active`` one first),
    else ``run_id`` itself. It opened on the first two-tower run of any dataset, so on an
    imported shop's run it answered with the demo's model: "none of the recent items is known".
    Then the other embedding runs (``runs``) and the runs without vectors of ``all_runs``
    (session kNN first), which answer recent views too (``recsys.search.recommend_for_recent``).
    """
    from recsys.models import SESSION_FAMILIES

    def dataset(r: Mapping[str, Any]) -> str | None:
        return (r.get("dataset") or {}).get("name")

    mine = next((dataset(r) for r in runs if r.get("run_id") == run_id), None)
    active = set(active)
    two_tower = [r for r in runs if r.get("family") == "two_tower"]
    others = [r for r in all_runs if not r.get("is_embedding") and r.get("status", "complete") == "complete"]
    others.sort(key=lambda r: r.get("family") not in SESSION_FAMILIES)  # session kNN first
    ordered = two_tower + [r for r in runs if r.get("family") != "two_tower"] + others
    ordered.sort(key=lambda r: dataset(r) != mine)  # stable: the order above within each part
    own = sorted((r for r in two_tower if dataset(r) == mine), key=lambda r: r.get("run_id") not in active)
    return ordered, (own[0]["run_id"] if own else run_id)


def add_to_session(session: Sequence[str] | None, item_id: str, max_len: int = MAX_SESSION) -> list[str]:
    """Append ``item_id`` as the newest view (moved to the end if already there), keep ``max_len``."""
    items = [i for i in (session or []) if i != item_id]
    items.append(str(item_id))
    return items[-max_len:]


def remove_from_session(session: Sequence[str] | None, item_id: str) -> list[str]:
    """The session without ``item_id``."""
    return [i for i in (session or []) if i != item_id]


def session_chips(session: Sequence[str], titles: Mapping[str, str], remove_type: str) -> Any:
    """The session as removable chips, oldest first (``remove_type`` is the pattern id type)."""
    if not session:
        return html.Div(
            "No recent views yet: click “+ session” on any card to add it.", className="text-muted small"
        )
    chips = []
    for n, item in enumerate(session, start=1):
        chips.append(
            html.Span(
                [
                    html.Span(f"{n}", className="chip-n"),
                    html.Span(titles.get(item, item), className="chip-title", title=item),
                    html.Button(
                        "×",
                        id={"type": remove_type, "item": item},
                        className="chip-x",
                        n_clicks=0,
                        title="remove from the session",
                    ),
                ],
                className="session-chip",
            )
        )
    return html.Div(chips, className="session-chips")


def recommendations_view(
    result: Any | None,
    rows: Sequence[Mapping[str, Any]],
    error: str | None = None,
    run_id: str | None = None,
    name: str | None = None,
) -> Any:
    """Recommendation cards for a :class:`recsys.search.RecentResult` (or an error / empty state);
    the line above them names the run by ``name`` (:func:`recsys.registry.run_label`; its run id
    on hover), not by the raw run id it showed."""
    if error:
        return dbc.Alert(error, color="warning", className="mb-0 small")
    if result is None:
        return html.Div(
            "Add items to the session to see personalised recommendations.", className="text-muted small"
        )
    how = {
        "two_tower": "two-tower user vector",
        "session_knn": "similar past sessions (session kNN)",
        "last_item": "the run's own list for the most recent item it knows",
        "fallback": "the run's fallback chain (the run knows none of the recent items)",
    }.get(result.method, "mean of the recent items' vectors")
    note = [
        html.Span(f"{len(rows)} recommendations from ", className="text-muted"),
        html.Span(name, className="fw-semibold", title=run_id or "") if name else html.Code(run_id or ""),
        html.Span(f" · {how}", className="text-muted"),
    ]
    by_fallback = [s for s in (result.served_by or []) if s not in ("model", "pin")]
    if by_fallback and result.method != "fallback":
        steps = ", ".join(dict.fromkeys(by_fallback))
        note.append(
            html.Span(f" · {len(by_fallback)} completed by the fallback ({steps})", className="text-muted")
        )
    if result.skipped_rules:
        note.append(
            html.Span(f" · rules not applied: {', '.join(result.skipped_rules)}", className="text-warning")
        )
    if result.ignored_item_ids:
        note.append(
            html.Span(
                f" · ignored (no vector): {', '.join(result.ignored_item_ids)}", className="text-warning"
            )
        )
    return html.Div(
        [
            html.Div(note, className="small mb-2"),
            card_grid(rows, result.scores, run_id=run_id, className="compact"),
        ]
    )


def session_outputs(
    registry: Any,
    view: Any,
    session: Sequence[str],
    run_id: str | None,
    config: Any,
    k: int,
    remove_type: str,
    exclude_seen: bool = True,
) -> tuple[Any, Any]:
    """(chips, recommendations) of a session in a run.

    Parameters
    ----------
    registry : Registry
    view : recsys.catalog.CatalogView
        The run's catalogue view (titles of the chips, rows of the cards).
    session : sequence of str
        Recent item ids, oldest first.
    run_id : str or None
    config : FilterConfig
        The active filters.
    k : int
    remove_type : str
        Pattern id type of the chips' remove buttons.
    exclude_seen : bool
        Hide the items already in the session (default); off lets repeat views come back.
    """
    from recsys.search import recommend_for_recent

    session = list(session)
    titles: dict[str, str] = {}
    for item in session:
        pos = view.position(item) if view is not None else -1
        if pos >= 0:
            row = card_rows(view, [pos])[0]
            titles[item] = str(row.get("title") or item)
    chips = session_chips(session, titles, remove_type)
    if not session or not run_id:
        return chips, recommendations_view(None, [])
    try:
        result = recommend_for_recent(registry, run_id, session, config, k, exclude_seen=exclude_seen)
    except RecsysError as exc:
        return chips, recommendations_view(None, [], str(exc))
    positions = [view.position(i) for i in result.item_ids]
    rows = card_rows(view, [p for p in positions if p >= 0], run_dataset(run_id))
    try:
        name = run_label(registry.get(run_id))
    except RecsysError:  # deleted meanwhile: its id
        name = None
    return chips, recommendations_view(result, rows, run_id=run_id, name=name)


def recent_views_panel(
    run_options: list[dict[str, str]],
    run_value: str | None,
    *,
    store_id: str,
    chips_id: str,
    clear_id: str,
    run_id: str,
    results_id: str,
    session: Sequence[str] | None = None,
    exclude_seen_id: str | None = None,
) -> dbc.Card:
    """The panel: session chips, a run picker (two-tower runs first) and the recommendations."""
    return dbc.Card(
        [
            dbc.CardHeader(
                html.Div(
                    [
                        html.H5(
                            ["Recent views ", html.Small("personalised", className="text-muted fw-normal")],
                            className="mb-0",
                        ),
                        html.Div(
                            [
                                dcc.Dropdown(
                                    id=run_id,
                                    options=run_options,
                                    value=run_value,
                                    clearable=False,
                                    className="session-run",
                                ),
                                dbc.Button(
                                    "Clear",
                                    id=clear_id,
                                    size="sm",
                                    color="secondary",
                                    outline=True,
                                    n_clicks=0,
                                ),
                            ],
                            className="d-flex gap-2 align-items-center",
                        ),
                    ],
                    className="d-flex justify-content-between align-items-center",
                )
            ),
            dbc.CardBody(
                [
                    dcc.Store(id=store_id, data=list(session or []), storage_type="session"),
                    html.Div(id=chips_id, className="mb-2"),
                    *(
                        [
                            dcc.Checklist(
                                id=exclude_seen_id,
                                options=[{"label": " hide items already viewed", "value": "on"}],
                                value=["on"],
                                className="small text-muted mb-3",
                            )
                        ]
                        if exclude_seen_id
                        else []
                    ),
                    dcc.Loading(html.Div(id=results_id), type="dot", delay_show=300),
                ]
            ),
        ],
        className="section-card mb-4 recent-views",
    )
