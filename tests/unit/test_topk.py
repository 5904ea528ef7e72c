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


@settings(max_examples=60, deadline=None)
@given(
    st.integers(4096, 20000),
    st.integers(1, 60),
    st.sampled_from(["normal", "few values", "mostly -inf"]),
    st.integers(0, 2**31 - 1),
)
def test_top_prefix_holds_the_top_k_and_every_tie_on_long_vectors(n, k, kind, seed):
    """top_prefix (the chunk-maxima bound in front of the argpartition of long score vectors, as an
    exact search over a 10k-row category block) keeps a prefix of the descending order closed
    under ties, and topk over it equals the full sort, ties by position."""
    from recsys.topk import top_prefix

    rng = np.random.default_rng(seed)
    if kind == "normal":
        s = rng.normal(size=n).astype(np.float32)
    elif kind == "few values":  # ties everywhere, across the cut too
        s = rng.integers(0, 5, n).astype(np.float32)
    else:
        s = np.full(n, -np.inf, dtype=np.float32)
        s[rng.choice(n, min(n, k // 2 + 1), replace=False)] = rng.normal(size=min(n, k // 2 + 1))
    pre = top_prefix(s, k)
    if pre is None:
        assert k * 64 > n
    else:
        assert np.all(np.diff(pre) > 0)
        kth = np.sort(s)[::-1][k - 1]
        assert set(np.flatnonzero(s >= kth)) <= set(pre.tolist())  # the top k and its ties
        inside = np.zeros(n, dtype=bool)
        inside[pre] = True
        assert inside.all() or s[~inside].max() < s[pre].min()  # a prefix of the order
    order = np.lexsort((np.arange(n), -s))[:k]
    cols, vals = topk(s, k)
    assert cols.tolist() == order.tolist()
    assert np.array_equal(vals, s[order])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(4096, 12000),
    st.integers(1, 60),
    st.sampled_from(["normal", "few values", "mostly -inf", "tied maxima", "ties below the maxima"]),
    st.integers(0, 2**31 - 1),
)
def test_topk_rows_on_wide_rows_is_the_stable_sort_prefix(b, n, k, kind, seed):
    """Wide rows (a batch's exact search over a 10k-row block) are narrowed by slot maxima before
    the selection: the same columns and scores as the full stable sort, ties by column, with
    ties across slots, -inf columns and rows whose slot maxima tie at the k-th."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        s = rng.normal(size=(b, n)).astype(np.float32)
    elif kind == "few values":
        s = rng.integers(0, 5, (b, n)).astype(np.float32)
    elif kind == "mostly -inf":
        s = np.full((b, n), -np.inf, dtype=np.float32)
        for row in s:
            row[rng.choice(n, k // 2 + 1, replace=False)] = rng.normal(size=k // 2 + 1)
    elif kind == "tied maxima":  # one value repeated in many slots, above the rest
        s = rng.normal(size=(b, n)).astype(np.float32) - 10
        s[:, rng.choice(n, 3 * k, replace=False)] = 1.0
    else:  # distinct slot maxima, and the k-th score tied across the slots they head
        s = rng.normal(size=(b, n)).astype(np.float32) - 10
        w, m = n // 32, k // 2 + 1
        for row in s:
            slots = rng.choice(w, m, replace=False)
            row[slots + w * rng.integers(0, 16, m)] = 100 + np.arange(m)
            row[slots + w * rng.integers(16, 32, m)] = 50.0
    cols, vals = topk_rows(s, k)
    order = np.lexsort((np.broadcast_to(np.arange(n), s.shape), -s), axis=1)[:, :k]
    assert cols.tolist() == order.tolist()
    assert np.array_equal(vals, np.take_along_axis(s, order, axis=1))
