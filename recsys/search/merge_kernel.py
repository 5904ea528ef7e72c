"""The class merge of a boosted/buried category block in one compiled call (numba), built in
the background; NumPy answers until it is ready, and whenever it is not (no numba, a failed
compile, a call whose argument types it was not compiled for).

:class:`~recsys.search.adjusted.BlockMerge`'s query re-scores the fetch of the block's plain
graph, scores its pool and cuts the union to k: about twenty NumPy calls of 1-3 us each on
arrays of a few hundred items, as much as the beam search itself (issue 16). :func:`merge` does
those steps in one pass: the fetch's adjusted scores ``(1 - d) * m + a`` (float32, as NumPy
rounds them: one multiply, then one add), the pool's ``raw * m + a`` (its raw scores still come
from one BLAS product, so that both paths see the same floats), the seed and its banned items
left out, and the k best kept by insertion (score descending, ties by lower position: the order
of :func:`~recsys.search.adjusted._best`). The lists equal the NumPy path's, scores included.

Never compiled on a request nor at import: :func:`prepare` queues the compile on the searcher's
background thread (numba's import alone takes about half a second); with ``cache=True`` a later
process loads the machine code from numba's cache folder (:func:`recsys.projection.numba_cache_dir`).
The dispatcher is compiled for one signature and then closed (no compile on a call of other
types: it raises ``TypeError``, and the caller falls back to NumPy).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: the compiled :func:`_merge`, once ready (read on the request path: one global look-up)
KERNEL: Any = None
#: the compiled :func:`_settle`'s entry point (ready with :data:`KERNEL`): the shortcut's whole
#: answer after the beam search in one call, without numba's dispatch (see :func:`_entry`)
SETTLE: Any = None
#: the compiled :func:`_dot` (ready with :data:`KERNEL`): a pool's raw scores, each row's the same
#: floats whichever rows are scored with it (:func:`pool_scores`)
DOT: Any = None
#: the compiled :func:`_table_rows` (ready with :data:`KERNEL`): a pool table's rows
TABLE: Any = None
state = "idle"  # idle -> queued -> ready | failed
_lock = threading.Lock()

#: the one signature compiled: fetch labels (uint64, hnswlib's), distances, per label multiplier,
#: shift and position; the pool's raw scores, multipliers, shifts, positions; the seed's
#: position (-1: none), its banned positions; out: the k best positions and scores. Returns how
#: many were kept (< k: fewer than k finite candidates)
_SIGNATURE = (
    "int64(uint64[::1], float32[::1], float32[::1], float32[::1], int64[::1], "
    "float32[::1], float32[::1], float32[::1], int64[::1], int64, int64[::1], int64[::1], float32[::1])"
)


def _merge(cols, dist, lm, la, pos, praw, pmul, padd, ppos, seed, banned, kp, ks):  # pragma: no cover
    """The body compiled by numba (see the module docstring); pure Python otherwise."""
    k = kp.shape[0]
    n = 0
    one = np.float32(1.0)
    ninf = np.float32(-np.inf)
    nb = banned.shape[0]
    for t in range(cols.shape[0] + praw.shape[0]):
        if t < cols.shape[0]:
            c = cols[t]
            s = (one - dist[t]) * lm[c]
            s = s + la[c]
            p = pos[c]
        else:
            i = t - cols.shape[0]
            s = praw[i] * pmul[i]
            s = s + padd[i]
            p = ppos[i]
        if s == ninf or p == seed:
            continue
        if n == k and (s < ks[k - 1] or (s == ks[k - 1] and p > kp[k - 1])):
            continue
        out = False
        for b in range(nb):
            if banned[b] == p:
                out = True
                break
        if out:
            continue
        j = n if n < k else k - 1
        while j > 0 and (s > ks[j - 1] or (s == ks[j - 1] and p < kp[j - 1])):
            ks[j] = ks[j - 1]
            kp[j] = kp[j - 1]
            j -= 1
        ks[j] = s
        kp[j] = p
        if n < k:
            n += 1
    return n


#: :func:`_settle`'s signature: the fetch (hnswlib's 2-D labels and distances, row 0), per label
#: multiplier, shift and position; the pool's candidates: raw scores, multipliers, shifts,
#: positions (flat: ``n = len(pmul)`` of them from ``off``), and their bound; the classes outside
#: the pool, ``(m, a)`` per row (float64); the seed's position (-1: none), its banned positions;
#: the view's ``perm`` (position -> vector row); out: the k best vector rows and scores
_SETTLE_SIGNATURE = (  # any layout ("A"): called without the dispatcher (_entry), whose
    # entry point checks dtype and rank only, a view with other strides is still read right
    "int64(uint64[:, :], float32[:, :], float32[:], float32[:], int64[:], "
    "float32[:], float32[:], float32[:], int32[:], int64, float32, float64[:, :], int64, "
    "int64[:], int64[:], int64[:], float32[:])"
)
#: :func:`_dot`'s signature: the pool's vectors transposed (dim x rows), the query, out: the raw scores
_DOT_SIGNATURE = "void(float32[:, ::1], float32[::1], float32[::1])"
#: :func:`_table_rows`'s signature: the chunk's products from BLAS (seeds x pool rows), the pool's
#: multipliers, shifts, positions and vectors (rows x dim), the seeds' vectors, each seed's error
#: allowance; out: the listed adjusted scores, their positions, the bound
_TABLE_SIGNATURE = (
    "void(float32[:, ::1], float32[::1], float32[::1], int32[::1], float32[:, ::1], float32[:, :], "
    "float32[::1], float32[:, ::1], int32[:, ::1], float32[::1])"
)


def _dot(xt, q, out):  # pragma: no cover
    """Each pool row's raw score ``sum_j x[j] * q[j]``, summed in ``j`` order from 0 (one float32
    multiply, then one add: numba contracts neither), across the rows at once (``xt``: dim x rows,
    C order; vectorised over the rows). A row's score does not depend on the other rows scored
    with it, unlike BLAS's ``gemv`` (measured: 671 of 1,200 subsets of 1 to 17 rows differed in the
    last bit from the whole pool's product), so a :class:`~recsys.search.adjusted.PoolTable` can list
    a seed's pool items with the very floats the whole pool's product gives them
    (:func:`_table_rows`). NumPy's ``np.multiply(xt, q[:, None]).cumsum(axis=0)[-1]`` (a running sum over the
    outer axis: the same order) gives the same floats (:func:`pool_scores`; :func:`_check_dot`)."""
    d, m = xt.shape
    for i in range(m):
        out[i] = 0.0
    for j in range(d):
        qj = q[j]
        for i in range(m):
            out[i] += xt[j, i] * qj


def _table_rows(g, pmul, padd, ppos, pvec, qs, err, adj, pos, bound):  # pragma: no cover
    """Rows of a :class:`~recsys.search.adjusted.PoolTable` for a chunk of seeds: per seed ``r``,
    the ``t`` pool items of the highest adjusted score by BLAS's product ``g[r]`` (fast, but each
    within a rounding of the canonical one), their canonical adjusted scores (:func:`_dot`'s floats
    times the multiplier, plus the shift, as :func:`_settle` adjusts them) and positions; ``bound``:
    the ``t + 1``-th adjusted product plus ``err[r]`` (more than both products' rounding), above
    every unlisted item's canonical score (-inf when the pool is listed whole)."""
    c, m = g.shape
    t = adj.shape[1]
    d = pvec.shape[1]
    ninf = np.float32(-np.inf)
    top_s = np.empty(t + 1, dtype=np.float32)
    top_i = np.empty(t + 1, dtype=np.int64)
    for r in range(c):
        n = 0
        for i in range(m):  # the t + 1 best by the product, kept sorted (descending) by insertion
            s = g[r, i] * pmul[i]
            s = s + padd[i]
            if n == t + 1 and not s > top_s[t]:
                continue
            at = n if n < t + 1 else t
            while at > 0 and s > top_s[at - 1]:
                top_s[at] = top_s[at - 1]
                top_i[at] = top_i[at - 1]
                at -= 1
            top_s[at] = s
            top_i[at] = i
            if n < t + 1:
                n += 1
        bound[r] = top_s[t] + err[r] if n == t + 1 else ninf
        for u in range(min(n, t)):
            i = top_i[u]
            x = np.float32(0.0)
            for j in range(d):
                x += pvec[i, j] * qs[r, j]
            x = x * pmul[i]
            adj[r, u] = x + padd[i]
            pos[r, u] = ppos[i]


#: :func:`_settle`'s answers besides k: the pool's candidates do not settle the list (the seed's
#: table row: the whole pool must be scored), or a class outside the pool could climb into it
#: (the block is scanned)
UNSETTLED, CLIMBS = -1, -2
#: :func:`_reaches`'s relative margin (``recsys.search.adjusted._MARGIN``)
MARGIN = 1e-5


def _settle(
    cols, dist, lm, la, pos, praw, pmul, padd, ppos, off, pbound, rest, seed, banned, perm, kp, ks
):  # pragma: no cover
    """The shortcut's class merge in one call (compiled by numba; pure Python otherwise): the
    merge of :func:`_merge` over the fetch and the pool's candidates ``praw[off:off + n] * pmul +
    padd`` at ``ppos[off:off + n]`` (the whole pool: its raw scores, ``off`` 0, ``pbound`` -inf;
    or the seed's pool table row: its adjusted scores times 1 plus 0, its lowest listed score as
    ``pbound``), then the checks its caller made in Python: fewer than k candidates -> their
    count; the k-th score not above ``pbound`` -> :data:`UNSETTLED`; a class of ``rest`` whose
    bound ``m * s_F + a`` reaches the k-th score (``_reaches``, in float64 as Python computes it)
    -> :data:`CLIMBS`; otherwise k, with ``kp`` turned from positions into vector rows (``perm``)."""
    k = kp.shape[0]
    n = 0
    one = np.float32(1.0)
    ninf = np.float32(-np.inf)
    nb = banned.shape[0]
    nf = cols.shape[1]
    for t in range(nf + pmul.shape[0]):
        if t < nf:
            c = cols[0, t]
            s = (one - dist[0, t]) * lm[c]
            s = s + la[c]
            p = pos[c]
        else:
            i = t - nf
            s = praw[off + i] * pmul[i]
            s = s + padd[i]
            p = ppos[off + i]
        if s == ninf or p == seed:
            continue
        if n == k and (s < ks[k - 1] or (s == ks[k - 1] and p > kp[k - 1])):
            continue
        out = False
        for b in range(nb):
            if banned[b] == p:
                out = True
                break
        if out:
            continue
        at = n if n < k else k - 1
        while at > 0 and (s > ks[at - 1] or (s == ks[at - 1] and p < kp[at - 1])):
            ks[at] = ks[at - 1]
            kp[at] = kp[at - 1]
            at -= 1
        ks[at] = s
        kp[at] = p
        if n < k:
            n += 1
    if n < k:
        return n
    if not ks[k - 1] > pbound:
        return -1  # UNSETTLED: a pool item the table does not list might enter
    tau = float(ks[k - 1])
    s_f = 1.0 - float(dist[0, nf - 1])
    for r in range(rest.shape[0]):
        bound = rest[r, 0] * s_f + rest[r, 1]
        if bound >= tau - MARGIN * (1.0 + abs(tau) + abs(bound)):
            return -2  # CLIMBS: the fetch was too shallow for this class
    for i in range(k):
        kp[i] = perm[kp[i]]
    return k


def _entry(fn: Any) -> Any:
    """The compiled entry point of ``fn``'s one signature (numba's ``get_overload``): the call
    without the dispatcher's typing of each argument (about half the call's cost for
    :func:`_settle`'s fifteen). It checks each array's dtype and rank, not its layout, so the
    signature takes any layout. ``fn`` itself where numba has no such method."""
    try:
        return fn.get_overload(fn.signatures[0])
    except Exception:  # noqa: BLE001 (another numba: the dispatcher answers, as slower)
        return fn


def _compile() -> None:
    """Import numba and compile :func:`_merge` for :data:`_SIGNATURE` (or load it from the cache)."""
    global KERNEL, SETTLE, DOT, TABLE, state
    try:
        if "numba" not in __import__("sys").modules:  # numba reads its cache folder when imported
            from recsys.projection import numba_cache_dir

            os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
        import numba

        fn = numba.njit(_SIGNATURE, cache=True, nogil=True)(_merge)
        _check(fn)
        settle = _entry(numba.njit(_SETTLE_SIGNATURE, cache=True, nogil=True)(_settle))
        _check_settle(settle)
        dot = numba.njit(_DOT_SIGNATURE, cache=True, nogil=True)(_dot)
        table = numba.njit(_TABLE_SIGNATURE, cache=True, nogil=True)(_table_rows)
        _check_dot(dot, table)
        KERNEL, SETTLE, DOT, TABLE = fn, settle, _entry(dot), _entry(table)
        state = "ready"
    except Exception as exc:  # numba missing or broken: the NumPy path answers
        logger.warning("compiled class merge unavailable, NumPy answers (%s)", exc)
        state = "failed"


def _check(fn: Any) -> None:
    """One small merge through ``fn`` against the pure-Python body (a broken build is not used)."""
    rng = np.random.default_rng(0)
    cols = rng.permutation(20).astype(np.uint64)
    dist = np.sort(rng.random(20).astype(np.float32))
    lm = rng.choice(np.array([1.0, 1.3, 0.7], dtype=np.float32), 20)
    la = np.where(rng.random(20) < 0.2, np.float32(-np.inf), np.float32(0.05)).astype(np.float32)
    pos = rng.permutation(100)[:20].astype(np.int64)
    praw = rng.random(5).astype(np.float32)
    pmul = np.full(5, 1.3, dtype=np.float32)
    padd = np.zeros(5, dtype=np.float32)
    ppos = np.arange(100, 105, dtype=np.int64)
    banned = pos[3:5].copy()
    got = [(np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.float32)) for _ in range(2)]
    ns = [
        f(cols, dist, lm, la, pos, praw, pmul, padd, ppos, int(pos[0]), banned, *o)
        for f, o in zip((fn, _merge), got)
    ]
    if ns[0] != ns[1] or not all(np.array_equal(a, b) for a, b in zip(got[0], got[1])):
        raise RuntimeError("the compiled class merge disagrees with its Python body")


