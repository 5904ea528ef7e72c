"""The declared fallback chain (recsys.fallback): model -> co-occurrence -> category -> brand -> popular."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.evaluation import evaluate, evaluate_sessions
from recsys.fallback import FallbackChain, load_chain, served_shares
from recsys.models import make_model


def shop() -> tuple[Dataset, Dataset]:
    """Training sessions over items a0..a5 (category A, brand x) and b0..b3 (category B, brand y);
    the catalogue also lists items training never saw: a_new (A), nocat_y (brand y only),
    bare (nothing). The test sessions start on those unseen items."""
    t0 = pd.Timestamp("2024-01-01")
    sessions = [["a0", "a1", "a2"], ["a1", "a2"], ["a2", "a3"], ["b0", "b1"], ["b1", "b2"], ["b1", "b3"]]
    sessions += [["a4"], ["a5"], ["b1"]]  # one-item sessions: no co-occurrence for a4, a5
    rows = [
        (f"s{s}", "", item, t0 + pd.Timedelta(minutes=10 * s + p), "view", 1.0, p)
        for s, items in enumerate(sessions)
        for p, item in enumerate(items)
    ]
    test_sessions = [["a_new", "a0"], ["nocat_y", "b1"], ["bare", "a2"], ["a4", "a1"]]
    test_rows = [
        (f"t{s}", "", item, t0 + pd.Timedelta(days=1, minutes=10 * s + p), "view", 1.0, p)
        for s, items in enumerate(test_sessions)
        for p, item in enumerate(items)
    ]
    cols = ["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]
    items = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(4)] + ["a_new", "nocat_y", "bare"]
    catalog = pd.DataFrame({"item_id": items})
    catalog["category"] = ["A > A1"] * 6 + ["B > B1"] * 4 + ["A > A2", "", ""]
    catalog["brand"] = ["x"] * 6 + ["y"] * 4 + ["", "y", ""]
    for col in ("title", "gender", "description", "image_url"):
        catalog[col] = ""
    catalog["price"] = 1.0
    catalog["adult"] = False
    train = Dataset("shop", catalog, pd.DataFrame(rows, columns=cols), kind="sessions")
    test = Dataset("shop", catalog, pd.DataFrame(test_rows, columns=cols), kind="sessions")
    return train, test


@pytest.fixture(scope="module")
def data():
    return shop()


@pytest.fixture(scope="module")
def chain(data):
    return FallbackChain().fit(data[0])


def test_each_step_serves_the_seeds_it_is_for(chain):
    # a0 co-occurs with a1, a2: the co-occurrence step first, then its category's popular items
    got = chain.candidates("a0", 5)
    assert [s for _, _, s in got[:2]] == ["cooccurrence"] * 2 and {i for i, _, _ in got[:2]} == {"a1", "a2"}
    assert got[2][2] == "category" and got[2][0].startswith("a")
    # a_new never occurred in training: category "A > A2" has no trained item, its top level "A" has
    a_new = chain.candidates("a_new", 3)
    assert [s for _, _, s in a_new] == ["category"] * 3 and all(i.startswith("a") for i, _, _ in a_new)
    assert a_new[0][0] == "a2"  # the most popular item of A (3 sessions)
    # nocat_y has no category but brand y: y's most popular item b1 first
    assert chain.candidates("nocat_y", 2)[0] == ("b1", pytest.approx(4.0), "brand")
    # nothing known about the seed: the most popular items overall
    bare = chain.candidates("bare", 3)
    assert [s for _, _, s in bare] == ["popular"] * 3 and bare[0][0] == "b1"
    # never the seed nor the excluded items
    assert "a1" not in {i for i, _, _ in chain.candidates("a0", 20, exclude=["a1"])}
    assert "b1" not in {i for i, _, _ in chain.candidates("b1", 20)}


def test_complete_keeps_the_models_list_and_fills_the_rest(chain):
    ids = np.array([["a3", "", ""], ["", "", ""]])
    scores = np.array([[0.5, -np.inf, -np.inf], [-np.inf] * 3], dtype=np.float32)
    out, sc, served = chain.complete(["a2", "bare"], ids, scores, 3)
    assert out[0, 0] == "a3" and sc[0, 0] == pytest.approx(0.5) and served[0, 0] == "model"
    assert list(served[0, 1:]) == ["cooccurrence"] * 2 and "a3" not in out[0, 1:] and "a2" not in out[0]
    assert list(served[1]) == ["popular"] * 3
    shares = served_shares(served)
    assert shares["fallback_share"] == 0.5 and shares["completed_share"] == 0.5
    assert shares["no_recommendation_share"] == 0.0 and shares["fallback_steps"] == {"popular": 0.5}


def test_save_load_round_trip(chain, tmp_path):
    chain.save(tmp_path / "fallback")
    back = load_chain(tmp_path)
    for seed in ("a0", "a_new", "nocat_y", "bare", "b3"):
        assert back.candidates(seed, 6) == chain.candidates(seed, 6)
    assert load_chain(tmp_path / "nothing") is None


@pytest.mark.parametrize("family", ["item_knn", "sknn", "cooccurrence"])
def test_evaluation_reports_what_the_fallback_served(data, chain, family):
    train, test = data
    model = make_model(family).fit(train)
    alone = evaluate_sessions(model, test, k=3, exclude_seen=False, max_cases=None)
    served = evaluate_sessions(model, test, k=3, exclude_seen=False, max_cases=None, fallback=chain)
    # three of four test cases end on an item the model never saw (a_new, nocat_y, bare) or that
    # only occurred alone (a4): the model has nothing, the chain serves them all
    assert alone["no_recommendation_share"] == 1.0 and alone["fallback_share"] == 0.0
    assert served["model_no_recommendation_share"] == 1.0
    assert served["no_recommendation_share"] == 0.0 and served["fallback_share"] == 1.0
    # a_new and a4 by their category, nocat_y by its brand, bare by the popular items
    assert served["fallback_steps"] == {"category": 0.5, "brand": 0.25, "popular": 0.25}
    # a_new -> a0: a0 is among category A's popular items
    assert served["hr@3"] > alone["hr@3"] == 0.0
    # the same chain through the item-to-item protocol, attached to the model as a run's is
    model.fallback_chain_ = chain
    m = evaluate(model, train, test, k=3, max_cases=None, repeats="keep")
    assert m["no_recommendation_share"] == 0.0 and m["model_no_recommendation_share"] == 1.0
    assert m["seeds_without_recs"] == 0 and m["fallback_share"] == 1.0


def test_excluded_session_items_stay_out_of_the_fallback(data, chain):
    _, test = data
    model = make_model("sknn").fit(data[0])
    from recsys.evaluation import build_session_cases, fallback_report, session_recommendations

    ctx, _ = build_session_cases(test, "every_position", max_cases=None)
    recs = session_recommendations(model, ctx, 5, exclude_seen=True)
    out = fallback_report(model, [c[-1] for c in ctx], recs, chain, 5, ctx)["recs"]
    for c, row in zip(ctx, out):
        assert not set(c) & set(row)


def test_filter_list_applies_the_rule_table_to_a_ranked_list(data):
    """The rule table on a list that is not a vector search (recsys.search.lists.filter_list)."""
    from recsys.catalog import CatalogView
    from recsys.filters import FilterConfig
    from recsys.search.lists import catalogue_searcher, filter_list

    catalog = data[0].catalog
    searcher = catalogue_searcher(
        ("test", "shop", 1), lambda: CatalogView(catalog["item_id"].astype(str).to_numpy(), catalog)
    )
    ids = ["a1", "b0", "a2", "b1", "a3", "nocat_y"]
    scores = [0.9, 0.8, 0.7, 5.0, 4.0, 3.0]
    served = ["model", "model", "model", "category", "category", "brand"]

    def run(k=6, **cfg):
        res, src = filter_list(searcher, "a0", ids, scores, served, FilterConfig(**cfg), k, similarities=True)
        return res.item_ids, src, res

    assert run()[0] == ids  # no rule: the list as ranked
    got, src, res = run(brands_deny=["y"])
    assert got == ["a1", "a2", "a3"] and src == ["model", "model", "category"]
    assert res.removed_by_rule["brands_deny"] == 5  # over the catalogue: b0..b3 and nocat_y
    got, _, _ = run(same_category=True, category_level=0)  # the seed a0 is in "A"
    assert got == ["a1", "a2", "a3"]
    # max_per_brand keeps the first of each brand, refilled from further down
    got, src, _ = run(k=3, max_per_brand=1)
    assert got == ["a1", "b0"]  # every other item repeats brand x or y
    # min_similarity: a floor on the model's own similarities; the fallback's items are removed
    got, _, res = run(min_similarity=0.75)
    assert got == ["a1", "b0"] and res.removed_by_rule["min_similarity"] == 4
    # boost re-ranks within the model's items and within the fallback's, each among its own
    got, src, _ = run(boost=[{"brands": ["y"], "multiplier": 2.0}])
    assert got[:3] == ["b0", "a1", "a2"] and got[3:] == ["b1", "nocat_y", "a3"]  # y doubled
    assert src == ["model"] * 3 + ["category", "brand", "category"]
