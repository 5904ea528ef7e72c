"""Filtered similar-item search: the planner behind Explore and the REST API.

:class:`FilteredSearcher` holds a run's vectors, its HNSW index and the
catalogue attributes aligned with the vectors' rows (:class:`CatalogView`,
all NumPy codes). A :class:`~recsys.filters.FilterConfig` is compiled once
(cached by its hash) into a seed-independent boolean mask; per seed the
seed-dependent rules (same category/gender, price band, banned brand pairs,
adult next to a non-adult seed, the seed and same-title items) are ANDed in,
vectorised, over the seed's *domain*: the contiguous block of its category
(items are stored sorted by category path, so every category at every level is
one slice) or the whole catalogue.

The planner then picks, per query, by the estimated cost:

``exact_range`` / ``exact_subset``
    Exact dot products over the domain slice (dense) or over the gathered
    eligible rows. Cheap for small eligible sets (1% of 100k = 1k rows costs
    about one HNSW query).
``hnsw_overfetch``
    Unfiltered HNSW for ``max(4 * need, 64)`` candidates (the index's ``ef``
    still bounds the beam, so this costs about one unfiltered query),
    post-filtered; when that comes up short, exact search over the eligible
    items (``+exact_fallback``; or, when that would be much dearer, a 4x
    larger fetch first). Whether the first fetch usually fills the list is
    *learned* per compiled filter (a running hit rate, seeded with what
    independence of filter and vectors would predict): filters correlate with
    the vectors ("same category" keeps 5% of the catalogue but most of a
    seed's neighbours), so the plan is chosen by expected cost, with a few
    exploratory over-fetches while exact search is preferred.
``hnsw_filter``
    hnswlib's own filter callback. Never chosen automatically: it calls Python
    once per visited node (16x-150x slower than unfiltered at 10%-1%
    selectivity); available with ``plan="hnsw_filter"`` for comparison.

No per-seed mask over the catalogue is built unless exact search needs it:
the seed-dependent rules are resolved in O(1)/O(log n) (:class:`_SeedRules`);
gender, price band and adult rules go through a per-filter key index (one int
per item: category block x gender x price rank, -1 where the seed-independent
rules exclude it), so the exact eligible count is one binary search and each
HNSW candidate one range test. Banned brand pairs and same-title exclusion
take one vectorised pass over the domain slice.

Guarantees: k results whenever k eligible items exist, all of them when fewer
(never hnswlib's "contiguous 2D array" error), with ``min_similarity`` and
``max_per_brand`` applied on the ranked list. Scores are exact: NumPy dot
products, or, on the over-fetch hot path of a cosine run, hnswlib's own
distances (``1 - dot`` of the same unit vectors, float32), which agree with
them to float32 rounding (about 1e-7), so they do not depend on the plan
beyond that (near-exact ties may order differently).

Serving hot path: once a filter has answered a few automatic queries
(``_TABLE_AFTER``; a filter tried once or twice in Explore never pays for it), a
per-seed table is built (:meth:`FilteredSearcher._seed_table`, vectorised,
O(n log n)): one row
per seed position holds its key range, its slice of the key order, its
eligible count, its domain and its removed-by-rule counts, so a query reads one
row instead of resolving the rules; the over-fetch tests hnswlib labels by row
with one gather and plain lists. The same rules and counts as the general path
(tests check both against each other and against brute force).

Filters that ignore the vectors (issue 18). A *static* filter (only
seed-independent rules: brands, an absolute price range, adult items) has one
eligible set for every seed (:class:`~recsys.batch_search.StaticSet`: sorted
positions, a per-row test for HNSW labels and, up to 30% of the catalogue and
64 MB, a dense contiguous copy of the eligible unit vectors). A query either
over-fetches from the graph as many candidates as the filter's share of the
catalogue needs to fill k with 99% probability were filter and vectors
independent (:func:`~recsys.batch_search.fetch_for`; the fill rate is still
learned per filter), or runs one BLAS matrix-vector product over the dense
block (no gather), whichever its measured costs (``_S_*``) make cheaper. With
no rule at all (the default config on a catalogue without adult items) a query
is one ``knn_query`` for k + 1 with the seed dropped.

Cold filters: from ``background_min_items`` items on (20k), key indexes, seed
tables and static eligible sets are built by the searcher's background thread
(:class:`~recsys.batch_search.Background`) and published with one assignment;
until they are ready a query answers from the general path with a mask over
its domain, so no request pays an O(n log n) build. :meth:`FilteredSearcher.wait_background`
waits for them (tests, benchmarks).

Batches: :meth:`FilteredSearcher.search_many` answers many seeds with one
multi-threaded ``knn_query``, vectorised eligibility tests and one BLAS
product per group of seeds that need exact search (exact top-k of many rows:
:func:`~recsys.batch_search.topk_rows`); precompute runs on it.

Identical vectors (thin catalogues): groups of equal candidate vectors are
found when the searcher is built; a list that reaches one is answered by exact
search, which scores each group once, so ties order by position in every plan.
Exact lists are rescored one way (:meth:`FilteredSearcher._canon`), so batch and
live answers carry bit-identical scores.

:func:`similar_items` is the one code path that the Explore page and the REST
API call; :func:`get_searcher` caches one searcher per run.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.batch_search import (
    BLOCK_MAX_SHARE,
    Background,
    StaticSet,
    fetch_for,
    resolve_threads,
    search_many_keyed,
    search_many_ranked,
    search_many_static,
)
from recsys.config import file_stamp
from recsys.data.schema import CATEGORY_SEP, dataset_report_path
from recsys.errors import (  # noqa: F401  (RunNotFoundError, RunNotSearchableError: re-exported)
    IndexFileError,
    RunNotFoundError,
    RunNotSearchableError,
    UnknownItemError,
)
from recsys.filters import FilterConfig, _norm_brand
from recsys.index import HnswIndex

logger = logging.getLogger(__name__)

PLANS = ("auto", "exact", "hnsw_overfetch", "hnsw_filter")

#: Rough single-query costs in microseconds at d=64, measured on a busy 2-core
#: x86 machine (hnswlib 0.8, OpenBLAS on one thread) with the benchmark's data;
#: only their ratios matter. Vector work scales with d/64. Exact search pays a
#: dozen NumPy calls and memory-bound passes; a beam search touches a few
#: hundred vectors.
_COST_HNSW_BASE = 30.0  # a beam search's fixed part
_COST_HNSW_PER_EF = 1.2  # per unit of max(ef, fetch)
_COST_EXACT_BASE = 50.0  # fixed part of an exact search
_COST_DENSE_PER_ROW = 0.015  # dot product, per row (scales with d)
_COST_SELECT_PER_ROW = 0.02  # masking + argpartition, per row
_COST_SCAN_PER_ROW = 0.002  # mask + flatnonzero over the domain
_COST_GATHER_PER_ROW = 0.02  # copying one row (scales with d)
_SAFETY = 1.5
#: Seeded automatic queries a filter answers from the general path (0.1-0.4 ms each at
#: 100k items) before its seed table is built (30-110 ms once, then 0.1-0.3 ms a query):
#: a filter toggled in Explore is answered at once; a serving preset builds it early.
_TABLE_AFTER = 8
#: first over-fetch of the automatic plan: max(_FETCH_FACTOR * need, _FETCH_MIN)
_FETCH_FACTOR = 4
_FETCH_MIN = 64
#: learning how often the first over-fetch fills the list (per compiled filter)
_PRIOR_WEIGHT = 2.0  # pseudo-observations given to the independence estimate
_EXPLORE_FIRST = 8  # always try the over-fetch on a filter's first queries when it may pay
_EXPLORE_EVERY = 16  # ... and then on every 16th query, so that the rate keeps being learned
_DECAY_AT = 256.0  # halve the counts past this many tries (forget old behaviour)
#: below this many items, per-filter structures are built inline (well under a millisecond);
#: from it on, by the searcher's background thread, off the request path
_BACKGROUND_MIN_ITEMS = 20_000
#: static filters' plan costs in microseconds at d=64 (measured on this 2-core machine,
#: hnswlib 0.8, OpenBLAS on one thread, 100k x 64): a beam search costs about
#: 15 + 0.75 * max(ef, fetch); a matrix-vector product over a dense block 0.0045 per row
#: while the block fits in the CPU caches (4 MB) and 0.012 beyond; choosing the top k
#: (argpartition) 0.004 per row; gathering rows with np.take 0.008 per row
_S_HNSW_BASE = 15.0
_S_HNSW_PER_EF = 0.75
_S_EXACT_BASE = 12.0
_S_GEMV_ROW = 0.0045
_S_GEMV_ROW_COLD = 0.012
_S_SELECT_ROW = 0.004
_S_GATHER_ROW = 0.008
_S_CACHE_BYTES = 4 << 20
#: a static filter gets its own HNSW index over its eligible block (built in the background)
#: once it has answered this many queries, keeps at least this many items, and its exact
#: search costs more than this many beam searches
_SUB_AFTER = 16
_SUB_MIN_ROWS = 2048
_SUB_GAIN = 1.3
#: most memory the per-category graphs of one filter may take (eligible blocks + graphs)
_BLOCKS_MAX_BYTES = 256 << 20


_NO_PRICE = np.iinfo(np.int32).max
_BLAS_THREAD_MIN = 9216  # OpenBLAS runs gemv single-threaded below this many elements anyway
_blas_libs: list[Any] | None = None
_blas_lock = threading.Lock()


def _blas_controllers() -> list[Any]:
    """threadpoolctl's controllers of the loaded BLAS libraries (empty without threadpoolctl)."""
    global _blas_libs
    if _blas_libs is None:
        with _blas_lock:
            if _blas_libs is None:
                try:
                    from threadpoolctl import ThreadpoolController

                    _blas_libs = list(ThreadpoolController().select(user_api="blas").lib_controllers)
                except Exception as exc:  # optional: without it BLAS keeps its threads
                    logger.debug("threadpoolctl unavailable (%s); BLAS keeps its threads", exc)
                    _blas_libs = []
    return _blas_libs


