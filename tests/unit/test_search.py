"""Filtered search planner: every rule and combination against brute-force filtering."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.errors import UnknownItemError
from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.merch import Adjust, PairBan, Pin
from recsys.models.base import EmbeddingModel
from recsys.search import FilteredSearcher, filter_impact
from recsys.search.result import SearchResult
from recsys.search.rules import config_fields

BRANDS = ["Nike", "nike ", "Adidas", "Puma", "Zara", ""]
CATS = ["A > x > 1", "A > x > 2", "A > y", "B > z > 1", "B", ""]
GENDERS = ["women", "men", "unisex", ""]


def make_catalog(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    price = rng.lognormal(3, 0.6, n)
    price[rng.random(n) < 0.15] = np.nan
    cat = pd.DataFrame(
        {
            "item_id": [f"it{i}" for i in range(n)],
            "title": [f"Title {i % 7}" if i % 3 == 0 else f"title {i}" for i in range(n)],
            "category": rng.choice(CATS, n),
            "brand": rng.choice(BRANDS, n),
            "gender": rng.choice(GENDERS, n),
            "price": price,
            "adult": rng.random(n) < 0.15,
        }
    )
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    # optional column (drawn apart, so the other columns and the vectors stay as they were)
    stock = np.random.default_rng(seed + 7919).choice(
        np.array([True, False, None], dtype=object), n, p=[0.6, 0.25, 0.15]
    )
    cat["in_stock"] = pd.Series(stock, dtype="boolean")
    return cat, vectors


def brute_force(
    cat: pd.DataFrame,
    vectors: np.ndarray,
    seed_id: str | None,
    cfg: FilterConfig,
    k: int,
    query: np.ndarray | None = None,
    query_vectors: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray, set[str]]:
    """Reference answer written from the documented rules, item by item.

    A seed is looked up by its row of ``query_vectors`` when given (a model with a
    second space for seeds), else by its own row of ``vectors``.
    """
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = cat["item_id"].tolist()
    si = ids.index(seed_id) if seed_id is not None else None
    seed_space = unit if query_vectors is None else query_vectors
    # scored against ``query`` when given (the seed's rules still apply), else the seed's vector
    q = (
        query / np.linalg.norm(query)
        if query is not None
        else seed_space[si] / np.linalg.norm(seed_space[si])
    )
    scores = unit @ q
    # the seed's row read once as plain attributes (the same values; a Series' attribute
    # look-up per catalogue row was most of this function's time), the rows listed once
    seed = SimpleNamespace(**dict(cat.iloc[si].items())) if si is not None else None
    rows = list(cat.itertuples())

    def brand(x: str) -> str:
        return " ".join(str(x).split()).casefold()

    def prefix(path: str, level: int) -> str:
        return " > ".join(path.split(" > ")[: level + 1])

    def title(x: str) -> str:
        return " ".join(str(x).casefold().split())

    allow = {brand(b) for b in cfg.brands_allow}
    deny = {brand(b) for b in cfg.brands_deny}
    banned = set()
    if seed is not None:
        for a, b in cfg.banned_brand_pairs:
            if brand(a) == brand(seed.brand):
                banned.add(brand(b))
            if brand(b) == brand(seed.brand):
                banned.add(brand(a))
    bans = set()
    for ban in cfg.do_not_associate:
        if ban.seed == seed_id:
            bans.add(ban.item_id)
        if ban.item_id == seed_id and not ban.one_way:
            bans.add(ban.seed)
    scores = adjusted(cat, scores, cfg, rows)
    eligible = set()
    for row in rows:  # the rows' values as iterrows gives them, without a Series per row
        i, p = row.Index, row.price
        if cfg.price_min is not None and not (p >= cfg.price_min):
            continue
        if cfg.price_max is not None and not (p <= cfg.price_max):
            continue
        if allow and brand(row.brand) not in allow:
            continue
        if brand(row.brand) in deny:
            continue
        if row.adult and (cfg.exclude_adult or seed is None or not seed.adult):
            continue
        if cfg.in_stock_only and "in_stock" in cat.columns and row.in_stock is not pd.NA and not row.in_stock:
            continue  # out of stock (unknown stays)
        if seed is not None:
            if cfg.same_category and seed.category != "":
                if prefix(row.category, cfg.category_level) != prefix(seed.category, cfg.category_level):
                    continue
            if cfg.same_gender and seed.gender != "" and row.gender != seed.gender:
                continue
            sp = seed.price
            if (cfg.price_ratio_min is not None or cfg.price_ratio_max is not None) and sp > 0:
                lo = cfg.price_ratio_min * sp if cfg.price_ratio_min is not None else -np.inf
                hi = cfg.price_ratio_max * sp if cfg.price_ratio_max is not None else np.inf
                if not (lo <= p <= hi):
                    continue
            if brand(row.brand) in banned:
                continue
            if cfg.exclude_same_title and title(seed.title) and title(row.title) == title(seed.title):
                continue
            if row.item_id in bans:
                continue
            if cfg.exclude_seed and i == si:
                continue
        eligible.add(row.item_id)
    ranked = sorted((i for i in range(len(ids)) if ids[i] in eligible), key=lambda i: (-scores[i], i))
    out, per_brand = [], {}
    for i in ranked:
        b = brand(cat.brand.iloc[i])
        if cfg.max_per_brand is not None and b and per_brand.get(b, 0) >= cfg.max_per_brand:
            continue
        if cfg.min_similarity is not None and scores[i] < cfg.min_similarity:
            break
        per_brand[b] = per_brand.get(b, 0) + 1
        out.append(i)
        if len(out) == k:
            break
    out_ids, out_scores = [ids[i] for i in out], [float(scores[i]) for i in out]
    if seed is not None:  # pins: the category's, then the seed's own, by position
        pins = [p for p in cfg.pins if p.category is not None and under(seed.category, p.category)]
        pins += [p for p in cfg.pins if p.seed == seed_id]
        pins = [
            p
            for p in sorted(pins, key=lambda p: p.position)
            if p.item_id in eligible
            and (cfg.min_similarity is None or scores[ids.index(p.item_id)] >= cfg.min_similarity)
        ]
        if cfg.max_per_brand is not None and pins:
            out_ids = pins_under_cap(cat, ids, scores, ranked, pins, cfg, k, brand)
            return out_ids, np.asarray([scores[ids.index(i)] for i in out_ids], dtype=np.float32), eligible
        for pin in pins:
            score = float(scores[ids.index(pin.item_id)])
            if pin.item_id in out_ids:
                j = out_ids.index(pin.item_id)
                del out_ids[j], out_scores[j]
            j = min(pin.position - 1, len(out_ids))
            out_ids.insert(j, pin.item_id)
            out_scores.insert(j, score)
        del out_ids[k:], out_scores[k:]
    return out_ids, np.asarray(out_scores, dtype=np.float32), eligible


def pins_under_cap(cat, ids, scores, ranked, pins, cfg, k, brand) -> list[str]:
    """Pins with max_per_brand, as the README states it: pins count towards the cap, placed first;
    the ranked items (pinned ones aside) fill the list, skipping a brand with max_per_brand items
    already; of more pins of one brand than the cap, those lower in the list are dropped."""
    landing = [None] * max([k] + [p.position for p in pins])  # a list long enough for every pin
    for pin in pins:
        if pin.item_id in landing:
            landing.remove(pin.item_id)
        landing.insert(pin.position - 1, pin.item_id)
    per_brand, kept = {}, set()

    def room(item: str) -> bool:
        b = brand(cat.brand.iloc[ids.index(item)])
        if b and per_brand.get(b, 0) >= cfg.max_per_brand:
            return False
        per_brand[b] = per_brand.get(b, 0) + 1
        return True

    kept = {i for i in landing if i is not None and room(i)}
    pinned = {p.item_id for p in pins}
    out = []
    for i in ranked:  # every eligible item, best first
        if cfg.min_similarity is not None and scores[i] < cfg.min_similarity:
            break
        if ids[i] not in pinned and room(ids[i]):
            out.append(ids[i])
    for pin in pins:
        if pin.item_id in kept:
            if pin.item_id in out:
                out.remove(pin.item_id)
            out.insert(min(pin.position - 1, len(out)), pin.item_id)
    return out[:k]


def under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + " > ")


def adjusted(
    cat: pd.DataFrame, scores: np.ndarray, cfg: FilterConfig, rows: list | None = None
) -> np.ndarray:
    """Scores after boost then bury (each matching entry in turn: score * multiplier + shift);
    ``rows``: ``list(cat.itertuples())`` when the caller has it."""
    out = scores.astype(np.float64).copy()
    rows = list(cat.itertuples()) if rows is None else rows
    for adj in [*cfg.boost, *cfg.bury]:
        brands = {b.casefold() for b in adj.brands}
        for i, row in enumerate(rows):
            ok = True
            if adj.brands:
                ok &= " ".join(str(row.brand).split()).casefold() in brands
            if adj.category is not None:
                ok &= under(row.category, adj.category)
            if adj.price_min is not None or adj.price_max is not None:
                lo = adj.price_min if adj.price_min is not None else -np.inf
                hi = adj.price_max if adj.price_max is not None else np.inf
                ok &= bool(lo <= row.price <= hi)  # NaN: False
            if adj.column is not None:
                ok &= str(getattr(row, adj.column)).strip() in adj.values
            if ok:
                out[i] = out[i] * adj.multiplier + adj.shift
    return out


def assert_matches(res, ref_ids, ref_scores, eligible):
    assert len(res.item_ids) == len(ref_ids), (res.item_ids, ref_ids, res.plan)
    np.testing.assert_allclose(res.scores, ref_scores, atol=1e-5)
    assert set(res.item_ids) <= eligible
    assert len(set(res.item_ids)) == len(res.item_ids)
    if res.removed_by_rule.get("pins"):  # pinned items sit at their positions, whatever they score
        assert res.item_ids == ref_ids
        return
    assert res.scores == sorted(res.scores, reverse=True)
    if ref_ids:
        # ids may differ only among (near) ties at the cut-off
        sure = {i for i, s in zip(ref_ids, ref_scores) if s > ref_scores[-1] + 1e-5}
        assert sure <= set(res.item_ids)


#: one strategy per FilterConfig field of the rule table: a rule added to the table without a
#: strategy here fails test_every_rule_field_has_a_strategy, so the property tests cover it
FIELD_STRATEGIES = {
    "same_category": st.booleans(),
    "category_level": st.integers(0, 3),
    "same_gender": st.booleans(),
    "price_ratio_min": st.none() | st.sampled_from([0.0, 0.5, 0.8]),
    "price_ratio_max": st.none() | st.sampled_from([1.0, 1.5, 3.0]),
    "price_min": st.none() | st.sampled_from([0.0, 10.0, 20.0]),
    "price_max": st.none() | st.sampled_from([25.0, 60.0, 1000.0]),
    "brands_allow": st.sampled_from([[], ["Nike"], ["nike", "Puma", "Unknown"]]),
    "brands_deny": st.sampled_from([[], ["Zara"], ["ADIDAS"]]),
    "banned_brand_pairs": st.sampled_from([[], [("Nike", "Adidas")], [("Puma", "Zara"), ("Nike", "Nike")]]),
    "exclude_adult": st.booleans(),
    "min_similarity": st.none() | st.sampled_from([-0.5, 0.0, 0.3]),
    "max_per_brand": st.none() | st.integers(1, 3),
    "exclude_seed": st.booleans(),
    "exclude_same_title": st.booleans(),
    "in_stock_only": st.booleans(),
    "do_not_associate": st.sampled_from(
        [
            [],
            [PairBan(seed="it0", item_id="it1")],
            [PairBan(seed="it2", item_id="it5", one_way=True), PairBan(seed="it1", item_id="it3")],
        ]
    ),
    "pins": st.sampled_from(
        [
            [],
            [Pin(seed="it0", item_id="it4", position=1)],
            [Pin(category="A", item_id="it7", position=2), Pin(seed="it3", item_id="it9", position=1)],
            # several pins per seed, so that pins share brands with each other and the list
            # (max_per_brand with pins), at one position, and beyond k
            [
                Pin(category="A", item_id="it4", position=1),
                Pin(category="A", item_id="it10", position=2),
                Pin(category="A > x", item_id="it16", position=2),
                Pin(category="A", item_id="it22", position=30),
                Pin(seed="it3", item_id="it28", position=2),
                Pin(seed="it3", item_id="it10", position=4),
            ],
        ]
    ),
    "boost": st.sampled_from(
        [[], [Adjust(brands=["Nike"], multiplier=1.5)], [Adjust(category="A > x", shift=0.3)]]
    ),
    "bury": st.sampled_from(
        [[], [Adjust(price_max=20.0, multiplier=0.5)], [Adjust(column="gender", values=["men"], shift=-0.4)]]
    ),
}
configs = st.builds(FilterConfig, **{f: FIELD_STRATEGIES[f] for f in config_fields()}).filter(
    lambda c: not (set(map(str.casefold, c.brands_allow)) & set(map(str.casefold, c.brands_deny)))
)


def test_every_rule_field_has_a_strategy():
    assert set(config_fields()) == set(FIELD_STRATEGIES)


_searchers: dict[tuple[int, int], tuple[pd.DataFrame, np.ndarray, FilteredSearcher]] = {}


def searcher_for(n: int, seed: int):
    key = (n, seed)
    if key not in _searchers:
        cat, vec = make_catalog(n, seed)
        index = HnswIndex.build(vec, space="cosine", M=16, ef_construction=200, ef=256, num_threads=1)
        _searchers[key] = (cat, vec, FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index))
    return _searchers[key]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([1, 2, 9, 40, 120]),
    data_seed=st.integers(0, 3),
    cfg=configs,
    k=st.integers(1, 25),
    seed_row=st.integers(0, 10_000),
    plan=st.sampled_from(["auto", "exact", "hnsw_overfetch", "hnsw_filter"]),
)
def test_planner_equals_brute_force(n, data_seed, cfg, k, seed_row, plan):
    cat, vec, searcher = searcher_for(n, data_seed)
    seed_id = f"it{seed_row % n}"
    res = searcher.search(seed_id, cfg, k, plan=plan)
    ref_ids, ref_scores, eligible = brute_force(cat, vec, seed_id, cfg, k)
    assert_matches(res, ref_ids, ref_scores, eligible)
    if cfg.min_similarity is None:
        assert res.n_eligible == len(eligible)
    else:  # a threshold counts like a mask rule: eligible = mask-eligible items at or above it
        plain = FilterConfig.from_dict({**cfg.model_dump(), "min_similarity": None, "max_per_brand": None})
        _, all_scores, mask_eligible = brute_force(cat, vec, seed_id, plain, n)
        passing = int(np.count_nonzero(np.asarray(all_scores) >= cfg.min_similarity - 1e-6))
        assert abs(res.n_eligible - passing) <= int(
            np.count_nonzero(np.abs(np.asarray(all_scores) - cfg.min_similarity) < 1e-5)
        )
        assert res.removed_by_rule["min_similarity"] == len(mask_eligible) - res.n_eligible
    # the guarantee: k results whenever k eligible items exist (no ranked-list rule cutting)
    if cfg.min_similarity is None and cfg.max_per_brand is None:
        assert len(res) == min(k, len(eligible))


_pair_searchers: dict[int, tuple[pd.DataFrame, np.ndarray, np.ndarray, FilteredSearcher]] = {}


def pair_searcher_for(n: int):
    """A searcher whose seeds are looked up in a second space (Prod2Vec "in-out")."""
    if n not in _pair_searchers:
        cat, vec = make_catalog(n, 5)
        qv = np.random.default_rng(50 + n).normal(size=vec.shape).astype(np.float32)
        index = HnswIndex.build(vec, space="cosine", M=16, ef_construction=200, ef=256, num_threads=1)
        searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, query_vectors=qv)
        _pair_searchers[n] = (cat, vec, qv, searcher)
    return _pair_searchers[n]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([2, 40, 600]),
    cfg=configs,
    k=st.integers(1, 25),
    seed_row=st.integers(0, 10_000),
    plan=st.sampled_from(["auto", "exact", "hnsw_overfetch", "hnsw_filter"]),
)
def test_seeds_looked_up_in_a_second_space_equal_brute_force(n, cfg, k, seed_row, plan):
    cat, vec, qv, searcher = pair_searcher_for(n)
    seed_id = f"it{seed_row % n}"
    res = searcher.search(seed_id, cfg, k, plan=plan)
    ref_ids, ref_scores, eligible = brute_force(cat, vec, seed_id, cfg, k, query_vectors=qv)
    assert_matches(res, ref_ids, ref_scores, eligible)
    if cfg.min_similarity is None and cfg.max_per_brand is None:
        assert len(res) == min(k, len(eligible))
    # the seed's own candidate vector is not its query: it is excluded all the same
    if cfg.exclude_seed:
        assert seed_id not in res.item_ids


def test_second_space_must_align_with_the_vectors():
    cat, vec = make_catalog(10, 0)
    with pytest.raises(ValueError, match="query_vectors"):
        FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, query_vectors=vec[:5])


@settings(max_examples=40, deadline=None)
@given(cfg=configs, k=st.integers(1, 15), qseed=st.integers(0, 100), with_seed=st.booleans())
def test_search_vector_equals_brute_force(cfg, k, qseed, with_seed):
    cat, vec, searcher = searcher_for(120, 1)
    q = np.random.default_rng(qseed).normal(size=8).astype(np.float32)
    seed_id = f"it{qseed}" if with_seed else None
    res = searcher.search_vector(q, cfg, k, seed_item_id=seed_id)
    ref_ids, ref_scores, eligible = brute_force(cat, vec, seed_id, cfg, k, query=q)
    assert_matches(res, ref_ids, ref_scores, eligible)


def test_k_larger_than_eligible_returns_all_without_error():
    cat, vec, searcher = searcher_for(120, 0)
    cfg = FilterConfig(brands_allow=["Puma"], same_gender=True)
    for plan in ("auto", "exact", "hnsw_overfetch", "hnsw_filter"):
        res = searcher.search("it3", cfg, k=500, plan=plan)
        ref_ids, _, eligible = brute_force(cat, vec, "it3", cfg, 500)
        assert 0 < len(eligible) < 500
        assert sorted(res.item_ids) == sorted(eligible) == sorted(ref_ids)


def test_empty_eligible_set_gives_empty_result():
    cat, vec, searcher = searcher_for(120, 0)
    cfg = FilterConfig(price_min=1e9)
    for plan in ("auto", "exact", "hnsw_overfetch", "hnsw_filter"):
        res = searcher.search("it1", cfg, k=10, plan=plan)
        assert res.item_ids == [] and res.n_eligible == 0 and res.plan == "empty"
        assert res.removed_by_rule["price_range"] == 120


def test_removed_by_rule_counts_each_rule_alone():
    cat, vec, searcher = searcher_for(120, 2)
    seed = cat.iloc[4]
    cfg = FilterConfig(
        same_category=True,
        category_level=0,
        exclude_adult=True,
        brands_deny=["Zara"],
        exclude_same_title=True,
    )
    res = searcher.search(seed.item_id, cfg, 10)
    top = seed.category.split(" > ")[0]
    if seed.category:
        assert res.removed_by_rule["same_category"] == int(
            (cat.category.str.split(" > ").str[0] != top).sum()
        )
    assert res.removed_by_rule["exclude_adult"] == int(cat.adult.sum())
    assert res.removed_by_rule["brands_deny"] == int((cat.brand == "Zara").sum())
    assert res.removed_by_rule["exclude_seed"] == 1


def test_seed_rules_skipped_when_seed_attribute_unknown():
    cat = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["x", "y", "z"],
            "category": ["", "A", "B"],
            "brand": ["", "", ""],
            "gender": ["", "men", "women"],
            "price": [np.nan, 10.0, 20.0],
            "adult": [False, False, False],
        }
    )
    vec = np.eye(3, dtype=np.float32) + 0.1
    s = FilteredSearcher(vec, cat.item_id.to_numpy(), cat)
    res = s.search("a", FilterConfig(same_category=True, same_gender=True, price_ratio_min=0.5), 5)
    assert set(res.skipped_rules) == {"same_category", "same_gender", "price_band"}
    assert sorted(res.item_ids) == ["b", "c"]


def test_adult_items_never_next_to_non_adult_seed():
    cat = pd.DataFrame(
        {
            "item_id": ["kid", "adult1", "adult2", "plain"],
            "title": list("abcd"),
            "category": ["A"] * 4,
            "brand": ["b"] * 4,
            "gender": [""] * 4,
            "price": [1.0] * 4,
            "adult": [False, True, True, False],
        }
    )
    vec = np.array([[1, 0], [1, 0.01], [1, 0.02], [0, 1]], dtype=np.float32)
    s = FilteredSearcher(vec, cat.item_id.to_numpy(), cat)
    assert s.search("kid", None, 3).item_ids == ["plain"]
    assert s.search("adult1", None, 3).item_ids[:2] == ["adult2", "kid"]
    assert "adult2" not in s.search("adult1", FilterConfig(exclude_adult=True), 3).item_ids
    assert s.search_vector(np.array([1, 0], dtype=np.float32), None, 3).item_ids == ["kid", "plain"]


def test_unknown_seed_raises():
    _, _, searcher = searcher_for(40, 0)
    with pytest.raises(UnknownItemError, match="nope"):
        searcher.search("nope", None, 5)


def test_items_missing_from_catalog_still_searchable():
    cat, vec, _ = searcher_for(40, 0)
    s = FilteredSearcher(vec, cat.item_id.to_numpy(), cat.iloc[:30])
    res = s.search("it35", FilterConfig(), 5)
    assert len(res) == 5


def test_compile_is_cached_by_hash():
    _, _, searcher = searcher_for(40, 0)
    a = searcher.compile(FilterConfig(brands_deny=["Zara", "Puma"]))
    b = searcher.compile({"brands_deny": ["puma", "zara"]})
    assert a is b


def test_filter_impact_reports_fill_loss_coverage_and_hr():
    cat, vec, searcher = searcher_for(120, 0)
    cfg = FilterConfig(brands_allow=["Puma"], same_category=True, category_level=2)
    n_puma = int((cat.brand == "Puma").sum())
    base = searcher.search("it0", None, 3)
    cases = [("it0", {base.item_ids[0]}), ("it1", {"it2"}), ("unknown", {"it3"})]
    # every item is a seed (a sample of all 120 without replacement), so the expected figures
    # are computed by hand from the reference, seed by seed
    out = filter_impact(searcher, cfg, k=3, n_seeds=120, seed=1, eval_cases=cases)
    after = {i: brute_force(cat, vec, i, cfg, 3) for i in cat.item_id}
    expected_fill = sum(len(elig) >= 3 for _, _, elig in after.values()) / 120
    assert 0 < expected_fill < 1  # the filter bites for some seeds, not all: a real check
    assert out["n_seeds"] == 120 and out["fill_rate_before"] == 1.0
    assert out["fill_rate"] == pytest.approx(expected_fill)
    assert out["mean_results"] == pytest.approx(np.mean([min(3, len(e)) for _, _, e in after.values()]))
    assert out["mean_similarity_loss"] >= 0
    assert out["coverage_after"] <= n_puma / 120 + 1e-9
    assert out["removed_by_rule"]["brands_allow"] == 120 - n_puma
    assert out["n_cases"] == 2 and out["n_cases_skipped"] == 1

    def hits(config: FilterConfig) -> float:
        return np.mean([bool(t & set(brute_force(cat, vec, s, config, 3)[0])) for s, t in cases[:2]])

    assert out["hr_before"] == pytest.approx(hits(FilterConfig()))
    assert out["hr_after"] == pytest.approx(hits(cfg))
    assert out["hr_before"] != out["hr_after"]  # the cases tell the two apart
    # a filter that keeps everything loses nothing
    same = filter_impact(searcher, FilterConfig(), k=3, n_seeds=20)
    assert same["fill_rate"] == 1.0 and same["mean_similarity_loss"] == pytest.approx(0.0, abs=1e-7)


class FixedVectors(EmbeddingModel):
    """A tiny embedding model whose vectors are given (for the registry path)."""

    family = "test_fixed"
    default_params = {"seed": 0, "n": 40}

    def fit(self, dataset, progress=None):
        cat, vec = make_catalog(self.params["n"], self.params["seed"])
        self.item_ids_ = cat["item_id"].to_numpy(dtype=str)
        self.vectors_ = vec
        self.coverage_ = {}
        return self


def test_similar_items_through_registry_uses_saved_index(tmp_path, monkeypatch):
    from recsys.data.schema import INTERACTION_COLUMNS, Dataset, save_dataset
    from recsys.models import FAMILIES
    from recsys.registry import Registry
    from recsys.search import clear_searcher_cache, get_searcher, similar_items

    monkeypatch.setitem(FAMILIES, "test_fixed", f"{__name__}:FixedVectors")
    cat, vec = make_catalog(40, 0)
    inter = pd.DataFrame({c: pd.Series(dtype=object) for c in INTERACTION_COLUMNS})
    save_dataset(Dataset("tiny", cat, inter), tmp_path)
    model = FixedVectors().fit(None)
    reg = Registry(tmp_path)

    def write_index(folder):
        HnswIndex.build(model.vectors_, num_threads=1).save(folder / "index.bin")
        return {"index": "index.bin"}

    run = reg.create_run(model, dataset_name="tiny", dataset_fingerprint="x", writers=[write_index])
    clear_searcher_cache()
    cfg = FilterConfig(same_gender=True, max_per_brand=1)
    res = similar_items(reg, run["run_id"], "it3", cfg, k=5)
    ref_ids, ref_scores, eligible = brute_force(cat, vec, "it3", cfg, 5)
    assert_matches(res, ref_ids, ref_scores, eligible)
    searcher = get_searcher(reg, run["run_id"])
    assert searcher is get_searcher(reg, run["run_id"])  # cached per run
    assert searcher._index is not None and searcher._index.count == 40  # index.bin was loaded
    with pytest.raises(UnknownItemError):
        similar_items(reg, run["run_id"], "missing", None, 5)
    # a corrupted index.bin is logged and rebuilt, never a crash
    path = reg.artifact_path(run["run_id"], "index.bin")
    path.write_bytes(path.read_bytes()[:100])
    reg.update(run["run_id"], note="touched")
    clear_searcher_cache()
    assert similar_items(reg, run["run_id"], "it3", cfg, k=5).item_ids == res.item_ids


class FixedPair(FixedVectors):
    """FixedVectors plus a second space that seeds are looked up by (as Prod2Vec "in-out")."""

    family = "test_pair"

    def fit(self, dataset, progress=None):
        super().fit(dataset)
        self.query_vectors_ = np.random.default_rng(7).normal(size=self.vectors_.shape).astype(np.float32)
        return self


def test_a_run_with_a_second_space_is_searched_with_its_query_vectors(tmp_path, monkeypatch):
    from recsys.data.schema import INTERACTION_COLUMNS, Dataset, save_dataset
    from recsys.models import FAMILIES
    from recsys.registry import Registry
    from recsys.search import clear_searcher_cache, recommend_for_recent, similar_items

    monkeypatch.setitem(FAMILIES, "test_pair", f"{__name__}:FixedPair")
    cat, vec = make_catalog(40, 0)
    cat["adult"] = False  # so the model's unfiltered similar() is what the searcher shows
    inter = pd.DataFrame({c: pd.Series(dtype=object) for c in INTERACTION_COLUMNS})
    save_dataset(Dataset("tiny", cat, inter), tmp_path)
    model = FixedPair().fit(None)
    reg = Registry(tmp_path)
    run = reg.create_run(model, dataset_name="tiny", dataset_fingerprint="x")
    clear_searcher_cache()
    loaded = reg.load_model(run["run_id"])
    np.testing.assert_array_equal(loaded.query_vectors_, model.query_vectors_)
    cfg = FilterConfig(same_gender=True)
    res = similar_items(reg, run["run_id"], "it3", cfg, k=5)
    assert_matches(res, *brute_force(cat, vec, "it3", cfg, 5, query_vectors=model.query_vectors_))
    # the model's own similar() (evaluation's path) agrees with the searcher (serving's path)
    plain = similar_items(reg, run["run_id"], "it3", None, k=5)
    assert plain.item_ids == loaded.similar(["it3"], 5)[0][0].tolist()
    # recent views: the mean of the recent items' unit query vectors
    recent = ["it1", "it2"]
    q = model.query_vectors_[[1, 2]]
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).mean(axis=0)
    got = recommend_for_recent(reg, run["run_id"], recent, cfg, k=4)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    _, _, eligible = brute_force(cat, vec, "it2", cfg, 40, query_vectors=model.query_vectors_)
    expected = [
        cat.item_id[i]
        for i in np.argsort(-(unit @ q), kind="stable")
        if cat.item_id[i] in eligible and cat.item_id[i] not in recent
    ][:4]
    assert got.item_ids == expected


def clustered_catalog(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Vectors in 20 clusters = leaf categories (2 top categories x 10); brand mostly = cluster.

    10% of items get a random category and a random brand, so filters and vectors agree
    only mostly.
    """
    rng = np.random.default_rng(seed)
    leaf = rng.integers(0, 20, n)
    centers = rng.normal(size=(20, 16)).astype(np.float32)
    vec = centers[leaf] + 0.35 * rng.normal(size=(n, 16)).astype(np.float32)
    noisy = rng.random(n) < 0.1
    label = np.where(noisy, rng.integers(0, 20, n), leaf)
    brand = np.where(noisy, rng.integers(0, 20, n), leaf)
    cat = pd.DataFrame(
        {
            "item_id": [f"c{i}" for i in range(n)],
            "title": [f"t{i}" for i in range(n)],
            "category": [f"T{x // 10} > L{x}" for x in label],
            "brand": [f"b{x}" for x in brand],
            "gender": rng.choice(["women", "men", ""], n),
            "price": rng.lognormal(3, 0.5, n),
            "adult": rng.random(n) < 0.05,
        }
    )
    return cat, vec


