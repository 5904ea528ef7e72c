"""A boosted/buried category block's pool table (:class:`PoolTable`): each seed's best items of the
block's pool, listed once in the background so that a query need not score the whole pool
(:meth:`~recsys.search.adjusted.AdjustMixin._fast_adjusted`), built from one BLAS product per
chunk of seeds (:func:`_pool_table`) with the floats the whole pool's product gives
(:func:`~recsys.search.merge_kernel.pool_scores`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.search import merge_kernel
from recsys.search.kernels import _matvec

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.adjusted import BlockMerge
    from recsys.search.block_pool import BlockPool

#: pool items listed per seed in a :class:`PoolTable`
_POOL_TABLE_K = 16
#: a block gets a :class:`PoolTable` when its pool's rows times the block's seeds are at most this
#: (n = 100,000: ~460 x 10k; at 1M ~4,500 x 100k: 4.5e8, about 4 s of one core per block, in
#: steps of :data:`_POOL_TABLE_CHUNK` seeds: one BLAS product, then one compiled pass)
_POOL_TABLE_MAX_WORK = 1 << 30
#: seeds per step of a table's build (a 512 x 4,500 product: 9 MB, ~20 ms), a pause between steps
_POOL_TABLE_CHUNK = 512
#: the pool tables of one compiled filter take at most this many bytes in all (a budget of their
#: own, beside the block graphs' ``_BLOCKS_MAX_BYTES``): at 1M a block's table is 100k x 16 x 8
#: bytes, 12.8 MB, so the ten level-1 blocks' tables fit
_POOL_TABLES_MAX_BYTES = 160 << 20
#: the table's listed items enter the compiled merge already adjusted: multiplier 1, shift 0
_ZEROS = np.zeros(_POOL_TABLE_K, dtype=np.float32)


class PoolTable:
    """Each seed's best items of its block's pool (:class:`~recsys.search.adjusted.BlockMerge`), for
    the seed's own vector, computed once in the background: ``adj[pos - start]``, the adjusted
    scores of its ``_POOL_TABLE_K`` best pool items (unordered) and ``pos[...]`` their positions
    (int32); ``bound[...]``: every pool item not listed scores at most that for this seed (-inf
    when the pool is listed whole; :func:`_pool_table`). The listed scores are those the whole
    pool's product gives (:func:`~recsys.search.merge_kernel.pool_scores`, adjusted in float32 as
    the compiled merge adjusts), so a list settled from the table (its k-th score above ``bound``)
    is the whole pool's, scores included, to the bit."""

    __slots__ = ("adj", "pos", "bound", "start", "flat_adj", "flat_pos", "ones", "zeros", "nbytes")

    def __init__(self, adj: np.ndarray, pos: np.ndarray, bound: np.ndarray, start: int) -> None:
        self.adj, self.pos, self.bound, self.start = adj, pos, bound, start
        #: the same, flat, with a multiplier 1 and a shift 0 per listed item (merge_kernel._settle)
        self.flat_adj, self.flat_pos = adj.reshape(-1), pos.reshape(-1)
        self.ones = np.ones(adj.shape[1], dtype=np.float32)
        self.zeros = np.zeros(adj.shape[1], dtype=np.float32)
        self.nbytes = adj.nbytes + pos.nbytes + bound.nbytes


#: a block whose table is not built (past the tables' memory budget, or too much work, or no packed pool)
_NO_TABLE = PoolTable(np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.int32), _ZEROS[:0], 0)


def _pool_table(
    qunit: np.ndarray, s: int, e: int, bm: BlockMerge | BlockPool, pause: Any = None
) -> PoolTable:
    """The :class:`PoolTable` of the seeds at positions ``[s, e)`` (``qunit``: the searcher's query
    rows by position) over the pool of ``bm`` (a block's :class:`~recsys.search.block_pool.BlockPool`,
    or its merge, which reads the same arrays), :data:`_POOL_TABLE_CHUNK` seeds at a time: one BLAS
    product of the chunk and the pool picks each seed's ``_POOL_TABLE_K`` best (by adjusted score)
    and the bound, the next one's score plus more than the product's rounding (:func:`_table_err`);
    the listed items get their canonical scores (:func:`~recsys.search.merge_kernel._dot`'s floats,
    adjusted in float32 as the merge adjusts them: the whole pool's product gives them the same),
    so a list settled from the table is the whole pool's, scores included, to the bit. ``pause``
    (the background's) runs between chunks. Needs the compiled kernels (``merge_kernel.TABLE``)."""
    fill = merge_kernel.TABLE
    m = len(bm.ppos)
    t = min(_POOL_TABLE_K, m)
    adj = np.empty((e - s, t), dtype=np.float32)
    pos = np.empty((e - s, t), dtype=np.int32)
    bound = np.full(e - s, -np.inf, dtype=np.float32)
    pvect = bm.pvect
    pvec = np.ascontiguousarray(pvect.T)  # rows x dim, for the listed items' own sums
    pn = float(np.sqrt(np.einsum("ij,ij->j", pvect, pvect).max())) if m else 0.0
    big_m = float(max(1.0, float(np.abs(bm.pmul).max()))) if m else 1.0
    big_a = float(np.abs(bm.padd).max()) if m else 0.0
    for a in range(s, e, _POOL_TABLE_CHUNK):
        b = min(e, a + _POOL_TABLE_CHUNK)
        qs = qunit[a:b]
        g = np.ascontiguousarray(_matvec(qs, pvect), dtype=np.float32)
        qn = np.sqrt(np.einsum("ij,ij->i", qs, qs))
        err = _table_err(qn, pn, qs.shape[1], big_m, big_a)
        fill(
            g,
            bm.pmul,
            bm.padd,
            bm.ppos32,
            pvec,
            qs,
            err,
            adj[a - s : b - s],
            pos[a - s : b - s],
            bound[a - s : b - s],
        )
        if pause is not None:
            pause()
    return PoolTable(adj, pos, bound, s)


def _table_err(qn: np.ndarray, pn: float, d: int, big_m: float, big_a: float) -> np.ndarray:
    """Per seed, more than the gap between BLAS's adjusted product and the canonical one: each sum
    of ``d`` float32 products is within ``d * 2**-24 * |q| * |x|`` of the true dot (``qn``: the
    seeds' norms, ``pn``: the pool's largest), four times that for both sums and a margin, times
    the largest multiplier, plus the adjustment's rounding (the largest shift ``big_a``)."""
    err = qn.astype(np.float64) * (4.0 * d * 2.0**-24 * pn) + 2.0**-20
    err = err * big_m + 2.0**-20 * (1.0 + big_a + big_m)
    return err.astype(np.float32)
