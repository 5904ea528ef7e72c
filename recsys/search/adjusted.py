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

from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.search import merge_kernel
from recsys.search.batch import calibrated_ef
from recsys.search.block_pool import (  # noqa: F401 (_MARGIN, _merge_numpy: read through this module too)
    _MARGIN,
    BlockPool,
    BlockPoolMixin,
    _best,
    _merge_numpy,
    _reaches,
)
from recsys.search.kernels import _matvec
from recsys.search.planner import (
    _BLOCKS_MAX_BYTES,
    _FETCH_MIN,
    _S_CACHE_BYTES,
    _S_EXACT_BASE,
    _S_GEMV_ROW,
    _S_GEMV_ROW_COLD,
    _S_SELECT_ROW,
)
from recsys.search.pool_table import (  # noqa: F401 (_pool_table, _POOL_TABLE_CHUNK: read through this module too)
    _NO_TABLE,
    _POOL_TABLE_CHUNK,
    _POOL_TABLE_K,
    _POOL_TABLE_MAX_WORK,
    _POOL_TABLES_MAX_BYTES,
    PoolTable,
    _pool_table,
)
from recsys.search.query import TABLE_COUNTS, KeyRange
from recsys.search.result import SearchResult
from recsys.search.result import ids_at as _ids_at

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalog import CatalogView
    from recsys.filters import FilterConfig
    from recsys.search.compiled import CompiledFilter
    from recsys.search.fast import FastPlan
    from recsys.search.query import Query

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


#: give a boosted/buried category filter a graph of adjusted vectors per category block
#: (:class:`AdjustedGraph`) once its block has a plain graph; off: the class merge answers.
#: Off by default (issue 16, s27-16): at the recall its check calibrates (0.99 of the adjusted
#: top 10) 6 of 100 validation seeds' lists differed from brute force at n = 100,000, against 1
#: for the class merge (a neighbour the block's plain graph missed, as the filter alone does)
_ADJUSTED_GRAPHS = False


#: no banned positions (the compiled merge's argument)
_NO_POS = np.zeros(0, dtype=np.int64)
_NINF = np.float32(-np.inf)


#: what a query vector gets appended for an :class:`AdjustedGraph`: 1 (times the shift), 0 (times
#: the item's norm filler)
_QUERY_TAIL = np.array([1.0, 0.0], dtype=np.float32)


class AdjustedGraph:
    """A category block's graph over its eligible items' adjusted vectors ``[m * x, a, r]`` (inner
    product space; ``r`` fills every vector up to one norm, so that the inner product orders
    neighbours as a metric would and the graph is as good as a plain one): the query ``[q, 1, 0]``
    scores ``m * q.x + a``, the adjusted score itself, so one beam search answers a boosted/buried
    query as the block's plain graph answers the filter alone (:meth:`~recsys.search.static.StaticMixin._subindex_answer` reads ``sub`` and ``rows``,
    the vector row of each label, in the block's :class:`~recsys.search.batch.StaticSet` order)."""

    __slots__ = ("sub", "rows")

    def __init__(self, sub: Any, rows: np.ndarray) -> None:
        self.sub, self.rows = sub, rows


#: a block whose adjusted graph failed its recall check: no graph, and none built again
_NO_GRAPH = AdjustedGraph(None, np.zeros(0, dtype=np.int64))


def _adjusted_ef(g: Any, aug: np.ndarray, dense: np.ndarray, ef: int, k: int = 10) -> int | None:
    """:func:`~recsys.search.batch.calibrated_ef` of the adjusted graph ``g`` over ``aug``: its
    members queried as ``[x, 1, 0]`` (``dense``: their unit vectors), scored against the exact
    adjusted top ``k``; None when no ef up to the cap reaches the recall (the class merge, which
    answers from the plain graph and exact scores, is then kept)."""

    def queries(cols: np.ndarray) -> np.ndarray:
        qa = np.zeros((len(cols), aug.shape[1]), dtype=np.float32)
        qa[:, :-2] = dense[cols]
        qa[:, -2] = 1.0
        return qa

    return calibrated_ef(g, aug, ef, k, queries=queries, strict=True)


