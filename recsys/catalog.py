"""Catalogue attributes aligned with vector rows (:class:`CatalogView`), and the one item search."""

from __future__ import annotations

import bisect
import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import CATEGORY_SEP
from recsys.filters import _norm_brand

logger = logging.getLogger(__name__)
_NO_PRICE = np.iinfo(np.int32).max


# -- catalogue attributes ------------------------------------------------------------
def _codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
    return codes.astype(np.int32), np.asarray(uniques, dtype=object)


def _norm_title(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str).str.casefold().str.split().str.join(" ")


class CatalogView:
    """Catalogue attributes aligned with vector rows, as NumPy arrays.

    Items are stored in *position* order: sorted by category path codes so
    that each category, at every level, is one contiguous slice. ``perm[pos]``
    is the vector row of position ``pos`` and ``pos_of_row[row]`` the reverse.

    Parameters
    ----------
    item_ids : sequence of str
        Item id of each vector row.
    catalog : pandas.DataFrame
        Catalogue (CATALOG_COLUMNS); items missing from it get empty
        attributes (no category, brand, gender or price; not adult).
    """

    def __init__(self, item_ids: Sequence[str] | np.ndarray, catalog: pd.DataFrame) -> None:
        ids = np.asarray(item_ids, dtype=str)
        n = len(ids)
        self.n = n
        dedup = catalog.drop_duplicates("item_id")
        cat = dedup.set_index(dedup["item_id"].astype(str).rename(None))
        aligned = cat.reindex(pd.Index(ids, dtype=object))
        missing = int(aligned["item_id"].isna().sum()) if "item_id" in aligned else n
        if missing:
            logger.warning(
                "%d of %d vector rows have no catalogue entry; they get empty attributes", missing, n
            )

        def col(name: str, default: Any) -> pd.Series:
            if name in aligned:
                return aligned[name]
            return pd.Series([default] * n, index=aligned.index, dtype=object)

        category = col("category", "").fillna("").astype(str)
        parts = category.str.split(CATEGORY_SEP, regex=False)
        depth = int(parts.map(len).max()) if n else 1
        self.max_level = max(depth - 1, 0)
        level_strings = [
            parts.map(lambda p, lv=lv: CATEGORY_SEP.join(p[: lv + 1])) for lv in range(self.max_level + 1)
        ]
        raw_codes = [_codes(s)[0] for s in level_strings]
        perm = np.lexsort(tuple(reversed(raw_codes))) if n else np.zeros(0, dtype=np.int64)
        self.perm = perm.astype(np.int64)
        self.pos_of_row = np.empty(n, dtype=np.int64)
        self.pos_of_row[self.perm] = np.arange(n)
        self.item_ids = ids[self.perm]
        #: per level: codes in position order (non-decreasing), bounds[c]..bounds[c+1] is code c's slice
        self.cat_codes: list[np.ndarray] = []
        self.cat_bounds: list[np.ndarray] = []
        self.cat_names: list[np.ndarray] = []
        for s in level_strings:
            values = s.to_numpy(dtype=object)[self.perm]
            codes, names = _codes(values)
            self.cat_codes.append(codes)
            self.cat_bounds.append(np.searchsorted(codes, np.arange(len(names) + 1)).astype(np.int64))
            self.cat_names.append(names)
        self.cat_empty = category.to_numpy(dtype=object)[self.perm] == ""

        gender = col("gender", "").fillna("").astype(str).to_numpy(dtype=object)[self.perm]
        self.gender, self.gender_names = _codes(gender)
        self.gender_counts = np.bincount(self.gender, minlength=len(self.gender_names))

        brand = col("brand", "").fillna("").astype(str).to_numpy(dtype=object)[self.perm]
        norm_brand = np.array([_norm_brand(b) for b in brand], dtype=object) if n else brand
        self.brand, self.brand_keys = _codes(norm_brand)
        self.brand_display = (
            pd.Series(brand).groupby(self.brand).first().to_numpy(dtype=object) if n else brand
        )
        self.brand_code = {k: i for i, k in enumerate(self.brand_keys)}
        self.no_brand = self.brand_code.get("", -1)
        self.brand_counts = np.bincount(self.brand, minlength=len(self.brand_keys))

        price = pd.to_numeric(col("price", np.nan), errors="coerce").to_numpy(dtype=np.float64)[self.perm]
        self.price = price
        finite = np.isfinite(price)
        self.sorted_prices = np.sort(price[finite])
        #: sorted distinct known prices, and each position's rank among them (_NO_PRICE when
        #: missing): ``lo <= price <= hi`` is exactly ``rank_range(lo, hi)[0] <= rank < [1]``
        self.price_values = np.unique(self.sorted_prices)
        self.price_rank = np.full(n, _NO_PRICE, dtype=np.int32)
        self.price_rank[finite] = np.searchsorted(self.price_values, price[finite]).astype(np.int32)
        self._price_list = self.price_values.tolist()  # bisect on a list beats a NumPy call per query
        #: items whose price rank is below r, for r in 0..len(price_values)
        self.rank_cum = np.zeros(len(self.price_values) + 1, dtype=np.int64)
        np.cumsum(
            np.bincount(self.price_rank[finite], minlength=len(self.price_values)), out=self.rank_cum[1:]
        )

        adult = col("adult", False)
        self.adult = adult.fillna(False).astype(bool).to_numpy()[self.perm]
        self.n_adult = int(self.adult.sum())

        title = _norm_title(col("title", "")).to_numpy(dtype=object)[self.perm]
        self.title, self.title_names = _codes(title)
        self.title_counts = np.bincount(self.title, minlength=len(self.title_names))
        self.empty_title = (
            int(np.flatnonzero(self.title_names == "")[0]) if (self.title_names == "").any() else -1
        )
        self.item_id_list: list[str] = self.item_ids.tolist()
        self.item_id_by_row: list[str] = ids.tolist()  # vector row order
        self.pos_of_id: dict[str, int] = {str(x): i for i, x in enumerate(self.item_id_list)}
        self._catalog = aligned
        #: (data dir, dataset) of a run's view (:func:`run_catalog_view`): the seed search's counts
        self.source: tuple[str, str] | None = None
        #: per position: the item has no vector of its own and is served by the mean vector of
        #: its category (:func:`category_stand_ins`); None when no item is
        self.stand_in: np.ndarray | None = None

    def has_brand(self, brands: Sequence[str]) -> np.ndarray:
        """Boolean per position: the item's brand is one of ``brands`` (case-insensitive)."""
        codes = [self.brand_code[b] for b in map(_norm_brand, brands) if b in self.brand_code]
        table = np.zeros(len(self.brand_keys), dtype=bool)
        table[codes] = True
        return table[self.brand]

    def position(self, item_id: str) -> int:
        """Position of an item id, or -1."""
        return self.pos_of_id.get(str(item_id), -1)

    def count_price_between(self, lo: float, hi: float) -> int:
        """Items with a known price in [lo, hi] (O(log n))."""
        sp = self.sorted_prices
        return int(sp.searchsorted(hi, side="right") - sp.searchsorted(lo, side="left"))

    def rank_range(self, lo: float, hi: float) -> tuple[int, int]:
        """[start, end) of the price ranks whose price lies in [lo, hi] (O(log n))."""
        return bisect.bisect_left(self._price_list, lo), bisect.bisect_right(self._price_list, hi)

    def category_slice(self, pos: int, level: int) -> tuple[int, int] | None:
        """The [start, end) slice of the seed's category at ``level`` (None if it has none)."""
        if self.cat_empty[pos]:
            return None
        lv = min(level, self.max_level)
        code = self.cat_codes[lv][pos]
        b = self.cat_bounds[lv]
        return int(b[code]), int(b[code + 1])

    def attributes(self, positions: np.ndarray) -> pd.DataFrame:
        """Catalogue rows (all columns) for positions, in that order."""
        return self._catalog.iloc[self.perm[positions]].reset_index(drop=True)

    def flag(self, name: str, missing: bool) -> np.ndarray:
        """Boolean column ``name`` per position (cached); ``missing`` where the value (or the
        column) is missing. Accepts booleans, 0/1 and the usual words (true/false, yes/no)."""
        cache = self.__dict__.setdefault("_flags", {})
        key = (name, missing)
        got = cache.get(key)
        if got is None:
            col = self._catalog[name] if name in self._catalog else pd.Series([None] * self.n, dtype=object)
            got = cache[key] = _as_flags(col, missing)[self.perm]
        return got

    def category_code(self, path: str | None) -> tuple[int, int] | None:
        """(level, code) of a category path (``Women > Shoes``) in this catalogue, or None."""
        if not path:
            return None
        level = path.count(CATEGORY_SEP)
        if level > self.max_level:
            return None
        hit = np.flatnonzero(self.cat_names[level] == path)
        return (level, int(hit[0])) if len(hit) else None

    def under_category(self, path: str | None) -> np.ndarray:
        """Boolean per position: the item's category is ``path`` or under it."""
        where = self.category_code(path)
        if where is None:
            return np.zeros(self.n, dtype=bool)
        level, code = where
        return (self.cat_codes[level] == code) & ~self.cat_empty

    def column_in(self, name: str, values: Sequence[str]) -> np.ndarray:
        """Boolean per position: catalogue column ``name`` (as text, spaces stripped) is one of
        ``values``; False everywhere when the catalogue has no such column."""
        if name not in self._catalog:
            return np.zeros(self.n, dtype=bool)
        col = self._catalog[name]
        text = col.map(lambda x: "" if pd.isna(x) else str(x).strip())
        return text.isin(set(values)).to_numpy(dtype=bool)[self.perm]

    def has_column(self, name: str) -> bool:
        """Whether the catalogue file has column ``name`` (a rule reading it is available)."""
        return name in self.columns

    @property
    def columns(self) -> list[str]:
        """The catalogue's columns (as stored; missing standard ones are filled with defaults)."""
        return [str(c) for c in self._catalog.columns]


