"""The shortcut of :meth:`FilteredSearcher.search` for the config answered last (issue 18).

Once a config's automatic plan has answered a query with one over-fetch that the planner
prefers (``hnsw_overfetch``), later queries with the same config object (a preset, an inline
filter parsed once, the default config) skip the general path's layers (the compiled-filter
lookup, the query object, the seed's rule resolution, the plan choice) and run it as one
function: the seed's position, one ``knn_query``, the eligibility test of the labels (a
per-row flag, or the seed-table key range) and the result. The general path's over-fetch
takes the first k eligible labels in HNSW order, so both give the same list, scores and counts
(``tests/unit/test_search.py`` checks this against fresh searchers and brute force).

:class:`FastPlan` kinds:

``trivial``
    No rule bites (the default config on a catalogue without adult items): k + 1 labels, the
    seed's row dropped.
``flag``
    A lean static filter whose eligible set has no dense block (it keeps more than
    ``BLOCK_MAX_SHARE`` of the catalogue: no graph of its own either): an over-fetch sized to its
    share, tested with the set's per-row flag. One variant per seed adultness, armed as seeds of
    each arrive.
``table``
    A lean filter answered from its seed table (same category, gender, price band relative to
    the seed): the seed's row gives its key range; a seed whose category block has its own graph
    is answered from that graph (:meth:`FastMixin._fast_block`, as the general path would); seeds
    whose exact search the planner would prefer, or whose category block is about to get its own
    graph, go to the general path.

Whatever the shortcut cannot answer exactly as the general path would (an unknown seed, k out
of range, the over-fetch falling short, hnswlib#444) returns None and the general path answers
(it records the miss); a short over-fetch of a static filter also disarms the plan, so that the
planner chooses again with what it learned, and a table plan re-derives its per-seed bounds.
"""

from __future__ import annotations

from itertools import compress, count, islice
from operator import itemgetter as _itemgetter
from time import perf_counter
from typing import Any

from recsys.search.batch import BLOCK_MAX_SHARE, fetch_for, near_full
from recsys.search.beams import seed_lost
from recsys.search.planner import _FETCH_FACTOR, _FETCH_MIN, _SUB_AFTER
from recsys.search.query import TABLE_COUNTS, KeyRange, Query, first_in_range, first_in_range_except
from recsys.search.ranked import fetch_need, rerank_rows
from recsys.search.result import SearchResult
from recsys.search.result import ids_at as _ids_at
from recsys.search.static import block_first, block_key_views, member_labels
from recsys.search.static import flat_view as _flat

#: ``1.0 - d`` as a C call (the no-filter shortcut's scores from hnswlib's cosine distances)
_ONE_MINUS = (1.0).__sub__

#: configs with a shortcut kept at once (serving presets, inline filters, Explore's current one)
_FAST_MAX = 16


def _ranked_table_ok(cf: Any) -> bool:
    """Whether :meth:`FastMixin._fast_ranked` answers as the general path for ``cf``: a seed table,
    ``max_per_brand`` its only non-lean part."""
    return (
        cf.seed_table is not None
        and not cf.lean
        and cf.adjust is None
        and cf.config.max_per_brand is not None
        # min_similarity's counts come from an exact scoring of every eligible item per query
        # (searcher._similarity_counts), which the general path adds: no shortcut for it
        and cf.config.min_similarity is None
    )


def _table_row(fp: FastPlan, pos: int, k: Any, need: int) -> list[int] | None:
    """The seed's row of the filter's seed table when the planner would over-fetch ``fp.fetch``
    labels for ``need`` eligible ones (None: an unknown seed, k out of range, or exact search
    cheaper for this seed or close to it: the general path answers)."""
    if pos < 0 or k.__class__ is not int or k < 1 or _FETCH_FACTOR * need > _FETCH_MIN:
        return None
    w = fp.width
    row = fp.table[pos * w : pos * w + w].tolist()
    n_elig, s, e = row[5], row[6], row[7]  # as laid out in query.TABLE_COUNTS
    if e - s <= fp.min_domain or n_elig <= fp.min_elig or n_elig <= k:
        return None
    return row


