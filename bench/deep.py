"""Deep-model benchmark: prints ONE JSON line of figures.

- Cold-item HR@10 (targets with fewer than 3 training interactions) for Prod2Vec,
  Meta-Prod2Vec and the content model, on the demo data and on REES46 (time split;
  REES46 is skipped with a reason when ../shared/datasets is absent).
- Next-item HR@10 / NDCG@10 on the demo's held-out sessions for the two-tower model,
  the mean-of-recent-items Prod2Vec baseline and popularity.
- Content model training time at the default demo size (5000 items), with the
  number of CPU cores / the device it ran on.
- A reference figure, not a model: ``demo.structure_oracle`` is the cold HR@10 of a
  ranker that reads the demo's ground truth (leaf category, price band, brand, product
  type) and scores, within the seed's leaf, same price band, same brand, same product type
  (with the generator's ``TYPE_BONUS``) and nearness in log price (over the generator's
  ``PRICE_SCALE``), at random within ties: a hand-weighted reference built from the facts
  the generator's shoppers choose by (not a bound: it ignores popularity, by which the
  generator shows items).

Targets (issue 5): content cold HR@10 >= 1.5x Meta-Prod2Vec's on the demo data (~370 cold
cases: each hit rate carries a +-0.02..0.04 binomial 95% interval, reported as ``_ci95``, and
the content model's Keras training is not bit-reproducible, so the ratio moves between
runs; it moves more between generated shops: 2.55x on seed 0 and 2.17x to 3.64x on seeds
0-3 with ``--more-demo-seeds 1,2,3``, where the story before shoppers had a wished product
type and budget gave 0.95x to 1.43x); two-tower HR@10 >= 1.0x mean-of-recent-items
Prod2Vec; content training < 180 s.

Usage: ``python bench/deep.py [--skip-rees46] [--items 5000] [--more-demo-seeds 1,2,3]``.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

K = 10
COLD_THRESHOLD = 3


def shared_datasets() -> Path:
    env = os.environ.get("RECSYS_SHARED_DATASETS")
    return Path(env) if env else (ROOT / ".." / "shared" / "datasets").resolve()


def _p2v_params(family: str) -> dict[str, Any]:
    from recsys.models import prod2vec

    # one worker: gensim is only bit-reproducible single-threaded, so the ratio is stable
    return {**prod2vec.tuned_params(family), "epochs": 20, "workers": 1, "seed": 0}


def cold_item_block(dataset: Any, content_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit Prod2Vec, Meta-Prod2Vec and content on a time split; HR@10 on cold targets."""
    from recsys.evaluation import cold_items, evaluate, split
    from recsys.models import make_model

    train, test = split(dataset, method="time")
    cold = cold_items(train, threshold=COLD_THRESHOLD, catalog=dataset.catalog["item_id"].astype(str))
    out: dict[str, Any] = {"items": int(len(dataset.catalog)), "cold_items": int(len(cold))}
    models = {}
    for family, params in (
        ("prod2vec", _p2v_params("prod2vec")),
        ("meta_prod2vec", _p2v_params("meta_prod2vec")),
        ("content", content_params or {}),
    ):
        t0 = time.perf_counter()
        model = make_model(family, **params).fit(train)
        fit_s = time.perf_counter() - t0
        cold_m = evaluate(model, train, test, k=K, catalog=dataset.catalog, target_filter=cold)
        all_m = evaluate(model, train, test, k=K, catalog=dataset.catalog)
        out[family] = {
            f"cold_hr@{K}": round(cold_m[f"hr@{K}"], 4),
            f"cold_ndcg@{K}": round(cold_m[f"ndcg@{K}"], 4),
            "cold_cases": int(cold_m["n_cases"]),
            # sampling noise of the cold hit rate (binomial, 95%): few cold cases, wide intervals
            f"cold_hr@{K}_ci95": round(
                1.96 * (cold_m[f"hr@{K}"] * (1 - cold_m[f"hr@{K}"]) / max(cold_m["n_cases"], 1)) ** 0.5, 4
            ),
            f"hr@{K}": round(all_m[f"hr@{K}"], 4),
            "coverage": round(float(model.coverage_.get("coverage", 0.0)), 4),
            "fit_s": round(fit_s, 1),
        }
        if getattr(model, "block_weights_", None):
            out[family]["block_weights"] = {b: round(w, 3) for b, w in model.block_weights_.items()}
        models[family] = model
    mp = out["meta_prod2vec"][f"cold_hr@{K}"]
    out[f"content_vs_meta_prod2vec_cold_hr@{K}"] = (
        round(out["content"][f"cold_hr@{K}"] / mp, 3) if mp else None
    )
    out["_models"] = models
    out["_split"] = (train, test)
    return out