@pytest.fixture(scope="module")
def big_searcher():
    cat, vec = clustered_catalog(6000, 3)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)
    return cat, vec, FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)


def test_auto_plan_overfetches_when_it_fills_and_matches_exact(big_searcher):
    """Same top category + price band: exact search would scan 3000 rows, one over-fetch
    fills the list; the answers equal exact filtered search."""
    cat, vec, searcher = big_searcher
    cfg = FilterConfig(same_category=True, category_level=0, price_ratio_min=0.5, price_ratio_max=2.0)
    seeds = [f"c{i}" for i in range(0, 6000, 37)]
    plans, recall = {}, []
    for item in seeds:
        res = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        plans[res.plan] = plans.get(res.plan, 0) + 1
        assert res.n_eligible == ref.n_eligible
        assert len(res) == min(10, ref.n_eligible)  # always filled
        assert res.scores == sorted(res.scores, reverse=True)
        recall.append(len(set(res.rows) & set(ref.rows)) / max(len(ref.rows), 1))
    compiled = searcher.compile(cfg)
    assert compiled.stats.first_tries > 0 and compiled.stats.first_hits / compiled.stats.first_tries > 0.8
    assert plans.get("hnsw_overfetch", 0) > len(seeds) * 0.8, plans
    assert np.mean(recall) >= 0.99
    for item in seeds[:1]:  # and exact search is brute force
        res = searcher.search(item, cfg, 10)
        ids, scores, eligible = brute_force(cat, vec, item, cfg, 10)
        assert_matches(res, ids, scores, eligible)


