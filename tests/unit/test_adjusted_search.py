"""Boost and bury without scanning the category (recsys/search/adjusted.py) equal brute force.

The bounded over-fetch answers a boosted/buried query from one beam search plus the members of
the classes whose bound can still reach the k-th score; the exact block path scans a category
block in fewer steps. Both against the reference of test_search (written item by item from the
documented rules), on a clustered catalogue whose graph is searched with a wide beam (so that
the graph's own recall plays no part), with boosts below 1, negative shifts, empty boosted sets
and boosted sets larger than the seed's category.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.merch import Adjust, PairBan
from recsys.search import _TABLE_AFTER, FilteredSearcher
from tests.unit.test_search import assert_matches, brute_force, clustered_catalog


@pytest.fixture(scope="module")
def shop():
    cat, vec = clustered_catalog(3000, 11)
    index = HnswIndex.build(vec, M=16, ef_construction=200, ef=400, num_threads=1)
    return cat, vec, FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)


BOOSTS = [
    [],
    [Adjust(brands=["b3"], multiplier=1.5)],
    [Adjust(category="T0", shift=0.2)],  # larger than any seed's leaf category
    [Adjust(brands=["nobody"], multiplier=2.0)],  # an empty boosted set
    [Adjust(price_max=15.0, multiplier=1.2, shift=0.3), Adjust(brands=["b5", "b6"], multiplier=1.1)],
    [Adjust(category="T1 > L14", shift=1.5)],  # a far cluster that climbs to the top
]
BURIES = [
    [],
    [Adjust(price_min=30.0, multiplier=0.5)],  # a multiplier below 1
    [Adjust(category="T1 > L12", shift=-0.5)],  # a negative shift
    [Adjust(brands=["b7"], multiplier=0.9, shift=-1.5), Adjust(brands=["b3", "b8"], multiplier=0.6)],
]
adjusted_configs = st.builds(
    FilterConfig,
    same_category=st.booleans(),
    category_level=st.integers(0, 1),
    same_gender=st.booleans(),
    exclude_adult=st.booleans(),
    max_per_brand=st.none() | st.integers(1, 3),
    min_similarity=st.none() | st.sampled_from([0.0, 0.5]),
    do_not_associate=st.sampled_from(
        [[], [PairBan(seed="c0", item_id="c1"), PairBan(seed="c5", item_id="c9")]]
    ),
    boost=st.sampled_from(BOOSTS),
    bury=st.sampled_from(BURIES),
).filter(lambda c: bool(c.boost or c.bury))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=adjusted_configs,
    k=st.integers(1, 20),
    row=st.integers(0, 2999),
    plan=st.sampled_from(["auto", "hnsw_overfetch"]),
)
def test_boost_and_bury_from_the_over_fetch_equal_brute_force(shop, cfg, k, row, plan):
    cat, vec, searcher = shop
    seed = f"c{row}"
    res = searcher.search(seed, cfg, k, plan=plan)
    assert_matches(res, *brute_force(cat, vec, seed, cfg, k))
    assert res.n_eligible == searcher.search(seed, cfg, k, plan="exact").n_eligible


def test_a_far_boosted_cluster_climbs_into_the_list_without_an_exact_scan(shop):
    """Items of another cluster, outside any over-fetch, boosted past the seed's neighbours: the
    bound opens their class, its members are scored, the list equals brute force, and no exact
    search over the catalogue was needed (the plan stays the over-fetch)."""
    cat, vec, searcher = shop
    cfg = FilterConfig(boost=[Adjust(category="T1 > L14", shift=1.5)])
    far = set(cat.item_id[cat.category == "T1 > L14"])
    plans = []
    for row in range(0, 3000, 150):
        seed = f"c{row}"
        if seed in far:
            continue
        res = searcher.search(seed, cfg, 10, plan="hnsw_overfetch")
        ids, scores, eligible = brute_force(cat, vec, seed, cfg, 10)
        assert res.item_ids == ids
        assert set(res.item_ids) <= far  # boosted past everything else
        plans.append(res.plan)
    assert plans.count("hnsw_overfetch") == len(plans), plans


def test_buried_neighbours_leave_the_list_and_the_plain_class_needs_a_deeper_fetch(shop):
    """Burying the seed's own cluster pushes every near neighbour down: the plain class's bound
    reaches the k-th score, the first fetch cannot settle the list and it is answered exactly."""
    cat, vec, searcher = shop
    for row in (3, 40, 700):
        seed = f"c{row}"
        leaf = cat.category[row]
        cfg = FilterConfig(bury=[Adjust(category=leaf, shift=-2.0)])
        res = searcher.search(seed, cfg, 10, plan="hnsw_overfetch")
        ids, scores, eligible = brute_force(cat, vec, seed, cfg, 10)
        assert res.item_ids == ids
        assert not set(res.item_ids) & set(cat.item_id[cat.category == leaf])


def test_category_block_scan_on_the_seed_table_equals_brute_force(shop):
    """Once the seed table is built, a boosted/buried "same category" filter scans the seed's
    category block exactly (the block path), pair bans and the seed excluded."""
    cat, vec, searcher = shop
    cfg = FilterConfig(
        same_category=True,
        category_level=1,
        do_not_associate=[PairBan(seed="c2", item_id="c5"), PairBan(seed="c7", item_id="c2")],
        boost=[Adjust(brands=["b3", "b4"], multiplier=1.4)],
        bury=[Adjust(price_min=25.0, multiplier=0.8, shift=-0.05)],
    )
    for _ in range(_TABLE_AFTER + 1):
        searcher.search("c2", cfg, 10)
    searcher.wait_background()
    plans = set()
    for row in [2, 7, *range(0, 3000, 97)]:
        seed = f"c{row}"
        res = searcher.search(seed, cfg, 10)
        plans.add(res.plan)
        ids, scores, eligible = brute_force(cat, vec, seed, cfg, 10)
        assert res.item_ids == ids
        np.testing.assert_allclose(res.scores, scores, atol=1e-5)
        assert res.n_eligible == len(eligible)
    assert "c5" not in searcher.search("c2", cfg, 10).item_ids
    assert "exact_range" in plans


def test_the_seed_table_over_fetch_with_hnswlib_scores_equals_brute_force(monkeypatch):
    """The hot path of a large catalogue on a small one: exact search priced high (as in
    test_search) and the block scan never preferred, so a boosted/buried filter read from the
    seed table answers from one over-fetch with hnswlib's own scores plus the open classes."""
    from recsys.search import adjusted, planner

    monkeypatch.setattr(planner, "_COST_EXACT_BASE", 5000.0)
    monkeypatch.setattr(adjusted, "_S_ADJUST_BASE", -1e9)
    cat, vec = clustered_catalog(3000, 12)
    index = HnswIndex.build(vec, M=16, ef_construction=200, ef=400, num_threads=1)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    bans = [PairBan(seed=f"c{i}", item_id=f"c{i + 1}") for i in range(0, 3000, 50)]
    plans: dict[str, int] = {}
    for boost, bury in zip(BOOSTS[1:], [*BURIES[1:], [], []], strict=True):
        for base in ({"same_category": True, "category_level": 0}, {"same_gender": True}):
            cfg = FilterConfig(**base, do_not_associate=bans, boost=boost, bury=bury)
            for _ in range(_TABLE_AFTER + 1):
                searcher.search("c0", cfg, 10)
            assert searcher.compile(cfg).seed_table is not None
            for row in range(0, 3000, 233):
                seed = f"c{row}"
                res = searcher.search(seed, cfg, 10)
                plans[res.plan] = plans.get(res.plan, 0) + 1
                assert_matches(res, *brute_force(cat, vec, seed, cfg, 10))
    assert plans.get("hnsw_overfetch", 0) > sum(plans.values()) / 2, plans