_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def _as_flags(col: pd.Series, missing: bool) -> np.ndarray:
    """A catalogue column as booleans (``missing`` where missing or not a boolean word)."""
    if col.dtype == bool:
        return col.to_numpy()
    if isinstance(col.dtype, pd.BooleanDtype):  # nullable booleans (a stored in_stock column)
        return col.fillna(missing).to_numpy(dtype=bool)
    words = col.map(lambda x: "" if pd.isna(x) else str(x).strip().casefold())
    out = np.full(len(col), missing, dtype=bool)
    out[words.isin(_TRUE).to_numpy()] = True
    out[words.isin(_FALSE).to_numpy()] = False
    return out


# -- the one item search -------------------------------------------------------------------
_search_cache: weakref.WeakKeyDictionary[CatalogView, tuple[Any, Any, Any]] = weakref.WeakKeyDictionary()


def _search_columns(view: CatalogView) -> tuple[Any, Any, Any]:
    """Distinct normalised titles, distinct brand keys and case-folded item ids as Arrow
    strings (cached per view)."""
    hit = _search_cache.get(view)
    if hit is None:
        titles = pd.Series(np.asarray(view.title_names, dtype=object), dtype="string[pyarrow]")
        brands = pd.Series(np.asarray(view.brand_keys, dtype=object), dtype="string[pyarrow]")
        ids_lower = pd.Series(np.asarray(view.item_ids, dtype=object), dtype="string[pyarrow]").str.casefold()
        hit = (titles, brands, ids_lower)
        _search_cache[view] = hit
    return hit


