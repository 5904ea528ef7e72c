"""The single-threaded BLAS product of the search executor (recsys/search/kernels.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recsys.search import kernels


class _Probe(np.ndarray):
    """A matrix that records the BLAS libraries' thread counts when it is multiplied."""

    seen: list[list[int]] = []

    def __matmul__(self, other):
        _Probe.seen.append([lib.num_threads for lib in kernels._blas_controllers()])
        return np.asarray(self) @ other


def test_a_product_runs_at_one_blas_thread_after_the_counts_were_raised_and_restores_them(monkeypatch):
    """``_matvec`` skips reading the thread counts for ``_BLAS_RECHECK_S`` after it read every
    library at one thread; a count raised since (a batch's) is set back to one for the products
    after that interval, then restored, and the product is ``mat @ q``. Fails when the interval
    never ends (the raised count would run the product) or the counts are not restored."""
    libs = kernels._blas_controllers()
    if not libs:
        pytest.skip("no BLAS library seen by threadpoolctl")
    before = [lib.num_threads for lib in libs]
    rng = np.random.default_rng(3)
    mat = rng.random((300, 64), dtype=np.float32)  # above _BLAS_THREAD_MIN elements
    q = rng.random(64, dtype=np.float32)
    probe = mat.view(_Probe)
    _Probe.seen = []
    try:
        for lib in libs:
            lib.set_num_threads(1)
        monkeypatch.setattr(kernels, "_blas_single_until", 0.0)
        np.testing.assert_array_equal(kernels._matvec(probe, q), mat @ q)  # read at one thread
        assert kernels._blas_single_until > time.monotonic()
        for lib in libs:
            lib.set_num_threads(2)
        time.sleep(kernels._BLAS_RECHECK_S * 1.5)
        got = kernels._matvec(probe, q)
        np.testing.assert_array_equal(got, mat @ q)
        assert _Probe.seen[-1] == [1] * len(libs), _Probe.seen
        assert [lib.num_threads for lib in libs] == [2] * len(libs)  # restored
    finally:
        for lib, n in zip(libs, before):
            lib.set_num_threads(n)