def test_an_item_boosted_just_past_the_k_th_score_from_just_below_the_fetch(shop):
    """The bound at its tightest: one item (a title condition) whose raw score ranks r-th among
    the seed's eligible items, shifted to land 0.01 above the k-th score. For the ranks just
    past the over-fetch, its class's bound ``s_F + shift`` exceeds the k-th score by about 0.01:
    a bound or margin off by that much leaves it out. Reference: exact search."""
    cat, vec, searcher = shop
    seed, k = "c17", 10
    plain = searcher.search(seed, FilterConfig(), 120, plan="exact")
    tau0 = plain.scores[k - 1]
    for r in range(k + 2, 120):
        title = cat.title[cat.item_id == plain.item_ids[r]].iloc[0]
        shift = float(tau0 - plain.scores[r] + 0.01)
        cfg = FilterConfig(boost=[Adjust(column="title", values=[title], shift=shift)])
        res = searcher.search(seed, cfg, k, plan="hnsw_overfetch")
        ref = searcher.search(seed, cfg, k, plan="exact")
        assert res.item_ids == ref.item_ids, (r, res.plan)
        assert plain.item_ids[r] in res.item_ids


@pytest.fixture(scope="module")
def shop6k():
    cat, vec = clustered_catalog(6000, 21)
    index = HnswIndex.build(vec, M=16, ef_construction=200, ef=64, num_threads=1)
    return cat, vec, index


