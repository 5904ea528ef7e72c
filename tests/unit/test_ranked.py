"""The ranked-list rules over one over-fetch in plain lists (``recsys/search/ranked.py``) answer
as the NumPy path did: a serving preset with ``max_per_brand`` (not lean: rescored, sorted, cut)
gets the same lists, scores, counts and plans either way."""

from __future__ import annotations

import numpy as np
import pytest

import recsys.search.overfetch as overfetch_module
import recsys.search.planner as planner
from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from tests.unit.test_search import ANSWER_FIELDS, clustered_catalog

FIELDS = (*ANSWER_FIELDS, "served_by")


@pytest.fixture(scope="module")
def built():
    cat, vec = clustered_catalog(6000, 3)
    return cat, vec, HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)


@pytest.mark.parametrize(
    "fields",
    [
        # the serving bench's preset: a seed table, brands that follow the vectors (the cap bites)
        {"same_category": True, "category_level": 0, "exclude_adult": True, "max_per_brand": 3},
        {"same_category": True, "category_level": 0, "max_per_brand": 2},
        {"same_category": True, "price_ratio_min": 0.5, "price_ratio_max": 2.0, "min_similarity": 0.5},
        {"same_gender": True, "max_per_brand": 2, "min_similarity": 0.3},
    ],
)
def test_ranked_rules_in_lists_answer_as_the_numpy_path(built, fields, monkeypatch):
    # exact search priced far above a beam search, so that this small catalogue takes the
    # over-fetch the cost model keeps for large ones (as the serving bench's 100k items do)
    monkeypatch.setattr(planner, "_COST_EXACT_BASE", 1e6)
    cat, vec, index = built
    ids = cat["item_id"].to_numpy()
    cfg = FilterConfig(**fields)
    lists = FilteredSearcher(vec, ids, cat, index=index)
    arrays = FilteredSearcher(vec, ids, cat, index=index)
    seeds = [f"c{i}" for i in range(0, 6000, 43)]
    for s in (lists, arrays):  # the same warm-up: seed tables, learned fill rates
        for item in seeds[:40]:
            s.search(item, cfg, 10)
    over = capped = 0
    for k in (10, 25):
        for item in seeds:
            got = lists.search(item, cfg, k)
            with monkeypatch.context() as m:
                m.setattr(overfetch_module, "SMALL_FETCH", -1)  # every over-fetch: the NumPy path
                want = arrays.search(item, cfg, k)
            for field in FIELDS:
                assert getattr(got, field) == getattr(want, field), (item, k, field)
            over += got.plan == "hnsw_overfetch"
            capped += got.removed_by_rule.get("max_per_brand", 0) > 0
    assert over > 0.5 * 2 * len(seeds)  # the over-fetch answered most queries ...
    if cfg.max_per_brand is not None:
        assert capped > 0.2 * 2 * len(seeds)  # ... and the cap dropped items in many


def test_ranked_rules_in_lists_match_brute_force(built, monkeypatch):
    """The list path's answers are exact search's (where HNSW found the true neighbours)."""
    monkeypatch.setattr(planner, "_COST_EXACT_BASE", 1e6)
    cat, vec, index = built
    ids = cat["item_id"].to_numpy()
    cfg = FilterConfig(same_category=True, category_level=0, exclude_adult=True, max_per_brand=2)
    searcher = FilteredSearcher(vec, ids, cat, index=index)
    seeds = [f"c{i}" for i in range(0, 6000, 29)]
    for item in seeds[:20]:
        searcher.search(item, cfg, 10)
    same = over = 0
    for item in seeds:
        res = searcher.search(item, cfg, 10)
        ref = searcher.brute_force(item, cfg, 10)  # exact search (checked against the rules elsewhere)
        ref_ids, ref_scores = ref.item_ids, ref.scores
        over += res.plan == "hnsw_overfetch"
        if res.item_ids == ref_ids:
            same += 1
            np.testing.assert_allclose(res.scores, ref_scores[: len(res)], atol=1e-5)
    assert over > 0.5 * len(seeds)
    assert same >= 0.95 * len(seeds)


@pytest.mark.parametrize("group", [1, 100])
@pytest.mark.parametrize(
    "fields",
    [
        {"same_category": True, "category_level": 0, "exclude_adult": True, "max_per_brand": 3},
        {"same_category": True, "category_level": 0, "max_per_brand": 1},
    ],
)
def test_a_rescored_prefix_answers_as_every_eligible_label(built, fields, group, monkeypatch):
    """The preset's shortcut rescores the first 2k eligible labels of its over-fetch first
    (hnswlib's distances bound what the rest can score): its answers are those of rescoring every
    eligible label, field by field, also where many items share one vector (``group``: ties
    across the prefix's end, decided by catalogue position, where the prefix must give way),
    and the prefix answers queries on its own."""
    import recsys.search.ranked as ranked

    monkeypatch.setattr(planner, "_COST_EXACT_BASE", 1e6)
    cat, vec, index = built
    rng = np.random.default_rng(5)
    # brands drawn at random (300), so that the fill rate keeps the over-fetch (the shortcut) on
    cat = cat.assign(brand=[f"r{b}" for b in rng.integers(0, 300, len(cat))])
    if group > 1:  # every vector shared by ``group`` items (a thin catalogue)
        vec = np.repeat(vec[::group], group, axis=0)[: len(vec)]
        vec = vec[rng.permutation(len(vec))]  # ties scattered over rows and positions
        index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)
    ids = cat["item_id"].to_numpy()
    cfg = FilterConfig(**fields)
    prefix = FilteredSearcher(vec, ids, cat, index=index)
    whole = FilteredSearcher(vec, ids, cat, index=index)
    seeds = [f"c{i}" for i in range(0, 6000, 37)]
    for s in (prefix, whole):
        for item in seeds[:40]:
            s.search(item, cfg, 10)
    rank, calls = ranked._rank, []

    def counted(searcher, q, er, k, c):
        calls.append(len(er))
        return rank(searcher, q, er, k, c)

    monkeypatch.setattr(ranked, "_rank", counted)
    answered = fell = 0
    for k in (10, 7):
        m = -(-ranked.PREFIX_FACTOR * k // 8) * 8
        for item in seeds:
            calls.clear()
            got = prefix.search(item, cfg, k)
            answered += calls == [m]
            fell += calls[:1] == [m] and len(calls) > 1
            with monkeypatch.context() as mp:
                mp.setattr(ranked, "PREFIX_FACTOR", 10**6)  # no prefix: every eligible label
                want = whole.search(item, cfg, k)
            for field in FIELDS:
                assert getattr(got, field) == getattr(want, field), (item, k, field)
    if group == 1:
        assert answered > 0.5 * 2 * len(seeds)  # the prefix alone answered most queries
    else:
        assert fell > 0.5 * 2 * len(seeds)  # ties across the prefix's end: every label rescored
