"""The validation score of a recommended Prod2Vec run two ways; prints ONE JSON line.

Since s34-t a run with the recommended settings (``vectors="auto"``) scores its validation
split with the fit that chose its vector space (``Prod2Vec.validation_fit_``: the space picked
on that very split), where it used to fit the earlier 90% again with ``vectors="auto"`` (the
space chosen on a split of that 90%, so the validation split scored a choice made without it).
``bench/quality.py`` still scores the second way (its own validation fits), so its
"recommended" variant is not moved by that change; the Overview's best variant is. Per
dataset (as ``bench/quality.py`` splits it, every-position cases, the lists completed by the
fallback chain): Prod2Vec's / Meta-Prod2Vec's validation HR@20 both ways, the space each way
chose, and the test HR@20 of the run.

Usage: ``python bench/validation_reuse.py --only demo [--max-cases 1500] [--family prod2vec]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quality as q  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", default=["demo"])
    ap.add_argument("--max-cases", type=int, default=1500)
    ap.add_argument("--demo-items", type=int, default=2000)
    ap.add_argument("--family", nargs="+", default=["prod2vec", "meta_prod2vec"])
    args = ap.parse_args(argv)
    os.environ.setdefault("RECSYS_MLFLOW", "off")
    from recsys.evaluation import build_session_cases
    from recsys.models import make_model
    from recsys.pipeline import fit_fallback

    started, load_before = time.perf_counter(), os.getloadavg()
    data, skipped = q.load_datasets(args.only, True, args.demo_items)
    out: dict = {"datasets": {}, "skipped": skipped}
    for name, ds in data.items():
        train, test, how = q.split_of(ds)
        fit_part, valid, _ = q.split_of(train)
        vcases = build_session_cases(valid, "every_position", max_cases=args.max_cases, seed=1)
        tcases = build_session_cases(test, "every_position", max_cases=args.max_cases)
        chain_v, chain_t = fit_fallback(fit_part, ds.catalog), fit_fallback(train, ds.catalog)
        entry: dict = {"split": how, "validation_cases": int(len(vcases[1]))}
        for family in args.family:
            params = {"workers": 2}
            run = make_model(family, **params).fit(train)  # the run: its choice on (fit_part, valid)
            held = run.validation_fit_
            reused = q.score(held["model"], valid, vcases, ds.catalog, fallback=chain_v)
            nested = make_model(family, **params).fit(fit_part)  # the validation fit before s34-t
            fresh = q.score(nested, valid, vcases, ds.catalog, fallback=chain_v)
            entry[family] = {
                "chosen_by_run": run.choice_["chosen"],
                "run_choice_validation": run.choice_.get("validation"),
                "validation_hr@20_reused": reused["hr@20"],
                "validation_hr@20_reused_ci": reused["hr@20_ci"],
                "chosen_nested": nested.choice_["chosen"],
                "validation_hr@20_nested": fresh["hr@20"],
                "validation_hr@20_nested_ci": fresh["hr@20_ci"],
                "test_hr@20": q.score(run, test, tcases, ds.catalog, fallback=chain_t)["hr@20"],
            }
        out["datasets"][name] = entry
    out["load_average"] = {
        "start": [round(x, 2) for x in load_before],
        "end": [round(x, 2) for x in os.getloadavg()],
    }
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
