"""The index check's recall@k (recsys.external.index_check._recall) against its definition."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.external.index_check import _recall
from recsys.topk import topk_rows_unordered


def _reference(scores: np.ndarray, got: np.ndarray, k: int) -> float:
    truth = topk_rows_unordered(scores, k)
    return float(
        np.mean([len(set(a) & set(b)) / k for a, b in zip(got.tolist(), truth.tolist(), strict=True)])
    )


def test_recall_equals_the_overlap_with_the_exact_top_k():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((20, 5000)).astype(np.float32)
    exact = topk_rows_unordered(scores, 10)
    for hits in (10, 7, 3, 0):  # answers: `hits` of the exact top 10, the rest from elsewhere
        got = np.empty((20, 10), dtype=np.int64)
        for q in range(20):
            others = np.setdiff1d(rng.choice(5000, 60, replace=False), exact[q])[: 10 - hits]
            got[q] = np.concatenate([exact[q][:hits], others])
        assert _recall(scores, got, 10) == pytest.approx(_reference(scores, got, 10)) == hits / 10


def test_a_tie_with_the_kth_score_counts_as_found():
    scores = np.array([[5.0, 4.0, 3.0, 3.0, 1.0]], dtype=np.float32)
    # the exact top 3 is {0, 1, 2} or {0, 1, 3}: either answer is right
    assert _recall(scores, np.array([[0, 1, 3]]), 3) == 1.0
    assert _recall(scores, np.array([[0, 1, 4]]), 3) == 2 / 3
