"""Prod2Vec settings scored on the tuner's validation split; prints one JSON line per setting.

The dataset is split as ``bench/quality.py`` splits it (its test part is dropped here and never
scored); the training part is split again as :func:`recsys.tuning.tune` does (time, the latest
10% of sequences), the settings are fitted on the rest (optionally a seeded sample of its
sequences, the tuner's ``sample``) and scored by next-item HR@20 on the tuner's validation cases
(every position, 3,000 sampled, seed 0), the lists completed by the fallback chain fitted on the
fitting part, as the tuner and the bench score them. So a ratio read here is the one the tuner
optimises, with no test figure involved.

``--settings`` is a JSON-lines file: ``{"name": ..., "params": {...}, "base": "gensim_defaults"}``
(``base``: start from the bench's gensim defaults, ``prod2vec_defaults``, instead of the family's
recommended settings). Lines starting with ``#`` are skipped.

Usage: ``python bench/prod2vec_validation.py --dataset online_retail --settings FILE
[--sample 0.25] [--out rows.jsonl]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main(argv: list[str] | None = None) -> int:
    import quality

    from recsys.evaluation import build_session_cases, evaluate_sessions, split
    from recsys.fallback import FallbackChain
    from recsys.models import make_model
    from recsys.models.prod2vec import GENSIM_DEFAULTS
    from recsys.tuning import sample_sequences

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="a bench/quality.py dataset name")
    ap.add_argument("--settings", required=True, help="JSON lines: name, params, base")
    ap.add_argument("--out", default=None, help="also append each row to this file")
    ap.add_argument("--max-cases", type=int, default=3000)
    ap.add_argument("--sample", type=float, default=None, help="fit on this share of the sequences")
    ap.add_argument("--demo-items", type=int, default=5000)
    args = ap.parse_args(argv)
    loaded, skipped = quality.load_datasets([args.dataset], False, args.demo_items)
    if args.dataset not in loaded:
        ap.error(f"{args.dataset}: {skipped.get(args.dataset, 'not loaded')}")
    train, _test, _how = quality.split_of(loaded[args.dataset])
    del _test  # never scored here
    fit_part, valid = split(train, "time", test_fraction=0.1)
    if args.sample:
        fit_part = sample_sequences(fit_part, args.sample, 0)
    cases = build_session_cases(valid, "every_position", max_cases=args.max_cases, seed=0)
    chain = FallbackChain().fit(fit_part, train.catalog)
    bases: dict[str, dict[str, Any]] = {"gensim_defaults": {**GENSIM_DEFAULTS, "fallback": "none"}}
    for line in Path(args.settings).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        setting = json.loads(line)
        params = {"workers": 2, **bases.get(setting.get("base"), {}), **setting.get("params", {})}
        t0 = time.perf_counter()
        model = make_model("prod2vec", **params).fit(fit_part)
        m = evaluate_sessions(
            model, valid, k=20, exclude_seen=False, cases=cases, catalog=train.catalog, fallback=chain
        )
        row = {
            "name": setting["name"],
            "hr@20": round(m["hr@20"], 4),
            "mrr@20": round(m["mrr@20"], 4),
            "fallback_share": round(m["fallback_share"], 4),
            "n_cases": int(len(cases[1])),
            "sample": args.sample,
            "seconds": round(time.perf_counter() - t0, 1),
            "load": Path("/proc/loadavg").read_text().split()[:3],
            "base": setting.get("base"),
            "params": setting.get("params", {}),
        }
        print(json.dumps(row, default=str), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
