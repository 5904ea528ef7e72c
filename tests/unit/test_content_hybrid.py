"""The content model's TF-IDF side (issue 13's hybrid): one dense vector per item whose inner
product is ``a * tfidf_cos + (1 - a) * content_cos``, ``a`` chosen on items held out of the
training interactions."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.schema import Dataset
from recsys.evaluation import split
from recsys.models import make_model
from recsys.models.content import ContentModel
from recsys.models.content.hybrid import BLEND_GRID, TextSide, blend, choose_blend
from recsys.models.tfidf import TEXT_PARAMS, TfidfModel
from tests.unit.test_content import FAST, KINDS, PER_KIND, kind_of, kinds_dataset, view_events

HYBRID = {**FAST, "tfidf_dim": 4096}  # every term of this catalogue kept exactly
TFIDF_DEFAULTS = {k: TfidfModel.param_specs[k].default for k in TEXT_PARAMS}


def test_blend_inner_product_is_the_weighted_sum_of_the_two_cosines():
    rng = np.random.default_rng(0)
    text, content = rng.normal(size=(30, 7)), rng.normal(size=(30, 5))
    text[3] = 0.0  # an item with no text: its TF-IDF part stays zero
    tu = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    cu = content / np.linalg.norm(content, axis=1, keepdims=True)
    for a in (0.0, 0.3, 1.0):
        v = blend(text, content, a)
        np.testing.assert_allclose(v @ v.T, a * (tu @ tu.T) + (1 - a) * (cu @ cu.T), atol=1e-5)


def _partners(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Item 2i and 2i+1 are partners; one side knows the partner, the other is noise."""
    rng = np.random.default_rng(seed)
    knows = rng.normal(size=(n, 16))
    knows[1::2] = knows[0::2] + 0.05 * rng.normal(size=(n // 2, 16))
    noise = rng.normal(size=(n, 16))
    pairs = np.stack([np.arange(0, n, 2), np.arange(1, n, 2)], axis=1)
    return knows, noise, pairs, np.arange(n)


def test_choose_blend_follows_the_side_that_ranks_held_out_items():
    knows, noise, pairs, _ = _partners()
    a_text, table = choose_blend(knows, noise, pairs)
    a_content, table_c = choose_blend(noise, knows, pairs)
    assert a_text == 1.0 and a_content < 0.5
    assert [r["a"] for r in table] == list(BLEND_GRID)
    assert table[-1]["hr"] == 1.0 and table[0]["hr"] < 0.5  # a = 0: the noise side alone
    chosen = next(r for r in table_c if r["a"] == a_content)
    assert chosen["hr"] == 1.0 and table_c[-1]["hr"] < 0.5


def test_text_side_is_the_tfidf_familys_own_vectors_exact_or_projected(data):
    catalog = data.catalog
    exact = TfidfModel().fit(data)
    cos = (exact.matrix_ @ exact.matrix_.T).toarray()
    side, dense = TextSide.fit(catalog, TFIDF_DEFAULTS, 4096, "hash", 0)
    assert side.projection is None
    np.testing.assert_allclose(dense @ dense.T, cos, atol=1e-5)
    # fewer columns than terms: hashed, exact word matches still dominate
    small, hashed = TextSide.fit(catalog, TFIDF_DEFAULTS, 16, "hash", 0)
    assert small.projection == "hash" and hashed.shape == (len(catalog), 16)
    assert np.abs(hashed @ hashed.T - cos).max() > 1e-3  # an approximation, not the exact cosine
    svd, projected = TextSide.fit(catalog, TFIDF_DEFAULTS, 8, "svd", 0)
    assert svd.projection == "svd" and projected.shape == (len(catalog), 8)
    # new rows go through the fitted vocabulary and IDF
    np.testing.assert_allclose(side.transform(catalog), dense, atol=1e-6)
    np.testing.assert_allclose(small.transform(catalog), hashed, atol=1e-6)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return kinds_dataset()


@pytest.fixture(scope="module")
def hybrid(data: Dataset) -> ContentModel:
    return ContentModel(**HYBRID, tfidf_blend=0.3).fit(data)


def test_model_vectors_are_the_blend_of_the_exact_tfidf_and_the_content_vector(hybrid, data):
    model, a = hybrid, 0.3
    assert model.blend_["a"] == a and model.blend_["projection"] == "exact"
    exact = TfidfModel().fit(data)
    width = model.blend_["dim"]
    text_part, content_part = model.vectors_[:, :width], model.vectors_[:, width:]
    # the TF-IDF part is sqrt(a) x the tfidf family's vectors, so it scores a x its cosine
    np.testing.assert_allclose(
        text_part @ text_part.T, a * (exact.matrix_ @ exact.matrix_.T).toarray(), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.norm(content_part, axis=1), np.sqrt(1 - a), atol=1e-5)
    # and the model's own similarity scores are that blend
    ids, scores = model.similar(["k0_0"], 5)
    rows = model.rows_of(ids[0])
    c = content_part / np.sqrt(1 - a)
    r0 = model.rows_of(["k0_0"])[0]
    tf = (exact.matrix_[r0] @ exact.matrix_.T).toarray()[0]
    np.testing.assert_allclose(scores[0], a * tf[rows] + (1 - a) * (c[rows] @ c[r0]), atol=1e-4)
    assert model.coverage_["tfidf_blend"]["a"] == a


def test_save_load_round_trip_keeps_the_blend_and_embeds_new_items(hybrid, data, tmp_path):
    model = hybrid
    model.save(tmp_path / "m")
    loaded = ContentModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.vectors_, model.vectors_)
    assert loaded.blend_ == model.blend_
    np.testing.assert_allclose(loaded.embed(data.catalog), model.vectors_, atol=1e-4)
    new = data.catalog.iloc[[20]].copy()
    new["item_id"], new["title"] = "new_knife", "chef knife steel blade brandnew"
    vec = loaded.embed(new)[0]
    assert vec.shape == (model.vectors_.shape[1],)
    nearest = model.item_ids_[np.argsort(-(model.vectors_ @ vec))[:5]]
    assert set(kind_of(nearest)) == {"k2"}
    # a saved TF-IDF side without its weight is refused, not silently served without it
    (tmp_path / "m" / "content_blend.json").unlink()
    with pytest.raises(Exception, match="content_blend.json"):
        ContentModel.load(tmp_path / "m")


def _split_with_test_only_items() -> tuple[Dataset, Dataset, set[str]]:
    """Training sessions over items 0-6 of each kind; the latest sessions (the test split) are
    the only ones with items 7-9."""
    rng = np.random.default_rng(1)
    base = kinds_dataset()
    sessions = []
    for _ in range(260):
        k = int(rng.integers(len(KINDS)))
        sessions.append([f"k{k}_{j}" for j in rng.choice(7, size=4, replace=False)])
    for k in range(len(KINDS)):
        for j in range(7, PER_KIND):
            sessions.append([f"k{k}_{j}", f"k{(k + 1) % len(KINDS)}_{j}", f"k{k}_{(j + 1) % 7}"])
    ds = Dataset("split", base.catalog, view_events(sessions))
    train, test = split(ds, "time", test_fraction=0.05)
    only_test = set(test.interactions["item_id"]) - set(train.interactions["item_id"])
    return train, test, only_test


@pytest.fixture(scope="module")
def split_fitted() -> tuple[Dataset, set[str], ContentModel]:
    """The split above and ``ContentModel(**HYBRID)`` fitted on its training part, once: the
    blend's and the expansion's choices are both read from this one fit (read-only)."""
    train, _, only_test = _split_with_test_only_items()
    return train, only_test, ContentModel(**HYBRID).fit(train)


def test_blend_weight_is_chosen_on_items_held_out_of_training_never_on_the_test_split(split_fitted):
    train, only_test, model = split_fitted
    assert len(only_test) >= 8  # the test split has items training never saw
    info = model.blend_
    assert info["a"] in BLEND_GRID and len(info["validation"]) == len(BLEND_GRID)
    assert "held out of the training interactions" in info["chosen_on"]
    used = set(model.blend_items_)
    assert used and used <= set(train.interactions["item_id"])
    assert not used & only_test
    # the chosen weight is the validation table's best (hit share, then MRR, then larger a)
    best = max(info["validation"], key=lambda r: (r["hr"], r["mrr"], r["a"]))
    assert info["a"] == best["a"]


def test_without_held_out_items_the_declared_default_is_used(data):
    model = make_model("content", **{**HYBRID, "holdout_share": 0.0}).fit(data)
    assert model.blend_["a"] == 0.5 and "default" in model.blend_["chosen_on"]
    off = make_model("content", **{**FAST, "tfidf_dim": 0}).fit(data)
    assert off.blend_ == {} and "tfidf_blend" not in off.coverage_


def test_catalogue_without_any_text_keeps_the_content_vector_alone():
    ds = kinds_dataset()
    cat = ds.catalog.copy()
    # the words only in the description (FastText reads it; the TF-IDF side reads title, brand
    # and category)
    cat["description"] = cat["title"]
    cat["title"], cat["brand"], cat["category"] = "", "", ""
    model = ContentModel(**HYBRID).fit(Dataset("bare", cat, ds.interactions))
    assert model.blend_["a"] == 0.0 and "no title" in model.blend_["chosen_on"]
    np.testing.assert_allclose(np.linalg.norm(model.vectors_, axis=1), 1.0, atol=1e-5)
    assert model.coverage_["tfidf_blend"]["a"] == 0.0 and getattr(model, "_text_side", None) is None


def test_auto_projection_keeps_the_one_that_ranks_held_out_items_best(data):
    model = ContentModel(**{**FAST, "tfidf_dim": 16, "tfidf_svd_dim": 8}).fit(data)
    tried = model.blend_["projections_tried"]
    assert set(tried) == {"hash", "svd"}
    chosen = tried[model.blend_["projection"]]
    assert (chosen["hr"], chosen["mrr"]) == max((r["hr"], r["mrr"]) for r in tried.values())
    assert model.blend_["dim"] == (16 if model.blend_["projection"] == "hash" else 8)


def test_choose_expansion_looks_seeds_up_by_their_co_purchases_when_they_rank_held_out_items():
    from recsys.models.content.hybrid import EXPANSION_GRID, choose_expansion, expand_queries, neighbour_means

    rng = np.random.default_rng(1)
    n = 200
    unit = rng.normal(size=(n, 16))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    # anchors 0..49 co-purchase item 100 + i; the held-out item 150 + i resembles that partner
    # (another colour of the same line), not the anchor
    anchors = np.arange(50)
    unit[150 + anchors] = unit[100 + anchors] + 0.05 * rng.normal(size=(50, 16))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    co = np.stack([anchors, 100 + anchors], axis=1)
    co = np.concatenate([co, co[:, ::-1]])
    means = neighbour_means(unit, co, np.ones(len(co)))
    assert np.allclose(means[anchors], unit[100 + anchors], atol=1e-5)
    assert not means[60].any()  # no co-purchase: a zero row
    held = np.stack([anchors, 150 + anchors], axis=1)
    b, table = choose_expansion(unit, means, held)
    assert b > 0 and [r["b"] for r in table] == list(EXPANSION_GRID)
    assert table[0]["hr"] < 0.5 and max(r["hr"] for r in table) == 1.0
    q = expand_queries(unit, means, b)
    np.testing.assert_allclose(q[60], (1 - b) * unit[60], atol=1e-6)  # own direction kept
    # when the held-out items resemble the anchors themselves, the own vector wins: b = 0
    unit2 = unit.copy()
    unit2[150 + anchors] = unit[anchors] + 0.05 * rng.normal(size=(50, 16))
    unit2 /= np.linalg.norm(unit2, axis=1, keepdims=True)
    b2, _ = choose_expansion(unit2, neighbour_means(unit2, co, np.ones(len(co))), held)
    assert b2 == 0.0


def test_model_seeds_use_the_chosen_expansion_and_keep_it_after_save_load(split_fitted, tmp_path):
    train, _, chosen = split_fitted
    model = ContentModel(**{**HYBRID, "query_expansion": 0.5}).fit(train)
    assert model.expansion_["b"] == 0.5 and model.query_vectors_ is not None
    assert model.coverage_["query_expansion"]["chosen_on"] == "set by the query_expansion parameter"
    info = chosen.expansion_
    best = min(info["validation"], key=lambda r: (-r["hr"], -r["mrr"], r["b"]))
    assert info["b"] == best["b"] and "held out of the training interactions" in info["chosen_on"]
    assert (chosen.query_vectors_ is None) == (info["b"] == 0)
    off = ContentModel(**{**HYBRID, "query_expansion": 0.0}).fit(train)
    assert off.query_vectors_ is None and "query_expansion" not in off.coverage_
    seeds = train.catalog["item_id"].tolist()[:12]
    model.save(tmp_path / "m")
    back = ContentModel.load(tmp_path / "m")
    np.testing.assert_array_equal(back.similar(seeds, 5)[0], model.similar(seeds, 5)[0])
    assert not np.array_equal(model.similar(seeds, 5)[0], off.similar(seeds, 5)[0])


def test_simulated_cold_items_can_be_the_newest_arrivals():
    from recsys.models.content.pairs import first_seen_rank, newest_items

    train, _, _ = _split_with_test_only_items()
    inter = train.interactions
    ids = train.catalog["item_id"].astype(str).to_numpy()
    first = first_seen_rank(inter, ids)
    seen_at = inter.groupby("item_id")["timestamp"].min()
    newest_by_time = seen_at.sort_values(kind="stable").index[-3:]
    rows = {x: i for i, x in enumerate(ids)}
    cand = np.array(sorted(rows[x] for x in seen_at.index))
    held = newest_items(cand, first, 3 / len(cand))
    assert set(ids[held]) == set(newest_by_time)
    assert first[[rows[x] for x in ids if x not in seen_at.index]].tolist() == [-1.0] * (
        len(ids) - len(seen_at)
    )
    model = ContentModel(**HYBRID, holdout_by="newest").fit(train)
    used = set(model.blend_items_)
    last_seen = seen_at.sort_values(kind="stable").index
    # every held-out item is among the newest tenth of the items with pairs (plus ties)
    assert used and used <= set(last_seen[-max(len(used), len(last_seen) // 10 + 1) :])
