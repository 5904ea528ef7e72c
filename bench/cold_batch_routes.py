"""Benchmark: the routes a never-seen 10% uncorrelated filter's 1,000-seed batch could take (issue 18).

Prints ONE JSON line. The data, graph and seeds of ``bench/filtered_search.py``'s batch part
(its ``make_data``, ``make_uncorrelated`` and seed draw; the saved graph of ``--index-cache``,
read only): the brand allow-list keeping 10% of the catalogue, assigned at random, and the
same 1,000 seeds. Each route answers the whole batch (k = 10, the seed excluded), 2 threads,
once per round, the rounds alternating the routes' order; per route the median wall and CPU
time (the process's), the ratio of raw hnswlib's unfiltered batch (k = 10, ef 64) over the
route's time per round (median: the bench's ``ratio``), recall@10 against exact filtered
search, and the rows that needed the exact fallback.

Routes:

* ``raw unfiltered``: raw hnswlib's batched ``knn_query`` without a filter (the bench's raw);
* ``raw filtered``: the same with ``filter=`` the mask's ``__getitem__`` (hnswlib's own
  filtered search, a Python callback per visited node);
* ``overfetch F``: one batched unfiltered ``knn_query`` of F labels, the first 10 eligible
  ones kept, short rows searched exactly over the filter's dense block (``F`` = 212 is
  ``fetch_for``'s size at 1M, what ``search_many`` does today);
* ``twostage F1/F2``: the short rows of a fetch of F1 fetched again with F2, then exact;
* ``exact all``: every seed exactly over the dense block (``exact_block_many``);
* ``filter ef E``: hnswlib's filtered search with a callback over a Python list, ef = E
  (k = 11), short rows exact; ``1thr``: on one thread (no GIL hand-overs);
* ``compiled ef E`` (``--compiled``): what a compiled predicate would cost: a private copy of
  the graph with every ineligible item marked deleted (hnswlib skips deleted nodes exactly as
  it skips filtered ones, in C and without the GIL); the same search at ef = E.

``--large``: 1M items (``/tmp/s29-L-M16-efc200.bin``), else 100k (``/tmp/s29_fs_full200.bin``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.index import HnswIndex  # noqa: E402
from recsys.search.batch import exact_block_many, fetch_for, padded_take  # noqa: E402

# filtered_search.py loaded from its file, not by putting bench/ on sys.path (bench/umap.py would
# shadow umap-learn)
_spec = importlib.util.spec_from_file_location(
    "_bench_filtered_search", Path(__file__).with_name("filtered_search.py")
)
fsb = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fsb
_spec.loader.exec_module(fsb)

K, NEED, THREADS = 10, 11, 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", action="store_true", help="1M items (else 100k)")
    ap.add_argument("--index-cache", default=None, help="the saved graph (read only)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--routes", default="", help="comma-separated substrings of the routes to run")
    ap.add_argument("--compiled", action="store_true", help="also the deleted-marks proxy (a graph copy)")
    args = ap.parse_args()
    n = 1_000_000 if args.large else 100_000
    cache = args.index_cache or ("/tmp/s29-L-M16-efc200.bin" if args.large else "/tmp/s29_fs_full200.bin")
    t0 = time.perf_counter()
    vec, catalog = fsb.make_data(n, 64, 0)
    raw = HnswIndex.load(cache, expected_count=n, expected_dim=64)._index
    raw.set_ef(64)
    brand_num = fsb.make_uncorrelated(catalog, 0)["brand"].str[2:].astype(int).to_numpy()
    picks = np.random.default_rng(1).choice(n, size=500 + 20 + 1000, replace=False)
    seeds = picks[520:]  # filtered_search.py's batch seeds (its defaults)
    unit = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    q = np.ascontiguousarray(unit[seeds])
    mask = brand_num < 100  # by vector row: filtered_search.py's brand_cfg(0.1)
    elig = np.flatnonzero(mask)
    block = padded_take(unit, elig)
    j = np.searchsorted(elig, seeds)
    inside = (j < len(elig)) & (elig[np.minimum(j, len(elig) - 1)] == seeds)
    seed_col = np.where(inside, j, -1)
    truth = elig[exact_block_many(q, block, len(elig), K, seed_col, THREADS)[0]]

    def recall(rows: np.ndarray) -> float:
        hit = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(rows, truth))
        return hit / truth.size

    def first_k(labels: np.ndarray, rows_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = mask[labels] & (labels != seeds[rows_of][:, None])
        rank = np.cumsum(ok, axis=1) - 1
        r, c = np.nonzero(ok & (rank < K))
        out = np.full((len(labels), K), -1, dtype=np.int64)
        out[r, rank[r, c]] = labels[r, c]
        return out, np.minimum(rank[:, -1] + 1, K)

    def fallback(out: np.ndarray, cnt: np.ndarray) -> int:
        short = np.flatnonzero(cnt < K)
        if len(short):
            c_, _ = exact_block_many(q[short], block, len(elig), K, seed_col[short], THREADS)
            out[short] = elig[c_]
        return len(short)

    every = np.arange(len(seeds))

    def overfetch(fetch: int):
        def go():
            lab, _ = raw.knn_query(q, k=fetch, num_threads=THREADS)
            out, cnt = first_k(lab.astype(np.int64), every)
            return out, fallback(out, cnt)

        return go

    def twostage(f1: int, f2: int):
        def go():
            lab, _ = raw.knn_query(q, k=f1, num_threads=THREADS)
            out, cnt = first_k(lab.astype(np.int64), every)
            short = np.flatnonzero(cnt < K)
            if len(short):
                lab2, _ = raw.knn_query(q[short], k=f2, num_threads=THREADS)
                out[short], cnt[short] = first_k(lab2.astype(np.int64), short)
            return out, fallback(out, cnt)

        return go

    def exact_all():
        return elig[exact_block_many(q, block, len(elig), K, seed_col, THREADS)[0]], 0

    def filtered(index, ef: int, pred=None, threads: int = THREADS):
        def go():
            index.set_ef(ef)
            try:
                lab, _ = index.knn_query(q, k=NEED, num_threads=threads, filter=pred)
                out, cnt = first_k(lab.astype(np.int64), every)
            except RuntimeError:  # some query found fewer than k: all exact
                out, cnt = np.full((len(q), K), -1, dtype=np.int64), np.zeros(len(q), dtype=np.int64)
            finally:
                index.set_ef(64)
            return out, fallback(out, cnt)

        return go

    def raw_unfiltered():
        return raw.knn_query(q, k=K, num_threads=THREADS)[0], 0

    def raw_filtered():
        return raw.knn_query(q, k=K, num_threads=THREADS, filter=mask.__getitem__)[0], 0

    allowed = mask.tolist()
    routes = {
        "raw unfiltered": raw_unfiltered,
        "raw filtered": raw_filtered,
        "overfetch 212": overfetch(fetch_for(NEED, len(elig) / n, n)),
        "overfetch 176": overfetch(176),
        "overfetch 160": overfetch(160),
        "overfetch 144": overfetch(144),
        "overfetch 128": overfetch(128),
        "twostage 128/512": twostage(128, 512),
        "exact all": exact_all,
        "filter ef 11": filtered(raw, 11, allowed.__getitem__),
        "filter ef 16": filtered(raw, 16, allowed.__getitem__),
        "filter ef 11 1thr": filtered(raw, 11, allowed.__getitem__, threads=1),
    }
    marked_s = None
    if args.compiled:
        copy = HnswIndex.load(cache, expected_count=n, expected_dim=64)._index
        t = time.perf_counter()
        for lab in np.flatnonzero(~mask).tolist():
            copy.mark_deleted(lab)
        marked_s = round(time.perf_counter() - t, 2)
        routes["compiled ef 11"] = filtered(copy, 11)
        routes["compiled ef 16"] = filtered(copy, 16)
    if args.routes:
        keep = args.routes.split(",")
        routes = {k: v for k, v in routes.items() if k == "raw unfiltered" or any(s in k for s in keep)}
    setup_s = round(time.perf_counter() - t0, 1)
    load0 = os.getloadavg()[0]
    wall: dict[str, list[float]] = {k: [] for k in routes}
    cpu: dict[str, list[float]] = {k: [] for k in routes}
    info: dict[str, dict] = {}
    for r in range(args.rounds):
        for name in list(routes) if r % 2 == 0 else list(routes)[::-1]:
            c, t = time.process_time(), time.perf_counter()
            out, short = routes[name]()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            if r == 0:
                info[name] = {"recall_at_10": None if name.startswith("raw") else round(recall(out), 4)}
                info[name]["exact_fallback_rows"] = short
    base = np.array(wall["raw unfiltered"])
    res = {
        "n": n,
        "eligible": len(elig),
        "seeds": len(seeds),
        "threads": THREADS,
        "rounds": args.rounds,
        "load": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "setup_s": setup_s,
        "marked_s": marked_s,
        "routes": {
            name: {
                "ms": round(float(np.median(wall[name])) * 1e3, 1),
                "cpu_ms": round(float(np.median(cpu[name])) * 1e3, 1),
                "ratio": round(float(np.median(base / np.array(wall[name]))), 3),
                **info[name],
            }
            for name in routes
        },
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
