"""The content model trained on a catalogue alone: which TF-IDF side weight serves it (issue 13).

A catalogue-only dataset (Myntra, BigBasket) has no interactions, so nothing in it can choose
the hybrid's weight ``a`` (:mod:`recsys.models.content.hybrid`). This measures the choice on
catalogues that do have interactions, hidden from the fit: the content model is fitted on the
**fitting part's catalogue alone** (no interactions: its positives are same-category items
and title TF-IDF neighbours, :func:`recsys.models.content.pairs.text_pairs`), then scored on
the **validation** split carved from the training part exactly as ``bench/quality.py`` does
(never the test split): next-item cases whose target is cold in the fitting part (< 3
interactions; query = the last item), HR@20 of the blend at each ``a`` of ``--grid``
(``a = 1`` is the TF-IDF side alone, the tfidf family's kNN). Prints ONE JSON line with each
``a``'s HR@20, its ratio to ``a = 1`` and the load average.

Usage: ``python bench/content_catalogue.py [--only NAME ...] [--max-cases N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

K = 20


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from tfidf_side import cold_validation, print_line, start

    from recsys.data.schema import Dataset
    from recsys.models import make_model
    from recsys.models.content.hybrid import TextSide
    from recsys.models.tfidf import TEXT_PARAMS, TfidfModel
    from recsys.topk import topk_rows

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="+", default=["rees46", "online_retail"])
    ap.add_argument("--grid", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 0.9, 1.0])
    ap.add_argument("--max-cases", type=int, default=None)
    args = ap.parse_args(argv)
    load_before, data, skipped, out = start(args.only)
    for name, ds in data.items():
        fit_part, cat, cat_ids, q, targets = cold_validation(ds, args.max_cases)
        t0 = time.perf_counter()
        alone = Dataset(name, cat, fit_part.interactions.iloc[:0])
        model = make_model("content", tfidf_dim=0).fit(alone)
        secs = time.perf_counter() - t0
        content = model.unit_vectors()
        tfidf_params = {k: TfidfModel.param_specs[k].default for k in TEXT_PARAMS}
        _, text = TextSide.fit(cat, tfidf_params, 1024, "hash", 0)
        hits = np.zeros(len(args.grid))
        for b in range(0, len(q), 512):
            qq = q[b : b + 512]
            ok = qq >= 0
            rows = np.where(ok, qq, 0)
            t_s, c_s = text[rows] @ text.T, content[rows] @ content.T
            for g, a in enumerate(args.grid):
                sims = a * t_s + (1.0 - a) * c_s
                sims[np.arange(len(qq)), rows] = -np.inf
                top, _ = topk_rows(sims, K)
                hits[g] += int(((cat_ids[top] == targets[b : b + 512, None]).any(1) & ok).sum())
        hr = hits / max(1, len(q))
        ref = hr[args.grid.index(1.0)] if 1.0 in args.grid else None
        row = {
            "cold_cases": len(q),
            "fit_seconds": round(secs, 1),
            "training_pairs": model.coverage_["training_pairs"],
            "by_a": {
                f"{a:g}": {"hr@20": round(float(h), 4), "ratio": round(float(h / ref), 3) if ref else None}
                for a, h in zip(args.grid, hr)
            },
        }
        out["datasets"][name] = row
        print(json.dumps({name: row}), file=sys.stderr)
    return print_line(out, skipped, load_before)


if __name__ == "__main__":
    raise SystemExit(main())