class StructureOracle:
    """Ranks by the demo's ground truth: same leaf (10) + same cluster (3) + same brand in
    the leaf (2) - 0.5 x price-band distance in the leaf, and in the leaf + TYPE_BONUS for
    the same product type - |log price ratio| / PRICE_SCALE (when the catalogue has
    ``product_type``); ties broken at random (seeded).

    A reference for cold HR@10 (see the module docstring), evaluated like the models.
    """

    def __init__(self, catalog: Any, seed: int = 0) -> None:
        import numpy as np
        import pandas as pd

        self.ids = catalog["item_id"].astype(str).to_numpy()
        self.row = {i: r for r, i in enumerate(self.ids)}
        self.leaf = pd.factorize(catalog["category"].astype(str))[0]
        self.cluster = pd.factorize(catalog["cluster"].astype(str))[0]
        self.brand = pd.factorize(catalog["brand"].astype(str))[0]
        self.band = catalog["price_band"].map({"budget": 0, "mid": 1, "premium": 2}).to_numpy(dtype=float)
        # product type (the title's noun) and price: part of the shopper's wish in the demo's story
        self.ptype = (
            pd.factorize(catalog["product_type"].astype(str))[0]
            if "product_type" in catalog.columns
            else None
        )
        self.log_price = np.log(catalog["price"].to_numpy(dtype=float))
        self.rng = np.random.default_rng(seed)

    def similar(self, item_ids: Any, k: int) -> tuple[Any, Any]:
        import numpy as np

        rows = np.array([self.row.get(str(i), -1) for i in item_ids])
        r = np.maximum(rows, 0)[:, None]
        same_leaf = self.leaf[r] == self.leaf[None]
        from recsys.data.synthetic import PRICE_SCALE, TYPE_BONUS

        score = (
            10.0 * same_leaf
            + 3.0 * (self.cluster[r] == self.cluster[None])
            + 2.0 * (same_leaf & (self.brand[r] == self.brand[None]))
            - 0.5 * same_leaf * np.abs(self.band[r] - self.band[None])
            + (
                same_leaf
                * (
                    TYPE_BONUS * (self.ptype[r] == self.ptype[None])
                    - np.abs(self.log_price[r] - self.log_price[None]) / PRICE_SCALE
                )
                if self.ptype is not None
                else 0.0
            )
            + 1e-3 * self.rng.random((len(rows), len(self.ids)))
        )
        score[np.arange(len(rows)), np.maximum(rows, 0)] = -np.inf
        top = np.argsort(-score, axis=1)[:, :k]
        ids = self.ids[top].astype(object)
        ids[rows < 0] = ""
        return ids, np.take_along_axis(score, top, axis=1)


def structure_oracle_block(dataset: Any, train: Any, test: Any) -> dict[str, Any]:
    """Cold HR@10 of :class:`StructureOracle` on the models' split (``train``, ``test``) and cases."""
    from recsys.evaluation import cold_items, evaluate

    if not {"cluster", "price_band", "brand", "category"} <= set(dataset.catalog.columns):
        return {"skipped": "no ground-truth cluster/price_band columns (demo data only)"}
    cold = cold_items(train, threshold=COLD_THRESHOLD, catalog=dataset.catalog["item_id"].astype(str))
    # the random tie-break within a cluster moves the hit rate: mean over 5 draws
    hrs, n_cases = [], 0
    for seed in range(5):
        oracle = StructureOracle(dataset.catalog, seed=seed)
        m = evaluate(oracle, train, test, k=K, catalog=dataset.catalog, target_filter=cold)
        hrs.append(m[f"hr@{K}"])
        n_cases = int(m["n_cases"])
    return {
        f"cold_hr@{K}": round(sum(hrs) / len(hrs), 4),
        f"cold_hr@{K}_range": [round(min(hrs), 4), round(max(hrs), 4)],
        "cold_cases": n_cases,
    }


