"""What the Map's lasso or box selection holds: the grid of its items and a summary of what
the selection is (its main categories and brands with their shares, its price range), so an
analyst reads a cluster at a glance instead of scrolling a list of titles."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import numpy as np
from dash import html

from components import ids
from components.item_card import CATEGORY_SEP, fmt_price

MAX_SELECTION_ROWS = 1_000
#: The summary names at most this many categories (and brands).
TOP_LABELS = 3


#: The line over the grid of a selection listed by :func:`selection_order`.
ORDER_NOTE = "Listed nearest the {shape}'s centre first; click a column header to sort."


def _centre(selected: dict[str, Any], xy: np.ndarray) -> tuple[np.ndarray, str]:
    """The centre of a selection and its shape's name: the lasso's area centroid (the mean of
    its vertices leans to where the hand slowed down), the box's middle, else the points' mean."""
    lasso = selected.get("lassoPoints") or {}
    box = selected.get("range") or {}
    try:
        if lasso.get("x") and lasso.get("y") and len(lasso["x"]) == len(lasso["y"]) >= 3:
            px = np.asarray(lasso["x"], dtype=np.float64)
            py = np.asarray(lasso["y"], dtype=np.float64)
            cross = px * np.roll(py, -1) - np.roll(px, -1) * py  # the shoelace terms
            area = cross.sum() / 2
            if abs(area) > 1e-12 * (np.ptp(px) * np.ptp(py) + 1e-300):
                cx = ((px + np.roll(px, -1)) * cross).sum() / (6 * area)
                cy = ((py + np.roll(py, -1)) * cross).sum() / (6 * area)
                return np.array([cx, cy]), "lasso"
            return np.array([px.mean(), py.mean()]), "lasso"
        if box.get("x") and box.get("y"):
            return np.array([np.mean(box["x"], dtype=np.float64), np.mean(box["y"], dtype=np.float64)]), "box"
    except (TypeError, ValueError):  # not numbers: the points' own centre
        pass
    return xy.mean(axis=0), "selection"


def selection_order(selected: dict[str, Any] | None) -> tuple[list[int], str | None]:
    """The catalogue positions of a lasso or box selection (plotly's ``selectedData``), nearest
    its centre first, each once, and the shape's name (None without points with coordinates:
    then in the order sent). Listed in catalogue order, a lasso's grid began with items far
    from where the user drew, and items drawn under others were nowhere in particular (s44's
    walk); by distance, a cluster reads from its middle out and stacked items sit together."""
    points = [p for p in (selected or {}).get("points", []) if "customdata" in p]
    pos = np.asarray([int(p["customdata"]) for p in points], dtype=np.int64)
    try:
        xy = np.asarray([(float(p["x"]), float(p["y"])) for p in points], dtype=np.float64).reshape(-1, 2)
    except (KeyError, TypeError, ValueError):
        xy = None
    if len(pos) == 0 or xy is None or not np.isfinite(xy).all():
        return list(dict.fromkeys(pos.tolist())), None
    centre, shape = _centre(selected or {}, xy)
    dist = np.hypot(*(xy - centre).T) if np.isfinite(centre).all() else np.zeros(len(pos))
    order = np.lexsort((pos, dist))  # ties (stacked points) by catalogue position
    return list(dict.fromkeys(pos[order].tolist())), shape


def selection_rows(
    view: Any, positions: list[int], limit: int = MAX_SELECTION_ROWS, ordered: bool = False
) -> tuple[list[dict], str]:
    """Grid rows of the selected points (at most ``limit``) and an info line; ``ordered``: list
    them in the given order (:func:`selection_order`), else in catalogue order."""
    import pandas as pd  # off the app's start path

    given = np.asarray(positions, dtype=np.int64)
    pos = np.asarray(list(dict.fromkeys(given.tolist())), dtype=np.int64) if ordered else np.unique(given)
    if len(pos) == 0:
        return [], ""
    shown = pos[:limit]
    frame = view.attributes(shown)[["item_id", "title", "brand", "category", "price"]].copy()
    frame["category"] = frame["category"].astype(str).str.replace(CATEGORY_SEP, " › ", regex=False)
    frame["price"] = pd.to_numeric(frame["price"], errors="coerce").round(2)
    frame["item_id"] = frame["item_id"].astype(str)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    listed = f"the {limit:,} nearest its centre listed" if ordered else f"first {limit:,} listed"
    info = f"{len(pos):,} items selected" + (f" ({listed})" if len(pos) > limit else "")
    return rows, info


def _shares(values: Any, missing: str) -> list[tuple[str, float]]:
    """The most common labels with their share of all values (missing ones counted as ``missing``)."""
    import pandas as pd

    text = pd.Series(values, dtype=object).map(
        lambda v: str(v).strip() if v is not None and str(v).strip() and str(v) != "nan" else missing
    )
    counts = text.value_counts()
    return [(str(label), float(n) / len(text)) for label, n in counts.head(TOP_LABELS).items()]


def selection_summary(view: Any, positions: list[int]) -> Any:
    """One block saying what the selection is: "Categories: Home Decor › Candles 41% · …",
    the brands likewise when the catalogue has brands, and the price range with its median."""
    import pandas as pd

    pos = np.unique(np.asarray(positions, dtype=np.int64))
    if len(pos) == 0:
        return html.Div()
    frame = view.attributes(pos)
    lines = []
    if "category" in frame:
        cats = (
            frame["category"]
            .astype(object)
            .map(lambda c: str(c).replace(CATEGORY_SEP, " › ") if isinstance(c, str) else c)
        )
        parts = [f"{label} {share:.0%}" for label, share in _shares(cats, "(no category)")]
        lines.append(
            html.Div([html.Strong("Categories: "), " · ".join(parts)], **{"data-summary": "categories"})
        )
    if (
        "brand" in frame
        and frame["brand"].notna().any()
        and (frame["brand"].astype(str).str.strip() != "").any()
    ):
        parts = [f"{label} {share:.0%}" for label, share in _shares(frame["brand"], "(no brand)")]
        lines.append(html.Div([html.Strong("Brands: "), " · ".join(parts)], **{"data-summary": "brands"}))
    if "price" in frame:
        price = pd.to_numeric(frame["price"], errors="coerce").dropna()
        if len(price):
            text = f"{fmt_price(price.min())} to {fmt_price(price.max())}, median {fmt_price(price.median())}"
            lines.append(html.Div([html.Strong("Prices: "), text], **{"data-summary": "prices"}))
    return html.Div(lines, id=ids.MAP_SELECTION_SUMMARY, className="selection-summary small mb-2")


def selection_grid(rows: list[dict]) -> Any:
    """The grid of selected items, or a hint while nothing is selected.

    The grid exists only while there is a selection: an AG Grid in the page's first layout
    loaded and ran AG Grid's 250 KB chunk and built the grid on the main thread while
    plotly.js drew the first figure (issue 14); it now costs that on the first selection.
    The brand column is left out when no selected item has a brand (Online Retail has none),
    the price column when none has a price (Instacart, Taobao)."""
    if not rows:
        return html.Div("Lasso or box points on the map to list them here.", className="text-muted small")
    columns = [
        {"field": "title", "headerName": "Title", "flex": 3, "minWidth": 220},
        {"field": "brand", "headerName": "Brand", "flex": 1},
        {"field": "category", "headerName": "Category", "flex": 2, "minWidth": 160},
        {"field": "price", "headerName": "Price", "type": "numericColumn", "minWidth": 80, "maxWidth": 110},
        {"field": "item_id", "headerName": "Item id", "minWidth": 90, "maxWidth": 130},
    ]
    if not any(r.get("brand") for r in rows):
        columns = [c for c in columns if c["field"] != "brand"]
    if all(r.get("price") is None for r in rows):  # Instacart: a column of blanks said nothing
        columns = [c for c in columns if c["field"] != "price"]
    return dag.AgGrid(
        id=ids.MAP_SELECTION,
        rowData=rows,
        columnDefs=columns,
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        getRowId="params.data.item_id",
        dashGridOptions={"animateRows": False},
        columnSize="responsiveSizeToFit",
        style={"height": "360px"},
    )
