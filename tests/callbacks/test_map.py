"""Map callbacks as plain functions: figure content and size, highlight, hover, click, lasso, purity."""

from __future__ import annotations

import base64
import contextvars
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import Patch
from dash._utils import to_json

from tests.callbacks._pages import find, page, text_of

# Event data Chromium sent for run "A" of _emc_data (hover, click, a lasso around every point),
# recorded by tests/integration/test_map_events.py (which also checks it is still what the
# browser sends): the callbacks see exactly these payloads, never hand-written ones.
EVENTS = json.loads((Path(__file__).parent / "fixtures" / "map_events.json").read_text())


@pytest.fixture
def mapp(data: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data["root"]))
    return page("map")


def _drawn(mapp: Any, run: str, color: str = "category:0") -> dict[str, Any]:
    return mapp.map_state(run, "auto", color, {"jobs": []}, None)


def _decode(value: Any) -> Any:
    """A base64 typed array of the figure (as plotly.js reads it) as a numpy array."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return value


def _traces(fig: dict[str, Any]) -> list[SimpleNamespace]:
    """The figure's traces with their arrays decoded (``t.x``, ``t.marker["color"]``, ...)."""
    out = []
    for trace in fig["data"]:
        marker = {k: _decode(v) for k, v in trace.get("marker", {}).items()}
        out.append(SimpleNamespace(**{**{k: _decode(v) for k, v in trace.items()}, "marker": marker}))
    return out


def test_pca_map_draws_every_item_with_positions_and_an_empty_highlight_trace(mapp, data):
    out = _drawn(mapp, data["runs"]["A"])
    traces = _traces(out["figure"])
    assert out["meta"]["method"] == "pca" and out["meta"]["n_shown"] == 20 == out["meta"]["n_total"]
    groups = {t.name.split(" (")[0]: len(t.x) for t in traces[:-1]}
    assert groups == {"Women": 10, "Men": 5, "Home": 5}
    assert len(traces[-1].x) == 0 and traces[-1].name == "search matches"
    assert all(t.type == "scattergl" and len(t.x) == len(t.y) == len(t.customdata) for t in traces)
    # the figure is valid for plotly (its own validators accept every property)
    assert len(go.Figure(out["figure"]).data) == len(traces)
    # customdata holds catalogue positions: every item exactly once
    view = mapp.run_searcher(data["runs"]["A"]).view
    shown = sorted(view.item_ids[int(p)] for t in traces for p in t.customdata)
    assert shown == sorted(view.item_ids)
    assert "UMAP not computed yet" in text_of(out["status"])


def test_sampled_first_paint_then_every_point_then_purity(mapp, data):
    """Above the first-paint size the map comes in two steps: a seeded sample that says so,
    then (driven by the meta store) every point; purity waits for the complete map."""
    from dash import no_update

    run = data["runs"]["A"]
    first = mapp.map_state(run, "auto", "category:0", {"jobs": []}, None, first_paint=8)
    meta = first["meta"]
    assert meta["partial"] and meta["n_shown"] == 8 and meta["n_total"] == 20
    assert sum(len(t.x) for t in _traces(first["figure"])) == 8
    assert "showing 8 of 20 items, loading the rest" in text_of(first["status"])
    # no selection on the sample (it would list only sampled items): zoom until every point is in
    assert first["figure"]["layout"]["dragmode"] == "zoom"
    assert mapp.update_purity(meta, 4) is no_update
    # the jobs poll while the sample is shown does not send it again
    assert mapp.map_state(run, "auto", "category:0", {"jobs": []}, meta, 8)["figure"] is no_update

    figure, full, status = mapp.complete_map(meta, run, "auto", "category:0", {"jobs": []})
    traces = _traces(figure)
    assert not full.get("partial") and full["n_shown"] == 20 == sum(len(t.x) for t in traces)
    assert figure["layout"]["dragmode"] == "lasso"
    shown = {int(p) for t in traces for p in t.customdata}
    sample = {int(p) for t in _traces(first["figure"]) for p in t.customdata}
    assert shown == set(range(20)) and sample < shown  # the sample's points are among them
    assert "20 items" in text_of(status) and "loading" not in text_of(status)
    assert mapp.complete_map(full, run, "auto", "category:0", {"jobs": []}) == (no_update,) * 3
    assert "nearest neighbours" in text_of(mapp.update_purity(full, 4))
    # the colouring or projection changed while the rest was loading: nothing stale is sent
    assert mapp.complete_map(meta, run, "auto", "brand", {"jobs": []}) == (no_update,) * 3
    moved = {**meta, "method": "umap"}  # no UMAP stored: the full figure would be PCA
    assert mapp.complete_map(moved, run, "auto", "category:0", {"jobs": []}) == (no_update,) * 3


