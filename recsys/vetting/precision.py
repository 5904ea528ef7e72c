"""Vetted precision: how a run's lists score on the pairs merchandisers judged.

A judgment is about a pair (seed, item), not about a run: a thumbs-down on
``P1 -> P7`` given while vetting run A also counts against run B when B shows
``P1 -> P7``. So every run and preset of a dataset is measured against the same
judged pairs (the contract shared with the judgments store,
:mod:`recsys.vetting.store`).

Reading the judgments needs nothing from the store's code: :func:`read_judgments`
opens ``<data_dir>/vetting/judgments.sqlite`` read-only and returns an empty frame
when there is none yet; a damaged file is a :class:`DamagedJudgmentsError` naming it
(never "no judgments": a precision of nothing would read as "not vetted yet").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.config import data_dir
from recsys.vetting.store import COLUMNS, DamagedJudgmentsError, JudgmentError

#: The columns of a judgments frame (``JudgmentStore.frame()``).
JUDGMENT_COLUMNS = COLUMNS
JUDGMENTS_FILE = Path("vetting") / "judgments.sqlite"
NO_JUDGMENTS = "no judgments"


def judgments_path(root: Any = None) -> Path:
    """``<data_dir>/vetting/judgments.sqlite``."""
    return data_dir(root) / JUDGMENTS_FILE


def empty_judgments() -> pd.DataFrame:
    """A judgments frame without rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in JUDGMENT_COLUMNS})


def read_judgments(root: Any = None, dataset: str | None = None) -> pd.DataFrame:
    """Every stored judgment (of one dataset when given), read-only.

    A missing file, or a file without the ``judgments`` table, gives an empty
    frame (nobody has judged yet). Creates nothing.

    Raises
    ------
    DamagedJudgmentsError
        The file is not a readable SQLite database, or its table lacks columns: the
        message names the file.
    JudgmentError
        The file cannot be read now (locked past the timeout, unreadable).
    """
    path = judgments_path(root)
    if not path.is_file():
        return empty_judgments()

    def damaged(what: Any) -> DamagedJudgmentsError:
        return DamagedJudgmentsError.of(path, what, "vetted precision cannot be measured")

    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise JudgmentError(f"cannot open the judgments file {path}: {exc}") from None
    try:
        query, args = "SELECT * FROM judgments", ()
        if dataset is not None:
            query, args = query + " WHERE dataset = ?", (dataset,)
        frame = pd.read_sql_query(query, con, params=args)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        if "no such table" in str(exc):
            return empty_judgments()
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
        if type(cause) is sqlite3.DatabaseError or "no such column" in str(exc):
            raise damaged(cause) from None
        raise JudgmentError(f"cannot read the judgments file {path}: {cause}") from None
    finally:
        con.close()
    missing = [c for c in ("seed", "item_id", "verdict", "user", "at") if c not in frame.columns]
    if missing:
        raise damaged(f"its judgments table lacks the columns {', '.join(missing)}")
    return frame


def pair_verdicts(judgments: pd.DataFrame) -> pd.DataFrame:
    """One verdict per judged pair: ``seed, item_id, verdict (+1/-1), votes``.

    The latest judgment of each user on a pair wins (by ``at``); when users
    disagree, the majority decides and a tie is left out (it is neither a good
    nor a bad pair).
    """
    cols = ["seed", "item_id", "verdict", "votes"]
    if judgments is None or len(judgments) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    df = judgments[["seed", "item_id", "verdict", "user", "at"]].copy()
    df["seed"] = df["seed"].astype(str)
    df["item_id"] = df["item_id"].astype(str)
    df["user"] = df["user"].fillna("").astype(str)
    df["_at"] = pd.to_datetime(df["at"], utc=True, errors="coerce", format="ISO8601")
    df["_order"] = np.arange(len(df))  # same instant: the later row wins
    df = df.sort_values(["_at", "_order"], kind="stable", na_position="first")
    latest = df.drop_duplicates(["seed", "item_id", "user"], keep="last")
    sign = np.sign(pd.to_numeric(latest["verdict"], errors="coerce").fillna(0)).astype(int)
    grouped = (
        latest.assign(_v=sign.to_numpy())
        .groupby(["seed", "item_id"], sort=True)["_v"]
        .agg(total="sum", votes="size")
        .reset_index()
    )
    grouped = grouped[grouped["total"] != 0]
    grouped["verdict"] = np.sign(grouped["total"]).astype(int)
    return grouped[cols].reset_index(drop=True)


