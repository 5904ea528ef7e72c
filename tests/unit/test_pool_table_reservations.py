"""A boosted category filter's pool tables reserve their bytes once per table (s35-q's review of
s34-r): two config objects of one filter (two clients sending the same rules, each config kept
by its own shortcut) both meet a block whose table is queued and not built yet."""

from __future__ import annotations

import threading

import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.merch import Adjust
from recsys.search import FilteredSearcher
from tests.unit.test_search import brute_force, clustered_catalog

RULES = {"boost": [Adjust(price_max=12.0, multiplier=1.3)], "bury": [Adjust(price_min=40.0, multiplier=0.7)]}
FIELDS = {"same_category": True, "category_level": 1, "exclude_adult": True, **RULES}


@pytest.fixture(scope="module")
def shop():
    cat, vec = clustered_catalog(6000, 23)
    index = HnswIndex.build(vec, M=16, ef_construction=200, ef=64, num_threads=1)
    return cat, vec, index


@pytest.fixture
def kernels(monkeypatch):
    from recsys.search import merge_kernel

    for name in ("KERNEL", "SETTLE", "DOT", "TABLE"):
        monkeypatch.setattr(merge_kernel, name, None)
    monkeypatch.setattr(merge_kernel, "state", "idle")
    assert merge_kernel.compile_now() is not None, merge_kernel.state
    return merge_kernel


def test_a_pool_table_queued_twice_reserves_its_bytes_once(shop, kernels, monkeypatch):
    """The filter is in use (block graphs and merges built) before any table: then two config
    objects of it are armed and meet the same blocks while the tables wait in the background
    queue. The bytes reserved are those of the tables built, so the budget
    (``_POOL_TABLES_MAX_BYTES``) is not spent on tables that were never built (on main each
    second meeting reserved the table's bytes again: the submit was refused as already pending,
    the reservation kept, and later blocks got no table), and the lists equal brute force."""
    from recsys.search import adjusted

    cat, vec, index = shop
    ids = cat["item_id"].tolist()
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    warm = FilterConfig(**FIELDS)
    table = kernels.TABLE
    monkeypatch.setattr(kernels, "TABLE", None)  # no table while the graphs and merges are built
    for _ in range(2):
        for i in range(0, 6000, 8):
            searcher.search(ids[i], warm, 10)
        searcher.wait_background()
    monkeypatch.setattr(kernels, "TABLE", table)
    cl = searcher.compile(warm).adjust_classes
    assert cl.table_bytes == 0  # no table built yet (the blocks past the limits got none)
    assert all(bm is None or bm.table in (None, adjusted._NO_TABLE) for bm in cl._merges.values())

    a, b = FilterConfig(**FIELDS), FilterConfig(**FIELDS)  # one filter, two objects
    seeds = [ids[i] for i in range(3, 6000, 29)]
    gate = threading.Event()
    searcher._bg.submit(("hold", "s35q"), gate.wait)  # the tables stay queued
    try:
        for cfg in (a, b):
            for s in seeds[:3]:  # the general path answers, then arms the config's shortcut
                searcher.search(s, cfg, 10)
        for s in seeds:
            for cfg in (a, b):  # each shortcut's first query of a block queues its table
                searcher.search(s, cfg, 10)
        queued = cl.table_bytes
    finally:
        gate.set()
    searcher.wait_background()
    built = [bm.table for bm in cl._merges.values() if bm is not None and bm.table is not None]
    built = [t for t in built if t is not adjusted._NO_TABLE]
    assert built, "no table built"
    used = sum(t.adj.shape[0] * (t.adj.shape[1] * 8 + 4) for t in built)
    assert queued == used, (queued, used)
    assert cl.table_bytes == used, (cl.table_bytes, used)
    for s in seeds[::25]:
        for cfg in (a, b):
            assert searcher.search(s, cfg, 10).item_ids == brute_force(cat, vec, s, cfg, 10)[0], s
