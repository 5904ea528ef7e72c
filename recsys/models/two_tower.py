"""Two-tower personalised recommendations (the architecture eBay described).

- **Item tower**: embeddings of the item id (items seen fewer than
  ``min_item_count`` times share one "rare item" id), its brand and its
  category levels 0-2 -> dense layers -> L2-normalised vector. Every catalogue
  item gets one, so ``vectors_`` feeds the same HNSW index, filters and map as
  every other embedding model.
- **User tower**: the item-tower vectors of the last ``max_recent`` items of a
  session, pooled with one learned weight per recency position (padding masked
  out), then ``u = L2(W [p, relu(W1 p + b1)] + b)`` (the pooled vector plus a
  learned transition).
- **Training**: each position of each training session is an example (context
  = the items before it, target = the item); loss is the in-batch softmax over
  the batch's targets (temperature-scaled cosine), with the logQ correction
  (``logits - log P(item in batch)``) so popular items are not over-penalised
  as negatives.

At serving time the user tower runs in NumPy (weights stored as ``.npy``), so a
loaded model answers :meth:`TwoTowerModel.user_vectors` without Keras. Query the
item index with those vectors to apply the same filters as Explore.

:func:`evaluate_next_item` scores next-item HR@K and NDCG@K on held-out
sessions for this model, the mean-of-recent-item-vectors baseline
(:func:`mean_vector_recommender`) and popularity (:func:`popularity_recommender`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recsys.config import Progress, null_progress
from recsys.data.schema import category_level
from recsys.errors import ModelFitError
from recsys.models import _keras_utils as ku
from recsys.models.base import (
    PAD_ID,
    PAD_SCORE,
    EmbeddingModel,
    check_k,
    normalize_rows,
    padded_results,
    read_fit_log,
    write_fit_log,
)
from recsys.models.params import Param
from recsys.topk import topk_rows

logger = logging.getLogger(__name__)

_CAT_LEVELS = (0, 1, 2)
_USER_WEIGHTS = ("position_logits", "hidden_kernel", "hidden_bias", "out_kernel", "out_bias")

#: A recommender for evaluation: ``fn(recent_item_ids, k) -> ids (n, k)``.
Recommender = Callable[[list[list[str]], int], np.ndarray]


def _vocab_index(values: pd.Series) -> np.ndarray:
    values = values.fillna("").astype(str)
    vocab = [""] + sorted(set(values) - {""})
    lookup = {v: i for i, v in enumerate(vocab)}
    return values.map(lookup).to_numpy(dtype=np.int32)


def session_lists(dataset: Any, dedupe_consecutive: bool = True) -> list[list[str]]:
    """Item-id lists of a dataset's sequences, in position order (``a a b`` -> ``a b``)."""
    inter = dataset.interactions if hasattr(dataset, "interactions") else dataset
    if len(inter) == 0:
        return []
    df = inter.sort_values(["sequence_id", "position"], kind="stable")
    seq = df["sequence_id"].to_numpy()
    items = df["item_id"].astype(str).to_numpy()
    keep = np.ones(len(items), dtype=bool)
    if dedupe_consecutive:
        keep[1:] = ~((items[1:] == items[:-1]) & (seq[1:] == seq[:-1]))
    seq, items = seq[keep], items[keep]
    bounds = np.flatnonzero(seq[1:] != seq[:-1]) + 1
    return [list(chunk) for chunk in np.split(items, bounds)]


def _context_rows(model: Any, recent: Sequence[Sequence[str]], n: int) -> np.ndarray:
    """(len(recent), n) catalogue rows of the last n known items, right-aligned, -1 = padding."""
    out = np.full((len(recent), n), -1, dtype=np.int64)
    for i, items in enumerate(recent):
        rows = model.rows_of(list(items)) if len(items) else np.empty(0, dtype=np.int64)
        rows = rows[rows >= 0][-n:]
        if len(rows):
            out[i, n - len(rows) :] = rows
    return out


