"""The slowest queries of a category filter that follows the vectors (issue 18, p99 tail).

A seed whose own category is not its vector cluster's (a stray) finds few items of its category
among its nearest neighbours: the over-fetch on the main graph falls short, and the query used
to pay a deeper fetch and an exact search over its category block. Such misses now queue the
block's own graph (also for a block of half the catalogue, within the filter's memory budget),
and once it is built the stray's query (with a price band inside the block too) is answered from
it; an exact search over a key range reads one slice of a key-ordered copy of the vectors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from tests.unit.test_search import GeneralPathCalls

N = 8000


@pytest.fixture(scope="module")
def correlated():
    """Two top-level categories over two vector clusters (subclusters below), 20% of the items
    with a random category (strays): half of those are in the other category than their cluster."""
    rng = np.random.default_rng(5)
    top = rng.integers(0, 2, N)
    sub = rng.integers(0, 5, N)
    centers = rng.normal(size=(2, 16)).astype(np.float32) * 1.5
    subc = rng.normal(size=(2, 5, 16)).astype(np.float32)
    vec = centers[top] + subc[top, sub] + 0.6 * rng.normal(size=(N, 16)).astype(np.float32)
    stray = rng.random(N) < 0.2
    label = np.where(stray, rng.integers(0, 2, N), top)
    cat = pd.DataFrame(
        {
            "item_id": [f"c{i}" for i in range(N)],
            "title": [f"t{i}" for i in range(N)],
            "category": [f"T{x} > S{y}" for x, y in zip(label, sub)],
            "brand": [f"b{x}" for x in rng.integers(0, 50, N)],
            "gender": rng.choice(["women", "men", ""], N),
            "price": rng.lognormal(3, 0.7, N),
            "adult": np.zeros(N, dtype=bool),
        }
    )
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=2)
    strays = [f"c{i}" for i in np.flatnonzero(label != top)]
    return cat, vec, index, strays


def searcher_of(correlated) -> FilteredSearcher:
    cat, vec, index, _ = correlated
    s = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)  # small: builds inline
    s.sub_index_min_rows, s.sub_index_gain = 100, 0.0  # small catalogue: let the graph pay
    return s


def recall_and_counts(searcher, cfg, items, got) -> float:
    hits = total = 0
    for item, res in zip(items, got):
        ref = searcher.search(item, cfg, 10, plan="exact")
        assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule, item
        assert len(res) == 10 and item not in res.item_ids
        assert set(res.item_ids) <= set(searcher.brute_force(item, cfg, ref.n_eligible + 1).item_ids)
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    return hits / total


def test_misses_of_a_half_catalogue_category_give_its_block_a_graph(correlated):
    """A category filter keeping half of the catalogue: its strays' over-fetches fall short; after
    a few of them the block has its own graph (over ``BLOCK_MAX_SHARE``: plain uses never build
    it), and every seed of the block, strays included, is answered from it with exact search's
    counts and recall@10 >= 0.99."""
    cat, _, _, strays = correlated
    searcher = searcher_of(correlated)
    cfg = FilterConfig(same_category=True, category_level=0)
    for item in strays[:60]:
        searcher.search(item, cfg, 10)
    cf = searcher.compile(cfg)
    assert len(cf.blocks) == 2 and all(ss.sub is not None and ss.n > 0.3 * N for ss in cf.blocks.values())
    probe = strays[60:160]
    got = [searcher.search(item, cfg, 10) for item in probe]
    assert {r.plan for r in got} == {"hnsw_subindex"}
    assert recall_and_counts(searcher, cfg, probe, got) >= 0.99


def _band_with_block_graphs(correlated) -> tuple[FilteredSearcher, FilterConfig]:
    """Category 50% + a price band around the seed, in use until both blocks have their graphs
    (400 queries: the seed table, the shortcut, the misses, the graphs)."""
    searcher = searcher_of(correlated)
    cfg = FilterConfig(same_category=True, category_level=0, price_ratio_min=0.5, price_ratio_max=2.0)
    for i in range(0, N, 20):
        searcher.search(f"c{i}", cfg, 10)
    cf = searcher.compile(cfg)
    assert len(cf.blocks) == 2 and all(ss.sub is not None for ss in cf.blocks.values())
    return searcher, cfg


def _probe_shortcut(searcher, cfg, probe):
    """The probe's results, how many the shortcut answered from a block graph (no general path),
    and the counter of general-path calls."""
    counter = GeneralPathCalls(searcher)
    got, shortcut = [], 0
    for item in probe:
        calls = counter.calls
        got.append(searcher.search(item, cfg, 10))
        shortcut += got[-1].plan == "hnsw_subindex" and counter.calls == calls
    return got, shortcut, counter


def test_a_price_band_inside_the_block_answers_its_strays_from_the_blocks_graph(correlated):
    """Category 50% + a price band relative to the seed: a stray's over-fetch on the main graph
    falls short; once its block has a graph (queued by such misses), the shortcut answers it from
    that graph (the first k in the seed's key range) without the general path, with exact
    search's counts, eligible items only and recall@10 >= 0.99."""
    _, _, _, strays = correlated
    searcher, cfg = _band_with_block_graphs(correlated)
    probe = strays[:150]
    got, shortcut, _ = _probe_shortcut(searcher, cfg, probe)
    from_graph = [r for r in got if r.plan == "hnsw_subindex"]
    assert len(from_graph) >= len(probe) // 3, {r.plan for r in got}
    assert shortcut >= len(from_graph) // 2  # most of them without the general path
    assert recall_and_counts(searcher, cfg, probe, got) >= 0.99


def test_an_exact_search_over_a_key_range_reads_the_key_ordered_copy(correlated):
    """Seeds with extreme prices keep few items in their band: the planner searches them exactly.
    That search reads one slice of the key index's key-ordered copy of the vectors (built on the
    first such query), and its lists equal brute force's."""
    cat, _, _, _ = correlated
    searcher = searcher_of(correlated)
    cfg = FilterConfig(same_category=True, category_level=1, price_ratio_min=0.8, price_ratio_max=1.25)
    order = cat["price"].to_numpy().argsort()
    seeds = [f"c{i}" for i in np.concatenate([order[40:400:5], order[-400:-40:5]])]  # low and high
    got = [searcher.search(item, cfg, 10) for item in seeds]
    exact = [r for r in got if r.plan == "exact_subset"]
    assert len(exact) >= len(seeds) // 2, {r.plan for r in got}
    cf = searcher.compile(cfg)
    assert any(kv.unit is not None for kv in cf.keys.values())
    _, vec, _, _ = correlated
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    sub = cat["category"].to_numpy()
    price = cat["price"].to_numpy()
    for item, res in zip(seeds, got):
        if res.plan == "exact_subset":  # against NumPy over the whole catalogue
            i = int(item[1:])
            ok = (sub == sub[i]) & (price >= 0.8 * price[i]) & (price <= 1.25 * price[i])
            ok[i] = False
            sc = np.where(ok, unit @ unit[i], -np.inf)
            top = np.argsort(-sc, kind="stable")[:10]
            top = top[np.isfinite(sc[top])]
            assert res.item_ids == [f"c{j}" for j in top], item
            np.testing.assert_allclose(res.scores, sc[top], atol=1e-5)


def test_a_price_band_inside_a_block_with_a_graph_is_searched_on_that_graph_first(correlated):
    """Once a block has its own graph, a seed's price band inside it is searched on that graph
    first (a beam over the block's items only, priced no higher than the main fetch), not only a
    stray's whose main over-fetch fell short: seeds that are no strays (their main fetch would
    fill) are answered from the graph through the shortcut, with the general path's list, scores,
    rows and counts, exact search's counts, and recall@10 >= 0.99."""
    _, _, _, strays = correlated
    searcher, cfg = _band_with_block_graphs(correlated)
    stray = set(strays)
    probe = [f"c{i}" for i in range(7, N, 25) if f"c{i}" not in stray][:150]
    got, shortcut, counter = _probe_shortcut(searcher, cfg, probe)
    from_graph = [r for r in got if r.plan == "hnsw_subindex"]
    assert len(from_graph) >= 0.8 * len(probe), {r.plan for r in got}
    assert shortcut >= 0.9 * len(from_graph)
    for item, res in zip(probe, got):  # the general path (uncounted) answers the same from the graph
        if res.plan != "hnsw_subindex":
            continue
        ref = counter.path(item, cfg, 10)
        assert (ref.plan, ref.item_ids, ref.rows, ref.n_eligible) == (
            res.plan,
            res.item_ids,
            res.rows,
            res.n_eligible,
        ), item
        assert ref.scores == res.scores and ref.removed_by_rule == res.removed_by_rule, item
    assert recall_and_counts(searcher, cfg, probe, got) >= 0.99


def test_a_bands_choice_inside_a_block_is_the_full_rules_from_the_members_it_is_decided_by(correlated):
    """A key range inside a block with a graph goes to the block's beam by one comparison from
    the fewest members at which the full rule (the block's beam against the main fetch, the
    filter's learned fill rate, the exact search's price) picks it whatever was learned: at and
    above that count the full rule says ``"block"`` for every fill rate; one below it, the block's
    beam is priced over the main fetch's or not under the exact search (the full rule may still
    pick it there, for a deep seed or a fill rate); the count is found once per set (``ss.costs``)."""
    searcher, cfg = _band_with_block_graphs(correlated)
    cf = searcher.compile(cfg)
    kv = cf.table_kvs[0]
    stats = cf.stats
    for key, ss in cf.blocks.items():
        s, e, _ = key
        for need in (11, 21):
            ss.costs.clear()
            searcher._in_block_choice(cf, key, e - s, need, 64, kv)  # a wide band: kept once
            kept = [v for c, v in ss.costs.items() if c[0] == "band" and c[1] == need]
            assert len(kept) == 1
            sure = kept[0]
            assert 1 < sure <= e - s
            full = {}
            for n_elig in sorted({max(1, sure - 1), sure, (sure + e - s) // 2, e - s}):
                for fill in (0.0, 0.5, 1.0):
                    stats.fill_rate = lambda prior, fill=fill: fill  # noqa: E731 (what was learned)
                    ss.costs.clear()
                    ss.costs[("band", need, 64, e - s, kv.unit is not None)] = e - s + 1  # never sure
                    full[(n_elig, fill)] = searcher._in_block_choice(cf, key, n_elig, need, 64, kv)[0]
                    del stats.fill_rate
            assert all(full[(n, f)] == "block" for (n, f) in full if n >= sure), (key, need, sure, full)
            c_b = searcher._block_beam_cost(ss, need, sure - 1)
            unit = kv.unit is not None
            assert c_b > searcher._hnsw_cost(64) or c_b >= searcher._band_exact_cost(e - s, sure - 1, unit)
    # a block graph whose beam costs more than the main fetch's (a wider ef): never decided by the
    # count; a wide band of a filter whose main fetches fill keeps the main fetch
    key, ss = next(iter(cf.blocks.items()))
    ef = ss.sub.ef
    ss.sub.set_ef(searcher._index.ef + 8)  # priced over the main fetch, under the exact search
    try:
        ss.costs.clear()
        c_b = searcher._block_beam_cost(ss, 11, key[1] - key[0])
        assert (
            searcher._hnsw_cost(64)
            < c_b
            < searcher._band_exact_cost(key[1] - key[0], key[1] - key[0], kv.unit is not None)
        )
        stats.fill_rate = lambda prior: 1.0  # noqa: E731
        assert searcher._in_block_choice(cf, key, key[1] - key[0], 11, 64, kv) == (None, None)
        assert ss.costs[("band", 11, 64, key[1] - key[0], kv.unit is not None)] == key[1] - key[0] + 1
    finally:
        del stats.fill_rate
        ss.sub.set_ef(ef)


def test_a_blocks_keys_by_label_are_built_off_the_query_thread(correlated, monkeypatch):
    """The price band's shortcut on a block's graph reads the keys in the graph's label order (a
    gather of the block's keys, 0.2 to 1 ms at 1M): on a catalogue whose builds run in the
    background they are published with the block's graph, on the worker (no call on the query
    thread), equal to the keys of the block's rows. Views gone (a block adopted from another
    filter, one built before the seed table) are asked for by the shortcut's first query on the
    block (at once on this small catalogue, which builds inline) and its answers stay the general
    path's."""
    import threading

    from recsys.search import fast, static

    calls = []
    real = static.block_key_views

    def counted(cf, key, ss):
        calls.append(threading.current_thread() is threading.main_thread())
        return real(cf, key, ss)

    monkeypatch.setattr(static, "block_key_views", counted)
    monkeypatch.setattr(fast, "block_key_views", counted)
    cat, vec, index, _ = correlated
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=1000)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    cfg = FilterConfig(same_category=True, category_level=0, price_ratio_min=0.5, price_ratio_max=2.0)
    for _ in range(3):
        for i in range(0, N, 20):
            searcher.search(f"c{i}", cfg, 10)
        searcher.wait_background()
    cf = searcher.compile(cfg)
    graphs = {key: ss for key, ss in cf.blocks.items() if ss.sub is not None}
    assert graphs and calls and not any(calls)
    for key, ss in graphs.items():
        kept, views = cf.block_key_views[key]
        assert kept is ss and views is not None
        for kv, view in zip(cf.table_kvs, views):
            assert list(view) == kv.by_row[ss.rows].tolist()
    # a block whose views are gone (adopted from another filter, or built before the seed table):
    # the shortcut's next query asks for them (here at once: a small catalogue builds inline) and
    # answers as the general path
    searcher, cfg = _band_with_block_graphs(correlated)
    cf = searcher.compile(cfg)
    cf.block_key_views.clear()
    probe = [f"c{i}" for i in range(3, N, 40)]
    got, shortcut, counter = _probe_shortcut(searcher, cfg, probe)
    assert shortcut >= 0.5 * len(probe)
    assert {key for key, (ss, views) in cf.block_key_views.items() if views is not None} == {
        key for key, ss in cf.blocks.items() if ss.sub is not None
    }
    for item, res in zip(probe, got):  # the graph's answers, the general path's (uncounted)
        if res.plan == "hnsw_subindex":
            ref = counter.path(item, cfg, 10)
            assert (ref.plan, ref.item_ids, ref.scores) == (res.plan, res.item_ids, res.scores), item
