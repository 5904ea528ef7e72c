"""The rule table: every filter rule, once.

One :class:`Rule` per rule: its name (the key of ``removed_by_rule``), the label users see,
its kind, the catalogue column it reads, the :class:`~recsys.filters.FilterConfig` fields
that switch it on (and how the filter panel edits them), and one small pure function per
kind, like the local filters of a vector database (one function per condition):

``MASK`` (a catalogue mask, seed-independent)
    ``keep(view, cfg) -> bool per position``: the items the rule keeps. The compiled
    filter ANDs them into its base mask and counts ``n - kept`` as the rule's removals; the
    key indexes, static eligible sets, seed tables and batch paths all start from that mask,
    so a new mask rule needs nothing else in the executor.
``SEED`` (relative to the seed)
    ``resolve(view, cf, pos) -> (removed, param)``: the seed's value ``param`` (its gender
    code, price-rank band, banned-brand table, title code...) and the items the rule
    removes on its own, or ``SKIPPED`` (-1: the seed lacks the attribute) or ``OFF`` (-2:
    the rule does not apply to this seed); vectorised: ``pos`` may be an array of every
    seed (the seed table) or one position (a query). ``test(view, idx, param) -> bool per
    item of idx``: whether the items at positions ``idx`` (a slice or an array) pass. A
    query's per-item evaluation and the vectorised one over a domain both call it
    (:meth:`CompileMixin._item_tests`). ``channel`` says how the executor can apply it
    without testing every item: ``"domain"`` (a contiguous category slice), ``"key"`` (a
    range of a per-filter key index: gender, price rank, adult), ``"seed"`` (one position),
    ``"exclude"`` (a few positions per seed, sorted: removed like the seed itself on every
    path, without a pass over the domain: do-not-associate pairs; its vectorised ``resolve``
    returns {seed position: positions} as ``param``) or ``"scan"`` (the default:
    :func:`test` over the domain).
``RANKED`` (applied to the ranked list)
    Rules that need the scores or the order of the list (``min_similarity``,
    ``max_per_brand``): applied by the executor after scoring, before the cut to k. Pins are
    placed into the finished list; with ``max_per_brand`` they count towards the cap
    (:func:`place_under_cap`: pins first, ranked items of a full brand skipped, a pin dropped
    only when more pins of one brand than the cap would show, the lower one). Why: a pin is the
    merchandiser's explicit choice, but so is the cap; dropping an unpinned item keeps both, and a
    cap with exceptions would be no promise (brand agreements, the brand-concentration check).

The table drives the filter panel's field lists (:mod:`components.filter_panel`),
Explore's labels (``RULE_LABELS``), :meth:`FilterConfig.active_rules` and the property
test's strategies. A rule whose ``column`` the catalogue lacks is *unavailable*
(:func:`unavailable`): the panel disables its control with ``hint``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalog import CatalogView
    from recsys.filters import FilterConfig

MASK = "catalogue mask"
SEED = "relative to the seed"
RANKED = "applied to the ranked list"
KINDS = (MASK, SEED, RANKED)

#: ``removed`` of a seed rule that the seed lacks the attribute for (reported in ``skipped_rules``)
SKIPPED = -1
#: ``removed`` of a seed rule that does not apply to this seed (an adult seed, no seed at all)
OFF = -2

#: how the filter panel edits a FilterConfig field
SWITCH, NUMBER, LEVEL, BRANDS, PAIRS, SLIDER, COUNT = (
    "switch",
    "number",
    "level",
    "brands",
    "pairs",
    "slider",
    "count",
)
#: merchandising rules: edited on the Vetting page and in presets, not by the filter panel
PAIRS_OF_ITEMS, ADJUSTMENTS, PINS = "item pairs", "adjustments", "pins"
PANEL_CONTROLS = (SWITCH, NUMBER, LEVEL, BRANDS, PAIRS, SLIDER, COUNT)


@dataclass(frozen=True)
class Rule:
    """One filter rule (see the module docstring).

    ``fields``: (FilterConfig field, control kind) pairs the rule reads, in panel order;
    ``on(cfg)``: whether the config switches the rule on; ``implicit``: always on, no control
    (adult items next to a non-adult seed); ``varies``: a seed rule whose eligible set differs
    between seeds beyond the seed itself (False for ``exclude_seed``, so a filter with only
    mask rules and it stays *static*).
    """

    name: str
    label: str
    kind: str
    column: str | None
    fields: tuple[tuple[str, str], ...]
    on: Callable[[FilterConfig], bool]
    keep: Callable[[CatalogView, FilterConfig], np.ndarray] | None = None
    resolve: Callable[[CatalogView, Any, Any], tuple[Any, Any]] | None = None
    test: Callable[[CatalogView, Any, Any], np.ndarray] | None = None
    channel: str = "scan"
    #: ``prepare(view, cfg)``: what the rule needs from the catalogue, computed once per
    #: compiled config (``cf.prepared[name]``): brand-pair tables, banned item positions, pins,
    #: score changes
    prepare: Callable[[CatalogView, FilterConfig], Any] | None = None
    #: RANKED rules that change scores before the cut to k: ``prepare`` returns per-position
    #: ``(multiplier, shift, items matched)``; the compiled filter composes them in table order
    adjusts: bool = False
    #: RANKED rules applied to the finished list: ``place(view, prepared, pos) -> [(item
    #: position, 1-based list position)]`` for the seed at ``pos`` (pins)
    place: Callable[[CatalogView, Any, Any], list[tuple[int, int]]] | None = None
    #: ``placed(prepared)``: the seed positions ``place`` may give an item, or None (any seed may:
    #: the rule has no such list); a seed outside it is not asked (:func:`placed_seeds`)
    placed: Callable[[Any], Any] | None = None
    implicit: bool = False
    varies: bool = True
    hint: str = ""
    #: the filter panel's group ("relation", "exclusions", "price", "brands") and switch text
    group: str = ""
    control_label: str = ""
    #: ``column`` is optional in catalogues: without it the rule is unavailable (the panel
    #: disables its control with :func:`unavailable`'s hint; a config that switches it on
    #: anyway has it skipped, listed in ``skipped_rules``)
    optional_column: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"rule {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == MASK and self.keep is None:
            raise ValueError(f"rule {self.name}: a catalogue-mask rule needs a keep(view, cfg) function")
        if self.kind == SEED and (self.resolve is None or self.test is None):
            raise ValueError(f"rule {self.name}: a seed rule needs resolve() and test() functions")


# -- catalogue masks ---------------------------------------------------------------------------
def _keep_price_range(view: CatalogView, cfg: FilterConfig) -> np.ndarray:
    lo = cfg.price_min if cfg.price_min is not None else -np.inf
    hi = cfg.price_max if cfg.price_max is not None else np.inf
    with np.errstate(invalid="ignore"):
        return (view.price >= lo) & (view.price <= hi)  # a missing price (NaN) is never in range


def _keep_brands_allow(view: CatalogView, cfg: FilterConfig) -> np.ndarray:
    return view.has_brand(cfg.brands_allow)


def _keep_brands_deny(view: CatalogView, cfg: FilterConfig) -> np.ndarray:
    return ~view.has_brand(cfg.brands_deny)


def _keep_not_adult(view: CatalogView, cfg: FilterConfig) -> np.ndarray:
    return ~view.adult


def _keep_in_stock(view: CatalogView, cfg: FilterConfig) -> np.ndarray:
    return view.flag("in_stock", missing=True)  # unknown stock is not hidden


# -- relative to the seed: the seed's value (vectorised over seeds) ------------------------------
def _resolve_category(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    if pos is None:
        return SKIPPED, None
    lv = min(cf.config.category_level, view.max_level)
    code = view.cat_codes[lv][pos]
    b = view.cat_bounds[lv]
    return np.where(view.cat_empty[pos], SKIPPED, view.n - (b[code + 1] - b[code])), (lv, code)


def _resolve_gender(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    if pos is None:
        return SKIPPED, None
    g = view.gender[pos]
    return np.where(view.gender_names[g] == "", SKIPPED, view.n - view.gender_counts[g]), g


def _resolve_price_band(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    if pos is None:
        return SKIPPED, None
    cfg = cf.config
    sp = view.price[pos]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(sp) & (sp > 0)
        lo = cfg.price_ratio_min * sp if cfg.price_ratio_min is not None else -np.inf
        hi = cfg.price_ratio_max * sp if cfg.price_ratio_max is not None else np.inf
    # ranks of the known prices in [lo, hi]: missing prices (no rank) drop out, as NaN comparisons would
    rank_lo = np.searchsorted(view.price_values, np.where(valid, lo, 0.0), side="left")
    rank_hi = np.searchsorted(view.price_values, np.where(valid, hi, 0.0), side="right")
    kept = view.rank_cum[rank_hi] - view.rank_cum[rank_lo]
    return np.where(valid, view.n - kept, SKIPPED), (rank_lo, rank_hi)


def _prep_brand_pairs(view: CatalogView, cfg: FilterConfig) -> dict[int, np.ndarray]:
    """brand code -> bool table over brand codes that the brand may not show (symmetric)."""
    from recsys.filters import _norm_brand

    banned: dict[int, np.ndarray] = {}
    for a, b in cfg.banned_brand_pairs:
        ca, cb = view.brand_code.get(_norm_brand(a)), view.brand_code.get(_norm_brand(b))
        if ca is None or cb is None:
            continue
        for x, y in ((ca, cb), (cb, ca)):
            banned.setdefault(x, np.zeros(len(view.brand_keys), dtype=bool))[y] = True
    return banned


def _resolve_banned(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    if pos is None:
        return SKIPPED, None
    table = cf.prepared["banned_brand_pairs"].get(int(view.brand[pos]))  # brands it may not show
    return (int(view.brand_counts[table].sum()), table) if table is not None else (0, None)


# -- merchandising rules (issue 16) ---------------------------------------------------------------
def _prep_pair_bans(view: CatalogView, cfg: FilterConfig) -> dict[int, np.ndarray]:
    """seed position -> positions never shown for it (both ways unless one_way); unknown ids ignored."""
    out: dict[int, list[int]] = {}
    for ban in cfg.do_not_associate:
        a, b = view.position(ban.seed), view.position(ban.item_id)
        if a < 0 or b < 0:
            continue
        out.setdefault(a, []).append(b)
        if not ban.one_way:
            out.setdefault(b, []).append(a)
    return {seed: np.unique(np.asarray(v, dtype=np.int64)) for seed, v in out.items()}


def _resolve_pair_bans(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    """One seed: (its banned count, its banned positions or None); every seed at once (an
    array ``pos``): (the counts, {seed position: banned positions} of the seeds that have any)."""
    if pos is None:
        return SKIPPED, None
    bans = cf.prepared["do_not_associate"]
    if np.ndim(pos):
        counts = np.zeros(view.n, dtype=np.int64)
        counts[list(bans)] = [len(b) for b in bans.values()]
        return counts[pos], bans
    banned = bans.get(int(pos))
    return (len(banned), banned) if banned is not None else (0, None)


def _test_pair_bans(view: CatalogView, idx: Any, banned: np.ndarray) -> np.ndarray:
    """False at the seed's banned positions (``banned``: sorted, unique; a handful per seed):
    one fill and a few stores over a slice, a binary search per candidate otherwise (both
    far cheaper than ``np.isin``, which sorts the whole domain)."""
    if isinstance(idx, slice) and idx.step in (None, 1):
        ok = np.ones(idx.stop - idx.start, dtype=bool)
        inside = banned[(banned >= idx.start) & (banned < idx.stop)]
        ok[inside - idx.start] = False
        return ok
    pos = np.arange(idx.start, idx.stop, idx.step) if isinstance(idx, slice) else np.asarray(idx)
    return not_in_sorted(pos, banned)


def not_in_sorted(pos: np.ndarray, banned: np.ndarray) -> np.ndarray:
    """``~np.isin(pos, banned)`` for a short sorted ``banned``: one binary search per item."""
    at = np.minimum(np.searchsorted(banned, pos), len(banned) - 1)
    return banned[at] != pos


def _matches(view: CatalogView, adj: Any) -> np.ndarray:
    """Positions matching every condition of one boost/bury entry."""
    ok = np.ones(view.n, dtype=bool)
    if adj.brands:
        ok &= view.has_brand(adj.brands)
    if adj.category is not None:
        ok &= view.under_category(adj.category)
    if adj.price_min is not None or adj.price_max is not None:
        lo = adj.price_min if adj.price_min is not None else -np.inf
        hi = adj.price_max if adj.price_max is not None else np.inf
        with np.errstate(invalid="ignore"):
            ok &= (view.price >= lo) & (view.price <= hi)  # a missing price never matches
    if adj.column is not None:
        ok &= view.column_in(adj.column, adj.values)
    return ok


def _prep_scores(
    field_name: str,
) -> Callable[[CatalogView, FilterConfig], tuple[np.ndarray, np.ndarray, int]]:
    def prepare(view: CatalogView, cfg: FilterConfig) -> tuple[np.ndarray, np.ndarray, int]:
        """Per position: new score = score * multiplier + shift, each matching entry in turn."""
        mul = np.ones(view.n, dtype=np.float32)
        add = np.zeros(view.n, dtype=np.float32)
        hit = np.zeros(view.n, dtype=bool)
        for adj in getattr(cfg, field_name):
            m = _matches(view, adj)
            mul[m] *= np.float32(adj.multiplier)
            add[m] = add[m] * np.float32(adj.multiplier) + np.float32(adj.shift)
            hit |= m
        return mul, add, int(np.count_nonzero(hit))

    return prepare


def _prep_pins(
    view: CatalogView, cfg: FilterConfig
) -> tuple[dict[int, list[tuple[int, int]]], list[tuple[int, int, int, int]]]:
    """(seed position -> [(item position, list position)], [(level, category code, item position,
    list position)] of category pins); pins naming unknown items or categories are ignored."""
    by_seed: dict[int, list[tuple[int, int]]] = {}
    by_cat: list[tuple[int, int, int, int]] = []
    for pin in cfg.pins:
        item = view.position(pin.item_id)
        if item < 0:
            continue
        if pin.seed is not None:
            seed = view.position(pin.seed)
            if seed >= 0:
                by_seed.setdefault(seed, []).append((item, pin.position))
        else:
            where = view.category_code(pin.category)
            if where is not None:
                by_cat.append((*where, item, pin.position))
    return by_seed, by_cat


def _place_pins(view: CatalogView, prepared: Any, pos: Any) -> list[tuple[int, int]]:
    """The pins of the seed at ``pos`` by list position: those of the categories it is under,
    then its own, so that at one position the seed's own pin (placed last) wins the slot."""
    if pos is None:
        return []
    by_seed, by_cat = prepared
    out = [
        (item, at)
        for level, code, item, at in by_cat
        if not view.cat_empty[pos] and view.cat_codes[level][pos] == code
    ]
    out.extend(by_seed.get(int(pos), ()))
    return sorted(out, key=lambda x: x[1])


