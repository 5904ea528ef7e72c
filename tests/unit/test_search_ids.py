"""Item ids of the search shortcuts (issue 18): gathered from the catalogue view's ids by vector row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.catalog import CatalogView
from recsys.errors import UnknownItemError
from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from recsys.search.result import ids_at

# ids of one width; of many widths; non-ASCII of many widths (the text is then UCS-2/UCS-4)
ID_SETS = {
    "fixed": lambda n: [f"SKU-{i:06d}" for i in range(n)],
    "ragged": lambda n: [f"i{i}" if i % 3 else f"item-{i}-x" for i in range(n)],
    "unicode": lambda n: [f"é{i}" if i % 2 else f"商品😀{i}" for i in range(n)],
}


def _catalog(ids: list[str], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(ids)
    centers = rng.normal(size=(12, 16)).astype(np.float32)
    vec = centers[rng.integers(0, 12, n)] + 0.4 * rng.normal(size=(n, 16)).astype(np.float32)
    cat = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"t{i}" for i in range(n)],
            "category": [f"T{i % 2} > L{i % 7}" for i in range(n)],
            "brand": [f"b{i % 9}" for i in range(n)],
            "price": rng.lognormal(3, 0.5, n),
            "adult": np.zeros(n, dtype=bool),  # the default config is then trivial: one knn_query
        }
    )
    return cat, vec


@pytest.mark.parametrize("kind", list(ID_SETS))
def test_ids_by_row_hold_every_id_at_its_row(kind):
    ids = ID_SETS[kind](500)
    order = np.random.default_rng(0).permutation(len(ids))  # rows in another order than the catalogue
    view = CatalogView([ids[i] for i in order], _catalog(ids, 0)[0])
    assert view.item_id_by_row == [ids[i] for i in order]
    assert ids_at(view.item_id_by_row, [3, 0, 499]) == [ids[order[3]], ids[order[0]], ids[order[499]]]
    assert ids_at(view.item_id_by_row, [7]) == [ids[order[7]]] and ids_at(view.item_id_by_row, []) == []


@pytest.mark.parametrize("kind", list(ID_SETS))
def test_no_filter_shortcut_returns_the_ids_of_its_rows(kind):
    """No filter (the trivial shortcut, one ``knn_query``): once armed, each answer's ids are its
    rows' ids and equal the general path's, seed excluded (the filtered shortcuts gather ids the
    same way: ``tests/unit/test_search.py::test_filter_shortcut_answers_as_the_general_path``)."""
    ids = ID_SETS[kind](3000)
    cat, vec = _catalog(ids, 1)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)
    fast = FilteredSearcher(vec, ids, cat, index=index)
    general = FilteredSearcher(vec, ids, cat, index=index)
    general._arm_fast = lambda *a: None  # never armed: every query takes the general path
    cfg = FilterConfig()
    for s in (fast, general):
        for item in ids[:30]:
            s.search(item, cfg, 10)
    fp = fast._fast[id(cfg)]
    for item in ids[::37]:
        assert fp.answer(fast, item, 10, fp) is not None, item  # the shortcut answers this seed
        got, want = fast.search(item, cfg, 10), general.search(item, cfg, 10)
        assert got.item_ids == [ids[r] for r in got.rows] == want.item_ids, item
        assert got.scores == want.scores and got.rows == want.rows, item
        assert item not in got.item_ids and got.seed_item_id == item and len(got) == 10


def test_ids_from_a_strided_id_array():
    """Ids passed as a strided slice of a NumPy str array (every other row of a larger one)."""
    ids = np.array([f"x{i}" if i % 4 else f"long-{i}" for i in range(40)])[::2]
    view = CatalogView(ids, _catalog(ids.tolist(), 2)[0])
    assert view.item_id_by_row == ids.tolist()


def test_no_filter_shortcut_drops_the_seed_and_keeps_its_twins():
    """Items sharing one vector (twins, as in a thin catalogue): wherever hnswlib lists the seed
    among its twins, the no-filter shortcut answers as the general path: the seed dropped, every
    twin kept, ties by position."""
    ids = ID_SETS["fixed"](2000)
    cat, vec = _catalog(ids, 3)
    twins = [5, 6, 7, 8, 9, 10]
    vec[twins] = vec[5]
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)
    fast = FilteredSearcher(vec, ids, cat, index=index)
    general = FilteredSearcher(vec, ids, cat, index=index)
    general._arm_fast = lambda *a: None  # never armed: every query takes the general path
    cfg = FilterConfig()
    fast.search(ids[0], cfg, 10)  # arms the shortcut
    assert id(cfg) in fast._fast
    firsts = set()
    for r in twins:
        labels, _ = index._index.knn_query(vec[r], 1)
        firsts.add(int(labels[0][0]) == r)
        got, want = fast.search(ids[r], cfg, 10), general.search(ids[r], cfg, 10)
        for field in ("item_ids", "scores", "rows", "removed_by_rule", "plan", "n_eligible"):
            assert getattr(got, field) == getattr(want, field), (r, field)
        assert ids[r] not in got.item_ids and got.seed_item_id == ids[r]
        assert set(got.item_ids[:5]) == {ids[t] for t in twins if t != r}
    assert firsts == {True, False}  # some seeds come first among their twins, some do not


def test_a_plain_shortcut_is_tried_once_and_answers_the_default_config():
    """``search`` runs a plain shortcut (nothing to complete after it) first and alone: the
    default config (``config=None``) is answered by it; a query it cannot answer (k over the
    eligible count, an unknown seed) goes to the general path without a second try of the
    shortcut (its beam search again), and is answered as before."""
    ids = ID_SETS["fixed"](1500)
    cat, vec = _catalog(ids, 4)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)
    s = FilteredSearcher(vec, ids, cat, index=index)
    s.search(ids[0])  # arms the default config's shortcut
    fp = next(iter(s._fast.values()))
    assert fp.plain
    calls = []
    answer = fp.answer

    def counted(*a):
        got = answer(*a)
        calls.append(got is not None)
        return got

    fp.answer = counted
    got = s.search(ids[3])
    assert calls == [True] and got.plan == "hnsw_overfetch" and len(got) == 10 and ids[3] not in got.item_ids
    whole = s.search(ids[3], None, len(ids) + 5)  # more than the eligible items: the general path
    assert calls == [True, False]
    assert whole.n_eligible == len(ids) - 1 and len(whole) == len(ids) - 1 and ids[3] not in whole.item_ids
    with pytest.raises(UnknownItemError):
        s.search("no-such-item")
    assert calls == [True, False, False]
