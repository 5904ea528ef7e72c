"""Static filters (one eligible set for every seed), category blocks with their own graph, and the trivial filter."""

from __future__ import annotations

import hashlib
import time

import numpy as np

from recsys.search.batch import BLOCK_MAX_SHARE, StaticSet, fetch_for
from recsys.search.compiled import CompiledFilter
from recsys.search.kernels import _matvec
from recsys.search.planner import (
    _BLOCKS_MAX_BYTES,
    _S_CACHE_BYTES,
    _S_EXACT_BASE,
    _S_GEMV_ROW,
    _S_GEMV_ROW_COLD,
    _S_SELECT_ROW,
    _SUB_AFTER,
)
from recsys.search.query import FlagRange, Query
from recsys.search.result import SearchResult, ids_at
from recsys.topk import topk

#: ef_construction of the graphs the searcher builds in the background: a better graph costs build
#: time off the request path, where a larger query ef would cost every query (a 100k-item
#: category block of 1M: recall@10 0.994-0.998 at ef=64 built with 100-200; 0.985 in one build
#: with 100; a query at ef=128 instead costs 1.4x)
SUB_EF_CONSTRUCTION = 200

#: category-block graphs kept for sharing between compiled filters of one mask: at most this
#: many, and at most ``_BLOCKS_MAX_BYTES`` together (the oldest dropped first; a compiled filter
#: that adopted one keeps it while it is cached)
_SHARED_BLOCKS_MAX = 64