#: per view: its positions' counts (int64), or None when its dataset has none (final answers only)
_popularity_cache: weakref.WeakKeyDictionary[CatalogView, np.ndarray | None] = weakref.WeakKeyDictionary()
#: (data dir, dataset, stamp of its report.json) -> interactions per item id (a Series), None
#: when the dataset has none; absent while the background read runs (``_popularity_reading``)
_dataset_counts: dict[tuple[Any, ...], pd.Series | None] = {}
_popularity_reading: dict[tuple[Any, ...], threading.Event] = {}
_popularity_lock = threading.Lock()
#: views whose seed search is prepared in the background already (:func:`warm_seed_search`)
_search_warmed: weakref.WeakKeyDictionary[CatalogView, bool] = weakref.WeakKeyDictionary()


def _counts_key(root: Any, name: str) -> tuple[Any, ...]:
    from recsys._io import file_stamp
    from recsys.data.schema import dataset_report_path

    return str(root), name, file_stamp(dataset_report_path(name, root))


def _read_counts(root: Any, name: str) -> pd.Series | None:
    """Interactions per item id of a stored dataset (only the ``item_id`` column read), None
    without interactions (a catalogue alone) or when the file cannot be read."""
    from recsys.data.schema import dataset_report_path

    path = dataset_report_path(name, root).parent / "interactions.parquet"
    try:
        col = pd.read_parquet(path, columns=["item_id"])["item_id"].astype(str)
    except Exception as exc:  # noqa: BLE001 - no file, no column, unreadable: rank without it
        logger.info("no interaction counts for the item search of %s: %s", name, exc)
        return None
    return col.value_counts() if len(col) else None


