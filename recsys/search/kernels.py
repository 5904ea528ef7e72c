"""BLAS helpers of the search executor: a single-threaded matrix-vector product."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_BLAS_THREAD_MIN = 9216  # OpenBLAS runs gemv single-threaded below this many elements anyway
_blas_libs: list[Any] | None = None
_blas_lock = threading.Lock()
#: reading the libraries' thread counts costs a few us per product (threadpoolctl looks the
#: symbol up on each read: 6 to 10 us right after a beam search, more than a 460-row product):
#: once every library was read at one thread, products skip the read until this time
#: (``time.monotonic``), :data:`_BLAS_RECHECK_S` later
_blas_single_until = 0.0
_BLAS_RECHECK_S = 0.1


def _blas_controllers() -> list[Any]:
    """threadpoolctl's controllers of the loaded BLAS libraries (empty without threadpoolctl)."""
    global _blas_libs
    if _blas_libs is None:
        with _blas_lock:
            if _blas_libs is None:
                try:
                    from threadpoolctl import ThreadpoolController

                    _blas_libs = list(ThreadpoolController().select(user_api="blas").lib_controllers)
                except Exception as exc:  # optional: without it BLAS keeps its threads
                    logger.debug("threadpoolctl unavailable (%s); BLAS keeps its threads", exc)
                    _blas_libs = []
    return _blas_libs


def _matvec(mat: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``mat @ q`` with single-threaded BLAS.

    A per-query matrix-vector product is far too small to gain from BLAS
    threads, and on a busy machine waking them costs milliseconds (measured:
    p50 25 ms instead of 0.6 ms for 20k x 64 on 2 shared cores). The thread
    count is set and restored through the libraries' own calls (~2 us), not
    ``threadpoolctl.limit`` (~12 us). Once every library was read at one
    thread, the counts are not read again for :data:`_BLAS_RECHECK_S`: a
    thread count raised meanwhile (a batch's, another caller's) shows by then.
    Concurrent callers can at worst see BLAS threads for one product, or for
    that long (a speed effect only).
    """
    global _blas_single_until
    if mat.size < _BLAS_THREAD_MIN:
        return mat @ q
    now = time.monotonic()
    if now < _blas_single_until:
        return mat @ q
    changed = []
    for lib in _blas_controllers():
        n = lib.num_threads
        if n > 1:
            lib.set_num_threads(1)
            changed.append((lib, n))
    if not changed:
        _blas_single_until = now + _BLAS_RECHECK_S
    try:
        return mat @ q
    finally:
        for lib, n in changed:
            lib.set_num_threads(n)


def _and(acc: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """``acc & x`` in place (``x`` when there is no accumulator yet)."""
    if acc is None:
        return x
    acc &= x
    return acc
