"""A new filter's first query without the content hash or the rule table's resolvers (issue 18).

The first query of a config never compiled looks it up by :meth:`FilterConfig.search_key` (a tuple
of its fields) instead of :meth:`FilterConfig.config_hash` (pydantic's JSON dump, ``json.dumps``,
SHA-256: 200 to 280 us of CPU with cold caches), and resolves its seed rules with scalar steps
(:meth:`ColdMixin._cold_seed_rules`) instead of the rule table's vectorised resolvers.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from recsys.search.cold import _LIST_FIELDS, _list_fields_only, _ranges
from recsys.search.rules import MASK_RULES, RULES
from tests.unit.test_search_cold import _catalog

N = 6000


@pytest.fixture(scope="module")
def data():
    cat, vec = _catalog(N, 33)
    cat.loc[cat.index[:40], "category"] = ""  # seeds without a category: same_category is skipped
    return cat, vec, HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=2)


def test_search_key_is_equal_for_equal_fields_and_differs_otherwise():
    a = FilterConfig(brands_allow=["b1", "b2"], price_min=3.0)
    b = FilterConfig.from_dict({"price_min": 3, "brands_allow": ["b1", "b2"]})
    assert a.search_key() == b.search_key() and hash(a.search_key()) == hash(b.search_key())
    others = [
        FilterConfig(brands_allow=["b1", "b3"], price_min=3.0),
        FilterConfig(brands_deny=["b1", "b2"], price_min=3.0),
        FilterConfig(brands_allow=["b1", "b2"], price_max=3.0),
        FilterConfig(brands_allow=["b1", "b2"], price_min=3.0, exclude_seed=False),
        FilterConfig(brands_allow=["b1", "b2"], price_min=3.0, same_category=True),
        FilterConfig(brands_allow=["b1", "b2"], price_min=3.0, same_category=True, category_level=1),
        FilterConfig(brands_allow=["b1", "b2"], price_min=3.0, max_per_brand=2),
    ]
    keys = [a.search_key(), *(c.search_key() for c in others)]
    assert len(set(keys)) == len(keys)
    # a copy with a field changed gets its own key, not the original's
    assert a.model_copy(update={"price_min": 4.0}).search_key() != a.search_key()
    # nested rules (pins, boost, ...) are keyed by the content hash
    pinned = FilterConfig.from_dict({"pins": [{"seed": "u1", "item_id": "u2", "position": 1}]})
    assert pinned.search_key() == pinned.config_hash()


def test_only_the_lists_rules_are_on_when_only_their_fields_are_set():
    """The premise of ``_list_fields_only``: setting the lists' fields switches on no rule but the
    lists' own (mask rules over price, brands, adult items; the seed's category, the adult rule
    and the seed's exclusion), and any other field set is noticed."""
    listed = {"price_range", "brands_allow", "brands_deny", "exclude_adult"}
    seedish = {"same_category", "price_band", "adult_next_to_non_adult", "exclude_seed"}
    values = {
        "price_min": [None, 2.0],
        "price_max": [None, 9.0],
        "brands_allow": [[], ["b1"]],
        "brands_deny": [[], ["b2"]],
        "exclude_adult": [False, True],
        "same_category": [False, True],
        "category_level": [0, 2],
        "exclude_seed": [True, False],
        "price_ratio_min": [None, 0.5],
        "price_ratio_max": [None, 2.0],
    }
    assert set(values) == _LIST_FIELDS
    for combo in itertools.product(*values.values()):
        cfg = FilterConfig(**dict(zip(values, combo)))
        assert _list_fields_only(cfg)
        on = {r.name for r in RULES if r.on(cfg)}
        assert on <= listed | seedish, on
    for fields in (
        {"same_gender": True},
        {"price_ratio_min": 0.5, "same_gender": True},
        {"banned_brand_pairs": [("b1", "b2")]},
        {"in_stock_only": True},
        {"min_similarity": 0.1},
        {"max_per_brand": 2},
        {"exclude_same_title": True},
    ):
        assert not _list_fields_only(FilterConfig(**fields)), fields
    assert {r.name for r in MASK_RULES} >= listed


