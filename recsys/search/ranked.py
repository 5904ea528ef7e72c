"""The ranked-list rules (``max_per_brand``, ``min_similarity``) over one over-fetch, in plain lists.

A serving preset with ``max_per_brand`` is not lean: its over-fetch's eligible labels are
rescored exactly, sorted, and cut by the rules (:meth:`FilteredSearcher._rerank` and
``_rank_rules``, about twenty NumPy calls on a hundred labels). Right after a beam search has
evicted the caches each NumPy call costs microseconds of dispatch, more than the work itself,
so for an over-fetch of up to ``SMALL_FETCH`` labels :func:`rerank_rows` does the same in plain
lists around the few NumPy calls that do arithmetic: the same rows, the same float32 scores
(one matrix-vector product over the same gathered rows), the same order (score, then
position), the same counts. ``tests/unit/test_search.py`` checks it against the NumPy path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.search.kernels import _matvec

#: over-fetches of at most this many labels are ranked here (larger ones: the NumPy path)
SMALL_FETCH = 512


def fetch_need(k: int, cfg: Any) -> int:
    """Eligible candidates an over-fetch plans for: k, and half as many again with
    ``max_per_brand`` (whose cap drops some). Was 3k, which made the serving preset's first
    fetch 120 labels (a beam search 1.3x the cost of k=11) where 64 filled the list for 99% of
    seeds (100k items, same top category + ``max_per_brand`` 3, 300 brands); a catalogue whose
    brands follow the vectors learns a lower fill rate, and a short fetch is fetched again 4x
    larger or answered exactly (the planner's costs)."""
    return k + (k + 1) // 2 if cfg.max_per_brand else k


def rerank_rows(
    searcher: Any,
    q: np.ndarray,
    rows: np.ndarray,
    cand: Any,
    k: int,
    cfg: Any,
    n_elig: int,
    fetched_all: bool,
) -> tuple[list[int], list[int], list[float], dict[str, int], bool]:
    """(kept positions, their vector rows, their scores, drop counts, final) for the labels
    ``rows`` of one over-fetch, the eligible ones those of the key range ``cand``
    (:class:`recsys.search.query.KeyRange`): what ``_rerank`` of the NumPy path returns, as
    lists. ``final`` False: more candidates are needed (the list may still be short of k)."""
    rl = rows.tolist()
    keys = cand.by_row.take(rows.view(np.int64)).tolist()
    lo, hi, seed, drop = cand.lo, cand.hi, cand.seed_row, cand.drop
    if drop:
        er = [r for r, x in zip(rl, keys) if lo <= x < hi and r != seed and r not in drop]
    else:
        er = [r for r, x in zip(rl, keys) if lo <= x < hi and r != seed]
    exhausted = fetched_all or len(er) >= n_elig
    if not er:
        return [], [], [], ({"min_similarity": 0} if cfg.min_similarity is not None else {}), exhausted
    pos = searcher.view.pos_of_row.take(er)
    view = searcher.view
    # the NumPy path's scores: the same product over the same rows in the same order
    sc = _matvec(searcher.unit.take(pos, axis=0), q).tolist()
    cap = cfg.max_per_brand
    brands = view.brand.take(pos).tolist() if cap is not None else er
    ranked = sorted(zip([-s for s in sc], pos.tolist(), er, brands))  # score, then position
    dropped: dict[str, int] = {}
    if cap is None:
        kept = ranked[:k]
        enough = len(ranked) >= k
    else:
        no_brand, seen, kept, skipped = view.no_brand, {}, [], 0
        for t in ranked:
            b = t[3]
            if b != no_brand:
                c = seen.get(b, 0)
                seen[b] = c + 1
                if c >= cap:
                    skipped += 1
                    continue
            kept.append(t)
            if len(kept) == k:
                break
        dropped["max_per_brand"] = skipped
        enough = len(kept) >= k
    ms = cfg.min_similarity
    below_seen = False
    if ms is not None:
        good = [t for t in kept if -t[0] >= ms]
        dropped["min_similarity"] = len(kept) - len(good)
        below_seen = -ranked[-1][0] < ms
        kept = good
    return (
        [t[1] for t in kept],
        [t[2] for t in kept],
        [-t[0] for t in kept],
        dropped,
        enough or exhausted or below_seen,
    )
