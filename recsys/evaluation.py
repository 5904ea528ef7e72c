"""Offline evaluation: train/test splits and top-K metrics for every model family.

Splits
------
- ``"time"``: whole sequences are assigned by their start time; the last
  ``test_days`` days (or the last ``test_fraction`` of sequences) form the test set.
- ``"leave_last_out"``: the last event of every sequence with two or more events is
  held out. The test dataset carries those sequences whole, with a boolean
  ``heldout`` column marking the held-out rows; the training dataset has every other
  row.

Test cases (a seed item and a set of target items)
---------------------------------------------------
- sessions, time split: every consecutive pair ``(a, b)`` of a test session
  (after collapsing repeats) is a case ``a -> {b}`` (next item);
- baskets, time split: every item of a test basket is a seed whose targets are the
  other items of the basket (frequently bought together); ``basket_targets="one"``
  keeps one random partner as the single target, ``"next"`` the next line of the
  basket (see :func:`build_cases`);
- leave-last-out: sessions give one case, the last remaining item -> the held-out
  item; baskets give one case per remaining item -> the held-out item.

Cases are sampled down to ``max_cases`` (seeded). A seed for which the model returns
no recommendation at all (unknown to the model) counts as a miss and is reported in
``skipped_cases``.

Metrics at K (means over cases; rel_i = 1 when the i-th recommendation is a target)
-----------------------------------------------------------------------------------
- ``hr@K``: share of cases with at least one target in the top K;
- ``precision@K``: hits / K;  ``recall@K``: hits / number of targets;
- ``ndcg@K``: sum_i rel_i / log2(i + 1) over the ideal value
  sum_{i <= min(K, n_targets)} 1 / log2(i + 1);
- ``mrr@K``: 1 / rank of the first hit (0 without a hit);
- ``coverage@K``: share of catalogue items that appear in at least one list;
- ``popularity_bias@K``: mean popularity percentile of the recommended items (every
  recommended slot counted), where an item's percentile is the average rank of its
  number of training interactions among all catalogue items divided by the number of
  catalogue items: 1.0 means only the most popular items, about 0.5 means as popular
  as a randomly drawn catalogue item, lower means a long-tail bias;
- ``per_category``: ``{top-level category of the seed: {"hr@K", "ndcg@K", "n"}}``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys.config import Progress, null_progress
from recsys.data.schema import Dataset, category_level, interaction_counts
from recsys.errors import DataValidationError
from recsys.models.base import PAD_ID, check_k

logger = logging.getLogger(__name__)

HELDOUT = "heldout"
SPLIT_METHODS = ("time", "leave_last_out", "cutoff", "last_days")
REPEATS = ("collapse", "keep")
#: Fewer test cases than this get a warning: intervals are wide.
MIN_CASES = 500
#: A run whose model has nothing for more than this share of test seeds gets a warning.
MAX_NO_RECS = 0.05
BASKET_TARGETS = ("rest", "one", "next")


# ---------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------
def _subset(
    dataset: Dataset, mask: np.ndarray, suffix: str, interactions: pd.DataFrame | None = None
) -> Dataset:
    inter = dataset.interactions[mask] if interactions is None else interactions
    return Dataset(
        name=f"{dataset.name}:{suffix}",
        catalog=dataset.catalog,
        interactions=inter.reset_index(drop=True),
        report=dataset.report,
        kind=dataset.kind,
    )


def split(
    dataset: Dataset,
    method: str = "time",
    test_days: float | None = None,
    test_fraction: float = 0.1,
    cutoff: Any = None,
) -> tuple[Dataset, Dataset]:
    """Split a dataset into a training and a test dataset (same catalog).

    Parameters
    ----------
    dataset : Dataset
    method : {"time", "leave_last_out"}
    test_days : float, optional
        Time split only: sequences starting in the last ``test_days`` days (counted back
        from the latest timestamp) are the test set. Takes precedence over
        ``test_fraction``.
    test_fraction : float
        Time split only: share of sequences (the latest-starting ones) held out.
    cutoff : date-like, optional
        ``"cutoff"`` split: sequences starting at or after it are the test set.
        ``"last_days"`` is the time split with ``test_days``.

    Returns
    -------
    (train, test) : tuple of Dataset

    Raises
    ------
    DataValidationError
        When the time split has no timestamps to work with, or a side would be empty.
    ValueError
        For an unknown method or a fraction outside (0, 1).
    """
    method = str(method).replace("-", "_")
    if method not in SPLIT_METHODS:
        raise ValueError(f"split method must be one of {SPLIT_METHODS}, got {method!r}")
    inter = dataset.interactions
    if len(inter) == 0:
        raise DataValidationError(f"dataset '{dataset.name}' has no interactions to split")
    if method == "last_days":
        if test_days is None:
            raise DataValidationError("the last-days split needs a number of days (--days 7)")
        method = "time"
    if method == "cutoff":
        if cutoff is None:
            raise DataValidationError("the cutoff split needs a date (--cutoff 2024-05-01)")
        ts = pd.to_datetime(inter["timestamp"]) if "timestamp" in inter.columns else None
        if ts is None or ts.isna().all():
            raise DataValidationError(
                f"dataset '{dataset.name}' has no timestamps for a cutoff split; use --split leave_last_out",
                column="timestamp",
            )
        try:
            when = pd.Timestamp(cutoff)
        except (ValueError, TypeError):
            raise DataValidationError(
                f"--cutoff {cutoff!r} is not a date; write it like 2024-05-01"
            ) from None
        if when.tzinfo is not None:
            when = when.tz_convert("UTC").tz_localize(None)
        starts = ts.groupby(inter["sequence_id"].to_numpy()).min()
        test_seqs = starts.index[starts.to_numpy() >= when]
        is_test = inter["sequence_id"].isin(test_seqs).to_numpy()
        if is_test.all() or not is_test.any():
            side = "training" if is_test.all() else "test"
            raise DataValidationError(
                f"cutoff {when} leaves an empty {side} set: '{dataset.name}' runs from {ts.min()} to {ts.max()}"
            )
        return _subset(dataset, ~is_test, "train"), _subset(dataset, is_test, "test")
    if method == "time":
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        ts = pd.to_datetime(inter["timestamp"]) if "timestamp" in inter.columns else None
        if ts is None or ts.isna().all():
            raise DataValidationError(
                f"dataset '{dataset.name}' has no timestamps for a time split; use --split leave_last_out",
                column="timestamp",
            )
        starts = ts.groupby(inter["sequence_id"].to_numpy()).min().dropna()
        if test_days is not None:
            if test_days <= 0:
                raise ValueError(f"test_days must be > 0, got {test_days}")
            cutoff = ts.max() - pd.Timedelta(days=float(test_days))
        else:
            n_test = max(1, int(math.ceil(test_fraction * len(starts))))
            cutoff = np.sort(starts.to_numpy())[len(starts) - n_test]
        test_seqs = starts.index[starts.to_numpy() >= cutoff]
        is_test = inter["sequence_id"].isin(test_seqs).to_numpy()
        if is_test.all() or not is_test.any():
            raise DataValidationError(
                f"time split of '{dataset.name}' at {cutoff} leaves an empty "
                f"{'training' if is_test.all() else 'test'} set; change the test days or test fraction"
            )
        logger.info(
            "time split of %s at %s: %d train / %d test sequences",
            dataset.name,
            cutoff,
            len(starts) - len(test_seqs),
            len(test_seqs),
        )
        return _subset(dataset, ~is_test, "train"), _subset(dataset, is_test, "test")

    # leave-last-out: the last row (by position) of sequences with >= 2 rows
    seq = inter["sequence_id"].to_numpy()
    pos = inter["position"].to_numpy() if "position" in inter.columns else np.arange(len(inter))
    codes, _ = pd.factorize(seq)
    order = np.lexsort((pos, codes))
    sorted_codes = codes[order]
    last = np.r_[sorted_codes[1:] != sorted_codes[:-1], True]
    sizes = np.bincount(codes)
    held_sorted = last & (sizes[sorted_codes] >= 2)
    held = np.zeros(len(inter), dtype=bool)
    held[order[held_sorted]] = True
    if not held.any():
        raise DataValidationError(
            f"dataset '{dataset.name}' has no sequence with 2 or more events to hold out"
        )
    in_test = np.isin(codes, np.unique(codes[held]))
    test_inter = inter[in_test].copy()
    test_inter[HELDOUT] = held[in_test]
    logger.info("leave-last-out split of %s: %d held-out events", dataset.name, int(held.sum()))
    return _subset(dataset, ~held, "train"), _subset(dataset, in_test, "test", interactions=test_inter)


def cold_items(train: Dataset, threshold: int = 3, catalog: Sequence[str] | None = None) -> np.ndarray:
    """Catalogue items with fewer than ``threshold`` interactions in ``train``.

    Parameters
    ----------
    train : Dataset
    threshold : int
        Items with strictly fewer training interactions (rows) are cold; items never
        seen count as 0.
    catalog : sequence of str, optional
        Item ids to consider (default: ``train.catalog``'s).

    Returns
    -------
    numpy.ndarray of str
    """
    ids = pd.Index(
        np.asarray(catalog, dtype=str) if catalog is not None else train.catalog["item_id"].astype(str)
    )
    return ids[interaction_counts(train.interactions, ids) < threshold].to_numpy(dtype=str)


# ---------------------------------------------------------------------------
# test cases
# ---------------------------------------------------------------------------
def _ordered(inter: pd.DataFrame) -> pd.DataFrame:
    df = inter.copy()
    df["item_id"] = df["item_id"].astype(str)
    if "position" not in df.columns:
        df["position"] = np.arange(len(df))
    return df.sort_values(["sequence_id", "position"], kind="stable")


def _sample(valid: np.ndarray, max_cases: int | None, rng: np.random.Generator) -> np.ndarray:
    idx = np.flatnonzero(valid)
    if max_cases is not None and len(idx) > max_cases:
        idx = np.sort(rng.choice(idx, size=max_cases, replace=False))
    return idx


def build_cases(
    test: Dataset,
    max_cases: int | None = 5000,
    seed: int = 0,
    seed_filter: Collection[str] | None = None,
    target_filter: Collection[str] | None = None,
    basket_targets: str = "rest",
    repeats: str = "collapse",
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The (seed, targets) test cases of a test dataset (see the module docstring).

    Parameters
    ----------
    test : Dataset
        The test part of :func:`split`.
    max_cases : int or None
        Sample at most this many cases (seeded); None keeps all.
    seed : int
        Seed of the sampling.
    seed_filter : collection of str, optional
        Keep only cases whose seed is in it.
    target_filter : collection of str, optional
        Keep only targets in it (e.g. :func:`cold_items`); cases left without a
        target are dropped.
    basket_targets : {"rest", "one", "next"}
        Baskets, time split: the targets of a seed are all the other items of its
        basket ("rest"), or one of them drawn at random ("one": a pairwise
        frequently-bought-together case, whose hit rate does not saturate on large
        baskets; its expected value equals recall@K of "rest" per seed), or the item
        on the next line of the basket ("next": the basket read as an ordered
        sequence, for baskets whose line order is the order items were added).
    repeats : {"collapse", "keep"}
        Sessions: consecutive repeats of an item are collapsed into one event
        (default), or kept, so that every position is a case (an item followed by
        itself is then a case whose target is the seed).

    Returns
    -------
    seeds : numpy.ndarray of str, shape (n,)
    targets : list of numpy.ndarray of str
    """
    rng = np.random.default_rng(seed)
    inter = test.interactions
    if len(inter) == 0:
        return np.zeros(0, dtype=str), []
    df = _ordered(inter)
    seed_set = None if seed_filter is None else set(map(str, seed_filter))
    target_set = None if target_filter is None else set(map(str, target_filter))

    def ok(values: np.ndarray, allowed: set[str] | None) -> np.ndarray:
        if allowed is None:
            return np.ones(len(values), dtype=bool)
        return pd.Series(values).isin(allowed).to_numpy()

    baskets = test.kind == "baskets"
    if HELDOUT in df.columns:
        held = df[HELDOUT].to_numpy(dtype=bool)
        held_df = df[held].drop_duplicates("sequence_id", keep="last")
        target_of = dict(zip(held_df["sequence_id"], held_df["item_id"]))
        ctx = df[~held]
        ctx = ctx[ctx["sequence_id"].isin(target_of.keys())]
        tgt = ctx["sequence_id"].map(target_of).to_numpy(dtype=str)
        items = ctx["item_id"].to_numpy(dtype=str)
        seqs = ctx["sequence_id"].to_numpy()
        valid = items != tgt
        if baskets:
            pair = pd.DataFrame({"s": seqs, "i": items})
            valid &= ~pair.duplicated().to_numpy()
        else:  # the last context item that differs from the target
            last_of = pd.Series(np.arange(len(items))[valid]).groupby(seqs[valid]).max()
            valid = np.zeros(len(items), dtype=bool)
            valid[last_of.to_numpy()] = True
        valid &= ok(items, seed_set) & ok(tgt, target_set)
        idx = _sample(valid, max_cases, rng)
        return items[idx], [np.asarray([t]) for t in tgt[idx]]

    if basket_targets not in BASKET_TARGETS:
        raise ValueError(f"basket_targets must be one of {BASKET_TARGETS}, got {basket_targets!r}")
    if baskets and basket_targets != "next":
        df = df.drop_duplicates(["sequence_id", "item_id"])
        seqs, _ = pd.factorize(df["sequence_id"])
        items = df["item_id"].to_numpy(dtype=str)
        in_t = ok(items, target_set)
        n_t = np.bincount(seqs, weights=in_t.astype(np.float64), minlength=seqs.max() + 1)
        valid = ok(items, seed_set) & (n_t[seqs] - in_t > 0)
        idx = _sample(valid, max_cases, rng)
        starts = np.r_[0, np.flatnonzero(np.diff(seqs)) + 1]
        ends = np.r_[starts[1:], len(items)]
        targets = []
        for p in idx:
            b = seqs[p]
            sl = np.arange(starts[b], ends[b])
            sl = sl[(sl != p) & in_t[sl]]
            if basket_targets == "one":
                sl = sl[[int(rng.integers(len(sl)))]]
            targets.append(items[sl])
        return items[idx], targets

    # sessions: consecutive pairs, after collapsing repeats unless they are kept
    if repeats not in REPEATS:
        raise ValueError(f"repeats must be one of {REPEATS}, got {repeats!r}")
    seqs, _ = pd.factorize(df["sequence_id"])
    items = df["item_id"].to_numpy(dtype=str)
    keep = np.r_[True, (items[1:] != items[:-1]) | (seqs[1:] != seqs[:-1])]
    if repeats == "keep":
        keep = np.ones(len(items), dtype=bool)
    seqs, items = seqs[keep], items[keep]
    same = seqs[1:] == seqs[:-1]
    src, dst = items[:-1][same], items[1:][same]
    valid = ok(src, seed_set) & ok(dst, target_set)
    idx = _sample(valid, max_cases, rng)
    return src[idx], [np.asarray([t]) for t in dst[idx]]


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------
def _recommend(
    model: Any, seeds: np.ndarray, k: int, batch_size: int, progress: Progress
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k lists for every case, calling ``model.similar`` in batches of unique seeds."""
    uniq, inverse = np.unique(seeds, return_inverse=True)
    out = np.full((len(uniq), k), PAD_ID, dtype=object)
    n_batches = max(1, math.ceil(len(uniq) / batch_size))
    for b in range(n_batches):
        chunk = uniq[b * batch_size : (b + 1) * batch_size]
        if len(chunk):
            ids, _ = model.similar(list(chunk), k)
            out[b * batch_size : b * batch_size + len(chunk)] = np.asarray(ids, dtype=object)[:, :k]
        progress(b + 1, n_batches, f"evaluating: {min((b + 1) * batch_size, len(uniq))}/{len(uniq)} seeds")
    return out[inverse].astype(str), uniq


def catalog_coverage(catalog_ids: Any, recommended: Any) -> float:
    """Share of ``catalog_ids`` in ``recommended``, by hashing: ``np.isin`` of two object
    (string) arrays compares every pair (92k catalogue ids x 40k recommended took minutes)."""
    if len(catalog_ids) == 0:
        return 0.0
    return float(pd.Index(catalog_ids).isin(recommended).sum() / len(catalog_ids))


def relevance(recs: np.ndarray, targets: list[np.ndarray]) -> np.ndarray:
    """Boolean (n, k): is ``recs[i, j]`` one of case i's targets (padding never is)."""
    n, k = recs.shape
    if n == 0:
        return np.zeros((0, k), dtype=bool)
    lens = np.fromiter((len(t) for t in targets), dtype=np.int64, count=n)
    flat_t = np.concatenate([np.asarray(t, dtype=str) for t in targets]) if lens.sum() else np.zeros(0, str)
    codes, _ = pd.factorize(np.concatenate([recs.ravel(), flat_t]))
    m = np.int64(codes.max() + 2)
    rec_keys = np.repeat(np.arange(n, dtype=np.int64), k) * m + codes[: n * k]
    tgt_keys = np.repeat(np.arange(n, dtype=np.int64), lens) * m + codes[n * k :]
    rel = np.isin(rec_keys, tgt_keys).reshape(n, k)
    return rel & (recs != PAD_ID)


def ranking_metrics(rel: np.ndarray, n_targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per-case hr, precision, recall, ndcg and mrr from a relevance matrix (n, k)."""
    n, k = rel.shape
    hits = rel.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (rel * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.clip(np.minimum(n_targets, k) - 1, 0, k - 1)]
    any_hit = hits > 0
    first = rel.argmax(axis=1)
    return {
        "hr": any_hit.astype(np.float64),
        "precision": hits / k,
        "recall": np.where(n_targets > 0, hits / np.maximum(n_targets, 1), 0.0),
        "ndcg": np.where(n_targets > 0, dcg / ideal, 0.0),
        "mrr": np.where(any_hit, 1.0 / (first + 1), 0.0),
    }


def popularity_percentiles(train: Dataset, catalog_ids: np.ndarray) -> pd.Series:
    """item_id -> percentile of its train interaction count among catalogue items."""
    from scipy.stats import rankdata

    counts = interaction_counts(train.interactions, catalog_ids)
    if len(counts) == 0:
        return pd.Series(dtype=np.float64)
    return pd.Series(rankdata(counts, method="average") / len(counts), index=catalog_ids)


def confidence_interval(values: np.ndarray, binary: bool = False, z: float = 1.959964) -> list[float]:
    """95% interval of the mean of per-case values: Wilson score for 0/1 values, else normal."""
    n = len(values)
    if n == 0:
        return [0.0, 0.0]
    mean = float(np.mean(values))
    if binary:
        denom = 1 + z * z / n
        centre = (mean + z * z / (2 * n)) / denom
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denom
        return [max(0.0, centre - half), min(1.0, centre + half)]
    half = z * float(np.std(values, ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    return [mean - half, mean + half]


def evaluate(
    model: Any,
    train: Dataset,
    test: Dataset,
    k: int = 10,
    max_cases: int | None = 5000,
    seed: int = 0,
    catalog: pd.DataFrame | Sequence[str] | None = None,
    progress: Progress | None = None,
    seed_filter: Collection[str] | None = None,
    target_filter: Collection[str] | None = None,
    batch_size: int = 1024,
    basket_targets: str = "rest",
    repeats: str = "collapse",
    fallback: Any = None,
    per_case: bool = False,
) -> dict[str, Any]:
    """Top-K metrics of a fitted model on a test split (see the module docstring).

    Parameters
    ----------
    model : ItemModel
        Anything with ``similar(item_ids, k) -> (ids, scores)``.
    train, test : Dataset
        The two parts of :func:`split`; train gives the popularity for the bias metric.
    k : int
        Cut-off.
    max_cases : int or None
        Cases sampled from the test set (seeded by ``seed``).
    catalog : DataFrame or sequence of str, optional
        The catalogue for coverage and per-category results (default ``train.catalog``).
    progress : callable, optional
        ``progress(done, total, message)`` per batch of seeds.
    seed_filter, target_filter : collection of str, optional
        Restrict seeds / targets (e.g. ``target_filter=cold_items(train)`` gives HR@K
        on cold items).
    batch_size : int
        Seeds per ``model.similar`` call.
    basket_targets : {"rest", "one", "next"}
        How basket cases are built (see :func:`build_cases`).

    repeats : {"collapse", "keep"}
        Sessions: consecutive repeats collapsed or kept (see :func:`build_cases`).
    fallback : recsys.fallback.FallbackChain, optional
        The run's declared fallback chain: lists are completed by it, as they are served
        (default: the model's ``fallback_chain_``, set for a run's model; none: the model
        alone).

    Returns
    -------
    dict
        ``hr@K precision@K recall@K ndcg@K mrr@K coverage@K popularity_bias@K`` (floats),
        ``n_cases``, ``skipped_cases``, ``n_seeds``, ``k``, ``per_category``, and
        ``ci95`` (metric -> [low, high], the 95% interval of the mean over cases: Wilson
        for hr, normal for the others), ``seeds_without_recs`` (test seeds the model
        has nothing for), ``unknown_test_items`` (test items not in the training
        catalogue), ``protocol`` and ``warnings`` (fewer than :data:`MIN_CASES` cases,
        more than :data:`MAX_NO_RECS` of the seeds without a recommendation),
        ``no_recommendation_share`` (skipped / cases, after the fallback chain),
        ``model_no_recommendation_share`` (the model alone), ``fallback_share`` (cases the
        fallback served: the seed's vector is the model's declared fallback vector, or the
        model had nothing and the chain's first item is the answer), ``completed_share``,
        ``fallback_steps`` (see :func:`fallback_report`). ``per_case``: also ``hits`` (whether
        each case's list holds a target, a bool array in the cases' order) and
        ``cases_fingerprint`` (:func:`recsys.selection.cases_fingerprint`): what
        :func:`recsys.selection.recommend` compares variants scored on the same cases by.
    """
    check_k(k)
    progress = progress or null_progress
    if catalog is None:
        cat_df = train.catalog
    elif isinstance(catalog, pd.DataFrame):
        cat_df = catalog
    else:
        cat_df = None
    catalog_ids = (
        cat_df["item_id"].astype(str).to_numpy()
        if cat_df is not None
        else np.asarray(list(catalog), dtype=str)
    )
    if cat_df is None:
        cat_df = train.catalog

    seeds, targets = build_cases(
        test,
        max_cases=max_cases,
        seed=seed,
        seed_filter=seed_filter,
        target_filter=target_filter,
        basket_targets=basket_targets,
        repeats=repeats,
    )
    n = len(seeds)
    suffix = f"@{k}"
    if per_case:
        from recsys.selection import cases_fingerprint

        cases = {"cases_fingerprint": cases_fingerprint(seeds, targets, k), "hits": np.zeros(0, dtype=bool)}
    train_items = pd.Index(train.catalog["item_id"].astype(str))
    test_items = pd.Index(pd.unique(test.interactions["item_id"].astype(str)))
    extra: dict[str, Any] = {
        "unknown_test_items": int((~test_items.isin(train_items)).sum()),
        "test_items": int(len(test_items)),
        "protocol": {
            "cases": "baskets" if test.kind == "baskets" else "next item",
            "repeats": repeats,
            "basket_targets": basket_targets if test.kind == "baskets" else None,
            "sampled": max_cases is not None and n >= max_cases,
        },
    }
    if n == 0:
        logger.warning("evaluate: no test cases in '%s'", test.name)
        empty = dict.fromkeys(
            ("hr", "precision", "recall", "ndcg", "mrr", "coverage", "popularity_bias"), 0.0
        )
        return {
            **{f"{m}{suffix}": v for m, v in empty.items()},
            "n_cases": 0,
            "skipped_cases": 0,
            "no_recommendation_share": 0.0,
            "fallback_share": 0.0,
            "n_seeds": 0,
            "k": k,
            "per_category": {},
            "ci95": {},
            "seeds_without_recs": 0,
            **extra,
            "warnings": [f"no test cases in '{test.name}': the metrics say nothing"],
            **(cases if per_case else {}),
        }

    recs, uniq = _recommend(model, seeds, k, batch_size, progress)
    chain = fallback if fallback is not None else getattr(model, "fallback_chain_", None)
    report = fallback_report(model, seeds, recs, chain, k)
    recs = report.pop("recs")
    rel = relevance(recs, targets)
    n_targets = np.fromiter((len(t) for t in targets), dtype=np.int64, count=n)
    by_case = ranking_metrics(rel, n_targets)
    padded = recs != PAD_ID
    skipped = int((~padded.any(axis=1)).sum())

    recommended = np.unique(recs[padded])
    coverage = catalog_coverage(catalog_ids, recommended)
    pct = popularity_percentiles(train, catalog_ids)
    rec_pct = pd.Series(recs[padded]).map(pct).fillna(0.0).to_numpy()
    pop_bias = float(rec_pct.mean()) if len(rec_pct) else 0.0

    result: dict[str, Any] = {f"{m}{suffix}": float(v.mean()) for m, v in by_case.items()}
    result[f"coverage{suffix}"] = coverage
    result[f"popularity_bias{suffix}"] = pop_bias
    result.update({"n_cases": int(n), "skipped_cases": skipped, "n_seeds": int(len(uniq)), "k": int(k)})
    result["ci95"] = {f"{m}{suffix}": confidence_interval(v, binary=m == "hr") for m, v in by_case.items()}
    seed_has = pd.Series(padded.any(axis=1)).groupby(seeds).any()
    no_recs = int((~seed_has).sum())
    result["seeds_without_recs"] = no_recs
    result.update(extra)
    warnings = []
    if n < MIN_CASES:
        warnings.append(f"only {n:,} test cases (fewer than {MIN_CASES}): the intervals are wide")
    if len(uniq) and no_recs / len(uniq) > MAX_NO_RECS:
        warnings.append(
            f"no recommendation for {no_recs:,} of {len(uniq):,} test seeds ({no_recs / len(uniq):.1%}); "
            "they count as misses"
        )
    result["warnings"] = warnings
    result[f"hr{suffix}_ci"] = list(wilson_interval(int(by_case["hr"].sum()), n))
    result.update(report)
    if per_case:
        result.update(cases, hits=rel.any(axis=1))

    top = category_level(cat_df["category"], 0) if "category" in cat_df.columns else None
    if top is not None:
        top_of = dict(zip(cat_df["item_id"].astype(str), top))
        seed_cat = pd.Series(seeds).map(top_of).fillna("").replace("", "(none)")
        frame = pd.DataFrame({"cat": seed_cat.to_numpy(), "hr": by_case["hr"], "ndcg": by_case["ndcg"]})
        grouped = frame.groupby("cat", sort=True).agg(
            hr=("hr", "mean"), ndcg=("ndcg", "mean"), n=("hr", "size")
        )
        result["per_category"] = {
            str(c): {f"hr{suffix}": float(r.hr), f"ndcg{suffix}": float(r.ndcg), "n": int(r.n)}
            for c, r in grouped.iterrows()
        }
    else:
        result["per_category"] = {}
    logger.info(
        "evaluated %s on %d cases: hr%s=%.4f ndcg%s=%.4f coverage%s=%.4f (%d seeds unknown to the model)",
        getattr(model, "family", type(model).__name__),
        n,
        suffix,
        result[f"hr{suffix}"],
        suffix,
        result[f"ndcg{suffix}"],
        suffix,
        coverage,
        skipped,
    )
    return result


# ---------------------------------------------------------------------------
# next item from a whole session ("recent views")
# ---------------------------------------------------------------------------
#: "every_position": every position of a test session is a case (the items before it are
#: the context, the item itself the target, repeat views kept); "collapsed": the same
#: after collapsing consecutive repeats (``a a b`` -> ``a b``).
PROTOCOLS = ("every_position", "collapsed")


def build_session_cases(
    test: Dataset, protocol: str = "every_position", max_cases: int | None = 5000, seed: int = 0
) -> tuple[list[list[str]], np.ndarray]:
    """Next-item cases of a test split read as sessions: (contexts, targets).

    Sessions and baskets are read in position order (a basket's next line is its next
    item). A leave-last-out test split gives one case per sequence: the context is the
    sequence without its held-out item, which is the target.

    Parameters
    ----------
    test : Dataset
    protocol : {"every_position", "collapsed"}
    max_cases : int or None
        Cases sampled (seeded); None keeps all.
    seed : int

    Returns
    -------
    contexts : list of list of str
        Items before the target, oldest first (never empty).
    targets : numpy.ndarray of str
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    rng = np.random.default_rng(seed)
    if len(test.interactions) == 0:
        return [], np.zeros(0, dtype=str)
    df = _ordered(test.interactions)
    seqs, _ = pd.factorize(df["sequence_id"])
    items = df["item_id"].to_numpy(dtype=str)
    held = df[HELDOUT].to_numpy(dtype=bool) if HELDOUT in df.columns else None
    if held is not None:  # the held-out row goes last, as the target
        order = np.lexsort((held, seqs))
        seqs, items, held = seqs[order], items[order], held[order]
    if protocol == "collapsed":
        keep = np.r_[True, (items[1:] != items[:-1]) | (seqs[1:] != seqs[:-1])]
        seqs, items = seqs[keep], items[keep]
        held = held[keep] if held is not None else None
    first = np.r_[True, seqs[1:] != seqs[:-1]]
    valid = ~first if held is None else (held & ~first)
    idx = _sample(valid, max_cases, rng)
    starts = np.maximum.accumulate(np.where(first, np.arange(len(seqs)), 0))
    contexts = [items[starts[i] : i].tolist() for i in idx]
    return contexts, items[idx]


def session_recommendations(
    model: Any, contexts: Sequence[Sequence[str]], k: int, exclude_seen: bool = True, batch_size: int = 1024
) -> np.ndarray:
    """Top-k ids for each context: ``model.recommend`` when the model reads whole sessions
    (session kNN, two-tower), else ``model.similar`` of the most recent item (item-to-item),
    with the context's items removed when ``exclude_seen``. The model alone: see
    :func:`fallback_report` for the lists completed by the run's fallback chain."""
    from recsys.models.base import drop_seen

    out = np.full((len(contexts), k), PAD_ID, dtype=object)
    for b in range(0, len(contexts), batch_size):
        chunk = [list(map(str, c)) for c in contexts[b : b + batch_size]]
        if hasattr(model, "recommend"):
            ids = model.recommend(chunk, k, exclude_seen=exclude_seen)[0]
        else:
            extra = max((len(set(c)) for c in chunk), default=0) if exclude_seen else 0
            ids, scores = model.similar([c[-1] for c in chunk], k + extra)
            ids = drop_seen(ids, scores, chunk, k)[0] if exclude_seen else ids[:, :k]
        out[b : b + len(chunk)] = np.asarray(ids, dtype=object)[:, :k]
    return out.astype(str)


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (hits of n)."""
    if n == 0:
        return 0.0, 0.0
    p = hits / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate_sessions(
    model: Any,
    test: Dataset,
    k: int = 20,
    protocol: str = "every_position",
    exclude_seen: bool = True,
    max_cases: int | None = 5000,
    seed: int = 0,
    catalog: pd.DataFrame | Sequence[str] | None = None,
    cases: tuple[list[list[str]], np.ndarray] | None = None,
    fallback: Any = None,
    per_case: bool = False,
) -> dict[str, Any]:
    """Next-item metrics from whole sessions (see :func:`build_session_cases`).

    ``fallback``: the run's :class:`~recsys.fallback.FallbackChain` (default: the model's
    ``fallback_chain_``) completes each list from the most recent item, as served.
    ``per_case``: also ``hits``, whether each case's target is in its list (a bool array, in the
    cases' order: what :func:`recsys.selection.recommend` compares variants by, paired).

    Returns
    -------
    dict
        ``hr@K``, ``hr@K_ci`` (95% Wilson interval), ``mrr@K``, ``coverage@K`` (share of
        the catalogue in at least one list), ``no_recommendation_share`` (cases whose list
        is empty after the fallback chain), ``model_no_recommendation_share`` (the model
        alone), ``fallback_share``, ``completed_share`` and ``fallback_steps`` (see
        :func:`fallback_report`), ``n_cases``, ``protocol``, ``exclude_seen``.
    """
    check_k(k)
    contexts, targets = cases if cases is not None else build_session_cases(test, protocol, max_cases, seed)
    n = len(targets)
    suffix = f"@{k}"
    if catalog is None:
        catalog_ids = test.catalog["item_id"].astype(str).to_numpy()
    elif isinstance(catalog, pd.DataFrame):
        catalog_ids = catalog["item_id"].astype(str).to_numpy()
    else:
        catalog_ids = np.asarray(list(catalog), dtype=str)
    if n == 0:
        return {
            f"hr{suffix}": 0.0,
            f"hr{suffix}_ci": [0.0, 0.0],
            f"mrr{suffix}": 0.0,
            f"coverage{suffix}": 0.0,
            "no_recommendation_share": 0.0,
            "fallback_share": 0.0,
            "n_cases": 0,
            "protocol": protocol,
            "exclude_seen": bool(exclude_seen),
            **({"hits": np.zeros(0, dtype=bool)} if per_case else {}),
        }
    recs = session_recommendations(model, contexts, k, exclude_seen)
    chain = fallback if fallback is not None else getattr(model, "fallback_chain_", None)
    report = fallback_report(
        model, [c[-1] for c in contexts], recs, chain, k, contexts if exclude_seen else None
    )
    recs = report.pop("recs")
    rel = (recs == np.asarray(targets, dtype=str)[:, None]) & (recs != PAD_ID)
    hit = rel.any(axis=1)
    mrr = np.where(hit, 1.0 / (rel.argmax(axis=1) + 1), 0.0)
    padded = recs != PAD_ID
    recommended = np.unique(recs[padded])
    coverage = catalog_coverage(catalog_ids, recommended)
    lo, hi = wilson_interval(int(hit.sum()), n)
    return {
        f"hr{suffix}": float(hit.mean()),
        f"hr{suffix}_ci": [lo, hi],
        f"mrr{suffix}": float(mrr.mean()),
        f"coverage{suffix}": coverage,
        **report,
        "n_cases": int(n),
        "protocol": protocol,
        "exclude_seen": bool(exclude_seen),
        **({"hits": hit} if per_case else {}),
    }


def fallback_report(
    model: Any,
    seeds: Sequence[str],
    recs: np.ndarray,
    chain: Any,
    k: int,
    exclude: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The model's lists ``recs`` completed by the fallback ``chain`` (None: as they are),
    and what the fallback did.

    Returns ``{"recs": completed lists, "no_recommendation_share": empty lists after the
    chain, "model_no_recommendation_share": empty lists of the model alone,
    "fallback_share": cases the fallback served (the seed's vector is the model's own
    declared fallback vector, or the model had nothing and the chain answered),
    "completed_share": cases the model started and the chain completed to k,
    "fallback_steps": {"vector" or a chain step: share of cases it served}}``.
    """
    from recsys.fallback import served_shares

    recs = np.asarray(recs, dtype=str)
    n = len(recs)
    model_none = float((~(recs != PAD_ID).any(axis=1)).mean()) if n else 0.0
    if chain is not None and n:
        scores = np.zeros(recs.shape, dtype=np.float32)
        recs, _, served = chain.complete(list(seeds), recs, scores, k, exclude)
        shares = served_shares(served)
    else:
        served = np.where(recs != PAD_ID, "model", "")
        shares = served_shares(served)
    vec = fallback_share(model, seeds)
    steps = dict(shares["fallback_steps"])
    if vec:
        steps = {"vector": vec, **steps}
    return {
        "recs": recs,
        "no_recommendation_share": shares["no_recommendation_share"],
        "model_no_recommendation_share": model_none,
        "fallback_share": vec + shares["fallback_share"],
        "completed_share": shares["completed_share"],
        "fallback_steps": steps,
    }


def fallback_share(model: Any, seeds: Sequence[str]) -> float:
    """Share of ``seeds`` whose vector comes from the model's declared fallback
    (``fallback_`` mask aligned with ``item_ids_``; 0 for models without one)."""
    mask = getattr(model, "fallback_", None)
    if mask is None or len(seeds) == 0:
        return 0.0
    rows = model.rows_of(list(seeds))
    known = rows >= 0
    return float(np.asarray(mask, dtype=bool)[rows[known]].sum() / len(seeds))
