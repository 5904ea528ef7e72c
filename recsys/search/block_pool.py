"""A boosted/buried category block's *pool* (:class:`BlockPool`), apart from the block's graph, and the
over-fetch settled from its :class:`~recsys.search.pool_table.PoolTable`
(:meth:`BlockPoolMixin._overfetch_settle`).

The pool of a category block holds every eligible member of the classes that can climb above the
block's dominant class (a larger multiplier or shift: a boosted brand, a few percent of the block).
It depends on the block's eligible set and the rules, not on a graph, so it is set up once per
block and read by both answers of a boosted "same category" query:

- on the block's own graph, the class merge (:class:`~recsys.search.adjusted.BlockMerge`) scores
  it at each query, or reads the seed's best pool items from its table;
- without one (the block's graph not built yet, or past the graphs' memory budget: at 1M items
  2 of the 10 level-1 blocks never get one, 4 or 5 have none after the bench's second warm round),
  the over-fetch of the main graph (:meth:`~recsys.search.adjusted.AdjustMixin._rank_adjusted`)
  gathered and scored the open classes' members of the seed's block at each query: ~4.5k rows at
  1M, 2.4x to 2.5x the filter alone's time there (s34-r). Once the block's table is built, the
  over-fetch's eligible labels of the other classes and the seed's listed pool items settle the
  list instead in one compiled call (:meth:`BlockPoolMixin._overfetch_settle`), with the table's
  bound and the classes' bounds, or leave it to the gather.

A block that gets its graph later reads the same pool and the table already built (none rebuilt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.search import merge_kernel
from recsys.search.planner import _SUB_AFTER
from recsys.search.pool_table import _NO_TABLE

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.adjusted import AdjustClasses
    from recsys.search.compiled import CompiledFilter, _SeedRules
    from recsys.search.pool_table import PoolTable
    from recsys.search.query import Query

#: a class is open when its bound reaches ``tau`` minus this (relative) margin: float32
#: rounding of hnswlib's distances and of the adjusted scores (about 1e-7) never closes one
_MARGIN = 1e-5


def _reaches(bound: float, tau: float) -> bool:
    """Whether a class's ``bound`` reaches the k-th adjusted score ``tau`` (``_MARGIN`` below it
    counts: the class is open)."""
    return bound >= tau - _MARGIN * (1.0 + abs(tau) + abs(bound))


def _best(pos: np.ndarray, adj: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of the candidates (``pos``: their catalogue positions, distinct; ``adj``:
    their adjusted scores), best first, ties by lower position as exact search breaks them.
    Only the candidates reaching the k-th score are sorted: an open class can add thousands of
    candidates (a boosted brand in a 100k-row block), whose full two-key sort cost more than the
    beam search (:func:`recsys.topk.topk` breaks ties by index in ``adj``, not by position)."""
    if len(adj) > k:
        kth = np.partition(adj, len(adj) - k)[len(adj) - k]
        sel = np.flatnonzero(adj >= kth)  # the tied ones at the cut included, sorted below
        pos, adj = pos[sel], adj[sel]
    order = np.lexsort((pos, -adj))[:k]
    return pos[order], adj[order]


