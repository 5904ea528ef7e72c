"""A batch's results as the caller gets them (:mod:`recsys.search.answers`): one result per seed,
each owning its lists and rule counts, lists cut where fewer than k items are eligible, equal to
the single query's answer."""

from __future__ import annotations

import numpy as np

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from tests.unit.test_search import make_catalog


def test_batch_results_are_the_single_answers_each_with_its_own_counts():
    cat, vec = make_catalog(300, 4)
    index = HnswIndex.build(vec, space="cosine", M=16, ef_construction=200, ef=256, num_threads=1)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    brand = next(b for b in cat["brand"] if str(b).strip())
    seeds = [f"it{i}" for i in range(0, 300, 7)]
    few = max(searcher.search(s, FilterConfig(brands_allow=[brand]), 1).n_eligible for s in seeds)
    k = few + 5  # more than the filter keeps for any seed: every list is cut to the eligible items
    for cfg in (FilterConfig(), FilterConfig(brands_allow=[brand])):
        batch = searcher.search_many(seeds, cfg, k, num_threads=2)
        for seed, got in zip(seeds, batch):
            one = searcher.search(seed, cfg, k)
            assert got.seed_item_id == seed
            assert got.item_ids == one.item_ids
            assert got.rows == one.rows
            np.testing.assert_allclose(got.scores, one.scores, rtol=0, atol=1e-6)
            assert (got.removed_by_rule, got.n_eligible, got.skipped_rules) == (
                one.removed_by_rule,
                one.n_eligible,
                one.skipped_rules,
            )
            assert got.elapsed_ms > 0 and got.served_by == []
        if cfg.brands_allow:
            assert all(len(r.item_ids) == len(r.scores) == len(r.rows) < k for r in batch)
        # each result owns its counts and lists: a caller changing one changes no other
        batch[0].removed_by_rule["mine"] = 1
        batch[0].skipped_rules.append("mine")
        batch[0].served_by.append("mine")
        assert all("mine" not in r.removed_by_rule for r in batch[1:])
        assert all("mine" not in r.skipped_rules and not r.served_by for r in batch[1:])
