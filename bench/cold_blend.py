"""The content model's TF-IDF side weight on the validation split, by the seed's warmth (issue 13).

The content model chooses ``a`` (its TF-IDF side's weight) on simulated cold items carved
inside its own fit. Whether a choice carries is measured here on the **validation** split
carved from the training part exactly as ``bench/quality.py`` does (never the test split):
the model is fitted on the fitting part with the given settings, and the validation's cold
next-item cases (target with fewer than 3 fitting-part interactions; query = the last item)
are ranked among all items by ``a * tfidf_side_cos + (1 - a) * content_cos`` for every ``a``
of the grid: HR@20 of all cases, of those whose seed is cold too (fewer than 3 interactions)
and of those with a warm seed, beside the exact TF-IDF kNN's (the tfidf family) and the
fitted model's own lists (its chosen ``a``, its seed queries). Prints ONE JSON line with the
load average.

Usage: ``python bench/cold_blend.py [--only NAME ...] [--param key=value ...] [--max-cases N]``.
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
sys.path.insert(0, str(ROOT / "bench"))

from tfidf_side import print_line, start  # noqa: E402

K = 20
COLD = 3


def parse_params(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def hits(score: np.ndarray, q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Whether each case's target ranks in the top K (the seed excluded, ties against it)."""
    r = np.arange(len(q))
    score = score.copy()
    score[r, q] = -np.inf
    pos = score[r, t]
    return (score >= pos[:, None]).sum(axis=1) <= K


def cold_cases(fit_part, valid, ids, max_cases: int | None) -> tuple[np.ndarray, ...]:
    """The validation's cold next-item cases among the items ``ids`` (target with fewer than
    ``COLD`` fitting-part interactions; query = the last item): (seeds, targets, their rows in
    ``ids``, targets' rows, whether each seed is cold too)."""
    from recsys.data.schema import interaction_counts
    from recsys.evaluation import build_session_cases, cold_items

    row_of = {x: i for i, x in enumerate(ids)}
    ctx, tgt = build_session_cases(valid, "every_position", max_cases=max_cases, seed=1)
    cold = set(cold_items(fit_part, COLD, ids))
    keep = [i for i, x in enumerate(tgt) if x in cold and ctx[i][-1] in row_of and x in row_of]
    seeds = np.array([ctx[i][-1] for i in keep], dtype=str)
    targets = np.array([tgt[i] for i in keep], dtype=str)
    q = np.array([row_of[x] for x in seeds])
    t = np.array([row_of[x] for x in targets])
    cold_seed = interaction_counts(fit_part.interactions, seeds) < COLD
    return seeds, targets, q, t, cold_seed


def main(argv: list[str] | None = None) -> int:
    from quality import split_of

    from recsys.models import make_model
    from recsys.models.base import normalize_rows
    from recsys.models.content.hybrid import BLEND_GRID

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="+", default=["online_retail", "rees46"])
    ap.add_argument("--param", nargs="*", default=[], help="content parameters, key=value (JSON values)")
    ap.add_argument("--max-cases", type=int, default=None)
    args = ap.parse_args(argv)
    params = parse_params(args.param)
    load_before, data, skipped, out = start(args.only)
    for name, ds in data.items():
        train, _test, _ = split_of(ds)
        fit_part, valid, _ = split_of(train)
        t0 = time.perf_counter()
        model = make_model("content", **params).fit(fit_part)
        fit_s = time.perf_counter() - t0
        ids = model.item_ids_
        seeds, targets, q, t, cold_seed = cold_cases(fit_part, valid, ids, args.max_cases)
        tfidf = make_model("tfidf").fit(fit_part)
        tf_ids, _ = tfidf.similar(list(seeds), K)
        tf_hit = (tf_ids == targets[:, None]).any(axis=1)
        own_ids, _ = model.similar(list(seeds), K)
        own_hit = (own_ids == targets[:, None]).any(axis=1)

        def split(h: np.ndarray, cold_seed: np.ndarray = cold_seed) -> dict:
            return {
                "all": round(float(h.mean()), 4),
                "cold_seed": round(float(h[cold_seed].mean()), 4) if cold_seed.any() else None,
                "warm_seed": round(float(h[~cold_seed].mean()), 4) if (~cold_seed).any() else None,
            }

        row = {
            "cases": int(len(q)),
            "cold_seed_cases": int(cold_seed.sum()),
            "fit_seconds": round(fit_s, 1),
            "chosen": {
                k: v
                for k, v in {
                    "a": model.blend_.get("a"),
                    "projection": model.blend_.get("projection"),
                    "b": model.expansion_.get("b") if model.expansion_ else None,
                    "seed_blend": model.blend_.get("seed_blend"),
                    "holdout_by": model.coverage_.get("holdout_by"),
                }.items()
                if v is not None
            },
            "tfidf_exact": split(tf_hit),
            "model_lists": split(own_hit),
        }
        side = getattr(model, "_text_side", None)
        a_used = float(model.blend_.get("a", 0.0))
        if side is not None and a_used < 1.0:
            vec = model.vectors_
            text = normalize_rows(vec[:, : side.dim])
            content = normalize_rows(vec[:, side.dim :])
            by_a = {}
            for lo in range(0, len(q), 512):
                qq, tt = q[lo : lo + 512], t[lo : lo + 512]
                ts, cs = text[qq] @ text.T, content[qq] @ content.T
                for a in BLEND_GRID:
                    by_a.setdefault(a, []).append(hits(a * ts + (1 - a) * cs, qq, tt))
            row["by_a"] = {str(a): split(np.concatenate(h)) for a, h in by_a.items()}
        out["datasets"][name] = row
        print(json.dumps({name: row}), file=sys.stderr)
    out["params"] = params
    return print_line(out, skipped, load_before)


if __name__ == "__main__":
    raise SystemExit(main())
