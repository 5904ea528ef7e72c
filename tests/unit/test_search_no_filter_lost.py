"""A query without a filter whose beam search misses the seed's own neighbourhood (issue 18).

At 1M items (M=16, ef 64) 5 of the bench's 500 seeds got labels that held neither the seed itself
nor any of its ten nearest items (recall@10 0.0 each: the case read 0.9878); a beam of 1,024 found
them. In the cosine space a seed looked up by its own vector is its own nearest item, so labels
without it tell a lost search: it is asked again wider, then answered exactly. Here a coarse graph
(M=4, ef_construction 16, ef 10) loses some seeds of a small catalogue the same way; no threshold
of the code is changed.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from recsys.search.beams import LOST_DIST, seed_lost, seeds_lost
from tests._clustered import clustered_catalogue

K = 10


@pytest.fixture(scope="module")
def coarse():
    cat, vec = clustered_catalogue(3, 5)
    n = len(cat)
    index = HnswIndex.build(vec, M=4, ef_construction=16, ef=10, num_threads=1)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    labels, dist = index._index.knn_query(unit, k=K + 1, num_threads=1)  # every seed at the ef
    lost = [r for r in range(n) if r not in labels[r].tolist() and dist[r, 0] > 1e-3]
    found = [r for r in range(n) if labels[r, 0] == r][:200]
    return cat["item_id"].to_numpy(), unit, searcher, lost, found


#: (seed_row, labels, first distances, self_first, lost?): the one predicate of every path
PREDICATE_CASES = [
    (7, [7, 3, 5], [0.0, 0.2, 0.3], True, False),  # its own vector first: the usual case
    (7, [3, 7, 5], [0.0, 0.0, 0.3], True, False),  # a tied vector first, the seed second
    (7, [3, 7, 5], [0.2, 0.2, 0.3], True, False),  # its own row among them, however far: found
    (7, [3, 5, 9], [0.2, 0.3, 0.4], True, True),  # neither it nor anything that close: lost
    (7, [3, 5, 9], [0.2, 0.3, 0.4], False, False),  # in-out or not cosine: the seed is not first
    (7, [3, 5, 9], [LOST_DIST / 10, 0.3, 0.4], True, False),  # an identical vector took its place
    (7, [3, 5, 9], [LOST_DIST, 0.3, 0.4], True, False),  # at the threshold: not judged lost
    (7, [3, 5, 9], [2 * LOST_DIST, 0.3, 0.4], True, True),  # just over it
    (-1, [3, 5, 9], [0.2, 0.3, 0.4], True, False),  # the seed not in the index: nothing to miss
]


@pytest.mark.parametrize("seed_row, rows, dists, self_first, lost", PREDICATE_CASES)
def test_the_lost_search_predicate(seed_row, rows, dists, self_first, lost):
    assert seed_lost(seed_row, rows, dists, self_first) is lost
    # as the over-fetch and the shortcut pass them: NumPy labels and distances (float32)
    assert seed_lost(seed_row, np.array(rows), np.array(dists, dtype=np.float32), self_first) is lost


def test_the_batch_form_of_the_predicate_is_the_single_one():
    for self_first in (True, False):
        cases = [c for c in PREDICATE_CASES if c[3] == self_first]
        seeds = np.array([c[0] for c in cases], dtype=np.int64)
        labels = np.array([c[1] for c in cases], dtype=np.int64)
        dist = np.array([c[2] for c in cases], dtype=np.float32)
        want = [c[4] for c in cases]
        assert seeds_lost(seeds, labels, dist, self_first).tolist() == want
    assert not seed_lost(7, [], [], True)  # no labels: nothing to judge
    none = np.empty((1, 0), dtype=np.int64)
    assert seeds_lost(np.array([7]), none, none.astype(np.float32), True).tolist() == [False]


def _recall(got: list[int], want: list[int]) -> float:
    return len(set(got) & set(want)) / len(want)


def test_a_seed_whose_beam_search_is_lost_gets_its_neighbours(coarse):
    ids, unit, searcher, lost, found = coarse
    assert len(lost) >= 10  # the graph loses some seeds at its ef (the test means something)
    cfg = FilterConfig()
    searcher.search(ids[found[0]], cfg, K)  # the general path answers, then arms the shortcut
    assert searcher._fast
    recalls = []
    for r in lost[:40]:
        truth = searcher.search(ids[r], cfg, K, plan="exact").rows
        a = searcher.search(ids[r], cfg, K)  # the shortcut hands it to the general path's retries
        b = searcher.search(ids[r], cfg, K)
        for res in (a, b):
            assert len(res) == K and r not in res.rows and res.n_eligible == len(ids) - 1
            assert res.plan in ("hnsw_overfetch", "hnsw_overfetch+exact_fallback")
            assert list(res.item_ids) == ids[res.rows].tolist() and res.seed_item_id == ids[r]
            np.testing.assert_allclose(res.scores, unit[res.rows] @ unit[r], atol=1e-5)
            assert res.scores == sorted(res.scores, reverse=True)
            assert res.removed_by_rule == {"exclude_seed": 1}
        assert b.rows == a.rows
        recalls.append(_recall(a.rows, truth))
    assert np.mean(recalls) >= 0.9  # the coarse graph's own recall at a 4x beam (lost: 0.0 each)
    # the batch path: the same seeds answered, not the lost labels
    many = searcher.search_many([ids[r] for r in lost[:40]], cfg, K)
    for r, res in zip(lost[:40], many):
        assert _recall(res.rows, searcher.search(ids[r], cfg, K, plan="exact").rows) >= 0.9
    # a seed whose search is not lost keeps the one beam search's answer (the shortcut's)
    for r in found[:50]:
        res = searcher.search(ids[r], cfg, K)
        labels, _ = searcher.index._index.knn_query(unit[r : r + 1], k=K + 1, num_threads=1)
        assert res.plan == "hnsw_overfetch" and res.rows == labels[0].tolist()[1:]


def test_a_lost_seed_of_an_over_fetched_price_band_gets_its_neighbours(coarse):
    """The same for a filter answered by an over-fetch of the main graph (a wide price band around
    the seed's price, which keeps the seed itself: its own row is the first label it expects)."""
    ids, unit, searcher, lost, found = coarse
    cfg = FilterConfig(price_ratio_min=0.2, price_ratio_max=5.0)
    for r in found[:40]:  # the filter in use: its seed table, its shortcut
        searcher.search(ids[r], cfg, K)
    searcher.wait_background()
    for r in found[40:60]:
        searcher.search(ids[r], cfg, K)
    recalls, plans = [], set()
    for r in lost[:40]:
        truth = searcher.search(ids[r], cfg, K, plan="exact")
        res = searcher.search(ids[r], cfg, K)
        assert len(res) == K and r not in res.rows and res.n_eligible == truth.n_eligible
        np.testing.assert_allclose(res.scores, unit[res.rows] @ unit[r], atol=1e-5)
        recalls.append(_recall(res.rows, truth.rows))
        plans.add(res.plan)
    assert "hnsw_overfetch" in plans  # the over-fetch answered them (4x wider), not only exact search
    assert np.mean(recalls) >= 0.95, (np.mean(recalls), plans)  # (lost labels: 0.865 here)


@pytest.mark.parametrize("exclude_seed", [True, False])
def test_a_lost_seed_of_the_default_config_among_a_few_adult_items_gets_its_neighbours(
    coarse, monkeypatch, exclude_seed
):
    """The default config on a catalogue with a few adult items (a static set of nearly every item,
    with no graph of its own: the shortcut's ``_fast_near_full``, the batch's over-fetch): a lost
    seed's labels are not its answer, single or in a batch (exact search priced out, as on a large
    catalogue; the batch filled its lists with them: recall 0.27 here). The same with the seed
    listed itself (``exclude_seed=False``: main judged no such search, its lost labels the answer)."""
    from recsys.search import planner, static
    from recsys.search.fast import FastMixin

    ids, unit, _, lost, found = coarse
    for m in (planner, static):
        for name in ("_S_GEMV_ROW", "_S_GEMV_ROW_COLD", "_S_SELECT_ROW"):
            if hasattr(m, name):
                monkeypatch.setattr(m, name, 100.0)
    cat, vec = clustered_catalogue(3, 5)
    adult = np.random.default_rng(7).random(len(cat)) < 0.03
    searcher = FilteredSearcher(vec, ids, cat.assign(adult=adult), index=coarse[2].index)
    cfg = FilterConfig(exclude_seed=exclude_seed)
    for r in found[:40]:
        searcher.search(ids[r], cfg, K)
    assert searcher._fast[id(cfg)].answer is FastMixin._fast_flag  # the shortcut answers
    seeds = [r for r in lost if not adult[r]][:30] + [r for r in lost if adult[r]][:10]
    truth = [searcher.search(ids[r], cfg, K, plan="exact") for r in seeds]
    many = searcher.search_many([ids[r] for r in seeds], cfg, K)
    for got in ([searcher.search(ids[r], cfg, K) for r in seeds], many):
        for r, res, ref in zip(seeds, got, truth):
            assert len(res) == K and res.n_eligible == ref.n_eligible
            for got_rows in (ref.rows, res.rows):  # listed itself: first
                assert got_rows[0] == r if not exclude_seed else r not in got_rows
            assert res.removed_by_rule == ref.removed_by_rule
            assert adult[r] or not adult[res.rows].any()
        assert np.mean([_recall(res.rows, ref.rows) for res, ref in zip(got, truth)]) >= 0.9


#: configs that list the seed itself (``exclude_seed=False``), one per main-graph path: no filter
#: (the trivial shortcut and ``_search_trivial``), a brand allow-list keeping about half the items
#: (a static set over-fetched with its flag: ``_fast_flag``, ``_search_static``), a price band
#: (a seed-table key range: ``_fast_table``, ``_overfetch``), and a ranked-list rule (the rescored
#: over-fetch: ``_fast_ranked``, the batch's ``search_many_ranked``; main judged no lost search
#: there, the seed excluded or not)
KEEP_SEED_CONFIGS = {
    "no filter": {},
    "brand allow-list": {"brands_allow": [f"b{i}" for i in range(25)]},
    "price band": {"price_ratio_min": 0.2, "price_ratio_max": 5.0},
    "max per brand": {"max_per_brand": 3},
}


@pytest.mark.parametrize("name", list(KEEP_SEED_CONFIGS))
def test_a_lost_seed_of_a_config_that_lists_the_seed_gets_its_neighbours(coarse, name):
    """``exclude_seed=False`` ("this item and those like it"): the seed's row is in the graph all the
    same, so a beam search whose labels hold neither it nor anything within ``LOST_DIST`` is lost
    whatever the config says, and whether the seed passes the filter or not (main judged it only
    with ``exclude_seed`` on and the seed eligible: its labels were the answer, recall 0.19 with no
    filter here). Single queries (shortcut and general path) ask it again wider; the batch (and
    precompute, built on it) answers it exactly. An eligible seed heads its own list."""
    ids, unit, _, lost, found = coarse
    cat, vec = clustered_catalogue(3, 5)
    searcher = FilteredSearcher(vec, ids, cat, index=coarse[2].index)  # its own shortcuts
    cfg = FilterConfig(exclude_seed=False, **KEEP_SEED_CONFIGS[name])
    for r in found[:60]:  # the filter in use: its set or seed table, its shortcut
        searcher.search(ids[r], cfg, K)
    searcher.wait_background()
    for r in found[60:100]:
        searcher.search(ids[r], cfg, K)
    assert searcher._fast.get(id(cfg)) is not None  # the shortcut answers the seeds below first
    seeds = lost[:40]
    truth = [searcher.search(ids[r], cfg, K, plan="exact") for r in seeds]
    many = searcher.search_many([ids[r] for r in seeds], cfg, K)
    recalls: dict[str, list[float]] = {"single": [], "batch": []}
    for r, ref, b in zip(seeds, truth, many):
        eligible = r in ref.rows  # the seed passes the filter: exact search lists it first
        assert not eligible or ref.rows[0] == r
        for way, res in (
            ("single", searcher.search(ids[r], cfg, K)),
            ("single", searcher.search(ids[r], cfg, K)),
            ("batch", b),
        ):
            assert len(res) == K and res.n_eligible == ref.n_eligible
            assert not eligible or res.rows[0] == r, (
                way,
                r,
                res.plan,
            )  # the seed itself, then its neighbours
            np.testing.assert_allclose(res.scores, unit[res.rows] @ unit[r], atol=1e-5)
            recalls[way].append(_recall(res.rows, ref.rows))
    # the coarse graph's own recall at a 4x beam (single) or the filter's fetch (batch), as with the
    # seed excluded; main's lost labels read 0.15, 0.68 and 0.85 over 200 such seeds, both ways
    got = {way: float(np.mean(x)) for way, x in recalls.items()}
    assert min(got.values()) >= 0.9, got


@pytest.mark.parametrize("exclude_seed", [True, False])
def test_a_vector_given_with_a_seed_is_not_judged_by_the_seeds_row(coarse, exclude_seed):
    """``search_vector`` with a seed for its attributes (the recent-items endpoint: the mean of a
    user's recent items, the last one the seed): the query is not the seed's own vector, so labels
    without the seed's row are no lost search. Its answer is the one beam search's (main judged
    such searches lost by the seed's row with the seed excluded: asked again 4x and 16x wider,
    then exact, for 146 of 200 queries at 20k items, 4x the time)."""
    ids, unit, searcher, lost, found = coarse
    index = searcher.index._index
    cfg = FilterConfig(exclude_seed=exclude_seed)
    rng = np.random.default_rng(5)
    for a, b in rng.integers(0, len(ids), size=(30, 2)).tolist():
        v = unit[a] + unit[b]
        v /= np.linalg.norm(v)
        res = searcher.search_vector(v, cfg, K, seed_item_id=ids[b])
        labels = index.knn_query(v, k=K + exclude_seed, num_threads=1)[0][0].tolist()  # its beam
        want = [r for r in labels if r != b or not exclude_seed][:K]
        assert res.plan == "hnsw_overfetch" and res.rows == want, (a, b, res.plan)


@pytest.mark.parametrize("exclude_seed", [True, False])
def test_a_lost_seed_of_a_filter_not_compiled_yet_gets_its_neighbours(coarse, exclude_seed):
    """The first queries of a filter never seen, answered from the inverted lists while its compile
    waits (``cold.py``): a beam search that missed the seed (listed or not, eligible or not) is asked
    again 4x wider, then exactly, as the compiled paths do (main answered with its labels, either
    setting: recall 0.71 and 0.68 over 200 such seeds here, 0.92 now)."""
    ids, unit, ref, lost, found = coarse
    cat, vec = clustered_catalogue(3, 5)
    searcher = FilteredSearcher(vec, ids, cat, index=ref.index, background_min_items=0)
    searcher.wait_background()  # the inverted lists (built with the searcher)
    cfg = FilterConfig(brands_allow=[f"b{i}" for i in range(25)], exclude_seed=exclude_seed)
    gate = threading.Event()
    searcher._bg.submit("hold", gate.wait)  # every build stays queued: the cold path answers
    try:
        got = [searcher.search(ids[r], cfg, K) for r in lost[:40]]
        assert cfg.config_hash() not in searcher._compiled
    finally:
        gate.set()
    recalls = []
    for r, res in zip(lost[:40], got):
        truth = ref.search(ids[r], cfg, K, plan="exact")
        assert len(res) == K and res.n_eligible == truth.n_eligible
        assert res.rows[:1] == [r] if truth.rows[:1] == [r] else r not in res.rows, (r, res.plan)
        recalls.append(_recall(res.rows, truth.rows))
    assert np.mean(recalls) >= 0.9, np.mean(recalls)


def test_a_batchs_lost_seeds_are_answered_by_one_exact_pass_not_seed_by_seed(coarse, monkeypatch):
    """The unfiltered batch's lost seeds (no dense block: every item eligible) are answered by one
    exact pass over the catalogue for them all (``exact_scan_many``), not by one exact single query
    per seed: at 1M items each such query read the 256 MB of vectors again, three per 1,000 seeds
    cost 41 ms of CPU against raw hnswlib's whole batch at 96 ms (issue 18, s45-b). The lists are
    the single exact search's."""
    ids, unit, _, lost, found = coarse
    cat, vec = clustered_catalogue(3, 5)
    searcher = FilteredSearcher(vec, ids, cat, index=coarse[2].index)  # no filter learned yet
    cfg = FilterConfig()
    seeds = lost[:20] + found[:20]
    truth = [searcher.search(ids[r], cfg, K, plan="exact") for r in seeds]
    calls = []
    one = type(searcher)._search_one
    monkeypatch.setattr(
        type(searcher), "_search_one", lambda self, *a, **kw: calls.append(a) or one(self, *a, **kw)
    )
    many = searcher.search_many([ids[r] for r in seeds], cfg, K)
    assert calls == []  # no seed answered one by one
    exact = [i for i, res in enumerate(many) if res.plan == "hnsw_overfetch+exact_fallback"]
    assert len(exact) >= 10  # the lost seeds went to the exact pass
    for i in exact:
        assert many[i].rows == truth[i].rows and many[i].scores == truth[i].scores
