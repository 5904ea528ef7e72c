"""A boosted category filter's seeds whose block has no graph (issue 16 at 1M, s35-r): the over-fetch
of the main graph settles their lists from the block's pool table (recsys/search/block_pool.py)
instead of gathering and scoring the boosted members of the block at each query, as brute force;
a graph built for the block later reads the same pool and table."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.merch import PairBan
from recsys.search import FilteredSearcher
from tests.unit.test_rules_pool_tables import RULES  # the same boost of cheap items, bury of dear ones
from tests.unit.test_search import clustered_catalog


@pytest.fixture(scope="module")
def shop():
    cat, vec = clustered_catalog(6000, 31)
    # a wide beam: the main graph's own recall plays no part (the lists are compared to brute force)
    index = HnswIndex.build(vec, M=16, ef_construction=200, ef=400, num_threads=1)
    return cat, vec, index


@pytest.fixture
def overfetch(monkeypatch):
    """The hot path of a million items on 6,000: exact search priced high and the block scan never
    preferred (as test_adjusted_search prices them), so that the seed table's over-fetch of the
    main graph answers; the compiled kernels (the tables need them) ready."""
    from recsys.search import adjusted, merge_kernel, planner

    monkeypatch.setattr(planner, "_COST_EXACT_BASE", 5000.0)
    monkeypatch.setattr(adjusted, "_S_ADJUST_BASE", -1e9)
    assert merge_kernel.compile_now() is not None and merge_kernel.TABLE is not None


def _config(searcher: FilteredSearcher) -> FilterConfig:
    seeds = [f"c{i}" for i in range(1, 6000, 7)]
    near = {
        s: searcher.search(s, FilterConfig(same_category=True, category_level=1), 2).item_ids for s in seeds
    }
    bans = [PairBan(seed=s, item_id=near[s][0]) for s in seeds if near[s]]  # the seed's nearest
    return FilterConfig(
        same_category=True, category_level=1, exclude_adult=True, do_not_associate=bans, **RULES
    )


def _in_use(searcher: FilteredSearcher, cfg: FilterConfig) -> None:
    for i in range(0, 6000, 4):  # its seed table, then ~20 uses of each block
        searcher.search(f"c{i}", cfg, 10)
    searcher.wait_background()


def test_the_over_fetch_of_a_block_without_a_graph_reads_the_blocks_pool_table(shop, overfetch, monkeypatch):
    """No block graph (their minimum size set past the catalogue): once a block has had the uses
    a graph waits for, its pool and :class:`~recsys.search.pool_table.PoolTable` are built, and the
    over-fetch settles most lists from the seed's listed pool items without gathering a class's
    members (at k = 10: the table lists 16), falling back to the gather where the table's bound
    does not settle the list (k = 24); every list is the gather's on the same query (scores to
    1e-6: the table's are the canonical sums, the gather's BLAS's) where the gather answers from the
    fetch too, the seed and its banned items (its nearest neighbour) out, recall@k against exact
    search >= 0.99 (the main graph's). Fails with the seed or its banned items not
    passed to the compiled settle (a cheap seed lists itself first; banned items come back), with
    the pool's members among the fetch not left to the table (listed twice), without the table's
    bound (k = 24: an unlisted pool item left out), or when no pool is set up for a block without
    a graph (every list gathers)."""
    from recsys.search import adjusted
    from recsys.search.pool_table import _NO_TABLE

    cat, vec, index = shop
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows = 10**9  # no block gets a graph: every seed over-fetches
    cfg = _config(searcher)
    _in_use(searcher, cfg)
    cl = searcher.compile(cfg).adjust_classes
    assert not cl._merges and not searcher.compile(cfg).blocks
    pools = {key: bp for key, bp in cl.pools.items() if bp is not None}
    assert len(pools) >= 20, sorted(cl.pools)
    tabled = []  # the pools within the packing cap (an eighth of the vectors' bytes: 48 kB here)
    for (s, e, no_adult), bp in pools.items():
        assert bp.table is not None, (s, e)
        if bp.pvect is None:
            assert bp.table is _NO_TABLE
        else:
            assert bp.table.adj.shape == (e - s, 16)
            tabled.append((s, e, no_adult))
    assert len(tabled) >= 8, len(tabled)
    cf = searcher.compile(cfg)

    def in_tabled(seed: str) -> bool:  # the seed's block key, as the seed table gives it
        row = cf.seed_table[searcher.view.pos_of_id[seed]].tolist()
        return (row[6], row[7], cf.adult_col >= 0 and row[9 + cf.adult_col] >= 0) in tabled

    gathers = []
    packed, settle = adjusted.AdjustClasses.packed, adjusted.AdjustMixin._overfetch_settle
    gather_only = [False]

    def counted(self, c, unit, perm):
        gathers.append(c)
        return packed(self, c, unit, perm)

    def switched(self, *args):
        return None if gather_only[0] else settle(self, *args)

    monkeypatch.setattr(adjusted.AdjustClasses, "packed", counted)
    monkeypatch.setattr(adjusted.AdjustMixin, "_overfetch_settle", switched)
    seeds = [f"c{i}" for i in range(1, 6000, 13)]
    for k in (10, 24):
        plans: dict[str, int] = {}
        gathered = listed = hits = same = 0  # seeds of the blocks with a table: gathered / settled from it
        for s in seeds:
            before = len(gathers)
            got = searcher.search(s, cfg, k)
            plans[got.plan] = plans.get(got.plan, 0) + 1
            if in_tabled(s):
                gathered += len(gathers) > before
                listed += len(gathers) == before
            gather_only[0] = True  # the same query, the open classes gathered (as before the table)
            ref = searcher.search(s, cfg, k)
            gather_only[0] = False
            if ref.plan == got.plan == "hnsw_overfetch":  # else the gather gave up: exact search
                assert got.item_ids == ref.item_ids, (s, k)
                np.testing.assert_allclose(got.scores, ref.scores, rtol=0, atol=1e-6)
                same += 1
            want = searcher.search(s, cfg, k, plan="exact").item_ids
            assert s not in got.item_ids
            hits += len(set(got.item_ids) & set(want))
        assert plans.get("hnsw_overfetch", 0) > 0.9 * len(seeds), plans
        assert same > 0.9 * len(seeds), (k, same)
        # the main graph's recall (a seed far from its category's items: a deeper fetch, where the
        # table's items raise the k-th score enough to close the plain class, and the gather gave up)
        assert hits >= 0.99 * k * len(seeds), (k, hits)
        assert gathered + listed > 150, (gathered, listed)
        if k == 10:  # the table settles nearly every list
            assert gathered < 0.1 * listed, (gathered, listed, plans)
        else:  # the 16 listed do not always: the gather answers those
            assert gathered > 0.1 * listed, (gathered, listed, plans)


def test_a_block_graph_built_after_the_over_fetchs_pool_reads_its_table(shop, overfetch):
    """The blocks' pools and tables set up for their over-fetch, then the blocks' graphs allowed:
    each block's class merge reads the pool's arrays and table (none rebuilt, the tables' bytes
    counted once), and its lists (from the graphs now) have a recall@10 >= 0.99 against exact search. Fails when the merge
    builds a table of its own."""
    from recsys.search.pool_table import _NO_TABLE

    cat, vec, _ = shop
    # the tool's beam (a block's graph searches at it: 400 would be more than a 300-row block)
    index = HnswIndex.build(vec, M=16, ef_construction=200, ef=64, num_threads=1)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows = 10**9
    cfg = _config(searcher)
    _in_use(searcher, cfg)
    cl = searcher.compile(cfg).adjust_classes
    tables = {key: bp.table for key, bp in cl.pools.items() if bp is not None and bp.pvect is not None}
    assert len(tables) >= 8 and all(t is not None and t is not _NO_TABLE for t in tables.values())
    nbytes = cl.table_bytes
    assert nbytes == sum(t.adj.shape[0] * (t.adj.shape[1] * 8 + 4) for t in tables.values())
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0  # the blocks' graphs now
    for _ in range(2):
        _in_use(searcher, cfg)
    merged = {key: bm for key, bm in cl._merges.items() if bm is not None}
    assert len(set(merged) & set(tables)) >= 8, (sorted(merged), sorted(tables))
    extra = 0  # the tables of blocks with no pool before (adult seeds' blocks, seldom used)
    for key, bm in merged.items():
        assert bm.pool is cl.pools[key], key
        if key in tables:
            assert bm.table is tables[key], key
        elif bm.table is not None and bm.table is not _NO_TABLE:
            extra += bm.table.adj.shape[0] * (bm.table.adj.shape[1] * 8 + 4)
    assert cl.table_bytes == nbytes + extra
    plans: dict[str, int] = {}
    seeds, hits = [f"c{i}" for i in range(3, 6000, 29)], 0
    for s in seeds:  # from the block graphs now: exact but for their recall
        got = searcher.search(s, cfg, 10)
        plans[got.plan] = plans.get(got.plan, 0) + 1
        hits += len(set(got.item_ids) & set(searcher.search(s, cfg, 10, plan="exact").item_ids))
    assert plans.get("hnsw_subindex", 0) > 100, plans
    assert hits >= 0.99 * 10 * len(seeds), hits
