"""The Map's figures: the item scatter (WebGL, one trace per colour group) and the purity bars.

Pure builders from arrays and a catalogue view to Plotly figures / Dash components; the
Map page (``pages/map.py``) wires them to its callbacks. The data behind them (the 2-D
coordinates, the labels, the purity table) comes from :mod:`recsys.projection` and :mod:`recsys.labels`.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from dash import html

from components.item_card import brand_text, card_rows, display_title, price_text, thumbnail
from recsys.labels import OTHER_LABEL as OTHER
from recsys.labels import item_labels

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Colour groups drawn for brand/category colourings (the rest is "other").
TOP_N = 12
PALETTE = (
    "#2c7be5", "#e8837a", "#5fd3bc", "#f5b041", "#8e6fd8", "#48c9e0", "#e36fb2", "#7dbb42",
    "#c0392b", "#16a085", "#d4ac0d", "#5d6d7e",
)  # fmt: skip
OTHER_COLOR = "#c8d0da"


def point_labels(view: Any, positions: np.ndarray, color_by: str, top_n: int | None = TOP_N) -> np.ndarray:
    """Label of each point for a categorical colouring (top N kept, the rest "other" unless None)."""
    return item_labels(view, positions, color_by, top_n)


def _marker_size(n: int) -> float:
    return 7.0 if n <= 3_000 else 5.0 if n <= 20_000 else 3.5 if n <= 60_000 else 2.5


def typed_array(values: np.ndarray) -> dict[str, str]:
    """A float32 array as plotly.js's base64 typed-array spec (``{"dtype": "f4", "bdata": ...}``,
    read by plotly.js >= 2.28; what plotly.py itself sends for numpy arrays)."""
    data = np.ascontiguousarray(values, dtype="<f4")
    return {"dtype": "f4", "bdata": base64.b64encode(data.tobytes()).decode("ascii")}


def _trace(
    x: np.ndarray, y: np.ndarray, positions: np.ndarray, name: str, marker: dict, **extra: Any
) -> dict:
    return {
        "type": "scattergl",
        "mode": "markers",
        "x": typed_array(x),
        "y": typed_array(y),
        "customdata": positions.tolist(),
        "name": name,
        "marker": marker,
        "hoverinfo": "none",
        **extra,
    }


@lru_cache(maxsize=1)
def _template() -> dict:
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


def map_figure(
    x: np.ndarray, y: np.ndarray, positions: np.ndarray, view: Any, color_by: str, uirevision: str = ""
) -> dict[str, Any]:
    """The WebGL scatter as a plain figure dict: one ``scattergl`` trace per colour group (or a
    price colour scale) plus an empty highlight trace last (filled by the search callback).

    Coordinates are float32 arrays, which Dash's JSON encoder sends as base64 typed arrays
    (``{"dtype": "f4", "bdata": ...}``). ``customdata`` holds each point's catalogue position
    as a plain list: Dash's Graph copies ``customdata[pointNumber]`` from the figure into
    hover/click/selection data, which reads nothing from a typed array, so the callbacks would
    receive no position. Plain integers cost about as much JSON as base64 int32 (<= 6
    characters each for <= 1M items). No per-point hover text: the hover card is fetched
    per hovered point (``pages.map.show_tooltip``).

    A dict, not a ``go.Figure``: plotly.py's validators walk and deep-copy every element of
    every array, which took about 2 of the 2.5 s of building a 100k-point figure; the arrays
    here are built with the types plotly.js reads.
    """
    import pandas as pd  # off the app's start path

    size = _marker_size(len(x))
    traces: list[dict] = []
    if color_by == "price":
        price = view.price[positions].astype(np.float32)
        known = np.isfinite(price) & (price > 0)
        if (~known).any():
            marker = {"size": size, "color": OTHER_COLOR, "opacity": 0.6}
            traces.append(_trace(x[~known], y[~known], positions[~known], "no price", marker))
        logp = np.log10(price[known]).astype(np.float32)
        ticks = np.array([1, 3, 10, 30, 100, 300, 1000, 3000, 10000], dtype=float)
        if len(logp):
            lo, hi = float(logp.min()), float(logp.max())
            ticks = ticks[(np.log10(ticks) >= lo - 0.01) & (np.log10(ticks) <= hi + 0.01)]
        marker = {
            "size": size,
            "color": typed_array(logp),
            "colorscale": "Viridis",
            "opacity": 0.75,
            "colorbar": {
                "title": {"text": "price"},
                "tickvals": np.log10(ticks).tolist(),
                "ticktext": [f"{t:g}" for t in ticks],
                "thickness": 12,
            },
        }
        traces.append(_trace(x[known], y[known], positions[known], "price", marker, showlegend=False))
    else:
        labels = point_labels(view, positions, color_by)
        order = pd.Series(labels).value_counts()
        names = [n for n in order.index if n != OTHER] + ([OTHER] if OTHER in order.index else [])
        codes = pd.Categorical(labels, categories=names).codes
        for i, name in enumerate(names):
            sel = codes == i
            color = OTHER_COLOR if name == OTHER else PALETTE[i % len(PALETTE)]
            marker = {"size": size, "color": color, "opacity": 0.7}
            traces.append(_trace(x[sel], y[sel], positions[sel], f"{name} ({int(sel.sum()):,})", marker))
    empty = np.zeros(0, dtype=np.float32)
    marker = {"size": max(size * 2.2, 8), "color": "#111", "symbol": "circle-open", "line": {"width": 2}}
    traces.append(_trace(empty, empty, np.zeros(0, np.int64), "search matches", marker, showlegend=False))
    layout = {
        "template": _template(),
        "dragmode": "lasso",
        "hovermode": "closest",
        "uirevision": uirevision,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "autosize": True,  # as tall as the graph's box (.map-graph: the first screen's height)
        "legend": {"orientation": "v", "x": 1.01, "y": 0.93, "font": {"size": 11}, "itemsizing": "constant"},
        "xaxis": {"visible": False},
        "yaxis": {"visible": False, "scaleanchor": "x"},
        "plot_bgcolor": "#fbfcfe",
    }
    return {"data": traces, "layout": layout}


def purity_figure(table: pd.DataFrame) -> go.Figure:
    """Horizontal bars of purity vs the random baseline, one pair per label (in table order)."""
    bars = (
        ("purity", "purity", PALETTE[0], "purity"),
        ("baseline", "random", OTHER_COLOR, "random neighbours"),
    )
    fig = go.Figure(
        [
            go.Bar(
                y=table["label"],
                x=table[column],
                orientation="h",
                name=name,
                marker_color=color,
                hovertemplate=f"%{{y}}: %{{x:.2f}}<extra>{what}</extra>",
            )
            for column, name, color, what in bars
        ]
    )
    fig.update_layout(
        template="plotly_white",
        barmode="group",
        height=max(260, 28 * len(table) + 80),
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        legend={"orientation": "h", "y": -0.12},
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        # label names, never numbers: Plotly read digit ids (Taobao's categories) as a numeric axis
        yaxis={"automargin": True, "type": "category"},
    )
    return fig


def hover_card(view: Any, position: int, dataset: str | None = None) -> html.Div:
    """The tooltip card of one point (with the item's thumbnail when it has an image; a local
    one is served from the images folder of ``dataset``)."""
    row = card_rows(view, [position], dataset)[0]
    return html.Div(
        [
            *([thumbnail(row["image"], str(row.get("title") or ""), "tip-img")] if row["image"] else []),
            html.Div(display_title(row), className="tip-title"),
            html.Div(str(row.get("category") or "no category").replace(" > ", " › "), className="tip-cat"),
            html.Div(
                [
                    html.Span(brand_text(row), className="tip-brand"),
                    html.Span(price_text(row), className="tip-price"),
                ],
                className="tip-meta",
            ),
            html.Div(str(row.get("item_id")), className="tip-id"),
        ],
        className="map-tip",
    )
