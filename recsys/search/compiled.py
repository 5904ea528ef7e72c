"""Compiled filters: the seed-independent mask, per-seed rule resolution, key indexes, seed tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys.catalog import _NO_PRICE
from recsys.filters import FilterConfig
from recsys.search.batch import StaticSet
from recsys.search.kernels import _and
from recsys.search.planner import (
    _FETCH_MIN,
    FillStats,
)
from recsys.search.query import TABLE_COUNTS  # noqa: F401  (re-exported)
from recsys.search.rules import (
    ADJUST_RULES,
    MASK_RULES,
    OFF,
    PLACE_RULES,
    PREPARED_RULES,
    SEED_RULES,
    SKIPPED,
    Rule,
    not_in_sorted,
    placed_seeds,
    varying_seed_rules,
)


def _gender_slot(r: _SeedRules, g: Any) -> None:
    r.gender = int(g)


def _band_slot(r: _SeedRules, ranks: Any) -> None:
    r.rank_lo, r.rank_hi = int(ranks[0]), int(ranks[1])


def _adult_slot(r: _SeedRules, _param: Any) -> None:
    r.no_adult = True


#: how a rule of channel "key" enters the key index (:class:`_KeyIndex`: category block x
#: gender x price rank, adult items keyed out): the key encodes these three attributes
_KEY_SLOTS = {"same_gender": _gender_slot, "price_band": _band_slot, "adult_next_to_non_adult": _adult_slot}


#: search keys remembered with their content hash (:meth:`CompileMixin._remember_key`)
_KEY_HASH_MAX = 256


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
    n_base : int
        Items allowed by ``base_mask``.
    base_all : bool
        ``base_mask`` allows every item (no seed-independent rule bites).
    base_cum : numpy.ndarray or None
        Prefix counts of ``base_mask`` (length n + 1): O(1) counts over slices; built on
        first need (a static filter never needs them).
    stats : recsys.search.planner.FillStats
        The planner's learned statistics for this filter (how often its first over-fetch
        filled the list).
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
    n_base: int
    base_all: bool = False
    #: catalogue-mask rules switched on but unavailable on this catalogue (optional column missing)
    base_skipped: list[str] = field(default_factory=list)
    base_cum: np.ndarray | None = None
    stats: FillStats = field(default_factory=FillStats)
    keys: dict[tuple[int | None, bool, bool], _KeyIndex] = field(default_factory=dict)
    seed_table: np.ndarray | None = None
    table_kvs: list[_KeyIndex] = field(default_factory=list)
    #: with a rule of channel "exclude" (do-not-associate pairs) and a seed table: seed position
    #: -> (positions, vector rows) it excludes inside its key range (:meth:`CompileMixin._table_drops`)
    table_drop: dict[int, tuple[np.ndarray, list[int]]] | None = None
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
    #: adult-rule variant (True: adult items excluded) -> :class:`~recsys.search.batch.StaticSet`
    sets: dict[bool, StaticSet] = field(default_factory=dict)
    #: adult-rule variant -> bytes its set's own graph holds or has reserved, when the set keeps
    #: more than ``BLOCK_MAX_SHARE`` of the catalogue (0: decided against, or refused by the memory
    #: budget; absent: not decided yet. :meth:`~recsys.search.static.StaticMixin._maybe_big_sub`)
    big_subs: dict[bool, int] = field(default_factory=dict)
    #: lean, and ``same_category`` is its only seed-dependent rule (do-not-associate pairs aside:
    #: a seed's banned items are dropped from the block graph's answer): each category block
    #: (and adult-rule variant) is a static eligible set, which gets its own graph once used often
    cat_only: bool = False
    #: as ``cat_only`` but with boost/bury (their only difference from lean): answered from the
    #: category blocks' graphs by :meth:`~recsys.search.adjusted.AdjustMixin._search_block_adjusted`
    adjust_cat_only: bool = False
    #: (block start, block end, adult excluded) -> eligible set with its own graph; uses so far
    blocks: dict[tuple[int, int, bool], StaticSet] = field(default_factory=dict)
    #: block key -> (its set with a graph, and per key variant of ``table_kvs`` the keys in the
    #: graph's label order as flat views, or None while they are built): the price band's
    #: shortcut on a block's graph reads them (:func:`~recsys.search.static.block_key_views`)
    block_key_views: dict[tuple[int, int, bool], tuple[Any, Any]] = field(default_factory=dict)
    block_uses: dict[tuple[int, int, bool], int] = field(default_factory=dict)
    block_bytes: int = 0
    #: blocks whose graph was queued by their own uses (:meth:`~recsys.search.static.StaticMixin._block_use`);
    #: from ``_FIELD_AFTER`` of them on, the filter's whole category level is partitioned
    #: (every block above the size and cost bars gets its graph: ``field_queued``)
    block_queued: set[tuple[int, int, bool]] = field(default_factory=set)
    field_queued: bool = False
    #: digest of ``base_mask`` (on first need): filters with the same mask share block graphs
    #: (a config with do-not-associate pairs or pins reuses those of the filter alone)
    mask_digest: bytes | None = None
    #: the config's seed rules (rule table order), and their names: the seed table's count
    #: columns (from ``TABLE_COUNTS`` on); the columns of the category and adult rules (-1: off)
    seed_rules: list[Rule] = field(default_factory=list)
    table_rules: tuple[str, ...] = ()
    cat_col: int = -1
    adult_col: int = -1
    #: rule name -> what its ``prepare`` computed for this config (brand-pair tables, item bans,
    #: pins, score changes)
    prepared: dict[str, Any] = field(default_factory=dict)
    #: composed score change (multiplier, shift per position) of the boost/bury rules, or None:
    #: with it a query is answered by exact search, or by the over-fetch with the bound of
    #: :mod:`recsys.search.adjusted`
    adjust: tuple[np.ndarray, np.ndarray] | None = None
    #: the items grouped by their (multiplier, shift) (:class:`~recsys.search.adjusted.AdjustClasses`),
    #: built on the first over-fetch that needs them
    adjust_classes: Any = None
    #: rules placing items into the finished list (pins)
    place_rules: list[Rule] = field(default_factory=list)
    #: the seed positions a place rule may give an item (:func:`~recsys.search.rules.placed_seeds`;
    #: None: any seed may); the others' lists are final as ranked
    place_seeds: frozenset[int] | None = None
    #: static filters: (no seed: -1, else the seed's adultness) -> (removed_by_rule, adult
    #: excluded, skipped rules)
    static_counts: dict[int, tuple[dict[str, int], bool, list[str]]] = field(default_factory=dict)


#: most bytes of one key index's key-ordered copy of the unit vectors (:meth:`CompileMixin._key_rows`):
#: 25.6 MB at 100k x 64; not built at a million items (256 MB per key index)
_KEY_ROWS_MAX_BYTES = 64 << 20


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

    __slots__ = ("by_pos", "by_row", "sorted", "order", "n_gender", "n_rank", "unit", "unit_asked")

    def __init__(self, by_pos: np.ndarray, pos_of_row: np.ndarray, n_gender: int, n_rank: int) -> None:
        self.by_pos = by_pos
        self.by_row = by_pos[pos_of_row]
        order = np.argsort(by_pos, kind="stable")
        order = order[np.count_nonzero(by_pos < 0) :]  # excluded items (-1) sort first
        self.order = order.astype(np.int32) if len(by_pos) < np.iinfo(np.int32).max else order
        self.sorted = by_pos[order]
        self.n_gender = n_gender
        self.n_rank = n_rank
        #: the unit vectors of ``order`` (the eligible items in key order), built in the background
        #: on a first exact search over a key range (:meth:`CompileMixin._key_rows`), or None
        self.unit: np.ndarray | None = None
        self.unit_asked = False


class _SeedRules:
    """The seed-dependent rules of one query, resolved in O(1) / O(log n).

    ``s``/``e`` bound the domain (the seed's category block, or everything);
    ``tests`` holds the rule table's per-item tests still to apply inside it, with
    the seed's values. ``keyed`` rules (gender, price band, adult: their values are
    also in ``gender``, ``rank_lo``/``rank_hi``, ``no_adult``) can go through a
    :class:`_KeyIndex`; ``extra`` ones (channel "scan": banned brand pairs, same
    title) need a pass over the domain. ``banned`` (channel "exclude": the seed's
    do-not-associate items) holds a handful of sorted positions that every path removes
    like the seed itself, without a pass over the domain.
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
        "no_adult",
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
        "tests",
        "banned",
        "band",
    )

    def __init__(self, n: int, removed: dict[str, int]) -> None:
        self.s, self.e, self.full = 0, n, True
        self.level: int | None = None
        self.block = 0
        self.gender = -1
        self.rank_lo = self.rank_hi = -1
        self.no_adult = False
        self.seed = -1  # position excluded as the seed
        self.keyed = False  # gender, price band or adult rule active
        self.extra = False  # banned brand pairs or same title active
        self.kv: _KeyIndex | None = None
        self.lo_key = self.hi_key = 0
        self.key_a = self.key_b = 0  # kv.order[key_a:key_b]: positions with a key in [lo_key, hi_key)
        self.removed = removed
        self.skipped: list[str] = []
        #: (the rule table's per-item test, the seed's value) of the rules tested item by item
        self.tests: list[tuple[Any, Any]] = []
        #: positions excluded for this seed (channel "exclude"; sorted, unique), or None
        self.banned: np.ndarray | None = None
        #: the price band's [lo, hi] in prices, set only by a cold query (``recsys.search.cold``)
        self.band: tuple[float, float] | None = None


