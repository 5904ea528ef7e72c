"""A learned re-ranker of the TF-IDF kNN's and the content model's candidates, on the validation
split (issue 13; a diagnosis: the model is unchanged unless the bar below is passed).

The standard "learning to rank" step: for each seed, the candidates are the union of the exact
TF-IDF kNN's top ``N`` and the content model's top ``N``; a classifier scores each (seed,
candidate) pair from features that need no behaviour of the candidate, or that a cold candidate
has:

- text: the TF-IDF cosine and its rank, the content model's cosine (its served vectors) and its
  rank, the cosine of its content side alone, same leaf / same top category, brand match, the
  price ratio, both titles' lengths;
- age: the candidate's and the seed's interaction counts in the fitting part (0 for a cold
  item), the days since each first and last appeared in it (missing when never);
- cooc: the seed's and the candidate's co-occurrence count in the fitting part (window 3, the
  content model's), 0 for most cold candidates.

The classifier (scikit-learn's ``HistGradientBoostingClassifier`` or a logistic regression) is
trained on next-item pairs of the **fitting part** only: the fitting part is carved once more
exactly as the training part is (``split_of``: its latest 10%), the TF-IDF kNN and a content
model are fitted on the inner fitting part, and the inner latest part's next-item cases (seed =
the last item; a sample of every target, warm AND rare, and with ``--train-rare`` every case
whose target is rare, fewer than 3 inner interactions, weighted ``--rare-weights``) give the
positives, with negatives drawn from their candidate lists. The validation cases are then ranked with features computed on the whole
fitting part (its content model fitted on it, as ``bench/cold_blend.py`` fits it), so no
validation target ever trains anything.

Scored on the **validation** split carved from the training part exactly as
``bench/cold_blend.py``'s ``cold_cases()`` carves it (target with fewer than 3 fitting-part
interactions; query = the last item; never the test split): HR@20 hits against the exact TF-IDF
kNN (the tfidf family's representation; the seed excluded, ties and a zero score count against
the target). Every setting (``N``, the feature set, the classifier, the rare targets' weight) is
chosen on the even cases and scored on the odd ones, then the reverse; "held out" sums the two
scored halves (the TF-IDF kNN itself is one of the choices). The same settings are also scored on
a sample of all validation cases (warm targets too), so a re-ranker that only pushes cold items
up shows it. The content models are cached under ``--cache`` (a fit takes minutes). Prints ONE
JSON line with the load average.

Usage: ``python bench/cold_rerank.py [--only NAME ...] [--Ns 20 50 100] [--models hgb logreg]``
(the figures: docs/MEASUREMENTS.md, "A learned re-ranker ... (issue 13, s32-c)"; run it with ``OMP_NUM_THREADS=1`` on a loaded machine).
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

from cold_blend import cold_cases  # noqa: E402
from cold_learned import held_out, rank_hits  # noqa: E402
from tfidf_side import print_line, start  # noqa: E402

K = 20
COLD = 3
BLOCK = 256
TEXT = [
    "tf_cos",
    "tf_rank",
    "ct_cos",
    "ct_rank",
    "cside_cos",
    "same_leaf",
    "same_top",
    "brand_match",
    "log_price_ratio",
    "cand_words",
    "seed_words",
]
AGE = ["cand_count", "seed_count", "cand_first_days", "cand_last_days", "seed_first_days"]
COOC = ["cooc"]
FEATURE_SETS = {"text": TEXT, "text_age": TEXT + AGE, "all": TEXT + AGE + COOC}


# -- what each item has ---------------------------------------------------------------------------


def item_table(cat, fit_part) -> dict[str, np.ndarray]:
    """Per catalogue row: leaf and top category codes, brand code (-1 when none), price, title
    length, interaction count in ``fit_part``, days from its first / last interaction to the
    part's end (NaN when never)."""
    import pandas as pd

    ids = cat["item_id"].astype(str).to_numpy()
    category = cat["category"].fillna("").astype(str) if "category" in cat else pd.Series([""] * len(cat))
    top = category.str.split(">").str[0].str.strip()

    def codes(s: pd.Series) -> np.ndarray:
        c = pd.factorize(s.where(s.str.len() > 0))[0]
        return c.astype(np.int64)

    brand = cat["brand"].fillna("").astype(str).str.strip() if "brand" in cat else pd.Series([""] * len(cat))
    price = pd.to_numeric(cat.get("price"), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    price[~(price > 0)] = np.nan
    words = cat["title"].fillna("").astype(str).str.split().str.len().to_numpy(dtype=np.float64)
    inter = fit_part.interactions
    g = inter.assign(item_id=inter["item_id"].astype(str)).groupby("item_id")
    count = g.size().reindex(ids).fillna(0).to_numpy(dtype=np.float64)
    out = {
        "leaf": codes(category.str.strip()),
        "top": codes(top),
        "brand": codes(brand),
        "price": price,
        "words": words,
        "count": count,
    }
    ts = inter.get("timestamp")
    if ts is not None and pd.to_datetime(ts).notna().any():
        t = pd.to_datetime(inter["timestamp"])
        end = t.max()
        first = t.groupby(inter["item_id"].astype(str)).min().reindex(ids)
        last = t.groupby(inter["item_id"].astype(str)).max().reindex(ids)
        out["first_days"] = ((end - first).dt.total_seconds() / 86400.0).to_numpy(dtype=np.float64)
        out["last_days"] = ((end - last).dt.total_seconds() / 86400.0).to_numpy(dtype=np.float64)
    else:
        out["first_days"] = np.full(len(ids), np.nan)
        out["last_days"] = np.full(len(ids), np.nan)
    return out


def cooc_matrix(fit_part, ids: np.ndarray):
    """Co-occurrence counts of the fitting part (window 3), an (n, n) CSR in catalogue order."""
    import scipy.sparse as sp

    from recsys.models.content.pairs import cooccurrence_pairs

    row_of = {x: i for i, x in enumerate(ids)}
    p = cooccurrence_pairs(fit_part.interactions, row_of, 3)
    n = len(ids)
    return sp.csr_matrix(
        (p["count"].to_numpy(np.float64), (p["a"].to_numpy(), p["b"].to_numpy())), shape=(n, n)
    )


def content_model(fit_part, path: Path):
    """The content model fitted on ``fit_part`` (its defaults), cached at ``path``."""
    from recsys.models import make_model

    if (path / "model.json").exists():
        return type(make_model("content")).load(path), 0.0
    t0 = time.perf_counter()
    model = make_model("content").fit(fit_part)
    model.save(path)
    return model, time.perf_counter() - t0


def content_spaces(model, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The content model's served unit vectors, its seeds' query vectors and its content side
    alone (unit), all in catalogue order (zero rows for items it lacks)."""
    from recsys.models.base import normalize_rows

    pos = {x: i for i, x in enumerate(model.item_ids_)}
    m = np.array([pos.get(x, -1) for x in ids])
    have = m >= 0
    unit, query = model.unit_vectors(), model.query_unit_vectors()
    side = getattr(model, "_text_side", None)
    cside = normalize_rows(model.vectors_[:, side.dim :]) if side is not None else unit
    out = []
    for arr in (unit, query, cside):
        full = np.zeros((len(ids), arr.shape[1]), dtype=np.float32)
        full[have] = arr[m[have]]
        out.append(full)
    return out[0], out[1], out[2]


# -- candidates and their features ----------------------------------------------------------------


def candidates(x, xt, unit, query, cside, items, cooc, q, t, n_max: int) -> dict[str, np.ndarray]:
    """For each case (seed row ``q``, target row ``t``): the union of the TF-IDF kNN's and the
    content model's top ``n_max`` (the seed excluded, zero TF-IDF scores not results) and each
    candidate's features. Returns flat arrays: ``case``, ``cand``, ``label`` and one per feature."""
    from recsys.topk import topk_rows

    cols: dict[str, list[np.ndarray]] = {}
    for lo in range(0, len(q), BLOCK):
        qq = q[lo : lo + BLOCK]
        r = np.arange(len(qq))
        s_tf = (x[qq] @ xt).toarray()
        s_tf[r, qq] = -np.inf
        s_tf[s_tf <= 1e-7] = -np.inf
        top_tf, v_tf = topk_rows(s_tf, n_max)
        s_ct = query[qq] @ unit.T
        s_ct[r, qq] = -np.inf
        top_ct, _ = topk_rows(s_ct, n_max)
        rank_grid = np.arange(n_max, dtype=np.float64)
        for i in range(len(qq)):
            ok = np.isfinite(v_tf[i])
            tf_list = top_tf[i][ok]
            cand = np.unique(np.concatenate([tf_list, top_ct[i]]))
            rank_tf = np.full(len(cand), float(n_max))
            rank_tf[np.searchsorted(cand, tf_list)] = rank_grid[: len(tf_list)]
            rank_ct = np.full(len(cand), float(n_max))
            rank_ct[np.searchsorted(cand, top_ct[i])] = rank_grid[: len(top_ct[i])]
            part = {
                "case": np.full(len(cand), lo + i),
                "cand": cand,
                "tf_cos": np.maximum(s_tf[i, cand], 0.0),
                "tf_rank": rank_tf,
                "ct_cos": s_ct[i, cand].astype(np.float64),
                "ct_rank": rank_ct,
            }
            for key, v in part.items():
                cols.setdefault(key, []).append(v)
    f = {k: np.concatenate(v) for k, v in cols.items()}
    s, c = q[f["case"]], f["cand"]
    f["label"] = (c == t[f["case"]]).astype(np.int8)
    f["cside_cos"] = np.concatenate(
        [
            np.einsum("ij,ij->i", cside[c[lo : lo + 50000]], cside[s[lo : lo + 50000]])
            for lo in range(0, len(c), 50000)
        ]
    ).astype(np.float64)
    for key in ("leaf", "top", "brand"):
        f[f"same_{key}" if key != "brand" else "brand_match"] = (
            (items[key][c] == items[key][s]) & (items[key][s] >= 0)
        ).astype(np.float64)
    f["log_price_ratio"] = np.abs(np.log(items["price"][c] / items["price"][s]))
    f["cand_words"], f["seed_words"] = items["words"][c], items["words"][s]
    f["cand_count"], f["seed_count"] = np.log1p(items["count"][c]), np.log1p(items["count"][s])
    f["cand_first_days"], f["cand_last_days"] = items["first_days"][c], items["last_days"][c]
    f["seed_first_days"] = items["first_days"][s]
    f["cooc"] = np.log1p(
        np.concatenate(
            [
                np.asarray(cooc[s[lo : lo + 50000], c[lo : lo + 50000]]).ravel()
                for lo in range(0, len(c), 50000)
            ]
        )
    )
    return f


def stage(name, fit_part, later, cat, ids, x, xt, cache: Path, tag: str, n_max: int, max_cases, cold_only):
    """Candidates and features of ``later``'s next-item cases, everything computed on ``fit_part``."""
    from recsys.evaluation import build_session_cases

    model, fit_s = content_model(fit_part, cache / f"content_{name}_{tag}")
    unit, query, cside = content_spaces(model, ids)
    items = item_table(cat, fit_part)
    cooc = cooc_matrix(fit_part, ids)
    if cold_only:
        _s, _t, q, t, _c = cold_cases(fit_part, later, ids, max_cases)
    else:
        row_of = {v: i for i, v in enumerate(ids)}
        ctx, tgt = build_session_cases(later, "every_position", max_cases=max_cases, seed=2)
        keep = [i for i, v in enumerate(tgt) if ctx[i][-1] in row_of and v in row_of]
        q = np.array([row_of[ctx[i][-1]] for i in keep], dtype=np.int64)
        t = np.array([row_of[tgt[i]] for i in keep], dtype=np.int64)
    t0 = time.perf_counter()
    saved = cache / f"features_{name}_{tag}_{'cold' if cold_only else max_cases}_{n_max}.npz"
    if saved.exists():
        feats = dict(np.load(saved))
    else:
        feats = candidates(x, xt, unit, query, cside, items, cooc, q, t, n_max)
        np.savez(saved, **feats)
    import resource

    info = {
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "content_fit_s": round(fit_s, 1),
        "content_a": model.blend_.get("a"),
        "cases": int(len(q)),
        "rows": int(len(feats["case"])),
        "features_s": round(time.perf_counter() - t0, 1),
    }
    return q, t, feats, items, info


def within(feats: dict, n: int) -> np.ndarray:
    """The rows that are candidates at depth ``n`` (in either list's top ``n``)."""
    return (feats["tf_rank"] < n) | (feats["ct_rank"] < n)


def capped(feats: dict, sel: np.ndarray, names: list[str], n: int) -> np.ndarray:
    """The feature matrix of rows ``sel``; ranks capped at ``n`` (as if the lists were ``n`` long)."""
    cols = []
    for k in names:
        v = feats[k][sel]
        cols.append(np.minimum(v, n) if k in ("tf_rank", "ct_rank") else v)
    return np.column_stack(cols).astype(np.float64)


def make_classifier(kind: str):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "hgb":
        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=40, random_state=0
        )
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=1000),
    )