@pytest.mark.parametrize("adult_items", [True, False])
def test_cold_seed_rules_are_the_rule_tables(data, adult_items):
    """Every seed (adult or not, with and without a category) and every combination of the cold
    seed rules: the scalar resolution equals the rule table's (counts and their order, skipped
    rules, the domain, the adult variant, the excluded seed)."""
    cat, vec, index = data
    if not adult_items:
        cat = cat.assign(adult=False)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    configs = [
        FilterConfig(**fields, **extra)
        for fields in ({}, {"same_category": True}, {"same_category": True, "category_level": 2})
        for extra in (
            {},
            {"exclude_seed": False},
            {"exclude_adult": True},
            {"brands_allow": ["b1"]},
            {"price_ratio_min": 0.5, "price_ratio_max": 2.0},  # the price band around the seed
            {"price_ratio_min": 0.8},
            {"price_ratio_max": 1.25, "exclude_adult": True},
        )
    ]
    seeds = [*range(0, 40, 7), *range(40, N, 97)]
    for cfg in configs:
        cf = searcher.compile(cfg)
        for pos in seeds:
            want = searcher._seed_rules(cf, pos)
            got = searcher._cold_seed_rules(cfg, pos, dict(cf.base_removed), list(cf.base_skipped))
            assert list(got.removed.items()) == list(want.removed.items()), (cfg, pos)
            assert got.skipped == want.skipped, (cfg, pos)
            fields = ("s", "e", "full", "no_adult", "seed", "keyed", "level", "block", "rank_lo", "rank_hi")
            assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields], (cfg, pos)


def test_a_new_filters_first_queries_do_not_hash_it(data, monkeypatch):
    """The first queries of new configs (lists, over-fetch, category block, no filter) compute no
    content hash on the request thread, answer as exact search does, and once the worker has
    compiled them, a new config object of the same content finds the compiled filter without a
    hash either. Fails with ``config_hash`` back on the first query's path."""
    cat, vec, index = data
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    ref = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.wait_background()
    main = threading.current_thread()
    hashed: list[str] = []
    orig = FilterConfig.config_hash

    def spy(self):  # a hash computed on the request thread (a cached one is free)
        if threading.current_thread() is main and self.__pydantic_private__.get("_hash") is None:
            hashed.append(repr(self))
        return orig(self)

    monkeypatch.setattr(FilterConfig, "config_hash", spy)
    fields = [
        {"brands_allow": ["b3", "b7"]},
        {"brands_allow": [f"b{i}" for i in range(60)]},
        {"price_min": 12.0, "price_max": 19.0},
        {"same_category": True, "category_level": 1},
        {"brands_allow": ["b1", "b2", "b4"], "price_min": 10.0, "exclude_adult": True},
    ]
    gate = threading.Event()
    searcher._bg.submit("hold", gate.wait)  # the builds stay queued: every query is a first query
    seeds = [f"u{i}" for i in range(41, N, 503)]
    got = []
    try:
        for f in fields:
            cfg = FilterConfig(**f)
            got.append((cfg, [searcher.search(s, cfg, 10) for s in seeds]))
    finally:
        gate.set()
    assert hashed == []
    for cfg, answers in got:
        for s, res in zip(seeds, answers):
            want = ref.search(s, cfg, 10, plan="exact")
            assert res.n_eligible == want.n_eligible and res.removed_by_rule == want.removed_by_rule
            assert res.skipped_rules == want.skipped_rules
            if res.plan.startswith("exact"):
                assert res.item_ids == want.item_ids
    searcher.wait_background()
    hashed.clear()  # the reference searcher's compiles hashed them
    for f in fields:  # compiled by the worker: a new object of the same content finds it, unhashed
        cfg = FilterConfig(**f)
        assert searcher.compiled_for(cfg) is not None
        searcher.search(seeds[0], cfg, 10)
    assert hashed == []
    # no filter at all: its compile is O(1), its hash the class's constant
    res = searcher.search(seeds[1], FilterConfig(), 10)
    assert res.item_ids == ref.search(seeds[1], FilterConfig(), 10, plan="exact").item_ids
    assert np.isfinite(res.scores).all()


def test_ranges_joins_the_ranges_in_order_whatever_their_number():
    """A brand list's positions (``_ranges``): the ranges one after the other, for no range, one,
    a few (joined slices) and many (one gather); empty ranges anywhere."""
    rng = np.random.default_rng(8)
    order = rng.permutation(5000)
    for count in (0, 1, 2, 5, 31, 32, 33, 200):
        for _ in range(5):
            a = np.sort(rng.integers(0, 4900, count))
            b = a + rng.integers(0, 50, count)
            want = [p for x, y in zip(a.tolist(), b.tolist()) for p in order[x:y].tolist()]
            assert _ranges(order, a, b).tolist() == want, count
