"""ContentModel: text + metadata vectors for every catalogue item, cold ones included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.errors import ModelFitError
from recsys.models import make_model
from recsys.models.content import ContentModel, cooccurrence_pairs, tokenize

# Four product kinds; each has its own title words, category, gender and price range.
KINDS = [
    ("Women > Shoes > Running", "running shoe trainer mesh", "women", 60.0),
    ("Men > Shirts > Formal", "formal shirt collar cotton", "men", 40.0),
    ("Home > Kitchen > Knives", "chef knife steel blade", "unisex", 25.0),
    ("Kids > Toys > Blocks", "wooden block toy stack", "kids", 12.0),
]
PER_KIND = 10
COLD_PER_KIND = 3  # the last items of each kind never appear in a session

FAST = {
    "vector_size": 16,
    "fasttext_epochs": 10,
    "embedding_dim": 16,
    "hidden_units": [32],
    "brand_dim": 4,
    "category_dim": 4,
    "epochs": 4,
    "pairs_per_epoch": 3000,
    "batch_size": 64,
    "workers": 1,
    "seed": 3,
}


def kinds_dataset(n_sessions: int = 200, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for k, (cat, words, gender, price) in enumerate(KINDS):
        for j in range(PER_KIND):
            rows.append(
                {
                    "item_id": f"k{k}_{j}",
                    "title": f"{words} edition{j}",
                    "category": cat,
                    "brand": f"brand{k}{j % 2}",
                    "gender": gender,
                    "price": price + j if j != 1 else np.nan,
                    "adult": False,
                    "description": "",
                    "image_url": "",
                }
            )
    catalog = pd.DataFrame(rows)
    events = []
    for s in range(n_sessions):
        k = int(rng.integers(len(KINDS)))
        for pos, j in enumerate(rng.choice(PER_KIND - COLD_PER_KIND, size=4, replace=False)):
            events.append(
                {
                    "sequence_id": f"s{s:04d}",
                    "user_id": "",
                    "item_id": f"k{k}_{j}",
                    "timestamp": pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=10 * s + pos),
                    "event_type": "view",
                    "quantity": 1.0,
                    "position": pos,
                }
            )
    return Dataset("kinds", catalog, pd.DataFrame(events))


@pytest.fixture(scope="module")
def data() -> Dataset:
    return kinds_dataset()


@pytest.fixture(scope="module")
def fitted(data: Dataset) -> tuple[ContentModel, list]:
    calls: list = []
    model = ContentModel(**FAST).fit(data, progress=lambda d, t, m: calls.append((d, t, m)))
    return model, calls


def kind_of(ids: np.ndarray) -> np.ndarray:
    return np.char.partition(np.asarray(ids, dtype=str), "_")[..., 0]


def test_every_catalogue_item_gets_a_unit_vector_including_cold_ones(fitted, data):
    model, _ = fitted
    assert list(model.item_ids_) == data.catalog["item_id"].tolist()
    assert model.vectors_.dtype == np.float32
    assert model.vectors_.shape == (len(data.catalog), FAST["embedding_dim"])
    np.testing.assert_allclose(np.linalg.norm(model.vectors_, axis=1), 1.0, atol=1e-5)
    assert model.coverage_["coverage"] == 1.0
    seen = set(data.interactions["item_id"])
    cold = [i for i in data.catalog["item_id"] if i not in seen]
    assert len(cold) == COLD_PER_KIND * len(KINDS)
    assert model.rows_of(cold).min() >= 0


def test_items_with_same_words_and_category_are_nearest_neighbours(fitted):
    model, _ = fitted
    seeds = model.item_ids_
    ids, scores = model.similar(seeds, 5)
    # the 5 nearest items of every item (cold or not) are of its own kind
    same = kind_of(ids) == kind_of(seeds)[:, None]
    assert same.mean() >= 0.95, same.mean()
    # cold items: their neighbours are of their own kind too, and scores are sorted
    cold_rows = [i for i, s in enumerate(seeds) if int(s.split("_")[1]) >= PER_KIND - COLD_PER_KIND]
    assert same[cold_rows].all()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_history_reports_validation_scores_per_epoch_and_progress(fitted):
    model, calls = fitted
    assert [h["epoch"] for h in model.history_] == list(range(1, FAST["epochs"] + 1))
    for h in model.history_:
        assert 0.0 <= h["val_top_k"] <= 1.0
        assert 0.0 < h["val_avg_precision"] <= 1.0
        assert np.isfinite(h["loss"])
    # co-occurring items are in the same kind of 7 items, so the top-10 score is high
    assert model.history_[-1]["val_top_k"] >= 0.9
    assert calls[-1][0] == calls[-1][1]
    assert any("val top-10" in m for _, _, m in calls)
    assert model.device_["device"] in ("CPU",) or model.device_["device"].startswith("GPU: ")
    assert model.coverage_["device"] == model.device_["device"]


def test_save_load_round_trip_keeps_vectors_history_and_can_embed_new_items(fitted, data, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m")
    loaded = ContentModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.vectors_, model.vectors_)
    np.testing.assert_array_equal(loaded.item_ids_, model.item_ids_)
    assert loaded.history_ == model.history_
    assert loaded.device_ == model.device_
    ids_a, sc_a = model.similar(["k0_0", "k3_9"], 4)
    ids_b, sc_b = loaded.similar(["k0_0", "k3_9"], 4)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_allclose(sc_a, sc_b)
    # the loaded model reproduces the catalogue vectors and embeds a brand-new knife
    np.testing.assert_allclose(loaded.embed(data.catalog), model.vectors_, atol=1e-4)
    new = data.catalog.iloc[[20]].copy()
    new["item_id"] = "new_knife"
    new["title"] = "chef knife steel blade brandnew"
    vec = loaded.embed(new)[0]
    nearest = model.item_ids_[np.argsort(-(model.vectors_ @ vec))[:5]]
    assert set(kind_of(nearest)) == {"k2"}


def test_cooccurrence_pairs_respect_window_and_sequences():
    inter = pd.DataFrame(
        {
            "sequence_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "y", "z", "z", "w"],
            "position": [0, 1, 2, 0, 1],
        }
    )
    row_of = {"x": 0, "y": 1, "z": 2, "w": 3}
    pairs = cooccurrence_pairs(inter, row_of, window=1)
    got = set(map(tuple, pairs[["a", "b"]].to_numpy().tolist()))
    assert got == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}  # no x-z (distance 2), no y-w
    whole = cooccurrence_pairs(inter, row_of, window=0)
    assert (0, 2) in set(map(tuple, whole[["a", "b"]].to_numpy().tolist()))


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize(["Chef's Knife, 20cm!"]) == [["chef", "s", "knife", "20cm"]]


def test_triplet_loss_variant_also_separates_kinds(data):
    model = ContentModel(**{**FAST, "loss": "triplet", "margin": 0.3, "epochs": 3}).fit(data)
    ids, _ = model.similar(model.item_ids_, 3)
    assert (kind_of(ids) == kind_of(model.item_ids_)[:, None]).mean() >= 0.9


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"loss": "hinge"}, "loss"),
        ({"temperature": -1.0}, "temperature"),
        ({"dropout": 1.5}, "dropout"),
        ({"hidden_units": "big"}, "hidden_units"),
        ({"validation_share": 0.9}, "validation_share"),
        ({"fasttext_path": "/nonexistent/model.bin"}, "fasttext_path"),
        ({"epochs": 2.5}, "epochs"),
    ],
)
def test_bad_parameters_raise_model_fit_error_naming_the_parameter(data, params, name):
    with pytest.raises(ModelFitError, match=name):
        make_model("content", **params).fit(data)


def test_unknown_parameter_is_rejected_at_construction():
    with pytest.raises(ModelFitError, match="vector_sise"):
        ContentModel(vector_sise=3)


def test_local_fasttext_file_is_used_instead_of_training(data, tmp_path):
    words = sorted({w for t in tokenize(data.catalog["title"]) for w in t})
    rng = np.random.default_rng(0)
    kind_axis = {w: i % 4 for i, w in enumerate(words)}
    lines = [f"{len(words)} 8"]
    for w in words:
        v = rng.normal(0, 0.01, 8)
        v[kind_axis[w]] += 1.0
        lines.append(w + " " + " ".join(f"{x:.5f}" for x in v))
    path = tmp_path / "vectors.vec"
    path.write_text("\n".join(lines) + "\n")
    model = ContentModel(**{**FAST, "fasttext_path": str(path), "epochs": 1}).fit(data)
    # the text part uses the file's 8-dim vectors
    assert len(model._stats["text_mean"]) == 8
    assert model.vectors_.shape[0] == len(data.catalog)