class StaticMixin:
    """The static-filter paths of :class:`FilteredSearcher`."""

    def _static_counts(self, qq: Query) -> tuple[dict[str, int], bool, list[str]]:
        """(removed_by_rule, adult items excluded, skipped rules) of a static filter's query, from
        the rule table.

        A static filter's seed rules (``varies=False``: the adult rule, the seed's exclusion)
        depend on the seed only through whether there is one and whether it is adult, so the
        resolved counts are cached per compiled filter under that key.
        """
        cf, pos, v = qq.cf, qq.pos, self.view
        key = -1 if pos is None else int(v.adult[pos]) if v.n_adult else 0
        got = cf.static_counts.get(key)
        if got is None:
            r = self._seed_rules(cf, pos)
            got = cf.static_counts[key] = (r.removed, r.no_adult, r.skipped)
        return dict(got[0]), got[1], list(got[2]) if got[2] else []

    def _search_static(self, qq: Query) -> SearchResult | None:
        """A lean static filter: an over-fetch sized to its share of the catalogue, or exact search
        over its dense eligible block (one BLAS matrix-vector product, no gather).

        None while the eligible set is being built in the background (the general path answers).
        """
        v, cf, pos, k, q = self.view, qq.cf, qq.pos, qq.k, qq.q
        removed, no_adult, skipped = self._static_counts(qq)
        ss = self._static_set(cf, no_adult)
        if ss is None:
            return None
        qq.removed, qq.skipped = removed, skipped
        seed_row = -1
        if "exclude_seed" in removed:
            row = int(v.perm[pos])
            if ss.ok_by_row[row]:
                seed_row = row
        m = ss.n - (seed_row >= 0)
        if m == 0:
            return self._empty(qq)
        sub = ss.sub
        if sub is None:
            self._maybe_sub(cf, ss, no_adult)
        elif ss.n > k + 1:  # the filter's own graph: no over-fetch, no eligibility test
            got = self._subindex_answer(qq, ss, seed_row, m)
            if got is not None:
                return got
        need = k + (seed_row >= 0)
        got = ss.costs.get((need, self.n))
        if got is None:
            got = ss.costs[(need, self.n)] = (fetch_for(need, ss.n / self.n, self.n), 0.0, 0.0)
        fetch = got[0]
        plan = "exact_subset"
        if not self._static_prefers_exact(cf, ss, fetch):
            cand = FlagRange(ss.ok_by_row, seed_row, v.pos_of_row)
            got = self._overfetch(qq, cand, fetch, m, m, True, True, False, False)  # lean, no refetch
            if got is not None:
                return got
            plan = "hnsw_overfetch+exact_fallback"
        block = ss.dense() if ss.block is not None else np.take(self.unit, ss.pos, axis=0)
        sc = _matvec(block, q)
        if seed_row >= 0:
            sc[ss.column(pos)] = -np.inf
        if self._tie_of is not None:
            self._snap_ties(sc, ss.pos, q)
        kk = min(k, m)
        if self._tie_of is not None and kk < len(sc):  # every copy of a tied score at the cut
            top = np.argpartition(sc, len(sc) - kk)[len(sc) - kk :]
            top = np.flatnonzero(sc >= sc[top].min())
            order = np.lexsort((top, -sc[top]))  # ties: lower position first (columns are in position order)
            top = top[order][:kk]
            top = top[np.isfinite(sc[top])]
        else:
            top, vals = topk(sc, kk)  # ties: lower column, i.e. lower position, first
            if vals[kk - 1] == -np.inf:  # the seed's column (-inf) made the cut
                top = top[np.isfinite(vals)]
        kp, ks = self._canon(ss.pos[top], q)
        return self._result(qq, kp, ks, None, plan, m)

    def _subindex_answer(
        self, qq: Query, ss: StaticSet, seed_row: int, m: int, drop: list[int] | None = None
    ) -> SearchResult | None:
        """One query on an eligible set's own graph for k + 1, the seed dropped (None: hnswlib#444);
        ``drop``: rows of the set excluded too (a seed's do-not-associate items), fetched beyond."""
        k = qq.k
        try:
            cols, dist = ss.sub.knn_query(qq.q[None, :], k=k + 1 + (len(drop) if drop else 0), num_threads=1)
        except RuntimeError:  # hnswlib#444
            return None
        rl, dl = ss.rows[cols[0].astype(np.int64)].tolist(), dist[0].tolist()
        if drop:
            keep = [j for j, r in enumerate(rl) if r not in drop][: k + 1]  # then as without
            rl, dl = [rl[j] for j in keep], [dl[j] for j in keep]
        return self._lean_answer(qq, rl, dl, seed_row, "hnsw_subindex", m)

    def _lean_answer(
        self, qq: Query, rl: list[int], dl: list[float], seed_row: int, plan: str, n_elig: int
    ) -> SearchResult:
        """The answer of k + 1 (or k) rows of a graph with hnswlib's distances: the seed's row
        dropped when it is among them, else the list cut at k."""
        if seed_row >= 0 and seed_row in rl:
            j = rl.index(seed_row)
            del rl[j], dl[j]
        else:
            del rl[qq.k :], dl[qq.k :]
        return SearchResult(
            ids_at(self.view.item_id_by_row, rl),
            [1.0 - d for d in dl],
            rl,
            qq.removed,
            plan,
            n_elig,
            (time.perf_counter() - qq.t0) * 1e3,
            qq.skipped,
            qq.seed_id,
        )

    def _search_block(
        self, qq: Query, s: int, e: int, no_adult: bool, drop: list[int] | None = None
    ) -> SearchResult | None:
        """A ``same_category`` filter whose seed's category block has its own graph: one query on
        it (``drop``: the vector rows of the seed's do-not-associate items in the block). Counts the
        block's uses and queues its graph (background) once it is used often and exact search over
        it costs clearly more than a beam search; None until it is ready."""
        cf = qq.cf
        key = (s, e, no_adult)
        ss = cf.blocks.get(key)
        if ss is None and self._shared_blocks:  # a filter of the same mask may have built it
            digest = cf.mask_digest if not self._inline() else self._mask_digest(cf)
            if digest is None:  # hashing the mask is O(n): never on a request (built in the background)
                self._bg.submit((id(cf), "digest"), lambda: self._mask_digest(cf))
            else:
                ss = self._shared_blocks.get((digest, *key))
                if ss is not None:
                    cf.blocks[key] = ss
        if ss is None:
            self._block_use(cf, key)
            return None
        n_drop = len(drop) if drop else 0
        if ss.sub is None or ss.n <= qq.k + 1 + n_drop:
            return None
        row = int(self.view.perm[qq.pos])
        seed_row = row if cf.config.exclude_seed and ss.ok_by_row[row] else -1
        return self._subindex_answer(qq, ss, seed_row, ss.n - (seed_row >= 0) - n_drop, drop)

    def _block_use(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> None:
        """Count one query of a ``same_category`` filter's block (start, end, adult excluded) that
        has no graph yet, and queue its graph once the block is used often and exact search over
        it costs clearly more than a beam search. Called by the block's queries on the seed-table
        path (:meth:`_search_block`) and by the filter's first queries, which the inverted lists
        answer until its seed table is built (:meth:`_search_cold`): counted only from the table
        on, a block's first ``_SUB_AFTER`` table queries came after the lists' and its graph was
        queued late (at 100k items, a filter's first 200 queries over ten 10k-row categories
        queued none, and the next few hundred were answered by over-fetches and block scans)."""
        uses = cf.block_uses[key] = cf.block_uses.get(key, 0) + 1
        s, e, _ = key
        rows = e - s
        if (
            uses >= _SUB_AFTER
            and rows >= self.sub_index_min_rows
            and rows <= BLOCK_MAX_SHARE * self.n
            and cf.block_bytes < _BLOCKS_MAX_BYTES
        ):
            gemv = _S_GEMV_ROW if rows * self.dim * 4 <= _S_CACHE_BYTES else _S_GEMV_ROW_COLD
            c_x = _S_EXACT_BASE + rows * (gemv * self._dscale + _S_SELECT_ROW)
            if c_x >= self.sub_index_gain * self._static_hnsw_cost(0):
                self._queue_block(cf, key)

    def _queue_block(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> None:
        s, e, no_adult = key
        index = self._index if self._index is not None else self.index
        space = "cosine" if self.space == "cosine" else "ip"

        def build() -> None:
            if key in cf.blocks:
                return
            got = self._shared_blocks.get((self._mask_digest(cf), *key))
            if got is not None:  # built meanwhile for a filter of the same mask
                cf.blocks[key] = got
                return
            mask = np.zeros(self.n, dtype=bool)
            mask[s:e] = cf.base_mask[s:e]
            if no_adult:
                mask[s:e] &= ~self.view.adult[s:e]
            ss = StaticSet(mask, self.view.perm, self.view.pos_of_row, self.unit)
            ss.build_sub(space, index.M, max(index.ef_construction, SUB_EF_CONSTRUCTION), index.ef)
            cf.block_bytes += ss.nbytes
            cf.blocks[key] = ss  # published whole, with its graph
            self._share(cf, key, ss)

        if self._inline():
            build()
        else:
            self._bg.submit((id(cf), "block", key), build)

    def _mask_digest(self, cf: CompiledFilter) -> bytes:
        """A digest of the compiled filter's base mask (computed once): filters of one mask share
        their graphs through ``_shared_blocks``. O(n) (2 ms at 1M items): called by background
        builds, or inline on a small catalogue, never by a request of a large one."""
        if cf.mask_digest is None:
            cf.mask_digest = hashlib.blake2b(cf.base_mask.tobytes(), digest_size=16).digest()
        return cf.mask_digest

    def _share(self, cf: CompiledFilter, key: tuple, ss: StaticSet) -> None:
        """Keep ``ss`` (with its graph) for the filters of ``cf``'s mask, beyond ``cf``'s own life in
        the compiled-filter cache; the store is swapped whole, so readers never see it change size."""
        shared = self._shared_blocks.copy()
        shared[(self._mask_digest(cf), *key)] = ss
        while len(shared) > 1 and (
            len(shared) > _SHARED_BLOCKS_MAX or sum(x.nbytes for x in shared.values()) > _BLOCKS_MAX_BYTES
        ):
            shared.popitem(last=False)
        self._shared_blocks = shared

    def _shared_static(self, cf: CompiledFilter, no_adult: bool, build: bool = False) -> StaticSet | None:
        """A static filter's eligible set with its own graph, built for an earlier compiled filter
        of the same mask (one that left the compiled-filter cache: a million-item catalogue keeps
        six); adopted into ``cf.sets``. None when there is none, or (unless ``build``: a background
        or inline build) while the mask's digest is not known yet."""
        if not self._shared_blocks:
            return None
        digest = self._mask_digest(cf) if build or self._inline() else cf.mask_digest
        if digest is None:
            return None
        ss = self._shared_blocks.get((digest, "static", no_adult))
        if ss is not None:
            cf.sets[no_adult] = ss
            cf.table_ok = True
        return ss

    def _maybe_sub(self, cf: CompiledFilter, ss: StaticSet, no_adult: bool, uses: int = 1) -> None:
        """Queue a static filter's own HNSW index when it keeps being used (``uses``: the seeds of
        this call; a batch counts each) and exact search over its block costs clearly more than a
        beam search (a brand or price filter keeping a few percent of a large catalogue); built on
        one background thread, published atomically, and kept for later filters of the same mask."""
        if ss.sub is not None:
            return
        cf.seeded_queries += uses
        if ss.block is None or ss.n < self.sub_index_min_rows or cf.seeded_queries < _SUB_AFTER:
            return
        if self._static_exact_cost(ss) < self.sub_index_gain * self._static_hnsw_cost(0):
            return
        index = self._index if self._index is not None else self.index
        space = "cosine" if self.space == "cosine" else "ip"

        def build() -> None:
            ss.build_sub(space, index.M, max(index.ef_construction, SUB_EF_CONSTRUCTION), index.ef)
            if ss.sub is not None:
                self._share(cf, ("static", no_adult), ss)

        if self._inline():
            build()
        else:
            self._bg.submit((id(cf), "sub", no_adult), build)

    def _search_trivial(self, qq: Query) -> SearchResult | None:
        """No rule bites (the default config on a catalogue without adult items): one knn_query
        for k + 1, the seed dropped from the list. None when hnswlib cannot reach that many."""
        n, k = self.n, qq.k
        qq.removed, _, qq.skipped = self._static_counts(qq)
        ex = "exclude_seed" in qq.removed
        kq = k + 1 if ex else k
        index = self._index if self._index is not None else self.index
        try:
            labels, dist = index._index.knn_query(qq.q[None, :], k=kq if kq <= n else n, num_threads=1)
        except RuntimeError:  # hnswlib#444
            return None
        seed_row = int(self.view.perm[qq.pos]) if ex else -1
        return self._lean_answer(qq, labels[0].tolist(), dist[0].tolist(), seed_row, "hnsw_overfetch", n - ex)
