"""Benchmark: importing vectors with an hnswlib index built elsewhere, against just loading them.

Target (issue 15): importing N x d float32 vectors (.npy + ids) with an hnswlib index file
completes within 2x the time of ``np.load`` + ``hnswlib.Index.load_index`` of the same files.

Setup (not timed): seeded random vectors, ids, a catalogue of the same ids stored as a
dataset, and an index built with raw hnswlib and ``save_index``. Then, alternately (so the
machine's load hits both alike), ``--repeats`` times each:

- baseline: ``np.load(vectors.npy)`` + ``hnswlib.Index(...).load_index(index.bin)``;
- import: :func:`recsys.external.import_vectors`, ``evaluate=False`` (no interactions anyway):
  the vectors, ids and index are copied by the kernel (``copy_file_range``) into a hidden
  staging folder of the data directory and hashed there, the vectors and ids mapped read-only
  from those copies, hnswlib loads the index in a thread from the start; then the validation
  against the catalogue, the index check (header, labels, stored vectors, 20 sampled queries
  against exact search) and the run (the staged files renamed into it, the index with RecSys
  Lab's checked header). The run is deleted (untimed) after each repeat.

The files are read once before timing, so both sides read from the page cache. Prints ONE
JSON line: medians, the ratio (import / baseline; also of the fastest repeats, and of the CPU
seconds, which the machine's load disturbs less), the import's own breakdown, whether the
index was used as is, the load average and the core count.

Usage: ``python bench/import_vectors.py [--n 1000000] [--dim 128] [--repeats 3] [--quick]
[--cache /tmp/bench-import-cache]`` (``--cache`` keeps the vectors and the index for the next run;
building the 1M index with M=16, ef_construction=100 takes tens of CPU-minutes, run it with
``nice`` on a shared machine).

``--dataset rees46|demo`` (issue 13): a dataset with events instead, and the vectors an outside
team would bring: gensim's Word2Vec with its defaults (``min_count=5``, so rare items get no
vector, as in s41-w's walk), 64 dimensions, seeded, trained on every session, with an hnswlib
index of them. REES46 is read from ``--shared`` (``../shared/datasets``, never copied into the
repository), the demo is ``generate_demo()``. Timed alternately as above, plus the import made
while another imported run of the dataset exists (its fallback chain reused by content hash);
prints the import's breakdown (``fallback_s``: the chain's fit) and the shares of the catalogue
served by the vectors, the fallback chain and nothing. Run the same file from a checkout of
another commit (``--cache`` shared, so both import the very same files) to pair the import's
cost with that code's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.data.schema import Dataset, save_dataset  # noqa: E402
from recsys.external import import_vectors  # noqa: E402
from recsys.registry import Registry  # noqa: E402

FILES = ("vectors.npy", "ids.npy", "index.bin")


def setup(folder: Path, src: Path, n: int, dim: int, M: int, ef_construction: int) -> dict[str, float]:
    """The catalogue (in ``folder/data``) and, unless ``src`` holds them from an earlier run
    (``--cache``), the vectors, ids and index files (in ``src``)."""
    import hnswlib

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    ids = np.char.add("sku", np.arange(n).astype(str))
    cached = all((src / f).is_file() for f in FILES)
    if not cached:
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        np.save(src / "vectors.npy", vectors)
        np.save(src / "ids.npy", ids)
    catalog = pd.DataFrame(
        {
            "item_id": ids,
            "title": ids,
            "category": "c",
            "brand": "b",
            "gender": "",
            "price": 1.0,
            "adult": False,
            "description": "",
            "image_url": "",
        }
    )
    empty = pd.DataFrame(
        {
            "sequence_id": pd.Series([], dtype=str),
            "user_id": pd.Series([], dtype=str),
            "item_id": pd.Series([], dtype=str),
            "timestamp": pd.Series([], dtype="datetime64[ns]"),
            "event_type": pd.Series([], dtype=str),
            "quantity": pd.Series([], dtype="int64"),
            "position": pd.Series([], dtype="int64"),
        }
    )
    save_dataset(Dataset(name="bench", catalog=catalog, interactions=empty), folder / "data")
    t1 = time.perf_counter()
    if cached:
        return {"setup_data_s": round(t1 - t0, 2), "setup_index": "cached"}
    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=n, M=M, ef_construction=ef_construction, random_seed=1)
    index.add_items(vectors, np.arange(n), num_threads=-1)
    # written under a temporary name and renamed, so an interrupted build leaves no cache
    index.save_index(str(src / "index.bin.part"))
    os.replace(src / "index.bin.part", src / "index.bin")
    return {"setup_data_s": round(t1 - t0, 2), "setup_index_build_s": round(time.perf_counter() - t1, 2)}


def setup_dataset(folder: Path, src: Path, which: str, shared: Path) -> dict[str, Any]:
    """A dataset with events (``folder/data``) and, unless ``src`` holds them (``--cache``), the
    outside team's Word2Vec vectors, their ids and an hnswlib index (in ``src``)."""
    import hnswlib

    from recsys.data import generate_demo, import_rees46

    t0 = time.perf_counter()
    ds = import_rees46(shared / "rees46_sample" / "events.csv") if which == "rees46" else generate_demo()
    ds.name = "bench"
    save_dataset(ds, folder / "data")
    figures: dict[str, Any] = {
        "setup_data_s": round(time.perf_counter() - t0, 2),
        "catalog_items": len(ds.catalog),
        "events": len(ds.interactions),
    }
    if all((src / f).is_file() for f in FILES):
        return {**figures, "setup_index": "cached"}
    from gensim.models import Word2Vec

    t1 = time.perf_counter()
    sessions = ds.interactions.groupby("sequence_id", sort=False)["item_id"].agg(list).tolist()
    w2v = Word2Vec(sessions, vector_size=64, seed=1, workers=1)  # gensim's defaults otherwise
    ids = np.asarray(w2v.wv.index_to_key, dtype=str)
    vectors = np.ascontiguousarray(w2v.wv.vectors, dtype=np.float32)
    np.save(src / "vectors.npy", vectors)
    np.save(src / "ids.npy", ids)
    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    index.init_index(max_elements=len(ids), M=16, ef_construction=100, random_seed=1)
    index.add_items(vectors, np.arange(len(ids)), num_threads=1)
    index.save_index(str(src / "index.bin.part"))
    os.replace(src / "index.bin.part", src / "index.bin")
    return {**figures, "setup_vectors_s": round(time.perf_counter() - t1, 2)}