def test_auto_plan_falls_back_then_learns_to_go_exact(big_searcher):
    """Each brand banned next to itself removes a seed's own cluster: 95% of the catalogue is
    eligible, yet an over-fetch finds nothing. The first tries fall back to exact search
    (lists still full), then the planner goes straight to exact search."""
    cat, vec, searcher = big_searcher
    cfg = FilterConfig(banned_brand_pairs=[(f"b{i}", f"b{i}") for i in range(20)])
    plans = []
    for i in range(0, 6000, 29):
        item = f"c{i}"
        res = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        assert res.rows == ref.rows and res.n_eligible == ref.n_eligible and len(res) == 10
        plans.append(res.plan)
    ids, scores, eligible = brute_force(cat, vec, "c0", cfg, 10)
    assert_matches(searcher.search("c0", cfg, 10), ids, scores, eligible)
    compiled = searcher.compile(cfg)
    assert compiled.stats.first_tries >= 8 and compiled.stats.first_hits / compiled.stats.first_tries < 0.4
    assert plans[:3] == ["hnsw_overfetch+exact_fallback"] * 3
    late = plans[len(plans) // 2 :]
    assert sum(p.startswith("exact") for p in late) > 0.8 * len(late), plans


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs, k=st.integers(1, 30), seed_row=st.integers(0, 5999), level=st.integers(0, 2))
def test_forced_overfetch_on_larger_catalogue_equals_brute_force_rules(big_searcher, cfg, k, seed_row, level):
    """The key index (category block x gender x price rank, adult and base rules folded in)
    counts and tests candidates exactly like a pass over the catalogue."""
    cat, vec, searcher = big_searcher
    item = f"c{seed_row}"
    cfg = cfg.model_copy(update={"category_level": level})
    res = searcher.search(item, cfg, k, plan="hnsw_overfetch")
    ref = searcher.search(item, cfg, k, plan="exact")
    assert res.n_eligible == ref.n_eligible
    assert_same_counts(res, ref, k)
    if cfg.min_similarity is None and cfg.max_per_brand is None:
        assert len(res) == min(k, ref.n_eligible)