class FastPlan:
    """The shortcut's state for one config object (``cfg``, compared by identity)."""

    __slots__ = (
        "cfg",
        "cf",
        "answer",
        "knn",
        "counts",
        "variants",
        "adult",
        "table",
        "kvs",
        "min_domain",
        "min_elig",
        "block_max",
        "fetch",
        "width",
        "perm",
        "pos_of",
        "qunit",
        "ids",
        "drop",
        "graphs",
        "plain",
        "self_first",
    )

    def __init__(self, cfg: Any, cf: Any, answer: Any, knn: Any, perm: memoryview) -> None:
        self.cfg, self.cf, self.answer, self.knn = cfg, cf, answer, knn
        #: vector row by catalogue position (the view's ``perm``), read without NumPy dispatch
        self.perm = perm
        #: trivial: (removed, skipped, seed excluded, n_eligible)
        self.counts: Any = None
        #: flag: per seed adultness (0/1), (removed, skipped, ok_by_row, eligible count, {need: fetch})
        self.variants: list[tuple | None] = [None, None]
        self.adult: list[bool] | None = None
        self.table = self.kvs = None
        self.min_domain = self.min_elig = 0.0
        self.block_max = -1.0
        self.fetch = self.width = 0
        #: table: the filter's do-not-associate drops (seed position -> (positions, vector rows)
        #: inside its key range, ``cf.table_drop``), or None
        self.drop: dict[int, tuple[Any, list[int]]] | None = None
        #: table, category filters: block key -> (its eligible set with a graph, flat views of the
        #: set's vector rows and per-row flag), for :meth:`FastMixin._fast_block`
        self.graphs: dict[tuple[int, int, bool], tuple[Any, memoryview, memoryview]] = {}
        #: set by :meth:`FastMixin._keep_fast`: the searcher's ``pos_of_id`` and ``qunit``, and the
        #: catalogue view's ids (:func:`_ids_at`), read from the plan's slots (one object, no
        #: searcher attributes to chase after a beam search)
        self.pos_of: dict[str, int] = {}
        self.qunit: Any = None
        self.ids: list[str] = []
        #: set by :meth:`FastMixin._keep_fast`: nothing follows the answer (no tied vectors in the
        #: catalogue to complete, no pins to place), so :meth:`FilteredSearcher.search` returns it
        #: as it comes, reading nothing else after the beam search
        self.plain = False
        #: the seed is its own nearest item (the searcher's ``_self_first``): labels without it
        #: come from a lost beam search (beams.py: ``seed_lost``)
        self.self_first = False


