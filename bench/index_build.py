"""Benchmark: the HNSW build settings (M, ef_construction) on the filtered-search bench's vectors.

Prints ONE JSON line. The vectors are ``bench/filtered_search.py``'s (clustered, d=64; the first
``--n`` rows of its 1M catalogue with ``--large``'s seed). For each setting it builds the index
with :meth:`recsys.index.HnswIndex.build` (the tool's own build: ``--threads`` threads, hnswlib's
random seed 100) and reports:

- the build's wall time and process CPU time (on a shared machine the CPU time is the figure to
  compare; ``cpu_ratio`` is over the first setting's), and the index's size (hnswlib's file size,
  what it holds in memory);
- raw hnswlib's recall@10 of the seed's neighbours (the seed itself dropped, as a similar-items
  list does: the first 10 other labels of one ``knn_query``) against exact search, at each beam of
  ``--efs``;
- the recall@10 of an over-fetch under a random filter keeping half of the items (independent of
  the vectors, like the uncorrelated 50% cases of ``filtered_search.py``): the first 10 eligible
  labels of the same beam against exact filtered search. Those labels lie about 21 deep, where a
  beam finds fewer true neighbours than in its first 10;
- single-query latency of every (setting, beam), one thread, interleaved query by query across
  all of them (the order rotates; at each step each answers another seed), so that the load of
  the machine falls on all alike;
  ``p50_ratio`` is over the first setting's p50 at the first beam.

Build-to-build spread: hnswlib's multi-threaded ``add_items`` inserts in a different order on each
run, so one setting gives a different graph each time (``--repeat`` builds each setting more than
once).

Usage: ``python bench/index_build.py --n 300000 --settings 16:100,16:200,24:200``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.index import HnswIndex  # noqa: E402

K = 10


def make_vectors(n_total: int, d: int, seed: int) -> np.ndarray:
    """``filtered_search.make_data``'s vectors (its catalogue is not needed here)."""
    from filtered_search import make_data

    vec, _ = make_data(n_total, d, seed)
    return vec


def exact_top(unit: np.ndarray, seeds: np.ndarray, depth: int, mask: np.ndarray | None) -> np.ndarray:
    """Exact top ``depth`` rows per seed, the seed dropped (``mask``: eligible rows)."""
    out = np.empty((len(seeds), depth), dtype=np.int64)
    for a in range(0, len(seeds), 64):
        s = seeds[a : a + 64]
        sc = unit[s] @ unit.T
        sc[np.arange(len(s)), s] = -np.inf
        if mask is not None:
            sc[:, ~mask] = -np.inf
        part = np.argpartition(-sc, depth - 1, axis=1)[:, :depth]
        order = np.argsort(-np.take_along_axis(sc, part, axis=1), axis=1)
        out[a : a + 64] = np.take_along_axis(part, order, axis=1)
    return out