def test_run_not_searchable_error_lives_in_errors():
    from recsys import search
    from recsys.errors import RunNotFoundError, RunNotSearchableError

    assert search.RunNotSearchableError is RunNotSearchableError
    assert issubclass(RunNotSearchableError, RunNotFoundError)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([1, 9, 40, 120]),
    data_seed=st.integers(0, 3),
    cfg=configs,
    k=st.integers(1, 25),
    seed_row=st.integers(0, 10_000),
)
def test_seed_table_hot_path_reports_what_the_general_path_reports(n, data_seed, cfg, k, seed_row):
    """The automatic plan reads the seed's rules from a per-filter table; the exact plan resolves
    them per query. Counts, skipped rules and eligibility must agree exactly."""
    from recsys.search import _TABLE_AFTER

    cat, vec, searcher = searcher_for(n, data_seed)
    seed_id = f"it{seed_row % n}"
    for _ in range(_TABLE_AFTER):  # the table is built once the filter has been used a few times
        searcher.search(seed_id, cfg, k)
    auto = searcher.search(seed_id, cfg, k)
    ref = searcher.search(seed_id, cfg, k, plan="exact")
    assert auto.n_eligible == ref.n_eligible
    assert auto.skipped_rules == ref.skipped_rules
    ranked = {"max_per_brand", "min_similarity"}
    strip = lambda d: {r: c for r, c in d.items() if r not in ranked}  # noqa: E731
    assert strip(auto.removed_by_rule) == strip(ref.removed_by_rule)
    assert list(strip(auto.removed_by_rule)) == list(strip(ref.removed_by_rule))  # same order
    cf = searcher.compile(cfg)
    # every config whose seed rules need no pass over the domain (brand pairs, same title,
    # do-not-associate) and whose scores are not adjusted (boost, bury) gets its hot path
    if cf.adjust is None and not any(rl.channel == "scan" for rl in cf.seed_rules):
        assert cf.table_ok is True
    # a repeated query takes the shortcut from search() straight to the seed table: same answer
    again = searcher.search(seed_id, cfg, k)
    assert (
        again.item_ids,
        again.removed_by_rule,
        again.skipped_rules,
        again.n_eligible,
        again.seed_item_id,
    ) == (
        auto.item_ids,
        auto.removed_by_rule,
        auto.skipped_rules,
        auto.n_eligible,
        auto.seed_item_id,
    )


def test_a_filter_tried_once_is_answered_without_building_its_seed_table():
    """Toggling a filter in Explore answers from the general path; the per-seed table (tens of
    milliseconds at 100k items) is built only once the filter keeps being used, same answers."""
    from recsys.search import _TABLE_AFTER

    _, _, searcher = searcher_for(120, 2)
    cfg = FilterConfig(same_gender=True, price_ratio_min=0.37)  # a filter no other test uses
    first = searcher.search("it1", cfg, 5)
    cf = searcher.compile(cfg)
    assert cf.seed_table is None
    later = [searcher.search("it1", cfg, 5) for _ in range(_TABLE_AFTER)]
    assert cf.seed_table is not None and cf.table_ok is True
    for res in later:
        assert (res.item_ids, res.n_eligible, res.removed_by_rule) == (
            first.item_ids,
            first.n_eligible,
            first.removed_by_rule,
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"same_category": True, "price_ratio_min": 0.5, "price_ratio_max": 2.0},
        {"same_gender": True},
        {},
    ],
)
def test_hot_path_on_larger_catalogue_matches_exact_with_exact_scores(big_searcher, fields):
    """Over-fetch without rescoring (hnswlib's cosine distances): same items as exact search
    (recall), scores equal to the exact ones within float32 rounding, sorted, seed excluded."""
    cat, vec, searcher = big_searcher
    cfg = FilterConfig(**fields)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    hits = total = 0
    plans: dict[str, int] = {}
    for row in range(0, 6000, 97):
        item = f"c{row}"
        res = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        plans[res.plan] = plans.get(res.plan, 0) + 1
        assert res.n_eligible == ref.n_eligible and len(res) == min(10, ref.n_eligible)
        assert item not in res.item_ids
        assert res.scores == sorted(res.scores, reverse=True)
        np.testing.assert_allclose(res.scores, unit[res.rows] @ unit[row], atol=1e-5)
        assert [searcher.view.item_id_by_row[r] for r in res.rows] == res.item_ids
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    assert plans.get("hnsw_overfetch", 0) > 0
    assert hits / total >= 0.98


def test_get_searcher_picks_up_a_reimported_catalogue(tmp_path, monkeypatch):
    """A dataset re-imported under the same name (new report.json) is served without a restart."""
    from recsys.data.schema import INTERACTION_COLUMNS, Dataset, save_dataset
    from recsys.models import FAMILIES
    from recsys.registry import Registry
    from recsys.search import clear_searcher_cache, get_searcher

    monkeypatch.setitem(FAMILIES, "test_fixed", f"{__name__}:FixedVectors")
    cat, _ = make_catalog(40, 0)
    inter = pd.DataFrame({c: pd.Series(dtype=object) for c in INTERACTION_COLUMNS})
    save_dataset(Dataset("tiny", cat, inter), tmp_path)
    reg = Registry(tmp_path)
    run = reg.create_run(FixedVectors().fit(None), dataset_name="tiny", dataset_fingerprint="x")
    clear_searcher_cache()
    first = get_searcher(reg, run["run_id"])
    assert get_searcher(reg, run["run_id"]) is first
    cat2 = cat.copy()
    cat2["brand"] = "new-brand"
    save_dataset(Dataset("tiny", cat2, inter), tmp_path)  # at once: maybe within one mtime tick
    second = get_searcher(reg, run["run_id"])
    assert second is not first
    assert set(second.view.attributes(np.arange(3))["brand"]) == {"new-brand"}


@pytest.mark.parametrize("plan", ["auto", "exact", "hnsw_overfetch", "hnsw_filter"])
def test_min_similarity_counts_agree_with_the_list_and_do_not_depend_on_k(plan):
    """The issue's report: a threshold above every score emptied the list while the summary
    said "70 eligible", and the removed count changed with k."""
    cat, vec, searcher = searcher_for(120, 1)
    base = FilterConfig(same_gender=True, exclude_adult=True)
    everything = searcher.search("it7", base, k=500, plan="exact")
    for threshold in (0.0, float(np.median(everything.scores)), 1.0):
        cfg = FilterConfig(same_gender=True, exclude_adult=True, min_similarity=threshold)
        passing = sum(s >= threshold for s in everything.scores)
        answers = [searcher.search("it7", cfg, k=k, plan=plan) for k in (1, 5, 25, 500)]
        for res in answers:
            assert res.n_eligible == passing
            assert res.removed_by_rule["min_similarity"] == everything.n_eligible - passing
        assert len(answers[-1].item_ids) == passing  # k above the eligible count: all of them
        assert all(s >= threshold for s in answers[-1].scores)


# -- batch path, static filters, background builds (issue 18) --------------------------------------
def _check_against_brute_force(cat, vec, searcher, res, seed_id, cfg, k):
    ref_ids, ref_scores, eligible = brute_force(cat, vec, seed_id, cfg, k)
    assert_matches(res, ref_ids, ref_scores, eligible)
    single = searcher.search(seed_id, cfg, k, plan="exact")
    if cfg.min_similarity is None:
        assert res.n_eligible == len(eligible)
    else:  # a threshold counts like a mask rule (issue 14): as the single search counts it
        assert res.n_eligible == single.n_eligible
    if cfg.min_similarity is None and cfg.max_per_brand is None:
        assert len(res) == min(k, len(eligible))
    assert_same_counts(res, single, k)
    assert res.skipped_rules == single.skipped_rules
    assert res.seed_item_id == seed_id
    assert [searcher.view.item_id_by_row[r] for r in res.rows] == res.item_ids


