"""The judgments store (recsys.vetting.store): upserts, concurrency, CSV round trip, bad CSV."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from recsys.vetting.store import (
    COLUMNS,
    REASONS,
    DamagedJudgmentsError,
    JudgmentError,
    JudgmentStore,
    queue_progress,
)
from tests._at_once import errors_at_once
from tests._store_calls import BASE, first_write, judge_many


def test_judge_stores_who_when_run_preset_and_position(tmp_path):
    store = JudgmentStore(tmp_path)
    row = store.judge(
        **BASE, seed="A", item_id="B", position=3, verdict=-1, reason="brand_clash", note="no", user="ann"
    )
    df = store.frame()
    assert list(df.columns) == list(COLUMNS)
    got = df.iloc[0].to_dict()
    assert {
        k: got[k]
        for k in (
            "dataset",
            "run",
            "preset",
            "seed",
            "item_id",
            "position",
            "verdict",
            "reason",
            "note",
            "user",
        )
    } == {
        "dataset": "demo",
        "run": "r1",
        "preset": "p",
        "seed": "A",
        "item_id": "B",
        "position": 3,
        "verdict": -1,
        "reason": "brand_clash",
        "note": "no",
        "user": "ann",
    }
    assert got["at"] == row["at"] and got["at"].endswith("+00:00")
    assert (tmp_path / "vetting" / "judgments.sqlite").exists()
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_judging_again_replaces_the_users_verdict_and_users_are_kept_apart(tmp_path):
    store = JudgmentStore(tmp_path)
    store.judge(**BASE, seed="A", item_id="B", verdict=-1, user="ann")
    store.judge(**BASE, seed="A", item_id="B", verdict=1, user="ann")
    store.judge(**BASE, seed="A", item_id="B", verdict=-1, user="bob")
    df = store.frame().sort_values("user")
    assert df["verdict"].tolist() == [1, -1] and df["user"].tolist() == ["ann", "bob"]
    assert df["reason"].tolist() == [None, "other"]  # a thumbs-down without a reason: other
    # an older judgment (e.g. from an imported file) does not overwrite a newer one
    store.judge(**BASE, seed="A", item_id="B", verdict=-1, user="ann", at="2000-01-01T00:00:00Z")
    assert store.frame(preset="p").set_index("user").loc["ann", "verdict"] == 1


def test_filters_by_dataset_run_and_preset(tmp_path):
    store = JudgmentStore(tmp_path)
    store.judge(dataset="demo", run="r1", preset=None, seed="A", item_id="B", verdict=1, user="u")
    store.judge(dataset="demo", run="r1", preset="p", seed="A", item_id="C", verdict=1, user="u")
    store.judge(dataset="demo", run="r2", preset="p", seed="A", item_id="D", verdict=1, user="u")
    assert store.frame(run="r1", preset="")["item_id"].tolist() == ["B"]
    assert store.frame(run="r1")["item_id"].tolist() == ["B", "C"]
    assert store.frame(preset="p")["item_id"].tolist() == ["C", "D"]
    assert store.frame(dataset="other").empty and list(store.frame(dataset="other").columns) == list(COLUMNS)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"verdict": 0}, "verdict 0 is not up/down"),
        ({"verdict": -1, "reason": "ugly"}, "reason 'ugly' is not one of"),
        ({"verdict": 1, "reason": "duplicate"}, "given for a thumbs-up"),
        ({"verdict": 1, "position": 0}, "position 0 is not a whole number"),
        ({"verdict": 1, "item_id": "A"}, "seed and item_id are the same"),
        ({"verdict": 1, "seed": " "}, "seed is empty"),
        ({"verdict": 1, "note": "x" * 501}, "note is 501 characters"),
    ],
)
def test_bad_judgments_are_refused_and_nothing_is_stored(tmp_path, fields, says):
    store = JudgmentStore(tmp_path)
    with pytest.raises(JudgmentError, match=says):
        store.judge(**{**BASE, "seed": "A", "item_id": "B", **fields})
    assert store.frame().empty


def test_two_editors_judging_at_once_in_two_processes_lose_nothing(tmp_path):
    JudgmentStore(tmp_path)
    assert errors_at_once(judge_many, [(str(tmp_path), user, 150) for user in ("ann", "bob")]) == []
    df = JudgmentStore(tmp_path).frame()
    assert len(df) == 300
    assert df.groupby("user").size().to_dict() == {"ann": 150, "bob": 150}


def test_two_editors_judging_at_once_in_threads_lose_nothing(tmp_path):
    JudgmentStore(tmp_path)
    barrier = threading.Barrier(3)
    threads = [
        threading.Thread(target=judge_many, args=(str(tmp_path), u, 100, barrier))
        for u in ("ann", "bob", "cy")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(JudgmentStore(tmp_path).frame()) == 300


def test_csv_round_trip(tmp_path):
    a = JudgmentStore(tmp_path / "a")
    a.judge(
        **BASE,
        seed="A",
        item_id="B",
        position=1,
        verdict=-1,
        reason="wrong_gender",
        note='says "men", 2',
        user="ann",
    )
    a.judge(dataset="demo", run="r1", preset=None, seed="A", item_id="C", position=2, verdict=1, user="bob")
    text = a.export_csv()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    b = JudgmentStore(tmp_path / "b")
    report = b.import_csv(text)
    assert (report.rows, report.stored, report.kept_newer) == (2, 2, 0)
    assert b.frame().equals(a.frame())
    assert b.export_csv() == text
    assert b.import_csv(text).stored == 0  # the same judgments again: nothing newer


def test_csv_without_user_or_time_gets_the_importer_and_now(tmp_path):
    store = JudgmentStore(tmp_path)
    store.import_csv("dataset,run,seed,item_id,verdict,reason\ndemo,r1,A,B,down,Brand clash\n", user="ann")
    row = store.frame().iloc[0]
    assert (
        row["user"] == "ann"
        and row["reason"] == "brand_clash"
        and row["verdict"] == -1
        and row["preset"] is None
    )


def test_bad_csv_reports_rows_by_line_number_and_stores_nothing(tmp_path):
    store = JudgmentStore(tmp_path)
    store.judge(**BASE, seed="A", item_id="B", verdict=1, user="ann")
    before = store.export_csv()
    text = (
        "dataset,run,preset,seed,item_id,position,verdict,reason\n"
        "demo,r1,p,A,C,1,1,\n"  # line 2: fine
        "demo,r1,p,A,D,x,1,\n"  # line 3: bad position
        "demo,r1,p,A,E,2,maybe,\n"  # line 4: bad verdict
        "demo,r1,p,A,F,3,-1,rude\n"  # line 5: bad reason
        "demo,r1,p,,G,4,1,\n"  # line 6: no seed
        "demo,r1,p,A,H,5,1,,extra\n"  # line 7: too many values
    )
    with pytest.raises(JudgmentError) as err:
        store.import_csv(text)
    msg = str(err.value)
    assert "5 bad row(s) of 6; nothing was stored" in msg
    for line, what in (
        (3, "position 'x'"),
        (4, "verdict 'maybe'"),
        (5, "reason 'rude'"),
        (6, "seed is empty"),
        (7, "more values"),
    ):
        assert f"line {line}: {what}" in msg
    assert "line 2" not in msg
    assert store.export_csv() == before


def test_csv_missing_columns_and_non_utf8_are_refused(tmp_path):
    store = JudgmentStore(tmp_path)
    with pytest.raises(JudgmentError, match="lacks column.*verdict"):
        store.import_csv("dataset,run,seed,item_id\ndemo,r1,A,B\n")
    with pytest.raises(JudgmentError, match="not UTF-8"):
        store.import_csv(b"dataset,run,seed,item_id,verdict\n\xff\xfe,r,A,B,1\n")
    assert store.frame().empty


def test_reasons_are_the_contracts():
    assert REASONS == (
        "wrong_category",
        "wrong_gender",
        "adult_or_unsafe",
        "brand_clash",
        "price_mismatch",
        "duplicate",
        "other",
    )


def test_queue_is_saved_and_progress_is_counted_per_category(tmp_path):
    store = JudgmentStore(tmp_path)
    pairs = [
        {"seed": "A", "item_id": "B", "position": 1, "category": "Women > Shoes"},
        {"seed": "A", "item_id": "C", "position": 2, "category": "Women > Shoes"},
        {"seed": "D", "item_id": "E", "position": 1, "category": "Men"},
    ]
    qid = store.save_queue(
        dataset="demo", run="r1", preset="p", spec={"mode": "pasted"}, pairs=pairs, user="ann"
    )
    assert store.queue(qid)["pairs"] == pairs and store.queue("nope") is None
    assert [q["id"] for q in store.queues(run="r1", preset="p")] == [qid]
    assert store.queues(run="r1", preset="") == []
    store.judge(**BASE, seed="A", item_id="B", verdict=1, user="ann")
    store.judge(**BASE, seed="D", item_id="E", verdict=-1, user="ann")
    progress = queue_progress(pairs, store.judged(dataset="demo", run="r1", preset="p"))
    assert progress == [
        {"category": "Men", "pairs": 1, "judged": 1, "seeds": 1, "seeds_done": 1},
        {"category": "Women > Shoes", "pairs": 2, "judged": 1, "seeds": 1, "seeds_done": 0},
    ]


def test_reads_create_nothing_and_a_damaged_queue_is_named(tmp_path):
    """A viewer's visit only reads: no folder, no empty database. A saved queue whose stored
    JSON is damaged is listed as damaged (the others load) and loading it names the file."""
    store = JudgmentStore(tmp_path)
    assert store.rows() == [] and store.frame().empty and store.queues() == [] and store.queue("q") is None
    assert store.judged(dataset="d", run="r", preset=None) == {}
    assert store.export_csv().strip() == ",".join(COLUMNS)
    assert not (tmp_path / "vetting").exists()
    spec = {"mode": "random"}
    good = store.save_queue(
        dataset="d", run="r", preset=None, spec=spec, pairs=[{"seed": "A", "item_id": "B"}]
    )
    for pairs in ('[{"seed": "A", "it', '{"seed": "A"}'):  # truncated; valid JSON of another shape
        bad = store.save_queue(dataset="d", run="r", preset=None, spec=spec, pairs=[])
        with sqlite3.connect(store.path) as con:
            con.execute("UPDATE queues SET pairs = ? WHERE id = ?", (pairs, bad))
        listed = {q["id"]: q for q in store.queues(run="r")}
        assert listed[good]["damaged"] is None and listed[good]["n_pairs"] == 1
        assert bad in listed[bad]["damaged"] and "judgments.sqlite" in listed[bad]["damaged"]
        with pytest.raises(DamagedJudgmentsError, match=f"judgments.sqlite.*queue {bad}"):
            store.queue(bad)
        assert store.queue(good)["pairs"] == [{"seed": "A", "item_id": "B"}]
        with sqlite3.connect(store.path) as con:
            con.execute("DELETE FROM queues WHERE id = ?", (bad,))


def test_processes_making_a_new_store_at_once_all_store_their_first_judgment(tmp_path):
    """The file's first writers race to switch it to WAL; the losers wait, never fail."""
    users = [f"u{i}" for i in range(6)]
    for r in range(30):
        root = str(tmp_path / f"r{r}")
        assert errors_at_once(first_write, [(root, u) for u in users]) == []
        assert sorted(JudgmentStore(root).frame()["user"]) == users
