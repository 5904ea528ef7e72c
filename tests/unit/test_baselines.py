"""Popularity and co-occurrence baselines on hand-made data with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.errors import ModelFitError
from recsys.models.baselines import CooccurrenceModel, PopularityModel

COLUMNS = ["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]


def _dataset(baskets: list[list[str]], events: list[str] | None = None, extra_items=()) -> Dataset:
    rows = []
    n = 0
    for b, items in enumerate(baskets):
        for p, item in enumerate(items):
            ev = events[n] if events else "purchase"
            rows.append((f"b{b}", "", item, pd.Timestamp("2024-01-01"), ev, 1.0, p))
            n += 1
    inter = pd.DataFrame(rows, columns=COLUMNS)
    ids = sorted({i for b in baskets for i in b} | set(extra_items))
    catalog = pd.DataFrame({"item_id": ids, "category": "", "brand": ""})
    return Dataset("hand", catalog, inter, kind="baskets")


# n_a = 3, n_b = 3, n_c = 2, n_d = 2; shared: ab 2, ac 2, ad 1, bc 1, bd 1, cd 1
BASKETS = [["a", "b", "c"], ["a", "b"], ["a", "c", "d"], ["b", "d"]]
JACCARD = {
    ("a", "b"): 2 / 4,
    ("a", "c"): 2 / 3,
    ("a", "d"): 1 / 4,
    ("b", "c"): 1 / 4,
    ("b", "d"): 1 / 4,
    ("c", "d"): 1 / 3,
}
COSINE = {
    ("a", "b"): 2 / 3,
    ("a", "c"): 2 / math.sqrt(6),
    ("a", "d"): 1 / math.sqrt(6),
    ("b", "c"): 1 / math.sqrt(6),
    ("b", "d"): 1 / math.sqrt(6),
    ("c", "d"): 1 / 2,
}


@pytest.mark.parametrize("similarity,expected", [("jaccard", JACCARD), ("cosine", COSINE)])
def test_cooccurrence_matches_hand_computed_similarities(similarity, expected):
    m = CooccurrenceModel(similarity=similarity).fit(_dataset(BASKETS))
    ids, scores = m.similar(["a", "b", "c", "d"], 3)
    for seed, row_ids, row_scores in zip("abcd", ids, scores):
        assert seed not in row_ids
        for other, s in zip(row_ids, row_scores):
            assert s == pytest.approx(expected[tuple(sorted((seed, other)))], rel=1e-6)
    assert scores.dtype == np.float32


def test_cooccurrence_ranking_and_ties_by_item_id():
    m = CooccurrenceModel(similarity="jaccard").fit(_dataset(BASKETS))
    ids, _ = m.similar(["a", "b"], 3)
    assert ids.tolist() == [["c", "b", "d"], ["a", "c", "d"]]  # b: c and d tie at 1/4
    m = CooccurrenceModel(similarity="cosine").fit(_dataset(BASKETS))
    assert m.similar(["d"], 3)[0].tolist() == [["c", "a", "b"]]


def test_min_count_top_k_and_popular_fill():
    ds = _dataset(BASKETS)
    m = CooccurrenceModel(min_count=2).fit(ds)
    ids, scores = m.similar(["a", "d"], 3)
    assert ids.tolist() == [["c", "b", ""], ["", "", ""]]  # d shares no basket with anyone twice
    assert np.isneginf(scores[1]).all()
    m = CooccurrenceModel(top_k=1).fit(ds)
    assert m.similar(["a"], 3)[0].tolist() == [["c", "", ""]]
    m = CooccurrenceModel(min_count=2, fill_with_popular=True).fit(ds)
    ids, scores = m.similar(["a", "d", "zzz"], 3)
    # popularity = baskets per item: a 3, b 3, c 2, d 2; fill skips the seed and what is listed
    assert ids.tolist() == [["c", "b", "d"], ["a", "b", "c"], ["", "", ""]]
    assert scores[1].tolist() == [0.0, 0.0, 0.0]
    assert scores[0][0] == pytest.approx(2 / 3)


def test_repeated_item_in_a_basket_counts_once():
    m = CooccurrenceModel(similarity="jaccard").fit(_dataset([["a", "b", "a"], ["a", "c"]]))
    ids, scores = m.similar(["a"], 2)
    # n_a = 2 baskets (not 3 rows), ab = 1 -> 1 / (2 + 1 - 1)
    assert ids.tolist() == [["b", "c"]]
    assert scores[0].tolist() == pytest.approx([0.5, 0.5])


def test_cooccurrence_coverage_counts_items_without_partners():
    m = CooccurrenceModel().fit(_dataset(BASKETS, extra_items=["lonely"]))
    assert m.coverage_["catalog_items"] == 5 and m.coverage_["items_with_vector"] == 4
    assert m.coverage_["missing_examples"] == ["lonely"]


def test_cooccurrence_save_uses_sparse_npz(tmp_path):
    m = CooccurrenceModel().fit(_dataset(BASKETS))
    m.save(tmp_path / "m")
    assert (tmp_path / "m" / "similarity.npz").exists()
    back = CooccurrenceModel.load(tmp_path / "m")
    assert (back.similarity_ != m.similarity_).nnz == 0


def test_popularity_weights_events_and_excludes_the_seed():
    baskets = [["p", "q"], ["p", "r"], ["s", "q"]]
    events = ["view", "cart", "purchase", "view", "view", "view"]
    # default weights view 1, cart 2, purchase 3: p = 1 + 3 = 4, q = 2 + 1 = 3, r = 1, s = 1
    m = PopularityModel().fit(_dataset(baskets, events, extra_items=["never"]))
    ids, scores = m.similar(["p", "q", "never", "nope"], 2)
    assert ids.tolist() == [["q", "r"], ["p", "r"], ["p", "q"], ["", ""]]
    assert scores[0].tolist() == [3.0, 1.0]
    assert np.isneginf(scores[3]).all()
    # only items with events are recommended: k beyond them pads
    assert m.similar(["p"], 5)[0].tolist() == [["q", "r", "s", "", ""]]
    m = PopularityModel(event_weights={"view": 0, "purchase": 10, "cart": 1}).fit(_dataset(baskets, events))
    assert m.similar(["s"], 2)[0].tolist() == [["p", "q"]]  # p 10, q 1
    assert m.coverage_["coverage"] == 1.0


def test_baseline_bad_params():
    with pytest.raises(ModelFitError, match="event_weights"):
        PopularityModel(event_weights=[1, 2]).fit(_dataset(BASKETS))
    with pytest.raises(ModelFitError, match="min_count"):
        CooccurrenceModel(min_count=0).fit(_dataset(BASKETS))
    with pytest.raises(ModelFitError, match="fill_with_popular"):
        CooccurrenceModel(fill_with_popular="yes").fit(_dataset(BASKETS))
    with pytest.raises(ModelFitError, match="no sequence"):
        CooccurrenceModel().fit(_dataset([["a"], ["b"]]))
    with pytest.raises(ValueError, match="k must be"):
        CooccurrenceModel().fit(_dataset(BASKETS)).similar(["a"], 0)


def test_sparse_and_dense_block_paths_agree():
    import scipy.sparse as sp

    from recsys.models.baselines import _top_k_similarities

    x = sp.random(40, 200, density=0.08, random_state=1, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    n = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)
    for kind in ("jaccard", "cosine"):
        dense = _top_k_similarities(x, n, kind, min_count=1, top_k=50)
        sparse = _top_k_similarities(x, n, kind, min_count=1, top_k=50, dense_limit=0)
        a = sp.csr_matrix((dense[2], (dense[0], dense[1])), shape=(40, 40)).toarray()
        b = sp.csr_matrix((sparse[2], (sparse[0], sparse[1])), shape=(40, 40)).toarray()
        np.testing.assert_allclose(a, b, rtol=1e-6)
        assert np.allclose(a, a.T) and np.all(np.diag(a) == 0)


def test_refitted_popularity_ranks_the_new_data():
    m = PopularityModel()
    m.fit(_dataset([["a", "b"], ["a", "c"]]))
    assert m.similar(["c"], 1)[0][0, 0] == "a"  # ranking computed and cached
    m.fit(_dataset([["x", "y"], ["y", "w"]]))
    ids, _ = m.similar(["x"], 2)
    assert ids[0].tolist() == ["y", "w"]
