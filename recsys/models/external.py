"""Vectors trained elsewhere (PyTorch two-towers, CLIP, a team's own Word2Vec).

An :class:`ExternalModel` is fitted by :func:`recsys.external.import_vectors`,
never by ``fit``: it only holds ``item_ids_``, ``vectors_`` and, optionally,
``query_vectors_`` (a second space seeds are looked up by). ``metric`` says how
the vectors are compared: ``"cosine"`` (rows normalised) or ``"ip"`` (raw inner
product, for models trained with a dot-product objective).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recsys.errors import ModelFitError
from recsys.models.base import EmbeddingModel
from recsys.models.params import Param

METRICS = ("cosine", "ip")


class ExternalModel(EmbeddingModel):
    """Imported item vectors (family ``external``)."""

    family = "external"
    param_specs: ClassVar[dict[str, Param]] = {"metric": Param("cosine", "choice", choices=METRICS)}
    #: ``.npy`` files holding exactly ``vectors_`` and ``item_ids_`` (the importer's staged
    #: copies, which they map): the next :meth:`save` moves them into place instead of writing
    #: the arrays again
    staged_vectors: Path | None = None
    staged_ids: Path | None = None

    def _save_item_ids(self, path: Path) -> None:
        staged, self.staged_ids = self.staged_ids, None
        if staged is None:
            super()._save_item_ids(path)
        else:
            os.replace(staged, Path(path) / "item_ids.npy")

    def fit(self, dataset: Any, progress: Any = None) -> ExternalModel:
        raise ModelFitError(
            "external vectors are imported, not trained: use 'python -m recsys import-vectors' "
            "or the Data page's Import vectors form"
        )

    @classmethod
    def from_arrays(
        cls,
        item_ids: np.ndarray,
        vectors: np.ndarray,
        query_vectors: np.ndarray | None = None,
        metric: str = "cosine",
        catalog_ids: Any = None,
        coverage: dict[str, Any] | None = None,
    ) -> ExternalModel:
        """A fitted model over aligned arrays (already validated by the importer).

        ``coverage`` (as ``coverage_``) when the caller has counted it, else it is
        computed against ``catalog_ids``.
        """
        model = cls(metric=metric)
        model._validate()
        model.item_ids_ = np.asarray(item_ids, dtype=str)
        model.vectors_ = np.ascontiguousarray(vectors, dtype=np.float32)
        model.query_vectors_ = (
            None if query_vectors is None else np.ascontiguousarray(query_vectors, dtype=np.float32)
        )
        if coverage is not None:
            model.coverage_ = dict(coverage)
        else:
            model._set_coverage(list(catalog_ids) if catalog_ids is not None else list(model.item_ids_))
        return model

    def _save_state(self, path: Path) -> None:
        staged, self.staged_vectors = self.staged_vectors, None
        if staged is None:
            super()._save_state(path)
            return
        os.replace(
            staged, Path(path) / "vectors.npy"
        )  # same file system: the staging folder is in the data dir
        if self.query_vectors_ is not None:
            np.save(
                Path(path) / "query_vectors.npy",
                np.asarray(self.query_vectors_, np.float32),
                allow_pickle=False,
            )

    # In the inner-product space results are ranked by raw dot products, as hnswlib's "ip"
    # space does; in the cosine space the base class's unit rows apply.
    def unit_vectors(self) -> np.ndarray:
        if self.params.get("metric") == "ip":
            return np.asarray(self.vectors_, dtype=np.float32)
        return super().unit_vectors()

    def query_unit_vectors(self) -> np.ndarray:
        if self.params.get("metric") == "ip":
            q = self.vectors_ if self.query_vectors_ is None else self.query_vectors_
            return np.asarray(q, dtype=np.float32)
        return super().query_unit_vectors()