def _pinned_seeds(prepared: Any) -> frozenset[int] | None:
    """The seeds :func:`_place_pins` may give a pin: those named by a pin, or None with a
    category's pins (every seed under it)."""
    by_seed, by_cat = prepared
    return None if by_cat else frozenset(by_seed)


def placed_seeds(place_rules: list[Rule], prepared: dict[str, Any]) -> frozenset[int] | None:
    """The seed positions to which any of ``place_rules`` may give an item (each rule's
    ``placed``), or None when any seed may get one (a rule without such a list)."""
    out: set[int] = set()
    for rl in place_rules:
        got = rl.placed(prepared[rl.name]) if rl.placed is not None else None
        if got is None:
            return None
        out |= got
    return frozenset(out)


def place_under_cap(
    ranked: Any, pins: list[tuple[int, int]], brand: np.ndarray, no_brand: int, cap: int, k: int
) -> tuple[list[int], set[int], int, bool]:
    """Pins and ``max_per_brand`` together: the finished list of a seed with pins under a brand cap.

    A pin is the merchandiser's explicit choice, and the brand cap is a rule they set too, so a
    list never shows more than ``cap`` items of a brand, pins included: pins are placed first and
    count towards the cap; the list is filled around them with the ranked items (the pinned ones
    aside), skipping an item whose brand already has ``cap`` items in the list. A pin is dropped
    for the cap only when more pins of one brand than the cap would show: those further down the
    list go (where each pin lands in a full list: by position; at one position the one placed
    last, the seed's own pin, sits first and wins). Items without a brand are never capped.

    ``ranked``: item positions best first under every other rule; ``pins``: (item position,
    1-based list position) of the pins that pass every other rule, in placement order (:func:`_place_pins`);
    ``brand``: brand code by position. Returns ``(list, pins kept, items dropped for the cap,
    settled)``; ``settled`` is False when a longer ``ranked`` could change the list (it ran out
    before filling k slots, or a pin within k was pushed up for lack of items): the caller
    searches further unless ``ranked`` holds every eligible item.
    """
    # where each pin lands in a list long enough for every pin (moved when placed twice)
    full = [-1] * max([k, *(at for _, at in pins)])
    for item, at in pins:
        if item in full:
            full.remove(item)
        full.insert(min(at - 1, len(full)), item)
    count: dict[int, int] = {}
    kept: set[int] = set()
    dropped = 0

    def fits(p: int) -> bool:
        b = int(brand[p])
        if b == no_brand:
            return True
        if count.get(b, 0) >= cap:
            return False
        count[b] = count.get(b, 0) + 1
        return True

    for item in (x for x in full if x >= 0):
        if item not in kept:
            if fits(item):
                kept.add(item)
            else:
                dropped += 1
    pinned = {item for item, _ in pins}
    out: list[int] = []
    for p in ranked:
        if len(out) == k:
            break
        if p in pinned:
            continue
        if fits(p):
            out.append(p)
        else:
            dropped += 1
    settled = True
    for item, at in pins:
        if item not in kept:
            continue
        if item in out:
            out.remove(item)
        if at - 1 > len(out) and len(out) < k:
            settled = False  # pushed up: more ranked items would put it lower
        out.insert(min(at - 1, len(out)), item)
    settled &= len(out) >= k
    return out[:k], kept, dropped, settled