#: small classes (a boosted brand, a buried price range), a class as big as the rest (a bury at
#: the median price), a boosted category as the dominant class of its blocks, a sparse brand
#: shifted past every neighbour, and a buried brand that is most of its own category (the
#: block's dominant class is the buried one: the few plain items climb)
BLOCK_CASES = [
    {"boost": [Adjust(brands=["b3"], multiplier=1.5)], "bury": [Adjust(price_min=40.0, multiplier=0.7)]},
    {"bury": [Adjust(price_min=20.0, multiplier=0.8, shift=-0.1)]},
    {"boost": [Adjust(category="T0", shift=0.2), Adjust(brands=["b4", "b5"], multiplier=1.2)]},
    {"boost": [Adjust(brands=["b12"], shift=1.5)], "bury": [Adjust(brands=["b2"], multiplier=0.9)]},
    {"bury": [Adjust(brands=["b3"], shift=-2.0)]},
]


def _answers_block_case(shop6k, case: int):
    """A boosted/buried "same category" filter put in use (its seed table, then a graph per
    category block), then checked against brute force on one seed in 199 (ids, scores,
    eligible count, the pair bans). Returns its classes and the plans that answered."""
    cat, vec, index = shop6k
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    near = {
        f"c{i}": searcher.search(f"c{i}", FilterConfig(), 3, plan="exact").item_ids
        for i in range(0, 6000, 199)
    }
    bans = [PairBan(seed=s, item_id=got[0]) for s, got in near.items()]
    cfg = FilterConfig(
        same_category=True, category_level=1, exclude_adult=True, do_not_associate=bans, **BLOCK_CASES[case]
    )
    for i in range(0, 6000, 8):  # a filter in use: its seed table, then a graph per category block
        searcher.search(f"c{i}", cfg, 10)
    plans: dict[str, int] = {}
    for seed in near:
        res = searcher.search(seed, cfg, 10)
        plans[res.plan] = plans.get(res.plan, 0) + 1
        ids, scores, eligible = brute_force(cat, vec, seed, cfg, 10)
        assert res.item_ids == ids, (seed, res.plan)
        np.testing.assert_allclose(res.scores, scores, atol=1e-5)
        assert res.n_eligible == len(eligible)
        assert near[seed][0] not in res.item_ids
    assert plans.get("hnsw_subindex", 0) > len(near) * 3 // 4, plans
    return searcher.compile(cfg).adjust_classes


@pytest.mark.parametrize("graphs", [False, True], ids=["class merge", "adjusted graph"])
@pytest.mark.parametrize("case", range(len(BLOCK_CASES)))
def test_boost_and_bury_on_the_category_graphs_equal_brute_force(shop6k, monkeypatch, graphs, case):
    """A boosted/buried "same category" filter in use answers from its category blocks' graphs,
    without scanning the block: by the class merge (the block's dominant class from the plain
    graph's fetch, the other classes that could climb scored exactly) or, once built, from the
    block's graph of adjusted vectors. Both equal brute force (ids and scores), with pair bans,
    the seed excluded and adult items left out for non-adult seeds, for small and big classes."""
    from recsys.search import adjusted, merge_kernel

    monkeypatch.setattr(adjusted, "_ADJUSTED_GRAPHS", graphs)
    monkeypatch.setattr(merge_kernel, "KERNEL", None)  # the NumPy merge (the compiled one: below)
    cl = _answers_block_case(shop6k, case)
    assert bool(cl.graphs) == graphs
    # a block whose adjusted graph would cost more than the merge keeps the merge (_NO_GRAPH)
    built = [g for g in cl.graphs.values() if g is not adjusted._NO_GRAPH]
    assert not graphs or built, "no block kept its adjusted graph"