def test_the_page_layout_carries_the_first_figure_and_its_meta(mapp, data, monkeypatch):
    """The sample (or the whole small map) comes with the layout, no round trip: the graph holds
    it, the meta store says which it is, and the draw callback then leaves the figure alone."""
    run = data["runs"]["A"]
    monkeypatch.setattr(mapp, "FIRST_PAINT_POINTS", 8)
    layout = mapp.layout(run=run)
    (graph,) = find(layout, lambda n: getattr(n, "id", None) == mapp.ids.MAP_GRAPH)
    (store,) = find(layout, lambda n: getattr(n, "id", None) == mapp.ids.MAP_META)
    (status,) = find(layout, lambda n: getattr(n, "id", None) == mapp.ids.MAP_STATUS)
    meta = store.data
    assert meta["run"] == run and meta["partial"] and meta["n_shown"] == 8 and meta["n_total"] == 20
    assert graph.figure["layout"]["meta"] == meta["sample"]
    assert sum(len(t.x) for t in _traces(graph.figure)) == 8
    assert "showing 8 of 20 items, loading the rest" in text_of(status)
    assert mapp.map_state(run, "auto", "category:0", {"jobs": []}, meta, 8)["figure"] is mapp.no_update
    # every point when there are fewer than the first paint's size, and no "loading" then
    monkeypatch.setattr(mapp, "FIRST_PAINT_POINTS", 10_000)
    (store,) = find(mapp.layout(run=run), lambda n: getattr(n, "id", None) == mapp.ids.MAP_META)
    assert store.data["n_shown"] == 20 and not store.data.get("partial")


def test_a_viewer_is_told_why_there_is_no_compute_umap_button(mapp, data):
    """The button is hidden for a viewer (the shell's role-viewer class): a viewer-only line takes
    its place, where "UMAP not computed yet" left them looking for it (s41-w)."""
    layout = mapp.layout(run=data["runs"]["A"])
    (button,) = find(layout, lambda n: getattr(n, "id", None) == mapp.ids.MAP_UMAP_BUTTON)
    (note,) = find(layout, lambda n: "viewer-only" in str(getattr(n, "className", "")).split())
    assert "editor-only" in button.className.split()
    assert text_of(note) == "Computing UMAP needs the editor role"


def test_search_typed_on_the_sample_stays_highlighted_when_every_point_arrives(mapp, data):
    run = data["runs"]["A"]
    meta = mapp.map_state(run, "auto", "category:0", {"jobs": []}, None, first_paint=8)["meta"]
    figure, full, _ = mapp.complete_map(meta, run, "auto", "category:0", {"jobs": []}, "tote")
    last = full["n_traces"] - 1
    assert len(_traces(figure)[last].x) == 5  # the five tote bags, sampled or not
    assert all(figure["data"][i]["marker"]["opacity"] == 0.25 for i in range(last))
    plain, _, _ = mapp.complete_map(meta, run, "auto", "category:0", {"jobs": []}, "")
    assert len(_traces(plain)[last].x) == 0


