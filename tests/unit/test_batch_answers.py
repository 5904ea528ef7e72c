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


def test_the_first_labels_but_the_seed_are_those_of_a_loop_over_each_row():
    """The unfiltered batch (and a filter's own graph) keeps each row's first k labels other than
    its seed's row, whether the seed is first, deeper, or not in the row at all, and all of them
    when the row is too short; as a loop over the labels in hnswlib's order picks them."""
    from recsys.search.batch import _first_k_but

    rng = np.random.default_rng(2)
    for b, f, k in ((60, 11, 10), (60, 11, 11), (40, 6, 10), (30, 25, 10)):
        labels = np.stack([rng.choice(1_000, size=f, replace=False) for _ in range(b)]).astype(np.int64)
        dist = rng.random((b, f)).astype(np.float32)
        where = rng.integers(-1, f, size=b)  # the seed's column, -1: not in the row
        seeds = np.where(where >= 0, labels[np.arange(b), np.maximum(where, 0)], 5_000)
        for seed_rows in (seeds, None):
            rows, sims, cnt = _first_k_but(labels, dist, seed_rows, k)
            for i in range(b):
                want = [j for j in range(f) if seed_rows is None or labels[i, j] != seed_rows[i]][:k]
                assert cnt[i] == len(want)
                assert rows[i, : len(want)].tolist() == labels[i, want].tolist()
                assert (rows[i, len(want) :] == -1).all()
                np.testing.assert_array_equal(sims[i, : len(want)], (1.0 - dist[i, want]).astype(np.float32))
