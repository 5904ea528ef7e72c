"""A small clustered catalogue whose categories are drawn at random (unrelated to the vectors):
what the lost-search tests build their coarse graphs on (``test_search_no_filter_lost``,
``test_search_block_lost``)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def clustered_catalogue(
    seed: int, n_categories: int, n: int = 6000, d: int = 16
) -> tuple[pd.DataFrame, np.ndarray]:
    """(catalogue, float32 vectors): ``n`` items around 40 centres (noise 0.7), categories
    ``C0..`` at random, 50 brands, log-normal prices, no adult items; seeded."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, d))
    vec = (centers[rng.integers(0, 40, n)] + rng.normal(size=(n, d)) * 0.7).astype(np.float32)
    cat = pd.DataFrame(
        {
            "item_id": [f"v{i}" for i in range(n)],
            "title": [f"t{i}" for i in range(n)],
            "category": [f"C{x}" for x in rng.integers(0, n_categories, n)],
            "brand": [f"b{x}" for x in rng.integers(0, 50, n)],
            "price": rng.lognormal(3, 0.5, n),
            "adult": np.zeros(n, dtype=bool),
        }
    )
    return cat, vec