def vetted_precision(lists: Mapping[str, Sequence[str]], judgments: pd.DataFrame, k: int) -> dict[str, Any]:
    """Precision@k of ``lists`` over the judged pairs only.

    Parameters
    ----------
    lists : mapping seed -> ranked item ids
        The lists to measure (e.g. one run + preset's answers for the judged seeds).
        Only seeds present here are measured; a seed with an empty list loses every
        thumbs-up pair it had.
    judgments : pandas.DataFrame
        Judgments with at least ``seed, item_id, verdict, user, at`` (the columns of
        ``JudgmentStore.frame()``), all of one dataset. Judgments from any run or preset
        count: a judgment is about a pair. The latest judgment per (seed, item_id, user)
        wins; users who disagree are counted by majority, and a tie is not counted.
    k : int
        Cut-off.

    Returns
    -------
    dict
        ``precision`` (up pairs shown / judged pairs shown in the top k; None when no
        judged pair is shown), ``judged_shown``, ``up_shown``, ``down_shown`` (thumbs-down
        pairs still in the lists), ``up_lost`` (thumbs-up pairs no longer in the top k),
        ``judged`` (counted pairs of the measured seeds), ``seeds`` (measured seeds with a
        counted judgment), ``ties`` (pairs left out because users were split evenly),
        ``k``, and ``down_pairs`` (the shown thumbs-down pairs, ``[seed, item_id, rank]``).
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    verdicts = pair_verdicts(judgments)
    top = {str(s): [str(i) for i in items][:k] for s, items in lists.items()}
    verdicts = verdicts[verdicts["seed"].isin(top.keys())]
    ties = 0
    if judgments is not None and len(judgments):
        pairs = judgments[["seed", "item_id"]].astype(str).drop_duplicates()
        ties = int(pairs["seed"].isin(top.keys()).sum()) - len(verdicts)
    up_shown = down_shown = up_lost = 0
    down_pairs: list[list[Any]] = []
    for seed, item, verdict in zip(verdicts["seed"], verdicts["item_id"], verdicts["verdict"], strict=True):
        shown = top[seed]
        rank = shown.index(item) + 1 if item in shown else None
        if verdict > 0:
            if rank is None:
                up_lost += 1
            else:
                up_shown += 1
        elif rank is not None:
            down_shown += 1
            down_pairs.append([seed, item, rank])
    judged_shown = up_shown + down_shown
    return {
        "precision": up_shown / judged_shown if judged_shown else None,
        "judged_shown": judged_shown,
        "up_shown": up_shown,
        "down_shown": down_shown,
        "up_lost": up_lost,
        "judged": int(len(verdicts)),
        "seeds": int(verdicts["seed"].nunique()),
        "ties": int(ties),
        "k": int(k),
        "down_pairs": down_pairs,
    }


def thumbs_down_shown(lists: Mapping[str, Sequence[str]], judgments: pd.DataFrame, k: int) -> dict[str, int]:
    """Per seed of ``lists``: how many thumbs-down pairs its top k shows (as :func:`vetted_precision`)."""
    verdicts = pair_verdicts(judgments)
    down = verdicts[verdicts["verdict"] < 0]
    bad: dict[str, set[str]] = {}
    for seed, item in zip(down["seed"], down["item_id"], strict=True):
        bad.setdefault(seed, set()).add(item)
    return {
        str(s): len(bad.get(str(s), set()) & {str(i) for i in list(items)[:k]}) for s, items in lists.items()
    }


# -- runs ---------------------------------------------------------------------------------
def run_lists(registry: Any, run_id: str, seeds: Sequence[str], config: Any, k: int) -> dict[str, list[str]]:
    """Each seed's list from a run: the filtered search of Explore and the API (batched), or a
    baseline's own ``similar``; seeds the run cannot answer get an empty list."""
    from recsys.compare import _run_lists
    from recsys.search import RunNotSearchableError, get_searcher

    seeds = [str(s) for s in seeds]
    try:
        searcher = get_searcher(registry, run_id)
    except RunNotSearchableError:
        got = _run_lists(registry, run_id, seeds, config, k)
        return {s: list(g["item_ids"]) for s, g in zip(seeds, got, strict=True)}
    results = searcher.search_many(seeds, config, k, skip_unknown=True)
    return {s: ([] if r is None else list(r.item_ids)) for s, r in zip(seeds, results, strict=True)}