def test_an_adjusted_graph_below_the_recall_check_never_answers(shop6k, monkeypatch):
    """A block's adjusted graph that reaches the recall check at no ef up to the cap is dropped
    (and not built again): the class merge keeps answering from the plain graphs, equal to brute
    force. The check's verdict is forced to "no ef passes" for the adjusted graphs only."""
    from recsys.search import adjusted

    monkeypatch.setattr(adjusted, "_ADJUSTED_GRAPHS", True)
    calls = []

    def failing(g, aug, dense, ef, k=10):
        calls.append(ef)
        return None

    monkeypatch.setattr(adjusted, "_adjusted_ef", failing)
    cl = _answers_block_case(shop6k, 0)
    assert calls
    assert cl.graphs and all(g is adjusted._NO_GRAPH for g in cl.graphs.values())


def test_an_adjusted_graph_slower_than_the_class_merge_never_answers(shop6k, monkeypatch):
    """A block's adjusted graph that passes the recall check only at an ef far above its plain
    graph's (here: 8 times what the check found) would answer slower than the class merge: it
    is dropped, and the class merge answers, equal to brute force. At the ef the check finds on
    this catalogue the graphs are kept (the "adjusted graph" cases above)."""
    from recsys.search import adjusted

    monkeypatch.setattr(adjusted, "_ADJUSTED_GRAPHS", True)
    real = adjusted._adjusted_ef
    efs = []

    def costly(g, aug, dense, ef, k=10):
        got = real(g, aug, dense, ef, k)
        efs.append((ef, got))
        return None if got is None else 8 * got

    monkeypatch.setattr(adjusted, "_adjusted_ef", costly)
    cl = _answers_block_case(shop6k, 0)
    assert efs, "no adjusted graph was calibrated"  # (the real ef a block needs varies with the build)
    assert cl.graphs and all(g is adjusted._NO_GRAPH for g in cl.graphs.values())


def test_the_merge_keeps_the_k_best_with_ties_by_position():
    """The class merge's final cut (an open class can add thousands of candidates): the k best
    adjusted scores, ties broken by lower catalogue position as exact search does, also when a
    tie crosses the cut; the same as sorting every candidate."""
    from recsys.search.adjusted import _best

    rng = np.random.default_rng(7)
    for n, k in ((5, 10), (40, 10), (3000, 10), (3000, 1)):
        pos = rng.permutation(100_000)[:n]
        adj = rng.integers(0, 6, n).astype(np.float32) / 4  # a handful of values: many ties
        order = np.lexsort((pos, -adj))[:k]
        got_p, got_s = _best(pos, adj, k)
        np.testing.assert_array_equal(got_p, pos[order])
        np.testing.assert_array_equal(got_s, adj[order])


def test_the_class_merge_scans_the_block_when_the_fetch_holds_too_few_of_its_dominant_class(shop6k):
    """The class merge closes every class outside its pool by the bound ``m * s_F + a`` against
    the k-th adjusted score. With k = 60 and 48% of each ~300-row category buried (x0.5: the plain
    items are the dominant class), the fetch (the 120 nearest of the block) often holds fewer than
    60 plain items: the 60th score is then a buried one, below the plain items just under the
    fetch, and the block must be scanned
    (fails when the bound check is left out: those plain items are missed). With k = 10 the merge
    itself answers. Both equal exact search (itself checked against brute force above). One
    category block is put in use (its graph built inline, the seed table read)."""
    cat, vec, index = shop6k
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    dear = float(np.quantile(cat["price"], 0.52))
    cfg = FilterConfig(same_category=True, category_level=1, bury=[Adjust(price_min=dear, multiplier=0.5)])
    block = cat.index[cat["category"] == "T0 > L3"].to_numpy()
    seeds = [f"c{i}" for i in block[:30]]
    for s in seeds + seeds:  # the filter in use: its seed table, then the block's graph
        searcher.search(s, cfg, 10)
    plans: dict[tuple[int, str], int] = {}
    for k in (60, 10):
        for s in seeds:
            res = searcher.search(s, cfg, k)
            plans[(k, res.plan)] = plans.get((k, res.plan), 0) + 1
            ref = searcher.search(s, cfg, k, plan="exact")
            assert res.item_ids == ref.item_ids, (s, k, res.plan)
            np.testing.assert_allclose(res.scores, ref.scores, atol=1e-5)
    # the merge answers at k = 10 (the seeds that are not adult: their block has its graph); the
    # bound sends some of them to the scan at k = 60
    assert plans.get((10, "hnsw_subindex"), 0) >= 25, plans
    assert plans.get((60, "exact_range"), 0) > plans.get((10, "exact_range"), 0), plans


