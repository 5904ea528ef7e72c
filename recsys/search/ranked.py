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


#: a bound on ``|exact score - (1 - hnswlib's cosine distance)|`` for unit vectors: both are
#: float32 dot products of the same unit vectors, normalised and summed in another order (each
#: off by at most ``dim`` float32 roundings, 64 x 6e-8 = 4e-6 at dim 64; 1e-4 holds to dim 1,600)
SCORE_SLACK = 1e-4
#: the eligible labels rescored first when hnswlib's distances are given (:func:`rerank_rows`):
#: this many per item asked, rounded up to whole groups of 8 rows. The BLAS product's rows in
#: whole groups of 4 are the same floats as inside a longer product (OpenBLAS's gemv kernels take
#: rows 4 at a time; measured bit for bit over random shapes, dims 16 to 128), so the prefix's
#: scores are those of rescoring every eligible label, as the tests check
PREFIX_FACTOR = 2


def rerank_rows(
    searcher: Any,
    q: np.ndarray,
    rows: np.ndarray,
    cand: Any,
    k: int,
    cfg: Any,
    n_elig: int,
    fetched_all: bool,
    dist: np.ndarray | None = None,
) -> tuple[list[int], list[int], list[float], dict[str, int], bool]:
    """(kept positions, their vector rows, their scores, drop counts, final) for the labels
    ``rows`` of one over-fetch, the eligible ones those of the key range ``cand``
    (:class:`recsys.search.query.KeyRange`): what ``_rerank`` of the NumPy path returns, as
    lists. ``final`` False: more candidates are needed (the list may still be short of k).

    ``dist``: hnswlib's cosine distances of ``rows`` (ascending, as ``knn_query`` returns them;
    unit vectors, no ``min_similarity``). Then the first ``PREFIX_FACTOR * k`` eligible labels
    are rescored first, and when their ranked list keeps k items whose k-th scores more than
    ``1 - d + SCORE_SLACK`` (``d``: the distance of the first eligible label left out, so every
    label left out scores less), that is the answer: the same items, order and counts as
    rescoring every eligible label, without gathering the rows of those that cannot enter
    it (each a cache miss after the beam search). Otherwise every eligible label is rescored."""
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
    m = -(-PREFIX_FACTOR * k // 8) * 8  # whole groups of 8 rows: see PREFIX_FACTOR
    if dist is not None and len(er) > m and cfg.min_similarity is None:
        # the score above which nothing left out can rank: the first eligible label left out
        bound = 1.0 - float(dist[rl.index(er[m])]) + SCORE_SLACK
        got = _rank(searcher, q, er[:m], k, cfg)
        kept = got[0]
        if len(kept) == k and -kept[-1][0] > bound:
            return _lists(kept, got[1], True)
    kept, dropped, enough, below_seen = _rank(searcher, q, er, k, cfg)
    return _lists(kept, dropped, enough or exhausted or below_seen)


def _lists(kept: list[tuple], dropped: dict[str, int], final: bool) -> tuple:
    return [t[1] for t in kept], [t[2] for t in kept], [-t[0] for t in kept], dropped, final


def _rank(
    searcher: Any, q: np.ndarray, er: list[int], k: int, cfg: Any
) -> tuple[list[tuple], dict[str, int], bool, bool]:
    """The eligible rows ``er`` rescored, ranked (score, then position) and cut by the ranked
    rules: (kept (-score, position, row, brand) tuples, drop counts, enough, below_seen)."""
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
    return kept, dropped, enough, below_seen