def warm_item_popularity(root: Any, name: str) -> threading.Event:
    """Start reading a dataset's interaction counts in a background thread (once per version
    of the dataset: its ``report.json`` stamp; a re-import reads again). Returns an event set
    when they are ready. Called when a page loads a run's catalogue view
    (:func:`warm_seed_search`), so the seed search's counts are read off the request path: on
    Online Retail the read took 0.2 to 0.7 s inside a run's first search."""
    key = _counts_key(root, name)
    with _popularity_lock:
        event = _popularity_reading.get(key)
        if event is not None:
            return event
        event = _popularity_reading[key] = threading.Event()
        for old in [k for k in _popularity_reading if k[:2] == key[:2] and k != key]:
            _popularity_reading.pop(old, None)  # an older version of the dataset
            _dataset_counts.pop(old, None)

    def read() -> None:
        try:
            counts = _read_counts(root, name)
        except Exception:  # noqa: BLE001 - never kill the thread silently: the search ranks without
            logger.exception("reading the interaction counts of %s failed", name)
            counts = None
        with _popularity_lock:
            if key in _popularity_reading:
                _dataset_counts[key] = counts
        event.set()

    threading.Thread(target=read, name=f"item-popularity-{name}", daemon=True).start()
    return event


def warm_seed_search(view: CatalogView) -> None:
    """Start preparing, in background threads, what the seed search reads (once per view): its
    dataset's interaction counts (:func:`warm_item_popularity`) and its Arrow columns (about
    0.15 s at 92k items), so that a page's first search neither waits nor ranks without them.

    Called by the pages that offer a seed search when they load a run's view
    (:func:`components.common.run_catalog_view`), not by :func:`run_catalog_view` itself: a
    REST worker loads the same view to serve lists and never searches by text, and these
    reads (the interactions' ``item_id`` column of a big export) would compete with its
    requests."""
    with _popularity_lock:
        if view in _search_warmed:
            return
        _search_warmed[view] = True
    source = getattr(view, "source", None)
    if source is not None:
        warm_item_popularity(*source)
    threading.Thread(target=_search_columns, args=(view,), name="search-columns", daemon=True).start()


def item_popularity(view: CatalogView, wait: float = 0.0) -> np.ndarray | None:
    """Interactions per position of ``view`` in its dataset (int64), or None when the view
    has no stored dataset behind it (``view.source``, set by :func:`run_catalog_view`), the
    dataset has no interactions (a catalogue alone), or the counts are not read yet.

    Never reads on the caller's thread: the counts (only the interactions' ``item_id``
    column) are read in the background once per version of the dataset
    (:func:`warm_item_popularity`); until they are ready the answer is None, so a search
    ranks in catalogue order rather than wait. ``wait``: seconds to wait for them (tests,
    batch callers; 0 for a request)."""
    if view in _popularity_cache:
        return _popularity_cache[view]
    source = getattr(view, "source", None)
    if source is None:
        return None
    key = _counts_key(*source)
    with _popularity_lock:
        ready = key in _dataset_counts
        counts = _dataset_counts.get(key)
    if not ready:
        event = warm_item_popularity(*source)
        if not wait or not event.wait(wait):
            return None
        with _popularity_lock:
            counts = _dataset_counts.get(key)
    out = None
    if counts is not None:
        index = pd.Index(np.asarray(view.item_ids, dtype=str))
        out = counts.reindex(index).fillna(0).to_numpy(dtype=np.int64)
    _popularity_cache[view] = out
    return out


