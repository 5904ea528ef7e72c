"""The dataset schema and its storage as Parquet.

A dataset is a catalog plus interactions.

Catalog (one row per item, ``item_id`` unique):
    item_id (str), title (str), category (str path like ``Women > Shoes > Running``,
    "" when unknown), brand (str, "" when unknown), gender (one of GENDERS or ""),
    price (float64, NaN when missing), adult (bool), description (str, may be ""),
    image_url (str, may be ""). Optional columns (OPTIONAL_CATALOG_COLUMNS), present only
    when the source has them: in_stock (nullable boolean, <NA> when unknown; the filter
    rule "in stock only" needs it). Other columns are kept as extra attributes.

Interactions (one row per event):
    sequence_id (str: a session or a basket), user_id (str, "" when unknown),
    item_id (str, present in the catalog), timestamp (datetime64[ns], NaT allowed),
    event_type (str: view/cart/purchase), quantity (float64, 1.0 by default),
    position (int64: order of the event inside its sequence, 0-based).

Interactions are stored sorted by (sequence_id, position).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DatasetNotFoundError, DataValidationError, StoredDataError

CATEGORY_SEP = " > "
GENDERS = ("women", "men", "unisex", "kids", "")
EVENT_TYPES = ("view", "cart", "purchase")

CATALOG_COLUMNS = (
    "item_id",
    "title",
    "category",
    "brand",
    "gender",
    "price",
    "adult",
    "description",
    "image_url",
)
#: Catalogue columns with a known meaning that a source may lack (then they are absent, not
#: filled): in_stock (nullable boolean)
OPTIONAL_CATALOG_COLUMNS = ("in_stock",)
INTERACTION_COLUMNS = (
    "sequence_id",
    "user_id",
    "item_id",
    "timestamp",
    "event_type",
    "quantity",
    "position",
)


@dataclass
class ValidationReport:
    """What happened when a dataset was read.

    Attributes
    ----------
    rows_read : dict
        Rows read per file (``{"catalog": n, "interactions": m}`` or by path).
    rows_dropped : dict
        Reason -> number of rows dropped for it.
    unknown_items : int
        Interaction rows whose item is not in the catalog (dropped).
    duplicate_ids : int
        Catalog rows dropped because their item_id was already seen.
    missing_prices : int
        Catalog items with no price.
    warnings : list of str
        Anything else worth telling the user.
    reading : dict
        Per file ("catalog", "interactions"): how it was read and what was detected,
        e.g. ``{"separator": "tab (detected)", "timestamps": "unix seconds (detected)"}``.
    filled : dict
        Catalogue field -> items whose empty value was filled from the events' attributes.
    """

    rows_read: dict[str, int] = field(default_factory=dict)
    rows_dropped: dict[str, int] = field(default_factory=dict)
    unknown_items: int = 0
    duplicate_ids: int = 0
    missing_prices: int = 0
    warnings: list[str] = field(default_factory=list)
    reading: dict[str, dict[str, str]] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int) -> None:
        """Record ``n`` rows dropped for ``reason`` (no-op when n == 0)."""
        if n:
            self.rows_dropped[reason] = self.rows_dropped.get(reason, 0) + int(n)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ValidationReport:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Dataset:
    """A catalog plus interactions, already validated and normalised.

    Attributes
    ----------
    name : str
        Short name, also the folder name under ``<data_dir>/datasets``.
    catalog : pandas.DataFrame
        Columns CATALOG_COLUMNS (+ extras), ``item_id`` unique.
    interactions : pandas.DataFrame
        Columns INTERACTION_COLUMNS, sorted by (sequence_id, position).
    report : ValidationReport
    kind : str
        "sessions" (ordered events) or "baskets" (unordered orders/invoices).
    """

    name: str
    catalog: pd.DataFrame
    interactions: pd.DataFrame
    report: ValidationReport = field(default_factory=ValidationReport)
    kind: str = "sessions"

    def fingerprint(self) -> str:
        """A content hash of catalog and interactions (stable across saves)."""
        h = hashlib.sha256()
        for frame in (self.catalog, self.interactions):
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
            h.update(",".join(map(str, frame.columns)).encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        """Counts the Overview page shows."""
        cat = self.catalog
        return {
            "name": self.name,
            "kind": self.kind,
            "items": int(len(cat)),
            "interactions": int(len(self.interactions)),
            "sequences": int(self.interactions["sequence_id"].nunique()),
            "users": int(self.interactions.loc[self.interactions["user_id"] != "", "user_id"].nunique()),
            "categories": int(cat["category"].replace("", np.nan).dropna().nunique()),
            "top_categories": int(category_level(cat["category"], 0).replace("", np.nan).dropna().nunique()),
            "brands": int(cat["brand"].replace("", np.nan).dropna().nunique()),
            "adult_items": int(cat["adult"].sum()),
            "items_with_interactions": int(self.interactions["item_id"].nunique()),
        }


def category_level(category: pd.Series, level: int) -> pd.Series:
    """The path prefix of each category up to ``level`` (0 = top level).

    ``category_level(pd.Series(["Women > Shoes > Running"]), 1)`` gives
    ``"Women > Shoes"``. Shorter paths are returned whole.
    """
    if level < 0:
        raise ValueError(f"category level must be >= 0, got {level}")
    parts = category.fillna("").astype(str).str.split(CATEGORY_SEP, regex=False)
    return parts.map(lambda p: CATEGORY_SEP.join(p[: level + 1]))


_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def interaction_counts(interactions: pd.DataFrame, item_ids: Any) -> np.ndarray:
    """Interactions per item of ``item_ids`` (0 for items without any), int64, in that order."""
    index = pd.Index(np.asarray(item_ids, dtype=str))
    counts = interactions["item_id"].astype(str).value_counts().reindex(index).fillna(0)
    return counts.to_numpy(dtype=np.int64)


def natural_key(text: Any) -> tuple[Any, ...]:
    """A sort key that orders the numbers inside ids by value: "s2" before "s10", "u9~1" before
    "u10~0" (plain string order puts "s10" first)."""
    parts = re.split(r"(\d+)", str(text))
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts))


def in_natural_order(interactions: pd.DataFrame) -> pd.DataFrame:
    """``interactions`` in the order a person reads sessions: each session by its first event's
    time, sessions of one time (or without times) by :func:`natural_key` of their id, the events
    of a session by position. The stored order sorts ids as strings ("s10" before "s2"), which
    the Data page's preview showed as it was."""
    if interactions.empty or "sequence_id" not in interactions:
        return interactions
    seq = interactions["sequence_id"].astype(str)
    ids = sorted(seq.unique(), key=natural_key)
    key = pd.DataFrame(
        {
            "first": pd.to_datetime(interactions["timestamp"], errors="coerce").groupby(seq).transform("min")
            if "timestamp" in interactions
            else pd.NaT,
            "id": seq.map({s: i for i, s in enumerate(ids)}),
            "position": interactions["position"] if "position" in interactions else np.arange(len(seq)),
        },
        index=interactions.index,
    )
    order = key.sort_values(["first", "id", "position"], kind="stable", na_position="last").index
    return interactions.loc[order]


