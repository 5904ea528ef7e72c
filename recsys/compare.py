"""Comparing model variants (runs): list agreement, disagreement seeds, per-category metrics.

Pure functions on ranked id lists and run.json dicts; the only ones that touch the
registry are :func:`side_by_side` and :func:`find_disagreements`, which call the one search
code path (:func:`recsys.search.similar_items`) so that what Compare shows is what Explore
and the REST API return.

Agreement measures
------------------
``overlap@k``
    ``|A[:k] ∩ B[:k]| / k``: the share of the top-k the two lists have in common, order
    ignored. Padding (``""``) is not an item.
``RBO`` (rank-biased overlap, Webber, Moffat & Zobel 2010)
    A top-weighted similarity of two rankings in [0, 1]: agreement at depth d weighs
    ``p**(d-1)``, so the first positions count most. We return the extrapolated value
    ``RBO_ext`` (their equation 32), which is 1 for identical lists and 0 for disjoint ones,
    and handles lists of different lengths.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from recsys.registry import Registry

logger = logging.getLogger(__name__)

PAD_ID = ""


def _clean(ranking: Sequence[Any], depth: int | None = None) -> list[str]:
    """Drop padding and repeated ids (first occurrence wins), keep order, cut at depth."""
    seen: set[str] = set()
    out: list[str] = []
    for item in ranking:
        s = str(item)
        if s == PAD_ID or s in seen:
            continue
        seen.add(s)
        out.append(s)
        if depth is not None and len(out) >= depth:
            break
    return out


def overlap_at_k(a: Sequence[Any], b: Sequence[Any], k: int) -> float:
    """Share of the top-k items two rankings have in common.

    Parameters
    ----------
    a, b : sequence of str
        Ranked item ids, best first; ``""`` entries (padding) are ignored.
    k : int
        Depth (>= 1).

    Returns
    -------
    float
        ``|a[:k] ∩ b[:k]| / k`` in [0, 1]; NaN when both lists are empty (nothing to compare).

    Examples
    --------
    >>> overlap_at_k(["a", "b", "c", "d"], ["b", "x", "a", "y"], 4)
    0.5
    """
    if k < 1:
        raise ValueError(f"overlap_at_k: k must be >= 1, got {k}")
    ta, tb = _clean(a, k), _clean(b, k)
    if not ta and not tb:
        return float("nan")
    return len(set(ta) & set(tb)) / k


def rank_biased_overlap(
    a: Sequence[Any], b: Sequence[Any], p: float = 0.9, depth: int | None = None
) -> float:
    """Extrapolated rank-biased overlap (RBO_ext) of two rankings.

    Parameters
    ----------
    a, b : sequence of str
        Ranked item ids, best first; ``""`` padding and repeats are ignored.
    p : float
        Persistence in (0, 1): the weight of depth d is ``p**(d-1)``. 0.9 puts about 86% of
        the weight on the first 10 positions.
    depth : int, optional
        Cut both lists at this depth first (e.g. k).

    Returns
    -------
    float
        In [0, 1]; 1 for identical rankings, 0 for disjoint ones, NaN when both are empty.

    Notes
    -----
    With ``s = len(short)``, ``l = len(long)`` and ``X_d`` the overlap of the two prefixes of
    length d (the short list stops growing after s)::

        RBO_ext = (1-p)/p * (sum_{d=1..l} X_d/d p^d + sum_{d=s+1..l} X_s (d-s)/(s d) p^d)
                  + ((X_l - X_s)/l + X_s/s) p^l
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"rank_biased_overlap: p must be in (0, 1), got {p}")
    la, lb = _clean(a, depth), _clean(b, depth)
    if not la and not lb:
        return float("nan")
    if not la or not lb:
        return 0.0
    short, long_ = (la, lb) if len(la) <= len(lb) else (lb, la)
    s, n = len(short), len(long_)
    seen_s: set[str] = set()
    seen_l: set[str] = set()
    x = 0
    xs = np.zeros(n + 1)  # xs[d] = overlap of the prefixes of length d
    for d in range(1, n + 1):
        item_l = long_[d - 1]
        if d <= s:
            item_s = short[d - 1]
            if item_s == item_l:
                x += 1
            else:
                x += (item_s in seen_l) + (item_l in seen_s)
            seen_s.add(item_s)
        else:
            x += item_l in seen_s
        seen_l.add(item_l)
        xs[d] = x
    d = np.arange(1, n + 1, dtype=float)
    pd_ = p**d
    total = float(np.sum(xs[1:] / d * pd_))
    x_s = xs[s]
    if n > s:
        tail = d[s:]
        total += float(np.sum(x_s * (tail - s) / (s * tail) * (p**tail)))
    return float((1 - p) / p * total + ((xs[n] - x_s) / n + x_s / s) * p**n)


