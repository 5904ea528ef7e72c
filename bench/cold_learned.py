"""Two learned corrections of the TF-IDF kNN for cold items, on the validation split (issue 13).

The two ideas the README listed as not tried, each measured on the **validation** split carved
from the training part exactly as ``bench/cold_blend.py`` does (the training part's latest 10%;
cold next-item cases: target with fewer than 3 fitting-part interactions, query = the last item;
never the test split), against the exact TF-IDF kNN (the tfidf family's representation):

- ``terms``: **supervised term weights**. One weight per TF-IDF term (title words and word
  pairs, brand and category tokens), learned on the fitting part's co-occurring pairs: each
  positive (a, b) is ranked against ``--hard`` negatives drawn from a's nearest TF-IDF items
  (those that do not co-occur with it) and ``--rand`` random items by the score
  ``s * sum_t w_t x_at x_ct`` (``x`` the TF-IDF rows), a sampled softmax fitted by L-BFGS-B
  with ``w >= 0`` and the penalty ``lam / 2 * ||w - 1||^2``: a term no pair speaks of keeps its
  IDF weight, and the items' vectors become ``unit(x * sqrt(w))``, so the kNN stays an exact
  sparse cosine. Different from s28-13c's lift weights (a ratio of counts of pairs sharing a
  title word over chance within the leaf, title words only): here the weights are fitted jointly
  on the ranking the kNN makes, against the neighbours it would wrongly rank first.
  ``--shared``: one weight per kind of term instead (``w = exp(F beta)``, ``F`` 11 one-hot
  descriptors: block, IDF quintile, digit, length), ``--tail-count N``: only positives whose
  b has at most N interactions (the pairs nearest a cold target).
- ``residual``: **a residual tower initialised at the TF-IDF projection**. An item's vector is
  ``unit(h + R(h))``, ``h`` the content model's dense TF-IDF side (hashed to ``--dim``
  columns, as the model does past 1,024 terms), ``R`` a two-layer MLP whose last layer starts
  at zero, so at step 0 the tower IS the TF-IDF side; it is trained on the content model's
  objective (temperature-scaled in-batch softmax over co-occurring pairs of the fitting part),
  so learning moves it only where co-purchases say so. Scored after every epoch.
  ``--train-projection``: the hashing matrix (terms x dim, from the side's +-1 codes) is trained
  too; ``--tail-count`` as above.

Every setting (``lam`` and the negatives; the number of epochs) is chosen on half the cases
and scored on the other half (even / odd, then the reverse; "held out" sums the two halves),
as s30-13c did. Prints ONE JSON line with the load average.

Usage: ``python bench/cold_learned.py --method terms|residual [--only NAME ...] [--max-cases N]``
(the figures: docs/MEASUREMENTS.md, "Supervised term weights ... (issue 13, s31-c)").
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
from tfidf_side import print_line, start  # noqa: E402

K = 20


def rank_hits(unit_q, unit_all, q: np.ndarray, t: np.ndarray, sparse: bool) -> np.ndarray:
    """Whether each case's target ranks in the top K by cosine (seed excluded; ties and a zero
    score count against the target)."""
    out = []
    for lo in range(0, len(q), 256):
        qq, tt = q[lo : lo + 256], t[lo : lo + 256]
        sims = unit_q[qq] @ unit_all.T
        sims = sims.toarray() if sparse else np.asarray(sims)
        r = np.arange(len(qq))
        sims[r, qq] = -np.inf
        pos = sims[r, tt]
        out.append(((sims >= pos[:, None]).sum(axis=1) <= K) & (pos > 1e-7))
    return np.concatenate(out)


def held_out(hits: dict[str, np.ndarray]) -> dict:
    """Choose the setting with most hits on the even cases and score it on the odd ones, and the reverse."""
    n = len(next(iter(hits.values())))
    even = np.arange(n) % 2 == 0
    out = {"total": 0}
    for name, pick, score in (("even->odd", even, ~even), ("odd->even", ~even, even)):
        best = max(hits, key=lambda k: (int(hits[k][pick].sum()), k == "tfidf"))
        out[name] = {"chosen": best, "hits": int(hits[best][score].sum())}
        out["total"] += int(hits[best][score].sum())
    return out


def positive_pairs(
    fit_part, ids: np.ndarray, window: int, max_pairs: int, rng, tail_count: int = 0
) -> np.ndarray:
    """Co-occurring (a, b) item rows of the fitting part (both directions), at most ``max_pairs``
    drawn by ``count ** 0.5``; with ``tail_count`` only pairs whose b has at most that many
    interactions (the pairs nearest a cold target)."""
    from recsys.data.schema import interaction_counts
    from recsys.models.content.pairs import cooccurrence_pairs

    row_of = {x: i for i, x in enumerate(ids)}
    pairs = cooccurrence_pairs(fit_part.interactions, row_of, window)
    if tail_count > 0:
        n_int = interaction_counts(fit_part.interactions, ids)
        pairs = pairs[n_int[pairs["b"].to_numpy()] <= tail_count]
    ab = pairs[["a", "b"]].to_numpy(dtype=np.int64)
    w = pairs["count"].to_numpy(dtype=np.float64) ** 0.5
    if len(ab) > max_pairs:
        ab = ab[rng.choice(len(ab), size=max_pairs, replace=False, p=w / w.sum())]
    return ab


# -- supervised term weights ---------------------------------------------------------------------


def hard_negatives(x, anchors: np.ndarray, pos_codes: set, n: int, depth: int, rng) -> np.ndarray:
    """For each anchor, ``n`` of its ``depth`` nearest TF-IDF items that do not co-occur with it."""
    from recsys.topk import topk_rows

    xt = x.T.tocsr()
    out = np.empty((len(anchors), n), dtype=np.int64)
    uniq, inv = np.unique(anchors, return_inverse=True)
    near = np.empty((len(uniq), depth), dtype=np.int64)
    for lo in range(0, len(uniq), 512):
        rows = uniq[lo : lo + 512]
        sims = (x[rows] @ xt).toarray()
        sims[np.arange(len(rows)), rows] = -np.inf
        near[lo : lo + 512], _ = topk_rows(sims, depth)
    m = x.shape[0]
    for i, a in enumerate(anchors):
        cand = [c for c in near[inv[i]] if a * m + c not in pos_codes]
        pick = rng.choice(cand, size=n, replace=len(cand) < n) if cand else rng.integers(0, m, n)
        out[i] = pick
    return out


def term_features(text) -> np.ndarray:
    """A few descriptors per TF-IDF column (for weights shared by kinds of terms): its block
    (title word, title word pair, brand, category), its IDF in five bins, whether it holds a
    digit, whether it is at most two characters long; one-hot, (n_terms, 11)."""
    cols = []
    for name, _w, vocab, idf in text.blocks:
        terms = sorted(vocab, key=vocab.__getitem__)
        for term, v in zip(terms, idf):
            kind = {"brand": 2, "category": 3}.get(name, 1 if " " in term else 0)
            cols.append((kind, float(v), any(ch.isdigit() for ch in term), len(term) <= 2))
    idf = np.array([c[1] for c in cols])
    bins = np.digitize(idf, np.quantile(idf, [0.2, 0.4, 0.6, 0.8]))
    f = np.zeros((len(cols), 11))
    f[np.arange(len(cols)), [c[0] for c in cols]] = 1.0
    f[np.arange(len(cols)), 4 + bins] = 1.0
    f[:, 9] = [c[2] for c in cols]
    f[:, 10] = [c[3] for c in cols]
    return f


def fit_term_weights(
    x, ab: np.ndarray, neg: np.ndarray, lam: float, feats: np.ndarray | None = None
) -> np.ndarray:
    """One weight per term: sampled softmax of each positive against its negatives, score
    ``s * (x_a * x_c) . w``; L-BFGS-B. Per term (``feats`` None): ``w >= 0``, penalty
    ``lam / 2 * ||w - 1||^2``. Shared by kinds of terms: ``w = exp(feats @ beta)``, penalty
    ``lam / 2 * ||beta||^2`` (both start at the TF-IDF weights, ``w = 1``)."""
    import scipy.sparse as sp
    from scipy.optimize import minimize

    p, kneg = neg.shape
    cand = np.concatenate([ab[:, 1:2], neg], axis=1)  # (p, 1 + kneg), the positive first
    anchor = np.repeat(ab[:, 0], 1 + kneg)
    phi = sp.csr_matrix(x[anchor].multiply(x[cand.ravel()]), dtype=np.float64)  # rows: pair products
    phit = phi.T.tocsr()
    n_params = x.shape[1] if feats is None else feats.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        par, s = theta[:-1], theta[-1]
        w = par if feats is None else np.exp(feats @ par)
        base = (phi @ w).reshape(p, 1 + kneg)
        z = s * base
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        tot = e.sum(axis=1, keepdims=True)
        value = float(np.mean(np.log(tot).ravel() + zmax.ravel() - z[:, 0]))
        g = e / tot
        g[:, 0] -= 1.0
        g /= p
        grad_w = s * (phit @ g.ravel())
        grad_s = float((g * base).sum())
        prior = par - 1.0 if feats is None else par
        grad_par = (grad_w if feats is None else feats.T @ (grad_w * w)) + lam * prior
        value += 0.5 * lam * float((prior**2).sum())
        return value, np.concatenate([grad_par, [grad_s]])

    start = np.ones(n_params) if feats is None else np.zeros(n_params)
    theta0 = np.concatenate([start, [10.0]])
    bounds = [(0.0, None) if feats is None else (None, None)] * n_params + [(None, None)]
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 300})
    return res.x[:-1] if feats is None else np.exp(feats @ res.x[:-1])


def run_terms(fit_part, ids, q, t, args, rng) -> dict:
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    from recsys.models import make_model
    from recsys.models.tfidf import TfidfText

    cat = fit_part.catalog.drop_duplicates("item_id").reset_index(drop=True)
    assert (cat["item_id"].astype(str).to_numpy() == ids).all()
    text = TfidfText(make_model("tfidf").params)
    x = text.fit_transform(cat).astype(np.float64)
    feats = term_features(text) if args.shared else None
    hits = {"tfidf": rank_hits(x, x, q, t, sparse=True)}
    t0 = time.perf_counter()
    ab = positive_pairs(fit_part, ids, args.window, args.max_pairs, rng, args.tail_count)
    pos_codes = set((ab[:, 0] * x.shape[0] + ab[:, 1]).tolist())
    hard = (
        hard_negatives(x, ab[:, 0], pos_codes, max(args.hard), 50, rng)
        if max(args.hard) > 0
        else np.empty((len(ab), 0), dtype=np.int64)
    )
    rand = rng.integers(0, x.shape[0], size=(len(ab), max(args.rand)))
    info = {
        "pairs": int(len(ab)),
        "terms": int(x.shape[1]),
        "negatives_s": round(time.perf_counter() - t0, 1),
    }
    fits = {}
    for nh in args.hard:
        for nr in args.rand:
            if nh + nr == 0:
                continue
            neg = np.concatenate([hard[:, :nh], rand[:, :nr]], axis=1)
            for lam in args.lams:
                t1 = time.perf_counter()
                w = fit_term_weights(x, ab, neg, lam, feats)
                xw = normalize(sp.csr_matrix(x @ sp.diags(np.sqrt(w))))
                key = f"hard{nh}_rand{nr}_lam{lam:g}"
                hits[key] = rank_hits(xw, xw, q, t, sparse=True)
                fits[key] = {
                    "hits": int(hits[key].sum()),
                    "seconds": round(time.perf_counter() - t1, 1),
                    "w_median": round(float(np.median(w)), 3),
                    "w_zero_share": round(float((w < 1e-6).mean()), 3),
                }
                print(json.dumps({key: fits[key]}), file=sys.stderr, flush=True)
    return {"info": info, "settings": fits, "hits": hits}


# -- residual tower at the TF-IDF projection -----------------------------------------------------


def run_residual(fit_part, ids, q, t, args, rng) -> dict:
    """The tower ``unit(h + R(h))`` with ``R``'s last layer at zero; ``h`` the hashed TF-IDF side
    (fixed), or with ``--train-projection`` ``h = unit(x P)`` with ``P`` (terms x dim) trained
    from the side's hashing codes (each term's +-1 in its bucket), so the terms move too."""
    import scipy.sparse as sp

    from recsys.models import make_model
    from recsys.models._keras_utils import import_keras
    from recsys.models.base import normalize_rows
    from recsys.models.content.hybrid import TextSide
    from recsys.models.tfidf import TfidfText

    cat = fit_part.catalog.drop_duplicates("item_id").reset_index(drop=True)
    side, h = TextSide.fit(cat, make_model("tfidf").params, args.dim, "hash", 0)
    x = TfidfText(make_model("tfidf").params).fit_transform(cat).tocsr().astype(np.float32)
    hits = {"tfidf": rank_hits(x, x, q, t, sparse=True), "epoch0": rank_hits(h, h, q, t, sparse=False)}
    ab = positive_pairs(fit_part, ids, args.window, 10**9, rng, args.tail_count)
    info = {
        "pairs": int(len(ab)),
        "side": side.describe(),
        "train_projection": bool(args.train_projection),
        "tail_count": args.tail_count,
    }
    keras = import_keras()
    import tensorflow as tf

    codes = side.arrays.get("codes")
    if args.train_projection and codes is None:
        raise SystemExit("--train-projection needs a hashed side (more terms than --dim)")
    p0 = None
    if codes is not None:
        p0 = sp.csr_matrix(
            (codes[:, 1].astype(np.float32), (np.arange(len(codes)), codes[:, 0])),
            shape=(len(codes), side.dim),
        ).toarray()

    def sparse_rows(rows: np.ndarray):
        sub = x[rows].tocoo()
        return tf.SparseTensor(
            np.stack([sub.row, sub.col], axis=1).astype(np.int64), sub.data, (len(rows), x.shape[1])
        )

    keras.utils.set_random_seed(0)
    for lr in args.lrs:
        r1 = keras.layers.Dense(args.hidden, activation="relu")
        r2 = keras.layers.Dense(side.dim, kernel_initializer="zeros", bias_initializer="zeros")
        r2(r1(keras.ops.zeros((1, side.dim))))
        proj = tf.Variable(p0) if args.train_projection else None
        variables = [*r1.trainable_variables, *r2.trainable_variables] + ([proj] if proj is not None else [])
        opt = keras.optimizers.Adam(lr)
        hv = tf.constant(h)

        def tower(hb, r1=r1, r2=r2):
            return tf.math.l2_normalize(hb + r2(r1(hb)), axis=1)

        def base(rows_or_sparse, proj=proj, hv=hv):
            if proj is None:
                return tf.gather(hv, rows_or_sparse)
            return tf.math.l2_normalize(tf.sparse.sparse_dense_matmul(rows_or_sparse, proj), axis=1)

        def make_step(variables=variables, opt=opt, tower=tower, base=base):
            def train_step(a, b):
                with tf.GradientTape() as tape:
                    ea, eb = tower(base(a)), tower(base(b))
                    logits = tf.matmul(ea, eb, transpose_b=True) / args.temperature
                    labels = tf.range(tf.shape(ea)[0])
                    loss = tf.reduce_mean(
                        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                    )
                grads = tape.gradient(loss, variables)
                opt.apply_gradients(zip(grads, variables))
                return loss

            return train_step

        step = make_step()
        step_fn = step if proj is not None else tf.function(step)
        for epoch in range(1, args.epochs + 1):
            t1 = time.perf_counter()
            pick = rng.integers(0, len(ab), size=args.pairs_per_epoch)
            losses = []
            for lo in range(0, len(pick), args.batch_size):
                bb = ab[pick[lo : lo + args.batch_size]]
                if proj is None:
                    losses.append(float(step_fn(tf.constant(bb[:, 0]), tf.constant(bb[:, 1]))))
                else:
                    losses.append(float(step_fn(sparse_rows(bb[:, 0]), sparse_rows(bb[:, 1]))))
            hb = h if proj is None else normalize_rows(np.asarray(x @ proj.numpy(), dtype=np.float32))
            emb = np.concatenate(
                [tower(tf.constant(hb[lo : lo + 4096])).numpy() for lo in range(0, len(hb), 4096)]
            )
            key = f"lr{lr:g}_epoch{epoch}"
            hits[key] = rank_hits(emb, emb, q, t, sparse=False)
            row = {"hits": int(hits[key].sum()), "loss": round(float(np.mean(losses)), 4)}
            row["seconds"] = round(time.perf_counter() - t1, 1)
            print(json.dumps({key: row}), file=sys.stderr, flush=True)
    return {"info": info, "hits": hits}


def main(argv: list[str] | None = None) -> int:
    from quality import split_of

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--method", choices=("terms", "residual"), required=True)
    ap.add_argument("--only", nargs="+", default=["online_retail", "instacart"])
    ap.add_argument("--max-cases", type=int, default=None)
    ap.add_argument("--window", type=int, default=3, help="co-occurrence window (the content model's)")
    ap.add_argument("--seed", type=int, default=0)
    # terms
    ap.add_argument("--max-pairs", type=int, default=50000)
    ap.add_argument("--hard", nargs="+", type=int, default=[0, 8])
    ap.add_argument("--rand", nargs="+", type=int, default=[0, 8])
    ap.add_argument(
        "--tail-count", type=int, default=0, help="positives: b with at most this many interactions"
    )
    ap.add_argument("--shared", action="store_true", help="weights shared by kinds of terms (11 descriptors)")
    ap.add_argument("--lams", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2])
    # residual
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--train-projection", action="store_true", help="train the hashing projection too")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lrs", nargs="+", type=float, default=[1e-3])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--pairs-per-epoch", type=int, default=40000)
    args = ap.parse_args(argv)
    load_before, data, skipped, out = start(args.only)
    for name, ds in data.items():
        rng = np.random.default_rng(args.seed)
        train, _test, _ = split_of(ds)
        fit_part, valid, _ = split_of(train)
        ids = fit_part.catalog.drop_duplicates("item_id")["item_id"].astype(str).to_numpy()
        seeds, targets, q, t, cold_seed = cold_cases(fit_part, valid, ids, args.max_cases)
        t0 = time.perf_counter()
        run = run_terms if args.method == "terms" else run_residual
        res = run(fit_part, ids, q, t, args, rng)
        hits = res.pop("hits")
        base = int(hits["tfidf"].sum())
        best = max(hits, key=lambda k: int(hits[k].sum()))
        ho = held_out(hits)
        row = {
            "cases": int(len(q)),
            "cold_seed_cases": int(cold_seed.sum()),
            "tfidf_hits": base,
            "tfidf_hits_cold_warm_seed": [
                int(hits["tfidf"][cold_seed].sum()),
                int(hits["tfidf"][~cold_seed].sum()),
            ],
            "by_setting": {k: int(v.sum()) for k, v in hits.items()},
            "grid_best": {
                "setting": best,
                "hits": int(hits[best].sum()),
                "ratio": round(hits[best].sum() / max(base, 1), 3),
            },
            "held_out": {**ho, "ratio": round(ho["total"] / max(base, 1), 3)},
            "seconds": round(time.perf_counter() - t0, 1),
            **res,
        }
        out["datasets"][name] = row
        print(json.dumps({name: row}), file=sys.stderr, flush=True)
    out["method"] = args.method
    out["args"] = {k: v for k, v in vars(args).items() if k not in ("only", "method")}
    return print_line(out, skipped, load_before)


if __name__ == "__main__":
    raise SystemExit(main())
