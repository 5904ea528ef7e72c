"""No request pays an O(n) build (issue 18): a new filter's first queries, and those that follow
while the background thread compiles it and builds its eligible set, touch no array the size of
the catalogue on the request thread: no mask is built, counted, scanned or hashed there.

The O(n) steps are recorded where they run (the real functions run: each is wrapped to note the
thread and the array size), with the background thread held busy so that every filter stays in
the state a user's first queries meet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time

import numpy as np
import pytest

from recsys import filters
from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import _SUB_AFTER, FilteredSearcher, cold, compiled
from recsys.search.batch import StaticSet
from recsys.search.cold import Postings, _top_by_position
from recsys.search.compiled import CompileMixin
from recsys.search.static import StaticMixin
from tests.unit.test_search_cold import _catalog

N = 8000
#: a sort of this many positions or more on the request is recorded (a posting list's)
SORT_MIN = 64


@pytest.fixture(scope="module")
def data():
    cat, vec = _catalog(N, 21)
    return cat, vec, HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=2)


class _Recorder:
    """Notes the O(n) steps run on the request thread while :attr:`on` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.on = False
        self.calls: list[str] = []
        self.thread = threading.current_thread()
        for name in ("flatnonzero", "count_nonzero", "ones", "zeros", "empty", "cumsum", "argsort"):
            monkeypatch.setattr(np, name, self._sized(getattr(np, name), f"np.{name}"))
        # a posting list's sort (its positions in ascending order: 0.15 ms for 10k at 1M items)
        monkeypatch.setattr(np, "sort", self._sized(np.sort, "np.sort", SORT_MIN))
        # a brand name normalised again: once per config, at its validation (FilterConfig.norm_brands)
        monkeypatch.setattr(filters, "_norm_brand", self._always(filters._norm_brand, "filters._norm_brand"))
        monkeypatch.setattr(hashlib, "blake2b", self._always(hashlib.blake2b, "hashlib.blake2b"))
        for cls, name in (
            (StaticSet, "__init__"),
            (Postings, "__init__"),
            (CompileMixin, "_key_index"),
            (CompileMixin, "_seed_table"),
            (StaticMixin, "_mask_digest"),
        ):
            monkeypatch.setattr(cls, name, self._always(getattr(cls, name), f"{cls.__name__}.{name}"))
        rules = [  # each catalogue-mask rule's test runs over every item: a compile's mask
            dataclasses.replace(r, keep=self._always(r.keep, f"mask rule {r.name}"))
            for r in compiled.MASK_RULES
        ]
        monkeypatch.setattr(compiled, "MASK_RULES", tuple(rules))

    def _note(self, what: str) -> None:
        if self.on and threading.current_thread() is self.thread:
            self.calls.append(what)

    def _always(self, fn, what: str):
        def spy(*a, **k):
            self._note(what)
            return fn(*a, **k)

        return spy

    def _sized(self, fn, what: str, least: int = N):
        def spy(a, *rest, **k):
            size = int(np.prod(a)) if isinstance(a, (int, tuple)) else np.size(a)
            if size >= least:
                self._note(f"{what} over {size}")
            return fn(a, *rest, **k)

        return spy


CONFIGS = [
    {"brands_allow": ["b3", "b7"]},  # 2%: exact search over the brands' postings
    {"brands_allow": [f"b{i}" for i in range(0, 30, 3)]},  # 10 brands (10%): exact, unsorted list
    {"price_min": 20.0, "price_max": 21.0},  # exact search over a slice of the price order
    {"brands_allow": [f"b{i}" for i in range(60)]},  # 60%: over-fetch, labels tested
    {"price_min": 15.0, "price_max": 17.0},
    {"brands_deny": [f"b{i}" for i in range(90)], "price_max": 30.0},
    {"exclude_adult": True},
    {"same_category": True, "category_level": 1},  # the seed's category block (5%)
    {"same_category": True, "category_level": 0},  # (25%)
    {"same_category": True, "category_level": 0, "brands_allow": [f"b{i}" for i in range(20)]},
    # compiled on the request (a seed rule the lists do not hold): no mask rule, so no mask
    {"same_category": True, "category_level": 1, "price_ratio_min": 0.5, "price_ratio_max": 2.0},
]


