"""A category block's boosted pool (:class:`~recsys.search.adjusted.BlockMerge`) without scoring it
whole at each query: each seed's best pool items listed once (:class:`PoolTable`), or, for a pool
too big for that, a graph of its own (:func:`pool_graph`, :func:`graph_merge`).

At n = 100,000 a block's pool (the boosted brands inside a 10k-row category block) is ~500 rows and
its table costs ~0.1 s of background per block. At 1M the pool is ~5,000 rows in a 100k-row block:
its table would cost ~4 s of background per block and ~19 MB, and each query's product of the
whole pool (1.3 MB, out of the caches) is most of what the rules add to the filter alone. There the
pool gets an HNSW graph (hnswlib, the block graphs' build settings, its ``ef`` calibrated to the
block graphs' recall bar, ~0.5 s of background and ~2 MB per block): a query fetches the pool's
nearest items, and every pool class ``(m, a)`` is closed when its bound ``m * s_P + a`` (``s_P``:
the raw score of the last pool item fetched) is below the list's k-th adjusted score, as the
block's own fetch closes the classes outside the pool; otherwise the pool is scored whole, as
before. So the list is exact but for the graphs' recall, as the filter alone's is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.search import merge_kernel
from recsys.search.batch import calibrated_ef
from recsys.search.kernels import _matvec

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.adjusted import BlockMerge

#: pool items listed per seed in a :class:`PoolTable`
POOL_TABLE_K = 16
#: a block gets a :class:`PoolTable` when one product of its pool per seed of the block costs at
#: most this many multiply-adds in all (n = 100,000: ~460 x 10k; at 1M a 5,000-row pool in a
#: 100k-row block is 10x past it: no table, the pool gets a graph, :data:`POOL_GRAPH_MIN`)
POOL_TABLE_MAX_WORK = 1 << 26
#: a pool past the table's work cap gets a graph when it holds at least this many rows (a smaller
#: one is scored whole: one product of a few hundred rows costs about a beam search's tail)
POOL_GRAPH_MIN = 1024
#: the table's listed items enter the compiled merge already adjusted: multiplier 1, shift 0
ONES = np.ones(POOL_TABLE_K, dtype=np.float32)
ZEROS = np.zeros(POOL_TABLE_K, dtype=np.float32)


#: a class is open when its bound reaches ``tau`` minus this (relative) margin: float32
#: rounding of hnswlib's distances and of the adjusted scores (about 1e-7) never closes one
_MARGIN = 1e-5


def _reaches(bound: float, tau: float) -> bool:
    """Whether a class's ``bound`` reaches the k-th adjusted score ``tau`` (``_MARGIN`` below it
    counts: the class is open)."""
    return bound >= tau - _MARGIN * (1.0 + abs(tau) + abs(bound))


class PoolTable:
    """Each seed's best items of its block's pool (:class:`BlockMerge`), for the seed's own vector,
    computed once in the background: ``adj[pos - start]``, the adjusted scores of its
    ``POOL_TABLE_K`` best pool items (unordered) and ``pos[...]`` their positions; ``bound[...]``,
    the lowest listed score (-inf when the pool is listed whole): every pool item not listed scores
    at most that for this seed. The scores come from the same product the query computes
    (:func:`~recsys.search.kernels._matvec` of the pool and the seed's row, adjusted in float32 as
    the compiled merge adjusts), so a list settled from the table (its k-th score above ``bound``)
    is the whole pool's, scores included, to the bit."""

    __slots__ = ("adj", "pos", "bound", "start")

    def __init__(self, adj: np.ndarray, pos: np.ndarray, bound: np.ndarray, start: int) -> None:
        self.adj, self.pos, self.bound, self.start = adj, pos, bound, start


#: a block whose table is not built (past the block graphs' memory cap, or too much work)
NO_TABLE = PoolTable(np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.int64), ZEROS[:0], 0)


