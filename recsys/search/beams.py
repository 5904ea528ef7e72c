"""How wide a beam the main index needs so that an over-fetch's first labels are as good as its top k.

An over-fetch for a filter that keeps half the catalogue, independent of the vectors, takes the
first k eligible labels of one beam search: they lie about 2k deep in hnswlib's list. At a
fixed ``ef`` the deeper labels are found less reliably than the first k (at 1M items, ef=64:
recall@10 0.993, the 50% filters' lists 0.988-0.990). So the beam of an over-fetch is sized
from two measurements: how deep a filter's k-th eligible label usually lies (learned per
filter, :class:`~recsys.search.planner.FillStats`), and how wide a beam this index needs for
its top ``depth`` to reach ``BEAM_RECALL`` (:func:`measure_beams`, once per searcher, on a
seeded sample of its own items, in the background: the exact side is one pass over the
catalogue per 16 samples).

hnswlib searches with ``max(ef, k)``: asking for ``beam`` labels widens the beam of that one
query without touching the index's shared ``ef``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from recsys.topk import topk_rows

#: depths (labels read, the seed's row included) at which the beam is calibrated
DEPTHS = (11, 16, 22, 32, 45, 64)
#: beams tried, as multiples of the index's ef: steps of 1/8 up to 1.5, then 1.75 and 2. At 1M
#: items (ef=64) a 50% filter's depth (about 21) sits between 64's recall 0.990 and 80's 0.994,
#: and a beam one step wider than needed costs its share of the beam search on every query of
#: such a filter (with the grid 1 / 1.25 / 1.5 / 2 the uncorrelated 50% cases ran 1.51x to 1.55x
#: raw p50, against 1.20x to 1.28x, recall 0.988 to 0.990, before beams were widened)
GROWTH = (1.0, 1.125, 1.25, 1.375, 1.5, 1.75, 2.0)
#: recall of the top ``depth`` the beam must reach on the sample: the issue's 0.99 plus about
#: two standard errors of a 400-item sample at depth 22. At 1M items (ef=64) recall reaches a
#: plateau near 0.995 between beams of 80 and 128 (then 0.998 from 160): with 200 items and
#: beams up to 4x ef, one sample of a correlated searcher landed on 192 (2.35x raw p50)
BEAM_RECALL = 0.993
SAMPLE = 400
#: a first cosine distance above which a seed's labels without its own row mean a beam search that
#: missed its neighbourhood (the seed, its own vector, lies at 0 up to float32 rounding: 1e-7):
#: :func:`seed_lost`
LOST_DIST = 1e-4
#: score cells (samples x catalogue rows) per step of the exact top ``depth`` (32 MB of float32):
#: the catalogue is read in blocks of ``_BLOCK_CELLS // SAMPLE`` rows (20,971 at 400 samples),
#: each scored against every sample at once (one GEMM, the GIL released) and its top merged into
#: the running one (wide rows: ``topk_rows`` narrows them before selecting); the build thread lets
#: a running query go first between blocks (``pause``). Four samples at a time over the whole
#: catalogue read it 100 times and selected over each row whole: 2.0 CPU-s at 100k items, spent
#: by every gunicorn worker in the seconds after its start (it took the CPU of the requests
#: served meanwhile); this way 0.4 s
_BLOCK_CELLS = 1 << 23

#: beams measured per index object and ef, shared by the searchers of one index (the bench and a
#: server build several over one graph); the sample is drawn by vector row, so it is the same
#: items whichever searcher measures first
_MEASURED: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, ...]]] = weakref.WeakKeyDictionary()


def measured(index: Any, ef: int) -> tuple[int, ...] | None:
    """The beams already measured for ``index`` (an :class:`~recsys.index.HnswIndex`) at ``ef``."""
    got = _MEASURED.get(index)
    return got.get(ef) if got is not None else None


def keep(index: Any, ef: int, beams: tuple[int, ...]) -> None:
    _MEASURED.setdefault(index, {})[ef] = beams


def measure_beams(
    knn: Any,
    unit: np.ndarray,
    perm: np.ndarray,
    ef: int,
    seed: int = 0,
    pause: Callable[[], None] | None = None,
) -> tuple[int, ...]:
    """The beam per depth of :data:`DEPTHS` (``knn``: the index's ``knn_query``; ``unit``: the
    vectors by catalogue position, ``perm``: vector row by position, what the index labels).

    For each depth, the narrowest beam of ``ef * GROWTH`` whose top ``depth`` labels hold
    ``BEAM_RECALL`` of the exact top ``depth`` of a seeded sample of ``SAMPLE`` items (their own
    row first, as hnswlib has it); the widest (2x ef: a bound on what it may cost) when none does.
    """
    n = len(unit)
    top_d = min(DEPTHS[-1], n)
    rng = np.random.default_rng(seed)
    # drawn by vector row (what the index labels), not by catalogue position: the searchers of
    # one index share the first measurement kept (:data:`_MEASURED`), so each must draw the same
    # items whatever its catalogue's order (by position, at 1M items a correlated catalogue's
    # sample asked for a beam of 128 at every depth where a random one's asked for 64, and the
    # flag 50% filter's searcher inherited the 128: 1.75x raw p50)
    rows = np.sort(rng.choice(n, size=min(SAMPLE, n), replace=False))
    pos_of_row = np.empty(n, dtype=np.int64)
    pos_of_row[np.asarray(perm, dtype=np.int64)] = np.arange(n)
    sample = pos_of_row[rows]
    q = np.ascontiguousarray(unit[sample])
    truth = perm[exact_top(q, unit, top_d, pause)]
    beams = sorted({min(n, max(int(round(ef * g)), 1)) for g in GROWTH})
    recall: dict[tuple[int, int], float] = {}
    for b in beams:
        labels = _labels(knn, q, b)
        for d in DEPTHS:
            if d <= min(b, top_d):
                # labels and truth rows hold distinct ids: equal pairs count the common ones
                hit = int((truth[:, :d, None] == labels[:, None, :d]).sum())
                recall[(d, b)] = hit / (d * len(sample))
    out = []
    for d in DEPTHS:
        ok = [b for b in beams if recall.get((d, b), 0.0) >= BEAM_RECALL]
        out.append(ok[0] if ok else max(beams[-1], d))
    return tuple(out)


def _labels(knn: Any, q: np.ndarray, b: int) -> np.ndarray:
    """``b`` labels per row of ``q`` (int64). hnswlib refuses a whole batch when one query reaches
    fewer than ``b`` items (hnswlib#444: a graph of many tied vectors, such as a basket catalogue's
    duplicates); then the rows are asked one by one and a refused row's labels are -1, a miss at
    every depth, as the live over-fetch of that seed falls back to exact search."""
    try:
        labels, _ = knn(q, b, 1)
        return labels.astype(np.int64, copy=False)
    except RuntimeError:
        out = np.full((len(q), b), -1, dtype=np.int64)
        for i in range(len(q)):
            try:
                out[i] = knn(q[i : i + 1], b, 1)[0][0]
            except RuntimeError:
                pass
        return out


def exact_top(
    q: np.ndarray, unit: np.ndarray, top_d: int, pause: Callable[[], None] | None = None
) -> np.ndarray:
    """(len(q), min(top_d, len(unit))) rows of ``unit`` with the largest dot products with each
    row of ``q``, best first, ties to the lower row (the stable sort's prefix): the catalogue in
    blocks of ``_BLOCK_CELLS // len(q)`` rows, each block's top merged into the running one."""
    n, m = len(unit), len(q)
    top_d = min(top_d, n)
    block = max(top_d, _BLOCK_CELLS // max(m, 1))
    best_c = best_s = None
    for start in range(0, n, block):
        if pause is not None and start:
            pause()
        cols, sims = topk_rows(q @ unit[start : start + block].T, top_d)
        cols += start
        if best_c is None:
            best_c, best_s = cols, sims
            continue
        # the running top first: a tie between the two goes to its lower rows
        idx, best_s = topk_rows(np.concatenate([best_s, sims], axis=1), top_d)
        best_c = np.take_along_axis(np.concatenate([best_c, cols], axis=1), idx, axis=1)
    return best_c if best_c is not None else np.empty((m, 0), dtype=np.int64)


def seed_lost(seed_row: int, rows: Any, dists: Any, self_first: bool = True) -> bool:
    """Whether a beam search for a seed's own vector missed the seed's neighbourhood: THE test of
    the single-query paths (static, over-fetch, fast; :func:`seeds_lost` is the batch's).

    ``rows``: the labels it returned, best first (a list or an array), ``dists``: their cosine
    distances (at least the first); ``seed_row``: the seed's vector row, -1 when the seed is not
    in the index (nothing to miss); ``self_first``: whether the query is the seed's own candidate
    vector in the cosine space (``qunit is unit``), so that the seed is its own nearest item. Then
    labels that hold neither the seed's row nor anything within ``LOST_DIST`` of it (identical
    vectors: a first distance of ``LOST_DIST`` or less is not judged) come from a search that ended
    away from the neighbourhood, and none of its labels are the seed's neighbours. No labels: not
    judged (nothing came back to judge). Callers on a hot path test ``rows[0] != seed_row`` first
    (the usual case, its own vector first), which this implies.
    """
    return bool(self_first and seed_row >= 0 and len(rows) and dists[0] > LOST_DIST and seed_row not in rows)


def seeds_lost(
    seed_rows: np.ndarray, labels: np.ndarray, dist: np.ndarray, self_first: bool = True
) -> np.ndarray:
    """:func:`seed_lost` per row of a batch (``labels``, ``dist``: (n, fetch); ``seed_rows``: (n,)),
    as a bool array: the same test, in NumPy."""
    n = len(seed_rows)
    if not self_first or not labels.size:
        return np.zeros(n, dtype=bool)
    seed_rows = np.asarray(seed_rows)
    return (seed_rows >= 0) & (dist[:, 0] > LOST_DIST) & ~(labels == seed_rows[:, None]).any(axis=1)


def beam_for(beams: tuple[int, ...] | None, depth: float) -> int:
    """The calibrated beam for a filter whose k-th eligible label lies ``depth`` deep (0: none
    measured yet, or deeper than :data:`DEPTHS` reaches: the caller's fetch stands)."""
    if not beams or depth <= 0:
        return 0
    for d, b in zip(DEPTHS, beams):
        if depth <= d:
            return b
    return 0
