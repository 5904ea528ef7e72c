"""Session-based nearest-neighbour baselines (Ludewig & Jannach, 2018, "Evaluation of
session-based recommendation algorithms"; the ``session-rec`` framework).

- :class:`ItemKNN` (session-rec ``iknn``): item co-occurrence within sessions, scored
  by cosine with a shrinkage term, ``c_ij / ((n_i + lambda)^alpha (n_j + lambda)^(1-alpha))``
  (``n_i``: sessions of item i); a session is answered from its last item.
- :class:`SessionKNN` (``sknn``): the current session's nearest neighbours among past
  sessions. Candidate neighbours are the ``sample_size`` most recent training sessions
  that share an item with it; the ``k`` most similar of those (cosine of the binary
  item sets) vote for their items, each with its similarity.
- :class:`VSessionKNN` (``vsknn``): the vector variant. The current session is a vector
  whose items weigh more the more recent they are (``weighting``); a neighbour's
  similarity is the summed weight of the items it shares divided by the session
  length; its vote is decayed by how far back in the current session the most recent
  shared item lies (``weighting_score``: 1/d for "div"); with ``idf_weighting`` w a
  neighbour's vote for item i is multiplied by ``1 + w idf_i``, ``idf_i = log(S / S_i)``
  (S training sessions, S_i of them holding i), so rare items a neighbour shares count
  more (session-rec's ``idf_weighting``, there on event counts; sessions here, so idf >= 0).

All three recommend from a whole session (:meth:`recommend`, what serves "recent
views"), and from one item (:meth:`similar`, a one-item session), so the same model
interface, evaluation and contract tests apply. Everything is sparse matrix algebra
(scipy.sparse) over batches of sessions; ties are broken by item order (the declared
secondary key), so results are deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recsys.config import Progress, null_progress
from recsys.errors import ModelFitError
from recsys.models.base import PAD_ID, ItemModel, check_k, drop_seen, load_arrays, padded_results, save_arrays
from recsys.models.baselines import SEQUENCE_HELP, CooccurrenceModel, _catalog_ids
from recsys.models.params import Param

logger = logging.getLogger(__name__)

#: Longest stretch of a session (its most recent items) a query reads.
MAX_QUERY_ITEMS = 100


def _last_known(model: ItemModel, recent: Sequence[Sequence[str]]) -> list[str]:
    """The most recent item of each session that the model knows ("" when none)."""
    out = []
    for items in recent:
        items = [str(i) for i in items]
        rows = model.rows_of(items) if items else np.zeros(0, dtype=np.int64)
        known = np.flatnonzero(rows >= 0)
        out.append(items[known[-1]] if len(known) else PAD_ID)
    return out


def _top_k_sparse(scores: Any, k: int, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, score) of the k best positive entries of each row of a sparse matrix,
    best first; ties by column (item order)."""
    coo = scores.tocoo()
    keep = coo.data > 0
    r, c, s = coo.row[keep], coo.col[keep], coo.data[keep].astype(np.float32)
    order = np.lexsort((c, -s, r))
    r, c, s = r[order], c[order], s[order]
    starts = np.searchsorted(r, np.arange(n_rows))
    rank = np.arange(len(r)) - starts[r]
    sel = rank < k
    return r[sel], c[sel], s[sel]