def pool_table(qunit: np.ndarray, s: int, e: int, bm: BlockMerge) -> PoolTable:
    """The :class:`PoolTable` of the seeds at positions ``[s, e)`` (``qunit``: the searcher's query
    rows by position) over ``bm``'s pool: one product per seed, as its query computes it."""
    m = len(bm.ppos)
    t = min(POOL_TABLE_K, m)
    adj = np.empty((e - s, t), dtype=np.float32)
    pos = np.empty((e - s, t), dtype=np.int64)
    bound = np.full(e - s, -np.inf, dtype=np.float32)
    for j in range(e - s):
        sc = _matvec(bm.pvec, qunit[s + j])  # the query's own product: the same floats
        sc *= bm.pmul  # then one multiply and one add in float32, as merge_kernel rounds
        sc += bm.padd
        top = np.argpartition(sc, m - t)[m - t :] if t < m else np.arange(m)
        adj[j] = sc[top]
        pos[j] = bm.ppos[top]
        if t < m:
            bound[j] = adj[j].min()
    return PoolTable(adj, pos, bound, s)


def pool_graph_bytes(rows: int, dim: int, M: int) -> int:
    """Bytes of a pool's graph (hnswlib's vectors and links, as :meth:`StaticSet.build_sub` counts)."""
    return rows * (dim * 4 + 2 * M * 4 + 16)


def pool_graph(pvec: np.ndarray, space: str, M: int, ef_construction: int, ef: int) -> Any | None:
    """An HNSW graph over a block's packed pool ``pvec`` (labels: rows of the pool), its ``ef`` the
    smallest that passes the block graphs' recall check on a sample of its members
    (:func:`~recsys.search.batch.calibrated_ef`, from the main index's ``ef``); None when none up to
    the cap does (the pool stays scored whole: its exact alternative)."""
    import hnswlib

    m = len(pvec)
    g = hnswlib.Index(space=space, dim=pvec.shape[1])
    g.init_index(max_elements=m, M=M, ef_construction=ef_construction, random_seed=100)
    g.add_items(pvec, np.arange(m, dtype=np.int64), num_threads=1)
    got = calibrated_ef(g, pvec, ef, strict=True)
    if got is None:
        return None
    g.set_ef(got)
    return g


def graph_merge(
    bm: BlockMerge,
    q: np.ndarray,
    cols: np.ndarray,
    d: np.ndarray,
    seed: int,
    banned: np.ndarray,
    k: int,
    kp: np.ndarray,
    ks: np.ndarray,
) -> bool:
    """The class merge (compiled, :mod:`recsys.search.merge_kernel`) of the block's fetch (``cols``,
    ``d``) and the pool's nearest items from its graph (``bm.graph``) into ``kp``, ``ks``; False
    (the caller scores the pool whole) when the pool's fetch would be the whole pool, hnswlib#444,
    fewer than k candidates, or a pool class's bound ``m * s_P + a`` reaches the k-th score (an
    unfetched pool item could enter). ``seed``: the seed's position (-1: kept), ``banned``: its
    banned positions."""
    kern = merge_kernel.KERNEL
    g = bm.graph
    fetch = 2 * k + len(banned) + (seed >= 0)
    if fetch < g.ef:
        fetch = g.ef
    if kern is None or fetch >= len(bm.ppos):
        return False
    try:
        lab, dist = g.knn_query(q.reshape(1, -1), fetch, 1)
    except RuntimeError:  # hnswlib#444
        return False
    pd = dist[0]
    at = lab[0].view(np.int64)
    try:
        n = kern(
            cols,
            d,
            bm.lm,
            bm.la,
            bm.pos,
            1.0 - pd,
            bm.pmul[at],
            bm.padd[at],
            bm.ppos[at],
            seed,
            banned,
            kp,
            ks,
        )
    except TypeError:  # argument types it was not compiled for
        return False
    if n < k:
        return False
    tau, s_p = float(ks[-1]), 1.0 - float(pd[-1])
    for m, a in bm.pclasses:
        if _reaches(m * s_p + a, tau):
            return False  # a pool item not fetched could climb: the whole pool is scored
    return True