def assert_same_counts(res, ref, k: int) -> None:
    """``removed_by_rule`` of two answers to one query agree: every mask rule's count exactly;
    ``min_similarity`` (counted over the whole catalogue, whatever the plan) exactly; and
    ``max_per_brand`` (the ranked candidates dropped while filling the list) whenever both
    filled the same k items: at most the exact plan's count, since a graph search can miss a
    candidate the cap would have dropped, never add one (a short list counts what its plan
    happened to fetch)."""
    ranked = ("max_per_brand",)
    assert {r: c for r, c in res.removed_by_rule.items() if r not in ranked} == {
        r: c for r, c in ref.removed_by_rule.items() if r not in ranked
    }
    if len(res) == k and res.item_ids == ref.item_ids and "max_per_brand" in ref.removed_by_rule:
        got = res.removed_by_rule.get("max_per_brand", 0)
        want = ref.removed_by_rule["max_per_brand"]
        assert got == want if res.plan.startswith("exact") else got <= want


class exact_priced_high:
    """Price exact search of static filters far above a beam search, so that small test
    catalogues take the over-fetch paths (single and batch) the cost model keeps for large ones."""

    names = ("_S_GEMV_ROW", "_S_GEMV_ROW_COLD", "_S_SELECT_ROW")

    @staticmethod
    def _forget_costs():  # the eligible sets cache their plan constants
        for entry in list(_searchers.values()) + list(_pair_searchers.values()):
            for cf in entry[-1]._compiled.values():
                for ss in cf.sets.values():
                    ss.costs.clear()

    @staticmethod
    def _modules():  # the cost constants live in the planner; static.py imports some of them
        from recsys.search import planner, static

        return [m for m in (planner, static) if hasattr(m, "_S_GEMV_ROW")]

    def __enter__(self):
        self.saved = [(m, x, getattr(m, x)) for m in self._modules() for x in self.names if hasattr(m, x)]
        for m, x, _ in self.saved:
            setattr(m, x, 100.0)
        self._forget_costs()

    def __exit__(self, *exc):
        for m, x, val in self.saved:
            setattr(m, x, val)
        self._forget_costs()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([2, 9, 40, 120]),
    data_seed=st.integers(0, 3),
    cfg=configs,
    k=st.integers(1, 25),
    seed_rows=st.lists(st.integers(0, 10_000), min_size=2, max_size=12),
    overfetch=st.booleans(),
)
def test_search_many_equals_brute_force(n, data_seed, cfg, k, seed_rows, overfetch):
    """The batch path (one knn_query for all seeds, vectorised tests, BLAS top-k per group) answers
    every seed as brute force does, with the same counts and skipped rules as a single search;
    also when static filters over-fetch instead of searching their block exactly."""
    cat, vec, searcher = searcher_for(n, data_seed)
    seeds = [f"it{r % n}" for r in seed_rows]
    if overfetch:
        with exact_priced_high():
            results = searcher.search_many(seeds, cfg, k, num_threads=2)
            singles = [searcher.search(s, cfg, k) for s in seeds]
    else:
        results = searcher.search_many(seeds, cfg, k, num_threads=2)
        singles = []
    assert len(results) == len(seeds)
    for seed_id, res in zip(seeds, results):
        _check_against_brute_force(cat, vec, searcher, res, seed_id, cfg, k)
    for seed_id, res in zip(seeds, singles):
        _check_against_brute_force(cat, vec, searcher, res, seed_id, cfg, k)


def test_search_many_skips_unknown_seeds_only_when_asked():
    _, _, searcher = searcher_for(40, 0)
    with pytest.raises(UnknownItemError, match="nope"):
        searcher.search_many(["it1", "nope"], FilterConfig(brands_allow=["Nike"]), 5)
    got = searcher.search_many(
        ["it1", "nope", "it2"], FilterConfig(brands_allow=["Nike"]), 5, skip_unknown=True
    )
    assert got[1] is None and got[0] is not None and got[2] is not None


#: what a shortcut's answer must share with the general path's, field by field
ANSWER_FIELDS = ("item_ids", "scores", "rows", "removed_by_rule", "skipped_rules", "n_eligible", "plan")


class GeneralPathCalls:
    """Counts the queries ``searcher`` answers through its general path (``_search_seed``),
    not a shortcut: wraps the searcher's own method, which still answers."""

    def __init__(self, searcher: FilteredSearcher) -> None:
        self.calls = 0
        #: the general path itself, uncounted (to compute what it would answer)
        self.path = path = searcher._search_seed

        def counted(*a, **kw):
            self.calls += 1
            return path(*a, **kw)

        searcher._search_seed = counted


def uncorrelated_catalog(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Clustered vectors, and attributes drawn at random: filters that ignore the vectors."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(30, 16)).astype(np.float32)
    vec = centers[rng.integers(0, 30, n)] + 0.4 * rng.normal(size=(n, 16)).astype(np.float32)
    cat = pd.DataFrame(
        {
            "item_id": [f"u{i}" for i in range(n)],
            "title": [f"t{i}" for i in range(n)],
            "category": [f"C{x} > D{y}" for x, y in zip(rng.integers(0, 4, n), rng.integers(0, 5, n))],
            "brand": [f"b{x}" for x in rng.integers(0, 100, n)],
            "gender": rng.choice(["women", "men", ""], n),
            "price": rng.lognormal(3, 0.5, n),
            "adult": np.zeros(n, dtype=bool),
        }
    )
    return cat, vec


@pytest.fixture(scope="module")
def uncorrelated():
    cat, vec = uncorrelated_catalog(8000, 11)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=2)
    return cat, vec, index


@pytest.mark.parametrize(
    "fields",
    [
        {"brands_allow": [f"b{i}" for i in range(10)]},  # 10%, random
        {"brands_allow": ["b3"]},  # 1%
        {"price_min": 15.0, "price_max": 17.0},  # a price band, about 10%
        {"brands_allow": [f"b{i}" for i in range(50)]},  # 50%
        {},
    ],
)
@pytest.mark.parametrize("overfetch", [False, True])
def test_uncorrelated_filters_single_and_batch_match_exact(uncorrelated, fields, overfetch):
    """Filters assigned at random: single queries and the batch keep recall >= 0.99 against exact
    filtered search, always fill the list, and the batch agrees with single queries' counts
    (``overfetch``: exact search priced out, so the over-fetch paths answer)."""
    import contextlib

    cat, vec, index = uncorrelated
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    cfg = FilterConfig(**fields)
    seeds = [f"u{i}" for i in range(0, 8000, 41)]
    ctx = exact_priced_high() if overfetch else contextlib.nullcontext()
    with ctx:
        batch = searcher.search_many(seeds, cfg, 10, num_threads=2)
        singles = [searcher.search(item, cfg, 10) for item in seeds]
    hits = total = 0
    plans: dict[str, int] = {}
    for item, many, one in zip(seeds, batch, singles):
        ref = searcher.search(item, cfg, 10, plan="exact")
        plans[one.plan] = plans.get(one.plan, 0) + 1
        for res in (one, many):
            assert res.n_eligible == ref.n_eligible and len(res) == min(10, ref.n_eligible)
            assert res.removed_by_rule == ref.removed_by_rule
            assert item not in res.item_ids
            assert res.scores == sorted(res.scores, reverse=True)
            hits += len(set(res.rows) & set(ref.rows))
            total += len(ref.rows)
    assert hits / total >= 0.99, plans
    if not fields:
        assert searcher.compile(cfg).trivial and set(plans) == {"hnsw_overfetch"}
    if overfetch:
        assert plans.get("hnsw_overfetch", 0) > 0, plans
        assert {r.plan for r in batch} & {"hnsw_overfetch", "hnsw_overfetch+exact_fallback"}


def test_no_filter_path_is_one_knn_query_without_the_seed(uncorrelated):
    cat, vec, index = uncorrelated
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    for row in (0, 17, 4000):
        res = searcher.search(f"u{row}", None, 10)
        rows, sims = index.knn(unit[row], 11)
        want = [r for r in rows[0].tolist() if r != row][:10]
        assert res.rows == want and res.n_eligible == 7999 and res.removed_by_rule == {"exclude_seed": 1}
        np.testing.assert_allclose(res.scores, unit[want] @ unit[row], atol=1e-5)


def test_no_filter_shortcut_answers_as_the_general_path(uncorrelated):
    """Once the default config has been answered, later default-config queries take a shortcut
    (one knn_query, no compiled-filter work): each answer equals a fresh searcher's first one (the
    general path), and each result owns its counts (changing one changes no later answer)."""
    cat, vec, index = uncorrelated
    ids = cat["item_id"].to_numpy()
    warm = FilteredSearcher(vec, ids, cat, index=index)
    warm.search("u1")
    for row, k in [(r, 10) for r in range(0, 8000, 733)] + [(5, 1), (6, 7999), (7, 8000)]:
        want = FilteredSearcher(vec, ids, cat, index=index).search(f"u{row}", FilterConfig(), k)
        got = warm.search(f"u{row}", None, k)
        for field in ("item_ids", "scores", "rows", "removed_by_rule", "plan", "n_eligible"):
            assert getattr(got, field) == getattr(want, field), (row, k, field)
        assert (got.skipped_rules, got.seed_item_id) == (want.skipped_rules, f"u{row}")
        got.removed_by_rule["exclude_seed"] = 5
        got.skipped_rules.append("nothing")
    again = warm.search("u2")
    assert again.removed_by_rule == {"exclude_seed": 1} and again.skipped_rules == []


def test_no_filter_shortcut_answers_a_numpy_seed_id_with_a_str(uncorrelated):
    """A seed id taken from a NumPy array (``np.str_``, as the bench and a caller iterating an id
    array pass it) is answered by the no-filter shortcut as its ``str`` is, and the result names
    the seed with a plain ``str`` (equal to the catalogue's id), as the general path does."""
    cat, vec, index = uncorrelated
    ids = cat["item_id"].to_numpy().astype(str)
    warm = FilteredSearcher(vec, ids, cat, index=index)
    warm.search("u1")
    counter = GeneralPathCalls(warm)
    for row in (0, 17, 4000, 7999):
        seed = ids[row]
        assert seed.__class__ is np.str_
        want = FilteredSearcher(vec, ids, cat, index=index).search(f"u{row}", FilterConfig(), 10)
        got = warm.search(seed, None, 10)
        for field in ("item_ids", "scores", "rows", "removed_by_rule", "plan", "n_eligible"):
            assert getattr(got, field) == getattr(want, field), (row, field)
        assert got.seed_item_id.__class__ is str and got.seed_item_id == f"u{row}"
    assert counter.calls == 0  # every one answered by the shortcut


