"""Benchmark: the Spark jobs against the single-process code, at local[1] and local[2].

Prints ONE JSON line::

    {"precompute_items_per_s": {"single": x, "single_1thread": x, "local1": x, "local2": x},
     "sequences_per_s": {"single": x, "local1": x, "local2": x},
     "parity": {"precompute": true, "sequences": true},
     "load_avg_1m": x, ...}

Precompute: a run of ``--items`` (100k) synthetic clustered vectors (d=64, with its
HNSW index) over a 4-level category tree (2 x 5 x 10 x 10, 20% of items with a random
category), one preset (same category at level 2, price 0.5x-2x the seed's, at most 3
per brand), k=20. ``single`` is ``recsys precompute`` (the searcher loaded, every item
searched, the SQLite table written, on every core); ``single_1thread`` the same on one
thread, the reference for Spark's overhead at local[1] (each Spark task searches with
``spark.task.cpus`` threads, 1 by default); ``local1``/``local2`` are ``recsys spark
precompute`` to Parquet on a fresh local[1]/local[2] session (the JVM start is left
out; shipping the run and loading it in every worker are in), with 2 partitions per
core. Parity: every item's list in Spark's Parquet equals the SQLite table.

Sequences: the Online Retail file (``import online_retail``) and the Taobao
UserBehavior sample (the generic CSV import with ``--no-header``-style column names
and an event map, one stored sequence per user), stored as datasets.
Online Retail: context separation by top category, max length 20. Taobao: 30-minute
session gap over each user's log, max length 20. ``single`` reads the stored Parquet,
runs ``build_sequences`` and writes the sequences as Parquet; ``local1``/``local2``
run ``spark sequences`` on the same files. Rates are sequences per second over both
datasets together. Parity: Spark's sequences equal ``build_sequences``'.

The machine this runs on may be shared: ``load_avg_1m`` is the 1-minute load average
at the end, ``cores`` the CPUs seen.

Usage: ``python bench/spark.py [--items 100000] [--datasets ../shared/datasets]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys import spark as rspark  # noqa: E402
from recsys.data.schema import save_dataset  # noqa: E402
from recsys.sequences import build_sequences  # noqa: E402

FANOUT = (2, 5, 10, 10)
PRESET = {
    "same_category": True,
    "category_level": 2,
    "price_ratio_min": 0.5,
    "price_ratio_max": 2.0,
    "max_per_brand": 3,
}
K = 20


def make_run(root: Path, n: int, dim: int = 64, seed: int = 0) -> str:
    """A stored dataset and a registered run of n synthetic clustered vectors with an index."""
    from recsys.data.schema import Dataset
    from recsys.filters import PresetStore
    from recsys.models.prod2vec import Prod2Vec
    from recsys.pipeline import _index_writer
    from recsys.registry import Registry

    rng = np.random.default_rng(seed)
    leaves = int(np.prod(FANOUT))
    leaf = rng.integers(0, leaves, size=n)
    centers = rng.normal(size=(leaves, dim)).astype(np.float32)
    vectors = centers[leaf] + 0.8 * rng.normal(size=(n, dim)).astype(np.float32)
    shown = np.where(rng.random(n) < 0.2, rng.integers(0, leaves, size=n), leaf)  # 20% random category
    item_ids = np.asarray([f"i{i:07d}" for i in range(n)])
    catalog = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Item {i}" for i in range(n)],
            "brand": [f"b{int(b)}" for b in rng.integers(0, 500, size=n)],
            "gender": rng.choice(["women", "men", "unisex"], size=n),
            "price": np.round(np.exp(rng.normal(3.5, 0.8, size=n)), 2),
            "adult": False,
            "description": "",
            "image_url": "",
        }
    )
    leaf_name = [
        " > ".join(f"L{lvl}-{d}" for lvl, d in enumerate(np.unravel_index(lf, FANOUT)))
        for lf in range(leaves)
    ]
    catalog["category"] = [leaf_name[int(s)] for s in shown]
    inter = pd.DataFrame(
        {
            "sequence_id": ["s0", "s0"],
            "user_id": "",
            "item_id": item_ids[:2],
            "timestamp": pd.Timestamp("2024-01-01"),
            "event_type": "view",
            "quantity": 1.0,
            "position": [0, 1],
        }
    )
    ds = Dataset(name="bench", catalog=catalog, interactions=inter)
    save_dataset(ds, root)
    model = Prod2Vec()
    model.item_ids_ = item_ids
    model.vectors_ = vectors
    model.coverage_ = {"catalog_items": n, "items_with_vector": n, "coverage": 1.0}
    meta = Registry(root).create_run(
        model, dataset_name="bench", dataset_fingerprint=ds.fingerprint(), writers=[_index_writer(model, {})]
    )
    PresetStore(root).save("bench", PRESET)
    return meta["run_id"]


def import_sequences_data(folder: Path, root: Path) -> list[tuple[str, dict[str, Any]]]:
    """Online Retail and Taobao stored through the project's importers; (name, rules)."""
    from recsys.data.adapters import import_dataset

    import_dataset("online_retail", folder / "online_retail" / "online_retail.csv.gz", root=root)
    taobao = folder / "taobao_userbehavior" / "UserBehavior_head84475.csv"
    # no header row; one sequence per user, cut into visits by build_sequences' session gap
    import_dataset(
        "csv",
        taobao,
        name="taobao",
        root=root,
        header=False,
        columns=["sequence_id", "item_id", "category", "event_type", "timestamp"],
        event_map={"pv": "view", "fav": "cart", "cart": "cart", "buy": "purchase"},
    )
    return [
        ("online_retail", {"separate_by": "category", "category_level": 0, "max_len": 20}),
        ("taobao", {"session_gap": 1800.0, "max_len": 20}),
    ]


