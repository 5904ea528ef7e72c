"""Top-k selection, the one place it is written.

Every ranked list in the library (exact search, item-to-item baselines, the
two-tower scorer, projection neighbours, the search executor) ends in the same
step: pick the k best columns of each row and order them best first. Ties are
broken by column index (the lower column first), so results are deterministic
and an exact search agrees with a brute-force reference under tied scores.

``np.argpartition`` does the selection in O(n) per row; only the k picked
entries are sorted.
"""

from __future__ import annotations

import numpy as np

__all__ = ["topk", "topk_rows", "topk_rows_unordered", "top_prefix"]

#: ``top_prefix`` narrows a score vector by its chunk maxima from this many entries on, for
#: k at most 1/``_PREFIX_RATIO`` of them (below, one argpartition is as fast)
_PREFIX_MIN = 4096
_PREFIX_CHUNKS = 32
_PREFIX_RATIO = 64


def topk_rows_unordered(scores: np.ndarray, k: int) -> np.ndarray:
    """(n_rows, min(k, n_cols)) column indices of each row's k largest scores, in no order.

    Among entries tied with the k-th largest score, the lowest columns are taken.
    """
    scores = np.asarray(scores)
    n_cols = scores.shape[1]
    kk = min(int(k), n_cols)
    if kk <= 0:
        return np.empty((scores.shape[0], 0), dtype=np.int64)
    if kk >= n_cols:
        return np.broadcast_to(np.arange(n_cols), scores.shape).copy()
    if n_cols >= _PREFIX_MIN and kk * _PREFIX_RATIO <= n_cols and scores.dtype.kind == "f":
        narrowed = _narrow_rows(scores, kk)
        if narrowed is not None:
            return narrowed
    return _select_rows(scores, kk)


def _select_rows(scores: np.ndarray, kk: int) -> np.ndarray:
    """The body of :func:`topk_rows_unordered` (``0 < kk < n_cols``): argpartition, then the
    lowest columns among the entries tied with the k-th value."""
    top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    # argpartition picks any of the entries tied with the k-th value; keep the
    # lowest columns among them, so the choice is the stable sort's prefix
    kth = np.take_along_axis(scores, top, axis=1).min(axis=1)
    at_least = scores >= kth[:, None]
    tied_rows = np.flatnonzero(at_least.sum(axis=1) > kk)
    if len(tied_rows):
        sub, kth_t = scores[tied_rows], kth[tied_rows, None]
        above, equal = sub > kth_t, sub == kth_t
        needed = kk - above.sum(axis=1)
        keep = above | (equal & (np.cumsum(equal, axis=1) <= needed[:, None]))
        top[tied_rows] = np.nonzero(keep)[1].reshape(len(tied_rows), kk)
    return top


