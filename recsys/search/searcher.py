"""FilteredSearcher: the executor of filtered similar-item search (the package's overview is in
:mod:`recsys.search`)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys.catalog import CatalogView
from recsys.errors import (  # noqa: F401  (RunNotFoundError, RunNotSearchableError: re-exported)
    IndexFileError,
    RunNotFoundError,
    RunNotSearchableError,
    UnknownItemError,
)
from recsys.filters import FilterConfig, prepare_defaults
from recsys.index import HnswIndex
from recsys.search.adjusted import AdjustMixin
from recsys.search.background import FG as _FG
from recsys.search.background import Background
from recsys.search.batch import BatchMixin, StaticSet
from recsys.search.builds import BuildsMixin
from recsys.search.cold import ColdMixin, Postings
from recsys.search.compiled import CompiledFilter, CompileMixin, _SeedRules
from recsys.search.fast import FastMixin, FastPlan
from recsys.search.kernels import _matvec
from recsys.search.overfetch import OverfetchMixin
from recsys.search.placement import PlacementMixin
from recsys.search.planner import (
    _BACKGROUND_MIN_ITEMS,
    _FETCH_FACTOR,
    _FETCH_MIN,
    _SAFETY,
    _SUB_GAIN,
    _SUB_MIN_ROWS,
    _TABLE_AFTER,
    PLANS,
    PlannerMixin,
)
from recsys.search.query import TABLE_COUNTS, DomainMask, KeyRange, Query
from recsys.search.ranked import fetch_need
from recsys.search.result import SearchResult
from recsys.search.rules import not_in_sorted
from recsys.search.static import StaticMixin
from recsys.search.ties import TiesMixin, _tie_groups
from recsys.topk import top_prefix

logger = logging.getLogger(__name__)

#: ``search(config=None)``: one default config (frozen), recognised by identity
_DEFAULT_CONFIG = FilterConfig()
_INF = math.inf
#: the plans after which a config may keep a shortcut (FastMixin._arm_fast: the exact ones only
#: for a category filter, whose small blocks it answers exactly: FastMixin._fast_exact_block)
_ARM_PLANS = ("hnsw_overfetch", "hnsw_subindex", "exact_range", "exact_subset")
_now = time.perf_counter
#: whether :func:`_prepare_process` has run in this process
_PREPARED: list[bool] = []


def _prepare_process() -> None:
    """Once per process, at the first searcher's creation: the state that the process's first
    query built otherwise (issue 18, s44-f: a first query's calls against a second searcher's
    first query in the same process): the config class's constants (:func:`prepare_defaults`,
    a config built and one hashed) and the default config's search key and hash, 100 to 350 us
    of CPU on that query with cold caches. A searcher's own lazily built state was not found
    on its first query (the same calls as a used searcher's)."""
    if _PREPARED:
        return
    prepare_defaults(FilterConfig)
    _DEFAULT_CONFIG.search_key()
    _DEFAULT_CONFIG.config_hash()
    _PREPARED.append(True)


class FilteredSearcher(
    CompileMixin,
    PlannerMixin,
    OverfetchMixin,
    StaticMixin,
    TiesMixin,
    BatchMixin,
    PlacementMixin,
    AdjustMixin,
    FastMixin,
    ColdMixin,
    BuildsMixin,
):
    """Filtered k-NN over one run's vectors and catalogue.

    Parameters
    ----------
    vectors : numpy.ndarray, shape (n, d)
        The run's item vectors (row i is ``item_ids[i]``).
    item_ids : sequence of str
    catalog_df : pandas.DataFrame or None
        The dataset's catalogue (None only with ``view``).
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
    view : CatalogView, optional
        The catalogue view of ``item_ids`` over ``catalog_df`` when it is already loaded
        (:func:`recsys.catalog.run_catalog_view`), shared instead of built again.
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
        catalog_df: pd.DataFrame | None,
        index: HnswIndex | None = None,
        space: str = "cosine",
        ef: int = 64,
        exact_max_rows: int | None = None,
        cache_size: int | None = None,
        query_vectors: np.ndarray | None = None,
        background_min_items: int | None = None,
        view: CatalogView | None = None,
    ) -> None:
        _prepare_process()  # the process's first query finds it done
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
        if view is not None and not np.array_equal(view.item_id_by_row, np.asarray(item_ids, dtype=str)):
            raise ValueError("view: a CatalogView of other item ids than the vectors' rows")
        self.view = view if view is not None else CatalogView(item_ids, catalog_df)
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
        #: a seed is its own nearest item (cosine, looked up by its own vector): labels without it
        #: mean a beam search that missed its neighbourhood (beams.py: ``seed_lost``)
        self._self_first = space == "cosine" and query_vectors is None
        self._vectors_rows = vectors
        self._index = index
        self._ef = ef
        self.exact_max_rows = exact_max_rows
        self._lock = threading.Lock()
        #: the base mask of every config without a mask rule, shared (read-only): compiling one
        #: is O(1) on a request (a new mask and its count were 0.2 ms at 1M items)
        self._all_items = np.ones(self.n, dtype=bool)
        self._all_items.setflags(write=False)
        self._compiled: OrderedDict[str, CompiledFilter] = OrderedDict()
        #: a config's search key -> its content hash, for the configs compiled (or looked up) so far
        self._key_hash: dict[Any, str] = {}
        # A compiled filter holds ~60 bytes per item (mask, cumulative counts, seed
        # table): keep the cache near 400 MB whatever the catalogue size.
        self._cache_size = cache_size or max(4, min(32, 400_000_000 // max(1, 64 * self.n)))
        self._last: tuple[FilterConfig, CompiledFilter] | None = None
        #: the shortcuts of the configs whose automatic plan over-fetched (:mod:`recsys.search.fast`),
        #: by ``id(config)`` (each holds its config object)
        self._fast: dict[int, FastPlan] = {}
        #: (base-mask digest, block start, end, adult excluded) -> a category block's eligible set
        #: with its graph, shared by the compiled filters of one mask (:meth:`_search_block`)
        self._shared_blocks: OrderedDict[tuple, StaticSet] = OrderedDict()
        self._perm_mv: memoryview | None = None  # the shortcuts' flat view of ``view.perm``
        #: (compiled filter, seed position, fetch, index, labels, distances) of a shortcut's over-fetch that
        #: fell short: the general path that answers next starts from these labels (no second
        #: beam search for the same query); cleared once it has answered
        self._short_fetch: tuple | None = None
        #: (compiled filter, seed position, its resolved rules) of the last general-path query
        self._last_rules: tuple[CompiledFilter, int | None, _SeedRules] | None = None
        self._dscale = self.dim / 64.0
        #: from this many items on, key indexes, seed tables and eligible blocks are built by a
        #: background thread (queries answer from the general path meanwhile); below it they
        #: cost less than a millisecond and are built inline
        self.background_min_items = (
            _BACKGROUND_MIN_ITEMS if background_min_items is None else background_min_items
        )
        self._bg = Background()
        #: (ef, beam per depth of :data:`recsys.search.beams.DEPTHS`) of the main index, measured
        #: in the background on the first filled over-fetch (:meth:`_learn_depth`); the ef asked for
        self._beams: tuple[int, tuple[int, ...]] | None = None
        self._beams_asked = -1
        #: inverted lists per attribute for the first queries of filters not compiled yet
        #: (:mod:`recsys.search.cold`; built in the background from ``background_min_items`` on),
        #: and those filters' rules over them, by config hash
        self._cold_postings: Postings | None = None
        self._cold_specs: dict[Any, Any] = {}
        if not self._inline():  # with the searcher: a filter's first query never waits for them
            self._build_postings()
            self._keep_warm()  # its memory read every KEEP_WARM_S by the idle worker
            self._bg.start()
            if index is not None:  # the over-fetch's beams, before any filter needs them
                self._request_beams(index)
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
        self._fast = {}  # they hold the old index's knn_query

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
        krows = self._key_rows(r.kv) if r.kv is not None and cf.lean else None
        if krows is not None:  # the key range's rows are one slice of the key-ordered copy: no gather
            gather_cost = self._exact_costs(n_elig, n_elig)[0]
        if dense_cost <= gather_cost:
            cand = None
            sc = _matvec(self.unit[s:e], q)
            # the key range holds every row of the domain (a category alone): no mask to build
            whole = mask is None and (r.kv is None or r.key_b - r.key_a == e - s)
            if not whole:
                sc[~self._domain_mask(cf, r, mask)] = -np.inf
            else:
                if r.kv is None and not cf.base_all:
                    sc[~cf.base_mask[s:e]] = -np.inf
                if s <= r.seed < e:
                    sc[r.seed - s] = -np.inf
                if r.banned is not None:  # eligible otherwise, so inside the domain
                    sc[r.banned - s] = -np.inf
            plan = "exact_range"
        elif r.kv is not None:  # the eligible positions are one slice of the key order: no scan
            cand = r.kv.order[r.key_a : r.key_b]
            if krows is not None:
                sc = _matvec(krows[r.key_a : r.key_b], q)
            else:
                sc = _matvec(np.take(self.unit, cand, axis=0), q)  # np.take: 2-3x faster than unit[cand]
            if r.seed >= 0:
                sc[cand == r.seed] = -np.inf
            if r.banned is not None:
                sc[~not_in_sorted(cand, r.banned)] = -np.inf
            plan = "exact_subset"
        else:
            cand = np.flatnonzero(self._domain_mask(cf, r, mask))
            cand += s
            sc = _matvec(np.take(self.unit, cand, axis=0), q)
            plan = "exact_subset"
        kp, ks, dropped = self._select(sc, cand, s, n_elig, k, cfg, q, cf.adjust)
        kp, ks = self._canon(kp, q, cf.adjust)
        return kp, ks, dropped, plan

    def _canon(
        self, kp: np.ndarray, q: np.ndarray, adjust: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The final list of an exact search rescored one way, whatever computed it, and re-sorted.

        BLAS rounds a dot product differently in a matrix-vector product and in a
        matrix-matrix one (single queries and batches): an elementwise product summed along
        each row gives the same float32 score for the same (item, query) wherever it is
        computed, so a batch (precompute) and a live query report identical scores.
        """
        if len(kp) == 0:
            return kp, np.zeros(0, dtype=np.float32)
        # == (np.take(unit, kp, axis=0) * q).sum(axis=1, dtype=float32), without the wrappers
        ks = np.add.reduce(self.unit.take(kp, axis=0) * q, axis=1, dtype=np.float32)
        if adjust is not None:  # boost/bury: the adjusted score is the list's score
            ks = ks * adjust[0][kp] + adjust[1][kp]
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
        adjust: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """Top k of exact scores, then the ranked-list rules.

        ``sc`` scores the positions ``cand`` (ineligible ones at most the
        seed, at -inf) or, when ``cand`` is None, the domain ``s:s+len(sc)``
        with ineligible rows at -inf.
        """
        m = len(sc)
        if self._tie_of is not None and q is not None:
            self._snap_ties(sc, np.arange(s, s + m) if cand is None else cand, q)
        if adjust is not None:  # boost/bury before the cut to k (-inf stays -inf: multipliers > 0)
            p = slice(s, s + m) if cand is None else cand  # a slice: no gather over the domain
            sc *= adjust[0][p]  # in place: ``sc`` is this search's own array (as for _snap_ties)
            sc += adjust[1][p]
        need = k * (3 if cfg.max_per_brand else 1)
        while True:
            f = min(need, n_elig)
            pre = top_prefix(sc, f) if f < m else None  # every score from a bound of the f-th on
            if pre is not None:
                top = pre
            elif f < m:
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

    def _search_keyed(self, qq: Query, r: _SeedRules) -> SearchResult:
        """The automatic plan when every mask rule goes through a key index: the serving hot path.

        The same rules, counts, plan choice, learning and fallbacks as the
        general path (:meth:`_search_one`), in fewer steps: the eligible count
        and the eligible positions come from one binary search in the key
        index (also without gender, price band or adult rules: the key then
        only holds the category block), HNSW labels are tested with one key
        lookup by row, and only the eligible candidates are rescored.
        """
        kv = self._key_index(qq.cf, r.level, r.gender >= 0, r.no_adult)
        head = (r.block * kv.n_gender + max(r.gender, 0)) * kv.n_rank
        if r.rank_lo >= 0:
            lo, hi = head + r.rank_lo, head + r.rank_hi
        else:
            lo, hi = head, head + kv.n_rank
        srt = kv.sorted  # search with its own dtype: a mixed-type searchsorted copies the array
        a, b = srt.searchsorted(np.array((lo, hi), dtype=srt.dtype)).tolist()
        r.kv, r.lo_key, r.hi_key, r.key_a, r.key_b = kv, lo, hi, a, b
        seed_in = r.seed >= 0 and lo <= int(kv.by_pos[r.seed]) < hi
        return self._keyed_plan(qq, r, b - a - seed_in - self._eligible_banned(qq.cf, r), seed_in)

    def _search_table(self, qq: Query, table: np.ndarray) -> SearchResult:
        """:meth:`_search_keyed` with the seed's rules read from the filter's seed table (one row)."""
        pos, cf = qq.pos, qq.cf
        row = table[pos].tolist()
        var, lo, hi, a, b, n_elig, s, e, seed_in = row[:TABLE_COUNTS]
        counts = row[TABLE_COUNTS:]
        qq.removed, qq.skipped = self._table_counts(cf, counts)
        drop = cf.table_drop.get(pos) if cf.table_drop else None  # the seed's banned items in range
        if (cf.cat_only or cf.adjust is not None) and cf.cat_col >= 0 and counts[cf.cat_col] >= 0:
            no_adult = cf.adult_col >= 0 and counts[cf.adult_col] >= 0
            if cf.cat_only:
                got = self._search_block(qq, s, e, no_adult, drop[1] if drop else None)
            else:  # boost/bury: the block's graph and the classes that could climb (adjusted.py)
                got = self._search_block_adjusted(qq, s, e, no_adult, drop, n_elig)
            if got is not None:
                return got
        kv = cf.table_kvs[var]
        # boost/bury: the bounded over-fetch of adjusted.py (with identical vectors, exact search)
        adjusted = cf.adjust is not None and self._adjusted_overfetch_ok("auto")
        plan = "exact" if cf.adjust is not None and not adjusted else None
        if adjusted and n_elig and b - a == e - s and cf.config.max_per_brand is None:
            if cf.config.min_similarity is None and self._adjusted_prefers_exact(e - s):
                ex = pos if cf.config.exclude_seed else -1  # the key range is the whole block
                kp, ks = self._exact_block_adjusted(qq, s, e, ex, drop[0] if drop else None, n_elig)
                return self._result(qq, kp, ks, None, "exact_range", n_elig)
        if n_elig and (cf.lean or adjusted):  # answered here without per-seed rules when it fills k
            qq.span = (s, e)
            seed_row = int(self.view.perm[pos]) if seed_in else -1
            cand = KeyRange(kv.by_row, lo, hi, seed_row, self.view.pos_of_row, drop[1] if drop else None)
            # a lean key range inside a category block: a short over-fetch counts as a miss of the
            # block, and once the block has a graph it answers instead of a deeper fetch (static.py)
            key = (s, e, cf.adult_col >= 0 and counts[cf.adult_col] >= 0)
            block = cf.lean and cf.cat_col >= 0 and counts[cf.cat_col] >= 0
            choice, ss = None, None
            if block and not cf.cat_only:  # a key range inside the block (a price band)
                choice, ss = self._in_block_choice(cf, key, n_elig, qq.k + 1, _FETCH_MIN, kv)
                if choice == "block":
                    got = self._block_keyed(qq, ss, cand, n_elig)
                    if got is not None:
                        return got
                    choice = "exact"
                elif choice is None:
                    ss = self._block_graph(cf, key)
            if choice == "exact":
                got = "exact"
            else:
                got = self._try_overfetch(qq, cand, n_elig, e - s, refetch=ss is None)
            if block and (qq.short or isinstance(got, str)):
                if key not in cf.blocks:
                    self._block_use(cf, key, miss=True)
                elif ss is not None and got != "exact":
                    got = self._block_keyed(qq, ss, cand, n_elig) or got
            if not isinstance(got, str):
                return got
            plan = got
        return self._table_plan(qq, row, drop[0] if drop is not None else None, plan)

    def _table_plan(
        self, qq: Query, row: list[int], banned: np.ndarray | None, plan: str | None
    ) -> SearchResult:
        """:meth:`_keyed_plan` for the seed's seed-table ``row`` (its key range and block):
        how :meth:`_search_table` ends, and the shortcut's exact search of a small block
        (``FastMixin._fast_exact_block``); ``banned``: the seed's do-not-associate positions."""
        var, lo, hi, a, b, n_elig, s, e, seed_in = row[:TABLE_COUNTS]
        n = self.n
        r = _SeedRules(n, qq.removed)
        r.skipped = qq.skipped
        if qq.cf.config.exclude_seed:
            r.seed = qq.pos
        r.s, r.e, r.full = s, e, s == 0 and e == n
        r.kv, r.lo_key, r.hi_key, r.key_a, r.key_b = qq.cf.table_kvs[var], lo, hi, a, b
        if banned is not None:
            r.banned = banned
        return self._keyed_plan(qq, r, n_elig, bool(seed_in), plan)

    def _keyed_plan(
        self, qq: Query, r: _SeedRules, n_elig: int, seed_in: bool, plan: str | None = None
    ) -> SearchResult:
        """Plan and answer one query whose eligible set is the key range of ``r`` (the hot path).

        ``plan``: what :meth:`_try_overfetch` already decided for this query ("exact" or
        "hnsw_overfetch+exact_fallback"); only the exact search is left to do.
        """
        if n_elig == 0:
            return self._empty(qq)
        if plan is None:
            qq.span = (r.s, r.e)
            seed_row = int(self.view.perm[r.seed]) if seed_in else -1
            drop = self.view.perm[r.banned].tolist() if r.banned is not None else None
            cand = KeyRange(r.kv.by_row, r.lo_key, r.hi_key, seed_row, self.view.pos_of_row, drop)
            got = self._try_overfetch(qq, cand, n_elig, r.e - r.s)
            if not isinstance(got, str):
                return got
            plan = got
        kp, ks, dropped, used = self._exact(qq.q, qq.cf, r, None, n_elig, qq.k)
        return self._result(qq, kp, ks, dropped, used if plan == "exact" else plan, n_elig)

    def _result(
        self,
        qq: Query,
        kp: np.ndarray,
        ks: np.ndarray,
        dropped: dict[str, int] | None,
        plan: str,
        n_eligible: int,
    ) -> SearchResult:
        """The SearchResult of positions ``kp`` with scores ``ks`` (every rescored path ends here)."""
        return self._listed(qq, self.view.perm[kp].tolist(), ks.tolist(), dropped, plan, n_eligible)

    def _listed(
        self,
        qq: Query,
        rows: list[int],
        scores: list[float],
        dropped: dict[str, int] | None,
        plan: str,
        n_eligible: int,
    ) -> SearchResult:
        """:meth:`_result` of vector rows and scores already in lists."""
        if dropped:
            qq.removed.update(dropped)
        ids = self.view.item_id_by_row
        ms = (time.perf_counter() - qq.t0) * 1e3
        return SearchResult(
            [ids[r] for r in rows], scores, rows, qq.removed, plan, n_eligible, ms, qq.skipped, qq.seed_id
        )

    def _empty(self, qq: Query) -> SearchResult:
        """The answer when no item is eligible."""
        ms = (time.perf_counter() - qq.t0) * 1e3
        return SearchResult([], [], [], qq.removed, "empty", 0, ms, qq.skipped, qq.seed_id)

    def _search_one(
        self, q: np.ndarray, pos: int | None, cfg: FilterConfig, k: int, plan: str = "auto", own: bool = True
    ) -> SearchResult:
        t0 = time.perf_counter()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {PLANS}, got {plan!r}")
        if plan == "auto" and pos is not None:  # a filter not compiled yet: no pass over the catalogue
            got = self._search_cold(q, pos, cfg, k, t0, own)
            if got is not None:
                return got
        cf = self.compile(cfg)
        auto = plan == "auto"
        if cf.adjust is not None and not self._adjusted_overfetch_ok(plan):
            plan = "exact"  # boosted/buried scores: HNSW's order is not the answer (adjusted.py)
        seed_id = self.view.item_id_list[pos] if pos is not None else None
        qq = Query(q, pos, cf, k, t0, seed_id, {}, [])
        qq.own = own and pos is not None
        first_use = False  # a boosted category config's uses before its table (block_pool.py)
        if plan == "auto" and cf.static and cf.lean:
            if cf.trivial:
                got = self._search_trivial(qq)
                if got is not None:
                    return got
            got = self._search_static(qq)
            if got is not None:
                return got
        elif auto and pos is not None and cf.table_ok is not False:  # exact search when adjusted
            table = cf.seed_table
            if table is None and cf.seeded_queries >= _TABLE_AFTER:
                table = self._request_table(cf)
            cf.seeded_queries += 1
            if table is not None:
                return self._search_table(qq, table)
            first_use = cf.adjust_cat_only
        r = self._seed_rules(cf, pos)
        if first_use:
            self._first_block_use(cf, r)
        self._last_rules = (cf, pos, r)  # for the pins of this seed (:meth:`_item_allowed`)
        qq.removed, qq.skipped = r.removed, r.skipped
        cold = plan == "auto" and cf.static and cf.lean  # its eligible set is being built
        if plan == "auto" and not r.extra and not cold:
            if self._keys_ready(cf, r):
                return self._search_keyed(qq, r)
            cold = True  # its key index is being built: answer with a mask over the domain
        mask, n_elig = self._eligibility(cf, r, cold)
        if n_elig == 0:
            return self._empty(qq)
        need = fetch_need(k, cfg)
        auto = plan == "auto"
        if auto:
            fetch = min(self.n, max(_FETCH_FACTOR * need, _FETCH_MIN))
            choice = self._choose(cf, r.e - r.s, r.kv is None, n_elig, fetch, need)
            if cf.adjust is not None and self._adjusted_prefers_exact(r.e - r.s):
                choice = "exact"
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
            cand = DomainMask(self, cf, r, mask)
            qq.span = (r.s, r.e)
            got = self._overfetch(qq, cand, fetch, n_elig, r.e - r.s, False, auto, scan=r.kv is None)
            if got is not None:
                return got
            kp, ks, dropped, _ = self._exact(q, cf, r, mask, n_elig, k)
            used = "hnsw_overfetch+exact_fallback"
        return self._result(qq, kp, ks, dropped, used, n_elig)

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
        if config is None:
            config = _DEFAULT_CONFIG  # frozen: one object, so the shortcut below recognises it
        fast = self._fast.get(id(config))
        if fast is not None and fast.plain and config is fast.cfg and plan == "auto":
            # the shortcut of a config whose answer nothing follows (no ties to complete, no pins
            # to place: most configs), first and alone: after its beam search every bytecode and
            # attribute read here is a cache miss (issue 18, the no-filter path)
            fg = _FG  # every searcher's background builds wait until no query runs (background.FG)
            fg.fg = _INF
            try:
                res = fast.answer(self, seed_item_id, k, fast)
            finally:
                fg.fg = _now()  # the builds it queued start once queries pause (Background)
            if res is not None:
                return res
            fast = None  # it could not answer (and said why): the general path, without a second try
        return self._search_general(seed_item_id, config, k, plan, fast)

    def _search_general(
        self,
        seed_item_id: str,
        config: FilterConfig | dict[str, Any],
        k: int,
        plan: str,
        fast: FastPlan | None,
    ) -> SearchResult:
        """:meth:`search` past the plain shortcut: a shortcut whose answer is completed (ties, pins),
        then the general path."""
        fg = _FG  # every searcher's background builds wait until no query runs (background.FG)
        fg.fg = math.inf
        try:
            if fast is not None and config is fast.cfg and plan == "auto":
                res = fast.answer(self, seed_item_id, k, fast)
                if res is not None:
                    if self._tie_of is not None and res.rows:
                        pos = self.view.pos_of_id[res.seed_item_id]
                        res = self._fix_ties(res, self.qunit[pos], pos, config, k)
                    if fast.cf.place_rules:  # pins: placed as below
                        pos = self.view.pos_of_id[res.seed_item_id]
                        res = self._place(res, self.qunit[pos], pos, config, k, fast.cf)
                    return res
            cfg = config if config.__class__ is FilterConfig else FilterConfig.from_dict(config)
            res = self._search_seed(seed_item_id, cfg, k, plan)
            if self._short_fetch is not None:  # read by the general path just now, when it matched
                self._short_fetch = None
            if plan == "auto" and res.plan in _ARM_PLANS:
                self._arm_fast(cfg, res)
            if self._tie_of is not None and res.rows:
                pos = self.view.pos_of_id[res.seed_item_id]
                res = self._fix_ties(res, self.qunit[pos], pos, cfg, k)
            last = self._last  # the config compiled last, usually: an identity check
            if last is not None and last[0] is cfg:
                cf = last[1]
            elif self._cold_specs.get(cfg.search_key()) is not None:
                cf = None  # answered from the inverted lists (cold.py): no pins, nothing to compile here
            else:
                cf = self.compile(cfg)
            if cf is not None and cf.place_rules:
                pos = self.view.pos_of_id[res.seed_item_id]
                res = self._place(res, self.qunit[pos], pos, cfg, k)
            return res
        finally:
            fg.fg = time.perf_counter()  # the builds it queued start once queries pause (Background)

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
            if last is not None and last[0] is cfg:
                cf = last[1]
                if cf.trivial or (cf.sets and cf.lean) or cf.seed_table is not None:
                    qq = Query(
                        self.qunit[pos], pos, cf, k, time.perf_counter(), self.view.item_id_list[pos], {}, []
                    )
                    if cf.trivial:
                        got = self._search_trivial(qq)
                        if got is not None:
                            return got
                    if cf.sets and cf.lean:  # static
                        got = self._search_static(qq)
                        if got is not None:
                            return got
                    if cf.seed_table is not None:
                        result = self._search_table(qq, cf.seed_table)
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
        res = self._search_one(q, pos, cfg, k, plan, own=False)  # the seed: its attributes only
        if self._tie_of is not None and res.rows:
            res = self._fix_ties(res, q, pos, cfg, k)
        return self._place(self._similarity_counts(res, q, pos, cfg), q, pos, cfg, k)

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
        return self._place(self._search_one(q, pos, cfg, k, "exact"), q, pos, cfg, k)
