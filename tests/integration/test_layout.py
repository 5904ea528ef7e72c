"""Browser checks of the page layout (headless Chromium; ``pytest --headless``).

No page scrolls sideways at a common laptop width, and an empty metrics grid shows its
"no runs" overlay without a console error (dash-ag-grid 35 blocks HTML overlay templates).
"""

from __future__ import annotations

import time

from tests.integration._browser import run_ids, wait_until

#: JS: elements whose right edge passes the viewport (the widest first), as "tag.class (right px)".
OVERFLOW_JS = """
const w = document.documentElement.clientWidth;
const out = [];
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (r.width > 0 && r.right > w + 1) {
    out.push([r.right, el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
              '.' + String(el.className && el.className.baseVal !== undefined ? el.className.baseVal
              : el.className).split(' ').join('.')]);
  }
}
out.sort((a, b) => b[0] - a[0]);
return {scroll: document.documentElement.scrollWidth, client: w,
        culprits: out.slice(0, 12).map(x => x[1] + ' (' + Math.round(x[0]) + ')')};
"""


def test_no_page_scrolls_sideways(dash_duo, dash_app, demo_data_dir):
    from components import ids

    run = run_ids(demo_data_dir)["prod2vec"]
    dash_duo.driver.set_window_size(1280, 900)
    dash_duo.start_server(dash_app)
    pages = {
        "map": (f"/map?run={run}", f"#{ids.MAP_GRAPH} .js-plotly-plot"),
        "explore": (f"/explore?run={run}", "#explore-results .item-card"),
        "overview": ("/", ".page-body h2, .page-body h1"),
    }
    for name, (path, ready) in pages.items():
        dash_duo.driver.get(dash_duo.server_url + path)
        dash_duo.wait_for_element(ready, timeout=40)
        time.sleep(1.0)  # let late callbacks (figure, grids) lay out
        got = dash_duo.driver.execute_script(OVERFLOW_JS)
        assert got["scroll"] <= got["client"], f"{name} overflows: {got}"
    assert dash_duo.get_logs() == []


def test_empty_metrics_grid_shows_its_overlay_without_console_errors(dash_duo, tmp_path, monkeypatch):
    from components import ids
    from tests.integration.conftest import _fresh_app

    app = _fresh_app(tmp_path / "empty", monkeypatch)
    dash_duo.driver.set_window_size(1280, 900)
    dash_duo.start_server(app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_element(f"#{ids.RUNS_GRID} .ag-root-wrapper", timeout=40)
    wait_until(
        lambda: "No runs yet" in dash_duo.find_element(f"#{ids.RUNS_GRID}").text,
        timeout=20,
        what="the grid's no-rows overlay",
    )
    got = dash_duo.driver.execute_script(OVERFLOW_JS)
    assert got["scroll"] <= got["client"], f"runs overflows: {got}"
    assert dash_duo.get_logs() == []


#: JS: the Runs grid's run names whose cell cuts them ("content · demo · 2026-..."), as text.
CUT_NAMES_JS = """
return Array.from(document.querySelectorAll('#runs-grid .ag-cell[col-id="label"]'))
  .filter(c => { const v = c.querySelector('.ag-cell-value') || c; return v.scrollWidth > v.clientWidth + 1; })
  .map(c => { const v = c.querySelector('.ag-cell-value') || c; return c.textContent + ' ' + v.scrollWidth + '/' + v.clientWidth + '/' + c.clientWidth; });
"""


def test_the_runs_grid_shows_a_generated_run_name_whole(dash_duo, app, demo_data_copy):
    """A run saved without a label is named "family · dataset · date time" (run_label); at a
    laptop's width its Run cell shows the name whole: cut, every run of a day read alike."""
    from components import ids
    from recsys.pipeline import train_run

    meta = train_run("cooccurrence", {}, "demo", demo_data_copy, activate=False)  # no label
    dash_duo.driver.set_window_size(1280, 900)
    dash_duo.start_server(app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    assert ids.RUNS_GRID == "runs-grid"
    wait_until(
        lambda: "cooccurrence · demo · 20" in dash_duo.find_element(f"#{ids.RUNS_GRID}").text,
        timeout=40,
        what=f"the unlabelled run {meta['run_id']} in the grid",
    )
    assert dash_duo.driver.execute_script(CUT_NAMES_JS) == []
    assert dash_duo.get_logs() == []
