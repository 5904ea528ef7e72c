"""The content model's inputs: text vectors, price, gender, brand and category codes.

:func:`build_features` turns catalogue rows into the tower's inputs. Fitting
(``state=None``) also learns what new items are later encoded with (price
statistics, vocabularies, ...): a :class:`FeatureState`, saved as
``content_features.json`` beside the run.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import GENDERS, category_level
from recsys.errors import ModelFitError, StoredDataError

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"[a-z0-9]+")
#: category levels with a learned embedding; the last one is the leaf used by the wide blocks
CAT_LEVELS = (0, 1, 2)
#: quantiles of each leaf's prices kept to place new items within their leaf
PRICE_QUANTILES = 21


@dataclass
class FeatureState:
    """What fitting learned about the catalogue, to encode any item (new ones too) alike.

    Stored as ``content_features.json`` (:meth:`to_json` / :meth:`from_json`); fields a
    run saved by older code lacks take their defaults.
    """

    #: the output has wide blocks beside the deep vector
    wide: bool = False
    #: price tiers within the leaf (the "band" block); 0: none
    price_bands: int = 0
    #: mean and standard deviation of log(1 + price) over the catalogue
    price_mean: float = 0.0
    price_std: float = 1.0
    #: per text dimension, to standardise the mean word vectors
    text_mean: list[float] = field(default_factory=list)
    text_std: list[float] = field(default_factory=list)
    #: leaf category -> [mean, std] of log prices
    leaf_price: dict[str, list[float]] = field(default_factory=dict)
    #: leaf category -> PRICE_QUANTILES quantiles of log prices
    leaf_price_q: dict[str, list[float]] = field(default_factory=dict)
    #: image features' mean and std (models fitted with image features)
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    #: width of the dense input
    dense_dim: int = 0
    #: vocabularies (index 0: unknown/empty) of the brand and the category levels
    brand_vocab: list[str] = field(default_factory=list)
    cat0_vocab: list[str] = field(default_factory=list)
    cat1_vocab: list[str] = field(default_factory=list)
    cat2_vocab: list[str] = field(default_factory=list)
    #: title-words block: its words and their weights (None: no such block)
    title_vocab: list[str] | None = None
    title_idf: list[float] | None = None
    #: wide models: width of each output block, the weights learned in training, the chosen ones
    block_widths: list[int] | None = None
    learned_block_weights: list[float] | None = None
    block_weights: list[float] | None = None

    def vocab(self, key: str) -> list[str]:
        """The vocabulary of an input: ``"brand"``, ``"cat0"``, ``"cat1"`` or ``"cat2"``."""
        return getattr(self, f"{key}_vocab")

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in ``content_features.json`` (fields that are None left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Any, source: str = "content_features.json") -> FeatureState:
        """Read what :meth:`to_json` wrote (keys unknown to this version are ignored)."""
        if not isinstance(data, dict):
            raise StoredDataError(f"{source}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - names)
        if extra:
            logger.debug("%s: ignoring unknown key(s) %s", source, ", ".join(extra))
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:  # pragma: no cover - a dataclass accepts any value per field
            raise StoredDataError(f"{source}: {exc}") from None


def tokenize(texts: pd.Series | list[str]) -> list[list[str]]:
    """Lower-case alphanumeric tokens of each text."""
    return [_TOKEN.findall(str(t).lower()) for t in texts]


def item_text(catalog: pd.DataFrame) -> pd.Series:
    """Title and description of each item, as one text."""
    text = catalog["title"].fillna("").astype(str)
    if "description" in catalog:
        text = text + " " + catalog["description"].fillna("").astype(str)
    return text


def column_or_blank(catalog: pd.DataFrame, name: str) -> pd.Series:
    """A catalogue column, or empty strings when the catalogue has none."""
    return catalog[name] if name in catalog else pd.Series([""] * len(catalog))


def vocab_index(values: pd.Series) -> tuple[list[str], np.ndarray]:
    """Vocabulary (index 0 = unknown/empty) and the int32 index of each value."""
    values = values.fillna("").astype(str)
    vocab = [""] + sorted(set(values) - {""})
    lookup = {v: i for i, v in enumerate(vocab)}
    return vocab, values.map(lookup).to_numpy(dtype=np.int32)


def lookup(values: pd.Series, vocab: list[str]) -> np.ndarray:
    """The int32 index of each value in ``vocab`` (0 when unknown)."""
    index = {v: i for i, v in enumerate(vocab)}
    return values.fillna("").astype(str).map(lambda v: index.get(v, 0)).to_numpy(dtype=np.int32)


def text_vectors(
    catalog: pd.DataFrame, p: dict[str, Any], owner: str = "content"
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Mean word vector per item, plus the word vocabulary and its vectors (for new items).

    The word vectors come from the local FastText file ``p["fasttext_path"]`` or from a
    gensim FastText trained on the catalogue's titles and descriptions.
    """
    tokens = tokenize(item_text(catalog))
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
                f"{owner}: could not read the FastText file {path} (parameter 'fasttext_path'): {exc}"
            ) from exc
    else:
        from gensim.models import FastText

        sentences = [t for t in tokens if t]
        if not sentences:
            raise ModelFitError(f"{owner}: the catalogue has no title/description words to train FastText on")
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
    return mean_vectors(tokens, words, word_vecs), words, word_vecs


