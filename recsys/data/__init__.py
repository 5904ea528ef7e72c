"""Datasets: schema, storage, loaders and validation, demo generator, importers."""

from recsys.data.adapters import (
    import_dataset,
    import_generic,
    import_instacart,
    import_online_retail,
    import_rees46,
)
from recsys.data.loaders import build_dataset, load_catalog, load_interactions, read_table
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
from recsys.data.synthetic import generate_demo

__all__ = [
    "CATALOG_COLUMNS",
    "GENDERS",
    "INTERACTION_COLUMNS",
    "Dataset",
    "ValidationReport",
    "build_dataset",
    "category_level",
    "generate_demo",
    "import_dataset",
    "import_generic",
    "import_instacart",
    "import_online_retail",
    "import_rees46",
    "list_datasets",
    "load_catalog",
    "load_dataset",
    "load_interactions",
    "read_table",
    "save_dataset",
]
