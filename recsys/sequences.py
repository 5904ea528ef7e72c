"""Sessions and baskets as ordered item-id token lists, the input of Prod2Vec.

A sequence is the list of item ids of one session or basket, in the order of the
``position`` column. Three optional transformations follow the recipe the
Hepsiburada team published for frequently-bought-together embeddings:

1. **Context separation** (``separate_by``): the items of one sequence are grouped
   by their context (a level of the category path, optionally plus gender); each
   group becomes its own sub-sequence, keeping the items' order. A session that
   wanders from women's shoes to men's shirts and back yields one shoe sequence and
   one shirt sequence, so the model does not learn that shoes and shirts are
   substitutes.
2. **Consecutive de-duplication** (``dedupe_consecutive``): ``a a b`` becomes ``a b``
   (repeated views of one item carry no co-occurrence signal).
3. **Maximum length** (``max_len``): longer sequences are cut into consecutive
   chunks of at most ``max_len`` items; chunks shorter than ``min_len`` are dropped.

Before these, an optional **session gap** (``session_gap``, seconds) cuts each stored
sequence where two consecutive events (in ``position`` order) are more than that far
apart in time, so a log keyed by user (Taobao's UserBehavior, a CRM export) becomes
sessions. The gap is measured over *all* events of the sequence, before the event-type
filter (a session is a visit, whatever was done in it); an event without a timestamp
never starts a new session.

:mod:`recsys.spark` implements the same rules as DataFrame operations
(``spark_build_sequences``); a parity test holds the two equal.

Worked example (``separate_by="category"``, ``category_level=0``, ``max_len=2``)::

    sequence s1: a (Women > Shoes), b (Men > Shirts), a, c (Women > Bags), d (Men > Shoes)
    Women context: a a c   -> dedupe -> a c
    Men context:   b d
    result: [["a", "c"], ["b", "d"]]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import Dataset, category_level
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)

SEPARATE_BY = (None, "category", "category+gender")


def check_sequence_options(
    separate_by: str | None, max_len: int | None, min_len: int, session_gap: float | None
) -> None:
    """Refuse options :func:`build_sequences` and :func:`recsys.spark.spark_build_sequences`
    cannot use (ValueError naming the option)."""
    if separate_by not in SEPARATE_BY:
        raise ValueError(f"separate_by must be one of {SEPARATE_BY}, got {separate_by!r}")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1 or None, got {max_len}")
    if min_len < 1:
        raise ValueError(f"min_len must be >= 1, got {min_len}")
    if session_gap is not None and not session_gap > 0:
        raise ValueError(f"session_gap must be a positive number of seconds or None, got {session_gap}")


def new_session(seconds_since_previous: Any, session_gap: float) -> Any:
    """THE session-gap rule: an event starts a new session when more than ``session_gap``
    seconds passed since the previous event of its sequence.

    Written once for both engines: ``seconds_since_previous`` is a NumPy array here and a
    Spark column in :func:`recsys.spark.spark_build_sequences` (events without a time never
    cut; each engine masks them).
    """
    return seconds_since_previous > session_gap


def _interactions_and_catalog(
    data: Dataset | pd.DataFrame, catalog: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if isinstance(data, Dataset):
        return data.interactions, catalog if catalog is not None else data.catalog
    if isinstance(data, pd.DataFrame):
        return data, catalog
    raise TypeError(
        f"build_sequences expects a Dataset or an interactions DataFrame, got {type(data).__name__}"
    )


def build_sequences(
    data: Dataset | pd.DataFrame,
    *,
    separate_by: str | None = None,
    category_level: int = 0,
    max_len: int | None = 20,
    min_len: int = 2,
    event_types: str | Iterable[str] | None = None,
    dedupe_consecutive: bool = True,
    catalog: pd.DataFrame | None = None,
    session_gap: float | None = None,
) -> list[list[str]]:
    """Turn sessions or baskets into ordered lists of item ids.

    Parameters
    ----------
    data : Dataset or pandas.DataFrame
        A dataset, or its interactions table (columns ``sequence_id``, ``item_id`` and,
        when present, ``position`` and ``event_type``).
    separate_by : {None, "category", "category+gender"}
        Split each sequence into one sub-sequence per context: the category path cut at
        ``category_level`` (0 = top level), and for ``"category+gender"`` also the
        item's gender. Needs a catalog (the dataset's, or ``catalog``).
    category_level : int
        Level of the category path that defines the context (0 = top level).
    max_len : int or None
        Longest sequence returned; longer ones are cut into consecutive chunks.
        None keeps sequences whole.
    min_len : int
        Sequences (or chunks) with fewer items are dropped.
    event_types : str or iterable of str, optional
        Keep only these event types (e.g. ``"purchase"`` or ``["cart", "purchase"]``);
        all events by default.
    dedupe_consecutive : bool
        Collapse runs of the same item (``a a b`` -> ``a b``), applied after
        context separation.
    catalog : pandas.DataFrame, optional
        Catalog to take categories and genders from when ``data`` is a DataFrame.
    session_gap : float, optional
        Seconds: a gap longer than this between consecutive events of a sequence
        starts a new session (measured before the event-type filter). None keeps
        stored sequences whole.

    Returns
    -------
    list of list of str
        Sequences in the order of their ``sequence_id`` (as stored), sub-sequences of
        one sequence in the order of their first item.

    Raises
    ------
    DataValidationError
        When a needed column is missing or ``separate_by`` needs a catalog and has none.
    ValueError
        For an unknown ``separate_by`` or non-positive lengths.
    """
    check_sequence_options(separate_by, max_len, min_len, session_gap)
    inter, cat = _interactions_and_catalog(data, catalog)
    for col in ("sequence_id", "item_id"):
        if col not in inter.columns:
            raise DataValidationError("interactions have no such column", column=col)
    df = inter
    session = None
    if session_gap is not None:
        if "timestamp" not in df.columns:
            raise DataValidationError("cannot cut sessions by time: no such column", column="timestamp")
        session = _session_numbers(df, float(session_gap))
    if event_types is not None:
        # one type as a plain string, not its characters
        wanted = [event_types] if isinstance(event_types, str) else list(event_types)
        if "event_type" not in df.columns:
            raise DataValidationError("cannot filter by event type: no such column", column="event_type")
        kept = df["event_type"].isin(wanted).to_numpy()
        df = df[kept]
        if session is not None:
            session = session[kept]
    if len(df) == 0:
        return []

    seq_codes, _ = pd.factorize(df["sequence_id"], sort=False)
    pos = df["position"].to_numpy() if "position" in df.columns else np.arange(len(df))
    order = np.lexsort((pos, seq_codes))
    items = df["item_id"].astype(str).to_numpy()[order]
    seq_codes = seq_codes[order]
    if session is not None:
        # sessions are contiguous runs inside a sequence: number (sequence, session) pairs
        session = session[order]
        new = np.r_[True, (seq_codes[1:] != seq_codes[:-1]) | (session[1:] != session[:-1])]
        seq_codes = np.cumsum(new) - 1

    if separate_by is not None:
        if cat is None:
            raise DataValidationError(
                f"separate_by={separate_by!r} needs a catalog with categories: pass a Dataset or catalog="
            )
        ctx = _context_of(cat, separate_by, category_level)
        item_ctx = pd.Series(items).map(ctx).fillna("").to_numpy(dtype=object)
        key = pd.Series(seq_codes.astype(str), dtype=object) + "\x1f" + pd.Series(item_ctx)
        group, _ = pd.factorize(key, sort=False)  # codes in order of first appearance
        regroup = np.argsort(group, kind="stable")
        items, group = items[regroup], group[regroup]
    else:
        group = seq_codes

    if dedupe_consecutive and len(items) > 1:
        keep = np.ones(len(items), dtype=bool)
        keep[1:] = (items[1:] != items[:-1]) | (group[1:] != group[:-1])
        items, group = items[keep], group[keep]

    # boundaries of groups, then chunks of max_len inside each group
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    if max_len is not None:
        lengths = np.diff(np.r_[starts, len(items)])
        rank = np.arange(len(items)) - np.repeat(starts, lengths)
        starts = np.flatnonzero(np.r_[True, (group[1:] != group[:-1]) | (rank[1:] % max_len == 0)])
    ends = np.r_[starts[1:], len(items)]
    keep_chunk = (ends - starts) >= min_len
    item_list = items.tolist()
    out = [item_list[s:e] for s, e in zip(starts[keep_chunk], ends[keep_chunk])]
    logger.debug("built %d sequences from %d events (separate_by=%s)", len(out), len(df), separate_by)
    return out


def _session_numbers(df: pd.DataFrame, gap_s: float) -> np.ndarray:
    """Session number of each row inside its sequence (0, 1, ...), rows in ``df`` order.

    Rows are ordered by (sequence, position, row); a new session starts where the time
    since the previous event of the sequence exceeds ``gap_s`` seconds (NaT never does).
    """
    codes, _ = pd.factorize(df["sequence_id"], sort=False)
    pos = df["position"].to_numpy() if "position" in df.columns else np.arange(len(df))
    order = np.lexsort((np.arange(len(df)), pos, codes))
    ts = pd.to_datetime(df["timestamp"]).to_numpy(dtype="datetime64[ns]")[order].astype("int64")
    nat = pd.isna(df["timestamp"]).to_numpy()[order]
    codes = codes[order]
    same = np.r_[False, codes[1:] == codes[:-1]]
    with np.errstate(invalid="ignore"):
        delta = np.r_[0, np.diff(ts)].astype(np.float64) / 1e9
    cut = same & new_session(delta, gap_s) & ~nat & ~np.r_[False, nat[:-1]]
    run_start = np.r_[True, ~same[1:]]
    total = np.cumsum(cut)
    base = np.maximum.accumulate(np.where(run_start, total, 0))
    numbers = np.empty(len(df), dtype=np.int64)
    numbers[order] = total - base
    return numbers


def _context_of(catalog: pd.DataFrame, separate_by: str, level: int) -> dict[str, Any]:
    """item_id -> context label for context separation."""
    if "category" not in catalog.columns:
        raise DataValidationError(
            "catalog has no such column (needed for context separation)", column="category"
        )
    ctx = category_level(catalog["category"], level).astype(str)
    if separate_by == "category+gender":
        if "gender" not in catalog.columns:
            raise DataValidationError(
                "catalog has no such column (separate_by='category+gender')", column="gender"
            )
        ctx = ctx + "|" + catalog["gender"].fillna("").astype(str)
    return dict(zip(catalog["item_id"].astype(str), ctx))