def _narrow_rows(scores: np.ndarray, kk: int) -> np.ndarray | None:
    """:func:`_select_rows` of a wide score matrix through slot maxima (None: a NaN score).

    As in :func:`top_prefix`, each row is cut into ``_PREFIX_CHUNKS`` interleaved slices and
    their elementwise maximum taken (one vectorised pass): slot ``j`` holds the maximum of
    columns ``j, j + w, j + 2w, ...``. The k slots with the largest maxima hold the row's k
    best scores (each of them lies in a slot whose maximum is at least its score, hence at
    least the k-th largest maximum, which is at most the k-th largest score), unless another
    slot ties the k-th largest maximum (such rows are selected whole). The selection then runs
    over those slots' columns (and the columns past the last whole slice), kept ascending so
    ties still go to the lower column: on 1,000 x 10k scores of a batch's exact search, two
    cheap passes instead of argpartition's.
    """
    b, n = scores.shape
    w = n // _PREFIX_CHUNKS
    whole = w * _PREFIX_CHUNKS
    mx = scores[:, :whole].reshape(b, _PREFIX_CHUNKS, w).max(axis=1)
    if np.isnan(mx).any():
        return None
    slots = np.argpartition(-mx, kk - 1, axis=1)[:, :kk]
    kth = np.take_along_axis(mx, slots, axis=1).min(axis=1)
    slots.sort(axis=1)
    # columns slice-major, slot-minor: ascending, as slot < w
    cols = (np.arange(0, whole, w)[None, :, None] + slots[:, None, :]).reshape(b, kk * _PREFIX_CHUNKS)
    if whole < n:
        cols = np.concatenate([cols, np.broadcast_to(np.arange(whole, n), (b, n - whole))], axis=1)
    top = np.take_along_axis(cols, _select_rows(np.take_along_axis(scores, cols, axis=1), kk), axis=1)
    # a row where another slot ties the k-th largest maximum may hold a tied score there
    tied = np.flatnonzero((mx >= kth[:, None]).sum(axis=1) > kk)
    if len(tied):
        top[tied] = _select_rows(scores[tied], kk)
    return top


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k: (columns, scores), each (n_rows, min(k, n_cols)), best first.

    Ties are broken by column index. ``-inf`` entries sort last, so callers mark
    excluded columns with ``-inf`` and test ``np.isfinite`` on the result.
    """
    scores = np.asarray(scores)
    top = topk_rows_unordered(scores, k)
    top_s = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -top_s), axis=-1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_s, order, axis=1)


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one score vector: (positions, scores), best first, ties by position.

    The same answer as ``topk_rows(scores[None, :], k)`` row 0, in fewer NumPy calls (the
    per-query hot path of exact search calls it once per query).
    """
    s = np.asarray(scores)
    n = s.shape[0]
    kk = min(int(k), n)
    if kk <= 0:
        return np.empty(0, dtype=np.int64), s[:0]
    if kk < n:
        pre = top_prefix(s, kk + 1)
        if pre is not None and kk < len(pre) < n:  # the same answer from a prefix of the order
            top, vals = topk(s[pre], kk)
            return pre[top], vals
        # the k + 1 best, sorted: the (k+1)-th tells whether a tie crosses the cut
        top = np.argpartition(s, n - kk - 1)[n - kk - 1 :]
        vals = s[top]
        order = np.lexsort((top, -vals))
        top, vals = top[order], vals[order]
        if vals[kk] != vals[kk - 1]:
            return top[:kk], vals[:kk]
        kth = vals[kk - 1]  # tied across the cut: the lowest positions among the tied
        above = np.flatnonzero(s > kth)
        top = np.concatenate([above, np.flatnonzero(s == kth)[: kk - len(above)]])
    else:
        top = np.arange(n)
    vals = s[top]
    order = np.lexsort((top, -vals))
    return top[order], vals[order]


def top_prefix(scores: np.ndarray, k: int) -> np.ndarray | None:
    """Ascending positions of every score at least a lower bound of the k-th largest: a superset
    of the top k that holds every score tied with its members, i.e. a prefix of the descending
    order (ties included), typically a few times k long. None when ``scores`` is too short (or
    k too large) for this to beat one ``argpartition``.

    The vector is cut into ``_PREFIX_CHUNKS`` interleaved slices and their elementwise maximum
    taken (one vectorised pass): each of its entries is a distinct score, so its k-th largest
    is at most the vector's k-th largest. Measured on 10k scores (a 1% category block at 1M
    items): 18 us against 31 to 80 us for ``argpartition``.
    """
    n = scores.shape[0]
    width = n // _PREFIX_CHUNKS
    if n < _PREFIX_MIN or k <= 0 or k * _PREFIX_RATIO > n or width < k:
        return None
    mx = scores[: width * _PREFIX_CHUNKS].reshape(_PREFIX_CHUNKS, width).max(axis=0)
    bound = np.partition(mx, width - k)[width - k]
    return (scores >= bound).nonzero()[0]  # np.flatnonzero's wrapper (ravel, a call) is not needed: 1-D
