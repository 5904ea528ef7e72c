"""The wide output blocks of the content model and the choice of their weights.

With ``wide_blocks=True`` the output vector is the concatenation of unit-length
blocks: the deep vector, the leaf category and the brand (fixed identity codes),
the price position within the leaf, the price tier within the leaf ("band") and
the title words. Each block is scaled by the square root of its weight, so the
cosine of two items is the weighted mean of the blocks' cosines. The weights are
learned in training, then chosen on simulated cold items by :func:`block_weights`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from recsys.models.base import normalize_rows
from recsys.models.content.features import FeatureState
from recsys.topk import topk_rows_unordered

logger = logging.getLogger(__name__)

#: every block, in output order
BLOCKS = ("deep", "leaf", "brand", "price", "band", "title")
#: the values coordinate ascent tries for each block weight (relative to the deep block's 1)
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def block_names(state: FeatureState) -> tuple[str, ...]:
    """Names of a wide model's output blocks, in output order (models saved before the band
    block have four, before the title block five at most)."""
    names = list(BLOCKS[:4])
    if state.price_bands:
        names.append("band")
    if state.title_vocab:
        names.append("title")
    return tuple(names)


def split_blocks(raw: np.ndarray, widths: list[int]) -> list[np.ndarray]:
    """The tower output cut into its blocks, each L2-normalised."""
    cuts = np.cumsum([0, *widths])
    return [normalize_rows(raw[:, cuts[i] : cuts[i + 1]]) for i in range(len(widths))]


def reweight(raw: np.ndarray, state: FeatureState) -> np.ndarray:
    """Concatenate the unit blocks scaled by sqrt(chosen weight) (no-op for non-wide towers)."""
    if not state.wide or state.block_weights is None:
        return raw
    blocks = split_blocks(raw, state.block_widths or [])
    w = np.sqrt(np.asarray(state.block_weights, dtype=np.float32))
    return np.concatenate([b * wi for b, wi in zip(blocks, w)], axis=1).astype(np.float32)


#: (pair, item) cells whose block similarities :func:`block_weights` holds at once; a larger
#: catalogue scores each pair against a candidate pool instead of every item (memory and time
#: stay bounded: 2,000 pairs x 92k items x 6 blocks would be 4.4 GB)
EXACT_CELLS = 16_000_000
#: the pool of a pair: its positive and the ``POOL`` most similar items of each block
POOL = 200


def pair_block_sims(
    blocks: list[np.ndarray], pairs: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Each block's similarity of every (anchor, positive) pair's anchor to its candidates.

    Returns ``(sims, pos_col, invalid)``: ``sims`` one (n_pairs, n_candidates) float32 matrix per
    block, ``pos_col`` the positive's column in each row, ``invalid`` (n_pairs, n_candidates)
    the cells that are no candidate (the anchor itself, a repeated candidate). While
    ``n_pairs x n_items <= EXACT_CELLS`` the candidates are every item (exact ranks); beyond, a
    pair's candidates are its positive and the ``POOL`` best items of each block, so a rank
    counts only the items some block ranks near the top (an item outside every block's top
    ``POOL`` rarely outranks a positive in the top k; ranks beyond the pool are cut short).
    """
    n_items = blocks[0].shape[0]
    rows = np.arange(len(pairs))
    if len(pairs) * n_items <= EXACT_CELLS:
        sims = [b[pairs[:, 0]] @ b.T for b in blocks]
        invalid = np.zeros((len(pairs), n_items), dtype=bool)
        invalid[rows, pairs[:, 0]] = True
        return sims, pairs[:, 1].copy(), invalid
    chunk = max(1, EXACT_CELLS // n_items)
    parts: list[list[np.ndarray]] = [[] for _ in blocks]
    pools = []
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        r = np.arange(len(part))
        full = []
        for b in blocks:
            sim = b[part[:, 0]] @ b.T
            sim[r, part[:, 0]] = -np.inf  # the anchor is no candidate
            full.append(sim)
        pool = np.concatenate([part[:, 1:2]] + [topk_rows_unordered(sim, POOL) for sim in full], axis=1)
        pool.sort(axis=1)
        pools.append(pool)
        for i, sim in enumerate(full):
            parts[i].append(np.take_along_axis(sim, pool, axis=1).astype(np.float32))
    pool = np.concatenate(pools)
    invalid = np.zeros(pool.shape, dtype=bool)
    invalid[:, 1:] = pool[:, 1:] == pool[:, :-1]  # a candidate two blocks both ranked counts once
    pos_col = np.argmax((pool == pairs[:, 1:2]) & ~invalid, axis=1)
    return [np.concatenate(p) for p in parts], pos_col, invalid


def block_weights(blocks: list[np.ndarray], pairs: np.ndarray, k: int, learned: list[float]) -> list[float]:
    """Block weights that rank held-out items best.

    Coordinate ascent over :data:`WEIGHT_GRID` (two passes over the weights; the deep
    block's weight stays > 0, so text and learned features always break ties), starting
    from the weights learned in training (relative to the deep block's), maximising the
    top-k hit share, then the mean reciprocal rank, of (anchor, held-out item) pairs
    among all items (the anchor excluded; a large catalogue among each pair's candidate
    pool, :func:`pair_block_sims`).
    """
    sims, pos_col, invalid = pair_block_sims(blocks, pairs)
    rows = np.arange(len(pairs))
    for sim in sims:
        sim[invalid] = 0.0  # excluded again in key()

    def key(w: list[float]) -> tuple[float, float]:
        score = np.zeros_like(sims[0])
        for wi, sim in zip(w, sims):
            if wi:
                score += wi * sim
        score[invalid] = -np.inf
        pos = score[rows, pos_col]
        rank = (score >= pos[:, None]).sum(axis=1)
        return float((rank <= k).mean()), float((1.0 / rank).mean())

    best = [1.0] + [float(x) / float(learned[0]) for x in learned[1:]]
    best_key = key(best)
    for _ in range(2):
        for i in range(len(best)):
            for value in WEIGHT_GRID if i else WEIGHT_GRID[1:]:  # the deep block always keeps a share
                trial = best.copy()
                trial[i] = value
                trial_key = key(trial)
                if trial_key > best_key:
                    best, best_key = trial, trial_key
    logger.debug("content: block weights %s: held-out top-%d %.3f", best, k, best_key[0])
    return [float(x) for x in best]


def unit_codes(n: int, dim: int, seed: int) -> np.ndarray:
    """One code per value: one-hot (width ``n``) when ``n <= dim``, else random unit vectors of
    width ``dim`` (nearly orthogonal: cosines about +-1/sqrt(dim))."""
    if n <= dim:
        return np.eye(n, dtype=np.float32)
    codes = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return codes / np.linalg.norm(codes, axis=1, keepdims=True)


def identity_codes(keras: Any, n: int, dim: int, seed: int, name: str) -> Any:
    """A frozen embedding of ``n`` values as identity codes: one-hot when ``n <= dim``,
    else random unit vectors (nearly orthogonal: cosines about +-1/sqrt(dim)). Row 0
    (unknown/empty) is the zero vector, similar to nothing."""
    codes = unit_codes(n, dim, seed).copy()
    codes[0] = 0.0
    return keras.layers.Embedding(
        n,
        codes.shape[1],
        embeddings_initializer=keras.initializers.Constant(codes),
        trainable=False,
        name=name,
    )
