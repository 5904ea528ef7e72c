"""Many items sharing one vector: exact lists, ties ordered by the declared secondary key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset, save_dataset
from recsys.models.base import duplicate_vector_share
from recsys.models.prod2vec import Prod2Vec
from recsys.topk import topk_rows as top_k_rows


def reference_top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.stack([np.lexsort((np.arange(len(row)), -row))[:k] for row in scores])


def test_top_k_rows_is_exact_under_massive_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 300)).astype(np.float32)  # 4 distinct values
    scores[:, ::7] = -np.inf
    for k in (1, 5, 37, 299, 300, 400):
        cols, vals = top_k_rows(scores, k)
        ref = reference_top(scores, min(k, 300))
        np.testing.assert_array_equal(cols, ref)
        np.testing.assert_array_equal(vals, np.take_along_axis(scores, ref, axis=1))


def thin_catalogue(n_items: int = 3000, n_distinct: int = 18, dim: int = 8, seed: int = 0):
    """A Meta-Prod2Vec-on-a-thin-catalogue situation: thousands of items, 18 distinct vectors."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_distinct, dim)).astype(np.float32)
    group = rng.integers(0, n_distinct, size=n_items)
    vectors = base[group] + (rng.random(n_items) < 0.05)[:, None] * rng.normal(size=(n_items, dim)).astype(
        np.float32
    )
    ids = np.asarray([f"t{i:05d}" for i in range(n_items)])
    catalog = pd.DataFrame(
        {
            "item_id": ids,
            "title": ids,
            "category": "Home",
            "brand": "",
            "gender": "",
            "price": np.nan,
            "adult": False,
            "description": "",
            "image_url": "",
        }
    )
    return ids, vectors.astype(np.float32), catalog


def test_embedding_similar_orders_tied_items_by_item_order():
    ids, vectors, _ = thin_catalogue()
    model = Prod2Vec()
    model.item_ids_, model.vectors_ = ids, vectors
    model.coverage_ = {}
    seeds = ids[:40].tolist()
    got, _ = model.similar(seeds, 30)
    unit = model.unit_vectors()
    sims = unit[:40] @ unit.T
    sims[np.arange(40), np.arange(40)] = -np.inf
    np.testing.assert_array_equal(got, ids[reference_top(sims, 30)])


def test_runs_with_tied_vectors_are_searched_exactly(tmp_path):
    ids, vectors, catalog = thin_catalogue()
    assert duplicate_vector_share(vectors) > 0.9
    inter = pd.DataFrame(
        {
            "sequence_id": ["s0", "s0"],
            "user_id": "",
            "item_id": ids[:2],
            "timestamp": pd.Timestamp("2024-01-01"),
            "event_type": "view",
            "quantity": 1.0,
            "position": [0, 1],
        }
    )
    ds = Dataset("thin", catalog, inter)
    model = Prod2Vec()
    model.item_ids_, model.vectors_ = ids, vectors
    model.coverage_ = {}
    assert_searched_exactly(tmp_path, model, ds, ids[::25])


def assert_searched_exactly(tmp_path, model, ds, seeds) -> None:
    """Stored as a run with its HNSW index, ``model``'s lists for ``seeds`` are the exact lists."""
    from recsys.pipeline import _index_writer
    from recsys.registry import Registry
    from recsys.search import clear_searcher_cache, get_searcher

    save_dataset(ds, tmp_path)
    reg = Registry(tmp_path)
    meta = reg.create_run(
        model, dataset_name="thin", dataset_fingerprint=ds.fingerprint(), writers=[_index_writer(model, {})]
    )
    info = meta["artifacts"]["index"]
    assert info["exact_search"] is True
    assert info["duplicate_vector_share"] == pytest.approx(duplicate_vector_share(model.vectors_), abs=1e-4)
    clear_searcher_cache()
    searcher = get_searcher(reg, meta["run_id"])
    wrong = 0
    for seed in seeds:
        got = searcher.search(str(seed), None, 20)
        ref = searcher.brute_force(str(seed), None, 20)
        wrong += got.item_ids != ref.item_ids
        assert got.plan.startswith("exact") or got.plan.endswith("ties_exact")  # answered exactly
    assert wrong == 0


def test_content_runs_of_a_thin_catalogue_are_searched_exactly(tmp_path):
    """A real content model on a thin catalogue: 500 of 600 items with one title, category and no
    price get one vector (TF-IDF side included); its run's lists are the exact ones."""
    from recsys.models.content import ContentModel
    from tests.unit.test_content import FAST, view_events

    n = 600
    rng = np.random.default_rng(0)
    titles = ["gift item" if i < 500 else f"gift item w{i % 40}" for i in range(n)]
    ids, _, catalog = thin_catalogue(n_items=n)
    catalog["title"] = titles
    sessions = [[str(x) for x in rng.choice(ids, 4, replace=False)] for _ in range(300)]
    ds = Dataset("thin", catalog, view_events(sessions))
    model = ContentModel(**{**FAST, "tfidf_dim": 1024}).fit(ds)
    assert duplicate_vector_share(model.vectors_) > 0.8  # the 500 share one vector
    assert_searched_exactly(tmp_path, model, ds, np.r_[ids[:10], ids[495:505], ids[590:]])


@pytest.mark.parametrize("dup", [False, True])
def test_duplicate_vector_share(dup):
    v = np.eye(4, dtype=np.float32)
    if dup:
        v = np.vstack([v, 3 * v[:1]])  # the same direction counts as the same vector
    assert duplicate_vector_share(v) == pytest.approx(2 / 5 if dup else 0.0)
