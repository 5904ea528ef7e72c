"""ContentModel: text + metadata vectors for every catalogue item, cold ones included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.errors import ModelFitError
from recsys.models import make_model
from recsys.models.content import (
    ContentModel,
    FeatureState,
    build_features,
    cooccurrence_pairs,
    holdout_items,
    tokenize,
)
from recsys.models.content import block_weights as _block_weights
from recsys.models.content import title_matrix as _title_matrix
from recsys.models.content import title_tokens as _title_tokens
from recsys.models.content import title_vocab as _title_vocab
from recsys.models.content import word_codes as _word_codes
from recsys.models.content import word_lift_weights as _word_lift_weights

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
    "wide_dim": 8,
    "seed": 3,
    "tfidf_dim": 0,  # the content vector alone (the TF-IDF side: test_content_hybrid.py)
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
    sessions = []
    for _ in range(n_sessions):
        k = int(rng.integers(len(KINDS)))
        sessions.append([f"k{k}_{j}" for j in rng.choice(PER_KIND - COLD_PER_KIND, size=4, replace=False)])
    return Dataset("kinds", catalog, view_events(sessions))


def view_events(sessions: list[list[str]]) -> pd.DataFrame:
    """Interactions: one view per item of each session, in order, sessions 10 minutes apart."""
    events = [
        {
            "sequence_id": f"s{s:04d}",
            "user_id": "",
            "item_id": item,
            "timestamp": pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=10 * s + pos),
            "event_type": "view",
            "quantity": 1.0,
            "position": pos,
        }
        for s, items in enumerate(sessions)
        for pos, item in enumerate(items)
    ]
    return pd.DataFrame(events)


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
    # deep vector + leaf identity code (one-hot over the vocabulary: 4 leaves, "" and a spare row)
    # + brand code (8 brands: random unit codes of width wide_dim) + price position (2)
    # + price band within the leaf (one-hot over price_bands = 3)
    width = FAST["embedding_dim"] + (len(KINDS) + 2) + FAST["wide_dim"] + 2 + 3
    assert model.vectors_.shape == (len(data.catalog), width)
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
    assert model.block_weights_ and loaded.block_weights_ == model.block_weights_
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


def test_output_is_the_weighted_concatenation_of_unit_blocks(fitted, data):
    """Cosine of two items = weighted mean of the deep, leaf, brand, price and band blocks' cosines."""
    model, _ = fitted
    w = model.block_weights_
    assert set(w) == {"deep", "leaf", "brand", "price", "band"} and w["deep"] > 0
    assert all(v >= 0 for v in w.values())
    assert model.coverage_["block_weights"] == w and model.coverage_["holdout_pairs"] > 0
    widths = model.state_.block_widths
    cuts = np.cumsum([0, *widths])
    v = model.vectors_.astype(np.float64)
    blocks = [v[:, cuts[i] : cuts[i + 1]] for i in range(5)]
    weights = np.array([w["deep"], w["leaf"], w["brand"], w["price"], w["band"]])
    norms = np.stack([np.linalg.norm(b, axis=1) for b in blocks], axis=1)
    # each block's share of the unit vector is its weight's share among the blocks the item has
    # (a block is zero for an unknown brand or, for the band, a missing price: item k*_1)
    present = norms > 1e-6
    assert present[:, [0, 1, 3]].all() and (~present[:, 4]).sum() == len(KINDS)
    shares = weights * present
    expected_rows = np.sqrt(shares / shares.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(norms, expected_rows, atol=1e-4)
    # items of one leaf share the leaf block exactly; items of different leaves are orthogonal there
    leaf = blocks[1]
    rows = data.catalog.index[data.catalog["category"] == KINDS[0][0]].to_numpy()
    other = data.catalog.index[data.catalog["category"] == KINDS[1][0]].to_numpy()
    np.testing.assert_allclose(
        leaf[rows] @ leaf[rows[0]], expected_rows[rows, 1] * expected_rows[rows[0], 1], atol=1e-5
    )
    np.testing.assert_allclose(leaf[other] @ leaf[rows[0]], 0.0, atol=1e-6)


def _priced_catalog(leaf_a: list[float], leaf_b: list[float]) -> pd.DataFrame:
    """Items p0, p1, ... with these prices: first in leaf A > B > C, then in leaf D > E > F."""
    prices = [*leaf_a, *leaf_b]
    return pd.DataFrame(
        {
            "item_id": [f"p{i}" for i in range(len(prices))],
            "title": "x",
            "category": ["A > B > C"] * len(leaf_a) + ["D > E > F"] * len(leaf_b),
            "brand": "",
            "price": prices,
        }
    )


def test_price_block_ranks_prices_within_the_leaf():
    """The price position is the percentile in the leaf: the cheapest and dearest items of a leaf
    are opposite (-1), and an item's price block is nearest to the items next to it in price."""
    catalog = _priced_catalog([10.0, 20.0, 30.0, 40.0, 50.0], [15.0, 1000.0])
    feats, _ = build_features(catalog, np.zeros((7, 2), dtype=np.float32), None, wide=True, price_bands=3)
    pos = feats["price_pos"]
    sims = pos @ pos.T
    assert sims[0, 4] == pytest.approx(-1.0, abs=1e-6)
    assert np.argsort(-sims[2, :5])[:3].tolist()[0] == 2
    assert set(np.argsort(-sims[2, :5])[1:3].tolist()) == {1, 3}
    # the price position is relative to the leaf: 1000 is the dearest of its own leaf
    assert sims[6, 4] == pytest.approx(1.0, abs=1e-6)


def test_price_band_block_puts_items_in_the_same_price_tier_of_their_leaf_together():
    """price_bands=3 cuts each leaf's prices into budget / mid / premium: the one-hot band code
    is shared by items of the same tier, orthogonal across tiers, and zero without a price."""
    catalog = _priced_catalog([10.0, 11.0, 20.0, 21.0, 30.0, 31.0, np.nan], [500.0, 5.0])
    feats, state = build_features(catalog, np.zeros((9, 2), dtype=np.float32), None, wide=True, price_bands=3)
    band = feats["price_band"]
    assert isinstance(state, FeatureState) and state.price_bands == 3 and band.shape == (9, 3)
    assert band[:6].argmax(axis=1).tolist() == [0, 0, 1, 1, 2, 2]
    assert band[6].sum() == 0.0  # missing price: similar to nothing
    # relative to the leaf: 500 is the dearest of its own leaf, 5 the cheapest
    assert band[7].argmax() == 2 and band[8].argmax() == 0
    # price_bands=0 leaves the block out (the four-block tower of earlier versions)
    feats0, state0 = build_features(
        catalog, np.zeros((9, 2), dtype=np.float32), None, wide=True, price_bands=0
    )
    assert "price_band" not in feats0 and state0.price_bands == 0


def test_block_weights_keep_the_blocks_that_rank_held_out_items():
    """Known answer: block 2 (brand) puts each anchor's partner first; block 1 is noise."""
    rng = np.random.default_rng(0)
    n = 200
    partner = np.arange(n) ^ 1  # items 2i and 2i+1 are partners
    deep = rng.normal(size=(n, 8))
    noise = rng.normal(size=(n, 8))
    brand = rng.normal(size=(n // 2, 8))[np.arange(n) // 2]
    price = rng.normal(size=(n, 2))
    unit = [b / np.linalg.norm(b, axis=1, keepdims=True) for b in (deep, noise, brand, price)]
    pairs = np.stack([np.arange(0, n, 2), partner[np.arange(0, n, 2)]], axis=1)
    w = _block_weights(unit, pairs, k=1, learned=[1.0, 1.0, 0.01, 1.0])
    assert w[0] > 0  # the deep block always keeps a share
    assert w[2] > max(w[0], w[1], w[3])
    # with the chosen weights every anchor's partner ranks first (the learned start did not)
    for weights, expect in ((w, 1.0), ([1.0, 1.0, 0.01, 1.0], None)):
        score = sum(wi * (b[pairs[:, 0]] @ b.T) for wi, b in zip(weights, unit))
        score[np.arange(len(pairs)), pairs[:, 0]] = -np.inf
        hit = (score.argmax(axis=1) == pairs[:, 1]).mean()
        assert hit == expect if expect is not None else hit < 0.5


def _partner_blocks(n: int = 200) -> tuple[list[np.ndarray], np.ndarray]:
    """Four unit blocks and (anchor, partner) pairs: block 2 (brand) knows the partners."""
    rng = np.random.default_rng(0)
    partner = np.arange(n) ^ 1
    brand = rng.normal(size=(n // 2, 8))[np.arange(n) // 2]
    raw = (rng.normal(size=(n, 8)), rng.normal(size=(n, 8)), brand, rng.normal(size=(n, 2)))
    unit = [b / np.linalg.norm(b, axis=1, keepdims=True) for b in raw]
    return unit, np.stack([np.arange(0, n, 2), partner[np.arange(0, n, 2)]], axis=1)


def test_block_weights_of_a_large_catalogue_rank_within_a_candidate_pool(monkeypatch):
    """Past ``EXACT_CELLS`` each pair is ranked among its positive and every block's best items
    (bounded memory): with a pool as large as the catalogue the ranks are the exact ones, and a
    small pool still chooses the weights the exact ranking chooses."""
    from recsys.models.content import blocks as content_blocks

    unit, pairs = _partner_blocks()
    learned = [1.0, 1.0, 0.01, 1.0]
    exact = _block_weights(unit, pairs, k=1, learned=learned)
    rng = np.random.default_rng(1)
    weights = rng.uniform(0.1, 4.0, size=(5, len(unit)))
    monkeypatch.setattr(content_blocks, "EXACT_CELLS", 1000)
    for pool in (len(unit[0]), 20):
        monkeypatch.setattr(content_blocks, "POOL", pool)
        sims, pos_col, invalid = content_blocks.pair_block_sims(unit, pairs)
        assert sims[0].shape[1] == 1 + len(unit) * min(pool, len(unit[0]))  # pooled, not every item
        if pool == len(unit[0]):  # every item is in the pool once: the exact ranks
            for w in weights:
                score = sum(wi * s for wi, s in zip(w, sims))
                score[invalid] = -np.inf
                rank = (score >= score[np.arange(len(pairs)), pos_col][:, None]).sum(axis=1)
                full = sum(wi * (b[pairs[:, 0]] @ b.T) for wi, b in zip(w, unit))
                full[np.arange(len(pairs)), pairs[:, 0]] = -np.inf
                want = (full >= full[np.arange(len(pairs)), pairs[:, 1]][:, None]).sum(axis=1)
                assert np.array_equal(rank, want)
        assert _block_weights(unit, pairs, k=1, learned=learned) == exact


def test_title_block_is_one_hot_while_the_vocabulary_fits_title_exact_max(monkeypatch):
    """Exact word matches while affordable: two titles sharing no word are orthogonal in a
    one-hot block; random codes of width ``title_dim`` give them a non-zero cosine."""
    from recsys.models.content import title_words
    from recsys.models.content.title_words import fit_title_words

    words = [f"w{i:02d}" for i in range(40)]
    titles = [f"{words[i]} {words[(i + 1) % 40]}" for i in range(40)]  # every word in two titles
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(40)], "title": titles, "category": "A"})
    no_pairs = np.empty((0, 2), dtype=np.int64)
    for exact_max, width in ((64, 40), (0, 8)):
        vocab, idf, codes = fit_title_words(catalog, "idf", 8, 0, no_pairs, np.empty(0), exact_max=exact_max)
        assert len(vocab) == 40 and codes.shape == (40, width)
        block = _title_matrix(_title_tokens(catalog), vocab, idf, codes)
        far = block[0] @ block[20]  # "w00 w01" and "w20 w21": no shared word
        assert (far == 0.0) == (width == 40)
    # a block too large for memory (items x words) gets the codes of width title_dim
    monkeypatch.setattr(title_words, "ONE_HOT_MAX_CELLS", 40 * 40 - 1)
    _, _, codes = fit_title_words(catalog, "idf", 8, 0, no_pairs, np.empty(0), exact_max=64)
    assert codes.shape == (40, 8)


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
        ({"holdout_share": 0.7}, "holdout_share"),
        ({"hard_negatives": -1}, "hard_negatives"),
        ({"wide_blocks": "yes"}, "wide_blocks"),
        ({"price_bands": -2}, "price_bands"),
        ({"holdout_tail": 1.5}, "holdout_tail"),
        ({"holdout_tail": 0}, "holdout_tail"),
        ({"title_dim": -1}, "title_dim"),
        ({"title_weighting": "tfidf"}, "title_weighting"),
    ],
)
def test_bad_parameters_raise_model_fit_error_naming_the_parameter(data, params, name):
    with pytest.raises(ModelFitError, match=name):
        make_model("content", **params).fit(data)