def mean_vectors(tokens: list[list[str]], words: list[str], word_vecs: np.ndarray) -> np.ndarray:
    """Mean of the known word vectors of each token list (zeros when none is known)."""
    index = {w: i for i, w in enumerate(words)}
    idx = [[index[w] for w in t if w in index] for t in tokens]
    lengths = np.array([len(i) for i in idx], dtype=np.int64)
    flat = np.fromiter((j for i in idx for j in i), dtype=np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(tokens)), lengths)
    out = np.zeros((len(tokens), word_vecs.shape[1] if word_vecs.ndim == 2 else 0), dtype=np.float32)
    if len(flat):
        np.add.at(out, owner, word_vecs[flat])
    return out / np.maximum(lengths, 1)[:, None].astype(np.float32)


def image_matrix(catalog: pd.DataFrame, p: dict[str, Any], owner: str = "content") -> tuple[np.ndarray, dict]:
    """Image features of each item plus a "no image" flag column, and a report
    ``{"n_images", "failed", "failed_examples"}``."""
    from recsys.models.image import ImageFeatureExtractor

    if "image_url" not in catalog:
        raise ModelFitError(f"{owner}: image_features=True but the catalogue has no image_url column")
    extractor = ImageFeatureExtractor(
        backbone=p["image_backbone"], weights_path=p["image_weights_path"], image_size=p["image_size"]
    )
    feats = extractor.extract(catalog["image_url"].fillna("").astype(str).tolist())
    report = {
        "n_images": int(len(catalog) - len(extractor.failed_)),
        "failed": len(extractor.failed_),
        "failed_examples": extractor.failed_[:5],
    }
    ok = np.ones(len(catalog), dtype=np.float32)
    for i, _path, _reason in extractor.failed_rows_:
        ok[i] = 0.0
    return np.concatenate([feats, 1.0 - ok[:, None]], axis=1), report


def missing_image(n: int, state: FeatureState) -> np.ndarray | None:
    """Image inputs of ``n`` new items as if their image were missing (None: no image features)."""
    if state.image_mean is None:
        return None
    image = np.zeros((n, len(state.image_mean)), dtype=np.float32)
    image[:, -1] = 1.0
    return image


