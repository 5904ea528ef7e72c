"""Borrowed behaviour for cold items, on the validation split (issue 13; tried, not adopted).

Can a cold item inherit the behaviour of the warm items its text resembles? For each dataset
this scores, on the **validation** split carved from the training part exactly as
``bench/cold_blend.py`` and ``bench/quality.py`` do (never the test split), the next-item
cases whose target is cold in the fitting part (< 3 interactions; query = the last item),
ranked among all items by

    (1 - lam) * tfidf_cos(s, c) + lam * B(s, c) / max_c B(s, c)
    B(s, c) = sum over w in N_M(c) of tfidf_cos(c, w) ** p * cf(s, w)  [+ cf(s, c) with --self]

where ``N_M(c)`` are c's ``M`` nearest warm items by the TF-IDF cosine (c itself excluded),
warm meaning that ``cf`` has a row for it, and ``cf`` is the fitting part's item kNN
(session-rec ``iknn``, ``--cf item_knn``) or the cosine of Prod2Vec vectors (``--cf
prod2vec``, the tool's recommended settings, min_count 1; each item's 300 nearest kept).
``M = 0`` with the self term is the behaviour side alone (cf(s, c) blended with the TF-IDF
cosine), ``M > 0`` without it is the two-hop score (for Prod2Vec: the seed's vector against a
vector predicted from the text neighbours', a kNN form of CB2CF). With ``seedhop`` a seed
that ``cf`` does not know borrows its row the same way from its own text neighbours.

HR@20 hits per setting and ``lam`` (all / cold seed / warm seed), the TF-IDF kNN's hits (the
tfidf family's own lists) and an honest pick: the best setting chosen on the even cases and
scored on the odd ones, and the reverse. Prints ONE JSON line with the load average.

Usage: ``python bench/cold_twohop.py [--only NAME ...] [--cf item_knn|prod2vec] [--Ms 0 2 5 20]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cold_blend import cold_cases, hits  # noqa: E402
from tfidf_side import print_line, start  # noqa: E402

K = 20
LAMS = tuple(round(x, 1) for x in np.linspace(0.0, 1.0, 11))
BLOCK = 256


def behaviour(name: str, fit_part, row_of: dict[str, int], n: int):
    """cf as an (n, n) CSR in the TF-IDF rows' order."""
    import scipy.sparse as sp

    from recsys.models import make_model
    from recsys.topk import topk_rows_unordered

    model = make_model(name).fit(fit_part)
    m = np.array([row_of.get(x, -1) for x in model.item_ids_])
    if name != "prod2vec":
        c = model.similarity_.tocoo()
        ok = (m[c.row] >= 0) & (m[c.col] >= 0)
        return sp.csr_matrix((c.data[ok], (m[c.row[ok]], m[c.col[ok]])), shape=(n, n))
    from recsys.models.base import normalize_rows

    known = np.flatnonzero(m >= 0)
    v, rows = normalize_rows(model.vectors_[known]), m[known]
    rs, cs, vs = [], [], []
    for b0 in range(0, len(v), 1024):
        d = v[b0 : b0 + 1024] @ v.T
        np.fill_diagonal(d[:, b0 : b0 + 1024], -1)
        top = topk_rows_unordered(d, 300)
        s = np.take_along_axis(d, top, axis=1)
        keep = s > 0
        rs.append(np.broadcast_to(rows[b0 : b0 + 1024, None], top.shape)[keep])
        cs.append(rows[top[keep]])
        vs.append(s[keep])
    return sp.csr_matrix((np.concatenate(vs), (np.concatenate(rs), np.concatenate(cs))), shape=(n, n))


