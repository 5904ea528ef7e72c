"""The planner: estimated costs of each plan, the learned fill rates, the choice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recsys.search.beams import beam_for, keep, measure_beams, measured

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.batch import StaticSet
    from recsys.search.compiled import CompiledFilter

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
#: ... or every 64th once the rate is known to be hopeless: after at least _BACKOFF_TRIES tries,
#: the rule-of-three upper bound of the fill rate ((hits + 3) / tries, about 95%) is below the
#: break-even rate c_h / c_x. A 1% category block of 1M items independent of the vectors (exact
#: search over 10k rows) explored every 16th query: one beam search of 64 that never filled, then
#: the exact search anyway (6% of its queries at about twice the cost)
_EXPLORE_HOPELESS = 64
_BACKOFF_TRIES = 16.0
_DECAY_AT = 256.0  # halve the counts past this many tries (forget old behaviour)
_DEPTH_RATE = 0.125  # weight of one over-fetch in the moving mean of the k-th eligible label's depth
_INDEP_SHARE = 0.75  # a filter whose k-th label lies at least this share of the independent depth
#: ... in at least half of its over-fetches (a moving share, :attr:`FillStats.shallow`): a filter that
#: follows the vectors has a few seeds far from their category's items (the bench's "strays", a
#: tenth of a 50% category level's seeds) whose k-th label lies 3x to 10x deeper than the rest, and
#: one of them moved the moving mean depth by 5 to 11 labels: at 1M items a correlated category
#: 50% level's mean crossed the threshold (16.6 against 16.5) and the filter was weighed as
#: independent (a beam of 128, its blocks' graphs). The share of shallow over-fetches read 0.96 to
#: 0.99 for such filters (0.87 at its lowest, where that mean read 16.5 to 16.8) and 0.13 to 0.17 for
#: the four independent 50% filters at 100k (binomial at k = 10: 0.15)
_SHALLOW_MAX = 0.5
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
#: gathering rows spread over more than ``_S_CACHE_BYTES`` (a price band inside a 100k-row category
#: block at 1M items: 25.6 MB at d=64) costs this per row in place of ``_COST_GATHER_PER_ROW``: the
#: gather, product and selection read 0.10 to 0.115 us a row after other work evicted the caches
#: (own probe: 3k to 10k rows of a 100k-row block of a 1M x 64 array) against 0.045 to 0.06 warm;
#: in the 1M bench the band seeds' exact plans (6.3k to 10.7k rows) read 0.9 to 1.1 ms of CPU where
#: they were priced 0.40 to 0.64 ms, and their block graph's beam, priced above them, about 0.7 ms
#: (issue 18, s39-p)
_COST_GATHER_SPREAD_PER_ROW = 0.075
#: what an over-fetch costs beyond its beam search, in the same units: testing its labels against
#: the filter, learning its depth, the result's ids. Measured against raw hnswlib at the same beam
#: (issue 18, s38): a 50% filter's over-fetch at beam 64 read 1.29x to 1.41x raw p50 at 100k (flag,
#: brand, price band, random category; quiet and at load 9, where ``knn_query`` at beam 64 costs
#: what it costs at k = 11), and 1.42x at beam 72 at 1M, where beam 72 alone costs 1.10x; the same
#: sets answered from their own graphs read 0.99x to 1.05x. About a third of a beam search at ef 64
#: (63 here): a big set's graph was weighed by the beams alone (1.10x at beam 72, under
#: ``_SUB_GAIN``) and never built, its over-fetch measuring 1.42x
_S_OVERFETCH_WORK = 22.0
#: a static filter gets its own HNSW index over its eligible block (built in the background)
#: once it has answered this many queries, keeps at least this many items, and its exact
#: search costs more than this many beam searches
_SUB_AFTER = 16
_SUB_MIN_ROWS = 2048
_SUB_GAIN = 1.3
#: most memory the per-category graphs of one filter may take (each block's graph, positions and
#: rows: :func:`~recsys.search.static.block_bytes_estimate`; a boosted config's adjusted graphs
#: too). The graphs of one category level partition the catalogue, so a whole level costs about
#: one more main graph: at 1M x 64 (M=16) a 10% level's ten 100k-row blocks count 426 MB, within
#: it. At 256 MiB, with each block's dense copy kept beside its graph (68 MB a block), a filter
#: held 4 of them and the other six blocks' seeds over-fetched the main graph (a random 10%
#: category: 3.0x raw hnswlib's p50 at 1M; issue 18, s35-L)
_BLOCKS_MAX_BYTES = 512 << 20
#: most memory the category-block graphs of at most ``BLOCK_MAX_SHARE`` of the catalogue may hold
#: together in one searcher: those of every cached compiled filter (each within its own
#: ``_BLOCKS_MAX_BYTES``) and those kept for sharing (:meth:`~recsys.search.static.StaticMixin.
#: _share`). Six cached filters of different masks could otherwise hold 6 x 512 MiB; the least
#: used graphs make room for a new one (:meth:`~recsys.search.static.StaticMixin._fit_block_graph`).
#: At 1M x 64 (M=16) a 10% level's ten graphs count 406 MiB and a 1% level's hundred about 490 MiB:
#: two whole levels, about 2.5x the main graph (404 MB); the graphs over ``BLOCK_MAX_SHARE`` keep
#: their own cap (``_BIG_SUBS_MAX_BYTES``)
_BLOCK_GRAPHS_MAX_BYTES = 1 << 30
#: most memory the graphs of eligible sets over ``BLOCK_MAX_SHARE`` of the catalogue may take
#: together, over the compiled filters in the searcher's cache (:meth:`~recsys.search.static.
#: StaticMixin._maybe_big_sub`). At 1M x 64 (M=16) a 50% filter's graph holds 208 MB (500k rows:
#: vectors, links, ids) and a 50% category filter's two block graphs 416 MB: four static 50%
#: filters, or two category ones, at once. Beside what a 1M x 64 searcher holds anyway (vectors
#: 256 MB, the main graph 404 MB, the compiled-filter cache up to about 400 MB, and up to
#: ``_BLOCKS_MAX_BYTES`` of block graphs per cached filter, shared by the filters of one mask) it
#: bounds the growth to 2.5x the main graph; a larger catalogue or dimension gets fewer such graphs (none once one exceeds it)
_BIG_SUBS_MAX_BYTES = 1 << 30


@dataclass
class FillStats:
    """What the planner learns per compiled filter: how often its first over-fetch filled the list.

    Decayed counts, updated without a lock (a lost update only nudges a statistic).
    ``queries``: automatic-plan queries that weighed the over-fetch against exact search.
    """

    first_tries: float = 0.0
    first_hits: float = 0.0
    queries: int = 0
    #: how deep (labels read, the seed's included) its over-fetch usually finds the k-th eligible
    #: label (a moving mean), and the beam the main index needs at that depth (0: not known yet;
    #: :mod:`recsys.search.beams`)
    depth: float = 0.0
    beam: int = 0
    #: the same depth were filter and vectors independent (k + 1 over the eligible share; a
    #: moving mean): a filter that follows the vectors finds its k-th label far sooner, and its
    #: eligible neighbours are the well-connected ones, so its beam is left alone
    indep: float = 0.0
    #: the share of its over-fetches whose k-th label lay shallower than ``_INDEP_SHARE`` of the
    #: independent depth (a moving mean, a plain mean over the first ``1 / _DEPTH_RATE``), and how
    #: many were seen: the filter follows the vectors while it is over ``_SHALLOW_MAX`` (the median
    #: depth, not the mean, which a few deep seeds move)
    shallow: float = 0.0
    depths: int = 0

    def independent(self) -> bool:
        """Whether the filter behaves as if independent of the vectors (its median depth at least
        ``_INDEP_SHARE`` of the independent one): from its first learned depth on (a 50% filter's
        first few hundred queries at the fetch's beam read recall@10 0.981 at 1M items); a shallow
        second depth after a deep first one makes it 0.5, so one deep seed first widens one query."""
        return self.depths > 0 and self.shallow < _SHALLOW_MAX

    def fill_rate(self, prior: float) -> float:
        """Estimated chance that the first over-fetch fills the list."""
        return (self.first_hits + _PRIOR_WEIGHT * prior) / (self.first_tries + _PRIOR_WEIGHT)

    def record(self, filled: bool) -> None:
        """Learn from one first over-fetch."""
        tries, hits = self.first_tries + 1.0, self.first_hits + float(filled)
        if tries > _DECAY_AT:
            tries, hits = tries / 2, hits / 2
        self.first_tries, self.first_hits = tries, hits


class PlannerMixin:
    """Cost estimates and plan choice of :class:`~recsys.search.searcher.FilteredSearcher`."""

    # -- the over-fetch's beam -----------------------------------------------------------
    def _learn_depth(self, st: FillStats, depth: int, k: int, n_elig: int) -> None:
        """Learn from one filled over-fetch how deep its k-th eligible label lay, and keep the
        beam the main index needs at that depth (:mod:`recsys.search.beams`; measured once per
        searcher and ef in the background, off the request path) for a filter that behaves as
        if independent of the vectors (its depth at least ``_INDEP_SHARE`` of the independent
        one). A filter that follows the vectors (a category over clusters: at 1M items its
        eligible labels 13 to 27 deep had recall 0.997 at ef=64) keeps the fetch's beam."""
        indep = (k + 1) * self.n / max(n_elig, 1)
        d, e = st.depth, st.indep
        if d == 0.0:
            st.depth, st.indep = d, e = float(depth), indep
        else:
            st.depth = d = d + (depth - d) * _DEPTH_RATE
            st.indep = e = e + (indep - e) * _DEPTH_RATE
        st.depths = seen = st.depths + 1
        shallow = float(depth < _INDEP_SHARE * indep)
        st.shallow += (shallow - st.shallow) * max(_DEPTH_RATE, 1.0 / seen)
        index = self._index
        if index is None or not st.independent():
            st.beam = 0
            return
        beams = self._beams
        if beams is None or beams[0] != index.ef:
            self._request_beams(index)
            return
        st.beam = beam_for(beams[1], d)

    def _request_beams(self, index) -> None:
        """Measure the main index's beams (:mod:`recsys.search.beams`) in the background, once per
        index object and ef (shared by the searchers of one index). Asked for when a searcher with an
        index is created, so that they are known before a filter's first over-fetches have taught
        it its depth: asked for only then, a 50% filter answered its first few hundred queries
        with the narrow beam (at 1M items, recall@10 0.981 where the widened beam reached 0.99)."""
        ef = index.ef
        got = measured(index, ef)
        if got is not None:
            self._beams = (ef, got)
            return
        if self._beams_asked == ef or self._inline():
            return
        self._beams_asked = ef

        def measure() -> None:
            beams = measured(index, ef)
            if beams is None:
                beams = measure_beams(
                    index._index.knn_query, self.unit, self.view.perm, ef, pause=self._bg.pause
                )
                keep(index, ef, beams)
            self._beams = (ef, beams)

        self._bg.submit(("beams", ef), measure)

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

    def _range_exact_cost(self, span: int, n_elig: int) -> float:
        """Estimated cost (us) of an exact search over a key range's ``n_elig`` rows, which lie
        spread over ``span`` rows of the searcher's vectors (a price band inside a category block):
        a dense search over the span, or a gather of the rows, priced by their spread
        (``_COST_GATHER_SPREAD_PER_ROW`` once the span outgrows the caches)."""
        dense, gather = self._exact_costs(span, n_elig, scan=False)
        if span * self.dim * 4 > _S_CACHE_BYTES:
            gather += n_elig * (_COST_GATHER_SPREAD_PER_ROW - _COST_GATHER_PER_ROW) * self._dscale
        return min(dense, gather)

    def _hnsw_cost(self, fetch: int) -> float:
        ef = self._index.ef if self._index is not None else self._ef
        return _COST_HNSW_BASE + _COST_HNSW_PER_EF * max(ef, fetch) * (0.5 + 0.5 * self._dscale)

    def _overfetch_bounds(self, cf: CompiledFilter, fetch: int) -> tuple[float, float]:
        """(domain rows, eligible count) at or below either of which :meth:`_choose` may prefer
        exact search to an over-fetch of ``fetch`` (no scan: a key index) at the filter's fill
        rate learned so far (no prior): above both, ``c_h < p * c_x`` whatever the seed."""
        p = cf.stats.fill_rate(0.0)
        if p <= 0.0:
            return float("inf"), float("inf")
        bar = self._hnsw_cost(fetch) / p - _COST_EXACT_BASE
        dense_row = _COST_DENSE_PER_ROW * self._dscale + _COST_SELECT_PER_ROW
        gather_row = (_COST_GATHER_PER_ROW + _COST_DENSE_PER_ROW) * self._dscale + _COST_SELECT_PER_ROW
        min_elig = bar / gather_row
        if self.exact_max_rows is not None:
            min_elig = max(min_elig, float(self.exact_max_rows))
        return bar / dense_row, min_elig

    def _next_fetch(
        self, fetch: int, domain: int, n_elig: int, scan: bool = False, auto: bool = True
    ) -> int | None:
        """The next, 4x larger over-fetch, or None when it would reach the whole catalogue or
        (``auto``) cost more than an exact search over the eligible items (``domain`` rows,
        ``n_elig`` eligible; ``scan``: gathering them needs a pass over the domain first)."""
        fetch *= 4
        if fetch >= self.n:
            return None
        if auto and 2 * self._hnsw_cost(fetch) > min(self._exact_costs(domain, n_elig, scan=scan)):
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
        st = cf.stats
        p = st.fill_rate(prior)
        st.queries += 1
        if c_h + (1.0 - p) * c_x < c_x:
            return "hnsw_overfetch"
        if st.first_tries < _EXPLORE_FIRST:
            return "hnsw_overfetch"
        hopeless = st.first_tries >= _BACKOFF_TRIES and (st.first_hits + 3.0) * c_x < c_h * st.first_tries
        if st.queries % (_EXPLORE_HOPELESS if hopeless else _EXPLORE_EVERY) == 0:
            return "hnsw_overfetch"
        return "exact"

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

    def _static_hnsw_ef(self, cost: float) -> int:
        """The widest beam whose search costs at most ``cost`` (:meth:`_static_hnsw_cost`'s inverse
        above the index's ef)."""
        return int((cost - _S_HNSW_BASE) / (_S_HNSW_PER_EF * (0.5 + 0.5 * self._dscale)))

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
        st = cf.stats
        st.queries += 1
        if c_h + (1.0 - st.fill_rate(0.99)) * c_x < c_x:
            return False
        return st.queries % _EXPLORE_EVERY != 0