class CompileMixin:
    """Compiling configs and resolving their rules per seed (part of :class:`FilteredSearcher`)."""

    # -- compile -------------------------------------------------------------------
    def compile(self, config: FilterConfig | dict[str, Any] | None) -> CompiledFilter:
        """The seed-independent mask of a config (cached by its hash)."""
        cfg = FilterConfig.from_dict(config) if not isinstance(config, FilterConfig) else config
        last = self._last
        if last is not None and last[0] is cfg:
            return last[1]
        skey = cfg.search_key()
        key = self._key_hash.get(skey)  # the content hash of a config seen before: not hashed again
        if key is None:
            key = cfg.config_hash()
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                self._remember_key(skey, key)
                self._last = (cfg, hit)
                return hit
        v = self.view
        mask: np.ndarray | None = None
        removed: dict[str, int] = {}
        skipped: list[str] = []
        for mr in MASK_RULES:  # the seed-independent rules, from the rule table
            if mr.on(cfg):
                if mr.optional_column and not v.has_column(mr.column):
                    skipped.append(mr.name)  # unavailable on this catalogue: reported, not applied
                    continue
                ok = mr.keep(v, cfg)
                removed[mr.name] = int(self.n - np.count_nonzero(ok))
                if mask is None:
                    mask = np.array(ok, dtype=bool)  # a copy: ``keep`` may return a catalogue array
                else:
                    mask &= ok
                self._bg.pause()  # a rule's test holds the GIL over every item (background.Background)
        if mask is None:  # no mask rule (no filter, a category, a price band around the seed): O(1)
            mask = self._all_items
        prepared = {rl.name: rl.prepare(v, cfg) for rl in PREPARED_RULES if rl.on(cfg)}
        adjust = None
        for rl in ADJUST_RULES:  # score changes before the cut to k, composed in table order
            if rl.name in prepared:
                mul, add, matched = prepared[rl.name]
                removed[rl.name] = matched  # items it re-scores
                adjust = (mul, add) if adjust is None else (adjust[0] * mul, adjust[1] * mul + add)
        n_base = int(np.count_nonzero(mask)) if mask is not self._all_items else self.n
        # the prefix counts (base_cum) are built on first need: a static filter never needs them
        compiled = CompiledFilter(cfg, mask, removed, n_base, base_all=n_base == self.n)
        compiled.prepared, compiled.adjust = prepared, adjust
        compiled.place_rules = [rl for rl in PLACE_RULES if rl.name in prepared]
        compiled.place_seeds = placed_seeds(compiled.place_rules, prepared)
        compiled.base_skipped = skipped
        compiled.lean = (
            self.space == "cosine"
            and cfg.max_per_brand is None
            and cfg.min_similarity is None
            and adjust is None
        )
        compiled.seed_rules = [rl for rl in SEED_RULES if rl.on(cfg)]
        compiled.table_rules = tuple(rl.name for rl in compiled.seed_rules)
        names = compiled.table_rules
        compiled.cat_col = names.index("same_category") if "same_category" in names else -1
        compiled.adult_col = (
            names.index("adult_next_to_non_adult") if "adult_next_to_non_adult" in names else -1
        )
        varying = varying_seed_rules(cfg)
        compiled.static = not varying
        cat_rules = [r.name for r in varying if r.channel != "exclude"] == ["same_category"]
        compiled.cat_only = compiled.lean and cat_rules
        # boost/bury alone keep it off lean: their category blocks' graphs (recsys.search.adjusted)
        compiled.adjust_cat_only = (
            cat_rules
            and adjust is not None
            and self.space == "cosine"
            and cfg.max_per_brand is None
            and cfg.min_similarity is None
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
            self._remember_key(skey, key)
        self._last = (cfg, compiled)
        return compiled

    def _remember_key(self, skey: Any, key: str) -> None:
        """Map a config's :meth:`~recsys.filters.FilterConfig.search_key` to its content hash
        (under ``self._lock``): the first query of a config seen before finds its compiled filter
        without hashing it (:meth:`compiled_for`)."""
        keys = self._key_hash
        if keys.get(skey) != key:
            keys[skey] = key
            while len(keys) > _KEY_HASH_MAX:
                del keys[next(iter(keys))]

    def compiled_for(self, cfg: FilterConfig) -> CompiledFilter | None:
        """The compiled filter of ``cfg`` if one is cached and its config was looked up by its
        search key before (None otherwise, without hashing ``cfg``: O(1) for a new filter)."""
        key = self._key_hash.get(cfg.search_key())
        return self._compiled.get(key) if key is not None else None

    # -- per seed ------------------------------------------------------------------
    def _seed_rules(self, cf: CompiledFilter, pos: int | None) -> _SeedRules:
        """Resolve the seed-dependent rules: domain bounds, codes, price ranks, counts.

        Each rule's ``resolve`` (the rule table) gives the seed's value and the rule's count;
        its ``channel`` says how the executor applies it (a domain slice, a key range, the
        seed's position, or its per-item ``test`` over the domain). O(1) / O(log n): nothing
        here touches the catalogue item by item, so ``removed_by_rule`` stays cheap whatever
        the plan.
        """
        v = self.view
        r = _SeedRules(self.n, dict(cf.base_removed))
        r.skipped.extend(cf.base_skipped)
        for rl in cf.seed_rules:
            removed, param = rl.resolve(v, cf, pos)
            removed = int(removed)
            if removed == OFF:
                continue
            if removed == SKIPPED:
                r.skipped.append(rl.name)
                continue
            r.removed[rl.name] = removed
            channel = rl.channel
            if channel == "exclude":  # a few positions: removed like the seed, no pass over the domain
                if param is not None and len(param):
                    r.tests.append((rl.test, param))
                    r.banned = param if r.banned is None else np.union1d(r.banned, param)
            elif channel == "scan":
                if param is not None:  # None: nothing to test for this seed (no banned pair of its brand)
                    r.tests.append((rl.test, param))
                    r.extra = True
            elif channel == "key":
                _KEY_SLOTS[rl.name](r, param)
                r.tests.append((rl.test, param))
                r.keyed = True
            elif channel == "domain":
                lv, code = param
                code = int(code)
                bounds = v.cat_bounds[lv]
                r.s, r.e = int(bounds[code]), int(bounds[code + 1])
                r.level, r.block = lv, code
                r.full = r.s == 0 and r.e == self.n
            else:  # "seed"
                r.seed = int(pos)
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

    def _key_rows(self, kv: _KeyIndex) -> np.ndarray | None:
        """The unit vectors of a key index's eligible items in key order, so that an exact search
        over a key range (a price band inside a category) is one matrix-vector product over a
        slice instead of a gather of scattered rows (2k to 4k rows gathered right after a beam
        search cost 200 to 500 us at 100k items: the slowest 2% of a category 50% + price band
        filter's queries); None until built (by the background thread, asked for here once), and
        for catalogues where the copy would take more than ``_KEY_ROWS_MAX_BYTES``."""
        rows = kv.unit
        if rows is not None or kv.unit_asked:
            return rows
        kv.unit_asked = True
        if len(kv.order) * self.unit.shape[1] * self.unit.itemsize > _KEY_ROWS_MAX_BYTES:
            return None

        def build() -> None:
            kv.unit = np.take(self.unit, kv.order, axis=0)  # published whole

        self._build_or_queue((id(kv), "key rows"), build)
        return kv.unit

    def _seed_table(self, cf: CompiledFilter) -> np.ndarray | None:
        """Per seed position, what :meth:`_seed_rules` + :meth:`_eligibility` resolve, precomputed.

        Row ``pos`` holds the key index variant (into ``cf.table_kvs``), the key range
        ``[lo, hi)``, its slice ``[a, b)`` of the key order, the eligible count (seed
        excluded), the domain ``[s, e)``, whether the seed lies in its own key range, and
        then (from column ``TABLE_COUNTS``) one column per seed rule of the config
        (``cf.table_rules``): the rule's ``resolve`` over every seed at once, i.e. its count,
        ``SKIPPED`` or ``OFF``. Built vectorised in O(n log n) on a filter's first automatic
        queries, so that a query reads one row (one cache line) instead of a dozen scattered
        values; None (and ``cf.table_ok = False``) for configs with a rule that needs a pass
        over the domain anyway (channel ``"scan"``: banned brand pairs, same title). The
        items a rule of channel ``"exclude"`` (do-not-associate pairs) removes for a seed
        inside its key range are taken off its eligible count here, once, and kept in
        ``cf.table_drop`` (seed position -> (positions, vector rows)) for its queries.
        """
        v, n = self.view, self.n
        if n == 0 or any(rl.channel == "scan" for rl in cf.seed_rules):
            cf.table_ok = False
            return None
        every = np.arange(n)
        counts, params = {}, {}
        pause = self._bg.pause  # between steps over every seed: queries first (background.Background)
        for rl in cf.seed_rules:
            removed, params[rl.name] = rl.resolve(v, cf, every)
            counts[rl.name] = np.broadcast_to(np.asarray(removed, dtype=np.int64), (n,))
            pause()
        zeros, no = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        if "same_category" in counts:
            lv, code = params["same_category"]
            has_cat = counts["same_category"] >= 0
            code = code.astype(np.int64)
            bounds = v.cat_bounds[lv]
            s = np.where(has_cat, bounds[code], 0)
            e = np.where(has_cat, bounds[code + 1], n)
            block = np.where(has_cat, code, 0)
        else:
            lv, has_cat, s, e, block = 0, no, zeros, np.full(n, n), zeros
        g = v.gender.astype(np.int64)
        has_g = counts["same_gender"] >= 0 if "same_gender" in counts else no
        if "price_band" in counts:
            valid = counts["price_band"] >= 0
            rank_lo, rank_hi = params["price_band"]
        else:
            valid, rank_lo, rank_hi = no, zeros, zeros
        no_adult = counts["adult_next_to_non_adult"] >= 0 if "adult_next_to_non_adult" in counts else no
        var = has_cat.astype(np.int64) * 4 + has_g * 2 + no_adult
        lo, hi, a, b, seed_in = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(), no.copy()
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
            pause()
            a[at] = np.searchsorted(kv.sorted, lo[at])
            pause()
            b[at] = np.searchsorted(kv.sorted, hi[at])
            pause()
            if "exclude_seed" in counts:
                key = kv.by_pos[at]
                seed_in[at] = (key >= lo[at]) & (key < hi[at])
        n_elig = b - a - seed_in
        drops = self._table_drops(cf, params, kvs, var_idx, lo, hi, n_elig)
        columns = [var_idx, lo, hi, a, b, n_elig, s, e, seed_in] + [counts[name] for name in cf.table_rules]
        table = np.ascontiguousarray(np.stack(columns, axis=1), dtype=np.int64 if wide else np.int32)
        cf.table_kvs = kvs
        cf.table_drop = drops
        cf.seed_table = table
        cf.table_ok = True
        return table

    def _table_drops(
        self,
        cf: CompiledFilter,
        params: dict[str, Any],
        kvs: list[_KeyIndex],
        var_idx: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        n_elig: np.ndarray,
    ) -> dict[int, tuple[np.ndarray, list[int]]] | None:
        """Per seed with excluded items (channel ``"exclude"``) that its key range would
        otherwise keep: (their sorted positions, their vector rows); their number is taken off
        ``n_elig`` in place. None when the config has no such rule."""
        excluded: dict[int, np.ndarray] = {}
        found = False
        for rl in cf.seed_rules:
            if rl.channel == "exclude":
                found = True
                for p, b in params[rl.name].items():
                    excluded[p] = b if p not in excluded else np.union1d(excluded[p], b)
        if not found:
            return None
        seed_out = cf.config.exclude_seed  # the seed itself is off the count already
        drops: dict[int, tuple[np.ndarray, list[int]]] = {}
        for p, b in excluded.items():  # a Python loop over the seeds with bans, once per filter
            key = kvs[var_idx[p]].by_pos[b]
            ok = (key >= lo[p]) & (key < hi[p])
            if seed_out:
                ok &= b != p
            b = b[ok]
            if len(b):
                n_elig[p] -= len(b)
                drops[p] = (b, self.view.perm[b].tolist())
        return drops

    def _item_allowed(self, cf: CompiledFilter, pos: int, item: int) -> bool:
        """Whether the item at position ``item`` passes every mask and seed rule of ``cf`` next to
        the seed at ``pos`` (what a pin may show): its seed-table key range when the filter has
        one (every rule folded in), else the seed's resolved rules (reused from the query just
        answered for this seed, :meth:`_search_one`)."""
        table = cf.seed_table
        if table is not None:
            var, lo, hi = table[pos, :3].tolist()
            if not lo <= cf.table_kvs[var].by_pos[item] < hi or (cf.config.exclude_seed and item == pos):
                return False
            drop = cf.table_drop.get(pos) if cf.table_drop else None
            return drop is None or int(self.view.perm[item]) not in drop[1]  # a short list of rows
        last = self._last_rules
        r = last[2] if last is not None and last[0] is cf and last[1] == pos else self._seed_rules(cf, pos)
        return bool(r.s <= item < r.e and item != r.seed and self._item_tests(cf, r, np.array([item]))[0])

    def _item_tests(self, cf: CompiledFilter, r: _SeedRules, idx: slice | np.ndarray) -> np.ndarray:
        """The per-item rules over ``idx`` (a domain slice or candidate positions), vectorised.

        Does not apply the domain bounds nor the seed exclusion.
        """
        ok: np.ndarray | None = None
        if not cf.base_all:
            ok = cf.base_mask[idx]
            if isinstance(idx, slice):
                ok = ok.copy()  # a view of the cached mask: never write into it
        for test, param in r.tests:  # the rule table's per-item functions
            ok = _and(ok, test(self.view, idx, param))
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
            return None, n - self._eligible_banned(cf, r)
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
        return None, n - self._eligible_banned(cf, r)

    def _eligible_banned(self, cf: CompiledFilter, r: _SeedRules) -> int:
        """Keep in ``r.banned`` only the seed's banned positions that every other rule lets
        through (inside the domain and the key range or base mask, not the seed), the ones an
        over-fetch can meet and the eligible count must lose; returns how many there are.
        Call once the key range of ``r`` (if any) is set."""
        b = r.banned
        if b is None:
            return 0
        b = b[(b >= r.s) & (b < r.e) & (b != r.seed)]
        if r.kv is not None:
            key = r.kv.by_pos[b]
            b = b[(key >= r.lo_key) & (key < r.hi_key)]
        elif not cf.base_all:
            b = b[cf.base_mask[b]]
        r.banned = b if len(b) else None
        return len(b)

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
        if r.banned is not None:
            b = r.banned
            mask[b[(b >= s) & (b < e)] - s] = False
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
        if r.banned is not None:
            p = p[not_in_sorted(p, r.banned)]
        return p

    def _table_counts(self, cf: CompiledFilter, counts: list[int]) -> tuple[dict[str, int], list[str]]:
        """(removed_by_rule, skipped_rules) of one seed from its seed-table row's rule columns
        (``row[TABLE_COUNTS:]``, one per ``cf.table_rules``: a count, ``SKIPPED`` or ``OFF``)."""
        removed: dict[str, int] = dict(cf.base_removed)
        skipped: list[str] = list(cf.base_skipped)
        for name, c in zip(cf.table_rules, counts):
            if c >= 0:
                removed[name] = c
            elif c == SKIPPED:
                skipped.append(name)
        return removed, skipped
