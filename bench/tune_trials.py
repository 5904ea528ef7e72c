"""Tuned Prod2Vec's test HR@20 against the number of tuning trials; prints ONE JSON line.

Each dataset is split as in ``bench/quality.py`` (time split, the latest 10% of sequences
are the test part). :func:`recsys.tuning.tune` carves its validation split from the
training part only and runs ``--trials`` trials (counted, the wall-clock budget out of the
way, or ``--budget`` seconds with ``--trials 0``), for each TPE seed of ``--seeds``. For
every prefix length of ``--at`` (e.g. 5, 10, 20, 30) the best trial **on validation**
among the first N is refitted on the whole training part and scored once on the test part
(every position, the run's fallback chain completing the lists, 1,500 sampled cases as
``--quick``). The baselines (co-occurrence, item_knn, gensim's defaults) are scored on
the same cases. Nothing here chooses anything on the test part: it only reads what each
prefix's validation choice scores.

The script runs against any tree's ``recsys.tuning`` (main's exported tree too): it
passes only the arguments main's ``tune`` takes.

Usage: ``python bench/tune_trials.py --only rees46 demo instacart --trials 30 --at 5 10 20 30
--seeds 0 1`` or ``--trials 0 --budget 60`` (wall clock, as ``bench/quality.py --quick``).
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

K = 20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", default=["rees46", "demo", "instacart"])
    ap.add_argument("--trials", type=int, default=30, help="trials counted (0: the budget alone)")
    ap.add_argument("--budget", type=float, default=100000.0, help="wall-clock budget, seconds")
    ap.add_argument("--at", nargs="+", type=int, default=None, help="prefix lengths scored on test")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--max-cases", type=int, default=1500)
    ap.add_argument("--baselines", action="store_true", help="also score cooccurrence, item_knn, defaults")
    ap.add_argument("--sample", type=float, default=None, help="fit trials on this share of sequences")
    ap.add_argument(
        "--no-fixed", action="store_true", help="leave prod2vec_fixed out (= the start point's refit)"
    )
    ap.add_argument("--dump-trials", action="store_true", help="every trial's params and validation value")
    args = ap.parse_args(argv)

    import bench.quality as q
    from recsys.evaluation import build_session_cases
    from recsys.models import make_model
    from recsys.pipeline import fit_fallback
    from recsys.tuning import tune

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    started = time.perf_counter()
    load_before = os.getloadavg()
    data, skipped = q.load_datasets(args.only, True, 2000)
    out: dict[str, Any] = {}
    for name, ds in data.items():
        train, test, _ = q.split_of(ds)
        cases = build_session_cases(test, "every_position", max_cases=args.max_cases)
        chain = fit_fallback(train, ds.catalog)
        entry: dict[str, Any] = {"n_cases": int(len(cases[1])), "runs": []}
        if args.baselines:
            base = {}
            keys = ("cooccurrence", "item_knn", "prod2vec_defaults", "prod2vec_fixed")
            for key in keys[:3] if args.no_fixed else keys:
                family, params = q.variants(60, True)[key]
                m = make_model(family, **params).fit(train)
                base[key] = q.score(m, test, cases, ds.catalog, fallback=chain)[f"hr@{K}"]
            entry["baselines"] = base
        refits: dict[str, float] = {}
        for seed in args.seeds:
            t0 = time.perf_counter()
            info = tune(
                "prod2vec",
                train,
                budget_s=args.budget,
                n_trials=args.trials or None,
                k=K,
                max_cases=args.max_cases,
                base_params={"workers": 2},
                seed=seed,
                **({"sample": args.sample} if args.sample else {}),
            )
            tune_s = time.perf_counter() - t0
            trials = [t for t in info["trials"] if t["state"] == "complete"]
            run: dict[str, Any] = {
                "seed": seed,
                "n_trials": info["n_trials"],
                "tune_s": round(tune_s, 1),
                "notes": info.get("notes"),
                "floor": info.get("baselines"),
                "start_value": info.get("start_value"),
                "at": {},
            }
            prefixes = sorted(set(args.at or [len(info["trials"])]))
            for n in prefixes:
                first = [t for t in trials if t["number"] < n]
                if not first or n > len(info["trials"]):
                    continue
                best = max(first, key=lambda t: (t["value"], -t["number"]))
                key = json.dumps(best["params"], sort_keys=True, default=str)
                if key not in refits:
                    m = make_model("prod2vec", workers=2, **best["params"]).fit(train)
                    refits[key] = q.score(m, test, cases, ds.catalog, fallback=chain)[f"hr@{K}"]
                run["at"][n] = {
                    "validation": round(best["value"], 4),
                    "best_trial": best["number"],
                    "test_hr@20": refits[key],
                }
            if args.dump_trials:
                run["trials"] = [
                    {"n": t["number"], "v": round(t["value"], 4), "s": t["seconds"], "p": t["params"]}
                    for t in trials
                ]
            entry["runs"].append(run)
            print(f"{name} seed {seed}: {run['at']} ({tune_s:.0f}s)", file=sys.stderr, flush=True)
        out[name] = entry
    result = {
        "datasets": out,
        "skipped": skipped,
        "load_average": {
            "start": [round(x, 2) for x in load_before],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "sample": args.sample,
            "trials": args.trials,
            "budget_s": args.budget,
            "seeds": args.seeds,
            "at": args.at,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