def _check_settle(fn: Any) -> None:
    """Small settles through ``fn`` against the pure-Python body, every answer kind."""
    rng = np.random.default_rng(1)
    for trial in range(8):
        cols = rng.permutation(20).astype(np.uint64).reshape(1, 20)
        dist = np.sort(rng.random(20).astype(np.float32)).reshape(1, 20)
        lm = rng.choice(np.array([1.0, 0.7], dtype=np.float32), 20)
        la = np.where(rng.random(20) < 0.2, np.float32(-np.inf), np.float32(0.0)).astype(np.float32)
        pos = rng.permutation(100)[:20].astype(np.int64)
        praw = (rng.random(12) * 2).astype(np.float32)
        pmul = np.full(4, 1.0 + (trial % 2) * 0.3, dtype=np.float32)
        padd = np.zeros(4, dtype=np.float32)
        ppos = np.arange(100, 112, dtype=np.int32)
        rest = np.array([[0.7, 0.0], [1.0, 0.6 * (trial % 2)]])
        perm = rng.permutation(120).astype(np.int64)
        banned = pos[3:5].copy()
        got = [(np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.float32)) for _ in range(2)]
        bound = (-np.inf, 0.3, 1.9)[trial % 3]
        args = (
            cols,
            dist,
            lm,
            la,
            pos,
            praw,
            pmul,
            padd,
            ppos,
            4 * (trial % 3),
            bound,
            rest,
            int(pos[0]),
            banned,
            perm,
        )
        ns = [f(*args, *o) for f, o in zip((fn, _settle), got)]
        if ns[0] != ns[1] or not all(np.array_equal(a, b) for a, b in zip(got[0], got[1])):
            raise RuntimeError("the compiled settle disagrees with its Python body")