def _merge_numpy(
    cols: np.ndarray,
    d: np.ndarray,
    lm: np.ndarray,
    la: np.ndarray,
    pos: np.ndarray,
    pool: np.ndarray,
    pmul: np.ndarray,
    padd: np.ndarray,
    ppos: np.ndarray,
    pidx: dict[int, int],
    outs: list[int],
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The class merge's cut to k in NumPy (:class:`BlockMerge`; the compiled one:
    :mod:`recsys.search.merge_kernel`, the same list and scores): the fetch (``cols``: labels of
    the block's plain graph, ``d``: their distances) re-scored per label (``lm``, ``la``: -inf for
    the pool's classes), the pool's raw scores ``pool`` (overwritten) adjusted (``pidx``: the pool's
    index of each of its positions ``ppos``), the positions in
    ``outs`` (the seed, its banned items) left out, the ``k`` best kept (fewer when there are
    fewer candidates; -inf ones included)."""
    c = cols.view(np.int64)
    adj = 1.0 - d  # the fetch: the pool's classes at -inf (scored below, from the pool)
    adj *= lm[c]
    adj += la[c]
    fpos = pos[c]
    pool *= pmul
    pool += padd
    if outs:
        fl = fpos.tolist()
        for p in outs:
            if p in fl:
                adj[fl.index(p)] = -np.inf
            j = pidx.get(p)
            if j is not None:
                pool[j] = -np.inf
    return _best(np.concatenate((fpos, ppos)), np.concatenate((adj, pool)), k)


class BlockPool:
    """A category block's pool (module docstring), set up once per compiled filter and block
    (:meth:`~recsys.search.adjusted.AdjustClasses.block_pool`): ``ppos`` (positions, ascending within
    each class; ``ppos32``: the same, int32), ``pvect`` (their vectors transposed, dim x rows, C
    order: :func:`~recsys.search.merge_kernel.pool_scores`; None past the packing cap), ``pmul``,
    ``padd`` (each one's multiplier and shift); ``pooled``: per class, whether the pool holds its
    block members; ``rest`` / ``rest2``: the ``(m, a)`` of the block's other classes with eligible
    members (the dominant one among them), closed by ``m * s_F + a`` below the k-th score; ``n``:
    the block's eligible items; ``table``: its :class:`~recsys.search.pool_table.PoolTable` once
    built (:data:`~recsys.search.pool_table._NO_TABLE`: none will be), ``queued`` while its build is."""

    __slots__ = ("ppos", "ppos32", "pvect", "pmul", "padd", "pooled", "rest", "rest2", "n", "table", "queued")

    def __init__(
        self, cl: AdjustClasses, dom: int, pool: list, others: list, n: int, unit: np.ndarray
    ) -> None:
        pooled = np.zeros(len(cl.mul), dtype=bool)
        pooled[[p[0] for p in pool]] = True
        self.pooled = pooled
        self.rest = sorted({(cl.mul[c], cl.add[c]) for c in [dom] + [p[0] for p in others] if not pooled[c]})
        self.rest2 = np.array(self.rest, dtype=np.float64).reshape(-1, 2)  # the same, for merge_kernel
        self.ppos = np.concatenate([p[1] for p in pool]) if pool else np.zeros(0, dtype=np.int64)
        self.ppos32 = self.ppos.astype(np.int32)  # the compiled settle's and table's positions
        self.pvect: np.ndarray | None = np.ascontiguousarray(np.take(unit, self.ppos, axis=0).T)
        sizes = [len(p[1]) for p in pool]
        self.pmul = np.repeat(cl.mul32[[p[0] for p in pool]], sizes).astype(np.float32)
        self.padd = np.repeat(cl.add32[[p[0] for p in pool]], sizes).astype(np.float32)
        self.n = n
        self.table: PoolTable | None = None
        self.queued = False


#: the fetch's labels as the compiled settle reads them (``cols[0, t] = t``: its per-label arrays
#: are the fetch's own, built per query), up to this many
_IOTA = np.arange(4096, dtype=np.uint64)[None, :]
_NINF = np.float32(-np.inf)
_NO_POS = np.zeros(0, dtype=np.int64)


class BlockPoolMixin:
    """The pools of the blocks without a graph (:class:`~recsys.search.adjusted.AdjustMixin`'s base:
    its ``_adjust_classes``, ``_pool_table_job``, ``_adjusted_prefers_exact``)."""

    def _first_block_use(self, cf: CompiledFilter, r: _SeedRules) -> None:
        """Count a boosted/buried "same category" config's query that its seed table does not
        answer yet (the general path: its first queries) as a use of the seed's category block,
        as its table queries count them (:meth:`~recsys.search.static.StaticMixin._search_block`)
        and a lean filter's first queries do (the inverted lists'). Counted only from the table
        on, such a config's first round of queries counted nothing: at 1M items the bench's first
        warm round (200 queries, ~20 per block) all ran before its seed table, so a block got its
        ``_SUB_AFTER`` uses only from the second round, and one with fewer than that there set up
        neither its pool (:meth:`_queue_block_pool`) nor its own graph, merge and table
        (``_queue_block`` adopts the filter alone's graph): its merge was set up and its table
        built in the middle of the timed queries (issue 16, s35-r's probes; s36-r).

        The compiled kernels are queued first, as the block graph's path queues them
        (:meth:`~recsys.search.adjusted.AdjustMixin._search_block_adjusted`): the merge and table
        jobs these uses queue run after them on the same thread (a table job that finds no kernels
        builds nothing: at 100k, queued by the first round's uses before any compile, no table was
        built until the third round)."""
        if r.level is not None and self._tie_of is None:
            if merge_kernel.state == "idle" and not self._inline():
                merge_kernel.prepare(self._bg)
            self._block_use(cf, (r.s, r.e, r.no_adult))

    def _queue_block_pool(self, cf: CompiledFilter, key: tuple) -> None:
        """Set up (background; inline on a small catalogue) the pool and :class:`PoolTable` of a
        block without a graph (:class:`~recsys.search.block_pool.BlockPool`), for the over-fetch
        that answers its seeds (:meth:`~recsys.search.adjusted.AdjustMixin._rank_adjusted`: without it, the open classes' members of
        the block are gathered and scored at each query, ~4.5k rows at 1M), once the block has
        had as many queries as a block's graph waits for (``_SUB_AFTER``: the table's build is a
        tenth of the graph's) and the over-fetch answers them (not an exact scan of the block).
        The merge of a graph built later reads the same pool and table."""
        cl = self._adjust_classes(cf)
        if key in cl.pools:
            return
        s, e, no_adult = key
        uses = cf.block_uses.get(key, 0) + cf.block_uses.get((*key, "seen"), 0)
        if uses < _SUB_AFTER or self._adjusted_prefers_exact(e - s):
            return

        def build() -> None:
            # the compiled kernels (the table's) are queued before it (_search_block_adjusted) and
            # ready by now, unless numba is missing: nothing set up then, a later query queues it
            # again (at 1M a filter's first round of queries on its seed table takes ~0.1 s, less
            # than the kernels' compile: waiting for them at queue time set up no pool in it)
            if key in cl.pools or merge_kernel.TABLE is None:
                return
            ok = cf.base_mask[s:e].copy()
            if no_adult:
                ok &= ~self.view.adult[s:e]
            bp = cl.block_pool(key, None, self.view.perm, self.unit, ok_pos=ok)
            if bp is not None and bp.table is None and not bp.queued:
                job = self._pool_table_job(cf, key, bp)
                if job is not None:
                    job()

        self._build_or_queue((id(cf), "block pool", key), build)

    def _overfetch_settle(
        self, qq: Query, cl: AdjustClasses, cand: Any, rows: np.ndarray, dist: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The over-fetch's adjusted top k (positions, scores) from the seed's row of its block's
        pool table (:meth:`_overfetch_pool`), or None (the open classes' members are gathered, as
        before; module docstring). ``rows``, ``dist``: the main graph's fetch (every label not
        returned scores at most the last one's ``s_F``); ``cand``: the seed's
        :class:`~recsys.search.query.KeyRange`.

        One compiled call (:func:`~recsys.search.merge_kernel._settle`, the shortcut's) over the
        fetch's eligible labels of the classes outside the pool (the pool's members among the fetch
        are listed by the table, or below its bound) and the seed's listed pool items, the seed and
        its banned items out: the list when its k-th score ``tau`` is above the row's bound (every
        unlisted pool item scores at most that) and every class outside the pool is closed
        (``m * s_F + a`` below ``tau``). That is the gather's list (which scores every open class's
        members of the block), but for the last bit of a score: the table's floats are the
        canonical sums of :func:`~recsys.search.merge_kernel._dot`, the gather's BLAS's."""
        settle, nf = merge_kernel.SETTLE, len(rows)
        if settle is None or not 0 < nf <= _IOTA.shape[1] or nf >= self.n:
            return None
        bp = self._overfetch_pool(qq, cl)
        if bp is None:
            return None
        r = rows.view(np.int64)
        cid = cl.by_row[r]
        ok = cand.eligible(r)
        ok &= ~bp.pooled[cid]
        tab, pos_of_row, k = bp.table, self.view.pos_of_row, qq.k
        j, t = qq.pos - tab.start, len(tab.ones)
        seed = int(pos_of_row[cand.seed_row]) if cand.seed_row >= 0 else -1
        banned = pos_of_row[np.asarray(cand.drop, dtype=np.int64)] if cand.drop else _NO_POS
        kp, ks = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
        try:
            n = settle(
                _IOTA[:, :nf], dist[None, :], cl.mul32[cid], np.where(ok, cl.add32[cid], _NINF), pos_of_row[r],
                tab.flat_adj, tab.ones, tab.zeros, tab.flat_pos, j * t, tab.bound[j], bp.rest2, seed, banned,
                self.view.perm, kp, ks,
            )  # fmt: skip
        except TypeError:  # argument types it was not compiled for
            return None
        if n != k:  # fewer than k, an unlisted pool item might enter, or a class could climb
            return None
        return pos_of_row[kp], ks

    def _overfetch_pool(self, qq: Query, cl: AdjustClasses) -> BlockPool | None:
        """The seed's category block's pool when its table is built (:meth:`_queue_block_pool`) and
        the over-fetch's domain is that block (``qq.block``, set by :meth:`~recsys.search.adjusted.AdjustMixin._search_block_adjusted`)."""
        key = qq.block
        if key is None or qq.pos is None or qq.span != key[:2]:
            return None
        bp = cl.pools.get(key)
        if bp is None or bp.table is None or bp.table is _NO_TABLE:
            return None
        return bp if key[0] <= qq.pos < key[1] else None