def row_overlap(ids_a: np.ndarray, ids_b: np.ndarray, k: int) -> np.ndarray:
    """overlap@k of many ranking pairs at once (batch-first).

    Parameters
    ----------
    ids_a, ids_b : numpy.ndarray of str, shape (n, >= k)
        Row i of each is the ranking for seed i (``""`` padding allowed; rows hold no repeats,
        as ``similar`` results never do).
    k : int
        Depth.

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        NaN for rows where both rankings are empty.
    """
    a = np.asarray(ids_a, dtype=str)[:, :k]
    b = np.asarray(ids_b, dtype=str)[:, :k]
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"row_overlap: {a.shape[0]} rows against {b.shape[0]}")
    valid_a = a != PAD_ID
    hits = ((a[:, :, None] == b[:, None, :]) & valid_a[:, :, None]).any(axis=2).sum(axis=1)
    empty = ~valid_a.any(axis=1) & ~(b != PAD_ID).any(axis=1)
    out = hits / float(k)
    out[empty] = np.nan
    return out


def pairwise_agreement(rankings: Mapping[str, Sequence[Any]], k: int, p: float = 0.9) -> list[dict[str, Any]]:
    """overlap@k and RBO between every pair of named rankings.

    Parameters
    ----------
    rankings : mapping of name -> ranked ids
        E.g. run id -> the neighbours that run gives one seed; insertion order is kept.
    k : int
        Depth of both measures.
    p : float
        RBO persistence.

    Returns
    -------
    list of dict
        One ``{"a", "b", "overlap", "rbo", "common": [ids]}`` per unordered pair.
    """
    out = []
    for a, b in combinations(list(rankings), 2):
        ra, rb = _clean(rankings[a], k), _clean(rankings[b], k)
        common = [i for i in ra if i in set(rb)]
        out.append(
            {
                "a": a,
                "b": b,
                "overlap": overlap_at_k(ra, rb, k),
                "rbo": rank_biased_overlap(ra, rb, p=p),
                "common": common,
            }
        )
    return out


def disagreement_seeds(
    seeds: Sequence[str],
    ids_a: np.ndarray,
    ids_b: np.ndarray,
    k: int = 10,
    n: int = 10,
    p: float = 0.9,
) -> pd.DataFrame:
    """The seeds where two variants' top-k lists agree least.

    Parameters
    ----------
    seeds : sequence of str, length m
        Seed item ids.
    ids_a, ids_b : numpy.ndarray of str, shape (m, >= k)
        Each variant's ranking per seed (``""`` padding allowed).
    k : int
        Depth of overlap@k and RBO.
    n : int
        How many seeds to return.
    p : float
        RBO persistence.

    Returns
    -------
    pandas.DataFrame
        Columns ``seed, overlap, rbo, n_a, n_b``, lowest overlap first (ties broken by RBO,
        then seed id); seeds for which either variant has nothing are left out.
    """
    import pandas as pd  # lazily: the dashboard imports this module at start

    seeds = [str(s) for s in seeds]
    ids_a = np.asarray(ids_a, dtype=str)
    ids_b = np.asarray(ids_b, dtype=str)
    if not (len(seeds) == ids_a.shape[0] == ids_b.shape[0]):
        raise ValueError(
            f"disagreement_seeds: {len(seeds)} seeds but {ids_a.shape[0]} and {ids_b.shape[0]} ranking rows"
        )
    cols = ["seed", "overlap", "rbo", "n_a", "n_b"]
    if not seeds:
        return pd.DataFrame(columns=cols)
    n_a = (ids_a[:, :k] != PAD_ID).sum(axis=1)
    n_b = (ids_b[:, :k] != PAD_ID).sum(axis=1)
    keep = np.flatnonzero((n_a > 0) & (n_b > 0))
    ov = row_overlap(ids_a[keep], ids_b[keep], k)
    rbo = np.array([rank_biased_overlap(ids_a[i, :k], ids_b[i, :k], p=p) for i in keep], dtype=float)
    frame = pd.DataFrame(
        {
            "seed": [seeds[i] for i in keep],
            "overlap": ov,
            "rbo": rbo,
            "n_a": n_a[keep].astype(int),
            "n_b": n_b[keep].astype(int),
        },
        columns=cols,
    )
    frame = frame.sort_values(["overlap", "rbo", "seed"], kind="stable").head(n)
    return frame.reset_index(drop=True)


