"""The filter panel's rules on ranked lists that do not come from the run's vectors.

A session model (sknn, vsknn, item_knn) ranks items from a whole session, and the
fallback chain (:mod:`recsys.fallback`) ranks items by co-occurrence and popularity: neither
list is a nearest-neighbour search the searcher could run. :func:`filter_list` applies the
same rule table to such a list: the catalogue masks (``keep``), the seed rules
(``resolve`` + ``test``, relative to the seed: the session's most recent item), boost/bury
(``adjusts``), ``max_per_brand``, and pins (``place``), through the compiled filter of a
searcher over the whole catalogue with no vectors (the rules never read vectors).

``min_similarity`` is a floor on a cosine similarity: a session model's scores and the
fallback's (co-occurrence, popularity) are not one, so it applies to the model's own items
when they are similarities (an embedding run's) and removes the fallback's items; for a
session model's own items it is listed in ``skipped_rules``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from recsys.catalog import CatalogView
from recsys.filters import FilterConfig
from recsys.search.result import SearchResult
from recsys.search.searcher import FilteredSearcher

_lock = threading.Lock()
_filters: dict[tuple[Any, ...], FilteredSearcher] = {}


def catalogue_searcher(key: tuple[Any, ...], view: Callable[[], CatalogView]) -> FilteredSearcher:
    """A searcher over a whole catalogue's view (built by ``view()`` on a miss) with no vectors,
    cached by ``key`` (its last element a stamp: a newer one replaces the entry): only its
    rule machinery is used (compile, seed rules, item tests, ranked-list rules)."""
    with _lock:
        hit = _filters.get(key)
    if hit is not None:
        return hit
    v = view()
    searcher = FilteredSearcher(
        np.zeros((len(v.item_id_by_row), 1), np.float32), v.item_id_by_row, None, view=v
    )
    with _lock:
        for old in [k for k in _filters if k[:-1] == key[:-1]]:
            del _filters[old]
        _filters[key] = searcher
    return searcher


def filter_list(
    searcher: FilteredSearcher,
    seed_item_id: str | None,
    item_ids: Sequence[str],
    scores: Sequence[float],
    served_by: Sequence[str],
    config: FilterConfig,
    k: int,
    similarities: bool = False,
) -> tuple[SearchResult, list[str]]:
    """The first ``k`` items of a ranked list that pass ``config``'s rules, and what served each.

    Parameters
    ----------
    searcher : FilteredSearcher
        Over the catalogue the items and the seed belong to (:func:`catalogue_searcher`).
    seed_item_id : str or None
        The seed of the seed rules (same category, price band, banned pairs...); rules the
        seed cannot resolve are listed in ``skipped_rules``.
    item_ids, scores, served_by : sequences
        The ranked list (best first) and, per item, ``"model"`` or the fallback step.
    similarities : bool
        The model's scores are cosine similarities (``min_similarity`` applies to them).

    Returns
    -------
    (SearchResult, served_by of the kept items)
        ``rows`` are catalogue positions' rows of ``searcher.view``; ``plan`` is ``"list"``.
    """
    t0 = time.perf_counter()
    cfg = config
    cf = searcher.compile(cfg)
    v = searcher.view
    seed = v.pos_of_id.get(str(seed_item_id), -1) if seed_item_id is not None else -1
    r = searcher._seed_rules(cf, seed if seed >= 0 else None)
    skipped = list(r.skipped)
    pos = np.fromiter((v.pos_of_id.get(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids))
    sc = np.asarray(scores, dtype=np.float32)
    src = np.asarray(served_by, dtype=object)
    ok = (pos >= r.s) & (pos < r.e) & (pos != r.seed)
    if ok.any():
        at = np.flatnonzero(ok)
        ok[at] = searcher._item_tests(cf, r, pos[at])
    removed = dict(r.removed)
    own = src == "model"
    if cfg.min_similarity is not None:
        if similarities:  # the fallback's items have no similarity to the seed: below any floor
            low = ~own | (sc < cfg.min_similarity)
        else:
            low = ~own
            skipped.append("min_similarity")
        ok &= ~low
        removed["min_similarity"] = int(np.count_nonzero(low))
    pos, sc, src, own = pos[ok], sc[ok], src[ok], own[ok]
    if cf.adjust is not None:  # boost/bury re-rank the model's items and the fallback's, each among its own
        sc = sc * cf.adjust[0][pos] + cf.adjust[1][pos]
        order = np.lexsort((np.arange(len(pos)), -sc, ~own))
        pos, sc, src = pos[order], sc[order], src[order]
    # max_per_brand: the searcher's own ranked-list rule (min_similarity is done above)
    kp, ks, dropped, _ = searcher._rank_rules(
        pos, sc, k, SimpleNamespace(max_per_brand=cfg.max_per_brand, min_similarity=None), True
    )
    removed.update(dropped)
    keep_src = list(src[: len(kp)]) if cfg.max_per_brand is None else _sources(pos, src, kp)
    items, kept_scores = [v.item_id_list[p] for p in kp], [float(x) for x in ks]
    if cf.place_rules and seed >= 0 and cfg.max_per_brand is not None:
        # pins count towards the brand cap, as the searcher places them (rules.place_under_cap)
        items, kept_scores, keep_src = _pins_under_cap(searcher, cf, r, seed, pos, sc, src, removed, k)
    elif cf.place_rules and seed >= 0:
        items, kept_scores, keep_src = _pins(searcher, cf, r, seed, items, kept_scores, keep_src, removed, k)
    _, n_elig = searcher._eligibility(cf, r, cold=True)
    res = SearchResult(
        items,
        kept_scores,
        [int(v.perm[v.pos_of_id[i]]) for i in items],
        removed,
        "list",
        int(n_elig),
        (time.perf_counter() - t0) * 1e3,
        skipped,
        seed_item_id,
    )
    return res, [str(s) for s in keep_src]


def _sources(pos: np.ndarray, src: np.ndarray, kept: np.ndarray) -> list[str]:
    at = {int(p): str(s) for p, s in zip(pos.tolist(), src.tolist())}
    return [at[int(p)] for p in kept]


def _allowed_pins(searcher: FilteredSearcher, cf: Any, r: Any, seed: int) -> list[tuple[str, int, int]]:
    """(rule, item position, 1-based list position) of the pins that pass every other rule."""
    out = []
    for rl in cf.place_rules:
        for item, at in rl.place(searcher.view, cf.prepared[rl.name], seed):
            if r.s <= item < r.e and item != r.seed and searcher._item_tests(cf, r, np.array([item]))[0]:
                out.append((rl.name, item, at))
    return out


def _pins_under_cap(
    searcher: FilteredSearcher,
    cf: Any,
    r: Any,
    seed: int,
    pos: np.ndarray,
    sc: np.ndarray,
    src: np.ndarray,
    removed: dict[str, int],
    k: int,
) -> tuple[list[str], list[float], list[str]]:
    """Pins and ``max_per_brand`` together on a ranked list (:func:`recsys.search.rules.place_under_cap`):
    pins are placed first and count towards the cap."""
    from recsys.search.rules import place_under_cap

    v = searcher.view
    pins = _allowed_pins(searcher, cf, r, seed)
    out, kept, dropped, _ = place_under_cap(
        pos.tolist(), [(item, at) for _, item, at in pins], v.brand, v.no_brand, cf.config.max_per_brand, k
    )
    score_of = {int(p): float(x) for p, x in zip(pos.tolist(), sc.tolist())}
    src_of = {int(p): str(x) for p, x in zip(pos.tolist(), src.tolist())}
    scores: list[float] = []
    for p in out:
        scores.append(score_of.get(p, scores[-1] if scores else 0.0))
    removed["max_per_brand"] = int(dropped)
    for name in {n for n, _, _ in pins}:
        removed[name] = sum(1 for n, item, _ in pins if n == name and item in kept)
    served = ["pin" if p in kept else src_of.get(p, "model") for p in out]
    return [v.item_id_list[p] for p in out], scores, served


def _pins(
    searcher: FilteredSearcher,
    cf: Any,
    r: Any,
    seed: int,
    items: list[str],
    scores: list[float],
    src: list[str],
    removed: dict[str, int],
    k: int,
) -> tuple[list[str], list[float], list[str]]:
    """The pins (``Rule.place``) placed into a finished list, as the searcher places them: each
    pinned item that passes every other rule goes to its 1-based position (its list score
    kept when it was listed, else the score of the item it displaces)."""
    v = searcher.view
    placed = dict.fromkeys((rl.name for rl in cf.place_rules), 0)
    for name, item, at in _allowed_pins(searcher, cf, r, seed):  # never what the other rules hide
        iid = v.item_id_list[item]
        j = min(at - 1, len(items))
        score = scores[j] if j < len(scores) else (scores[-1] if scores else 0.0)
        if iid in items:
            old = items.index(iid)
            score = scores[old]
            del items[old], scores[old], src[old]
            j = min(at - 1, len(items))
        items.insert(j, iid)
        scores.insert(j, float(score))
        src.insert(j, "pin")
        placed[name] += 1
    removed.update(placed)
    return items[:k], scores[:k], src[:k]