def test_unknown_parameter_is_rejected_at_construction():
    with pytest.raises(ModelFitError, match="vector_sise"):
        ContentModel(vector_sise=3)


def test_triplet_loss_with_a_local_fasttext_file_separates_kinds(data, tmp_path):
    """One fit checks two options: the local FastText file replaces training (its 8-dim
    vectors are the text part) and the triplet loss variant also separates the kinds."""
    words = sorted({w for t in tokenize(data.catalog["title"]) for w in t})
    rng = np.random.default_rng(0)
    kind_axis = {w: i % 4 for i, w in enumerate(words)}  # arbitrary axes, unrelated to the kinds
    lines = [f"{len(words)} 8"]
    for w in words:
        v = rng.normal(0, 0.01, 8)
        v[kind_axis[w]] += 1.0
        lines.append(w + " " + " ".join(f"{x:.5f}" for x in v))
    path = tmp_path / "vectors.vec"
    path.write_text("\n".join(lines) + "\n")
    params = {**FAST, "fasttext_path": str(path), "loss": "triplet", "margin": 0.3, "epochs": 2}
    model = ContentModel(**{**params, "pairs_per_epoch": 2000}).fit(data)
    # the text part uses the file's 8-dim vectors
    assert len(model.state_.text_mean) == 8
    assert model.vectors_.shape[0] == len(data.catalog)
    ids, _ = model.similar(model.item_ids_, 3)
    assert (kind_of(ids) == kind_of(model.item_ids_)[:, None]).mean() >= 0.9