@pytest.fixture
def compiled_merge(monkeypatch):
    """The compiled class merge (numba; compiled here, or loaded from its cache), restored to the
    state it had after the test."""
    from recsys.search import merge_kernel

    monkeypatch.setattr(merge_kernel, "KERNEL", None)
    monkeypatch.setattr(merge_kernel, "SETTLE", None)
    monkeypatch.setattr(merge_kernel, "DOT", None)
    monkeypatch.setattr(merge_kernel, "TABLE", None)
    monkeypatch.setattr(merge_kernel, "state", "idle")
    kern = merge_kernel.compile_now()
    assert kern is not None, merge_kernel.state
    return kern


def test_the_compiled_merge_keeps_the_numpy_merges_list_and_scores(compiled_merge):
    """The compiled cut to k (:mod:`recsys.search.merge_kernel`) against the NumPy one
    (``_merge_numpy``) on random merges: a fetch with the pool's classes at -inf, scores with many
    ties (ties by lower position), the seed and banned items in the fetch or the pool, fewer
    candidates than k. Same positions, same float32 scores; "fewer than k" in the same cases."""
    from recsys.search.adjusted import _NO_POS, _merge_numpy

    rng = np.random.default_rng(16)
    short = 0
    for trial in range(400):
        n_lab, n_fetch, n_pool = int(rng.integers(1, 90)), 0, int(rng.integers(0, 60))
        n_fetch = int(rng.integers(0, n_lab + 1))
        k = int(rng.choice([1, 3, 10, 25]))
        ids = rng.permutation(10_000)[: n_lab + n_pool].astype(np.int64)
        pos, ppos = ids[:n_lab], ids[n_lab:]
        cols = rng.permutation(n_lab)[:n_fetch].astype(np.uint64)
        dist = np.sort(rng.integers(0, 6, n_fetch) / 8).astype(np.float32)
        lm = rng.choice(np.array([1.0, 1.25, 0.5], dtype=np.float32), n_lab)
        la = rng.choice(np.array([0.0, 0.25, -np.inf], dtype=np.float32), n_lab)
        raw = (rng.integers(0, 6, n_pool) / 8).astype(np.float32)
        pmul = rng.choice(np.array([1.0, 1.25], dtype=np.float32), n_pool)
        padd = rng.choice(np.array([0.0, 0.25], dtype=np.float32), n_pool)
        outs = [int(x) for x in rng.choice(ids, min(len(ids), int(rng.integers(0, 4))), replace=False)]
        seed = outs.pop() if outs and trial % 2 else -1
        banned = np.array(outs, dtype=np.int64) if outs else _NO_POS
        kp, ks = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
        got = compiled_merge(cols, dist, lm, la, pos, raw.copy(), pmul, padd, ppos, seed, banned, kp, ks)
        pidx = dict(zip(ppos.tolist(), range(n_pool)))
        ref_p, ref_s = _merge_numpy(
            cols, dist, lm, la, pos, raw.copy(), pmul, padd, ppos, pidx, outs + [seed] * (seed >= 0), k
        )
        finite = int(np.isfinite(ref_s).sum())
        if finite < k:  # the NumPy merge gives up then (its k-th score is -inf): so does the kernel
            short += 1
            assert got == finite < k, trial
        else:
            assert got == k, trial
        np.testing.assert_array_equal(kp[:got], ref_p[:got])
        np.testing.assert_array_equal(ks[:got], ref_s[:got])
    assert 20 < short < 380  # both kinds of case were met


