"""Rules that place items into a finished list (pins, ``Rule.place`` in :mod:`recsys.search.rules`):
:class:`PlacementMixin` of :class:`recsys.search.searcher.FilteredSearcher`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recsys.filters import FilterConfig
from recsys.search.result import SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.compiled import CompiledFilter

    MaybeCF = CompiledFilter | None


class PlacementMixin:
    """``_place`` and ``_place_capped`` of :class:`FilteredSearcher` (the searcher's ``view``,
    ``unit``, ``compile``, ``_item_allowed`` and ``_search_one``)."""

    def _place(
        self, res: SearchResult, q: np.ndarray, pos: int | None, cfg: FilterConfig, k: int, cf: MaybeCF = None
    ) -> SearchResult:
        """The rules that place items into the finished list (pins; ``Rule.place``).

        Each placed item that passes every mask and seed rule of the config (and
        ``min_similarity``) is put at its 1-based position (moved there when already listed),
        the list cut at k again; its score is its own (adjusted) similarity, so a pinned
        list is not sorted by score. ``removed_by_rule[rule]``: the items it placed. With
        ``max_per_brand``, pins count towards the cap (:meth:`_place_capped`). ``cf``: the
        config's compiled filter when the caller holds it (the shortcut of :mod:`recsys.search.fast`).
        """
        if cf is None:
            cf = self.compile(cfg)
        if not cf.place_rules or pos is None:
            return res
        if cf.place_seeds is not None and pos not in cf.place_seeds:  # most seeds: nothing to place
            res.removed_by_rule = {**res.removed_by_rule, **{rl.name: 0 for rl in cf.place_rules}}
            return res
        v = self.view
        pins = []  # (rule, item position, list position, score) that may show, in placement order
        for rl in cf.place_rules:
            for item, at in rl.place(v, cf.prepared[rl.name], pos):
                if not self._item_allowed(cf, pos, item):
                    continue  # a pin never shows what the other rules hide
                score = (self.unit[item] * q).sum(dtype=np.float32)  # as _canon scores
                if cf.adjust is not None:
                    score = score * cf.adjust[0][item] + cf.adjust[1][item]
                if cfg.min_similarity is not None and score < cfg.min_similarity:
                    continue
                pins.append((rl.name, item, at, float(score)))
        placed_by = {rl.name: 0 for rl in cf.place_rules}
        if not pins:  # most seeds: the list as ranked
            res.removed_by_rule = {**res.removed_by_rule, **placed_by}
            return res
        if cfg.max_per_brand is not None:
            return self._place_capped(res, q, pos, cfg, k, pins)
        items, scores, rows = list(res.item_ids), list(res.scores), list(res.rows)
        for name, item, at, score in pins:
            row = int(v.perm[item])
            if row in rows:
                j = rows.index(row)
                del items[j], scores[j], rows[j]
            j = min(at - 1, len(rows))
            items.insert(j, v.item_id_list[item])
            scores.insert(j, score)
            rows.insert(j, row)
            placed_by[name] += 1
        del items[k:], scores[k:], rows[k:]
        res.item_ids, res.scores, res.rows = items, scores, rows
        res.removed_by_rule = {**res.removed_by_rule, **placed_by}
        return res

    def _place_capped(
        self, res: SearchResult, q: np.ndarray, pos: int, cfg: FilterConfig, k: int, pins: list[tuple]
    ) -> SearchResult:
        """Pins under ``max_per_brand`` (:func:`recsys.search.rules.place_under_cap`): pins count
        towards the cap, so the list may need ranked items beyond ``res``: it is searched again,
        exactly and twice as deep each time, until the list is settled or every item is ranked."""
        from recsys.search.rules import place_under_cap

        v = self.view
        ranked, depth = res, k
        while True:
            cand = v.pos_of_row[np.asarray(ranked.rows, dtype=np.int64)]
            out, kept, dropped, settled = place_under_cap(
                cand.tolist(),
                [(item, at) for _, item, at, _ in pins],
                v.brand,
                v.no_brand,
                cfg.max_per_brand,
                k,
            )
            if settled or len(ranked.rows) < depth:
                break
            depth *= 2
            ranked = self._search_one(q, pos, cfg, depth, "exact")
        score_of = dict(zip(cand.tolist(), ranked.scores, strict=True))
        score_of.update((item, score) for _, item, _, score in pins)
        res.item_ids = [v.item_id_list[p] for p in out]
        res.scores = [float(score_of[p]) for p in out]
        res.rows = [int(v.perm[p]) for p in out]
        placed_by = {rl.name: 0 for rl in self.compile(cfg).place_rules}
        for name, item, _, _ in pins:
            placed_by[name] += item in kept
        cap_dropped = res.removed_by_rule.get("max_per_brand", 0) + dropped
        res.removed_by_rule = {**res.removed_by_rule, **placed_by, "max_per_brand": cap_dropped}
        return res