def test_holdout_items_simulate_cold_items_with_the_less_interacted_ones():
    """holdout_tail=0.5 draws the simulated cold items among the less-interacted half only."""
    counts = np.arange(100)  # item row i has i interactions
    cand = np.arange(1, 100)
    held = holdout_items(cand, counts, share=0.2, tail=0.5, rng=np.random.default_rng(0))
    assert len(held) == 19 and len(set(held.tolist())) == 19
    assert counts[held].max() <= 50
    # tail=1 draws among all candidates: some held-out items are popular ones
    held_all = holdout_items(cand, counts, share=0.5, tail=1.0, rng=np.random.default_rng(0))
    assert len(held_all) == 49 and counts[held_all].max() > 50
    # a tail smaller than the share asked for: every tail item, no more
    held_small = holdout_items(cand, counts, share=0.9, tail=0.1, rng=np.random.default_rng(0))
    assert sorted(held_small.tolist()) == list(range(1, 11))


# -- title words block --------------------------------------------------------------------------
BOOT_TYPES = ("chelsea", "combat")  # two product types in one leaf, shown only by the title
BOOT_COLOURS = ("black", "navy", "tan")
PER_TYPE = 14
COLD_PER_TYPE = 3


def boots_dataset(n_sessions: int = 240, seed: int = 0) -> Dataset:
    """One leaf of boots: shoppers co-view boots of one type (chelsea or combat); brand, colour
    and the adjective are drawn independently of the type; the last items of each type are cold."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind in BOOT_TYPES:
        for j in range(PER_TYPE):
            brand = f"Brand{int(rng.integers(5))}"
            colour = BOOT_COLOURS[int(rng.integers(len(BOOT_COLOURS)))]
            adjective = ("Suede", "Leather")[int(rng.integers(2))]
            rows.append(
                {
                    "item_id": f"{kind}_{j}",
                    "title": f"{brand} Women's {adjective} {kind.title()} Boot, {colour.title()}",
                    "category": "Women > Shoes > Boots",
                    "brand": brand,
                    "gender": "women",
                    "price": float(rng.uniform(60, 120)),
                    "adult": False,
                    "description": "",
                    "image_url": "",
                }
            )
    sessions = []
    for _ in range(n_sessions):
        kind = BOOT_TYPES[int(rng.integers(len(BOOT_TYPES)))]
        sessions.append([f"{kind}_{j}" for j in rng.choice(PER_TYPE - COLD_PER_TYPE, size=3, replace=False)])
    return Dataset("boots", pd.DataFrame(rows), view_events(sessions))


def test_title_tokens_leave_out_the_brand_and_one_letter_tokens():
    catalog = pd.DataFrame({"title": ["Nimbus Women's Chelsea Boot, Navy", "Plain"], "brand": ["Nimbus", ""]})
    assert _title_tokens(catalog) == [["boot", "chelsea", "navy", "women"], ["plain"]]
    vocab, idf = _title_vocab([["a", "b"], ["a", "c"], ["a", "b"], ["d"]])
    assert vocab == ["a", "b"]  # words of one title make no two items alike
    np.testing.assert_allclose(idf, np.log([4 / 3, 4 / 2]), rtol=1e-6)


def test_title_block_puts_items_sharing_rare_title_words_together_across_brands():
    """IDF-weighted bags: two items of one category whose titles share rare words are nearer than
    items of the same category with unrelated titles, whatever their brands."""
    catalog = pd.DataFrame(
        {
            "title": [
                "Arcline Chelsea Boot Black",
                "Korcrest Chelsea Boot Navy",
                "Arcline Hiking Sandal Black",
                "Deltec Hiking Sandal Navy",
                "Deltec Chelsea Boot Tan",
                "Korcrest Canvas Tote Tan",
                "Arcline Canvas Tote Black",
            ],
            "brand": ["Arcline", "Korcrest", "Arcline", "Deltec", "Deltec", "Korcrest", "Arcline"],
        }
    )
    tokens = _title_tokens(catalog)
    vocab, idf = _title_vocab(tokens)
    assert "arcline" not in vocab and "korcrest" not in vocab  # the brand has its own block
    codes = _word_codes(len(vocab), 256, 0)
    bags = _title_matrix(tokens, vocab, idf, codes)
    assert bags.shape == (7, len(vocab)) and bags.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bags, axis=1), 1.0, atol=1e-5)
    sims = bags @ bags.T
    # a chelsea boot of another brand is nearer than a same-brand sandal with the same colour
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert sims[0, 4] > sims[0, 6]
    # the cosine of two bags is that of their IDF-weighted word counts
    w = dict(zip(vocab, idf))
    expect = (w["chelsea"] ** 2 + w["boot"] ** 2) / np.sqrt(
        (w["chelsea"] ** 2 + w["boot"] ** 2 + w["black"] ** 2)
        * (w["chelsea"] ** 2 + w["boot"] ** 2 + w["navy"] ** 2)
    )
    assert sims[0, 1] == pytest.approx(expect, abs=1e-5)
    # one-hot codes when the vocabulary fits; random unit codes of the asked width otherwise
    np.testing.assert_array_equal(_word_codes(3, 8, 0), np.eye(3, dtype=np.float32))
    wide = _word_codes(50, 16, 0)
    assert wide.shape == (50, 16)
    np.testing.assert_allclose(np.linalg.norm(wide, axis=1), 1.0, atol=1e-5)
    # a title without a known word is similar to nothing
    empty = _title_matrix([["zzz"]], vocab, idf, _word_codes(len(vocab), 256, 0))
    assert not empty.any()


def test_lift_weights_keep_the_words_shoppers_choose_by_and_drop_colours():
    """Known answer: co-occurring items share the type word (chelsea/combat) but their colour and
    adjective only at chance: the type words get a weight, colours and adjectives ~0."""
    data = boots_dataset()
    catalog = data.catalog
    row_of = {iid: i for i, iid in enumerate(catalog["item_id"])}
    pairs = cooccurrence_pairs(data.interactions, row_of, window=3)
    tokens = _title_tokens(catalog)
    vocab, idf = _title_vocab(tokens)
    weights = dict(
        zip(
            vocab,
            _word_lift_weights(
                tokens, vocab, idf, catalog, pairs[["a", "b"]].to_numpy(), pairs["count"].to_numpy()
            ),
        )
    )
    # the weight is sqrt(log lift): sharing the type doubles the chance of a co-view in this leaf
    assert weights["chelsea"] ** 2 == pytest.approx(np.log(2.0), abs=0.05)
    assert weights["combat"] ** 2 == pytest.approx(np.log(2.0), abs=0.05)
    for word in ("black", "navy", "tan", "suede", "leather"):  # at chance, up to the catalogue's mix
        assert weights[word] ** 2 < 0.25 * weights["chelsea"] ** 2, (word, weights[word])
    for word in ("boot", "women"):  # every item of the leaf has them: nothing beyond the leaf
        assert weights[word] < 1e-3  # (left out of the block)


@pytest.fixture(scope="module")
def boots_fitted() -> tuple[ContentModel, Dataset]:
    data = boots_dataset()
    return ContentModel(**{**FAST, "holdout_share": 0.2, "holdout_tail": 1.0}).fit(data), data


def test_title_block_places_cold_items_with_their_product_type(boots_fitted):
    model, data = boots_fitted
    assert set(model.block_weights_) == {"deep", "leaf", "brand", "price", "band", "title"}
    vocab = set(model.state_.title_vocab)  # the telling words, not those of every boot
    assert {"chelsea", "combat"} <= vocab and not {"boot", "women"} & vocab
    # the title block is the last one (one-hot words), its share of the unit vector set by its weight
    width = model.state_.block_widths[-1]
    assert width == len(vocab) and model.vectors_.shape[1] == sum(model.state_.block_widths)
    title = model.vectors_[:, -width:]
    assert np.all(np.linalg.norm(title, axis=1) > 0) == (model.block_weights_["title"] > 0)
    # cold items (no interactions) have nearest neighbours of their own product type
    seen = set(data.interactions["item_id"])
    cold = [i for i in model.item_ids_ if i not in seen]
    assert len(cold) == COLD_PER_TYPE * len(BOOT_TYPES)
    ids, _ = model.similar(cold, 5)
    same = np.char.partition(ids.astype(str), "_")[..., 0] == kind_of(np.array(cold))[:, None]
    assert same.mean() >= 0.9, same.mean()


def test_title_block_save_load_round_trip_and_new_items(boots_fitted, tmp_path):
    model, data = boots_fitted
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "content_title_codes.npy").exists()
    loaded = ContentModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.vectors_, model.vectors_)
    assert loaded.block_weights_ == model.block_weights_
    np.testing.assert_allclose(loaded.embed(data.catalog), model.vectors_, atol=1e-4)
    # a new combat boot of an unseen brand lands among the combat boots
    new = data.catalog.iloc[[0]].copy()
    new["item_id"], new["brand"], new["title"] = "new", "Zelmont", "Zelmont Women's Combat Boot, Black"
    vec = loaded.embed(new)[0]
    nearest = model.item_ids_[np.argsort(-(model.vectors_ @ vec))[:5]]
    assert set(kind_of(nearest)) == {"combat"}


def test_title_block_can_be_turned_off(boots_fitted):
    model, data = boots_fitted
    off = ContentModel(**{**FAST, "holdout_share": 0.2, "holdout_tail": 1.0, "title_dim": 0}).fit(data)
    assert set(off.block_weights_) == {"deep", "leaf", "brand", "price", "band"}
    assert off.state_.title_vocab is None
    assert off.vectors_.shape[1] == model.vectors_.shape[1] - model.state_.block_widths[-1]
    # IDF weighting keeps every word of two titles or more (colours and adjectives included)
    idf = ContentModel(**{**FAST, "title_weighting": "idf"}).fit(data)
    assert {"black", "navy", "chelsea", "combat", "suede"} <= set(idf.state_.title_vocab)


def test_a_run_saved_before_the_content_package_still_loads_and_embeds():
    """tests/fixtures/content_run_2026_12 was written by the one-module content model
    (tests/fixtures/make_content_run.py): its stored features load into the typed state,
    and the loaded tower reproduces the stored vectors and ranks as it did."""
    from pathlib import Path

    from recsys.models import get_model_class

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "content_run_2026_12"
    model = get_model_class("content").load(folder)
    assert isinstance(model.state_, FeatureState)
    assert model.state_.wide and model.state_.price_bands == 3 and model.state_.title_vocab
    assert set(model.block_weights_) == {"deep", "leaf", "brand", "price", "band", "title"}
    stored = np.load(folder / "vectors.npy")
    np.testing.assert_allclose(model.embed(kinds_dataset().catalog), stored, atol=1e-5)
    ids, _ = model.similar(["k2_0"], 3)
    assert set(kind_of(ids[0])) == {"k2"}