@pytest.mark.parametrize("case", range(len(BLOCK_CASES)))
def test_the_compiled_class_merge_answers_as_the_numpy_one(shop6k, monkeypatch, compiled_merge, case):
    """The searcher's class merge through the compiled call gives brute force's lists (the block
    cases above, with pair bans, the seed excluded, adult items left out) and the NumPy merge's
    lists, scores and plans exactly; the compiled calls answer most of them (counted through
    wrappers of the compiled functions: the general path's merge, the shortcut's settle)."""
    from recsys.search import merge_kernel

    calls = []
    settle = merge_kernel.SETTLE

    def counting(*args):
        calls.append(1)
        return compiled_merge(*args)

    def counting_settle(*args):
        calls.append(2)
        return settle(*args)

    cat, vec, index = shop6k
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    seeds = [f"c{i}" for i in range(3, 6000, 97)]
    bans = [
        PairBan(seed=s, item_id=searcher.search(s, FilterConfig(), 2, plan="exact").item_ids[i % 2])
        for i, s in enumerate(seeds)
    ]
    cfg = FilterConfig(
        same_category=True, category_level=1, exclude_adult=True, do_not_associate=bans, **BLOCK_CASES[case]
    )
    for i in range(0, 6000, 8):  # the filter in use: its seed table, then a graph per category block
        searcher.search(f"c{i}", cfg, 10)
    monkeypatch.setattr(merge_kernel, "KERNEL", counting)
    monkeypatch.setattr(merge_kernel, "SETTLE", counting_settle)
    with_kernel = [searcher.search(s, cfg, 10) for s in seeds]
    assert len(calls) > len(seeds) // 2, len(calls)
    monkeypatch.setattr(merge_kernel, "KERNEL", None)
    monkeypatch.setattr(merge_kernel, "SETTLE", None)
    with_numpy = [searcher.search(s, cfg, 10) for s in seeds]
    for s, a, b in zip(seeds, with_kernel, with_numpy):
        assert (a.item_ids, a.scores, a.plan) == (b.item_ids, b.scores, b.plan), s
        assert a.item_ids == brute_force(cat, vec, s, cfg, 10)[0], (s, a.plan)
    assert sum(r.plan == "hnsw_subindex" for r in with_kernel) > len(seeds) // 2


@pytest.mark.parametrize("case", [0, 2, 3, "deep"])
def test_a_boosted_category_filter_answers_through_its_shortcut_as_the_general_path(
    shop6k, compiled_merge, case
):
    """Once a boosted/buried "same category" config has answered from a category block's graph,
    its shortcut (:meth:`~recsys.search.adjusted.AdjustMixin._fast_adjusted`) answers the next
    seeds of blocks with a graph without the general path: list, scores, rows, counts, eligible
    count and plan equal the general path's on the same searcher (pins placed after both), with
    pair bans, pins, the seed excluded and adult items left out, at k = 10, 1, 30 and 60; the
    lists equal brute force (k = 10 and 1); each result owns its counts. ``deep``: 48% of each
    category buried (as in the scan test above), so that at k = 60 the bound of the dominant
    class sends some seeds to the block scan: the shortcut must leave them to the general path.
    On this small catalogue each block's :class:`~recsys.search.adjusted.PoolTable` is built at
    the shortcut's first query of the block, so the shortcut answers from the seeds' listed pool
    items where their bound settles the list, from the whole pool otherwise. Fails with the seed or
    its banned items not passed to the merge, without the classes' bound, or without the table's."""
    from recsys.merch import Pin
    from recsys.search.adjusted import AdjustMixin
    from tests.unit.test_search import ANSWER_FIELDS, GeneralPathCalls

    cat, vec, index = shop6k
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    seeds = [f"c{i}" for i in range(5, 6000, 131)]
    near = {s: searcher.search(s, FilterConfig(), 3, plan="exact").item_ids for s in seeds}
    bans = [PairBan(seed=s, item_id=near[s][i % 2]) for i, s in enumerate(seeds) if i % 3]
    pins = [Pin(seed=s, item_id=near[s][2], position=1 + i % 4) for i, s in enumerate(seeds) if i % 5 == 0]
    if case == "deep":
        rules = {"bury": [Adjust(price_min=float(np.quantile(cat["price"], 0.52)), multiplier=0.5)]}
    else:
        rules = BLOCK_CASES[case]
    cfg = FilterConfig(
        same_category=True, category_level=1, exclude_adult=True, do_not_associate=bans, pins=pins, **rules
    )
    for i in range(0, 6000, 8):  # the filter in use: its seed table, then a graph per category block
        searcher.search(f"c{i}", cfg, 10)
    for s in seeds:  # each block's merge set up by the general path
        searcher.search(s, cfg, 10)
    assert searcher._fast[id(cfg)].answer is AdjustMixin._fast_adjusted
    counter = GeneralPathCalls(searcher)
    plans: dict[tuple[int, str], int] = {}
    for k in (10, 1, 30, 60):
        for s in seeds:
            got = searcher.search(s, cfg, k)
            plans[(k, got.plan)] = plans.get((k, got.plan), 0) + 1
            pos = searcher.view.pos_of_id[s]
            want = searcher._place(counter.path(s, cfg, k), searcher.qunit[pos], pos, cfg, k)
            for field in ANSWER_FIELDS:
                assert getattr(got, field) == getattr(want, field), (s, k, field, got.plan)
            if k <= 10:  # deeper, the block graph's own recall at its ef (the filter alone's) shows
                assert got.item_ids == brute_force(cat, vec, s, cfg, k)[0], (s, k, got.plan)
            assert s not in got.item_ids and got.seed_item_id == s
            got.removed_by_rule["x"] = 1  # each result owns its counts
            got.skipped_rules.append("x")
    # the shortcut answered most queries (the rest: adult seeds, whose block has no graph, and
    # the lists a class outside the pool could climb into, which the general path scans)
    assert counter.calls < 4 * len(seeds) // 2, (counter.calls, plans)
    if case == "deep":
        assert plans.get((60, "exact_range"), 0) > plans.get((10, "exact_range"), 0), plans
    merges = searcher.compile(cfg).adjust_classes._merges.values()
    assert any(bm is not None and bm.table is not None and bm.table.adj.size for bm in merges)


