"""A small baskets shop for the checks and vetting tests: a real Prod2Vec run (gensim) with its
hnswlib index, trained by ``train_run`` on seeded baskets.

Catalogue: 3 top-level categories (Electronics, Home, Adult), 6 leaves, 8 brands, 96 items.
Titles repeat within a leaf ("<Brand> <leaf> set"), so same-title duplicates occur in lists
unless titles are made unique (``unique_titles=True``). Baskets mix items of one leaf with a
partner leaf (TVs with cables, pans with knives), so co-bought pairs exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import Dataset, save_dataset
from recsys.filters import FilterConfig, PresetStore

LEAVES = (
    "Electronics > TV",
    "Electronics > Cables",
    "Home > Pans",
    "Home > Knives",
    "Home > Towels",
    "Adult > Toys",
)
PARTNER = {0: 1, 1: 0, 2: 3, 3: 2, 4: 4, 5: 5}
BRANDS = ("Acme", "Bolt", "Cora", "Dune", "Echo", "Fig", "Gala", "Halo")
PER_LEAF = 16


def make_shop(root: Path, unique_titles: bool = False, n_baskets: int = 900, seed: int = 0) -> dict[str, Any]:
    """Store the dataset ``shop``, train one prod2vec run and save presets; return ids."""
    from recsys.pipeline import train_run

    rng = np.random.default_rng(seed)
    n = len(LEAVES) * PER_LEAF
    leaf = np.repeat(np.arange(len(LEAVES)), PER_LEAF)
    ids = [f"P{i:04d}" for i in range(n)]
    brand = [BRANDS[(i // 2) % len(BRANDS)] for i in range(n)]
    title = [
        f"{brand[i]} {LEAVES[leaf[i]].split(' > ')[1]} set" + (f" {i}" if unique_titles else "")
        for i in range(n)
    ]
    catalog = pd.DataFrame(
        {
            "item_id": ids,
            "title": title,
            "category": [LEAVES[c] for c in leaf],
            "brand": brand,
            "gender": "",
            "price": np.round(rng.uniform(5, 500, n), 2),
            "adult": leaf == 5,
            "description": "",
            "image_url": "",
        }
    )
    # popular items (low index in a leaf) are bought far more often: the tail is cold
    weights = 1.0 / (1 + np.arange(PER_LEAF)) ** 1.2
    weights /= weights.sum()
    rows = []
    start = pd.Timestamp("2025-01-01")
    leaf_p = np.array([0.3, 0.15, 0.25, 0.12, 0.17, 0.01])
    for b in range(n_baskets):
        lf = int(rng.choice(len(LEAVES), p=leaf_p))
        size = int(rng.integers(2, 5))
        chosen = []
        for j in range(size):
            src = lf if j % 2 == 0 else PARTNER[lf]
            chosen.append(src * PER_LEAF + int(rng.choice(PER_LEAF, p=weights)))
        for pos, item in enumerate(dict.fromkeys(chosen)):
            rows.append((f"b{b:04d}", "", ids[item], start + pd.Timedelta(hours=b), "purchase", 1.0, pos))
    inter = pd.DataFrame(
        rows, columns=["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]
    )
    save_dataset(Dataset(name="shop", catalog=catalog, interactions=inter, kind="baskets"), root)
    meta = train_run(
        "prod2vec",
        {"vector_size": 16, "window": 5, "epochs": 20, "min_count": 1, "seed": 1, "workers": 1},
        "shop",
        root,
        split_method="time",
        k=5,
    )
    presets = PresetStore(root)
    presets.save("plain", FilterConfig())
    presets.save("same-cat", FilterConfig(same_category=True, category_level=1))
    return {"run": meta["run_id"], "catalog": catalog, "interactions": inter}


def judgments_frame(rows: list[tuple[str, str, int, str, str]], dataset: str = "shop") -> pd.DataFrame:
    """Judgments (seed, item_id, verdict, user, at ISO) as a frame of the judgments store's shape
    (the contract of issue 16: ``JudgmentStore.frame()``'s columns)."""
    from recsys.vetting.precision import JUDGMENT_COLUMNS

    return pd.DataFrame(
        [
            {
                "dataset": dataset,
                "run": "r",
                "preset": None,
                "seed": s,
                "item_id": i,
                "position": 1,
                "verdict": v,
                "reason": "" if v > 0 else "wrong_category",
                "note": "",
                "user": u,
                "at": at,
            }
            for s, i, v, u, at in rows
        ],
        columns=list(JUDGMENT_COLUMNS),
    )


def write_judgments(root: Path, rows: list[tuple[str, str, int, str, str]], dataset: str = "shop") -> None:
    """Append judgments to ``<root>/vetting/judgments.sqlite`` (table ``judgments``), as the store does."""
    import sqlite3

    path = root / "vetting" / "judgments.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        judgments_frame(rows, dataset).to_sql("judgments", con, index=False, if_exists="append")
