"""ContentModel: one vector per catalogue item from what the catalogue says about it.

The pieces: :mod:`~recsys.models.content.features` (inputs and the fitted
:class:`~recsys.models.content.features.FeatureState`),
:mod:`~recsys.models.content.pairs` (positives, held-out items),
:mod:`~recsys.models.content.title_words` and
:mod:`~recsys.models.content.blocks` (the wide output blocks). The settings and
what was tried to choose them are in ``docs/experiments.md``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recsys.config import Progress, null_progress
from recsys.errors import ModelFitError, StoredDataError
from recsys.models import _keras_utils as ku
from recsys.models.base import EmbeddingModel, normalize_rows, read_fit_log, write_fit_log
from recsys.models.content.blocks import block_names, block_weights, identity_codes, reweight, split_blocks
from recsys.models.content.features import (
    CAT_LEVELS,
    FeatureState,
    build_features,
    image_matrix,
    item_text,
    mean_vectors,
    missing_image,
    text_vectors,
    tokenize,
)
from recsys.models.content.hybrid import (
    PROJECTIONS,
    TextSide,
    blend,
    choose_blend,
    choose_expansion,
    expand_queries,
    neighbour_means,
)
from recsys.models.content.pairs import leaf_sampler, pair_scores, training_pairs
from recsys.models.content.title_words import TITLE_WEIGHTINGS, fit_title_words, title_matrix, title_tokens
from recsys.models.image import BACKBONES, PARAMS
from recsys.models.params import Param

logger = logging.getLogger(__name__)

LOSSES = ("softmax", "triplet")
#: the TF-IDF side's weight when nothing can choose it (no simulated cold items)
DEFAULT_BLEND = 0.5
#: the TF-IDF side's weight of a model trained on a catalogue alone (no co-occurring items):
#: nothing in the data can choose it. ``bench/content_catalogue.py`` (catalogues whose
#: interactions were hidden from the fit, cold validation targets) gave 1.67x the TF-IDF kNN
#: on REES46 and 0.96x on Online Retail at 0.75, the best worst case of the grid (0.5: 1.69x
#: and 0.91x; 1 is the TF-IDF kNN itself)
CATALOGUE_BLEND = 0.75

_POS = {"kind": "int", "low": 1}
_NONNEG = {"kind": "int", "low": 0}


class ContentModel(EmbeddingModel):
    """Content-based item vectors from text, price, brand, category, gender (and images).

    1. **Text**: gensim FastText trained on the catalogue's own titles and descriptions
       (or a local FastText file, ``fasttext_path``; nothing is downloaded), averaged
       over an item's tokens.
    2. **Other features**: log price (standardised; missing -> 0 plus a missing flag),
       price relative to the leaf category, gender one-hot, learned embeddings of the
       brand and of category levels 0, 1 and 2; optionally image features.
    3. **Deep ranking tower** (Keras): dense layers -> L2-normalised vector, trained on
       (anchor, positive) pairs: items that co-occur within ``window`` positions in the
       training sequences; items without interactions take items of their leaf
       category. Negatives come from the batch (``loss="softmax"``: temperature-scaled
       in-batch softmax; ``"triplet"``: semi-hard in-batch triplet loss) plus
       ``hard_negatives`` drawn from the anchor's own leaf category.
    4. **Wide blocks** (``wide_blocks=True``): the deep vector concatenated with the
       leaf and brand identity codes, the price position and tier within the leaf and
       the title words, each unit-length and weighted; the weights are chosen on
       simulated cold items (``holdout_share``, ``holdout_tail``).

    Per epoch a held-out share of positive pairs is scored: ``val_top_k`` (share whose
    positive is in the anchor's top-k among all items) and ``val_avg_precision`` (mean
    of 1 / rank of the positive); both are in ``history_`` and reported through the
    progress callback.

    Parameters
    ----------
    vector_size : int
        FastText dimension (text features); ignored with ``fasttext_path``.
    fasttext_epochs, fasttext_min_count, fasttext_bucket : int
        FastText training settings (the bucket count bounds its memory).
    fasttext_path : str, optional
        A local FastText file (``.bin`` Facebook format, or ``.vec``/``.txt``
        word2vec text format) used instead of training.
    embedding_dim : int
        Size of the deep vector (the whole output with ``wide_blocks=False``).
    hidden_units : list of int
        Sizes of the tower's hidden dense layers.
    brand_dim, category_dim : int
        Sizes of the brand and category-level embeddings.
    loss : {"softmax", "triplet"}
    temperature : float
        Softmax temperature (``loss="softmax"``).
    margin : float
        Triplet margin on cosine similarity (``loss="triplet"``).
    epochs, batch_size : int
    learning_rate, dropout : float
    pairs_per_epoch : int
        Pairs sampled (with replacement) each epoch.
    pair_weight_power : float
        A distinct pair is sampled with weight ``count ** pair_weight_power``.
    window : int
        Co-occurrence window in a sequence (0: the whole sequence).
    category_pairs : int
        Same-leaf positives for each item that has no co-occurrence pair.
    wide_blocks : bool
        Put the feature blocks beside the deep vector (a "wide & deep" output).
    wide_dim : int
        Width of the leaf and brand identity codes (one-hot when the vocabulary fits,
        else random nearly-orthogonal unit vectors).
    price_bands : int
        Wide blocks: ``price_bands`` equal-count price tiers within the leaf, as a
        one-hot block; 0 leaves it out.
    title_dim : int
        Wide blocks: width of the title-words block (one-hot per word when the
        vocabulary fits, else random word codes of that width); 0 leaves it out.
    title_exact_max : int
        Wide blocks: while the title vocabulary has at most this many words the title block is
        one-hot per word whatever ``title_dim`` (exact word matches, as a TF-IDF title kNN
        sees them; random codes of width 128 blur them: +-0.09 cosine between unrelated
        words); 0 always uses ``title_dim``. The block is part of every vector, so a catalogue
        whose items x words pass ``title_words.ONE_HOT_MAX_CELLS`` keeps the codes. On Online Retail's validation split (1,254 title
        words) it lifted cold-target HR@20 from 0.235 to 0.248.
    title_weighting : {"lift", "idf"}
        The title words' weights: learned from the co-occurrence pairs (``"lift"``,
        :func:`~recsys.models.content.title_words.word_lift_weights`) or IDF.
    hard_negatives : int
        Extra negatives per anchor drawn from the anchor's own leaf category.
    holdout_share : float
        Share of the items with pairs (or of the sequences, ``holdout_by="time"``) kept out of
        training as simulated cold items;
        the pairs leading to them choose the block weights
        (:func:`~recsys.models.content.blocks.block_weights`). 0 keeps the learned weights.
    holdout_tail : float
        The held-out items are drawn among items whose interaction count is at most
        this quantile of the counts (1: among all items with pairs).
    holdout_by : {"tail", "time", "newest"}
        How the simulated cold items are carved from the training interactions. ``"tail"``
        (default): a random ``holdout_share`` of the items among the tail (``holdout_tail``),
        losing every pair. ``"time"``: as a time split finds them
        (:func:`~recsys.models.content.pairs.time_holdout`): the latest-starting ``holdout_share``
        of the sequences play the test (without timestamps: each sequence's last item), their
        next-item cases whose target had fewer than 3 earlier interactions are the cold cases,
        previous item -> target, cold seeds included; fewer than 20 such cases fall back to
        ``"tail"``. Its cases look like a test split's (on Online Retail a title kNN finds 24% of
        them, 37% of the test's, 11% of the tail's; 20% have a cold seed, 32% of the test's, 1%
        of the tail's: ``bench/cold_items.py``), but the choices made on them did worse on the
        test split (cold HR@20 0.80x TF-IDF against 0.92x in the same run, docs/MEASUREMENTS.md), so
        ``"tail"`` stays the default. ``"newest"``: the items first seen last, losing every
        pair, their pairs from other held-out items left out (0.79x, docs/MEASUREMENTS.md).
        ``coverage_["holdout_by"]`` says which one a fit used.
    validation_share : float
        Share of distinct pairs held out for per-epoch validation (at most
        ``max_validation_pairs``); 0 disables validation.
    top_k : int
        k of the validation top-k score and of the block-weight choice.
    tfidf_dim : int
        The TF-IDF side (:mod:`~recsys.models.content.hybrid`): the vector is
        ``concat(sqrt(a) * unit(tfidf), sqrt(1 - a) * unit(content))``, whose inner product is
        ``a * tfidf_cos + (1 - a) * content_cos``. The tfidf family's own vectors (its default
        weights) kept exactly while the catalogue has at most ``tfidf_dim`` terms, else
        projected to ``tfidf_dim`` columns (``tfidf_projection``); 0 leaves the side out (the
        content vector alone, as before issue 13's hybrid).
    tfidf_projection : {"auto", "hash", "svd"}
        Signed hashing of the terms (``tfidf_dim`` columns) or a truncated SVD; ``"auto"``
        (default) fits both, the SVD with ``tfidf_svd_dim`` components, and keeps the one
        whose blend ranks the held-out items best (``bench/tfidf_side.py`` measures both
        against the exact TF-IDF kNN: on Online Retail's validation hashing to 1,024 columns
        keeps 0.99x of its cold HR@20, the SVD 0.89x at 256; on REES46 hashing 0.88x, the SVD
        1.26x).
    tfidf_svd_dim : int
        Components of the SVD that ``"auto"`` tries.
    tfidf_blend : float, optional
        ``a``; None (default): chosen on the simulated cold items (the pairs leading to items
        held out of training, from the training interactions only) by
        :func:`~recsys.models.content.hybrid.choose_blend`; with no such pairs (no wide
        blocks, ``holdout_share`` 0, too few interactions) :data:`DEFAULT_BLEND`.
    image_features : bool
        Add image features of items whose ``image_url`` is a local file.
    image_backbone, image_weights_path, image_size
        Passed to :class:`recsys.models.image.ImageFeatureExtractor`.
    seed : int
    workers : int
        gensim threads.

    Fitted attributes
    -----------------
    vectors_ : float32 (n_items, dim), L2-normalised, one row per catalogue item.
    state_ : FeatureState
        What new items are encoded with (also the block widths and weights).
    history_ : list of dict
        Per epoch: ``epoch, loss, val_top_k, val_avg_precision, seconds``.
    block_weights_ : dict
        Block name -> chosen weight (wide towers only; also in ``coverage_``).
    device_ : dict
        :func:`recsys.models._keras_utils.device_info` at fit time; also in ``coverage_``.
    blend_ : dict
        The TF-IDF side: ``a``, how it was chosen (``chosen_on``), the validation table
        (hit share and MRR per ``a``) and the side's terms, projection and width; also in
        ``coverage_["tfidf_blend"]``.
    """

    family: ClassVar[str] = "content"
    #: trains on a catalogue alone (items of one category are its positives)
    needs_interactions: ClassVar[bool] = False
    param_specs: ClassVar[dict[str, Param]] = {
        "vector_size": Param(48, **_POS),
        "fasttext_epochs": Param(5, **_POS),
        "fasttext_min_count": Param(1, **_NONNEG),
        "fasttext_bucket": Param(20000, **_POS),
        "fasttext_path": Param(None, "text", optional=True),
        "embedding_dim": Param(64, **_POS),
        "hidden_units": Param([256], "int_list", low=1),
        "brand_dim": Param(16, **_POS),
        "category_dim": Param(16, **_POS),
        "loss": Param("softmax", "choice", choices=LOSSES),
        "temperature": Param(0.05, "float", low=0, low_open=True),
        "margin": Param(0.2, "float", low=0, low_open=True),
        "epochs": Param(4, **_POS),
        "batch_size": Param(256, **_POS),
        "learning_rate": Param(0.002, "float", low=0, low_open=True),
        "dropout": Param(0.1, "float", low=0, high=1, high_open=True),
        "pairs_per_epoch": Param(40000, **_POS),
        "window": Param(3, **_NONNEG),
        "pair_weight_power": Param(0.5, "float", low=0),
        "category_pairs": Param(4, **_NONNEG),
        "validation_share": Param(0.05, "float", low=0, high=0.5, high_open=True),
        "max_validation_pairs": Param(2000, **_POS),
        "top_k": Param(10, **_POS),
        "wide_blocks": Param(True, "bool"),
        "wide_dim": Param(64, **_POS),
        "hard_negatives": Param(1, **_NONNEG),
        "price_bands": Param(3, **_NONNEG),
        "title_dim": Param(128, **_NONNEG),
        "title_exact_max": Param(2048, **_NONNEG),
        "title_weighting": Param("lift", "choice", choices=TITLE_WEIGHTINGS),
        "holdout_share": Param(0.1, "float", low=0, high=0.5, high_open=True),
        "holdout_tail": Param(0.5, "float", low=0, high=1, low_open=True),
        "holdout_by": Param("tail", "choice", choices=("tail", "time", "newest")),
        "tfidf_dim": Param(1024, **_NONNEG),
        "tfidf_projection": Param("auto", "choice", choices=("auto", *PROJECTIONS)),
        "tfidf_svd_dim": Param(256, **_POS),
        "tfidf_blend": Param(None, "float", low=0, high=1, optional=True),
        "query_expansion": Param(None, "float", low=0, high=1, high_open=True, optional=True),
        "image_features": Param(False, "bool"),
        "image_backbone": Param("MobileNetV3Small", "choice", choices=tuple(BACKBONES)),
        "image_weights_path": Param(None, "text", optional=True),
        "image_size": Param(64, "int", low=PARAMS["image_size"].low),
        "seed": Param(0, **_NONNEG),
        "workers": Param(2, **_POS),
    }
    #: One help line per parameter (the Runs form shows them).
    param_help: ClassVar[dict[str, str]] = {
        "vector_size": "Dimensions of the FastText word vectors of titles (ignored with fasttext_path).",
        "fasttext_epochs": "FastText passes over the catalogue's titles and descriptions.",
        "fasttext_min_count": "Words seen fewer times get no FastText vector.",
        "fasttext_bucket": "FastText's hash buckets for word pieces (bounds its memory).",
        "fasttext_path": "A local FastText .bin/.vec file used instead of training (empty = train; "
        "nothing is downloaded).",
        "embedding_dim": "Size of the deep vector (the whole vector with wide_blocks off).",
        "hidden_units": "Hidden layers of the tower, as a JSON list of sizes, e.g. [256].",
        "brand_dim": "Size of the brand embedding.",
        "category_dim": "Size of each category level's embedding.",
        "loss": "softmax: in-batch softmax; triplet: semi-hard in-batch triplets.",
        "temperature": "Softmax temperature (loss = softmax).",
        "margin": "Triplet margin on cosine similarity (loss = triplet).",
        "epochs": "Passes of pairs_per_epoch pairs each.",
        "batch_size": "Pairs per step; the other items of a batch are the negatives.",
        "learning_rate": "Adam's learning rate.",
        "dropout": "Dropout between the tower's layers (0 = none).",
        "pairs_per_epoch": "(item, positive) pairs sampled each epoch.",
        "window": "Items within this many positions in a session count as a positive pair (0 = the "
        "whole session).",
        "pair_weight_power": "A pair seen n times is sampled with weight n ** this (0 = every pair alike).",
        "category_pairs": "Same-category positives for each item with no co-occurrence pair.",
        "validation_share": "Share of pairs held out to score each epoch (0 = none).",
        "max_validation_pairs": "At most this many held-out pairs per epoch.",
        "top_k": "k of the per-epoch top-k score and of the block-weight choice.",
        "wide_blocks": "Put category, brand, price and title-word blocks beside the deep vector "
        "(wide & deep); their weights chosen on simulated cold items.",
        "wide_dim": "Width of the category and brand identity codes (one-hot when they fit).",
        "price_bands": "Price tiers within the category, as a block (0 = leave it out).",
        "title_dim": "Width of the title-words block (0 = leave it out).",
        "title_exact_max": "Up to this many title words, one column per word (exact matches); "
        "0 = always title_dim.",
        "title_weighting": "Title words weighted by their lift in co-occurring pairs, or by IDF.",
        "hard_negatives": "Extra negatives per item drawn from its own category.",
        "holdout_share": "Share of items held out of training as simulated cold items that choose the "
        "block weights (0 = keep the learned weights).",
        "holdout_tail": "Held-out items drawn among the least seen: this quantile of interaction counts "
        "(1 = any item).",
        "holdout_by": "How cold items are simulated: tail (rare items), time (latest sessions) or newest "
        "(items first seen last).",
        "tfidf_dim": "Columns of the TF-IDF title side blended into the vector (0 = no TF-IDF side).",
        "tfidf_projection": "How the TF-IDF side is cut to tfidf_dim: hash, svd, or auto (the better on "
        "held-out items).",
        "tfidf_svd_dim": "Components of the SVD that auto tries.",
        "tfidf_blend": "Weight of the TF-IDF side, 0 to 1 (empty = chosen on held-out items).",
        "query_expansion": "Mix of a seed's co-purchases into its query, 0 to 1 (empty = chosen on "
        "held-out items; 0 = off).",
        "image_features": "Add image features of items whose image_url is a local file.",
        "image_backbone": "Keras network that reads the images.",
        "image_weights_path": "Local weights file of that network (empty = random weights; nothing "
        "is downloaded).",
        "image_size": "Images are resized to this many pixels square.",
        "seed": "Random seed.",
        "workers": "FastText training threads.",
    }

    # -- parameters ----------------------------------------------------------
    def _check_together(self, p: dict[str, Any]) -> None:
        path = p["fasttext_path"]
        if path is not None and not Path(str(path)).is_file():
            raise ModelFitError(
                f"{self.family}: parameter 'fasttext_path' points to {path}, which is not a file; "
                "give a local FastText .bin/.vec file or leave it empty to train on the catalogue"
            )

    # -- network -------------------------------------------------------------
    def _build_tower(self, p: dict[str, Any], state: FeatureState, dense_dim: int) -> Any:
        keras = ku.import_keras()
        L = keras.layers
        inputs = {"dense": keras.Input((dense_dim,), name="dense")}
        parts = [inputs["dense"]]
        vocabs = [("brand", p["brand_dim"])] + [(f"cat{lv}", p["category_dim"]) for lv in CAT_LEVELS]
        for key, dim in vocabs:
            inputs[key] = keras.Input((), dtype="int32", name=key)
            emb = L.Embedding(len(state.vocab(key)) + 1, dim, name=f"{key}_embedding")(inputs[key])
            parts.append(emb)
        x = L.Concatenate()(parts)
        for i, units in enumerate(p["hidden_units"]):
            x = L.Dense(units, activation="relu", name=f"hidden_{i}")(x)
            if p["dropout"] > 0:
                x = L.Dropout(p["dropout"], seed=p["seed"] + i)(x)
        x = L.Dense(p["embedding_dim"], dtype="float32", name="projection")(x)
        norm = ku.layers()["L2Normalize"]
        if not state.wide:
            out = norm(name="l2")(x)
            return keras.Model(inputs, out, name="content_tower")
        # wide blocks beside the deep vector: leaf category, brand (identity codes) and
        # the price position, each unit-length; learned block weights set their share of
        # the cosine (cos = sum_i w_i cos_i / sum_i w_i)
        inputs["price_pos"] = keras.Input((2,), name="price_pos")
        leaf_key = f"cat{CAT_LEVELS[-1]}"
        leaf = identity_codes(keras, len(state.vocab(leaf_key)) + 1, p["wide_dim"], p["seed"], "wide_leaf")(
            inputs[leaf_key]
        )
        brand = identity_codes(keras, len(state.brand_vocab) + 1, p["wide_dim"], p["seed"] + 1, "wide_brand")(
            inputs["brand"]
        )
        blocks = [
            norm(name="l2_deep")(x),
            norm(name="l2_leaf")(leaf),
            norm(name="l2_brand")(brand),
            norm(name="l2_price")(inputs["price_pos"]),
        ]
        if state.price_bands:
            inputs["price_band"] = keras.Input((int(state.price_bands),), name="price_band")
            blocks.append(norm(name="l2_band")(inputs["price_band"]))
        out = ku.layers()["WeightedConcat"](name="wide_weights")(blocks)
        out = norm(name="l2")(out)
        return keras.Model(inputs, out, name="content_tower")

    def _build_trainer(self, p: dict[str, Any], tower: Any, feats: dict[str, np.ndarray]) -> Any:
        """The training model: anchor, positive and hard-negative towers -> pair logits, compiled."""
        keras = ku.import_keras()
        sides = ["a", "p"] + [f"n{j}" for j in range(p["hard_negatives"])]
        ins = {
            f"{side}_{k}": keras.Input(v.shape[1:], dtype=str(v.dtype), name=f"{side}_{k}")
            for side in sides
            for k, v in feats.items()
        }
        vecs = {side: tower({k: ins[f"{side}_{k}"] for k in feats}) for side in sides}
        columns = vecs["p"]
        if p["hard_negatives"]:
            # columns: the B positives, then each row's hard negatives (row-major)
            negs = keras.ops.stack([vecs[f"n{j}"] for j in range(p["hard_negatives"])], axis=1)
            negs = keras.ops.reshape(negs, (-1, int(tower.output.shape[-1])))
            columns = keras.layers.Concatenate(axis=0)([vecs["p"], negs])
        scale = 1.0 / p["temperature"] if p["loss"] == "softmax" else 1.0
        logits = ku.layers()["PairLogits"](scale, name="pair_logits")(vecs["a"], columns)
        return keras.Model(ins, logits)

    # -- training ------------------------------------------------------------
    def fit(self, dataset: Any, progress: Progress | None = None) -> ContentModel:
        """Fit on a dataset's catalogue (features) and interactions (positive pairs).

        Parameters
        ----------
        dataset : recsys.data.Dataset
        progress : callable, optional
            ``progress(done, total, message)``; one step for the text model, one
            per epoch (with the validation scores in the message), one to embed.

        Raises
        ------
        ModelFitError
            Bad parameters (the message names the parameter) or a catalogue
            with fewer than two items.
        """
        progress = progress or null_progress
        p = self._validate()
        catalog = dataset.catalog.reset_index(drop=True)
        if len(catalog) < 2:
            raise ModelFitError(f"{self.family}: the catalogue needs at least 2 items, got {len(catalog)}")
        t_start = time.perf_counter()
        total = p["epochs"] + 2
        info = ku.device_info()
        self.device_ = dict(info)
        ku.seed_everything(p["seed"])
        rng = np.random.default_rng(p["seed"])

        progress(0, total, "content: text embeddings (FastText)")
        text, words, word_vecs = text_vectors(catalog, p, self.family)
        image = None
        if p["image_features"]:
            image, self.image_report_ = image_matrix(catalog, p, self.family)
        feats, state = build_features(
            catalog, text, None, image, wide=p["wide_blocks"], price_bands=p["price_bands"]
        )
        self.item_ids_ = np.asarray(catalog["item_id"].astype(str).to_numpy(), dtype=str)
        n = len(catalog)
        pairs = training_pairs(dataset, catalog, self.item_ids_, p, state.wide, rng)
        if len(pairs.ab) == 0:
            raise ModelFitError(
                f"{self.family}: no training pairs: no co-occurring items in the interactions, "
                "no two items share a category and no two share a word of their title, brand or category"
            )

        keras = ku.import_keras()
        with ku.precision_scope(info["mixed_precision"]):
            tower = self._build_tower(p, state, feats["dense"].shape[1])
            trainer = self._build_trainer(p, tower, feats)
        loss = (
            ku.in_batch_softmax_loss
            if p["loss"] == "softmax"
            else ku.make_semi_hard_triplet_loss(p["margin"], 1.0)
        )
        trainer.compile(
            optimizer=keras.optimizers.Adam(p["learning_rate"]), loss=loss, jit_compile=ku.jit_compile()
        )

        same_leaf = leaf_sampler(catalog, rng)
        self.history_ = []
        progress(1, total, f"content: training the ranking tower on {info['device']}")
        for epoch in range(p["epochs"]):
            t0 = time.perf_counter()
            pick = rng.choice(len(pairs.ab), size=p["pairs_per_epoch"], p=pairs.weights)
            a_rows, b_rows = pairs.ab[pick, 0], pairs.ab[pick, 1]
            rows = {"a": a_rows, "p": b_rows}
            for j in range(p["hard_negatives"]):
                rows[f"n{j}"] = same_leaf(a_rows)
            x = {f"{side}_{k}": v[r] for side, r in rows.items() for k, v in feats.items()}
            y = np.stack([b_rows, a_rows] + [rows[f"n{j}"] for j in range(p["hard_negatives"])], axis=1)
            hist = trainer.fit(
                x, y.astype(np.int32), batch_size=p["batch_size"], epochs=1, shuffle=False, verbose=0
            )
            record = {"epoch": epoch + 1, "loss": float(hist.history["loss"][-1])}
            if len(pairs.val):
                vecs = self._predict(tower, feats, p["batch_size"] * 8)
                record.update(pair_scores(vecs, pairs.val, p["top_k"]))
            record["seconds"] = round(time.perf_counter() - t0, 3)
            self.history_.append(record)
            msg = f"content: epoch {epoch + 1}/{p['epochs']} loss {record['loss']:.4f}"
            if "val_top_k" in record:
                msg += f" val top-{p['top_k']} {record['val_top_k']:.3f} avg precision {record['val_avg_precision']:.3f}"
            logger.info(msg)
            progress(epoch + 2, total, msg)

        raw = self._predict(tower, feats, p["batch_size"] * 8)
        title_codes = None
        if state.wide:
            raw, title_codes = self._wide_output(p, catalog, tower, raw, state, pairs)
        self.vectors_ = normalize_rows(raw)
        self._fit_text_side(p, catalog, pairs)
        self._fit_query_expansion(p, pairs)
        self._tower = tower
        self.state_ = state
        self._words = words
        self._word_vecs = word_vecs
        self._title_codes = title_codes
        self.train_seconds_ = round(time.perf_counter() - t_start, 3)
        self._build_lookup()
        self._set_coverage(self.item_ids_)
        self.coverage_.update(
            {
                "device": info["device"],
                "backend": info["backend"],
                "mixed_precision": info["mixed_precision"],
                "items_with_cooccurrence": pairs.n_with_pairs,
                "training_pairs": pairs.sources,
            }
        )
        if not pairs.sources["cooccurrence"]:
            self.coverage_.setdefault("notes", []).append(
                "catalogue only: no co-occurring items in the interactions, so the tower learned from "
                f"the catalogue alone ({pairs.sources['category']:,} same-category pairs, "
                f"{pairs.sources['title']:,} title TF-IDF neighbour pairs); "
                f"TF-IDF side weight {self.blend_.get('a', 0.0):.2f} ({self.blend_.get('chosen_on', 'no TF-IDF side')})"
            )
        if state.wide:
            self.coverage_["block_weights"] = self.block_weights_
            self.coverage_["holdout_pairs"] = int(len(pairs.cold_val))
            self.coverage_["holdout_by"] = pairs.held_by
        if self.blend_:
            self.coverage_["tfidf_blend"] = self.blend_
        if self.expansion_:
            self.coverage_["query_expansion"] = self.expansion_
        progress(total, total, f"content: {n} item vectors in {self.train_seconds_:.1f}s")
        return self

    def _fit_text_side(self, p: dict[str, Any], catalog: pd.DataFrame, pairs: Any) -> None:
        """Blend the TF-IDF side into ``vectors_`` (sets ``blend_`` and the side)."""
        from recsys.models.tfidf import TEXT_PARAMS, TfidfModel

        self._text_side, self.blend_ = None, {}
        #: the held-out items whose pairs chose the blend (training items only)
        self.blend_items_ = np.empty(0, dtype=str)
        if not p["tfidf_dim"]:
            return
        tfidf_params = {k: TfidfModel.param_specs[k].default for k in TEXT_PARAMS}
        projections = PROJECTIONS if p["tfidf_projection"] == "auto" else (p["tfidf_projection"],)
        sides = []
        for proj in projections:
            dim = p["tfidf_svd_dim"] if proj == "svd" and len(projections) > 1 else p["tfidf_dim"]
            try:
                side, text = TextSide.fit(catalog, tfidf_params, dim, proj, p["seed"])
            except ModelFitError:  # no title, brand or category text: the content vector alone
                self.blend_ = {"a": 0.0, "chosen_on": "no title, brand or category text"}
                return
            sides.append((side, text))
            if side.projection is None:  # every term kept exactly: nothing to choose
                break
        a, table, tried = p["tfidf_blend"], [], {}
        if a is not None and len(sides) == 1:
            chosen_on = "set by the tfidf_blend parameter"
            side, text = sides[0]
        elif len(pairs.cold_val):
            t0 = time.perf_counter()
            results = []
            for side, text in sides:
                a_s, table_s = choose_blend(text, self.vectors_, pairs.cold_val)
                if p["tfidf_blend"] is not None:  # the weight is set: only the projection is chosen
                    a_s = float(p["tfidf_blend"])
                row = next(r for r in table_s if abs(r["a"] - a_s) < 1e-9) if table_s else {}
                tried[side.projection or "exact"] = row
                results.append(((row.get("hr", 0.0), row.get("mrr", 0.0)), a_s, table_s, side, text))
            _, a, table, side, text = max(results, key=lambda r: r[0])
            self.blend_items_ = self.item_ids_[np.unique(pairs.cold_val[:, 1])]
            chosen_on = (
                f"{len(pairs.cold_val)} pairs to {len(self.blend_items_)} items held out of "
                f"the training interactions, hit share at 20 ({time.perf_counter() - t0:.1f}s)"
            )
        elif not pairs.sources["cooccurrence"]:  # a catalogue alone: no evidence of what goes together
            side, text = sides[0]
            a = CATALOGUE_BLEND if a is None else a
            chosen_on = (
                "catalogue-only default: no interactions to choose it on (measured on catalogues with "
                "their interactions hidden, docs/MEASUREMENTS.md)"
            )
        else:
            side, text = sides[0]
            a = DEFAULT_BLEND if a is None else a
            chosen_on = "default: no held-out items to choose it on"
        self.vectors_ = blend(text, self.vectors_, float(a))
        self._text_side = side
        self.blend_ = {"a": float(a), "chosen_on": chosen_on, **side.describe(), "validation": table}
        if len(tried) > 1:
            self.blend_["projections_tried"] = tried
        logger.info("content: TF-IDF side weight %.2f (%s)", a, chosen_on)

    def _fit_query_expansion(self, p: dict[str, Any], pairs: Any) -> None:
        """Seeds looked up with their co-purchases (sets ``query_vectors_`` and ``expansion_``).

        A seed's query is ``(1 - b) * its vector + b * the mean of its co-purchases' vectors``
        (:func:`~recsys.models.content.hybrid.expand_queries`); ``b`` chosen on the simulated cold
        items as the TF-IDF side's weight is (:func:`~recsys.models.content.hybrid.choose_expansion`),
        the co-purchases then taken from every training interaction. 0 (or no held-out items):
        seeds are looked up by their own vectors.
        """
        self.query_vectors_, self.expansion_ = None, {}
        b, table = p["query_expansion"], []
        if b == 0 or len(pairs.all_co) == 0:
            return
        unit = normalize_rows(self.vectors_)
        if b is not None:
            chosen_on = "set by the query_expansion parameter"
        elif len(pairs.cold_val):
            t0 = time.perf_counter()
            b, table = choose_expansion(
                unit, neighbour_means(unit, pairs.co_ab, pairs.co_weights), pairs.cold_val
            )
            chosen_on = (
                f"{len(pairs.cold_val)} pairs to items held out of the training interactions, "
                f"hit share at 20 ({time.perf_counter() - t0:.1f}s)"
            )
        else:
            return
        self.expansion_ = {"b": float(b), "chosen_on": chosen_on, "validation": table}
        if b > 0:
            means = neighbour_means(unit, pairs.all_co, pairs.all_co_weights)
            self.query_vectors_ = expand_queries(unit, means, float(b))
        logger.info("content: co-purchase weight in seed queries %.2f (%s)", b, chosen_on)

    def _wide_output(
        self,
        p: dict[str, Any],
        catalog: pd.DataFrame,
        tower: Any,
        raw: np.ndarray,
        state: FeatureState,
        pairs: Any,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The tower output with the title-words block added and every block weighted; sets
        the state's block widths and weights and ``block_weights_``."""
        title_codes = None
        if p["title_dim"]:
            vocab, idf, title_codes = fit_title_words(
                catalog,
                p["title_weighting"],
                p["title_dim"],
                p["seed"] + 2,
                pairs.co_ab,
                pairs.co_weights,
                exact_max=p["title_exact_max"],
            )
            if title_codes is not None:
                state.title_vocab, state.title_idf = vocab, idf.tolist()
                raw = np.concatenate(
                    [raw, title_matrix(title_tokens(catalog), vocab, idf, title_codes)], axis=1
                )
        names = block_names(state)
        tower_names = [b for b in names if b != "title"]
        state.block_widths = [int(tower.get_layer(f"l2_{b}").output.shape[-1]) for b in tower_names]
        learned = tower.get_layer("wide_weights").block_weights()
        if title_codes is not None:
            # the title block is fixed (not part of the tower): it starts at the deep block's weight
            state.block_widths.append(int(title_codes.shape[1]))
            learned = [*learned, learned[0]]
        state.learned_block_weights = learned
        cold_val = pairs.cold_val
        state.block_weights = (
            block_weights(split_blocks(raw, state.block_widths), cold_val, p["top_k"], learned)
            if len(cold_val)
            else learned
        )
        logger.info(
            "content: block weights %s (learned in training: %s) from %d pairs to held-out items",
            dict(zip(names, state.block_weights)),
            dict(zip(names, learned)),
            len(cold_val),
        )
        self.block_weights_ = dict(zip(names, state.block_weights))
        return reweight(raw, state), title_codes

    @staticmethod
    def _predict(tower: Any, feats: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
        out = tower.predict(feats, batch_size=batch_size, verbose=0)
        return np.asarray(out, dtype=np.float32)

    # -- new items -----------------------------------------------------------
    def embed(self, catalog: pd.DataFrame) -> np.ndarray:
        """Vectors for catalogue rows (new items included) from the trained tower.

        Words not seen at training time are ignored; brands and categories not
        seen map to the "unknown" embedding. Image features are not recomputed:
        a model trained with ``image_features=True`` embeds new items as if
        their image were missing.

        Returns
        -------
        numpy.ndarray of float32, shape (len(catalog), dim), L2-normalised.
        """
        self._check_fitted()
        tower = self._get_tower()
        state = self.state_
        vecs = mean_vectors(tokenize(item_text(catalog)), self._words, self._word_vecs)
        catalog = catalog.reset_index(drop=True)
        feats, _ = build_features(catalog, vecs, state, missing_image(len(catalog), state))
        raw = self._predict(tower, feats, 2048)
        if state.title_vocab:
            idf = np.asarray(state.title_idf, dtype=np.float32)
            title = title_matrix(title_tokens(catalog), state.title_vocab, idf, self._title_codes)
            raw = np.concatenate([raw, title], axis=1)
        out = normalize_rows(reweight(raw, state))
        side = getattr(self, "_text_side", None)
        if side is not None:
            out = blend(side.transform(catalog), out, self.blend_["a"])
        return out

    def _get_tower(self) -> Any:
        tower = getattr(self, "_tower", None)
        if tower is None:
            p = dict(self.params)  # checked when fitted; a stored run's path params may be gone
            p["hidden_units"] = self.param_specs["hidden_units"].coerce(p["hidden_units"])
            with ku.precision_scope(False):
                tower = self._build_tower(p, self.state_, int(self.state_.dense_dim))
            tower.load_weights(str(self._weights_path))
            self._tower = tower
        return tower

    # -- persistence ---------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        super()._save_state(path)
        write_fit_log(self, path / "content_history.json")
        if hasattr(self, "state_"):
            (path / "content_features.json").write_text(json.dumps(self.state_.to_json()))
            np.save(path / "content_words.npy", np.asarray(self._words, dtype=str), allow_pickle=False)
            np.save(path / "content_word_vectors.npy", self._word_vecs.astype(np.float32), allow_pickle=False)
            if getattr(self, "_title_codes", None) is not None:
                np.save(
                    path / "content_title_codes.npy", self._title_codes.astype(np.float32), allow_pickle=False
                )
            if getattr(self, "_text_side", None) is not None:
                self._text_side.save(path)
                (path / "content_blend.json").write_text(json.dumps(self.blend_))
            tower = getattr(self, "_tower", None)
            if tower is not None:
                tower.save_weights(str(path / "content_tower.weights.h5"))
            elif getattr(self, "_weights_path", None) is not None and Path(self._weights_path).exists():
                shutil.copyfile(self._weights_path, path / "content_tower.weights.h5")

    def _load_state(self, path: Path) -> None:
        super()._load_state(path)
        read_fit_log(self, path / "content_history.json")
        feat_file = path / "content_features.json"
        if feat_file.exists():
            from recsys.stored import read_json_file, read_npy  # a damaged file is named

            self.state_ = FeatureState.from_json(read_json_file(feat_file), str(feat_file))
            if self.state_.wide and self.state_.block_weights:
                self.block_weights_ = dict(zip(block_names(self.state_), self.state_.block_weights))
            self._words = read_npy(path / "content_words.npy").tolist()
            self._word_vecs = read_npy(path / "content_word_vectors.npy")
            codes = path / "content_title_codes.npy"
            self._title_codes = read_npy(codes) if codes.exists() else None
            if self.state_.title_vocab and self._title_codes is None:
                raise StoredDataError(
                    f"{type(self).__name__}: {path} has a title-words block but no content_title_codes.npy; "
                    "the saved model is incomplete: save it again"
                )
            self._text_side = TextSide.load(path)
            blend_file = path / "content_blend.json"
            self.blend_ = read_json_file(blend_file) if blend_file.exists() else {}
            if self._text_side is not None and "a" not in self.blend_:
                raise StoredDataError(
                    f"{type(self).__name__}: {path} has a TF-IDF side but no content_blend.json; "
                    "the saved model is incomplete: save it again"
                )
            weights = path / "content_tower.weights.h5"
            self._weights_path = weights if weights.exists() else None