class BlockMerge:
    """The class merge of one category block, prepared once (:meth:`AdjustClasses.merge_plan`).

    Inside a class of one (multiplier, shift) the adjusted score grows with the raw one. The
    block's *pool* (:class:`~recsys.search.block_pool.BlockPool`, shared with the block's
    over-fetch: its arrays and table are read from there) holds every eligible member of the
    classes that can climb above its dominant class (a larger multiplier or shift: a boosted
    brand), with its vectors packed, scored exactly at each query; every other class (the
    dominant one, the buried ones) is read from the fetch of the block's plain graph and is
    closed by the bound ``m * s_F + a`` below the k-th adjusted score. Per label of the plain
    graph: ``lm``, ``la`` (its class's multiplier and shift; -inf for the pool's classes, which
    the pool scores) and ``pos``.
    """

    __slots__ = (
        "lm",
        "la",
        "pos",
        "rest",
        "rest2",
        "ppos",
        "ppos32",
        "pvect",
        "pmul",
        "padd",
        "pidx",
        "table",
        "pool",
    )

    def __init__(self, cl: AdjustClasses, ss: Any, bp: BlockPool) -> None:
        cid = cl.by_row[ss.rows].astype(np.int64)
        self.lm = cl.mul32[cid]
        self.la = np.where(bp.pooled[cid], np.float32(-np.inf), cl.add32[cid])
        self.pos = ss.pos
        self.rest, self.rest2 = bp.rest, bp.rest2
        self.ppos, self.ppos32, self.pvect = bp.ppos, bp.ppos32, bp.pvect
        self.pmul, self.padd = bp.pmul, bp.padd
        self.pidx = dict(zip(self.ppos.tolist(), range(len(self.ppos))))
        #: the block's :class:`PoolTable` once built (read by the shortcut, :meth:`AdjustMixin._fast_adjusted`;
        #: the pool's, ``pool.table``, given here by its build or when the merge is set up)
        self.table: PoolTable | None = bp.table
        self.pool = bp


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
        "_blocks",
        "_merges",
        "pools",
        "graphs",
        "table_bytes",
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
        self._blocks: dict[tuple[int, int, bool], tuple] = {}
        self._merges: dict[tuple[int, int, bool], BlockMerge | None] = {}
        #: each block's :class:`~recsys.search.block_pool.BlockPool` (None: its pool is more than half
        #: of its eligible items), set up with its merge or, without a graph, for its over-fetch
        self.pools: dict[tuple[int, int, bool], BlockPool | None] = {}
        #: (block start, end, adult rule variant) -> :class:`AdjustedGraph`, built in the background
        self.graphs: dict[tuple[int, int, bool], AdjustedGraph] = {}
        #: bytes of the :class:`PoolTable` s built or being built (``_POOL_TABLES_MAX_BYTES``)
        self.table_bytes = 0

    def open_classes(self, s_f: float, tau: float, s: int, e: int) -> list[tuple[int, int, int]] | None:
        """``(class, start, end)`` (its members ``members[start:end]`` inside ``[s, e)``) of every
        class with members there whose bound ``m * s_f + a`` reaches ``tau``; None when the plain
        class (1, 0) is among them (every unadjusted item of the domain could climb: the fetch
        was too shallow)."""
        out = []
        for c, (m, a) in enumerate(zip(self.mul, self.add)):
            if not _reaches(m * s_f + a, tau):
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

    def block(
        self,
        key: tuple[int, int, bool],
        ok_by_row: np.ndarray | None,
        perm: np.ndarray,
        ok_pos: np.ndarray | None = None,
    ) -> tuple[int, list]:
        """The classes of a category block's eligible items (``key``: block start, end, adult rule
        variant; ``ok_by_row``: the block's eligible set by vector row, or ``ok_pos``: the same over
        the block's positions ``[start, end)``), cached: ``(dominant, others)``, the class with the
        most eligible items of the block (the plain items, or those of a boosted category) and,
        for every other class with eligible items there, ``(class, their positions (ascending))``;
        ``_blocks[key][2]``: the block's eligible items."""
        got = self._blocks.get(key)
        if got is None:
            s, e, _ = key
            parts = []
            for c in range(len(self.mul)):
                mem = self.members[self.starts[c] : self.starts[c + 1]]
                lo, hi = mem.searchsorted((s, e)).tolist()
                mem = mem[lo:hi]
                pos = mem[ok_pos[mem - s]] if ok_pos is not None else mem[ok_by_row[perm[mem]]]
                if len(pos):
                    parts.append((c, pos))
            dom = max(parts, key=lambda p: len(p[1]))[0] if parts else -1
            others = [(c, pos) for c, pos in parts if c != dom]
            got = self._blocks[key] = (dom, others, sum(len(p[1]) for p in parts))
        return got[0], got[1]

    def block_pool(
        self,
        key: tuple[int, int, bool],
        ok_by_row: np.ndarray | None,
        perm: np.ndarray,
        unit: np.ndarray,
        ok_pos: np.ndarray | None = None,
    ) -> BlockPool | None:
        """The block's :class:`~recsys.search.block_pool.BlockPool` (cached; the eligible set as
        :meth:`block` reads it), or None when its pool holds more than half of the block's eligible
        items (a scan of the block then costs about as much, without the beam search)."""
        if key in self.pools:
            return self.pools[key]
        dom, others = self.block(key, ok_by_row, perm, ok_pos)
        got = None
        if dom >= 0:
            md, ad = self.mul[dom], self.add[dom]
            # the classes that can climb above the dominant one: a larger multiplier or shift
            pool = [p for p in others if self.mul[p[0]] > md or self.add[p[0]] > ad]
            rows, n = sum(len(p[1]) for p in pool), self._blocks[key][2]
            if 2 * rows <= n:
                got = BlockPool(self, dom, pool, others, n, unit)
                if self._bytes + got.pvect.nbytes <= min(_PACK_MAX_BYTES, unit.nbytes // 8):
                    self._bytes += got.pvect.nbytes
                else:
                    got.pvect = None  # past the memory cap: gathered at each query
        # a background build and a query may race: the first kept
        kept = self.pools.setdefault(key, got)
        if kept is not got and got is not None and got.pvect is not None:
            self._bytes -= got.pvect.nbytes
        return kept

    def merge_plan(
        self, key: tuple[int, int, bool], ss: Any, unit: np.ndarray, perm: np.ndarray
    ) -> BlockMerge | None:
        """The block's :class:`BlockMerge` (cached; ``ss``: its eligible set with its plain graph)
        over its pool (:meth:`block_pool`: the one its over-fetch used before the graph, table
        included), or None when there is no pool (more than half of the block's eligible items)."""
        if key in self._merges:
            return self._merges[key]
        bp = self.block_pool(key, ss.ok_by_row, perm, unit)
        got = BlockMerge(self, ss, bp) if bp is not None else None
        # a background build (AdjustMixin._queue_block_merge) and a query may race: the first kept
        return self._merges.setdefault(key, got)

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


class AdjustMixin(BlockPoolMixin):
    """The boost/bury paths of :class:`~recsys.search.searcher.FilteredSearcher` (its ``unit``,
    ``view``, ``_select``, ``_canon`` and ``_static_hnsw_cost``)."""

    def _adjust_classes(self, cf: CompiledFilter) -> AdjustClasses:
        """The compiled filter's :class:`AdjustClasses`, built on first need (a race builds them
        twice, harmlessly)."""
        cl = cf.adjust_classes
        if cl is None:
            cl = cf.adjust_classes = AdjustClasses(cf.adjust, self.view)
        return cl

    def _search_block_adjusted(
        self, qq: Query, s: int, e: int, no_adult: bool, drop: tuple | None, n_elig: int
    ) -> SearchResult | None:
        """A boosted/buried ``same_category`` query on its category block's own graph (the graph a
        filter of the same mask answers from: :meth:`_search_block`), without scanning the block.

        Within a class of one (multiplier, shift) the adjusted score grows with the raw one, so the
        adjusted top k is among each class's raw top k (:class:`BlockMerge`). One beam search on the
        block's plain graph, at the filter alone's ef, fetches its nearest items (``s_F``: the last
        one's raw score), re-scored per label; the block's pool (every eligible member of the
        classes that can climb above its dominant class: a boosted brand, a few percent of it) is
        scored in one product; one cut to k; every other class is closed when its bound
        ``m * s_F + a`` is below the k-th adjusted score. None (the caller scans the block) when one
        is not (its members below the fetch could climb), when the pool is more than half of the
        block, while the graph is not built (this counts the block's uses and queues it, as the
        filter alone does) or when the config has other seed rules or ranked-list rules.
        ``drop``: the seed's banned (positions, vector rows) in the block. Exact but for the graph's recall, as the filter alone."""
        cf, k, q = qq.cf, qq.k, qq.q
        if not cf.adjust_cat_only or self._tie_of is not None:
            return None
        if merge_kernel.state == "idle" and not self._inline():
            merge_kernel.prepare(self._bg)  # compiled in the background, like the block's graph
        key = qq.block = (s, e, no_adult)  # the over-fetch that answers otherwise reads its pool
        ss = cf.blocks.get(key)
        if ss is None:  # adopted from a filter of the same mask, or counted and queued
            self._search_block(qq, s, e, no_adult, drop[1] if drop else None)  # its answer unused
            ss = cf.blocks.get(key)
            if ss is None:
                if _ADJUSTED_GRAPHS and self._bg.pending((id(cf), "block", key)):
                    self._queue_adjusted_graph(cf, key)  # built right after it (one queue)
                self._queue_block_pool(cf, key)
                return None
        cl = self._adjust_classes(cf)
        out_rows = drop[1] if drop else []
        g = cl.graphs.get(key)
        if g is not None and len(g.rows) > k + 1 + len(out_rows):  # the adjusted vectors' own graph
            seed_row = int(self.view.perm[qq.pos])
            if not (cf.config.exclude_seed and ss.ok_by_row[seed_row]):
                seed_row = -1
            qq.q = np.concatenate((q, _QUERY_TAIL))
            got = self._subindex_answer(qq, g, seed_row, n_elig, out_rows, self_first=False)
            qq.q = q
            if got is not None:
                return got
        elif g is None and _ADJUSTED_GRAPHS:
            self._queue_adjusted_graph(cf, key)
        bm = cl.merge_plan(key, ss, self.unit, self.view.perm)
        if bm is None:
            return None
        outs = drop[0].tolist() if drop else []  # the seed's banned positions in the block
        if cf.config.exclude_seed:
            outs.append(qq.pos)
        fetch = max(2 * k + len(outs), ss.sub.ef)  # the filter alone's beam: ef (hnswlib: max(ef, k))
        if fetch >= ss.n:
            return None
        try:
            cols, dist = ss.sub.knn_query(q[None, :], k=fetch, num_threads=1)
        except RuntimeError:  # hnswlib#444
            return None
        d = dist[0]
        pool = self._pool_scores(bm, q)
        kern = merge_kernel.KERNEL
        if kern is not None:  # the steps below in one compiled call (merge_kernel.py), same list
            kp, ks = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
            seed = qq.pos if cf.config.exclude_seed else -1
            try:
                got = kern(
                    cols[0],
                    d,
                    bm.lm,
                    bm.la,
                    bm.pos,
                    pool,
                    bm.pmul,
                    bm.padd,
                    bm.ppos,
                    seed,
                    drop[0] if drop else _NO_POS,
                    kp,
                    ks,
                )
            except TypeError:  # argument types it was not compiled for: NumPy below
                got = -1
            if got >= 0:
                if got < k:
                    return None  # fewer than k candidates: the block is scanned
                return self._merged(qq, bm, kp, ks, float(ks[-1]), 1.0 - float(d[-1]), n_elig)
        kp, ks = _merge_numpy(
            cols[0], d, bm.lm, bm.la, bm.pos, pool, bm.pmul, bm.padd, bm.ppos, bm.pidx, outs, k
        )
        tau = float(ks[-1]) if len(ks) == k else -np.inf
        if tau == -np.inf:
            return None
        return self._merged(qq, bm, kp, ks, tau, 1.0 - float(d[-1]), n_elig)

    def _arm_adjusted(self, cfg: FilterConfig, cf: CompiledFilter) -> None:
        """Keep a shortcut (:meth:`_fast_adjusted`) for a boosted/buried "same category" config
        whose last answer came from a category block's graph (:meth:`_search_block_adjusted`),
        called by :meth:`~recsys.search.fast.FastMixin._arm_fast`. Not with identical vectors
        (the class merge is off then) nor with the adjusted graphs on (the shortcut does not
        read them)."""
        if (
            cf.seed_table is None
            or cf.cat_col < 0
            or self._tie_of is not None
            or _ADJUSTED_GRAPHS
            or self._index is None
        ):
            return
        from recsys.search.fast import FastPlan
        from recsys.search.static import flat_view as _flat

        if self._perm_mv is None:
            self._perm_mv = _flat(self.view.perm)
        fp = FastPlan(cfg, cf, AdjustMixin._fast_adjusted, self._index._index.knn_query, self._perm_mv)
        fp.table, fp.width, fp.drop = _flat(cf.seed_table), cf.seed_table.shape[1], cf.table_drop
        self._keep_fast(fp)
        fp.plain = True  # no tied vectors (above); _fast_adjusted places the pins from now on

    def _fast_adjusted(self, seed_item_id: str, k: int, fp: FastPlan) -> SearchResult | None:
        """The shortcut of a boosted/buried "same category" config (:meth:`_arm_adjusted`): the
        seed's block from its seed-table row, then the class merge of
        :meth:`_search_block_adjusted` (one ``knn_query`` on the block's plain graph, the pool's
        product, the compiled cut to k, the bound of every class outside the pool), without the
        general path's layers (the query object, the compiled-filter look-up, the merge's
        set-up checks). The seed's pool table row settles most lists in one compiled call
        (:func:`~recsys.search.merge_kernel._settle`: the merge, the table's and the classes' bounds,
        the rows); the pins are placed here (none for most seeds: ``cf.place_seeds``). Same list,
        scores, counts, eligible count and plan as the general path (pins placed after it).
        None (the general path answers: it counts the block's uses, builds its merge, scans the
        block, or merges in NumPy) when the block has no graph or no prepared merge yet, the
        compiled merge is not ready, the fetch would be the whole block, fewer than k candidates
        remain, a class outside the pool could climb, or hnswlib#444."""
        t0 = perf_counter()
        settle = merge_kernel.SETTLE
        pos = fp.pos_of.get(seed_item_id, -1)
        if pos < 0 or k.__class__ is not int or k < 1 or settle is None or merge_kernel.KERNEL is None:
            return None
        cf, w = fp.cf, fp.width
        row = fp.table[pos * w : pos * w + w].tolist()
        counts = row[TABLE_COUNTS:]
        if counts[cf.cat_col] < 0:
            return None  # the seed has no category: no block
        key = (row[6], row[7], cf.adult_col >= 0 and counts[cf.adult_col] >= 0)
        got = fp.graphs.get(key)
        if got is None:
            ss, cl = cf.blocks.get(key), cf.adjust_classes
            bm = cl._merges.get(key) if cl is not None else None  # set up by the general path
            if ss is None or ss.sub is None or bm is None:
                return None
            got = fp.graphs[key] = (ss, bm)
            if bm.table is None:
                self._queue_pool_table(cf, key, bm)
        ss, bm = got
        drop = fp.drop.get(pos) if fp.drop else None
        seed = pos if cf.config.exclude_seed else -1
        banned = drop[0] if drop is not None else _NO_POS
        # the filter alone's beam (hnswlib searches at max(ef, fetch)), its first 2k + outs labels
        # only: fewer to return and merge; the bounds close on the last one's raw score, and when
        # they do not the general path fetches ef labels (the same beam, the list equal either way)
        fetch = 2 * k + len(banned) + (seed >= 0)
        if fetch >= ss.n:
            return None
        q = fp.qunit[pos : pos + 1]
        try:
            cols, dist = ss.sub.knn_query(q, fetch, 1)
        except RuntimeError:  # hnswlib#444
            return None
        kp, ks = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
        tab, n, perm = bm.table, merge_kernel.UNSETTLED, self.view.perm
        # one compiled call: the merge, the pool's bound, the classes' bound, the rows
        try:
            if tab is not None and tab is not _NO_TABLE:  # the seed's best pool items, listed once
                j, t = pos - tab.start, len(tab.ones)
                n = settle(
                    cols, dist, bm.lm, bm.la, bm.pos, tab.flat_adj, tab.ones, tab.zeros, tab.flat_pos, j * t,
                    tab.bound[j], bm.rest2, seed, banned, perm, kp, ks,
                )  # fmt: skip
            if n == merge_kernel.UNSETTLED:  # the whole pool (its table is not built yet, or it might enter)
                n = settle(
                    cols, dist, bm.lm, bm.la, bm.pos, self._pool_scores(bm, q[0]), bm.pmul, bm.padd, bm.ppos32, 0,
                    _NINF, bm.rest2, seed, banned, perm, kp, ks,
                )  # fmt: skip
        except TypeError:  # argument types it was not compiled for
            return None
        if n < k:  # fewer than k candidates, or a class outside the pool could climb (CLIMBS)
            return None  # the general path scans the block
        rows = kp.tolist()
        removed, skipped = self._table_counts(cf, counts)
        res = SearchResult(
            _ids_at(fp.ids, rows),
            ks.tolist(),
            rows,
            removed,
            "hnsw_subindex",
            row[5],  # the eligible count, as the general path reads it (query.TABLE_COUNTS)
            (perf_counter() - t0) * 1e3,
            skipped,
            self.view.item_id_list[pos],
        )
        if cf.place_rules and fp.plain:  # pins: placed here (search returns this as it comes)
            if cf.place_seeds is not None and pos not in cf.place_seeds:
                for rl in cf.place_rules:  # nothing to place for this seed (as _place counts it)
                    removed[rl.name] = 0
            else:
                res = self._place(res, fp.qunit[pos], pos, fp.cfg, k, cf)
        return res

    def _queue_pool_table(self, cf: CompiledFilter, key: tuple, bm: BlockMerge) -> None:
        """Build (background; inline on a small catalogue) the block's :class:`PoolTable`, when its
        pool is packed, its work within ``_POOL_TABLE_MAX_WORK`` and its memory within the block
        graphs' cap (``cf.block_bytes``); otherwise :data:`_NO_TABLE` (the pool is scored at each
        query, as before). A table queued already (by another shortcut of the filter: another config
        object of it) is not reserved again."""
        job = (id(cf), "pool table", key)
        if self._bg.pending(job):
            return
        build = self._pool_table_build(cf, key, bm)
        if build is None:
            return
        self._build_or_queue(job, build)

    def _pool_table_build(self, cf: CompiledFilter, key: tuple, bm: BlockMerge) -> Any:
        """The job that builds block ``key``'s :class:`PoolTable` for its merge ``bm``
        (:meth:`_queue_pool_table`), or None: the table of the block's pool when built already (its
        over-fetch's, before the graph: read, not rebuilt) or queued (its build gives it to the
        merge), else as :meth:`_pool_table_job`."""
        bp = bm.pool
        if bp.table is not None:
            bm.table = bp.table
            return None
        if bp.queued:
            return None
        return self._pool_table_job(cf, key, bp)

    def _pool_table_job(self, cf: CompiledFilter, key: tuple, bp: BlockPool) -> Any:
        """The job that builds the :class:`PoolTable` of block ``key``'s pool ``bp`` (and gives it to
        the block's merge, if set up), or None: after setting :data:`_NO_TABLE` when the block gets
        none (no packed pool, its work past ``_POOL_TABLE_MAX_WORK``, or the filter's tables past
        ``_POOL_TABLES_MAX_BYTES``), or, with the table left unset, while the compiled kernels are
        not ready (the shortcut, which needs them too, queues it again at its first query of the
        block; the over-fetch at its next)."""
        s, e, _ = key
        m = len(bp.ppos)
        size = (e - s) * (min(_POOL_TABLE_K, m) * 8 + 4)
        cl = self._adjust_classes(cf)
        if (
            bp.pvect is None
            or m * (e - s) > _POOL_TABLE_MAX_WORK
            or cl.table_bytes + size > _POOL_TABLES_MAX_BYTES
        ):
            bp.table = _NO_TABLE
            bm = cl._merges.get(key)
            if bm is not None:
                bm.table = _NO_TABLE
            return None
        if merge_kernel.TABLE is None:
            return None
        cl.table_bytes += size  # reserved when queued: the queued tables stay within the budget
        bp.queued = True

        def build() -> None:
            if bp.table is None:
                bp.table = _pool_table(self.qunit, s, e, bp, self._bg.pause)  # published whole
            else:
                cl.table_bytes -= size
            bm = cl._merges.get(key)
            if bm is not None and bm.table is None:
                bm.table = bp.table

        return build

    def _pool_scores(self, bm: BlockMerge, q: np.ndarray) -> np.ndarray:
        """The pool's raw scores for the query ``q`` (:func:`~recsys.search.merge_kernel.pool_scores`:
        the floats its :class:`PoolTable` lists), from its packed vectors or gathered."""
        pvect = bm.pvect
        if pvect is None:  # past the packing cap: gathered
            pvect = np.ascontiguousarray(np.take(self.unit, bm.ppos, axis=0).T)
        return merge_kernel.pool_scores(pvect, q)

    def _queue_block_merge(self, cf: CompiledFilter, key: tuple) -> None:
        """Queue, right after the block ``key``'s graph (:meth:`~recsys.search.static.StaticMixin._queue_block`
        calls it for a boosted/buried category config, whichever path queued the graph: its own
        uses, the partition rule), the block's :class:`BlockMerge` and :class:`PoolTable`: both depend on the block's eligible set,
        not on its graph, so they are built with it, before the config's first query on the graph
        (which set the merge up itself and queued the table, held while queries run: a boosted
        config's queries scored the whole pool at each query, 1.2x to 1.3x the filter alone's
        time at 100k, until queries paused; s32-r). Nothing is built when the block gets no graph."""

        def build() -> None:
            ss = cf.blocks.get(key)
            if ss is None or ss.sub is None:
                return  # no graph (past the budget, or adopted later): the first query sets it up
            bm = self._adjust_classes(cf).merge_plan(key, ss, self.unit, self.view.perm)
            if bm is not None and bm.table is None:
                table = self._pool_table_build(cf, key, bm)
                if table is not None:
                    table()

        self._build_or_queue((id(cf), "block merge", key), build)

    def _merged(
        self, qq: Query, bm: BlockMerge, kp: np.ndarray, ks: np.ndarray, tau: float, s_f: float, n_elig: int
    ) -> SearchResult | None:
        """The class merge's list ``kp``, ``ks`` (k-th score ``tau``), or None when a class outside
        the pool may climb into it: its bound ``m * s_f + a`` (``s_f``: the fetch's last raw score,
        above every unfetched member's) reaches ``tau`` (the block is scanned)."""
        for m, a in bm.rest:
            if _reaches(m * s_f + a, tau):
                return None  # the fetch was too shallow for this class: the block is scanned
        return self._result(qq, kp, ks, None, "hnsw_subindex", n_elig)

    def _queue_adjusted_graph(self, cf: CompiledFilter, key: tuple) -> None:
        """Build (background; inline on a small catalogue) the :class:`AdjustedGraph` of the block
        ``key`` from its plain graph's eligible set (``cf.blocks``: built or queued before it, on
        the same queue; nothing is built without it), with the block graphs' construction
        settings and within their memory cap (``cf.block_bytes``)."""
        if cf.block_bytes >= _BLOCKS_MAX_BYTES:
            return
        from recsys.search.static import SUB_EF_CONSTRUCTION

        index = self._index if self._index is not None else self.index

        def build() -> None:
            import hnswlib

            ss, cl = cf.blocks.get(key), self._adjust_classes(cf)
            if key in cl.graphs or ss is None or ss.sub is None:
                return
            dense = ss.dense()
            if dense is None:
                dense = np.take(self.unit, ss.pos, axis=0)
            d = dense.shape[1]
            aug = np.empty((ss.n, d + 2), dtype=np.float32)
            np.multiply(dense, cf.adjust[0][ss.pos, None], out=aug[:, :d])
            aug[:, d] = cf.adjust[1][ss.pos]
            sq = np.einsum("ij,ij->i", aug[:, : d + 1], aug[:, : d + 1])
            aug[:, d + 1] = np.sqrt(np.maximum(sq.max() - sq, 0.0))  # one norm for all: a metric graph
            g = hnswlib.Index(space="ip", dim=aug.shape[1])
            efc = max(index.ef_construction, SUB_EF_CONSTRUCTION)
            g.init_index(max_elements=ss.n, M=index.M, ef_construction=efc, random_seed=100)
            g.add_items(aug, np.arange(ss.n, dtype=np.int64), num_threads=1)
            ef = _adjusted_ef(g, aug, dense, ss.sub.ef)
            if ef is None or not self._adjusted_graph_pays(cf, key, ss, ef):
                cl.graphs[key] = _NO_GRAPH  # never answers: the class merge does
                return
            g.set_ef(ef)
            cf.block_bytes += aug.nbytes + ss.n * (2 * index.M * 4 + 16)
            cl.graphs[key] = AdjustedGraph(g, ss.rows)  # published whole

        self._build_or_queue((id(cf), "adjusted graph", key), build)

    def _adjusted_graph_pays(self, cf: CompiledFilter, key: tuple, ss: Any, ef: int) -> bool:
        """Whether the block's adjusted graph, at the ``ef`` its recall check needs, is expected to
        cost less than the class merge it would replace (the planner's ``_S_*`` costs): the plain
        graph's beam search at its own ef, the merge's NumPy steps (``_S_ADJUST_BASE``) and a scan
        of the block's members of every class that can climb above its dominant class (a larger
        multiplier or shift). An adjusted graph that needs a much larger ef than the plain one
        (its vectors' norms differ: the beam must go further for a boosted neighbour) answers
        slower than the merge, which is exact but for the plain graph's own recall."""
        cl = self._adjust_classes(cf)
        dom, others = cl.block(key, ss.ok_by_row, self.view.perm)
        md, ad = cl.mul[dom], cl.add[dom]
        climb = sum(len(p[1]) for p in others if cl.add[p[0]] > ad or cl.mul[p[0]] + cl.add[p[0]] > md + ad)
        gemv = _S_GEMV_ROW if climb * self.dim * 4 <= _S_CACHE_BYTES else _S_GEMV_ROW_COLD
        merge = self._static_hnsw_cost(ss.sub.ef) + _S_ADJUST_BASE
        merge += climb * (gemv * self._dscale + _S_SELECT_ROW)
        return self._static_hnsw_cost(ef) <= merge

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
        cl = self._adjust_classes(cf)
        if qq.block is not None and dist is not None and type(cand) is KeyRange and cf.adjust_cat_only:
            got = self._overfetch_settle(qq, cl, cand, rows, dist)  # the block's pool table (block_pool.py)
            if got is not None:
                return *got, {}, True
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
        return *_best(cp, adj, k), {}, True