def first_eligible(labels: np.ndarray, seed: int, mask: np.ndarray | None, k: int) -> list[int]:
    got = [int(x) for x in labels if x != seed and (mask is None or mask[x])]
    return got[:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300_000, help="items (the first n of the catalogue)")
    ap.add_argument("--catalogue", type=int, default=1_000_000, help="catalogue the rows are taken from")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--settings", default="16:100,16:200,24:200", help="M:ef_construction, comma-separated")
    ap.add_argument("--repeat", type=int, default=1, help="builds per setting")
    ap.add_argument(
        "--indexes",
        default="",
        help="saved index files (HnswIndex.save) over the same n rows to measure as well, comma-separated",
    )
    ap.add_argument(
        "--save",
        default="",
        help="save each built index to this path, '{M}' and '{efc}' filled in (for filtered_search --index-cache)",
    )
    ap.add_argument("--efs", default="64,80,96,128", help="query beams")
    ap.add_argument("--seeds", type=int, default=1000, help="query items (recall and latency)")
    ap.add_argument("--latency-only", action="store_true", help="skip the recall passes (saved indexes)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    t_start = time.perf_counter()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    vec = make_vectors(max(args.n, args.catalogue), args.dim, args.seed)[: args.n].copy()
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    n = len(vec)
    rng = np.random.default_rng(args.seed + 7)
    seeds = rng.choice(n, size=args.seeds, replace=False)
    half = rng.random(n) < 0.5  # a random filter keeping half of the items
    efs = [int(x) for x in args.efs.split(",")]
    settings = [tuple(int(v) for v in s.split(":")) for s in args.settings.split(",") if s]
    if not args.latency_only:
        truth = exact_top(unit, seeds, K, None)
        truth_half = exact_top(unit, seeds, K, half)

    graphs: list[tuple[str, HnswIndex]] = []
    rows: dict[str, dict] = {}
    jobs = [(M, efc, rep, None) for M, efc in settings for rep in range(args.repeat)]
    jobs += [(0, 0, 0, Path(p)) for p in args.indexes.split(",") if p]
    for M, efc, rep, path in jobs:
        if path is None:
            name = f"M{M}_efc{efc}" + (f"_r{rep}" if args.repeat > 1 else "")
            while name in rows:  # a setting listed twice: another build of it
                name += "_again"
            t, c = time.perf_counter(), time.process_time()
            index = HnswIndex.build(vec, M=M, ef_construction=efc, ef=efs[0], num_threads=args.threads)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            built = {"build_wall_s": round(wall, 1), "build_cpu_s": round(cpu, 1)}
            if args.save:
                index.save(args.save.format(M=M, efc=efc))
        else:
            name = path.stem
            index = HnswIndex.load(path, expected_count=n, expected_dim=args.dim)
            built = {"file": str(path)}
        raw = index._index
        entry: dict = {
            "M": index.M,
            "ef_construction": index.ef_construction,
            **built,
            "load_after_build": round(os.getloadavg()[0], 2),
            "index_mb": round(raw.index_file_size() / 2**20, 1),
            "recall_at_10": {},
            "recall_at_10_half_filter": {},
        }
        for ef in efs if not args.latency_only else ():
            raw.set_ef(ef)
            labels, _ = raw.knn_query(unit[seeds], k=ef, num_threads=args.threads)
            hit = hit_half = 0
            for j, s in enumerate(seeds):
                hit += len(set(first_eligible(labels[j], s, None, K)) & set(truth[j].tolist()))
                hit_half += len(set(first_eligible(labels[j], s, half, K)) & set(truth_half[j].tolist()))
            entry["recall_at_10"][ef] = round(hit / (K * len(seeds)), 4)
            entry["recall_at_10_half_filter"][ef] = round(hit_half / (K * len(seeds)), 4)
        raw.set_ef(efs[0])
        rows[name] = entry
        graphs.append((name, index))
        print(json.dumps({name: entry}), file=sys.stderr, flush=True)

    # latency: at each step every (graph, beam) answers one query, each on a different seed (spread
    # evenly over the list: a seed searched again at once finds its part of the vectors in the CPU
    # caches and takes about half the time), the order rotating per step
    combos = [(name, idx, ef) for name, idx in graphs for ef in efs]
    times: dict[tuple[str, int], list[float]] = {(nm, ef): [] for nm, _, ef in combos}
    stride = max(1, len(seeds) // len(combos))
    for rnd in range(2):
        for j in range(len(seeds)):
            r = (j + rnd) % len(combos)
            for c in list(range(r, len(combos))) + list(range(r)):
                nm, idx, ef = combos[c]
                q = unit[seeds[(j + c * stride) % len(seeds)]][None, :]
                idx._index.set_ef(ef)
                t = time.perf_counter()
                idx._index.knn_query(q, k=K + 1, num_threads=1)
                times[(nm, ef)].append(time.perf_counter() - t)
    base = float(np.median(times[(graphs[0][0], efs[0])]))
    for nm, _, ef in combos:
        p50 = float(np.median(times[(nm, ef)]))
        rows[nm].setdefault("p50_us", {})[ef] = round(p50 * 1e6, 1)
        rows[nm].setdefault("p50_ratio", {})[ef] = round(p50 / base, 3)
    first_cpu = rows[graphs[0][0]].get("build_cpu_s")
    for entry in rows.values():
        if first_cpu and "build_cpu_s" in entry:
            entry["cpu_ratio"] = round(entry["build_cpu_s"] / first_cpu, 2)
    print(
        json.dumps(
            {
                "bench": "index_build",
                "n": n,
                "dim": args.dim,
                "k": K,
                "seeds": len(seeds),
                "threads": args.threads,
                "load_avg_1m_start": load_start,
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "settings": rows,
                "runtime_s": round(time.perf_counter() - t_start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
