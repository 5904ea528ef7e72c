"""Identical candidate vectors (thin catalogues): detection and exact completion of lists that reach them."""

from __future__ import annotations

import numpy as np

from recsys.filters import FilterConfig
from recsys.search.result import SearchResult


def _tie_groups(unit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Groups of identical candidate vectors (thin catalogues: many items sharing one vector).

    Returns ``(group of each position or -1, members: positions grouped and ascending,
    starts: group g's members are members[starts[g]:starts[g + 1]])``, or None without
    ties. O(n log n): a random projection sorts the rows, neighbours with the same
    projection are compared exactly.
    """
    n = len(unit)
    if n < 2:
        return None
    proj = np.random.default_rng(12345).normal(size=unit.shape[1]).astype(np.float32)
    h = unit @ proj
    order = np.argsort(h, kind="stable")
    hs = h[order]
    cand = np.flatnonzero(hs[1:] == hs[:-1])
    if len(cand) == 0:
        return None
    same = np.zeros(n - 1, dtype=bool)
    same[cand] = (np.take(unit, order[cand], axis=0) == np.take(unit, order[cand + 1], axis=0)).all(axis=1)
    if not same.any():
        return None
    run = np.cumsum(np.r_[True, ~same]) - 1  # run id per sorted row: equal rows share one
    sizes = np.bincount(run)
    multi = sizes[run] >= 2
    ids = np.full(len(sizes), -1, dtype=np.int64)
    big = np.flatnonzero(sizes >= 2)
    ids[big] = np.arange(len(big))
    group = np.full(n, -1, dtype=np.int32)
    group[order[multi]] = ids[run[multi]]
    members_pos = order[multi]
    members_grp = ids[run[multi]]
    srt = np.lexsort((members_pos, members_grp))
    members = members_pos[srt].astype(np.int64)
    starts = np.searchsorted(members_grp[srt], np.arange(len(big) + 1)).astype(np.int64)
    return group, members, starts


class TiesMixin:
    """Tie handling of :class:`FilteredSearcher`."""

    def _snap_ties(self, sc: np.ndarray, cand: np.ndarray, q: np.ndarray) -> None:
        """Give every member of a group of identical vectors among ``cand`` one score, in place.

        BLAS may round the same row's dot product differently by where it sits in a matrix;
        a group's score is computed once per group, the same way wherever it is asked for
        (an elementwise product summed along the row), so ties stay ties and order by
        position. Excluded rows (-inf) stay excluded.
        """
        if self._tie_of is None or len(sc) == 0:
            return
        g = self._tie_of[cand]
        m = (g >= 0) & np.isfinite(sc)
        if not m.any():
            return
        gm = g[m]
        groups = np.unique(gm)
        reps = self._tie_members[self._tie_starts[groups]]
        val = (np.take(self.unit, reps, axis=0) * q).sum(axis=1, dtype=np.float32)
        sc[m] = val[np.searchsorted(groups, gm)]

    def _fix_ties(
        self,
        res: SearchResult,
        q: np.ndarray,
        pos: int | None,
        cfg: FilterConfig,
        k: int,
        exact_ok: bool = True,
    ) -> SearchResult:
        """Answer exactly a query whose list reaches a group of identical vectors.

        hnswlib returns an arbitrary subset of a group of equal vectors (equal scores), and
        its beam fills up with the group's copies, so it also misses distinct neighbours
        next to it; the exact list holds the group's eligible members, lowest position first
        (the planner's tie order), cut at k. A list that holds a group member, or that a
        group's score would enter (one product per group: HNSW may miss a group altogether),
        is answered by exact search, which scores each group once (:meth:`_snap_ties`).
        """
        if exact_ok and res.plan.startswith("exact"):
            return res  # single-query exact search scores each group once (_snap_ties)
        p = self.view.pos_of_row[np.asarray(res.rows, dtype=np.int64)]
        thr = res.scores[-1] - 1e-5 if len(res.rows) >= k else -np.inf
        if not (self._tie_of[p] >= 0).any():
            gvals = (self._tie_reps * q).sum(axis=1, dtype=np.float32)
            if not (gvals >= thr).any():
                return res
        exact = self._search_one(q, pos, cfg, k, "exact")
        exact.plan = f"{res.plan}+ties_exact"
        return exact
