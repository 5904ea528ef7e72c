"""Map interactions driven by real mouse events in headless Chromium (``pytest --headless``).

The mouse moves, clicks and drags with Selenium's pointer actions at the screen position of a
drawn point (read from plotly's axes), exactly as a user's mouse would: plotly turns them into
hover / click / selection events and Dash sends the event data to the server.

``test_recorded_map_events_are_what_the_browser_sends`` also checks (and, with
``RECSYS_RECORD_FIXTURES=1``, rewrites) ``tests/callbacks/fixtures/map_events.json``, the
browser payloads the Map callback tests replay.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import flask
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from components.plotlyjs import plotlyjs_path as page_plotlyjs_path
from tests.integration._browser import run_ids, wait_until

FIXTURE = Path(__file__).resolve().parents[1] / "callbacks" / "fixtures" / "map_events.json"
GRAPH = "document.querySelector('#map-graph .js-plotly-plot')"

# Screen position (CSS pixels, viewport) of every drawn point but the highlight trace's.
_POINTS_JS = f"""
const gd = {GRAPH};
if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis || !gd.data) return null;
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
const out = [];
for (let c = 0; c < gd._fullData.length - 1; c++) {{
  const t = gd._fullData[c];
  for (let i = 0; i < t.x.length; i++) {{
    out.push({{c: c, i: i, pos: t.customdata[i],
      px: r.left + xa._offset + xa.l2p(t.x[i]), py: r.top + ya._offset + ya.l2p(t.y[i])}});
  }}
}}
return out;
"""

# The event data Dash holds for the graph (what it sent to the server), from the renderer's store.
_PROP_JS = """
const st = window.store.getState();
const path = st.paths.strs['map-graph'];
let node = st.layout;
for (const k of path) node = node[k];
return node.props[arguments[0]] === undefined ? null : node.props[arguments[0]];
"""


def _open_map(dash_duo, app, run: str) -> list[dict[str, Any]]:
    dash_duo.driver.set_window_size(1400, 1200)
    dash_duo.start_server(app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/map?run={run}")
    dash_duo.wait_for_element("#map-graph .js-plotly-plot", timeout=40)
    wait_until(lambda: dash_duo.driver.execute_script(_POINTS_JS), timeout=40, what="the points drawn")
    # bring the plot into view, then read positions (they are viewport coordinates)
    # ("instant": Bootstrap makes scrolling smooth, which would move the points after reading them)
    dash_duo.driver.execute_script(f"{GRAPH}.scrollIntoView({{block: 'center', behavior: 'instant'}})")
    return dash_duo.driver.execute_script(_POINTS_JS)


# Records each new number of points plotly holds in the Map's scatter (polled every 10 ms), and
# how many times plotly.js ran.
_COUNTS_PROBE = """
window.__mapCounts = [];
setInterval(function () {
  const gd = document.querySelector('#map-graph .js-plotly-plot');
  const n = gd && gd._fullData ? gd._fullData.reduce((s, t) => s + (t.x ? t.x.length : 0), 0) : 0;
  const seen = window.__mapCounts;
  if (seen[seen.length - 1] !== n) seen.push(n);
}, 10);
// how many times plotly.js's bundle ran (each run sets window.Plotly to a new library object)
window.__plotlyRuns = 0;
let plotly;
Object.defineProperty(window, 'Plotly', {
  configurable: true,
  get: () => plotly,
  set: (value) => { if (value && typeof value.react === 'function') window.__plotlyRuns += 1; plotly = value; },
});
"""


def _isolated(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The point farthest (in pixels) from every other: the one a mouse on it must hover."""

    def gap(p: dict[str, Any]) -> float:
        return min(((p["px"] - q["px"]) ** 2 + (p["py"] - q["py"]) ** 2) ** 0.5 for q in points if q is not p)

    return max(points, key=gap)


_CORNER_JS = f"""
const gd = {GRAPH}, fl = gd._fullLayout, r = gd.getBoundingClientRect();
return [r.left + fl.xaxis._offset + 6, r.top + fl.yaxis._offset + 6];
"""


