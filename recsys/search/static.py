"""Static filters (one eligible set for every seed), category blocks with their own graph, and the trivial filter."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from recsys.search.batch import BLOCK_MAX_SHARE, StaticSet, fetch_for, lost_fetch, near_full, padded_take
from recsys.search.beams import beam_for, seed_lost
from recsys.search.compiled import CompiledFilter
from recsys.search.kernels import _matvec
from recsys.search.planner import (
    _BIG_SUBS_MAX_BYTES,
    _BLOCK_GRAPHS_MAX_BYTES,
    _BLOCKS_MAX_BYTES,
    _FETCH_MIN,
    _S_CACHE_BYTES,
    _S_EXACT_BASE,
    _S_GEMV_ROW,
    _S_GEMV_ROW_COLD,
    _S_OVERFETCH_WORK,
    _S_SELECT_ROW,
    _SUB_AFTER,
)
from recsys.search.query import FlagRange, KeyRange, Query, first_in_range_except
from recsys.search.result import SearchResult, ids_at
from recsys.topk import topk

#: ef_construction of the graphs the searcher builds in the background: a better graph costs build
#: time off the request path, where a larger query ef would cost every query (a 100k-item
#: category block of 1M: recall@10 0.994-0.998 at ef=64 built with 100-200; 0.985 in one build
#: with 100; a query at ef=128 instead costs 1.4x)
SUB_EF_CONSTRUCTION = 200

#: category-block graphs kept for sharing between compiled filters of one mask: at most this
#: many, and those no cached filter holds at most ``_SHARED_SPARE_BYTES`` together (the oldest
#: dropped first; a compiled filter that adopted one keeps it while it is cached)
_SHARED_BLOCKS_MAX = 64
_SHARED_SPARE_BYTES = 256 << 20


#: a query of a category block whose first over-fetch fell short counts as this many uses of the
#: block (:meth:`StaticMixin._block_use`): such a query costs a second fetch and an exact search
#: over the block, 4 to 20 raw queries' time at 100k items, where a plain use costs about one
#: more than the graph's answer would
_MISS_USES = 4


#: a category filter's level is partitioned once this many of its blocks have had their graphs
#: queued by their own uses (:meth:`StaticMixin._field_use`): every other block of the level above
#: the bars a block's graph must pass (``sub_index_min_rows``, at most ``BLOCK_MAX_SHARE`` of the
#: catalogue, exact search dearer than ``sub_index_gain`` beam searches) is then queued too, most
#: used and largest first, within the filter's ``_BLOCKS_MAX_BYTES``. One hot category says that
#: category is in use; a second says the filter is used across the field's values, as a vector
#: engine's payload index or partition key covers every value of the field, not the ones queried
#: so far (Qdrant builds a filterable subgraph per value of an indexed keyword field; Milvus
#: indexes every partition of a partition key)
_FIELD_AFTER = 2
#: ... or once the level has had this many plain uses over at least ``_FIELD_AFTER`` of its blocks
#: (``cf.block_uses[LEVEL_USES]``), whatever each block's own count: a level whose values are each
#: used rarely but which is used across many values is in use as a whole (at 1M items a 1% level's
#: hundred 10k-row blocks got about two uses each in the bench's 220 queries, so no block reached
#: ``_SUB_AFTER`` and none got a graph: exact scans at 1.30x and 1.44x raw hnswlib's p50; issue
#: 18, s36-L). As many uses as the per-block rule asks of its ``_FIELD_AFTER`` blocks
_LEVEL_AFTER = _FIELD_AFTER * _SUB_AFTER
#: the key of a filter's level-wide count in ``cf.block_uses`` (its blocks' keys are 3-tuples)
LEVEL_USES = ("level",)
_LEVEL_BLOCKS = ("level", "blocks")


def block_bytes_estimate(rows: int, dim: int, M: int, n: int) -> int:
    """Bytes a category block of at most ``BLOCK_MAX_SHARE`` of ``n`` items holds once its graph is
    built: the graph (:meth:`StaticSet.build_sub`'s count), its positions and rows, and
    ``ok_by_row``. Its dense copy is its build's only (dropped once the graph is published:
    :meth:`StaticMixin._queue_block`; the graph holds the vectors). Kept, the copy was 38% of a
    100k-row block's bytes at 1M x 64 (25.6 of 68 MB): a filter's budget held 4 of a 10% level's
    10 graphs, and the other 6 blocks' seeds over-fetched the main graph (issue 18, s35-L)."""
    return block_graph_bytes(rows, dim, M) + n


def block_graph_bytes(rows: int, dim: int, M: int) -> int:
    """Bytes of a block over ``BLOCK_MAX_SHARE`` with its graph (:meth:`StaticSet.build_sub`'s
    count, and its positions and rows; no dense copy of the block is kept)."""
    return rows * (dim * 4 + 2 * M * 4 + 16 + 16)


def flat_view(arr: np.ndarray) -> memoryview:
    """A flat memoryview of a C-contiguous array: one element read costs a plain index, no NumPy
    dispatch (bool arrays read as bool, int32/int64 as int)."""
    arr = np.ascontiguousarray(arr)
    return memoryview(arr.reshape(-1)).cast("B").cast(arr.dtype.char)


def graph_row(ss: StaticSet, seed_row: int, row: int) -> int:
    """The row whose absence from a beam search on the set's own graph ``ss.sub`` tells it lost
    (:func:`~recsys.search.beams.seed_lost`): ``seed_row`` (the seed's row, dropped from its list:
    eligible with ``exclude_seed``), else ``row`` (the seed's vector row, -1: none) when the set
    holds it, its list showing it (``exclude_seed=False``) or not; -1 when the graph does not hold
    the seed (nothing there to miss). The seed's own vector is in the graph either way."""
    if seed_row >= 0:
        return seed_row
    return row if row >= 0 and ss.ok_by_row[row] else -1


def block_key_views(cf: Any, key: tuple[int, int, bool], ss: StaticSet) -> None:
    """Publish ``cf.block_key_views[key]``: the block's set and, per key variant of the filter's
    seed table, the keys in its graph's label order as a flat view (a gather of the block's keys:
    0.2 to 1 ms, so built with the block's graph or queued, never on a query; the shortcut's
    :func:`block_first` reads them). Nothing without a seed table or a graph."""
    kvs = cf.table_kvs
    if kvs and ss.sub is not None:
        cf.block_key_views[key] = (ss, [flat_view(kv.by_row[ss.rows]) for kv in kvs])


