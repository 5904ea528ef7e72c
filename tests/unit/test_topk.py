"""recsys.topk against a full stable sort (the reference every top-k must agree with)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsys.topk import topk, topk_rows


def _reference(row: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
    return np.array(order, dtype=np.int64), row[order]


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 30)),
        elements=st.sampled_from([0.0, 0.5, 1.0, -1.0, -np.inf]),
    ),
    st.integers(0, 35),
)
def test_topk_rows_is_the_stable_sort_prefix(scores, k):
    cols, vals = topk_rows(scores, k)
    assert cols.shape == (scores.shape[0], min(k, scores.shape[1]))
    for i, row in enumerate(scores):
        ref_c, ref_v = _reference(row, k)
        assert cols[i].tolist() == ref_c.tolist()
        assert np.array_equal(vals[i], ref_v)


def test_topk_one_vector_ties_by_position():
    cols, vals = topk(np.array([0.2, 0.9, 0.9, -np.inf, 0.1]), 3)
    assert cols.tolist() == [1, 2, 0]
    assert vals.tolist() == [0.9, 0.9, 0.2]


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float32, st.integers(1, 40), elements=st.sampled_from([0.0, 0.5, 1.0, -1.0, -np.inf])),
    st.integers(0, 45),
)
def test_topk_one_vector_is_the_stable_sort_prefix(scores, k):
    """The 1-D fast path (exact search's per-query selection) agrees with the full sort."""
    cols, vals = topk(scores, k)
    ref_c, ref_v = _reference(scores, k)
    assert cols.tolist() == ref_c.tolist()
    assert np.array_equal(vals, ref_v)
