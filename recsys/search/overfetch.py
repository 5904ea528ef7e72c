"""The over-fetch: unfiltered HNSW labels post-filtered by the eligible set, with a deeper fetch
when the first falls short (a mixin of :class:`recsys.search.searcher.FilteredSearcher`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recsys.search.beams import seed_lost
from recsys.search.planner import _FETCH_FACTOR, _FETCH_MIN
from recsys.search.query import DomainMask, KeyRange, Query
from recsys.search.ranked import SMALL_FETCH, fetch_need, rerank_rows
from recsys.search.result import SearchResult


class OverfetchMixin:
    """:meth:`_try_overfetch` (exact search or the over-fetch, by cost) and :meth:`_overfetch`."""

    def _try_overfetch(
        self, qq: Query, cand: KeyRange, n_elig: int, domain: int, refetch: bool = True
    ) -> SearchResult | str:
        """Exact search or the over-fetch, by expected cost (:meth:`_choose`), and the over-fetch when chosen.

        Returns the answer, or the plan an exact search must finish: ``"exact"`` (chosen by
        cost) or ``"hnsw_overfetch+exact_fallback"`` (the over-fetch fell short and fetching
        more would cost more than an exact search).
        """
        cf = qq.cf
        need = fetch_need(qq.k, cf.config)
        fetch = min(self.n, max(_FETCH_FACTOR * need, _FETCH_MIN))
        if cf.adjust is not None and self._adjusted_prefers_exact(domain):
            return "exact"  # boost/bury: the over-fetch costs more than its beam search (adjusted.py)
        if self._choose(cf, domain, False, n_elig, fetch, need) == "exact":
            return "exact"
        short, first = self._short_fetch, (None, None)
        if short is not None and short[0] is cf and short[1] == qq.pos and short[2] == fetch:
            if short[3] is self._index:  # the shortcut fetched the same labels for this query
                first = short[4:]
        got = self._overfetch(
            qq,
            cand,
            fetch,
            n_elig,
            domain,
            cf.lean,
            refetch=refetch,
            first_rows=first[0],
            first_dist=first[1],
        )
        return got if got is not None else "hnsw_overfetch+exact_fallback"

    def _fetch_lost(self, qq: Query, cand: Any, rows: np.ndarray, dist: np.ndarray) -> bool:
        """Whether an over-fetch for the seed at ``qq.pos`` came from a beam search that missed the
        seed's own vector (:func:`~recsys.search.beams.seed_lost`): its labels, however many pass
        the filter, are not the seed's neighbours (at 1M items a correlated category + price band
        filter's over-fetch read recall@10 0.0 for them). The seed's row is in the main graph
        whether it is eligible (``cand.seed_row``, dropped from the list) or not, listed itself
        (``exclude_seed=False``) or not: it is the test either way."""
        if not qq.own:
            return False  # a vector of its own (search_vector): the seed's row need not be near it
        seed = getattr(cand, "seed_row", -1)
        if seed < 0:  # not eligible, or listed: its row all the same
            seed = int(self.view.perm[qq.pos])
        if not self._self_first or not len(rows) or int(rows[0]) == seed:  # no list made
            return False
        return seed_lost(seed, rows, dist, self._self_first)  # the labels searched only past the distance

    def _overfetch(
        self,
        qq: Query,
        cand: KeyRange | DomainMask,
        fetch: int,
        n_elig: int,
        domain: int,
        lean: bool,
        auto: bool = True,
        scan: bool = False,
        refetch: bool = True,
        first_rows: np.ndarray | None = None,
        first_dist: np.ndarray | None = None,
    ) -> SearchResult | None:
        """THE over-fetch: unfiltered HNSW for ``fetch`` candidates, post-filtered by ``cand``.

        ``lean`` (no ranked-list rules, cosine space): hnswlib's distances are exact (1 - dot of
        unit vectors, float32) and sorted, so the list is the first k eligible labels, with no
        rescoring; otherwise the eligible candidates are rescored exactly and go through the
        ranked-list rules (:meth:`_rank_rules`). Whether the first fetch filled the list is
        learned (``auto``). When it falls short, a 4x larger fetch follows (``refetch``) unless
        an exact search over the ``n_elig`` eligible items of the ``domain`` rows would cost
        less (:meth:`_next_fetch`; ``scan``: gathering them needs a pass over the domain).
        ``first_rows``: the labels of the first fetch when a batch (or the shortcut of
        :mod:`recsys.search.fast`) fetched them already; ``first_dist``: their distances, if known.

        Returns the answer, or None when an exact search must finish the query.
        """
        cf, k, n = qq.cf, qq.k, self.n
        q2 = qq.q[None, :]
        index = self._index if self._index is not None else self.index
        if lean and auto and cf.stats.beam > fetch:  # a beam wide enough for the labels' depth
            fetch = min(n, cf.stats.beam)
        first, kr = True, None
        while True:
            if first_rows is not None:
                rows, dist, first_rows = first_rows, first_dist, None
            else:
                rows, dist = index.knn_one(q2, fetch)
            fetched_all = len(rows) >= n
            if lean:
                sel, rl = cand.first(rows, k)
                final = len(sel) >= k or fetched_all or len(sel) >= n_elig
            else:
                if cf.adjust is not None:  # boost/bury: the fetch, and the classes that could climb
                    kp, ks, dropped, final = self._rank_adjusted(qq, cand, rows, dist, fetched_all, n_elig)
                elif isinstance(cand, KeyRange) and len(rows) <= SMALL_FETCH:  # in lists (ranked.py)
                    kp, kr, ks, dropped, final = rerank_rows(
                        self, qq.q, rows, cand, k, cf.config, n_elig, fetched_all
                    )
                else:
                    cp, kr = cand.positions(rows), None
                    kp, ks, dropped, final = self._rerank(
                        qq.q, cp, k, cf.config, fetched_all or len(cp) >= n_elig
                    )
            if final and not fetched_all and dist is not None and self._fetch_lost(qq, cand, rows, dist):
                final = False  # the beam search missed the seed's neighbourhood: a wider one
            if first and auto:
                cf.stats.record(final)
                qq.short = not final
                if lean and final and len(sel) >= k:
                    self._learn_depth(cf.stats, sel[-1] + 1, k, n_elig)
            first = False
            if final:
                break
            if not refetch:
                return None
            fetch = self._next_fetch(fetch, domain, n_elig, scan, auto)
            if fetch is None:
                return None
        if not lean:
            if kr is None:
                return self._result(qq, kp, ks, dropped, "hnsw_overfetch", n_elig)
            return self._listed(qq, kr, ks, dropped, "hnsw_overfetch", n_elig)
        top = [rl[j] for j in sel]
        dl = dist[: len(rl)].tolist()
        return SearchResult(
            list(map(self.view.item_id_by_row.__getitem__, top)),
            [1.0 - dl[j] for j in sel],
            top,
            qq.removed,
            "hnsw_overfetch",
            n_elig,
            (time.perf_counter() - qq.t0) * 1e3,
            qq.skipped,
            qq.seed_id,
        )