def sample_seeds(item_ids: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """``n`` distinct item ids drawn reproducibly (all of them when there are fewer)."""
    ids = np.asarray(item_ids, dtype=str)
    if n >= len(ids):
        return ids.tolist()
    rng = np.random.default_rng(seed)
    return ids[np.sort(rng.choice(len(ids), size=n, replace=False))].tolist()


# -- per-category metrics ------------------------------------------------------------


def _per_category_records(per_category: Any, metric: str) -> list[tuple[str, float, int | None]]:
    """Normalise the shapes ``metrics["per_category"]`` may take to (category, value, n)."""
    out: list[tuple[str, float, int | None]] = []
    if per_category is None:
        return out
    if isinstance(per_category, list):  # [{"category": .., metric: .., "n_cases": ..}, ...]
        for row in per_category:
            if isinstance(row, Mapping) and metric in row:
                cat = str(row.get("category", row.get("name", "")))
                out.append((cat, float(row[metric]), _int_or_none(row.get("n_cases", row.get("n")))))
        return out
    if not isinstance(per_category, Mapping):
        return out
    if metric in per_category and isinstance(per_category[metric], Mapping):  # {metric: {cat: v}}
        counts = per_category.get("n_cases") if isinstance(per_category.get("n_cases"), Mapping) else {}
        for cat, value in per_category[metric].items():
            out.append((str(cat), float(value), _int_or_none(counts.get(cat))))
        return out
    for cat, value in per_category.items():  # {cat: {metric: v, "n_cases": n}} or {cat: v}
        if isinstance(value, Mapping):
            if metric in value and value[metric] is not None:
                out.append(
                    (str(cat), float(value[metric]), _int_or_none(value.get("n_cases", value.get("n"))))
                )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append((str(cat), float(value), None))
    return out


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
    except (TypeError, ValueError):
        return None


def per_category_table(runs: Sequence[Mapping[str, Any]], metric: str = "hr@10") -> pd.DataFrame:
    """A metric per top-level category for several runs, in long form.

    Parameters
    ----------
    runs : sequence of run.json dicts
        Each with ``run_id``, optional ``label`` and ``metrics["per_category"]``.
    metric : str
        The metric key inside each category entry (``"hr@10"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, label, category, value, n_cases``, sorted by category then run order.
        Runs without per-category metrics contribute no rows. Category paths are cut to their
        top level; entries of sub-categories of the same top level are averaged, weighted by
        ``n_cases`` when known.
    """
    import pandas as pd  # lazily: the dashboard imports this module at start

    from recsys.data.schema import CATEGORY_SEP
    from recsys.registry import run_label

    rows = []
    for order, run in enumerate(runs):
        per_cat = (run.get("metrics") or {}).get("per_category")
        for cat, value, n in _per_category_records(per_cat, metric):
            top = cat.split(CATEGORY_SEP, 1)[0].strip() or "(none)"
            rows.append(
                {
                    "run_id": run.get("run_id", ""),
                    "label": run_label(run),
                    "order": order,
                    "category": top,
                    "value": value,
                    "n_cases": n,
                }
            )
    cols = ["run_id", "label", "category", "value", "n_cases"]
    if not rows:
        return pd.DataFrame(columns=cols)
    frame = pd.DataFrame(rows)
    frame["w"] = frame["n_cases"].fillna(1.0).astype(float).clip(lower=1e-9)
    frame["vw"] = frame["value"] * frame["w"]
    grouped = frame.groupby(["order", "run_id", "label", "category"], as_index=False, sort=False).agg(
        vw=("vw", "sum"), w=("w", "sum"), n_cases=("n_cases", lambda s: s.sum(min_count=1))
    )
    grouped["value"] = grouped["vw"] / grouped["w"]
    grouped = grouped.sort_values(["category", "order"], kind="stable")
    grouped["n_cases"] = grouped["n_cases"].astype("Int64")
    return grouped[cols].reset_index(drop=True)


def top_categories(table: pd.DataFrame, top_n: int = 12) -> pd.DataFrame:
    """:func:`per_category_table`'s rows cut to the ``top_n`` categories with the most cases,
    the rest merged per run into one row "other K categories" (its value the cases-weighted mean,
    its cases their sum): a chart that drew one bar group per category drew 37 on Taobao.

    A category's cases are the most any run scored in it (categories without counts rank last,
    by name). Rows come out ordered by that rank (the merged row last), then by run order.
    """
    import pandas as pd  # lazily: the dashboard imports this module at start

    if table.empty:
        return table
    cases = table.groupby("category", sort=False)["n_cases"].max()
    ranked = sorted(
        cases.index, key=lambda c: (pd.isna(cases[c]), -(0 if pd.isna(cases[c]) else cases[c]), c)
    )
    if len(ranked) > top_n + 1:  # merging one category alone into "other 1 categories" saves nothing
        kept, rest = ranked[:top_n], ranked[top_n:]
    else:
        kept, rest = ranked, []
    out = table[table["category"].isin(kept)].copy()
    out["_rank"] = out["category"].map({c: i for i, c in enumerate(kept)})
    if rest:
        other = table[table["category"].isin(rest)].copy()
        other["w"] = other["n_cases"].astype("float").fillna(1.0).clip(lower=1e-9)
        other["vw"] = other["value"] * other["w"]
        merged = other.groupby(["run_id", "label"], as_index=False, sort=False).agg(
            vw=("vw", "sum"), w=("w", "sum"), n_cases=("n_cases", lambda s: s.sum(min_count=1))
        )
        merged["value"] = merged["vw"] / merged["w"]
        merged["category"] = f"other {len(rest)} categories"
        merged["_rank"] = len(kept)
        out = pd.concat([out, merged[list(table.columns) + ["_rank"]]], ignore_index=True)
    order = {r: i for i, r in enumerate(dict.fromkeys(table["run_id"]))}
    out["_run"] = out["run_id"].map(order)
    out = out.sort_values(["_rank", "_run"], kind="stable").drop(columns=["_rank", "_run"])
    out["n_cases"] = out["n_cases"].astype("Int64")
    return out.reset_index(drop=True)


# -- registry-backed helpers -----------------------------------------------------------


def _run_lists(
    registry: Registry, run_id: str, item_ids: Sequence[str], config: Any, k: int
) -> list[dict[str, Any]]:
    """Each seed's list from one run: filtered search for embedding runs; for runs without
    vectors their own ranking, completed by the run's fallback chain and filtered by the same
    rules (:func:`recsys.search.service.similar_from_lists`, batched: the lists
    :func:`recsys.search.similar_items` gives one seed at a time)."""
    from recsys.errors import RecsysError
    from recsys.search import RunNotSearchableError, similar_from_lists, similar_items
    from recsys.search.service import UNKNOWN_SEED, _lists_model

    if _lists_model(registry, run_id) is not None:
        # a run without vectors: its own ranking, completed by its fallback chain, filtered alike
        out = []
        for res, item in zip(
            similar_from_lists(registry, run_id, list(item_ids), config, k), item_ids, strict=True
        ):
            error = None
            if res.plan == UNKNOWN_SEED:
                # worded as an embedding run's unknown seed (its column already names the run)
                error = f"item '{item}' is not known to this run: pick another seed item"
            elif not res.item_ids:
                error = f"this run has no recommendation for item '{item}'"
            out.append(
                {
                    "item_ids": list(res.item_ids),
                    "scores": list(res.scores),
                    "filtered": True,
                    "served_by": list(res.served_by),
                    "removed_by_rule": dict(res.removed_by_rule),
                    "error": error,
                }
            )
        return out
    out: list[dict[str, Any]] = []
    for item in item_ids:
        try:
            res = similar_items(registry, run_id, item, config, k)
        except RunNotSearchableError:
            raise  # the whole run cannot answer: one message for it (side_by_side)
        except RecsysError as exc:
            out.append({"item_ids": [], "scores": [], "filtered": True, "error": str(exc)})
            continue
        out.append(
            {
                "item_ids": list(res.item_ids),
                "scores": list(res.scores),
                "filtered": True,
                "served_by": list(res.served_by),
                "plan": res.plan,
                "elapsed_ms": res.elapsed_ms,
                "removed_by_rule": dict(res.removed_by_rule),
                "error": None,
            }
        )
    return out


def side_by_side(
    registry: Registry,
    run_ids: Sequence[str],
    item_id: str,
    config: Any = None,
    k: int = 10,
    p: float = 0.9,
) -> dict[str, Any]:
    """Neighbours of one seed from several runs with the same filters, and their agreement.

    Parameters
    ----------
    registry : recsys.registry.Registry
    run_ids : sequence of str
        Two to four runs. Embedding runs answer through ``similar_items`` (the Explore/REST
        code path) with ``config``; runs without vectors (baselines, session kNN) with their
        own ``similar``, completed by their fallback chain and filtered by the same rules.
    item_id : str
        The seed.
    config : recsys.filters.FilterConfig, optional
        Filters applied identically to every embedding run (no filters when None).
    k : int
        List length.
    p : float
        RBO persistence.

    Returns
    -------
    dict
        ``{"lists": {run_id: {"item_ids", "scores", "filtered", "error", ...}},
        "pairs": pairwise_agreement(...)}``; a run that cannot answer (e.g. the seed has no
        vector there) gets an ``error`` message and an empty list instead of failing the others.
    """
    from recsys.errors import RecsysError

    lists: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        try:
            lists[run_id] = _run_lists(registry, run_id, [item_id], config, k)[0]
        except RecsysError as exc:
            lists[run_id] = {"item_ids": [], "scores": [], "filtered": False, "error": str(exc)}
    rankings = {r: v["item_ids"] for r, v in lists.items()}
    return {"lists": lists, "pairs": pairwise_agreement(rankings, k, p)}


def side_by_side_session(
    registry: Registry,
    run_ids: Sequence[str],
    session: Sequence[str],
    config: Any = None,
    k: int = 10,
    p: float = 0.9,
    exclude_seen: bool = True,
) -> dict[str, Any]:
    """Recommendations for one session (recent items, oldest first) from several runs with the
    same filters, and their agreement: :func:`side_by_side` for runs that recommend from a
    whole session (session kNN, two-tower; an item-embedding run from the mean of the recent
    items' vectors).

    Every run answers through :func:`recsys.search.recommend_for_recent` (the Explore panel's
    and ``POST /api/v1/recommend``'s code path), so the filters and the run's fallback chain
    apply as they do there. Returns ``{"lists": {run_id: {"item_ids", "scores", "filtered",
    "method", "served_by", "ignored", "error"}}, "pairs": pairwise_agreement(...)}``; a run
    that cannot answer (no item vectors, no recent item known) gets an ``error`` and an empty
    list instead of failing the others.
    """
    from recsys.errors import RecsysError
    from recsys.search import recommend_for_recent

    lists: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        try:
            res = recommend_for_recent(registry, run_id, list(session), config, k, exclude_seen=exclude_seen)
        except RecsysError as exc:
            lists[run_id] = {"item_ids": [], "scores": [], "filtered": False, "error": str(exc)}
            continue
        lists[run_id] = {
            "item_ids": list(res.item_ids),
            "scores": list(res.scores),
            "filtered": True,
            "method": res.method,
            "served_by": list(res.served_by),
            "ignored": list(res.ignored_item_ids),
            "error": None,
        }
    rankings = {r: v["item_ids"] for r, v in lists.items()}
    return {"lists": lists, "pairs": pairwise_agreement(rankings, k, p)}


def find_disagreements(
    registry: Registry,
    run_a: str,
    run_b: str,
    config: Any = None,
    k: int = 10,
    n_seeds: int = 200,
    n: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Sample seeds both runs know and return those where their filtered lists differ most.

    Parameters
    ----------
    registry : recsys.registry.Registry
    run_a, run_b : str
        The two runs.
    config : recsys.filters.FilterConfig, optional
        Filters applied to both (none when None).
    k : int
        List length.
    n_seeds : int
        How many seeds to sample (reproducibly, from items both runs have vectors for).
    n : int
        How many seeds to return.
    seed : int
        Random seed of the sample.

    Returns
    -------
    pandas.DataFrame
        As :func:`disagreement_seeds`.
    """
    model_a, model_b = registry.load_model(run_a), registry.load_model(run_b)
    common = np.intersect1d(
        np.asarray(model_a.item_ids_, dtype=str), np.asarray(model_b.item_ids_, dtype=str)
    )
    seeds = sample_seeds(common, n_seeds, seed)
    ids_a = np.full((len(seeds), k), PAD_ID, dtype=object)
    ids_b = np.full((len(seeds), k), PAD_ID, dtype=object)
    for run_id, target in ((run_a, ids_a), (run_b, ids_b)):
        for row, got in enumerate(_run_lists(registry, run_id, seeds, config, k)):
            ranked = got["item_ids"][:k]
            target[row, : len(ranked)] = ranked
    return disagreement_seeds(seeds, ids_a.astype(str), ids_b.astype(str), k=k, n=n)


def filter_impact_for_run(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Moved to :func:`recsys.search.impact.filter_impact_for_run` (kept for old imports)."""
    from recsys.search.impact import filter_impact_for_run as impl

    return impl(*args, **kwargs)
