"""Baselines every embedding model must beat: popularity and item-item co-occurrence.

They score items without vectors and implement ``similar`` directly, so the same
evaluation code runs on them and on the embedding models.

- :class:`PopularityModel` recommends the most popular items (weighted event counts),
  whatever the seed, the seed itself excluded.
- :class:`CooccurrenceModel` recommends the items that appear in the same sessions or
  baskets as the seed, scored by Jaccard or Salton's cosine on the item x sequence
  incidence matrix (scipy.sparse), keeping the top-k per item.
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
from recsys.models.base import PAD_ID, PAD_SCORE, ItemModel, load_arrays, save_arrays
from recsys.models.params import Param
from recsys.sequences import SEPARATE_BY, build_sequences
from recsys.topk import topk_rows, topk_rows_unordered

logger = logging.getLogger(__name__)

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "cart": 2.0, "purchase": 3.0}


def _catalog_ids(dataset: Any) -> list[str]:
    catalog = getattr(dataset, "catalog", None)
    if catalog is not None and "item_id" in catalog.columns and len(catalog):
        return catalog["item_id"].astype(str).tolist()
    return sorted(set(dataset.interactions["item_id"].astype(str)))


def _event_popularity(interactions: pd.DataFrame, weights: dict[str, float]) -> pd.Series:
    """item_id -> sum of event weights (unlisted event types weigh 1)."""
    # on the distinct values (a handful of event types; an item's events summed by code): mapping
    # and grouping 100k Arrow strings row by row took most of a second
    if "event_type" in interactions.columns:
        codes, types = pd.factorize(interactions["event_type"].astype(str))
        per_type = pd.Series(types).map(weights).fillna(1.0).to_numpy(dtype=np.float64)
        w = per_type[codes] if len(types) else np.ones(len(interactions))
    else:
        w = np.ones(len(interactions))
    codes, items = pd.factorize(interactions["item_id"].astype(str))
    total = np.bincount(codes, weights=w, minlength=len(items)).astype(np.float64)
    return pd.Series(total, index=np.asarray(items, dtype=object)).sort_index()  # ids distinct already


#: the Runs form's help lines of the co-occurrence family's parameters (item_knn shares them)
SEQUENCE_HELP: dict[str, str] = {
    "min_count": "Item pairs that share fewer sequences are dropped; 1 keeps all.",
    "top_k": "Neighbours kept per item (the longest list it can give).",
    "fill_with_popular": "Pad short lists with the most popular items (else the fallback chain completes them).",
    "separate_by": "Split sequences by category (or category+gender) before counting.",
    "category_level": "Category level used by separate_by.",
    "max_len": "Cut sequences into chunks of at most this many items (empty = whole sessions/baskets).",
}


class PopularityModel(ItemModel):
    """The most popular items, the same list for every seed (the seed excluded).

    Parameters
    ----------
    event_weights : dict, optional
        Event type -> weight; popularity is the weighted count of an item's events.
        Default ``{"view": 1, "cart": 2, "purchase": 3}``; unlisted types weigh 1.

    Fitted attributes
    -----------------
    item_ids_ : numpy.ndarray of str
        Every catalogue item (any of them can be a seed).
    popularity_ : numpy.ndarray of float32
        Aligned with ``item_ids_``.
    """

    family: ClassVar[str] = "popularity"
    #: event type -> weight (None: DEFAULT_EVENT_WEIGHTS); checked by _check_together
    param_specs: ClassVar[dict[str, Param]] = {"event_weights": Param(None, "any")}
    param_help: ClassVar[dict[str, str]] = {
        "event_weights": 'Weight of each event type in an item\'s count, as JSON, e.g. {"view": 1, "cart": 2, '
        '"purchase": 3} (empty = that); unlisted types weigh 1.',
    }

    def _check_together(self, p: dict[str, Any]) -> None:
        self._weights()

    def _weights(self) -> dict[str, float]:
        w = self.params["event_weights"]
        if w is None:
            return dict(DEFAULT_EVENT_WEIGHTS)
        if not isinstance(w, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in w.values()
        ):
            raise ModelFitError(
                f"{self.family}: parameter 'event_weights' must map event types to numbers >= 0, e.g. "
                f"{DEFAULT_EVENT_WEIGHTS}, got {w!r}"
            )
        return {str(k): float(v) for k, v in w.items()}

    def fit(self, dataset: Any, progress: Progress | None = None) -> PopularityModel:
        """Count weighted events per item over the dataset's interactions."""
        progress = progress or null_progress
        self._validate()
        weights = self._weights()
        pop = _event_popularity(dataset.interactions, weights)
        ids = _catalog_ids(dataset)
        extra = sorted(set(pop.index) - set(ids))  # interactions outside the catalogue
        self.item_ids_ = np.asarray(ids + extra, dtype=str)
        self.popularity_ = pop.reindex(self.item_ids_).fillna(0.0).to_numpy(dtype=np.float32)
        self._ranking = None  # a refit must not reuse the previous data's ranking
        self._build_lookup()
        self._set_coverage(ids)
        progress(1, 1, f"popularity: {int((self.popularity_ > 0).sum())} items with events")
        return self

    def _after_load(self) -> None:
        super()._after_load()
        self._ranking = None

    def ranking(self) -> np.ndarray:
        """Rows of items with popularity > 0, most popular first (ties by item id)."""
        cached = getattr(self, "_ranking", None)
        if cached is None:
            rows = np.flatnonzero(self.popularity_ > 0)
            order = np.lexsort((self.item_ids_[rows], -self.popularity_[rows]))
            cached = self._ranking = rows[order]
        return cached

    def similar(self, item_ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        rows, ids, scores, _ = self._seed_rows(item_ids, k)
        n = len(rows)
        top = self.ranking()[: k + 1]
        if n == 0 or len(top) == 0:
            return ids.astype(str), scores
        # position of the seed in the top k+1 (len(top) when absent); skip over it
        hit = top[None, :] == rows[:, None]
        seed_pos = np.where(hit.any(axis=1), hit.argmax(axis=1), len(top))
        pos = np.arange(k)[None, :]
        pos = pos + (pos >= seed_pos[:, None])
        ok = (pos < len(top)) & (rows[:, None] >= 0)
        picked = top[np.minimum(pos, len(top) - 1)]
        ids[ok] = self.item_ids_[picked[ok]]
        scores[ok] = self.popularity_[picked[ok]]
        return ids.astype(str), scores

    def _save_state(self, path: Path) -> None:
        np.save(path / "popularity.npy", np.asarray(self.popularity_, dtype=np.float32), allow_pickle=False)

    def _load_state(self, path: Path) -> None:
        from recsys.stored import read_npy  # a damaged file is named

        self.popularity_ = read_npy(path / "popularity.npy")


def _similarity(
    c: np.ndarray, n_r: np.ndarray, n_c: np.ndarray, kind: str, lmbd: float = 20.0, alpha: float = 0.5
) -> np.ndarray:
    if kind == "jaccard":
        return c / np.maximum(n_r + n_c - c, 1e-12)
    if kind == "iknn":  # session-rec's ItemKNN: cosine with a shrinkage term on the supports
        return c / np.maximum((n_r + lmbd) ** alpha * (n_c + lmbd) ** (1.0 - alpha), 1e-12)
    return c / np.sqrt(np.maximum(n_r * n_c, 1e-12))


#: a block of co-occurrence rows is ranked sparse when under 1/SPARSE_BLOCK_SHARE of its pairs
#: are non-zero (:func:`_top_k_similarities`)
SPARSE_BLOCK_SHARE = 20


def _top_k_similarities(
    x: Any,
    n: np.ndarray,
    kind: str,
    min_count: int,
    top_k: int,
    dense_limit: int = 100_000,
    lmbd: float = 20.0,
    alpha: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, similarity) of the ``top_k`` partners of every item, rows in blocks.

    Each block of rows of ``C = X X^T`` is computed on its own, so memory stays bounded;
    catalogues up to ``dense_limit`` items use dense blocks (fast top-k with
    :func:`recsys.topk.topk_rows_unordered`), larger ones stay sparse. Within a row, ties are broken by item order.
    """
    n_items = x.shape[0]
    xt = x.T.tocsr()
    out_r, out_c, out_s = [], [], []
    dense = n_items <= dense_limit
    block = max(1, (1 << 23) // max(n_items, 1)) if dense else 4096
    for b0 in range(0, n_items, block):
        b1 = min(n_items, b0 + block)
        cb = x[b0:b1] @ xt
        # a block with few pairs (a long tail of items seen in a session or two: REES46) is
        # ranked sparse too: dense, most rows hold fewer than top_k partners, and breaking the
        # ties among their zeros scanned every row whole (seconds); the kept pairs are the same
        if dense and cb.nnz * SPARSE_BLOCK_SHARE >= (b1 - b0) * n_items:
            c = cb.toarray()
            rows_local = np.arange(b1 - b0)
            c[rows_local, rows_local + b0] = 0  # no self pairs
            c[c < min_count] = 0
            sim = _similarity(c, n[b0:b1, None], n[None, :], kind, lmbd, alpha)
            sim = np.where(c > 0, sim, 0).astype(np.float32)
            top = topk_rows_unordered(sim, top_k)  # ties at the k-th: the lower columns
            top_s = np.take_along_axis(sim, top, axis=1)
            keep = top_s > 0
            rr = np.broadcast_to(rows_local[:, None] + b0, top.shape)[keep]
            out_r.append(rr)
            out_c.append(top[keep])
            out_s.append(top_s[keep])
        else:
            cb = cb.tocoo()
            r, col, cij = cb.row + b0, cb.col, cb.data.astype(np.float32)
            off = (r != col) & (cij >= min_count)
            r, col, cij = r[off], col[off], cij[off]
            s = _similarity(cij, n[r], n[col], kind, lmbd, alpha).astype(np.float32)
            order = np.lexsort((col, -s, r))
            r, col, s = r[order], col[order], s[order]
            starts = np.r_[0, np.flatnonzero(np.diff(r)) + 1] if len(r) else np.zeros(0, dtype=np.int64)
            rank = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)]))
            keep = rank < top_k
            out_r.append(r[keep])
            out_c.append(col[keep])
            out_s.append(s[keep])
    if not out_r:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_s)


class CooccurrenceModel(ItemModel):
    """Item-item co-occurrence within sessions or baskets (Jaccard or Salton cosine).

    With ``X`` the binary item x sequence incidence matrix, ``C = X X^T`` counts the
    sequences two items share and ``n_i = C_ii`` the sequences of item i:

    - Jaccard: ``C_ij / (n_i + n_j - C_ij)``
    - cosine (Salton): ``C_ij / sqrt(n_i n_j)``

    Parameters
    ----------
    similarity : {"jaccard", "cosine"}
    min_count : int
        Pairs that share fewer sequences are dropped (default 1).
    top_k : int
        Neighbours kept per item (default 100).
    fill_with_popular : bool
        Pad short lists with the most popular items (score 0) instead of ``""``.
    separate_by, category_level, max_len
        How sequences are built (:func:`recsys.sequences.build_sequences`); by default
        whole sessions/baskets (``max_len=None``).

    Fitted attributes
    -----------------
    item_ids_ : numpy.ndarray of str
        Items seen in a sequence of two or more items.
    similarity_ : scipy.sparse.csr_matrix of float32, (n_items, n_items)
        The kept neighbours of each item.
    popularity_ : numpy.ndarray of float32
        Number of sequences of each item (used by ``fill_with_popular``).
    """

    family: ClassVar[str] = "cooccurrence"
    param_specs: ClassVar[dict[str, Param]] = {
        "similarity": Param("jaccard", "choice", choices=("jaccard", "cosine")),
        "min_count": Param(1, "int", low=1),
        "top_k": Param(100, "int", low=1),
        "fill_with_popular": Param(False, "bool"),
        "separate_by": Param(None, "choice", choices=SEPARATE_BY),
        "category_level": Param(0, "int", low=0),
        "max_len": Param(None, "int", low=2, optional=True),
    }
    param_help: ClassVar[dict[str, str]] = dict(SEQUENCE_HELP) | {
        "similarity": "jaccard = shared sequences / sequences with either item; cosine = shared / "
        "sqrt(product of both counts).",
    }

    def fit(self, dataset: Any, progress: Progress | None = None) -> CooccurrenceModel:
        """Count co-occurrences and keep the ``top_k`` most similar items per item."""
        import scipy.sparse as sp

        progress = progress or null_progress
        self._validate()
        p = self.params
        seqs = build_sequences(
            dataset,
            separate_by=p["separate_by"],
            category_level=p["category_level"],
            max_len=p["max_len"],
            min_len=2,
        )
        if not seqs:
            raise ModelFitError(
                f"cooccurrence: dataset '{getattr(dataset, 'name', '?')}' has no sequence with 2 or more items"
            )
        progress(0, 2, f"{self.family}: counting pairs in {len(seqs)} sequences")
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        flat = np.fromiter((t for s in seqs for t in s), dtype=object, count=int(lengths.sum()))
        codes, uniques = pd.factorize(flat, sort=True)
        seq_of = np.repeat(np.arange(len(seqs)), lengths)
        n_items = len(uniques)
        x = sp.csr_matrix(
            (np.ones(len(codes), dtype=np.float32), (codes, seq_of)), shape=(n_items, len(seqs))
        )
        x.data[:] = 1.0  # binary: duplicates inside a sequence were summed
        x.sum_duplicates()
        x.data[:] = 1.0
        n = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)
        r, col, s = _top_k_similarities(x, n, self._kind(), p["min_count"], p["top_k"], **self._sim_extra())
        self.similarity_ = sp.csr_matrix((s.astype(np.float32), (r, col)), shape=(n_items, n_items))
        self.popularity_ = n
        self.item_ids_ = np.asarray(uniques, dtype=str)
        self._build_lookup()
        self._ranking = None
        self._set_coverage(_catalog_ids(dataset))
        progress(2, 2, f"{self.family}: {n_items} items, {self.similarity_.nnz} neighbour pairs kept")
        logger.info(
            "%s (%s): %d items, %d pairs kept", self.family, self._kind(), n_items, self.similarity_.nnz
        )
        return self

    def _kind(self) -> str:
        return str(self.params["similarity"])

    def _sim_extra(self) -> dict[str, float]:
        """Extra arguments of the similarity (subclasses: shrinkage)."""
        return {}

    def _popular_rows(self) -> np.ndarray:
        cached = getattr(self, "_ranking", None)
        if cached is None:
            cached = self._ranking = np.lexsort((self.item_ids_, -self.popularity_))
        return cached

    def similar(
        self, item_ids: Sequence[str], k: int, batch_size: int = 512
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, ids, scores, known = self._seed_rows(item_ids, k)
        n_items = len(self.item_ids_)
        kk = min(k, n_items - 1)
        if len(known) == 0 or kk <= 0:
            return ids.astype(str), scores
        for b in range(0, len(known), batch_size):
            sel = known[b : b + batch_size]
            dense = self.similarity_[rows[sel]].toarray()
            dense[dense <= 0] = -np.inf
            top, top_s = topk_rows(dense, kk)  # ties: item order
            ok = np.isfinite(top_s)
            block_ids = np.where(ok, self.item_ids_[top], PAD_ID).astype(object)
            ids[sel, :kk] = block_ids
            scores[sel, :kk] = np.where(ok, top_s, PAD_SCORE)
        if self.params["fill_with_popular"]:
            self._fill(ids, scores, rows, k)
        return ids.astype(str), scores

    def _fill(self, ids: np.ndarray, scores: np.ndarray, rows: np.ndarray, k: int) -> None:
        """Pad short lists of known seeds with popular items (score 0)."""
        popular = self._popular_rows()[: 2 * k + 1]
        pop_ids = self.item_ids_[popular]
        for r in np.flatnonzero((rows >= 0) & (ids[:, -1] == PAD_ID)):
            have = set(ids[r][ids[r] != PAD_ID]) | {self.item_ids_[rows[r]]}
            free = int((ids[r] == PAD_ID).sum())
            extra = [i for i in pop_ids if i not in have][:free]
            start = k - free
            ids[r, start : start + len(extra)] = extra
            scores[r, start : start + len(extra)] = 0.0

    def _save_state(self, path: Path) -> None:
        save_arrays(
            path, similarity=self.similarity_, popularity=np.asarray(self.popularity_, dtype=np.float32)
        )

    def _load_state(self, path: Path) -> None:
        self.similarity_, self.popularity_ = load_arrays(path, "similarity", "popularity")

    def _after_load(self) -> None:
        super()._after_load()
        self._ranking = None
