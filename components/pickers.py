"""Run and item pickers shared by Explore, Map and Compare: run options, seed search, brands.

Plain functions over a run's catalogue view (:class:`recsys.catalog.CatalogView`), so the
pages stay thin and these are tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from components.item_card import display_title, fmt_price
from recsys.registry import Registry, run_label
from recsys.selection import SAME_LIST_FAMILIES, SIMPLEST_FIRST, recommend, unpack_hits

#: At most this many options in a seed dropdown.
MAX_OPTIONS = 50


def embedding_runs(registry: Registry, all_runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """run.json of every complete embedding run, newest first (of ``all_runs``, what
    ``registry.list_runs()`` gave the caller, when given)."""
    listed = registry.list_runs() if all_runs is None else all_runs
    return [r for r in listed if r.get("is_embedding") and r.get("status", "complete") == "complete"]


def validation_hr(run: dict[str, Any]) -> float | None:
    """A run's HR@10 on validation data (carved from its training data), None without one."""
    v = ((run.get("metrics") or {}).get("validation") or {}).get("hr@10")
    return v if isinstance(v, (int, float)) else None


def by_merit(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``runs`` best first: :func:`best_run`'s choice, then those with a validation HR@10
    (highest first), then those with only a test HR@10, then the unscored (order kept within
    ties)."""
    chosen = best_run(runs)[0]

    def key(run: dict[str, Any]) -> tuple[int, float]:
        if chosen is not None and run["run_id"] == chosen["run_id"]:
            return -1, 0.0
        v = validation_hr(run)
        if v is not None:
            return 0, -v
        t = (run.get("metrics") or {}).get("hr@10")
        return (1, -float(t)) if isinstance(t, (int, float)) else (2, 0.0)

    return sorted(runs, key=key)


def _simplest_first(run: dict[str, Any]) -> int:
    family = run.get("family")
    return SIMPLEST_FIRST.index(family) if family in SIMPLEST_FIRST else len(SIMPLEST_FIRST)


def best_choice(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Overview's best variant of ``runs`` and why: the rule of ``bench/quality.py``
    (:func:`recsys.selection.recommend`), the simplest variant (baselines first,
    :data:`recsys.selection.SIMPLEST_FIRST`) whose validation HR@10 is within one paired standard
    error of the best one's, over the runs whose per-case validation hits were stored for the same
    cases (the largest such group). Never the test split.

    Falls back to the highest validation HR@10, said as such, when no run stored its hits (runs
    from before they were kept) or when a run outside the group scores higher on validation than
    the group's best (the rule cannot compare it); to the highest test HR@10 when no run has a
    validation score.

    Returns ``{"run", "on_validation", "rule"}`` (``rule``: ``"paired"``,
    ``"highest_validation"``, ``"test"`` or None with no scored run), and with ``"paired"``:
    ``"best"`` (the best run on validation), ``"gap"`` and ``"se"`` (the chosen one's paired
    gap to it and its standard error, hit-rate points), ``"n_cases"``, ``"compared"`` (run ids)
    and ``"left_out"`` (the validated runs outside the group); with ``"highest_validation"``:
    ``"reason"`` (why the rule could not run)."""
    scored = [r for r in runs if isinstance((r.get("metrics") or {}).get("hr@10"), (int, float))]
    validated = [r for r in scored if validation_hr(r) is not None]
    if not validated:
        if scored:
            top = max(scored, key=lambda r: r["metrics"]["hr@10"])
            return {"run": top, "on_validation": False, "rule": "test"}
        return {"run": None, "on_validation": False, "rule": None}
    groups: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    unread: dict[str, str] = {}
    for run in validated:
        hits, cases = unpack_hits(run["metrics"]["validation"].get("per_case"))
        if hits is None:
            unread[run["run_id"]] = cases  # why not
        else:
            groups.setdefault(cases, []).append((run, hits))
    top = max(validated, key=lambda r: validation_hr(r) or 0.0)  # the rule before the paired one
    fallback = {"run": top, "on_validation": True, "rule": "highest_validation"}
    name = run_label(top)
    if not groups:
        old = all(why.startswith("has no per-case") for why in unread.values())
        if old and len(unread) > 1:
            return {
                **fallback,
                "reason": "no run has per-case validation hits stored (runs trained before they were kept)",
            }
        return {**fallback, "reason": f"{name} {unread[top['run_id']]}"}
    group = max(groups.values(), key=lambda g: (len(g), max(validation_hr(r) or 0.0 for r, _ in g)))
    order = sorted(group, key=lambda rh: (_simplest_first(rh[0]), -float(rh[1].mean())))
    same_list = {r["run_id"] for r, _ in order if r.get("family") in SAME_LIST_FAMILIES}
    chosen, why = recommend({r["run_id"]: hits for r, hits in order}, only_if_best=same_list)
    by_id = {r["run_id"]: r for r, _ in group}
    best = by_id[why["best"]]
    left_out = [r for r in validated if r["run_id"] not in by_id]
    if (validation_hr(top) or 0.0) > (validation_hr(best) or 0.0):  # outside the group
        reason = unread.get(top["run_id"], "was scored on other validation cases")
        return {**fallback, "reason": f"{name}, the highest on validation, {reason}"}
    gap = why["gaps"][chosen]
    return {
        "run": by_id[chosen],
        "on_validation": True,
        "rule": "paired",
        "best": best,
        "gap": gap["gap"],
        "se": gap["se"],
        "n_cases": len(order[0][1]),
        "compared": [r["run_id"] for r, _ in order],
        "left_out": left_out,
    }


def best_run(runs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    """(the best of ``runs``, whether chosen on validation), by :func:`best_choice`'s rule.
    Overview's headline ("Best variant") and the run Explore and the Map open on use this one
    rule."""
    choice = best_choice(runs)
    return choice["run"], choice["on_validation"]


def opening_run(
    registry: Registry,
    runs: list[dict[str, Any]],
    all_runs: list[dict[str, Any]] | None = None,
    dataset: str | None = None,
) -> tuple[str | None, str | None]:
    """(run id, why) of the run a page showing one embedding run opens on when none is asked:
    Explore, the Map and Vetting (the one rule: a merchandiser going from one to another sees
    the same run; Compare opens on it first, ``pages.compare.default_runs``).

    The best (:func:`best_run`) of the active runs with item vectors of the dataset served by
    default: the variant Overview's headline names whenever that one is served, so a newcomer
    going from Overview to the Map or Explore sees that model (the demo build activates every
    family, and the run served by default was merely the newest of them). A run the user
    activated still wins over an inactive one that scores higher; ``why`` then says that
    Overview's best is not served (or has no item vectors). Else (nothing scored) the run served
    by default (``Registry.default_run``) and no reason. ``runs``: the embedding runs the page
    can show; ``all_runs``: every run, as ``registry.list_runs()`` gave the page (read once per
    layout: each listing reads every run.json), listed here when not given. ``dataset``: that
    dataset's run instead of the default dataset's (a page's Dataset picker)."""
    every = registry.list_runs() if all_runs is None else all_runs
    dataset = dataset or registry.default_dataset(every)
    mine = [r for r in every if (r.get("dataset") or {}).get("name") == dataset]
    shown = {r["run_id"] for r in runs}
    best, _ = best_run(mine)
    choice = best_choice([r for r in mine if r.get("active") and r["run_id"] in shown])
    served = choice["run"]
    if served is None:
        default = registry.default_run(dataset=dataset, runs=every)
        return (default if default in shown else None), None
    how = {
        "paired": "on validation, the simplest within one standard error of the best",
        "highest_validation": "validation HR@10",
    }.get(choice["rule"], "test HR@10: no run has a validation score")
    if best is None or best["run_id"] == served["run_id"]:
        return served["run_id"], f"the best variant on '{dataset}' ({how}), as on Overview"
    name = run_label(best)
    lacks = (
        "has no item vectors" if best["run_id"] not in shown else "is not active (the Runs page activates it)"
    )
    return served["run_id"], (
        f"the best active variant on '{dataset}' ({how}); Overview's best variant, {name}, {lacks}"
    )


def run_names(runs: list[dict[str, Any]], with_family: bool = True) -> dict[str, str]:
    """Run id -> "label · family" ("· dataset" too when the runs span several datasets), then,
    for names still shared by two runs (one label retrained, or on two datasets of one name),
    the date each was trained and, if that is shared too, the run id: every name tells its run
    apart from the others listed with it. ``with_family=False``: without "· family" (for a place
    that shows the family beside the name)."""
    names = [str((r.get("dataset") or {}).get("name") or "") for r in runs]
    several = len(set(names) - {""}) > 1
    texts: dict[str, str] = {}
    for r, name in zip(runs, names):
        label = run_label(r)
        star = " ★" if r.get("active") else ""
        family = str(r.get("family", ""))
        named = not with_family or not family or family in label
        text = f"{label}{star}" if named else f"{label} · {family}{star}"
        if several and name and name not in label:
            text = f"{text} · {name}"
        texts[r["run_id"]] = text
    for extra in (_run_date, lambda r: str(r["run_id"])):
        seen: dict[str, int] = {}
        for text in texts.values():
            seen[text] = seen.get(text, 0) + 1
        for r in runs:
            text = texts[r["run_id"]]
            if seen[text] > 1 and (more := extra(r)) and more not in text:
                texts[r["run_id"]] = f"{text} · {more}"
    return texts


def _run_date(run: dict[str, Any]) -> str:
    # run.json's "created" is ISO UTC ("2026-12-06T09:24:03+00:00"): minutes are enough to tell
    created = str(run.get("created") or "")
    return f"{created[:10]} {created[11:16]}".strip() if len(created) >= 16 else created


def run_options(runs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Dropdown options named by :func:`run_names` (label · family, the dataset when several,
    the date or id when two runs would read the same)."""
    names = run_names(runs)
    return [{"label": names[r["run_id"]], "value": r["run_id"]} for r in runs]


def search_items(view: Any, query: str | None, limit: int | None = MAX_OPTIONS) -> np.ndarray:
    """:func:`recsys.catalog.search_items` (the one item search), at most ``limit`` positions."""
    from recsys.catalog import search_items as search  # off the app's start path (pandas)

    return search(view, query, limit)


def item_label(row: dict[str, Any]) -> str:
    """Dropdown label of an item: title · brand · price (id)."""
    parts = [display_title(row)]
    if row.get("brand"):
        parts.append(str(row["brand"]))
    price = fmt_price(row.get("price"))
    if price != "—":
        parts.append(price)
    return f"{' · '.join(parts)}  ({row.get('item_id')})"


#: Props of a dropdown whose options the server searches (:func:`seed_options`): the browser
#: keeps the server's order. Dash 4's dropdown re-ranks the options of a typed search by its own
#: text relevance ("index", the default): on Instacart "banana" listed "Banana & Sweet Potato…"
#: (a rare item) before the server's first, "Banana" (the most bought).
SERVER_SEARCHED = {"search_order": "original"}


def seed_options(view: Any, query: str | None, current: str | None = None) -> list[dict[str, str]]:
    """Options of the seed dropdown for a typed query, best first (:func:`search_items`'s order).

    The current seed stays listed (a dropdown drops a value missing from its options): first
    without a query, last after the matches of one, so that it never comes before the best
    match (the browser hides it when it does not match the typed text)."""
    pos = search_items(view, query)
    if current:
        cur = view.position(current)
        if cur >= 0 and cur not in set(pos.tolist()):
            pos = np.concatenate([pos, [cur]] if query else [[cur], pos]).astype(np.int64)
    if len(pos) == 0:
        return []
    rows = view.attributes(pos).to_dict("records")
    return [
        {"label": item_label(r), "value": str(r.get("item_id") or view.item_ids[p])}
        for r, p in zip(rows, pos)
    ]


def default_seed(view: Any, also_in: Sequence[Any] = ()) -> str | None:
    """A seed to start with: the first item of the most populated category.

    With ``also_in`` (other runs' catalogue views), the first such item that every one
    of them knows too (else any item they all know; else the plain choice), so that a
    page comparing runs does not open on a seed one of them has no vector for.
    """
    if view.n == 0:
        return None
    bounds = view.cat_bounds[0]
    sizes = np.diff(bounds)
    top = int(np.argmax(sizes)) if len(sizes) else -1
    start, end = (int(bounds[top]), int(bounds[top + 1])) if top >= 0 else (0, view.n)
    if also_in:
        ids = np.asarray(view.item_ids, dtype=str)
        known = np.ones(view.n, dtype=bool)
        for other in also_in:
            known &= np.isin(ids, np.asarray(other.item_ids, dtype=str))
        hits = np.flatnonzero(known)
        if len(hits):
            in_top = hits[(hits >= start) & (hits < end)]
            return str(view.item_ids[in_top[0] if len(in_top) else hits[0]])
    return str(view.item_ids[start])


def lacking_attributes(view: Any) -> list[str]:
    """The attributes of the filter panel's rules that no item of ``view`` has (``"category"``,
    ``"gender"``; Instacart has no genders): a "Same …" rule would skip every seed there, doing
    nothing, and a price rule (``"price"``: no item has one) would leave no item, since items
    without a price are excluded while a band applies (:func:`components.filter_panel.filter_panel`'s
    ``lacks``)."""
    lacks = []
    if view.n and bool(np.all(view.cat_empty)):
        lacks.append("category")
    if view.n and bool(np.all(view.gender_names[view.gender] == "")):
        lacks.append("gender")
    if view.n and len(view.sorted_prices) == 0:  # Instacart, Taobao: every price rule empties the list
        lacks.append("price")
    return lacks


def top_brands(view: Any, limit: int = 500) -> list[str]:
    """Brand names by number of items (for the brand pickers)."""
    order = np.argsort(-view.brand_counts, kind="stable")
    out = [str(view.brand_display[i]) for i in order if view.brand_keys[i] != ""]
    return out[:limit]
