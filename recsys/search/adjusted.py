"""Boost and bury on the over-fetch: one beam search plus the adjusted items that could climb.

Boost and bury change an item's score to ``score * multiplier + shift`` (multipliers > 0,
composed per item: :func:`recsys.search.rules._prep_scores`), before the cut to k. HNSW's
order is then not the answer, yet the whole category need not be scanned either: items
fall into a few *classes* of one (multiplier, shift) each (the plain class (1, 0), the
boosted brands, the buried price range, their overlaps). Within a class the adjusted
score grows with the raw one, so a bound settles which classes can still climb.

One over-fetch returns the ``fetch`` nearest items overall, best first: every item it did not
return scores at most ``s_F``, the raw score of the last one fetched (up to the graph's own
recall, as for the filter without rules). Rank the eligible fetched items by adjusted score;
``tau`` is the k-th of them (after ``max_per_brand``; ``min_similarity`` when fewer). An item
of class ``c`` not fetched scores at most ``m_c * s_F + a_c`` after adjustment: when that is
below ``tau``, no item of the class outside the fetch can enter the list. The classes whose
bound reaches ``tau`` (*open*) are scored exactly, only their eligible members inside the
seed's domain (a boosted brand within the category: usually a few percent of it), merged with
the fetched candidates and ranked again; the k-th score can only rise, so the closed classes
stay closed. When the plain class itself is open (the fetch was too shallow even without
rules), or the open classes hold more rows than an exact scan of the domain costs, the
over-fetch falls short like an unadjusted one (a larger fetch or exact search follows).
Buried items (multiplier <= 1, shift <= 0) never climb above their raw score, so their class
opens only when the plain one does.

The list equals exact search over the eligible items (brute force) whenever the fetch holds
every item scoring above ``s_F`` (the graph's recall). It costs a few dozen NumPy calls beyond
the beam search, about as much as the beam search itself at d=64, so a category block the
seed table gives whole is scanned instead up to ~13k rows (:meth:`AdjustMixin._adjusted_prefers_exact`,
:meth:`AdjustMixin._exact_block_adjusted`: one product, one selection). Neither rescores its
list as :meth:`~recsys.search.searcher.FilteredSearcher._canon` does (a batch's matrix product
would round differently): a boosted/buried config is answered seed by seed through these same
paths everywhere (Explore, the API, precompute, Spark), so their scores agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.search.kernels import _matvec
from recsys.search.planner import (
    _FETCH_MIN,
    _S_CACHE_BYTES,
    _S_EXACT_BASE,
    _S_GEMV_ROW,
    _S_GEMV_ROW_COLD,
    _S_SELECT_ROW,
)
from recsys.search.query import KeyRange

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalog import CatalogView
    from recsys.search.query import Query

#: a class is open when its bound reaches ``tau`` minus this (relative) margin: float32
#: rounding of hnswlib's distances and of the adjusted scores (about 1e-7) never closes one
_MARGIN = 1e-5
#: an open class is scored from a gather of its members unless that costs this many times a
#: row of a dense scan per member, summed over the open classes, more than the domain
_COST_GATHER = 3
#: what the bounded over-fetch costs beyond the beam search (us, the ``_S_*`` scale of the
#: planner): a few dozen NumPy calls on the fetch and the open classes' members, measured on
#: the benchmark's 50k x 64 catalogue (2 busy cores): about as much as the beam search itself,
#: so an exact scan of a category block wins up to ~7k-13k rows (out of / in the CPU caches)
_S_ADJUST_BASE = 60.0
#: at most this many bytes of packed class vectors per compiled filter, and at most an eighth
#: of the vectors' own size (up to 32 compiled filters are cached)
_PACK_MAX_BYTES = 64 << 20
#: (class, domain) slices remembered per compiled filter
_SLICES_MAX = 65536


class AdjustClasses:
    """The items of a compiled filter grouped by their composed (multiplier, shift).

    Class ``c``: ``mul[c]``, ``add[c]`` and its positions ``members[starts[c]:starts[c + 1]]``
    (ascending), so its members inside a domain slice are one binary search away;
    ``by_row``: the class of each vector row. A class that opens gets a contiguous copy of its
    members' vectors (:meth:`packed`, within ``_PACK_MAX_BYTES`` per filter): one dense
    product scores its members in a domain, no gather.
    """

    __slots__ = (
        "mul",
        "add",
        "members",
        "starts",
        "by_row",
        "mul32",
        "add32",
        "plain",
        "_closed",
        "_packs",
        "_slices",
        "_bytes",
    )

    def __init__(self, adjust: tuple[np.ndarray, np.ndarray], view: CatalogView) -> None:
        mul = np.ascontiguousarray(adjust[0], dtype=np.float32)
        add = np.ascontiguousarray(adjust[1], dtype=np.float32) + np.float32(0.0)  # -0.0 -> 0.0
        key = (mul.view(np.uint32).astype(np.uint64) << np.uint64(32)) | add.view(np.uint32)
        uniq, inv = np.unique(key, return_inverse=True)
        self.members = np.argsort(inv, kind="stable").astype(np.int64)  # by class, ascending within
        self.starts = np.searchsorted(inv[self.members], np.arange(len(uniq) + 1)).tolist()
        self.mul32 = (uniq >> np.uint64(32)).astype(np.uint32).view(np.float32)
        self.add32 = (uniq & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
        self.mul, self.add = self.mul32.astype(np.float64).tolist(), self.add32.astype(np.float64).tolist()
        small = np.int8 if len(uniq) <= 127 else np.int32  # compact: gathered at random by row
        self.by_row = inv.astype(small)[view.pos_of_row]
        self.plain = next((c for c, (m, a) in enumerate(zip(self.mul, self.add)) if m == 1 and a == 0), -1)
        self._closed: dict[tuple[int, ...], np.ndarray] = {}
        self._packs: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}
        self._slices: dict[tuple[int, int, int], tuple[int, int]] = {}
        self._bytes = 0

    def open_classes(self, s_f: float, tau: float, s: int, e: int) -> list[tuple[int, int, int]] | None:
        """``(class, start, end)`` (its members ``members[start:end]`` inside ``[s, e)``) of every
        class with members there whose bound ``m * s_f + a`` reaches ``tau``; None when the plain
        class (1, 0) is among them (every unadjusted item of the domain could climb: the fetch
        was too shallow)."""
        out = []
        for c, (m, a) in enumerate(zip(self.mul, self.add)):
            bound = m * s_f + a
            if bound < tau - _MARGIN * (1.0 + abs(tau) + abs(bound)):
                continue
            got = self._slices.get((c, s, e))
            if got is None:
                lo, hi = self.members[self.starts[c] : self.starts[c + 1]].searchsorted((s, e)).tolist()
                got = self._slices[(c, s, e)] = (lo, hi)
                if len(self._slices) > _SLICES_MAX:
                    self._slices.clear()
            if got[1] > got[0]:
                if c == self.plain:
                    return None
                out.append((c, *got))
        return out

    def closed(self, ids: tuple[int, ...]) -> np.ndarray:
        """Boolean per class: not in ``ids`` (cached per set of classes)."""
        got = self._closed.get(ids)
        if got is None:
            got = np.ones(len(self.mul), dtype=bool)
            got[list(ids)] = False
            self._closed[ids] = got
        return got

    def packed(self, c: int, unit: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(class ``c``'s members' vectors, contiguous, or None past the memory cap; their
        vector rows), in member order."""
        got = self._packs.get(c)
        if got is None:
            members = self.members[self.starts[c] : self.starts[c + 1]]
            size = len(members) * unit.shape[1] * 4
            vecs = None
            if self._bytes + size <= min(_PACK_MAX_BYTES, unit.nbytes // 8):
                vecs = np.take(unit, members, axis=0)
                self._bytes += size
            got = self._packs[c] = (vecs, perm[members])
        return got


class AdjustMixin:
    """The boost/bury paths of :class:`~recsys.search.searcher.FilteredSearcher` (its ``unit``,
    ``view``, ``_select``, ``_canon`` and ``_static_hnsw_cost``)."""

    def _adjusted_overfetch_ok(self, plan: str) -> bool:
        """Whether a boosted/buried config may be answered from an over-fetch under ``plan``:
        not with identical vectors (their exact completion ranks raw scores) nor hnswlib's
        filter callback (forced, for comparison: exact search answers it)."""
        return plan in ("auto", "hnsw_overfetch") and self._tie_of is None

    def _adjusted_prefers_exact(self, rows: int) -> bool:
        """Whether one dense scan of ``rows`` rows costs less than the bounded over-fetch of
        ``_FETCH_MIN`` candidates (the planner's measured ``_S_*`` costs; the largest such block
        is computed once per searcher and index)."""
        index = self._index
        key = (id(index), index.ef if index is not None else self._ef)
        got = getattr(self, "_adjust_rows_max", None)
        if got is None or got[0] != key:
            limit = self._static_hnsw_cost(_FETCH_MIN) + _S_ADJUST_BASE - _S_EXACT_BASE
            per_row = _S_GEMV_ROW * self._dscale + _S_SELECT_ROW
            most = int(limit / per_row)
            if most * self.dim * 4 > _S_CACHE_BYTES:  # beyond the caches: the cold rate
                most = max(
                    _S_CACHE_BYTES // (self.dim * 4),
                    int(limit / (_S_GEMV_ROW_COLD * self._dscale + _S_SELECT_ROW)),
                )
            got = self._adjust_rows_max = (key, most)
        return rows <= got[1]

    def _exact_block_adjusted(
        self, qq: Query, s: int, e: int, seed: int, banned: np.ndarray | None, n_elig: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact adjusted top k over the block ``[s, e)`` of which every row is eligible but the
        ``seed`` position (-1: none) and ``banned`` positions: what :meth:`_exact` and
        :meth:`_select` do for it (one product, the adjustment, one selection), in fewer steps (no
        ranked-list rules, no identical vectors)."""
        k, q = qq.k, qq.q
        mul, add = qq.cf.adjust
        sc = _matvec(self.unit[s:e], q)
        sc *= mul[s:e]
        sc += add[s:e]
        if s <= seed < e:
            sc[seed - s] = -np.inf
        if banned is not None:
            sc[banned - s] = -np.inf
        f, m = min(k, n_elig), e - s
        if f < m:  # the top f are eligible: exactly n_elig rows are finite
            kp = np.argpartition(sc, m - f)[m - f :] + s
        else:
            kp = np.flatnonzero(np.isfinite(sc)) + s
        # not rescored as _canon does for a batch's matrix product: a boosted/buried config is
        # answered seed by seed through this same path in Explore, the API and precompute
        ks = sc[kp - s]
        order = np.lexsort((kp, -ks))  # ties: lower position first
        return kp[order], ks[order]

    def _rank_adjusted(
        self,
        qq: Query,
        cand: Any,
        rows: np.ndarray,
        dist: np.ndarray | None,
        fetched_all: bool,
        n_elig: int,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int], bool]:
        """The adjusted top k from the fetch (``rows``, hnswlib's distances ``dist`` = 1 - dot or
        None, best first) and the open classes (module docstring); ``fetched_all``: the fetch is
        the whole catalogue; ``n_elig``: the eligible items. Returns ``(positions, scores,
        dropped, final)``; not final: the over-fetch fell short (fetch more or search exactly)."""
        cf, k, q = qq.cf, qq.k, qq.q
        cfg = cf.config
        cl = cf.adjust_classes
        if cl is None:  # once per compiled filter (a race builds it twice, harmlessly)
            cl = cf.adjust_classes = AdjustClasses(cf.adjust, self.view)
        rows = rows.view(np.int64)  # knn_one's labels are uint64: indexing with them is slower
        if dist is not None and type(cand) is KeyRange:  # the hot path: hnswlib's scores
            ok = cand.eligible(rows)
            er = rows[ok]
            adj = 1.0 - dist[ok]
        else:  # the general path (a domain mask), or a batch's fetch without distances
            er = self.view.perm[cand.positions(rows)]
            adj = _matvec(np.take(self.unit, self.view.pos_of_row[er], axis=0), q)
        cid = cl.by_row[er]
        adj *= cl.mul32[cid]
        adj += cl.add32[cid]
        ranked = cfg.max_per_brand is not None or cfg.min_similarity is not None
        none = er[:0], adj[:0], {}, False
        if not (fetched_all or len(er) >= n_elig):  # else the fetch holds every eligible item
            if len(rows) == 0:
                return none
            if ranked:
                kp, ks, _ = self._select(adj.copy(), self.view.pos_of_row[er], 0, len(er), k, cfg)
                tau = ks[k - 1] if len(kp) >= k else cfg.min_similarity
            else:
                tau = np.partition(adj, len(adj) - k)[len(adj) - k] if len(adj) >= k else None
            if tau is None:
                return none
            s_f = (
                1.0 - float(dist[-1])
                if dist is not None
                else float(self.unit[self.view.pos_of_row[rows[-1]]] @ q)
            )
            s, e = qq.span if qq.span is not None else (0, self.n)
            opened = cl.open_classes(s_f, float(tau), s, e)
            if opened is None:
                return none
            if opened:
                if sum(hi - lo for _, lo, hi in opened) * _COST_GATHER > e - s:
                    return none  # an exact scan of the domain costs less
                keep = cl.closed(tuple(c for c, _, _ in opened))[cid]  # the open classes: below
                parts_r, parts_s = [er[keep]], [adj[keep]]
                for c, lo, hi in opened:
                    vecs, crow = cl.packed(c, self.unit, self.view.perm)
                    rr = crow[lo:hi]
                    okx = cand.eligible(rr)
                    if vecs is not None:
                        sc = _matvec(vecs[lo:hi], q)[okx]
                    else:
                        sc = _matvec(np.take(self.unit, self.view.pos_of_row[rr[okx]], axis=0), q)
                    sc *= cl.mul32[c]
                    sc += cl.add32[c]
                    parts_r.append(rr[okx])
                    parts_s.append(sc)
                er, adj = np.concatenate(parts_r), np.concatenate(parts_s)
        cp = self.view.pos_of_row[er]
        if ranked:
            kp, ks, dropped = self._select(adj, cp, 0, len(cp), k, cfg)
            return *self._canon(kp, q, cf.adjust), dropped, True
        if len(adj) > k:
            top = np.argpartition(adj, len(adj) - k)[len(adj) - k :]
            cp, adj = cp[top], adj[top]
        order = np.lexsort((cp, -adj))  # ties: lower position first, as exact search
        return cp[order], adj[order], {}, True
