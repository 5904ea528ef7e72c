"""Session-kNN runs (item_knn, sknn, vsknn) on the Compare page: listed, with their metrics,
and answering a seed side by side with an embedding run (a seed is a one-item session)."""

from __future__ import annotations

from components import ids
from components.filter_panel import controls_from_filter_config
from recsys.filters import FilterConfig
from recsys.pipeline import train_run
from recsys.registry import Registry
from tests.callbacks._pages import find, page, text_of


def columns(node):
    """Item ids of each run's column of a Compare list view, in display order."""
    return [
        [getattr(li, "data-item") for li in find(col, lambda c: c.__class__.__name__ == "Li")]
        for col in find(node, lambda c: c.__class__.__name__ == "Col")
    ]


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


def test_a_cooccurrence_run_answers_the_session_in_compare_and_explore(root):
    """A run without vectors and without a session model (co-occurrence) answers a session from
    the most recent item its model knows, in Compare's session view and Explore's recent-views
    panel (before: "has no item vectors to recommend from")."""
    from recsys.data.schema import load_dataset
    from recsys.search import recommend_for_recent, similar_items

    cooc = train_run("cooccurrence", {}, "demo", root, max_cases=60, validate=False)["run_id"]
    p2v = next(r["run_id"] for r in Registry(root).list_runs() if r["family"] == "prod2vec")
    reg = Registry(root)
    model = reg.load_model(cooc)
    inter = load_dataset("demo", root).interactions.sort_values(["sequence_id", "position"])
    sessions = inter.groupby("sequence_id")["item_id"].apply(lambda s: list(dict.fromkeys(map(str, s))))
    session = next(
        s[:3] for s in sorted(sessions, key=len, reverse=True) if (model.rows_of(s[:3]) >= 0).all()
    )
    compare = page("compare")
    tree = compare.layout(runs=",".join([cooc, p2v]), session=",".join(session))
    (picker,) = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_RUNS)
    assert cooc in {o["value"] for o in picker.options}
    values = controls_from_filter_config(FilterConfig())
    lists, agreement, msg = compare.update_lists([cooc, p2v], None, 5, values, session)
    cols = columns(lists)
    expected = recommend_for_recent(reg, cooc, session, None, 5)
    assert expected.method == "last_item" and expected.seed_item_id == session[-1]
    assert cols[0] == expected.item_ids and len(cols[0]) == 5 and not set(session) & set(cols[0])
    assert "no item vectors" not in text_of(lists) and msg == [] and agreement
    assert "own list for the most recent item it knows" in text_of(lists)
    # the seed view of the last item is the run's own list for it (library similar_items)
    seed_cols = columns(compare.update_lists([cooc, p2v], session[-1], 5, values)[0])
    assert seed_cols[0] == similar_items(reg, cooc, session[-1], None, 5).item_ids
    # Explore's recent-views panel offers the run and answers the same session
    explore = page("explore")
    tree = explore.layout()
    (runs_box,) = find(tree, lambda c: getattr(c, "id", None) == ids.EXPLORE_SESSION_RUN)
    assert cooc in {o["value"] for o in runs_box.options}
    _, recs = explore.session_view(session, cooc, 5, values, exclude_seen=True)
    shown = [getattr(c, "data-item") for c in find(recs, lambda c: hasattr(c, "data-item"))]
    assert shown == expected.item_ids and "own list for the most recent item" in text_of(recs)
