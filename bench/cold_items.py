"""Who the cold items are: the test split's against the content model's simulated ones (issue 13).

The content model chooses its TF-IDF side's weight and its blocks' weights on simulated cold
items carved from the training part (:func:`recsys.models.content.pairs.training_pairs`). A
choice made there only carries to the test if those cases look like the test's. For each
dataset this describes, as ``bench/quality.py`` splits it, the cold next-item cases (target
with fewer than 3 training interactions; query = the last item) of:

- ``test``: the test split (described, never used to choose anything);
- ``validation``: the validation split carved by time from the training part;
- ``sim_<by>``: the content model's simulated cold cases with ``holdout_by=<by>``.

Per population: cases, the target's training interactions (share 0, share 1-2), the share of
cases whose seed is cold too, the seed's median interactions, the mean TF-IDF cosine of seed
and target, and the exact TF-IDF kNN's HR@20 (all, cold seeds, warm seeds). Prints ONE JSON line
with the load average.

Usage: ``python bench/cold_items.py [--only NAME ...] [--by time tail newest] [--max-cases N]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tfidf_side import print_line, start  # noqa: E402

K = 20
COLD = 3


def describe(tfidf, ref, seeds: np.ndarray, targets: np.ndarray) -> dict:
    """The figures of one population; ``ref`` the interactions its counts are read in."""
    from recsys.data.schema import interaction_counts

    seeds, targets = np.asarray(seeds, dtype=str), np.asarray(targets, dtype=str)
    if len(targets) == 0:
        return {"cases": 0}
    n_t, n_s = interaction_counts(ref, targets), interaction_counts(ref, seeds)
    row = {x: i for i, x in enumerate(np.asarray(tfidf.item_ids_, dtype=str))}
    si = np.array([row.get(s, -1) for s in seeds])
    ti = np.array([row.get(t, -1) for t in targets])
    ok = (si >= 0) & (ti >= 0)
    cos = np.zeros(len(seeds))
    m = tfidf.matrix_
    cos[ok] = np.asarray(m[si[ok]].multiply(m[ti[ok]]).sum(axis=1)).ravel()
    ids, _ = tfidf.similar(list(seeds), K)
    hit = (ids == targets[:, None]).any(axis=1)
    cold_seed = n_s < COLD

    def share(mask: np.ndarray) -> float | None:
        return round(float(hit[mask].mean()), 4) if mask.any() else None

    return {
        "cases": int(len(targets)),
        "target_interactions_0": round(float((n_t == 0).mean()), 3),
        "target_interactions_1_2": round(float(((n_t > 0) & (n_t < COLD)).mean()), 3),
        "cold_seed_share": round(float(cold_seed.mean()), 3),
        "seed_interactions_median": float(np.median(n_s)),
        "tfidf_cosine_mean": round(float(cos.mean()), 3),
        "tfidf_hr@20": share(np.ones(len(hit), dtype=bool)),
        "tfidf_hr@20_cold_seed": share(cold_seed),
        "tfidf_hr@20_warm_seed": share(~cold_seed),
    }


def cold_cases(part, ref, ids: np.ndarray, max_cases: int | None, seed: int):
    from recsys.evaluation import build_session_cases, cold_items

    ctx, tgt = build_session_cases(part, "every_position", max_cases=max_cases, seed=seed)
    cold = set(cold_items(ref, COLD, ids))
    keep = [i for i, t in enumerate(tgt) if t in cold]
    return [ctx[i][-1] for i in keep], tgt[keep]


def main(argv: list[str] | None = None) -> int:
    from quality import split_of

    from recsys.models import make_model
    from recsys.models.content import ContentModel
    from recsys.models.content.pairs import late_rows, training_pairs

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="+", default=["online_retail", "rees46", "instacart"])
    ap.add_argument("--by", nargs="+", default=["time", "tail", "newest"], help="holdout_by values")
    ap.add_argument("--max-cases", type=int, default=None)
    args = ap.parse_args(argv)
    load_before, data, skipped, out = start(args.only)
    for name, ds in data.items():
        train, test, _ = split_of(ds)
        fit_part, valid, _ = split_of(train)
        cat = ds.catalog.drop_duplicates("item_id").reset_index(drop=True)
        ids = cat["item_id"].astype(str).to_numpy()
        tfidf = make_model("tfidf").fit(train)
        row = {
            "test": describe(tfidf, train.interactions, *cold_cases(test, train, ids, args.max_cases, 0)),
            "validation": describe(
                tfidf, fit_part.interactions, *cold_cases(valid, fit_part, ids, args.max_cases, 1)
            ),
        }
        p = {k: s.default for k, s in ContentModel.param_specs.items()}
        for by in args.by:
            tp = training_pairs(
                train, cat, ids, {**p, "holdout_by": by}, True, np.random.default_rng(p["seed"])
            )
            cv = tp.cold_val
            # counts of what the fit kept: the held-out targets lose their latest-part rows
            # ("time") or all their rows ("tail", "newest")
            inter = train.interactions
            gone = inter["item_id"].astype(str).isin(ids[np.unique(cv[:, 1])]).to_numpy()
            if tp.held_by == "time":
                gone = gone & late_rows(inter, p["holdout_share"])
            seen = inter[~gone]
            row[f"sim_{by}"] = {"carved": tp.held_by, **describe(tfidf, seen, ids[cv[:, 0]], ids[cv[:, 1]])}
        out["datasets"][name] = row
    return print_line(out, skipped, load_before)


if __name__ == "__main__":
    raise SystemExit(main())
