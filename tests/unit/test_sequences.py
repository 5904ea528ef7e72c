"""Sequences: ordering, context separation, de-duplication and max length on worked examples."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.errors import DataValidationError
from recsys.sequences import build_sequences


def _catalog() -> pd.DataFrame:
    rows = [
        ("a", "Women > Shoes > Running", "women"),
        ("b", "Men > Shirts", "men"),
        ("c", "Women > Bags", "women"),
        ("d", "Men > Shoes", "men"),
        ("e", "Women > Shoes > Heels", "kids"),
        ("f", "Women > Shoes > Heels", "women"),
    ]
    return pd.DataFrame(rows, columns=["item_id", "category", "gender"])


def _interactions(seqs: dict[str, list[str]], event: str = "view") -> pd.DataFrame:
    rows = []
    for sid, items in seqs.items():
        for pos, item in enumerate(items):
            rows.append((sid, "", item, pd.NaT, event, 1.0, pos))
    return pd.DataFrame(
        rows, columns=["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]
    )


def _dataset(seqs: dict[str, list[str]]) -> Dataset:
    return Dataset("t", _catalog(), _interactions(seqs), kind="sessions")


def test_orders_by_position_not_by_row_order():
    inter = _interactions({"s1": ["a", "b", "c"]}).iloc[::-1]  # rows stored backwards
    assert build_sequences(inter) == [["a", "b", "c"]]


def test_worked_example_category_separation():
    ds = _dataset({"s1": ["a", "b", "a", "c", "d"]})
    assert build_sequences(ds, separate_by="category", category_level=0) == [["a", "c"], ["b", "d"]]
    # without separation: only consecutive repeats collapse (a b a stays)
    assert build_sequences(ds) == [["a", "b", "a", "c", "d"]]


def test_category_level_one_and_gender():
    ds = _dataset({"s1": ["a", "e", "f", "c", "a"]})
    # level 1: Women > Shoes {a, e, f, a}, Women > Bags {c} (too short, dropped)
    assert build_sequences(ds, separate_by="category", category_level=1) == [["a", "e", "f", "a"]]
    # plus gender: e is kids, so it leaves the women's shoes sequence
    assert build_sequences(ds, separate_by="category+gender", category_level=1) == [["a", "f", "a"]]
    assert build_sequences(ds, separate_by="category+gender", category_level=1, min_len=1) == [
        ["a", "f", "a"],
        ["e"],
        ["c"],
    ]


def test_max_len_chunks_and_min_len_drops_short_tail():
    ds = _dataset({"s1": ["a", "b", "c", "d", "e"], "s2": ["f", "a"]})
    assert build_sequences(ds, max_len=2) == [["a", "b"], ["c", "d"], ["f", "a"]]
    assert build_sequences(ds, max_len=2, min_len=1) == [["a", "b"], ["c", "d"], ["e"], ["f", "a"]]
    assert build_sequences(ds, max_len=None) == [["a", "b", "c", "d", "e"], ["f", "a"]]


def test_dedupe_consecutive_switch():
    ds = _dataset({"s1": ["a", "a", "b", "b", "a"]})
    assert build_sequences(ds) == [["a", "b", "a"]]
    assert build_sequences(ds, dedupe_consecutive=False) == [["a", "a", "b", "b", "a"]]


def test_event_type_filter():
    inter = pd.concat(
        [_interactions({"s1": ["a", "b"]}, "view"), _interactions({"s1": ["c", "d"]}, "purchase")]
    )
    inter["position"] = range(len(inter))
    assert build_sequences(inter, event_types=["purchase"]) == [["c", "d"]]
    assert build_sequences(inter) == [["a", "b", "c", "d"]]
    assert build_sequences(inter, event_types=["cart"]) == []
    assert build_sequences(inter, event_types="purchase") == [["c", "d"]]  # one type as a string


def test_separation_without_catalog_is_a_clear_error():
    with pytest.raises(DataValidationError, match="catalog"):
        build_sequences(_interactions({"s1": ["a", "b"]}), separate_by="category")


def test_bad_arguments():
    ds = _dataset({"s1": ["a", "b"]})
    with pytest.raises(ValueError, match="separate_by"):
        build_sequences(ds, separate_by="brand")
    with pytest.raises(ValueError, match="max_len"):
        build_sequences(ds, max_len=0)
    with pytest.raises(DataValidationError, match="item_id"):
        build_sequences(pd.DataFrame({"sequence_id": ["s"]}))


def test_session_gap_cuts_at_time_gaps_counted_over_all_event_types():
    t0 = pd.Timestamp("2024-03-01 10:00")
    minutes = [0, 10, 35, 50, 200, 201]
    events = ["view", "view", "purchase", "view", "view", "view"]
    inter = pd.DataFrame(
        {
            "sequence_id": "u1",
            "item_id": list("abcdef"),
            "timestamp": [t0 + pd.Timedelta(minutes=m) for m in minutes],
            "event_type": events,
            "position": range(6),
        }
    ).iloc[::-1]  # stored backwards: order by position
    assert build_sequences(inter, session_gap=1800) == [["a", "b", "c", "d"], ["e", "f"]]
    # the purchase at 35 min keeps the visit alive although only views are kept
    assert build_sequences(inter, session_gap=1800, event_types="view") == [["a", "b", "d"], ["e", "f"]]
    assert build_sequences(inter, session_gap=20 * 60) == [["a", "b"], ["c", "d"], ["e", "f"]]
    with pytest.raises(DataValidationError, match="timestamp"):
        build_sequences(inter.drop(columns="timestamp"), session_gap=60)
    with pytest.raises(ValueError, match="session_gap"):
        build_sequences(inter, session_gap=0)