def test_same_state_does_not_resend_the_figure(mapp, data):
    first = _drawn(mapp, data["runs"]["A"])
    again = mapp.map_state(data["runs"]["A"], "auto", "category:0", {"jobs": []}, first["meta"])
    assert again["figure"] is mapp.no_update
    running = {
        "jobs": [
            {
                "kind": "project",
                "status": "running",
                "fraction": 0.4,
                "message": "fitting UMAP on 20 points: finding neighbours: NN-descent 3/13",
                "params": {"run_id": data["runs"]["A"], "method": "umap"},
            }
        ]
    }
    status = mapp.map_state(data["runs"]["A"], "auto", "category:0", running, first["meta"])["status"]
    assert "(40%: finding neighbours: NN-descent 3/13)" in text_of(status)
    waiting = {
        "jobs": [
            {**running["jobs"][0], "status": "queued", "message": "queued: waiting for a free UMAP slot"}
        ]
    }
    status = mapp.map_state(data["runs"]["A"], "auto", "category:0", waiting, first["meta"])["status"]
    assert "UMAP queued (waiting for a free UMAP slot); PCA shown" in text_of(status)


def test_colourings_brand_gender_and_price(mapp, data):
    run = data["runs"]["A"]
    brand = _traces(_drawn(mapp, run, "brand")["figure"])
    assert {t.name.split(" (")[0] for t in brand[:-1]} == {"Acme", "Bolt", "Crest"}
    gender = _traces(_drawn(mapp, run, "gender")["figure"])
    assert {t.name.split(" (")[0] for t in gender[:-1]} == {"women", "men", "unisex"}
    price = _traces(_drawn(mapp, run, "price")["figure"])
    assert len(price) == 2 and price[0].marker["colorscale"] is not None
    view = mapp.run_searcher(run).view
    expected = np.log10(view.price[np.asarray(price[0].customdata)])
    assert np.allclose(np.asarray(price[0].marker["color"], dtype=float), expected, atol=1e-5)


def test_top_n_keeps_the_largest_groups_and_lumps_the_rest():
    class View:
        brand_display = np.array([f"b{i}" for i in range(20)], dtype=object)
        brand = np.repeat(np.arange(20), np.arange(20, 0, -1))

    mapp = page("map")
    labels = mapp.point_labels(View(), np.arange(len(View.brand)), "brand")
    assert set(labels) == {f"b{i}" for i in range(mapp.TOP_N)} | {mapp.OTHER}


def test_figure_for_100k_points_is_float32_typed_arrays_under_3_mb(mapp, data):
    view = mapp.run_searcher(data["runs"]["A"]).view
    n = 100_000
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    pos = rng.integers(0, view.n, n).astype(np.int32)
    for color in ("category:0", "price"):
        fig = mapp.map_figure(x, y, pos, view, color)
        text = to_json(fig)  # as Dash sends it
        assert len(text.encode()) <= 3_000_000, (color, len(text))
        first = json.loads(text)["data"][0]
        assert first["x"]["dtype"] == "f4"
        # a plain list: Dash's Graph reads customdata[pointNumber] from the figure into event data,
        # which yields nothing from a typed array ({"dtype", "bdata"}); the callbacks need it
        assert isinstance(first["customdata"], list) and all(isinstance(v, int) for v in first["customdata"])


def test_sampling_above_the_limit_is_seeded_and_reported(mapp, data):
    view = mapp.run_searcher(data["runs"]["A"]).view
    frame = mapp.projection_frame(data["runs"]["A"], "pca")
    x, y, pos, total = mapp.point_positions(view, frame, max_points=7)
    assert len(x) == len(pos) == 7 and total == 20 and x.dtype == np.float32
    assert np.array_equal(pos, mapp.point_positions(view, frame, max_points=7)[2])
    status = mapp._status_tail({"n_shown": 7, "n_total": 20}, None, None, "auto")
    assert "7 of 20 items" in text_of(status)


