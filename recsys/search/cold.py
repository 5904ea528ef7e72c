"""A new filter's first queries without a pass over the catalogue (issue 18).

Compiling a filter builds its mask over every item (and, for a static filter, its eligible
block): at 1M items that is milliseconds, and the general path that answered until the
background thread had built the rest scanned the catalogue with that mask again (first queries
at 3x to 600x the warm latency). What filterable vector databases do instead (Qdrant's payload
index with its cardinality estimate): per-attribute inverted lists, built once per searcher,
give a new filter's eligible count from value counts, and then

* a filter keeping few items: its eligible positions are one list (a brand allow-list's
  postings concatenated, a price band's slice of the price order), the others' predicates tested
  on it; an exact search over them (one gather, one matrix-vector product);
* a filter keeping many: an over-fetch on the main index sized to its share (as
  :meth:`~recsys.search.static.StaticMixin._search_static`), only the fetched labels' attributes
  tested; a short fetch fetches 4x more, then exact search over the list if it is short enough.

Only lean configs whose rules the lists cover (price range, brand allow/deny lists, adult
items; the seed's exclusion and its category block, one slice of positions) go this way, with the
eligible count exact: several rules are intersected on the shortest list kept (a deny list has
none) when it is short, else the query takes the compiled path. The filter is compiled, and its
eligible set built, by the background thread meanwhile (:meth:`ColdMixin._search_cold` queues
it); once its eligible set (a category filter: its seed table) is there, its queries take the
compiled paths, which before it would pass over the catalogue's mask on the request.
"""

from __future__ import annotations

import math
import weakref
from itertools import repeat
from typing import Any

import numpy as np

from recsys.filters import _PLAIN_DEFAULTS, FilterConfig, plain_defaults
from recsys.search.batch import fetch_for
from recsys.search.beams import seed_lost
from recsys.search.compiled import CompiledFilter, _SeedRules
from recsys.search.kernels import _blas_controllers, _matvec
from recsys.search.planner import (
    _S_EXACT_BASE,
    _S_GATHER_ROW,
    _S_GEMV_ROW_COLD,
    _S_SELECT_ROW,
    _TABLE_AFTER,
)
from recsys.search.query import Query
from recsys.search.result import SearchResult
from recsys.search.rules import ADJUST_RULES, MASK_RULES, PREPARED_RULES, SEED_RULES
from recsys.topk import top_prefix, topk

#: most positions a first query reads from a posting list (tests, gathers): 64k positions cost
#: about 0.3 ms; a filter whose shortest list is longer and that needs an intersection waits for
#: its compiled form
COLD_SCAN_MAX = 65_536
#: seed rules a cold query resolves (the others depend on the seed's attributes)
_COLD_SEED_RULES = frozenset({"exclude_seed", "adult_next_to_non_adult", "same_category", "price_band"})
#: the fields of the rules the lists answer (price range, brand lists, adult items; the seed's
#: category block and its exclusion): a config that sets no other field needs no scan of the
#: rule table to know the lists answer it (:func:`_list_fields_only`)
_LIST_FIELDS = frozenset(
    {"price_min", "price_max", "brands_allow", "brands_deny", "exclude_adult"}
    | {"same_category", "category_level", "exclude_seed", "price_ratio_min", "price_ratio_max"}
)
#: at most this many candidates of an exact top-k are ordered in Python (:func:`_top_by_position`)
_SORT_IN_PYTHON = 64
#: configs whose cold form is kept (by search key; None: not answerable this way)
_COLD_SPECS_MAX = 64
#: per position read from a posting list (building, sorting): in the planner's units
_COLD_LIST_ROW = 0.01
#: a category block is the list the other rules are tested on while it holds at most this many
#: times the shortest list's positions (its positions are one slice: the tests read the columns
#: in order, where a brand allow-list's positions are first gathered from 100s of ranges)
_SPAN_OVER_LIST = 4
#: a brand allow-list within a price band is counted by one pass over the band's items (their
#: brand codes in price order) while the band holds at most this many items per brand listed;
#: past it, by two binary searches per brand in the compound list (about 0.25 us each with cold
#: caches, against about 1 ns per item of the pass)
_FOLD_SCAN_PER_BRAND = 256
#: the memory region whose first touch after a long idle time costs one fixed price on the
#: development machine's VM (:data:`recsys.search.background.KEEP_WARM_S`): read once per region
_WARM_REGION = 2 << 20


