"""The content model's TF-IDF side: the hybrid practitioners use for cold items.

Cold items have no interactions, so a text (TF-IDF) kNN is the baseline to beat there. The
hybrid starts from that similarity and lets the learned content vector correct it:

    item vector = concat(sqrt(a) * unit(tfidf side), sqrt(1 - a) * unit(content vector))

so the inner product of two items is ``a * tfidf_cos + (1 - a) * content_cos`` and the
model stays one dense vector per item (HNSW-servable). ``a = 1`` is the TF-IDF kNN,
``a = 0`` the content model alone. ``a`` is chosen on the content model's simulated cold
items (items whose co-occurrence pairs were held out of training; the pairs leading to
them, :func:`recsys.models.content.pairs.training_pairs`), i.e. on validation data carved
from the training interactions, never on a test split: :func:`choose_blend`.

The TF-IDF side is the tfidf family's own representation (:class:`recsys.models.tfidf.
TfidfText`, same vocabulary, IDF and block weights). It must be dense: while the catalogue
has at most ``dim`` terms its columns are kept exactly (the inner product is the exact
TF-IDF cosine); beyond, it is projected to ``dim`` columns, either by a signed hashing of
the terms (``"hash"``: every term keeps its own +-1 code in a bucket, so an exact word match
still counts fully and unrelated items meet at about +-1/sqrt(dim)) or by a truncated SVD
(``"svd"``: the top ``dim`` directions of the TF-IDF matrix). ``bench/tfidf_side.py``
measures what each costs against the exact TF-IDF kNN on validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.models.base import normalize_rows
from recsys.models.content.blocks import pair_block_sims
from recsys.models.tfidf import TfidfText

#: the weights of the TF-IDF side tried by :func:`choose_blend`
BLEND_GRID = tuple(round(x, 2) for x in np.linspace(0.0, 1.0, 21))
#: the cut-off of the hit share that chooses the blend (the target's HR@20)
BLEND_K = 20
PROJECTIONS = ("hash", "svd")


class TextSide:
    """The fitted TF-IDF side: :class:`TfidfText` plus its projection to a dense matrix.

    ``projection`` is None when the terms' columns are kept exactly, else ``"hash"`` (with
    ``codes``: each term's bucket and sign) or ``"svd"`` (with ``components``, terms x dim).
    """

    def __init__(self, text: TfidfText, projection: str | None, dim: int, arrays: dict[str, np.ndarray]):
        self.text = text
        self.projection = projection
        self.dim = int(dim)
        self.arrays = arrays

    @classmethod
    def fit(
        cls, catalog: pd.DataFrame, tfidf_params: dict[str, Any], dim: int, projection: str, seed: int
    ) -> tuple[TextSide, np.ndarray]:
        """Fit on ``catalog``; returns the side and its rows' dense unit matrix (zero rows for
        items with no text)."""
        text = TfidfText(tfidf_params)
        x = text.fit_transform(catalog)
        n_terms = x.shape[1]
        if n_terms <= dim:
            side = cls(text, None, n_terms, {})
        elif projection == "svd":
            from sklearn.decomposition import TruncatedSVD

            k = min(dim, n_terms - 1, x.shape[0] - 1)
            svd = TruncatedSVD(n_components=max(1, k), algorithm="randomized", random_state=seed)
            svd.fit(x)
            side = cls(text, "svd", k, {"components": svd.components_.astype(np.float32)})
        else:
            rng = np.random.default_rng(seed)
            codes = np.stack(
                [rng.integers(0, dim, size=n_terms), rng.choice([-1, 1], size=n_terms)], axis=1
            ).astype(np.int32)
            side = cls(text, "hash", dim, {"codes": codes})
        return side, side._dense(x)

    def transform(self, catalog: pd.DataFrame) -> np.ndarray:
        """The dense unit rows of other catalogue rows (new items)."""
        return self._dense(self.text.transform(catalog))

    def _dense(self, x: Any) -> np.ndarray:
        import scipy.sparse as sp

        if self.projection is None:
            out = x.toarray()
        elif self.projection == "svd":
            out = np.asarray(x @ self.arrays["components"].T)
        else:
            codes = self.arrays["codes"]
            proj = sp.csr_matrix(
                (codes[:, 1].astype(np.float32), (np.arange(len(codes)), codes[:, 0])),
                shape=(len(codes), self.dim),
            )
            out = (x @ proj).toarray()
        return normalize_rows(np.asarray(out, dtype=np.float32))

    def describe(self) -> dict[str, Any]:
        return {"terms": self.text.n_terms, "projection": self.projection or "exact", "dim": self.dim}

    def save(self, path: Path) -> None:
        state = {"projection": self.projection, "dim": self.dim, "text": self.text.to_json()}
        (path / "content_tfidf.json").write_text(json.dumps(state))
        for name, arr in self.arrays.items():
            np.save(path / f"content_tfidf_{name}.npy", arr, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> TextSide | None:
        f = path / "content_tfidf.json"
        if not f.exists():
            return None
        from recsys.stored import damaged_file, read_json_file, read_npy  # a damaged file is named

        state = read_json_file(f)
        try:
            names = {"svd": ("components",), "hash": ("codes",)}.get(state["projection"], ())
            text, projection, dim = TfidfText.from_json(state["text"]), state["projection"], state["dim"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise damaged_file(f, f"is not of the stored shape ({type(exc).__name__}: {exc})") from None
        arrays = {n: read_npy(path / f"content_tfidf_{n}.npy") for n in names}
        return cls(text, projection, dim, arrays)


def blend(text: np.ndarray, content: np.ndarray, a: float) -> np.ndarray:
    """``concat(sqrt(a) * unit(text), sqrt(1 - a) * unit(content))``: inner products are
    ``a * text_cos + (1 - a) * content_cos``. A row with no text keeps a zero TF-IDF part."""
    return np.concatenate(
        [np.sqrt(a) * normalize_rows(text), np.sqrt(1.0 - a) * normalize_rows(content)], axis=1
    ).astype(np.float32)


def choose_blend(
    text: np.ndarray, content: np.ndarray, pairs: np.ndarray, k: int = BLEND_K
) -> tuple[float, list[dict[str, float]]]:
    """The TF-IDF side's weight ``a`` that ranks held-out items best.

    ``pairs``: (anchor row, held-out item row) pairs, the held-out items' interactions kept
    out of training. For each ``a`` of :data:`BLEND_GRID` the positive's rank among all items
    (the anchor excluded; a large catalogue among each pair's candidate pool,
    :func:`~recsys.models.content.blocks.pair_block_sims`) gives the top-``k`` hit share,
    then the mean reciprocal rank; the best ``a`` wins, ties going to the larger ``a`` (the
    text side, which cannot over-fit the co-purchases).

    Returns ``(a, table)``: ``table`` one ``{"a", "hr", "mrr"}`` row per grid value.
    """
    sims, pos_col, invalid = pair_block_sims([normalize_rows(text), normalize_rows(content)], pairs)
    rows = np.arange(len(pairs))
    table = []
    for a in BLEND_GRID:
        score = a * sims[0] + (1.0 - a) * sims[1]
        score[invalid] = -np.inf
        pos = score[rows, pos_col]
        rank = (score >= pos[:, None]).sum(axis=1)
        table.append({"a": float(a), "hr": float((rank <= k).mean()), "mrr": float((1.0 / rank).mean())})
    best = max(table, key=lambda r: (r["hr"], r["mrr"], r["a"]))
    return best["a"], table


#: the weights of the co-purchase neighbours in a seed's query tried by :func:`choose_expansion`
EXPANSION_GRID = tuple(round(x, 2) for x in np.linspace(0.0, 0.9, 10))


def neighbour_means(unit: np.ndarray, co: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per item, the unit mean of its co-occurrence partners' unit vectors (weighted), zero
    rows for items without a partner. ``co``: (a, b) item-row pairs, ``weights`` per pair."""
    import scipy.sparse as sp

    n = len(unit)
    if len(co) == 0:
        return np.zeros_like(unit)
    m = sp.csr_matrix((np.asarray(weights, dtype=np.float32), (co[:, 0], co[:, 1])), shape=(n, n))
    return normalize_rows(np.asarray(m @ unit, dtype=np.float32))