def _lookup(matrix: Any, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``matrix[r, c]`` for arrays of coordinates (0 where the entry is absent), vectorised."""
    coo = matrix.tocoo()
    n_cols = np.int64(matrix.shape[1])
    keys = coo.row.astype(np.int64) * n_cols + coo.col
    order = np.argsort(keys, kind="stable")
    keys, data = keys[order], coo.data[order]
    want = r.astype(np.int64) * n_cols + c
    at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    if not len(keys):
        return np.zeros(len(want), dtype=np.float64)
    return np.where(keys[at] == want, data[at], 0.0).astype(np.float64)


class ItemKNN(CooccurrenceModel):
    """session-rec's item kNN: co-occurrence in sessions, cosine with shrinkage.

    Parameters
    ----------
    top_k : int
        Neighbours kept per item (session-rec ``n_sims``, default 100).
    lmbd : float
        Shrinkage added to both supports (default 20).
    alpha : float
        Balance of the two supports, 0.5 = cosine (default).
    min_count, fill_with_popular, separate_by, category_level, max_len
        As :class:`recsys.models.baselines.CooccurrenceModel` (whole sessions by default).
    """

    family: ClassVar[str] = "item_knn"
    param_specs: ClassVar[dict[str, Param]] = {
        "top_k": Param(100, "int", low=1),
        "lmbd": Param(20.0, "float", low=0),
        "alpha": Param(0.5, "float", low=0, high=1),
        **{
            name: CooccurrenceModel.param_specs[name]
            for name in ("min_count", "fill_with_popular", "separate_by", "category_level", "max_len")
        },
    }
    param_help: ClassVar[dict[str, str]] = dict(SEQUENCE_HELP) | {
        "lmbd": "Shrinkage added to both items' counts: damps pairs of rarely seen items (session-rec 20).",
        "alpha": "Balance of the two items' counts in the denominator; 0.5 = cosine.",
    }

    def fit(self, dataset: Any, progress: Progress | None = None) -> ItemKNN:
        """Count co-occurrences in whole sessions and keep the ``top_k`` neighbours per item."""
        return super().fit(dataset, progress)

    def _kind(self) -> str:
        return "iknn"

    def _sim_extra(self) -> dict[str, float]:
        return {"lmbd": float(self.params["lmbd"]), "alpha": float(self.params["alpha"])}

    def recommend(
        self, recent_item_ids: Sequence[Sequence[str]], k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k for each session from its most recent known item (session-rec ``iknn``).

        With ``exclude_seen`` the session's items are left out of its list.
        """
        self._check_fitted()
        check_k(k)
        recent = [[str(i) for i in s] for s in recent_item_ids]
        last = _last_known(self, recent)
        extra = max((len(set(s)) for s in recent), default=0) if exclude_seen else 0
        ids, scores = self.similar(last, k + extra)
        if exclude_seen:
            return drop_seen(ids, scores, recent, k)
        return ids[:, :k], scores[:, :k]


class SessionKNN(ItemModel):
    """Session-based kNN (session-rec ``sknn``, "ContextKNN").

    Parameters
    ----------
    k : int
        Neighbour sessions that vote (default 500).
    sample_size : int
        Candidate neighbours: the most recent training sessions sharing an item with
        the current one (default 1000; 0 = all of them).
    similarity : {"cosine", "jaccard"}
        Of the binary item sets (default cosine).
    batch_size : int
        Sessions answered per sparse product (memory bound).

    Fitted attributes
    -----------------
    item_ids_ : numpy.ndarray of str
        Items of the training sessions (of two or more distinct items).
    sessions_ : scipy.sparse.csr_matrix of float32, (n_sessions, n_items)
        Binary session x item incidence.
    recency_ : numpy.ndarray of int64
        Rank of each session's last event time (higher = more recent).
    """

    family: ClassVar[str] = "sknn"
    param_specs: ClassVar[dict[str, Param]] = {
        "k": Param(500, "int", low=1),
        "sample_size": Param(1000, "int", low=0),
        "similarity": Param("cosine", "choice", choices=("cosine", "jaccard")),
        "batch_size": Param(256, "int", low=1),
    }
    param_help: ClassVar[dict[str, str]] = {
        "k": "Neighbour sessions (the most similar to the current one) that vote for items.",
        "sample_size": "Candidate neighbours: the most recent training sessions sharing an item with the "
        "current one (0 = all; more is slower).",
        "similarity": "Of the two sessions' item sets: cosine or jaccard.",
        "batch_size": "Sessions answered per sparse product (memory only, not the lists).",
    }

    # -- fitting -------------------------------------------------------------------
    def fit(self, dataset: Any, progress: Progress | None = None) -> SessionKNN:
        """Index the training sessions (item sets and recency)."""
        import scipy.sparse as sp

        progress = progress or null_progress
        self._validate()
        inter = dataset.interactions
        if len(inter) == 0:
            raise ModelFitError(
                f"{self.family}: dataset '{getattr(dataset, 'name', '?')}' has no interactions"
            )
        seq_codes, _ = pd.factorize(inter["sequence_id"], sort=False)
        items = inter["item_id"].astype(str).to_numpy()
        pairs = pd.DataFrame({"s": seq_codes, "i": items}).drop_duplicates()
        size = np.bincount(pairs["s"].to_numpy(), minlength=int(seq_codes.max()) + 1)
        pairs = pairs[size[pairs["s"].to_numpy()] >= 2]
        if not len(pairs):
            raise ModelFitError(
                f"{self.family}: dataset '{getattr(dataset, 'name', '?')}' has no session with 2 or more items"
            )
        progress(0, 2, f"{self.family}: indexing sessions")
        item_codes, uniques = pd.factorize(pairs["i"].to_numpy(), sort=True)
        kept_seq, sess = np.unique(pairs["s"].to_numpy(), return_inverse=True)
        if "timestamp" in inter.columns and inter["timestamp"].notna().any():
            t = pd.to_datetime(inter["timestamp"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
            last = pd.Series(t).groupby(seq_codes).max()
            t_kept = last.reindex(kept_seq).fillna(np.iinfo(np.int64).min).to_numpy()
        else:
            t_kept = kept_seq.astype(np.int64)  # order of appearance
        # rank by time, ties by order of appearance: higher = more recent
        self.recency_ = np.empty(len(kept_seq), dtype=np.int64)
        self.recency_[np.lexsort((kept_seq, t_kept))] = np.arange(len(kept_seq))
        n_items = len(uniques)
        self.sessions_ = sp.csr_matrix(
            (np.ones(len(item_codes), dtype=np.float32), (sess, item_codes)), shape=(len(kept_seq), n_items)
        )
        self.item_ids_ = np.asarray(uniques, dtype=str)
        self._build_lookup()
        self._after_fit()
        self._set_coverage(_catalog_ids(dataset))
        progress(2, 2, f"{self.family}: {len(kept_seq)} sessions, {n_items} items")
        logger.info("%s: %d sessions over %d items", self.family, len(kept_seq), n_items)
        return self

    def _after_fit(self) -> None:
        self._by_item = self.sessions_.T.tocsr()
        self._length = np.asarray(self.sessions_.sum(axis=1)).ravel().astype(np.float32)

    # -- scoring ---------------------------------------------------------------------
    def _query(self, recent: list[list[str]]) -> tuple[Any, Any, np.ndarray]:
        """Query matrices of a batch: binary, position weights, and 2^-distance-from-end
        of each session's distinct known items (the most recent occurrence counts)."""
        import scipy.sparse as sp

        n_items = len(self.item_ids_)
        lens = np.fromiter((len(s) for s in recent), dtype=np.int64, count=len(recent))
        flat = [i for s in recent for i in s]
        rows = self.rows_of(flat) if flat else np.zeros(0, dtype=np.int64)
        sess = np.repeat(np.arange(len(recent)), lens)
        pos = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
        frame = pd.DataFrame({"s": sess, "r": rows, "p": pos})
        frame = frame[frame["r"] >= 0]
        # distance from the end among known items, then the most recent occurrence of each
        frame["d"] = frame.groupby("s").cumcount(ascending=False) + 1
        n_len = np.minimum(np.bincount(frame["s"].to_numpy(), minlength=len(recent)), MAX_QUERY_ITEMS)
        frame = frame.drop_duplicates(["s", "r"], keep="last")
        frame = frame[frame["d"] <= MAX_QUERY_ITEMS]
        n_known = np.bincount(frame["s"].to_numpy(), minlength=len(recent)).astype(np.float32)
        s, r, d = frame["s"].to_numpy(), frame["r"].to_numpy(), frame["d"].to_numpy()
        shape = (len(recent), n_items)
        binary = sp.csr_matrix((np.ones(len(s), np.float32), (s, r)), shape=shape)
        length = n_len[s].astype(np.float64)
        weights = sp.csr_matrix((self._position_weight(length - d + 1, length), (s, r)), shape=shape)
        recency = sp.csr_matrix((np.exp2(-d.astype(np.float64)), (s, r)), shape=shape)
        return binary, (weights, recency), n_known

    def _position_weight(self, p: np.ndarray, length: np.ndarray) -> np.ndarray:
        return np.ones(len(p), dtype=np.float64)

    def _neighbour_weights(self, binary: Any, extra: Any, n_known: np.ndarray) -> Any:
        """(batch, n_sessions) sparse: each query's neighbours and their vote weights."""
        import scipy.sparse as sp

        overlap = (binary @ self._by_item).tocoo()
        r, c, o = overlap.row, overlap.col, overlap.data.astype(np.float64)
        r, c, o = self._sample(r, c, o, len(n_known))
        sim = self._similarity(r, c, o, extra, n_known)
        order = np.lexsort((-self.recency_[c], -sim, r))
        r, c, sim = r[order], c[order], sim[order]
        keep = (np.arange(len(r)) - np.searchsorted(r, np.arange(len(n_known)))[r]) < int(self.params["k"])
        keep &= sim > 0
        r, c, sim = r[keep], c[keep], sim[keep]
        sim = sim * self._vote_decay(r, c, extra)
        return sp.csr_matrix((sim, (r, c)), shape=(len(n_known), self.sessions_.shape[0]))

    def _sample(
        self, r: np.ndarray, c: np.ndarray, o: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = int(self.params["sample_size"])
        if size <= 0:
            return r, c, o
        order = np.lexsort((-self.recency_[c], r))
        r, c, o = r[order], c[order], o[order]
        keep = (np.arange(len(r)) - np.searchsorted(r, np.arange(n))[r]) < size
        return r[keep], c[keep], o[keep]

    def _similarity(
        self, r: np.ndarray, c: np.ndarray, o: np.ndarray, extra: Any, n_known: np.ndarray
    ) -> np.ndarray:
        a, b = n_known[r].astype(np.float64), self._length[c].astype(np.float64)
        if self.params.get("similarity") == "jaccard":
            return o / np.maximum(a + b - o, 1e-12)
        return o / np.sqrt(np.maximum(a * b, 1e-12))

    def _vote_decay(self, r: np.ndarray, c: np.ndarray, extra: Any) -> np.ndarray:
        return np.ones(len(r), dtype=np.float64)

    def _weigh_items(self, item_scores: Any) -> Any:
        """Per-item weights of the neighbours' votes (none here; vsknn's idf)."""
        return item_scores

    def recommend(
        self, recent_item_ids: Sequence[Sequence[str]], k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for each session (oldest item first); unknown items are ignored,
        a session with no known item gets no recommendation (padding).

        Parameters
        ----------
        recent_item_ids : sequence of sequence of str
        k : int
        exclude_seen : bool
            Leave the session's own items out (session-rec's ``remind=False``).
            Off: an item seen before can be recommended again (repeat views).

        Returns
        -------
        ids : numpy.ndarray of str (n, k), padded with "".
        scores : numpy.ndarray of float32 (n, k), -inf for padding.
        """
        self._check_fitted()
        check_k(k)
        recent = [[str(i) for i in s] for s in recent_item_ids]
        n = len(recent)
        ids, scores = padded_results(n, k)
        bs = int(self.params["batch_size"])
        for b0 in range(0, n, bs):
            chunk = recent[b0 : b0 + bs]
            binary, extra, n_known = self._query(chunk)
            w = self._neighbour_weights(binary, extra, n_known)
            item_scores = self._weigh_items((w @ self.sessions_).tocsr())
            if exclude_seen:
                item_scores = item_scores - item_scores.multiply(binary > 0)
                item_scores.eliminate_zeros()
            r, c, s = _top_k_sparse(item_scores, k, len(chunk))
            starts = np.searchsorted(r, np.arange(len(chunk)))
            rank = np.arange(len(r)) - starts[r]
            ids[b0 + r, rank] = self.item_ids_[c]
            scores[b0 + r, rank] = s
        return ids.astype(str), scores

    def similar(self, item_ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """A one-item session per seed (the seed itself excluded)."""
        self._check_fitted()
        check_k(k)
        return self.recommend([[str(i)] for i in item_ids], k, exclude_seen=True)

    # -- persistence -------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        save_arrays(path, sessions=self.sessions_, recency=np.asarray(self.recency_, dtype=np.int64))

    def _load_state(self, path: Path) -> None:
        self.sessions_, self.recency_ = load_arrays(path, "sessions", "recency")

    def _after_load(self) -> None:
        super()._after_load()
        self._after_fit()


#: Position weights of the current session's items (p = 1 oldest .. length = most recent).
WEIGHTINGS = ("div", "linear", "quadratic", "log", "same")
#: Decay of a neighbour's vote by the distance d (1 = last item) of its most recent shared item.
SCORE_WEIGHTINGS = ("div", "linear", "quadratic", "same")


class VSessionKNN(SessionKNN):
    """Vector multiplication session kNN (session-rec ``vsknn``, "VMContextKNN").

    Parameters
    ----------
    k, sample_size, batch_size
        As :class:`SessionKNN`.
    weighting : {"div", "linear", "quadratic", "log", "same"}
        Weight of the item at position p (1 = oldest) of a session of length L:
        ``p / L`` ("div", default), ``1 - 0.1 (L - p)`` floored at 0 ("linear"),
        ``(p / L)^2``, ``1 / log10(L - p + 1.7)`` ("log"), 1 ("same").
    weighting_score : {"div", "linear", "quadratic", "same"}
        Decay of a neighbour's vote by the distance d of the most recent item it shares
        (1 = the last item): ``1 / d`` ("div", default), ``1 - 0.1 d``, ``1 / d^2``, 1.
    idf_weighting : float
        w >= 0: a vote for item i weighs ``1 + w log(S / S_i)`` (default 0: off).

    A neighbour's similarity is the summed weight of the shared items divided by L.
    """

    family: ClassVar[str] = "vsknn"
    param_specs: ClassVar[dict[str, Param]] = {
        "k": SessionKNN.param_specs["k"],
        "sample_size": SessionKNN.param_specs["sample_size"],
        "weighting": Param("div", "choice", choices=WEIGHTINGS),
        "weighting_score": Param("div", "choice", choices=SCORE_WEIGHTINGS),
        "idf_weighting": Param(0.0, "float", low=0),
        "batch_size": SessionKNN.param_specs["batch_size"],
    }
    param_help: ClassVar[dict[str, str]] = {
        **{n: SessionKNN.param_help[n] for n in ("k", "sample_size", "batch_size")},
        "weighting": "Weight of the current session's items by position: div = position / length (recent "
        "items count more), linear, quadratic, log, same = equal.",
        "weighting_score": "Decay of a neighbour's vote by how far back the item it shares is: div = 1 / "
        "distance, linear, quadratic, same = none.",
        "idf_weighting": "w > 0 favours rare items: a vote weighs 1 + w log(sessions / the item's sessions); 0 = off.",
    }

    def _position_weight(self, p: np.ndarray, length: np.ndarray) -> np.ndarray:
        how = self.params["weighting"]
        if how == "div":
            return p / np.maximum(length, 1)
        if how == "linear":
            return np.maximum(1 - 0.1 * (length - p), 0.0)
        if how == "quadratic":
            return (p / np.maximum(length, 1)) ** 2
        if how == "log":
            return 1 / np.log10(length - p + 1.7)
        return np.ones(len(p), dtype=np.float64)

    def _similarity(
        self, r: np.ndarray, c: np.ndarray, o: np.ndarray, extra: Any, n_known: np.ndarray
    ) -> np.ndarray:
        weights, _ = extra
        length = np.maximum(np.asarray(weights.getnnz(axis=1), dtype=np.float64), 1)
        return _lookup(weights @ self._by_item, r, c) / length[r]

    def _vote_decay(self, r: np.ndarray, c: np.ndarray, extra: Any) -> np.ndarray:
        how = self.params["weighting_score"]
        if how == "same" or len(r) == 0:
            return np.ones(len(r), dtype=np.float64)
        _, recency = extra
        # sum of 2^-d over shared items lies in [2^-dmin, 2^-dmin+1): dmin = ceil(-log2(sum))
        total = _lookup(recency @ self._by_item, r, c)
        d = np.ceil(-np.log2(np.maximum(total, 1e-300)) - 1e-9)
        d = np.maximum(d, 1.0)
        if how == "div":
            return 1 / d
        if how == "linear":
            return np.maximum(1 - 0.1 * d, 0.0)
        return 1 / d**2

    def _weigh_items(self, item_scores: Any) -> Any:
        import scipy.sparse as sp

        w = float(self.params.get("idf_weighting") or 0.0)
        if w <= 0:
            return item_scores
        n_sessions = max(self.sessions_.shape[0], 1)
        support = np.maximum(np.asarray(self.sessions_.sum(axis=0), dtype=np.float64).ravel(), 1.0)
        return (item_scores @ sp.diags(1.0 + w * np.log(n_sessions / support))).tocsr()