def block_first(
    ss: StaticSet,
    q2: np.ndarray,
    k: int,
    key_by_row: Any,
    lo: int,
    hi: int,
    seed_row: int,
    drop: list[int] | None,
    n_elig: int,
    rows_of: Any = None,
    self_first: bool = True,
    keys_by_col: Any = None,
    row: int = -1,
) -> tuple[list[int], list[float]] | None:
    """The first k labels of an over-fetch on a category block's graph ``ss.sub`` whose key
    (``key_by_row``: an array or a flat memoryview) lies in ``[lo, hi)``, other than the seed's
    row and the rows ``drop``: their vector rows and hnswlib's distances, best first. The fetch
    is sized to the range's share of the block (:func:`fetch_for`, as a static filter's). None
    when fewer than ``min(k, n_elig)`` are among them (the graph's every item fetched: final),
    or hnswlib#444. ``rows_of``: a flat memoryview of ``ss.rows`` (the shortcut's): the labels'
    rows and keys are read one by one, no NumPy call after the beam search (each costs
    microseconds of cold dispatch there), the keys only up to the k-th in range. None too for a
    beam search that missed the seed's own vector, the seed in range (:func:`~recsys.search.
    beams.seed_lost`; ``self_first``: the query is the seed's own vector): the caller's
    exact-backed plans answer, as for a fetch that falls short. ``keys_by_col``: with ``rows_of``,
    the keys by the graph's labels (``key_by_row[ss.rows]``, flat: :func:`block_key_views`):
    the labels are read as rows only up to the k-th in range, and only those in range, where a
    search whose first label is the seed's own row (or of a seed not judged) needs no more (issue
    18 at 100k, correlated 50% + price band: translating the fetch's 64 labels to rows and reading
    each one's key through its row cost about a tenth of the query). ``row``: the seed's vector
    row, the beam's test when the seed is not dropped (:func:`graph_row`: ``exclude_seed=False``)."""
    out = set(drop) if drop else set()
    if seed_row >= 0:
        out.add(seed_row)
    m = ss.n
    fetch = min(m, max(_FETCH_MIN, fetch_for(k + len(out), n_elig / m, m)))
    test = graph_row(ss, seed_row, row)
    judged = test >= 0 and self_first
    if keys_by_col is not None and not (judged and (test in ss.lost or test in ss.near)):
        try:
            cols, dist = ss.sub.knn_query(q2, fetch, 1)
        except RuntimeError:  # hnswlib#444
            return None
        (cl,) = cols.tolist()
        if not judged or (cl and rows_of[cl[0]] == test):  # not lost: its own row first
            ss.uses += 1
            (dl,) = dist.tolist()
            sel, got_rows = [], []
            for j, c in enumerate(cl):
                if lo <= keys_by_col[c] < hi:
                    r = rows_of[c]
                    if r not in out:
                        sel.append(j)
                        got_rows.append(r)
                        if len(sel) == k:
                            break
            if len(sel) < min(k, n_elig) and fetch < m:
                return None
            return got_rows, [dl[j] for j in sel]
        # the seed not first: judged (and asked again wider when lost) by member_labels below
    # (where a seed known lost, or found lost at the build with its exact list, goes at once)
    got = member_labels(ss, q2, fetch, test, judged, rows_of)
    if got is None:
        return None
    rows, dl, fetch = got
    ss.uses += 1
    if isinstance(key_by_row, np.ndarray):
        keys = key_by_row[np.asarray(rows, dtype=np.int64)].tolist()
    else:
        keys = map(key_by_row.__getitem__, rows)  # lazy: read up to the k-th in range
    sel = first_in_range_except(keys, rows, lo, hi, out, k)
    if len(sel) < min(k, n_elig) and fetch < m:
        return None
    return [rows[j] for j in sel], [dl[j] for j in sel]


#: a key range inside a category block whose k + 1-th label is expected past this share of the main
#: fetch (were the seed's neighbours all in its block) is searched on the block's graph when it has
#: one (:meth:`StaticMixin._in_block_choice`): at 1M items (ef 64) the main fetch's recall@10 for
#: a correlated category 50% + price band read 0.995 for seeds expected 16 to 32 labels deep and
#: 0.96 for those 32 to 45 deep (600 seeds of their own, not the bench's)
_DEEP_SHARE = 0.5
#: the list length a big static set's graph is weighed for (:meth:`StaticMixin._maybe_big_sub`):
#: the default k
_BIG_K = 10
#: the share of a filter's first over-fetches that must fall short before a category block too
#: big for the filter's block budget gets its graph from its misses (:meth:`StaticMixin.
#: _big_block_miss`): from it on the retries are the filter's p99
_BIG_MISS_SHARE = 0.01
#: a big set's graph waits this many of the filter's uses for the main index's beams (measured in
#: the background when the searcher is created) before it is decided against
_BIG_WAIT_USES = 4 * _SUB_AFTER


def graph_rows(
    ss: StaticSet, q2: np.ndarray, fetch: int, rows_of: Any = None
) -> tuple[list[int], list[float]] | None:
    """``fetch`` labels of one beam search on the set's graph ``ss.sub`` as vector rows (through
    ``rows_of``, a flat memoryview of ``ss.rows``, when given: no NumPy call after the search)
    and hnswlib's distances, best first; None on hnswlib#444."""
    try:
        cols, dist = ss.sub.knn_query(q2, fetch, 1)
    except RuntimeError:  # hnswlib#444
        return None
    if rows_of is not None:
        (cl,) = cols.tolist()
        rows = list(map(rows_of.__getitem__, cl))
    else:
        rows = ss.rows[cols[0].view(np.uint64).astype(np.int64)].tolist()
    (dl,) = dist.tolist()
    return rows, dl


def lost_answer(
    ss: StaticSet, q2: np.ndarray, fetch: int, seed_row: int, rows_of: Any = None, known: bool = False
) -> tuple[list[int], list[float], int] | None:
    """A member seed's labels on its set's graph (vector rows, hnswlib's distances, the fetch that
    gave them) when a beam search of ``fetch`` labels missed it (:func:`~recsys.search.beams.
    seed_lost`): asked again 4x wider, then 16x (:func:`~recsys.search.batch.lost_fetch`); None
    when still lost (the callers' exact-backed plans answer) or hnswlib#444. What it finds is kept in ``ss.lost``
    (the fetch that reached the seed, 0 for none), and a seed found there (``known``) starts at
    that fetch (at least ``fetch``): a lost seed asked again pays one search, not three or four
    (issue 18 at 1M: 0.28% of a 10% block's members are lost at its graph's ef, 23 of its 275
    still at 4x, 16 at 16x; s37-L). ``rows_of``: a flat memoryview of ``ss.rows``, else the
    array is read."""
    if known:
        first = ss.lost.get(seed_row, 0)
        if not first:
            return None
        f: int | None = max(fetch, first)
    else:
        f = lost_fetch(fetch, ss.sub.ef, ss.n)
    while f is not None:
        labels = graph_rows(ss, q2, f, rows_of)
        if labels is None:  # hnswlib#444
            return None
        rows, dl = labels
        if rows[0] == seed_row or not seed_lost(seed_row, rows, dl):
            ss.lost[seed_row] = f
            return rows, dl, f
        f = lost_fetch(f, ss.sub.ef, ss.n)
    ss.lost[seed_row] = 0
    return None


def member_labels(
    ss: StaticSet, q2: np.ndarray, fetch: int, seed_row: int, judged: bool, rows_of: Any = None
) -> tuple[list[int], list[float], int] | None:
    """``fetch`` labels of the set's graph for the query ``q2`` (vector rows, hnswlib's distances,
    the fetch that gave them): one beam search, or, for a member seed (``judged``: ``seed_row`` is
    a member and the query is its own vector) whose search is lost, :func:`lost_answer`'s (a
    seed known lost goes to its fetch at once). None on hnswlib#444 or a seed still lost: the
    callers' exact-backed plans answer. The one path of :func:`block_first`, the general path's
    ``_subindex_answer`` and the shortcut's ``_fast_block``.

    A member seed found lost when the graph was built (``ss.near``) is answered from its exact
    list, no search, when the list is at least ``fetch`` long (or the whole set): its labels are
    the set's exact order, so the first k that pass the caller's test are the exact answer
    whenever k of them are in it (the callers' fill checks hold: the ``fetch`` returned is the
    list's length). A longer fetch (a narrow band) goes the way it went before."""
    if judged and ss.near:
        near = ss.near.get(seed_row)
        if near is not None and (len(near[0]) >= fetch or len(near[0]) >= ss.n):
            return near[0].tolist(), near[1].tolist(), len(near[0])
    if judged and ss.lost and seed_row in ss.lost:
        return lost_answer(ss, q2, fetch, seed_row, rows_of, known=True)
    labels = graph_rows(ss, q2, fetch, rows_of)
    if labels is None:  # hnswlib#444
        return None
    rows, dl = labels
    if judged and rows[0] != seed_row and seed_lost(seed_row, rows, dl):
        return lost_answer(ss, q2, fetch, seed_row, rows_of)
    return rows, dl, fetch