def test_search_highlight_is_a_patch_of_the_last_trace(mapp, data):
    run = data["runs"]["A"]
    meta = _drawn(mapp, run)["meta"]
    patch = mapp.highlight_patch("tote", run, meta, {"data": []})
    assert isinstance(patch, Patch)
    ops = patch.to_plotly_json()["operations"]
    last = meta["n_traces"] - 1
    xs = next(o for o in ops if o["location"] == ["data", last, "x"])
    assert len(xs["params"]["value"]) == 5  # the five tote bags
    cleared = mapp.highlight_patch("", run, meta, {"data": []}).to_plotly_json()["operations"]
    assert next(o for o in cleared if o["location"] == ["data", last, "x"])["params"]["value"] == []


def test_hover_click_and_lasso_on_recorded_browser_events(mapp, data):
    run = data["runs"][EVENTS["run"]]
    view = mapp.run_searcher(run).view
    # the figure the browser drew holds the recorded point where the payload says it is
    traces = _traces(_drawn(mapp, run)["figure"])
    hovered = EVENTS["hoverData"]["points"][0]
    assert traces[hovered["curveNumber"]].customdata[hovered["pointNumber"]] == hovered["customdata"]
    item = str(view.item_ids[hovered["customdata"]])
    title = str(view.attributes([hovered["customdata"]])["title"].iloc[0])

    show, bbox, card = mapp.show_tooltip(EVENTS["hoverData"], run)
    assert show is True and bbox == hovered["bbox"]
    assert title in text_of(card) and item in text_of(card)
    assert mapp.show_tooltip(None, run)[0] is False  # clear_on_unhover sends None

    clicked = EVENTS["clickData"]["points"][0]
    href = mapp.open_in_explore(EVENTS["clickData"], run)
    assert href == f"/explore?seed={view.item_ids[clicked['customdata']]}&run={run}"

    box, info = mapp.list_selection(EVENTS["selectedData"], run)
    grid = find(box, lambda c: getattr(c, "id", None) == "map-selection")[0]
    assert info == "20 items selected"
    # what the selection is: its categories' shares (the 20 items of four categories, 5 each)
    summary = text_of(find(box, lambda c: getattr(c, "data-summary", None) == "categories")[0])
    assert summary.startswith("Categories: ") and summary.count("25%") == 3
    assert sorted(r["item_id"] for r in grid.rowData) == sorted(view.item_ids)
    # listed from the lasso's centre out (they came in catalogue order, s44's walk), and said so;
    # this lasso is a rectangle drawn around every point: its centre is the rectangle's middle
    lasso = EVENTS["selectedData"]["lassoPoints"]
    mid = np.array([(min(lasso["x"]) + max(lasso["x"])) / 2, (min(lasso["y"]) + max(lasso["y"])) / 2])
    where = {str(view.item_ids[p["customdata"]]): (p["x"], p["y"]) for p in EVENTS["selectedData"]["points"]}
    dist = [float(np.hypot(*(np.array(where[r["item_id"]]) - mid))) for r in grid.rowData]
    assert dist == sorted(dist) and [r["item_id"] for r in grid.rowData] != [str(i) for i in view.item_ids]
    assert "Listed nearest the lasso's centre first" in text_of(box)
    hint, info = mapp.list_selection(None, run)  # a double-click deselects: None
    assert info == "" and not hasattr(hint, "rowData") and "Lasso or box" in text_of(hint)
    assert mapp.selection_rows(view, list(range(20)), limit=5)[1] == "20 items selected (first 5 listed)"
    rows, info = mapp.selection_rows(view, list(range(19, -1, -1)), limit=5, ordered=True)
    assert info == "20 items selected (the 5 nearest its centre listed)"
    assert [r["item_id"] for r in rows] == [str(view.item_ids[p]) for p in (19, 18, 17, 16, 15)]


