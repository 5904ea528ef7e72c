"""Splits and metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_model_contract import grouped_dataset

from recsys.data.schema import Dataset
from recsys.errors import DataValidationError
from recsys.evaluation import build_cases, catalog_coverage, cold_items, evaluate, split
from recsys.models import make_model

COLUMNS = ["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]


def _ds(
    seqs: dict[str, list[str]], kind="sessions", days: dict[str, int] | None = None, catalog=None
) -> Dataset:
    rows = []
    for sid, items in seqs.items():
        day = (days or {}).get(sid, 0)
        for p, item in enumerate(items):
            ts = pd.Timestamp("2024-01-01") + pd.Timedelta(days=day, minutes=p)
            rows.append((sid, "", item, ts, "view", 1.0, p))
    inter = pd.DataFrame(rows, columns=COLUMNS)
    if catalog is None:
        ids = sorted({i for s in seqs.values() for i in s})
        catalog = pd.DataFrame({"item_id": ids, "category": "", "brand": ""})
    return Dataset("t", catalog, inter, kind=kind)


class Lookup:
    """A model answering from a fixed table (unknown seeds padded), as ItemModel does."""

    family = "lookup"

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[int] = []

    def similar(self, item_ids, k):
        self.calls.append(len(item_ids))
        ids = np.full((len(item_ids), k), "", dtype=object)
        for r, s in enumerate(item_ids):
            got = self.table.get(s, [])[:k]
            ids[r, : len(got)] = got
        scores = np.where(ids != "", np.float32(1), np.float32(-np.inf)).astype(np.float32)
        return ids.astype(str), scores


def test_session_next_item_metrics_by_hand():
    train = _ds({"tr": ["x", "y", "a", "b", "z"]})
    test = _ds({"s1": ["x", "x", "y", "z"]})  # repeats collapse: cases x -> y, y -> z
    model = Lookup({"x": ["y", "a", "b"], "y": ["a", "b", "z"]})
    m = evaluate(model, train, test, k=3)
    assert m["n_cases"] == 2 and m["skipped_cases"] == 0
    assert m["hr@3"] == pytest.approx(1.0)
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 2)
    assert m["mrr@3"] == pytest.approx((1 + 1 / 3) / 2)
    assert m["coverage@3"] == pytest.approx(4 / 5)  # y a b z of x y a b z


def test_basket_metrics_by_hand_with_unknown_seed():
    catalog = pd.DataFrame({"item_id": list("pqrxyzw"), "category": "", "brand": ""})
    train = _ds({"tr": list("pqrxyzw")}, kind="baskets", catalog=catalog)
    test = _ds({"b1": ["p", "q", "r"]}, kind="baskets", catalog=catalog)
    model = Lookup({"p": ["q", "x", "r"], "q": ["x", "y", "z"]})  # r unknown
    m = evaluate(model, train, test, k=3)
    assert m["n_cases"] == 3 and m["skipped_cases"] == 1
    ndcg_p = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # hits at ranks 1 and 3 of 2 targets
    assert m["hr@3"] == pytest.approx(1 / 3)
    assert m["precision@3"] == pytest.approx((2 / 3) / 3)
    assert m["recall@3"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx(ndcg_p / 3)
    assert m["mrr@3"] == pytest.approx(1 / 3)
    assert m["coverage@3"] == pytest.approx(5 / 7)


def test_popularity_bias_is_the_mean_popularity_percentile():
    catalog = pd.DataFrame({"item_id": list("abcd"), "category": "", "brand": ""})
    # train counts a 3, b 2, c 1, d 0 -> percentiles 1, 0.75, 0.5, 0.25
    train = _ds({"1": ["a", "b", "c"], "2": ["a", "b"], "3": ["a"]}, catalog=catalog)
    test = _ds({"s": ["c", "d"]}, catalog=catalog)
    assert evaluate(Lookup({"c": ["a", "b"]}), train, test, k=2)["popularity_bias@2"] == pytest.approx(0.875)
    assert evaluate(Lookup({"c": ["d", ""]}), train, test, k=2)["popularity_bias@2"] == pytest.approx(0.25)


def test_per_category_breakdown_by_seed_top_level():
    catalog = pd.DataFrame(
        {"item_id": list("abcd"), "category": ["Men > Shoes", "Men > Bags", "Women > Bags", ""], "brand": ""}
    )
    train = _ds({"tr": list("abcd")}, catalog=catalog)
    test = _ds({"s1": ["a", "b", "c", "d"]}, catalog=catalog)  # cases a->b, b->c, c->d
    m = evaluate(Lookup({"a": ["b"], "b": ["a"], "c": ["d"]}), train, test, k=1)
    assert m["per_category"] == {
        "Men": {"hr@1": 0.5, "ndcg@1": 0.5, "n": 2},
        "Women": {"hr@1": 1.0, "ndcg@1": 1.0, "n": 1},
    }


def test_seeds_are_batched_and_deduplicated():
    train = _ds({"tr": list("abc")})
    test = _ds({f"s{i}": ["a", "b"] for i in range(50)} | {"t": ["b", "c"]})
    model = Lookup({"a": ["b"], "b": ["c"]})
    m = evaluate(model, train, test, k=1, batch_size=1)
    assert m["n_cases"] == 51 and m["hr@1"] == 1.0 and m["n_seeds"] == 2
    assert model.calls == [1, 1]


def test_max_cases_sampling_is_seeded():
    train = _ds({"tr": list("abcdefgh")})
    test = _ds({f"s{i}": list("abcdefgh") for i in range(20)})
    a = build_cases(test, max_cases=30, seed=1)
    b = build_cases(test, max_cases=30, seed=1)
    c = build_cases(test, max_cases=30, seed=2)
    assert len(a[0]) == 30
    assert a[0].tolist() == b[0].tolist() and a[0].tolist() != c[0].tolist()
    assert evaluate(Lookup({}), train, test, k=2, max_cases=30)["n_cases"] == 30


def test_time_split_by_sequence_start():
    ds = _ds(
        {"s1": ["a", "b"], "s2": ["b", "c"], "s3": ["c", "d"], "s4": ["d", "a"]},
        days={"s1": 0, "s2": 1, "s3": 2, "s4": 9},
    )
    train, test = split(ds, "time", test_days=3)  # cutoff: latest event (day 9) - 3 days
    assert set(test.interactions["sequence_id"]) == {"s4"}
    assert set(train.interactions["sequence_id"]) == {"s1", "s2", "s3"}
    train, test = split(ds, "time", test_fraction=0.5)
    assert set(test.interactions["sequence_id"]) == {"s3", "s4"}
    assert len(train.catalog) == len(ds.catalog) and test.kind == ds.kind


def test_time_split_errors():
    ds = _ds({"s1": ["a", "b"]})
    ds.interactions["timestamp"] = pd.NaT
    with pytest.raises(DataValidationError, match="leave_last_out"):
        split(ds, "time")
    with pytest.raises(ValueError, match="method"):
        split(ds, "random")
    ds = _ds({"s1": ["a", "b"]})
    with pytest.raises(DataValidationError, match="empty"):
        split(ds, "time", test_days=30)


def test_leave_last_out_split_and_cases():
    ds = _ds({"s1": ["a", "b", "c"], "s2": ["d"], "s3": ["e", "f", "f"]})
    train, test = split(ds, "leave_last_out")
    assert train.interactions["item_id"].tolist() == ["a", "b", "d", "e", "f"]
    assert test.interactions["heldout"].tolist() == [False, False, True, False, False, True]
    seeds, targets = build_cases(test)
    # s3's last context item equals its held-out item, so the seed is the one before
    assert seeds.tolist() == ["b", "e"] and [t.tolist() for t in targets] == [["c"], ["f"]]
    m = evaluate(Lookup({"b": ["c"], "e": ["x", "f"]}), train, test, k=2)
    assert m["hr@2"] == 1.0 and m["mrr@2"] == pytest.approx(0.75)
    baskets = Dataset("b", ds.catalog, ds.interactions, kind="baskets")
    _, btest = split(baskets, "leave_last_out")
    seeds, targets = build_cases(btest)
    assert seeds.tolist() == ["a", "b", "e"] and [t.tolist() for t in targets] == [["c"], ["c"], ["f"]]


def test_cold_items_and_target_filter():
    catalog = pd.DataFrame({"item_id": list("abcde"), "category": "", "brand": ""})
    train = _ds({"1": ["a", "b", "a", "b", "a"], "2": ["c", "a"]}, catalog=catalog)
    assert sorted(cold_items(train, threshold=3)) == ["b", "c", "d", "e"]  # a 4, b 2, c 1, d/e 0
    assert sorted(cold_items(train, threshold=2)) == ["c", "d", "e"]
    assert sorted(cold_items(train, threshold=1)) == ["d", "e"]
    test = _ds({"s": ["a", "b", "d", "a"]}, kind="sessions", catalog=catalog)  # a->b, b->d, d->a
    model = Lookup({"a": ["b"], "b": ["c"], "d": ["a"]})
    full = evaluate(model, train, test, k=1)
    cold = evaluate(model, train, test, k=1, target_filter=cold_items(train, threshold=2))
    assert full["n_cases"] == 3 and full["hr@1"] == pytest.approx(2 / 3)
    assert cold["n_cases"] == 1 and cold["hr@1"] == 0.0  # only b -> d has a cold target
    cold3 = evaluate(model, train, test, k=1, target_filter=cold_items(train, threshold=3))
    assert cold3["n_cases"] == 2 and cold3["hr@1"] == 0.5  # a -> b (hit) and b -> d
    seeded = evaluate(model, train, test, k=1, seed_filter=["d"])
    assert seeded["n_cases"] == 1 and seeded["hr@1"] == 1.0
    empty = evaluate(model, train, test, k=1, seed_filter=["zzz"])
    assert empty["n_cases"] == 0 and empty["hr@1"] == 0.0


def test_same_code_evaluates_embeddings_and_baselines():
    ds = grouped_dataset(n_sequences=300)
    train, test = split(ds, "time", test_fraction=0.2)
    params = {"vector_size": 16, "epochs": 15, "min_count": 1, "sample": 0.0, "workers": 1, "seed": 1}
    hr = {}
    for family, p in [("popularity", {}), ("cooccurrence", {}), ("prod2vec", params)]:
        model = make_model(family, **p).fit(train)
        m = evaluate(model, train, test, k=5, catalog=ds.catalog)
        assert m["n_cases"] == 60 * 5 and m["skipped_cases"] == 0
        hr[family] = m["hr@5"]
        assert 0 < m["coverage@5"] <= 1
    # within-group sessions: chance of a hit at 5 among 11 group-mates is 5/11
    assert hr["cooccurrence"] > 0.4 and hr["prod2vec"] > 0.4
    assert hr["popularity"] < 0.3


def test_basket_targets_one_draws_a_single_partner():
    catalog = pd.DataFrame({"item_id": list("pqrs"), "category": "", "brand": ""})
    test = _ds({"b1": ["p", "q", "r"], "b2": ["s", "p"]}, kind="baskets", catalog=catalog)
    seeds, targets = build_cases(test, basket_targets="one", seed=3)
    assert seeds.tolist() == ["p", "q", "r", "s", "p"]
    basket = {"b1": {"p", "q", "r"}, "b2": {"s", "p"}}
    for s, t, b in zip(seeds, targets, ["b1", "b1", "b1", "b2", "b2"]):
        assert len(t) == 1 and t[0] in basket[b] - {s}
    rest = build_cases(test)[1]
    assert [sorted(t) for t in rest] == [["q", "r"], ["p", "r"], ["p", "q"], ["p"], ["s"]]
    nxt = build_cases(test, basket_targets="next")
    assert nxt[0].tolist() == ["p", "q", "s"] and [t.tolist() for t in nxt[1]] == [["q"], ["r"], ["p"]]
    with pytest.raises(ValueError, match="basket_targets"):
        build_cases(test, basket_targets="all")


def test_session_cases_both_protocols_by_hand():
    from recsys.evaluation import build_session_cases

    test = _ds({"s1": ["a", "a", "b", "a"], "s2": ["c", "d"], "s3": ["e"]})
    ctx, tgt = build_session_cases(test, "every_position", max_cases=None)
    assert ctx == [["a"], ["a", "a"], ["a", "a", "b"], ["c"]]
    assert list(tgt) == ["a", "b", "a", "d"]
    ctx, tgt = build_session_cases(test, "collapsed", max_cases=None)
    assert ctx == [["a"], ["a", "b"], ["c"]] and list(tgt) == ["b", "a", "d"]
    train, held = split(_ds({"s1": ["a", "b", "c"], "s2": ["d"]}), "leave_last_out")
    ctx, tgt = build_session_cases(held, "every_position", max_cases=None)
    assert ctx == [["a", "b"]] and list(tgt) == ["c"]


def test_evaluate_sessions_exclude_seen_and_shares():
    from recsys.evaluation import evaluate_sessions

    test = _ds({"s1": ["x", "y", "x"], "s2": ["q", "z"]})
    # item-to-item from the last item; "q" is unknown to the model: no recommendation
    model = Lookup({"x": ["y", "z"], "y": ["x", "z"]})
    both = {
        flag: evaluate_sessions(model, test, k=2, exclude_seen=flag, catalog=list("xyzq"))
        for flag in (True, False)
    }
    # cases: x -> y (hit), [x, y] -> x (hit only when seen items may come back), q -> z (nothing)
    assert both[False]["hr@2"] == pytest.approx(2 / 3)
    assert both[True]["hr@2"] == pytest.approx(1 / 3)
    assert both[True]["no_recommendation_share"] == pytest.approx(1 / 3)
    assert both[False]["mrr@2"] == pytest.approx((1 + 1) / 3)
    lo, hi = both[True]["hr@2_ci"]
    assert lo < 1 / 3 < hi
    assert both[True]["coverage@2"] == pytest.approx(2 / 4)  # y, z (x is dropped as seen in case 2)
    # per case, in the cases' order (what the recommended variant's paired rule compares)
    for flag, want in ((False, [True, True, False]), (True, [True, False, False])):
        got = evaluate_sessions(model, test, k=2, exclude_seen=flag, catalog=list("xyzq"), per_case=True)
        assert got["hits"].tolist() == want and "hits" not in both[flag]


def test_catalog_coverage_counts_each_catalogue_item_a_list_holds():
    """Object (pandas string) arrays, repeated and unknown ids: the share of the catalogue listed."""
    catalog = pd.Series([f"it{i}" for i in range(10)]).astype(str).to_numpy()
    recs = np.asarray(["it1", "it1", "it3", "ghost", "it9"], dtype=object)
    assert catalog.dtype == object
    assert catalog_coverage(catalog, recs) == 0.3
    assert catalog_coverage(catalog, np.asarray([], dtype=object)) == 0.0
    assert catalog_coverage(np.asarray([], dtype=object), recs) == 0.0