def search_items(view: CatalogView, query: str | None, limit: int | None = None) -> np.ndarray:
    """Positions of the items whose title, brand or id contains ``query`` (case-insensitive), best first.

    The one item search (seed pickers, the map's highlight). Ranking: an exact id match
    first; then, where the dataset has interactions, the other matches most interacted-with
    first (:func:`item_popularity`), titles starting with the query before other matches
    among equal counts; without interactions (or before their counts, read in the
    background, are ready: the search never waits for them), titles starting with the query, then any other
    match (title, brand or id containing it). Then position order. Popularity comes before the
    prefix: on Online Retail, "hanging heart" put six "Hanging Heart …" titles (one of 3
    sales) before the best seller "White Hanging Heart T-Light Holder" (2,332).
    Vectorised (Arrow string kernels) over the distinct titles and brands of the view.
    ``limit``: at most this many (None: all).
    """
    q = " ".join(str(query or "").split()).casefold()
    if not q:
        return np.zeros(0, dtype=np.int64)
    titles, brands, ids_lower = _search_columns(view)
    hit_title = titles.str.contains(q, regex=False).to_numpy(dtype=bool, na_value=False)
    starts = titles.str.startswith(q).to_numpy(dtype=bool, na_value=False)
    hit_brand = brands.str.contains(q, regex=False).to_numpy(dtype=bool, na_value=False)
    id_exact = (ids_lower == q).to_numpy(dtype=bool, na_value=False)
    id_hit = ids_lower.str.contains(q, regex=False).to_numpy(dtype=bool, na_value=False)
    score = (
        np.where(id_exact, 3, 0)
        + np.where(starts[view.title], 2, 0)
        + (hit_title[view.title] | hit_brand[view.brand] | id_hit)
    )
    pos = np.flatnonzero(score > 0)
    popularity = item_popularity(view)
    if popularity is None:
        order = np.argsort(-score[pos], kind="stable")
    else:  # the last key sorts first: exact id, popularity, title prefix, position
        prefix = starts[view.title[pos]]
        order = np.lexsort((pos, ~prefix, -popularity[pos], ~id_exact[pos]))
    return pos[order if limit is None else order[:limit]]


# -- loading without vectors or index ------------------------------------------------------
# (data dir, run id or "", dataset, stamps of item_ids.npy and report.json) -> view
_views: dict[tuple[Any, ...], CatalogView] = {}
_views_lock = threading.Lock()
#: One load at a time per (data dir, run, dataset): a second caller waits for the first's view
#: (a 100k-item catalogue takes seconds; the Map's warm-up and a first page may ask at once).
_loading: dict[tuple[Any, ...], threading.Lock] = {}