def _resolve_adult(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    if not view.n_adult:
        return OFF, None
    if pos is None:
        return view.n_adult, None
    return np.where(view.adult[pos], OFF, view.n_adult), None


def _resolve_seed(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    return (OFF, None) if pos is None else (np.ones_like(pos), pos)


def _resolve_title(view: CatalogView, cf: Any, pos: Any) -> tuple[Any, Any]:
    if pos is None:
        return OFF, None
    t = view.title[pos]
    return np.where(t == view.empty_title, SKIPPED, view.title_counts[t] - 1), t


# -- relative to the seed: per-item tests given the seed's value --------------------------------
def _test_category(view: CatalogView, idx: Any, param: tuple[int, int]) -> np.ndarray:
    level, code = param
    return view.cat_codes[level][idx] == code


def _test_gender(view: CatalogView, idx: Any, gender: int) -> np.ndarray:
    return view.gender[idx] == gender


def _test_price_band(view: CatalogView, idx: Any, ranks: tuple[int, int]) -> np.ndarray:
    rank = view.price_rank[idx]
    ok = rank >= ranks[0]
    ok &= rank < ranks[1]
    return ok


def _test_banned(view: CatalogView, idx: Any, table: np.ndarray) -> np.ndarray:
    return ~table[view.brand[idx]]


def _test_not_adult(view: CatalogView, idx: Any, _param: Any) -> np.ndarray:
    return ~view.adult[idx]


def _test_title(view: CatalogView, idx: Any, title: int) -> np.ndarray:
    return view.title[idx] != title


def _test_not_seed(view: CatalogView, idx: Any, seed: int) -> np.ndarray:
    pos = np.arange(idx.start, idx.stop) if isinstance(idx, slice) else np.asarray(idx)
    return pos != seed


def _set(name: str) -> Callable[[FilterConfig], bool]:
    return lambda cfg: bool(getattr(cfg, name))


def _given(*names: str) -> Callable[[FilterConfig], bool]:
    return lambda cfg: any(getattr(cfg, n) is not None for n in names)


#: every rule, in the order the executor applies and reports them
RULES: tuple[Rule, ...] = (
    Rule(
        "same_category",
        "Same category",
        SEED,
        "category",
        (("same_category", SWITCH), ("category_level", LEVEL)),
        _set("same_category"),
        resolve=_resolve_category,
        test=_test_category,
        channel="domain",
        hint="keep items of the seed's category",
    ),
    Rule(
        "same_gender",
        "Same gender",
        SEED,
        "gender",
        (("same_gender", SWITCH),),
        _set("same_gender"),
        resolve=_resolve_gender,
        test=_test_gender,
        channel="key",
        hint="keep items of the seed's gender",
    ),
    Rule(
        "price_band",
        "Price × seed",
        SEED,
        "price",
        (("price_ratio_min", NUMBER), ("price_ratio_max", NUMBER)),
        _given("price_ratio_min", "price_ratio_max"),
        resolve=_resolve_price_band,
        test=_test_price_band,
        channel="key",
        hint="price band relative to the seed's price, e.g. 0.5 to 2",
    ),
    Rule(
        "price_range",
        "Price range",
        MASK,
        "price",
        (("price_min", NUMBER), ("price_max", NUMBER)),
        _given("price_min", "price_max"),
        keep=_keep_price_range,
    ),
    Rule(
        "brands_allow",
        "Brand allow-list",
        MASK,
        "brand",
        (("brands_allow", BRANDS),),
        _set("brands_allow"),
        keep=_keep_brands_allow,
    ),
    Rule(
        "brands_deny",
        "Brand deny-list",
        MASK,
        "brand",
        (("brands_deny", BRANDS),),
        _set("brands_deny"),
        keep=_keep_brands_deny,
    ),
    Rule(
        "banned_brand_pairs",
        "Banned brand pairs",
        SEED,
        "brand",
        (("banned_brand_pairs", PAIRS),),
        _set("banned_brand_pairs"),
        resolve=_resolve_banned,
        test=_test_banned,
        prepare=_prep_brand_pairs,
    ),
    Rule(
        "exclude_adult",
        "Adult items",
        MASK,
        "adult",
        (("exclude_adult", SWITCH),),
        _set("exclude_adult"),
        keep=_keep_not_adult,
        group="exclusions",
        control_label="Exclude adult items",
    ),
    Rule(
        "in_stock",
        "Out of stock",
        MASK,
        "in_stock",
        (("in_stock_only", SWITCH),),
        _set("in_stock_only"),
        keep=_keep_in_stock,
        hint="hide items whose in_stock is false (unknown stock is shown)",
        group="exclusions",
        control_label="In stock only",
        optional_column=True,
    ),
    Rule(
        "adult_next_to_non_adult",
        "Adult next to non-adult (always)",
        SEED,
        "adult",
        (),
        lambda cfg: not cfg.exclude_adult,
        resolve=_resolve_adult,
        test=_test_not_adult,
        channel="key",
        implicit=True,
        varies=False,
    ),
    Rule(
        "exclude_seed",
        "The seed",
        SEED,
        None,
        (("exclude_seed", SWITCH),),
        _set("exclude_seed"),
        resolve=_resolve_seed,
        test=_test_not_seed,
        channel="seed",
        varies=False,
        group="exclusions",
        control_label="Exclude the seed",
    ),
    Rule(
        "exclude_same_title",
        "Same title",
        SEED,
        "title",
        (("exclude_same_title", SWITCH),),
        _set("exclude_same_title"),
        resolve=_resolve_title,
        test=_test_title,
        hint="drop items whose title equals the seed's (variants, duplicates)",
        group="exclusions",
        control_label="Exclude same title",
    ),
    Rule(
        "do_not_associate",
        "Never together",  # as the panel's control and the Vetting page's rule name it
        SEED,
        None,
        (("do_not_associate", PAIRS_OF_ITEMS),),
        _set("do_not_associate"),
        resolve=_resolve_pair_bans,
        test=_test_pair_bans,
        channel="exclude",
        prepare=_prep_pair_bans,
    ),
    Rule(
        "boost",
        "Boosted",
        RANKED,
        None,
        (("boost", ADJUSTMENTS),),
        _set("boost"),
        prepare=_prep_scores("boost"),
        adjusts=True,
    ),
    Rule(
        "bury",
        "Buried",
        RANKED,
        None,
        (("bury", ADJUSTMENTS),),
        _set("bury"),
        prepare=_prep_scores("bury"),
        adjusts=True,
    ),
    Rule(
        "min_similarity",
        "Min. similarity",
        RANKED,
        None,
        (("min_similarity", SLIDER),),
        _given("min_similarity"),
    ),
    Rule(
        "max_per_brand",
        "Max per brand",
        RANKED,
        "brand",
        (("max_per_brand", COUNT),),
        _given("max_per_brand"),
    ),
    Rule(
        "pins",
        "Pinned",
        RANKED,
        None,
        (("pins", PINS),),
        _set("pins"),
        prepare=_prep_pins,
        place=_place_pins,
        placed=_pinned_seeds,
    ),
)

_BY_NAME = {r.name: r for r in RULES}
#: the catalogue-mask rules (seed-independent), in table order
MASK_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.kind == MASK)
#: rules relative to the seed
SEED_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.kind == SEED)
#: rules on the ranked list
RANKED_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.kind == RANKED)
#: rule name -> label (Explore's removed-by-rule bars)
RULE_LABELS: dict[str, str] = {r.name: r.label for r in RULES}