def test_the_compiled_settle_answers_as_the_merge_and_the_checks_it_replaces(compiled_merge):
    """The shortcut's one compiled call (:func:`~recsys.search.merge_kernel._settle`, through its
    entry point) against the steps it replaces: the compiled merge of the fetch and the pool's
    candidates (the seed's pool table row, as multiplier 1 and shift 0, or the whole pool with its
    multipliers and shifts), "unsettled" when the k-th score is not above their bound (the row's
    lowest listed score; -inf for the whole pool), "climbs" when a class outside the pool reaches
    the k-th score (``_reaches``), else the k best as vector rows (``perm``) and their float32
    scores. Random cases with ties, bans, the seed, -inf labels; each answer kind is met."""
    from recsys.search import merge_kernel
    from recsys.search.adjusted import _NO_POS, _reaches

    settle = merge_kernel.SETTLE
    assert settle is not None and settle is not merge_kernel._settle
    rng = np.random.default_rng(32)
    kinds: dict[tuple[bool, int | str], int] = {}
    for trial in range(800):
        n_lab, t, n_seeds = int(rng.integers(5, 90)), int(rng.integers(1, 17)), 4
        n_fetch = int(rng.integers(1, n_lab + 1))
        k = int(rng.choice([1, 3, 10]))
        ids = rng.permutation(10_000)[: n_lab + n_seeds * t].astype(np.int64)
        pos, ppos = ids[:n_lab], ids[n_lab:].astype(np.int32)
        cols = rng.permutation(n_lab)[:n_fetch].astype(np.uint64).reshape(1, n_fetch)
        dist = np.sort(rng.integers(0, 6, n_fetch) / 8).astype(np.float32).reshape(1, n_fetch)
        lm = rng.choice(np.array([1.0, 0.5], dtype=np.float32), n_lab)
        la = rng.choice(np.array([0.0, 0.125, -np.inf], dtype=np.float32), n_lab)
        praw = (rng.integers(0, 10, n_seeds * t) / 8).astype(np.float32)
        rest = np.array([(1.0, 0.0), (0.5, 0.0), (1.0, float(rng.choice([0.0, 0.125, 0.5])))])
        rest = np.ascontiguousarray(rest[: int(rng.integers(0, 4))].reshape(-1, 2))
        perm = rng.permutation(10_000).astype(np.int64)
        table = trial % 2 == 0  # a table row (t items from j * t), or the whole pool
        if table:
            j = int(rng.integers(0, n_seeds))
            off, n_cand = j * t, t
            pmul, padd = np.ones(t, dtype=np.float32), np.zeros(t, dtype=np.float32)
            bound = np.float32(-np.inf) if rng.random() < 0.3 else np.float32(rng.integers(0, 8) / 8)
        else:
            off, n_cand = 0, n_seeds * t
            pmul = rng.choice(np.array([1.0, 1.25], dtype=np.float32), n_cand)
            padd = rng.choice(np.array([0.0, 0.25], dtype=np.float32), n_cand)
            bound = np.float32(-np.inf)
        cand = np.concatenate((pos, ppos[off : off + n_cand]))
        outs = [int(x) for x in rng.choice(cand, int(rng.integers(0, 4)), replace=False)]
        seed = outs.pop() if outs and trial % 3 else -1
        banned = np.array(outs, dtype=np.int64) if outs else _NO_POS
        kp, ks = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
        args = (cols, dist, lm, la, pos, praw, pmul, padd, ppos, off, bound, rest, seed, banned, perm, kp, ks)
        got = settle(*args)
        if trial % 5 == 0:  # the same inputs as strided views (the entry point skips numba's
            # layout dispatch): read through their strides, the same answer
            sp, ss_ = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
            pr2 = np.repeat(praw, 2)[::2]
            assert not pr2.flags.c_contiguous
            assert settle(*args[:5], pr2, *args[6:15], sp, ss_) == got, trial
            if got == k:
                np.testing.assert_array_equal(sp, kp)
        rp, rs = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
        sl = slice(off, off + n_cand)
        want = compiled_merge(
            cols[0],
            dist[0],
            lm,
            la,
            pos,
            praw[sl].copy(),
            pmul,
            padd,
            ppos[sl].astype(np.int64),
            seed,
            banned,
            rp,
            rs,
        )
        if want == k and not rs[-1] > bound:
            want = merge_kernel.UNSETTLED
        elif want == k:
            s_f = 1.0 - float(dist[0, -1])
            if any(_reaches(m * s_f + a, float(rs[-1])) for m, a in rest.tolist()):
                want = merge_kernel.CLIMBS
        assert got == want, trial
        kind = (table, got if got < 0 else "short" if got < k else "k")
        kinds[kind] = kinds.get(kind, 0) + 1
        if got == k:
            np.testing.assert_array_equal(kp, perm[rp])
            np.testing.assert_array_equal(ks, rs)
    answers = {merge_kernel.CLIMBS, "short", "k"}
    assert set(kinds) == {(True, a) for a in answers | {merge_kernel.UNSETTLED}} | {
        (False, a) for a in answers
    }, kinds


