"""The query object of the executor, and the candidate tests of its over-fetch.

:class:`Query` carries what every search path needs to answer one query (the vector, the
seed, the compiled filter, k, the start time and the counts so far) instead of a dozen
arguments. The over-fetch (:meth:`~recsys.search.searcher.FilteredSearcher._overfetch`)
tests HNSW labels with one of two candidate tests:

:class:`KeyRange`
    One int per vector row and a range ``[lo, hi)``: a key index's keys (the seed's key
    range), or a static eligible set's per-row boolean (``[1, 2)``). The seed's own row is
    dropped.
:class:`DomainMask`
    The general path: the seed's domain slice with a mask over it (or the filter's base
    mask, or a key range by position), as :meth:`CompileMixin._keep_eligible` applies it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.compiled import CompiledFilter, _SeedRules

#: seed-table columns before the rules' count columns (:meth:`CompileMixin._seed_table`): variant,
#: key range lo/hi, its slice a/b of the key order, eligible count, domain s/e, seed inside its
#: own key range
TABLE_COUNTS = 9


@dataclass(slots=True)
class Query:
    """One query: vector ``q`` (unit in the cosine space), seed position ``pos`` (None for a
    bare vector) and id, the compiled filter, ``k``, the start time (``perf_counter``) and the
    rule counts and skipped rules resolved so far; ``span``: the seed's domain ``[s, e)`` of
    positions, once known (boost/bury look up their classes' members inside it)."""

    q: np.ndarray
    pos: int | None
    cf: CompiledFilter
    k: int
    t0: float
    seed_id: str | None
    removed: dict[str, int]
    skipped: list[str]
    span: tuple[int, int] | None = None
    #: set by the over-fetch: its first fetch fell short (a miss of the seed's category block)
    short: bool = False
    #: the seed's category block ``(start, end, adult rule variant)`` of a boosted/buried "same
    #: category" config (its over-fetch reads the block's pool: recsys.search.block_pool)
    block: tuple[int, int, bool] | None = None
    #: ``q`` is the seed's own query vector (``search``), not a vector given with a seed for its
    #: attributes (``search_vector``: the mean of a user's recent items): only then does a beam
    #: search whose labels miss the seed's row tell a lost search (beams.py: ``seed_lost``)
    own: bool = True


def first_in_range(keys: Iterable[int], lo: int, hi: int, want: int) -> list[int]:
    """Indices of the first ``want`` keys with ``lo <= key < hi`` (a plain loop that stops there:
    a few dozen labels cost less so than in NumPy calls right after a beam search)."""
    sel = []
    for j, x in enumerate(keys):
        if lo <= x < hi:
            sel.append(j)
            if len(sel) == want:
                break
    return sel


def first_in_range_except(
    keys: Iterable[int], rows: list[int], lo: int, hi: int, out: Container[int], want: int
) -> list[int]:
    """:func:`first_in_range` of the labels ``rows`` (``keys``: theirs) that are not in ``out`` (a
    seed's do-not-associate rows, a handful: a list lookup costs no more than a set's)."""
    sel = []
    for j, x in enumerate(keys):
        if lo <= x < hi and rows[j] not in out:
            sel.append(j)
            if len(sel) == want:
                break
    return sel


def _without_seed(rows: np.ndarray, sel: list[int], seed: int, k: int) -> tuple[list[int], list[int]]:
    """(the first k of ``sel`` without the seed's row, ``rows`` up to the last selected as a list):
    a scan for k + 1 eligible labels while the seed (eligible) may be among them."""
    rl = rows[: sel[-1] + 1].tolist() if sel else []
    if seed >= 0:
        if seed in rl:  # eligible, usually first: its own vector
            sel.remove(rl.index(seed))
        del sel[k:]
    return sel, rl


def _without_rows(
    rows: np.ndarray, sel: list[int], seed: int, drop: list[int], k: int
) -> tuple[list[int], list[int]]:
    """:func:`_without_seed` when rows ``drop`` (the seed's banned items) are excluded too."""
    rl = rows[: sel[-1] + 1].tolist() if sel else []
    out = set(drop)
    if seed >= 0:
        out.add(seed)
    sel = [j for j in sel if rl[j] not in out]
    del sel[k:]
    return sel, rl


class KeyRange:
    """Eligible rows: ``lo <= by_row[row] < hi``, the seed's row (``seed_row``, -1: none) excluded,
    and the rows ``drop`` (the seed's do-not-associate items inside the range; None: none)."""

    __slots__ = ("by_row", "lo", "hi", "seed_row", "pos_of_row", "drop")

    def __init__(
        self,
        by_row: np.ndarray,
        lo: int,
        hi: int,
        seed_row: int,
        pos_of_row: np.ndarray,
        drop: list[int] | None = None,
    ) -> None:
        self.by_row, self.lo, self.hi, self.seed_row, self.pos_of_row = by_row, lo, hi, seed_row, pos_of_row
        self.drop = drop

    def first(self, rows: np.ndarray, k: int) -> tuple[list[int], list[int]]:
        """Indices (into ``rows``, in order) of the first ``k`` eligible rows, and ``rows`` up to
        the last of them as a list.

        A few dozen candidates: one gather, then plain lists (each NumPy call costs
        microseconds of dispatch, more with the cold caches of a serving loop); the scan stops
        at the k-th eligible label (k+1 while the seed, eligible, may be among them).
        """
        keys = self.by_row[rows.view(np.int64)].tolist()  # knn_one's labels are uint64
        lo, hi, seed, drop = self.lo, self.hi, self.seed_row, self.drop
        want = k + (seed >= 0) + (len(drop) if drop else 0)  # every excluded row may be among them
        sel = first_in_range(keys, lo, hi, want)
        if drop:
            return _without_rows(rows, sel, seed, drop, k)
        return _without_seed(rows, sel, seed, k)

    def eligible(self, rows: np.ndarray) -> np.ndarray:
        """Whether each of ``rows`` is eligible."""
        keys = self.by_row[rows]
        ok = keys >= self.lo
        ok &= keys < self.hi
        if self.seed_row >= 0:
            ok &= rows != self.seed_row
        if self.drop:
            for row in self.drop:  # a handful: cheaper than np.isin, which sorts
                ok &= rows != row
        return ok

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Positions of the eligible rows, in HNSW order."""
        return self.pos_of_row[rows[self.eligible(rows)]]


class FlagRange(KeyRange):
    """:class:`KeyRange` over a per-row boolean (a static eligible set's ``ok_by_row``): the
    same answers as the range ``[1, 2)``, with a plain truth test per label (the scan over a
    sparse filter's over-fetch is the hot loop)."""

    __slots__ = ()

    def __init__(self, ok_by_row: np.ndarray, seed_row: int, pos_of_row: np.ndarray) -> None:
        # KeyRange's fields, set here (one call less per query on the static hot path)
        self.by_row, self.lo, self.hi, self.seed_row, self.pos_of_row = ok_by_row, 1, 2, seed_row, pos_of_row
        self.drop = None

    def first(self, rows: np.ndarray, k: int) -> tuple[list[int], list[int]]:
        ok = self.by_row[rows.view(np.int64)].tolist()
        seed, sel = self.seed_row, []
        if seed < 0:
            for j, x in enumerate(ok):
                if x:
                    sel.append(j)
                    if len(sel) == k:
                        break
            return sel, rows[: sel[-1] + 1].tolist() if sel else []
        rl = rows.tolist()  # the seed skipped in the scan itself (the static hot path)
        for j, x in enumerate(ok):
            if x and rl[j] != seed:
                sel.append(j)
                if len(sel) == k:
                    break
        return sel, rl


class DomainMask:
    """Eligible positions of the general path: the seed's rules ``r`` with the domain mask
    (None when :meth:`CompileMixin._eligibility` needed none)."""

    __slots__ = ("searcher", "cf", "r", "mask")

    def __init__(self, searcher: Any, cf: CompiledFilter, r: _SeedRules, mask: np.ndarray | None) -> None:
        self.searcher, self.cf, self.r, self.mask = searcher, cf, r, mask

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Positions of the eligible rows, in HNSW order."""
        p = self.searcher.view.pos_of_row[rows]
        return self.searcher._keep_eligible(self.cf, self.r, p, self.mask)

    def eligible(self, rows: np.ndarray) -> np.ndarray:
        """Whether each of ``rows`` (unique) is eligible."""
        p = self.searcher.view.pos_of_row[rows]
        return np.isin(p, self.searcher._keep_eligible(self.cf, self.r, p, self.mask))