def _numpy_dot(xt: np.ndarray, q: np.ndarray) -> np.ndarray:
    """:func:`_dot`'s floats in NumPy: the products, then their running sum over the outer axis
    (``cumsum`` adds in order; ``sum`` would add one column pairwise: a one-row pool's differed)."""
    return np.multiply(xt, q[:, None]).cumsum(axis=0)[-1]


def pool_scores(xt: np.ndarray, q: np.ndarray) -> np.ndarray:
    """A pool's raw scores (``xt``: its vectors transposed, C-contiguous; ``q``: float32) with
    :func:`_dot`'s floats: compiled once ready, NumPy before (and wherever numba is not)."""
    q = np.ascontiguousarray(q, dtype=np.float32)  # the entry point reads C-order float32 as such
    dot = DOT
    if dot is not None:
        out = np.empty(xt.shape[1], dtype=np.float32)
        dot(xt, q, out)
        return out
    return _numpy_dot(xt, q)


def _check_dot(dot: Any, table: Any) -> None:
    """:func:`_dot` compiled against NumPy's sums (:func:`_numpy_dot`) and against one row's own sum
    (:func:`_table_rows`'s listed scores), to the bit: a build where a row's score depends on how it
    is computed would give a table's lists other scores than the whole pool's (not used then)."""
    rng = np.random.default_rng(2)
    for m in (1, 7, 64, 333):
        x = rng.standard_normal((m, 64)).astype(np.float32)
        q = rng.standard_normal(64).astype(np.float32)
        xt = np.ascontiguousarray(x.T)
        out = np.empty(m, dtype=np.float32)
        dot(xt, q, out)
        if not np.array_equal(out, _numpy_dot(xt, q)):
            raise RuntimeError("the compiled pool product disagrees with NumPy's sums")
        pmul = rng.choice(np.array([1.0, 1.3, 0.7], dtype=np.float32), m)
        padd = rng.choice(np.array([0.0, 0.05], dtype=np.float32), m)
        qs = q[None, :].copy()
        t = min(16, m)
        adj, pos = np.empty((1, t), dtype=np.float32), np.empty((1, t), dtype=np.int32)
        bound = np.empty(1, dtype=np.float32)
        g = out[None, :].copy()  # the products themselves: the listed are the top by them
        table(
            g, pmul, padd, np.arange(m, dtype=np.int32), x, qs, np.zeros(1, dtype=np.float32), adj, pos, bound
        )
        want = out * pmul
        want += padd
        if not np.array_equal(adj[0], want[pos[0]]):
            raise RuntimeError("the compiled pool table's scores disagree with the pool's product")


def prepare(bg: Any) -> None:
    """Queue the compile on the background thread ``bg`` (once per process)."""
    global state
    with _lock:
        if state != "idle":
            return
        state = "queued"
    bg.submit(("class merge", "compile"), _compile)


def compile_now() -> Any:
    """Compile (or load from the cache) in this thread, unless done: tests and scripts, never a
    request. Returns :data:`KERNEL` (None when numba is unavailable)."""
    global state
    with _lock:
        if KERNEL is None:
            state = "queued"
            _compile()
    return KERNEL