def test_no_request_pays_an_o_n_build(data, monkeypatch):
    """Each config's first queries, then its queries once compiled but before its eligible set
    (a static filter) or seed table (a category filter) is built, with another filter's graph
    shared in the searcher (whose look-up hashed the mask on the request): no O(n) step runs on
    the request thread, and the answers are exact search's (lists of the exact plans, counts of
    every plan). Fails with the mask digest, the compile or the general path's mask passes back
    on the request, a mask built for a config without a mask rule, a posting list sorted on the
    request, or brand names normalised there again (the config's hash, its predicates)."""
    cat, vec, index = data
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    ref = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)  # inline builds
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0  # small catalogue: let a graph pay
    graph_cfg = FilterConfig(brands_allow=[f"b{i}" for i in range(10)])
    for i in range(3 * _SUB_AFTER):  # compiled, its set, then its own graph: shared by mask digest
        searcher.search(f"u{i}", graph_cfg, 10)
        searcher.wait_background()
    assert searcher._shared_blocks
    rec = _Recorder(monkeypatch)
    gate = threading.Event()
    searcher._bg.submit("hold", gate.wait)  # every build stays queued: the state of first queries
    seeds = [f"u{i}" for i in range(0, N, 331)]
    answers = []
    try:
        for fields in CONFIGS:
            cfg = FilterConfig(**fields)
            rec.on = True
            got = [searcher.search(s, cfg, 10) for s in seeds[:12]]
            rec.on = False
            searcher.compile(cfg)  # what the background thread does first, outside any request
            rec.on = True
            got += [searcher.search(s, cfg, 10) for s in seeds[12:]]
            rec.on = False
            answers.append((cfg, got))
    finally:
        rec.on = False
        gate.set()
    assert rec.calls == []
    for cfg, got in answers:
        for s, res in zip(seeds, got):
            want = ref.search(s, cfg, 10, plan="exact")
            assert res.n_eligible == want.n_eligible and res.removed_by_rule == want.removed_by_rule
            assert s not in res.item_ids
            if res.plan.startswith("exact"):
                assert res.item_ids == want.item_ids, (cfg, s, res.plan)

    # the background thread then builds what the requests deferred: the sets, and the digest that
    # lets a new compiled filter of the graph's mask adopt its graph instead of building one
    searcher.wait_background()
    static = FilterConfig(**CONFIGS[0])
    assert searcher.compile(static).sets
    graphs = {v: ss for v, ss in searcher.compile(graph_cfg).sets.items() if ss.sub is not None}
    assert graphs
    searcher._compiled.clear()  # the graph's filter left the compiled-filter cache
    again = FilterConfig(brands_allow=[f"b{i}" for i in range(10)])
    seed = next(f"u{i}" for i in range(N) if (not cat.adult[i]) == next(iter(graphs)))  # its variant
    searcher.search(seed, again, 10)  # answered from the lists; the set is adopted in the background
    searcher.wait_background()
    assert searcher.compile(again).sets.get(next(iter(graphs))) is next(iter(graphs.values()))
    assert searcher.search(seed, again, 10).plan == "hnsw_subindex"


def test_top_by_position_breaks_ties_at_the_cut_by_position():
    """The cold exact search over a posting list in any order (brands one after the other, a
    price band in price order) returns the list exact search over ascending positions returns:
    every score tied with the k-th is a candidate and the lower position wins, -inf never
    returned. Long vectors take top_prefix's bound, short ones a partition. Fails with the tied
    scores cut by column (``topk`` over the unsorted list) instead of by position."""
    rng = np.random.default_rng(3)
    for trial in range(300):
        m = int(rng.choice([5, 50, 700, 5000, 9000]))
        levels = rng.integers(2, 40)  # few distinct scores: ties everywhere, at the cut too
        sc = (rng.integers(0, levels, m) / levels).astype(np.float32)
        sc[rng.random(m) < 0.05] = -np.inf
        cand = rng.permutation(100_000)[:m]
        f = int(rng.integers(1, 25))
        got = _top_by_position(sc, cand, f)
        finite = np.flatnonzero(np.isfinite(sc))
        want = finite[np.lexsort((cand[finite], -sc[finite]))][:f]  # (score desc, position asc)
        assert got == cand[want].tolist(), (trial, m, f)


def test_a_new_filters_first_query_does_not_wake_the_build_thread(data):
    """A new filter's first query queues its compile without waking the build thread (a thread that
    wants the GIL while the next queries run): the job is held, and the worker takes it on its own
    once queries pause, so the filter is compiled with its eligible set without anyone calling
    ``wait_background``. Fails with the hand-over back at the query's end (the job queued from
    the request thread)."""
    cat, vec, index = data
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    searcher.wait_background()
    bg = searcher._bg
    puts: list[threading.Thread] = []
    put = bg._q.put

    def spy(job, *a, **k):
        puts.append(threading.current_thread())
        return put(job, *a, **k)

    bg._q.put = spy
    cfg = FilterConfig(brands_allow=["b5", "b9"])
    first = [searcher.search(f"u{i}", cfg, 10) for i in range(1, 200, 20)]
    assert all(r.plan.startswith("exact") for r in first)  # answered from the lists
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline and not getattr(
        searcher._compiled.get(cfg.config_hash()), "sets", None
    ):
        time.sleep(0.02)
    assert searcher._compiled[cfg.config_hash()].sets  # built by the worker, unasked
    assert puts and all(t is bg._thread for t in puts)  # queued by the worker, never by a query