def _matvec(mat: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``mat @ q`` with single-threaded BLAS.

    A per-query matrix-vector product is far too small to gain from BLAS
    threads, and on a busy machine waking them costs milliseconds (measured:
    p50 25 ms instead of 0.6 ms for 20k x 64 on 2 shared cores). The thread
    count is set and restored through the libraries' own calls (~2 us), not
    ``threadpoolctl.limit`` (~12 us). Concurrent callers can at worst see
    BLAS threads for one product (a speed effect only).
    """
    if mat.size < _BLAS_THREAD_MIN:
        return mat @ q
    changed = []
    for lib in _blas_controllers():
        n = lib.num_threads
        if n > 1:
            lib.set_num_threads(1)
            changed.append((lib, n))
    try:
        return mat @ q
    finally:
        for lib, n in changed:
            lib.set_num_threads(n)


def _and(acc: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """``acc & x`` in place (``x`` when there is no accumulator yet)."""
    if acc is None:
        return x
    acc &= x
    return acc


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


# -- compiled filters ------------------------------------------------------------------
@dataclass(eq=False)
class CompiledFilter:
    """The seed-independent part of a config, over catalogue positions.

    Attributes
    ----------
    config : FilterConfig
    base_mask : numpy.ndarray of bool
        Items allowed by the seed-independent rules.
    base_removed : dict
        rule -> items it rejects on its own.
    banned : dict
        brand code -> bool table over brand codes that the brand may not show.
    n_base : int
        Items allowed by ``base_mask``.
    base_all : bool
        ``base_mask`` allows every item (no seed-independent rule bites).
    base_cum : numpy.ndarray or None
        Prefix counts of ``base_mask`` (length n + 1): O(1) counts over slices; built on
        first need (a static filter never needs them).
    first_tries, first_hits : float
        How often the planner's first over-fetch was tried with this filter
        and how often it filled the list (decayed counts; updated without a
        lock: a lost update only nudges a statistic).
    queries : int
        Automatic-plan queries that weighed the over-fetch against exact search.
    keys : dict
        (category level or None, by gender, without adult items) -> :class:`_KeyIndex`,
        built on first need.
    seed_table : numpy.ndarray or None
        Per seed position, the seed-dependent values of the serving hot path
        (:meth:`FilteredSearcher._seed_table`), built once the filter has answered
        ``_TABLE_AFTER`` automatic queries with a seed from the general path (a filter
        tried a few times in Explore never pays for it); ``table_ok`` is False when the
        config needs the general path, True once its hot-path structure is built (the seed
        table, or for a static filter its eligible set, ``sets``).
    """

    config: FilterConfig
    base_mask: np.ndarray
    base_removed: dict[str, int]
    banned: dict[int, np.ndarray]
    n_base: int
    base_all: bool = False
    base_cum: np.ndarray | None = None
    first_tries: float = 0.0
    first_hits: float = 0.0
    queries: int = 0
    keys: dict[tuple[int | None, bool, bool], _KeyIndex] = field(default_factory=dict)
    seed_table: np.ndarray | None = None
    table_kvs: list[_KeyIndex] = field(default_factory=list)
    table_ok: bool | None = None
    #: automatic queries with a seed so far (the seed table waits for ``_TABLE_AFTER``)
    seeded_queries: int = 0
    #: no ranked-list rules in the cosine space: HNSW's order and distances are the answer
    lean: bool = False
    #: only seed-independent rules (brands, absolute price range, adult items): the eligible
    #: set is the same for every seed but the seed itself and the adult rule's two variants
    static: bool = False
    #: static, lean, keeps every item and no adult rule can apply: one plain knn_query
    trivial: bool = False
    #: adult-rule variant (True: adult items excluded) -> :class:`~recsys.batch_search.StaticSet`
    sets: dict[bool, StaticSet] = field(default_factory=dict)
    #: lean, and ``same_category`` is its only seed-dependent rule: each category block (and
    #: adult-rule variant) is a static eligible set, which gets its own graph once used often
    cat_only: bool = False
    #: (block start, block end, adult excluded) -> eligible set with its own graph; uses so far
    blocks: dict[tuple[int, int, bool], StaticSet] = field(default_factory=dict)
    block_uses: dict[tuple[int, int, bool], int] = field(default_factory=dict)
    block_bytes: int = 0

    def fill_rate(self, prior: float) -> float:
        """Estimated chance that the first over-fetch fills the list."""
        return (self.first_hits + _PRIOR_WEIGHT * prior) / (self.first_tries + _PRIOR_WEIGHT)

    def record(self, filled: bool) -> None:
        """Learn from one first over-fetch."""
        tries, hits = self.first_tries + 1.0, self.first_hits + float(filled)
        if tries > _DECAY_AT:
            tries, hits = tries / 2, hits / 2
        self.first_tries, self.first_hits = tries, hits


class _KeyIndex:
    """One int key per item for the rules that depend on the seed through an attribute value.

    ``key = ((category block * G) + gender) * R + price rank`` (block and
    gender only when the variant uses them; ``R - 1`` is the rank of a missing
    price), and -1 for items that the seed-independent rules (and, in the
    variant without adult items, adultness) exclude. For a seed, the eligible
    items are exactly those whose key lies in one range ``[lo, hi)``: a
    candidate is tested with one lookup (``by_row`` tests HNSW labels without
    mapping them to positions first), the eligible count is one binary search
    in ``sorted``, and the eligible positions are the slice
    ``order[a:b]`` of the same binary search (no scan of the catalogue).
    """

    __slots__ = ("by_pos", "by_row", "sorted", "order", "n_gender", "n_rank")

    def __init__(self, by_pos: np.ndarray, pos_of_row: np.ndarray, n_gender: int, n_rank: int) -> None:
        self.by_pos = by_pos
        self.by_row = by_pos[pos_of_row]
        order = np.argsort(by_pos, kind="stable")
        order = order[np.count_nonzero(by_pos < 0) :]  # excluded items (-1) sort first
        self.order = order.astype(np.int32) if len(by_pos) < np.iinfo(np.int32).max else order
        self.sorted = by_pos[order]
        self.n_gender = n_gender
        self.n_rank = n_rank


class _SeedRules:
    """The seed-dependent rules of one query, resolved in O(1) / O(log n).

    ``s``/``e`` bound the domain (the seed's category block, or everything);
    the other fields are the per-item tests still to apply inside it (-1 or
    None when a rule does not apply). ``keyed`` rules (gender, price band,
    adult) can go through a :class:`_KeyIndex`; ``extra`` ones (banned brand
    pairs, same title) need a pass over the domain.
    """

    __slots__ = (
        "s",
        "e",
        "full",
        "level",
        "block",
        "gender",
        "rank_lo",
        "rank_hi",
        "banned",
        "no_adult",
        "title",
        "seed",
        "keyed",
        "extra",
        "kv",
        "lo_key",
        "hi_key",
        "key_a",
        "key_b",
        "removed",
        "skipped",
    )

    def __init__(self, n: int, removed: dict[str, int]) -> None:
        self.s, self.e, self.full = 0, n, True
        self.level: int | None = None
        self.block = 0
        self.gender = -1
        self.rank_lo = self.rank_hi = -1
        self.banned: np.ndarray | None = None
        self.no_adult = False
        self.title = -1
        self.seed = -1  # position excluded as the seed
        self.keyed = False  # gender, price band or adult rule active
        self.extra = False  # banned brand pairs or same title active
        self.kv: _KeyIndex | None = None
        self.lo_key = self.hi_key = 0
        self.key_a = self.key_b = 0  # kv.order[key_a:key_b]: positions with a key in [lo_key, hi_key)
        self.removed = removed
        self.skipped: list[str] = []


@dataclass
class SearchResult:
    """Neighbours of one seed (or query vector) after filtering.

    Attributes
    ----------
    item_ids : list of str
        Best first.
    scores : list of float
        Cosine similarity (or dot product for an ``ip`` run), exact to float32 rounding.
    rows : list of int
        Vector rows of the results (``model.item_ids_[rows] == item_ids``).
    removed_by_rule : dict
        rule -> items it rejects on its own over the whole catalogue (rules
        overlap, so these do not add up). ``min_similarity`` counts the
        items passing every mask rule but scoring below it (whatever k);
        ``max_per_brand`` counts the ranked candidates it dropped while the
        list was filled.
    plan : str
        How the planner answered (``exact_range``, ``exact_subset``,
        ``hnsw_overfetch``, ``hnsw_overfetch+exact_fallback``, ``hnsw_filter``,
        ``empty``).
    n_eligible : int
        Items passing every mask rule and ``min_similarity`` (before
        ``max_per_brand``, a rule on the ranked list).
    elapsed_ms : float
    skipped_rules : list of str
        Seed-dependent rules not applied because the seed lacks the attribute.
    seed_item_id : str or None
    """

    item_ids: list[str]
    scores: list[float]
    rows: list[int]
    removed_by_rule: dict[str, int]
    plan: str
    n_eligible: int
    elapsed_ms: float
    skipped_rules: list[str] = field(default_factory=list)
    seed_item_id: str | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for the REST API and dcc.Store)."""
        return asdict(self)


def _tie_groups(unit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Groups of identical candidate vectors (thin catalogues: many items sharing one vector).

    Returns ``(group of each position or -1, members: positions grouped and ascending,
    starts: group g's members are members[starts[g]:starts[g + 1]])``, or None without
    ties. O(n log n): a random projection sorts the rows, neighbours with the same
    projection are compared exactly.
    """
    n = len(unit)
    if n < 2:
        return None
    proj = np.random.default_rng(12345).normal(size=unit.shape[1]).astype(np.float32)
    h = unit @ proj
    order = np.argsort(h, kind="stable")
    hs = h[order]
    cand = np.flatnonzero(hs[1:] == hs[:-1])
    if len(cand) == 0:
        return None
    same = np.zeros(n - 1, dtype=bool)
    same[cand] = (np.take(unit, order[cand], axis=0) == np.take(unit, order[cand + 1], axis=0)).all(axis=1)
    if not same.any():
        return None
    run = np.cumsum(np.r_[True, ~same]) - 1  # run id per sorted row: equal rows share one
    sizes = np.bincount(run)
    multi = sizes[run] >= 2
    ids = np.full(len(sizes), -1, dtype=np.int64)
    big = np.flatnonzero(sizes >= 2)
    ids[big] = np.arange(len(big))
    group = np.full(n, -1, dtype=np.int32)
    group[order[multi]] = ids[run[multi]]
    members_pos = order[multi]
    members_grp = ids[run[multi]]
    srt = np.lexsort((members_pos, members_grp))
    members = members_pos[srt].astype(np.int64)
    starts = np.searchsorted(members_grp[srt], np.arange(len(big) + 1)).astype(np.int64)
    return group, members, starts


class FilteredSearcher:
    """Filtered k-NN over one run's vectors and catalogue.

    Parameters
    ----------
    vectors : numpy.ndarray, shape (n, d)
        The run's item vectors (row i is ``item_ids[i]``).
    item_ids : sequence of str
    catalog_df : pandas.DataFrame
        The dataset's catalogue.
    index : HnswIndex, optional
        An index built over ``vectors``; built lazily on first need otherwise
        (small catalogues never need one: exact search is cheaper).
    space : {"cosine", "ip"}
        Taken from ``index`` when given.
    ef : int
        Query beam width of an index built here.
    exact_max_rows : int, optional
        Force exact search whenever the eligible set has at most this many
        rows (default: decided by the cost model).
    query_vectors : numpy.ndarray, shape (n, d), optional
        A second space for seeds (a model's ``query_vectors_``): a seed is looked up
        by its row here among the candidates' ``vectors``. Default: ``vectors``.

    Notes
    -----
    Thread-safe for searching. The index is never mutated: to change items,
    build a new searcher (or index) and swap the reference.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        item_ids: Sequence[str] | np.ndarray,
        catalog_df: pd.DataFrame,
        index: HnswIndex | None = None,
        space: str = "cosine",
        ef: int = 64,
        exact_max_rows: int | None = None,
        cache_size: int | None = None,
        query_vectors: np.ndarray | None = None,
        background_min_items: int | None = None,
    ) -> None:
        vec = np.asarray(vectors, dtype=np.float32)
        if vec.ndim != 2 or vec.shape[0] != len(item_ids):
            raise ValueError(f"vectors {vec.shape} and item_ids ({len(item_ids)}) do not align")
        if index is not None:
            if index.count != vec.shape[0] or index.dim != vec.shape[1]:
                raise ValueError(f"{index!r} does not match vectors of shape {vec.shape}")
            space = index.space
        if space not in ("cosine", "ip"):
            raise ValueError(f"space must be 'cosine' or 'ip', got {space!r}")
        self.space = space
        self.view = CatalogView(item_ids, catalog_df)
        self.n, self.dim = vec.shape
        if query_vectors is not None and np.shape(query_vectors) != vec.shape:
            raise ValueError(f"query_vectors {np.shape(query_vectors)} and vectors {vec.shape} do not align")

        def positioned(x: np.ndarray) -> np.ndarray:  # position order (unit rows in the cosine space)
            x = np.asarray(x, dtype=np.float32)
            if space == "cosine":
                x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))
            return np.ascontiguousarray(x[self.view.perm], dtype=np.float32)

        #: the candidates' vectors, what the index holds
        self.unit = positioned(vec)
        #: what a seed is looked up by: its own row of ``unit``, or of a second space
        #: (Prod2Vec "in-out": seeds' input vectors against candidates' output vectors)
        self.qunit = self.unit if query_vectors is None else positioned(query_vectors)
        self._vectors_rows = vectors
        self._index = index
        self._ef = ef
        self.exact_max_rows = exact_max_rows
        self._lock = threading.Lock()
        self._compiled: OrderedDict[str, CompiledFilter] = OrderedDict()
        # A compiled filter holds ~60 bytes per item (mask, cumulative counts, seed
        # table): keep the cache near 400 MB whatever the catalogue size.
        self._cache_size = cache_size or max(4, min(32, 400_000_000 // max(1, 64 * self.n)))
        self._last: tuple[FilterConfig, CompiledFilter] | None = None
        self._dscale = self.dim / 64.0
        #: from this many items on, key indexes, seed tables and eligible blocks are built by a
        #: background thread (queries answer from the general path meanwhile); below it they
        #: cost less than a millisecond and are built inline
        self.background_min_items = (
            _BACKGROUND_MIN_ITEMS if background_min_items is None else background_min_items
        )
        self._bg = Background()
        #: smallest eligible set that gets its own HNSW index (:meth:`_maybe_sub`)
        self.sub_index_min_rows = _SUB_MIN_ROWS
        self.sub_index_gain = _SUB_GAIN
        #: identical candidate vectors (detected here, once): an HNSW answer that reaches one
        #: of them is completed exactly (:meth:`_fix_ties`); None without ties
        ties = _tie_groups(self.unit)
        self._tie_of, self._tie_members, self._tie_starts = ties if ties is not None else (None, None, None)
        #: one row per group (its vector), to find the groups an HNSW answer should have reached
        self._tie_reps = (
            np.take(self.unit, self._tie_members[self._tie_starts[:-1]], axis=0) if ties is not None else None
        )

    # -- index -------------------------------------------------------------------
    @property
    def index(self) -> HnswIndex:
        """The HNSW index (built on first use when none was given)."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    logger.info("building an HNSW index over %d items for filtered search", self.n)
                    self._index = HnswIndex.build(self._vectors_rows, space=self.space, ef=self._ef)
        return self._index

    @index.setter
    def index(self, new: HnswIndex) -> None:
        if new.count != self.n or new.dim != self.dim:
            raise ValueError(f"{new!r} does not match this searcher ({self.n} x {self.dim})")
        self._index = new  # swap; queries in flight keep the old object

    # -- compile -------------------------------------------------------------------
    def compile(self, config: FilterConfig | dict[str, Any] | None) -> CompiledFilter:
        """The seed-independent mask of a config (cached by its hash)."""
        cfg = FilterConfig.from_dict(config) if not isinstance(config, FilterConfig) else config
        last = self._last
        if last is not None and last[0] is cfg:
            return last[1]
        key = cfg.config_hash()
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                self._last = (cfg, hit)
                return hit
        v = self.view
        mask = np.ones(self.n, dtype=bool)
        removed: dict[str, int] = {}
        price = v.price
        if cfg.price_min is not None or cfg.price_max is not None:
            lo = cfg.price_min if cfg.price_min is not None else -np.inf
            hi = cfg.price_max if cfg.price_max is not None else np.inf
            with np.errstate(invalid="ignore"):
                ok = (price >= lo) & (price <= hi)
            removed["price_range"] = int(self.n - np.count_nonzero(ok))
            mask &= ok
        if cfg.brands_allow:
            ok = v.has_brand(cfg.brands_allow)
            removed["brands_allow"] = int(self.n - np.count_nonzero(ok))
            mask &= ok
        if cfg.brands_deny:
            bad = v.has_brand(cfg.brands_deny)
            removed["brands_deny"] = int(np.count_nonzero(bad))
            mask &= ~bad
        if cfg.exclude_adult:
            removed["exclude_adult"] = v.n_adult
            mask &= ~v.adult
        banned: dict[int, np.ndarray] = {}
        for a, b in cfg.banned_brand_pairs:
            ca, cb = v.brand_code.get(_norm_brand(a)), v.brand_code.get(_norm_brand(b))
            if ca is None or cb is None:
                continue
            for x, y in ((ca, cb), (cb, ca)):
                banned.setdefault(x, np.zeros(len(v.brand_keys), dtype=bool))[y] = True
        n_base = int(np.count_nonzero(mask))
        # the prefix counts (base_cum) are built on first need: a static filter never needs them
        compiled = CompiledFilter(cfg, mask, removed, banned, n_base, base_all=n_base == self.n)
        compiled.lean = self.space == "cosine" and cfg.max_per_brand is None and cfg.min_similarity is None
        compiled.static = not (
            cfg.same_category
            or cfg.same_gender
            or cfg.price_ratio_min is not None
            or cfg.price_ratio_max is not None
            or cfg.banned_brand_pairs
            or cfg.exclude_same_title
        )
        compiled.cat_only = (
            compiled.lean
            and cfg.same_category
            and not (cfg.same_gender or cfg.banned_brand_pairs or cfg.exclude_same_title)
            and cfg.price_ratio_min is None
            and cfg.price_ratio_max is None
        )
        # one plain knn_query answers it, unless the catalogue is so small that exact search is cheaper
        compiled.trivial = (
            compiled.static
            and compiled.lean
            and compiled.base_all
            and v.n_adult == 0
            and self._exact_costs(self.n, self.n)[0] > self._hnsw_cost(_FETCH_MIN)
        )
        with self._lock:
            self._compiled[key] = compiled
            while len(self._compiled) > self._cache_size:
                self._compiled.popitem(last=False)
        self._last = (cfg, compiled)
        return compiled

    # -- per seed ------------------------------------------------------------------
    def _seed_rules(self, cf: CompiledFilter, pos: int | None) -> _SeedRules:
        """Resolve the seed-dependent rules: domain bounds, codes, price ranks, counts.

        O(1) / O(log n): nothing here touches the catalogue item by item, so
        ``removed_by_rule`` stays cheap whatever the plan.
        """
        cfg, v = cf.config, self.view
        r = _SeedRules(self.n, dict(cf.base_removed))
        removed, skipped = r.removed, r.skipped
        if cfg.same_category:
            if pos is None or v.cat_empty[pos]:
                skipped.append("same_category")
            else:
                lv = min(cfg.category_level, v.max_level)
                code = int(v.cat_codes[lv][pos])
                bounds = v.cat_bounds[lv]
                r.s, r.e = int(bounds[code]), int(bounds[code + 1])
                r.level, r.block = lv, code
                r.full = r.s == 0 and r.e == self.n
                removed["same_category"] = self.n - (r.e - r.s)
        if cfg.same_gender:
            g = int(v.gender[pos]) if pos is not None else -1
            if pos is None or v.gender_names[g] == "":
                skipped.append("same_gender")
            else:
                r.gender = g
                r.keyed = True
                removed["same_gender"] = int(self.n - v.gender_counts[g])
        if cfg.price_ratio_min is not None or cfg.price_ratio_max is not None:
            sp = float(v.price[pos]) if pos is not None else math.nan
            if not (math.isfinite(sp) and sp > 0):
                skipped.append("price_band")
            else:
                lo = cfg.price_ratio_min * sp if cfg.price_ratio_min is not None else -math.inf
                hi = cfg.price_ratio_max * sp if cfg.price_ratio_max is not None else math.inf
                # missing prices (no rank in the band) drop out, as NaN comparisons would
                r.rank_lo, r.rank_hi = v.rank_range(lo, hi)
                r.keyed = True
                removed["price_band"] = self.n - int(v.rank_cum[r.rank_hi] - v.rank_cum[r.rank_lo])
        if cfg.banned_brand_pairs:
            if pos is None:
                skipped.append("banned_brand_pairs")
            else:
                table = cf.banned.get(int(v.brand[pos]))
                if table is not None:
                    r.banned = table
                    r.extra = True
                    removed["banned_brand_pairs"] = int(v.brand_counts[table].sum())
                else:
                    removed["banned_brand_pairs"] = 0
        if (pos is None or not v.adult[pos]) and not cfg.exclude_adult and v.n_adult:
            r.no_adult = True
            r.keyed = True
            removed["adult_next_to_non_adult"] = v.n_adult
        if cfg.exclude_same_title and pos is not None:
            t = int(v.title[pos])
            if t == v.empty_title:
                skipped.append("exclude_same_title")
            else:
                r.title = t
                r.extra = True
                removed["exclude_same_title"] = int(v.title_counts[t] - 1)
        if cfg.exclude_seed and pos is not None:
            r.seed = int(pos)
            removed["exclude_seed"] = 1
        return r

    def _key_index(self, cf: CompiledFilter, level: int | None, by_gender: bool, no_adult: bool) -> _KeyIndex:
        """The :class:`_KeyIndex` variant of a compiled filter (built once, O(n log n))."""
        variant = (level, by_gender, no_adult)
        kv = cf.keys.get(variant)
        if kv is not None:
            return kv
        with self._lock:
            kv = cf.keys.get(variant)
            if kv is not None:
                return kv
            v = self.view
            n_rank = len(v.price_values) + 1
            n_gender = len(v.gender_names) if by_gender else 1
            n_block = len(v.cat_names[level]) if level is not None else 1
            key = v.price_rank.astype(np.int64)
            key[key == _NO_PRICE] = n_rank - 1
            if by_gender:
                key += v.gender.astype(np.int64) * n_rank
            if level is not None:
                key += v.cat_codes[level].astype(np.int64) * (n_gender * n_rank)
            excluded = ~cf.base_mask
            if no_adult:
                excluded |= v.adult
            key[excluded] = -1
            if n_block * n_gender * n_rank < np.iinfo(np.int32).max:
                key = key.astype(np.int32)
            kv = _KeyIndex(key, v.pos_of_row, n_gender, n_rank)
            cf.keys[variant] = kv
        return kv

    def _seed_table(self, cf: CompiledFilter) -> np.ndarray | None:
        """Per seed position, what :meth:`_seed_rules` + :meth:`_eligibility` resolve, precomputed.

        Row ``pos`` holds (``_TAB_*`` columns): the key index variant (into
        ``cf.table_kvs``), the key range ``[lo, hi)``, its slice ``[a, b)`` of
        the key order, the eligible count (seed excluded), the domain
        ``[s, e)``, the items removed by the gender and price band rules (-1:
        skipped, the seed lacks the attribute) and flags (seed has a category,
        adult rule active, seed inside the key range). Built vectorised in
        O(n log n) on a filter's first automatic query, so that a query reads
        one row (one cache line) instead of a dozen scattered values; None
        (and ``cf.table_ok = False``) for configs with banned brand pairs or
        same-title exclusion, which need a pass over the domain anyway.
        """
        cfg, v, n = cf.config, self.view, self.n
        if cfg.banned_brand_pairs or cfg.exclude_same_title or n == 0:
            cf.table_ok = False
            return None
        zeros = np.zeros(n, dtype=np.int64)
        if cfg.same_category:
            lv = min(cfg.category_level, v.max_level)
            has_cat = ~v.cat_empty
            code = v.cat_codes[lv].astype(np.int64)
            bounds = v.cat_bounds[lv]
            s = np.where(has_cat, bounds[code], 0)
            e = np.where(has_cat, bounds[code + 1], n)
            block = np.where(has_cat, code, 0)
        else:
            lv, has_cat, s, e, block = 0, np.zeros(n, dtype=bool), zeros, np.full(n, n), zeros
        g = v.gender.astype(np.int64)
        if cfg.same_gender:
            empty = np.flatnonzero(v.gender_names == "")
            has_g = g != (int(empty[0]) if len(empty) else -1)
            rm_g = np.where(has_g, n - v.gender_counts[g], -1)
        else:
            has_g, rm_g = np.zeros(n, dtype=bool), np.full(n, -2)
        has_band = cfg.price_ratio_min is not None or cfg.price_ratio_max is not None
        if has_band:
            sp = v.price
            with np.errstate(invalid="ignore"):
                valid = np.isfinite(sp) & (sp > 0)
                lo_p = cfg.price_ratio_min * sp if cfg.price_ratio_min is not None else np.full(n, -np.inf)
                hi_p = cfg.price_ratio_max * sp if cfg.price_ratio_max is not None else np.full(n, np.inf)
            lo_p, hi_p = np.where(valid, lo_p, 0.0), np.where(valid, hi_p, 0.0)
            rank_lo = np.searchsorted(v.price_values, lo_p, side="left")
            rank_hi = np.searchsorted(v.price_values, hi_p, side="right")
            rm_p = np.where(valid, n - (v.rank_cum[rank_hi] - v.rank_cum[rank_lo]), -1)
        else:
            valid, rank_lo, rank_hi, rm_p = np.zeros(n, dtype=bool), zeros, zeros, np.full(n, -2)
        no_adult = ~v.adult if (not cfg.exclude_adult and v.n_adult) else np.zeros(n, dtype=bool)
        var = has_cat.astype(np.int64) * 4 + has_g * 2 + no_adult
        lo, hi, a, b, seed_in = (
            zeros.copy(),
            zeros.copy(),
            zeros.copy(),
            zeros.copy(),
            np.zeros(n, dtype=bool),
        )
        kvs: list[_KeyIndex] = []
        var_idx = zeros.copy()
        wide = False
        for code_v in np.unique(var).tolist():
            at = np.flatnonzero(var == code_v)
            kv = self._key_index(cf, lv if code_v & 4 else None, bool(code_v & 2), bool(code_v & 1))
            var_idx[at] = len(kvs)
            kvs.append(kv)
            wide |= kv.sorted.dtype != np.int32
            head = (block[at] * kv.n_gender + np.where(has_g[at], g[at], 0)) * kv.n_rank
            band = valid[at]
            lo[at] = head + np.where(band, rank_lo[at], 0)
            hi[at] = head + np.where(band, rank_hi[at], kv.n_rank)
            a[at] = np.searchsorted(kv.sorted, lo[at])
            b[at] = np.searchsorted(kv.sorted, hi[at])
            if cfg.exclude_seed:
                key = kv.by_pos[at]
                seed_in[at] = (key >= lo[at]) & (key < hi[at])
        n_elig = b - a - seed_in
        flags = has_cat.astype(np.int64) | (no_adult.astype(np.int64) << 1) | (seed_in.astype(np.int64) << 2)
        table = np.stack([var_idx, lo, hi, a, b, n_elig, s, e, rm_g, rm_p, flags], axis=1)
        table = np.ascontiguousarray(table, dtype=np.int64 if wide else np.int32)
        cf.table_kvs = kvs
        cf.seed_table = table
        cf.table_ok = True
        return table

    def _item_tests(self, cf: CompiledFilter, r: _SeedRules, idx: slice | np.ndarray) -> np.ndarray:
        """The per-item rules over ``idx`` (a domain slice or candidate positions), vectorised.

        Does not apply the domain bounds nor the seed exclusion.
        """
        v = self.view
        ok: np.ndarray | None = None
        if not cf.base_all:
            ok = cf.base_mask[idx]
            if isinstance(idx, slice):
                ok = ok.copy()  # a view of the cached mask: never write into it
        if r.gender >= 0:
            ok = _and(ok, v.gender[idx] == r.gender)
        if r.rank_lo >= 0:
            rank = v.price_rank[idx]
            ok = _and(ok, rank >= r.rank_lo)
            ok &= rank < r.rank_hi
        if r.banned is not None:
            ok = _and(ok, ~r.banned[v.brand[idx]])
        if r.no_adult:
            ok = _and(ok, ~v.adult[idx])
        if r.title >= 0:
            ok = _and(ok, v.title[idx] != r.title)
        if ok is None:
            n = (idx.stop - idx.start) if isinstance(idx, slice) else len(idx)
            ok = np.ones(n, dtype=bool)
        return ok

    def _eligibility(
        self, cf: CompiledFilter, r: _SeedRules, cold: bool = False
    ) -> tuple[np.ndarray | None, int]:
        """The exact eligible count, and the eligibility mask over the domain when it was needed.

        * banned brand pairs or same title: one vectorised pass over the
          domain slice gives the mask and the count;
        * gender / price band / adult rules: one binary search in the
          compiled filter's :class:`_KeyIndex` (``r.kv``), no mask;
        * only seed-independent rules: prefix sums, O(1), no mask.

        Without a mask, an HNSW plan tests only its candidates
        (:meth:`_keep_eligible`) and an exact plan builds the mask
        (:meth:`_domain_mask`).
        """
        s, e = r.s, r.e
        if r.extra or (cold and r.keyed):  # cold: the key index is not built yet
            mask = self._item_tests(cf, r, slice(s, e))
            if s <= r.seed < e:
                mask[r.seed - s] = False
            return mask, int(np.count_nonzero(mask))
        if r.keyed:
            kv = self._key_index(cf, r.level, r.gender >= 0, r.no_adult)
            head = ((r.block * kv.n_gender) + max(r.gender, 0)) * kv.n_rank
            lo, hi = (r.rank_lo, r.rank_hi) if r.rank_lo >= 0 else (0, kv.n_rank)
            r.kv, r.lo_key, r.hi_key = kv, head + lo, head + hi
            srt = kv.sorted  # search with its own dtype: a mixed-type searchsorted copies the array
            a, b = srt.searchsorted(np.array((head + lo, head + hi), dtype=srt.dtype)).tolist()
            r.key_a, r.key_b = a, b
            n = b - a
            if r.seed >= 0 and head + lo <= kv.by_pos[r.seed] < head + hi:
                n -= 1
            return None, n
        if cold or (cf.base_cum is None and e - s < self.n // 4):
            n = int(np.count_nonzero(cf.base_mask[s:e]))  # cheaper than building the prefix counts
        else:
            if cf.base_cum is None:
                cum = np.zeros(self.n + 1, dtype=np.int64)
                np.cumsum(cf.base_mask, out=cum[1:])
                cf.base_cum = cum
            n = int(cf.base_cum[e] - cf.base_cum[s])
        if s <= r.seed < e and cf.base_mask[r.seed]:
            n -= 1
        return None, n

    def _domain_mask(self, cf: CompiledFilter, r: _SeedRules, mask: np.ndarray | None) -> np.ndarray:
        """``mask``, built when :meth:`_eligibility` left it to the caller (O(domain))."""
        if mask is not None:
            return mask
        s, e = r.s, r.e
        if r.kv is not None:
            keys = r.kv.by_pos[s:e]
            mask = keys >= r.lo_key
            mask &= keys < r.hi_key
        elif not cf.base_all:
            mask = cf.base_mask[s:e].copy()
        else:
            mask = np.ones(e - s, dtype=bool)
        if s <= r.seed < e:
            mask[r.seed - s] = False
        return mask

    def _keep_eligible(
        self, cf: CompiledFilter, r: _SeedRules, p: np.ndarray, mask: np.ndarray | None
    ) -> np.ndarray:
        """The eligible positions among candidates ``p`` (order kept), in O(len(p))."""
        if mask is not None:
            if not r.full:
                p = p[(p >= r.s) & (p < r.e)]
            return p[mask[p - r.s]]
        if r.kv is not None:  # the key range holds the category block too
            keys = r.kv.by_pos[p]
            ok = keys >= r.lo_key
            ok &= keys < r.hi_key
            p = p[ok]
        else:
            if not r.full:
                p = p[(p >= r.s) & (p < r.e)]
            if not cf.base_all:
                p = p[cf.base_mask[p]]
        if r.seed >= 0:
            p = p[p != r.seed]
        return p

    # -- ranking -------------------------------------------------------------------
    def _rank_rules(
        self, pos: np.ndarray, scores: np.ndarray, k: int, cfg: FilterConfig, exhausted: bool
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int], bool]:
        """Apply max_per_brand and min_similarity to a ranked eligible list.

        Returns the kept positions/scores (at most k), drop counts, and whether
        the answer is final (False: more candidates are needed).
        """
        if cfg.max_per_brand is None and cfg.min_similarity is None:
            return pos[:k], scores[:k], {}, exhausted or len(pos) >= k
        dropped: dict[str, int] = {}
        keep_pos, keep_sc = pos, scores
        if cfg.max_per_brand is not None and len(pos):
            b = self.view.brand[pos]
            order = np.argsort(b, kind="stable")
            sb = b[order]
            starts = np.r_[0, np.flatnonzero(sb[1:] != sb[:-1]) + 1]
            group_start = np.repeat(starts, np.diff(np.r_[starts, len(sb)]))
            occ = np.empty(len(pos), dtype=np.int64)
            occ[order] = np.arange(len(sb)) - group_start
            ok = (occ < cfg.max_per_brand) | (b == self.view.no_brand)
            kept_idx = np.flatnonzero(ok)
            if len(kept_idx) >= k:
                considered = kept_idx[k - 1] + 1
                dropped["max_per_brand"] = int(considered - k)
            else:
                dropped["max_per_brand"] = int(len(pos) - len(kept_idx))
            keep_pos, keep_sc = pos[kept_idx], scores[kept_idx]
        enough = len(keep_pos) >= k
        keep_pos, keep_sc = keep_pos[:k], keep_sc[:k]
        below_seen = False
        if cfg.min_similarity is not None:
            good = keep_sc >= cfg.min_similarity
            dropped["min_similarity"] = int(len(good) - np.count_nonzero(good))
            below_seen = len(scores) > 0 and scores[-1] < cfg.min_similarity
            keep_pos, keep_sc = keep_pos[good], keep_sc[good]
        final = enough or exhausted or below_seen
        return keep_pos, keep_sc, dropped, final

    def _exact(
        self,
        q: np.ndarray,
        cf: CompiledFilter,
        r: _SeedRules,
        mask: np.ndarray | None,
        n_elig: int,
        k: int,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int], str]:
        """Exact top-k over the eligible items of the domain (dense slice or gathered rows)."""
        cfg = cf.config
        s, e = r.s, r.e
        dense_cost, gather_cost = self._exact_costs(e - s, n_elig, scan=r.kv is None)
        if dense_cost <= gather_cost:
            cand = None
            sc = _matvec(self.unit[s:e], q)
            if mask is not None or r.kv is not None:
                sc[~self._domain_mask(cf, r, mask)] = -np.inf
            else:
                if not cf.base_all:
                    sc[~cf.base_mask[s:e]] = -np.inf
                if s <= r.seed < e:
                    sc[r.seed - s] = -np.inf
            plan = "exact_range"
        elif r.kv is not None:  # the eligible positions are one slice of the key order: no scan
            cand = r.kv.order[r.key_a : r.key_b]
            sc = _matvec(np.take(self.unit, cand, axis=0), q)  # np.take: 2-3x faster than unit[cand]
            if r.seed >= 0:
                sc[cand == r.seed] = -np.inf
            plan = "exact_subset"
        else:
            cand = np.flatnonzero(self._domain_mask(cf, r, mask))
            cand += s
            sc = _matvec(np.take(self.unit, cand, axis=0), q)
            plan = "exact_subset"
        kp, ks, dropped = self._select(sc, cand, s, n_elig, k, cfg, q)
        kp, ks = self._canon(kp, q)
        return kp, ks, dropped, plan

    def _canon(self, kp: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The final list of an exact search rescored one way, whatever computed it, and re-sorted.

        BLAS rounds a dot product differently in a matrix-vector product and in a
        matrix-matrix one (single queries and batches): an elementwise product summed along
        each row gives the same float32 score for the same (item, query) wherever it is
        computed, so a batch (precompute) and a live query report identical scores.
        """
        if len(kp) == 0:
            return kp, np.zeros(0, dtype=np.float32)
        ks = (np.take(self.unit, kp, axis=0) * q).sum(axis=1, dtype=np.float32)
        order = np.lexsort((kp, -ks))
        return kp[order], ks[order]

    def _select(
        self,
        sc: np.ndarray,
        cand: np.ndarray | None,
        s: int,
        n_elig: int,
        k: int,
        cfg: FilterConfig,
        q: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """Top k of exact scores, then the ranked-list rules.

        ``sc`` scores the positions ``cand`` (ineligible ones at most the
        seed, at -inf) or, when ``cand`` is None, the domain ``s:s+len(sc)``
        with ineligible rows at -inf.
        """
        m = len(sc)
        if self._tie_of is not None and q is not None:
            self._snap_ties(sc, np.arange(s, s + m) if cand is None else cand, q)
        need = k * (3 if cfg.max_per_brand else 1)
        while True:
            f = min(need, n_elig)
            if f < m:
                top = np.argpartition(sc, m - f)[m - f :]
                if self._tie_of is not None:  # every copy of a tied score at the cut, not any f
                    top = np.flatnonzero(sc >= sc[top].min())
            else:
                top = np.arange(m)
            top_s = sc[top]
            pos = top + s if cand is None else cand[top]
            order = np.lexsort((pos, -top_s))  # ties: lower position first, whatever the plan
            pos, top_s = pos[order], top_s[order]
            if cand is None:
                valid = np.isfinite(top_s)
                pos, top_s = pos[valid], top_s[valid]
            kp, ks, dropped, final = self._rank_rules(pos, top_s, k, cfg, exhausted=f >= n_elig)
            if final:
                return kp, ks, dropped
            need *= 4

    # -- planning ------------------------------------------------------------------
    def _exact_costs(self, domain: int, n_elig: int, scan: bool = True) -> tuple[float, float]:
        """Estimated cost (us) of a dense exact search over the domain and of a gathered one.

        ``scan``: gathering needs a pass over the domain first (not with a key index).
        """
        dense = _COST_EXACT_BASE + domain * (_COST_DENSE_PER_ROW * self._dscale + _COST_SELECT_PER_ROW)
        gather = (
            _COST_EXACT_BASE
            + (domain * _COST_SCAN_PER_ROW if scan else 0.0)
            + n_elig * ((_COST_GATHER_PER_ROW + _COST_DENSE_PER_ROW) * self._dscale + _COST_SELECT_PER_ROW)
        )
        return dense, gather

    def _hnsw_cost(self, fetch: int) -> float:
        ef = self._index.ef if self._index is not None else self._ef
        return _COST_HNSW_BASE + _COST_HNSW_PER_EF * max(ef, fetch) * (0.5 + 0.5 * self._dscale)

    def _next_fetch(self, fetch: int, domain: int, n_elig: int) -> int | None:
        """The next, 4x larger over-fetch of a keyed query, or None when an exact search over the
        eligible items (``domain`` rows, ``n_elig`` eligible) is cheaper than fetching that many."""
        fetch *= 4
        if fetch >= self.n or 2 * self._hnsw_cost(fetch) > min(self._exact_costs(domain, n_elig, scan=False)):
            return None
        return fetch

    def _choose(self, cf: CompiledFilter, domain: int, scan: bool, n_elig: int, fetch: int, need: int) -> str:
        """Pick ``exact`` or ``hnsw_overfetch`` for one query by expected cost.

        Over-fetching first costs one beam search and, when the fetched
        candidates hold fewer than ``need`` eligible items, an exact search on
        top. How often it fills the list is learned per compiled filter
        (filters correlate with the vectors: "same category" keeps most of a
        seed's neighbours although it keeps 5% of the catalogue), starting
        from what independence would predict, and re-checked now and then
        while exact search is preferred. ``domain``: the rows an exact search
        would scan; ``scan``: whether gathering the eligible rows needs a pass
        over them first (not with a key index).
        """
        if self.exact_max_rows is not None and n_elig <= self.exact_max_rows:
            return "exact"
        c_x = min(self._exact_costs(domain, n_elig, scan=scan))
        c_h = self._hnsw_cost(fetch)
        if c_x <= c_h:
            return "exact"
        expected = fetch * n_elig / self.n  # eligible among the fetched, were filter and vectors independent
        prior = min(1.0, max(0.0, (expected / need - 0.5)))  # 0 below need/2, 1 above 1.5*need
        p = cf.fill_rate(prior)
        cf.queries += 1
        if c_h + (1.0 - p) * c_x < c_x:
            return "hnsw_overfetch"
        if cf.first_tries < _EXPLORE_FIRST or cf.queries % _EXPLORE_EVERY == 0:
            return "hnsw_overfetch"
        return "exact"

    def _search_keyed(
        self, q: np.ndarray, cf: CompiledFilter, r: _SeedRules, k: int, t0: float, seed_id: str | None
    ) -> SearchResult:
        """The automatic plan when every mask rule goes through a key index: the serving hot path.

        The same rules, counts, plan choice, learning and fallbacks as the
        general path (:meth:`_search_one`), in fewer steps: the eligible count
        and the eligible positions come from one binary search in the key
        index (also without gender, price band or adult rules: the key then
        only holds the category block), HNSW labels are tested with one key
        lookup by row, and only the eligible candidates are rescored.
        """
        kv = self._key_index(cf, r.level, r.gender >= 0, r.no_adult)
        head = (r.block * kv.n_gender + max(r.gender, 0)) * kv.n_rank
        if r.rank_lo >= 0:
            lo, hi = head + r.rank_lo, head + r.rank_hi
        else:
            lo, hi = head, head + kv.n_rank
        srt = kv.sorted  # search with its own dtype: a mixed-type searchsorted copies the array
        a, b = srt.searchsorted(np.array((lo, hi), dtype=srt.dtype)).tolist()
        r.kv, r.lo_key, r.hi_key, r.key_a, r.key_b = kv, lo, hi, a, b
        seed_in = r.seed >= 0 and lo <= int(kv.by_pos[r.seed]) < hi
        return self._keyed_plan(q, cf, r, b - a - seed_in, seed_in, k, t0, seed_id)

    def _table_counts(
        self, cf: CompiledFilter, s: int, e: int, rm_g: int, rm_p: int, flags: int
    ) -> tuple[dict[str, int], list[str]]:
        """(removed_by_rule, skipped_rules) of one seed, decoded from its seed-table row
        (``-2``: the rule is off; ``-1``: skipped for this seed; flags: 1 category, 2 adult)."""
        cfg = cf.config
        removed: dict[str, int] = dict(cf.base_removed)
        skipped: list[str] = []
        if cfg.same_category:
            if flags & 1:
                removed["same_category"] = self.n - (e - s)
            else:
                skipped.append("same_category")
        if rm_g != -2:
            if rm_g >= 0:
                removed["same_gender"] = rm_g
            else:
                skipped.append("same_gender")
        if rm_p != -2:
            if rm_p >= 0:
                removed["price_band"] = rm_p
            else:
                skipped.append("price_band")
        if flags & 2:
            removed["adult_next_to_non_adult"] = self.view.n_adult
        if cfg.exclude_seed:
            removed["exclude_seed"] = 1
        return removed, skipped

    def _search_table(
        self, q: np.ndarray, pos: int, cf: CompiledFilter, table: np.ndarray, k: int, t0: float, seed_id: str
    ) -> SearchResult:
        """:meth:`_search_keyed` with the seed's rules read from the filter's seed table (one row)."""
        var, lo, hi, a, b, n_elig, s, e, rm_g, rm_p, flags = table[pos].tolist()
        cfg, n = cf.config, self.n
        removed, skipped = self._table_counts(cf, s, e, rm_g, rm_p, flags)
        if cf.cat_only and flags & 1:
            got = self._search_block(q, pos, cf, s, e, bool(flags & 2), k, t0, removed, skipped, seed_id)
            if got is not None:
                return got
        kv = cf.table_kvs[var]
        lean_plan = None
        if n_elig and cf.lean:  # answered here without per-seed rules when the over-fetch fills k
            seed_row = int(self.view.perm[pos]) if flags & 4 else -1
            got = self._try_lean(q, cf, kv, lo, hi, seed_row, n_elig, e - s, k, t0, removed, skipped, seed_id)
            if not isinstance(got, str):
                return got
            lean_plan = got
        r = _SeedRules(n, removed)
        r.skipped = skipped
        if cfg.exclude_seed:
            r.seed = pos
        r.s, r.e, r.full = s, e, s == 0 and e == n
        r.kv, r.lo_key, r.hi_key, r.key_a, r.key_b = kv, lo, hi, a, b
        return self._keyed_plan(q, cf, r, n_elig, bool(flags & 4), k, t0, seed_id, lean_plan)

    def _keyed_plan(
        self,
        q: np.ndarray,
        cf: CompiledFilter,
        r: _SeedRules,
        n_elig: int,
        seed_in: bool,
        k: int,
        t0: float,
        seed_id: str | None,
        lean_plan: str | None = None,
    ) -> SearchResult:
        """Plan and answer one query whose eligible set is the key range of ``r`` (the hot path).

        ``lean_plan``: what :meth:`_try_lean` already decided for this query ("exact" or
        "hnsw_overfetch+exact_fallback"); only the exact search is left to do.
        """
        cfg = cf.config
        kv, lo, hi, seed = r.kv, r.lo_key, r.hi_key, r.seed
        removed = r.removed
        if n_elig == 0:
            ms = (time.perf_counter() - t0) * 1e3
            return SearchResult([], [], [], removed, "empty", 0, ms, r.skipped, seed_id)
        seed_row = int(self.view.perm[seed]) if seed_in else -1
        if cf.lean:
            if lean_plan is None:
                domain = r.e - r.s
                got = self._try_lean(
                    q, cf, kv, lo, hi, seed_row, n_elig, domain, k, t0, removed, r.skipped, seed_id
                )
                if not isinstance(got, str):
                    return got
                lean_plan = got
            kp, ks, dropped, used = self._exact(q, cf, r, None, n_elig, k)
            plan = used if lean_plan == "exact" else lean_plan
            return self._result(kp, ks, removed, dropped, plan, n_elig, t0, r.skipped, seed_id)
        need = k * (3 if cfg.max_per_brand else 1)
        n = self.n
        fetch = min(n, max(_FETCH_FACTOR * need, _FETCH_MIN))
        if self._choose(cf, r.e - r.s, False, n_elig, fetch, need) == "exact":
            kp, ks, dropped, used = self._exact(q, cf, r, None, n_elig, k)
        else:
            used = "hnsw_overfetch"
            index = self.index
            by_row = kv.by_row
            qq = q[None, :]
            first = True
            while True:
                rows, dist = index.knn_one(qq, fetch)
                exhausted = len(rows) >= n
                keys = by_row[rows]
                ok = keys >= lo
                ok &= keys < hi
                if seed_row >= 0:
                    ok &= rows != seed_row
                cp = self.view.pos_of_row[rows[ok]]
                sc = _matvec(np.take(self.unit, cp, axis=0), q)
                order = np.lexsort((cp, -sc))
                exhausted = exhausted or len(cp) >= n_elig
                kp, ks, dropped, final = self._rank_rules(cp[order], sc[order], k, cfg, exhausted)
                if first:
                    cf.record(final)
                    first = False
                if final:
                    break
                fetch = self._next_fetch(fetch, r.e - r.s, n_elig)
                if fetch is None:
                    kp, ks, dropped, _ = self._exact(q, cf, r, None, n_elig, k)
                    used = "hnsw_overfetch+exact_fallback"
                    break
        return self._result(kp, ks, removed, dropped, used, n_elig, t0, r.skipped, seed_id)

    def _try_lean(
        self,
        q: np.ndarray,
        cf: CompiledFilter,
        kv: _KeyIndex,
        lo: int,
        hi: int,
        seed_row: int,
        n_elig: int,
        domain: int,
        k: int,
        t0: float,
        removed: dict[str, int],
        skipped: list[str],
        seed_id: str | None,
    ) -> SearchResult | str:
        """Plan and over-fetch a query of a lean filter (no ranked-list rules, cosine space): the serving hot path.

        hnswlib's cosine distances are exact (1 - dot of unit vectors, float32) and
        sorted, so the list is the first k eligible labels, with no rescoring. A few
        dozen candidates: one gather, then plain lists (each NumPy call costs
        microseconds of dispatch, more with the cold caches of a serving loop); the
        scan stops at the k-th eligible label (k+1 while the seed may be among them).

        Returns the answer, or the plan an exact search must finish: ``"exact"`` (chosen
        by cost) or ``"hnsw_overfetch+exact_fallback"`` (the over-fetch fell short and
        fetching more would cost more than an exact search).
        """
        n = self.n
        fetch = min(n, max(_FETCH_FACTOR * k, _FETCH_MIN))
        if self._choose(cf, domain, False, n_elig, fetch, k) == "exact":
            return "exact"
        index, by_row = self.index, kv.by_row
        qq = q[None, :]
        want = k + (seed_row >= 0)
        first = True
        while True:
            rows, dist = index.knn_one(qq, fetch)
            keys = by_row[rows.view(np.int64)].tolist()  # int64 labels: no index cast
            sel = []
            for j, x in enumerate(keys):
                if lo <= x < hi:
                    sel.append(j)
                    if len(sel) == want:
                        break
            rl = rows[: sel[-1] + 1].tolist() if sel else []
            if seed_row >= 0 and seed_row in rl:  # eligible, usually first: its own vector
                sel.remove(rl.index(seed_row))
            final = len(sel) >= k or len(rows) >= n or len(sel) >= n_elig
            if first:
                cf.record(final)
                first = False
            if final:
                break
            fetch = self._next_fetch(fetch, domain, n_elig)
            if fetch is None:
                return "hnsw_overfetch+exact_fallback"
        del sel[k:]
        top = [rl[j] for j in sel]
        dl = dist[: len(rl)].tolist()
        return SearchResult(
            list(map(self.view.item_id_by_row.__getitem__, top)),
            [1.0 - dl[j] for j in sel],
            top,
            removed,
            "hnsw_overfetch",
            n_elig,
            (time.perf_counter() - t0) * 1e3,
            skipped,
            seed_id,
        )

    # -- background builds -------------------------------------------------------------
    def wait_background(self) -> None:
        """Block until the background builds queued so far have finished (tests, benchmarks)."""
        self._bg.wait()

    def _inline(self) -> bool:
        return self.n < self.background_min_items

    def _keys_ready(self, cf: CompiledFilter, r: _SeedRules) -> bool:
        """Whether the key index of ``r``'s variant may be used now (else it is queued for the
        background thread and the query takes the general path with a domain mask)."""
        variant = (r.level, r.gender >= 0, r.no_adult)
        if variant in cf.keys or self._inline():
            return True
        self._bg.submit((id(cf), "keys", variant), lambda: self._key_index(cf, *variant))
        return False

    def _request_table(self, cf: CompiledFilter) -> np.ndarray | None:
        """The seed table: built inline on a small catalogue, else queued for the background."""
        if self._inline():
            return self._seed_table(cf)
        self._bg.submit((id(cf), "table"), lambda: self._seed_table(cf))
        return None

    def _static_set(self, cf: CompiledFilter, no_adult: bool, wait: bool = False) -> StaticSet | None:
        """The eligible set of a static filter (one adult-rule variant).

        Built inline on a small catalogue or with ``wait`` (batch jobs), else queued for
        the background thread: None until it is ready.
        """
        ss = cf.sets.get(no_adult)
        if ss is not None:
            return ss

        def build() -> None:
            if no_adult in cf.sets:
                return
            mask = cf.base_mask & ~self.view.adult if no_adult else cf.base_mask
            cf.sets[no_adult] = StaticSet(mask, self.view.perm, self.view.pos_of_row, self.unit)
            cf.table_ok = True  # a static filter's hot-path structure is its eligible set

        if wait or self._inline():
            build()
            return cf.sets[no_adult]
        self._bg.submit((id(cf), "set", no_adult), build)
        return None

    # -- static filters ------------------------------------------------------------------
    def _static_exact_cost(self, ss: StaticSet) -> float:
        m, dscale = ss.n, self._dscale
        gemv = _S_GEMV_ROW if m * self.dim * 4 <= _S_CACHE_BYTES else _S_GEMV_ROW_COLD
        cost = _S_EXACT_BASE + m * (gemv * dscale + _S_SELECT_ROW)
        if ss.block is None:
            cost += m * _S_GATHER_ROW * dscale
        return cost

    def _static_hnsw_cost(self, fetch: int) -> float:
        ef = self._index.ef if self._index is not None else self._ef
        return _S_HNSW_BASE + _S_HNSW_PER_EF * max(ef, fetch) * (0.5 + 0.5 * self._dscale)

    def _static_prefers_exact(self, cf: CompiledFilter, ss: StaticSet, fetch: int) -> bool:
        """Exact search over the eligible block, or an over-fetch of ``fetch`` candidates?

        By expected cost: the over-fetch is sized to fill the list with ~99% probability
        were filter and vectors independent; how often it really fills is learned per
        filter (the fallback is an exact search on top), and re-checked now and then.
        """
        if self.exact_max_rows is not None and ss.n <= self.exact_max_rows:
            return True
        if fetch >= self.n:
            return True
        costs = ss.costs.get((fetch, -1))
        if costs is None:
            costs = ss.costs[(fetch, -1)] = (
                fetch,
                self._static_exact_cost(ss),
                self._static_hnsw_cost(fetch),
            )
        _, c_x, c_h = costs
        if c_h >= c_x:
            return True
        cf.queries += 1
        if c_h + (1.0 - cf.fill_rate(0.99)) * c_x < c_x:
            return False
        return cf.queries % _EXPLORE_EVERY != 0

    def _search_static(
        self, q: np.ndarray, pos: int | None, cf: CompiledFilter, k: int, t0: float, seed_id: str | None
    ) -> SearchResult | None:
        """A lean static filter: an over-fetch sized to its share of the catalogue, or exact search
        over its dense eligible block (one BLAS matrix-vector product, no gather).

        None while the eligible set is being built in the background (the general path answers).
        """
        v, cfg = self.view, cf.config
        no_adult = bool(v.n_adult) and not cfg.exclude_adult and (pos is None or not v.adult[pos])
        ss = self._static_set(cf, no_adult)
        if ss is None:
            return None
        removed = dict(cf.base_removed)
        if no_adult:
            removed["adult_next_to_non_adult"] = v.n_adult
        seed_row = -1
        if pos is not None and cfg.exclude_seed:
            removed["exclude_seed"] = 1
            row = int(v.perm[pos])
            if ss.ok_by_row[row]:
                seed_row = row
        m = ss.n - (seed_row >= 0)
        if m == 0:
            return SearchResult(
                [], [], [], removed, "empty", 0, (time.perf_counter() - t0) * 1e3, [], seed_id
            )
        ids = v.item_id_by_row
        sub = ss.sub
        if sub is None:
            self._maybe_sub(cf, ss, no_adult)
        elif ss.n > k + 1:  # the filter's own graph: no over-fetch, no eligibility test
            try:
                cols, dist = sub.knn_query(q[None, :], k=k + 1, num_threads=1)
            except RuntimeError:  # hnswlib#444
                cols = None
            if cols is not None:
                rl, dl = ss.rows[cols[0].astype(np.int64)].tolist(), dist[0].tolist()
                if seed_row in rl:
                    j = rl.index(seed_row)
                    del rl[j], dl[j]
                else:
                    del rl[k:], dl[k:]
                return SearchResult(
                    [ids[r] for r in rl],
                    [1.0 - d for d in dl],
                    rl,
                    removed,
                    "hnsw_subindex",
                    m,
                    (time.perf_counter() - t0) * 1e3,
                    [],
                    seed_id,
                )
        need = k + (seed_row >= 0)
        got = ss.costs.get((need, self.n))
        if got is None:
            got = ss.costs[(need, self.n)] = (fetch_for(need, ss.n / self.n, self.n), 0.0, 0.0)
        fetch = got[0]
        plan = "exact_subset"
        if not self._static_prefers_exact(cf, ss, fetch):
            labels, dist = self.index.knn_one(q[None, :], fetch)
            lab = labels.view(np.int64) if labels.dtype == np.uint64 else labels.astype(np.int64)
            # a few dozen candidates: plain lists beat a chain of small NumPy calls
            okl, labl = ss.ok_by_row[lab].tolist(), lab.tolist()
            sel = []
            for j, o in enumerate(okl):
                if o and labl[j] != seed_row:
                    sel.append(j)
                    if len(sel) == k:
                        break
            filled = len(sel) >= k or len(sel) >= m or len(labl) >= self.n
            cf.record(filled)
            if filled:
                rows = [labl[j] for j in sel]
                dl = dist.tolist()
                return SearchResult(
                    [ids[r] for r in rows],
                    [1.0 - dl[j] for j in sel],
                    rows,
                    removed,
                    "hnsw_overfetch",
                    m,
                    (time.perf_counter() - t0) * 1e3,
                    [],
                    seed_id,
                )
            plan = "hnsw_overfetch+exact_fallback"
        block = ss.dense() if ss.block is not None else np.take(self.unit, ss.pos, axis=0)
        sc = _matvec(block, q)
        if seed_row >= 0:
            sc[ss.column(pos)] = -np.inf
        if self._tie_of is not None:
            self._snap_ties(sc, ss.pos, q)
        kk = min(k, m)
        top = np.argpartition(sc, len(sc) - kk)[len(sc) - kk :] if kk < len(sc) else np.arange(len(sc))
        if self._tie_of is not None and kk < len(sc):  # every copy of a tied score at the cut
            top = np.flatnonzero(sc >= sc[top].min())
        ts = sc[top]
        order = np.lexsort((top, -ts))  # ties: lower position first (columns are in position order)
        top, ts = top[order][:kk], ts[order][:kk]
        keep = np.isfinite(ts)
        kp, ks = self._canon(ss.pos[top[keep]], q)
        ts = ks
        rows = self.view.perm[kp].tolist()
        return SearchResult(
            [ids[r] for r in rows],
            ts.tolist(),
            rows,
            removed,
            plan,
            m,
            (time.perf_counter() - t0) * 1e3,
            [],
            seed_id,
        )

    def _search_block(
        self,
        q: np.ndarray,
        pos: int,
        cf: CompiledFilter,
        s: int,
        e: int,
        no_adult: bool,
        k: int,
        t0: float,
        removed: dict[str, int],
        skipped: list[str],
        seed_id: str | None,
    ) -> SearchResult | None:
        """A ``same_category`` filter whose seed's category block has its own graph: one query on
        it. Counts the block's uses and queues its graph (background) once it is used often and
        exact search over it costs clearly more than a beam search; None until it is ready."""
        key = (s, e, no_adult)
        ss = cf.blocks.get(key)
        if ss is None:
            uses = cf.block_uses[key] = cf.block_uses.get(key, 0) + 1
            rows = e - s
            if (
                uses >= _SUB_AFTER
                and rows >= self.sub_index_min_rows
                and rows <= BLOCK_MAX_SHARE * self.n
                and cf.block_bytes < _BLOCKS_MAX_BYTES
            ):
                gemv = _S_GEMV_ROW if rows * self.dim * 4 <= _S_CACHE_BYTES else _S_GEMV_ROW_COLD
                c_x = _S_EXACT_BASE + rows * (gemv * self._dscale + _S_SELECT_ROW)
                if c_x >= self.sub_index_gain * self._static_hnsw_cost(0):
                    self._queue_block(cf, key)
            return None
        if ss.sub is None or ss.n <= k + 1:
            return None
        v = self.view
        row = int(v.perm[pos])
        seed_row = row if cf.config.exclude_seed and ss.ok_by_row[row] else -1
        try:
            cols, dist = ss.sub.knn_query(q[None, :], k=k + 1, num_threads=1)
        except RuntimeError:  # hnswlib#444
            return None
        rl, dl = ss.rows[cols[0].astype(np.int64)].tolist(), dist[0].tolist()
        if seed_row in rl:
            j = rl.index(seed_row)
            del rl[j], dl[j]
        else:
            del rl[k:], dl[k:]
        ids = v.item_id_by_row
        return SearchResult(
            [ids[r] for r in rl],
            [1.0 - d for d in dl],
            rl,
            removed,
            "hnsw_subindex",
            ss.n - (seed_row >= 0),
            (time.perf_counter() - t0) * 1e3,
            skipped,
            seed_id,
        )

    def _queue_block(self, cf: CompiledFilter, key: tuple[int, int, bool]) -> None:
        s, e, no_adult = key
        index = self._index if self._index is not None else self.index
        space = "cosine" if self.space == "cosine" else "ip"

        def build() -> None:
            if key in cf.blocks:
                return
            mask = np.zeros(self.n, dtype=bool)
            mask[s:e] = cf.base_mask[s:e]
            if no_adult:
                mask[s:e] &= ~self.view.adult[s:e]
            ss = StaticSet(mask, self.view.perm, self.view.pos_of_row, self.unit)
            ss.build_sub(space, index.M, min(index.ef_construction, 100), index.ef)
            cf.block_bytes += ss.nbytes
            cf.blocks[key] = ss  # published whole, with its graph

        if self._inline():
            build()
        else:
            self._bg.submit((id(cf), "block", key), build)

    def _maybe_sub(self, cf: CompiledFilter, ss: StaticSet, no_adult: bool) -> None:
        """Queue a static filter's own HNSW index when it keeps being used and exact search over
        its block costs clearly more than a beam search (a brand or price filter keeping a few
        percent of a large catalogue); built on one background thread, published atomically."""
        cf.seeded_queries += 1
        if ss.block is None or ss.n < self.sub_index_min_rows or cf.seeded_queries < _SUB_AFTER:
            return
        if self._static_exact_cost(ss) < self.sub_index_gain * self._static_hnsw_cost(0):
            return
        index = self._index if self._index is not None else self.index
        space = "cosine" if self.space == "cosine" else "ip"

        def build() -> None:
            ss.build_sub(space, index.M, min(index.ef_construction, 100), index.ef)

        if self._inline():
            build()
        else:
            self._bg.submit((id(cf), "sub", no_adult), build)

    def _search_trivial(
        self, q2: np.ndarray, pos: int | None, cf: CompiledFilter, k: int, t0: float, seed_id: str | None
    ) -> SearchResult | None:
        """No rule bites (the default config on a catalogue without adult items): one knn_query
        for k + 1, the seed dropped from the list. None when hnswlib cannot reach that many."""
        n = self.n
        ex = pos is not None and cf.config.exclude_seed
        kq = k + 1 if ex else k
        index = self._index if self._index is not None else self.index
        try:
            labels, dist = index._index.knn_query(q2, k=kq if kq <= n else n, num_threads=1)
        except RuntimeError:  # hnswlib#444
            return None
        rl, dl = labels[0].tolist(), dist[0].tolist()
        removed = dict(cf.base_removed)
        if ex:
            removed["exclude_seed"] = 1
            seed_row = int(self.view.perm[pos])
            if seed_row in rl:
                j = rl.index(seed_row)
                del rl[j], dl[j]
            else:
                del rl[k:], dl[k:]
        return SearchResult(
            list(map(self.view.item_id_by_row.__getitem__, rl)),
            [1.0 - d for d in dl],
            rl,
            removed,
            "hnsw_overfetch",
            n - ex,
            (time.perf_counter() - t0) * 1e3,
            [],
            seed_id,
        )

    def _result(
        self,
        kp: np.ndarray,
        ks: np.ndarray,
        removed: dict[str, int],
        dropped: dict[str, int] | None,
        plan: str,
        n_eligible: int,
        t0: float,
        skipped: Any,
        seed_id: str | None,
    ) -> SearchResult:
        """The SearchResult of positions ``kp`` with scores ``ks`` (both search paths end here)."""
        if dropped:
            removed.update(dropped)
        ids = self.view.item_id_list
        return SearchResult(
            item_ids=[ids[i] for i in kp.tolist()],
            scores=ks.tolist(),
            rows=self.view.perm[kp].tolist(),
            removed_by_rule=removed,
            plan=plan,
            n_eligible=n_eligible,
            elapsed_ms=(time.perf_counter() - t0) * 1e3,
            skipped_rules=skipped,
            seed_item_id=seed_id,
        )

    def _search_one(
        self, q: np.ndarray, pos: int | None, cfg: FilterConfig, k: int, plan: str = "auto"
    ) -> SearchResult:
        t0 = time.perf_counter()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {PLANS}, got {plan!r}")
        cf = self.compile(cfg)
        seed_id = self.view.item_id_list[pos] if pos is not None else None
        if plan == "auto" and cf.static and cf.lean:
            if cf.trivial:
                got = self._search_trivial(q[None, :], pos, cf, k, t0, seed_id)
                if got is not None:
                    return got
            got = self._search_static(q, pos, cf, k, t0, seed_id)
            if got is not None:
                return got
        elif plan == "auto" and pos is not None and cf.table_ok is not False:
            table = cf.seed_table
            if table is None and cf.seeded_queries >= _TABLE_AFTER:
                table = self._request_table(cf)
            cf.seeded_queries += 1
            if table is not None:
                return self._search_table(q, pos, cf, table, k, t0, seed_id)
        r = self._seed_rules(cf, pos)
        cold = plan == "auto" and cf.static and cf.lean  # its eligible set is being built
        if plan == "auto" and not r.extra and not cold:
            if self._keys_ready(cf, r):
                return self._search_keyed(q, cf, r, k, t0, seed_id)
            cold = True  # its key index is being built: answer with a mask over the domain
        mask, n_elig = self._eligibility(cf, r, cold)
        removed, skipped = r.removed, r.skipped
        if n_elig == 0:
            return SearchResult(
                [], [], [], removed, "empty", 0, (time.perf_counter() - t0) * 1e3, skipped, seed_id
            )
        need = k * (3 if cfg.max_per_brand else 1)
        auto = plan == "auto"
        if auto:
            fetch = min(self.n, max(_FETCH_FACTOR * need, _FETCH_MIN))
            choice = self._choose(cf, r.e - r.s, r.kv is None, n_elig, fetch, need)
        else:
            fetch = min(self.n, max(need + 10, math.ceil(need / (n_elig / self.n) * _SAFETY)))
            choice = plan
        if choice == "exact":
            kp, ks, dropped, used = self._exact(q, cf, r, mask, n_elig, k)
        elif choice == "hnsw_filter":
            allowed = np.zeros(self.n, dtype=bool)
            allowed[self.view.perm[r.s : r.e][self._domain_mask(cf, r, mask)]] = True
            rows, _ = self.index.knn(q, min(need, n_elig), filter_rows=allowed)
            cand = self.view.pos_of_row[rows[0][rows[0] >= 0]]
            kp, ks, dropped, final = self._rerank(q, cand, k, cfg, exhausted=len(cand) >= n_elig)
            used = "hnsw_filter"
            if not final:
                kp, ks, dropped, _ = self._exact(q, cf, r, mask, n_elig, k)
                used = "hnsw_filter+exact_fallback"
        else:
            used = "hnsw_overfetch"
            index = self.index
            first = True
            while True:
                p = self.view.pos_of_row[index.knn_rows(q, fetch)]
                fetched_all = len(p) >= self.n
                p = self._keep_eligible(cf, r, p, mask)
                kp, ks, dropped, final = self._rerank(q, p, k, cfg, exhausted=fetched_all or len(p) >= n_elig)
                if first and auto:
                    cf.record(final)
                first = False
                if final:
                    break
                fetch *= 4
                if fetch >= self.n or (
                    auto
                    and 2 * self._hnsw_cost(fetch)
                    > min(self._exact_costs(r.e - r.s, n_elig, scan=r.kv is None))
                ):
                    kp, ks, dropped, _ = self._exact(q, cf, r, mask, n_elig, k)
                    used = "hnsw_overfetch+exact_fallback"
                    break
        return self._result(kp, ks, removed, dropped, used, n_elig, t0, skipped, seed_id)

    def _rerank(
        self, q: np.ndarray, cand: np.ndarray, k: int, cfg: FilterConfig, exhausted: bool
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int], bool]:
        """Exact scores for HNSW candidates, sorted, then the ranked-list rules."""
        sc = _matvec(np.take(self.unit, cand, axis=0), q) if len(cand) else np.zeros(0, dtype=np.float32)
        order = np.lexsort((cand, -sc))
        return self._rank_rules(cand[order], sc[order], k, cfg, exhausted)

    # -- public --------------------------------------------------------------------
    def _query_for(self, item_id: str) -> tuple[int, np.ndarray]:
        pos = self.view.position(item_id)
        if pos < 0:
            raise UnknownItemError(f"item '{item_id}' has no vector in this run: pick another seed item")
        return pos, self.qunit[pos]

    def search(
        self,
        seed_item_id: str,
        config: FilterConfig | dict[str, Any] | None = None,
        k: int = 10,
        plan: str = "auto",
    ) -> SearchResult:
        """The k most similar items to a seed that pass the filter.

        Parameters
        ----------
        seed_item_id : str
        config : FilterConfig or dict, optional
            Defaults to ``FilterConfig()`` (only the seed excluded).
        k : int
        plan : {"auto", "exact", "hnsw_overfetch", "hnsw_filter"}
            Force a plan (for benchmarks and tests); results are the same up
            to HNSW's approximation.

        Raises
        ------
        UnknownItemError
            The seed has no vector in this run.
        FilterConfigError
            ``config`` is an invalid dict.
        """
        res = self._search_seed(seed_item_id, config, k, plan)
        if self._tie_of is None or not res.rows:
            return res
        pos = self.view.pos_of_id[res.seed_item_id]
        return self._fix_ties(res, self.qunit[pos], pos, FilterConfig.from_dict(config), k)

    def _search_seed(
        self,
        seed_item_id: str,
        config: FilterConfig | dict[str, Any] | None = None,
        k: int = 10,
        plan: str = "auto",
    ) -> SearchResult:
        """The body of :meth:`search` (before ties are completed)."""
        cfg = config if config.__class__ is FilterConfig else FilterConfig.from_dict(config)
        pos = self.view.pos_of_id.get(
            seed_item_id if seed_item_id.__class__ is str else str(seed_item_id), -1
        )
        if pos < 0:
            raise UnknownItemError(f"item '{seed_item_id}' has no vector in this run: pick another seed item")
        if plan == "auto" and k >= 1:  # the serving hot path: the config compiled last
            last = self._last
            if last is not None and last[0] is cfg and last[1].trivial:
                got = self._search_trivial(
                    self.qunit[pos : pos + 1],
                    pos,
                    last[1],
                    k,
                    time.perf_counter(),
                    self.view.item_id_list[pos],
                )
                if got is not None:
                    return got
            if last is not None and last[0] is cfg and last[1].sets and last[1].lean:  # static
                got = self._search_static(
                    self.qunit[pos], pos, last[1], k, time.perf_counter(), self.view.item_id_list[pos]
                )
                if got is not None:
                    return got
            if last is not None and last[0] is cfg and last[1].seed_table is not None:
                cf = last[1]
                result = self._search_table(
                    self.qunit[pos],
                    pos,
                    cf,
                    cf.seed_table,
                    k,
                    time.perf_counter(),
                    self.view.item_id_list[pos],
                )
                return self._similarity_counts(result, self.qunit[pos], pos, cfg)
        return self._similarity_counts(
            self._search_one(self.qunit[pos], pos, cfg, k, plan), self.qunit[pos], pos, cfg
        )

    def _similarity_counts(
        self, result: SearchResult, q: np.ndarray, pos: int | None, cfg: FilterConfig
    ) -> SearchResult:
        """With ``min_similarity`` set, count it like a mask rule over the whole catalogue.

        The ranked search only sees the candidates it needed, so its count of items below the
        threshold grew with k and ``n_eligible`` included items the threshold rejects. Here
        ``n_eligible`` becomes the items passing every mask rule AND the threshold, and
        ``removed_by_rule["min_similarity"]`` the mask-eligible items below it: both exact and
        independent of k (one exact scoring of the eligible items, only when the rule is on).
        """
        if cfg.min_similarity is None:
            return result
        if result.plan == "empty":  # no item passes the mask rules: none left to remove
            result.removed_by_rule = {**result.removed_by_rule, "min_similarity": 0}
            return result
        # a fresh config (model_copy would carry the cached hash, and with it the compiled filter)
        base = FilterConfig.from_dict({**cfg.model_dump(), "min_similarity": None, "max_per_brand": None})
        everything = self._search_one(q, pos, base, max(1, self.n), "exact")
        scores = np.asarray(everything.scores, dtype=np.float32)
        below = int(np.count_nonzero(scores < cfg.min_similarity))
        result.removed_by_rule = {**result.removed_by_rule, "min_similarity": below}
        result.n_eligible = int(len(scores) - below)
        return result

    def search_vector(
        self,
        query_vector: np.ndarray,
        config: FilterConfig | dict[str, Any] | None = None,
        k: int = 10,
        seed_item_id: str | None = None,
        plan: str = "auto",
    ) -> SearchResult:
        """Filtered top-k for an arbitrary vector (a user/session vector).

        Seed-dependent rules use ``seed_item_id``'s attributes when given and
        are skipped otherwise (listed in ``skipped_rules``); adult items are
        excluded unless the seed item is adult.
        """
        cfg = FilterConfig.from_dict(config)
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query vector has dimension {q.shape[0]}, the run's vectors have {self.dim}")
        if self.space == "cosine":
            q = q / max(float(np.linalg.norm(q)), 1e-12)
        pos = self._query_for(seed_item_id)[0] if seed_item_id is not None else None
        q = np.ascontiguousarray(q, dtype=np.float32)
        res = self._search_one(q, pos, cfg, k, plan)
        if self._tie_of is not None and res.rows:
            res = self._fix_ties(res, q, pos, cfg, k)
        return self._similarity_counts(res, q, pos, cfg)

    def _snap_ties(self, sc: np.ndarray, cand: np.ndarray, q: np.ndarray) -> None:
        """Give every member of a group of identical vectors among ``cand`` one score, in place.

        BLAS may round the same row's dot product differently by where it sits in a matrix;
        a group's score is computed once per group, the same way wherever it is asked for
        (an elementwise product summed along the row), so ties stay ties and order by
        position. Excluded rows (-inf) stay excluded.
        """
        if self._tie_of is None or len(sc) == 0:
            return
        g = self._tie_of[cand]
        m = (g >= 0) & np.isfinite(sc)
        if not m.any():
            return
        gm = g[m]
        groups = np.unique(gm)
        reps = self._tie_members[self._tie_starts[groups]]
        val = (np.take(self.unit, reps, axis=0) * q).sum(axis=1, dtype=np.float32)
        sc[m] = val[np.searchsorted(groups, gm)]

    def _fix_ties(
        self,
        res: SearchResult,
        q: np.ndarray,
        pos: int | None,
        cfg: FilterConfig,
        k: int,
        exact_ok: bool = True,
    ) -> SearchResult:
        """Answer exactly a query whose list reaches a group of identical vectors.

        hnswlib returns an arbitrary subset of a group of equal vectors (equal scores), and
        its beam fills up with the group's copies, so it also misses distinct neighbours
        next to it; the exact list holds the group's eligible members, lowest position first
        (the planner's tie order), cut at k. A list that holds a group member, or that a
        group's score would enter (one product per group: HNSW may miss a group altogether),
        is answered by exact search, which scores each group once (:meth:`_snap_ties`).
        """
        if exact_ok and res.plan.startswith("exact"):
            return res  # single-query exact search scores each group once (_snap_ties)
        p = self.view.pos_of_row[np.asarray(res.rows, dtype=np.int64)]
        thr = res.scores[-1] - 1e-5 if len(res.rows) >= k else -np.inf
        if not (self._tie_of[p] >= 0).any():
            gvals = (self._tie_reps * q).sum(axis=1, dtype=np.float32)
            if not (gvals >= thr).any():
                return res
        exact = self._search_one(q, pos, cfg, k, "exact")
        exact.plan = f"{res.plan}+ties_exact"
        return exact

    def search_many(
        self,
        seed_item_ids: Iterable[str],
        config: FilterConfig | dict[str, Any] | None = None,
        k: int = 10,
        skip_unknown: bool = False,
        num_threads: int = -1,
    ) -> list[SearchResult | None]:
        """:meth:`search` for several seeds (``None`` for unknown ones with ``skip_unknown``).

        Batched: filters without ranked-list rules (``max_per_brand``, ``min_similarity``) in
        the cosine space are answered with one multi-threaded hnswlib ``knn_query`` over all
        seeds, vectorised eligibility tests and one BLAS product per group of seeds that need
        exact search (:mod:`recsys.batch_search`); the rest seed by seed. The same rules, counts
        and guarantees as :meth:`search`; ``elapsed_ms`` is the batch's time per seed.

        Parameters
        ----------
        num_threads : int
            hnswlib and BLAS threads for the batch (-1: every core).
        """
        t0 = time.perf_counter()
        cfg = FilterConfig.from_dict(config)
        cf = self.compile(cfg)
        items = seed_item_ids if isinstance(seed_item_ids, list) else list(seed_item_ids)
        found = list(map(self.view.pos_of_id.get, items))
        if None in found:  # unknown ids, or ids given as other types than str
            found = [self.view.pos_of_id.get(str(s), -1) for s in items]
        positions = np.array(found, dtype=np.int64)
        unknown = np.flatnonzero(positions < 0)
        if len(unknown) and not skip_unknown:
            raise UnknownItemError(
                f"item '{items[int(unknown[0])]}' has no vector in this run: pick another seed item"
            )
        known = np.flatnonzero(positions >= 0)
        out: list[SearchResult | None] = [None] * len(items)
        got = None
        if len(known) > 1 and k >= 1 and self.n >= 2:
            threads = resolve_threads(num_threads)
            if cf.static and cf.lean:
                got = search_many_static(self, cf, positions[known], k, threads)
            elif cf.lean:
                got = search_many_keyed(self, cf, positions[known], k, threads)
            else:
                ranked = search_many_ranked(self, cf, positions[known], k, threads)
                if ranked is not None:
                    for j, i in enumerate(known.tolist()):
                        res = ranked[j]
                        if res is None:
                            res = self.search(str(items[i]), cfg, k)
                        elif self._tie_of is not None:
                            p = int(positions[i])
                            res = self._fix_ties(res, self.qunit[p], p, cfg, k, exact_ok=False)
                        out[i] = res
                    return out
        if got is None:
            for i in known.tolist():
                out[i] = self.search(str(items[i]), cfg, k)
            return out
        ms = (time.perf_counter() - t0) * 1e3 / len(known)
        counts = np.count_nonzero(got.rows >= 0, axis=1).tolist()
        ids2 = self._ids_by_row()[np.maximum(got.rows, 0)].tolist()  # one C call for the whole batch
        rows2, sims2 = got.rows.tolist(), got.sims.tolist()
        n_elig = got.n_elig.tolist()
        seed_ids = self.view.item_ids[positions[known]].tolist()
        for j, i in enumerate(known.tolist()):
            c = counts[j]
            if c < k:
                ids2[j], sims2[j], rows2[j] = ids2[j][:c], sims2[j][:c], rows2[j][:c]
            out[i] = SearchResult(
                ids2[j],
                sims2[j],
                rows2[j],
                dict(got.removed[j]),
                got.plans[j],
                n_elig[j],
                ms,
                list(got.skipped[j]),
                seed_ids[j],
            )
            if self._tie_of is not None and counts[j]:
                p = int(positions[i])
                out[i] = self._fix_ties(out[i], self.qunit[p], p, cfg, k, exact_ok=False)
        return out

    def _ids_by_row(self) -> np.ndarray:
        """Item ids by vector row as an object array (built once)."""
        arr = getattr(self, "_ids_obj", None)
        if arr is None:
            arr = np.asarray(self.view.item_id_by_row, dtype=object)
            self._ids_obj = arr
        return arr

    def brute_force(
        self,
        seed_item_id: str | None,
        config: FilterConfig | dict[str, Any] | None,
        k: int,
        query_vector: np.ndarray | None = None,
    ) -> SearchResult:
        """Exact filtered search over the whole catalogue (reference answer)."""
        cfg = FilterConfig.from_dict(config)
        if seed_item_id is not None:
            pos, q = self._query_for(seed_item_id)
        else:
            pos, q = None, np.asarray(query_vector, dtype=np.float32)
        return self._search_one(q, pos, cfg, k, "exact")


# -- filter impact ---------------------------------------------------------------------
def filter_impact(
    searcher: FilteredSearcher,
    config: FilterConfig | dict[str, Any],
    k: int = 10,
    n_seeds: int = 200,
    seed: int = 0,
    eval_cases: Sequence[tuple[str, Iterable[str]]] | None = None,
) -> dict[str, Any]:
    """What a filter does over a sample of seeds, compared with no filter.

    "Before" is ``FilterConfig()`` (seed excluded; adult items never next to a
    non-adult seed), "after" is ``config``.

    Parameters
    ----------
    searcher : FilteredSearcher
    config : FilterConfig or dict
    k : int
    n_seeds : int
        Seeds sampled uniformly (without replacement) from the run's items.
    seed : int
        Sampling seed.
    eval_cases : list of (seed_item_id, targets), optional
        Held-out cases (e.g. from :mod:`recsys.evaluation`): a hit is any
        target among the top k. Cases whose seed has no vector are skipped.

    Returns
    -------
    dict
        ``n_seeds``, ``k``, ``fill_rate`` (share of seeds that still get k),
        ``fill_rate_before``, ``mean_results``, ``mean_similarity_before``,
        ``mean_similarity_after``, ``mean_similarity_loss`` (mean over seeds
        with at least one filtered result of mean unfiltered top-k score minus
        mean filtered score), ``removed_by_rule`` (mean items per seed each rule
        rejects on its own), ``removed_by_rule_total``, ``coverage_before`` /
        ``coverage_after`` (share of the catalogue recommended to at least one
        sampled seed), ``plans`` (plan -> count), ``mean_elapsed_ms``, and with
        ``eval_cases``: ``hr_before``, ``hr_after``, ``n_cases``,
        ``n_cases_skipped``.
    """
    cfg = FilterConfig.from_dict(config)
    base = FilterConfig()
    rng = np.random.default_rng(seed)
    n = searcher.n
    picks = rng.choice(n, size=min(n_seeds, n), replace=False) if n else np.zeros(0, dtype=np.int64)
    seeds = [str(x) for x in searcher.view.item_ids[picks]]
    filled = filled_before = 0
    losses, sim_b, sim_a, n_results, elapsed = [], [], [], [], []
    removed_total: dict[str, int] = {}
    plans: dict[str, int] = {}
    seen_before: set[int] = set()
    seen_after: set[int] = set()
    for item in seeds:
        before = searcher.search(item, base, k)
        after = searcher.search(item, cfg, k)
        filled += len(after) >= k
        filled_before += len(before) >= k
        n_results.append(len(after))
        elapsed.append(after.elapsed_ms)
        plans[after.plan] = plans.get(after.plan, 0) + 1
        for rule, count in after.removed_by_rule.items():
            removed_total[rule] = removed_total.get(rule, 0) + int(count)
        seen_before.update(before.rows)
        seen_after.update(after.rows)
        if len(before):
            sim_b.append(float(np.mean(before.scores)))
        if len(after):
            sim_a.append(float(np.mean(after.scores)))
            if len(before):
                losses.append(float(np.mean(before.scores)) - float(np.mean(after.scores)))
    m = max(len(seeds), 1)
    out: dict[str, Any] = {
        "n_seeds": len(seeds),
        "k": k,
        "config_hash": cfg.config_hash(),
        "fill_rate": filled / m,
        "fill_rate_before": filled_before / m,
        "mean_results": float(np.mean(n_results)) if n_results else 0.0,
        "mean_similarity_before": float(np.mean(sim_b)) if sim_b else None,
        "mean_similarity_after": float(np.mean(sim_a)) if sim_a else None,
        "mean_similarity_loss": float(np.mean(losses)) if losses else None,
        "removed_by_rule_total": removed_total,
        "removed_by_rule": {r: c / m for r, c in removed_total.items()},
        "coverage_before": len(seen_before) / n if n else 0.0,
        "coverage_after": len(seen_after) / n if n else 0.0,
        "plans": plans,
        "mean_elapsed_ms": float(np.mean(elapsed)) if elapsed else 0.0,
    }
    if eval_cases is not None:
        hits_b = hits_a = used = skipped = 0
        for seed_item, targets in eval_cases:
            if searcher.view.position(str(seed_item)) < 0:
                skipped += 1
                continue
            wanted = {str(t) for t in targets}
            used += 1
            hits_b += bool(wanted.intersection(searcher.search(str(seed_item), base, k).item_ids))
            hits_a += bool(wanted.intersection(searcher.search(str(seed_item), cfg, k).item_ids))
        out.update(
            {
                f"hr@{k}_before": hits_b / used if used else None,
                f"hr@{k}_after": hits_a / used if used else None,
                "hr_before": hits_b / used if used else None,
                "hr_after": hits_a / used if used else None,
                "n_cases": used,
                "n_cases_skipped": skipped,
            }
        )
    return out


# -- per-run cache -------------------------------------------------------------------
# key (root, run id, stamp of the run's files) -> (searcher, the dataset's report.json, its stamp)
_searchers: dict[tuple[str, str, Any], tuple[FilteredSearcher, Path, tuple[int, int]]] = {}
_searchers_lock = threading.Lock()
_build_locks: dict[tuple[str, str, Any], threading.Lock] = {}


def _cached_searcher(key: tuple[str, str, Any]) -> FilteredSearcher | None:
    """The cached searcher of ``key`` while its dataset's report.json is unchanged (a re-import)."""
    with _searchers_lock:
        hit = _searchers.get(key)
    if hit is None or file_stamp(hit[1]) != hit[2]:
        return None
    return hit[0]


def get_searcher(registry: Any, run_id: str) -> FilteredSearcher:
    """The searcher of a run, cached by run id, its files' stamps and the dataset's; thread-safe.

    Loads the model's vectors, the run's ``index.bin`` when present and valid
    (an unusable one is logged and rebuilt in memory), and the catalogue of
    the run's dataset. A re-imported dataset (a new ``report.json``) is picked
    up at the next call.

    Raises
    ------
    RunNotFoundError
        Unknown run.
    RunNotSearchableError
        The run has no item vectors (a baseline model).
    """
    from recsys.registry import run_files_stamp

    path = registry.run_dir(run_id)
    # every model file in the key: a rewritten (or damaged) vectors.npy is seen at the next call
    key = (str(registry.root), run_id, run_files_stamp(path))
    hit = _cached_searcher(key)
    if hit is not None:
        return hit
    with _searchers_lock:
        lock = _build_locks.setdefault(key, threading.Lock())
    try:
        with lock:
            hit = _cached_searcher(key)
            if hit is not None:
                return hit
            searcher, report, report_stamp = _build_searcher(registry, run_id, path)
            with _searchers_lock:
                for old in [k for k in _searchers if k[:2] == key[:2]]:
                    del _searchers[old]  # a newer run.json replaces the old searcher
                _searchers[key] = (searcher, report, report_stamp)
            return searcher
    finally:
        with _searchers_lock:
            _build_locks.pop(key, None)


def _build_searcher(registry: Any, run_id: str, path: Path) -> tuple[FilteredSearcher, Path, tuple[int, int]]:
    from recsys.data.schema import load_stored_catalog
    from recsys.index import vectors_checksum

    meta = registry.get(run_id)
    # a baseline run says so in run.json: no need to load its model to find out
    model = registry.load_model(run_id) if meta.get("is_embedding", True) else None
    vectors = getattr(model, "vectors_", None)
    if vectors is None:
        raise RunNotSearchableError(
            f"run '{run_id}' ({meta.get('family')}) has no item vectors; pick an embedding run"
        )
    vectors = np.asarray(vectors, dtype=np.float32)
    name = meta["dataset"]["name"]
    report = dataset_report_path(name, registry.root)
    report_stamp = file_stamp(report)  # before the read: a re-import during it is seen next time
    catalog = load_stored_catalog(name, registry.root)
    index = None
    index_path = path / "index.bin"
    if index_path.exists():
        try:
            index = HnswIndex.load(
                index_path,
                expected_dim=vectors.shape[1],
                expected_count=vectors.shape[0],
                vectors_checksum=vectors_checksum(vectors),
                item_ids=model.item_ids_,
            )
        except IndexFileError as exc:
            logger.warning("run %s: %s; building a fresh index in memory", run_id, exc)
    # runs with tied (duplicate) vectors are searched exactly: see pipeline._index_writer
    index_info = (meta.get("artifacts") or {}).get("index")
    exact = isinstance(index_info, dict) and bool(index_info.get("exact_search"))
    searcher = FilteredSearcher(
        vectors,
        model.item_ids_,
        catalog,
        index=index,
        query_vectors=getattr(model, "query_vectors_", None),
        space=(getattr(model, "params", None) or {}).get("metric", "cosine"),  # imported "ip" runs
        exact_max_rows=len(vectors) if exact else None,
    )
    return searcher, report, report_stamp


def clear_searcher_cache() -> None:
    """Forget every cached searcher (tests, run deletion)."""
    with _searchers_lock:
        _searchers.clear()


def similar_items(
    registry: Any,
    run_id: str,
    item_id: str,
    config: FilterConfig | dict[str, Any] | None = None,
    k: int = 10,
) -> SearchResult:
    """Filtered neighbours of ``item_id`` in run ``run_id``.

    The one code path behind the Explore page and the REST API.

    Raises
    ------
    RunNotFoundError, RunNotSearchableError, UnknownItemError, FilterConfigError
    """
    cfg = FilterConfig.from_dict(config)
    return get_searcher(registry, run_id).search(item_id, cfg, k)


# -- recommendations from recently viewed items ------------------------------------------------
@dataclass
class RecentResult(SearchResult):
    """A :class:`SearchResult` for a list of recently viewed items (:func:`recommend_for_recent`).

    Attributes
    ----------
    method : {"two_tower", "mean_of_recent", "session_knn"}
        How the query was made ("session_knn": a session model's own ranking).
    recent_item_ids : list of str
        The recent items the run knows, in the given order (excluded from the results).
    ignored_item_ids : list of str
        The recent items the run does not know (left out of the query).
    """

    method: str = "mean_of_recent"
    recent_item_ids: list[str] = field(default_factory=list)
    ignored_item_ids: list[str] = field(default_factory=list)


def recommend_for_recent(
    registry: Any,
    run_id: str,
    recent_ids: Sequence[str],
    config: FilterConfig | dict[str, Any] | None = None,
    k: int = 10,
    exclude_seen: bool = True,
) -> RecentResult:
    """Filtered recommendations for a list of recently viewed items (oldest first).

    The query is the run's user vector of the list for a two-tower run
    (``model.user_vectors([recent])``), else the mean of the recent items' unit vectors
    (their query vectors for a model with a second space for seeds), normalised. The
    recent items themselves are excluded; the most recent known item acts as the seed
    of the seed-dependent rules (same category, same gender, price band...).
    The code path of the REST ``/recommend`` endpoint and the Explore page's recent views.

    Parameters
    ----------
    registry : Registry
    run_id : str
        An embedding run.
    recent_ids : sequence of str
        Recently viewed item ids, oldest first; ids the run does not know are ignored
        (listed in ``ignored_item_ids``).
    config : FilterConfig or dict, optional
    k : int
    exclude_seen : bool
        Leave the recent items out of the results (default). Off: items viewed before
        may come back (repeat views), except the most recent one, the seed.

    Returns
    -------
    RecentResult
        At most ``k`` items, best first (none of them a recent item with ``exclude_seen``).
        A session-kNN run (sknn, vsknn, item_knn) answers with its own ranking; it
        has no vectors to filter, so the filter's rules are listed in ``skipped_rules``.

    Raises
    ------
    RunNotFoundError
        Unknown run.
    RunNotSearchableError
        The run has no item vectors (a baseline model).
    UnknownItemError
        None of the recent items is known to the run.
    FilterConfigError
        ``config`` is an invalid dict.
    """
    cfg = FilterConfig.from_dict(config)
    recent = [str(i) for i in recent_ids]
    model = registry.load_model(run_id)
    if not getattr(model, "is_embedding", False) and hasattr(model, "recommend"):
        return _recommend_from_session_model(model, run_id, recent, cfg, k, exclude_seen)
    if not getattr(model, "is_embedding", False) or getattr(model, "vectors_", None) is None:
        raise RunNotSearchableError(
            f"run '{run_id}' ({getattr(model, 'family', '?')}) has no item vectors to recommend from;"
            " pick an embedding run"
        )
    rows = model.rows_of(recent)
    known = [i for i, r in zip(recent, rows) if r >= 0]
    ignored = [i for i, r in zip(recent, rows) if r < 0]
    if not known:
        shown = ", ".join(recent[:5]) or "(empty list)"
        raise UnknownItemError(f"none of the recent items is known to run {run_id}: {shown}")
    if hasattr(model, "user_vectors"):
        method = "two_tower"
        vec = np.asarray(model.user_vectors([known]), dtype=np.float32).reshape(-1)
    else:
        method = "mean_of_recent"
        vec = model.query_unit_vectors()[rows[rows >= 0]].mean(axis=0).astype(np.float32)
    norm = float(np.linalg.norm(vec))
    if norm > 0:
        vec = vec / np.float32(norm)
    exclude = set(known) if exclude_seen else {known[-1]}
    result = get_searcher(registry, run_id).search_vector(vec, cfg, k + len(exclude), seed_item_id=known[-1])
    keep = [j for j, i in enumerate(result.item_ids) if str(i) not in exclude][:k]
    return RecentResult(
        item_ids=[str(result.item_ids[j]) for j in keep],
        scores=[float(result.scores[j]) for j in keep],
        rows=[int(result.rows[j]) for j in keep],
        removed_by_rule=dict(result.removed_by_rule or {}),
        plan=result.plan,
        n_eligible=result.n_eligible,
        elapsed_ms=result.elapsed_ms,
        skipped_rules=list(result.skipped_rules),
        seed_item_id=known[-1],
        method=method,
        recent_item_ids=known,
        ignored_item_ids=ignored,
    )


# -- the run's similarity scale -----------------------------------------------------------------
def similarity_scale(
    searcher: FilteredSearcher, k: int = 10, n_seeds: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Where a run's neighbour scores lie, for a "minimum similarity" control.

    Scores differ by model (a Prod2Vec in-out run scores 0.07-0.18, a content run 0.6-0.95),
    so a fixed 0-1 slider is either useless or empties every list. This samples ``n_seeds``
    seeds (seeded), takes their unfiltered top-``k`` scores and returns ``{"max": upper end
    (the 99th percentile of top-1 scores, rounded up to 0.05, at most 1), "quantiles": {10:
    q, 50: q, 90: q} of the top-k scores, "n_seeds": seeds used}``. Cached on the searcher.
    """
    cache = searcher.__dict__.setdefault("_similarity_scale", {})
    key = (k, n_seeds, seed)
    if key in cache:
        return cache[key]
    ids = searcher.view.item_id_list
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ids), size=min(n_seeds, len(ids)), replace=False) if len(ids) else []
    top1: list[float] = []
    allk: list[float] = []
    cfg = FilterConfig()
    for p in picks:
        res = searcher.search(ids[int(p)], cfg, k)
        if res.scores:
            top1.append(res.scores[0])
            allk.extend(res.scores)
    if not allk:
        out: dict[str, Any] = {"max": 1.0, "quantiles": {}, "n_seeds": 0}
    else:
        hi = float(np.quantile(top1, 0.99))
        out = {
            "max": float(min(1.0, max(0.05, math.ceil(hi / 0.05) * 0.05))),
            "quantiles": {q: float(np.quantile(allk, q / 100)) for q in (10, 50, 90)},
            "n_seeds": len(top1),
        }
    cache[key] = out
    return out


def _recommend_from_session_model(
    model: Any, run_id: str, recent: list[str], cfg: FilterConfig, k: int, exclude_seen: bool
) -> RecentResult:
    """:func:`recommend_for_recent` for a session model (its ``recommend``; no vectors to filter)."""
    t0 = time.perf_counter()
    rows = model.rows_of(recent)
    known = [i for i, r in zip(recent, rows) if r >= 0]
    ignored = [i for i, r in zip(recent, rows) if r < 0]
    if not known:
        shown = ", ".join(recent[:5]) or "(empty list)"
        raise UnknownItemError(f"none of the recent items is known to run {run_id}: {shown}")
    ids, scores = model.recommend([known], k, exclude_seen=exclude_seen)
    keep = [j for j, i in enumerate(ids[0]) if i]
    defaults = FilterConfig()
    skipped = [
        name
        for name in type(cfg).model_fields
        if name != "exclude_seed" and getattr(cfg, name) != getattr(defaults, name)
    ]
    return RecentResult(
        item_ids=[str(ids[0][j]) for j in keep],
        scores=[float(scores[0][j]) for j in keep],
        rows=[int(r) for r in model.rows_of([str(ids[0][j]) for j in keep])],
        removed_by_rule={},
        plan="session_knn",
        n_eligible=len(model.item_ids_),
        elapsed_ms=(time.perf_counter() - t0) * 1e3,
        skipped_rules=skipped,
        seed_item_id=known[-1],
        method="session_knn",
        recent_item_ids=known,
        ignored_item_ids=ignored,
    )
