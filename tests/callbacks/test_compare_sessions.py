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


def test_compare_answers_one_session_with_every_run(root):
    """A session of several items: sknn, vsknn and an item-embedding run answer the same session
    (as the recent-views panel and REST /recommend do), under the same filters."""
    from recsys.data.schema import load_dataset
    from recsys.search import recommend_for_recent

    made = {
        family: train_run(family, {}, "demo", root, max_cases=60, validate=False)["run_id"]
        for family in ("sknn", "vsknn")
    }
    p2v = next(r["run_id"] for r in Registry(root).list_runs() if r["family"] == "prod2vec")
    demo = load_dataset("demo", root)
    inter = demo.interactions.sort_values(["sequence_id", "position"])
    sessions = inter.groupby("sequence_id")["item_id"].apply(lambda s: list(dict.fromkeys(map(str, s))))
    session = max(sessions, key=len)[:3]
    compare = page("compare")
    tree = compare.layout(runs=",".join([made["sknn"], made["vsknn"], p2v]), session=",".join(session))
    (box,) = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_SESSION)
    assert box.value == session and {o["value"] for o in box.options} >= set(session)
    chosen = [made["sknn"], made["vsknn"], p2v]
    values = controls_from_filter_config(FilterConfig())
    lists, agreement, msg = compare.update_lists(chosen, None, 5, values, session)

    def columns(node):
        return [
            [getattr(li, "data-item") for li in find(col, lambda c: c.__class__.__name__ == "Li")]
            for col in find(node, lambda c: c.__class__.__name__ == "Col")
        ]

    got = columns(lists)
    reg = Registry(root)
    for run, items in zip(chosen, got):
        assert items == recommend_for_recent(reg, run, session, None, 5).item_ids, run
        assert not set(session) & set(items)
    assert "Session" in text_of(lists) and "similar past sessions" in text_of(lists)
    assert "mean of the recent items" in text_of(lists) and msg == [] and agreement
    # the session's lists are not the single seed's (the most recent item alone)
    single = columns(compare.update_lists(chosen, session[-1], 5, values)[0])
    assert got[0] != single[0] or got[1] != single[1]
    # the same filters for every run, the session-kNN ones included
    cat = demo.catalog.assign(item_id=demo.catalog["item_id"].astype(str)).set_index("item_id")
    brand = cat.loc[got[0][0], "brand"]
    denied = columns(compare.update_lists(chosen, None, 5, {**values, "brands_deny": [brand]}, session)[0])
    assert all(brand not in {cat.loc[i, "brand"] for i in col} for col in denied)
    assert all(len(col) == 5 for col in denied)
