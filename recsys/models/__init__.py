"""Model families behind one interface (see :mod:`recsys.models.base`).

``get_model_class(family)`` resolves a family name lazily, so that importing
this package does not import gensim or TensorFlow.
"""

from __future__ import annotations

import importlib

from recsys.errors import ModelFitError, UnknownFamilyError
from recsys.models.base import EmbeddingModel, ItemModel

#: family name -> "module:Class"; modules are imported on first use.
FAMILIES: dict[str, str] = {
    "popularity": "recsys.models.baselines:PopularityModel",
    "cooccurrence": "recsys.models.baselines:CooccurrenceModel",
    "item_knn": "recsys.models.session_knn:ItemKNN",
    "sknn": "recsys.models.session_knn:SessionKNN",
    "vsknn": "recsys.models.session_knn:VSessionKNN",
    "prod2vec": "recsys.models.prod2vec:Prod2Vec",
    "meta_prod2vec": "recsys.models.prod2vec:MetaProd2Vec",
    "content": "recsys.models.content:ContentModel",
    "tfidf": "recsys.models.tfidf:TfidfModel",
    "two_tower": "recsys.models.two_tower:TwoTowerModel",
}
#: Families that are imported, never trained (kept out of FAMILIES, which lists what can be trained).
IMPORTED_FAMILIES: dict[str, str] = {
    "external": "recsys.models.external:ExternalModel",
}

#: Families that recommend from a whole session (``model.recommend(recent, k, exclude_seen)``)
#: without item vectors: they serve "recent views" beside the two-tower model.
SESSION_FAMILIES: tuple[str, ...] = ("item_knn", "sknn", "vsknn")


def get_model_class(family: str) -> type[ItemModel]:
    """The model class of a family name (imports its module on demand).

    Raises
    ------
    UnknownFamilyError
        No family has this name (a :class:`~recsys.errors.ModelFitError`, so the CLI,
        the Runs page and REST report it as a bad request, naming the families).
    """
    target = (FAMILIES.get(family) or IMPORTED_FAMILIES.get(family)) if isinstance(family, str) else None
    if target is None:
        raise UnknownFamilyError(f"unknown model family {family!r}; choose one of: {', '.join(FAMILIES)}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def make_model(family: str, **params: object) -> ItemModel:
    """Instantiate a model family with parameters (validated on ``fit``)."""
    return get_model_class(family)(**params)


def catalog_only_families() -> list[str]:
    """Families that train on a catalogue without interactions (``needs_interactions = False``)."""
    return [f for f in FAMILIES if not getattr(get_model_class(f), "needs_interactions", True)]


def validate_params(family: str, params: object) -> dict[str, object]:
    """Check a family's parameters without fitting: names, types and ranges, against the
    family's ``param_specs`` (:mod:`recsys.models.params`) and its ``_check_together``.

    Raises
    ------
    UnknownFamilyError
        No family has this name.
    ModelFitError
        ``params`` not a mapping, an unknown parameter name, or a value of the wrong
        type or range: ``"<family>: parameter '<name>' must be <allowed>, got <value>"``.
    """
    cls = get_model_class(family)
    if not isinstance(params, dict):
        raise ModelFitError(f"{family}: parameters must be a mapping of name -> value")
    try:
        cls(**params)._validate()  # unknown names are refused by the constructor
    except ModelFitError:
        raise
    except (TypeError, ValueError) as exc:  # a family's own rule that slipped a plain error
        raise ModelFitError(f"{family}: {exc}") from None
    return dict(params)


__all__ = [
    "FAMILIES",
    "IMPORTED_FAMILIES",
    "SESSION_FAMILIES",
    "catalog_only_families",
    "EmbeddingModel",
    "ItemModel",
    "UnknownFamilyError",
    "get_model_class",
    "make_model",
    "validate_params",
]
