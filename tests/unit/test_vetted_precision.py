"""Vetted precision (recsys.vetting.precision) against hand-computed values."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from recsys.vetting.precision import (
    format_vetted,
    read_judgments,
    thumbs_down_shown,
    vetted_precision,
)
from tests._checks_data import judgments_frame


def judgments(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (seed, item, verdict, user, at) as a judgments frame of the contract's shape."""
    return judgments_frame(rows, dataset="d")


T0, T1, T2 = "2026-01-01T10:00:00+00:00", "2026-01-01T11:00:00+00:00", "2026-01-02T09:00:00+00:00"


def test_precision_counts_only_judged_pairs_in_the_top_k() -> None:
    j = judgments(
        [
            ("A", "a1", 1, "ann", T0),  # shown at 1
            ("A", "a2", -1, "ann", T0),  # shown at 2: down_shown
            ("A", "a9", 1, "ann", T0),  # not shown: up_lost
            ("A", "a4", 1, "ann", T0),  # rank 4 > k=3: up_lost
            ("B", "b2", 1, "ann", T0),  # shown
            ("C", "c1", -1, "ann", T0),  # C not measured (not in lists)
        ]
    )
    lists = {"A": ["a1", "a2", "a3", "a4"], "B": ["b1", "b2"], "Z": ["z1"]}
    v = vetted_precision(lists, j, k=3)
    # shown judged: a1 (up), a2 (down), b2 (up) -> 2/3
    assert v["precision"] == pytest.approx(2 / 3)
    assert (v["judged_shown"], v["up_shown"], v["down_shown"], v["up_lost"]) == (3, 2, 1, 2)
    assert v["judged"] == 5 and v["seeds"] == 2
    assert v["down_pairs"] == [["A", "a2", 2]]
    # at k=4 a4 is shown: 3 up of 4 shown
    assert vetted_precision(lists, j, k=4)["precision"] == pytest.approx(3 / 4)


def test_latest_judgment_of_a_user_wins_whatever_the_row_order() -> None:
    j = judgments([("A", "a1", 1, "ann", T2), ("A", "a1", -1, "ann", T0)])  # later row is older
    v = vetted_precision({"A": ["a1"]}, j, k=1)
    assert (v["precision"], v["up_shown"], v["down_shown"]) == (1.0, 1, 0)
    j2 = judgments([("A", "a1", 1, "ann", T0), ("A", "a1", -1, "ann", T1)])
    assert vetted_precision({"A": ["a1"]}, j2, k=1)["down_shown"] == 1


def test_disagreeing_users_majority_and_tie_not_counted() -> None:
    j = judgments(
        [
            ("A", "a1", 1, "ann", T0),
            ("A", "a1", -1, "bob", T0),
            ("A", "a1", -1, "cid", T0),  # 2 down vs 1 up -> down
            ("A", "a2", 1, "ann", T0),
            ("A", "a2", -1, "bob", T0),  # tie -> left out
            ("A", "a3", -1, "ann", T0),
            ("A", "a3", 1, "ann", T1),  # ann changed her mind: one up vote
        ]
    )
    v = vetted_precision({"A": ["a1", "a2", "a3"]}, j, k=3)
    assert (v["judged_shown"], v["up_shown"], v["down_shown"], v["ties"]) == (2, 1, 1, 1)
    assert v["precision"] == pytest.approx(0.5)
    assert "1 split evenly" in format_vetted({**v, "message": None})


def test_no_judged_pair_shown_gives_none_and_empty_frame_is_fine() -> None:
    v = vetted_precision({"A": []}, judgments([("A", "a1", 1, "ann", T0)]), k=5)
    assert v["precision"] is None and v["up_lost"] == 1
    empty = vetted_precision({"A": ["x"]}, read_judgments_missing(), k=5)
    assert empty["judged"] == 0 and empty["precision"] is None
    with pytest.raises(ValueError, match="k must be"):
        vetted_precision({}, judgments([]), k=0)


def read_judgments_missing() -> pd.DataFrame:
    return judgments([])


def test_thumbs_down_shown_per_seed() -> None:
    j = judgments([("A", "a1", -1, "ann", T0), ("A", "a2", -1, "ann", T0), ("B", "b1", -1, "ann", T0)])
    assert thumbs_down_shown({"A": ["a1", "a2", "a3"], "B": ["b9"]}, j, k=1) == {"A": 1, "B": 0}
    assert thumbs_down_shown({"A": ["a1", "a2", "a3"], "B": ["b1"]}, j, k=3) == {"A": 2, "B": 1}


def test_read_judgments_missing_file_and_store_shaped_sqlite(tmp_path: Path) -> None:
    assert read_judgments(tmp_path).empty  # no file: "no judgments", no error
    assert not (tmp_path / "vetting").exists()  # reading creates nothing
    path = tmp_path / "vetting" / "judgments.sqlite"
    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE other (x)")
    con.commit()
    assert read_judgments(tmp_path).empty  # no judgments table yet
    frame = judgments([("A", "a1", 1, "ann", T0), ("A", "a2", -1, "bob", T1)])
    frame.loc[1, "dataset"] = "other"
    frame.to_sql("judgments", con, index=False)
    con.close()
    got = read_judgments(tmp_path, dataset="d")
    assert got[["seed", "item_id", "verdict"]].values.tolist() == [["A", "a1", 1]]
    assert len(read_judgments(tmp_path)) == 2
