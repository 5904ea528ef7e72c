"""The title-words block of the content model: the words shoppers choose by.

An item's title becomes a weighted bag of words (its own brand's words and
one-letter tokens left out). With ``title_weighting="lift"`` a word weighs how
much more often than chance, given the leaf category, two co-occurring items
share it (:func:`word_lift_weights`), so product types ("chelsea boot") count
and colours or adjectives drop out; with ``"idf"`` rarer words weigh more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.models.base import normalize_rows
from recsys.models.content.blocks import unit_codes as word_codes
from recsys.models.content.features import column_or_blank, tokenize
from recsys.models.content.pairs import leaf_blocks

#: prior count added to observed and expected shares of a word
LIFT_PRIOR = 1.0
#: words weighing at most this (nothing beyond the leaf) are left out of the block
MIN_WORD_WEIGHT = 1e-3
TITLE_WEIGHTINGS = ("lift", "idf")


def title_tokens(catalog: pd.DataFrame) -> list[list[str]]:
    """Distinct title words of each item: one-letter tokens and the words of its own brand left out."""
    titles, brands = column_or_blank(catalog, "title"), column_or_blank(catalog, "brand")
    out = []
    for words, brand in zip(tokenize(titles.fillna("")), tokenize(brands.fillna(""))):
        drop = set(brand)
        out.append(sorted({w for w in words if len(w) > 1 and w not in drop}))
    return out


def title_vocab(tokens: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Words of at least two titles (sorted) and their inverse document frequency ``log(n / df)``."""
    df: dict[str, int] = {}
    for words in tokens:
        for w in words:
            df[w] = df.get(w, 0) + 1
    vocab = sorted(w for w, c in df.items() if c >= 2)
    counts = np.array([df[w] for w in vocab], dtype=np.float64)
    idf = np.log(max(len(tokens), 1) / np.maximum(counts, 1.0)).astype(np.float32)
    return vocab, idf


def _word_bag(tokens: list[list[str]], vocab: list[str], weights: np.ndarray, dtype: type) -> object:
    """Sparse (items x words) matrix: each item's known words, weighted by ``weights``."""
    from scipy import sparse

    col_of = {w: i for i, w in enumerate(vocab)}
    cols = [[col_of[w] for w in words if w in col_of] for words in tokens]
    lengths = np.array([len(c) for c in cols], dtype=np.int64)
    flat = np.fromiter((j for c in cols for j in c), dtype=np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(tokens)), lengths)
    return sparse.csr_matrix(
        (np.asarray(weights, dtype=dtype)[flat], (owner, flat)), shape=(len(tokens), len(vocab))
    )


def word_lift_weights(
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
    log lifts of their shared words), ``a`` a prior of ``LIFT_PRIOR``; words that predict
    nothing beyond the leaf (colours, most adjectives, words of the leaf's own name) get ~0
    (and are left out of the block). Without any pair, the IDF weights are kept.
    """
    from scipy import sparse

    if len(pairs) == 0:
        return idf
    n = len(tokens)
    bag = _word_bag(tokens, vocab, np.ones(len(vocab)), np.float64)
    leaf, *_ = leaf_blocks(catalog)
    codes = pd.factorize(leaf)[0]
    member = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(codes.max() + 1, n))
    share = sparse.diags(1.0 / np.asarray(member.sum(axis=1)).ravel()) @ member @ bag  # leaf x word
    a, b = pairs[:, 0], pairs[:, 1]
    w = np.asarray(pair_weights, dtype=np.float64)
    observed = np.asarray(bag[a].multiply(bag[b]).T @ w).ravel()
    expected = np.asarray(bag[a].multiply(share[codes[b]]).T @ w).ravel()
    lift = np.log((observed + LIFT_PRIOR) / (expected + LIFT_PRIOR))
    return np.sqrt(np.maximum(lift, 0.0)).astype(np.float32)


def title_matrix(tokens: list[list[str]], vocab: list[str], idf: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """IDF-weighted bag of title words per item, L2-normalised (zero rows: no known word)."""
    bag = _word_bag(tokens, vocab, idf, np.float32)
    return normalize_rows(np.asarray(bag @ codes, dtype=np.float32))


#: Most (item, word) cells a one-hot title block may take: the block is part of every item's
#: vector, so its width multiplies the vectors' memory, the index and every search (32M float32
#: cells = 128 MB; Online Retail's 4k items x 1,254 words = 5M); a wider catalogue gets random
#: codes of width ``dim``.
ONE_HOT_MAX_CELLS = 32_000_000


def fit_title_words(
    catalog: pd.DataFrame,
    weighting: str,
    dim: int,
    seed: int,
    pairs: np.ndarray,
    pair_weights: np.ndarray,
    exact_max: int = 0,
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """The block's words, their weights and their codes (``codes`` None: no word kept): one-hot
    while the kept words are at most ``exact_max`` and items x words at most
    ``ONE_HOT_MAX_CELLS``, else random codes of width ``dim``."""
    tokens = title_tokens(catalog)
    vocab, idf = title_vocab(tokens)
    if weighting == "lift":
        idf = word_lift_weights(tokens, vocab, idf, catalog, pairs, pair_weights)
        keep = idf > MIN_WORD_WEIGHT  # words that say nothing beyond the leaf are left out
        vocab, idf = [w for w, k in zip(vocab, keep) if k], idf[keep]
    one_hot = len(vocab) <= exact_max and len(catalog) * len(vocab) <= ONE_HOT_MAX_CELLS
    width = len(vocab) if one_hot else dim
    return vocab, idf, (word_codes(len(vocab), width, seed) if vocab else None)
