"""BLAS helpers of the search executor: a single-threaded matrix-vector product."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_BLAS_THREAD_MIN = 9216  # OpenBLAS runs gemv single-threaded below this many elements anyway
_blas_libs: list[Any] | None = None
_blas_lock = threading.Lock()


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
    ``threadpoolctl.limit`` (~12 us). Concurrent callers can at worst see
    BLAS threads for one product (a speed effect only).
    """
    if mat.size < _BLAS_THREAD_MIN:
        return mat @ q
    changed = []
    for lib in _blas_controllers():
        n = lib.num_threads
        if n > 1:
            lib.set_num_threads(1)
            changed.append((lib, n))
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