def test_a_pairs_first_queries_test_no_rule_over_a_brands_list(data, monkeypatch):
    """A brand allow-list with a price band or the adult rule (the seed's, or ``exclude_adult``):
    its first queries, answered exactly from the lists, take the eligible positions as ranges of
    the compound (brand, adult, price) list, with the exact count from binary searches: no rule
    is tested over the brands' whole lists on the request (a 31,600-position price test was 0.2
    to 0.8 ms of a brand+price pair's first query at 100k items), only on the seed, and nothing is
    compiled on the request when a brand's list is longer than a first query may read. The lists
    and counts are exact search's. Fails with the brands' lists intersected by the other rules'
    tests (``_fold_brands`` undone)."""
    cat, vec, index = data
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    ref = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.wait_background()
    tested: list[int] = []
    init = cold._Pred.__init__

    def spy_init(self, count, posting, test, *a, **k):
        def spy(P, test=test):
            tested.append(len(P))
            return test(P)

        spy.__name__ = test.__name__  # the adult rule is recognised by its test's name
        init(self, count, posting, spy, *a, **k)

    monkeypatch.setattr(cold._Pred, "__init__", spy_init)
    # as at 1M items, where a 10% brand list is longer than a first query may read (65,536): the
    # pair was compiled on the request then (its masks over every item, about 5 ms at 1M)
    monkeypatch.setattr(cold, "COLD_SCAN_MAX", 200)
    gate = threading.Event()
    searcher._bg.submit("hold", gate.wait)  # the filters stay uncompiled: every query is a first one
    adult = cat["adult"].to_numpy()
    seeds = [f"u{i}" for i in range(0, N, 97) if i % 2 or adult[i]][:40]  # adult and non-adult seeds
    configs = [
        {"brands_allow": ["b3", "b7", "b11"], "price_min": 10.0, "price_max": 40.0},
        {"brands_allow": ["b1", "b2", "b5"], "exclude_adult": True},
        {"brands_allow": ["b4", "b9"]},  # the seed's adult rule (a non-adult seed) folds in
    ]
    try:
        got = [(FilterConfig(**f), s) for f in configs for s in seeds]
        answers = [searcher.search(s, cfg, 10) for cfg, s in got]
    finally:
        gate.set()
    assert {a.plan for a in answers} == {"exact_subset"}  # from the lists, exact
    assert set(tested) <= {1}  # no rule tested over a list: at most the seed (its scalar test, _Pred.one)
    assert not any(FilterConfig(**f).config_hash() in searcher._compiled for f in configs)  # none compiled
    for (cfg, s), res in zip(got, answers):
        want = ref.search(s, cfg, 10, plan="exact")
        assert res.item_ids == want.item_ids and res.scores == pytest.approx(want.scores, abs=1e-6)
        assert res.n_eligible == want.n_eligible and res.removed_by_rule == want.removed_by_rule


def test_the_processs_first_queries_build_no_config_class_constant(data, monkeypatch):
    """The config class's constants (its defaults as stored and as JSON, the hash of the config
    at its defaults) and the default config's key and hash are computed when a searcher is
    created, not on the process's first queries: each built a config there, and the hash a JSON
    dump (100 to 350 us of CPU on that query, issue 18 s44-f). With those caches emptied as a new
    process has them, a searcher is created; then its first queries (no filter, a flag, a brand
    list; on the lists and compiled) build no config on the request thread and hash none at its
    defaults. Fails with the preparation at creation removed."""
    from recsys.search import searcher as searcher_mod

    cat, vec, index = data
    for cache in (filters._DEFAULTS, filters._PLAIN_DEFAULTS, filters._DEFAULT_HASH):
        for key in list(cache):
            monkeypatch.delitem(cache, key)  # restored after the test
    priv = searcher_mod._DEFAULT_CONFIG.__pydantic_private__
    for name in ("_skey", "_hash"):
        monkeypatch.setitem(priv, name, None)
    monkeypatch.setattr(searcher_mod, "_PREPARED", [])
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    searcher.wait_background()
    configs = [
        None,
        FilterConfig(),
        FilterConfig(exclude_adult=True),
        FilterConfig(brands_allow=["b3", "b7"]),
    ]
    plain = FilterConfig().model_dump()
    me = threading.current_thread()
    built, hashed = [], []
    init, digest = FilterConfig.__init__, filters._digest

    def spy_init(self, *a, **k):
        if threading.current_thread() is me:
            built.append(k)
        init(self, *a, **k)

    def spy_digest(cfg):
        if threading.current_thread() is me and cfg.model_dump() == plain:
            hashed.append(cfg)
        return digest(cfg)

    monkeypatch.setattr(FilterConfig, "__init__", spy_init)
    monkeypatch.setattr(filters, "_digest", spy_digest)
    plans = []
    for i, cfg in enumerate(configs * 2):  # the first queries, then once compiled
        plans.append(searcher.search(f"u{i * 7 + 1}", cfg, 10).plan)
        if i == len(configs) - 1:
            searcher.wait_background()
    assert built == [] and hashed == [], (built, hashed, plans)
    assert len(plans) == 8