class FastMixin:
    """Arming and answering :class:`FastPlan` (part of :class:`FilteredSearcher`)."""

    def _arm_fast(self, cfg: Any, res: SearchResult) -> None:
        """After the general path answered ``res`` for ``cfg`` (plan ``auto``): keep a shortcut for
        the config's next queries when its answer was the planner's over-fetch, or a category
        block's own graph (:meth:`_fast_block`)."""
        last = self._last
        cf = last[1] if last is not None and last[0] is cfg else None
        if cf is None or self._index is None or res.seed_item_id is None:
            return  # pins (``cf.place_rules``) are placed after the shortcut's answer (:meth:`search`)
        if res.plan in ("exact_range", "exact_subset") and not cf.cat_only:
            return  # an exact plan keeps a shortcut only for a category's small blocks (_fast_exact_block)
        if not cf.lean:
            fp = self._fast.get(id(cfg))
            armed = fp is not None and fp.cfg is cfg
            if not armed and _ranked_table_ok(cf):  # a serving preset with max_per_brand
                self._arm_table(cfg, cf, FastMixin._fast_ranked)
            elif not armed and cf.adjust_cat_only and res.plan == "hnsw_subindex":  # boost/bury
                self._arm_adjusted(cfg, cf)  # on a category block's graph (adjusted.py)
            return
        fp = self._fast.get(id(cfg))
        if fp is not None and fp.cfg is not cfg:
            fp = None
        if fp is not None and fp.answer is not FastMixin._fast_flag:
            return  # armed already
        v = self.view
        pos = v.pos_of_id[res.seed_item_id]
        knn = self._index._index.knn_query
        perm = self._perm_mv
        if perm is None:
            perm = self._perm_mv = _flat(v.perm)
        if cf.trivial:
            counts = cf.static_counts.get(0)
            if counts is not None:
                ex = "exclude_seed" in counts[0]
                fp = FastPlan(cfg, cf, FastMixin._fast_trivial, knn, perm)
                fp.counts = (counts[0], counts[2], ex, self.n - ex)
                self._keep_fast(fp)
        elif cf.static:
            key = v.adult.item(pos) if v.n_adult else False
            got = cf.static_counts.get(int(key))
            ss = cf.sets.get(got[1]) if got is not None else None
            if ss is None or ss.block is not None or ss.sub is not None or self._big_sub_open(cf, ss, got[1]):
                return  # a block or a graph (static.py), or a graph not decided yet: the general path
            if fp is None:
                fp = FastPlan(cfg, cf, FastMixin._fast_flag, knn, perm)
                fp.adult = v.adult if v.n_adult else None
            if fp.variants[key] is None:
                fp.variants[key] = (got[0], got[2], _flat(ss.ok_by_row), ss.n, {})
            self._keep_fast(fp)
        elif cf.seed_table is not None:
            self._arm_table(cfg, cf, FastMixin._fast_table)

    def _arm_table(self, cfg: Any, cf: Any, answer: Any) -> None:
        """Keep a table-kind shortcut (``answer``: :meth:`_fast_table` or :meth:`_fast_ranked`)."""
        if self._perm_mv is None:
            self._perm_mv = _flat(self.view.perm)
        table = cf.seed_table
        # a category filter whose blocks may get graphs of their own: :meth:`_fast_table`
        # sends a block's seeds to the general path once it has (or nearly has) one
        block_max = BLOCK_MAX_SHARE * self.n if cf.cat_only else -1.0
        fp = FastPlan(cfg, cf, answer, self._index._index.knn_query, self._perm_mv)
        fp.table, fp.kvs, fp.block_max = (
            _flat(table),
            [_flat(kv.by_row) for kv in cf.table_kvs],
            block_max,
        )
        fp.width = table.shape[1]
        fp.drop = cf.table_drop
        fp.fetch = min(self.n, _FETCH_MIN)
        fp.min_domain, fp.min_elig = self._overfetch_bounds(cf, fp.fetch)
        self._keep_fast(fp)

    def _keep_fast(self, fp: FastPlan) -> None:
        """Keep ``fp`` among the shortcuts (by the config's id: it holds the config, so the id is
        not reused while it is kept), the oldest dropped beyond ``_FAST_MAX``, and those whose
        compiled filter has left the compile cache (they would keep its arrays alive)."""
        live = self._compiled
        fasts = {  # a new dict, then swapped: readers never see one change size
            key: f for key, f in self._fast.items() if live.get(f.cf.config.config_hash()) is f.cf
        }
        v = self.view
        fp.pos_of, fp.qunit = v.pos_of_id, self.qunit
        fp.ids = v.item_id_by_row
        fp.plain = self._tie_of is None and not fp.cf.place_rules
        fp.self_first = self._self_first
        fasts[id(fp.cfg)] = fp
        while len(fasts) > _FAST_MAX:
            del fasts[next(iter(fasts))]
        self._fast = fasts

    # -- the three kinds --------------------------------------------------------------
    def _fast_trivial(self, seed_item_id: str, k: int, fp: FastPlan) -> SearchResult | None:
        """No rule bites: one ``knn_query`` for k + 1, the seed's row dropped. Everything it reads
        hangs off ``fp`` (a beam search has just evicted the caches: each object touched after it
        costs a miss), ``knn_query`` takes its arguments by position (no keyword parsing) and the
        seed's row as a 1-D view (an integer index: no slice object to build, NumPy's shorter
        indexing path; hnswlib reads a 1-D array as one row, the same call as a (1, d) view)."""
        t0 = perf_counter()
        pos = fp.pos_of.get(seed_item_id, -1)
        removed, skipped, ex, n_elig = fp.counts
        if pos < 0 or k.__class__ is not int or k < 1 or k > n_elig:
            return None
        try:
            labels, dist = fp.knn(fp.qunit[pos], k + ex, 1)
        except RuntimeError:  # hnswlib#444
            return None
        (rl,), (dl,) = labels.tolist(), dist.tolist()  # no row views: one NumPy call each
        if ex:
            seed_row = fp.perm[pos]
            if rl[0] == seed_row:  # usually: its own vector comes first
                del rl[0], dl[0]
            elif seed_row in rl:
                j = rl.index(seed_row)
                del rl[j], dl[j]
            elif seed_lost(seed_row, rl, dl, fp.self_first):
                return None  # the beam search missed the seed's neighbourhood: the general path retries
            else:
                del rl[k:], dl[k:]
        elif rl[0] != (row := fp.perm[pos]) and seed_lost(row, rl, dl, fp.self_first):
            return None  # the seed listed too (exclude_seed=False): its row is in the graph all the same
        return SearchResult(
            # the ids by one itemgetter call (as result.ids_at, without its frame)
            list(_itemgetter(*rl)(fp.ids)) if len(rl) > 1 else [fp.ids[r] for r in rl],
            list(map(_ONE_MINUS, dl)),  # 1.0 - d in C: no comprehension frame
            rl,
            dict(removed),
            "hnsw_overfetch",
            n_elig,
            (perf_counter() - t0) * 1e3,
            list(skipped) if skipped else [],
            # the seed's id as a str: a NumPy str (an id taken from an array) is copied from the
            # object in hand, where the view's id list is a cold read after the beam search
            seed_item_id
            if seed_item_id.__class__ is str
            else str(seed_item_id)
            if isinstance(seed_item_id, str)
            else self.view.item_id_list[pos],
            [],  # served_by: no default factory to call
        )

    def _fast_flag(self, seed_item_id: str, k: int, fp: FastPlan) -> SearchResult | None:
        """A lean static filter without a block: an over-fetch sized to its share (as
        :meth:`_search_static`), labels tested with the eligible set's per-row flag."""
        t0 = perf_counter()
        pos = fp.pos_of.get(seed_item_id, -1)
        if pos < 0 or k.__class__ is not int or k < 1:
            return None
        var = fp.variants[fp.adult.item(pos) if fp.adult is not None else 0]
        if var is None:
            return None
        removed, skipped, ok, m_all, fetches = var
        seed_row = fp.perm[pos]
        if "exclude_seed" not in removed or not ok[seed_row]:
            seed_row = -1
        need = k + (seed_row >= 0)
        fetch = fetches.get(need)
        if fetch is None:
            fetch = fetches[need] = fetch_for(need, m_all / self.n, self.n)
        m = m_all - (seed_row >= 0)
        if fetch >= self.n or m <= k:
            return None  # the planner searches exactly (or the set is tiny)
        if near_full(m_all, self.n, fetch):  # under one failing label expected in the fetch
            return self._fast_near_full(fp, pos, k, fetch, ok, seed_row, removed, skipped, m, t0)
        return self._fast_finish(
            fp,
            pos,
            k,
            fetch,
            ok,
            None,
            None,
            seed_row,
            dict(removed),
            list(skipped) if skipped else [],
            m,
            t0,
        )

    def _fast_near_full(
        self,
        fp: FastPlan,
        pos: int,
        k: int,
        fetch: int,
        ok: Any,
        seed_row: int,
        removed: dict[str, int],
        skipped: list[str],
        m: int,
        t0: float,
    ) -> SearchResult | None:
        """A static set holding nearly every item (under one label of ``fetch`` expected to fail:
        the default config on a catalogue with a few adult items, which gets no graph of its own,
        static.py ``_big_graph_size``): answered as :meth:`_fast_trivial` answers no filter, one
        ``knn_query`` with the failing labels and the seed's row dropped, without the over-fetch's
        depth learning (its depth is its share's). None when they leave fewer than k (the general
        path answers: a larger fetch, or exact) or the beam search was lost."""
        try:
            labels, dist = fp.knn(fp.qunit[pos : pos + 1], fetch, 1)
        except RuntimeError:  # hnswlib#444
            return None
        (rl,), (dl,) = labels.tolist(), dist.tolist()
        row = seed_row if seed_row >= 0 else fp.perm[pos]  # in the graph, eligible or listed or not
        if rl and rl[0] != row and seed_lost(row, rl, dl, fp.self_first):
            return None  # the beam search missed the seed's neighbourhood: the general path retries
        sel = [j for j, r in enumerate(rl) if ok[r] and r != seed_row]
        if len(sel) < k:
            return None
        del sel[k:]
        rows = [rl[j] for j in sel]
        return SearchResult(
            _ids_at(fp.ids, rows),
            [1.0 - dl[j] for j in sel],
            rows,
            dict(removed),
            "hnsw_overfetch",
            m,
            (perf_counter() - t0) * 1e3,
            list(skipped) if skipped else [],
            self.view.item_id_list[pos],
        )

    def _fast_table(self, seed_item_id: str, k: int, fp: FastPlan) -> SearchResult | None:
        """A lean filter with a seed table: the seed's key range from its row (as
        :meth:`_search_table`), when the planner would over-fetch for this seed."""
        t0 = perf_counter()
        pos = fp.pos_of.get(seed_item_id, -1)
        cf = fp.cf
        if cf.blocks and fp.block_max >= 0.0 and pos >= 0 and k.__class__ is int and k >= 1:
            got = self._fast_block(fp, pos, k, t0)  # the seed's block has its own graph
            if got is not None:
                return got
        row = _table_row(fp, pos, k, k)
        if row is None:
            return self._fast_exact_block(fp, pos, k, t0) if cf.cat_only else None
        var, lo, hi, _, _, n_elig, s, e, seed_in = row[:TABLE_COUNTS]
        if fp.block_max >= 0.0 and row[TABLE_COUNTS + cf.cat_col] >= 0:
            # its category block may get its own graph: the general path counts the block's uses
            # and queues it (static.py); until a block is that close, its seeds stay here. A block
            # over BLOCK_MAX_SHARE only while its graph is not decided yet (static.py: _big_block_use)
            key = (s, e, cf.adult_col >= 0 and row[TABLE_COUNTS + cf.adult_col] >= 0)
            ukey = key if e - s <= fp.block_max else (*key, "big") if self._big_block_open(cf, key) else None
            if ukey is not None:
                uses = cf.block_uses.get(ukey, 0)
                if uses >= _SUB_AFTER - 1 or key in cf.blocks:
                    return None
                cf.block_uses[ukey] = uses + 1
                if ukey is key and not cf.field_queued and e - s >= self.sub_index_min_rows:
                    self._level_use(cf, uses == 0)  # the level's count (static.py: _LEVEL_AFTER)
        # built per query, no cache of count rows: a price band relative to the seed makes nearly
        # every seed's row distinct, and a cache's lookup and copies cost more than the build
        removed, skipped = self._table_counts(cf, row[TABLE_COUNTS:])
        seed_row = fp.perm[pos] if seed_in else -1
        banned = drop = fp.drop.get(pos) if fp.drop else None
        if drop is not None:  # the seed's banned rows, tested with the key range: the seed's row too
            drop = drop[1] + [seed_row] if seed_row >= 0 else drop[1]
        key = ss = None
        if fp.block_max < 0.0 and cf.cat_col >= 0 and cf.blocks and row[TABLE_COUNTS + cf.cat_col] >= 0:
            # a key range inside a category block (a price band) whose block has a graph: a seed
            # whose main over-fetch would fall short is answered from it (or exactly), as the
            # general path would (static.py: _in_block_choice, _block_keyed)
            key = (s, e, cf.adult_col >= 0 and row[TABLE_COUNTS + cf.adult_col] >= 0)
            choice, ss = self._in_block_choice(cf, key, n_elig, k + 1, fp.fetch, cf.table_kvs[var])
            if choice is not None:
                if choice == "exact":
                    return None
                return self._fast_keyed_block(
                    fp, ss, key, pos, k, var, lo, hi, seed_row, banned, removed, skipped, n_elig, t0
                )
        got = self._fast_finish(
            fp,
            pos,
            k,
            fp.fetch,
            fp.kvs[var],
            lo,
            hi,
            -1 if drop is not None else seed_row,
            removed,
            skipped,
            n_elig,
            t0,
            drop,
        )
        if got is None and key is not None:  # fell short: the block's graph answers, if it has one
            ss = cf.blocks.get(key)
            if ss is not None and ss.sub is not None:
                got = self._fast_keyed_block(
                    fp, ss, key, pos, k, var, lo, hi, seed_row, banned, removed, skipped, n_elig, t0, True
                )
        return got

    def _fast_exact_block(self, fp: FastPlan, pos: int, k: Any, t0: float) -> SearchResult | None:
        """A category filter's seed whose block is too small for a graph of its own (under
        ``sub_index_min_rows``: never built, never counted towards its level's) and for which the
        planner chooses exact search: the block's exact search (:meth:`_keyed_plan` with the plan
        decided, as :meth:`_search_table` ends for it), without the general path's layers before it
        (the compiled-filter lookup, the block's use count, the key range and the plan's over-fetch
        step: a third of the query's time at 100k, issue 18's category 1% cases at 1.4x to 1.6x raw).
        None (the general path) for anything else: do-not-associate drops, a seed without a
        category, a block the planner would over-fetch for."""
        cf = fp.cf
        if pos < 0 or k.__class__ is not int or k < 1 or (fp.drop and pos in fp.drop):
            return None
        w = fp.width
        row = fp.table[pos * w : pos * w + w].tolist()
        n_elig, s, e = row[5], row[6], row[7]  # as laid out in query.TABLE_COUNTS
        counts = row[TABLE_COUNTS:]
        if e - s >= self.sub_index_min_rows or not n_elig or counts[cf.cat_col] < 0:
            return None
        need = fetch_need(k, cf.config)
        if (
            self._choose(cf, e - s, False, n_elig, min(self.n, max(_FETCH_FACTOR * need, _FETCH_MIN)), need)
            != "exact"
        ):
            return None
        removed, skipped = self._table_counts(cf, counts)
        qq = Query(fp.qunit[pos], pos, cf, k, t0, fp.ids[fp.perm[pos]], removed, skipped)
        qq.span = (s, e)
        return self._table_plan(qq, row, None, "exact")

    def _fast_keyed_block(
        self,
        fp: FastPlan,
        ss: Any,
        key: tuple[int, int, bool],
        pos: int,
        k: int,
        var: int,
        lo: int,
        hi: int,
        seed_row: int,
        banned: tuple[Any, list[int]] | None,
        removed: dict[str, int],
        skipped: list[str],
        n_elig: int,
        t0: float,
        missed: bool = False,
    ) -> SearchResult | None:
        """:meth:`_block_keyed` of the shortcut: the first k in the seed's key range of an
        over-fetch on its category block's graph (``missed``: after the main over-fetch fell short,
        learned as the general path learns it). None when that falls short too."""
        kept = fp.graphs.get(key)  # the block's rows as a flat view, kept per block (and set)
        if kept is None or kept[0] is not ss:
            kept = fp.graphs[key] = (ss, _flat(ss.rows), _flat(ss.ok_by_row))
        cf = fp.cf
        views = cf.block_key_views.get(key)  # the keys by the graph's labels, per key variant
        if views is None or views[0] is not ss:  # an adopted block's (or one built before its table)
            views = cf.block_key_views[key] = (ss, None)  # asked once: the gather is built off the path
            self._build_or_queue((id(cf), "key views", key), lambda: block_key_views(cf, key, ss))
            views = cf.block_key_views[key]  # built at once on a small catalogue
        got = block_first(
            ss,
            fp.qunit[pos : pos + 1],
            k,
            fp.kvs[var],
            lo,
            hi,
            seed_row,
            banned[1] if banned is not None else None,
            n_elig,
            kept[1],
            self._self_first,
            views[1][var] if views[1] is not None else None,
            fp.perm[pos] if seed_row < 0 else -1,
        )
        if got is None:
            return None
        if missed:
            self._short_fetch = None
            st = fp.cf.stats
            st.queries += 1  # the main graph's fetch fell short: as the general path learns it
            st.record(False)
        return self._graph_result(fp, pos, *got, removed, skipped, n_elig, t0)

    def _fast_block(self, fp: FastPlan, pos: int, k: int, t0: float) -> SearchResult | None:
        """A category filter whose seed's block has its own graph (``cf.blocks``, built in the
        background once the block is used often): one ``knn_query`` on that graph for k + 1 (and
        the seed's do-not-associate rows in the block, dropped), the seed's row dropped, as
        :meth:`_search_table` answers through :meth:`_search_block` (same list, scores, counts,
        eligible count and plan), without its layers. None: the block has no graph (yet), is too
        small for k, hnswlib#444, or the beam missed the seed's own vector (asked again wider by
        :meth:`_subindex_answer`); the general path answers."""
        w = fp.width
        row = fp.table[pos * w : pos * w + w].tolist()
        cf = fp.cf
        if row[TABLE_COUNTS + cf.cat_col] < 0:
            return None  # the seed has no category: no block
        key = (row[6], row[7], cf.adult_col >= 0 and row[TABLE_COUNTS + cf.adult_col] >= 0)
        got = fp.graphs.get(key)
        if got is None:
            ss = cf.blocks.get(key)
            if ss is None or ss.sub is None:
                return None
            got = fp.graphs[key] = (ss, _flat(ss.rows), _flat(ss.ok_by_row))
        ss, rows_of, ok = got
        ss.uses += 1
        drop = fp.drop.get(pos) if fp.drop else None
        n_drop = len(drop[1]) if drop else 0
        if ss.n <= k + 1 + n_drop:
            return None
        seed_row = test = fp.perm[pos]
        if not ok[test]:
            seed_row = test = -1  # not in the block's graph: nothing there to miss
        elif not cf.config.exclude_seed:
            seed_row = -1  # listed itself: its row the beam's test all the same (static.graph_row)
        fetch = k + 1 + n_drop
        # a lost seed asked again wider here (lost_answer); still lost (or hnswlib#444), None: the
        # general path's exact-backed plans
        got = member_labels(ss, fp.qunit[pos : pos + 1], fetch, test, test >= 0 and self._self_first, rows_of)
        if got is None:
            return None
        rl, dl = got[0][:fetch], got[1][:fetch]
        if n_drop:  # the seed's banned rows fetched past, then as without
            banned = drop[1]
            keep = [j for j, r in enumerate(rl) if r not in banned][: k + 1]
            rl, dl = [rl[j] for j in keep], [dl[j] for j in keep]
        if seed_row >= 0 and seed_row in rl:
            j = rl.index(seed_row)
            del rl[j], dl[j]
        else:
            del rl[k:], dl[k:]
        removed, skipped = self._table_counts(cf, row[TABLE_COUNTS:])
        return self._graph_result(fp, pos, rl, dl, removed, skipped, ss.n - (seed_row >= 0) - n_drop, t0)

    def _graph_result(
        self,
        fp: FastPlan,
        pos: int,
        rl: list[int],
        dl: list[float],
        removed: dict[str, int],
        skipped: list[str],
        n_elig: int,
        t0: float,
    ) -> SearchResult:
        """The answer of a category block's graph (rows ``rl`` at hnswlib's distances ``dl``), as
        the general path's :meth:`_subindex_answer` gives it."""
        return SearchResult(
            _ids_at(fp.ids, rl),
            [1.0 - d for d in dl],
            rl,
            removed,
            "hnsw_subindex",
            n_elig,
            (perf_counter() - t0) * 1e3,
            skipped,
            self.view.item_id_list[pos],
        )

    def _fast_ranked(self, seed_item_id: str, k: int, fp: FastPlan) -> SearchResult | None:
        """A seed-table filter whose only rule beyond lean ones is ``max_per_brand`` (a serving
        preset): the seed's key range from its row, one over-fetch of ``fp.fetch`` labels and :func:`~recsys.search.ranked.rerank_rows`,
        as the general path (:meth:`_search_table`, :meth:`_try_overfetch`, :meth:`_overfetch`)
        answers a seed the planner over-fetches for, without its layers: the compiled-filter
        lookup, the query object, the rule resolution, the cost model. Seeds near the planner's
        exact bounds, a list the fetch does not fill and k beyond the fetch go to the general path."""
        t0 = perf_counter()
        pos = fp.pos_of.get(seed_item_id, -1)
        cf = fp.cf
        row = _table_row(fp, pos, k, fetch_need(k, cf.config) if k.__class__ is int else 0)
        if row is None:
            return None
        var, lo, hi, _, _, n_elig, s, e, seed_in = row[:TABLE_COUNTS]
        drop = fp.drop.get(pos) if fp.drop else None
        v = self.view
        cand = KeyRange(
            cf.table_kvs[var].by_row,
            lo,
            hi,
            fp.perm[pos] if seed_in else -1,
            v.pos_of_row,
            drop[1] if drop else None,
        )
        q = fp.qunit[pos]  # one row view: hnswlib takes a 1-D vector as one query
        try:
            labels, dist = fp.knn(q, fp.fetch, 1)
        except RuntimeError:  # hnswlib#444
            return None
        _, kr, ks, dropped, final = rerank_rows(
            self,
            q,
            labels[0],
            cand,
            k,
            cf.config,
            n_elig,
            fp.fetch >= self.n,
            dist[0] if self.space == "cosine" else None,  # unit vectors: a prefix may answer
        )
        if final and fp.self_first and labels[0, 0] != (seed_row := fp.perm[pos]):
            final = not seed_lost(seed_row, labels[0], dist[0])  # lost: the general path fetches wider
        if not final:  # the general path answers (a larger fetch or exact) and records the miss
            self._short_fetch = (cf, pos, fp.fetch, self._index, labels[0], dist[0])
            fp.min_domain, fp.min_elig = self._overfetch_bounds(cf, fp.fetch)
            return None
        st = cf.stats
        st.queries += 1  # as the planner's choice counts it
        st.record(True)
        removed, skipped = self._table_counts(cf, row[TABLE_COUNTS:])
        removed.update(dropped)
        return SearchResult(
            _ids_at(fp.ids, kr),
            ks,
            kr,
            removed,
            "hnsw_overfetch",
            n_elig,
            (perf_counter() - t0) * 1e3,
            skipped,
            v.item_id_list[pos],
        )

    def _fast_finish(
        self,
        fp: FastPlan,
        pos: int,
        k: int,
        fetch: int,
        key_by_row: Any,
        lo: int | None,
        hi: int | None,
        seed_row: int,
        removed: dict[str, int],
        skipped: list[str],
        n_elig: int,
        t0: float,
        drop: list[int] | None = None,
    ) -> SearchResult | None:
        """One over-fetch, the first k labels other than the seed's row that pass the test (the
        flag ``key_by_row[label]`` when ``lo`` is None, else ``lo <= key_by_row[label] < hi``, and
        not one of the rows ``drop``: the seed's do-not-associate items), the result
        (``removed`` and ``skipped``: its own); None when they are fewer than k."""
        st = fp.cf.stats
        beam = st.beam  # a beam wide enough for the depth of the k-th eligible label (beams.py)
        try:
            labels, dist = fp.knn(fp.qunit[pos : pos + 1], beam if beam > fetch else fetch, 1)
        except RuntimeError:  # hnswlib#444
            return None
        # no NumPy call over the labels: right after a beam search each costs microseconds of
        # cold dispatch, more than looking a few dozen labels up one by one in a memoryview
        (rows,) = labels.tolist()  # no row view: one NumPy call
        # the seed is its own nearest label: without it the beam search was lost (beams.py:
        # seed_lost), whatever passes the filter, whether the seed is eligible or listed (its row
        # is in the graph either way); the general path fetches wider
        row = seed_row if seed_row >= 0 else fp.perm[pos]
        lost = rows and rows[0] != row and seed_lost(row, rows, dist[0], fp.self_first)
        want = k + 1 if seed_row >= 0 else k  # the seed, eligible, may be among them
        keys = map(key_by_row.__getitem__, rows)  # lazy: the scan stops at the k-th eligible label
        if drop is not None:  # a key range (the table kind), the seed's row among ``drop``
            sel = first_in_range_except(keys, rows, lo, hi, drop, k)
        elif lo is None:
            sel = list(islice(compress(count(), keys), want))
        else:
            sel = first_in_range(keys, lo, hi, want)
        rl = [rows[j] for j in sel]
        depth = sel[-1] + 1 if sel else 0
        if seed_row >= 0 and seed_row in rl:
            j = rl.index(seed_row)
            del rl[j], sel[j]
        else:
            del rl[k:], sel[k:]
        if lost or len(rl) < k:  # the general path answers (a larger fetch or exact), records the miss
            self._short_fetch = (fp.cf, pos, fetch, self._index, labels[0], dist[0])  # from these
            if fp.answer is FastMixin._fast_table:  # seeds differ: keep it, with the bounds re-learned
                fp.min_domain, fp.min_elig = self._overfetch_bounds(fp.cf, fetch)
            else:
                self._fast.pop(id(fp.cfg), None)  # one eligible set: the planner chooses again
            return None
        st.queries += 1  # as the planner's choice counts it
        st.record(True)
        self._learn_depth(st, depth, k, n_elig)
        (dl,) = dist.tolist()
        return SearchResult(
            _ids_at(fp.ids, rl),
            [1.0 - dl[j] for j in sel],
            rl,
            removed,
            "hnsw_overfetch",
            n_elig,
            (perf_counter() - t0) * 1e3,
            skipped,
            self.view.item_id_list[pos],
        )