def test_a_catalogue_without_prices_shows_no_price_dashes_on_the_map(mapp):
    """Instacart has no prices: the hover card read "—" and the lasso's grid had a Price column
    of blanks (s44's walk); with prices, both keep them."""
    import pandas as pd

    from recsys.catalog import CatalogView

    items = pd.DataFrame(
        {"item_id": ["p0", "p1"], "title": ["Banana", "Lemon"], "category": ["Fruit"] * 2, "brand": ""}
    )
    for prices, shown in (([float("nan")] * 2, False), ([1.0, 2.5], True)):
        view = CatalogView(["p0", "p1"], items.assign(price=prices))
        card = text_of(mapp.hover_card(view, 1))
        assert ("2.50" in card) is shown and "—" not in card
        rows, _ = mapp.selection_rows(view, [0, 1])
        grid = mapp.selection_grid(rows)
        assert ("price" in [c["field"] for c in grid.columnDefs]) is shown


def test_purity_per_category(mapp, data):
    out = mapp.purity_view(data["runs"]["A"], "category:0", k=4)
    text = text_of(out)
    # every item's 4 nearest neighbours are the other 4 of its own category except for bags/shoes mixing
    assert "of each item's 4 nearest neighbours share its category (top level)" in text
    graph = out.children[1]
    purity = dict(zip(graph.figure.data[0].y, graph.figure.data[0].x, strict=True))
    assert purity["Home"] == pytest.approx(1.0)
    assert purity["Men"] == pytest.approx(1.0)


def test_umap_button_submits_one_job_per_run(mapp, data, monkeypatch):
    from recsys.jobs import JobStore

    submitted = []
    monkeypatch.setattr(
        JobStore, "submit", lambda self, kind, params, label=None: submitted.append(params) or "j1"
    )
    msg = mapp.submit_umap(1, data["runs"]["A"], {"jobs": []})
    assert submitted == [{"run_id": data["runs"]["A"], "method": "umap"}] and "j1" in text_of(msg)
    busy = {"jobs": [{"kind": "project", "status": "queued", "params": {"run_id": data["runs"]["A"]}}]}
    assert "already computing" in text_of(mapp.submit_umap(1, data["runs"]["A"], busy))
    assert len(submitted) == 1


def test_umap_projection_is_used_when_stored(mapp, data):
    import pandas as pd

    from recsys.projection import projection_name
    from recsys.registry import Registry

    run = data["runs"]["B"]  # a stored UMAP file as the "project" job writes it (UMAP itself is slow to JIT)
    ids_ = Registry(data["root"]).load_model(run).item_ids_
    frame = pd.DataFrame(
        {"item_id": ids_, "x": np.arange(20, dtype=np.float32), "y": np.zeros(20, np.float32)}
    )
    frame.to_parquet(Registry(data["root"]).artifact_path(run, projection_name("umap")), index=False)
    out = mapp.map_state(run, "auto", "category:0", {"jobs": []}, None)
    assert out["meta"]["method"] == "umap" and out["meta"]["n_shown"] == 20
    xs = sorted(float(v) for t in _traces(out["figure"]) for v in t.x)
    assert xs == list(range(20))
    assert mapp.map_state(run, "pca", "category:0", {"jobs": []}, None)["meta"]["method"] == "pca"


def test_compute_umap_is_offered_only_while_the_run_has_no_umap(mapp, data):
    """The Map offered "Compute UMAP" while the UMAP projection was shown (s44's walk): a run's
    vectors never change and UMAP is seeded, so the job would draw the same map again."""
    import pandas as pd

    from components import ids
    from recsys.projection import projection_name
    from recsys.registry import Registry

    def offer(tree: Any) -> Any:
        return find(tree, lambda c: getattr(c, "id", None) == ids.MAP_UMAP_OFFER)[0]

    a, b = data["runs"]["A"], data["runs"]["B"]
    registry = Registry(data["root"])
    path = registry.artifact_path(b, projection_name("umap"))
    if not path.exists():  # as the "project" job writes it (this module's data: maybe already there)
        ids_ = registry.load_model(b).item_ids_
        frame = pd.DataFrame(
            {"item_id": ids_, "x": np.arange(20, dtype=np.float32), "y": np.zeros(20, np.float32)}
        )
        frame.to_parquet(path, index=False)
    shown = offer(mapp.layout(run=a))
    assert shown.style == {} and find(shown, lambda c: getattr(c, "id", None) == ids.MAP_UMAP_BUTTON)
    assert offer(mapp.layout(run=b)).style == {"display": "none"}  # UMAP is shown: no button
    # the user switches runs in the Variant dropdown: the button follows
    assert mapp.follow_umap(b, {"jobs": []}, {}) == {"display": "none"}
    assert mapp.follow_umap(a, {"jobs": []}, {"display": "none"}) == {}
    from dash import no_update

    assert mapp.follow_umap(a, {"jobs": []}, {}) is no_update  # nothing changed: nothing sent


