"""Building blocks of filtered search that are not per-query planning (kept apart so they can move).

* :class:`StaticSet`: the eligible items of a *static* filter (only
  seed-independent rules: brands, absolute price range, adult items), as
  sorted positions, a per-row boolean test for HNSW labels, and, when small
  enough, a dense contiguous copy of their unit vectors, so that an exact
  search is one BLAS matrix-vector (or matrix-matrix) product over a block
  instead of a gather of scattered rows.
* :func:`fetch_for`: how many HNSW candidates an over-fetch needs so that,
  were filter and vectors independent, it holds ``need`` eligible items with
  99% probability.
* :func:`topk_rows`: :func:`recsys.topk.topk_rows` padded to k (the one top-k).
* :func:`search_many_static`, :func:`search_many_keyed`: the batch paths of
  :meth:`recsys.search.FilteredSearcher.search_many` -- one multi-threaded
  hnswlib ``knn_query`` for all seeds, vectorised eligibility tests, and one
  BLAS product per group of seeds that must be answered exactly.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.errors import UnknownItemError
from recsys.filters import FilterConfig
from recsys.hugepages import OWN_MAPPING, huge_pages
from recsys.search.answers import answers
from recsys.search.beams import seeds_lost
from recsys.search.kernels import _blas_controllers
from recsys.search.planner import _FETCH_FACTOR, _FETCH_MIN
from recsys.search.query import TABLE_COUNTS, KeyRange, Query
from recsys.search.ranked import fetch_need
from recsys.search.result import SearchResult
from recsys.topk import topk_rows as _topk_rows

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.compiled import CompiledFilter
    from recsys.search.searcher import FilteredSearcher

logger = logging.getLogger(__name__)

#: largest dense eligible block kept per static filter (bytes); bigger eligible sets are
#: answered by an over-fetch from the graph, which is cheaper for them anyway
BLOCK_MAX_BYTES = 64 << 20
#: share of the catalogue above which no block is built (an over-fetch always wins there)
BLOCK_MAX_SHARE = 0.3
#: the order of the eligible sets' creation (:attr:`StaticSet.born`)
_BORN = itertools.count()


#: rows per step of a gather or a scan over a million items in the background (a few ms each)
STEP_ROWS = 1 << 16


# -- static filters ---------------------------------------------------------------------
class StaticSet:
    """The eligible items of a static filter (one adult-rule variant), ready for search.

    Attributes
    ----------
    pos : numpy.ndarray of int64
        Eligible positions, ascending (so ties order by position, as the general path).
    rows : numpy.ndarray of int64
        Their vector rows.
    ok_by_row : numpy.ndarray of bool, shape (n,)
        Eligibility by vector row (tests hnswlib labels with one gather).
    block : numpy.ndarray of float32, shape (m, d), or None
        Contiguous copy of the eligible unit vectors, padded with zero rows to a multiple
        of ``PAD`` rows (``m >= len(pos)``; :meth:`dense` drops the padding); None above
        ``BLOCK_MAX_BYTES`` / ``BLOCK_MAX_SHARE``.
    """

    __slots__ = (
        "pos",
        "rows",
        "ok_by_row",
        "block",
        "n",
        "nbytes",
        "sub",
        "costs",
        "uses",
        "born",
        "owner",
        "lost",
        "near",
    )

    def dense(self) -> np.ndarray | None:
        """The eligible unit vectors, contiguous (``block`` without its zero padding)."""
        return None if self.block is None else self.block[: self.n]

    def __init__(
        self,
        mask: np.ndarray,
        perm: np.ndarray,
        pos_of_row: np.ndarray,
        unit: np.ndarray,
        pause: Callable[[], None] | None = None,
    ) -> None:
        self.pos = stepped_flatnonzero(mask, pause)
        self.n = len(self.pos)
        if pause is not None:
            pause()
        self.rows = perm[self.pos]
        if pause is not None:
            pause()
        self.ok_by_row = mask[pos_of_row]
        size = self.n * unit.shape[1] * unit.itemsize
        total = max(1, len(mask))
        if size <= BLOCK_MAX_BYTES and self.n <= BLOCK_MAX_SHARE * total:
            self.block = padded_take(unit, self.pos, pause)
        else:
            self.block = None
        self.nbytes = self.pos.nbytes + self.rows.nbytes + self.ok_by_row.nbytes
        if self.block is not None:
            self.nbytes += self.block.nbytes
        #: an HNSW index over the eligible block alone (label = column), built in the background
        #: for a filter that keeps being used and whose exact search costs more than a beam search
        self.sub: Any = None
        #: (need, n) -> (fetch, exact cost, over-fetch cost): the planner's constants for this set;
        #: ("band", need, fetch, span, unit) -> a category block's members from which a key range
        #: inside it is searched on its graph (:meth:`~recsys.search.static.StaticMixin._block_sure`)
        self.costs: dict[tuple[Any, ...], Any] = {}
        #: queries its graph answered (a category block's: the searcher-wide cap evicts the least
        #: used first, :meth:`~recsys.search.static.StaticMixin._fit_block_graph`), and ``id`` of
        #: the compiled filter whose block budget counts it (-1: none); ``born``: its order of
        #: creation in the process (the cap evicts the older of two graphs of equal uses)
        self.uses = 0
        self.born = next(_BORN)
        self.owner = -1
        #: member row -> the fetch at which its graph's beam search first reached it, for the
        #: members whose search at the usual fetch missed them (0: none up to 16x the graph's ef;
        #: the exact-backed plans answer): learned by the queries (:func:`~recsys.search.static.
        #: lost_answer`), so that a lost seed asked again goes to that fetch at once
        self.lost: dict[int, int] = {}
        #: member row -> its exact nearest members (vector rows, cosine distances, itself first;
        #: :data:`LOST_LIST` + 1 at most), for the members whose own search on the graph is lost at
        #: its ef, found when the graph is built (:func:`lost_lists`): such a seed is answered
        #: from its list, with no search (:func:`~recsys.search.static.member_labels`)
        self.near: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def build_sub(
        self,
        space: str,
        M: int,
        ef_construction: int,
        ef: int,
        threads: int = 1,
        dense: np.ndarray | None = None,
        max_ef: int | None = None,
        self_first: bool | None = None,
    ) -> None:
        """Build :attr:`sub` over the dense block and publish it (one assignment).

        ``dense``: the eligible vectors when no block is kept (a set over ``BLOCK_MAX_SHARE``: a
        copy for the build only); ``max_ef``: the graph is not published when the ef its recall
        needs (:func:`calibrated_ef`) exceeds this (it would cost as much as what it replaces);
        ``self_first``: a member seed is looked up by its own row, its own nearest item, so that
        serving asks a lost search again (the searcher's ``_self_first``; None: the cosine space).
        """
        import hnswlib

        if dense is None:
            dense = self.dense()
        if dense is None or self.sub is not None:
            return
        idx = hnswlib.Index(space=space, dim=dense.shape[1])
        # a base layer of its own mapping (OWN_MAPPING: at 1M a 10% block's 40 MB) on huge pages,
        # where the idle walk's one read per 2 MB reads it all (recsys.hugepages)
        big = self.n * (dense.shape[1] * 4 + 8 * M + 12) >= OWN_MAPPING
        with huge_pages() if big else contextlib.nullcontext():
            idx.init_index(max_elements=max(1, self.n), M=M, ef_construction=ef_construction, random_seed=100)
        idx.add_items(dense, np.arange(self.n, dtype=np.int64), num_threads=threads)
        if self_first is None:
            self_first = space == "cosine"
        got = calibrated_ef(idx, dense, ef, self_first=self_first)
        if max_ef is not None and got > max_ef:
            logger.info(
                "a %d-row set's graph not published: the ef its recall needs, %d, is over %d",
                self.n,
                got,
                max_ef,
            )
            return
        idx.set_ef(got)
        self.nbytes += self.n * (dense.shape[1] * 4 + 2 * M * 4 + 16)
        if self_first:  # a lost member seed is answered from its exact list
            self.near = lost_lists(idx, dense, self.rows, threads=threads)
            self.nbytes += sum(r.nbytes + d.nbytes for r, d in self.near.values())
        self.sub = idx

    def column(self, pos: int) -> int:
        """Column of position ``pos`` in ``pos``/``block``, or -1 when it is not eligible."""
        j = int(np.searchsorted(self.pos, pos))
        return j if j < self.n and int(self.pos[j]) == pos else -1


#: recall@10 an eligible set's own graph must reach on a sample of its members (queried as seeds
#: are: k + 1, the seed dropped) before it answers users; below it the graph's ef is raised
SUB_RECALL = 0.99  # the recall issue 18 asks of every filtered case
#: members sampled for that check, and the most the ef may grow (x the main index's ef)
SUB_RECALL_SAMPLE = 400
SUB_EF_GROWTH = 8
#: the ef is searched to within this fraction of itself (each query's cost grows with it)
SUB_EF_STEP = 1 / 16
#: the check passes when the one-sided 95% lower confidence bound of the sample's recall (its mean
#: less this many standard errors of the mean of its members' own recalls) reaches ``SUB_RECALL``,
#: not the sample's mean: calibrated to the mean, a graph answered other seeds just under it (at
#: 1M items, the correlated category 10% + price band case's block graphs: recall@10 0.988 on
#: the bench's seeds; issue 18, s35-L). The margin comes from the calibration sample alone (its
#: spread: a block of tight clusters and strays spreads more and gets a wider margin), never from
#: the bench's seeds
SUB_RECALL_Z = 1.645


def sample_recall(
    idx: Any,
    dense: np.ndarray,
    k: int = 10,
    seed: int = 0,
    queries: Callable[[np.ndarray], np.ndarray] | None = None,
    z: float = SUB_RECALL_Z,
    self_first: bool = False,
) -> Any:
    """``recall(ef)``: the share of the exact top ``k`` of a seeded sample of ``SUB_RECALL_SAMPLE``
    members of ``dense`` (queried as seeds are: k + 1, the member dropped) that the graph ``idx``
    (labels = columns) finds at ``ef``, less ``z`` standard errors (the members' own recalls'
    standard deviation over the square root of their count: ``z = 0``, the sample's mean); None
    when ``dense`` has no more than k + 1 rows. ``queries``: the sampled columns' query vectors
    when they are not their rows of ``dense`` (a graph over transformed vectors,
    :mod:`recsys.search.adjusted`). ``self_first`` (without ``queries``: each member is looked
    up by its own row, its own nearest item, as serving looks up a member seed and then asks a
    lost search again): a member whose search is lost counts what serving answers it with
    (:func:`_lost_hits`: wider, then exactly), not a miss."""
    n = dense.shape[0]
    kk = min(k + 1, n)
    if n <= kk:
        return None
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(n, size=min(SUB_RECALL_SAMPLE, n), replace=False))
    q = np.ascontiguousarray(dense[cols] if queries is None else queries(cols))
    truth: list[set[int]] = []
    for s in range(0, len(cols), 32):  # 32 x n scores at a time
        sims = q[s : s + 32] @ dense.T
        sims[np.arange(len(sims)), cols[s : s + 32]] = -np.inf  # the member is the seed: dropped
        truth += [set(row.tolist()) for row in np.argpartition(-sims, k - 1, axis=1)[:, :k]]
    sizes = np.array([len(t) for t in truth], dtype=np.float64)
    total = float(sizes.sum())

    def recall(ef: int) -> float:
        idx.set_ef(ef)
        labels, dist = idx.knn_query(q, k=kk, num_threads=1)
        hits = np.array([len(t.intersection(r)) for t, r in zip(truth, labels.tolist())], dtype=np.float64)
        if self_first and queries is None:  # as serving asks a lost member seed again
            for i in np.flatnonzero(seeds_lost(cols, labels, dist)):
                hits[i] = _lost_hits(idx, q[i : i + 1], int(cols[i]), truth[i], ef, n)
        mean = float(hits.sum()) / total
        if not z or len(hits) < 2:
            return mean
        # the members' recalls weighted by their list's size (all k but in a tiny set): the
        # standard error of the ratio estimate
        per = hits / np.maximum(sizes, 1.0)
        w = sizes / sizes.mean()
        se = float(np.sqrt(np.sum((w * (per - mean)) ** 2) / (len(per) * (len(per) - 1))))
        return mean - z * se

    return recall


def lost_fetch(fetch: int, ef: int, n: int) -> int | None:
    """The next fetch of an ``n``-member set's graph (beam ``ef``) after a beam search of
    ``fetch`` labels that missed the seed's own vector (:func:`~recsys.search.beams.seed_lost`):
    4x the wider of the last fetch and the beam, at most the whole set; None once 16x the beam or
    the whole set was asked (the exact-backed plans answer then). Serving's retry
    (:func:`~recsys.search.static.lost_answer`) and the calibration's (:func:`sample_recall`)."""
    if fetch >= n or fetch >= 16 * ef:
        return None
    return min(n, 4 * max(fetch, ef))


#: the length of the exact list kept for a member whose search on its set's graph is lost
#: (:func:`lost_lists`): a list of L nearest members holds k = 10 of a predicate keeping a share
#: s of the set with 99% probability, were the predicate independent of the vectors, from
#: s = 4% on (:func:`fetch_for`: 540 for 11 at 4%); a narrower predicate over the set (a price
#: band of under about 4k rows of a 100k-row block) asks for a longer fetch and goes the way it
#: went before (the graph asked again wider, then the exact plans), as a list short of k does
LOST_LIST = 512
#: members per batched search of the scan for lost members (:func:`lost_lists`)
_LOST_SCAN_ROWS = 8192
#: the beam of that scan's first pass: the members it loses are the candidates, searched again at
#: the graph's ef. On the bench's 100k catalogue generator (ten level-1 blocks of about 10k rows,
#: M 16, ef_construction 200, calibrated ef 64; thread CPU, load 6 to 7): a pass at the graph's ef
#: cost 25% of the build and calibration (3.1 of 12.4 s); at beam 16, 1.2 s (9%), its 230
#: candidates holding all 6 members lost at 64 (beam 32: 65 candidates, 1.9 s; 11: 438, 0.9 s)
_LOST_SCAN_EF = 16


def lost_lists(
    idx: Any, dense: np.ndarray, rows: np.ndarray, k: int = 10, threads: int = 1
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The exact lists of the members of a set (``dense``, labels = columns; ``rows``: their
    vector rows) whose own search on the graph ``idx`` at its ef (k + 1 labels, as a seed's) is
    lost (:func:`~recsys.search.beams.seeds_lost`): member row -> (the rows of its
    ``LOST_LIST`` + 1 nearest members, itself included, best first, as int32; their cosine
    distances, float32). One batched search of every member at a narrow beam
    (``_LOST_SCAN_EF``), its lost members searched again at the graph's ef, then one product of
    the members still lost over the set.

    Such a member was answered by its graph asked again wider (4x, then 16x its ef: about 10x a
    raw query at 1M items, issue 18 s38-p) or by an exact search over its set when still lost;
    with its list it costs one look-up, its answer exact (the list is the set's exact order). A
    member lost at the graph's ef but not at the narrow beam keeps the way it went before."""
    n = dense.shape[0]
    kk = min(k + 1, n)
    if n <= kk:
        return {}
    ef = idx.ef
    found = []
    try:
        idx.set_ef(min(ef, _LOST_SCAN_EF))
        for a in range(0, n, _LOST_SCAN_ROWS):
            b = min(n, a + _LOST_SCAN_ROWS)
            labels, dist = idx.knn_query(dense[a:b], k=kk, num_threads=threads)
            found.append(np.flatnonzero(seeds_lost(np.arange(a, b), labels, dist)) + a)
    finally:
        idx.set_ef(ef)
    cols = np.concatenate(found)
    if len(cols):  # the candidates at the graph's own beam
        labels, dist = idx.knn_query(dense[cols], k=kk, num_threads=threads)
        cols = cols[seeds_lost(cols, labels, dist)]
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    top = min(n, LOST_LIST + 1)
    for s in range(0, len(cols), 32):  # 32 x n scores at a time
        c = cols[s : s + 32]
        near, sims = topk_rows(dense[c] @ dense.T, top)
        for i, col in enumerate(c.tolist()):
            out[int(rows[col])] = (rows[near[i]].astype(np.int32), (1.0 - sims[i]).astype(np.float32))
    return out


def _lost_hits(idx: Any, q1: np.ndarray, col: int, truth: set[int], ef: int, n: int) -> float:
    """How many of ``truth`` (a member's exact top k) a lost beam search for the member ``col``
    finds when asked again as serving asks it (:func:`lost_fetch`'s wider fetches, then the
    exact plan: all of them). Counted as a miss at every ef, one lost member of a 400-member
    sample cost a 500k-member block's graph its publication at 1M items (its calibration asked
    for an ef over the bar where its twin from the same distribution passed at the main ef;
    issue 18, s38), though no seed is ever answered from a lost search."""
    k = len(truth)
    f = lost_fetch(k + 1, ef, n)
    while f is not None:
        try:
            labels, dist = idx.knn_query(q1, k=f, num_threads=1)
        except RuntimeError:  # hnswlib#444: the exact plan answers
            return float(k)
        if not seeds_lost(np.array([col]), labels, dist)[0]:
            return float(len(truth.intersection([x for x in labels[0].tolist() if x != col][:k])))
        f = lost_fetch(f, ef, n)
    return float(k)


def calibrated_ef(
    idx: Any,
    dense: np.ndarray,
    ef: int,
    k: int = 10,
    seed: int = 0,
    queries: Callable[[np.ndarray], np.ndarray] | None = None,
    strict: bool = False,
    self_first: bool = False,
) -> int | None:
    """The smallest ``ef`` from the main index's ``ef`` up to ``SUB_EF_GROWTH`` times it (to
    within ``SUB_EF_STEP``) at which the graph ``idx`` over ``dense`` (labels = columns) finds
    ``SUB_RECALL`` of the exact top ``k`` of a seeded sample of its own members, as a lower
    confidence bound (:func:`sample_recall`, ``SUB_RECALL_Z``); the largest when none does, or
    None with ``strict`` (a graph that has an exact alternative is then not used at all).
    ``self_first``: a lost member counts as serving answers it (:func:`sample_recall`).

    A graph built behind the user's back (a static filter's set, a category block) must not
    answer worse than the main index the user tuned: with the main index's ``ef`` such a graph
    can lose recall where its items are a tight cluster plus scattered strays (a category whose
    items mostly share a region of the space: 0.974 at 1M items, 100k per block, against 0.993
    for the main index). A larger ``ef`` than needed costs every query that graph answers, so
    the ef is doubled until the sample passes, then bisected between the last failing and the
    first passing one. Runs in the background build, once per graph (a few hundred queries per
    probe); the exact side is one matrix product over the block.
    """
    recall = sample_recall(idx, dense, k, seed, queries, self_first=self_first)
    if recall is None or recall(ef) >= SUB_RECALL:
        return ef
    top = ef * SUB_EF_GROWTH
    lo, hi = ef, min(2 * ef, top)  # lo fails; hi is probed next
    while recall(hi) < SUB_RECALL:
        if hi >= top:
            return None if strict else top
        lo, hi = hi, min(2 * hi, top)
    while hi - lo > max(1, int(lo * SUB_EF_STEP)):
        mid = (lo + hi) // 2
        if recall(mid) >= SUB_RECALL:
            hi = mid
        else:
            lo = mid
    return hi


#: dense blocks are padded to a multiple of this many rows (the padding scores -inf; the
#: block's shape changes in steps, not with every item)
PAD = 128


def padded_take(unit: np.ndarray, idx: np.ndarray, pause: Callable[[], None] | None = None) -> np.ndarray:
    """``unit[idx]`` (with np.take: 2-3x faster than fancy indexing), padded with zero rows to
    a multiple of ``PAD`` rows; ``pause``: called between steps of :data:`STEP_ROWS` rows
    (:meth:`Background.pause`: ``take`` holds the GIL)."""
    m = len(idx)
    out = np.zeros((-(-max(m, 1) // PAD) * PAD, unit.shape[1]), dtype=unit.dtype)
    step = m if pause is None else STEP_ROWS
    for a in range(0, m, max(step, 1)):
        if a and pause is not None:
            pause()
        b = min(a + step, m)
        np.take(unit, idx[a:b], axis=0, out=out[a:b])
    return out


def stepped_flatnonzero(mask: np.ndarray, pause: Callable[[], None] | None = None) -> np.ndarray:
    """``np.flatnonzero(mask)``, by steps of 16 x :data:`STEP_ROWS` items with ``pause`` between."""
    step = 16 * STEP_ROWS
    if pause is None or len(mask) <= step:
        return np.flatnonzero(mask)
    parts = []
    for a in range(0, len(mask), step):
        if a:
            pause()
        parts.append(np.flatnonzero(mask[a : a + step]) + a)
    return np.concatenate(parts)


def fetch_for(need: int, share: float, n: int, z: float = 2.33) -> int:
    """Candidates to fetch so that ``need`` eligible items are among them with ~99% probability.

    Assumes the filter keeps a random ``share`` of the catalogue, independent of
    the vectors (binomial; ``z`` standard deviations of margin). Filters that
    follow the vectors fill sooner; the planner learns that per filter.
    """
    if share <= 0:
        return n
    if share >= 1:
        return min(n, need)
    s = z * math.sqrt(1.0 - share)
    root = (s + math.sqrt(s * s + 4.0 * need)) / 2.0
    return max(need, min(n, math.ceil(root * root / share)))


def near_full(rows: int, n: int, fetch: int) -> bool:
    """Whether a set of ``rows`` of ``n`` items holds nearly every item: under one label of a fetch
    of ``fetch`` is expected to fail (the default config on a catalogue with a few adult items).
    Such a set gets no graph of its own (:meth:`~recsys.search.static.StaticMixin._big_graph_size`)
    and the shortcut answers it as a plain query (:mod:`recsys.search.fast`: ``_fast_near_full``)."""
    return (n - rows) * fetch < n


# -- exact top-k of many rows -----------------------------------------------------------
def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`recsys.topk.topk_rows` padded to k columns with -1 / -inf; -inf scores (excluded
    columns) are never returned."""
    b = len(scores)
    out_c = np.full((b, k), -1, dtype=np.int64)
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    if b == 0 or k == 0 or scores.shape[1] == 0:
        return out_c, out_s
    cols, vals = _topk_rows(scores, k)
    kk = cols.shape[1]
    out_c[:, :kk], out_s[:, :kk] = cols, vals
    bad = ~np.isfinite(out_s)
    out_c[bad] = -1
    out_s[bad] = -np.inf
    return out_c, out_s


def _blas_threads(n: int) -> list[tuple[Any, int]]:
    changed = []
    for lib in _blas_controllers():
        if lib.num_threads != n:
            changed.append((lib, lib.num_threads))
            lib.set_num_threads(n)
    return changed


def _restore(changed: list[tuple[Any, int]]) -> None:
    for lib, n in changed:
        lib.set_num_threads(n)


def resolve_threads(num_threads: int) -> int:
    return num_threads if num_threads and num_threads > 0 else (os.cpu_count() or 1)


_pools: dict[tuple[int, int], Any] = {}
_pools_lock = threading.Lock()


def _pool(threads: int) -> Any:
    """A thread pool per process and size (a forked worker must not reuse its parent's: its
    threads do not exist there)."""
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), threads)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="recsys-topk")
    return pool


#: a block of more rows than this is too wide for the score matrix of a few queries to stay in
#: the CPU caches; its exact search takes the queries ``WIDE_CHUNK_SEEDS`` at a time. Measured on
#: a 10% filter's block at 1M items (99,869 x 64, 1,000 seeds, 2 threads, load 9 to 10): 5,986 ms
#: in chunks of 4 queries, 1,468 ms in chunks of 64, 1,437 ms in chunks of 256
WIDE_BLOCK_ROWS = 1 << 15
WIDE_CHUNK_SEEDS = 64
#: bytes of scores per chunk of queries over a narrower block. OpenBLAS packs the block for every
#: product, so a chunk of few queries pays that pass for little work: on a 10% filter's block at
#: 100k items (10,240 x 64, 1,000 seeds, one thread, load 18 to 25) the product and top-k took
#: 57 to 70 ms of CPU in chunks of 25 queries (1 MiB of scores), 35 to 46 ms in chunks of 100
#: (4 MiB) and 34 to 41 ms in chunks of 200 to 500
CHUNK_BYTES = 4 << 20


def exact_block_many(
    q: np.ndarray,
    block: np.ndarray,
    m: int,
    k: int,
    seed_cols: np.ndarray,
    threads: int,
    chunk_bytes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k columns among the first ``m`` rows of ``block`` for each query (``seed_cols[i]``
    >= 0 excluded).

    Queries go in chunks of about ``chunk_bytes`` of scores (:data:`CHUNK_BYTES`), on
    ``threads`` threads (NumPy and BLAS release the GIL; BLAS itself runs one thread per
    chunk). A block wider than ``WIDE_BLOCK_ROWS`` rows (a 10% filter at 1M items) is read
    whole by every chunk, so there the chunks hold at least ``WIDE_CHUNK_SEEDS`` queries: the
    product then reads the block once per many queries instead of once per four. The chunks
    are then evened out so that every thread gets the same number of equal chunks (the last
    may be shorter). ``block`` may carry zero padding rows past ``m``.
    """
    b = len(q)
    out_c = np.full((b, k), -1, dtype=np.int64)
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    if b == 0 or m == 0:
        return out_c, out_s
    width = len(block)
    step = max(4, (chunk_bytes or CHUNK_BYTES) // max(1, 4 * width))
    if width > WIDE_BLOCK_ROWS:
        step = max(step, WIDE_CHUNK_SEEDS)
    lanes = max(1, threads) if b > step else 1  # one chunk's worth: no threads
    per_lane = -(-b // (lanes * step))  # chunks per thread
    step = max(1, -(-b // (lanes * per_lane)))
    bt = block.T

    def one(a: int) -> None:
        z = min(b, a + step)
        sc = q[a:z] @ bt
        if width > m:
            sc[:, m:] = -np.inf
        sel = seed_cols[a:z] >= 0
        if sel.any():
            sc[np.flatnonzero(sel), seed_cols[a:z][sel]] = -np.inf
        out_c[a:z], out_s[a:z] = topk_rows(sc, k)

    starts = list(range(0, b, step))
    changed = _blas_threads(1)
    try:
        if threads > 1 and len(starts) > 1:
            list(_pool(threads).map(one, starts))
        else:
            for a in starts:
                one(a)
    finally:
        _restore(changed)
    return out_c, out_s


#: score cells (seeds x catalogue rows) per step of :func:`exact_scan_many` (8 MiB of float32), and
#: the most catalogue rows per step (so that a few seeds' scan still splits over the threads)
SCAN_CELLS = 1 << 21
SCAN_ROWS = STEP_ROWS
#: seeds per pass of :func:`exact_scan_many` over the catalogue (the per-step candidates they keep
#: stay under about 10 MB at 1M items)
SCAN_SEEDS = 256


def exact_scan_many(
    searcher: FilteredSearcher,
    q: np.ndarray,
    seed_pos: np.ndarray | None,
    ok_by_row: np.ndarray | None,
    k: int,
    threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over the whole catalogue for several queries at once, for the seeds of a batch
    whose eligible set has no dense block (``ok_by_row``: eligibility by vector row, None: every
    item; ``seed_pos[i]`` >= 0: a position left out of query i's list). Returns (vector rows,
    scores), -1 / -inf padded, as single queries score and order them (:func:`canon_rows`).

    One pass over the catalogue (by position, in steps of at most :data:`SCAN_ROWS` rows) serves
    :data:`SCAN_SEEDS` queries: each step is one matrix-matrix product on one of ``threads``
    threads (BLAS at one thread, the GIL released), its top k kept; the steps' tops are merged with
    ties to the lower position, the single exact search's order. Asked one by one (an exact single
    query per seed: a matrix-vector product and a top-k over the whole catalogue each), the three
    lost seeds of a 1,000-seed unfiltered batch at 1M items read the 256 MB of vectors three times
    on one thread: 41 ms of CPU against raw hnswlib's whole batch at 96 ms (issue 18, s45-b)."""
    unit, perm = searcher.unit, searcher.view.perm
    n, b = len(unit), len(q)
    out_r = np.full((b, k), -1, dtype=np.int64)
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    if b == 0 or n == 0 or k == 0:
        return out_r, out_s
    for a0 in range(0, b, SCAN_SEEDS):
        qa = q[a0 : a0 + SCAN_SEEDS]
        sa = seed_pos[a0 : a0 + SCAN_SEEDS] if seed_pos is not None else None
        step = max(PAD, min(SCAN_ROWS, SCAN_CELLS // len(qa), -(-n // max(1, threads))))
        starts = list(range(0, n, step))

        def one(s: int, qa=qa, sa=sa, step=step) -> tuple[np.ndarray, np.ndarray]:
            e = min(n, s + step)
            # the rows' block on the left, C-ordered as stored: half the CPU of ``qa @ unit[s:e].T``
            # (3 queries over 1M x 64, one thread: 19 against 50 ms, s45-b)
            sc = np.ascontiguousarray((unit[s:e] @ qa.T).T)
            if ok_by_row is not None:
                sc[:, ~ok_by_row[perm[s:e]]] = -np.inf
            if sa is not None:
                inside = np.flatnonzero((sa >= s) & (sa < e))
                if len(inside):
                    sc[inside, sa[inside] - s] = -np.inf
            c, v = topk_rows(sc, k)
            return np.where(c >= 0, c + s, -1), v

        changed = _blas_threads(1)
        try:
            if threads > 1 and len(starts) > 1:
                parts = list(_pool(threads).map(one, starts))
            else:
                parts = [one(s) for s in starts]
        finally:
            _restore(changed)
        cand = np.concatenate([p[0] for p in parts], axis=1)
        vals = np.concatenate([p[1] for p in parts], axis=1)
        # the k best of the steps' tops, ties to the lower position (-1 padding sorts last: -inf)
        order = np.lexsort((np.where(cand >= 0, cand, n), -vals), axis=1)[:, :k]
        top = np.take_along_axis(cand, order, axis=1)
        rows = np.where(top >= 0, perm[np.maximum(top, 0)], -1)
        out_r[a0 : a0 + len(qa)], out_s[a0 : a0 + len(qa)] = canon_rows(searcher, rows, qa)
    return out_r, out_s


def canon_rows(searcher: FilteredSearcher, rows: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact answers (vector rows, -1 padded) rescored as single queries score them
    (:meth:`~recsys.search.FilteredSearcher._canon`) and re-sorted (ties: lower position)."""
    valid = rows >= 0
    pos = searcher.view.pos_of_row[np.maximum(rows, 0)]
    vecs = np.take(searcher.unit, pos, axis=0)  # (b, k, d)
    sc = (vecs * q[:, None, :]).sum(axis=2, dtype=np.float32)
    sc[~valid] = -np.inf
    key = np.where(valid, pos, np.iinfo(np.int64).max)
    order = np.lexsort((key, -sc), axis=1)
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(sc, order, axis=1)


class BatchAnswer:
    """Answers of a batch: ``rows``/``sims`` (b, k) padded with -1 / -inf, per seed ``plans``,
    ``n_elig``, ``removed`` (shared dicts: copy before changing) and ``skipped`` rules."""

    __slots__ = ("rows", "sims", "plans", "n_elig", "removed", "skipped")

    def __init__(self, b: int, k: int) -> None:
        self.rows = np.full((b, k), -1, dtype=np.int64)
        self.sims = np.full((b, k), -np.inf, dtype=np.float32)
        self.plans: list[str] = ["exact_subset"] * b
        self.n_elig = np.zeros(b, dtype=np.int64)
        self.removed: list[dict[str, int]] = [{}] * b
        self.skipped: list[list[str]] = [[]] * b


def _first_k(
    ok: np.ndarray, labels: np.ndarray, dist: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the first k labels where ``ok`` (hnswlib order: best first), their similarities and count."""
    b = ok.shape[0]
    rank = np.cumsum(ok, axis=1, dtype=np.int32) - 1
    sel = ok & (rank < k)
    r, c = np.nonzero(sel)
    out_r = np.full((b, k), -1, dtype=np.int64)
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    out_r[r, rank[r, c]] = labels[r, c]
    out_s[r, rank[r, c]] = 1.0 - dist[r, c]
    return out_r, out_s, np.minimum(rank[:, -1] + 1, k) if ok.shape[1] else np.zeros(b, dtype=np.int32)


def _first_k_but(
    labels: np.ndarray, dist: np.ndarray, seed_rows: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_first_k` where every label is eligible but the seed's own row (``seed_rows[i]`` in
    row i; None: none left out): each row of hnswlib's labels holds a label at most once, so
    each row drops exactly one column (the seed's, else its last) and the rest is one boolean
    gather, instead of the ranks and scatters of the general case (the unfiltered batch and a
    filter's own graph; 1,000 x 11 labels: 0.07 ms against 1.4 ms at load 40)."""
    b, f = labels.shape
    if seed_rows is None and f >= k:
        return labels[:, :k].copy(), (1.0 - dist[:, :k]).astype(np.float32), np.full(b, k)
    if seed_rows is None or f <= k:
        ok = np.ones(labels.shape, dtype=bool) if seed_rows is None else labels != seed_rows[:, None]
        return _first_k(ok, labels, dist, k)
    drop = labels == seed_rows[:, None]
    drop[:, -1] |= ~drop.any(axis=1)
    keep = ~drop
    rows = labels[keep].reshape(b, f - 1)[:, :k]
    sims = (1.0 - dist[keep]).astype(np.float32).reshape(b, f - 1)[:, :k]
    return rows, sims, np.full(b, k)


def _knn_batch(
    searcher: FilteredSearcher, q: np.ndarray, fetch: int, threads: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """hnswlib's batched, multi-threaded ``knn_query``; None when it cannot reach ``fetch`` items."""
    try:
        labels, dist = searcher.index._index.knn_query(q, k=fetch, num_threads=threads)
    except RuntimeError:  # hnswlib#444: fewer than fetch reachable for some query
        return None
    return labels.astype(np.int64, copy=False), dist


def search_many_static(
    searcher: FilteredSearcher, cf: CompiledFilter, positions: np.ndarray, k: int, threads: int
) -> BatchAnswer | None:
    """The batch path of a lean static filter: rows, scores, plan, n_eligible and removed per seed.

    Seeds are grouped by the adult rule (the only seed-dependent part); per
    group, either one exact BLAS product over the dense eligible block (small
    eligible sets) or one multi-threaded over-fetch from the graph sized to
    the filter's share of the catalogue, whose seeds that come up short are
    answered exactly over the block (or, without one, one by one).
    Returns None when the filter is not static and lean.
    """
    if not (cf.static and cf.lean):
        return None
    v, n = searcher.view, searcher.n
    cfg = cf.config
    ans = BatchAnswer(len(positions), k)
    # a static filter's seed rules depend on the seed only through its adultness (the rule table's
    # counts, resolved once per kind of seed): one group per adultness
    adult = v.adult[positions]
    for is_adult in (False, True):
        idx = np.flatnonzero(adult == is_adult)
        if len(idx) == 0:
            continue
        removed, no_adult, skipped = searcher._static_counts(
            Query(None, int(positions[idx[0]]), cf, k, 0.0, None, {}, [])
        )
        ss = searcher._static_set(cf, no_adult, wait=True)
        searcher._maybe_sub(cf, ss, no_adult, uses=len(idx))  # a batch is that many uses
        pos = positions[idx]
        seed_rows = v.perm[pos]
        member = ss.ok_by_row[seed_rows]  # in the set's own graph (the beam's test there)
        seed_in = member if cfg.exclude_seed else np.zeros(len(idx), dtype=bool)  # dropped from its list
        n_elig = ss.n - seed_in
        q = searcher.qunit[pos]
        need = k + 1 if cfg.exclude_seed else k
        fetch = fetch_for(need, ss.n / max(n, 1), n)
        exact_first = searcher._static_prefers_exact(cf, ss, fetch)
        rows = np.full((len(idx), k), -1, dtype=np.int64)
        sims = np.full((len(idx), k), -np.inf, dtype=np.float32)
        plans = np.full(len(idx), "exact_subset", dtype=object)
        todo = np.ones(len(idx), dtype=bool)
        sub = ss.sub
        if sub is not None and ss.n > need:  # the filter's own graph: k + 1 from it
            try:
                cols, dist = sub.knn_query(q, k=need, num_threads=threads)
            except RuntimeError:
                cols = None
            if cols is not None:
                labels = ss.rows[cols.astype(np.int64)]
                rows, sims, _ = _first_k_but(labels, dist, seed_rows if cfg.exclude_seed else None, k)
                plans[:] = "hnsw_subindex"
                # a member whose beam search missed its own vector (beams.py: seed_lost; its labels
                # hold neither it nor its neighbours): answered exactly below, as a single query's
                # retries end and as the graph's calibration counts it (sample_recall)
                todo[:] = member & seeds_lost(seed_rows, labels, dist, searcher._self_first)
                plans[todo] = "exact_subset"
                exact_first = True
        if not exact_first and ss.n:
            got = _knn_batch(searcher, q, min(max(fetch, cf.stats.beam), n), threads)  # beams.py
            if got is not None:
                labels, dist = got
                if cf.trivial:
                    r_, s_, cnt = _first_k_but(labels, dist, seed_rows if cfg.exclude_seed else None, k)
                    # a beam search that missed the seed's own vector (beams.py: seed_lost), the
                    # seed listed or not: answered exactly below, as a single query's retries end
                    cnt[seeds_lost(seed_rows, labels, dist, searcher._self_first)] = 0
                else:
                    ok = ss.ok_by_row[labels]
                    if cfg.exclude_seed:
                        ok &= labels != seed_rows[:, None]
                    r_, s_, cnt = _first_k(ok, labels, dist, k)
                    # a seed whose beam search missed its own vector, as above (and as a single
                    # query's over-fetch judges it), eligible or not, listed or not (its row is in
                    # the main graph): its labels filled the list with items that are not its
                    # neighbours (the default config on a catalogue with a few adult items, which
                    # gets no graph of its own: recall 0.27 on a coarse graph)
                    cnt[seeds_lost(seed_rows, labels, dist, searcher._self_first)] = 0
                done = (cnt >= np.minimum(k, n_elig)) | (fetch >= n)
                rows[done], sims[done] = r_[done], s_[done]
                plans[done] = "hnsw_overfetch"
                plans[~done] = "hnsw_overfetch+exact_fallback"
                todo = ~done
                for filled in done[: min(len(done), 64)]:  # learn the fill rate as single queries do
                    cf.stats.record(bool(filled))
        if ss.n == 0:  # nothing eligible: every list is empty (main raised IndexError here)
            todo[:] = False
        if todo.any():
            t_idx = np.flatnonzero(todo)
            if ss.block is not None:
                cols = np.full(len(t_idx), -1, dtype=np.int64)
                if cfg.exclude_seed:
                    j = np.searchsorted(ss.pos, pos[t_idx])
                    j_ok = j < ss.n
                    hit = np.zeros(len(t_idx), dtype=bool)
                    hit[j_ok] = ss.pos[j[j_ok]] == pos[t_idx][j_ok]
                    cols[hit] = j[hit]
                c_, s_ = exact_block_many(q[t_idx], ss.block, ss.n, k, cols, threads)
                rows[t_idx], sims[t_idx] = canon_rows(
                    searcher, np.where(c_ >= 0, ss.rows[np.maximum(c_, 0)], -1), q[t_idx]
                )
            else:  # no dense block (every item, or a set too big for one): one pass for them all
                rows[t_idx], sims[t_idx] = exact_scan_many(
                    searcher,
                    q[t_idx],
                    pos[t_idx] if cfg.exclude_seed else None,
                    None if ss.n == n else ss.ok_by_row,
                    k,
                    threads,
                )
        plans[n_elig == 0] = "empty"
        ans.rows[idx], ans.sims[idx], ans.n_elig[idx] = rows, sims, n_elig
        for j, t in enumerate(idx.tolist()):
            ans.plans[t] = plans[j]
            ans.removed[t] = removed
            ans.skipped[t] = skipped
    return ans


def search_many_keyed(
    searcher: FilteredSearcher, cf: CompiledFilter, positions: np.ndarray, k: int, threads: int
) -> BatchAnswer | None:
    """The batch path of a lean filter with seed-dependent rules that a seed table covers.

    One multi-threaded over-fetch for the seeds whose single query would
    over-fetch (each seed's eligible set is one key range of the filter's key
    index: candidates are tested with one gather and two comparisons); seeds
    that come up short, and those whose single query would be exact, are
    grouped by identical key range and answered with one exact BLAS product
    per group (one by one for singleton groups). Returns None when the filter
    is not lean, has no seed table (banned brand pairs, same title) or excludes
    items per seed (do-not-associate pairs).
    """
    if not cf.lean:
        return None
    table = cf.seed_table
    if table is None:
        if cf.table_ok is False:
            return None
        table = searcher._seed_table(cf)  # a batch job: built here, once
        if table is None:
            return None
    if cf.table_drop is not None:  # per-seed exclusions (do-not-associate): seed by seed
        return None
    v, n = searcher.view, searcher.n
    cfg = cf.config
    tab = table[positions].astype(np.int64)
    var, lo, hi, a, b, n_elig, s, e, _seed_in = tab[:, :TABLE_COUNTS].T
    need = k + 1 if cfg.exclude_seed else k
    fetch = min(n, max(4 * need, 64))
    # which seeds an over-fetch is worth trying for: the single query's cost model
    try_hnsw = np.zeros(len(positions), dtype=bool)
    for i in np.flatnonzero(n_elig > 0).tolist():
        try_hnsw[i] = searcher._choose(cf, int(e[i] - s[i]), False, int(n_elig[i]), fetch, k) != "exact"
    rows = np.full((len(positions), k), -1, dtype=np.int64)
    sims = np.full((len(positions), k), -np.inf, dtype=np.float32)
    plans = np.full(len(positions), "exact", dtype=object)
    todo = n_elig > 0
    h_idx = np.flatnonzero(try_hnsw)
    if len(h_idx):
        got = _knn_batch(
            searcher, searcher.qunit[positions[h_idx]], min(max(fetch, cf.stats.beam), n), threads
        )
        if got is not None:
            labels, dist = got
            ok = np.zeros(labels.shape, dtype=bool)
            for vi in np.unique(var[h_idx]).tolist():
                sel = var[h_idx] == vi
                keys = cf.table_kvs[vi].by_row[labels[sel]]
                ok[sel] = (keys >= lo[h_idx][sel, None]) & (keys < hi[h_idx][sel, None])
            seed_rows = v.perm[positions[h_idx]]
            if cfg.exclude_seed:
                ok &= labels != seed_rows[:, None]
            r_, s_, cnt = _first_k(ok, labels, dist, k)
            # a beam search that missed the seed's own vector (beams.py: seed_lost; its row is in the
            # main graph whatever the key range and exclude_seed say): answered exactly below, as a
            # single query's over-fetch judges it (a price band's batch read recall 0.86 without)
            cnt[seeds_lost(seed_rows, labels, dist, searcher._self_first)] = 0
            done = (cnt >= np.minimum(k, n_elig[h_idx])) | (fetch >= n)
            d_idx = h_idx[done]
            rows[d_idx], sims[d_idx] = r_[done], s_[done]
            plans[d_idx] = "hnsw_overfetch"
            plans[h_idx[~done]] = "hnsw_overfetch+exact_fallback"
            todo[d_idx] = False
            for filled in done[: min(len(done), 64)]:
                cf.stats.record(bool(filled))
    # exact: group the seeds left by identical eligible slice of the key order
    t_idx = np.flatnonzero(todo)
    if len(t_idx):
        key = np.stack([var[t_idx], a[t_idx], b[t_idx]], axis=1)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        for g in range(len(uniq)):
            members = t_idx[inv == g]
            vi, ga, gb = (int(x) for x in uniq[g])
            if len(members) < 2 or gb - ga > 4 * (1 << 20) // max(1, 4 * searcher.dim):
                for t in members.tolist():
                    res = searcher._search_one(
                        searcher.qunit[positions[t]], int(positions[t]), cfg, k, "exact"
                    )
                    rows[t, : len(res.rows)] = res.rows
                    sims[t, : len(res.rows)] = res.scores
                    if plans[t] == "exact":
                        plans[t] = res.plan
                continue
            kv = cf.table_kvs[vi]
            cand = kv.order[ga:gb]
            block = padded_take(searcher.unit, cand)
            cols = np.full(len(members), -1, dtype=np.int64)
            if cfg.exclude_seed:
                seed_pos = positions[members]
                where = {int(p): j for j, p in enumerate(cand.tolist())} if len(cand) < 4096 else None
                for j, p in enumerate(seed_pos.tolist()):
                    if where is not None:
                        cols[j] = where.get(p, -1)
                    else:
                        hit = np.flatnonzero(cand == p)
                        cols[j] = int(hit[0]) if len(hit) else -1
            c_, s_ = exact_block_many(searcher.qunit[positions[members]], block, len(cand), k, cols, threads)
            # ties: lower position first, as the single-query path
            valid = c_ >= 0
            cp = np.where(valid, cand[np.maximum(c_, 0)], np.iinfo(np.int64).max)
            order = np.lexsort((cp, -s_), axis=1)
            cp = np.take_along_axis(cp, order, axis=1)
            s_ = np.take_along_axis(s_, order, axis=1)
            valid = np.take_along_axis(valid, order, axis=1)
            rows[members], sims[members] = canon_rows(
                searcher,
                np.where(valid, v.perm[np.minimum(cp, n - 1)], -1),
                searcher.qunit[positions[members]],
            )
            for t in members.tolist():
                if plans[t] == "exact":
                    plans[t] = "exact_subset"
    ans = BatchAnswer(len(positions), k)
    ans.rows, ans.sims, ans.n_elig = rows, sims, n_elig
    counts = tab[:, TABLE_COUNTS:].tolist()
    for i in range(len(positions)):
        removed, skipped = searcher._table_counts(cf, counts[i])
        ans.removed[i] = removed
        ans.skipped[i] = skipped
        ans.plans[i] = plans[i] if n_elig[i] else "empty"
    return ans


def search_many_ranked(
    searcher: FilteredSearcher, cf: CompiledFilter, positions: np.ndarray, k: int, threads: int
) -> list[Any] | None:
    """The batch path of a filter with ranked-list rules (``max_per_brand``, ``min_similarity``).

    The single-query hot path (:meth:`~recsys.search.FilteredSearcher._keyed_plan`) per seed,
    with its first over-fetch taken from one multi-threaded ``knn_query`` for all the seeds
    that plan to over-fetch: the same candidates (hnswlib answers a query the same way alone
    or in a batch), rescored and ranked the same way, so the lists and scores equal the live
    ones. Seeds whose plan is exact search, or whose first over-fetch falls short, are
    answered by :meth:`~recsys.search.FilteredSearcher.search`. Returns SearchResults (None
    where the caller must answer), or None when the filter has no seed table or is not in the
    cosine space.
    """
    if cf.lean or cf.adjust is not None or searcher.space != "cosine" or cf.table_ok is False:
        return None  # boost/bury: exact search, seed by seed
    table = cf.seed_table if cf.seed_table is not None else searcher._seed_table(cf)
    if table is None or cf.table_drop is not None:  # per-seed exclusions: seed by seed
        return None
    v, n = searcher.view, searcher.n
    cfg = cf.config
    need = fetch_need(k, cfg)
    fetch = min(n, max(_FETCH_FACTOR * need, _FETCH_MIN))
    tab = table[positions].astype(np.int64)
    out: list[Any] = [None] * len(positions)
    hnsw = [
        i
        for i in range(len(positions))
        if tab[i, 5] > 0
        and searcher._choose(cf, int(tab[i, 7] - tab[i, 6]), False, int(tab[i, 5]), fetch, need) != "exact"
    ]
    if not hnsw:
        return out
    h = np.asarray(hnsw, dtype=np.int64)
    got = _knn_batch(searcher, searcher.qunit[positions[h]], fetch, threads)
    if got is None:
        return out
    labels, dist = got
    for j, i in enumerate(hnsw):  # the single query's over-fetch, on the batch's first fetch
        t0 = time.perf_counter()
        pos = int(positions[i])
        row = tab[i].tolist()
        var, lo, hi, a, b, n_elig, s, e, seed_in = row[:TABLE_COUNTS]
        removed, skipped = searcher._table_counts(cf, row[TABLE_COUNTS:])
        qq = Query(searcher.qunit[pos], pos, cf, k, t0, v.item_id_list[pos], removed, skipped)
        seed_row = int(v.perm[pos]) if seed_in else -1
        cand = KeyRange(cf.table_kvs[var].by_row, lo, hi, seed_row, v.pos_of_row)
        # None: the caller answers it (its next fetch or exact search)
        out[i] = searcher._overfetch(
            qq, cand, fetch, n_elig, e - s, False, refetch=False, first_rows=labels[j], first_dist=dist[j]
        )
    return out


class BatchMixin:
    """:meth:`search_many` of :class:`FilteredSearcher`."""

    def _ids_by_row(self) -> np.ndarray:
        """Item ids by vector row as an object array (built once)."""
        arr = getattr(self, "_ids_obj", None)
        if arr is None:
            arr = np.asarray(self.view.item_id_by_row, dtype=object)
            self._ids_obj = arr
        return arr

    def search_many(
        self,
        seed_item_ids: Iterable[str],
        config: FilterConfig | dict[str, Any] | None = None,
        k: int = 10,
        skip_unknown: bool = False,
        num_threads: int = -1,
    ) -> list[SearchResult | None]:
        """:meth:`search` for several seeds (``None`` for unknown ones with ``skip_unknown``).

        Batched: filters without ranked-list rules (``max_per_brand``, ``min_similarity``) in
        the cosine space are answered with one multi-threaded hnswlib ``knn_query`` over all
        seeds, vectorised eligibility tests and one BLAS product per group of seeds that need
        exact search (:mod:`recsys.search.batch`); the rest seed by seed. The same rules, counts
        and guarantees as :meth:`search`; ``elapsed_ms`` is the batch's time per seed.

        Parameters
        ----------
        num_threads : int
            hnswlib and BLAS threads for the batch (-1: every core).
        """
        t0 = time.perf_counter()
        cfg = FilterConfig.from_dict(config)
        cf = self.compile(cfg)
        items = seed_item_ids if isinstance(seed_item_ids, list) else list(seed_item_ids)
        found = list(map(self.view.pos_of_id.get, items))
        if None in found:  # unknown ids, or ids given as other types than str
            found = [self.view.pos_of_id.get(str(s), -1) for s in items]
        positions = np.array(found, dtype=np.int64)
        unknown = np.flatnonzero(positions < 0)
        if len(unknown) and not skip_unknown:
            raise UnknownItemError(
                f"item '{items[int(unknown[0])]}' has no vector in this run: pick another seed item"
            )
        known = np.flatnonzero(positions >= 0)
        out: list[SearchResult | None] = [None] * len(items)
        got = None
        if len(known) > 1 and k >= 1 and self.n >= 2:
            threads = resolve_threads(num_threads)
            if cf.static and cf.lean:
                got = search_many_static(self, cf, positions[known], k, threads)
            elif cf.lean:
                got = search_many_keyed(self, cf, positions[known], k, threads)
            else:
                ranked = search_many_ranked(self, cf, positions[known], k, threads)
                if ranked is not None:
                    for j, i in enumerate(known.tolist()):
                        res = ranked[j]
                        if res is None:
                            res = self.search(str(items[i]), cfg, k)
                        else:
                            p = int(positions[i])
                            if self._tie_of is not None:
                                res = self._fix_ties(res, self.qunit[p], p, cfg, k, exact_ok=False)
                            res = self._place(res, self.qunit[p], p, cfg, k)
                        out[i] = res
                    return out
        if got is None:
            for i in known.tolist():
                out[i] = self.search(str(items[i]), cfg, k)
            return out
        ms = (time.perf_counter() - t0) * 1e3 / len(known)
        for i, res in zip(known.tolist(), answers(self, got, positions[known], cfg, cf, k, ms)):
            out[i] = res
        return out