def single_sequences(root: Path, jobs: list[tuple[str, dict[str, Any]]], out: Path) -> tuple[float, dict]:
    results = {}
    t0 = time.perf_counter()
    for name, rules in jobs:
        folder = root / "datasets" / name
        inter = pd.read_parquet(folder / "interactions.parquet")
        catalog = pd.read_parquet(folder / "catalog.parquet") if rules.get("separate_by") else None
        seqs = build_sequences(inter, catalog=catalog, **rules)
        pd.DataFrame({"items": seqs}).to_parquet(out / f"single-{name}.parquet")
        results[name] = seqs
    return time.perf_counter() - t0, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument(
        "--datasets", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets")
    )
    args = parser.parse_args()

    from recsys.precompute import SQLiteStore, precompute

    out: dict[str, Any] = {
        "precompute_items_per_s": {},
        "sequences_per_s": {},
        "parity": {},
        "items": args.items,
        "cores": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        run_id = make_run(root, args.items)
        jobs = import_sequences_data(Path(args.datasets), root)

        # --- single process
        t0 = time.perf_counter()
        single = precompute(root, run_id, "bench", k=K, store=root / "single.sqlite")
        pre_single = time.perf_counter() - t0
        out["precompute_items_per_s"]["single"] = round(args.items / pre_single, 1)
        # one thread: the fair reference for Spark's overhead at local[1], whose one task
        # searches with one thread (spark.task.cpus)
        t0 = time.perf_counter()
        precompute(root, run_id, "bench", k=K, store=root / "single1.sqlite", num_threads=1)
        out["precompute_items_per_s"]["single_1thread"] = round(args.items / (time.perf_counter() - t0), 1)
        seq_single_s, reference = single_sequences(root, jobs, Path(tmp))
        n_seqs = sum(len(v) for v in reference.values())
        out["sequences_per_s"]["single"] = round(n_seqs / seq_single_s, 1)
        out["sequences"] = n_seqs

        parity_pre, parity_seq = True, True
        mismatched = 0
        for cores in (1, 2):
            spark = rspark.get_spark(
                f"local[{cores}]", app_name="bench", conf={"spark.sql.shuffle.partitions": str(4 * cores)}
            )
            spark.range(10).count()  # JVM up; the first job's start-up is not the job's
            t0 = time.perf_counter()
            parquet = Path(tmp) / f"topk-{cores}"
            rspark.spark_precompute(spark, root, run_id, "bench", k=K, out=parquet, partitions=2 * cores)
            secs = time.perf_counter() - t0
            out["precompute_items_per_s"][f"local{cores}"] = round(args.items / secs, 1)
            store = SQLiteStore(root / "single.sqlite")
            table = pd.read_parquet(parquet)
            for row in table.itertuples():
                if list(zip(row.neighbors, row.scores)) != store.get(
                    run_id, single["preset_hash"], row.item_id
                ):
                    mismatched += 1
            parity_pre &= len(table) == args.items
            t0 = time.perf_counter()
            for name, rules in jobs:
                rspark.run_sequences(
                    spark, root / "datasets" / name, Path(tmp) / f"seq-{name}-{cores}", **rules
                )
            secs = time.perf_counter() - t0
            out["sequences_per_s"][f"local{cores}"] = round(n_seqs / secs, 1)
            for name, _ in jobs:
                got = rspark.collect_sequences(pd.read_parquet(Path(tmp) / f"seq-{name}-{cores}"))
                parity_seq &= got == reference[name]
            spark.stop()
        out["parity"] = {"precompute": parity_pre and mismatched == 0, "sequences": bool(parity_seq)}
        out["precompute_lists_differing"] = mismatched
    p = out["precompute_items_per_s"]
    s = out["sequences_per_s"]
    out["ratios"] = {
        "precompute_local2_over_local1": round(p["local2"] / p["local1"], 2),
        "precompute_single_over_local1": round(p["single"] / p["local1"], 2),
        "precompute_single_1thread_over_local1": round(p["single_1thread"] / p["local1"], 2),
        "precompute_single_over_local2": round(p["single"] / p["local2"], 2),
        "sequences_local2_over_local1": round(s["local2"] / s["local1"], 2),
        "sequences_single_over_local1": round(s["single"] / s["local1"], 2),
    }
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
