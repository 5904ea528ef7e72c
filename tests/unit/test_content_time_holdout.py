"""The content model's simulated cold items carved by time (issue 13): as a time split finds them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.schema import Dataset
from recsys.models.content import ContentModel
from recsys.models.content.pairs import cooccurrence_pairs, late_rows, time_holdout, training_pairs
from tests.unit.test_content import view_events

OLD = [f"old{i}" for i in range(6)]
NEW = [f"new{i}" for i in range(4)]  # arrive in the last sessions only
RARE = "rare"  # one early interaction, then bought again late


def arrivals_sessions(n_early: int = 90, n_late: int = 10) -> list[list[str]]:
    """Early sessions of old items (``rare`` in one), then late ones where new items are
    bought after old ones and after each other, and ``rare`` comes back."""
    rng = np.random.default_rng(0)
    early = [list(rng.choice(OLD, size=3, replace=False)) for _ in range(n_early)]
    early[5] = ["old0", RARE, "old1"]
    late = [["old0", NEW[i % 4], NEW[(i + 1) % 4]] for i in range(n_late - 1)] + [["old2", RARE]]
    return early + late


def catalog(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ids, "title": [f"item {i}" for i in ids], "category": "c"})


def test_late_rows_are_the_latest_sequences_or_each_sequence_last_item():
    inter = view_events(arrivals_sessions())
    late = late_rows(inter, 0.1)
    assert set(inter.loc[late, "sequence_id"]) == {f"s{s:04d}" for s in range(90, 100)}
    aware = inter.assign(timestamp=inter["timestamp"].dt.tz_localize("Europe/Paris"))
    assert (late_rows(aware, 0.1) == late).all()  # zone-aware timestamps carve the same
    # without timestamps: the last row of each sequence of two or more rows, by position
    no_ts = inter.drop(columns="timestamp").iloc[::-1].reset_index(drop=True)
    no_ts = pd.concat([no_ts, pd.DataFrame([{"sequence_id": "solo", "item_id": "old0", "position": 0}])])
    last = late_rows(no_ts.reset_index(drop=True), 0.1)
    got = no_ts.reset_index(drop=True)[last]
    assert len(got) == 100 and "solo" not in set(got["sequence_id"])
    assert (got["position"] == 2).sum() == 99 and (got["position"] == 1).sum() == 1


def test_time_holdout_holds_out_the_new_items_of_the_latest_part_with_their_cold_seeds():
    ids = OLD + NEW + [RARE]
    row_of = {x: i for i, x in enumerate(ids)}
    inter = view_events(arrivals_sessions())
    pairs = cooccurrence_pairs(inter, row_of, 3)
    train, cases = time_holdout(inter, row_of, pairs, 3, 0.1, 3, 1000, np.random.default_rng(0))
    named = {(ids[a], ids[b]) for a, b in cases}
    # every late next-item case whose target had < 3 earlier interactions, previous item first
    assert named == {("old0", n) for n in NEW} | {(NEW[i % 4], NEW[(i + 1) % 4]) for i in range(4)} | {
        ("old2", RARE)
    }
    assert len(cases) == 19  # each occurrence counts, as a test split's cases do
    held = {row_of[x] for x in NEW + [RARE]}
    trained = {(ids[a], ids[b]) for a, b in train[["a", "b"]].to_numpy()}
    # the late pairs of held-out items leave training; the rare item keeps its earlier ones
    assert not any(a in NEW or b in NEW for a, b in trained)
    assert ("old2", RARE) not in trained and {("old0", RARE), (RARE, "old1")} <= trained
    # pairs of the warm items keep their counts, the late ones included
    warm = pairs[~pairs["a"].isin(held) & ~pairs["b"].isin(held)]
    assert warm.merge(train, on=["a", "b", "count"]).shape[0] == len(warm)
    # at most max_cases, drawn
    _, few = time_holdout(inter, row_of, pairs, 3, 0.1, 3, 5, np.random.default_rng(0))
    assert len(few) == 5 and {tuple(c) for c in few} <= {tuple(c) for c in cases}


def test_training_pairs_carve_by_time_when_asked_and_by_the_tail_when_nothing_is_new():
    ids = OLD + NEW + [RARE]
    sessions = arrivals_sessions(180, 20)
    cat = catalog(ids)
    p = {k: s.default for k, s in ContentModel.param_specs.items()}
    p["max_validation_pairs"], p["validation_share"], p["holdout_by"] = 1000, 0.0, "time"
    data = Dataset("arrivals", cat, view_events(sessions))
    tp = training_pairs(data, cat, np.array(ids), p, True, np.random.default_rng(0))
    assert tp.held_by == "time" and len(tp.cold_val) == 39
    assert any(ids[a] in NEW for a in tp.cold_val[:, 0])  # cold seeds are cases too
    # the default draws among the tail: whole items lose their pairs, no cold seed
    tail = training_pairs(
        data, cat, np.array(ids), {**p, "holdout_by": "tail"}, True, np.random.default_rng(0)
    )
    assert tail.held_by == "tail" and not set(tail.cold_val[:, 0]) & set(tail.cold_val[:, 1])
    # no item is new in the latest part: the random draw among the tail instead
    steady = Dataset("steady", cat, view_events([s for s in sessions if not set(s) & {*NEW, RARE}]))
    tp = training_pairs(steady, cat, np.array(ids), p, True, np.random.default_rng(0))
    assert tp.held_by == "tail" and len(tp.cold_val) > 0
