"""The tiny serving data directory shared by the REST, precompute and Spark tests (imported as a
module: ``from tests._serving_data import make_serving_data``).

A 48-item catalogue in four leaf categories (one adult), two embedding runs with seeded
clustered vectors (one with an HNSW index file) and two presets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import numpy as np
import pandas as pd

from recsys.data.schema import Dataset, save_dataset
from recsys.filters import FilterConfig, PresetStore
from recsys.index import HnswIndex
from recsys.models.prod2vec import Prod2Vec
from recsys.registry import Registry
from recsys.serving import register_api

LEAVES = [
    "Women > Shoes > Running",
    "Women > Shoes > Heels",
    "Men > Shoes > Running",
    "Adult > Toys > Misc",
]
BRANDS = ["Acme", "Bolt", "Crest", "Dune"]
N_PER_LEAF = 12
DIM = 8


def make_serving_data(root: Path) -> dict[str, Any]:
    """Build the tiny data directory; return run ids, item ids and vectors."""
    n = len(LEAVES) * N_PER_LEAF
    leaf_of = np.repeat(np.arange(len(LEAVES)), N_PER_LEAF)
    item_ids = np.asarray([f"it{i:03d}" for i in range(n)])
    catalog = pd.DataFrame(
        {
            "item_id": item_ids.tolist(),
            "title": [f"Product {i}" for i in range(n)],
            "category": [LEAVES[c] for c in leaf_of],
            "brand": [BRANDS[i % len(BRANDS)] for i in range(n)],
            "gender": [["women", "women", "men", ""][c] for c in leaf_of],
            "price": np.linspace(10.0, 200.0, n),
            "adult": leaf_of == 3,
            "description": "",
            "image_url": "",
        }
    )
    n_seq = 24  # three views per session, one session a day, inside one leaf category
    seq_items = [
        item_ids[(s % len(LEAVES)) * N_PER_LEAF + (s + j) % N_PER_LEAF]
        for s in range(n_seq)
        for j in range(3)
    ]
    inter = pd.DataFrame(
        {
            "sequence_id": [f"s{s:02d}" for s in range(n_seq) for _ in range(3)],
            "user_id": "",
            "item_id": seq_items,
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(np.repeat(np.arange(n_seq), 3), unit="D"),
            "event_type": "view",
            "quantity": 1.0,
            "position": np.tile(np.arange(3, dtype=np.int64), n_seq),
        }
    )
    ds = Dataset(name="tiny", catalog=catalog, interactions=inter)
    save_dataset(ds, root)
    reg = Registry(root)
    out: dict[str, Any] = {"item_ids": item_ids, "catalog": catalog, "vectors": {}}
    for seed, with_index, label in ((1, True, "tiny-a"), (2, False, "tiny-b")):
        rng = np.random.default_rng(seed)
        centers = rng.normal(size=(len(LEAVES), DIM)).astype(np.float32)
        centers[2] = centers[0] + 0.3 * rng.normal(size=DIM)  # men's running near women's running
        vectors = (centers[leaf_of] + 0.5 * rng.normal(size=(n, DIM))).astype(np.float32)
        model = Prod2Vec()
        model.item_ids_ = item_ids
        model.vectors_ = vectors
        model.coverage_ = {"catalog_items": n, "items_with_vector": n, "coverage": 1.0}
        writers = []
        if with_index:

            def write_index(folder: Path, vectors: np.ndarray = vectors) -> dict[str, Any]:
                HnswIndex.build(vectors, M=8, ef_construction=64, ef=64).save(Path(folder) / "index.bin")
                return {"index": {"file": "index.bin"}}

            writers.append(write_index)
        meta = reg.create_run(
            model, dataset_name="tiny", dataset_fingerprint=ds.fingerprint(), writers=writers, label=label
        )
        out["vectors"][meta["run_id"]] = vectors
        out.setdefault("runs", []).append(meta["run_id"])
    reg.activate(out["runs"][0])
    presets = PresetStore(root)
    presets.save("same-cat", FilterConfig(same_category=True, category_level=1))
    presets.save("no-adult", FilterConfig(exclude_adult=True, max_per_brand=2))
    return out


def make_run_with_missing_vectors(root: Path, data: dict[str, Any]) -> str:
    """A run of the tiny data whose model has no vector for six items (30..35, Men > Shoes >
    Running), with the run's fallback chain fitted on the dataset: the chain serves those seeds
    (``data``: what :func:`make_serving_data` returned)."""
    from recsys.data.schema import load_dataset
    from recsys.fallback import FallbackChain

    ds = load_dataset("tiny", root)
    keep = [i for i in range(len(data["item_ids"])) if not 30 <= i < 36]
    model = Prod2Vec()
    model.item_ids_ = data["item_ids"][keep]
    model.vectors_ = data["vectors"][data["runs"][0]][keep]
    model.coverage_ = {}
    chain = FallbackChain().fit(ds)
    return Registry(root).create_run(
        model,
        dataset_name="tiny",
        dataset_fingerprint=ds.fingerprint(),
        writers=[lambda folder: chain.save(folder / "fallback")],
    )["run_id"]


def make_second_dataset(
    root: Path, n_items: int = 14, n_vectors: int = 12, chain: bool = False
) -> tuple[str, list[str]]:
    """A second stored dataset, ``shop2`` (``n_items`` in the catalogue), and one embedding run
    with vectors for the first ``n_vectors`` of them (with the run's fallback chain when
    ``chain``): the run id and the catalogue's ids."""
    ids = [f"sku-{i}" for i in range(n_items)]
    catalog = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"Thing {i}" for i in range(n_items)],
            "category": "Home > Things",
            "brand": "Acme",
            "gender": "",
            "price": 10.0,
            "adult": False,
            "description": "",
            "image_url": "",
        }
    )
    inter = pd.DataFrame(
        {
            "sequence_id": [f"s{i // 3}" for i in range(12)],
            "user_id": "",
            "item_id": ids[:12],
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(12), unit="h"),
            "event_type": "view",
            "quantity": 1.0,
            "position": np.tile(np.arange(3, dtype=np.int64), 4),
        }
    )
    ds = Dataset(name="shop2", catalog=catalog, interactions=inter)
    save_dataset(ds, root)
    model = Prod2Vec()
    model.item_ids_ = np.asarray(ids[:n_vectors])
    model.vectors_ = np.random.default_rng(0).normal(size=(n_vectors, 8)).astype(np.float32)
    model.coverage_ = {}
    writers = []
    if chain:
        from recsys.fallback import FallbackChain

        fitted = FallbackChain().fit(ds)
        writers.append(lambda folder: fitted.save(folder / "fallback"))
    run = Registry(root).create_run(
        model, dataset_name="shop2", dataset_fingerprint=ds.fingerprint(), writers=writers
    )
    return run["run_id"], ids


def make_client(root: Path, **kwargs: Any) -> flask.testing.FlaskClient:
    app = flask.Flask("test-serving")
    register_api(app, root, **kwargs)
    return app.test_client()
