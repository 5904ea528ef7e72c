"""TF-IDF kNN over titles (plus brand and category): the content model's baseline.

Each catalogue item is a sparse TF-IDF vector of its title's words and word pairs
(sublinear term frequency, accents stripped), next to one token per brand and one per
level of its category path (``Shoes``, ``Shoes > Running``), each block L2-normalised and
weighted (``title_weight``, ``brand_weight``, ``category_weight``), then the whole row
L2-normalised. ``similar`` is the exact cosine over the sparse matrix, so it works on a
catalogue with no interactions at all, and equal scores are ordered by catalogue order
(the declared secondary key): many items sharing one vector never give arbitrary lists.
Items whose text is empty have no vector (reported in ``coverage_``).
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
from recsys.models.base import ItemModel
from recsys.models.params import Param
from recsys.topk import topk_rows

logger = logging.getLogger(__name__)


class TfidfModel(ItemModel):
    """TF-IDF title (+ brand, category) nearest neighbours.

    Parameters
    ----------
    title_weight, brand_weight, category_weight : float
        Weights of the three blocks (default 1.0, 0.3, 0.5); 0 leaves a block out.
    ngram_max : int
        Longest word n-gram of titles (default 2).
    min_df : int
        Title terms in fewer items are dropped (default 1).
    batch_size : int
        Seeds scored per sparse product.

    Fitted attributes
    -----------------
    item_ids_ : numpy.ndarray of str
        Catalogue items with a non-empty text.
    matrix_ : scipy.sparse.csr_matrix of float32, (n_items, n_terms)
        L2-normalised rows.
    """

    family: ClassVar[str] = "tfidf"
    needs_interactions: ClassVar[bool] = False  # the catalogue's text is all it reads
    param_specs: ClassVar[dict[str, Param]] = {
        "title_weight": Param(1.0, "float", low=0),
        "brand_weight": Param(0.3, "float", low=0),
        "category_weight": Param(0.5, "float", low=0),
        "ngram_max": Param(2, "int", low=1),
        "min_df": Param(1, "int", low=1),
        "batch_size": Param(256, "int", low=1),
    }
    param_help: ClassVar[dict[str, str]] = {
        "title_weight": "Weight of the title's words; 0 leaves titles out.",
        "brand_weight": "Weight of the brand; 0 leaves it out.",
        "category_weight": "Weight of the category path; 0 leaves it out.",
        "ngram_max": "Longest run of words of a title counted as one term (2 = words and word pairs).",
        "min_df": "Title terms in fewer items are dropped; 1 keeps all.",
        "batch_size": "Seeds scored per sparse product (memory only, not the lists).",
    }

    def _check_together(self, p: dict[str, Any]) -> None:
        if not any(p[n] > 0 for n in ("title_weight", "brand_weight", "category_weight")):
            raise ModelFitError(
                f"{self.family}: parameter 'title_weight', 'brand_weight' or 'category_weight' must be > 0"
            )

    def fit(self, dataset: Any, progress: Progress | None = None) -> TfidfModel:
        """Vectorise the catalogue (interactions are not needed)."""
        progress = progress or null_progress
        self._validate()
        p = self.params
        catalog = getattr(dataset, "catalog", None)
        if catalog is None or "item_id" not in catalog.columns or not len(catalog):
            raise ModelFitError(f"tfidf: dataset '{getattr(dataset, 'name', '?')}' has no catalogue")
        cat = catalog.drop_duplicates("item_id")
        ids = cat["item_id"].astype(str).to_numpy()

        progress(0, 2, f"tfidf: vectorising {len(ids)} items")
        x = TfidfText(p).fit_transform(cat)
        has = np.diff(x.indptr) > 0
        self.matrix_ = x[has].tocsr()
        self.item_ids_ = np.asarray(ids[has], dtype=str)
        self._build_lookup()
        self._set_coverage(list(ids))
        progress(2, 2, f"tfidf: {len(self.item_ids_)} items, {x.shape[1]} terms")
        return self

    def similar(self, item_ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine top-k (the seed excluded; zero scores are not results)."""
        rows, ids, scores, known = self._seed_rows(item_ids, k)
        kk = min(k, len(self.item_ids_) - 1)
        if len(known) == 0 or kk <= 0:
            return ids.astype(str), scores
        xt = self._transposed()
        bs = int(self.params["batch_size"])
        for b in range(0, len(known), bs):
            sel = known[b : b + bs]
            sims = (self.matrix_[rows[sel]] @ xt).toarray()
            sims[np.arange(len(sel)), rows[sel]] = -np.inf
            sims[sims <= 1e-7] = -np.inf
            top, top_s = topk_rows(sims, kk)
            ok = np.isfinite(top_s)
            block = np.where(ok, self.item_ids_[top], "")
            ids[sel, :kk] = block
            scores[sel, :kk] = np.where(ok, top_s, -np.inf)
        return ids.astype(str), scores.astype(np.float32)

    def _transposed(self) -> Any:
        """``matrix_.T`` as CSR (a CSR product would convert any other format), built once per
        fitted matrix: rebuilding it in each ``similar`` call was most of a one-seed answer's
        time on a 27k-item catalogue."""
        cached = getattr(self, "_xt", None)
        if cached is None or cached[0] is not self.matrix_:
            cached = self._xt = (self.matrix_, self.matrix_.T.tocsr())
        return cached[1]

    def _save_state(self, path: Path) -> None:
        import scipy.sparse as sp

        sp.save_npz(path / "tfidf.npz", self.matrix_.tocsr(), compressed=True)

    def _load_state(self, path: Path) -> None:
        from recsys.stored import read_npz  # a damaged file is named

        self.matrix_ = read_npz(path / "tfidf.npz")


