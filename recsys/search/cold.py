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

from typing import Any

import numpy as np

from recsys.filters import FilterConfig
from recsys.search.batch import fetch_for
from recsys.search.compiled import CompiledFilter
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
_COLD_SEED_RULES = frozenset({"exclude_seed", "adult_next_to_non_adult", "same_category"})
#: configs whose cold form is kept (by hash; None: not answerable this way)
_COLD_SPECS_MAX = 64
#: per position read from a posting list (building, sorting): in the planner's units
_COLD_LIST_ROW = 0.01


class Postings:
    """Inverted lists of catalogue positions per attribute value, built once per searcher."""

    __slots__ = ("brand_order", "brand_start", "price_order", "price_sorted", "not_adult")

    def __init__(self, view: Any) -> None:
        n = len(view.brand)
        idx = np.int32 if n < np.iinfo(np.int32).max else np.int64
        codes = view.brand.astype(np.int64)
        counts = np.bincount(codes, minlength=len(view.brand_keys))
        self.brand_start = np.concatenate(([0], np.cumsum(counts)))
        self.brand_order = np.argsort(codes, kind="stable").astype(idx)  # per brand, in position order
        order = np.argsort(view.price, kind="stable")  # a missing price (NaN) sorts last
        known = int(np.count_nonzero(~np.isnan(view.price)))
        self.price_order = order[:known].astype(idx)
        self.price_sorted = view.price[self.price_order]
        self.not_adult = (
            np.flatnonzero(~view.adult).astype(idx) if n - view.n_adult <= COLD_SCAN_MAX else None
        )

    @property
    def nbytes(self) -> int:
        arrays = (self.brand_order, self.brand_start, self.price_order, self.price_sorted, self.not_adult)
        return sum(a.nbytes for a in arrays if a is not None)