def _clear_selection(dash_duo) -> None:
    """Double-click an empty corner of the plot: plotly drops the selection (a drawn selection
    outline catches the mouse for moving it, so points under it could not be hovered)."""
    x, y = dash_duo.driver.execute_script(_CORNER_JS)
    _move(dash_duo.driver, x, y)
    ActionChains(dash_duo.driver).double_click().perform()
    dash_duo.wait_for_text_to_equal("#map-selection-info", "", timeout=15)


def _move(driver, x: float, y: float) -> None:
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.perform()


def _drag(driver, path: list[tuple[float, float]]) -> None:
    """Press at the first position, move through the others in small steps, release."""
    actions = ActionBuilder(driver)
    mouse = actions.pointer_action
    mouse.move_to_location(int(path[0][0]), int(path[0][1]))
    mouse.pointer_down()
    for (x0, y0), (x1, y1) in zip(path, path[1:], strict=False):
        for s in range(1, 9):
            mouse.move_to_location(int(x0 + (x1 - x0) * s / 8), int(y0 + (y1 - y0) * s / 8))
    mouse.pointer_up()
    actions.perform()


def _inside(points, x0, y0, x1, y1, margin: float) -> set[int]:
    return {
        p["pos"]
        for p in points
        if x0 + margin < p["px"] < x1 - margin and y0 + margin < p["py"] < y1 - margin
    }


def _region(points: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """A rectangle (whole pixels) near the middle of the cloud holding at least 3 points, none
    of them within 2 px of its edges (where inside or outside is a matter of rounding)."""
    import numpy as np

    px = np.array([p["px"] for p in points])
    py = np.array([p["py"] for p in points])
    mx, my = int(np.median(px)), int(np.median(py))
    for size in (80, 100, 60, 140, 200):
        for dx in range(-120, 121, 8):
            for dy in range(-120, 121, 8):
                x0, y0 = mx + dx - size // 2, my + dy - size // 2
                x1, y1 = x0 + size, y0 + size
                strict = (px > x0 + 2) & (px < x1 - 2) & (py > y0 + 2) & (py < y1 - 2)
                loose = (px > x0 - 2) & (px < x1 + 2) & (py > y0 - 2) & (py < y1 + 2)
                if strict.sum() >= 3 and (strict == loose).all():
                    return x0, y0, x1, y1
    raise AssertionError("no clean selection rectangle in this cloud")


def _selection_info(dash_duo) -> str:
    return dash_duo.find_element("#map-selection-info").text


def _grid_ids(dash_duo) -> set[str]:
    return {
        e.get_attribute("row-id")
        for e in dash_duo.find_elements("#map-selection .ag-center-cols-container .ag-row")
    }


def test_map_hover_card_click_to_explore_lasso_and_box(dash_duo, dash_app, demo_data_dir):
    run = run_ids(demo_data_dir)["prod2vec"]
    points = _open_map(dash_duo, dash_app, run)
    view = sys.modules["components.common"].run_searcher(run).view
    driver = dash_duo.driver

    # Hover: the card of the point under the mouse.
    target = _isolated(points)
    item = str(view.item_ids[target["pos"]])
    _move(driver, target["px"], target["py"])
    dash_duo.wait_for_contains_text("#map-tooltip", item, timeout=15)
    title = str(view.attributes([target["pos"]])["title"].iloc[0])
    assert title in dash_duo.find_element("#map-tooltip").text

    # The purity chart follows the drawn map (it is computed after the figure is sent).
    dash_duo.wait_for_contains_text("#map-purity", "nearest neighbours share its category", timeout=30)

    # Lasso (the default drag mode): a four-corner path around a rectangle of points.
    x0, y0, x1, y1 = _region(points)
    expected = {str(view.item_ids[p]) for p in _inside(points, x0, y0, x1, y1, 0)}
    _drag(driver, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)])
    dash_duo.wait_for_text_to_equal("#map-selection-info", f"{len(expected):,} items selected", timeout=15)
    wait_until(
        lambda: _grid_ids(dash_duo) and _grid_ids(dash_duo) <= expected, what="the lassoed items listed"
    )
    assert dash_duo.find_element("#map-selection .ag-center-cols-container").text.strip()

    _clear_selection(dash_duo)
    assert not _grid_ids(dash_duo)

    # Box: choose "Box Select" in the mode bar, drag a smaller rectangle (one diagonal).
    driver.find_element("css selector", "#map-graph .modebar-btn[data-val='select']").click()
    bx1, by1 = (x0 + x1) // 2, (y0 + y1) // 2
    strict, loose = _inside(points, x0, y0, bx1, by1, 2), _inside(points, x0, y0, bx1, by1, -2)
    if strict != loose or not strict:
        bx1, by1 = x1, y1
    boxed = {str(view.item_ids[p]) for p in _inside(points, x0, y0, bx1, by1, 0)}
    _drag(driver, [(x0, y0), (bx1, by1)])
    dash_duo.wait_for_text_to_equal("#map-selection-info", f"{len(boxed):,} items selected", timeout=15)
    wait_until(lambda: _grid_ids(dash_duo) and _grid_ids(dash_duo) <= boxed, what="the boxed items listed")
    _clear_selection(dash_duo)

    # Click: the point opens as the seed in Explore.
    _move(driver, target["px"] + 30, target["py"] + 30)
    _move(driver, target["px"], target["py"])
    dash_duo.wait_for_contains_text("#map-tooltip", item, timeout=15)
    ActionChains(driver).click().perform()
    wait_until(lambda: "/explore" in driver.current_url, timeout=15, what="Explore opened")
    assert f"seed={item}" in driver.current_url and f"run={run}" in driver.current_url
    dash_duo.wait_for_contains_text("#explore-seed-card", title, timeout=20)
    assert dash_duo.get_logs() == []


