"""The Vetting page's server callbacks as plain functions on a real data directory, and the
filter panel's merchandising-rule controls."""

from __future__ import annotations

from typing import Any

import pytest

from components.filter_panel import controls_from_filter_config, filter_config_from_controls, parse_rule
from recsys.errors import FilterConfigError
from recsys.filters import FilterConfig, PresetStore
from recsys.vetting.store import JudgmentStore
from tests.callbacks._emc_data import TITLES
from tests.callbacks._pages import find, page, text_of


@pytest.fixture
def vetting(data: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data["root"]))
    return page("vetting")


def _pairs(tree: Any) -> list[Any]:
    return find(tree, lambda c: "vet-pair" in str(getattr(c, "className", "")).split())


def test_panel_carries_every_merchandising_rule_through_its_controls():
    cfg = FilterConfig.from_dict(
        {
            "same_gender": True,
            "do_not_associate": [
                {"seed": "A", "item_id": "B"},
                {"seed": "C", "item_id": "D", "one_way": True},
            ],
            "pins": [
                {"seed": "S1", "item_id": "X 1", "position": 3},
                {"category": "Women > Shoes", "item_id": "X2", "position": 1},
            ],
            "boost": [{"brands": ["Acme"], "multiplier": 1.5}],
            "bury": [{"category": "Men", "price_max": 9.5, "shift": -0.2}],
        }
    )
    values = controls_from_filter_config(cfg)
    assert values["do_not_associate"] == ["A ⇄ B", "C → D"]
    assert sorted(values["pins"]) == ["X 1 @3 for S1", "X2 @1 for category Women > Shoes"]
    assert filter_config_from_controls(values) == cfg
    # removing a rule's chip removes the rule
    fewer = filter_config_from_controls({**values, "pins": values["pins"][:1]})
    assert len(fewer.pins) == 1 and fewer.do_not_associate == cfg.do_not_associate
    with pytest.raises(FilterConfigError, match="pins: cannot read"):
        parse_rule("pins", "X2 at 1")


def test_queue_judge_and_progress(vetting, data):
    run = data["runs"]["A"]
    opts, qid, msg = vetting.build_queue(1, run, None, 5, "random", 3, 2, None)
    assert "Queued 15 pairs of 3 seeds" in text_of(msg)
    assert qid in [o["value"] for o in opts]
    queue, cursor, group = vetting.load_queue(qid)
    assert (cursor, group) == (0, 0) and len(queue["pairs"]) == 15
    assert [p["g"] for p in queue["pairs"]] == [0] * 5 + [1] * 5 + [2] * 5
    shown = _pairs(vetting.show_seed(queue, 1))
    assert [getattr(c, "data-item") for c in shown] == [p["item_id"] for p in queue["pairs"][5:10]]
    assert [getattr(c, "data-index") for c in shown] == list(range(5, 10))

    # the browser's outbox: two judgments, one bad; the user is the server's, not the payload's
    base = {k: queue[k] for k in ("dataset", "run", "preset")}
    outbox = [
        {
            "t": "1",
            **base,
            **{k: queue["pairs"][0][k] for k in ("seed", "item_id", "position")},
            "verdict": 1,
        },
        {
            "t": "2",
            **base,
            **{k: queue["pairs"][1][k] for k in ("seed", "item_id", "position")},
            "verdict": -1,
            "reason": "duplicate",
            "note": "same mug, other colour",
            "user": "mallory",
        },
        {"t": "3", **base, "seed": "x", "item_id": "y", "verdict": 7},
    ]
    acked, rev, status = vetting.store_judgments(outbox, 4)
    assert acked == ["1", "2", "3"] and rev == 5 and "verdict 7" in text_of(status)
    df = JudgmentStore(data["root"]).frame(run=run, preset="")
    assert sorted(df["verdict"].tolist()) == [-1, 1] and set(df["user"]) == {"local"}

    # reopening the queue starts at the first pair not judged; the marks and progress show them
    assert vetting.load_queue(qid)[1:] == (2, 0)
    first = _pairs(vetting.show_seed(queue, 0))
    assert [getattr(c, "data-verdict") for c in first[:3]] == ["up", "down", ""]
    # a stored note is shown back in its pair's note field (judging the pair again keeps it)
    notes = [find(c, lambda x: "vet-note" in str(getattr(x, "className", "")).split()) for c in first[:3]]
    assert [n[0].value for n in notes] == ["", "same mug, other colour", ""]
    progress = vetting.show_progress(queue, 5)
    total = find(progress, lambda c: getattr(c, "id", None) == "vetting-progress-total")[0]
    assert (getattr(total, "data-done"), getattr(total, "data-total")) == (2, 15)
    cats = {str(p["category"]) for p in queue["pairs"]}
    assert "(no category)" not in cats and all(c in text_of(progress) for c in cats)


