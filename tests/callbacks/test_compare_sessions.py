"""Session-kNN runs (item_knn, sknn, vsknn) on the Compare page: listed, with their metrics,
and answering a seed side by side with an embedding run (a seed is a one-item session)."""

from __future__ import annotations

from components import ids
from components.filter_panel import controls_from_filter_config
from recsys.filters import FilterConfig
from recsys.pipeline import train_run
from recsys.registry import Registry
from tests.callbacks._pages import find, page, text_of


def test_session_runs_are_listed_with_metrics_and_compared_side_by_side(root):
    made = {
        family: train_run(family, {}, "demo", root, max_cases=60, validate=False)["run_id"]
        for family in ("item_knn", "sknn", "vsknn")
    }
    p2v = next(r["run_id"] for r in Registry(root).list_runs() if r["family"] == "prod2vec")
    compare = page("compare")
    tree = compare.layout(runs=",".join([made["sknn"], made["vsknn"], p2v]))
    (picker,) = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_RUNS)
    offered = {o["value"] for o in picker.options}
    assert set(made.values()) <= offered and picker.value == [made["sknn"], made["vsknn"], p2v]
    # the metrics table of all runs carries the session runs' offline figures
    grid = find(tree, lambda c: c.__class__.__name__ == "AgGrid")
    rows = {r.get("run_id"): r for g in grid for r in (g.rowData or [])}
    for family, run_id in made.items():
        hr = Registry(root).get(run_id)["metrics"]["hr@10"]
        assert rows[run_id]["hr@10"] == hr, family
    (seed,) = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_SEED)
    chosen = [made["item_knn"], made["sknn"], made["vsknn"], p2v]
    values = controls_from_filter_config(FilterConfig())
    lists, agreement, msg = compare.compare_view(chosen, seed.value, 5, values)
    items = [
        [getattr(li, "data-item") for li in find(col, lambda c: hasattr(c, "data-item"))]
        for col in find(lists, lambda c: c.__class__.__name__ == "Col")
    ]
    assert len(items) == 4 and all(len(i) == 5 for i in items), items
    assert all(seed.value not in i for i in items)
    assert "sknn" in text_of(lists) and "vsknn" in text_of(lists)
    assert msg == [] and agreement
