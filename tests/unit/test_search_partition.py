"""The partition rule (issues 18 and 16): once a category filter is used across the values of its
category level (two of its blocks queued their graphs by their own uses), every other block of
that level gets its graph in the background too, the most used and largest first, within the
filter's memory cap; meanwhile no query waits for a build, and afterwards a seed of a category
never queried answers from its block's graph with exact search's counts.
"""

from __future__ import annotations

import threading

import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import _SUB_AFTER, FilteredSearcher
from recsys.search import static as static_mod
from tests.unit.test_search import uncorrelated_catalog

CFG = FilterConfig(same_category=True, category_level=1)  # 20 leaves of about 400 items


@pytest.fixture(scope="module")
def catalogue():
    cat, vec = uncorrelated_catalog(8000, 11)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=2)
    return cat, vec, index


def searcher_of(catalogue) -> FilteredSearcher:
    cat, vec, index = catalogue
    s = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    s.sub_index_min_rows, s.sub_index_gain = 100, 0.0  # small catalogue: let the graphs pay
    s.wait_background()  # the inverted lists
    s.search("u0", CFG, 10)
    s.wait_background()  # the filter compiled
    return s


def items_of(cat, leaf: str, count: int) -> list[str]:
    return cat.item_id[cat.category == leaf].tolist()[:count]


def test_two_used_categories_give_every_category_of_the_level_its_graph(catalogue):
    cat = catalogue[0]
    searcher = searcher_of(catalogue)
    used = items_of(cat, "C0 > D0", _SUB_AFTER + 2) + items_of(cat, "C1 > D1", _SUB_AFTER + 2)
    gate = threading.Event()
    searcher._bg.submit("hold", gate.wait)  # every build stays queued while the queries run
    try:
        plans = {searcher.search(item, CFG, 10).plan for item in used}
        cf = searcher.compile(CFG)
        assert not cf.blocks and "hnsw_subindex" not in plans  # no request built or waited for one
    finally:
        gate.set()
    searcher.wait_background()
    leaves = sorted(cat.category.unique())
    assert len(leaves) == 20 and len(cf.blocks) == 20
    hits = total = 0
    for leaf in leaves:  # 18 of them never queried
        for item in items_of(cat, leaf, 3):
            res = searcher.search(item, CFG, 10)
            ref = searcher.search(item, CFG, 10, plan="exact")
            assert res.plan == "hnsw_subindex", (leaf, res.plan)
            assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule
            assert len(res) == 10 and item not in res.item_ids
            assert set(cat.set_index("item_id").category.loc[res.item_ids]) == {leaf}
            hits += len(set(res.rows) & set(ref.rows))
            total += len(ref.rows)
    assert hits / total >= 0.99


def test_one_used_category_builds_its_own_graph_only(catalogue):
    cat = catalogue[0]
    searcher = searcher_of(catalogue)
    for item in items_of(cat, "C2 > D3", 3 * _SUB_AFTER):
        searcher.search(item, CFG, 10)
    searcher.wait_background()
    cf = searcher.compile(CFG)
    assert len(cf.blocks) == 1
    other = items_of(cat, "C0 > D0", 1)[0]
    assert searcher.search(other, CFG, 10).plan != "hnsw_subindex"


def test_the_field_fills_the_memory_cap_most_used_first(catalogue, monkeypatch):
    cat = catalogue[0]
    searcher = searcher_of(catalogue)
    rows = int(cat.category.value_counts().max())
    one = static_mod.block_bytes_estimate(rows, searcher.dim, searcher._index_M(), searcher.n)
    monkeypatch.setattr(static_mod, "_BLOCKS_MAX_BYTES", 5 * one)  # about five blocks of the level
    for item in items_of(cat, "C3 > D4", 5):  # used, but under _SUB_AFTER
        searcher.search(item, CFG, 10)
    for leaf in ("C0 > D0", "C1 > D1"):
        for item in items_of(cat, leaf, _SUB_AFTER + 2):
            searcher.search(item, CFG, 10)
    searcher.wait_background()
    cf = searcher.compile(CFG)
    assert 3 <= len(cf.blocks) <= 5 and cf.block_bytes <= 5 * one, len(cf.blocks)
    view = searcher.view
    names = {tuple(key[:2]): view.cat_names[1][view.cat_codes[1][key[0]]] for key in cf.blocks}
    assert {"C0 > D0", "C1 > D1", "C3 > D4"} <= set(names.values()), names