def train_rows(feats: dict, t_counts: np.ndarray, n: int, neg: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """The training rows at depth ``n``: every positive and ``neg`` random negatives per case
    (all when fewer); and each row's case's target count (to weight rare targets)."""
    sel = np.flatnonzero(within(feats, n))
    positive = feats["label"][sel] == 1
    negs = rng.permutation(sel[~positive])
    negs = negs[np.argsort(feats["case"][negs], kind="stable")]
    case = feats["case"][negs]
    starts = np.r_[0, np.flatnonzero(case[1:] != case[:-1]) + 1]
    rank = np.arange(len(case)) - np.repeat(starts, np.diff(np.r_[starts, len(case)]))
    chosen = np.concatenate([sel[positive], negs[rank < neg]])
    return chosen, t_counts[feats["case"][chosen]]


def rerank_hits(feats: dict, sel: np.ndarray, score: np.ndarray, n_cases: int) -> np.ndarray:
    """Whether each case's target is among its top K candidates by ``score`` (ties against it)."""
    case, label = feats["case"][sel], feats["label"][sel]
    pos = np.full(n_cases, np.nan)
    pos[case[label == 1]] = score[label == 1]
    better = score >= pos[case]
    above = np.bincount(case[better], minlength=n_cases)  # includes the target itself
    return np.isfinite(pos) & (above <= K)


def main(argv: list[str] | None = None) -> int:
    from quality import split_of

    from recsys.models import make_model
    from recsys.models.tfidf import TfidfText

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="+", default=["online_retail", "instacart"])
    ap.add_argument("--Ns", nargs="+", type=int, default=[20, 50, 100])
    ap.add_argument("--sets", nargs="+", default=list(FEATURE_SETS))
    ap.add_argument("--models", nargs="+", default=["hgb", "logreg"])
    ap.add_argument("--rare-weights", nargs="+", type=float, default=[1.0])
    ap.add_argument(
        "--train-rare",
        action="store_true",
        help="add every rare-target case (< 3 interactions) of the inner carve to the training sample",
    )
    ap.add_argument("--neg", type=int, default=20, help="negatives per training case")
    ap.add_argument("--train-cases", type=int, default=20000)
    ap.add_argument("--all-cases", type=int, default=3000, help="validation cases of every target (check)")
    ap.add_argument("--cache", default="/tmp/s32-c")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    load_before, data, skipped, out = start(args.only)
    n_max = max(args.Ns)
    for name, ds in data.items():
        t0 = time.perf_counter()
        rng = np.random.default_rng(args.seed)
        train, _test, _ = split_of(ds)
        fit_part, valid, _ = split_of(train)
        inner_fit, inner_valid, _ = split_of(fit_part)
        cat = fit_part.catalog.drop_duplicates("item_id").reset_index(drop=True)
        ids = cat["item_id"].astype(str).to_numpy()
        x = TfidfText(make_model("tfidf").params).fit_transform(cat).tocsr().astype(np.float64)
        xt = x.T.tocsr()
        tr_q, tr_t, tr_f, tr_items, tr_info = stage(
            name, inner_fit, inner_valid, cat, ids, x, xt, cache, "inner", n_max, args.train_cases, False
        )
        if args.train_rare:  # every rare-target case of the inner carve besides the sample
            rq, rt, rf, _, r_info = stage(
                name, inner_fit, inner_valid, cat, ids, x, xt, cache, "inner", n_max, None, True
            )
            rf["case"] = rf["case"] + len(tr_q)
            tr_f = {k: np.concatenate([tr_f[k], rf[k]]) for k in tr_f}
            tr_q, tr_t = np.concatenate([tr_q, rq]), np.concatenate([tr_t, rt])
            tr_info["rare_cases_added"] = r_info["cases"]
        print(json.dumps({name: {"train": tr_info}}), file=sys.stderr, flush=True)
        va_q, va_t, va_f, va_items, va_info = stage(
            name, fit_part, valid, cat, ids, x, xt, cache, "fit", n_max, None, True
        )
        al_q, al_t, al_f, _, al_info = stage(
            name, fit_part, valid, cat, ids, x, xt, cache, "fit", n_max, args.all_cases, False
        )
        base_hits = rank_hits(x, x, va_q, va_t, sparse=True)
        base_all = rank_hits(x, x, al_q, al_t, sparse=True)
        tr_count = tr_items["count"][tr_t]
        al_cold = va_items["count"][al_t] < COLD
        hits = {"tfidf": base_hits}
        grid = {}
        for n in args.Ns:
            recall = np.zeros(len(va_q), dtype=bool)
            recall[va_f["case"][within(va_f, n) & (va_f["label"] == 1)]] = True
            grid[f"recall_N{n}"] = int(recall.sum())
            for set_name in args.sets:
                names = FEATURE_SETS[set_name]
                for kind in args.models:
                    for w_rare in args.rare_weights:
                        t1 = time.perf_counter()
                        rows, counts = train_rows(tr_f, tr_count, n, args.neg, rng)
                        weight = np.where(counts < COLD, w_rare, 1.0)
                        clf = make_classifier(kind)
                        xtr = capped(tr_f, rows, names, n)
                        used = ~np.isnan(xtr).all(axis=0)  # a column with no value (no prices) is left out
                        xtr = xtr[:, used]
                        if kind == "hgb":
                            clf.fit(xtr, tr_f["label"][rows], sample_weight=weight)
                        else:
                            clf.fit(xtr, tr_f["label"][rows], logisticregression__sample_weight=weight)
                        key = f"N{n}_{set_name}_{kind}_w{w_rare:g}"
                        sel = np.flatnonzero(within(va_f, n))
                        score = clf.predict_proba(capped(va_f, sel, names, n)[:, used])[:, 1]
                        hits[key] = rerank_hits(va_f, sel, score, len(va_q))
                        sel_a = np.flatnonzero(within(al_f, n))
                        score_a = clf.predict_proba(capped(al_f, sel_a, names, n)[:, used])[:, 1]
                        h_all = rerank_hits(al_f, sel_a, score_a, len(al_q))
                        grid[key] = {
                            "hits": int(hits[key].sum()),
                            "all_cases_hits": int(h_all.sum()),
                            "all_cases_cold_target_hits": int(h_all[al_cold].sum()),
                            "train_rows": int(len(rows)),
                            "seconds": round(time.perf_counter() - t1, 1),
                        }
                        print(json.dumps({name: {key: grid[key]}}), file=sys.stderr, flush=True)
        base = int(base_hits.sum())
        best = max(hits, key=lambda k: int(hits[k].sum()))
        ho = held_out(hits)
        out["datasets"][name] = {
            "cases": int(len(va_q)),
            "tfidf_hits": base,
            "all_cases": {
                "cases": int(len(al_q)),
                "cold_target_cases": int(al_cold.sum()),
                "tfidf_hits": int(base_all.sum()),
                "tfidf_cold_target_hits": int(base_all[al_cold].sum()),
            },
            "train": tr_info,
            "valid": va_info,
            "grid": grid,
            "grid_best": {
                "setting": best,
                "hits": int(hits[best].sum()),
                "ratio": round(hits[best].sum() / max(base, 1), 3),
            },
            "held_out": {**ho, "ratio": round(ho["total"] / max(base, 1), 3)},
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps({name: out["datasets"][name]}), file=sys.stderr, flush=True)
    out["args"] = {k: v for k, v in vars(args).items() if k != "only"}
    return print_line(out, skipped, load_before)


if __name__ == "__main__":
    raise SystemExit(main())
