"""A static filter's own graph: kept beyond its compiled filter's life, and built for batches.

Issue 18: ``search_many`` with a 10% filter that ignores the vectors is answered from the
filter's own HNSW graph once the filter has been used often; at a million items the
compiled-filter cache keeps six filters, so that graph must survive its compiled filter's
eviction, and a batch of seeds counts as that many uses.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import _SUB_AFTER, FilteredSearcher
from tests.unit.test_search import GeneralPathCalls, uncorrelated_catalog

BRANDS_10 = [f"b{i}" for i in range(10)]  # 10 of 100 brands drawn at random: about 10%


@pytest.fixture(scope="module")
def uncorrelated():
    cat, vec = uncorrelated_catalog(8000, 11)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=2)
    return cat, vec, index


def searcher_of(uncorrelated, **kw) -> FilteredSearcher:
    cat, vec, index = uncorrelated
    s = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, **kw)
    s.sub_index_min_rows, s.sub_index_gain = 100, 0.0  # small catalogue: let the graph pay
    return s


def check_against_exact(searcher, cat, cfg, seeds, got) -> None:
    """Each answer: from the graph, the seed excluded, eligible items only, exact search's counts,
    and recall@10 >= 0.99 against exact search over all of them."""
    allowed = set(cat.item_id[cat.brand.isin(cfg.brands_allow)])
    hits = total = 0
    for item, res in zip(seeds, got):
        ref = searcher.search(item, cfg, 10, plan="exact")
        assert res.plan == "hnsw_subindex", (item, res.plan)
        assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule
        assert len(res) == 10 and item not in res.item_ids and set(res.item_ids) <= allowed
        np.testing.assert_allclose(
            res.scores, [float(s) for s in np.sort(res.scores)[::-1]], atol=1e-6
        )  # best first
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    assert hits / total >= 0.99


def test_a_static_filters_graph_outlives_its_compiled_filter(uncorrelated):
    """The filter's graph is built once; after its compiled filter has left the cache (other
    filters used meanwhile), the same filter, sent again as a new config, answers its first
    query and a batch from that graph without building it again."""
    cat = uncorrelated[0]
    searcher = searcher_of(uncorrelated, cache_size=4)
    cfg = FilterConfig(brands_allow=BRANDS_10)
    for i in range(_SUB_AFTER + 1):
        searcher.search(f"u{i}", cfg, 10)
    built = searcher.compile(cfg).sets[False]
    assert built.sub is not None
    first = searcher.compile(cfg)
    for j in range(6):  # push it out of the cache of 4
        searcher.search("u1", FilterConfig(brands_allow=[f"b{50 + j}", f"b{60 + j}"]), 10)
    again = FilterConfig(brands_allow=list(BRANDS_10))  # a new config object, the same filter
    assert searcher.compile(again) is not first  # compiled anew
    seeds = [f"u{i}" for i in range(3, 8000, 97)]
    one = searcher.search(seeds[0], again, 10)
    assert one.plan == "hnsw_subindex"
    assert searcher.compile(again).sets[False] is built  # adopted, not rebuilt
    check_against_exact(searcher, cat, again, seeds[:1], [one])
    check_against_exact(searcher, cat, again, seeds, searcher.search_many(seeds, again, 10, num_threads=2))


def test_a_different_mask_does_not_adopt_the_graph(uncorrelated):
    """Another allow-list (another eligible set) gets no graph from the first one."""
    searcher = searcher_of(uncorrelated, cache_size=4)
    cfg = FilterConfig(brands_allow=BRANDS_10)
    for i in range(_SUB_AFTER + 1):
        searcher.search(f"u{i}", cfg, 10)
    assert searcher.compile(cfg).sets[False].sub is not None
    other = FilterConfig(brands_allow=BRANDS_10[:-1] + ["b99"])
    res = searcher.search("u5", other, 10)
    assert res.plan != "hnsw_subindex"
    assert searcher.compile(other).sets[False].sub is None
    allowed = set(uncorrelated[0].item_id[uncorrelated[0].brand.isin(other.brands_allow)])
    assert set(res.item_ids) <= allowed


def test_a_batch_counts_its_seeds_as_uses_of_the_filter(uncorrelated):
    """A batch job (precompute, Spark partitions) with a filter never used live: a batch of at
    least ``_SUB_AFTER`` seeds queues the filter's own graph (built inline on a small catalogue),
    so it and the next batches answer from it; a smaller batch does not."""
    cat = uncorrelated[0]
    cfg = FilterConfig(brands_allow=BRANDS_10)
    small = searcher_of(uncorrelated)
    few = [f"u{i}" for i in range(1, 1 + _SUB_AFTER - 2)]
    got = small.search_many(few, cfg, 10, num_threads=2)
    assert small.compile(cfg).sets[False].sub is None
    assert {r.plan for r in got} != {"hnsw_subindex"}

    searcher = searcher_of(uncorrelated)
    seeds = [f"u{i}" for i in range(3, 8000, 97)]
    assert len(seeds) >= _SUB_AFTER
    got = searcher.search_many(seeds, cfg, 10, num_threads=2)
    assert searcher.compile(cfg).sets[False].sub is not None
    check_against_exact(searcher, cat, cfg, seeds, got)


def test_a_category_filters_first_queries_count_as_uses_of_its_blocks(uncorrelated):
    """A category filter's first queries are answered by the inverted lists until its seed table is
    built in the background; they count as uses of the seed's category block, so that once the
    builds run the blocks asked for often have their own graphs and the next queries answer from
    them (exact search's counts, recall >= 0.99). Counted only from the table on, a filter's
    first few hundred queries queued no graph at all."""
    cat, vec, index = uncorrelated
    ids = cat["item_id"].to_numpy()
    searcher = FilteredSearcher(vec, ids, cat, index=index, background_min_items=0)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    searcher.wait_background()  # the inverted lists
    cfg = FilterConfig(same_category=True, category_level=0)
    searcher.search("u0", cfg, 10)
    searcher.wait_background()  # compiled, no seed table yet
    cf = searcher.compile(cfg)
    assert cf.seed_table is None and not cf.blocks
    gate = threading.Event()
    searcher._bg.submit("hold", gate.wait)  # the table and graphs stay queued meanwhile
    try:
        first = {searcher.search(f"u{i}", cfg, 10).plan for i in range(1, 8000, 40)}  # 200, 4 categories
        assert cf.seed_table is None and first <= {"exact_range", "hnsw_overfetch"}, first
    finally:
        gate.set()
    searcher.wait_background()
    assert cf.seed_table is not None and len(cf.blocks) == 4
    top = cat.set_index("item_id")["category"].str.split(" > ").str[0]
    hits = total = 0
    for i in range(3, 8000, 61):
        item = f"u{i}"
        res = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        assert res.plan == "hnsw_subindex", (item, res.plan)
        assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule
        assert len(res) == 10 and item not in res.item_ids
        assert set(top.loc[res.item_ids]) == {top.loc[item]}
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    assert hits / total >= 0.99


@pytest.mark.parametrize("bans", [False, True])
def test_a_category_blocks_graph_answers_through_the_shortcut_as_the_general_path(uncorrelated, bans):
    """Once the seed's category block has its own graph, the config's shortcut (fast.py's table
    kind) answers from that graph: list, scores, rows, counts, eligible count and plan equal the
    general path's on the same searcher, with and without do-not-associate pairs (the seed's
    banned items fetched past and dropped), at k = 10, 1 and 30; each result owns its counts."""
    cat, vec, index = uncorrelated
    ids = cat["item_id"].to_numpy()
    base = FilterConfig(same_category=True, category_level=0)
    probe = [f"u{i}" for i in range(3, 8000, 61)]
    cfg = base
    if bans:
        plain = FilteredSearcher(vec, ids, cat, index=index)
        near = {item: plain.search(item, base, 10, plan="exact").item_ids for item in probe}
        pairs = [{"seed": item, "item_id": near[item][j]} for item in probe for j in (0, 4)]
        cfg = FilterConfig.from_dict({**base.canonical(), "do_not_associate": pairs})
    searcher = FilteredSearcher(vec, ids, cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    for i in range(0, 8000, 40):  # 200 queries over 4 top-level categories
        searcher.search(f"u{i}", cfg, 10)
    assert len(searcher.compile(cfg).blocks) == 4
    searcher._fast = {}  # armed by the warm-up's over-fetches: a graph's answer arms it too
    assert searcher.search(probe[-1], cfg, 10).plan == "hnsw_subindex"
    assert searcher._fast[id(cfg)].cfg is cfg
    counter = GeneralPathCalls(searcher)
    queries = 0
    for k in (10, 1, 30):
        for item in probe:
            got = searcher.search(item, cfg, k)
            queries += 1
            want = counter.path(item, cfg, k)  # the general path, uncounted
            assert got.plan == want.plan == "hnsw_subindex", (item, k, got.plan, want.plan)
            for field in ("item_ids", "scores", "rows", "removed_by_rule", "skipped_rules", "n_eligible"):
                assert getattr(got, field) == getattr(want, field), (item, k, field)
            assert item not in got.item_ids and got.seed_item_id == item and len(got) == k
            if bans:
                assert not {near[item][0], near[item][4]} & set(got.item_ids)
            got.removed_by_rule["x"] = 1  # each result owns its counts
            got.skipped_rules.append("x")
    assert counter.calls == 0, (counter.calls, queries)
