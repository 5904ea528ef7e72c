"""The batch path's exact search over a wide eligible block (issue 18: a 10% filter at 1M items
keeps about 100k rows): many seeds at once, each list exact against brute force."""

from __future__ import annotations

import numpy as np

from recsys.search import batch
from recsys.search.batch import PAD, exact_block_many, padded_take


def brute(q: np.ndarray, block: np.ndarray, m: int, k: int, seed_cols: np.ndarray):
    sc = q @ block[:m].T
    for i, c in enumerate(seed_cols.tolist()):
        if c >= 0:
            sc[i, c] = -np.inf
    cols = np.stack([np.lexsort((np.arange(m), -row))[:k] for row in sc])
    return cols, np.take_along_axis(sc, cols, axis=1)


def test_a_wide_block_searched_for_many_seeds_in_large_chunks_is_exact():
    """A block wider than ``WIDE_BLOCK_ROWS`` is searched in chunks of many seeds over two
    threads; every seed's list (its own column excluded, duplicated rows tied: lower column
    first) equals brute force's, including the seeds of the last, shorter chunk."""
    rng = np.random.default_rng(3)
    m, d, k = batch.WIDE_BLOCK_ROWS + 2_000, 8, 10
    unit = rng.standard_normal((m, d)).astype(np.float32)
    unit[m // 2 : m // 2 + 40] = unit[7]  # a group of tied rows
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    block = padded_take(unit, np.arange(m))
    assert len(block) > m and len(block) % PAD == 0  # zero padding past m must never be returned
    b = 2 * batch.WIDE_CHUNK_SEEDS + 37  # three chunks per thread pair, the last one short
    picks = rng.choice(m, size=b, replace=False)
    picks[:5] = [7, m // 2, m // 2 + 1, m // 2 + 39, m - 1]
    q = np.ascontiguousarray(unit[picks])
    seed_cols = picks.astype(np.int64).copy()
    seed_cols[1::3] = -1  # some seeds are not in the block
    cols, sims = exact_block_many(q, block, m, k, seed_cols, threads=2)
    ref_c, ref_s = brute(q, block, m, k, seed_cols)
    np.testing.assert_array_equal(cols, ref_c)
    np.testing.assert_allclose(sims, ref_s, rtol=0, atol=1e-6)


def test_a_filters_block_searched_for_a_batch_in_chunks_over_two_threads_is_exact():
    """A 10% filter's block at 100k items (10k rows) is searched for a batch in chunks of
    ``CHUNK_BYTES`` of scores, evened over two threads (four chunks of 54 or 51 seeds here):
    every seed's list (its own column excluded, tied rows: lower column first) equals brute
    force's, in every chunk."""
    rng = np.random.default_rng(5)
    m, d, k = 10_000, 8, 10
    unit = rng.standard_normal((m, d)).astype(np.float32)
    unit[m - 30 :] = unit[11]  # tied rows, the last ones of the block
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    block = padded_take(unit, np.arange(m))
    per_chunk = batch.CHUNK_BYTES // (4 * len(block))
    assert 25 < per_chunk < 200  # more seeds per product than the 1 MiB chunks had, fewer than b
    b = 2 * per_chunk + 7  # two chunks per thread, evened out: the last one shorter
    picks = rng.choice(m - 30, size=b, replace=False)
    picks[-4:] = [11, m - 1, m - 15, m - 30]  # tied seeds in the last chunk
    q = np.ascontiguousarray(unit[picks])
    seed_cols = picks.astype(np.int64).copy()
    seed_cols[::4] = -1  # some seeds are not in the block
    cols, sims = exact_block_many(q, block, m, k, seed_cols, threads=2)
    ref_c, ref_s = brute(q, block, m, k, seed_cols)
    np.testing.assert_array_equal(cols, ref_c)
    np.testing.assert_allclose(sims, ref_s, rtol=0, atol=1e-6)