class _Pred:
    """One rule over positions: its eligible count, its posting list (None: not kept), its test."""

    __slots__ = ("count", "posting", "test", "span")

    def __init__(self, count: int, posting: Any, test: Any, span: tuple[int, int] | None = None) -> None:
        self.count, self.posting, self.test = count, posting, test
        #: (start, end) when the eligible positions are one slice (the seed's category block)
        self.span = span


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
        if (
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
                bc = v.brand_code
                codes = sorted({bc[b] for b in (allow if mr.name == "brands_allow" else deny) if b in bc})
                lut = np.zeros(len(v.brand_keys), dtype=bool)
                lut[codes] = True
                st = post.brand_start
                at = np.array(codes, dtype=np.int64)
                hit = int((st[at + 1] - st[at]).sum())  # one pass: a Python sum over 500 brands took 1 ms
                if mr.name == "brands_allow":
                    p = _Pred(
                        hit,
                        lambda codes=codes, st=st: _concat(post.brand_order, st, codes),
                        lambda P, lut=lut: lut[v.brand[P]],
                    )
                else:
                    p = _Pred(n - hit, None, lambda P, lut=lut: ~lut[v.brand[P]])
            elif mr.name == "price_range":
                lo = cfg.price_min if cfg.price_min is not None else -np.inf
                hi = cfg.price_max if cfg.price_max is not None else np.inf
                a = int(post.price_sorted.searchsorted(lo, side="left"))
                b = int(post.price_sorted.searchsorted(hi, side="right"))
                p = _Pred(
                    max(0, b - a),
                    lambda a=a, b=b: post.price_order[a:b],  # in price order: a view, no sort
                    lambda P, lo=lo, hi=hi: (v.price[P] >= lo) & (v.price[P] <= hi),
                )
            elif mr.name == "exclude_adult":
                p = _not_adult(v, post)
            else:
                return None  # a rule the lists do not cover
            removed[mr.name] = n - p.count
            preds.append(p)
        return preds, removed, skipped

    def _search_cold(
        self, q: np.ndarray, pos: int, cfg: FilterConfig, k: int, t0: float
    ) -> SearchResult | None:
        """Answer a seeded automatic query of a config that is not compiled yet from the inverted
        lists (module docstring), and queue its compilation; None: the compiled path answers."""
        if self._inline() or self._index is None or self._tie_of is not None or self.space != "cosine":
            return None
        key = cfg.config_hash()
        hit = self._compiled.get(key)
        if hit is not None and not self._cold_until_set(hit):
            return None
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
        preds, removed, skipped = spec
        v, n = self.view, self.n
        cf = CompiledFilter(cfg, None, removed, n)  # the rule table's seed rules need only these
        cf.base_skipped = skipped
        cf.seed_rules = [rl for rl in SEED_RULES if rl.on(cfg)]
        r = self._seed_rules(cf, pos)
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
            preds = [*preds, _Pred(e - s, lambda: np.arange(s, e), lambda P: (P >= s) & (P < e), (s, e))]
        if r.no_adult and v.n_adult and not any(p.test.__name__ == "not_adult" for p in preds):
            preds = [*preds, _not_adult(v, post)]
        if not preds:
            return None  # no rule bites: compiling costs nothing worth avoiding
        elig: np.ndarray | None = None
        if len(preds) == 1:
            count = preds[0].count
        else:  # the exact count: the shortest list, the other rules tested on it
            listed = [p for p in preds if p.posting is not None]
            first = min(listed, key=lambda p: p.count) if listed else None
            if first is None or first.count > COLD_SCAN_MAX:
                return None
            elig = first.posting()
            for p in preds:
                if p is not first and len(elig):
                    elig = elig[p.test(elig)]
            count = len(elig)
        one = np.array([pos])
        seed_in = r.seed >= 0 and all(bool(p.test(one)[0]) for p in preds)
        m = count - seed_in
        qq = Query(q, pos, cf, k, t0, v.item_id_list[pos], r.removed, r.skipped)
        self._queue_cold(cfg, r.no_adult)
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
            for _ in range(2):  # the fetch sized to the share, then 4x more
                if fetch >= n:
                    break
                labels, dist = self._index.knn_one(q2, fetch)
                rows = labels.astype(np.int64)
                P = v.pos_of_row[rows]
                ok = preds[0].test(P)
                for p in preds[1:]:
                    ok &= p.test(P)
                if seed_in:
                    ok &= P != pos
                sel = np.flatnonzero(ok)[:k]
                if len(sel) >= min(k, m):
                    scores = [1.0 - d for d in dist[sel].tolist()]  # as the compiled over-fetch scores
                    return self._listed(qq, rows[sel].tolist(), scores, None, "hnsw_overfetch", m)
                fetch *= 4
            if not exact_ok:
                return None
        if span is not None:
            s, e = span
            sc = _matvec(self.unit[s:e], q)
            if seed_in:
                sc[pos - s] = -np.inf
        else:
            cand = np.asarray(posting())
            sc = _matvec(np.take(self.unit, cand, axis=0), q)
            if seed_in:
                sc[cand == pos] = -np.inf
        if span is not None:  # columns in position order: ties to the lower column, i.e. position
            top, vals = topk(sc, min(k, m))
            kp = top[np.isfinite(vals)].astype(np.int64) + s
        else:  # a posting list in any order (unsorted: a sort of 10k positions was 0.16 ms at 1M)
            kp = cand[_top_by_position(sc, cand, min(k, m))].astype(np.int64)
        kp, ks = self._canon(kp, q)
        return self._result(qq, kp, ks, None, "exact_subset" if span is None else "exact_range", m)

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

    def _queue_cold(self, cfg: FilterConfig, no_adult: bool) -> None:
        """Compile ``cfg`` and build its eligible set in the background (once)."""

        def build() -> None:
            cf = self.compile(cfg)
            if cf.static:  # a category filter's seed table follows its use (_TABLE_AFTER queries)
                self._static_set(cf, no_adult, wait=True)

        self._bg.submit((cfg.config_hash(), "cold", no_adult), build)


def _concat(order: np.ndarray, start: np.ndarray, codes: list[int]) -> np.ndarray:
    """The positions of the brands ``codes``: each brand's list in position order, one after the
    other (not sorted as a whole: :func:`_top_by_position` breaks ties by position)."""
    if len(codes) == 1:
        return order[start[codes[0]] : start[codes[0] + 1]]
    return np.concatenate([order[start[c] : start[c + 1]] for c in codes])


def _top_by_position(sc: np.ndarray, cand: np.ndarray, f: int) -> np.ndarray:
    """Columns of the ``f`` best finite scores of ``sc`` (scores of positions ``cand``, in any
    order), best first, ties broken by the lower position as exact search over ascending
    positions does: every score tied with the ``f``-th is a candidate, not just the first found."""
    m = len(sc)
    pre = None
    if f < m:
        pre = top_prefix(sc, f)  # every score from a bound of the f-th on, ties included
        if pre is None:
            kth = np.partition(sc, m - f)[m - f]  # the f-th largest
            pre = np.flatnonzero(sc >= kth)
    else:
        pre = np.arange(m)
    top = pre[np.lexsort((cand[pre], -sc[pre]))[:f]]
    return top[np.isfinite(sc[top])]


def _not_adult(v: Any, post: Postings) -> _Pred:
    def not_adult(P: np.ndarray) -> np.ndarray:
        return ~v.adult[P]

    return _Pred(
        len(v.adult) - v.n_adult, (lambda: post.not_adult) if post.not_adult is not None else None, not_adult
    )