def _datasets_root(root: Path) -> Path:
    return Path(root) / "datasets"


def _dataset_folder(name: str, root: str | os.PathLike[str]) -> Path:
    """The folder of dataset ``name``; a name that is not a plain folder name is unknown."""
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
        raise DatasetNotFoundError(f"'{name}' is not a valid dataset name (letters, digits, '_', '.', '-')")
    return _datasets_root(Path(root)) / name


def save_dataset(dataset: Dataset, root: str | os.PathLike[str]) -> Path:
    """Store a dataset as Parquet under ``<root>/datasets/<name>``, atomically.

    The files are written to a temporary folder which is then renamed into
    place, so a failure never leaves a half-written dataset, and an existing
    dataset of the same name is only replaced once the new one is complete.
    """
    base = _datasets_root(Path(root))
    base.mkdir(parents=True, exist_ok=True)
    final = base / dataset.name
    from recsys.stored import disk_full_guard, saving_dir

    with disk_full_guard(f"dataset '{dataset.name}'", base):
        tmp = Path(tempfile.mkdtemp(prefix=f".{dataset.name}.", dir=base))
    try:
        with saving_dir(tmp), disk_full_guard(f"dataset '{dataset.name}'", base):
            _fill_dataset(tmp, dataset)
        if final.exists():
            old = base / f".{dataset.name}.old"
            if old.exists():
                shutil.rmtree(old)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fill_dataset(tmp: Path, dataset: Dataset) -> None:
    """Write a dataset's files into its temporary folder."""
    dataset.catalog.to_parquet(tmp / "catalog.parquet", index=False)
    dataset.interactions.to_parquet(tmp / "interactions.parquet", index=False)
    meta = {
        "name": dataset.name,
        "kind": dataset.kind,
        "fingerprint": dataset.fingerprint(),
        "report": dataset.report.to_dict(),
        "summary": dataset.summary(),
    }
    (tmp / "report.json").write_text(json.dumps(meta, indent=2, default=str))


