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


def _judged_card(card: Any) -> dict[str, Any]:
    """What assets/vetting_keys.js sends of a judged pair: read off its drawn card."""
    return {
        "seed": getattr(card, "data-seed"),
        "item_id": getattr(card, "data-item"),
        "position": getattr(card, "data-position"),
    }


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
    assert (cursor, group) == (0, 0) and queue["n"] == 15 and queue["starts"] == [0, 5, 10, 15]
    pairs = vetting.queue_pairs_of(qid)
    assert [p["g"] for p in pairs] == [0] * 5 + [1] * 5 + [2] * 5
    shown = _pairs(vetting.show_seed(queue, 1))
    assert [getattr(c, "data-item") for c in shown] == [p["item_id"] for p in pairs[5:10]]
    assert [getattr(c, "data-index") for c in shown] == list(range(5, 10))

    # the browser's outbox: two judgments, one bad; the user is the server's, not the payload's
    base = {k: queue[k] for k in ("dataset", "run", "preset")}
    outbox = [
        {"t": "1", **base, **_judged_card(_pairs(vetting.show_seed(queue, 0))[0]), "verdict": 1},
        {
            "t": "2",
            **base,
            **_judged_card(_pairs(vetting.show_seed(queue, 0))[1]),
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
    cats = {str(p["category"]) for p in pairs}
    assert "(no category)" not in cats and all(c in text_of(progress) for c in cats)


def test_pasted_queue_reports_unknown_ids_and_an_empty_one_is_refused(vetting, data):
    run = data["runs"]["A"]
    _, qid, msg = vetting.build_queue(1, run, None, 5, "pasted", 3, 2, "ws0\nnope-1")
    assert (
        "nope-1" in text_of(msg)
        and vetting.queue_pairs_of(vetting.load_queue(qid)[0]["id"])[0]["seed"] == "ws0"
    )
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
    pairs = [_judged_card(c) for c in _pairs(vetting.show_seed(queue, 0))]
    base = {k: queue[k] for k in ("dataset", "run", "preset")}
    outbox = [{"t": "d", **base, **pairs[0], "verdict": -1}, {"t": "u", **base, **pairs[1], "verdict": 1}]
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


def _untitled_shop(root: Any, titled: bool = False) -> str:
    """A shop like dunnhumby's: no titles, no images; category path, brand, price and two
    columns of its own (package size, manufacturer). Two items are never bought: a real
    Prod2Vec fit serves them by their category's mean vector. Returns the run id. ``titled``:
    each item has a title too (as Instacart's, whose aisle and department ids come along)."""
    import numpy as np
    import pandas as pd

    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.models.prod2vec import Prod2Vec
    from recsys.registry import Registry

    cats = ["GROCERY > FRZN ICE > ICE - CRUSHED/CUBED", "DRUG GM > CANDY > CHOCOLATE BARS"]
    catalog = pd.DataFrame(
        [
            {
                "item_id": f"c{c}_{i}",
                "title": f"Ice bag {i}" if titled and c == 0 else (f"Bar {i}" if titled else ""),
                "category": cats[c],
                "brand": "National" if i % 2 else "Private",
                "price": 1.5 + i,
                "package_size": f"{10 + i} LB" if c == 0 else f"{2 + i} OZ",
                "manufacturer_id": str(100 + c),
            }
            for c in range(2)
            for i in range(6)
        ]
    )
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2024-01-01")
    rows = [
        {
            "sequence_id": f"b{s}",
            "item_id": f"c{s % 2}_{i}",
            "timestamp": start + pd.Timedelta(hours=s, minutes=n),
        }
        for s in range(200)
        for n, i in enumerate(rng.choice(5, size=3, replace=False))  # c0_5 and c1_5: never bought
    ]
    ds = build_dataset("untitled", catalog, pd.DataFrame(rows), kind="baskets")
    save_dataset(ds, root)
    model = Prod2Vec(vector_size=8, epochs=3, min_count=1, window=3, workers=1).fit(ds)
    assert model.coverage_["from_category"] == 2  # the real fit's declared fallback
    return Registry(root).create_run(model, dataset_name="untitled", dataset_fingerprint=ds.fingerprint())[
        "run_id"
    ]


def test_vetting_cards_show_what_the_catalogue_has_and_mark_category_stand_ins(tmp_path, monkeypatch):
    """Vetting a catalogue without titles or images came down to reading ids: a card showed
    its leaf category as its name and nothing else to tell items apart. Each card now shows the
    catalogue's other columns (dunnhumby's package size, the manufacturer). And an item the run
    serves by its category's mean vector (Taobao's 6,814 stand-ins) was not marked: its card
    says "category mean", with a tooltip saying why, on the Vetting page and in Explore."""
    from tests.callbacks.test_explore import call_results, defaults

    run = _untitled_shop(tmp_path)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    vetting = page("vetting")
    _, qid, msg = vetting.build_queue(1, run, None, 10, "pasted", 3, 2, "c0_0")
    assert "Queued 10 pairs" in text_of(msg)
    tree = vetting.show_seed(vetting.load_queue(qid)[0], 0)
    cards = {getattr(c, "data-item"): c for c in _pairs(tree)}
    assert "c0_5" in cards and "c0_1" in cards

    def badges(node: Any) -> list[dict]:  # a card's inner nodes are JSON dicts (html_node)
        out: list[dict] = []

        def walk(n: Any) -> None:
            if isinstance(n, (list, tuple)):
                for c in n:
                    walk(c)
            elif isinstance(n, dict) and "props" in n:
                if n["props"].get("className") == "stand-in-badge":
                    out.append(n)
                walk(n["props"].get("children"))
            elif n is not None and hasattr(n, "to_plotly_json"):
                walk(getattr(n, "children", None))

        walk(node)
        return out

    (badge,) = badges(cards["c0_5"])
    assert badge["props"]["children"] == "category mean"
    assert (
        "No vector of its own" in badge["props"]["title"]
        and "mean vector of its category" in badge["props"]["title"]
    )
    assert all(not badges(cards[i]) for i in cards if not i.endswith("_5"))
    text = " ".join(text_of(cards["c0_1"]).split())
    assert "package size: 11 LB" in text and "manufacturer id: 100" in text
    seed_text = " ".join(
        text_of(find(tree, lambda c: "vet-seed" in str(getattr(c, "className", "")))[0]).split()
    )
    assert "package size: 10 LB" in seed_text
    # Explore marks the same card (and shows no extras: its cards stay small)
    out = call_results(page("explore"), "c0_0", run, defaults(), k=10)
    (explore_card,) = find(out["results"], lambda c: getattr(c, "data-item", None) == "c0_5")
    assert len(badges(explore_card)) == 1 and "package size" not in text_of(out["results"])

    # the "Rule…" dialog names the pair as the cards do (by leaf), not by two bare ids
    import json

    from tests.callbacks._pages import triggered

    queue = vetting.load_queue(qid)[0]
    pair = _judged_card(_pairs(vetting.show_seed(queue, 0))[0])
    vetting.store_judgments(
        [{"t": "d", **{k: queue[k] for k in ("dataset", "run", "preset")}, **pair, "verdict": -1}], 0
    )
    prop = json.dumps({"index": 0, "type": vetting.PROPOSE}, separators=(",", ":")) + ".n_clicks"
    _, options, *_ = triggered(prop, vetting.open_proposal, [1], None, queue, None)
    leaf = {"c0": "ICE - CRUSHED/CUBED", "c1": "CHOCOLATE BARS"}[pair["item_id"][:2]]
    assert [o["label"] for o in options] == [
        f"Never show “{leaf}” ({pair['item_id']}) and “ICE - CRUSHED/CUBED” (c0_0) together"
    ]


def test_a_titled_items_card_leaves_out_the_catalogues_id_columns(tmp_path, monkeypatch):
    """Instacart's cards read "aisle id: 24 · department id: 4" under a title and a category
    path that already say it (s45-u's walk): a code is shown only on an item without a title,
    where it is all there is to tell items apart (the untitled shop above keeps it)."""
    run = _untitled_shop(tmp_path, titled=True)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    vetting = page("vetting")
    _, qid, _ = vetting.build_queue(1, run, None, 10, "pasted", 3, 2, "c0_0")
    tree = vetting.show_seed(vetting.load_queue(qid)[0], 0)
    text = " ".join(text_of(tree).split())
    assert "Ice bag 1" in text and "package size: 11 LB" in text
    assert "manufacturer id" not in text


def test_a_catalogue_only_shop_starts_its_vetting_queue_at_random(tmp_path, monkeypatch):
    """On Myntra (a catalogue alone) the queue started "By traffic (popular first)", and Build
    answered "only 0 items have any interactions". Without interactions (or categories) that
    mode (or "N per leaf category") is disabled and says why; the queue starts at random and
    builds."""
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.models.external import ExternalModel
    from recsys.registry import Registry
    from tests.callbacks._emc_data import catalog, vectors

    ds = build_dataset("shop", catalog().assign(category=""), None)
    save_dataset(ds, tmp_path)
    ids = ds.catalog["item_id"].astype(str).to_numpy()
    model = ExternalModel.from_arrays(ids, vectors(list(ids)), catalog_ids=ids)  # vectors made elsewhere
    run = Registry(tmp_path).create_run(model, dataset_name="shop", dataset_fingerprint=ds.fingerprint())[
        "run_id"
    ]
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    vetting = page("vetting")
    (mode,) = find(vetting.layout(run=run), lambda c: getattr(c, "id", None) == vetting.MODE)
    assert mode.value == "random"
    disabled = {o["value"]: o["label"] for o in mode.options if o.get("disabled")}
    assert set(disabled) == {"traffic", "category"}
    assert "needs interactions; this dataset has none" in disabled["traffic"]
    _, _, msg = vetting.build_queue(1, run, None, 5, mode.value, 2, 2, None)
    assert "Queued 10 pairs of 2 seeds" in text_of(msg)


def test_a_queue_of_max_seeds_sends_the_browser_one_seed_at_a_time(tmp_path, monkeypatch):
    """A saved queue of 2,000 seeds (20,000 pairs) froze the Vetting page: the whole queue (3 MB
    of JSON) sat in a dcc.Store that every callback reading it sent back, and the progress
    table drew 2,000 rows. What the browser gets is now bounded whatever the queue's size: the
    queue's shape (where each seed starts), one seed's cards, and the busiest categories'
    progress with a line for the rest; judging reads the pair off its card."""
    import json

    import numpy as np
    import pandas as pd
    from plotly.utils import PlotlyJSONEncoder

    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.models.external import ExternalModel
    from recsys.registry import Registry
    from recsys.vetting.queue import MAX_SEEDS

    n_items = MAX_SEEDS + 100
    ids = np.array([f"i{i}" for i in range(n_items)])
    catalog = pd.DataFrame(
        {"item_id": ids, "category": [f"Top > Leaf {i % 300:03d}" for i in range(n_items)]}
    )
    ds = build_dataset("big", catalog, None)
    save_dataset(ds, tmp_path)
    vec = np.random.default_rng(7).normal(size=(n_items, 8)).astype("float32")
    model = ExternalModel.from_arrays(ids, vec, catalog_ids=ids)
    run = Registry(tmp_path).create_run(model, dataset_name="big", dataset_fingerprint=ds.fingerprint())[
        "run_id"
    ]
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    vetting = page("vetting")
    _, qid, msg = vetting.build_queue(1, run, None, 10, "random", MAX_SEEDS, 2, None)
    assert f"Queued {10 * MAX_SEEDS} pairs of {MAX_SEEDS} seeds" in text_of(msg)

    def size(value: Any) -> int:
        return len(json.dumps(value, cls=PlotlyJSONEncoder))

    queue, cursor, group = vetting.load_queue(qid)
    assert queue["n"] == 10 * MAX_SEEDS and len(queue["starts"]) == MAX_SEEDS + 1
    assert size(queue) < 20_000  # it was 2.9 MB (every pair in the store)
    cards = _pairs(vetting.show_seed(queue, 1999))
    assert [getattr(c, "data-index") for c in cards] == list(range(19_990, 20_000))
    assert size(vetting.show_seed(queue, 1999)) < 200_000
    progress = vetting.show_progress(queue, 0)
    assert len(find(progress, lambda c: type(c).__name__ == "Tr")) == vetting.MAX_PROGRESS_ROWS + 1
    hidden = len({p["category"] for p in vetting.queue_pairs_of(qid)}) - vetting.MAX_PROGRESS_ROWS
    assert f"{hidden} more categories not shown (0 / " in " ".join(text_of(progress).split())
    assert size(progress) < 50_000