def test_a_boosted_filters_pool_tables_are_built_with_its_block_graphs(shop6k, compiled_merge):
    """A boosted/buried "same category" config put in use on a catalogue whose builds run in the
    background: its first round of queries builds its seed table, the second queues its category
    blocks' graphs; each block's class merge and :class:`~recsys.search.adjusted.PoolTable` are
    queued right after its graph (they depend on the block's eligible set, not on its graph), so
    once the background is done, before any query has met a graph, every block with a graph has
    its table, and the next queries answer from those tables (none rebuilt), as brute force. Fails
    when the merge is set up and the table queued only by the config's first queries on the graph
    (s32-r: a merchandiser's first seconds after saving a preset with rules then scored each
    block's whole pool at every query, the table held while queries ran)."""
    from recsys.search.adjusted import _NO_TABLE

    cat, vec, index = shop6k
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    cfg = FilterConfig(same_category=True, category_level=1, exclude_adult=True, **BLOCK_CASES[0])
    for _ in range(2):  # the filter in use: its seed table, then its blocks' graphs queued
        for i in range(0, 6000, 8):
            searcher.search(f"c{i}", cfg, 10)
        searcher.wait_background()
    cf = searcher.compile(cfg)
    graphs = [key for key, ss in cf.blocks.items() if ss.sub is not None]
    assert len(graphs) >= 3, list(cf.blocks)
    merges = cf.adjust_classes._merges if cf.adjust_classes is not None else {}
    tables = {key: merges[key].table for key in graphs if merges.get(key) is not None}
    assert set(tables) == set(graphs), (sorted(tables), sorted(graphs))
    for key, table in tables.items():  # built (empty where the block holds no boosted item)
        assert table is not None and table is not _NO_TABLE, key
        assert table.adj.shape == (key[1] - key[0], min(16, len(merges[key].ppos))), key
    assert sum(table.adj.size > 0 for table in tables.values()) >= 3
    seeds = [f"c{i}" for i in range(3, 6000, 97)]
    plans: dict[str, int] = {}
    for s in seeds:
        got = searcher.search(s, cfg, 10)
        plans[got.plan] = plans.get(got.plan, 0) + 1
        assert got.item_ids == brute_force(cat, vec, s, cfg, 10)[0], (s, got.plan)
    assert plans.get("hnsw_subindex", 0) > len(seeds) // 2, plans
    assert all(merges[key].table is table for key, table in tables.items())  # read, not rebuilt