#: the parameters :class:`TfidfText` reads (the text side of a TF-IDF model)
TEXT_PARAMS = ("title_weight", "brand_weight", "category_weight", "ngram_max", "min_df")


class TfidfText:
    """The TF-IDF representation of catalogue rows, fitted once and applied to new rows.

    Blocks: the title's words and word n-grams (sublinear TF, accents stripped), one token
    per brand and one per category level, each block L2-normalised, weighted, then the whole
    row L2-normalised. :meth:`transform` applies the fitted vocabularies and IDF to other
    rows (words never seen are ignored), and :meth:`to_json` / :meth:`from_json` keep them in
    a saved model (no pickle). Used by :class:`TfidfModel` and by the content model's
    TF-IDF side (:mod:`recsys.models.content.hybrid`).
    """

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = {k: params[k] for k in TEXT_PARAMS}
        #: (name, weight, vocabulary term -> column, idf) of each fitted block, in column order
        self.blocks: list[tuple[str, float, dict[str, int], np.ndarray]] = []

    def _vectorizer(self, name: str, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if name == "title":
            return TfidfVectorizer(
                ngram_range=(1, int(self.params["ngram_max"])),
                sublinear_tf=True,
                strip_accents="unicode",
                min_df=1 if vocabulary is not None else int(self.params["min_df"]),
                token_pattern=r"(?u)\b\w+\b",
                dtype=np.float32,
                vocabulary=vocabulary,
            )
        analyzer = _brand_tokens if name == "brand" else _category_tokens
        return TfidfVectorizer(analyzer=analyzer, dtype=np.float32, vocabulary=vocabulary)

    def fit_transform(self, catalog: pd.DataFrame) -> Any:
        """Fit on ``catalog``'s rows; their L2-normalised CSR matrix (float32; empty rows for
        items with no text). Raises :class:`ModelFitError` when there is no text at all."""
        self.blocks = []
        parts = []
        for name in ("title", "brand", "category"):
            weight = float(self.params[f"{name}_weight"])
            values = _column(catalog, name)
            if weight <= 0 or not values.str.strip().ne("").any():
                continue
            vec = self._vectorizer(name)
            try:
                x = vec.fit_transform(values.to_numpy())
            except ValueError:  # no term left (e.g. min_df above every count)
                continue
            vocab = {str(t): int(i) for t, i in vec.vocabulary_.items()}
            self.blocks.append((name, weight, vocab, vec.idf_.astype(np.float32)))
            parts.append(weight * x)
        if not parts:
            raise ModelFitError("tfidf: the catalogue has no title, brand or category text to compare")
        return self._stack(parts)

    def transform(self, catalog: pd.DataFrame) -> Any:
        """Rows of another catalogue (new items) in the fitted space."""
        parts = []
        for name, weight, vocab, idf in self.blocks:
            vec = self._vectorizer(name, vocab)
            vec.idf_ = idf
            parts.append(weight * vec.transform(_column(catalog, name).to_numpy()))
        return self._stack(parts)

    @property
    def n_terms(self) -> int:
        return sum(len(v) for _, _, v, _ in self.blocks)

    @staticmethod
    def _stack(parts: list[Any]) -> Any:
        import scipy.sparse as sp
        from sklearn.preprocessing import normalize

        return normalize(sp.hstack(parts).tocsr().astype(np.float32))

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "blocks": [
                {"name": n, "weight": w, "terms": sorted(v, key=v.__getitem__), "idf": idf.tolist()}
                for n, w, v, idf in self.blocks
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TfidfText:
        out = cls(data["params"])
        out.blocks = [
            (
                b["name"],
                float(b["weight"]),
                {t: i for i, t in enumerate(b["terms"])},
                np.asarray(b["idf"], dtype=np.float32),
            )
            for b in data["blocks"]
        ]
        return out


def _column(catalog: pd.DataFrame, name: str) -> pd.Series:
    if name not in catalog.columns:
        return pd.Series([""] * len(catalog), index=catalog.index)
    return catalog[name].fillna("").astype(str)


def _brand_tokens(s: str) -> list[str]:
    return [s.strip().casefold()] if s.strip() else []


def _category_tokens(path: str) -> list[str]:
    """One token per level of a category path: ``a > b`` -> ``["a", "a > b"]``."""
    parts = [p.strip().casefold() for p in str(path).split(">") if p.strip()]
    return [" > ".join(parts[: i + 1]) for i in range(len(parts))]
