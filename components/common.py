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


_run_datasets: dict[tuple[str, str], str] = {}  # (data dir, run id) -> dataset name (fixed for a run)


def run_dataset(run_id: str | None) -> str | None:
    """The dataset name of a run (from its run.json; cached: a run's dataset never changes),
    or None for no run, an unknown or unreadable one. Cards use it to serve the run's local
    images (:func:`recsys.images.image_src`)."""
    from recsys.errors import RecsysError

    if not run_id:
        return None
    registry = data_registry()
    key = (str(registry.root), str(run_id))
    name = _run_datasets.get(key)
    if name is None:
        try:
            name = str(registry.get(run_id)["dataset"]["name"])
        except (RecsysError, KeyError, TypeError):
            return None
        _run_datasets[key] = name
    return name


def run_catalog_view(run_id: str) -> Any:
    """The catalogue view (seed search, labels, cards) of a run, without its vectors or index.

    :func:`recsys.catalog.run_catalog_view`: aligned with the run's vector rows for an
    embedding run (the same object its searcher uses), the dataset's whole catalogue for a
    baseline run, so that pages comparing baselines can still offer seeds.

    Raises
    ------
    RecsysError
        Unknown run, dataset missing or unreadable.
    """
    from recsys.catalog import run_catalog_view as load
    from recsys.catalog import warm_seed_search

    view = load(data_registry(), run_id)
    warm_seed_search(view)  # the pages' seed search: its counts and columns, in the background
    return view


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


def bounded_k(value: Any, default: int = 10) -> int:
    """A ``k`` from a control, bounded like the API's (1..200); anything else -> ``default``.

    The browser only sends the dropdown's choices; a hand-made request with
    ``k=-1`` or ``'abc'`` gets the default instead of a server error.
    """
    from recsys.serving import DEFAULT_MAX_K, ApiError, parse_k

    try:
        return parse_k(value, DEFAULT_MAX_K, default)
    except ApiError:
        return default


def bounded_int(value: Any, default: int, low: int, high: int) -> int:
    """A whole number from a control in ``low..high``; anything else -> ``default``."""
    if isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    if not number.is_integer() or not low <= number <= high:
        return default
    return int(number)


def unavailable_run(run_id: str) -> str:
    """Why a run a URL asks for is not offered: "run 'x' is damaged: <why>...", "run 'x' not found"..."""
    from recsys.errors import DamagedRunError, RunNotFoundError

    try:
        data_registry().check(run_id)
    except DamagedRunError as exc:
        return str(exc)
    except RunNotFoundError:
        return f"run '{run_id}' not found"
    return f"run '{run_id}' has no item vectors (a baseline)"