def run_catalog_view(registry: Any, run_id: str) -> CatalogView:
    """The catalogue view of a run, loaded without its vectors or index.

    An embedding run's view is aligned with its vector rows (``item_ids.npy``), so its
    positions are those of the run's searcher; a run without vectors (popularity,
    co-occurrence) gets a view over its dataset's whole catalogue. Cached per run while
    ``item_ids.npy`` and the dataset's ``report.json`` are unchanged (a re-import).

    Raises
    ------
    RecsysError
        Unknown run, dataset missing or unreadable.
    """
    from recsys._io import file_stamp
    from recsys.data.schema import dataset_report_path, load_stored_catalog

    meta = registry.get(run_id)
    name = meta["dataset"]["name"]
    ids_path = registry.run_dir(run_id) / "item_ids.npy"
    embedding = bool(meta.get("is_embedding", True)) and ids_path.exists()
    key = (
        str(registry.root),
        run_id if embedding else "",
        name,
        file_stamp(ids_path) if embedding else None,
        file_stamp(dataset_report_path(name, registry.root)),
    )
    with _views_lock:
        view = _views.get(key)
        loading = _loading.setdefault(key[:3], threading.Lock())
    if view is not None:
        return view
    with loading:
        with _views_lock:
            view = _views.get(key)  # loaded by another caller meanwhile
        if view is not None:
            return view
        catalog = load_stored_catalog(name, registry.root)
        if embedding:
            try:
                ids = np.load(ids_path, allow_pickle=False)
            except (ValueError, EOFError, OSError) as exc:  # truncated, not an .npy, unreadable
                from recsys.errors import DamagedRunError

                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise DamagedRunError(
                    run_id, f"item_ids.npy is not a readable .npy array ({first})"
                ) from None
        else:
            ids = catalog["item_id"].astype(str).to_numpy()
        view = CatalogView(ids, catalog)
        view.source = (str(registry.root), name)  # where item_popularity reads its counts
        if embedding:
            view.stand_in = category_stand_ins(registry.run_dir(run_id), view)
        with _views_lock:
            for old in [k for k in _views if k[:3] == key[:3]]:
                del _views[old]
            _views[key] = view
    return view


def category_stand_ins(folder: Any, view: CatalogView) -> np.ndarray | None:
    """Per position of ``view`` (a run's vector rows): whether the item is served by the mean
    vector of its category (or top level, or brand) because it has none of its own (too rare
    in, or absent from, the training data: Prod2Vec's declared fallback, ``fallback.npy``;
    those are the last ``coverage.from_category`` rows). None when no item is, or when the
    run's files do not say (the cards then mark nothing)."""
    import json
    from pathlib import Path

    folder = Path(folder)
    path = folder / "fallback.npy"
    if not path.exists():
        return None
    try:
        mask = np.asarray(np.load(path, allow_pickle=False), dtype=bool)
        coverage = json.loads((folder / "model.json").read_text()).get("coverage") or {}
        n_category = int(coverage.get("from_category", int(mask.sum())))
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # damaged: Registry.check names it
        logger.info("stand-in vectors of %s not read: %s", folder.name, exc)
        return None
    if mask.shape != (view.n,) or n_category <= 0:
        return None
    rows = np.zeros(view.n, dtype=bool)
    rows[view.n - min(n_category, view.n) :] = True  # the category means come last
    rows &= mask
    return rows[view.perm] if rows.any() else None


# (data dir, dataset) -> (stamp of the dataset's report.json, its catalogue's item ids)
_dataset_ids: dict[tuple[str, str], tuple[Any, frozenset[str]]] = {}


def dataset_item_ids(root: Any, name: str) -> frozenset[str]:
    """The item ids of a stored dataset's catalogue (only that Parquet column read), cached
    while its ``report.json`` is unchanged (one ``stat`` per call once loaded; a re-import
    rewrites the report and is seen at once).

    Every item of the catalogue is listed, with a vector in some run or not: a run answers a
    catalogue item without a vector from its fallback chain.

    Raises
    ------
    RecsysError
        Dataset missing or unreadable.
    """
    from recsys._io import file_stamp
    from recsys.data.schema import dataset_report_path, load_stored_catalog
    from recsys.errors import DatasetNotFoundError

    key = (str(root), name)
    stamp = file_stamp(dataset_report_path(name, root))
    if stamp is None:
        _dataset_ids.pop(key, None)
        raise DatasetNotFoundError(f"dataset '{name}' not found")
    hit = _dataset_ids.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        path = dataset_report_path(name, root).parent / "catalog.parquet"
        col = pd.read_parquet(path, columns=["item_id"])["item_id"]
    except Exception:  # noqa: BLE001 - pyarrow raises several types: the loader's read says why
        col = load_stored_catalog(name, root)["item_id"]
    ids = frozenset(col.astype(str))
    _dataset_ids[key] = (stamp, ids)
    return ids
