"""Benchmark: a new filter's first query, repeated over fresh filters of each kind (issue 18).

Prints ONE JSON line. ``bench/filtered_search.py`` times one first query per case (one config,
one seed): one sample. Here each kind of filter (a brand allow-list, a price band, a brand+price
pair at several shares, a category with a brand list, the adult flag with one, on that bench's
uncorrelated catalogue; a category with the seed's price band on its correlated one) is set
``--trials`` times with a config never seen before (other brands drawn, the band moved), on
searchers and catalogues as that bench's (``--evict``: after its cache eviction). Per trial: one warm query of the unfiltered config (a query in flight before
the change), then the new config's first query and its second, timed in the query thread's CPU
time (``time.thread_time``: on the shared machine wall time is mostly the wait for a core) and in
wall time; then its next 18 queries and the background builds they queue, and 40 warm queries.

Per kind: the median and the worst first query over the trials, in microseconds and over the
warm CPU p50 (``first_cpu_ratio_median``, ``first_cpu_ratio_worst``), the same in wall time
over the warm wall p50, the second query's median, and the plans of the first queries.

Usage: ``python bench/first_queries.py [--large] [--index-cache PATH] [--trials 15] [--kinds a,b]``
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from filtered_search import evict_caches, make_data, make_uncorrelated  # noqa: E402

from recsys.filters import FilterConfig  # noqa: E402
from recsys.index import HnswIndex  # noqa: E402
from recsys.search import FilteredSearcher  # noqa: E402

K = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", action="store_true", help="1M items")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--kinds", default="", help="comma-separated kinds (default: all)")
    ap.add_argument("--index-cache", default=None, help="a saved index of the same data (read only here)")
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--evict",
        action="store_true",
        help="a 64 MB pass (filtered_search.py's evict_caches) right before each first query, as"
        " the case before leaves the caches in that bench",
    )
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    blas = threadpool_limits(1, user_api="blas")  # noqa: F841 (as filtered_search.py)
    n = args.n or (1_000_000 if args.large else 100_000)
    load_start = round(os.getloadavg()[0], 2)
    vec, catalog = make_data(n, args.dim, args.seed)
    if args.index_cache and Path(args.index_cache).exists():
        index = HnswIndex.load(args.index_cache, expected_count=n, expected_dim=args.dim)
        index._index.set_ef(args.ef)
        index.ef = args.ef
    else:
        index = HnswIndex.build(vec, M=16, ef_construction=100, ef=args.ef)
    ids = catalog["item_id"].to_numpy()
    ucat = make_uncorrelated(catalog, args.seed)
    unc = FilteredSearcher(vec, ids, ucat, index=index)
    uprice = ucat["price"].to_numpy()
    rng = np.random.default_rng(args.seed + 1)
    picks = rng.choice(n, size=240 + 20 * args.trials, replace=False)
    # the catalogue over the vectors' clusters (filtered_search.py's correlated cases) and the
    # uncorrelated one with half its items adult (its flag cases)
    plain = unc
    corr = FilteredSearcher(vec, ids, catalog, index=index)
    adult = np.random.default_rng(args.seed + 202).random(n) >= 0.5
    flag = FilteredSearcher(vec, ids, ucat.assign(adult=adult), index=index)
    for s_ in (unc, corr, flag):
        s_.wait_background()
        for i in picks[:200]:  # the unfiltered config in use, its over-fetch learned
            s_.search(ids[i], FilterConfig(), K)
        s_.wait_background()

    def brand(share, r):
        nb = max(1, round(1000 * share))
        return {"brands_allow": [f"ub{b}" for b in r.choice(1000, nb, replace=False)]}

    def price(share, r):
        c = r.uniform(0.3, 0.7)
        lo, hi = np.quantile(uprice, [max(0.0, c - share / 2), min(1.0, c + share / 2)])
        return {"price_min": float(lo), "price_max": float(hi)}

    def band(level, r):  # the seed's price band, its upper ratio drawn: a config never seen
        return {
            "same_category": True,
            "category_level": level,
            "price_ratio_min": 0.5,
            "price_ratio_max": float(r.uniform(1.8, 2.2)),
        }

    kinds = {
        "brand allow-list 50%": lambda r: brand(0.5, r),
        "brand allow-list 10%": lambda r: brand(0.1, r),
        "brand allow-list 1%": lambda r: brand(0.01, r),
        "brand allow-list 0.1%": lambda r: brand(0.001, r),
        "price band 10%": lambda r: price(0.1, r),
        "price band 1%": lambda r: price(0.01, r),
        "price band 0.1%": lambda r: price(0.001, r),
        "pair brand+price 10%": lambda r: {**brand(0.316, r), **price(0.316, r)},
        "pair brand+price 1%": lambda r: {**brand(0.1, r), **price(0.1, r)},
        "pair category+brand 1%": lambda r: {"same_category": True, "category_level": 1, **brand(0.1, r)},
        "pair flag+brand 10%": lambda r: {"exclude_adult": True, **brand(0.2, r)},
        "correlated category 50% + price band": lambda r: band(0, r),
        "correlated category 10% + price band": lambda r: band(1, r),
        "correlated category 1% + price band": lambda r: band(2, r),
        "correlated category 0.1% + price band": lambda r: band(3, r),
    }
    searcher_of = {"pair flag+brand 10%": flag}  # the others: unc, or corr for the correlated kinds
    only = [k for k in args.kinds.split(",") if k]
    out = {}
    for ki, (kind, make) in enumerate(kinds.items()):
        if only and not any(o in kind for o in only):
            continue
        r = np.random.default_rng(args.seed + 1000 + ki)
        unc = searcher_of.get(kind, corr if kind.startswith("correlated") else plain)
        first, first_w, second, warm, warm_w = [], [], [], [], []
        plans: dict[str, int] = {}
        for t in range(args.trials):
            cfg = FilterConfig(**make(r))  # a config never seen (validated before the query, as in the app)
            seeds = picks[240 + 20 * t : 260 + 20 * t]
            unc.search(ids[picks[200 + t % 40]], FilterConfig(), K)  # the query before the change
            if args.evict:
                evict_caches()
            w, c = time.perf_counter(), time.thread_time()
            res = unc.search(ids[seeds[0]], cfg, K)
            first.append(time.thread_time() - c)
            first_w.append(time.perf_counter() - w)
            plans[res.plan] = plans.get(res.plan, 0) + 1
            c = time.thread_time()
            unc.search(ids[seeds[1]], cfg, K)
            second.append(time.thread_time() - c)
            for i in seeds[2:]:
                unc.search(ids[i], cfg, K)
            unc.wait_background()
            for i in picks[:40]:
                w, c = time.perf_counter(), time.thread_time()
                unc.search(ids[i], cfg, K)
                warm.append(time.thread_time() - c)
                warm_w.append(time.perf_counter() - w)
        wc, ww = float(np.median(warm)), float(np.median(warm_w))
        out[kind] = {
            "first_cpu_us_median": round(float(np.median(first)) * 1e6, 1),
            "first_cpu_us_worst": round(max(first) * 1e6, 1),
            "second_cpu_us_median": round(float(np.median(second)) * 1e6, 1),
            "warm_cpu_p50_us": round(wc * 1e6, 1),
            "first_cpu_ratio_median": round(float(np.median(first)) / wc, 2),
            "first_cpu_ratio_worst": round(max(first) / wc, 2),
            "warm_wall_p50_us": round(ww * 1e6, 1),
            "first_wall_ratio_median": round(float(np.median(first_w)) / ww, 2),
            "first_wall_ratio_worst": round(max(first_w) / ww, 2),
            "first_plans": plans,
        }
    print(
        json.dumps(
            {
                "bench": "first_queries",
                "n": n,
                "trials": args.trials,
                "evict": args.evict,
                "load_avg_1m_start": load_start,
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "kinds": out,
            }
        )
    )


if __name__ == "__main__":
    main()
