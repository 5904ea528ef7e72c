"""TwoTowerModel: next-item recommendations from recent views, and its evaluation helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.errors import ModelFitError
from recsys.models import make_model
from recsys.models.two_tower import (
    TwoTowerModel,
    evaluate_next_item,
    mean_vector_recommender,
    popularity_recommender,
    session_lists,
)

N_ITEMS = 60
FAST = {
    "embedding_dim": 16,
    "id_dim": 16,
    "brand_dim": 4,
    "category_dim": 4,
    "hidden_units": [32],
    "user_hidden": 32,
    "max_recent": 3,
    "epochs": 8,
    "batch_size": 64,
    "seed": 1,
}


def successor(j: int) -> int:
    """The strong structure: after item j a shopper always views item j+7 (mod N), one 60-item cycle."""
    return (j + 7) % N_ITEMS


def chain_dataset(n_sessions: int, seed: int, length: int = 5, prefix: str = "s") -> Dataset:
    rng = np.random.default_rng(seed)
    catalog = pd.DataFrame(
        {
            "item_id": [f"i{j:02d}" for j in range(N_ITEMS)],
            "title": [f"thing {j}" for j in range(N_ITEMS)],
            "category": [f"C{j % 3} > S{j % 6} > L{j % 12}" for j in range(N_ITEMS)],
            "brand": [f"b{j % 5}" for j in range(N_ITEMS)],
            "gender": "",
            "price": np.arange(N_ITEMS, dtype=float),
            "adult": False,
            "description": "",
            "image_url": "",
        }
    )
    rows = []
    for s in range(n_sessions):
        # skewed starts, so popularity is a real (but wrong) baseline
        j = int(min(rng.geometric(0.08) - 1, N_ITEMS - 1))
        for pos in range(length):
            rows.append((f"{prefix}{s:04d}", "", f"i{j:02d}", pd.Timestamp("2024-01-01"), "view", 1.0, pos))
            j = successor(j)
    inter = pd.DataFrame(
        rows, columns=["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]
    )
    return Dataset("chains", catalog, inter)


@pytest.fixture(scope="module")
def train() -> Dataset:
    return chain_dataset(500, seed=0)


@pytest.fixture(scope="module")
def test_sessions() -> list[list[str]]:
    return session_lists(chain_dataset(150, seed=1, prefix="t"))


@pytest.fixture(scope="module")
def fitted(train: Dataset) -> TwoTowerModel:
    return TwoTowerModel(**FAST).fit(train)


def test_item_vectors_cover_the_catalogue_and_device_is_recorded(fitted, train):
    assert list(fitted.item_ids_) == train.catalog["item_id"].tolist()
    assert fitted.vectors_.dtype == np.float32 and fitted.vectors_.shape == (N_ITEMS, 16)
    np.testing.assert_allclose(np.linalg.norm(fitted.vectors_, axis=1), 1.0, atol=1e-5)
    assert fitted.device_["backend"] and fitted.coverage_["device"] == fitted.device_["device"]
    assert [h["epoch"] for h in fitted.history_] == list(range(1, FAST["epochs"] + 1))
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"]


def test_two_tower_beats_popularity_and_mean_of_recent_items(fitted, train, test_sessions):
    ours = evaluate_next_item(fitted, test_sessions, k=5)
    pop = evaluate_next_item(popularity_recommender(session_lists(train)), test_sessions, k=5)
    mean = evaluate_next_item(mean_vector_recommender(fitted, max_recent=3), test_sessions, k=5)
    assert ours["n_cases"] == len(test_sessions) == pop["n_cases"]
    assert ours["hr@5"] >= 0.9, ours
    assert ours["hr@5"] > pop["hr@5"] + 0.3
    assert ours["ndcg@5"] > pop["ndcg@5"]
    assert ours["hr@5"] >= mean["hr@5"]


def test_recommend_puts_the_successor_first_and_excludes_seen_items(fitted):
    recent = [["i00", "i03"], ["i10"], ["i05", "i38"]]
    ids, scores = fitted.recommend(recent, k=3)
    assert ids.shape == (3, 3) and scores.dtype == np.float32
    assert ids[0, 0] == f"i{successor(3):02d}"
    assert ids[1, 0] == f"i{successor(10):02d}"
    assert ids[2, 0] == f"i{successor(38):02d}"
    for row, seen in zip(ids, recent):
        assert not set(row) & set(seen)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_user_vectors_match_the_keras_user_tower(fitted, train):
    """The NumPy user tower used for serving computes what the trained Keras tower computes."""
    import keras

    trainer = fitted._trainer
    user_model = keras.Model(trainer.inputs, trainer.get_layer("user_l2").output)
    recent = [["i00", "i03", "i24"], ["i10"], ["i05", "i38", "i00", "i03"]]
    n = FAST["max_recent"]
    ctx = np.full((len(recent), n), -1, dtype=np.int64)
    for r, items in enumerate(recent):
        rows = fitted.rows_of(items)[-n:]
        ctx[r, n - len(rows) :] = rows
    x = fitted._inputs(
        fitted._feats, ctx, np.zeros(len(recent), dtype=np.int64), np.zeros(N_ITEMS, np.float32)
    )
    expected = np.asarray(user_model.predict(x, verbose=0))
    np.testing.assert_allclose(fitted.user_vectors(recent), expected, atol=1e-4)


def test_unknown_and_empty_sessions(fitted, train):
    u = fitted.user_vectors([["nope"], [], ["nope", "i07"]])
    assert u.shape == (3, 16) and u.dtype == np.float32
    assert not u[0].any() and not u[1].any()
    np.testing.assert_allclose(u[2], fitted.user_vectors([["i07"]])[0], atol=1e-6)
    ids, scores = fitted.recommend([[]], k=4)
    # no known item: the most popular items
    counts = train.interactions["item_id"].value_counts()
    assert ids[0, 0] in set(counts[counts == counts.max()].index)
    assert np.isfinite(scores).all()


def test_save_load_round_trips_user_vectors_and_recommendations(fitted, tmp_path):
    fitted.save(tmp_path / "tt")
    loaded = TwoTowerModel.load(tmp_path / "tt")
    recent = [["i00", "i03"], ["i10", "i11", "i12", "i13"]]
    np.testing.assert_array_equal(loaded.user_vectors(recent), fitted.user_vectors(recent))
    a, sa = fitted.recommend(recent, 5)
    b, sb = loaded.recommend(recent, 5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(loaded.vectors_, fitted.vectors_)
    assert loaded.history_ == fitted.history_
    ids, _ = loaded.similar(["i00"], 3)
    assert ids.shape == (1, 3)


def test_evaluate_next_item_counts_hits_and_ranks():
    sessions = [["a", "b"], ["c", "d"], ["e"], ["x", "y", "z"]]

    def fixed(recent, k):
        table = {"a": ["b", "q"], "c": ["q", "d"], "y": ["q", "r"]}
        return np.array([table[r[-1]][:k] for r in recent])

    got = evaluate_next_item(fixed, sessions, k=2)
    assert got["n_cases"] == 3  # ["e"] has no next item
    assert got["hr@2"] == pytest.approx(2 / 3)
    assert got["ndcg@2"] == pytest.approx((1.0 + 1 / np.log2(3)) / 3)


def test_session_lists_orders_by_position_and_collapses_repeats():
    inter = pd.DataFrame(
        {"sequence_id": ["s1", "s1", "s1", "s2"], "item_id": ["b", "a", "a", "c"], "position": [1, 0, 2, 0]}
    )
    assert session_lists(inter) == [["a", "b", "a"], ["c"]]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"max_recent": 0}, "max_recent"),
        ({"temperature": 0.0}, "temperature"),
        ({"logq_correction": "yes"}, "logq_correction"),
        ({"hidden_units": [16, -2]}, "hidden_units"),
        ({"batch_size": "64"}, "batch_size"),
    ],
)
def test_bad_parameters_raise_model_fit_error_naming_the_parameter(train, params, name):
    with pytest.raises(ModelFitError, match=name):
        make_model("two_tower", **params).fit(train)


def test_dataset_without_sessions_is_a_clear_error(train):
    single = Dataset("one", train.catalog, train.interactions.groupby("sequence_id").head(1))
    with pytest.raises(ModelFitError, match="two or more"):
        TwoTowerModel(**FAST).fit(single)


def test_device_info_reports_backend_device_and_mixed_precision_only_on_gpu():
    from recsys.models._keras_utils import device_info

    info = device_info()
    assert set(info) >= {"backend", "device", "mixed_precision"}
    assert info["mixed_precision"] == info["device"].startswith("GPU: ")
    assert info["device"] == "CPU" or info["device"].startswith("GPU: ")


def test_mixed_precision_path_trains_and_restores_the_global_policy(train, monkeypatch):
    """The GPU code path (mixed_float16) forced on the CPU: float32 vectors, policy restored."""
    import keras

    from recsys.models import _keras_utils as ku

    gpu_like = {**ku.device_info(), "mixed_precision": True}
    monkeypatch.setattr(ku, "device_info", lambda: gpu_like)
    before = keras.mixed_precision.global_policy().name
    model = TwoTowerModel(**{**FAST, "epochs": 1}).fit(train)
    assert model._trainer.dtype_policy.name == "mixed_float16"
    assert type(model._trainer.optimizer).__name__ == "LossScaleOptimizer"
    assert keras.mixed_precision.global_policy().name == before
    assert model.vectors_.dtype == np.float32 and np.isfinite(model.vectors_).all()
    assert model.device_["mixed_precision"] is True


def test_mean_of_recent_uses_the_query_space_of_a_two_space_model():
    """Prod2Vec "in-out": recent items are looked up by their input (query) vectors, as in Explore."""
    from recsys.models.prod2vec import Prod2Vec

    m = Prod2Vec()
    m.item_ids_ = np.asarray(["a", "b", "c"])
    m.vectors_ = np.asarray([[0, 1], [1, 0], [0, 1]], dtype=np.float32)
    rec = mean_vector_recommender(m, max_recent=2)
    assert rec([["a"]], 1).tolist() == [["c"]]  # one space: a's own vector is closest to c
    m.query_vectors_ = np.asarray([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    rec = mean_vector_recommender(m, max_recent=2)
    assert rec([["a"]], 1).tolist() == [["b"]]  # a predicts b
