"""The trimmed plotly.js holds every trace type the app's code asks for (components.plotly_bundle).

plotly.js draws a trace type it lacks as an empty ``scatter`` without any error, so a chart
added on any page with a new type would break silently; this reads the code of ``pages/`` and
``components/`` for the ways it makes traces (``go.Bar(``, ``fig.add_bar(``, ``px.histogram(``,
a figure dict's ``"type": "scattergl"``). The browser test (tests/integration/test_plotly_bundle.py)
draws the pages' graphs with the bundle.
"""

from __future__ import annotations

import re
from pathlib import Path

import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from components.plotly_bundle import TRACES

ROOT = Path(__file__).resolve().parents[2]
#: plotly.express function -> the trace type it makes (the ones a page would plausibly call)
PX = {
    "scatter": "scatter",
    "line": "scatter",
    "bar": "bar",
    "histogram": "histogram",
    "box": "box",
    "violin": "violin",
    "pie": "pie",
    "imshow": "heatmap",
    "density_heatmap": "histogram2d",
    "parallel_coordinates": "parcoords",
    "scatter_3d": "scatter3d",
    "treemap": "treemap",
    "sunburst": "sunburst",
}


def trace_types() -> dict[str, str]:
    """plotly.py's trace classes: class name -> trace type (``Scattergl`` -> ``scattergl``)."""
    out = {}
    for name in dir(go):
        cls = getattr(go, name)
        if isinstance(cls, type) and issubclass(cls, BaseTraceType) and cls is not BaseTraceType:
            out[name] = cls._path_str
    return out


def used_trace_types(text: str, classes: dict[str, str]) -> set[str]:
    types = set(classes.values())
    found = {classes[m] for m in re.findall(r"\bgo\.([A-Z]\w*)\(", text) if m in classes}
    found |= {m for m in re.findall(r"\.add_(\w+)\(", text) if m in types}
    found |= {PX[m] for m in re.findall(r"\bpx\.(\w+)\(", text) if m in PX}
    found |= {m for m in re.findall(r"[\"']type[\"']\s*:\s*[\"'](\w+)[\"']", text) if m in types}
    return found


def test_the_reader_finds_each_way_of_making_a_trace():
    classes = trace_types()
    assert classes["Scattergl"] == "scattergl" and classes["Parcoords"] == "parcoords"
    code = 'go.Figure(go.Parcoords(x)); fig.add_bar(x=1); px.histogram(df); {"type": "heatmap", "id": 1}'
    assert used_trace_types(code, classes) == {"parcoords", "bar", "histogram", "heatmap"}
    # a component id's "type" is not a trace
    assert used_trace_types('{"type": "filter-control", "panel": "explore"}', classes) == set()


def test_every_trace_type_the_pages_make_is_in_the_bundle():
    classes = trace_types()
    used: dict[str, set[str]] = {}
    for path in sorted([*ROOT.glob("pages/*.py"), *ROOT.glob("components/*.py"), ROOT / "app.py"]):
        for kind in used_trace_types(path.read_text(encoding="utf-8"), classes):
            used.setdefault(kind, set()).add(str(path.relative_to(ROOT)))
    # what the app draws today (a test that finds nothing would pass whatever the bundle holds)
    assert {"scattergl", "bar", "parcoords"} <= set(used), used
    missing = {kind: files for kind, files in used.items() if kind not in TRACES}
    assert not missing, f"add these trace types to tools/plotly_bundle/index.js and rebuild: {missing}"