def next_item_block(
    train: Any, test: Any, prod2vec_model: Any, tt_params: dict[str, Any] | None = None
) -> dict[str, Any]:
    from recsys.models.two_tower import (
        TwoTowerModel,
        evaluate_next_item,
        mean_vector_recommender,
        popularity_recommender,
        session_lists,
    )

    tt = TwoTowerModel(**(tt_params or {}))
    t0 = time.perf_counter()
    tt.fit(train)
    fit_s = time.perf_counter() - t0
    sessions = session_lists(test)
    n = int(tt.params["max_recent"])
    res = {
        "two_tower": evaluate_next_item(tt, sessions, K),
        "prod2vec_mean_recent": evaluate_next_item(
            mean_vector_recommender(prod2vec_model, max_recent=n), sessions, K
        ),
        "popularity": evaluate_next_item(popularity_recommender(session_lists(train)), sessions, K),
    }
    out = {
        name: {m: (round(v, 4) if isinstance(v, float) else v) for m, v in r.items()}
        for name, r in res.items()
    }
    base = res["prod2vec_mean_recent"][f"hr@{K}"]
    out[f"two_tower_vs_prod2vec_hr@{K}"] = round(res["two_tower"][f"hr@{K}"] / base, 3) if base else None
    out["two_tower_fit_s"] = round(fit_s, 1)
    return out


def more_demo_seeds(seed0: dict[str, Any], seeds: list[int], n_items: int) -> dict[str, Any]:
    """Content and Meta-Prod2Vec cold HR@10 on demos generated with other seeds (seed 0 first)."""
    from recsys.data.synthetic import generate_demo

    rows = {0: seed0}
    for s in seeds:
        block = cold_item_block(generate_demo(n_items=n_items, seed=s))
        block.pop("_models")
        block.pop("_split")
        rows[s] = block
    key = f"cold_hr@{K}"
    per_seed = {
        str(s): {
            "content": b["content"][key],
            "meta_prod2vec": b["meta_prod2vec"][key],
            "ratio": b[f"content_vs_meta_prod2vec_{key}"],
            "cold_cases": b["content"]["cold_cases"],
        }
        for s, b in rows.items()
    }
    content = sum(r["content"] for r in per_seed.values()) / len(per_seed)
    meta = sum(r["meta_prod2vec"] for r in per_seed.values()) / len(per_seed)
    return {
        "per_seed": per_seed,
        f"content_mean_{key}": round(content, 4),
        f"meta_prod2vec_mean_{key}": round(meta, 4),
        "ratio_of_means": round(content / meta, 3) if meta else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--skip-rees46", action="store_true")
    parser.add_argument(
        "--more-demo-seeds",
        default="",
        help="e.g. 1,2,3: repeat the demo cold-item block on demos generated with these seeds too "
        "(the ratio moves a lot from one generated shop to the next)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)

    from recsys.data.synthetic import generate_demo
    from recsys.models._keras_utils import device_info

    started = time.perf_counter()
    result: dict[str, Any] = {
        "bench": "deep",
        "k": K,
        "cold_threshold": COLD_THRESHOLD,
        "cpu_cores": os.cpu_count(),
    }
    demo = generate_demo(n_items=args.items, seed=0)
    block = cold_item_block(demo)
    models = block.pop("_models")
    train, test = block.pop("_split")
    result["demo"] = block
    oracle = structure_oracle_block(demo, train, test)
    block["structure_oracle"] = oracle
    mp = block["meta_prod2vec"][f"cold_hr@{K}"]
    if mp and f"cold_hr@{K}" in oracle:
        block[f"structure_oracle_vs_meta_prod2vec_cold_hr@{K}"] = round(oracle[f"cold_hr@{K}"] / mp, 3)
    seeds = [int(x) for x in args.more_demo_seeds.split(",") if x]
    if seeds:
        result["demo_seeds"] = more_demo_seeds(block, seeds, args.items)
    content = models["content"]
    result["content_training"] = {
        "items": int(len(demo.catalog)),
        "train_sessions": int(train.interactions["sequence_id"].nunique()),
        "fit_s": block["content"]["fit_s"],
        "target_s": 180,
        "history_last": content.history_[-1] if content.history_ else None,
    }
    result["device"] = device_info()
    result["demo_next_item"] = next_item_block(train, test, models["prod2vec"])

    if args.skip_rees46:
        result["rees46"] = {"skipped": "--skip-rees46"}
    else:
        path = shared_datasets() / "rees46_sample" / "events.csv"
        if not path.exists():
            result["rees46"] = {"skipped": f"{path} not found"}
        else:
            from recsys.data.adapters import import_rees46

            block = cold_item_block(import_rees46(path))
            block.pop("_models")
            block.pop("_split")
            result["rees46"] = block

    result["targets"] = {
        "content_cold_hr_ge_1.5x_meta_prod2vec_demo": (
            result["demo"][f"content_vs_meta_prod2vec_cold_hr@{K}"] or 0
        )
        >= 1.5,
        "two_tower_hr_ge_1.0x_prod2vec_mean_recent": (
            result["demo_next_item"][f"two_tower_vs_prod2vec_hr@{K}"] or 0
        )
        >= 1.0,
        "content_fit_under_180s": result["content_training"]["fit_s"] < 180,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