@pytest.mark.parametrize(
    "fields",
    [
        {"brands_allow": [f"b{i}" for i in range(10)]},
        {"same_category": True, "category_level": 1, "price_ratio_min": 0.5, "price_ratio_max": 2.0},
        {"same_gender": True, "brands_deny": ["b1"]},
    ],
)
def test_first_queries_of_a_new_filter_do_not_build_and_answer_exactly(uncorrelated, fields):
    """On a catalogue at or above ``background_min_items`` a new filter's structures (eligible set,
    key index, seed table) are built by the background thread; until then queries answer from the
    general path with the same results and counts, and nothing is built on the request."""
    from recsys.search import _TABLE_AFTER

    cat, vec, index = uncorrelated
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index, background_min_items=0)
    cfg = FilterConfig(**fields)
    gate = __import__("threading").Event()
    searcher._bg.submit("hold", gate.wait)  # keep the worker busy: every build stays queued
    try:
        cold = [searcher.search(f"u{i}", cfg, 10) for i in range(0, 3 * _TABLE_AFTER * 7, 7)]
        cf = searcher.compile(cfg)
        assert cf.sets == {} and cf.keys == {} and cf.seed_table is None
    finally:
        gate.set()
    searcher.wait_background()
    assert cf.sets or (cf.keys and cf.seed_table is not None)
    for i, res in zip(range(0, 3 * _TABLE_AFTER * 7, 7), cold):
        warm = searcher.search(f"u{i}", cfg, 10)
        ref = searcher.search(f"u{i}", cfg, 10, plan="exact")
        for got in (res, warm):
            assert got.n_eligible == ref.n_eligible and got.removed_by_rule == ref.removed_by_rule
            assert len(set(got.rows) & set(ref.rows)) >= 9


def test_identical_vectors_return_the_exact_list_with_ties_by_position():
    """A thin catalogue: 400 items share one vector, 150 another close to it. HNSW alone returns an
    arbitrary subset of such a group; the searcher detects the groups when it is built and returns
    exactly what exact search returns (ties: lower position first), single and batch."""
    rng = np.random.default_rng(21)
    n = 3000
    cat, _ = uncorrelated_catalog(n, 21)
    vec = rng.normal(size=(n, 16)).astype(np.float32)
    a = rng.normal(size=16).astype(np.float32)
    vec[:400] = a
    vec[400:550] = a + 0.05 * rng.normal(size=16).astype(np.float32)
    vec[550:700] = a + 0.3 * rng.normal(size=(150, 16)).astype(np.float32)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=2)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    assert searcher._tie_of is not None and len(searcher._tie_starts) - 1 == 2  # two groups
    seeds = [f"u{i}" for i in (0, 7, 399, 400, 470, 560, 600, 690)]
    raw_differs = 0
    for fields in ({}, {"brands_allow": [f"b{i}" for i in range(30)]}, {"same_gender": True}):
        cfg = FilterConfig(**fields)
        many = searcher.search_many(seeds, cfg, 10, num_threads=2)
        for item, batch in zip(seeds, many):
            one = searcher.search(item, cfg, 10)
            ref = searcher.search(item, cfg, 10, plan="exact")
            assert one.item_ids == ref.item_ids, (fields, item, one.plan)
            assert batch.item_ids == ref.item_ids, (fields, item, batch.plan)
            np.testing.assert_allclose(one.scores, ref.scores, atol=1e-5)
            # without the completion, HNSW's subset of a tie group differs from the exact list
            bare = searcher._search_seed(item, cfg, 10)
            raw_differs += bare.item_ids != ref.item_ids
    assert raw_differs > 0


def test_a_static_filter_used_often_gets_its_own_graph_with_the_same_answers(uncorrelated):
    """A brand filter keeping 10%: after a few queries it is answered from an HNSW index over its
    eligible items alone (no over-fetch, no exact scan); lists keep recall >= 0.99 against exact
    search, the seed excluded, counts unchanged; the batch uses the same graph."""
    from recsys.search import _SUB_AFTER

    cat, vec, index = uncorrelated
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    cfg = FilterConfig(brands_allow=[f"b{i}" for i in range(10)])
    for i in range(_SUB_AFTER + 1):
        searcher.search(f"u{i}", cfg, 10)
    ss = searcher.compile(cfg).sets[False]
    assert ss.sub is not None
    seeds = [f"u{i}" for i in range(3, 8000, 53)]
    hits = total = 0
    for item, many in zip(seeds, searcher.search_many(seeds, cfg, 10, num_threads=2)):
        one = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        for res in (one, many):
            assert res.plan == "hnsw_subindex"
            assert res.n_eligible == ref.n_eligible and len(res) == 10 and item not in res.item_ids
            assert res.removed_by_rule == ref.removed_by_rule
            assert set(res.item_ids) <= set(cat.item_id[cat.brand.isin(cfg.brands_allow)])
            hits += len(set(res.rows) & set(ref.rows))
            total += len(ref.rows)
    assert hits / total >= 0.99


def test_search_many_with_ranked_list_rules_equals_single_queries(uncorrelated):
    """max_per_brand: the batch takes each seed's first over-fetch from one knn_query and ranks it
    as the live hot path does: where both over-fetched, the same items with the same scores."""
    cat, vec, index = uncorrelated
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    cfg = FilterConfig(price_ratio_min=0.5, price_ratio_max=2.0, same_gender=True, max_per_brand=2)
    seeds = [f"u{i}" for i in range(1, 8000, 37)]
    batch = searcher.search_many(seeds, cfg, 10, num_threads=2)
    same = 0
    brand = cat.set_index("item_id")["brand"]
    for item, many in zip(seeds, batch):
        one = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        assert many.n_eligible == ref.n_eligible and many.removed_by_rule.keys() == ref.removed_by_rule.keys()
        assert len(many) == len(ref) and item not in many.item_ids
        assert brand.loc[many.item_ids].value_counts().max() <= 2
        if many.plan == one.plan == "hnsw_overfetch":
            assert (many.item_ids, many.scores, many.removed_by_rule) == (
                one.item_ids,
                one.scores,
                one.removed_by_rule,
            )
            same += 1
    assert same >= 20  # the planner picks exact search for part of the seeds


def test_a_category_filter_used_often_gets_a_graph_per_category(uncorrelated):
    """same_category over categories drawn at random: once a category keeps being asked for, its
    items get their own graph; answers from it keep the seed's category, the counts of the
    general path, the seed excluded, and recall >= 0.99 against exact search."""
    cat, vec, index = uncorrelated
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    cfg = FilterConfig(same_category=True, category_level=0)
    for i in range(0, 8000, 40):  # 200 queries over 4 top-level categories
        searcher.search(f"u{i}", cfg, 10)
    assert searcher.compile(cfg).blocks
    top = cat.set_index("item_id")["category"].str.split(" > ").str[0]
    hits = total = 0
    plans: dict[str, int] = {}
    for i in range(3, 8000, 61):
        item = f"u{i}"
        res = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        plans[res.plan] = plans.get(res.plan, 0) + 1
        assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule
        assert len(res) == 10 and item not in res.item_ids
        assert set(top.loc[res.item_ids]) == {top.loc[item]}
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    assert plans.get("hnsw_subindex", 0) > 0, plans
    assert hits / total >= 0.99


def test_a_category_graph_answers_with_the_seeds_do_not_associate_pairs_dropped(uncorrelated):
    """Do-not-associate pairs keep a category filter on its per-category graphs: the seed's banned
    items are fetched past and dropped, the list otherwise the graph's (recall >= 0.99 against
    exact search), with the counts and eligible count of exact search."""
    cat, vec, index = uncorrelated
    ids = cat["item_id"].to_numpy()
    base = FilterConfig(same_category=True, category_level=0)
    probe = [f"u{i}" for i in range(3, 8000, 61)]
    plain = FilteredSearcher(vec, ids, cat, index=index)
    near = {item: plain.search(item, base, 10, plan="exact").item_ids for item in probe}
    bans = [{"seed": item, "item_id": near[item][j]} for item in probe for j in (0, 4)]
    cfg = FilterConfig.from_dict({**base.canonical(), "do_not_associate": bans})
    searcher = FilteredSearcher(vec, ids, cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    for i in range(0, 8000, 40):  # 200 queries over 4 top-level categories
        searcher.search(f"u{i}", cfg, 10)
    assert searcher.compile(cfg).blocks
    hits = total = 0
    plans: dict[str, int] = {}
    for item in probe:
        res = searcher.search(item, cfg, 10)
        ref = searcher.search(item, cfg, 10, plan="exact")
        plans[res.plan] = plans.get(res.plan, 0) + 1
        assert res.n_eligible == ref.n_eligible and res.removed_by_rule == ref.removed_by_rule
        assert len(res) == 10 and item not in res.item_ids
        assert not {near[item][0], near[item][4]} & set(res.item_ids)
        hits += len(set(res.rows) & set(ref.rows))
        total += len(ref.rows)
    assert plans.get("hnsw_subindex", 0) > len(probe) // 2, plans
    assert hits / total >= 0.99


# -- a catalogue-mask rule on an optional column: in_stock --------------------------------------
def test_in_stock_only_hides_out_of_stock_items_in_every_path():
    cat, vec, searcher = searcher_for(120, 1)
    out = set(cat.item_id[cat.in_stock.eq(False).fillna(False)])
    unknown = set(cat.item_id[cat.in_stock.isna()])
    assert out and unknown
    cfg = FilterConfig(in_stock_only=True)
    seeds = [f"it{i}" for i in range(0, 120, 7)]
    batch = searcher.search_many(seeds, cfg, 30)
    for seed, many in zip(seeds, batch):
        for res in (searcher.search(seed, cfg, 30), searcher.search(seed, cfg, 30, plan="exact"), many):
            assert not out & set(res.item_ids)
            assert res.removed_by_rule["in_stock"] == len(out)
            ref_ids, _, eligible = brute_force(cat, vec, seed, cfg, 30)
            assert res.item_ids == ref_ids
            assert unknown & eligible  # unknown stock is shown
    # the same list as without the rule, minus the out-of-stock items
    plain = searcher.search("it0", FilterConfig(), 119).item_ids
    assert searcher.search("it0", cfg, 119).item_ids == [i for i in plain if i not in out]


def test_in_stock_is_unavailable_without_the_column():
    from components.filter_panel import control_id, filter_panel
    from recsys.search.rules import unavailable

    cat, vec = make_catalog(40, 0)
    cat = cat.drop(columns=["in_stock"])
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat)
    cfg = FilterConfig(in_stock_only=True)
    plain = searcher.search("it0", FilterConfig(), 10)
    for res in (searcher.search("it0", cfg, 10), searcher.search_many(["it0", "it1"], cfg, 10)[0]):
        assert res.item_ids == plain.item_ids  # nothing hidden ...
        assert "in_stock" in res.skipped_rules and "in_stock" not in res.removed_by_rule  # ... and said so
    why = unavailable(searcher.view.columns)
    assert "in_stock" in why and "in_stock" not in unavailable(make_catalog(40, 0)[0].columns)
    panel = filter_panel("t", cfg, columns=searcher.view.columns)
    switch = _find_id(panel, control_id("t", "in_stock_only"))
    assert switch.disabled is True
    assert why["in_stock"] in _texts(panel)
    enabled = _find_id(
        filter_panel("t", cfg, columns=list(cat.columns) + ["in_stock"]), control_id("t", "in_stock_only")
    )
    assert enabled.disabled is False