def folders(args: argparse.Namespace, cached: str) -> tuple[Path, Path]:
    """The bench's temporary folder, and where the input files are: ``--cache``'s subfolder
    ``cached`` (kept for the next run), or the temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="bench-import-", dir=args.workdir))
    src = folder
    if args.cache:
        src = Path(args.cache) / cached
        src.mkdir(parents=True, exist_ok=True)
    return folder, src


def machine() -> dict[str, Any]:
    """The load average, core count and Python of the figures' machine."""
    return {
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def baseline(src: Path, dim: int) -> tuple[float, float]:
    import hnswlib

    c0, t0 = time.process_time(), time.perf_counter()
    vectors = np.load(src / "vectors.npy")
    index = hnswlib.Index(space="cosine", dim=dim)
    index.load_index(str(src / "index.bin"), max_elements=vectors.shape[0])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    del index, vectors
    return elapsed, cpu


def one_import(folder: Path, src: Path, keep: bool = False) -> tuple[float, float, dict]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = import_vectors(
        "bench",
        "bench import",
        src / "vectors.npy",
        ids=src / "ids.npy",
        index=src / "index.bin",
        evaluate=False,
        root=folder / "data",
    )
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    run = out["run"]
    if not keep:
        Registry(folder / "data").delete(run["run_id"])
    info = {
        "run_id": run["run_id"],
        "served": run.get("served"),
        "fallback": (run.get("artifacts") or {}).get("fallback"),
        "timings": run["timings"],
        "index_status": out["report"]["index"]["status"],
        "index_reason": out["report"]["index"]["reason"],
        "recall@10": out["report"]["index"].get("recall@10"),
    }
    return elapsed, cpu, info


def main_dataset(args: argparse.Namespace) -> None:
    """``--dataset``: the import of an outside team's vectors for a dataset with events,
    alone and beside another imported run of it (whose chain it reuses)."""
    folder, src = folders(args, f"dataset_{args.dataset}")
    try:
        figures = setup_dataset(folder, src, args.dataset, Path(args.shared))
        for f in FILES:
            (src / f).read_bytes()  # into the page cache for every side
        dim = int(np.load(src / "vectors.npy", mmap_mode="r").shape[1])
        times: dict[str, list[float]] = {"baseline": [], "import": [], "import_beside_another": []}
        infos: dict[str, list[dict]] = {"import": [], "import_beside_another": []}
        for _ in range(args.repeats):
            times["baseline"].append(baseline(src, dim)[0])
            elapsed, _cpu, info = one_import(folder, src)
            times["import"].append(elapsed)
            infos["import"].append(info)
            _e, _c, anchor = one_import(folder, src, keep=True)  # untimed: the other run
            elapsed, _cpu, info = one_import(folder, src)
            Registry(folder / "data").delete(anchor["run_id"])
            times["import_beside_another"].append(elapsed)
            infos["import_beside_another"].append(info)
        med = {k: statistics.median(v) for k, v in times.items()}
        mid = len(infos["import"]) // 2
        out = {
            "bench": "import_vectors",
            "dataset": args.dataset,
            "rows": int(np.load(src / "ids.npy").shape[0]),
            "dim": dim,
            "repeats": args.repeats,
            "baseline_np_load_plus_load_index_s": round(med["baseline"], 4),
            "import_s": round(med["import"], 3),
            "import_beside_another_s": round(med["import_beside_another"], 3),
            "ratio_import_to_baseline": round(med["import"] / med["baseline"], 1),
            "import_s_all": [round(x, 3) for x in times["import"]],
            "import_beside_another_s_all": [round(x, 3) for x in times["import_beside_another"]],
            "import_breakdown_s": infos["import"][mid]["timings"],
            "beside_another_breakdown_s": infos["import_beside_another"][mid]["timings"],
            "fallback": infos["import_beside_another"][mid]["fallback"],
            "served": infos["import"][mid]["served"],
            "index_status": infos["import"][0]["index_status"],
            **figures,
            **machine(),
        }
        print(json.dumps(out))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="n=50k, 2 repeats")
    parser.add_argument("--workdir", default=None, help="where to write the files (default: a temp folder)")
    parser.add_argument(
        "--cache",
        default=None,
        help="keep the vectors, ids and index in this folder (one subfolder per size) and reuse "
        "them next time: building a 1M index takes tens of minutes",
    )
    parser.add_argument(
        "--dataset",
        choices=["rees46", "demo"],
        default=None,
        help="a dataset with events and an outside team's Word2Vec vectors, instead of random vectors",
    )
    parser.add_argument(
        "--shared",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"),
        help="the shared datasets folder (REES46)",
    )
    args = parser.parse_args()
    if args.dataset:
        os.environ.setdefault("RECSYS_MLFLOW", "off")
        return main_dataset(args)
    if args.quick:
        args.n, args.repeats = 50_000, 2
    os.environ.setdefault("RECSYS_MLFLOW", "off")  # time the import, not the tracking store
    folder, src = folders(args, f"n{args.n}_d{args.dim}_M{args.M}_ef{args.ef_construction}")
    try:
        figures = setup(folder, src, args.n, args.dim, args.M, args.ef_construction)
        for f in FILES:  # into the page cache for both sides
            with open(src / f, "rb") as fh:
                while fh.read(1 << 26):
                    pass
        base_times, import_times, base_cpu, import_cpu, infos = [], [], [], [], []
        for _ in range(args.repeats):
            elapsed, cpu = baseline(src, args.dim)
            base_times.append(elapsed)
            base_cpu.append(cpu)
            elapsed, cpu, info = one_import(folder, src)
            import_times.append(elapsed)
            import_cpu.append(cpu)
            infos.append(info)
        base, imp = statistics.median(base_times), statistics.median(import_times)
        out = {
            "bench": "import_vectors",
            "n": args.n,
            "dim": args.dim,
            "M": args.M,
            "repeats": args.repeats,
            "baseline_np_load_plus_load_index_s": round(base, 3),
            "import_s": round(imp, 3),
            "ratio_import_to_baseline": round(imp / base, 2),
            "target_ratio": 2.0,
            # on a loaded machine the fastest repeat of each side is the least disturbed one,
            # and CPU seconds (all threads) count the work whatever the scheduler did
            "ratio_of_fastest": round(min(import_times) / min(base_times), 2),
            "cpu_ratio_median": round(statistics.median(import_cpu) / statistics.median(base_cpu), 2),
            "baseline_s_all": [round(x, 3) for x in base_times],
            "import_s_all": [round(x, 3) for x in import_times],
            "import_breakdown_s": infos[len(infos) // 2]["timings"],
            "index_status": infos[0]["index_status"],
            "index_recall@10_sampled": infos[0]["recall@10"],
            "files_mb": {f: round((src / f).stat().st_size / 2**20, 1) for f in FILES},
            **figures,
            **machine(),
        }
        print(json.dumps(out))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