def test_sampled_first_paint_is_completed_and_every_point_answers(dash_duo, dash_app, demo_data_dir):
    """Above FIRST_PAINT_POINTS the map draws a sample first, then every point: after that a
    point that was not in the sample shows its card and lasso lists points outside the sample."""
    import numpy as np

    run = run_ids(demo_data_dir)["prod2vec"]
    page = sys.modules["pages.map"]
    n = len(sys.modules["components.common"].run_catalog_view(run).item_ids)
    page.FIRST_PAINT_POINTS = n // 4  # this app instance only (a fresh one per test)
    driver = dash_duo.driver
    driver.set_window_size(1400, 1200)
    # every change of the number of points plotly holds, from the document's first script on
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _COUNTS_PROBE})

    @dash_app.server.before_request
    def slow_plotly_js() -> None:  # a slow link: plotly.js comes after both figures could
        if flask.request.path.endswith("/_dash-component-suites/" + page_plotlyjs_path()):
            time.sleep(3)

    dash_duo.start_server(dash_app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/map?run={run}")
    wait_until(
        lambda: len(driver.execute_script(_POINTS_JS) or []) == n,
        timeout=60,
        what="every point drawn",
    )
    # the sample was drawn all the same (the rest is asked for only once it is on screen),
    # then every point
    counts = driver.execute_script("return window.__mapCounts;")
    assert counts == [0, n // 4, n], counts
    # the Map opened as the first page starts plotly.js with the page's own scripts
    # (assets/plotly_loader.js); the graph, mounted while it loads, waits for that one
    assert driver.execute_script("return window.__plotlyRuns;") == 1
    # from its fingerprinted URL, which the browser may keep (components/plotlyjs.py)
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('plotly')"
        " && n.includes('/_dash-component-suites/'));"
    )
    assert len(loaded) == 1 and loaded[0].endswith("/_dash-component-suites/" + page_plotlyjs_path()), loaded
    dash_duo.wait_for_contains_text("#map-status", f"{n:,} items", timeout=20)
    assert "loading the rest" not in dash_duo.find_element("#map-status").text
    dash_duo.driver.execute_script(f"{GRAPH}.scrollIntoView({{block: 'center', behavior: 'instant'}})")
    points = dash_duo.driver.execute_script(_POINTS_JS)
    # the sample the first paint held (the server's seeded choice among the drawn order)
    _, _, pos, _ = page.point_positions(
        sys.modules["components.common"].run_catalog_view(run), page.projection_frame(run, "pca")
    )
    sample = set(pos[np.sort(np.random.default_rng(0).permutation(len(pos))[: n // 4])].tolist())
    outside = [p for p in points if p["pos"] not in sample]
    view = sys.modules["components.common"].run_searcher(run).view

    def gap(p: dict[str, Any]) -> float:  # to every drawn point, not only those outside the sample
        return min(((p["px"] - q["px"]) ** 2 + (p["py"] - q["py"]) ** 2) ** 0.5 for q in points if q is not p)

    target = max(outside, key=gap)
    _move(dash_duo.driver, target["px"], target["py"])
    dash_duo.wait_for_contains_text("#map-tooltip", str(view.item_ids[target["pos"]]), timeout=15)
    x0, y0, x1, y1 = _region(points)
    expected = {str(view.item_ids[p]) for p in _inside(points, x0, y0, x1, y1, 0)}
    _drag(dash_duo.driver, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)])
    dash_duo.wait_for_text_to_equal("#map-selection-info", f"{len(expected):,} items selected", timeout=15)
    dash_duo.wait_for_contains_text("#map-purity", "nearest neighbours share its category", timeout=30)
    assert dash_duo.get_logs() == []


def test_recorded_map_events_are_what_the_browser_sends(dash_duo, tmp_path, monkeypatch):
    """The callback tests' payloads (hover, click, lasso on run "A" of tests/callbacks/_emc_data)
    match what Chromium sends today; RECSYS_RECORD_FIXTURES=1 rewrites them."""
    from tests.callbacks import _emc_data
    from tests.integration.conftest import _fresh_app

    runs = _emc_data.make_data_dir(tmp_path / "data")
    app = _fresh_app(tmp_path / "data", monkeypatch)
    points = _open_map(dash_duo, app, runs["A"])
    driver = dash_duo.driver
    prop = lambda name: driver.execute_script(_PROP_JS, name)  # noqa: E731

    target = _isolated(points)
    _move(driver, target["px"], target["py"])
    wait_until(lambda: prop("hoverData"), timeout=15, what="hover data")
    dash_duo.wait_for_element("#map-tooltip .map-tip", timeout=15)
    hover = prop("hoverData")
    xs = [p["px"] for p in points]
    ys = [p["py"] for p in points]
    pad = 15
    x0, y0, x1, y1 = min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad
    _drag(driver, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)])
    dash_duo.wait_for_text_to_equal("#map-selection-info", f"{len(points)} items selected", timeout=15)
    selected = prop("selectedData")
    _clear_selection(dash_duo)
    _move(driver, target["px"] + 30, target["py"] + 30)
    _move(driver, target["px"], target["py"])
    wait_until(lambda: prop("hoverData"), timeout=15, what="hover data again")
    ActionChains(driver).click().perform()
    click = None
    for _ in range(200):  # read the click data before the page leaves for Explore
        try:
            click = prop("clickData")
        except Exception:  # the map is gone already
            break
        if click:
            break
    wait_until(lambda: "/explore" in driver.current_url, timeout=15, what="Explore opened")
    assert click, "the click data was not seen before Explore opened"
    recorded = {"run": "A", "hoverData": hover, "selectedData": selected, "clickData": click}
    if os.environ.get("RECSYS_RECORD_FIXTURES") == "1":
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    stored = json.loads(FIXTURE.read_text())

    def shape(payload: dict[str, Any]) -> list[tuple[str, ...]]:
        return [tuple(sorted(p)) for p in payload["points"]]

    for key in ("hoverData", "clickData", "selectedData"):
        assert shape(recorded[key]) == shape(stored[key]), key
        assert all(isinstance(p["customdata"], int) for p in recorded[key]["points"]), key
    assert sorted(p["customdata"] for p in selected["points"]) == list(range(20))
    assert dash_duo.get_logs() == []


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "--headless", "-q"])
