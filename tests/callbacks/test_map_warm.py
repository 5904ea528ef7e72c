"""The Map's first load drawn ahead (``components.map_warm``): a warm-up thread started with the
app draws the run the Map opens on, so the user's first request builds no figure; a new
projection or a newly activated run is never answered with the figure drawn before it."""

from __future__ import annotations

import base64
import importlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from components import ids
from recsys.registry import Registry
from tests.callbacks._pages import find, page, text_of


@pytest.fixture
def mapp(data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Map page on a copy of the shared data (these tests add projections and activate runs),
    with a first paint of 8 points (the data has 20) so that the map comes in two steps."""
    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    module = page("map")
    monkeypatch.setattr(module, "FIRST_PAINT_POINTS", 8)
    module.root, module.runs = root, data["runs"]
    return module


@pytest.fixture
def warm() -> Any:
    module = importlib.import_module("components.map_warm")
    module.FIGURES.clear()
    module.last_pass.clear()
    yield module
    module.stop_map_warmup()
    module.FIGURES.clear()


def _count_builds(mapp: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every figure the page builds from now on (the real builder, counted)."""
    calls: list[str] = []
    real = mapp.map_figure

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(str(kw.get("uirevision")))
        return real(*args, **kw)

    monkeypatch.setattr(mapp, "map_figure", counted)
    return calls


def _wait_for(warm: Any, run: str, after: float = 0.0, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if warm.last_pass.get("run") == run and warm.last_pass.get("at", 0) > after:
            assert warm.last_pass["error"] is None
            return
        time.sleep(0.02)
    raise AssertionError(f"the warm-up never drew run {run}: {warm.last_pass}")


def _graph(layout: Any) -> Any:
    return find(layout, lambda c: getattr(c, "id", None) == ids.MAP_GRAPH)[0]


def _points(fig: dict[str, Any]) -> dict[int, tuple[float, float]]:
    """position -> (x, y) of every drawn point (the typed arrays decoded)."""
    out = {}
    for trace in fig["data"]:
        xs, ys = (np.frombuffer(base64.b64decode(trace[a]["bdata"]), dtype="<f4") for a in ("x", "y"))
        out.update({int(p): (float(x), float(y)) for p, x, y in zip(trace["customdata"], xs, ys)})
    return out


def test_after_start_the_first_map_request_builds_no_figure(mapp, warm, monkeypatch):
    """The thread the app starts has drawn the default run's sample and its complete figure
    before the user asks: the page's layout and the callbacks of its first load answer from
    them, and what they answer is what the page builds on its own."""
    run = mapp.runs["A"]  # the active run: the Map's default
    started = time.time()
    assert warm.start_map_warmup(interval=0.05) is not None
    _wait_for(warm, run, after=started)
    builds = _count_builds(mapp, monkeypatch)
    layout = mapp.layout()
    first, meta = (
        _graph(layout).figure,
        find(layout, lambda c: getattr(c, "id", None) == ids.MAP_META)[0].data,
    )
    assert meta["run"] == run and meta["partial"] and meta["n_shown"] == 8
    drawn = mapp.draw_map(run, "auto", "category:0", {"jobs": []}, meta)
    full = mapp.complete_map({**drawn[1]}, run, "auto", "category:0", {"jobs": []})[0]
    assert len(_points(full)) == 20
    assert builds == []  # nothing built on the user's requests
    # the figures answered are those the page builds itself
    warm.stop_map_warmup()
    warm.FIGURES.clear()
    shutil.rmtree(mapp.root / "cache" / "map")
    assert mapp.first_figure(run, "category:0")["figure"] == first
    assert mapp.map_state(run, "auto", "category:0", None, None)["figure"] == full
    assert len(builds) == 2


def test_after_a_restart_the_first_figure_is_read_from_one_stored_file(mapp, warm, monkeypatch):
    """What the warm-up drew is also stored beside the data, named by what it was drawn from:
    a new process answers the layout from that file without drawing, and a damaged file is
    drawn anew, never served."""
    run = mapp.runs["A"]
    warm.warm_once()
    stored = list((mapp.root / "cache" / "map").glob(f"{run}.*.json"))
    assert len(stored) == 1
    expected = _graph(mapp.layout()).figure
    warm.FIGURES.clear()  # a new process: no figure in memory
    calls: list[str] = []
    real = mapp.map_state
    monkeypatch.setattr(
        mapp, "map_state", lambda run_id, *a, **k: calls.append(run_id) or real(run_id, *a, **k)
    )
    layout = mapp.layout()
    assert calls == []  # not drawn: read
    assert _graph(layout).figure == expected
    meta = find(layout, lambda c: getattr(c, "id", None) == ids.MAP_META)[0].data
    assert meta["run"] == run and meta["partial"] and meta["from_layout"]
    stored[0].write_text('{"figure": {"data": [')  # cut short
    assert _graph(mapp.layout()).figure == expected and calls == [run]


def test_a_new_projection_is_drawn_not_the_figure_drawn_before_it(mapp, warm, monkeypatch):
    from recsys.projection import _write_projection

    run = mapp.runs["A"]
    warm.warm_once()
    before = _graph(mapp.layout()).figure
    registry = Registry(mapp.root)
    item_ids = np.load(registry.run_dir(run) / "item_ids.npy")
    coords = np.stack([np.arange(20, dtype=np.float32), -np.arange(20, dtype=np.float32)], axis=1)
    # what the UMAP job writes when it is done
    _write_projection(
        registry.artifact_path(run, "projection_umap.parquet"), item_ids, coords, {"seconds": 1.5}
    )
    builds = _count_builds(mapp, monkeypatch)
    layout = mapp.layout()
    fig = _graph(layout).figure
    meta = find(layout, lambda c: getattr(c, "id", None) == ids.MAP_META)[0].data
    assert meta["method"] == "umap" and builds  # drawn anew from the new projection
    assert set(_points(fig).values()) <= {(float(i), -float(i)) for i in range(20)}
    assert _points(fig) != _points(before)
    # the warm-up's next pass draws the new projection ahead too
    builds.clear()
    warm.FIGURES.clear()
    warm.warm_once()
    assert builds  # it built the UMAP figures
    builds.clear()
    assert _graph(mapp.layout()).figure == fig and builds == []


def test_an_activated_run_is_drawn_ahead_and_never_answered_with_the_old_runs_figure(mapp, warm, monkeypatch):
    run_a, run_b = mapp.runs["A"], mapp.runs["B"]
    started = time.time()
    warm.start_map_warmup(interval=0.05)
    _wait_for(warm, run_a, after=started)
    assert _graph(mapp.layout()).figure["layout"]["uirevision"].startswith(run_a)
    activated = time.time()
    Registry(mapp.root).activate(run_b)  # as the Runs page does
    _wait_for(warm, run_b, after=activated)
    builds = _count_builds(mapp, monkeypatch)
    layout = mapp.layout()
    b_fig = _graph(layout).figure
    assert find(layout, lambda c: getattr(c, "id", None) == ids.MAP_RUN)[0].value == run_b
    assert builds == []  # drawn ahead by the warm-up
    assert b_fig["layout"]["uirevision"].startswith(run_b)
    warm.stop_map_warmup()
    warm.FIGURES.clear()
    assert mapp.first_figure(run_b, "category:0")["figure"] == b_fig  # B's own figure


def test_a_deleted_runs_stored_figures_are_swept_by_the_next_pass(mapp, warm):
    """A deleted run's stored figures are never read again: the next warm-up pass removes
    them, and leaves the other runs' figures alone."""
    run_a, run_b = mapp.runs["A"], mapp.runs["B"]
    warm.warm_once()  # stores the default run's (A) first figure
    assert mapp.stored_first_figure(run_b, "category:0") is not None  # and B's, as its Map did
    folder = mapp.root / "cache" / "map"
    assert {p.name.split(".")[0] for p in folder.glob("*.json")} == {run_a, run_b}
    Registry(mapp.root).delete(run_b)  # as the Runs page does
    warm.warm_once()
    assert {p.name.split(".")[0] for p in folder.glob("*.json")} == {run_a}


def test_two_first_requests_of_a_run_load_its_catalogue_once(mapp, monkeypatch):
    """The warm-up and a first page (Explore, the Map) asking for a run's catalogue at once:
    one loads it, the other waits for that view instead of loading it a second time beside it."""
    import threading

    import recsys.catalog as catalog_module
    import recsys.data.schema as schema

    monkeypatch.setattr(catalog_module, "_views", {})
    loads: list[str] = []
    real = schema.load_stored_catalog

    def slow_load(name: str, root: Any) -> Any:
        loads.append(name)
        time.sleep(0.5)  # a big catalogue: the second caller comes while this one loads
        return real(name, root)

    monkeypatch.setattr(schema, "load_stored_catalog", slow_load)
    views: list[Any] = []
    threads = [
        threading.Thread(target=lambda: views.append(mapp.run_catalog_view(mapp.runs["A"]))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(views) == 2 and views[0] is views[1]
    assert loads == ["tiny"]


def test_a_big_run_never_drawn_opens_at_once_in_the_maps_loading_state(mapp, monkeypatch):
    """The Map's first load of a 92k-item run (Instacart, just imported) drew its figure inside
    the layout: the page stayed blank about 4 s. A run above ``INLINE_DRAW_ITEMS`` whose figure
    is not stored yet gets its layout at once, with no figure and a status saying it is being
    drawn (the graph's loading state); the draw callback answers the figure, and the copy drawn
    behind serves the next load from the layout."""
    run = mapp.runs["A"]
    monkeypatch.setattr(mapp, "INLINE_DRAW_ITEMS", 10)  # the data's 20 items make a big run here
    layout = mapp.layout(run=run)
    assert _graph(layout).figure["data"] == []
    (store,) = find(layout, lambda c: getattr(c, "id", None) == ids.MAP_META)
    (status,) = find(layout, lambda c: getattr(c, "id", None) == ids.MAP_STATUS)
    assert store.data is None and "Drawing the map of 20 items" in text_of(status)
    figure, meta, _ = mapp.draw_map(run, "auto", "category:0", {"jobs": []}, None)
    assert len(_points(figure)) == 8 and meta["partial"]  # the first paint's sample
    end = time.time() + 30
    while mapp.stored_first_figure(run, "category:0", draw=False) is None:
        assert time.time() < end, "the first figure was never stored"
        time.sleep(0.05)
    assert _points(_graph(mapp.layout(run=run)).figure) == _points(figure)
