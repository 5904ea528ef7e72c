"""Small helpers several pages share (no Dash components here; see :mod:`components.layout`).

The dataset look-ups import :mod:`recsys.data.schema` inside the function: that module imports
pandas, which is kept off the app's start path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