def _walk(component):
    stack = [component]
    while stack:
        c = stack.pop()
        yield c
        children = getattr(c, "children", None)
        if isinstance(children, list | tuple):
            stack.extend(children)
        elif children is not None:
            stack.append(children)


def _find_id(component, cid):
    return next(c for c in _walk(component) if getattr(c, "id", None) == cid)


def _texts(component):
    return [c for c in _walk(component) if isinstance(c, str)]


# -- merchandising rules (issue 16): in the rule table, against brute force --------------------
def test_merch_rules_counts_and_the_same_list_on_every_path():
    cat, vec, searcher = searcher_for(120, 2)
    s0, s5 = [i for i in cat.item_id[~cat.adult]][:2]  # non-adult seeds: the adult pin must not show
    plain = searcher.search(s0, FilterConfig(), 20)
    low = plain.item_ids[-1]  # eligible, ranked 20th
    adult = next(i for i in cat.item_id[cat.adult])
    nike = int(cat.brand.str.strip().str.casefold().eq("nike").sum())
    cfg = FilterConfig(
        do_not_associate=[
            PairBan(seed=s0, item_id=plain.item_ids[0]),
            PairBan(seed=s5, item_id=s0, one_way=True),
        ],
        pins=[Pin(seed=s0, item_id=low, position=1), Pin(seed=s0, item_id=adult, position=2)],
        boost=[Adjust(brands=["Nike"], multiplier=1.2, shift=0.1)],
        bury=[Adjust(price_max=20.0, multiplier=0.8)],
    )
    res = searcher.search(s0, cfg, 10)
    ref_ids, ref_scores, eligible = brute_force(cat, vec, s0, cfg, 10)
    assert res.item_ids == ref_ids and np.allclose(res.scores, ref_scores, atol=1e-5)
    assert res.item_ids[0] == low and adult not in res.item_ids and plain.item_ids[0] not in res.item_ids
    assert res.removed_by_rule["do_not_associate"] == 1  # the one banned item of it0
    assert res.removed_by_rule["pins"] == 1  # placed: low; refused: the adult item
    assert res.removed_by_rule["boost"] == nike
    assert res.removed_by_rule["bury"] == int((cat.price <= 20).sum())
    # one-way: s5 never shows s0, s0 may show s5
    assert s0 not in searcher.search(s5, cfg, 119).item_ids
    assert s5 in searcher.search(s0, cfg, 119).item_ids or s5 not in eligible
    # the batch path (precompute, Spark) and brute_force give the same lists
    seeds = [s0, s5, "it7", "it11"]
    for seed, many in zip(seeds, searcher.search_many(seeds, cfg, 10)):
        single = searcher.search(seed, cfg, 10)
        assert many.item_ids == single.item_ids == searcher.brute_force(seed, cfg, 10).item_ids
        assert many.removed_by_rule == single.removed_by_rule


def test_pair_ban_test_keeps_exactly_the_items_not_banned_for_slices_and_positions():
    """The do-not-associate item test (a domain slice, or HNSW candidates' positions in any
    order, repeats included) drops exactly the seed's banned positions."""
    from recsys.search.rules import _test_pair_bans

    rng = np.random.default_rng(4)
    for _ in range(50):
        banned = np.unique(rng.integers(0, 300, rng.integers(1, 12)))
        start = int(rng.integers(0, 200))
        sl = slice(start, start + int(rng.integers(0, 120)))
        pos = rng.integers(0, 320, 40)
        expect_sl = ~np.isin(np.arange(sl.start, sl.stop), banned)
        np.testing.assert_array_equal(_test_pair_bans(None, sl, banned), expect_sl)
        np.testing.assert_array_equal(_test_pair_bans(None, pos, banned), ~np.isin(pos, banned))
        np.testing.assert_array_equal(_test_pair_bans(None, banned, banned), np.zeros(len(banned), bool))


def test_pair_bans_pins_and_boosts_on_the_seed_table_hot_path_equal_brute_force(big_searcher, monkeypatch):
    """Do-not-associate pairs do not push a filter off its hot path: the seed table takes each
    seed's banned items inside its key range off its eligible count and its over-fetch's
    candidates; boost/bury answer from the table too (a scan of the category block, or the
    bounded over-fetch of recsys/search/adjusted.py); pins are checked against the
    table's key range. Each seed bans its own nearest neighbours (so the over-fetch meets
    them), some one way, and pins a neighbour further down, or a banned item (refused). Exact
    search is priced high so that this small catalogue over-fetches, as a large one does."""
    from recsys.search import _TABLE_AFTER, planner

    monkeypatch.setattr(planner, "_COST_EXACT_BASE", 5000.0)

    cat, vec, searcher = big_searcher
    base = {"same_category": True, "category_level": 1}
    seeds = [f"c{i}" for i in range(0, 6000, 157)]
    bans, pins = [], []
    for t, seed in enumerate(seeds):
        near = searcher.search(seed, FilterConfig(**base), 14).item_ids
        bans += [PairBan(seed=seed, item_id=near[j], one_way=j == 3) for j in (0, 3, 6)]
        bans.append(PairBan(seed=near[9], item_id=seed))  # two-way: banned for seed too
        pinned = near[0] if t % 3 == 0 else near[12]  # a banned item is never pinned
        pins.append(Pin(seed=seed, item_id=pinned, position=1 + t % 4))
    adjust = {
        "boost": [Adjust(brands=["b3", "b7"], multiplier=1.2)],
        "bury": [Adjust(price_min=40.0, shift=-0.1)],
    }
    for extra in ({}, adjust):
        cfg = FilterConfig(**base, do_not_associate=bans, pins=pins, **extra)
        for _ in range(_TABLE_AFTER + 1):  # the table is built once the filter has been used a few times
            searcher.search(seeds[0], cfg, 10)
        cf = searcher.compile(cfg)
        assert cf.seed_table is not None and len(cf.table_drop) >= len(seeds)
        plans = set()
        for t, seed in enumerate(seeds):
            res = searcher.search(seed, cfg, 10)
            ref = searcher.search(seed, cfg, 10, plan="exact")  # resolved per query, no table
            assert res.item_ids == ref.item_ids and res.n_eligible == ref.n_eligible
            assert res.removed_by_rule == ref.removed_by_rule
            np.testing.assert_allclose(res.scores, ref.scores, atol=1e-6)
            plans.add(res.plan)
            if t % 8 == 0:  # the independent reference (slow: a pass over the catalogue in pandas)
                ref_ids, ref_scores, eligible = brute_force(cat, vec, seed, cfg, 10)
                assert res.item_ids == ref_ids and res.n_eligible == len(eligible)
                np.testing.assert_allclose(res.scores, ref_scores, atol=1e-5)
            assert res.removed_by_rule["pins"] == (0 if t % 3 == 0 else 1)
        if not extra:  # boosted: a scan of these small category blocks is cheaper (adjusted.py)
            assert "hnsw_overfetch" in plans, plans


def test_pins_count_towards_max_per_brand_and_the_lower_pin_of_a_full_brand_goes():
    """A pinned item takes its brand's place under max_per_brand: the ranked item of that brand
    leaves the list (another fills it), the pin stays at its position; of two pins of one brand
    under a cap of 1, the one lower in the list is dropped. Every path agrees with brute force."""
    cat, vec, searcher = searcher_for(120, 2)
    norm = cat.brand.str.strip().str.casefold()
    brand_of = dict(zip(cat.item_id, norm))
    seed = next(i for i in cat.item_id[~cat.adult] if brand_of[i])
    capped = FilterConfig(max_per_brand=1, exclude_adult=True)
    plain = searcher.search(seed, capped, 10).item_ids
    shown = next(i for i in plain if brand_of[i])  # a ranked item with a brand
    brand = brand_of[shown]
    extra = [i for i in cat.item_id[~cat.adult] if brand_of[i] == brand and i not in plain and i != seed]
    pin1, pin2 = extra[:2]

    one = FilterConfig(max_per_brand=1, exclude_adult=True, pins=[Pin(seed=seed, item_id=pin1, position=5)])
    res = searcher.search(seed, one, 10)
    assert res.item_ids[4] == pin1 and shown not in res.item_ids and len(res) == 10
    branded = [brand_of[i] for i in res.item_ids if brand_of[i]]
    assert len(branded) == len(set(branded))  # the cap holds, the pin included
    assert res.removed_by_rule["pins"] == 1

    two = FilterConfig(
        max_per_brand=1,
        exclude_adult=True,
        pins=[Pin(seed=seed, item_id=pin2, position=6), Pin(seed=seed, item_id=pin1, position=2)],
    )
    res2 = searcher.search(seed, two, 10)
    assert res2.item_ids[1] == pin1 and pin2 not in res2.item_ids and shown not in res2.item_ids
    assert res2.removed_by_rule["pins"] == 1 and len(res2) == 10
    # without the cap both pins show (the rule is only about the cap)
    free = searcher.search(seed, FilterConfig(exclude_adult=True, pins=two.pins), 10)
    assert free.item_ids[1] == pin1 and free.item_ids[5] == pin2
    for cfg, got in ((one, res), (two, res2)):
        ref_ids, _, _ = brute_force(cat, vec, seed, cfg, 10)
        assert got.item_ids == ref_ids
        assert searcher.search_many([seed, "it7"], cfg, 10)[0].item_ids == ref_ids
        assert searcher.brute_force(seed, cfg, 10).item_ids == ref_ids
        assert searcher.search(seed, cfg, 10, plan="hnsw_filter").item_ids == ref_ids


