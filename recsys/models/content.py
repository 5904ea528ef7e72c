"""Content-based item vectors: the deep ranking recipe published by Jewel ML.

Every catalogue item gets a vector from what the catalogue says about it, so new
and long-tail items (no interactions, where Prod2Vec has nothing) are covered:

1. **Text**: gensim FastText trained on the catalogue's own titles and
   descriptions (or a local FastText file, ``fasttext_path``; nothing is
   downloaded), averaged over an item's tokens.
2. **Other features**: log price (standardised; missing -> 0 plus a missing
   flag), gender one-hot, and learned embeddings of the brand and of category
   levels 0, 1 and 2; optionally image features (:mod:`recsys.models.image`).
3. **Deep ranking tower** (Keras): dense layers -> L2-normalised vector,
   trained on pairs (anchor, positive) where positives are items that co-occur
   within ``window`` positions in the training sequences; items without
   interactions take an item of the same leaf category as positive. Negatives
   come from the batch: ``loss="softmax"`` (default) is the in-batch softmax
   (every other positive in the batch is a negative, temperature-scaled);
   ``loss="triplet"`` is the triplet loss with semi-hard in-batch negatives
   (the most similar negative that is still less similar than the positive).
   On the demo data the softmax loss gives the better cold-item hit rate
   (see bench/deep.py), hence the default. ``hard_negatives`` adds negatives
   drawn from the anchor's own leaf category (within-category ranking).
4. **Wide blocks** (``wide_blocks=True``): the output concatenates the deep
   vector with the leaf category and brand (fixed identity codes), the price
   position within the leaf and the price tier (band) within the leaf, each
   unit-length and weighted. The weights are chosen on simulated cold items: a
   share of the less-interacted items (``holdout_share``, ``holdout_tail``) is
   kept out of training and the weights that rank the pairs leading to them best
   are kept. Within a category the deep vector, driven by near-unique title
   words, scatters items that a shopper treats alike; the blocks put the same
   leaf, price tier and brand first. On the demo data as it was generated before
   shoppers had a wished product type and budget (seed 1, used to choose the
   settings), cold-item HR@10 went from ~0.18 (four blocks, popular items as
   simulated cold items) to ~0.20 with the tier block and long-tail simulated
   cold items; a ranker that read that demo's ground-truth leaf, tier and brand
   reached ~0.22-0.23 (bench/deep.py, ``structure_oracle``).
5. **Title words** (``title_dim``, a sixth wide block): the words of the title as a
   weighted bag, each word weighted by how much more often than chance (given the leaf)
   two co-occurring items share it (``title_weighting="lift"``), learned from the training
   pairs; it picks out the words shoppers choose by (the product type, e.g. "chelsea
   boot", which the category tree does not show) and drops colours and adjectives. Its
   weight is chosen with the others on the simulated cold items. On the demo data with
   wished product types and budgets (seed 1, time split, cold HR@10): ~0.30 without the
   block, ~0.32-0.36 with IDF-weighted words, ~0.385-0.39 with lift-weighted words (three
   training seeds).

Per epoch a held-out share of positive pairs is scored: ``val_top_k`` (share of
held-out pairs whose positive is in the anchor's top-k among all items) and
``val_avg_precision`` (mean of 1 / rank of the positive: the average precision
with one relevant item). Both are in ``history_`` and reported through the
progress callback.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recsys.config import Progress, null_progress
from recsys.data.schema import GENDERS, category_level, interaction_counts
from recsys.errors import ModelFitError, StoredDataError
from recsys.models import _keras_utils as ku
from recsys.models.base import EmbeddingModel, normalize_rows

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"[a-z0-9]+")
_CAT_LEVELS = (0, 1, 2)
_LOSSES = ("softmax", "triplet")
_PRICE_QUANTILES = 21
_BLOCKS = ("deep", "leaf", "brand", "price", "band", "title")
_TITLE_WEIGHTINGS = ("lift", "idf")
_LIFT_PRIOR = 1.0
_MIN_WORD_WEIGHT = 1e-3
_WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def tokenize(texts: pd.Series | list[str]) -> list[list[str]]:
    """Lower-case alphanumeric tokens of each text."""
    return [_TOKEN.findall(str(t).lower()) for t in texts]


def _vocab_index(values: pd.Series) -> tuple[list[str], np.ndarray]:
    """Vocabulary (index 0 = unknown/empty) and the int32 index of each value."""
    values = values.fillna("").astype(str)
    vocab = [""] + sorted(set(values) - {""})
    lookup = {v: i for i, v in enumerate(vocab)}
    return vocab, values.map(lookup).to_numpy(dtype=np.int32)


def _lookup(values: pd.Series, vocab: list[str]) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(vocab)}
    return values.fillna("").astype(str).map(lambda v: lookup.get(v, 0)).to_numpy(dtype=np.int32)


def cooccurrence_pairs(interactions: pd.DataFrame, row_of: dict[str, int], window: int) -> pd.DataFrame:
    """Unique (a, b) item-row pairs that occur within ``window`` positions of each other.

    Parameters
    ----------
    interactions : pandas.DataFrame
        With ``sequence_id``, ``item_id`` and ``position``.
    row_of : dict
        item id -> catalogue row.
    window : int
        Maximum distance in a sequence; 0 means the whole sequence (baskets).

    Returns
    -------
    pandas.DataFrame
        Columns ``a``, ``b`` (int64 rows, both directions, a != b) and ``count``.
    """
    if interactions.empty:
        return pd.DataFrame({"a": [], "b": [], "count": []}, dtype=np.int64)
    df = interactions.sort_values(["sequence_id", "position"], kind="stable")
    items = df["item_id"].astype(str).map(row_of).fillna(-1).to_numpy(dtype=np.int64)
    seq = pd.factorize(df["sequence_id"])[0]
    keep = items >= 0
    items, seq = items[keep], seq[keep]
    if window <= 0:
        window = int(np.bincount(seq).max()) if len(seq) else 1
    parts = []
    for d in range(1, window + 1):
        if d >= len(items):
            break
        same = seq[d:] == seq[:-d]
        a, b = items[:-d][same], items[d:][same]
        diff = a != b
        parts.append(np.stack([a[diff], b[diff]], axis=1))
    if not parts:
        return pd.DataFrame({"a": [], "b": [], "count": []}, dtype=np.int64)
    ab = np.concatenate(parts)
    ab = np.concatenate([ab, ab[:, ::-1]])
    pairs = pd.DataFrame(ab, columns=["a", "b"])
    return pairs.groupby(["a", "b"], sort=True).size().rename("count").reset_index()


def holdout_items(
    candidates: np.ndarray, item_counts: np.ndarray, share: float, tail: float, rng: np.random.Generator
) -> np.ndarray:
    """Items to keep out of training as simulated cold items.

    Parameters
    ----------
    candidates : numpy.ndarray of int
        Item rows that have co-occurrence pairs.
    item_counts : numpy.ndarray of int
        Interactions per item row (all rows).
    share : float
        ``share x len(candidates)`` items are drawn (at least one).
    tail : float
        Only candidates whose count is at most this quantile of the candidates' counts are
        drawn (cold items are long-tail items); 1 draws among all candidates.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int
        Distinct item rows (fewer than asked when the tail is smaller).
    """
    n_held = max(1, int(len(candidates) * share))
    if tail < 1.0 and len(candidates):
        counts = item_counts[candidates]
        candidates = candidates[counts <= np.quantile(counts, tail)]
    return rng.choice(candidates, size=min(n_held, len(candidates)), replace=False)


def _leaf_blocks(catalog: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items grouped by leaf category: ``(leaf, order, starts, sizes)``.

    ``order`` lists item rows leaf by leaf; item ``i``'s leaf occupies
    ``order[starts[i] : starts[i] + sizes[i]]``.
    """
    leaf = (
        catalog["category"].fillna("").astype(str).to_numpy()
        if "category" in catalog
        else np.full(len(catalog), "")
    )
    codes, _ = pd.factorize(leaf)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], codes)
    sizes = np.bincount(codes)[codes]
    return leaf, order, starts, sizes


