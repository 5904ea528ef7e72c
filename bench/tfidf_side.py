"""What the content model's dense TF-IDF side costs against the exact TF-IDF kNN (issue 13).

The hybrid content model (:mod:`recsys.models.content.hybrid`) needs the TF-IDF vectors
dense. For each dataset this scores, on the **validation** split carved from the training
part exactly as ``bench/quality.py`` does (never the test split), the next-item cases
whose target is cold in the fitting part (< 3 interactions; query = the last item):
HR@20 of the exact sparse TF-IDF kNN, and of the dense side with the hashing and the
truncated-SVD projection at each ``--dims`` / ``--svd-dims``. Prints ONE JSON line with the ratios to the
exact kNN, the seconds each projection took and the load average.

Usage: ``python bench/tfidf_side.py [--only NAME ...] [--dims 256 1024] [--svd-dims 256]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

K = 20


def cold_validation(ds, max_cases: int | None):
    """The validation cases carved from the training part exactly as ``bench/quality.py`` does
    (never the test split) whose target is cold in the fitting part (< 3 interactions).

    Returns ``(fit_part, cat, cat_ids, q, targets)``: the fitting part, its catalogue (one row
    per item) and ids, each case's query row in it (its last item; -1 when unknown) and target id.
    """
    sys.path.insert(0, str(ROOT / "bench"))
    from quality import split_of

    from recsys.evaluation import build_session_cases, cold_items

    train, _test, _ = split_of(ds)
    fit_part, valid, _ = split_of(train)
    ctx, tgt = build_session_cases(valid, "every_position", max_cases=max_cases, seed=1)
    cat = fit_part.catalog.drop_duplicates("item_id").reset_index(drop=True)
    cat_ids = cat["item_id"].astype(str).to_numpy()
    cold = set(cold_items(fit_part, 3, cat_ids))
    keep = [i for i, t in enumerate(tgt) if t in cold]
    row_of = {x: i for i, x in enumerate(cat_ids)}
    q = np.array([row_of.get(ctx[i][-1], -1) for i in keep], dtype=np.int64)
    return fit_part, cat, cat_ids, q, tgt[keep]


def start(names: list[str]) -> tuple[tuple, dict, dict, dict]:
    """The load average before, the datasets (name -> Dataset), those left out and the output."""
    sys.path.insert(0, str(ROOT / "bench"))
    from quality import load_datasets

    load_before = os.getloadavg()
    data, skipped = load_datasets(names, False, 5000)
    return load_before, data, skipped, {"datasets": {}}


def print_line(out: dict, skipped: dict, load_before: tuple) -> int:
    """Print the ONE JSON line: ``out`` with the datasets left out and the load average."""
    if skipped:
        out["skipped"] = skipped
    out["load_average"] = {
        "start": [round(x, 2) for x in load_before],
        "end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    from recsys.models import make_model
    from recsys.models.content.hybrid import TextSide
    from recsys.topk import topk_rows

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="+", default=["online_retail", "instacart", "dunnhumby", "rees46"])
    ap.add_argument("--dims", nargs="+", type=int, default=[256, 1024], help="hashing widths")
    ap.add_argument("--svd-dims", nargs="+", type=int, default=[256], help="SVD components")
    ap.add_argument("--max-cases", type=int, default=None)
    args = ap.parse_args(argv)
    load_before, data, skipped, out = start(args.only)
    for name, ds in data.items():
        fit_part, cat, cat_ids, q, targets = cold_validation(ds, args.max_cases)
        seeds = [cat_ids[r] if r >= 0 else "" for r in q]
        exact = make_model("tfidf").fit(fit_part)
        ids, _ = exact.similar(seeds, K)
        row = {
            "cold_cases": len(q),
            "exact_hr@20": round(float((ids == targets[:, None]).any(1).mean()), 4),
        }
        for proj, dims in (("hash", args.dims), ("svd", args.svd_dims)):
            for dim in dims:
                t0 = time.perf_counter()
                side, dense = TextSide.fit(cat, exact.params, dim, proj, 0)
                secs = time.perf_counter() - t0
                hits = 0
                for b in range(0, len(q), 512):
                    qq = q[b : b + 512]
                    ok = qq >= 0
                    sims = dense[np.where(ok, qq, 0)] @ dense.T
                    sims[np.arange(len(qq)), np.where(ok, qq, 0)] = -np.inf
                    top, _ = topk_rows(sims, K)
                    hits += int(((cat_ids[top] == targets[b : b + 512, None]).any(1) & ok).sum())
                hr = hits / max(1, len(q))
                key = f"{proj}{side.dim}" if side.projection else f"exact{side.dim}"
                row[key] = {
                    "hr@20": round(hr, 4),
                    "ratio": round(hr / row["exact_hr@20"], 3) if row["exact_hr@20"] else None,
                    "seconds": round(secs, 1),
                }
        row["terms"] = side.text.n_terms
        out["datasets"][name] = row
        print(json.dumps({name: row}), file=sys.stderr)
    return print_line(out, skipped, load_before)


if __name__ == "__main__":
    raise SystemExit(main())