def rule(name: str) -> Rule:
    """The rule called ``name`` (KeyError when there is none)."""
    return _BY_NAME[name]


def config_fields(panel: bool = False) -> dict[str, str]:
    """Every FilterConfig field a rule reads -> its control kind, in table order (``panel``: only
    those the filter panel edits)."""
    return {f: c for r in RULES for f, c in r.fields if not panel or c in PANEL_CONTROLS}


#: rules that change scores before the cut to k / place items in the finished list / prepare
ADJUST_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.adjusts)
PLACE_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.place is not None)
PREPARED_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.prepare is not None)
#: rules whose count is of items moved (re-scored or placed), not removed
MOVING_RULES: frozenset[str] = frozenset(r.name for r in RULES if r.adjusts or r.place is not None)


def active_rules(cfg: FilterConfig) -> list[str]:
    """Names of the rules ``cfg`` switches on (implicit rules left out), in table order."""
    return [r.name for r in RULES if not r.implicit and r.on(cfg)]


def varying_seed_rules(cfg: FilterConfig) -> list[Rule]:
    """The seed rules ``cfg`` switches on whose eligible set differs from seed to seed."""
    return [r for r in SEED_RULES if r.varies and not r.implicit and r.on(cfg)]


def panel_switches(group: str) -> list[Rule]:
    """The rules the filter panel shows as one switch in ``group``, in table order."""
    return [r for r in RULES if r.group == group and r.control_label]


def unavailable(columns: Any) -> dict[str, str]:
    """Rules whose optional catalogue column is missing from ``columns`` -> why (the panel's hint)."""
    have = set(columns)
    return {
        r.name: f"unavailable: the catalogue has no '{r.column}' column (map one on the Data page)"
        for r in RULES
        if r.optional_column and r.column not in have
    }
