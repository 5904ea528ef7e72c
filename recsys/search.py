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
    eligible rows. Cheap for small eligible sets (1% of 100k = 1k rows costs a
    fraction of one HNSW query).
``hnsw_overfetch``
    Unfiltered HNSW for ``k / selectivity * safety`` candidates, post-filtered
    with the mask; retried with a 4x larger fetch when short, then
    ``+exact_fallback``. Wins at high selectivity.
``hnsw_filter``
    hnswlib's own filter callback. Never chosen automatically: it calls Python
    once per visited node (16x-150x slower than unfiltered at 10%-1%
    selectivity); available with ``plan="hnsw_filter"`` for comparison.

Guarantees: k results whenever k eligible items exist, all of them when fewer
(never hnswlib's "contiguous 2D array" error), with ``min_similarity`` and
``max_per_brand`` applied on the ranked list. Scores are always recomputed
exactly, so they do not depend on the plan.

:func:`similar_items` is the one code path that the Explore page and the REST
API call; :func:`get_searcher` caches one searcher per run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import CATEGORY_SEP
from recsys.errors import IndexFileError, RunNotFoundError, UnknownItemError
from recsys.filters import FilterConfig, _norm_brand
from recsys.index import HnswIndex

logger = logging.getLogger(__name__)

PLANS = ("auto", "exact", "hnsw_overfetch", "hnsw_filter")

#: Rough per-query costs in microseconds, measured on a 2-core machine at d=64
#: (hnswlib 0.8, OpenBLAS); only their ratios matter.
_COST_HNSW_PER_EF = 1.35  # per unit of max(ef, fetch)
_COST_HNSW_BASE = 25.0
_COST_DENSE_PER_ROW = 0.004  # dot product, per row at d=64 (scales with d)
_COST_SELECT_PER_ROW = 0.005  # masking + argpartition, per row
_COST_SCAN_PER_ROW = 0.001  # flatnonzero over the domain
_COST_GATHER_PER_ROW = 0.012  # copying one row at d=64 (scales with d)
_SAFETY = 1.5


_BLAS_THREAD_MIN = 9216  # OpenBLAS runs gemv single-threaded below this many elements anyway
_blas_controller: Any = None
_blas_lock = threading.Lock()


def _matvec(mat: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``mat @ q`` with single-threaded BLAS.

    A per-query matrix-vector product is far too small to gain from BLAS
    threads, and on a busy machine waking them costs milliseconds (measured:
    p50 25 ms instead of 0.6 ms for 20k x 64 on 2 shared cores).
    """
    global _blas_controller
    if mat.size < _BLAS_THREAD_MIN:
        return mat @ q
    if _blas_controller is None:
        with _blas_lock:
            if _blas_controller is None:
                try:
                    from threadpoolctl import ThreadpoolController

                    _blas_controller = ThreadpoolController()
                except ImportError:  # optional: without it BLAS keeps its threads
                    _blas_controller = False
    if not _blas_controller:
        return mat @ q
    with _blas_controller.limit(limits=1, user_api="blas"):
        return mat @ q


class RunNotSearchableError(RunNotFoundError):
    """The run has no item vectors (a baseline), so it cannot be searched."""


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
        self.sorted_prices = np.sort(price[np.isfinite(price)])

        adult = col("adult", False)
        self.adult = adult.fillna(False).astype(bool).to_numpy()[self.perm]
        self.n_adult = int(self.adult.sum())

        title = _norm_title(col("title", "")).to_numpy(dtype=object)[self.perm]
        self.title, self.title_names = _codes(title)
        self.title_counts = np.bincount(self.title, minlength=len(self.title_names))
        self.empty_title = (
            int(np.flatnonzero(self.title_names == "")[0]) if (self.title_names == "").any() else -1
        )
        self.pos_of_id: dict[str, int] = {str(x): i for i, x in enumerate(self.item_ids.tolist())}
        self._catalog = aligned

    def position(self, item_id: str) -> int:
        """Position of an item id, or -1."""
        return self.pos_of_id.get(str(item_id), -1)

    def count_price_between(self, lo: float, hi: float) -> int:
        """Items with a known price in [lo, hi] (O(log n))."""
        sp = self.sorted_prices
        return int(sp.searchsorted(hi, side="right") - sp.searchsorted(lo, side="left"))

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
@dataclass
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
    """

    config: FilterConfig
    base_mask: np.ndarray
    base_removed: dict[str, int]
    banned: dict[int, np.ndarray]
    n_base: int


@dataclass
class SearchResult:
    """Neighbours of one seed (or query vector) after filtering.

    Attributes
    ----------
    item_ids : list of str
        Best first.
    scores : list of float
        Cosine similarity (or dot product for an ``ip`` run), exact.
    rows : list of int
        Vector rows of the results (``model.item_ids_[rows] == item_ids``).
    removed_by_rule : dict
        rule -> items it rejects on its own over the whole catalogue (rules
        overlap, so these do not add up). ``min_similarity`` and
        ``max_per_brand`` count the ranked candidates they dropped while the
        list was filled.
    plan : str
        How the planner answered (``exact_range``, ``exact_subset``,
        ``hnsw_overfetch``, ``hnsw_overfetch+exact_fallback``, ``hnsw_filter``,
        ``empty``).
    n_eligible : int
        Items passing every mask rule (before the ranked-list rules).
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
        cache_size: int = 32,
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
        if space == "cosine":
            norms = np.linalg.norm(vec, axis=1, keepdims=True)
            vec = vec / np.maximum(norms, np.float32(1e-12))
        #: search vectors in position order (unit rows in the cosine space)
        self.unit = np.ascontiguousarray(vec[self.view.perm], dtype=np.float32)
        self._vectors_rows = vectors
        self._index = index
        self._ef = ef
        self.exact_max_rows = exact_max_rows
        self._lock = threading.Lock()
        self._compiled: OrderedDict[str, CompiledFilter] = OrderedDict()
        self._cache_size = cache_size
        self._last: tuple[FilterConfig, CompiledFilter] | None = None
        self._dscale = self.dim / 64.0

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
            codes = [v.brand_code[b] for b in map(_norm_brand, cfg.brands_allow) if b in v.brand_code]
            table = np.zeros(len(v.brand_keys), dtype=bool)
            table[codes] = True
            ok = table[v.brand]
            removed["brands_allow"] = int(self.n - np.count_nonzero(ok))
            mask &= ok
        if cfg.brands_deny:
            codes = [v.brand_code[b] for b in map(_norm_brand, cfg.brands_deny) if b in v.brand_code]
            table = np.zeros(len(v.brand_keys), dtype=bool)
            table[codes] = True
            bad = table[v.brand]
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
        compiled = CompiledFilter(cfg, mask, removed, banned, int(np.count_nonzero(mask)))
        with self._lock:
            self._compiled[key] = compiled
            while len(self._compiled) > self._cache_size:
                self._compiled.popitem(last=False)
        self._last = (cfg, compiled)
        return compiled

    # -- per seed ------------------------------------------------------------------
    def _seed_mask(
        self, cf: CompiledFilter, pos: int | None
    ) -> tuple[int, int, np.ndarray, dict[str, int], list[str]]:
        """Domain [s, e), the eligibility mask over it, removed counts and skipped rules."""
        cfg, v = cf.config, self.view
        removed = dict(cf.base_removed)
        skipped: list[str] = []
        s, e = 0, self.n
        if cfg.same_category:
            sl = v.category_slice(pos, cfg.category_level) if pos is not None else None
            if sl is None:
                skipped.append("same_category")
            else:
                s, e = sl
                removed["same_category"] = self.n - (e - s)
        mask = cf.base_mask[s:e].copy()
        if cfg.same_gender:
            g = v.gender[pos] if pos is not None else -1
            if pos is None or v.gender_names[g] == "":
                skipped.append("same_gender")
            else:
                mask &= v.gender[s:e] == g
                removed["same_gender"] = int(self.n - v.gender_counts[g])
        if cfg.price_ratio_min is not None or cfg.price_ratio_max is not None:
            sp = v.price[pos] if pos is not None else np.nan
            if not (np.isfinite(sp) and sp > 0):
                skipped.append("price_band")
            else:
                lo = cfg.price_ratio_min * sp if cfg.price_ratio_min is not None else -np.inf
                hi = cfg.price_ratio_max * sp if cfg.price_ratio_max is not None else np.inf
                p = v.price[s:e]
                mask &= p >= lo  # NaN compares False: missing prices drop out, without a warning
                mask &= p <= hi
                removed["price_band"] = self.n - v.count_price_between(lo, hi)
        if cfg.banned_brand_pairs:
            if pos is None:
                skipped.append("banned_brand_pairs")
            else:
                table = cf.banned.get(int(v.brand[pos]))
                if table is not None:
                    mask &= ~table[v.brand[s:e]]
                    removed["banned_brand_pairs"] = int(v.brand_counts[table].sum())
                else:
                    removed["banned_brand_pairs"] = 0
        if (pos is None or not v.adult[pos]) and not cfg.exclude_adult and v.n_adult:
            mask &= ~v.adult[s:e]
            removed["adult_next_to_non_adult"] = v.n_adult
        if cfg.exclude_same_title and pos is not None:
            t = v.title[pos]
            if t == v.empty_title:
                skipped.append("exclude_same_title")
            else:
                mask &= v.title[s:e] != t
                removed["exclude_same_title"] = int(v.title_counts[t] - 1)
        if cfg.exclude_seed and pos is not None:
            if s <= pos < e:
                mask[pos - s] = False
            removed["exclude_seed"] = 1
        return s, e, mask, removed, skipped

    # -- ranking -------------------------------------------------------------------
    def _rank_rules(
        self, pos: np.ndarray, scores: np.ndarray, k: int, cfg: FilterConfig, exhausted: bool
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int], bool]:
        """Apply max_per_brand and min_similarity to a ranked eligible list.

        Returns the kept positions/scores (at most k), drop counts, and whether
        the answer is final (False: more candidates are needed).
        """
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
        self, q: np.ndarray, s: int, e: int, mask: np.ndarray, n_elig: int, k: int, cfg: FilterConfig
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int], str]:
        dense_cost = (e - s) * (_COST_DENSE_PER_ROW * self._dscale + _COST_SELECT_PER_ROW)
        gather_cost = (e - s) * _COST_SCAN_PER_ROW + n_elig * (
            (_COST_GATHER_PER_ROW + _COST_DENSE_PER_ROW) * self._dscale + _COST_SELECT_PER_ROW
        )
        if dense_cost <= gather_cost:
            cand = None
            sc = _matvec(self.unit[s:e], q)
            sc[~mask] = -np.inf
            plan = "exact_range"
        else:
            cand = np.flatnonzero(mask)
            sc = _matvec(self.unit[cand + s], q)
            plan = "exact_subset"
        m = len(sc)
        need = k * (3 if cfg.max_per_brand else 1)
        while True:
            f = min(need, n_elig)
            if f < m:
                top = np.argpartition(-sc, f - 1)[:f]
            else:
                top = np.arange(m)
            top_s = sc[top]
            order = np.lexsort((top, -top_s))
            top, top_s = top[order], top_s[order]
            valid = np.isfinite(top_s) if cand is None else slice(None)
            top, top_s = top[valid], top_s[valid]
            pos = (top + s) if cand is None else (cand[top] + s)
            kp, ks, dropped, final = self._rank_rules(pos, top_s, k, cfg, exhausted=f >= n_elig)
            if final:
                return kp, ks, dropped, plan
            need *= 4

    def _hnsw_cost(self, fetch: int) -> float:
        ef = self._index.ef if self._index is not None else self._ef
        return _COST_HNSW_BASE + _COST_HNSW_PER_EF * max(ef, fetch) * (0.5 + 0.5 * self._dscale)

    def _search_one(
        self, q: np.ndarray, pos: int | None, cfg: FilterConfig, k: int, plan: str = "auto"
    ) -> SearchResult:
        t0 = time.perf_counter()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {PLANS}, got {plan!r}")
        cf = self.compile(cfg)
        s, e, mask, removed, skipped = self._seed_mask(cf, pos)
        n_elig = int(np.count_nonzero(mask))
        seed_id = str(self.view.item_ids[pos]) if pos is not None else None
        if n_elig == 0:
            return SearchResult(
                [], [], [], removed, "empty", 0, (time.perf_counter() - t0) * 1e3, skipped, seed_id
            )
        need = k * (3 if cfg.max_per_brand else 1)
        sel = n_elig / self.n
        fetch = min(self.n, max(need + 10, math.ceil(need / sel * _SAFETY)))
        choice = plan
        if plan == "auto":
            exact_cost = min(
                (e - s) * (_COST_DENSE_PER_ROW * self._dscale + _COST_SELECT_PER_ROW),
                (e - s) * _COST_SCAN_PER_ROW
                + n_elig
                * ((_COST_GATHER_PER_ROW + _COST_DENSE_PER_ROW) * self._dscale + _COST_SELECT_PER_ROW),
            )
            small = self.exact_max_rows is not None and n_elig <= self.exact_max_rows
            choice = "exact" if small or exact_cost <= self._hnsw_cost(fetch) else "hnsw_overfetch"
        if choice == "exact":
            kp, ks, dropped, used = self._exact(q, s, e, mask, n_elig, k, cfg)
        elif choice == "hnsw_filter":
            allowed = np.zeros(self.n, dtype=bool)
            allowed[self.view.perm[s:e][mask]] = True
            rows, _ = self.index.knn(q, min(need, n_elig), filter_rows=allowed)
            cand = self.view.pos_of_row[rows[0][rows[0] >= 0]]
            kp, ks, dropped, final = self._rerank(q, cand, k, cfg, exhausted=len(cand) >= n_elig)
            used = "hnsw_filter"
            if not final:
                kp, ks, dropped, _ = self._exact(q, s, e, mask, n_elig, k, cfg)
                used = "hnsw_filter+exact_fallback"
        else:
            used = "hnsw_overfetch"
            index = self.index
            while True:
                rows, _ = index.knn(q, fetch)
                r = rows[0]
                r = r[r >= 0]
                p = self.view.pos_of_row[r]
                inside = (p >= s) & (p < e)
                p = p[inside]
                p = p[mask[p - s]]
                fetched_all = len(r) >= self.n
                kp, ks, dropped, final = self._rerank(q, p, k, cfg, exhausted=fetched_all or len(p) >= n_elig)
                if final:
                    break
                fetch *= 4
                if fetch >= self.n or (
                    plan == "auto" and self._hnsw_cost(fetch) > 4 * self._hnsw_cost(self._ef)
                ):
                    kp, ks, dropped, _ = self._exact(q, s, e, mask, n_elig, k, cfg)
                    used = "hnsw_overfetch+exact_fallback"
                    break
        removed.update(dropped)
        rows_out = self.view.perm[kp]
        return SearchResult(
            item_ids=self.view.item_ids[kp].tolist(),
            scores=ks.astype(np.float64).tolist(),
            rows=rows_out.tolist(),
            removed_by_rule=removed,
            plan=used,
            n_eligible=n_elig,
            elapsed_ms=(time.perf_counter() - t0) * 1e3,
            skipped_rules=skipped,
            seed_item_id=seed_id,
        )

    def _rerank(
        self, q: np.ndarray, cand: np.ndarray, k: int, cfg: FilterConfig, exhausted: bool
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int], bool]:
        """Exact scores for HNSW candidates, sorted, then the ranked-list rules."""
        sc = _matvec(self.unit[cand], q) if len(cand) else np.zeros(0, dtype=np.float32)
        order = np.lexsort((cand, -sc))
        return self._rank_rules(cand[order], sc[order], k, cfg, exhausted)

    # -- public --------------------------------------------------------------------
    def _query_for(self, item_id: str) -> tuple[int, np.ndarray]:
        pos = self.view.position(item_id)
        if pos < 0:
            raise UnknownItemError(f"item '{item_id}' has no vector in this run: pick another seed item")
        return pos, self.unit[pos]

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
        cfg = FilterConfig.from_dict(config)
        pos, q = self._query_for(seed_item_id)
        return self._search_one(q, pos, cfg, k, plan)

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
        return self._search_one(np.ascontiguousarray(q, dtype=np.float32), pos, cfg, k, plan)

    def search_many(
        self,
        seed_item_ids: Iterable[str],
        config: FilterConfig | dict[str, Any] | None = None,
        k: int = 10,
        skip_unknown: bool = False,
    ) -> list[SearchResult | None]:
        """:meth:`search` for several seeds (``None`` for unknown ones with ``skip_unknown``)."""
        cfg = FilterConfig.from_dict(config)
        self.compile(cfg)
        out: list[SearchResult | None] = []
        for item in seed_item_ids:
            try:
                out.append(self.search(item, cfg, k))
            except UnknownItemError:
                if not skip_unknown:
                    raise
                out.append(None)
        return out

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
_searchers: dict[tuple[str, str, float], FilteredSearcher] = {}
_searchers_lock = threading.Lock()
_build_locks: dict[tuple[str, str, float], threading.Lock] = {}


def get_searcher(registry: Any, run_id: str) -> FilteredSearcher:
    """The searcher of a run, cached by run id (and run.json's mtime); thread-safe.

    Loads the model's vectors, the run's ``index.bin`` when present and valid
    (an unusable one is logged and rebuilt in memory), and the catalogue of
    the run's dataset.

    Raises
    ------
    RunNotFoundError
        Unknown run.
    RunNotSearchableError
        The run has no item vectors (a baseline model).
    """
    from recsys.data import load_dataset
    from recsys.index import vectors_checksum

    path = registry.run_dir(run_id)
    key = (str(registry.root), run_id, (path / "run.json").stat().st_mtime)
    with _searchers_lock:
        hit = _searchers.get(key)
        if hit is not None:
            return hit
        lock = _build_locks.setdefault(key, threading.Lock())
    with lock:
        with _searchers_lock:
            hit = _searchers.get(key)
            if hit is not None:
                return hit
        meta = registry.get(run_id)
        model = registry.load_model(run_id)
        vectors = getattr(model, "vectors_", None)
        if vectors is None:
            raise RunNotSearchableError(
                f"run '{run_id}' ({meta.get('family')}) has no item vectors; pick an embedding run"
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        catalog = load_dataset(meta["dataset"]["name"], registry.root).catalog
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
        searcher = FilteredSearcher(vectors, model.item_ids_, catalog, index=index)
        with _searchers_lock:
            for old in [k for k in _searchers if k[:2] == key[:2]]:
                del _searchers[old]  # a newer run.json replaces the old searcher
            _searchers[key] = searcher
            _build_locks.pop(key, None)
        return searcher


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