class Postings:
    """Inverted lists of catalogue positions per attribute value, built once per searcher.

    The brands' lists form one compound list, ordered by (brand, adult, price rank) as a
    database's composite index: a brand allow-list with a price band and/or the adult rule is a
    range of it per brand (two binary searches per brand give the exact count, the ranges are the
    eligible positions), so a pair's first query tests no rule over a brand's whole list."""

    __slots__ = (
        "brand_order",
        "brand_start",
        "brand_count",
        "brand_key",
        "n_rank",
        "any_adult",
        "price_order",
        "price_sorted",
        "not_adult",
        "brand_plain",
        "brand_by_price",
        "adult_by_price",
    )

    def __init__(self, view: Any) -> None:
        n = len(view.brand)
        idx = np.int32 if n < np.iinfo(np.int32).max else np.int64
        codes = view.brand.astype(np.int64)
        counts = np.bincount(codes, minlength=len(view.brand_keys))
        self.brand_start = np.concatenate(([0], np.cumsum(counts)))
        self.brand_count = counts
        #: ranks 0 .. n_rank - 2 are the known prices, n_rank - 1 a missing price (sorts last)
        self.n_rank = len(view.price_values) + 1
        rank = np.minimum(view.price_rank, self.n_rank - 1).astype(np.int64)
        key = (codes * 2 + view.adult) * self.n_rank + rank
        order = np.argsort(key, kind="stable")
        self.brand_order = order.astype(idx)  # per brand, then not adult / adult, then price
        self.brand_key = key[order]
        self.any_adult = view.n_adult > 0
        #: per brand, its items that are not adult: the first ones of its range of brand_order
        #: (a brand allow-list with the adult rule: one range per brand, no binary search)
        self.brand_plain = (
            np.bincount(codes[~view.adult], minlength=len(counts)) if self.any_adult else counts
        )
        order = np.argsort(view.price, kind="stable")  # a missing price (NaN) sorts last
        known = int(np.count_nonzero(~np.isnan(view.price)))
        self.price_order = order[:known].astype(idx)
        self.price_sorted = view.price[self.price_order]
        #: the brand code (and adult flag) of each item in price order: a brand allow-list within a
        #: price band is one contiguous pass over the band (:func:`_fold_brands`)
        bdt = np.int16 if len(counts) < np.iinfo(np.int16).max else np.int32
        self.brand_by_price = view.brand[self.price_order].astype(bdt)
        self.adult_by_price = view.adult[self.price_order] if self.any_adult else None
        self.not_adult = (
            np.flatnonzero(~view.adult).astype(idx) if n - view.n_adult <= COLD_SCAN_MAX else None
        )

    @property
    def nbytes(self) -> int:
        arrays = (
            self.brand_order,
            self.brand_start,
            self.brand_count,
            self.brand_key,
            self.price_order,
            self.price_sorted,
            self.not_adult,
            self.brand_plain,
            self.brand_by_price,
            self.adult_by_price,
        )
        return sum(a.nbytes for a in arrays if a is not None)

    def brand_ranges(
        self, codes: np.ndarray, ranks: tuple[int, int] | None, no_adult: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """[a, b) ranges of :attr:`brand_order` holding the brands ``codes`` with a price rank in
        ``ranks`` (None: any, a missing price too) and, with ``no_adult``, no adult item."""
        r = self.n_rank
        ra, rb = ranks if ranks is not None else (0, r)
        base = codes.astype(np.int64) * (2 * r)
        if no_adult or not self.any_adult:  # without adult items: one range per brand, not two
            lo, hi = base + ra, base + rb
        elif ranks is None:
            lo, hi = base, base + 2 * r
        else:
            lo, hi = np.concatenate((base + ra, base + r + ra)), np.concatenate((base + rb, base + r + rb))
        key = self.brand_key
        return key.searchsorted(lo), key.searchsorted(hi)


class _Pred:
    """One rule over positions: its eligible count, its posting list (None: not kept), its test."""

    __slots__ = ("count", "posting", "test", "span", "fold", "lut", "prange", "one")

    def __init__(
        self,
        count: int,
        posting: Any,
        test: Any,
        span: tuple[int, int] | None = None,
        fold: Any = None,
        lut: np.ndarray | None = None,
        prange: tuple[int, int] | None = None,
        one: Any = None,
    ) -> None:
        self.count, self.posting, self.test = count, posting, test
        #: the same test of ONE position (a Python int) by scalar reads, no array: whether the seed
        #: passes (a one-item array through ``test`` cost 3 NumPy calls a rule, each 5 to 10 us with
        #: cold caches, on every first query); None: ``test`` answers
        self.one = one
        #: (start, end) when the eligible positions are one slice (the seed's category block)
        self.span = span
        #: what the compound brand list folds in: a brand allow-list's codes, a price band's
        #: [start, end) of ranks, True for the adult rule (:meth:`Postings.brand_ranges`)
        self.fold = fold
        #: a brand allow-list's table by brand code (True: allowed)
        self.lut = lut
        #: a price band's [start, end) in the price order (:attr:`Postings.price_order`)
        self.prange = prange


class ColdMixin:
    """The first queries of a filter not compiled yet (part of :class:`FilteredSearcher`)."""

    def _build_postings(self) -> None:
        """Build the inverted lists now, with the searcher (about 0.45 s at 1M items: a filter's first
        queries right after the searcher was created raced their build in the background and
        were answered by compiling the filter on the request), and
        threadpoolctl's view of the BLAS libraries (a realpath of each loaded library, 20 ms,
        that would otherwise land on the first exact search of the process)."""
        self._cold_postings = Postings(self.view)
        _blas_controllers()

    def _warm_memory(self) -> None:
        """Read one byte per 2 MB of what a first query may touch (run by the idle worker every
        :data:`~recsys.search.background.KEEP_WARM_S`): this searcher's arrays and its catalogue
        view's, the inverted lists, the cached filters' eligible sets and category blocks, the main
        graph and the filters' own graphs. About 150 reads per 256 MB; memory left untouched for a
        minute otherwise costs its next query about 70 us per 2 MB (at 1M, a first exact scan 12.7
        to 29.3 ms of CPU). The reads go over a snapshot (:meth:`_warm_targets`): queries and
        background builds change the structures meanwhile, and none of them waits for the reads."""
        arrays, graphs = self._warm_targets()
        for a in arrays:
            _touch(a)
        for g in graphs:
            _touch_graph(g)

    def _warm_targets(self) -> tuple[list[np.ndarray], list[Any]]:
        """The arrays and graphs :meth:`_warm_memory` reads, each once, as they are now. Every
        container that a query thread or a background build changes is copied by one C call
        (``dict.copy``, ``list``: no other thread runs inside one), the compiled-filter cache
        under ``self._lock`` (as its other readers), so the walk never iterates a live container;
        the lock is released before any read (a query compiling a filter never waits for it)."""
        with self._lock:
            cached = list(self._compiled.values())
        mine = vars(self).copy()
        holders: list[Any] = [mine.values(), vars(mine["view"]).copy().values()]
        post = mine.get("_cold_postings")
        if post is not None:
            holders.append([getattr(post, name) for name in Postings.__slots__])
        index = mine.get("_index")
        graphs = [index._index] if index is not None else []
        sets = list(mine["_shared_blocks"].copy().values())
        for cf in cached:
            sets += cf.sets.copy().values()
            sets += cf.blocks.copy().values()
        seen = {id(g) for g in graphs}
        for ss in sets:
            holders.append((ss.pos, ss.rows, ss.ok_by_row, ss.block))
            sub = ss.sub
            if sub is not None and id(sub) not in seen:
                seen.add(id(sub))
                graphs.append(sub)
        arrays = []
        for values in holders:
            for a in values:
                if isinstance(a, np.ndarray) and id(a) not in seen:
                    seen.add(id(a))
                    arrays.append(a)
        return arrays, graphs

    def _keep_warm(self) -> None:
        """Have the idle worker keep this searcher's memory warm (:meth:`_warm_memory`), through a
        weak reference: the worker thread outlives a searcher that is swapped out."""
        ref = weakref.WeakMethod(self._warm_memory)

        def warm() -> None:
            fn = ref()
            if fn is not None:
                fn()

        self._bg.warm = warm

    def _postings(self) -> Postings | None:
        """The searcher's inverted lists (None only when they failed to build: then queued again)."""
        got = self._cold_postings
        if got is None and not self._bg.pending(("postings",)):
            self._bg.submit(("postings",), self._build_postings)
        return got

    def _cold_preds(self, cfg: FilterConfig, post: Postings) -> tuple[list[_Pred], dict, list] | None:
        """The mask rules of ``cfg`` as predicates, their ``removed_by_rule`` counts and skipped
        rules; None when a rule is not covered by the lists (the compiled path answers)."""
        v, n = self.view, self.n
        if not _list_fields_only(cfg) and (  # the rule table's scan: 50 to 70 us with cold caches
            cfg.max_per_brand is not None
            or cfg.min_similarity is not None
            or any(rl.on(cfg) for rl in PREPARED_RULES)
            or any(rl.on(cfg) for rl in ADJUST_RULES)
            or any(rl.on(cfg) and rl.name not in _COLD_SEED_RULES for rl in SEED_RULES)
        ):
            return None
        preds: list[_Pred] = []
        removed: dict[str, int] = {}
        skipped: list[str] = []
        for mr in MASK_RULES:
            if not mr.on(cfg):
                continue
            if mr.optional_column and not v.has_column(mr.column):
                skipped.append(mr.name)
                continue
            if mr.name in ("brands_allow", "brands_deny"):
                allow, deny = cfg.norm_brands()  # normalised once per config (its validation, its hash)
                names = allow if mr.name == "brands_allow" else deny
                # one dict lookup per name, in C (a set of two lookups per name cost twice that)
                nb = len(v.brand_keys)  # a name not in the catalogue: the spare slot nb of the table
                got = np.fromiter(map(v.brand_code.get, names, repeat(nb, len(names))), np.intp, len(names))
                lut = np.zeros(nb + 1, dtype=bool)  # by brand code (items' codes are < nb)
                lut[got] = True
                lut[nb] = False
                at = lut.nonzero()[0]  # the brand codes, sorted and unique (np.unique: a sort, 10 steps)
                st = post.brand_start
                # one pass (a Python sum over 500 brands took 1 ms); each NumPy step costs a first
                # query 5 to 10 us with cold caches, so as few as can be
                hit = int(post.brand_count.take(at).sum())
                if mr.name == "brands_allow":
                    p = _Pred(
                        hit,
                        lambda at=at, st=st: _ranges(post.brand_order, st[at], st[at + 1]),
                        lambda P, lut=lut: lut[v.brand[P]],
                        fold=at,
                        lut=lut,
                        one=lambda i, lut=lut: lut.item(v.brand.item(i)),
                    )
                else:
                    p = _Pred(
                        n - hit,
                        None,
                        lambda P, lut=lut: ~lut[v.brand[P]],
                        one=lambda i, lut=lut: not lut.item(v.brand.item(i)),
                    )
            elif mr.name == "price_range":
                lo = cfg.price_min if cfg.price_min is not None else -np.inf
                hi = cfg.price_max if cfg.price_max is not None else np.inf
                a = int(post.price_sorted.searchsorted(lo, side="left"))
                b = int(post.price_sorted.searchsorted(hi, side="right"))
                ra, rb = v.rank_range(lo, hi)  # lo <= price <= hi exactly (a missing price: never)
                p = _Pred(
                    max(0, b - a),
                    lambda a=a, b=b: post.price_order[a:b],  # in price order: a view, no sort
                    _rank_test(v, ra, rb),
                    fold=(ra, rb),
                    prange=(a, b),
                    one=_rank_one(v, ra, rb),
                )
            elif mr.name == "exclude_adult":
                p = _not_adult(v, post)
            else:
                return None  # a rule the lists do not cover
            removed[mr.name] = n - p.count
            preds.append(p)
        return preds, removed, skipped, [0]  # [0]: its seeded queries answered here with a key rule

    def _search_cold(
        self, q: np.ndarray, pos: int, cfg: FilterConfig, k: int, t0: float, own: bool = True
    ) -> SearchResult | None:
        """Answer a seeded automatic query of a config that is not compiled yet from the inverted
        lists (module docstring), and queue its compilation; None: the compiled path answers.
        ``own``: ``q`` is the seed's own vector (not ``search_vector``'s): a beam search whose
        labels miss the seed's row is lost (beams.py: ``seed_lost``), whether the seed passes the
        filter or is listed itself, and is not the answer (4x wider, then exact search)."""
        if self._inline() or self._index is None or self._tie_of is not None or self.space != "cosine":
            return None
        if not self.view.n_adult and _at_defaults(cfg):
            # no rule bites (no filter, no adult items): the same None as below, without the search
            # key, the specs or the rule scan (30 to 60 us of a no-filter first query, cold)
            return None
        last = self._last  # the config compiled last (a warm query's, usually): an identity check
        hit = last[1] if last is not None and last[0] is cfg else self.compiled_for(cfg)
        if hit is not None and not self._cold_until_set(hit):
            return None
        key = cfg.search_key()  # not the content hash: 200 to 280 us with cold caches
        post = self._postings()
        if post is None:
            return None
        specs = self._cold_specs
        if key in specs:
            spec = specs[key]
        else:
            spec = self._cold_preds(cfg, post)
            specs = dict(specs)  # swapped whole: readers never see it change size
            specs[key] = spec
            while len(specs) > _COLD_SPECS_MAX:
                del specs[next(iter(specs))]
            self._cold_specs = specs
        if spec is None:
            return None
        preds, removed, skipped, asked = spec
        v, n = self.view, self.n
        if not preds and not cfg.same_category and not v.n_adult:
            return None  # no rule bites (no filter): its compile is O(1), its plan one knn_query
        r = self._cold_seed_rules(cfg, pos, removed, skipped)
        if hit is not None:
            if r.no_adult in hit.sets:
                return None  # this seed's variant of the eligible set is built: the compiled path answers
            if not hit.static:  # its seed table comes after as many queries as on the compiled path
                hit.seeded_queries += 1
                if hit.seeded_queries >= _TABLE_AFTER:
                    self._request_table(hit)
                if hit.cat_only and not r.full and (r.s, r.e, r.no_adult) not in hit.blocks:
                    self._block_use(hit, (r.s, r.e, r.no_adult))  # a use of the block (static.py)
        if not r.full:  # same_category: the seed's category block, one slice of positions
            s, e = r.s, r.e
            block = _Pred(e - s, lambda: np.arange(s, e), lambda P: (P >= s) & (P < e), (s, e))
            block.one = lambda i, s=s, e=e: s <= i < e
            preds = [*preds, block]
        if r.rank_lo >= 0:  # price_band: the seed's price times the config's ratios
            preds = [*preds, _band_pred(v, post, r)]
        if r.no_adult and v.n_adult and not any(p.test.__name__ == "not_adult" for p in preds):
            preds = [*preds, _not_adult(v, post)]
        if not preds:
            return None  # no rule bites: compiling costs nothing worth avoiding
        if len(preds) > 1:
            preds = _fold_brands(preds, post)
        elig: np.ndarray | None = None
        if len(preds) == 1:
            count = preds[0].count
        else:  # the exact count: the shortest list, the other rules tested on it
            listed = [p for p in preds if p.posting is not None]
            first = min(listed, key=lambda p: p.count) if listed else None
            span = next((p for p in listed if p.span is not None), None)
            if span is not None and first is not None and span.count <= _SPAN_OVER_LIST * first.count:
                first = span  # a slice of positions: the others' tests read their columns in order
            if first is None or first.count > COLD_SCAN_MAX:
                return None
            if first.span is not None:  # the others' tests over the block's slice of each column
                a, b = first.span
                ok = None
                for p in preds:
                    if p is not first:
                        ok = p.test(slice(a, b)) if ok is None else ok & p.test(slice(a, b))
                elig = ok.nonzero()[0] + a if ok is not None else np.arange(a, b)
            else:
                elig = first.posting()
                for p in preds:
                    if p is not first and len(elig):
                        elig = elig[p.test(elig)]
            count = len(elig)
        seed_in = r.seed >= 0 and _seed_passes(preds, pos)
        m = count - seed_in
        qq = Query(q, pos, None, k, t0, v.item_id_list[pos], r.removed, r.skipped)  # no compiled filter
        if r.keyed and hit is None:
            asked[0] += 1  # counted towards its seed table, as the compiled path counts its queries
        self._queue_cold(cfg, r, asked)
        if m <= 0:
            return self._empty(qq)
        need = k + seed_in
        fetch = fetch_for(need, count / n, n)
        posting = preds[0].posting if elig is None else (lambda: elig)
        span = preds[0].span if elig is None else None  # exact search over a dense slice: no gather
        dscale = self._dscale
        row = _S_GEMV_ROW_COLD * dscale + _S_SELECT_ROW
        if span is None:
            row += _S_GATHER_ROW * dscale + _COLD_LIST_ROW
        c_x = _S_EXACT_BASE + count * row
        exact_ok = posting is not None and count <= COLD_SCAN_MAX
        if not (exact_ok and c_x <= self._static_hnsw_cost(fetch)):
            q2 = q[None, :]
            seed_row = v.perm.item(pos) if seed_in else -1  # the seed's vector row (the labels are rows)
            test = v.perm.item(pos) if own and self._self_first else -1  # a lost search's test
            for _ in range(2):  # the fetch sized to the share, then 4x more
                if fetch >= n:
                    break
                labels, dist = self._index.knn_one(q2, fetch)
                rows = labels.astype(np.int64)
                if test >= 0 and len(rows) and rows[0] != test and seed_lost(test, rows, dist):
                    fetch *= 4  # the beam missed the seed's neighbourhood: none of its labels answer
                    continue
                P = v.pos_of_row[rows]
                ok = preds[0].test(P)
                for p in preds[1:]:
                    ok &= p.test(P)
                # the seed, when it passes, is among the k + 1 first eligible labels at most once:
                # dropped from them in Python (no pass over the fetch for it: 2 NumPy calls)
                sel = np.flatnonzero(ok)[:need]
                got = rows[sel].tolist()
                j = got.index(seed_row) if seed_in and seed_row in got else -1
                if j >= 0:
                    del got[j]
                else:
                    del got[k:]
                if len(got) >= min(k, m):
                    if _ == 0 and hit is not None and len(got) >= k:
                        # how deep its k-th label lay, learned as the compiled over-fetch learns it:
                        # a big block's graph is decided on it (static.py: _big_graph_size)
                        self._learn_depth(hit.stats, int(sel[k if 0 <= j < k else k - 1]) + 1, k, m)
                    ds = dist[sel].tolist()
                    if j >= 0:
                        del ds[j]
                    scores = [1.0 - d for d in ds[:k]]  # as the compiled over-fetch scores
                    return self._listed(qq, got, scores, None, "hnsw_overfetch", m)
                if _ == 0 and hit is not None and hit.cat_only and not r.full:
                    self._block_use(hit, (r.s, r.e, r.no_adult), miss=True)  # a miss of the block
                fetch *= 4
            if not exact_ok:
                return None
        f = min(k, m)
        jd = -1  # the column of kp dropped (the seed, or the (f + 1)-th best)
        if span is not None:
            s, e = span
            sc = _matvec(self.unit[s:e], q)
            if seed_in:
                sc[pos - s] = -np.inf
            # columns in position order: ties to the lower column, i.e. position
            top, vals = topk(sc, f)
            kp = top[np.isfinite(vals)] + s
            at = kp.tolist()
        else:  # a posting list in any order (unsorted: a sort of 10k positions was 0.16 ms at 1M)
            cand = np.asarray(posting())
            sc = _matvec(self.unit.take(cand, axis=0), q)  # np.take's wrapper: 2 calls more
            # the f + 1 best with the seed's own score when it passes: it is among them at most
            # once and dropped from them below (no pass over the scores for it: 2 NumPy calls)
            kp = _top_by_position(sc, cand, f + seed_in)  # positions, a list
            at = kp[:]
            if not kp:  # no finite score (a degenerate catalogue): an empty index array
                kp = np.zeros(0, dtype=np.intp)
            if seed_in:
                jd = at.index(pos) if pos in at else (f if len(at) > f else -1)
                if jd >= 0:
                    del at[jd]
        plan = "exact_subset" if span is None else "exact_range"
        if len(at) > _SORT_IN_PYTHON:
            kp, ks = self._canon(np.array(at, dtype=np.int64), q)
            return self._result(qq, kp, ks, None, plan, m)
        # :meth:`_canon` and :meth:`_result` for a few rows: the same scores (an elementwise product
        # summed per row), ordered in Python (4 NumPy steps fewer, 5 to 10 us each with cold caches)
        scores = np.add.reduce(self.unit.take(kp, axis=0) * q, axis=1, dtype=np.float32).tolist()
        rows = v.perm.take(kp).tolist()
        if jd >= 0:
            del scores[jd], rows[jd]
        order = sorted(range(len(at)), key=lambda j: (-scores[j], at[j]))
        return self._listed(qq, [rows[j] for j in order], [scores[j] for j in order], None, plan, m)

    def _cold_seed_rules(self, cfg: FilterConfig, pos: int, removed: dict, skipped: list) -> _SeedRules:
        """:meth:`~recsys.search.compiled.CompileMixin._seed_rules` of a config the lists answer
        (its seed rules are at most ``_COLD_SEED_RULES``), resolved for one seed with scalar steps:
        the rule table's resolvers are vectorised over seeds (``np.where`` per rule) and need a
        compiled filter; with cold caches these cost a first query 30 to 70 us. Same counts, in
        the rule table's order (``tests/unit/test_search_cold.py`` compares them)."""
        v, n = self.view, self.n
        r = _SeedRules(n, dict(removed))
        if skipped:
            r.skipped.extend(skipped)
        if _CAT_RULE.on(cfg):  # channel "domain": the seed's category block
            if v.cat_empty[pos]:
                r.skipped.append("same_category")
            else:
                lv = min(cfg.category_level, v.max_level)
                code = int(v.cat_codes[lv][pos])
                b = v.cat_bounds[lv]
                r.s, r.e = int(b[code]), int(b[code + 1])
                r.removed["same_category"] = n - (r.e - r.s)
                r.level, r.block = lv, code
                r.full = r.s == 0 and r.e == n
        if _BAND_RULE.on(cfg):  # channel "key": the ranks of the prices in the seed's band
            sp = v.price[pos]
            if not (math.isfinite(sp) and sp > 0):  # no price to scale: skipped, as the rule table does
                r.skipped.append("price_band")
            else:
                lo = cfg.price_ratio_min * sp if cfg.price_ratio_min is not None else -np.inf
                hi = cfg.price_ratio_max * sp if cfg.price_ratio_max is not None else np.inf
                ra, rb = v.rank_range(float(lo), float(hi))
                rc = v.rank_cum
                r.removed["price_band"] = n - int(rc[rb] - rc[ra])
                r.rank_lo, r.rank_hi = ra, rb
                r.keyed = True
                r.tests.append((_BAND_RULE.test, (ra, rb)))
                r.band = (float(lo), float(hi))
        if v.n_adult and not v.adult[pos] and _ADULT_RULE.on(cfg):  # implicit; channel "key"
            r.removed["adult_next_to_non_adult"] = int(v.n_adult)
            r.no_adult = r.keyed = True
            r.tests.append((_ADULT_RULE.test, None))
        if _SEED_RULE.on(cfg):  # channel "seed"
            r.removed["exclude_seed"] = 1
            r.seed = int(pos)
        return r

    def _cold_until_set(self, cf: CompiledFilter) -> bool:
        """Whether the lists still answer a compiled filter: a lean static one whose eligible set
        (of this seed's adult-rule variant) the background thread is still building, or a
        category filter without its seed table yet. Until then the compiled path would take the
        general path, with a pass over the catalogue's mask (a count, a ``flatnonzero``: O(n) on
        the request) or the over-fetch's exploration."""
        if not cf.lean or cf.trivial:
            return False
        if not cf.static:
            return cf.cat_only and cf.seed_table is None and cf.table_ok is not False
        return not cf.sets or (len(cf.sets) == 1 and self.view.n_adult > 0)

    def _queue_cold(self, cfg: FilterConfig, r: _SeedRules, asked: list[int]) -> None:
        """Compile ``cfg`` and build its eligible set in the background (once); a filter with a
        key rule (the seed's price band) queues the key index of this seed's variant, and its seed
        table once the lists have answered as many of its queries as the compiled path waits for
        (:data:`_TABLE_AFTER`): what the compiled path's first queries would have queued."""
        no_adult = r.no_adult
        variant = (r.level, False, no_adult) if r.keyed else None

        def build() -> None:
            cf = self.compile(cfg)
            if cf.static:  # a category filter's seed table follows its use (_TABLE_AFTER queries)
                self._static_set(cf, no_adult, wait=True)
            elif variant is not None and cf.lean and not self._inline():
                if variant not in cf.keys:  # the key (as _keys_ready's): queued once
                    self._bg.submit((id(cf), "keys", variant), lambda: self._key_index(cf, *variant))
                cf.seeded_queries += asked[0]
                asked[0] = 0
                if cf.table_ok is not False and cf.seed_table is None and cf.seeded_queries >= _TABLE_AFTER:
                    self._request_table(cf)

        self._bg.submit((cfg.search_key(), "cold", no_adult), build)


#: the seed rules a cold query resolves (:meth:`ColdMixin._cold_seed_rules`)
_CAT_RULE, _BAND_RULE, _ADULT_RULE, _SEED_RULE = (
    next(rl for rl in SEED_RULES if rl.name == name)
    for name in ("same_category", "price_band", "adult_next_to_non_adult", "exclude_seed")
)


def _band_pred(v: Any, post: Postings, r: _SeedRules) -> _Pred:
    """The price band around the seed (:attr:`_SeedRules.band`) as a predicate: its items are one
    slice of the price order, counted by two binary searches (as a price range's)."""
    lo, hi = r.band
    ra, rb = r.rank_lo, r.rank_hi
    a = int(post.price_sorted.searchsorted(lo, side="left"))
    b = int(post.price_sorted.searchsorted(hi, side="right"))
    return _Pred(
        max(0, b - a),
        lambda: post.price_order[a:b],
        _rank_test(v, ra, rb),
        fold=(ra, rb),
        prange=(a, b),
        one=_rank_one(v, ra, rb),
    )


def _rank_test(v: Any, ra: int, rb: int) -> Any:
    """The test ``ra <= price rank < rb`` of positions (or a slice of them), one gather."""

    def test(P: Any) -> np.ndarray:
        rank = v.price_rank[P]
        ok = rank >= ra
        ok &= rank < rb
        return ok

    return test


def _rank_one(v: Any, ra: int, rb: int) -> Any:
    """:func:`_rank_test` of one position (:attr:`_Pred.one`)."""
    rank = v.price_rank
    return lambda i: ra <= rank.item(i) < rb


def _seed_passes(preds: list[_Pred], pos: int) -> bool:
    """Whether position ``pos`` passes every predicate: their scalar tests (:attr:`_Pred.one`), or
    the array test of a one-item array for a predicate without one."""
    one = None
    for p in preds:
        if p.one is not None:
            if not p.one(pos):
                return False
        else:
            if one is None:
                one = np.array([pos])
            if not bool(p.test(one)[0]):
                return False
    return True


def _at_defaults(cfg: FilterConfig) -> bool:
    """Whether every field of ``cfg`` is at its default (one dict comparison, in C): then no mask
    rule is on, nor the seed's category block; only the seed's exclusion and the adult rule."""
    cls = cfg.__class__
    plain = _PLAIN_DEFAULTS.get(cls)  # filled at the searcher's creation (prepare_defaults)
    if plain is None:
        plain = plain_defaults(cls)
    return cfg.__dict__ == plain


def _list_fields_only(cfg: FilterConfig) -> bool:
    """Whether ``cfg`` sets no field but those of the rules the lists answer (``_LIST_FIELDS``):
    then no other rule is on (a rule is on only through its own fields; at their defaults only
    the adult rule and the seed's exclusion are), with one pass over the config's fields."""
    cls = cfg.__class__
    plain = _PLAIN_DEFAULTS.get(cls)
    if plain is None:
        plain = plain_defaults(cls)
    for name, value in cfg.__dict__.items():
        if name not in _LIST_FIELDS and value != plain[name]:
            return False
    return True


def _ranges(order: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The positions ``order[a[i]:b[i]]`` of every range, one after the other (not sorted as a
    whole: :func:`_top_by_position` breaks ties by position), without a Python loop per range."""
    if len(a) == 1:
        return order[a[0] : b[0]]
    if 0 < len(a) <= _SORT_IN_PYTHON // 2:  # a few ranges: their slices (views) joined, in 3 NumPy steps
        return np.concatenate([order[x:y] for x, y in zip(a.tolist(), b.tolist())])
    lens = b - a
    total = int(lens.sum())
    # each output slot's source: its range's start, minus where that range begins in the output
    shift = np.repeat(a - (np.cumsum(lens) - lens), lens)
    shift += np.arange(total, dtype=shift.dtype)
    return order.take(shift)


def _fold_brands(preds: list[_Pred], post: Postings) -> list[_Pred]:
    """A brand allow-list with a price band and/or the adult rule as one predicate over the
    compound brand list (:meth:`Postings.brand_ranges`): its exact count from binary searches and
    its positions as ranges, instead of the brands' whole lists tested by the other rules (a
    31,600-position price test was 0.2 to 0.8 ms of a brand+price pair's first query)."""
    brand = next((p for p in preds if isinstance(p.fold, np.ndarray)), None)
    if brand is None:
        return preds
    price = next((p for p in preds if isinstance(p.fold, tuple)), None)
    adult = next((p for p in preds if p.fold is True), None)
    if price is None and adult is None:
        return preds
    folded = [p for p in (brand, price, adult) if p is not None]
    tests = [p.test for p in folded]

    def test(P: np.ndarray) -> np.ndarray:
        ok = tests[0](P)
        for t in tests[1:]:
            ok &= t(P)
        return ok

    rest = [p for p in preds if all(p is not f for f in folded)]
    ones = [p.one for p in folded]
    one = None if None in ones else (lambda i: all(o(i) for o in ones))
    at = brand.fold
    if price is None:  # brand + adult rule: each brand's items that are not adult lead its range
        a = post.brand_start.take(at)
        cnt = post.brand_plain.take(at)
        b = a + cnt
        return [_Pred(int(cnt.sum()), lambda: _ranges(post.brand_order, a, b), test, one=one), *rest]
    pa, pb = price.prange
    if brand.lut is not None and pb - pa <= _FOLD_SCAN_PER_BRAND * len(at):
        # the band's items in price order, one contiguous pass: their brand codes through the
        # allow-list's table (2 binary searches per brand, cold, cost more than this pass)
        ok = brand.lut[post.brand_by_price[pa:pb]]
        if adult is not None and post.adult_by_price is not None:
            ok &= ~post.adult_by_price[pa:pb]
        return [_Pred(int(np.count_nonzero(ok)), lambda: post.price_order[pa:pb][ok], test, one=one), *rest]
    a, b = post.brand_ranges(at, price.fold, adult is not None)
    return [_Pred(int((b - a).sum()), lambda: _ranges(post.brand_order, a, b), test, one=one), *rest]


def _top_by_position(sc: np.ndarray, cand: np.ndarray, f: int) -> list[int]:
    """The positions (from ``cand``) of the ``f`` best finite scores of ``sc`` (scores of positions
    ``cand``, in any order), best first, ties broken by the lower position as exact search over
    ascending positions does: every score tied with the ``f``-th is a candidate, not just the first
    found. A list: the caller reads the rows' scores and ids from it (no gather of ``cand`` by
    columns, each NumPy step costing a first query 5 to 10 us with cold caches)."""
    m = len(sc)
    if f < m:
        pre = top_prefix(sc, f)  # every score from a bound of the f-th on, ties included
        if pre is None:
            kth = np.partition(sc, m - f)[m - f]  # the f-th largest
            pre = (sc >= kth).nonzero()[0]  # np.flatnonzero's wrapper (ravel, a call) is not needed: 1-D
        if len(pre) <= _SORT_IN_PYTHON:  # a few (k, without ties at the cut): ordered in Python
            s_, c_ = sc[pre].tolist(), cand[pre].tolist()
    elif m <= _SORT_IN_PYTHON:  # all of them, a few
        pre = None
        s_, c_ = sc.tolist(), cand.tolist()
    else:
        pre = np.arange(m)
    if pre is None or len(pre) <= _SORT_IN_PYTHON:
        order = sorted(range(len(s_)), key=lambda j: (-s_[j], c_[j]))[:f]
        return [c_[j] for j in order if -math.inf < s_[j] < math.inf]  # finite scores only
    top = pre[np.lexsort((cand[pre], -sc[pre]))[:f]]
    return cand[top[np.isfinite(sc[top])]].tolist()


def _touch(a: np.ndarray) -> None:
    """Read one byte in every 2 MB of a contiguous array (:meth:`ColdMixin._warm_memory`)."""
    if a.size and not a.dtype.hasobject and a.flags.c_contiguous:
        a.reshape(-1).view(np.uint8)[::_WARM_REGION].sum()


def _touch_graph(g: Any) -> None:
    """Read one element's vector per 2 MB of an hnswlib graph's base layer (links, vector and label
    of each element, in insertion order: the labels 0 .. n - 1 of this package's graphs). That
    warms the whole region where the graph lies on huge pages (:mod:`recsys.hugepages`); on 4 KB
    pages it reads one page of 512."""
    n = g.element_count
    step = max(1, _WARM_REGION // (4 * g.dim + 8 * g.M + 12))
    try:
        g.get_items(np.arange(0, n, step))
    except RuntimeError:  # labels other than 0 .. n - 1: not read
        pass


def _not_adult(v: Any, post: Postings) -> _Pred:
    def not_adult(P: np.ndarray) -> np.ndarray:
        return ~v.adult[P]

    return _Pred(
        len(v.adult) - v.n_adult,
        (lambda: post.not_adult) if post.not_adult is not None else None,
        not_adult,
        fold=True,
        one=lambda i: not v.adult.item(i),
    )
