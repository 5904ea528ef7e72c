"""The one interface every model family implements.

Estimator contract (as scikit-learn and implicit): ``__init__`` stores
parameters only, ``fit`` validates them and sets fitted attributes ending in
``_``; ``similar`` is batch-first and returns ``(ids, scores)`` arrays;
``save(path)`` writes a folder with ``np.save`` / JSON (no pickle) and the
``load(path)`` classmethod reads it back.

Two kinds of model:

- :class:`EmbeddingModel` produces one float32 vector per item it could learn
  (``vectors_``, rows aligned with ``item_ids_``). Indexes, filters, the map
  and serving work on these vectors.
- Baselines (popularity, co-occurrence) score items without vectors; they
  implement ``similar`` directly, so the same evaluation code runs on both.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recsys.config import Progress
from recsys.errors import ModelFitError, UnknownItemError
from recsys.models.params import Param, check_params
from recsys.topk import topk_rows

#: the name of :func:`recsys.topk.topk_rows` before it moved there
top_k_rows = topk_rows

logger = logging.getLogger(__name__)

#: Padding used in ``similar`` results when fewer than k items exist.
PAD_ID = ""
PAD_SCORE = np.float32(-np.inf)


class ItemModel(ABC):
    """Base class of every model family.

    Subclasses set ``family`` (the registry key, e.g. ``"prod2vec"``) and
    ``param_specs`` (name -> :class:`~recsys.models.params.Param`: kind, range,
    default; these are the only accepted keyword arguments). ``default_params``
    and ``param_choices`` are derived from it. ``fit`` calls :meth:`_validate`,
    which checks every parameter against its spec, then the family's
    :meth:`_check_together` (rules tying parameters together).

    Fitted attributes
    -----------------
    item_ids_ : numpy.ndarray of str
        Items the model can recommend from / for.
    coverage_ : dict
        ``{"catalog_items": n, "items_with_vector": m, "coverage": m / n,
        "missing_examples": [...]}``: reported honestly in run.json.
    """

    family: ClassVar[str] = ""
    is_embedding: ClassVar[bool] = False
    #: name -> kind, allowed range or values, default: the one declaration of the parameters
    param_specs: ClassVar[dict[str, Param]] = {}
    #: name -> default value (derived from ``param_specs``)
    default_params: ClassVar[dict[str, Any]] = {}
    #: parameter name -> the values it accepts, for parameters that take one of a few
    #: strings (forms offer them as a list; derived from ``param_specs``)
    param_choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "param_specs" in cls.__dict__:
            specs = cls.param_specs
            cls.default_params = {name: spec.default for name, spec in specs.items()}
            cls.param_choices = {
                name: tuple(c for c in spec.choices if isinstance(c, str))
                for name, spec in specs.items()
                if spec.kind == "choice" and isinstance(spec.default, str)
            }

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.default_params))
        if unknown:
            allowed = ", ".join(sorted(self.default_params)) or "none"
            raise ModelFitError(
                f"{self.family or type(self).__name__}: unknown parameter(s) {', '.join(unknown)}; "
                f"allowed: {allowed}"
            )
        self.params: dict[str, Any] = {**self.default_params, **params}

    def _validate(self) -> dict[str, Any]:
        """The parameters checked against ``param_specs`` (values as the family uses them).

        Raises
        ------
        ModelFitError
            Naming the family, the parameter and what it accepts.
        """
        specs = self.param_specs
        declared = {name: value for name, value in self.params.items() if name in specs}
        # a subclass that lists only ``default_params`` (no specs) keeps its values unchecked
        p = {**self.params, **check_params(self.family or type(self).__name__, specs, declared)}
        self._check_together(p)
        return p

    def _check_together(self, p: dict[str, Any]) -> None:
        """Rules that tie parameters together (each family its own); raise ModelFitError."""

    def get_params(self) -> dict[str, Any]:
        """The parameters this model was (or will be) fitted with."""
        return dict(self.params)

    @abstractmethod
    def fit(self, dataset: Any, progress: Progress | None = None) -> ItemModel:
        """Fit on a :class:`recsys.data.Dataset` (its interactions, catalog or both)."""

    @abstractmethod
    def similar(self, item_ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for each seed, the seed itself excluded.

        Parameters
        ----------
        item_ids : sequence of str
            Seed items (batch-first).
        k : int
            Number of results per seed.

        Returns
        -------
        ids : numpy.ndarray of str, shape (n, k)
            Padded with ``PAD_ID`` ("") when fewer than k results exist, or when
            the seed is unknown to the model.
        scores : numpy.ndarray of float32, shape (n, k)
            Higher is better; ``PAD_SCORE`` (-inf) for padding.
        """

    # -- persistence -----------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted model to the folder ``path`` (created if needed)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._check_fitted()
        meta = {
            "family": self.family,
            "class": type(self).__name__,
            "params": self.params,
            "coverage": self.coverage_,
        }
        (path / "model.json").write_text(json.dumps(meta, indent=2, default=str))
        self._save_item_ids(path)
        self._save_state(path)

    def _save_item_ids(self, path: Path) -> None:
        np.save(path / "item_ids.npy", np.asarray(self.item_ids_, dtype=str), allow_pickle=False)

    @classmethod
    def load(cls, path: str | Path) -> ItemModel:
        """Read a model written by :meth:`save`."""
        from recsys.stored import ModelFile, read_json_file, read_npy

        path = Path(path)
        meta = read_json_file(path / "model.json", ModelFile)  # names the file when damaged
        model = cls(**meta["params"])
        model.item_ids_ = read_npy(path / "item_ids.npy")
        model.coverage_ = meta.get("coverage", {})
        model._load_state(path)
        model._after_load()
        return model

    def _save_state(self, path: Path) -> None:
        """Subclasses write their own arrays here."""

    def _load_state(self, path: Path) -> None:
        """Subclasses read their own arrays here."""

    def _after_load(self) -> None:
        """Rebuild derived state (lookups) after loading."""
        self._build_lookup()

    # -- helpers -----------------------------------------------------------
    def _seed_rows(
        self, item_ids: Sequence[str], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The start of every ``similar``: checks (fitted, k), then ``(rows, ids, scores, known)``:
        the seeds' rows (-1 unknown), padded result arrays and the positions of known seeds."""
        self._check_fitted()
        check_k(k)
        rows = self.rows_of(item_ids)
        ids, scores = padded_results(len(rows), k)
        return rows, ids, scores, np.flatnonzero(rows >= 0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise ModelFitError(f"{type(self).__name__} is not fitted: call fit(dataset) first")

    def _build_lookup(self) -> None:
        self._row_of = {str(i): n for n, i in enumerate(self.item_ids_)}

    def rows_of(self, item_ids: Sequence[str], strict: bool = False) -> np.ndarray:
        """Row numbers of ``item_ids`` in ``item_ids_`` (-1 for unknown ones).

        With ``strict=True`` an unknown id raises :class:`UnknownItemError`.
        """
        self._check_fitted()
        if not hasattr(self, "_row_of"):
            self._build_lookup()
        rows = np.fromiter(
            (self._row_of.get(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids)
        )
        if strict and (rows < 0).any():
            bad = [str(i) for i, r in zip(item_ids, rows) if r < 0][:5]
            raise UnknownItemError(f"{self.family}: no vector for item(s) {', '.join(bad)}")
        return rows

    def _set_coverage(self, catalog_ids: Sequence[str]) -> None:
        have = set(map(str, self.item_ids_))
        missing = [str(i) for i in catalog_ids if str(i) not in have]
        n = len(catalog_ids)
        self.coverage_ = {
            "catalog_items": int(n),
            "items_with_vector": int(n - len(missing)),
            "coverage": float((n - len(missing)) / n) if n else 0.0,
            "missing_examples": missing[:10],
        }
        if missing:
            logger.info("%s: %d of %d catalogue items got no representation", self.family, len(missing), n)


def check_k(k: int) -> None:
    """Refuse a result size that is not an integer >= 1 (ValueError naming it)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")


def save_arrays(path: Path, **arrays: Any) -> None:
    """Write each array as ``<name>.npy`` and each scipy sparse matrix as ``<name>.npz``
    (compressed CSR); no pickle."""
    import scipy.sparse as sp

    for name, value in arrays.items():
        if sp.issparse(value):
            sp.save_npz(path / f"{name}.npz", value.tocsr(), compressed=True)
        else:
            np.save(path / f"{name}.npy", value, allow_pickle=False)


def load_arrays(path: Path, *names: str) -> list[Any]:
    """Read what :func:`save_arrays` wrote: ``<name>.npz`` as a CSR matrix when it exists,
    else ``<name>.npy``."""
    from recsys.stored import read_npy, read_npz  # a damaged file is named

    out = []
    for name in names:
        npz = path / f"{name}.npz"
        out.append(read_npz(npz) if npz.exists() else read_npy(path / f"{name}.npy"))
    return out


def write_fit_log(model: ItemModel, file: Path) -> None:
    """Save a deep model's ``history_``, ``device_`` and ``train_seconds_`` as JSON."""
    log = {
        "history": getattr(model, "history_", []),
        "device": getattr(model, "device_", None),
        "train_seconds": getattr(model, "train_seconds_", None),
    }
    file.write_text(json.dumps(log, indent=2))


def read_fit_log(model: ItemModel, file: Path) -> None:
    """Restore what :func:`write_fit_log` saved (nothing when the file is absent)."""
    from recsys.stored import damaged_file, read_json_file

    if not file.exists():
        return
    meta = read_json_file(file)
    if not isinstance(meta, dict):
        raise damaged_file(file, f"should hold an object (history, device), holds {type(meta).__name__}")
    model.history_ = meta.get("history", [])
    if meta.get("device"):
        model.device_ = meta["device"]
    if meta.get("train_seconds") is not None:
        model.train_seconds_ = meta["train_seconds"]


def padded_results(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, scores)`` of shape (n, k) filled with the padding (``PAD_ID``, ``PAD_SCORE``)."""
    return np.full((n, k), PAD_ID, dtype=object), np.full((n, k), PAD_SCORE, dtype=np.float32)


def duplicate_vector_share(vectors: np.ndarray) -> float:
    """Share of rows whose vector (after L2 normalisation, to float32 precision) equals
    another row's: ties an approximate index cannot order (search those runs exactly)."""
    unit = normalize_rows(np.asarray(vectors, dtype=np.float32))
    if len(unit) < 2:
        return 0.0
    _, inverse, counts = np.unique(unit, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.ravel()] > 1).mean())


def drop_seen(
    ids: np.ndarray, scores: np.ndarray, recent: Sequence[Sequence[str]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Remove from each row of ``(ids, scores)`` the items of that row's ``recent`` list,
    keep the first ``k`` left (order kept), pad the rest. Vectorised over all rows."""
    n, width = ids.shape
    out_ids, out_s = padded_results(n, k)
    if n == 0:
        return out_ids.astype(str), out_s
    lens = np.fromiter((len(r) for r in recent), dtype=np.int64, count=n)
    flat = np.concatenate([np.asarray(r, dtype=str) for r in recent]) if lens.sum() else np.zeros(0, str)
    import pandas as pd

    codes, _ = pd.factorize(np.concatenate([np.asarray(ids, dtype=str).ravel(), flat]))
    m = np.int64(codes.max() + 2) if len(codes) else np.int64(2)
    keys = np.repeat(np.arange(n, dtype=np.int64), width) * m + codes[: n * width]
    seen = np.repeat(np.arange(n, dtype=np.int64), lens) * m + codes[n * width :]
    keep = ~np.isin(keys, seen).reshape(n, width) & (np.asarray(ids, dtype=str) != PAD_ID)
    rank = np.cumsum(keep, axis=1) - 1
    ok = keep & (rank < k)
    r, c = np.nonzero(ok)
    out_ids[r, rank[r, c]] = np.asarray(ids, dtype=object)[r, c]
    out_s[r, rank[r, c]] = scores[r, c]
    return out_ids.astype(str), out_s


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


class EmbeddingModel(ItemModel):
    """A model that learns one vector per item.

    Fitted attributes
    -----------------
    vectors_ : numpy.ndarray of float32, shape (n_items, dim)
        Row i is the vector of ``item_ids_[i]`` (not necessarily normalised): what
        indexes hold and what results are ranked by.
    query_vectors_ : numpy.ndarray of float32 or None
        Models with two vector spaces (Prod2Vec with ``vectors="in-out"``): row i is
        what item i is *looked up by* as a seed, compared with the ``vectors_`` of
        the candidates. None (the usual case): seeds use ``vectors_`` too.
    """

    is_embedding = True
    query_vectors_: np.ndarray | None = None

    def similar(self, item_ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine top-k (the seed excluded), batch-first."""
        rows, ids, scores, known = self._seed_rows(item_ids, k)
        if len(known) == 0:
            return ids.astype(str), scores
        unit = self.unit_vectors()
        sims = self.query_unit_vectors()[rows[known]] @ unit.T
        sims[np.arange(len(known)), rows[known]] = -np.inf  # exclude the seed
        kk = min(k, unit.shape[0] - 1)
        if kk <= 0:
            return ids.astype(str), scores
        top, top_s = topk_rows(sims, kk)  # ties: item order, exact whatever their number
        ids[known, :kk] = self.item_ids_[top]
        scores[known, :kk] = top_s
        return ids.astype(str), scores

    def unit_vectors(self) -> np.ndarray:
        """``vectors_`` with L2-normalised rows (cached)."""
        cached = getattr(self, "_unit", None)
        if cached is None or cached.shape != self.vectors_.shape:
            self._unit = normalize_rows(self.vectors_)
        return self._unit

    def query_unit_vectors(self) -> np.ndarray:
        """What seeds are looked up by, L2-normalised: ``query_vectors_`` when the model
        has a second space, else :meth:`unit_vectors`."""
        if self.query_vectors_ is None:
            return self.unit_vectors()
        cached = getattr(self, "_query_unit", None)
        if cached is None or cached.shape != self.query_vectors_.shape:
            self._query_unit = normalize_rows(self.query_vectors_)
        return self._query_unit

    def _save_state(self, path: Path) -> None:
        np.save(path / "vectors.npy", np.asarray(self.vectors_, dtype=np.float32), allow_pickle=False)
        if self.query_vectors_ is not None:
            np.save(
                path / "query_vectors.npy", np.asarray(self.query_vectors_, np.float32), allow_pickle=False
            )

    def _load_state(self, path: Path) -> None:
        from recsys.stored import read_npy

        self.vectors_ = read_npy(path / "vectors.npy")
        f = path / "query_vectors.npy"
        self.query_vectors_ = read_npy(f) if f.exists() else None