def vetted_precision_for_run(
    registry: Any,
    run_id: str,
    config: Any = None,
    k: int = 10,
    judgments: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """:func:`vetted_precision` of a run under ``config`` (a FilterConfig, dict or None) on the
    judgments of the run's dataset (read from the data directory when not given).

    Returns the :func:`vetted_precision` dict plus ``run``, ``dataset`` and ``message``
    (``"no judgments"`` when the dataset has none: then the counts are 0 and precision None).
    """
    meta = registry.get(run_id)
    dataset = (meta.get("dataset") or {}).get("name")
    if judgments is None:
        judgments = read_judgments(registry.root, dataset)
    elif dataset is not None and "dataset" in judgments.columns and len(judgments):
        judgments = judgments[judgments["dataset"].astype(str) == dataset]
    seeds = sorted(set(pair_verdicts(judgments)["seed"]))
    lists = run_lists(registry, run_id, seeds, config, k) if seeds else {}
    out = vetted_precision(lists, judgments, k)
    out.update(run=run_id, dataset=dataset, message=None if len(judgments) else NO_JUDGMENTS)
    return out


def vetted_for_cli(registry: Any, run_id: str, preset: str | None, k: int) -> dict[str, Any]:
    """``recsys evaluate``'s vetted precision: the run with a saved preset (no filters when None)."""
    from recsys.filters import PresetStore

    config = PresetStore(registry.root).load(preset) if preset else None
    try:
        return vetted_precision_for_run(registry, run_id, config, k)
    except JudgmentError as exc:  # the run's metrics are still printed; this says why none is vetted
        return {"run": run_id, "k": k, "precision": None, "message": None, "error": str(exc)}


def format_vetted(v: dict[str, Any]) -> str:
    """One line for the CLI: ``vetted precision@10: 0.800 (8 of 10 judged pairs shown ...)``."""
    if v.get("error"):
        return f"vetted precision: not measured: {v['error']}"
    if v.get("message") == NO_JUDGMENTS:
        return f"vetted precision: no judgments for dataset {v.get('dataset')}"
    p = v.get("precision")
    value = "-" if p is None else f"{p:.3f}"
    return (
        f"vetted precision@{v['k']}: {value} ({v['up_shown']} of {v['judged_shown']} judged pairs shown are "
        f"thumbs-up; {v['down_shown']} thumbs-down shown, {v['up_lost']} thumbs-up lost; "
        f"{v['judged']} pairs judged on {v['seeds']} seeds"
        + (f"; {v['ties']} split evenly, not counted" if v.get("ties") else "")
        + ")"
    )


def vetted_precision_of_runs(
    registry: Any, run_ids: Sequence[str], config: Any = None, k: int = 10
) -> list[dict[str, Any]]:
    """:func:`vetted_precision_for_run` of several runs (judgments read once per dataset); a run
    that cannot answer gets ``error`` (its message) instead of failing the others."""
    from recsys.errors import RecsysError

    by_dataset: dict[Any, pd.DataFrame] = {}
    out = []
    for run_id in run_ids:
        try:
            dataset = (registry.get(run_id).get("dataset") or {}).get("name")
            if dataset not in by_dataset:
                by_dataset[dataset] = read_judgments(registry.root, dataset)
            row = vetted_precision_for_run(registry, run_id, config, k, by_dataset[dataset])
            if not len(by_dataset[dataset]):
                row["message"] = NO_JUDGMENTS
            out.append({**row, "error": None})
        except JudgmentError:
            raise
        except RecsysError as exc:
            out.append({"run": run_id, "error": str(exc), "precision": None})
    return out


def thumbs_down_disagreements(
    registry: Any,
    run_a: str,
    run_b: str,
    config: Any = None,
    k: int = 10,
    n: int = 10,
    by: str = "a",
    judgments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The judged seeds where one variant shows more thumbs-down pairs than the other.

    Seeds are those with a thumbs-down judgment (on the runs' dataset) that both runs can
    answer. Returns :func:`recsys.compare.disagreement_seeds`' columns plus ``down_a`` and
    ``down_b`` (thumbs-down pairs in each top k), sorted by ``down_a - down_b`` (``by="a"``:
    where A gets more thumbs-down first) or the reverse (``by="b"``), then lowest overlap.
    """
    from recsys.compare import disagreement_seeds

    if by not in ("a", "b"):
        raise ValueError(f"by must be 'a' or 'b', got {by!r}")
    if judgments is None:
        dataset = (registry.get(run_a).get("dataset") or {}).get("name")
        judgments = read_judgments(registry.root, dataset)
    verdicts = pair_verdicts(judgments)
    seeds = sorted(set(verdicts.loc[verdicts["verdict"] < 0, "seed"]))
    cols = ["seed", "overlap", "rbo", "n_a", "n_b", "down_a", "down_b"]
    if not seeds:
        return pd.DataFrame(columns=cols)
    lists_a = run_lists(registry, run_a, seeds, config, k)
    lists_b = run_lists(registry, run_b, seeds, config, k)

    def rows(lists: dict[str, list[str]]) -> np.ndarray:
        out = np.full((len(seeds), k), "", dtype=object)
        for r, s in enumerate(seeds):
            out[r, : len(lists[s][:k])] = lists[s][:k]
        return out.astype(str)

    frame = disagreement_seeds(seeds, rows(lists_a), rows(lists_b), k=k, n=len(seeds))
    down_a, down_b = thumbs_down_shown(lists_a, judgments, k), thumbs_down_shown(lists_b, judgments, k)
    frame["down_a"] = frame["seed"].map(down_a).astype(int)
    frame["down_b"] = frame["seed"].map(down_b).astype(int)
    sign = 1 if by == "a" else -1
    frame["_d"] = sign * (frame["down_a"] - frame["down_b"])
    frame = frame.sort_values(["_d", "overlap", "seed"], ascending=[False, True, True], kind="stable")
    return frame[cols].head(n).reset_index(drop=True)
