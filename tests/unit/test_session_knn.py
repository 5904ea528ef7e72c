"""Session kNN baselines against a plain-Python reference of session-rec's algorithms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.models import make_model
from recsys.models.base import PAD_ID


def random_sessions(n_sessions: int = 400, n_items: int = 60, seed: int = 3) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    for s in range(n_sessions):
        length = int(rng.integers(2, 7))
        centre = int(rng.integers(n_items))
        items = (centre + rng.integers(-4, 5, size=length)) % n_items
        for p, i in enumerate(items):
            rows.append((f"s{s:04d}", "", f"i{i:03d}", t0 + pd.Timedelta(minutes=10 * s + p), "view", 1.0, p))
    inter = pd.DataFrame(
        rows, columns=["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]
    )
    catalog = pd.DataFrame({"item_id": [f"i{i:03d}" for i in range(n_items)]})
    for col in ("title", "category", "brand", "gender", "description", "image_url"):
        catalog[col] = ""
    catalog["price"] = 1.0
    catalog["adult"] = False
    return Dataset("rand", catalog, inter, kind="sessions")


def train_sessions(ds: Dataset) -> list[tuple[int, set[str]]]:
    """(recency = index of the session in time order, distinct items) of sessions of 2+ items."""
    out = []
    df = ds.interactions.sort_values("timestamp")
    for n, (_, g) in enumerate(df.groupby("sequence_id", sort=False)):
        items = set(g["item_id"])
        if len(items) >= 2:
            out.append((n, items))
    return out


def reference_sknn(sessions, query, k, sample, vector=False, idf_weighting=0.0):
    """session-rec's ContextKNN / VMContextKNN (div weighting, div score, idf weighting on
    session counts), in plain Python."""
    qset = set(query)
    cands = [s for s in sessions if s[1] & qset]
    cands.sort(key=lambda s: -s[0])
    if sample:
        cands = cands[:sample]
    length = len(query)
    pos_w = {}
    for p, item in enumerate(query, start=1):
        pos_w[item] = p / length  # the most recent occurrence wins
    scored = []
    for rec, items in cands:
        shared = items & qset
        if vector:
            sim = sum(pos_w[i] for i in shared) / len(qset)
        else:
            sim = len(shared) / math.sqrt(len(qset) * len(items))
        scored.append((sim, rec, items))
    scored.sort(key=lambda x: (-x[0], -x[1]))
    scores: dict[str, float] = {}
    for sim, _, items in scored[:k]:
        decay = 1.0
        if vector:
            for d, item in enumerate(reversed(query), start=1):
                if item in items:
                    decay = 1 / d
                    break
        for item in items:
            if item not in qset:
                idf = math.log(len(sessions) / sum(item in other for _, other in sessions))
                scores[item] = scores.get(item, 0.0) + sim * (1 + idf_weighting * idf) * decay
    # equal scores (to float precision) are ordered by item id, the declared secondary key
    return sorted(scores.items(), key=lambda kv: (-round(kv[1], 5), kv[0]))


@pytest.fixture(scope="module")
def data():
    return random_sessions()


QUERIES = [["i010"], ["i010", "i012", "i009"], ["i030", "i031", "i030", "i033", "i040"], ["i001", "i059"]]


@pytest.mark.parametrize("family,vector", [("sknn", False), ("vsknn", True)])
def test_session_knn_matches_the_reference(data, family, vector):
    model = make_model(family, k=15, sample_size=40, batch_size=2).fit(data)
    ids, scores = model.recommend(QUERIES, 10)
    sessions = train_sessions(data)
    for q, row_ids, row_s in zip(QUERIES, ids, scores):
        ref = reference_sknn(sessions, q, 15, 40, vector=vector)[:10]
        got = [(i, float(s)) for i, s in zip(row_ids, row_s) if i != PAD_ID]
        assert [i for i, _ in got] == [i for i, _ in ref], q
        np.testing.assert_allclose([s for _, s in got], [s for _, s in ref], rtol=1e-5)


def test_vsknn_idf_weighting_matches_the_reference(data):
    """Rare items a neighbour shares weigh more: the lists change, and match session-rec's rule."""
    plain = make_model("vsknn", k=15, sample_size=40).fit(data)
    model = make_model("vsknn", k=15, sample_size=40, idf_weighting=5.0).fit(data)
    ids, scores = model.recommend(QUERIES, 10)
    sessions = train_sessions(data)
    for q, row_ids, row_s in zip(QUERIES, ids, scores):
        ref = reference_sknn(sessions, q, 15, 40, vector=True, idf_weighting=5.0)[:10]
        got = [(i, float(s)) for i, s in zip(row_ids, row_s) if i != PAD_ID]
        assert [i for i, _ in got] == [i for i, _ in ref], q
        np.testing.assert_allclose([s for _, s in got], [s for _, s in ref], rtol=1e-5)
    assert not np.allclose(plain.recommend(QUERIES, 10)[1], scores), "idf weighting changes the scores"


def test_item_knn_matches_the_shrunk_cosine(data):
    model = make_model("item_knn", lmbd=20.0, alpha=0.5).fit(data)
    sessions = [items for _, items in train_sessions(data)]
    support = {}
    for items in sessions:
        for i in items:
            support[i] = support.get(i, 0) + 1
    seed = "i020"
    ref = {}
    for items in sessions:
        if seed in items:
            for j in items - {seed}:
                ref[j] = ref.get(j, 0) + 1
    ref = {j: c / math.sqrt((support[seed] + 20) * (support[j] + 20)) for j, c in ref.items()}
    ref_sorted = sorted(ref.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    ids, scores = model.similar([seed], 8)
    assert list(ids[0]) == [i for i, _ in ref_sorted]
    np.testing.assert_allclose(scores[0], [s for _, s in ref_sorted], rtol=1e-5)
    # recent views: answered from the last known item, unknown ids ignored
    rec_ids, _ = model.recommend([["i001", seed, "unknown"]], 8, exclude_seen=False)
    assert list(rec_ids[0]) == list(ids[0])
    rec_ids, _ = model.recommend([["i021", seed]], 8, exclude_seen=True)
    assert "i021" not in rec_ids[0] and seed not in rec_ids[0]


@pytest.mark.parametrize("family", ["sknn", "vsknn", "item_knn"])
def test_exclude_seen_switch(data, family):
    model = make_model(family).fit(data)
    session = ["i010", "i011", "i012"]
    shown, _ = model.recommend([session], 20, exclude_seen=True)
    assert not set(shown[0]) & set(session)
    again, _ = model.recommend([session], 20, exclude_seen=False)
    assert set(again[0]) & set(session[:-1]), "repeat views can be recommended when exclude_seen is off"


def test_vsknn_weighs_the_most_recent_item_more(data):
    """The same items in two orders: vsknn follows the last one, sknn (a set) does not care."""
    a, b = ["i005", "i040"], ["i040", "i005"]
    sk = make_model("sknn").fit(data)
    ids_s, _ = sk.recommend([a, b], 5)
    assert list(ids_s[0]) == list(ids_s[1])
    vs = make_model("vsknn").fit(data)
    ids_v, _ = vs.recommend([a, b], 5)
    near = lambda row, c: np.mean([abs(int(i[1:]) - c) <= 6 for i in row if i])  # noqa: E731
    assert near(ids_v[0], 40) > near(ids_v[0], 5)
    assert near(ids_v[1], 5) > near(ids_v[1], 40)


def test_unknown_session_gets_nothing(data):
    model = make_model("vsknn").fit(data)
    ids, scores = model.recommend([["nope"], []], 4)
    assert (ids == PAD_ID).all() and np.isneginf(scores).all()