def _ranked(
    item_ids: np.ndarray, scores: np.ndarray, ctx: np.ndarray, k: int, exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ids/scores per row, excluding the context rows when asked, padded."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude_seen:
        r, c = np.nonzero(ctx >= 0)
        scores[r, ctx[r, c]] = -np.inf
    top, top_s = topk_rows(scores, k)
    n = scores.shape[0]
    ids, out_s = padded_results(n, k)
    ids[:, : top.shape[1]] = item_ids[top]
    out_s[:, : top.shape[1]] = top_s
    bad = ~np.isfinite(out_s)
    ids[bad] = PAD_ID
    out_s[bad] = PAD_SCORE
    return ids.astype(str), out_s


class TwoTowerModel(EmbeddingModel):
    """Item tower + user tower over recent items, trained with in-batch softmax.

    Parameters
    ----------
    embedding_dim : int
        Size of item and user vectors.
    id_dim, brand_dim, category_dim : int
        Sizes of the item-id, brand and category-level embeddings.
    hidden_units : list of int
        Hidden dense layers of the item tower.
    user_hidden : int
        Hidden units of the user tower's transition layer.
    max_recent : int
        N: how many recent items the user tower reads.
    min_item_count : int
        Items with fewer training events share the "rare item" id embedding
        (their vector then comes from brand and category).
    temperature : float
        Softmax temperature on cosine similarities. 0.1 was chosen on demo seed 1
        (next-item HR@10 1.15x the in-out Prod2Vec mean-of-recent baseline, against
        1.06x at 0.05, 1.14x at 0.2; 12 epochs instead of 6 overfit: 0.89x).
    logq_correction : bool
        Subtract log of each target's batch probability from its logit.
    epochs, batch_size : int
    learning_rate : float
    max_examples : int
        At most this many (context, target) examples are sampled per epoch.
    seed : int

    Fitted attributes
    -----------------
    vectors_ : float32 (n_items, embedding_dim)
        Item tower output (L2-normalised) for every catalogue item.
    popularity_ : float32 (n_items,)
        Training event counts (fallback for sessions with no known item).
    history_ : list of dict
        Per epoch: ``epoch, loss, seconds``.
    device_ : dict
        ``{"backend", "device", "mixed_precision"}`` at fit time; also in ``coverage_``.
    """

    family: ClassVar[str] = "two_tower"
    param_specs: ClassVar[dict[str, Param]] = {
        "embedding_dim": Param(64, "int", low=1),
        "id_dim": Param(48, "int", low=1),
        "brand_dim": Param(16, "int", low=1),
        "category_dim": Param(16, "int", low=1),
        "hidden_units": Param([128], "int_list", low=1),
        "user_hidden": Param(128, "int", low=1),
        "max_recent": Param(8, "int", low=1),
        "min_item_count": Param(1, "int", low=1),
        "temperature": Param(0.1, "float", low=0, low_open=True),
        "logq_correction": Param(True, "bool"),
        "epochs": Param(6, "int", low=1),
        "batch_size": Param(512, "int", low=1),
        "learning_rate": Param(0.003, "float", low=0, low_open=True),
        "max_examples": Param(200000, "int", low=1),
        "seed": Param(0, "int", low=0),
    }
    #: One help line per parameter (the Runs form shows them).
    param_help: ClassVar[dict[str, str]] = {
        "embedding_dim": "Size of the item and user vectors.",
        "id_dim": "Size of each item's own id embedding.",
        "brand_dim": "Size of the brand embedding.",
        "category_dim": "Size of each category level's embedding.",
        "hidden_units": "Hidden layers of the item tower, as a JSON list of sizes, e.g. [128].",
        "user_hidden": "Hidden units of the user tower (what it reads from the recent items).",
        "max_recent": "How many recent items the user tower reads.",
        "min_item_count": "Items with fewer training events share one 'rare item' id (their vector "
        "then comes from brand and category).",
        "temperature": "Softmax temperature on cosine similarities (0.1 chosen on the demo's validation).",
        "logq_correction": "Correct for popular items being in-batch negatives more often (logQ).",
        "epochs": "Passes over the training examples (12 overfit the demo).",
        "batch_size": "Examples per step; the other targets of a batch are the negatives.",
        "learning_rate": "Adam's learning rate.",
        "max_examples": "At most this many (recent items, next item) examples sampled per epoch.",
        "seed": "Random seed of the sampling and the initial weights.",
    }

    # -- features ------------------------------------------------------------
    def _item_features(
        self, catalog: pd.DataFrame, counts: np.ndarray, min_count: int
    ) -> dict[str, np.ndarray]:
        n = len(catalog)
        frequent = counts >= min_count
        ids = np.where(frequent, np.arange(n) + 2, 1).astype(np.int32)  # 0 = padding, 1 = rare item
        feats = {"id": ids}
        brand = catalog["brand"] if "brand" in catalog else pd.Series([""] * n)
        feats["brand"] = _vocab_index(brand)
        category = catalog["category"] if "category" in catalog else pd.Series([""] * n)
        for level in _CAT_LEVELS:
            feats[f"cat{level}"] = _vocab_index(category_level(category.fillna("").astype(str), level))
        return feats

    # -- network -------------------------------------------------------------
    def _build(self, p: dict[str, Any], sizes: dict[str, int]) -> tuple[Any, Any]:
        """The training model (context + target -> logits) and the item tower."""
        keras = ku.import_keras()
        L = keras.layers
        lay = ku.layers()
        n = p["max_recent"]
        dims = {
            "id": p["id_dim"],
            "brand": p["brand_dim"],
            **{f"cat{lv}": p["category_dim"] for lv in _CAT_LEVELS},
        }
        embs = {k: L.Embedding(sizes[k], d, name=f"{k}_embedding") for k, d in dims.items()}
        hidden = [
            L.Dense(u, activation="relu", name=f"item_hidden_{i}") for i, u in enumerate(p["hidden_units"])
        ]
        proj = L.Dense(p["embedding_dim"], dtype="float32", name="item_projection")
        norm = lay["L2Normalize"](name="item_l2")

        def item_tower(inputs: dict[str, Any]) -> Any:
            x = L.Concatenate()([embs[k](inputs[k]) for k in dims])
            for layer in hidden:
                x = layer(x)
            return norm(proj(x))

        tgt_in = {k: keras.Input((), dtype="int32", name=f"target_{k}") for k in dims}
        ctx_in = {k: keras.Input((n,), dtype="int32", name=f"context_{k}") for k in dims}
        mask_in = keras.Input((n,), dtype="float32", name="context_mask")
        logq_in = keras.Input((), dtype="float32", name="target_logq")

        target_vec = item_tower(tgt_in)
        ctx_vec = item_tower(ctx_in)
        pooled = lay["MaskedRecencyPooling"](name="recency_pooling")(ctx_vec, mask_in)
        h = L.Dense(p["user_hidden"], activation="relu", dtype="float32", name="user_hidden")(pooled)
        u = L.Dense(p["embedding_dim"], dtype="float32", name="user_out")(L.Concatenate()([pooled, h]))
        user_vec = lay["L2Normalize"](name="user_l2")(u)
        logits = lay["PairLogits"](1.0 / p["temperature"], name="pair_logits")(
            user_vec, target_vec, logq_in if p["logq_correction"] else None
        )
        inputs = {
            **{f"target_{k}": v for k, v in tgt_in.items()},
            **{f"context_{k}": v for k, v in ctx_in.items()},
            "context_mask": mask_in,
            "target_logq": logq_in,
        }
        trainer = keras.Model(inputs, logits, name="two_tower")
        item_model = keras.Model({f"target_{k}": v for k, v in tgt_in.items()}, target_vec, name="item_tower")
        return trainer, item_model

    # -- training ------------------------------------------------------------
    def fit(self, dataset: Any, progress: Progress | None = None) -> TwoTowerModel:
        """Fit on a dataset's sessions (interactions) and catalogue (metadata).

        Raises
        ------
        ModelFitError
            Bad parameters (the message names the parameter), or no session with
            two or more items.
        """
        progress = progress or null_progress
        p = self._validate()
        t_start = time.perf_counter()
        catalog = dataset.catalog.reset_index(drop=True)
        self.item_ids_ = np.asarray(catalog["item_id"].astype(str).to_numpy(), dtype=str)
        self._build_lookup()
        n_items = len(catalog)
        info = ku.device_info()
        self.device_ = dict(info)
        ku.seed_everything(p["seed"])
        rng = np.random.default_rng(p["seed"])
        total = p["epochs"] + 2
        progress(0, total, "two-tower: building training examples")

        sessions = session_lists(dataset)
        n = p["max_recent"]
        ctx_rows, tgt_rows = [], []
        for items in sessions:
            rows = self.rows_of(items)
            rows = rows[rows >= 0]
            if len(rows) < 2:
                continue
            padded = np.concatenate([np.full(n, -1, dtype=np.int64), rows])
            # example t: target rows[t], context = the n rows before it
            idx = np.arange(1, len(rows))[:, None] + np.arange(n)[None, :]
            ctx_rows.append(padded[idx])
            tgt_rows.append(rows[1:])
        if not tgt_rows:
            raise ModelFitError(
                f"{type(self).__name__}: no session has two or more catalogue items; "
                "the two-tower model needs sessions (check the dataset's interactions)"
            )
        ctx = np.concatenate(ctx_rows)
        tgt = np.concatenate(tgt_rows)
        counts = np.bincount(
            self.rows_of(dataset.interactions["item_id"].astype(str).tolist()).clip(-1) + 1,
            minlength=n_items + 1,
        )[1:].astype(np.float32)
        self.popularity_ = counts
        feats = self._item_features(catalog, counts, p["min_item_count"])
        sizes = {"id": n_items + 2, **{k: int(v.max()) + 1 for k, v in feats.items() if k != "id"}}
        tgt_counts = np.bincount(tgt, minlength=n_items).astype(np.float64)
        log_q = np.log(np.maximum(tgt_counts, 1) / tgt_counts.sum()).astype(np.float32)

        keras = ku.import_keras()
        with ku.precision_scope(info["mixed_precision"]):
            trainer, item_model = self._build(p, sizes)
        trainer.compile(
            optimizer=keras.optimizers.Adam(p["learning_rate"]),
            loss=ku.in_batch_softmax_loss,
            jit_compile=ku.jit_compile(),
        )
        self.history_ = []
        progress(1, total, f"two-tower: training on {len(tgt)} examples on {info['device']}")
        for epoch in range(p["epochs"]):
            t0 = time.perf_counter()
            pick = rng.permutation(len(tgt))[: p["max_examples"]]
            x = self._inputs(feats, ctx[pick], tgt[pick], log_q)
            hist = trainer.fit(
                x, tgt[pick].astype(np.int32), batch_size=p["batch_size"], epochs=1, shuffle=False, verbose=0
            )
            record = {
                "epoch": epoch + 1,
                "loss": float(hist.history["loss"][-1]),
                "seconds": round(time.perf_counter() - t0, 3),
            }
            self.history_.append(record)
            msg = f"two-tower: epoch {epoch + 1}/{p['epochs']} loss {record['loss']:.4f}"
            logger.info(msg)
            progress(epoch + 2, total, msg)

        self.vectors_ = normalize_rows(
            np.asarray(
                item_model.predict({f"target_{k}": v for k, v in feats.items()}, batch_size=4096, verbose=0),
                dtype=np.float32,
            )
        )
        weights = {
            "position_logits": trainer.get_layer("recency_pooling").get_weights()[0],
            "hidden_kernel": trainer.get_layer("user_hidden").get_weights()[0],
            "hidden_bias": trainer.get_layer("user_hidden").get_weights()[1],
            "out_kernel": trainer.get_layer("user_out").get_weights()[0],
            "out_bias": trainer.get_layer("user_out").get_weights()[1],
        }
        self._user_weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self._trainer = trainer  # kept for tests comparing the NumPy user tower with Keras
        self._feats = feats
        self.train_seconds_ = round(time.perf_counter() - t_start, 3)
        self._set_coverage(self.item_ids_)
        self.coverage_.update(
            {
                "device": info["device"],
                "backend": info["backend"],
                "mixed_precision": info["mixed_precision"],
                "items_with_id_embedding": int((feats["id"] > 1).sum()),
                "training_examples": int(len(tgt)),
            }
        )
        progress(total, total, f"two-tower: {n_items} item vectors in {self.train_seconds_:.1f}s")
        return self

    def _inputs(
        self, feats: dict[str, np.ndarray], ctx: np.ndarray, tgt: np.ndarray, log_q: np.ndarray
    ) -> dict[str, np.ndarray]:
        mask = ctx >= 0
        safe = np.where(mask, ctx, 0)
        x = {f"target_{k}": v[tgt] for k, v in feats.items()}
        x.update({f"context_{k}": np.where(mask, v[safe], 0).astype(np.int32) for k, v in feats.items()})
        x["context_mask"] = mask.astype(np.float32)
        x["target_logq"] = log_q[tgt]
        return x

    # -- user side -------------------------------------------------------------
    def user_vectors(self, recent_item_ids: Sequence[Sequence[str]]) -> np.ndarray:
        """User vectors for sessions given as lists of recent item ids (oldest first).

        Only the last ``max_recent`` items known to the model are used; unknown
        ids are ignored. A session with no known item gets a zero vector.

        Returns
        -------
        numpy.ndarray of float32, shape (n, embedding_dim), L2-normalised rows
        (zero rows for empty sessions). Query the item index with these.
        """
        self._check_fitted()
        ctx = _context_rows(self, recent_item_ids, int(self.params["max_recent"]))
        return self._user_vectors_from_rows(ctx)

    def _user_vectors_from_rows(self, ctx: np.ndarray) -> np.ndarray:
        w = self._user_weights
        mask = ctx >= 0
        items = self.vectors_[np.where(mask, ctx, 0)]  # (n, N, d)
        logits = np.where(mask, w["position_logits"][None, :], -np.inf)
        logits = logits - np.where(mask.any(axis=1, keepdims=True), logits.max(axis=1, keepdims=True), 0.0)
        ex = np.where(mask, np.exp(logits), 0.0)
        weights = ex / np.maximum(ex.sum(axis=1, keepdims=True), 1e-9)
        pooled = (items * weights[:, :, None]).sum(axis=1).astype(np.float32)
        h = np.maximum(pooled @ w["hidden_kernel"] + w["hidden_bias"], 0.0)
        u = np.concatenate([pooled, h], axis=1) @ w["out_kernel"] + w["out_bias"]
        u = normalize_rows(u)
        u[~mask.any(axis=1)] = 0.0
        return u.astype(np.float32)

    def recommend(
        self, recent_item_ids: Sequence[Sequence[str]], k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for each session (exact search over all item vectors, no filters).

        Sessions with no known item get the most popular items (score 0).
        For filtered results, query the run's index with :meth:`user_vectors`.

        Returns
        -------
        ids : numpy.ndarray of str, shape (n, k), padded with "".
        scores : numpy.ndarray of float32, shape (n, k), -inf for padding.
        """
        self._check_fitted()
        check_k(k)
        ctx = _context_rows(self, recent_item_ids, int(self.params["max_recent"]))
        users = self._user_vectors_from_rows(ctx)
        scores = users @ self.vectors_.T
        empty = ~(ctx >= 0).any(axis=1)
        if empty.any():
            pop = getattr(self, "popularity_", np.zeros(len(self.item_ids_), dtype=np.float32))
            scores[empty] = (pop / max(float(pop.max()), 1.0) * 1e-3)[None, :]
        return _ranked(self.item_ids_, scores, ctx, k, exclude_seen)

    # -- persistence ---------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        super()._save_state(path)
        for name in _USER_WEIGHTS:
            np.save(path / f"user_{name}.npy", self._user_weights[name], allow_pickle=False)
        np.save(path / "popularity.npy", np.asarray(self.popularity_, dtype=np.float32), allow_pickle=False)
        write_fit_log(self, path / "two_tower_history.json")

    def _load_state(self, path: Path) -> None:
        from recsys.stored import read_npy  # a damaged file is named

        super()._load_state(path)
        self._user_weights = {name: read_npy(path / f"user_{name}.npy") for name in _USER_WEIGHTS}
        self.popularity_ = read_npy(path / "popularity.npy")
        read_fit_log(self, path / "two_tower_history.json")


# -- next-item evaluation ------------------------------------------------------------
def popularity_recommender(train_sessions: Sequence[Sequence[str]], exclude_seen: bool = True) -> Recommender:
    """Most popular items of the training sessions (seen items excluded)."""
    ids, counts = np.unique(np.asarray([i for s in train_sessions for i in s], dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    ranked = ids[order]

    def recommend(recent: list[list[str]], k: int) -> np.ndarray:
        out = np.full((len(recent), k), PAD_ID, dtype=object)
        head = ranked[: k + 10 * 8]  # enough to skip the seen items
        for i, items in enumerate(recent):
            seen = set(items) if exclude_seen else set()
            picks = [x for x in head if x not in seen][:k]
            if len(picks) < k and exclude_seen:
                picks = [x for x in ranked if x not in seen][:k]
            out[i, : len(picks)] = picks
        return out.astype(str)

    return recommend


def mean_vector_recommender(
    model: EmbeddingModel, max_recent: int = 8, exclude_seen: bool = True
) -> Recommender:
    """Score items by cosine to the mean of the last ``max_recent`` known items' unit vectors.

    The Prod2Vec "mean of recent items" baseline; works for any embedding model (the
    recent items' query vectors for a model with a second space for seeds, as
    :func:`recsys.search.recommend_for_recent`).
    """
    unit = model.unit_vectors()
    query_unit = model.query_unit_vectors()

    def recommend(recent: list[list[str]], k: int) -> np.ndarray:
        ctx = _context_rows(model, recent, max_recent)
        mask = ctx >= 0
        users = (query_unit[np.where(mask, ctx, 0)] * mask[:, :, None]).sum(axis=1)
        users = normalize_rows(users)
        return _ranked(model.item_ids_, users @ unit.T, ctx, k, exclude_seen)[0]

    return recommend


def evaluate_next_item(
    model_or_fn: TwoTowerModel | Recommender,
    sessions_test: Sequence[Sequence[str]],
    k: int = 10,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Next-item HR@K and NDCG@K: for each test session, the last item is the target
    and the items before it are the recent views.

    Parameters
    ----------
    model_or_fn : TwoTowerModel or callable
        An object with ``recommend(recent, k)`` (returning ids first) or a
        function ``fn(recent, k) -> ids (n, k)``.
    sessions_test : sequence of list of str
        Held-out sessions; those with fewer than two items are skipped.
    k : int

    Returns
    -------
    dict
        ``{"hr@K": float, "ndcg@K": float, "n_cases": int}``.
    """
    check_k(k)
    cases = [list(map(str, s)) for s in sessions_test if len(s) >= 2]
    if hasattr(model_or_fn, "recommend"):

        def fn(recent: list[list[str]], kk: int) -> np.ndarray:
            return model_or_fn.recommend(recent, kk)[0]
    else:
        fn = model_or_fn
    hits = np.zeros(len(cases), dtype=bool)
    gains = np.zeros(len(cases), dtype=np.float64)
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        recent = [s[:-1] for s in chunk]
        targets = np.asarray([s[-1] for s in chunk], dtype=str)
        ids = np.asarray(fn(recent, k), dtype=str)[:, :k]
        match = ids == targets[:, None]
        found = match.any(axis=1)
        pos = match.argmax(axis=1)
        hits[start : start + len(chunk)] = found
        gains[start : start + len(chunk)] = np.where(found, 1.0 / np.log2(pos + 2.0), 0.0)
    n = len(cases)
    return {
        f"hr@{k}": float(hits.mean()) if n else 0.0,
        f"ndcg@{k}": float(gains.mean()) if n else 0.0,
        "n_cases": int(n),
    }