class StaticMixin:
    """The static-filter paths of :class:`FilteredSearcher`."""

    #: most memory the graphs of static sets over ``BLOCK_MAX_SHARE`` may hold together, over the
    #: compiled filters in the cache (:meth:`_maybe_big_sub`)
    big_sub_max_bytes = _BIG_SUBS_MAX_BYTES
    #: most memory all category-block graphs of at most ``BLOCK_MAX_SHARE`` may hold together
    #: (:meth:`_fit_block_graph`)
    block_graphs_max_bytes = _BLOCK_GRAPHS_MAX_BYTES

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
        self,
        qq: Query,
        ss: StaticSet,
        seed_row: int,
        m: int,
        drop: list[int] | None = None,
        self_first: bool = True,
    ) -> SearchResult | None:
        """One query on an eligible set's own graph for k + 1, the seed dropped (None: hnswlib#444,
        or a beam search that stayed lost); ``drop``: rows of the set excluded too (a seed's
        do-not-associate items), fetched beyond.

        A beam search that did not reach the seed's own vector, the seed a member of the set
        (:func:`~recsys.search.beams.seed_lost`: it missed the seed's neighbourhood, none of its
        labels are the seed's neighbours) is asked again 4x wider, then 16x (the graph's whole
        set at most); still lost, None: the caller's exact-backed plans answer (issue 18 at 1M:
        the rules case's filter alone, two seeds at recall 0 on their block's graph, s36-r).
        ``self_first``: whether the query is the seed's own vector in the graph's space (not a
        boosted graph's, :mod:`recsys.search.adjusted`). A member seed listed itself
        (``exclude_seed=False``: ``seed_row`` -1) is judged the same way (:func:`graph_row`)."""
        k = qq.k
        fetch = k + 1 + (len(drop) if drop else 0)
        q2 = qq.q[None, :]
        test = -1
        if self_first and self._self_first and qq.own:
            test = graph_row(ss, seed_row, int(self.view.perm[qq.pos]) if seed_row < 0 else -1)
        got = member_labels(ss, q2, fetch, test, test >= 0)
        if got is None:
            return None
        rl, dl, _ = got
        if drop:
            keep = [j for j, r in enumerate(rl) if r not in drop][: k + 1]  # then as without
            rl, dl = [rl[j] for j in keep], [dl[j] for j in keep]
        elif len(rl) > k + 1:  # asked again wider
            del rl[k + 1 :], dl[k + 1 :]
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
        ss.uses += 1  # the searcher-wide cap evicts the least used (_fit_block_graph)
        return self._subindex_answer(qq, ss, seed_row, ss.n - (seed_row >= 0) - n_drop, drop)

    def _block_use(self, cf: CompiledFilter, key: tuple[int, int, bool], miss: bool = False) -> None:
        """Count one query of a ``same_category`` filter's block (start, end, adult excluded) that
        has no graph yet, and queue its graph once the block is used often and exact search over
        it costs clearly more than a beam search. Called by the block's queries on the seed-table
        path (:meth:`_search_block`) and by the filter's first queries, which the inverted lists
        answer until its seed table is built (:meth:`_search_cold`): counted only from the table
        on, a block's first ``_SUB_AFTER`` table queries came after the lists' and its graph was
        queued late (at 100k items, a filter's first 200 queries over ten 10k-row categories
        queued none, and the next few hundred were answered by over-fetches and block scans).

        ``miss``: a query of the block whose first over-fetch on the main graph fell short (a seed
        whose vector lies among another category's items: a second fetch, then usually an exact
        search over the block, 4 to 20 raw queries' time), counted as ``_MISS_USES`` uses, by any
        lean filter with a category block (a price band inside it too: :meth:`_block_keyed`
        answers its short seeds from the graph), and for blocks of any size whose graph fits the
        filter's memory budget (a block over ``BLOCK_MAX_SHARE``: a quarter of it at most, 64 MB,
        about 150k rows at d=64; so not at a million items). A plain use counts only for a category filter's blocks of at most
        ``BLOCK_MAX_SHARE`` of the catalogue (the graph then answers all of the block's seeds)."""
        s, e, _ = key
        rows = e - s
        small = rows <= BLOCK_MAX_SHARE * self.n
        if not (miss or small):
            seen = (*key, "seen")  # its plain uses on the lists' and general paths (_miss_ef)
            cf.block_uses[seen] = cf.block_uses.get(seen, 0) + 1
            self._big_block_use(cf, key)
            return
        uses = cf.block_uses[key] = cf.block_uses.get(key, 0) + (_MISS_USES if miss else 1)
        if small and rows >= self.sub_index_min_rows:
            self._level_use(cf, uses == (_MISS_USES if miss else 1))  # a miss: one use of the level
        if uses < _SUB_AFTER or rows < self.sub_index_min_rows or cf.block_bytes >= _BLOCKS_MAX_BYTES:
            return
        if not small:  # a big block's graph: a quarter of the budget at most (a longer build beyond)
            size = block_graph_bytes(rows, self.dim, self._index_M())
            if size > _BLOCKS_MAX_BYTES // 4:  # a half of a million-item catalogue (208 MB)
                self._big_block_miss(cf, key, rows)
                return
            if cf.block_bytes + size > _BLOCKS_MAX_BYTES:
                return
        elif key not in cf.block_queued and self._blocks_reserved(cf, key) >= _BLOCKS_MAX_BYTES:
            return  # the graphs queued and not built yet count as the built ones (the cap above)
        if self._block_worth(rows):
            self._queue_block(cf, key)
            self._field_use(cf, key)

    def _blocks_reserved(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> int:
        """Bytes of ``cf``'s block graphs, built and queued (estimated; block ``key`` aside): a block's
        graph is queued while they are below ``_BLOCKS_MAX_BYTES``, as while the built ones were
        (the last one queued may pass it, as before). Counting the built ones only, a filter's
        queries queued every block that reached its uses in the same round, before any was built:
        at 1M items a boosted config built 7 of its 10 level-1 blocks' graphs, 455 MiB against
        the 256 MiB budget (issue 16, s33-r)."""
        dim, M, n = self.dim, self._index_M(), self.n
        queued = [q for q in list(cf.block_queued) if q not in cf.blocks and q != key]
        return cf.block_bytes + sum(block_bytes_estimate(e - s, dim, M, n) for s, e, _ in queued)

    def _block_worth(self, rows: int) -> bool:
        """Whether exact search over a block of ``rows`` items costs ``sub_index_gain`` beam
        searches or more (a block's graph is worth its build)."""
        gemv = _S_GEMV_ROW if rows * self.dim * 4 <= _S_CACHE_BYTES else _S_GEMV_ROW_COLD
        c_x = _S_EXACT_BASE + rows * (gemv * self._dscale + _S_SELECT_ROW)
        return c_x >= self.sub_index_gain * self._static_hnsw_cost(0)

    def _field_use(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> None:
        """The partition rule: ``key``'s graph was queued by its own uses; from ``_FIELD_AFTER``
        such blocks on, every other block of the filter's category level is queued as well
        (:meth:`_queue_field`, itself a background job: nothing of it runs on the request). Below
        ``background_min_items`` builds run inline, on the request that queues them: there the
        blocks keep their own counts (one build per request at most)."""
        cf.block_queued.add(key)
        if cf.field_queued or len(cf.block_queued) < _FIELD_AFTER or self._inline():
            return
        self._partition_level(cf)

    def _level_use(self, cf: CompiledFilter, new_block: bool) -> None:
        """Count one plain use of a category level's block of at most ``BLOCK_MAX_SHARE`` (and at
        least ``sub_index_min_rows``; ``new_block``: its first), and partition the level
        (:meth:`_queue_field`, a background job) once the level has had ``_LEVEL_AFTER`` of them
        over at least ``_FIELD_AFTER`` blocks. The seed-table shortcut (:mod:`recsys.search.fast`)
        counts its own uses into the same count and sends the query that reaches it here."""
        if cf.field_queued or self._inline():
            return
        uses = cf.block_uses[LEVEL_USES] = cf.block_uses.get(LEVEL_USES, 0) + 1
        if new_block:
            cf.block_uses[_LEVEL_BLOCKS] = cf.block_uses.get(_LEVEL_BLOCKS, 0) + 1
        if uses < _LEVEL_AFTER or cf.block_uses.get(_LEVEL_BLOCKS, 0) < _FIELD_AFTER:
            return
        self._partition_level(cf)

    def _partition_level(self, cf: CompiledFilter) -> None:
        """Queue the graphs of ``cf``'s whole category level (:meth:`_queue_field`, a background
        job), once: by the partition rule (:meth:`_field_use`) or the level's uses
        (:meth:`_level_use`)."""
        cf.field_queued = True
        self._bg.submit((id(cf), "field"), lambda: self._queue_field(cf))

    def _queue_field(self, cf: CompiledFilter) -> list[tuple[int, int, bool]]:
        """Queue the graph of every block of ``cf``'s category level not queued yet that passes
        :meth:`_block_worth` (with its base-mask eligible count), in the adult-rule variants the
        filter's queries used, the most used first, then the largest, while the filter's graphs,
        built and queued, fit ``_BLOCKS_MAX_BYTES``. Each is built and published whole by
        :meth:`_queue_block`; a block's queries meanwhile are answered as before (its seeds' list
        is exact search's, or an over-fetch's). Returns the keys queued (tests)."""
        v, n = self.view, self.n
        lv = min(cf.config.category_level, v.max_level)
        bounds, names = v.cat_bounds[lv], v.cat_names[lv]
        cum = np.concatenate(([0], np.cumsum(cf.base_mask, dtype=np.int64)))
        elig = (cum[bounds[1:]] - cum[bounds[:-1]]).tolist()
        starts = bounds.tolist()
        # the block keys' adult-rule variants ((start, end, no_adult), with a tag or not); the
        # big blocks' depth waits ((key or variant, "depth")) say nothing of a variant used
        variants = sorted({key[2] for key in list(cf.block_uses) if len(key) >= 3}) or [False]
        queued, uses = set(cf.block_queued), dict(cf.block_uses)
        dim, M = self.dim, self._index_M()
        reserved = cf.block_bytes + sum(
            block_bytes_estimate(e - s, dim, M, n) for s, e, na in queued if (s, e, na) not in cf.blocks
        )
        cands = []
        for c, name in enumerate(names.tolist()):
            s, e = starts[c], starts[c + 1]
            if name == "" or elig[c] < self.sub_index_min_rows or e - s > BLOCK_MAX_SHARE * n:
                continue
            if not self._block_worth(e - s):
                continue
            for na in variants:
                key = (s, e, na)
                if key not in queued and key not in cf.blocks:
                    cands.append((-uses.get(key, 0), s - e, key))
        cands.sort()
        out = []
        for _, _, key in cands:
            size = block_bytes_estimate(key[1] - key[0], dim, M, n)
            if reserved + size > _BLOCKS_MAX_BYTES:
                continue
            reserved += size
            cf.block_queued.add(key)
            self._queue_block(cf, key)
            out.append(key)
        return out

    def _index_M(self) -> int:
        index = self._index if self._index is not None else self.index
        return index.M

    def _block_graph(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> StaticSet | None:
        """The category block ``key``'s eligible set when its graph is built (its own, or adopted
        from a filter of the same mask: :meth:`_search_block`), else None."""
        ss = cf.blocks.get(key)
        if ss is None and self._shared_blocks:
            digest = cf.mask_digest if not self._inline() else self._mask_digest(cf)
            if digest is not None:
                ss = self._shared_blocks.get((digest, *key))
                if ss is not None:
                    cf.blocks[key] = ss
        return ss if ss is not None and ss.sub is not None else None

    def _in_block_choice(
        self, cf: CompiledFilter, key: tuple[int, int, bool], n_elig: int, need: int, fetch: int, kv: Any
    ) -> tuple[str | None, StaticSet | None]:
        """A lean key range inside a category block ``key`` (a price band relative to the seed, a
        gender) whose over-fetch of ``fetch`` on the main graph is expected to hold fewer than
        ``need`` eligible labels even were the seed's neighbours all in its block (``fetch`` times
        the range's share of the block: a seed with an extreme price): once the block has its own
        graph, an over-fetch on it (``"block"``, sized to that share) or an exact search over the
        range (``"exact"``; ``kv``: the range's key index), whichever the planner prices lower, instead of a main fetch that would
        fall short first. The same once the block's beam (its fetch sized to the range's share of
        the block, as :func:`block_first` takes it) is priced no higher than the main fetch's,
        whatever the seed: that beam holds only the block's items, so it fills where the main
        one may not (a stray seed), and it runs on a smaller graph (issue 18: a price band inside
        the 10% and 50% category blocks at 100k, 1.4x to 1.6x raw hnswlib with 15% to 20% of its
        main fetches falling short, then searched on the block's graph anyway).
        The same for a seed whose ``need``-th label would lie past half of the main fetch were its
        neighbours all in its block (``_DEEP_SHARE``): the main graph's labels that deep are found
        less reliably, and a seed whose category is not its vectors' cluster (a stray) finds some
        eligible items there that are not its nearest (issue 18 at 1M, correlated category 50% +
        price band: such seeds' main over-fetch read recall@10 0.96 on 600 held-out seeds, 0.995
        for those whose label lay shallower; the block's graph holds only the block's items).
        (None, None): the main over-fetch, as before (its misses queue the block's graph)."""
        s, e, _ = key
        ss = self._block_graph(cf, key)
        if ss is None:
            return None, None
        unit = kv.unit is not None
        at = ("band", need, fetch, e - s, unit)
        sure = ss.costs.get(at)
        if sure is None:
            sure = ss.costs[at] = self._block_sure(ss, need, fetch, e - s, unit)
        if n_elig >= sure:  # the block's beam whatever the filter has learned (below)
            return "block", ss
        short = fetch * n_elig < need * (e - s)
        c_b = self._block_beam_cost(ss, need, n_elig)
        deep = _DEEP_SHARE * fetch * n_elig < need * (e - s)
        c_h = self._hnsw_cost(fetch)
        # the main fetch's expected cost counts the block's beam its short seeds then pay as well
        # (_block_keyed): c_h + (1 - p) * c_b against c_b, p the filter's learned fill rate (issue
        # 18 at 1M, correlated 10% + price band: 21% to 23% of a block's seeds fell short on the
        # main fetch, and a block graph's beam calibrated a few ef above the main one's sent 428 of
        # 500 seeds there, 1.59x raw, s37-L)
        if not deep and c_b > c_h and cf.stats.fill_rate(1.0) * c_b > c_h:
            return None, None
        if c_b < self._band_exact_cost(e - s, n_elig, unit):
            return "block", ss
        return ("exact", None) if short else (None, None)  # not short: the main fetch, as before

    def _block_beam_cost(self, ss: StaticSet, need: int, n_elig: int) -> float:
        """The price of :func:`block_first`'s beam on the block's graph for ``need`` of a key
        range's ``n_elig`` members (its fetch sized to their share of the block)."""
        fb = min(ss.n, max(_FETCH_MIN, fetch_for(need, n_elig / ss.n, ss.n)))
        return self._hnsw_cost(max(fb, ss.sub.ef))

    def _band_exact_cost(self, span: int, n_elig: int, unit: bool) -> float:
        """The price of an exact search over a key range's ``n_elig`` rows spread over ``span``
        rows of a block (``unit``: the range is one slice of its key index's copy, ``_key_rows``:
        no gather)."""
        c_x = self._range_exact_cost(span, n_elig)
        return min(c_x, self._exact_costs(n_elig, n_elig)[0]) if unit else c_x

    def _block_sure(self, ss: StaticSet, need: int, fetch: int, span: int, unit: bool) -> int:
        """The fewest members of a key range inside the block (``span`` rows) from which on
        :meth:`_in_block_choice` answers ``"block"`` whatever the filter has learned: the block's
        beam priced no higher than the main fetch's and lower than the exact search (the beam's
        price only falls and the exact one's only grows with the members, so the first such count
        is found by bisection); ``span + 1``: none. Computed once per set, need, fetch and span
        (``ss.costs``): the per-query choice of a wide band is one comparison (issue 18 at 100k,
        correlated 50% + price band: its costs were about 7% of each query)."""
        c_h = self._hnsw_cost(fetch)
        lo, hi = 1, span + 1
        while lo < hi:
            mid = (lo + hi) // 2
            c_b = self._block_beam_cost(ss, need, mid)
            if c_b <= c_h and c_b < self._band_exact_cost(span, mid, unit):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _block_keyed(self, qq: Query, ss: StaticSet, cand: KeyRange, n_elig: int) -> SearchResult | None:
        """A lean filter with a key range inside a category block (a price band, a gender) whose
        over-fetch on the main graph fell short: an over-fetch on the block's own graph instead of
        a deeper one and an exact search (the block holds every eligible item, so its graph's
        nearest are the seed's nearest eligible ones whatever the seed's own vector cluster), the
        first k in range as :meth:`_overfetch` takes them. None when it falls short too."""
        got = block_first(
            ss,
            qq.q[None, :],
            qq.k,
            cand.by_row,
            cand.lo,
            cand.hi,
            cand.seed_row,
            cand.drop,
            n_elig,
            self_first=self._self_first and qq.own,
            row=int(self.view.perm[qq.pos]) if cand.seed_row < 0 else -1,
        )
        if got is None:
            return None
        rl, dl = got
        return SearchResult(
            ids_at(self.view.item_id_by_row, rl),
            [1.0 - d for d in dl],
            rl,
            qq.removed,
            "hnsw_subindex",
            n_elig,
            (time.perf_counter() - qq.t0) * 1e3,
            qq.skipped,
            qq.seed_id,
        )

    def _queue_block(
        self, cf: CompiledFilter, key: tuple[int, int, bool], max_ef: int | Callable[[], int] | None = None
    ) -> None:
        """Build block ``key``'s eligible set and graph (background) and publish it. ``max_ef``: a
        block over ``BLOCK_MAX_SHARE`` queued by :meth:`_big_block_use` or :meth:`_big_block_miss`
        (accounted in ``cf.big_subs``, not shared): not published when its calibrated ef exceeds
        it (a callable: asked when the graph is built, with what the filter has learned since)."""
        s, e, no_adult = key
        index = self._index if self._index is not None else self.index
        space = "cosine" if self.space == "cosine" else "ip"

        def build() -> None:
            if key in cf.blocks:
                return
            got = self._shared_blocks.get((self._mask_digest(cf), *key))
            if got is not None:  # built meanwhile for a filter of the same mask
                block_key_views(cf, key, got)
                cf.blocks[key] = got
                return
            demand = cf.block_uses.get(key, 0)  # the uses that asked for the graph
            if max_ef is None and not self._fit_block_graph(cf, key):
                cf.block_queued.discard(key)  # not reserved: asked again by its next uses
                return  # no room within the searcher's cap: its block answers as before
            mask = np.zeros(self.n, dtype=bool)
            mask[s:e] = cf.base_mask[s:e]
            if no_adult:
                mask[s:e] &= ~self.view.adult[s:e]
            ss = StaticSet(mask, self.view.perm, self.view.pos_of_row, self.unit)
            big = ss.block is None  # over BLOCK_MAX_SHARE: no dense copy kept, one for the build only
            if big:
                ss.block = np.take(self.unit, ss.pos, axis=0)
            ss.build_sub(
                space,
                index.M,
                max(index.ef_construction, SUB_EF_CONSTRUCTION),
                index.ef,
                max_ef=max_ef() if callable(max_ef) else max_ef,
                self_first=self._self_first,
            )
            if big:
                ss.block = None
            elif ss.sub is not None and ss.block is not None:
                # the graph holds the block's vectors and answers its seeds; the dense copy was
                # the build's (no query reads a block's copy: its exact plans read the key
                # index's or the searcher's own rows), so it is not kept
                ss.nbytes -= ss.block.nbytes
                ss.block = None
            if max_ef is not None:  # a big block's graph (_big_block_use): its own budget
                cf.big_subs[key] = ss.nbytes if ss.sub is not None else 0
                if ss.sub is not None:
                    block_key_views(cf, key, ss)
                    cf.blocks[key] = ss  # published whole, with its graph
                return
            cf.block_bytes += ss.nbytes
            ss.owner = id(cf)
            # counted from the uses that asked for it: from 0, a new graph was the cap's first
            # victim, evicted for the filter's next block (a new filter rebuilt its own graphs in
            # turn and kept 4 of 10 while graphs idle for long held their room)
            ss.uses = demand
            block_key_views(cf, key, ss)
            cf.blocks[key] = ss  # published whole, with its graph
            self._share(cf, key, ss)

        self._build_or_queue((id(cf), "block", key), build)
        if cf.adjust_cat_only and self._tie_of is None:  # boost/bury: the block's merge, right after
            self._queue_block_merge(cf, key)

    def _block_graph_sets(self) -> tuple[dict[int, StaticSet], set[int]]:
        """Every category-block set with a graph of at most ``BLOCK_MAX_SHARE`` the searcher holds
        (the cached compiled filters' ``blocks`` and the shared store), by ``id``, and the ``id``
        of those a cached filter holds (the others are the store's orphans). The blocks over
        ``BLOCK_MAX_SHARE`` (``cf.big_subs``) have their own cap."""
        with self._lock:
            cached = list(self._compiled.values())
        sets: dict[int, StaticSet] = {}
        held: set[int] = set()
        for c in cached:
            for key, ss in list(c.blocks.items()):
                if ss.sub is not None and key not in c.big_subs:
                    sets[id(ss)] = ss
                    held.add(id(ss))
        for key, ss in list(self._shared_blocks.items()):
            if ss.sub is not None and key[1] != "static":
                sets.setdefault(id(ss), ss)
        return sets, held

    def block_graph_bytes(self) -> int:
        """Bytes the searcher's category-block graphs of at most ``BLOCK_MAX_SHARE`` hold (counted as
        :meth:`_fit_block_graph` counts them against ``block_graphs_max_bytes``)."""
        return sum(ss.nbytes for ss in self._block_graph_sets()[0].values())

    def _fit_block_graph(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> bool:
        """Make room for block ``key``'s graph (``cf``'s, about to be built on the background
        thread) within the searcher-wide ``block_graphs_max_bytes``: False when there is none.

        Each cached filter keeps its own block graphs within ``_BLOCKS_MAX_BYTES``; six of them
        (a million-item catalogue's cache) could hold 3 GiB. Evicted, least used first (a new graph
        counts from the uses that asked for it; of equal uses the older first): the
        shared store's orphans (no cached filter holds them), then graphs whose queries
        (``StaticSet.uses``) are no more than the new block's own uses: a graph in steady use is
        not dropped for one that has barely been asked for (it waits; its block answers by an
        over-fetch or an exact scan, as before; each refusal halves every graph's count, so a graph
        no longer in use falls behind a block that keeps asking: its next ``_SUB_AFTER`` uses, each
        a new try). Nothing is evicted unless the new graph then fits.
        An evicted graph leaves every filter's ``blocks``, the shortcuts' copies and the store
        (each swapped or popped whole); a query already reading it holds its own reference, so
        the graph is freed only once no query reads it. Its block's count restarts from 0 (its
        graph is queued again after ``_SUB_AFTER`` new uses, if room is made)."""
        s, e, _ = key
        size = block_bytes_estimate(e - s, self.dim, self._index_M(), self.n)
        sets, held = self._block_graph_sets()
        over = sum(ss.nbytes for ss in sets.values()) + size - self.block_graphs_max_bytes
        if over <= 0:
            return True
        demand = cf.block_uses.get(key, 0)
        cands = sorted(  # of equal uses, the older first (by address, the order changed from run to run)
            (id(ss) in held, ss.uses, ss.born, i)
            for i, ss in sets.items()
            if id(ss) not in held or ss.uses <= demand
        )
        victims, freed = [], 0
        for *_, i in cands:
            if freed >= over:
                break
            victims.append(sets[i])
            freed += sets[i].nbytes
        if freed < over:
            for ss in sets.values():  # aged: a graph no longer in use falls behind the new demand
                ss.uses //= 2
            return False
        self._evict_block_graphs({id(ss) for ss in victims})
        return True

    def _evict_block_graphs(self, gone: set[int]) -> None:
        """Drop the block sets whose ``id`` is in ``gone`` from the cached filters (their owner's
        ``block_bytes`` given back), the seed-table shortcuts and the shared store."""
        with self._lock:
            cached = list(self._compiled.values())
        for c in cached:
            for key, ss in list(c.blocks.items()):
                if id(ss) not in gone:
                    continue
                c.blocks.pop(key, None)
                c.block_queued.discard(key)
                c.block_uses[key] = 0
                if ss.owner == id(c):
                    c.block_bytes -= ss.nbytes
        for fp in list(self._fast.values()):
            for key, got in list(fp.graphs.items()):
                if id(got[0]) in gone:
                    fp.graphs.pop(key, None)
        self._shared_blocks = type(self._shared_blocks)(
            (k, x) for k, x in self._shared_blocks.items() if id(x) not in gone
        )

    def _mask_digest(self, cf: CompiledFilter) -> bytes:
        """A digest of the compiled filter's base mask (computed once): filters of one mask share
        their graphs through ``_shared_blocks``. O(n) (2 ms at 1M items): called by background
        builds, or inline on a small catalogue, never by a request of a large one."""
        if cf.mask_digest is None:
            cf.mask_digest = hashlib.blake2b(cf.base_mask.tobytes(), digest_size=16).digest()
        return cf.mask_digest

    def _share(self, cf: CompiledFilter, key: tuple, ss: StaticSet) -> None:
        """Keep ``ss`` (with its graph) for the filters of ``cf``'s mask, beyond ``cf``'s own life in
        the compiled-filter cache; the store is swapped whole, so readers never see it change size.

        Its byte cap, ``_SHARED_SPARE_BYTES``, counts the sets no cached compiled filter holds (the
        oldest of those dropped first): a set a cached filter holds costs the store nothing, and
        dropping it kept the other filters of its mask from adopting it. At 1M items a category
        block with its graph was ~65 MiB then, so a filter built 3 of its ~10 blocks' graphs within
        its own budget and the store held the 3 newest of all: a boosted config adopted the filter
        alone's graphs and built 3 of its own, the filter alone, once they had pushed its own out
        of the store, never saw the boosted config's (issue 16, s33-r: 295 against 456 of 500 seeds
        on a block graph in s31-r's 1M runs). A filter leaving the cache leaves its sets to this
        cap at the next call."""
        shared = self._shared_blocks.copy()
        shared[(self._mask_digest(cf), *key)] = ss
        while len(shared) > _SHARED_BLOCKS_MAX:
            shared.popitem(last=False)
        held = self._held_sets()
        orphans = [k for k, x in shared.items() if id(x) not in held]  # oldest first
        spare = sum(shared[k].nbytes for k in orphans) - _SHARED_SPARE_BYTES
        for k in orphans:
            if spare <= 0 or len(shared) <= 1:
                break
            spare -= shared.pop(k).nbytes
        self._shared_blocks = shared

    def _held_sets(self) -> set[int]:
        """``id`` of every eligible set the cached compiled filters hold (their block graphs and
        static sets)."""
        with self._lock:
            cached = list(self._compiled.values())
        held: set[int] = set()
        for c in cached:  # list(): one C call each (a query may adopt a block meanwhile)
            held.update(map(id, list(c.blocks.values())))
            held.update(map(id, list(c.sets.values())))
        return held

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
        if ss.n < self.sub_index_min_rows or cf.seeded_queries < _SUB_AFTER:
            return
        if ss.block is None:  # over BLOCK_MAX_SHARE (or BLOCK_MAX_BYTES): answered by an over-fetch
            self._maybe_big_sub(cf, ss, no_adult)
            return
        if self._static_exact_cost(ss) < self.sub_index_gain * self._static_hnsw_cost(0):
            return
        index = self._index if self._index is not None else self.index
        space = "cosine" if self.space == "cosine" else "ip"

        def build() -> None:
            ss.build_sub(
                space,
                index.M,
                max(index.ef_construction, SUB_EF_CONSTRUCTION),
                index.ef,
                self_first=self._self_first,
            )
            if ss.sub is not None:
                self._share(cf, ("static", no_adult), ss)

        self._build_or_queue((id(cf), "sub", no_adult), build)

    def _big_sub_open(self, cf: CompiledFilter, ss: StaticSet, no_adult: bool) -> bool:
        """Whether a static set over ``BLOCK_MAX_SHARE`` may still get its own graph, not decided
        yet (:meth:`_maybe_big_sub`): its queries then stay on the general path, which counts them
        (the over-fetch shortcut, :mod:`recsys.search.fast`, does not), and is armed once decided."""
        return (
            ss.block is None
            and ss.sub is None
            and no_adult not in cf.big_subs
            and ss.n >= self.sub_index_min_rows
            and self._index is not None
            and not self._inline()
        )

    def _big_sub_bytes(self) -> int:
        """Bytes held or reserved by the graphs of big static sets (:meth:`_maybe_big_sub`) of the
        compiled filters in the cache (a filter that left it frees its graph with it)."""
        return sum(sum(cf.big_subs.values()) for cf in list(self._compiled.values()) if cf.big_subs)

    def _maybe_big_sub(self, cf: CompiledFilter, ss: StaticSet, no_adult: bool) -> None:
        """Decide, once, whether a static set over ``BLOCK_MAX_SHARE`` gets its own HNSW graph (its
        ``_SUB_AFTER`` uses counted by :meth:`_maybe_sub`), and queue it.

        Such a set (a brand allow-list, a price band or a flag keeping half of the catalogue) is
        answered by an over-fetch on the main graph; where the filter does not follow the vectors,
        its k-th eligible label lies about k / share deep, and the beam the main index needs for
        that depth (:mod:`recsys.search.beams`, ``cf.stats.beam``) can be twice its ef (1M items,
        ef 64: 128 for a 50% filter, 1.8x raw p50). Its own graph answers k + 1 at an ef calibrated
        on its own members (:func:`~recsys.search.batch.calibrated_ef`). Queued when the over-fetch,
        its own work counted (``_S_OVERFETCH_WORK``), would cost at least ``sub_index_gain`` times a
        beam search at ef and the graph fits ``big_sub_max_bytes`` with the big graphs of the other
        cached filters; published only when its calibrated ef costs less than the over-fetch it
        replaces (:meth:`_big_graph_bar`). Built on the background
        thread (at 1M x 64 a 50% set: 500k rows, about 2 CPU-min), never on a request, and not
        below ``background_min_items``. Not shared between compiled filters (``_shared_blocks``
        holds at most ``_BLOCKS_MAX_BYTES``, a quarter of a GB)."""
        if no_adult in cf.big_subs or self._index is None or self._inline():
            return
        index = self._index
        size = self._big_graph_size(cf, no_adult, ss.n, fetch_for(_BIG_K + 1, ss.n / self.n, self.n))
        if not size:
            return
        over = max(index.ef, fetch_for(_BIG_K + 1, ss.n / self.n, self.n), cf.stats.beam)
        cf.big_subs[no_adult] = size  # reserved
        space = "cosine" if self.space == "cosine" else "ip"

        def build() -> None:
            if self._compiled.get(cf.config.config_hash()) is not cf:  # left the cache meanwhile
                cf.big_subs[no_adult] = 0
                return
            dense = padded_take(self.unit, ss.pos, self._bg.pause)[: ss.n]
            ss.build_sub(
                space,
                index.M,
                max(index.ef_construction, SUB_EF_CONSTRUCTION),
                index.ef,
                dense=dense,
                max_ef=self._big_graph_bar(over),
                self_first=self._self_first,
            )
            del dense
            if ss.sub is None:
                cf.big_subs[no_adult] = 0
                return
            cf.big_subs[no_adult] = ss.nbytes
            # the filter's over-fetch shortcut (armed meanwhile) gives way to the general path,
            # which answers from the graph (:meth:`_search_static`); swapped whole, as it is kept
            self._fast = {key: fp for key, fp in self._fast.items() if fp.cf is not cf}

        self._bg.submit((id(cf), "sub", no_adult), build)

    def _big_graph_size(
        self, cf: CompiledFilter, vkey: Any, rows: int, fetch: int, ukey: Any = None
    ) -> int | None:
        """The decision of :meth:`_maybe_big_sub` and :meth:`_big_block_use` for a set of ``rows``
        items over ``BLOCK_MAX_SHARE`` whose over-fetch asks ``fetch`` labels of the main graph: the
        bytes its graph reserves (recorded in ``cf.big_subs[vkey]``), or 0 (decided against:
        recorded) or None (the main index's beams not measured yet: decided later)."""
        index = self._index
        if near_full(rows, self.n, fetch):
            # (nearly) every item passes: under one label of its over-fetch is expected to fail
            # (the default config on a catalogue with a few adult items; every item for an adult
            # seed). Its graph would be the main graph again, built in the background of every
            # serving worker (40 MB and 15 s of CPU at 100k per copy), where the shortcut answers
            # it as a plain query with the few failing labels dropped (fast.py: near_full)
            cf.big_subs[vkey] = 0
            return 0
        beams = self._beams
        if beams is None or beams[0] != index.ef:  # the beams are not measured (yet)
            self._request_beams(index)  # asked again when the searcher's start did not
            if self._bg.pending(("beams", index.ef)):
                return None  # queued (held while queries run): decided once they are measured
            if cf.seeded_queries >= _BIG_WAIT_USES or cf.block_uses.get(ukey, 0) >= _BIG_WAIT_USES:
                cf.big_subs[vkey] = 0
            return None
        st = cf.stats
        if st.depth == 0.0:
            # the filter's over-fetch depth not learned yet: a category filter's first queries are
            # answered from the inverted lists (cold.py), which count its blocks' uses but learn no
            # depth; decided against then, the over-fetch looked like one beam search at ef (at 1M
            # items, ef 64 = the first fetch) and a 50% category level kept its beam of 128 (1.8x
            # raw p50). Waits for the compiled path's first over-fetch, ``_BIG_WAIT_USES`` of them
            # at most (the lists' uses not counted)
            if cf.seed_table is not None or cf.static:
                wkey = (vkey, "depth")
                waited = cf.block_uses[wkey] = cf.block_uses.get(wkey, 0) + 1
                if waited >= _BIG_WAIT_USES:
                    cf.big_subs[vkey] = 0
            return None
        if not st.beam and st.independent():
            # the depth learned before the beams were measured: the beam _learn_depth would keep
            st.beam = beam_for(beams[1], st.depth)
        over = max(index.ef, fetch, st.beam)
        size = block_graph_bytes(rows, self.dim, index.M)
        if self._static_hnsw_cost(over) + _S_OVERFETCH_WORK < self.sub_index_gain * self._static_hnsw_cost(0):
            size = 0  # the over-fetch, its own work counted, costs about one beam search at ef: kept
        elif self._big_sub_bytes() + size > self.big_sub_max_bytes:
            size = 0  # over the budget
        cf.big_subs[vkey] = size
        return size

    def _big_block_open(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> bool:
        """:meth:`_big_sub_open` for a category block over ``BLOCK_MAX_SHARE`` (the seed-table
        shortcut, :mod:`recsys.search.fast`, then counts its uses and sends the query that decides
        to the general path)."""
        return (
            key not in cf.big_subs
            and key[1] - key[0] >= self.sub_index_min_rows
            and self._index is not None
            and not self._inline()
        )

    def _big_block_use(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> None:
        """A plain use of a category block over ``BLOCK_MAX_SHARE`` (a 50% category level) without a
        graph: counted, and from ``_SUB_AFTER`` uses on its graph is decided as a big static set's
        (:meth:`_maybe_big_sub`: the over-fetch's beam, ``big_sub_max_bytes``) and queued
        (:meth:`_queue_block`, published only when its calibrated ef costs less than the
        over-fetch, :meth:`_big_graph_bar`)."""
        if not self._big_block_open(cf, key):
            return
        ukey = (*key, "big")  # its own count: a miss's ``_MISS_USES`` keep their own rule
        uses = cf.block_uses[ukey] = cf.block_uses.get(ukey, 0) + 1
        if uses < _SUB_AFTER:
            return
        rows = key[1] - key[0]
        size = self._big_graph_size(cf, key, rows, _FETCH_MIN, ukey)
        if not size:
            return
        if size <= _BLOCKS_MAX_BYTES // 4:
            # within the filter's own block budget (a 50% level of 100k items): queued as the
            # block's misses queue it (:meth:`_block_use`), kept for the filters of its mask. As a
            # big graph it was the filter's alone, and at 100k items the price band over the same
            # correlated 50% level then built the level's two graphs again (42 MB, 26 to 40 s)
            cf.big_subs[key] = 0  # decided: its bytes are the filter's block budget's
            if key not in cf.block_queued and cf.block_bytes + size <= _BLOCKS_MAX_BYTES:
                self._queue_block(cf, key)
                cf.block_queued.add(key)
            return
        index = self._index
        self._queue_block(cf, key, max_ef=self._big_graph_bar(max(index.ef, _FETCH_MIN, cf.stats.beam)))

    def _big_graph_bar(self, over: int) -> int:
        """The widest calibrated ef at which a big set's own graph is published in place of the
        main graph's over-fetch at beam ``over``: its beam search costs less than the over-fetch,
        the over-fetch's own work counted (``_S_OVERFETCH_WORK``: testing its labels, learning its
        depth). Without that work counted a graph had to be narrower than the over-fetch's beam, and
        at 100k items a 50% filter's graph calibrated at ef 64 or more was built and dropped where
        the over-fetch at beam 64 measured 1.3x to 1.4x raw p50."""
        return self._static_hnsw_ef(self._static_hnsw_cost(over) + _S_OVERFETCH_WORK) - 1

    def _big_block_miss(self, cf: CompiledFilter, key: tuple[int, int, bool], rows: int) -> None:
        """A category block too big for the filter's own block budget (over a quarter of
        ``_BLOCKS_MAX_BYTES``: a 50% level of a million items) whose queries keep missing (its
        ``_MISS_USES`` count reached, :meth:`_block_use`): its graph is weighed under the big
        graphs' budget (``big_sub_max_bytes``, :meth:`_big_graph_size`'s), whatever its depth
        decided. A filter that follows the vectors has seeds far from their category's items (at
        1M items a tenth of a correlated 50% level's seeds): the first over-fetch of 64 falls
        short for them and the retries (256, then 1,024 and 4,096 labels, or an exact scan of
        500k rows: 15 ms) make the filter's p99. Queued once the filter's first over-fetches miss
        at least ``_BIG_MISS_SHARE`` of the time (the share of queries a p99 reads; before the
        filter's compiled over-fetches have learned it, on its ``_MISS_USES`` count), and published
        when its calibrated ef costs at most what the over-fetch costs on average with its retries
        (a beam search of ``4 x`` the fetch per miss)."""
        tried = (*key, "miss")
        if cf.big_subs.get(key) or tried in cf.block_uses or self._index is None or self._inline():
            return
        st = cf.stats
        if st.first_tries >= _SUB_AFTER and st.first_hits >= (1.0 - _BIG_MISS_SHARE) * st.first_tries:
            return  # its misses are rare (weighed again at a later miss); not known yet on the
            # inverted lists' path (a new filter's first queries): its misses decide
        index = self._index
        size = block_graph_bytes(rows, self.dim, index.M)
        if self._big_sub_bytes() + size > self.big_sub_max_bytes:
            return  # over the budget: weighed again at a later miss
        cf.block_uses[tried] = 1  # built once (published or not)
        cf.big_subs[key] = size  # reserved
        self._queue_block(cf, key, max_ef=lambda: self._miss_ef(cf, key))

    def _miss_ef(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> int:
        """The widest ef at which block ``key``'s graph costs no more than the filter's over-fetch
        with its retries (one beam search of 4x the fetch per miss, at the share of misses learned
        so far: by the compiled over-fetches, else by the block's misses over its uses on the
        inverted lists' path): the bar of a graph queued by :meth:`_big_block_miss`."""
        st, index = cf.stats, self._index
        over = max(index.ef, _FETCH_MIN, st.beam)
        if st.first_tries >= _SUB_AFTER:
            miss = 1.0 - st.first_hits / st.first_tries
        else:
            seen = cf.block_uses.get((*key, "seen"), 0)
            miss = min(1.0, cf.block_uses.get(key, 0) / _MISS_USES / seen) if seen else 0.0
        cost = self._static_hnsw_cost(over) + _S_OVERFETCH_WORK + miss * self._static_hnsw_cost(4 * over)
        return max(over, self._static_hnsw_ef(cost))

    def _search_trivial(self, qq: Query) -> SearchResult | None:
        """No rule bites (the default config on a catalogue without adult items): one knn_query
        for k + 1, the seed dropped from the list. None when hnswlib cannot reach that many.

        A beam search that did not reach the seed's own vector (:func:`~recsys.search.beams.seed_lost`: it missed the
        seed's neighbourhood altogether) is asked again 4x wider, then 16x, then the answer is exact
        search's (issue 18 at 1M items, ef 64: 5 of the bench's 500 seeds, recall@10 0.0 each,
        the case's 0.9878; found by a beam of 1,024)."""
        n, k = self.n, qq.k
        qq.removed, _, qq.skipped = self._static_counts(qq)
        ex = "exclude_seed" in qq.removed
        kq = k + 1 if ex else k
        index = self._index if self._index is not None else self.index
        row = int(self.view.perm[qq.pos]) if qq.pos is not None else -1
        seed_row = row if ex else -1
        if not qq.own:
            row = -1  # a vector of its own (search_vector): no seed to miss there
        fetch = kq
        while True:
            try:
                labels, dist = index._index.knn_query(
                    qq.q[None, :], k=fetch if fetch <= n else n, num_threads=1
                )
            except RuntimeError:  # hnswlib#444
                return None
            rl, dl = labels[0, :kq].tolist(), dist[0, :kq].tolist()
            if not seed_lost(row, rl, dl, self._self_first):
                return self._lean_answer(qq, rl, dl, seed_row, "hnsw_overfetch", n - ex)
            fetch = self._next_fetch(max(fetch, index.ef), n, n)
            if fetch is None:
                break
        res = self._search_one(qq.q, qq.pos, qq.cf.config, k, "exact")
        res.plan = "hnsw_overfetch+exact_fallback"
        res.elapsed_ms = (time.perf_counter() - qq.t0) * 1e3
        return res
