"""Every graph the pages draw works with the trimmed plotly.js bundle (components.plotly_bundle),
in headless Chromium (``pytest --headless``).

plotly.js draws a trace whose type the bundle lacks as an empty ``scatter``, without any error
in the console: these tests open each page that draws, as a user gets there (the Map, Compare,
a tuned run selected on Runs), and check that every trace is drawn as the type it asked for,
that its marks are on screen, and that the page loaded the trimmed bundle, not the full one.
"""

from __future__ import annotations

from components.plotly_bundle import TRACES
from recsys.registry import Registry
from tests.integration._browser import click, run_ids, wait_until

# Each graph on the page: the trace types its figure asks for, those plotly drew, and whether
# the marks of each drawn type are in the DOM (a WebGL canvas, bar paths, parcoords axes).
_GRAPHS_JS = """
const marks = {scattergl: 'canvas', bar: '.barlayer .point path', parcoords: '.parcoords .y-axis'};
return Array.from(document.querySelectorAll('.js-plotly-plot')).map((gd) => {
  const drawn = (gd._fullData || []).map((t) => t.type);
  return {
    graph: gd.parentElement.closest('[id]') ? gd.parentElement.closest('[id]').id : '',
    asked: (gd.data || []).map((t) => t.type || 'scatter'),
    drawn: drawn,
    marked: drawn.map((t) => !marks[t] || gd.querySelectorAll(marks[t]).length > 0),
  };
});
"""
# plotly.js files the document loaded
_LOADED_JS = (
    "return performance.getEntriesByType('resource').map((e) => e.name)"
    ".filter((n) => n.includes('plotly') && n.endsWith('.js') && !n.includes('/assets/'));"
)


def _graphs(dash_duo, *graph_ids: str) -> list[dict]:
    """The graphs inside ``graph_ids`` once each holds a figure with traces."""

    def found() -> list[dict]:
        got = [g for g in dash_duo.driver.execute_script(_GRAPHS_JS) if g["graph"] in graph_ids]
        ready = {g["graph"] for g in got if g["asked"] and len(g["drawn"]) == len(g["asked"])}
        return got if ready == set(graph_ids) else []

    wait_until(found, timeout=40, what=f"graphs {graph_ids} drawn")
    return found()


def _check(dash_duo, graphs: list[dict], expected: set[str]) -> None:
    asked = {t for g in graphs for t in g["asked"]}
    assert asked == expected, graphs  # the page still draws what this test was written for
    for g in graphs:
        assert g["drawn"] == g["asked"], f"{g['graph']}: the bundle lacks a trace type: {g}"
        assert all(g["marked"]), f"{g['graph']}: nothing on screen: {g}"
    assert asked <= set(TRACES)
    loaded = dash_duo.driver.execute_script(_LOADED_JS)
    assert len(loaded) == 1 and "/components.plotly_bundle/plotly-recsys." in loaded[0], loaded


def test_map_scatter_and_purity_bars_draw_with_the_trimmed_bundle(dash_duo, dash_app, demo_data_dir):
    run = run_ids(demo_data_dir)["prod2vec"]
    dash_duo.driver.set_window_size(1400, 1200)
    dash_duo.start_server(dash_app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/map?run={run}")
    dash_duo.wait_for_contains_text("#map-purity", "nearest neighbours share its category", timeout=40)
    _check(dash_duo, _graphs(dash_duo, "map-graph", "map-purity"), {"scattergl", "bar"})
    assert dash_duo.get_logs() == []


def _tuned(root, run_id: str) -> None:
    """Give ``run_id`` the tuning record recsys.tuning.tune writes (three trials, one failed)."""
    trial = lambda n, value, window, sg: {  # noqa: E731
        "number": n,
        "params": {"window": window, "sg": sg},
        "value": value,
        "mrr": value,
        "seconds": 1.5 + n,
        "state": "COMPLETE" if value is not None else "FAIL",
    }
    trials = [trial(0, 0.21, 3, 1), trial(1, 0.18, 8, 0), trial(2, None, 5, 1)]
    Registry(root).update(
        run_id,
        tuning={
            "best_params": {"window": 3, "sg": 1},
            "best_value": 0.21,
            "best_trial": 0,
            "metric": "hr@10 (validation, item)",
            "trials": trials,
            "n_trials": 3,
            "searched": ["window", "sg"],
            "seconds": 6.0,
            "validation": {"validation_cases": 120},
        },
    )


def test_compare_bars_draw_with_the_trimmed_bundle(dash_duo, dash_app, demo_data_dir):
    runs = run_ids(demo_data_dir)
    dash_duo.driver.set_window_size(1400, 1600)
    dash_duo.start_server(dash_app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/compare?runs={runs['prod2vec']},{runs['popularity']}")
    _check(dash_duo, _graphs(dash_duo, "compare-per-category"), {"bar"})
    assert dash_duo.get_logs() == []


def test_a_tuned_runs_parcoords_draws_with_the_trimmed_bundle(dash_duo, dash_app_copy, demo_data_copy):
    runs = run_ids(demo_data_copy)
    _tuned(demo_data_copy, runs["prod2vec"])
    dash_duo.driver.set_window_size(1400, 1600)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    row = f"#runs-grid .ag-center-cols-container .ag-row[row-id='{runs['prod2vec']}'] .ag-cell"
    dash_duo.wait_for_element(row, timeout=40)
    click(dash_duo, dash_duo.find_element(row))  # the user selects the tuned run
    _check(dash_duo, _graphs(dash_duo, "runs-tuning"), {"parcoords"})
    assert dash_duo.get_logs() == []