def test_point_callbacks_on_a_run_deleted_since_drawing_answer_without_raising(mapp, data):
    """Another tab (or the Runs page) deleted the run the map still shows."""
    from dash import no_update

    drawn = _drawn(mapp, data["runs"]["A"])
    grid, info = mapp.list_selection(EVENTS["selectedData"], "deleted-run")
    assert not hasattr(grid, "rowData") and "Could not list the selection" in info and "deleted-run" in info
    assert mapp.open_in_explore(EVENTS["clickData"], "deleted-run") is no_update
    assert mapp.highlight("shoe", "deleted-run", drawn["meta"], drawn["figure"]) is no_update


def test_unknown_run_in_the_url_says_so_and_shows_the_default_run(mapp, data):
    page_ = mapp.layout(run="no-such-run")
    assert "Run 'no-such-run' has no map here" in text_of(page_)
    assert "no map here" not in text_of(mapp.layout(run=data["runs"]["A"]))


def test_the_first_draw_call_announces_the_layouts_meta_whatever_triggered_it(mapp, data):
    """The layout brings the first figure and its meta; draw_map's first call must send that
    meta on (update_purity and complete_map wait for it), also when the shell's jobs store was
    filled before that call went out: Dash then merges the two, and the call comes triggered by
    the jobs store, not as an initial call (a data directory with jobs left the purity empty)."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    run = data["runs"]["A"]
    (store,) = find(mapp.layout(run=run), lambda n: getattr(n, "id", None) == mapp.ids.MAP_META)
    jobs = {"jobs": [{"kind": "project", "status": "done", "params": {"run_id": run, "method": "umap"}}]}

    def draw(triggered: list[dict[str, Any]], drawn: dict[str, Any]) -> tuple:
        def call() -> tuple:
            context_value.set(AttributeDict(triggered_inputs=triggered))
            return mapp.draw_map(run, "auto", "category:0", jobs, drawn)

        return contextvars.copy_context().run(call)

    for triggered in ([], [{"prop_id": f"{mapp.ids.JOBS_STORE}.data", "value": jobs}]):
        figure, meta, _ = draw(triggered, store.data)
        assert figure is mapp.no_update  # the layout's figure stays
        assert meta == {k: v for k, v in store.data.items() if k != "from_layout"}
        # once announced, a poll of the jobs store sends nothing again
        assert draw(triggered, meta)[1] is mapp.no_update


def test_purity_of_anonymised_category_ids_reads_them_as_names(data, tmp_path, monkeypatch):
    """Taobao's categories are digit ids: the purity bars' axis read them as numbers (bars placed
    at y = 2520377 and so on). They read "category 2520377" on a category axis."""
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.registry import Registry
    from tests.callbacks._emc_data import _embedding_run, catalog, interactions, vectors

    cat = catalog()
    ids_ = cat["item_id"].tolist()
    cat["category"] = cat["category"].map(lambda c: str(2520377 + len(c.split(" > ")[0])))
    ds = build_dataset("digits", cat, interactions(ids_))
    save_dataset(ds, tmp_path)
    run = _embedding_run(Registry(tmp_path), ds, vectors(ids_), "digits run", {"2520381": 0.2})
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    figure = page("map").purity_view(run, "category:0", k=4).children[1].figure
    assert figure.layout.yaxis.type == "category"
    assert sorted(figure.data[0].y) == ["category 2520380", "category 2520381", "category 2520382"]
