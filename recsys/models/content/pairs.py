"""Training pairs of the content model: which items are positives of which.

Positives are items that co-occur within a window in the training sequences;
items without any take items of their own leaf category, and items without a
leaf category mate (a catalogue with no category column, such as a fashion
export of titles, brands and prices) take their nearest items by the tfidf
family's title (+ brand, category) TF-IDF: self-supervised pairs from the
catalogue alone, so the model trains on catalogue-only data. A share of the
less-interacted items (or, ``holdout_by="time"``, the new items of the latest part of the
training interactions, as a time split finds them) is held out as simulated cold items (their pairs choose
the output blocks' weights, :mod:`recsys.models.content.blocks`) and a share of
the pairs is held out for per-epoch validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import interaction_counts
from recsys.errors import ModelFitError
from recsys.models.base import normalize_rows

_NO_PAIRS = np.empty((0, 2), dtype=np.int64)
#: a target with fewer training interactions is cold (``bench/quality.py``'s cold cases)
COLD_THRESHOLD = 3
#: ``holdout_by="time"`` needs this many cold cases in the latest part, else draws among the tail
MIN_TIME_CASES = 20


def cooccurrence_pairs(interactions: pd.DataFrame, row_of: dict[str, int], window: int) -> pd.DataFrame:
    """Unique (a, b) item-row pairs that occur within ``window`` positions of each other.

    Parameters
    ----------
    interactions : pandas.DataFrame
        With ``sequence_id``, ``item_id`` and ``position``.
    row_of : dict
        item id -> catalogue row.
    window : int
        Maximum distance in a sequence; 0 means the whole sequence (baskets).

    Returns
    -------
    pandas.DataFrame
        Columns ``a``, ``b`` (int64 rows, both directions, a != b) and ``count``.
    """
    if interactions.empty:
        return pd.DataFrame({"a": [], "b": [], "count": []}, dtype=np.int64)
    df = interactions.sort_values(["sequence_id", "position"], kind="stable")
    items = df["item_id"].astype(str).map(row_of).fillna(-1).to_numpy(dtype=np.int64)
    seq = pd.factorize(df["sequence_id"])[0]
    keep = items >= 0
    items, seq = items[keep], seq[keep]
    if window <= 0:
        window = int(np.bincount(seq).max()) if len(seq) else 1
    parts = []
    for d in range(1, window + 1):
        if d >= len(items):
            break
        same = seq[d:] == seq[:-d]
        a, b = items[:-d][same], items[d:][same]
        diff = a != b
        parts.append(np.stack([a[diff], b[diff]], axis=1))
    if not parts:
        return pd.DataFrame({"a": [], "b": [], "count": []}, dtype=np.int64)
    ab = np.concatenate(parts)
    ab = np.concatenate([ab, ab[:, ::-1]])
    pairs = pd.DataFrame(ab, columns=["a", "b"])
    return pairs.groupby(["a", "b"], sort=True).size().rename("count").reset_index()


def holdout_items(
    candidates: np.ndarray, item_counts: np.ndarray, share: float, tail: float, rng: np.random.Generator
) -> np.ndarray:
    """Items to keep out of training as simulated cold items.

    Parameters
    ----------
    candidates : numpy.ndarray of int
        Item rows that have co-occurrence pairs.
    item_counts : numpy.ndarray of int
        Interactions per item row (all rows).
    share : float
        ``share x len(candidates)`` items are drawn (at least one).
    tail : float
        Only candidates whose count is at most this quantile of the candidates' counts are
        drawn (cold items are long-tail items); 1 draws among all candidates.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int
        Distinct item rows (fewer than asked when the tail is smaller).
    """
    n_held = max(1, int(len(candidates) * share))
    if tail < 1.0 and len(candidates):
        counts = item_counts[candidates]
        candidates = candidates[counts <= np.quantile(counts, tail)]
    return rng.choice(candidates, size=min(n_held, len(candidates)), replace=False)


def newest_items(candidates: np.ndarray, first_seen: np.ndarray, share: float) -> np.ndarray:
    """The ``share x len(candidates)`` candidates (at least one) seen last for the first time:
    simulated cold items as real ones arise, new arrivals. ``first_seen``: a sortable key per
    item row (the first interaction's time or order); ties by row."""
    n_held = max(1, int(len(candidates) * share))
    order = np.lexsort((candidates, -first_seen[candidates]))
    return np.sort(candidates[order[:n_held]])


def first_seen_rank(interactions: pd.DataFrame, item_ids: np.ndarray) -> np.ndarray:
    """Per item row, the rank of its first interaction (by timestamp, else by the interactions'
    order); items never seen rank first."""
    ts = interactions["timestamp"] if "timestamp" in interactions else None
    key = (
        pd.Series(pd.to_datetime(ts).rank(method="min").fillna(0).to_numpy(), index=interactions.index)
        if ts is not None and ts.notna().any()
        else pd.Series(np.arange(len(interactions), dtype=np.float64), index=interactions.index)
    )
    first = key.groupby(interactions["item_id"].astype(str)).min()
    return first.reindex(pd.Index(np.asarray(item_ids, dtype=str))).fillna(-1.0).to_numpy(dtype=np.float64)


def late_rows(interactions: pd.DataFrame, share: float) -> np.ndarray:
    """The interactions a time split of the training part would test on (a boolean mask).

    With timestamps: every row of the latest-starting ``share`` of the sequences (at least one,
    never all), as ``bench/quality.py``'s time split carves its test part; without: the last row
    (by position) of each sequence of two or more rows, as its leave-last-out split does.
    """
    n = len(interactions)
    seq = pd.factorize(interactions["sequence_id"])[0]
    ts = interactions["timestamp"] if "timestamp" in interactions else None
    if ts is not None and ts.notna().any():
        start = pd.Series(pd.to_datetime(ts, utc=True).dt.tz_localize(None).to_numpy()).groupby(seq).min()
        n_seq = len(start)
        n_late = min(n_seq - 1, max(1, int(round(n_seq * share))))
        if n_late < 1:
            return np.zeros(n, dtype=bool)
        # the latest-starting sequences (ties: the later-appearing first)
        key = start.fillna(start.min()).to_numpy().astype("datetime64[ns]").astype(np.int64)
        order = np.lexsort((-np.arange(n_seq), -key))
        late_seq = np.zeros(n_seq, dtype=bool)
        late_seq[order[:n_late]] = True
        return late_seq[seq]
    pos = interactions["position"].to_numpy() if "position" in interactions else np.arange(n)
    order = np.lexsort((pos, seq))
    s = seq[order]
    is_last = np.r_[s[1:] != s[:-1], True] & np.r_[False, s[1:] == s[:-1]]  # of a sequence of 2+
    last = np.zeros(n, dtype=bool)
    last[order[is_last]] = True
    return last


def time_holdout(
    interactions: pd.DataFrame,
    row_of: dict[str, int],
    pairs: pd.DataFrame,
    window: int,
    share: float,
    threshold: int,
    max_cases: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulated cold items carved by time from the training interactions, as real ones arise.

    The latest part of the training interactions (:func:`late_rows`) plays the test: its
    next-item cases whose target had fewer than ``threshold`` interactions before it are the
    cold cases, ``(previous item, target)`` rows, the previous item cold or not (new arrivals
    are often bought beside each other). The targets' pairs from the latest part leave the
    training pairs (their earlier pairs stay, as a real cold item's few interactions do).

    Returns ``(training pairs, cold cases)``: ``pairs`` (all of the interactions' pairs, the
    :func:`cooccurrence_pairs` frame) less the held-out ones, and up to ``max_cases`` cases
    (uniformly drawn: each occurrence weighs one, as in a test split).
    """
    late = late_rows(interactions, share)
    if not late.any():
        return pairs, _NO_PAIRS.copy()
    df = interactions.assign(_late=late)
    df = df.sort_values(["sequence_id", "position"] if "position" in df else ["sequence_id"], kind="stable")
    items = df["item_id"].astype(str).map(row_of).fillna(-1).to_numpy(dtype=np.int64)
    seq = pd.factorize(df["sequence_id"])[0]
    is_late = df["_late"].to_numpy(dtype=bool)
    early_n = np.bincount(items[~is_late & (items >= 0)], minlength=len(row_of))
    prev, cur = items[:-1], items[1:]
    case = (seq[1:] == seq[:-1]) & is_late[1:] & (prev >= 0) & (cur >= 0) & (prev != cur)
    case &= early_n[np.where(cur >= 0, cur, 0)] < threshold
    cases = np.stack([prev[case], cur[case]], axis=1).astype(np.int64)
    if len(cases) == 0:
        return pairs, _NO_PAIRS.copy()
    held = np.zeros(len(row_of), dtype=bool)
    held[cases[:, 1]] = True
    touch = held[pairs["a"].to_numpy()] | held[pairs["b"].to_numpy()]
    early = cooccurrence_pairs(interactions[~late], row_of, window)
    keep_early = early[held[early["a"].to_numpy()] | held[early["b"].to_numpy()]]
    train = pd.concat([pairs[~touch], keep_early], ignore_index=True).sort_values(["a", "b"], kind="stable")
    if len(cases) > max_cases:
        cases = cases[np.sort(rng.choice(len(cases), size=max_cases, replace=False))]
    return train.reset_index(drop=True), cases


def leaf_blocks(catalog: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items grouped by leaf category: ``(leaf, order, starts, sizes)``.

    ``order`` lists item rows leaf by leaf; item ``i``'s leaf occupies
    ``order[starts[i] : starts[i] + sizes[i]]``.
    """
    leaf = (
        catalog["category"].fillna("").astype(str).to_numpy()
        if "category" in catalog
        else np.full(len(catalog), "")
    )
    codes, _ = pd.factorize(leaf)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], codes)
    sizes = np.bincount(codes)[codes]
    return leaf, order, starts, sizes


def category_pairs(
    catalog: pd.DataFrame, ab: np.ndarray, per_item: int, rng: np.random.Generator
) -> np.ndarray:
    """(item, same-leaf-category item) pairs for items that have no co-occurrence pair."""
    if per_item == 0:
        return _NO_PAIRS.copy()
    has_pair = np.zeros(len(catalog), dtype=bool)
    has_pair[ab[:, 0]] = True
    leaf, order, starts, sizes = leaf_blocks(catalog)
    lonely = np.flatnonzero(~has_pair & (sizes > 1) & (leaf != ""))
    if len(lonely) == 0:
        return _NO_PAIRS.copy()
    anchors = np.repeat(lonely, per_item)
    offs = rng.integers(0, sizes[anchors] - 1)
    cand = order[starts[anchors] + offs]
    clash = cand == anchors  # drew the anchor itself: take the block's last item instead
    cand[clash] = order[starts[anchors][clash] + sizes[anchors][clash] - 1]
    return np.stack([anchors, cand], axis=1).astype(np.int64)


def text_pairs(catalog: pd.DataFrame, covered: np.ndarray, per_item: int) -> np.ndarray:
    """(item, nearest item by title TF-IDF) pairs for the items not ``covered`` by another pair.

    Each such item takes its ``per_item`` most similar items (cosine of the tfidf family's
    title, brand and category TF-IDF, at its default weights; ties by catalogue row; only items
    sharing a term). Items with no text, or sharing no term with any item, get none.
    """
    from recsys.models.tfidf import TEXT_PARAMS, TfidfModel, TfidfText
    from recsys.topk import topk_rows

    anchors = np.flatnonzero(~covered)
    if per_item == 0 or len(anchors) == 0 or len(catalog) < 2:
        return _NO_PAIRS.copy()
    try:
        x = TfidfText({k: TfidfModel.param_specs[k].default for k in TEXT_PARAMS}).fit_transform(catalog)
    except ModelFitError:  # no title, brand or category text at all
        return _NO_PAIRS.copy()
    xt = x.T.tocsr()
    parts = []
    chunk = max(1, 2**24 // max(1, len(catalog)))  # about 64 MB of scores at a time
    for start in range(0, len(anchors), chunk):
        rows = anchors[start : start + chunk]
        sims = (x[rows] @ xt).toarray()
        sims[np.arange(len(rows)), rows] = -np.inf  # not the item itself
        sims[sims <= 0] = -np.inf  # sharing no term: not a positive
        cols, vals = topk_rows(sims, per_item)
        ok = np.isfinite(vals)
        parts.append(np.stack([np.broadcast_to(rows[:, None], cols.shape)[ok], cols[ok]], axis=1))
    return np.concatenate(parts).astype(np.int64) if parts else _NO_PAIRS.copy()


def leaf_sampler(catalog: pd.DataFrame, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A function: item rows -> a random item row of the same leaf category each (hard negatives)."""
    _, order, starts, sizes = leaf_blocks(catalog)

    def sample(rows: np.ndarray) -> np.ndarray:
        offs = (rng.random(len(rows)) * sizes[rows]).astype(np.int64)
        return order[starts[rows] + offs]

    return sample


@dataclass
class TrainingPairs:
    """The pairs one fit uses (item rows)."""

    #: (anchor, positive) training pairs: co-occurrence pairs, then same-leaf pairs
    ab: np.ndarray
    #: sampling probability of each training pair (sums to 1)
    weights: np.ndarray
    #: held-out co-occurrence pairs for per-epoch validation
    val: np.ndarray
    #: pairs leading to simulated cold items (choose the block weights)
    cold_val: np.ndarray
    #: the co-occurrence training pairs and their weights alone (evidence for the title words)
    co_ab: np.ndarray
    co_weights: np.ndarray
    #: items with at least one co-occurrence training pair
    n_with_pairs: int
    #: training pairs by where they come from: co-occurrence, same leaf category, title TF-IDF
    sources: dict[str, int]
    #: every co-occurrence pair of the training interactions (none held out) and its weight:
    #: the co-purchases a served seed's query is expanded with
    all_co: np.ndarray = field(default_factory=_NO_PAIRS.copy)
    all_co_weights: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: how the simulated cold items were carved: "time", "tail", "newest" ("" when none were)
    held_by: str = ""


def training_pairs(
    dataset: Any,
    catalog: pd.DataFrame,
    item_ids: np.ndarray,
    p: dict[str, Any],
    wide: bool,
    rng: np.random.Generator,
) -> TrainingPairs:
    """Positive pairs for a fit, with the simulated cold items and the validation pairs held out.

    With wide blocks and ``holdout_share > 0``, the simulated cold items: by default
    (``holdout_by="tail"``) a share of the items with pairs (:func:`holdout_items`; ``"newest"``:
    :func:`newest_items`) loses all its pairs and up to ``max_validation_pairs`` pairs leading
    to them (each held-out item weighing the same) become ``cold_val``; with ``"time"``
    (:func:`time_holdout`) the cold next-item cases of the latest part of the interactions, up to
    ``max_validation_pairs`` of them, become ``cold_val`` and their targets' pairs of that part
    leave training (fewer than :data:`MIN_TIME_CASES` cases: the tail draw instead). Then
    ``validation_share`` of the remaining distinct pairs become ``val``. Pairs are
    sampled by ``count ** pair_weight_power``; same-leaf pairs (:func:`category_pairs`)
    and, for items still without a pair, title TF-IDF neighbours (:func:`text_pairs`) weigh 1.
    """
    n = len(catalog)
    row_of = {iid: i for i, iid in enumerate(item_ids)}
    pairs = cooccurrence_pairs(dataset.interactions, row_of, p["window"])
    all_co = pairs[["a", "b"]].to_numpy(dtype=np.int64)
    all_co_weights = pairs["count"].to_numpy(dtype=np.float64) ** p["pair_weight_power"]
    cold_val = _NO_PAIRS.copy()
    by = p.get("holdout_by", "tail")
    if wide and p["holdout_share"] > 0 and len(pairs) >= 20 and by == "time":
        trained, cold_val = time_holdout(
            dataset.interactions,
            row_of,
            pairs,
            p["window"],
            p["holdout_share"],
            COLD_THRESHOLD,
            p["max_validation_pairs"],
            rng,
        )
        if len(cold_val) >= MIN_TIME_CASES:
            pairs = trained
        else:  # too few new items in the latest part: a random draw among the tail instead
            by, cold_val = "tail", _NO_PAIRS.copy()
    if wide and p["holdout_share"] > 0 and len(pairs) >= 20 and by != "time":
        candidates = np.unique(pairs["b"].to_numpy())
        if by == "newest":
            first = first_seen_rank(dataset.interactions, item_ids)
            held = newest_items(candidates, first, p["holdout_share"])
        else:
            item_n = interaction_counts(dataset.interactions, item_ids)
            held = holdout_items(candidates, item_n, p["holdout_share"], p["holdout_tail"], rng)
        is_held = np.zeros(n, dtype=bool)
        is_held[held] = True
        a_held = is_held[pairs["a"].to_numpy()]
        b_held = is_held[pairs["b"].to_numpy()]
        to_held = pairs[b_held & ~a_held]
        if len(to_held):
            n_cv = min(p["max_validation_pairs"], len(to_held))
            # each held-out item weighs the same (cold targets are many distinct items);
            # its pairs by their co-occurrence counts
            w = to_held["count"].to_numpy(dtype=np.float64)
            w = w / to_held.groupby("b")["count"].transform("sum").to_numpy(dtype=np.float64)
            pick = rng.choice(len(to_held), size=n_cv, replace=False, p=w / w.sum())
            cold_val = to_held.iloc[pick][["a", "b"]].to_numpy(dtype=np.int64)
        pairs = pairs[~(a_held | b_held)]
    val = _NO_PAIRS.copy()
    if p["validation_share"] > 0 and len(pairs) >= 20:
        n_val = min(p["max_validation_pairs"], max(1, int(len(pairs) * p["validation_share"])))
        pick = rng.choice(len(pairs), size=n_val, replace=False)
        val = pairs.iloc[pick][["a", "b"]].to_numpy()
        pairs = pairs.drop(pairs.index[pick])
    ab = pairs[["a", "b"]].to_numpy(dtype=np.int64)
    weights = pairs["count"].to_numpy(dtype=np.float64) ** p["pair_weight_power"]
    n_with_pairs = int(len(np.unique(ab[:, 0])))
    co_ab, co_weights = ab, weights
    cat_pairs = category_pairs(catalog, ab, p["category_pairs"], rng)
    covered = np.zeros(n, dtype=bool)
    covered[ab[:, 0]] = True
    covered[cat_pairs[:, 0]] = True
    txt_pairs = text_pairs(catalog, covered, p["category_pairs"])
    sources = {"cooccurrence": int(len(ab)), "category": int(len(cat_pairs)), "title": int(len(txt_pairs))}
    extra = np.concatenate([cat_pairs, txt_pairs])
    if len(extra):
        ab = np.concatenate([ab, extra])
        weights = np.concatenate([weights, np.ones(len(extra))])
    total = weights.sum()
    return TrainingPairs(
        ab=ab,
        weights=weights / total if len(ab) else weights,
        val=val,
        cold_val=cold_val,
        co_ab=co_ab,
        co_weights=co_weights,
        n_with_pairs=n_with_pairs,
        sources=sources,
        all_co=all_co,
        all_co_weights=all_co_weights,
        held_by=by if len(cold_val) else "",
    )


def pair_scores(vectors: np.ndarray, pairs: np.ndarray, k: int) -> dict[str, float]:
    """Top-k hit share and mean reciprocal rank of held-out (anchor, positive) pairs.

    The anchor itself is excluded from its ranking; ties count against the positive.
    """
    unit = normalize_rows(vectors)
    hits, inv_rank = [], []
    for start in range(0, len(pairs), 1024):
        chunk = pairs[start : start + 1024]
        sims = unit[chunk[:, 0]] @ unit.T
        sims[np.arange(len(chunk)), chunk[:, 0]] = -np.inf
        pos = sims[np.arange(len(chunk)), chunk[:, 1]]
        rank = (sims >= pos[:, None]).sum(axis=1)  # the positive itself, ties and better items
        hits.append(rank <= k)
        inv_rank.append(1.0 / rank)
    return {
        "val_top_k": float(np.concatenate(hits).mean()),
        "val_avg_precision": float(np.concatenate(inv_rank).mean()),
    }