def test_a_pin_beyond_k_still_counts_so_a_shorter_list_starts_the_longer_one():
    """A pin counts towards the cap wherever it sits: the list at k=10 is the start of the list at
    k=40 (the API serves any k from a stored table by cutting it), which needs items ranked
    beyond the first search's k (searched again)."""
    cat, vec, searcher = searcher_for(120, 2)
    brand_of = dict(zip(cat.item_id, cat.brand.str.strip().str.casefold()))
    seed = next(i for i in cat.item_id[~cat.adult] if brand_of[i])
    plain = searcher.search(seed, FilterConfig(max_per_brand=1, exclude_adult=True), 10).item_ids
    shown = next(i for i in plain if brand_of[i])
    far = next(
        i for i in cat.item_id[~cat.adult] if brand_of[i] == brand_of[shown] and i not in plain and i != seed
    )
    cfg = FilterConfig(max_per_brand=1, exclude_adult=True, pins=[Pin(seed=seed, item_id=far, position=30)])
    short, long = searcher.search(seed, cfg, 10), searcher.search(seed, cfg, 40)
    assert len(short) == 10 and shown not in short.item_ids and far not in short.item_ids
    assert long.item_ids[: len(short)] == short.item_ids
    assert far in long.item_ids and long.item_ids.index(far) == min(29, len(long) - 1)
    for k in (10, 40):
        assert searcher.search(seed, cfg, k).item_ids == brute_force(cat, vec, seed, cfg, k)[0]
        assert searcher.search_many([seed], cfg, k)[0].item_ids == brute_force(cat, vec, seed, cfg, k)[0]


@pytest.mark.parametrize(
    "fields",
    [
        {"same_category": True, "category_level": 0},  # seed table, blocks of ~50%: no graph of their own
        {"same_category": True, "category_level": 0, "price_ratio_min": 0.5, "price_ratio_max": 2.0},
        {"brands_allow": [f"b{i}" for i in range(12)]},  # static, ~60%: no block, no graph
        {"exclude_adult": True},  # static, one eligible set per seed adultness
        {},  # 5% adult items: every non-adult item, or every item (fast.py: _fast_near_full)
        {"exclude_seed": False},  # the same sets, the seed listed
    ],
)
def test_filter_shortcut_answers_as_the_general_path(fields):
    """Once a filter's automatic plan has over-fetched, later queries with the same config object
    take the shortcut (:mod:`recsys.search.fast`): every list, score and count equals what the
    general path answers on a twin searcher without it, for k that fits the fetch and k that
    does not, adult and non-adult seeds, and seeds whose over-fetch falls short (static filters:
    exact search priced out, as on a large catalogue)."""
    with exact_priced_high():
        _shortcut_against_general_path(FilterConfig(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"same_category": True, "category_level": 0, "exclude_adult": True, "max_per_brand": 2},
        {"same_category": True, "category_level": 0, "price_ratio_min": 0.5, "max_per_brand": 1},
    ],
)
def test_ranked_rules_shortcut_answers_as_the_general_path(fields):
    """A seed-table filter with ``max_per_brand`` (the serving preset's kind) takes the shortcut
    too (fast.py's ranked kind): lists, scores, the cap's drop counts and plans equal the
    general path's; with brands assigned at random, the cap drops items from the shortcut's own
    answers."""
    cat, vec, index = _clustered_6000()
    cat = cat.assign(brand=[f"r{x}" for x in np.random.default_rng(5).integers(0, 40, len(cat))])
    with exact_priced_high():
        answers = _shortcut_against_general_path(FilterConfig(**fields), (cat, vec, index))
    assert answers and all(r.plan == "hnsw_overfetch" for _, _, r in answers)
    assert sum(r.removed_by_rule["max_per_brand"] > 0 for _, _, r in answers) >= 10


@pytest.mark.parametrize("adult", [True, False])
def test_small_category_blocks_exact_shortcut_answers_as_the_general_path(adult):
    """A category level whose blocks are too small for a graph of their own (exact search, the
    planner's choice) takes the shortcut too (fast.py: ``_fast_exact_block``): lists, scores,
    counts and plans equal the general path's, with adult items in the catalogue (a non-adult
    seed's eligible rows are fewer than its block's) and without."""
    cat, vec, index = _clustered_6000()
    if not adult:
        cat = cat.assign(adult=False)
    answers = _shortcut_against_general_path(
        FilterConfig(same_category=True, category_level=1), (cat, vec, index)
    )
    plans = {r.plan for _, _, r in answers}
    assert len(answers) > 500 and plans <= {"exact_range", "exact_subset"}


def _shortcut_against_general_path(
    cfg: FilterConfig, built: tuple | None = None
) -> list[tuple[str, int, SearchResult]]:
    """The shortcut's answers on seeds c0, c23, ... at k = 10, 1, 30 (each checked against the
    general path); ``built``: (catalogue, vectors, index) when the caller has them."""
    cat, vec, index = built if built is not None else _clustered_6000()
    ids = cat["item_id"].to_numpy()
    fast = FilteredSearcher(vec, ids, cat, index=index)
    general = FilteredSearcher(vec, ids, cat, index=index)
    general._arm_fast = lambda *a: None  # never armed: every query takes the general path
    seeds = [f"c{i}" for i in range(0, 6000, 23)]
    for s in (fast, general):  # the same warm-up: seed tables, eligible sets, learned fill rates
        for item in seeds[:40]:
            s.search(item, cfg, 10)
    assert fast._fast[id(cfg)].cfg is cfg
    counter = GeneralPathCalls(fast)
    queries, answers = 0, []
    for k in (10, 1, 30):
        for item in seeds:
            before = counter.calls
            got, want = fast.search(item, cfg, k), general.search(item, cfg, k)
            queries += 1
            for field in (*ANSWER_FIELDS, "served_by"):
                assert getattr(got, field) == getattr(want, field), (item, k, field)
            assert (item not in got.item_ids or not cfg.exclude_seed) and got.seed_item_id == item
            if counter.calls == before:
                answers.append((item, k, got))
            got.removed_by_rule["x"] = 1  # each result owns its counts
            got.skipped_rules.append("x")
    # the shortcut answered a good share (seeds far from the brands allowed go to the general path)
    assert counter.calls < 0.7 * queries, (counter.calls, queries)
    return answers


def _clustered_6000() -> tuple[pd.DataFrame, np.ndarray, HnswIndex]:
    cat, vec = clustered_catalog(6000, 3)
    return cat, vec, HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)


@pytest.mark.parametrize("price_band", [False, True])
def test_filter_shortcut_with_pair_bans_and_pins_answers_as_the_general_path(price_band):
    """Do-not-associate pairs and pins on a seed-table filter take the shortcut too (the seed's
    banned rows tested with its key range, the pins placed after): lists, scores, counts and
    markers equal the general path's, and the shortcut's own answers drop the banned items of
    the over-fetch, place pins (moved within the list, placed from beyond it, a category's)
    and hold back the pins the filter or a ban hides."""
    built = _clustered_6000()
    cat, vec, index = built
    ids = cat["item_id"].to_numpy()
    base = {"same_category": True, "category_level": 0}
    if price_band:
        base |= {"price_ratio_min": 0.5, "price_ratio_max": 2.0}
    plain = FilteredSearcher(vec, ids, cat, index=index)
    top = cat["category"].str.split(" > ").str[0].to_numpy()
    rng = np.random.default_rng(16)
    seeds = [f"c{i}" for i in range(0, 6000, 23)]
    bans, pins, banned, hidden = [], [], {}, {}
    for j, seed in enumerate(seeds):
        near = plain.search(seed, base, 12).item_ids
        if j % 2 == 0 and len(near) > 6:  # ban neighbours the over-fetch returns
            bans.append({"seed": seed, "item_id": near[0], "one_way": j % 4 == 0})
            bans.append({"seed": near[5], "item_id": seed})  # the other direction
            banned[seed] = {near[0], near[5]}
        if j % 3 == 0 and len(near) > 11:
            same = np.flatnonzero(top == top[int(seed[1:])])
            far = next(f"c{i}" for i in rng.permutation(same) if f"c{i}" not in near and f"c{i}" != seed)
            pins.append({"seed": seed, "item_id": far, "position": int(rng.integers(4, 11))})
            pins.append({"seed": seed, "item_id": near[8], "position": 2})  # moved up
            other = next(f"c{i}" for i in rng.permutation(np.flatnonzero(top != top[int(seed[1:])])))
            pins.append({"seed": seed, "item_id": other, "position": 1})  # the filter hides it
            hidden[seed] = {other}
            if seed in banned:
                pins.append({"seed": seed, "item_id": near[0], "position": 3})  # banned: hidden
    pins.append({"category": "T1", "item_id": next(i for i, t in zip(ids, top) if t == "T1"), "position": 4})
    cfg = FilterConfig.from_dict({**base, "do_not_associate": bans, "pins": pins})
    with exact_priced_high():
        answers = _shortcut_against_general_path(cfg, built)
    placed = [r for _, _, r in answers if r.removed_by_rule["pins"] > 0]
    cut = [r for _, _, r in answers if r.removed_by_rule["do_not_associate"] > 0]
    assert len(placed) > 20 and len(cut) > 20, (len(placed), len(cut), len(answers))
    for seed, k, res in answers:
        shown = set(res.item_ids)
        assert not shown & banned.get(seed, set()) and not shown & hidden.get(seed, set())
        assert len(res) == k


def test_filters_of_one_mask_share_their_category_graphs(uncorrelated):
    """A category filter with do-not-associate pairs or pins answers from the graphs the filter
    alone has built (the same mask, the same blocks): no second build, once its seed table is
    there; a filter of another mask builds its own."""
    cat, vec, index = uncorrelated
    ids = cat["item_id"].to_numpy()
    searcher = FilteredSearcher(vec, ids, cat, index=index)
    searcher.sub_index_min_rows, searcher.sub_index_gain = 100, 0.0
    base = FilterConfig(same_category=True, category_level=0)
    for i in range(0, 8000, 40):
        searcher.search(f"u{i}", base, 10)
    searcher.wait_background()
    built = searcher.compile(base).blocks
    assert built
    ruled = FilterConfig.from_dict(
        {**base.canonical(), "do_not_associate": [{"seed": "u1", "item_id": "u2"}], "pins": []}
    )
    deny = [str(cat["brand"].iloc[0])]
    other = FilterConfig(same_category=True, category_level=0, brands_deny=deny)  # another mask
    for cfg in (ruled, other):
        for i in range(1, 121, 10):  # 12 queries: its seed table, too few uses to build a graph
            searcher.search(f"u{i}", cfg, 10)
        plans = {searcher.search(f"u{i}", cfg, 10).plan for i in range(5, 400, 37)}
        blocks = searcher.compile(cfg).blocks
        if cfg is ruled:
            assert plans == {"hnsw_subindex"} and blocks
            assert all(ss is built[key] for key, ss in blocks.items())
        else:
            assert "hnsw_subindex" not in plans and not blocks