class ContentModel(EmbeddingModel):
    """Content-based item vectors from text, price, brand, category, gender (and images).

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
        Size of the deep vector: the output vector with ``wide_blocks=False``; with
        wide blocks the output also carries the leaf code, the brand code (each at
        most ``wide_dim`` wide) and the 2-d price position.
    hidden_units : list of int
        Sizes of the tower's hidden dense layers.
    brand_dim, category_dim : int
        Sizes of the brand and category-level embeddings.
    loss : {"softmax", "triplet"}
        In-batch softmax or triplet loss with semi-hard in-batch negatives.
    temperature : float
        Softmax temperature (``loss="softmax"``).
    margin : float
        Triplet margin on cosine similarity (``loss="triplet"``).
    epochs, batch_size : int
    learning_rate, dropout : float
    pairs_per_epoch : int
        Pairs sampled (with replacement) each epoch.
    pair_weight_power : float
        A distinct pair is sampled with weight ``count ** pair_weight_power``
        (0.5: square root of its co-occurrence count; 0: every pair alike).
    window : int
        Co-occurrence window in a sequence (0: the whole sequence).
    category_pairs : int
        Positives drawn from the same leaf category for each item that has no
        co-occurrence pair.
    wide_blocks : bool
        Put three feature blocks beside the deep vector (a "wide & deep" output): the
        leaf category and the brand as fixed identity codes, and the price position
        within the leaf (its percentile among the leaf's catalogue prices, on a half
        circle). Each block is unit-length, so the cosine of two items is the weighted
        mean of the blocks' cosines. The weights are learned in training, then chosen
        on simulated cold items (``holdout_share``).
    wide_dim : int
        Width of the identity codes (one-hot when the vocabulary fits, else random
        nearly-orthogonal unit vectors).
    price_bands : int
        With wide blocks: a fifth block, the item's price tier within its leaf category
        (``price_bands`` equal-count tiers of the leaf's catalogue prices, e.g. budget / mid
        / premium for 3) as a one-hot code; 0 leaves it out. Shoppers compare items within
        a tier, which the continuous price position blurs at the tier edges.
    title_dim : int
        With wide blocks: a sixth block, the words of the title as a sparse weighted bag (the
        words of the item's own brand, one-letter tokens and words of a single title left
        out), one-hot per word when the vocabulary has at most ``title_dim`` words, else
        random nearly-orthogonal word codes of that width. Items whose titles share telling
        words (the product type, e.g. "chelsea boot", which the category tree does not show)
        are near each other. 0 leaves it out. 128 (the default) scored as well as 256 and
        512 on demo seed 1 (cold HR@10 0.39) with a smaller output vector.
    title_weighting : {"lift", "idf"}
        The title words' weights. ``"lift"``: learned from the training co-occurrence pairs,
        how much more often than chance (given the leaf category) two co-occurring items share
        the word (``sqrt(log lift)``, words at or below chance left out), so the words that
        drive shoppers' choices (the product type) count and colours or adjectives do not.
        ``"idf"``: inverse document frequency among the titles (rare words count more).
    hard_negatives : int
        Extra negatives per anchor drawn from the anchor's own leaf category (beside
        the in-batch ones), so the tower learns to rank within a category.
    holdout_share : float
        Share of the items with co-occurrence pairs kept out of training (they only get
        the same-category fallback, as cold items do); the pairs that lead to them
        choose the block weights: coordinate ascent over a grid maximising their top-k
        hit share among all items. 0 keeps the weights learned in training.
    holdout_tail : float
        The held-out items are drawn among the items whose interaction count is at most
        this quantile of the counts (0.5: the less-interacted half), as real cold items
        are long-tail items; 1 draws among all items with pairs. Each held-out item
        counts the same in the weight choice.
    validation_share : float
        Share of distinct co-occurrence pairs held out for per-epoch validation
        (at most ``max_validation_pairs``); 0 disables validation.
    top_k : int
        k of the validation top-k score.
    image_features : bool
        Add image features of items whose ``image_url`` is a local file.
    image_backbone, image_weights_path, image_size
        Passed to :class:`recsys.models.image.ImageFeatureExtractor`.
    seed : int
    workers : int
        gensim threads.

    Fitted attributes
    -----------------
    vectors_ : float32 (n_items, embedding_dim), L2-normalised, one row per catalogue item.
    history_ : list of dict
        Per epoch: ``epoch, loss, val_top_k, val_avg_precision, seconds``.
    block_weights_ : dict
        ``{"deep", "leaf", "brand", "price", "band", "title"} -> weight`` of the output
        blocks (wide towers only; also in ``coverage_``).
    device_ : dict
        :func:`recsys.models._keras_utils.device_info` at fit time: ``{"backend", "device"
        ("CPU" or "GPU: <name>"), "mixed_precision"}``; also in ``coverage_``.
    """

    family: ClassVar[str] = "content"
    #: trains on a catalogue alone (items of one category are its positives)
    needs_interactions: ClassVar[bool] = False
    param_choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "loss": _LOSSES,
        "title_weighting": _TITLE_WEIGHTINGS,
    }
    default_params: ClassVar[dict[str, Any]] = {
        "vector_size": 48,
        "fasttext_epochs": 5,
        "fasttext_min_count": 1,
        "fasttext_bucket": 20000,
        "fasttext_path": None,
        "embedding_dim": 64,
        "hidden_units": [256],
        "brand_dim": 16,
        "category_dim": 16,
        "loss": "softmax",
        "temperature": 0.05,
        "margin": 0.2,
        "epochs": 4,
        "batch_size": 256,
        "learning_rate": 0.002,
        "dropout": 0.1,
        "pairs_per_epoch": 40000,
        "window": 3,
        "pair_weight_power": 0.5,
        "category_pairs": 4,
        "validation_share": 0.05,
        "max_validation_pairs": 2000,
        "top_k": 10,
        "wide_blocks": True,
        "wide_dim": 64,
        "hard_negatives": 1,
        "price_bands": 3,
        "title_dim": 128,
        "title_weighting": "lift",
        "holdout_share": 0.1,
        "holdout_tail": 0.5,
        "image_features": False,
        "image_backbone": "MobileNetV3Small",
        "image_weights_path": None,
        "image_size": 64,
        "seed": 0,
        "workers": 2,
    }

    # -- parameters ----------------------------------------------------------
    def _validate(self) -> dict[str, Any]:
        p = dict(self.params)
        name = type(self).__name__
        for key in (
            "vector_size",
            "fasttext_epochs",
            "fasttext_bucket",
            "embedding_dim",
            "brand_dim",
            "category_dim",
            "epochs",
            "batch_size",
            "pairs_per_epoch",
            "top_k",
            "image_size",
            "workers",
            "max_validation_pairs",
            "wide_dim",
        ):
            p[key] = ku.check_positive_int(name, key, p[key])
        p["wide_blocks"] = ku.check_bool(name, "wide_blocks", p["wide_blocks"])
        for key in (
            "fasttext_min_count",
            "window",
            "category_pairs",
            "seed",
            "hard_negatives",
            "price_bands",
            "title_dim",
        ):
            p[key] = ku.check_positive_int(name, key, p[key], minimum=0)
        for key in ("temperature", "margin", "learning_rate"):
            p[key] = ku.check_positive_float(name, key, p[key])
        p["dropout"] = ku.check_positive_float(name, "dropout", p["dropout"], allow_zero=True)
        p["pair_weight_power"] = ku.check_positive_float(
            name, "pair_weight_power", p["pair_weight_power"], allow_zero=True
        )
        if p["dropout"] >= 1:
            raise ModelFitError(f"{name}: parameter 'dropout' must be in [0, 1), got {p['dropout']}")
        hs = ku.check_positive_float(name, "holdout_share", p["holdout_share"], allow_zero=True)
        if hs >= 0.5:
            raise ModelFitError(f"{name}: parameter 'holdout_share' must be in [0, 0.5), got {hs}")
        p["holdout_share"] = hs
        tail = ku.check_positive_float(name, "holdout_tail", p["holdout_tail"])
        if tail > 1:
            raise ModelFitError(f"{name}: parameter 'holdout_tail' must be in (0, 1], got {tail}")
        p["holdout_tail"] = tail
        share = ku.check_positive_float(name, "validation_share", p["validation_share"], allow_zero=True)
        if share >= 0.5:
            raise ModelFitError(f"{name}: parameter 'validation_share' must be in [0, 0.5), got {share}")
        p["validation_share"] = share
        if p["title_weighting"] not in _TITLE_WEIGHTINGS:
            raise ModelFitError(
                f"{name}: parameter 'title_weighting' must be one of {', '.join(_TITLE_WEIGHTINGS)}, "
                f"got {p['title_weighting']!r}"
            )
        if p["loss"] not in _LOSSES:
            raise ModelFitError(
                f"{name}: parameter 'loss' must be one of {', '.join(_LOSSES)}, got {p['loss']!r}"
            )
        p["hidden_units"] = ku.check_hidden_units(name, p["hidden_units"])
        path = p["fasttext_path"]
        if path is not None and not Path(str(path)).is_file():
            raise ModelFitError(
                f"{name}: parameter 'fasttext_path' points to {path}, which is not a file; "
                "give a local FastText .bin/.vec file or leave it empty to train on the catalogue"
            )
        return p

    # -- features ------------------------------------------------------------
    def _text_vectors(
        self, catalog: pd.DataFrame, p: dict[str, Any]
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Mean word vector per item, plus the word vocabulary and its vectors (for new items)."""
        text = catalog["title"].fillna("").astype(str)
        if "description" in catalog:
            text = text + " " + catalog["description"].fillna("").astype(str)
        tokens = tokenize(text)
        if p["fasttext_path"]:
            path = str(p["fasttext_path"])
            try:
                if path.endswith(".bin"):
                    from gensim.models.fasttext import load_facebook_vectors

                    wv = load_facebook_vectors(path)
                else:
                    from gensim.models import KeyedVectors

                    wv = KeyedVectors.load_word2vec_format(path, binary=False)
            except Exception as exc:
                raise ModelFitError(
                    f"{type(self).__name__}: could not read the FastText file {path} "
                    f"(parameter 'fasttext_path'): {exc}"
                ) from exc
        else:
            from gensim.models import FastText

            sentences = [t for t in tokens if t]
            if not sentences:
                raise ModelFitError(
                    f"{type(self).__name__}: the catalogue has no title/description words to train FastText on"
                )
            ft = FastText(
                vector_size=p["vector_size"],
                window=5,
                min_count=p["fasttext_min_count"],
                bucket=p["fasttext_bucket"],
                min_n=3,
                max_n=5,
                epochs=p["fasttext_epochs"],
                seed=p["seed"],
                workers=p["workers"],
                sg=1,
            )
            ft.build_vocab(corpus_iterable=sentences)
            ft.train(corpus_iterable=sentences, total_examples=len(sentences), epochs=p["fasttext_epochs"])
            wv = ft.wv
        words = sorted({w for t in tokens for w in t})
        dim = wv.vector_size
        word_vecs = np.zeros((len(words), dim), dtype=np.float32)
        has_word = np.zeros(len(words), dtype=bool)
        for i, w in enumerate(words):
            try:
                word_vecs[i] = wv[w]
                has_word[i] = True
            except KeyError:  # plain word2vec files have no n-grams for unseen words
                pass
        words = [w for w, h in zip(words, has_word) if h]
        word_vecs = word_vecs[has_word]
        return self._mean_vectors(tokens, words, word_vecs), words, word_vecs

    @staticmethod
    def _mean_vectors(tokens: list[list[str]], words: list[str], word_vecs: np.ndarray) -> np.ndarray:
        """Mean of the known word vectors of each token list (zeros when none is known)."""
        lookup = {w: i for i, w in enumerate(words)}
        idx = [[lookup[w] for w in t if w in lookup] for t in tokens]
        lengths = np.array([len(i) for i in idx], dtype=np.int64)
        flat = np.fromiter((j for i in idx for j in i), dtype=np.int64, count=int(lengths.sum()))
        owner = np.repeat(np.arange(len(tokens)), lengths)
        out = np.zeros((len(tokens), word_vecs.shape[1] if word_vecs.ndim == 2 else 0), dtype=np.float32)
        if len(flat):
            np.add.at(out, owner, word_vecs[flat])
        return out / np.maximum(lengths, 1)[:, None].astype(np.float32)

    def _image_matrix(self, catalog: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        from recsys.models.image import ImageFeatureExtractor

        if "image_url" not in catalog:
            raise ModelFitError(
                f"{type(self).__name__}: image_features=True but the catalogue has no image_url column"
            )
        extractor = ImageFeatureExtractor(
            backbone=p["image_backbone"], weights_path=p["image_weights_path"], image_size=p["image_size"]
        )
        feats = extractor.extract(catalog["image_url"].fillna("").astype(str).tolist())
        self.image_report_ = {
            "n_images": int(len(catalog) - len(extractor.failed_)),
            "failed": len(extractor.failed_),
            "failed_examples": extractor.failed_[:5],
        }
        ok = np.ones(len(catalog), dtype=np.float32)
        for i, _path, _reason in extractor.failed_rows_:
            ok[i] = 0.0
        return np.concatenate([feats, 1.0 - ok[:, None]], axis=1)

    def _features(
        self,
        catalog: pd.DataFrame,
        text: np.ndarray,
        stats: dict[str, Any] | None,
        image: np.ndarray | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Model inputs for catalogue rows; ``stats`` (from training) or computed here."""
        fit = stats is None
        if stats is None:
            wide = bool(self.params.get("wide_blocks", False))
            stats = {"wide": wide, "price_bands": int(self.params.get("price_bands", 0)) if wide else 0}
        price = pd.to_numeric(catalog["price"], errors="coerce").to_numpy(dtype=np.float64)
        missing = ~np.isfinite(price) | (price < 0)
        logp = np.log1p(np.where(missing, 0.0, price))
        if fit:
            obs = logp[~missing]
            stats["price_mean"] = float(obs.mean()) if len(obs) else 0.0
            stats["price_std"] = float(obs.std()) if len(obs) > 1 and obs.std() > 0 else 1.0
            stats["text_mean"] = text.mean(axis=0).tolist()
            stats["text_std"] = np.maximum(text.std(axis=0), 1e-6).tolist()
        zprice = np.where(missing, 0.0, (logp - stats["price_mean"]) / stats["price_std"])
        # price relative to the item's leaf category (its "price band" there)
        leaf = catalog["category"] if "category" in catalog else pd.Series([""] * len(catalog))
        leaf = leaf.fillna("").astype(str).to_numpy()
        if fit:
            frame = pd.DataFrame({"leaf": leaf[~missing], "logp": logp[~missing]})
            grouped = frame.groupby("leaf")["logp"].agg(["mean", "std"]).fillna(0.0)
            stats["leaf_price"] = {
                str(k): [float(m), float(sd) if sd > 0 else 1.0]
                for k, m, sd in zip(grouped.index, grouped["mean"], grouped["std"])
            }
        leaf_stats = np.array([stats["leaf_price"].get(v, [np.nan, 1.0]) for v in leaf], dtype=np.float64)
        leaf_stats = leaf_stats.reshape(-1, 2)
        known_leaf = np.isfinite(leaf_stats[:, 0]) & ~missing
        rel_price = np.where(known_leaf, (logp - np.nan_to_num(leaf_stats[:, 0])) / leaf_stats[:, 1], 0.0)
        # price position within the leaf: the item's percentile among the leaf's catalogue prices
        # (piecewise-linear over stored quantiles, so new items get it too)
        if fit:
            qs = np.linspace(0.0, 1.0, _PRICE_QUANTILES)
            stats["leaf_price_q"] = {
                str(k): np.quantile(g.to_numpy(), qs).tolist()
                for k, g in pd.Series(logp[~missing]).groupby(leaf[~missing])
            }
        pct = np.full(len(leaf), 0.5)
        has_pct = np.zeros(len(leaf), dtype=bool)
        q_of = stats.get("leaf_price_q", {})
        grid = np.linspace(0.0, 1.0, _PRICE_QUANTILES)
        for value in np.unique(leaf):
            q = q_of.get(str(value))
            if q is None:
                continue
            rows = np.flatnonzero((leaf == value) & ~missing)
            qa = np.asarray(q, dtype=np.float64)
            # ties in the quantiles (few items): interpolate on the unique values
            uq, first = np.unique(qa, return_index=True)
            last = len(qa) - 1 - np.unique(qa[::-1], return_index=True)[1]
            mid = (grid[first] + grid[last]) / 2.0
            pct[rows] = np.interp(logp[rows], uq, mid) if len(uq) > 1 else 0.5
            has_pct[rows] = True
        ztext = (text - np.asarray(stats["text_mean"], dtype=np.float32)) / np.asarray(
            stats["text_std"], dtype=np.float32
        )
        gender = (
            catalog["gender"].fillna("").astype(str).str.lower()
            if "gender" in catalog
            else pd.Series([""] * len(catalog))
        )
        onehot = np.stack([(gender == g).to_numpy() for g in GENDERS], axis=1).astype(np.float32)
        dense = [
            ztext.astype(np.float32),
            zprice[:, None].astype(np.float32),
            np.clip(rel_price, -4, 4)[:, None].astype(np.float32),
            (2.0 * pct - 1.0)[:, None].astype(np.float32),
            missing[:, None].astype(np.float32),
            onehot,
        ]
        if image is not None:
            if fit:
                stats["image_mean"] = image.mean(axis=0).tolist()
                stats["image_std"] = np.maximum(image.std(axis=0), 1e-6).tolist()
            dense.append(
                ((image - np.asarray(stats["image_mean"])) / np.asarray(stats["image_std"])).astype(
                    np.float32
                )
            )
        feats = {"dense": np.concatenate(dense, axis=1).astype(np.float32)}
        stats["dense_dim"] = int(feats["dense"].shape[1])
        if stats.get("wide", False):
            # price position as a point on a half circle: the dot product of two items
            # points falls as their percentiles move apart (1 for equal, -1 for opposite ends)
            angle = pct * np.pi
            feats["price_pos"] = np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)
            n_bands = int(stats.get("price_bands", 0))
            if n_bands:
                # price tier within the leaf (budget / mid / premium for 3 bands): a one-hot code,
                # zero (similar to nothing) without a price or for a leaf unseen in training
                band = np.minimum((pct * n_bands).astype(np.int64), n_bands - 1)
                feats["price_band"] = (np.eye(n_bands, dtype=np.float32)[band] * has_pct[:, None]).astype(
                    np.float32
                )
        brand = catalog["brand"] if "brand" in catalog else pd.Series([""] * len(catalog))
        if fit:
            stats["brand_vocab"], feats["brand"] = _vocab_index(brand)
        else:
            feats["brand"] = _lookup(brand, stats["brand_vocab"])
        category = catalog["category"] if "category" in catalog else pd.Series([""] * len(catalog))
        for level in _CAT_LEVELS:
            values = category_level(category.fillna("").astype(str), level)
            key = f"cat{level}"
            if fit:
                stats[f"{key}_vocab"], feats[key] = _vocab_index(values)
            else:
                feats[key] = _lookup(values, stats[f"{key}_vocab"])
        return feats, stats

    # -- network -------------------------------------------------------------
    def _build_tower(self, p: dict[str, Any], stats: dict[str, Any], dense_dim: int) -> Any:
        keras = ku.import_keras()
        L = keras.layers
        inputs = {"dense": keras.Input((dense_dim,), name="dense")}
        parts = [inputs["dense"]]
        vocabs = [("brand", "brand_vocab", p["brand_dim"])] + [
            (f"cat{lv}", f"cat{lv}_vocab", p["category_dim"]) for lv in _CAT_LEVELS
        ]
        for key, vocab_key, dim in vocabs:
            inputs[key] = keras.Input((), dtype="int32", name=key)
            emb = L.Embedding(len(stats[vocab_key]) + 1, dim, name=f"{key}_embedding")(inputs[key])
            parts.append(emb)
        x = L.Concatenate()(parts)
        for i, units in enumerate(p["hidden_units"]):
            x = L.Dense(units, activation="relu", name=f"hidden_{i}")(x)
            if p["dropout"] > 0:
                x = L.Dropout(p["dropout"], seed=p["seed"] + i)(x)
        x = L.Dense(p["embedding_dim"], dtype="float32", name="projection")(x)
        norm = ku.layers()["L2Normalize"]
        if not stats.get("wide", False):
            out = norm(name="l2")(x)
            return keras.Model(inputs, out, name="content_tower")
        # wide blocks beside the deep vector: leaf category, brand (learned embeddings) and
        # the price position, each unit-length; learned block weights set their share of
        # the cosine (cos = sum_i w_i cos_i / sum_i w_i)
        inputs["price_pos"] = keras.Input((2,), name="price_pos")
        leaf_key = f"cat{_CAT_LEVELS[-1]}"
        leaf = _identity_codes(
            keras, len(stats[f"{leaf_key}_vocab"]) + 1, p["wide_dim"], p["seed"], "wide_leaf"
        )(inputs[leaf_key])
        brand = _identity_codes(
            keras, len(stats["brand_vocab"]) + 1, p["wide_dim"], p["seed"] + 1, "wide_brand"
        )(inputs["brand"])
        blocks = [
            norm(name="l2_deep")(x),
            norm(name="l2_leaf")(leaf),
            norm(name="l2_brand")(brand),
            norm(name="l2_price")(inputs["price_pos"]),
        ]
        if stats.get("price_bands", 0):
            inputs["price_band"] = keras.Input((int(stats["price_bands"]),), name="price_band")
            blocks.append(norm(name="l2_band")(inputs["price_band"]))
        out = ku.layers()["WeightedConcat"](name="wide_weights")(blocks)
        out = norm(name="l2")(out)
        return keras.Model(inputs, out, name="content_tower")

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
            raise ModelFitError(
                f"{type(self).__name__}: the catalogue needs at least 2 items, got {len(catalog)}"
            )
        t_start = time.perf_counter()
        total = p["epochs"] + 2
        info = ku.device_info()
        self.device_ = dict(info)
        ku.seed_everything(p["seed"])
        rng = np.random.default_rng(p["seed"])

        progress(0, total, "content: text embeddings (FastText)")
        text, words, word_vecs = self._text_vectors(catalog, p)
        image = self._image_matrix(catalog, p) if p["image_features"] else None
        feats, stats = self._features(catalog, text, None, image)
        self.item_ids_ = np.asarray(catalog["item_id"].astype(str).to_numpy(), dtype=str)
        row_of = {iid: i for i, iid in enumerate(self.item_ids_)}
        n = len(catalog)

        # positive pairs: co-occurrence, same leaf category for items without any
        pairs = cooccurrence_pairs(dataset.interactions, row_of, p["window"])
        # simulated cold items: a share of the items with pairs is kept out of training; the
        # pairs that lead to them choose the weights of the output blocks (see _block_weights)
        cold_val = np.empty((0, 2), dtype=np.int64)
        if stats["wide"] and p["holdout_share"] > 0 and len(pairs) >= 20:
            item_n = interaction_counts(dataset.interactions, self.item_ids_)
            held = holdout_items(
                np.unique(pairs["b"].to_numpy()), item_n, p["holdout_share"], p["holdout_tail"], rng
            )
            is_held = np.zeros(n, dtype=bool)
            is_held[held] = True
            a_held = is_held[pairs["a"].to_numpy()]
            b_held = is_held[pairs["b"].to_numpy()]
            to_held = pairs[b_held & ~a_held]
            if len(to_held):
                n_cv = min(p["max_validation_pairs"], len(to_held))
                # each held-out item weighs the same (cold targets are many distinct items);
                # its pairs by their co-occurrence counts
                w = to_held["count"].to_numpy(dtype=np.float64)
                w = w / to_held.groupby("b")["count"].transform("sum").to_numpy(dtype=np.float64)
                pick = rng.choice(len(to_held), size=n_cv, replace=False, p=w / w.sum())
                cold_val = to_held.iloc[pick][["a", "b"]].to_numpy(dtype=np.int64)
            pairs = pairs[~(a_held | b_held)]
        val = np.empty((0, 2), dtype=np.int64)
        if p["validation_share"] > 0 and len(pairs) >= 20:
            n_val = min(p["max_validation_pairs"], max(1, int(len(pairs) * p["validation_share"])))
            pick = rng.choice(len(pairs), size=n_val, replace=False)
            val = pairs.iloc[pick][["a", "b"]].to_numpy()
            pairs = pairs.drop(pairs.index[pick])
        ab = pairs[["a", "b"]].to_numpy(dtype=np.int64)
        weights = pairs["count"].to_numpy(dtype=np.float64) ** p["pair_weight_power"]
        n_with_pairs = int(len(np.unique(ab[:, 0])))
        co_ab, co_weights = ab, weights  # behaviour evidence for the title words' weights
        cat_pairs = self._category_pairs(catalog, ab, p["category_pairs"], rng)
        if len(cat_pairs):
            ab = np.concatenate([ab, cat_pairs])
            weights = np.concatenate([weights, np.ones(len(cat_pairs))])
        if len(ab) == 0:
            raise ModelFitError(
                f"{type(self).__name__}: no training pairs: no co-occurring items in the interactions and "
                "no two items share a category"
            )
        weights = weights / weights.sum()

        keras = ku.import_keras()
        with ku.precision_scope(info["mixed_precision"]):
            tower = self._build_tower(p, stats, feats["dense"].shape[1])
            n_hard = p["hard_negatives"]
            sides = ["a", "p"] + [f"n{j}" for j in range(n_hard)]
            ins = {
                f"{side}_{k}": keras.Input(v.shape[1:], dtype=str(v.dtype), name=f"{side}_{k}")
                for side in sides
                for k, v in feats.items()
            }
            vecs = {side: tower({k: ins[f"{side}_{k}"] for k in feats}) for side in sides}
            columns = vecs["p"]
            if n_hard:
                # columns: the B positives, then each row's hard negatives (row-major)
                negs = keras.ops.stack([vecs[f"n{j}"] for j in range(n_hard)], axis=1)
                negs = keras.ops.reshape(negs, (-1, int(tower.output.shape[-1])))
                columns = keras.layers.Concatenate(axis=0)([vecs["p"], negs])
            scale = 1.0 / p["temperature"] if p["loss"] == "softmax" else 1.0
            logits = ku.layers()["PairLogits"](scale, name="pair_logits")(vecs["a"], columns)
            trainer = keras.Model(ins, logits)
        loss = (
            ku.in_batch_softmax_loss
            if p["loss"] == "softmax"
            else ku.make_semi_hard_triplet_loss(p["margin"], 1.0)
        )
        trainer.compile(
            optimizer=keras.optimizers.Adam(p["learning_rate"]), loss=loss, jit_compile=ku.jit_compile()
        )

        same_leaf = self._leaf_sampler(catalog, rng)
        self.history_ = []
        progress(1, total, f"content: training the ranking tower on {info['device']}")
        for epoch in range(p["epochs"]):
            t0 = time.perf_counter()
            pick = rng.choice(len(ab), size=p["pairs_per_epoch"], p=weights)
            a_rows, b_rows = ab[pick, 0], ab[pick, 1]
            rows = {"a": a_rows, "p": b_rows}
            for j in range(p["hard_negatives"]):
                rows[f"n{j}"] = same_leaf(a_rows)
            x = {f"{side}_{k}": v[r] for side, r in rows.items() for k, v in feats.items()}
            y = np.stack([b_rows, a_rows] + [rows[f"n{j}"] for j in range(p["hard_negatives"])], axis=1)
            hist = trainer.fit(
                x, y.astype(np.int32), batch_size=p["batch_size"], epochs=1, shuffle=False, verbose=0
            )
            record = {"epoch": epoch + 1, "loss": float(hist.history["loss"][-1])}
            if len(val):
                vecs = self._predict(tower, feats, p["batch_size"] * 8)
                record.update(_pair_scores(vecs, val, p["top_k"]))
            record["seconds"] = round(time.perf_counter() - t0, 3)
            self.history_.append(record)
            msg = f"content: epoch {epoch + 1}/{p['epochs']} loss {record['loss']:.4f}"
            if "val_top_k" in record:
                msg += f" val top-{p['top_k']} {record['val_top_k']:.3f} avg precision {record['val_avg_precision']:.3f}"
            logger.info(msg)
            progress(epoch + 2, total, msg)

        raw = self._predict(tower, feats, p["batch_size"] * 8)
        title_codes = None
        if stats["wide"]:
            if p["title_dim"]:
                tokens = _title_tokens(catalog)
                vocab, idf = _title_vocab(tokens)
                if p["title_weighting"] == "lift":
                    idf = _word_lift_weights(tokens, vocab, idf, catalog, co_ab, co_weights)
                    keep = idf > _MIN_WORD_WEIGHT  # words that say nothing beyond the leaf are left out
                    vocab, idf = [w for w, k in zip(vocab, keep) if k], idf[keep]
                if vocab:
                    title_codes = _word_codes(len(vocab), p["title_dim"], p["seed"] + 2)
                    stats["title_vocab"], stats["title_idf"] = vocab, idf.tolist()
                    raw = np.concatenate([raw, _title_matrix(tokens, vocab, idf, title_codes)], axis=1)
            names = _block_names(stats)
            tower_names = [b for b in names if b != "title"]
            stats["block_widths"] = [int(tower.get_layer(f"l2_{b}").output.shape[-1]) for b in tower_names]
            learned = tower.get_layer("wide_weights").block_weights()
            if title_codes is not None:
                # the title block is fixed (not part of the tower): it starts at the deep block's weight
                stats["block_widths"].append(int(title_codes.shape[1]))
                learned = [*learned, learned[0]]
            stats["learned_block_weights"] = learned
            stats["block_weights"] = (
                _block_weights(_split_blocks(raw, stats["block_widths"]), cold_val, p["top_k"], learned)
                if len(cold_val)
                else learned
            )
            logger.info(
                "content: block weights %s (learned in training: %s) from %d pairs to held-out items",
                dict(zip(names, stats["block_weights"])),
                dict(zip(names, learned)),
                len(cold_val),
            )
            raw = _reweight(raw, stats)
            self.block_weights_ = dict(zip(names, stats["block_weights"]))
        self.vectors_ = normalize_rows(raw)
        self._tower = tower
        self._stats = stats
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
                "items_with_cooccurrence": n_with_pairs,
            }
        )
        if stats["wide"]:
            self.coverage_["block_weights"] = self.block_weights_
            self.coverage_["holdout_pairs"] = int(len(cold_val))
        progress(total, total, f"content: {n} item vectors in {self.train_seconds_:.1f}s")
        return self

    @staticmethod
    def _category_pairs(
        catalog: pd.DataFrame, ab: np.ndarray, per_item: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(item, same-leaf-category item) pairs for items that have no co-occurrence pair."""
        if per_item == 0:
            return np.empty((0, 2), dtype=np.int64)
        has_pair = np.zeros(len(catalog), dtype=bool)
        has_pair[ab[:, 0]] = True
        leaf, order, starts, sizes = _leaf_blocks(catalog)
        lonely = np.flatnonzero(~has_pair & (sizes > 1) & (leaf != ""))
        if len(lonely) == 0:
            return np.empty((0, 2), dtype=np.int64)
        anchors = np.repeat(lonely, per_item)
        offs = rng.integers(0, sizes[anchors] - 1)
        cand = order[starts[anchors] + offs]
        clash = cand == anchors  # drew the anchor itself: take the block's last item instead
        cand[clash] = order[starts[anchors][clash] + sizes[anchors][clash] - 1]
        return np.stack([anchors, cand], axis=1).astype(np.int64)

    @staticmethod
    def _leaf_sampler(catalog: pd.DataFrame, rng: np.random.Generator) -> Any:
        """A function: item rows -> a random item row of the same leaf category each (hard negatives)."""
        _, order, starts, sizes = _leaf_blocks(catalog)

        def sample(rows: np.ndarray) -> np.ndarray:
            offs = (rng.random(len(rows)) * sizes[rows]).astype(np.int64)
            return order[starts[rows] + offs]

        return sample

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
        numpy.ndarray of float32, shape (len(catalog), embedding_dim), L2-normalised.
        """
        self._check_fitted()
        tower = self._get_tower()
        text = catalog["title"].fillna("").astype(str)
        if "description" in catalog:
            text = text + " " + catalog["description"].fillna("").astype(str)
        vecs = self._mean_vectors(tokenize(text), self._words, self._word_vecs)
        image = None
        if "image_mean" in self._stats:
            dim = len(self._stats["image_mean"])
            image = np.zeros((len(catalog), dim), dtype=np.float32)
            image[:, -1] = 1.0
        catalog = catalog.reset_index(drop=True)
        feats, _ = self._features(catalog, vecs, self._stats, image)
        raw = self._predict(tower, feats, 2048)
        if self._stats.get("title_vocab"):
            idf = np.asarray(self._stats["title_idf"], dtype=np.float32)
            title = _title_matrix(_title_tokens(catalog), self._stats["title_vocab"], idf, self._title_codes)
            raw = np.concatenate([raw, title], axis=1)
        return normalize_rows(_reweight(raw, self._stats))

    def _get_tower(self) -> Any:
        tower = getattr(self, "_tower", None)
        if tower is None:
            p = self._validate_loaded()
            dense_dim = int(self._stats["dense_dim"])
            with ku.precision_scope(False):
                tower = self._build_tower(p, self._stats, dense_dim)
            tower.load_weights(str(self._weights_path))
            self._tower = tower
        return tower

    def _validate_loaded(self) -> dict[str, Any]:
        p = dict(self.params)
        p["hidden_units"] = [
            int(h)
            for h in (p["hidden_units"] if isinstance(p["hidden_units"], list) else [p["hidden_units"]])
        ]
        return p

    # -- persistence ---------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        super()._save_state(path)
        (path / "content_history.json").write_text(
            json.dumps(
                {
                    "history": getattr(self, "history_", []),
                    "device": getattr(self, "device_", None),
                    "train_seconds": getattr(self, "train_seconds_", None),
                },
                indent=2,
            )
        )
        if hasattr(self, "_stats"):
            (path / "content_features.json").write_text(json.dumps(self._stats))
            np.save(path / "content_words.npy", np.asarray(self._words, dtype=str), allow_pickle=False)
            np.save(path / "content_word_vectors.npy", self._word_vecs.astype(np.float32), allow_pickle=False)
            if getattr(self, "_title_codes", None) is not None:
                np.save(
                    path / "content_title_codes.npy", self._title_codes.astype(np.float32), allow_pickle=False
                )
            tower = getattr(self, "_tower", None)
            if tower is not None:
                tower.save_weights(str(path / "content_tower.weights.h5"))
            elif getattr(self, "_weights_path", None) is not None and Path(self._weights_path).exists():
                import shutil

                shutil.copyfile(self._weights_path, path / "content_tower.weights.h5")

    def _load_state(self, path: Path) -> None:
        super()._load_state(path)
        hist_file = path / "content_history.json"
        if hist_file.exists():
            meta = json.loads(hist_file.read_text())
            self.history_ = meta.get("history", [])
            if meta.get("device"):
                self.device_ = meta["device"]
            if meta.get("train_seconds") is not None:
                self.train_seconds_ = meta["train_seconds"]
        feat_file = path / "content_features.json"
        if feat_file.exists():
            self._stats = json.loads(feat_file.read_text())
            if self._stats.get("wide") and self._stats.get("block_weights"):
                self.block_weights_ = dict(zip(_block_names(self._stats), self._stats["block_weights"]))
            self._words = np.load(path / "content_words.npy", allow_pickle=False).tolist()
            self._word_vecs = np.load(path / "content_word_vectors.npy", allow_pickle=False)
            codes = path / "content_title_codes.npy"
            self._title_codes = np.load(codes, allow_pickle=False) if codes.exists() else None
            if self._stats.get("title_vocab") and self._title_codes is None:
                raise StoredDataError(
                    f"{type(self).__name__}: {path} has a title-words block but no content_title_codes.npy; "
                    "the saved model is incomplete: save it again"
                )
            weights = path / "content_tower.weights.h5"
            self._weights_path = weights if weights.exists() else None


def _block_names(stats: dict[str, Any]) -> tuple[str, ...]:
    """Names of a wide model's output blocks, in output order (models saved before the band
    block have four, before the title block five at most)."""
    names = list(_BLOCKS[:4])
    if stats.get("price_bands", 0):
        names.append("band")
    if stats.get("title_vocab"):
        names.append("title")
    return tuple(names)


def _title_tokens(catalog: pd.DataFrame) -> list[list[str]]:
    """Distinct title words of each item: one-letter tokens and the words of its own brand left out."""
    titles = catalog["title"] if "title" in catalog else pd.Series([""] * len(catalog))
    brands = catalog["brand"] if "brand" in catalog else pd.Series([""] * len(catalog))
    out = []
    for words, brand in zip(tokenize(titles.fillna("")), tokenize(brands.fillna(""))):
        drop = set(brand)
        out.append(sorted({w for w in words if len(w) > 1 and w not in drop}))
    return out


def _title_vocab(tokens: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Words of at least two titles (sorted) and their inverse document frequency ``log(n / df)``."""
    df: dict[str, int] = {}
    for words in tokens:
        for w in words:
            df[w] = df.get(w, 0) + 1
    vocab = sorted(w for w, c in df.items() if c >= 2)
    counts = np.array([df[w] for w in vocab], dtype=np.float64)
    idf = np.log(max(len(tokens), 1) / np.maximum(counts, 1.0)).astype(np.float32)
    return vocab, idf


def _word_lift_weights(
    tokens: list[list[str]],
    vocab: list[str],
    idf: np.ndarray,
    catalog: pd.DataFrame,
    pairs: np.ndarray,
    pair_weights: np.ndarray,
) -> np.ndarray:
    """Word weights from behaviour: how much more often than chance a word is shared by co-occurring items.

    For each word ``w``: ``observed`` = weighted count of training pairs (a, b) whose titles both
    have ``w``; ``expected`` = the same if b's title had ``w`` at the rate of b's leaf category
    (the share of the leaf's items whose title has it). The weight is
    ``sqrt(max(0, log((observed + a) / (expected + a))))`` (so the cosine of two bags adds up the
    log lifts of their shared words), ``a`` a prior of ``_LIFT_PRIOR``; words that predict
    nothing beyond the leaf (colours, most adjectives, words of the leaf's own name) get ~0
    (and are left out of the block). Without any pair, the IDF weights are kept.
    """
    from scipy import sparse

    if len(pairs) == 0:
        return idf
    col_of = {w: i for i, w in enumerate(vocab)}
    rows = [i for i, t in enumerate(tokens) for w in t if w in col_of]
    cols = [col_of[w] for t in tokens for w in t if w in col_of]
    n = len(tokens)
    bag = sparse.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n, len(vocab)))
    leaf, *_ = _leaf_blocks(catalog)
    codes = pd.factorize(leaf)[0]
    member = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(codes.max() + 1, n))
    share = sparse.diags(1.0 / np.asarray(member.sum(axis=1)).ravel()) @ member @ bag  # leaf x word
    a, b = pairs[:, 0], pairs[:, 1]
    w = np.asarray(pair_weights, dtype=np.float64)
    observed = np.asarray(bag[a].multiply(bag[b]).T @ w).ravel()
    expected = np.asarray(bag[a].multiply(share[codes[b]]).T @ w).ravel()
    lift = np.log((observed + _LIFT_PRIOR) / (expected + _LIFT_PRIOR))
    return np.sqrt(np.maximum(lift, 0.0)).astype(np.float32)


def _word_codes(n_words: int, dim: int, seed: int) -> np.ndarray:
    """One code per word: one-hot (width ``n_words``) when ``n_words <= dim``, else random unit
    vectors of width ``dim`` (nearly orthogonal: cosines about +-1/sqrt(dim))."""
    if n_words <= dim:
        return np.eye(n_words, dtype=np.float32)
    codes = np.random.default_rng(seed).normal(size=(n_words, dim)).astype(np.float32)
    return codes / np.linalg.norm(codes, axis=1, keepdims=True)


def _title_matrix(
    tokens: list[list[str]], vocab: list[str], idf: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """IDF-weighted bag of title words per item, L2-normalised (zero rows: no known word)."""
    from scipy import sparse

    col_of = {w: i for i, w in enumerate(vocab)}
    cols = [[col_of[w] for w in words if w in col_of] for words in tokens]
    lengths = np.array([len(c) for c in cols], dtype=np.int64)
    flat = np.fromiter((j for c in cols for j in c), dtype=np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(tokens)), lengths)
    bag = sparse.csr_matrix(
        (np.asarray(idf, dtype=np.float32)[flat], (owner, flat)), shape=(len(tokens), len(vocab))
    )
    return normalize_rows(np.asarray(bag @ codes, dtype=np.float32))


def _split_blocks(raw: np.ndarray, widths: list[int]) -> list[np.ndarray]:
    """The tower output cut into its blocks, each L2-normalised."""
    cuts = np.cumsum([0, *widths])
    return [normalize_rows(raw[:, cuts[i] : cuts[i + 1]]) for i in range(len(widths))]


def _reweight(raw: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """Concatenate the unit blocks scaled by sqrt(chosen weight) (no-op for non-wide towers)."""
    if not stats.get("wide", False) or "block_weights" not in stats:
        return raw
    blocks = _split_blocks(raw, stats["block_widths"])
    w = np.sqrt(np.asarray(stats["block_weights"], dtype=np.float32))
    return np.concatenate([b * wi for b, wi in zip(blocks, w)], axis=1).astype(np.float32)


def _block_weights(blocks: list[np.ndarray], pairs: np.ndarray, k: int, learned: list[float]) -> list[float]:
    """Block weights that rank held-out items best.

    Coordinate ascent over a grid (two passes over the four weights; the deep block's
    weight stays > 0, so text and learned features always break ties), starting from
    the weights learned in training (relative to the deep block's),
    maximising the top-k hit share, then the mean reciprocal rank, of (anchor,
    held-out item) pairs among all items (the anchor excluded).
    """
    sims = [b[pairs[:, 0]] @ b.T for b in blocks]  # (n_pairs, n_items) per block
    rows = np.arange(len(pairs))
    for sim in sims:
        sim[rows, pairs[:, 0]] = 0.0  # the anchor itself is excluded in key()

    def key(w: list[float]) -> tuple[float, float]:
        score = np.zeros_like(sims[0])
        for wi, sim in zip(w, sims):
            if wi:
                score += wi * sim
        score[rows, pairs[:, 0]] = -np.inf
        pos = score[rows, pairs[:, 1]]
        rank = (score >= pos[:, None]).sum(axis=1)
        return float((rank <= k).mean()), float((1.0 / rank).mean())

    best = [1.0] + [float(x) / float(learned[0]) for x in learned[1:]]
    best_key = key(best)
    for _ in range(2):
        for i in range(len(best)):
            for value in _WEIGHT_GRID if i else _WEIGHT_GRID[1:]:  # the deep block always keeps a share
                trial = best.copy()
                trial[i] = value
                trial_key = key(trial)
                if trial_key > best_key:
                    best, best_key = trial, trial_key
    logger.debug("content: block weights %s: held-out top-%d %.3f", best, k, best_key[0])
    return [float(x) for x in best]


def _identity_codes(keras: Any, n: int, dim: int, seed: int, name: str) -> Any:
    """A frozen embedding of ``n`` values as identity codes: one-hot when ``n <= dim``,
    else random unit vectors (nearly orthogonal: cosines about +-1/sqrt(dim)). Row 0
    (unknown/empty) is the zero vector, similar to nothing."""
    if n <= dim:
        codes = np.eye(n, dtype=np.float32)
    else:
        codes = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
        codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    codes[0] = 0.0
    return keras.layers.Embedding(
        n,
        codes.shape[1],
        embeddings_initializer=keras.initializers.Constant(codes),
        trainable=False,
        name=name,
    )


def _pair_scores(vectors: np.ndarray, pairs: np.ndarray, k: int) -> dict[str, float]:
    """Top-k hit share and mean reciprocal rank of held-out (anchor, positive) pairs.

    The anchor itself is excluded from its ranking; ties count against the positive.
    """
    unit = normalize_rows(vectors)
    hits, inv_rank = [], []
    for start in range(0, len(pairs), 1024):
        chunk = pairs[start : start + 1024]
        sims = unit[chunk[:, 0]] @ unit.T
        sims[np.arange(len(chunk)), chunk[:, 0]] = -np.inf
        pos = sims[np.arange(len(chunk)), chunk[:, 1]]
        rank = (sims >= pos[:, None]).sum(axis=1)  # the positive itself, ties and better items
        hits.append(rank <= k)
        inv_rank.append(1.0 / rank)
    return {
        "val_top_k": float(np.concatenate(hits).mean()),
        "val_avg_precision": float(np.concatenate(inv_rank).mean()),
    }
