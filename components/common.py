"""Small helpers several pages share (no Dash components here; see :mod:`components.layout`).

The registry and searcher look-ups are the ones Explore, Map and Compare call.

The dataset look-ups import :mod:`recsys.data.schema` inside the function: that module imports
pandas, which is kept off the app's start path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recsys.config import ENV_DATA_DIR, data_dir
from recsys.registry import Registry

_registries: dict[tuple[str, str], Registry] = {}  # a cache, one Registry per data directory


def data_registry() -> Registry:
    """The :class:`~recsys.registry.Registry` of the current data directory, one object per directory.

    Building a Registry resolves the path and creates folders, which a per-hover or
    per-filter-change callback should not do each time.
    """
    key = (os.environ.get(ENV_DATA_DIR) or "", os.getcwd())
    registry = _registries.get(key)
    if registry is None or not registry.runs_dir.is_dir():
        registry = _registries[key] = Registry(data_dir())
    return registry


def run_searcher(run_id: str) -> Any:
    """The run's cached :class:`recsys.search` searcher (lazy import).

    Raises
    ------
    RecsysError
        What :func:`recsys.search.get_searcher` raises: unknown run, no item vectors,
        dataset missing.
    """
    from recsys.search import get_searcher

    return get_searcher(data_registry(), run_id)


def list_datasets(root: str | Path) -> list[str]:
    """Names of the datasets stored under the data directory ``root``, sorted (lazy import of pandas).

    Parameters
    ----------
    root : str or Path
        The data directory (``recsys.config.data_dir()``).

    Returns
    -------
    list of str
        What :func:`recsys.data.schema.list_datasets` returns.
    """
    from recsys.data.schema import list_datasets as _list_datasets

    return _list_datasets(root)


def dataset_meta(name: str, root: str | Path) -> dict[str, Any]:
    """The stored report (``report.json``) of dataset ``name`` (lazy import of pandas).

    Parameters
    ----------
    name : str
        Dataset name.
    root : str or Path
        The data directory (``recsys.config.data_dir()``).

    Returns
    -------
    dict
        What :func:`recsys.data.schema.dataset_meta` returns; it raises the same errors.
    """
    from recsys.data.schema import dataset_meta as _dataset_meta

    return _dataset_meta(name, root)
