"""Datasets: schema, storage, loaders and validation, demo generator, importers."""

from recsys.data.schema import (
    CATALOG_COLUMNS,
    GENDERS,
    INTERACTION_COLUMNS,
    Dataset,
    ValidationReport,
    category_level,
    list_datasets,
    load_dataset,
    save_dataset,
)

__all__ = [
    "CATALOG_COLUMNS",
    "GENDERS",
    "INTERACTION_COLUMNS",
    "Dataset",
    "ValidationReport",
    "category_level",
    "list_datasets",
    "load_dataset",
    "save_dataset",
]