def test_pasted_queue_reports_unknown_ids_and_an_empty_one_is_refused(vetting, data):
    run = data["runs"]["A"]
    _, qid, msg = vetting.build_queue(1, run, None, 5, "pasted", 3, 2, "ws0\nnope-1")
    assert "nope-1" in text_of(msg) and vetting.load_queue(qid)[0]["pairs"][0]["seed"] == "ws0"
    opts, qid, msg = vetting.build_queue(1, run, None, 5, "pasted", 3, 2, "nope-2")
    assert qid is vetting.no_update and "No queue built" in text_of(msg)


def test_confirm_rule_saves_a_new_preset_version(vetting, data):
    store = PresetStore(data["root"])
    store.save("vet-p", FilterConfig(same_category=True))
    found = [{"kind": "do_not_associate", "seed": "ws0", "item_id": "ws1", "one_way": False, "label": "x"}]
    is_open, msg, options = vetting.confirm_rule(1, 0, found, "vet-p")
    assert is_open is False and "now version 2 (was 1)" in text_of(msg)
    assert {"label": "vet-p · v2", "value": "vet-p"} in options
    assert store.load("vet-p").same_category and len(store.load("vet-p").do_not_associate) == 1
    # a bad preset name is a message, not a traceback, and saves nothing
    _, msg, _ = vetting.confirm_rule(1, 0, found, "../evil")
    assert "preset name" in text_of(msg) and "No rule added" in text_of(msg)


def test_a_rejudgment_wins_whatever_order_the_requests_land_in(vetting, data):
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    pair = {"dataset": "d", "run": "r-order", "preset": None, "seed": "s", "item_id": "i", "position": 1}
    later = {"t": "b", **pair, "verdict": -1, "reason": "duplicate", "at": now.isoformat()}
    earlier = {"t": "a", **pair, "verdict": 1, "at": (now - timedelta(seconds=2)).isoformat()}
    assert vetting.store_outbox([later], "ann")[0] == ["b"]
    assert vetting.store_outbox([earlier, later], "ann")[0] == ["a", "b"]  # superseded request, re-sent
    df = JudgmentStore(data["root"]).frame(run="r-order")
    assert df["verdict"].tolist() == [-1] and df["reason"].tolist() == ["duplicate"]
    # a browser clock far off is not trusted
    assert vetting.judged_at("1999-01-01T00:00:00+00:00")[:4] == str(now.year)


def test_the_rule_dialog_names_items_by_title_with_their_ids(vetting, data):
    """The "Rule…" dialog of a judged pair reads "Never show “Trail Runner Shoe 1” (ws1) and …"
    on a catalogue with titles, not the bare ids; the saved preset's confirmation says the same."""
    import json

    from tests.callbacks._pages import triggered

    run = data["runs"]["A"]
    _, qid, _ = vetting.build_queue(1, run, None, 5, "pasted", 3, 2, "ws0")
    queue = vetting.load_queue(qid)[0]
    pairs = queue["pairs"]
    base = {k: queue[k] for k in ("dataset", "run", "preset")}
    outbox = [
        {"t": "d", **base, **{k: pairs[0][k] for k in ("seed", "item_id", "position")}, "verdict": -1},
        {"t": "u", **base, **{k: pairs[1][k] for k in ("seed", "item_id", "position")}, "verdict": 1},
    ]
    vetting.store_judgments(outbox, 0)
    titles = {f"{p}{i}": f"{t} {i}" for p, t in TITLES.items() for i in range(5)}

    def dialog(index: int) -> list[str]:
        prop = json.dumps({"index": index, "type": vetting.PROPOSE}, separators=(",", ":")) + ".n_clicks"
        is_open, options, *_ = triggered(prop, vetting.open_proposal, [1, 1], None, queue, None)
        assert is_open is True
        return [o["label"] for o in options]

    seed, down, up = pairs[0]["seed"], pairs[0]["item_id"], pairs[1]["item_id"]
    assert dialog(0) == [f"Never show “{titles[down]}” ({down}) and “{titles[seed]}” ({seed}) together"]
    assert dialog(1) == [f"Pin “{titles[up]}” ({up}) at position 2 for “{titles[seed]}” ({seed})"]


def test_a_rule_label_shortens_a_long_title_and_keeps_the_bare_id_without_one():
    from recsys.vetting.proposals import TITLE_CHARS, item_name, proposals

    long = "WHITE HANGING HEART T-LIGHT HOLDER WITH A VERY LONG DESCRIPTION OF ITS COLOURS"
    name = item_name("85123A", long)
    assert name.startswith("“WHITE HANGING HEART T-LIGHT HOLDER") and name.endswith("…” (85123A)")
    assert len(name) <= TITLE_CHARS + len(" (85123A)") + 2
    assert item_name("X", "A" * 90) == f"“{'A' * (TITLE_CHARS - 1)}…” (X)"  # one long word is cut inside
    assert item_name("1004839", None) == "1004839" and item_name("1004839", "1004839") == "1004839"
    down = {"seed": "1004856", "item_id": "1004839", "position": 1, "verdict": -1}
    assert proposals(down)[0]["label"] == "Never show 1004839 and 1004856 together"