def build_features(
    catalog: pd.DataFrame,
    text: np.ndarray,
    state: FeatureState | None,
    image: np.ndarray | None = None,
    *,
    wide: bool = False,
    price_bands: int = 0,
) -> tuple[dict[str, np.ndarray], FeatureState]:
    """Model inputs for catalogue rows, and the :class:`FeatureState` they were encoded with.

    Parameters
    ----------
    catalog : pandas.DataFrame
        Rows to encode (index 0..n-1).
    text : numpy.ndarray
        Mean word vector of each row (:func:`text_vectors`, :func:`mean_vectors`).
    state : FeatureState or None
        From training; None fits a new one on these rows (``wide`` and ``price_bands``
        are then taken from the arguments).
    image : numpy.ndarray, optional
        Image features (:func:`image_matrix`).

    Returns
    -------
    feats : dict
        ``dense`` (float32: standardised text, price, price relative to the leaf, price
        position in the leaf, missing-price flag, gender one-hot, image), ``brand`` and
        ``cat0``-``cat2`` (int32 vocabulary indexes); wide models also ``price_pos`` (the
        price position on a half circle) and ``price_band`` (tier one-hot).
    state : FeatureState
    """
    fit = state is None
    if state is None:
        state = FeatureState(wide=bool(wide), price_bands=int(price_bands) if wide else 0)
    price = pd.to_numeric(catalog["price"], errors="coerce").to_numpy(dtype=np.float64)
    missing = ~np.isfinite(price) | (price < 0)
    logp = np.log1p(np.where(missing, 0.0, price))
    if fit:
        obs = logp[~missing]
        state.price_mean = float(obs.mean()) if len(obs) else 0.0
        state.price_std = float(obs.std()) if len(obs) > 1 and obs.std() > 0 else 1.0
        state.text_mean = text.mean(axis=0).tolist()
        state.text_std = np.maximum(text.std(axis=0), 1e-6).tolist()
    zprice = np.where(missing, 0.0, (logp - state.price_mean) / state.price_std)
    # price relative to the item's leaf category (its "price band" there)
    leaf = column_or_blank(catalog, "category").fillna("").astype(str).to_numpy()
    if fit:
        frame = pd.DataFrame({"leaf": leaf[~missing], "logp": logp[~missing]})
        grouped = frame.groupby("leaf")["logp"].agg(["mean", "std"]).fillna(0.0)
        state.leaf_price = {
            str(k): [float(m), float(sd) if sd > 0 else 1.0]
            for k, m, sd in zip(grouped.index, grouped["mean"], grouped["std"])
        }
    leaf_stats = np.array([state.leaf_price.get(v, [np.nan, 1.0]) for v in leaf], dtype=np.float64)
    leaf_stats = leaf_stats.reshape(-1, 2)
    known_leaf = np.isfinite(leaf_stats[:, 0]) & ~missing
    rel_price = np.where(known_leaf, (logp - np.nan_to_num(leaf_stats[:, 0])) / leaf_stats[:, 1], 0.0)
    # price position within the leaf: the item's percentile among the leaf's catalogue prices
    # (piecewise-linear over stored quantiles, so new items get it too)
    if fit:
        qs = np.linspace(0.0, 1.0, PRICE_QUANTILES)
        state.leaf_price_q = {
            str(k): np.quantile(g.to_numpy(), qs).tolist()
            for k, g in pd.Series(logp[~missing]).groupby(leaf[~missing])
        }
    pct, has_pct = _leaf_percentiles(leaf, logp, missing, state.leaf_price_q)
    ztext = (text - np.asarray(state.text_mean, dtype=np.float32)) / np.asarray(
        state.text_std, dtype=np.float32
    )
    gender = column_or_blank(catalog, "gender").fillna("").astype(str).str.lower()
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
            state.image_mean = image.mean(axis=0).tolist()
            state.image_std = np.maximum(image.std(axis=0), 1e-6).tolist()
        dense.append(
            ((image - np.asarray(state.image_mean)) / np.asarray(state.image_std)).astype(np.float32)
        )
    feats = {"dense": np.concatenate(dense, axis=1).astype(np.float32)}
    state.dense_dim = int(feats["dense"].shape[1])
    if state.wide:
        # price position as a point on a half circle: the dot product of two items
        # points falls as their percentiles move apart (1 for equal, -1 for opposite ends)
        angle = pct * np.pi
        feats["price_pos"] = np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)
        n_bands = int(state.price_bands)
        if n_bands:
            # price tier within the leaf (budget / mid / premium for 3 bands): a one-hot code,
            # zero (similar to nothing) without a price or for a leaf unseen in training
            band = np.minimum((pct * n_bands).astype(np.int64), n_bands - 1)
            feats["price_band"] = (np.eye(n_bands, dtype=np.float32)[band] * has_pct[:, None]).astype(
                np.float32
            )
    brand = column_or_blank(catalog, "brand")
    if fit:
        state.brand_vocab, feats["brand"] = vocab_index(brand)
    else:
        feats["brand"] = lookup(brand, state.brand_vocab)
    category = column_or_blank(catalog, "category")
    for level in CAT_LEVELS:
        values = category_level(category.fillna("").astype(str), level)
        key = f"cat{level}"
        if fit:
            vocab, feats[key] = vocab_index(values)
            setattr(state, f"{key}_vocab", vocab)
        else:
            feats[key] = lookup(values, state.vocab(key))
    return feats, state


def _leaf_percentiles(
    leaf: np.ndarray, logp: np.ndarray, missing: np.ndarray, q_of: dict[str, list[float]]
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's percentile among its leaf's prices (0.5 when unknown) and whether it is known."""
    pct = np.full(len(leaf), 0.5)
    has_pct = np.zeros(len(leaf), dtype=bool)
    grid = np.linspace(0.0, 1.0, PRICE_QUANTILES)
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
    return pct, has_pct