def _stored_folder(name: str, root: str | os.PathLike[str]) -> Path:
    folder = _dataset_folder(name, root)
    if not (folder / "report.json").exists():
        known = ", ".join(list_datasets(root)) or "none"
        raise DatasetNotFoundError(f"dataset '{name}' not found in {folder.parent} (known: {known})")
    return folder


def _read_parquet(folder: Path, file: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(folder / file)
    except Exception as exc:  # pyarrow raises several types
        raise DataValidationError(f"stored dataset is unreadable: {exc}", file=str(folder / file)) from exc


def load_dataset(name: str, root: str | os.PathLike[str]) -> Dataset:
    """Load a stored dataset by name.

    Raises
    ------
    DatasetNotFoundError
        When ``<root>/datasets/<name>`` does not exist.
    """
    folder = _stored_folder(name, root)
    meta = _read_report(folder)
    catalog = _read_parquet(folder, "catalog.parquet")
    interactions = _read_parquet(folder, "interactions.parquet")
    return Dataset(
        name=meta["name"],
        catalog=catalog,
        interactions=interactions,
        report=ValidationReport.from_dict(meta.get("report", {})),
        kind=meta.get("kind", "sessions"),
    )


def load_stored_catalog(name: str, root: str | os.PathLike[str]) -> pd.DataFrame:
    """The catalogue of a stored dataset, without reading its interactions (search, seed pickers).

    Raises
    ------
    DatasetNotFoundError, DataValidationError
        As :func:`load_dataset`.
    """
    return _read_parquet(_stored_folder(name, root), "catalog.parquet")


def dataset_report_path(name: str, root: str | os.PathLike[str]) -> Path:
    """Where dataset ``name``'s report.json lives (it changes whenever the dataset is saved)."""
    return _dataset_folder(name, root) / "report.json"


def dataset_meta(name: str, root: str | os.PathLike[str]) -> dict[str, Any]:
    """The stored report.json of a dataset (cheap: no Parquet read)."""
    path = dataset_report_path(name, root)
    if not path.exists():
        raise DatasetNotFoundError(f"dataset '{name}' not found in {path.parent.parent}")
    return _read_report(path.parent)


def _read_report(folder: Path) -> dict[str, Any]:
    """A dataset's report.json, checked against :class:`recsys.stored.ReportFile`.

    Raises
    ------
    DatasetNotFoundError
        It does not exist.
    StoredDataError
        It is damaged (the message names the dataset and why).
    """
    from recsys.stored import ReportFile, read_stored, reason_of

    try:
        return read_stored(folder / "report.json", ReportFile)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"dataset '{folder.name}' not found in {folder.parent}") from None
    except StoredDataError as exc:
        raise StoredDataError(
            f"dataset '{folder.name}' is damaged: {reason_of(exc)}; import it again or delete its folder"
        ) from None


def list_datasets(root: str | os.PathLike[str]) -> list[str]:
    """Names of the stored datasets, sorted."""
    base = _datasets_root(Path(root))
    if not base.exists():
        return []
    return sorted(
        p.name for p in base.iterdir() if (p / "report.json").exists() and not p.name.startswith(".")
    )
