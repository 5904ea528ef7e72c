"""A 10% category level gets every block's graph within the filter's block budget (issue 18, s35-L).

At a million items a 10% category level has ten 100k-row blocks. Each block's graph was counted,
and held, with the dense copy of the block's vectors it was built from (68 MB a block at 1M x 64,
25.6 MB of it the copy, which no query reads once the graph answers the block's seeds): the
filter's budget then held 4 of the 10 graphs, and the seeds of the other six blocks over-fetched
the main graph (a random 10% category: 3.0x raw hnswlib's p50, 288 of 500 seeds). Tested here on
a small catalogue whose level-1 blocks are 600 items of 64 dimensions, with the budget set in the
test to what the level's ten graphs hold (hnswlib's vectors and links, each block's positions, rows
and per-row test): the bench's warm-up (20 queries, the background's builds, 200 queries, the
builds) leaves every block with its graph, and every seed is answered from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from recsys.search import static as static_mod

CFG = FilterConfig(same_category=True, category_level=1)  # 10 categories of about 600 items
N, DIM, M = 6000, 64, 16


@pytest.fixture(scope="module")
def shop():
    """Clustered vectors and a category drawn at random (unrelated to them), 2 x 5 values."""
    rng = np.random.default_rng(35)
    centers = rng.normal(size=(30, DIM)).astype(np.float32)
    vec = centers[rng.integers(0, 30, N)] + 0.4 * rng.normal(size=(N, DIM)).astype(np.float32)
    leaf = rng.integers(0, 10, N)
    cat = pd.DataFrame(
        {
            "item_id": [f"r{i}" for i in range(N)],
            "title": [f"t{i}" for i in range(N)],
            "category": [f"T{x // 5} > L{x}" for x in leaf],
            "brand": [f"b{x}" for x in rng.integers(0, 50, N)],
            "gender": rng.choice(["women", "men", ""], N),
            "price": rng.lognormal(3, 0.5, N),
            "adult": np.zeros(N, dtype=bool),
        }
    )
    index = HnswIndex.build(vec, M=M, ef_construction=100, ef=64, num_threads=2)
    return cat, vec, index


def test_every_block_of_a_ten_percent_level_gets_its_graph_within_the_budget(shop, monkeypatch):
    cat, vec, index = shop
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0  # small catalogue: let the graphs pay
    sizes = cat.category.value_counts()
    assert len(sizes) == 10
    # what the level's ten graphs hold: hnswlib's vectors and links and each block's ids
    # (block_graph_bytes), and its per-row test (one byte per item of the catalogue)
    level = sum(static_mod.block_graph_bytes(int(r), DIM, M) + N for r in sizes)
    monkeypatch.setattr(static_mod, "_BLOCKS_MAX_BYTES", int(1.02 * level))
    rng = np.random.default_rng(7)
    seeds = rng.choice(N, size=20 + 200 + 150, replace=False)
    ids = cat["item_id"].to_numpy()
    for i in seeds[:20]:  # the bench's first queries, then its warm-up round
        searcher.search(ids[i], CFG, 10)
    searcher.wait_background()
    for i in seeds[20:220]:
        searcher.search(ids[i], CFG, 10)
    searcher.wait_background()
    cf = searcher.compile(CFG)
    built = {key: ss for key, ss in cf.blocks.items() if ss.sub is not None}
    assert len(built) == 10, sorted(built)
    assert cf.block_bytes == sum(ss.nbytes for ss in built.values()) <= static_mod._BLOCKS_MAX_BYTES
    plans: dict[str, int] = {}
    hits = total = 0
    leaf_of = dict(zip(cat.item_id, cat.category))
    for i in seeds[220:]:
        res = searcher.search(ids[i], CFG, 10)
        ref = searcher.search(ids[i], CFG, 10, plan="exact")
        plans[res.plan] = plans.get(res.plan, 0) + 1
        assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule
        assert len(res) == 10 and ids[i] not in res.item_ids
        assert {leaf_of[x] for x in res.item_ids} == {leaf_of[ids[i]]}
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    assert plans == {"hnsw_subindex": 150}, plans
    assert hits / total >= 0.99


def test_a_level_used_across_its_values_gets_its_graphs_though_no_block_is_used_often(shop):
    """A 1% level at a million items has a hundred 10k-row blocks, and the bench's 220 queries
    used each about twice: no block reached ``_SUB_AFTER`` uses, none got a graph, and every seed
    was answered by an exact scan of its block (1.30x and 1.44x raw hnswlib's p50; issue 18,
    s36-L). The level's uses decide (``_LEVEL_AFTER`` over at least ``_FIELD_AFTER`` blocks):
    here a level of 40 blocks of 150 items (the same vectors, 40 leaves drawn at random) is
    browsed round-robin, each block used a few times, well under ``_SUB_AFTER``, and all 40 get
    their graphs in the background; the next seeds are answered from them."""
    _, vec, index = shop
    rng = np.random.default_rng(36)
    leaf = rng.permutation(np.arange(N) % 40)
    ids = np.array([f"r{i}" for i in range(N)])
    cat = pd.DataFrame(
        {
            "item_id": ids,
            "title": ids,
            "category": [f"T{x // 8} > L{x}" for x in leaf],
            "brand": "b",
            "gender": "",
            "price": 1.0,
            "adult": np.zeros(N, dtype=bool),
        }
    )
    searcher = FilteredSearcher(vec, ids, cat, index=index, background_min_items=0)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0  # small catalogue: let the graphs pay
    per_leaf = [np.flatnonzero(leaf == x) for x in range(40)]
    for j in range(3):  # round-robin over the level's values, as users browse a catalogue
        for rows in per_leaf:
            searcher.search(ids[rows[j]], CFG, 10)
        searcher.wait_background()
    cf = searcher.compile(CFG)
    assert max(n for key, n in cf.block_uses.items() if len(key) == 3) < static_mod._SUB_AFTER
    built = {key for key, ss in cf.blocks.items() if ss.sub is not None}
    assert len(built) == 40, len(built)
    for rows in per_leaf:
        item = ids[rows[-1]]  # a seed never queried
        res = searcher.search(item, CFG, 10)
        ref = searcher.search(item, CFG, 10, plan="exact")
        assert res.plan == "hnsw_subindex"
        assert res.n_eligible == ref.n_eligible and item not in res.item_ids
        assert len(set(res.rows) & set(ref.rows)) >= 9


def test_one_cap_for_every_filters_block_graphs_evicts_the_least_used(shop, monkeypatch):
    """Each cached filter keeps its block graphs within its own ``_BLOCKS_MAX_BYTES``, and the
    cache holds six filters: their graphs together are held to the searcher's
    ``block_graphs_max_bytes``, the least used making room. Here the cap holds about twelve of
    the level's graphs: the category filter's ten are built, three of its categories are in use,
    then a filter of another mask (the same categories, half of the brands: blocks half as big)
    builds its own; the searcher stays within the cap, the three graphs in use are kept, the
    room came from the others, and the evicted blocks' seeds get exact search's list."""
    cat, vec, index = shop
    ids = cat["item_id"].to_numpy()
    searcher = FilteredSearcher(vec, ids, cat, index=index, background_min_items=0)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0  # small catalogue: let the graphs pay
    # the builds the queries queue run at the test's waits only (not when the worker finds queries
    # paused): what is tested is the eviction's choice, not the hand-over's timing. (CI's 4 graphs
    # instead of >= 6 were not timing: the cap evicted the other filter's new graphs, counted from 0
    # uses, in the order of their addresses)
    monkeypatch.setattr(searcher._bg, "_take_held", lambda: None)
    sizes = cat.category.value_counts()
    one = max(static_mod.block_bytes_estimate(int(r), DIM, M, N) for r in sizes)
    searcher.block_graphs_max_bytes = cap = 12 * one
    rng = np.random.default_rng(8)
    for j, i in enumerate(rng.choice(N, size=120, replace=False)):  # the level in use: its ten graphs
        searcher.search(ids[i], CFG, 10)
        if j % 20 == 19:
            searcher.wait_background()
    searcher.wait_background()
    cf = searcher.compile(CFG)
    assert len(cf.blocks) == 10
    before = {id(ss): ss.uses for ss in cf.blocks.values()}
    leaf = cat.category.to_numpy()
    hot = sorted(set(leaf))[:3]
    for i in np.flatnonzero(np.isin(leaf, hot))[:120]:  # three categories in steady use
        assert searcher.search(ids[i], CFG, 10).plan == "hnsw_subindex"
    hot_sets = {id(ss) for ss in cf.blocks.values() if ss.uses - before[id(ss)] >= 20}
    assert len(hot_sets) == 3
    other = FilterConfig(same_category=True, category_level=1, brands_allow=[f"b{b}" for b in range(25)])
    allowed = np.flatnonzero(cat.brand.isin(other.brands_allow).to_numpy())
    cf2, built = searcher.compile(other), set()
    for j, i in enumerate(rng.choice(allowed, size=320, replace=False)):
        searcher.search(ids[i], other, 10)
        if j % 20 == 19:
            searcher.wait_background()
            built |= set(cf2.blocks.values())
    searcher.wait_background()
    assert searcher.compile(other) is cf2
    assert len(cf2.blocks) >= 6  # the other filter got graphs ...
    # ... and kept each one it built: a new graph counts the uses that asked for it (from 0, it
    # was the next victim, evicted for the filter's next block while idle graphs kept their room)
    assert built == set(cf2.blocks.values())
    assert searcher.block_graph_bytes() <= cap  # ... within the one cap
    kept = {id(ss) for ss in cf.blocks.values()}
    assert hot_sets <= kept and len(kept) < 10  # the room came from the graphs not in use
    assert cf.block_bytes == sum(ss.nbytes for ss in cf.blocks.values())
    for x in sorted(set(leaf)):  # every category of the first filter: a graph's list or exact search's
        for i in np.flatnonzero(leaf == x)[-3:]:
            res = searcher.search(ids[i], CFG, 10)
            ref = searcher.search(ids[i], CFG, 10, plan="exact")
            assert res.n_eligible == ref.n_eligible and ids[i] not in res.item_ids
            if res.plan != "hnsw_subindex":
                assert res.rows == ref.rows, (x, res.plan)