def warm_neighbours(x, warm: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's ``m`` nearest warm items by TF-IDF cosine, best first, itself excluded:
    (columns, cosines), each (n, m)."""
    from recsys.topk import topk_rows

    n = x.shape[0]
    xw = x[warm].T.tocsr()
    is_warm = np.full(n, -1)
    is_warm[warm] = np.arange(len(warm))
    cols, sims = [], []
    for b0 in range(0, n, 512):
        rows = np.arange(b0, min(n, b0 + 512))
        d = (x[rows] @ xw).toarray()
        own = is_warm[rows] >= 0
        d[np.flatnonzero(own), is_warm[rows][own]] = 0
        top, s = topk_rows(d, m)
        cols.append(warm[top])
        sims.append(s)
    return np.concatenate(cols), np.concatenate(sims)


def main(argv: list[str] | None = None) -> int:
    import scipy.sparse as sp
    from quality import split_of

    from recsys.models import make_model

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="+", default=["online_retail", "instacart"])
    ap.add_argument("--cf", choices=("item_knn", "prod2vec"), default="prod2vec")
    ap.add_argument("--Ms", nargs="+", type=int, default=[0, 2, 5, 20])
    ap.add_argument("--ps", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--seedhops", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--max-cases", type=int, default=None)
    args = ap.parse_args(argv)
    load_before, data, skipped, out = start(args.only)
    for name, ds in data.items():
        t0 = time.perf_counter()
        train, _test, _ = split_of(ds)
        fit_part, valid, _ = split_of(train)
        tfidf = make_model("tfidf").fit(fit_part)
        ids, x = tfidf.item_ids_, tfidf.matrix_
        n = len(ids)
        row_of = {v: i for i, v in enumerate(ids)}
        seeds, targets, q, t, cold_seed = cold_cases(fit_part, valid, ids, args.max_cases)
        tf_ids, _ = tfidf.similar(list(seeds), K)
        cf = behaviour(args.cf, fit_part, row_of, n)
        has_cf = np.diff(cf.indptr) > 0
        warm = np.flatnonzero(has_cf)
        nb_cols, nb_sims = warm_neighbours(x, warm, max(max(args.Ms), 1))
        blocks = [slice(b, b + BLOCK) for b in range(0, len(q), BLOCK)]
        text = [(x[q[b]] @ x.T).toarray() for b in blocks]

        def counts(h: np.ndarray, cold_seed: np.ndarray = cold_seed) -> list[int]:
            return [int(h.sum()), int(h[cold_seed].sum()), int(h[~cold_seed].sum())]

        row = {
            "cases": int(len(q)),
            "cold_seed_cases": int(cold_seed.sum()),
            "items": n,
            "items_with_cf": int(has_cf.sum()),
            "targets_with_cf": int(has_cf[t].sum()),
            "seeds_with_cf": int(has_cf[q].sum()),
            "tfidf_hits": counts((tf_ids == targets[:, None]).any(axis=1)),
            "cf": args.cf,
            "grid": {},
        }
        per = {}
        for m in args.Ms:
            for p in args.ps if m else args.ps[:1]:
                r = np.repeat(np.arange(n), m)
                s_mp = sp.csr_matrix((nb_sims[:, :m].ravel() ** p, (r, nb_cols[:, :m].ravel())), shape=(n, n))
                for own in (0, 1) if m else (1,):
                    s = s_mp + sp.diags(has_cf.astype(np.float32)) if own else s_mp
                    s_t = s.T.tocsr()
                    for seedhop in args.seedhops:
                        key = f"M{m}_p{p}_self{own}_seedhop{seedhop}"
                        got = {lam: [] for lam in LAMS}
                        for b, ts in zip(blocks, text, strict=True):
                            cq = cf[q[b]]
                            if seedhop:
                                lack = (np.diff(cq.indptr) == 0).astype(np.float32)
                                cq = cq + sp.diags(lack) @ (s_mp[q[b]] @ cf)
                            bb = (cq @ s_t).toarray()
                            top = bb.max(axis=1, keepdims=True)
                            bb = np.where(top > 0, bb / np.maximum(top, 1e-12), 0.0)
                            for lam in LAMS:
                                got[lam].append(hits((1 - lam) * ts + lam * bb, q[b], t[b]))
                        for lam in LAMS:
                            per[(key, lam)] = np.concatenate(got[lam])
                        row["grid"][key] = {str(lam): counts(per[(key, lam)]) for lam in LAMS}
        base = per[(next(iter(row["grid"])), 0.0)]  # lam = 0: the TF-IDF cosine alone
        half = np.arange(len(q)) % 2
        row["halves"] = {}
        for a in (0, 1):
            best = max(per, key=lambda k, a=a: (int(per[k][half == a].sum()), -k[1]))
            row["halves"][f"chosen_on_{'even' if a == 0 else 'odd'}"] = {
                "setting": [best[0], best[1]],
                "chosen_half_hits": [int(per[best][half == a].sum()), int(base[half == a].sum())],
                "other_half_hits": [int(per[best][half != a].sum()), int(base[half != a].sum())],
            }
        best = max(per, key=lambda k: (int(per[k].sum()), -k[1]))
        row["best_on_all"] = {"setting": [best[0], best[1]], "hits": int(per[best].sum())}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out["datasets"][name] = row
    return print_line(out, skipped, load_before)


if __name__ == "__main__":
    raise SystemExit(main())
