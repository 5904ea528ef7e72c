"""A tiny data directory with hand-made vectors, for the Explore / Map / Compare callback tests.

20 items, 5 per category; vectors are built so that the answers are known:

- ``Women > Shoes`` (ws0..ws4) and ``Men > Shoes`` (ms0..ms4) share a strong "shoe" direction,
  so the unfiltered 8 nearest neighbours of ``ws0`` are the other 4 women's shoes followed by
  the 5 men's shoes (minus one); with ``same_category`` at the top level ("Women") the men's
  shoes are replaced by women's bags (wb0..wb4), and the rule removes the 10 non-"Women" items.
- ``Home > Kitchen`` (hk0..hk4) is far from everything else.

Two Prod2Vec-family runs ("A" and a perturbed "B", whose lists differ) and a fitted
popularity baseline are registered; runs A and B carry per-category HR@10 metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.loaders import build_dataset
from recsys.data.schema import save_dataset
from recsys.models import make_model
from recsys.models.prod2vec import Prod2Vec
from recsys.registry import Registry
from tests.callbacks._pages import find

CATS = {"ws": "Women > Shoes", "wb": "Women > Bags", "ms": "Men > Shoes", "hk": "Home > Kitchen"}
TITLES = {"ws": "Trail Runner Shoe", "wb": "Leather Tote Bag", "ms": "Oxford Shoe", "hk": "Chef Knife"}
GENDER = {"ws": "women", "wb": "women", "ms": "men", "hk": "unisex"}
BRANDS = ("Acme", "Bolt", "Crest")


def catalog() -> pd.DataFrame:
    rows = []
    for prefix, cat in CATS.items():
        for i in range(5):
            rows.append(
                {
                    "item_id": f"{prefix}{i}",
                    "title": f"{TITLES[prefix]} {i}",
                    "category": cat,
                    "brand": BRANDS[i % 3],
                    "gender": GENDER[prefix],
                    "price": 10.0 * (i + 1),
                    "adult": False,
                }
            )
    return pd.DataFrame(rows)


def vectors(item_ids: list[str], perturb: bool = False) -> np.ndarray:
    """Known geometry (see the module docstring); ``perturb`` reorders within categories."""
    rng = np.random.default_rng(3)
    out = np.zeros((len(item_ids), 6), dtype=np.float32)
    for n, item in enumerate(item_ids):
        prefix, i = item[:2], int(item[2:])
        if prefix == "ws":
            v = [1.0, 0.3, 0.0, 0.0]
        elif prefix == "ms":
            v = [1.0, -0.3, 0.0, 0.0]
        elif prefix == "wb":
            v = [0.55, 0.3, 1.0, 0.0]
        else:
            v = [0.0, 0.0, 0.0, 1.0]
        out[n, :4] = v
        out[n, 4] = 0.02 * i * (-1 if perturb else 1)
        out[n, 5] = 0.02 * rng.standard_normal()
    return out


def interactions(item_ids: list[str]) -> pd.DataFrame:
    """Sessions of items from one category each, over 20 days (so a time split has a test part)."""
    rng = np.random.default_rng(0)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for s in range(120):
        prefix = list(CATS)[s % 4]
        picks = rng.choice(5, size=3, replace=False)
        for pos, i in enumerate(picks):
            rows.append(
                {
                    "sequence_id": f"s{s}",
                    "item_id": f"{prefix}{i}",
                    "timestamp": start + pd.Timedelta(hours=4 * s + pos),
                }
            )
    return pd.DataFrame(rows)


def _embedding_run(registry: Registry, ds: Any, vec: np.ndarray, label: str, hr: dict[str, float]) -> str:
    model = Prod2Vec()
    model.item_ids_ = np.asarray(ds.catalog["item_id"], dtype=str)
    model.vectors_ = vec
    model._set_coverage(model.item_ids_)
    per_cat = {top: {"hr@10": v, "ndcg@10": v / 2, "n": 10} for top, v in hr.items()}
    meta = registry.create_run(
        model,
        dataset_name=ds.name,
        dataset_fingerprint=ds.fingerprint(),
        metrics={"hr@10": float(np.mean(list(hr.values()))), "ndcg@10": 0.1, "per_category": per_cat},
        label=label,
    )
    return meta["run_id"]


def make_data_dir(root: Path) -> dict[str, str]:
    """Store the dataset "tiny" and three runs under ``root``; return name -> run id."""
    cat = catalog()
    ids = cat["item_id"].tolist()
    ds = build_dataset("tiny", cat, interactions(ids))
    save_dataset(ds, root)
    registry = Registry(root)
    run_a = _embedding_run(registry, ds, vectors(ids), "A", {"Women": 0.5, "Men": 0.25, "Home": 0.75})
    run_b = _embedding_run(
        registry, ds, vectors(ids, perturb=True), "B", {"Women": 0.4, "Men": 0.5, "Home": 0.5}
    )
    registry.activate(run_a)
    pop = make_model("popularity").fit(ds)
    meta = registry.create_run(
        pop,
        dataset_name=ds.name,
        dataset_fingerprint=ds.fingerprint(),
        metrics={"hr@10": 0.05},
        label="popularity",
    )
    return {"A": run_a, "B": run_b, "popularity": meta["run_id"]}


def card_ids(node: Any) -> list[str]:
    """Item ids of the item cards in a rendered tree, in order (the seed card excluded)."""
    cards = find(
        node,
        lambda c: (
            "item-card" in (getattr(c, "className", "") or "")
            and "seed-card" not in (getattr(c, "className", "") or "")
        ),
    )
    return [getattr(c, "data-item") for c in cards]
