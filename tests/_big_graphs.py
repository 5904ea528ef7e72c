"""Shared check of the big-filter graph tests (``test_search_big_graph.py``,
``test_search_big_block_decision.py``): a category filter's two half-catalogue blocks have their
own graphs, and the seeds answered from them match exact search."""

from __future__ import annotations

from typing import Any

from recsys.search.batch import BLOCK_MAX_SHARE


def assert_answered_from_big_graphs(searcher: Any, cfg: Any, items: Any, top: dict) -> None:
    """Both big blocks of ``cfg`` got a graph; each of ``items`` is answered from it with exact
    search's eligible count and removals, a full list without the seed, in the seed's top-level
    category (``top``: item -> top-level category), at recall@10 >= 0.99 overall."""
    cf = searcher.compile(cfg)
    big = [key for key in cf.blocks if key[1] - key[0] > BLOCK_MAX_SHARE * searcher.n]
    # a graph within the filter's own block budget is kept among its block graphs (shared with the
    # filters of its mask); a bigger one (a 50% level of 1M items) is one of the searcher's big graphs
    assert len(big) == 2 and all(cf.blocks[key].sub is not None for key in big), (cf.big_subs, cf.stats)
    hits = total = 0
    for item in items:
        res = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        assert res.plan == "hnsw_subindex", res.plan
        assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule
        assert len(res) == 10 and item not in res.item_ids
        assert {top[i] for i in res.item_ids} == {top[item]}
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    assert hits / total >= 0.99, hits / total