def expand_queries(unit: np.ndarray, means: np.ndarray, b: float) -> np.ndarray:
    """``(1 - b) * unit + b * means``: a seed's inner product with a unit candidate is
    ``(1 - b) * cos(seed, c) + b * cos(mean of the seed's co-purchases, c)``; a seed without
    co-purchases keeps its own direction."""
    return ((1.0 - b) * unit + b * means).astype(np.float32)


def choose_expansion(
    unit: np.ndarray, means: np.ndarray, pairs: np.ndarray, k: int = BLEND_K
) -> tuple[float, list[dict[str, float]]]:
    """The co-purchase neighbours' weight ``b`` in a seed's query that ranks held-out items best.

    Why: the seeds of a cold item are mostly warm items, and a warm seed's co-purchases say what
    its shoppers buy beside it (another colour of the same line, the matching piece); a cold
    item that resembles them is a likelier next item than the seed's own text says. ``pairs``:
    (anchor, held-out item) rows, the held-out items' interactions kept out of training, so the
    anchors' co-purchases never include the item they are scored on. For each ``b`` of
    :data:`EXPANSION_GRID` the positive's rank among all items (the anchor excluded; ties
    against it) gives the top-``k`` hit share, then the MRR; the best wins, ties going to the
    smaller ``b`` (the model's own vectors). Returns ``(b, table)``.
    """
    hits = np.zeros(len(EXPANSION_GRID))
    inv = np.zeros(len(EXPANSION_GRID))
    chunk = max(1, 2**24 // max(1, len(unit)))
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        r = np.arange(len(part))
        own, nb = unit[part[:, 0]] @ unit.T, means[part[:, 0]] @ unit.T
        for g, b in enumerate(EXPANSION_GRID):
            score = (1.0 - b) * own + b * nb
            score[r, part[:, 0]] = -np.inf
            rank = (score >= score[r, part[:, 1]][:, None]).sum(axis=1)
            hits[g] += (rank <= k).sum()
            inv[g] += (1.0 / rank).sum()
    n = max(1, len(pairs))
    table = [
        {"b": float(b), "hr": float(h / n), "mrr": float(m / n)} for b, h, m in zip(EXPANSION_GRID, hits, inv)
    ]
    best = max(table, key=lambda r: (r["hr"], r["mrr"], -r["b"]))
    return best["b"], table
