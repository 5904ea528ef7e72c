"""Merchandising rule models (recsys.merch) as FilterConfig fields: validation, round trips
through JSON/YAML and the preset store, and hashes of configs without rules unchanged."""

from __future__ import annotations

import json

import pytest

from recsys.errors import FilterConfigError
from recsys.filters import FilterConfig, PresetStore
from recsys.merch import Adjust, PairBan, Pin

RULES = {
    "do_not_associate": [
        {"seed": "P000001", "item_id": "P000002"},
        {"seed": "P000003", "item_id": "P000004", "one_way": True},
    ],
    "pins": [
        {"seed": "P000123", "item_id": "P000456", "position": 1},
        {"category": "Women > Shoes", "item_id": "P000777", "position": 3},
    ],
    "boost": [
        {"brands": ["Nike"], "multiplier": 1.5},
        {"category": "Women > Shoes", "price_min": 10, "price_max": 80, "shift": 0.05},
    ],
    "bury": [{"column": "color", "values": ["red", "pink"], "multiplier": 0.5, "shift": -0.1}],
}


def test_defaults_are_empty_and_leave_the_hash_and_file_content_unchanged():
    cfg = FilterConfig()
    assert cfg.do_not_associate == [] and cfg.pins == [] and cfg.boost == [] and cfg.bury == []
    # the hash main gave FilterConfig() before these fields existed: stored presets and
    # precomputed tables keyed by it stay valid
    assert cfg.config_hash() == "5ffc9935a5241c5b"
    assert not {"do_not_associate", "pins", "boost", "bury"} & set(cfg.canonical())


def test_contract_json_round_trip():
    cfg = FilterConfig.from_json(
        json.dumps({"pins": [{"seed": "P000123", "item_id": "P000456", "position": 1}]})
    )
    assert cfg.pins == [Pin(seed="P000123", item_id="P000456", position=1)]
    assert "pins" in cfg.active_rules()
    again = FilterConfig.from_json(cfg.to_json())
    assert again == cfg and again.config_hash() == cfg.config_hash() != FilterConfig().config_hash()


def test_every_rule_round_trips_through_json_yaml_and_the_preset_store(tmp_path):
    cfg = FilterConfig.from_dict({"same_category": True, **RULES})
    assert FilterConfig.from_json(cfg.to_json()) == cfg
    assert FilterConfig.from_yaml(cfg.to_yaml()) == cfg
    store = PresetStore(tmp_path)
    assert store.save("merch", cfg) == 1
    assert store.load("merch") == cfg
    for fmt in ("json", "yaml"):
        name, version = PresetStore(tmp_path / fmt).import_(store.export("merch", fmt=fmt), fmt=fmt)
        assert (name, version) == ("merch", 1)
        assert PresetStore(tmp_path / fmt).load("merch") == cfg
    # one more pin is a new version; saving the same rules again is not
    more = cfg.model_copy(update={"pins": [*cfg.pins, Pin(seed="P000999", item_id="P000001", position=2)]})
    assert store.save("merch", FilterConfig.from_dict(more.canonical())) == 2
    assert store.save("merch", FilterConfig.from_dict(more.canonical())) == 2
    assert len(store.load("merch").pins) == 3


def test_a_preset_saved_before_the_rules_existed_loads_and_is_not_versioned_again(tmp_path):
    old = FilterConfig(same_gender=True)
    entry = {"version": 1, "hash": old.config_hash(), "created": "2026-01-01T00:00:00+00:00"}
    fields = {k: v for k, v in old.canonical().items()}
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "old.json").write_text(
        json.dumps({"name": "old", "versions": [{**entry, "filters": fields}]})
    )
    store = PresetStore(tmp_path)
    assert store.load("old") == old
    assert store.save("old", FilterConfig(same_gender=True)) == 1


def test_hash_ignores_order_of_bans_and_pins_and_direction_of_two_way_bans():
    a = FilterConfig.from_dict(RULES)
    b = FilterConfig.from_dict(
        {
            **RULES,
            "do_not_associate": [
                {"seed": "P000003", "item_id": "P000004", "one_way": True},
                {"seed": "P000002", "item_id": "P000001"},  # the same two-way ban
            ],
            "pins": list(reversed(RULES["pins"])),
        }
    )
    assert a == b and a.config_hash() == b.config_hash()
    one_way = FilterConfig.from_dict(
        {"do_not_associate": [{"seed": "P000004", "item_id": "P000003", "one_way": True}]}
    )
    assert (
        len(
            FilterConfig.from_dict(
                {"do_not_associate": [*RULES["do_not_associate"], one_way.do_not_associate[0].model_dump()]}
            ).do_not_associate
        )
        == 3
    )
    # boosts apply in list order: the order is part of the rule
    swapped = FilterConfig.from_dict({**RULES, "boost": list(reversed(RULES["boost"]))})
    assert swapped.config_hash() != a.config_hash()
    # brand case does not change the hash (brands match case-insensitively)
    lower = FilterConfig.from_dict(
        {**RULES, "boost": [{"brands": ["nike"], "multiplier": 1.5}, RULES["boost"][1]]}
    )
    assert lower.config_hash() == a.config_hash()


def test_duplicates_are_dropped_and_names_cleaned():
    cfg = FilterConfig.from_dict(
        {
            "do_not_associate": [{"seed": " P1 ", "item_id": "P2"}, {"seed": "P2", "item_id": "P1"}],
            "pins": [{"seed": "P1", "item_id": "P3", "position": 2}] * 2,
            "boost": [{"brands": [" Acme  Co ", "acme co"], "category": " Women >Shoes ", "shift": 0.1}],
        }
    )
    assert cfg.do_not_associate == [PairBan(seed="P1", item_id="P2")]
    assert len(cfg.pins) == 1
    assert cfg.boost[0].brands == ["Acme Co"] and cfg.boost[0].category == "Women > Shoes"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"do_not_associate": [{"seed": "P1", "item_id": "P1"}]},
            "do_not_associate.0: seed and item_id are the same",
        ),
        ({"do_not_associate": [{"seed": "P1"}]}, "do_not_associate.0.item_id"),
        ({"do_not_associate": [{"seed": "P1", "item_id": "  "}]}, "do_not_associate.0.item_id"),
        ({"pins": [{"seed": "P1", "item_id": "P2", "position": 0}]}, "pins.0.position"),
        ({"pins": [{"item_id": "P2", "position": 1}]}, "pins.0: give exactly one of seed"),
        (
            {"pins": [{"seed": "P1", "category": "A", "item_id": "P2", "position": 1}]},
            "pins.0: give exactly one",
        ),
        ({"pins": [{"seed": "P1", "item_id": "P1", "position": 1}]}, "pins.0: a seed cannot be pinned"),
        (
            {"pins": [{"seed": "P1", "item_id": "P2", "position": 1, "sku": 3}]},
            "pins.0.sku: unknown field (allowed: seed, category",
        ),
        (
            {
                "pins": [
                    {"seed": "P1", "item_id": "P2", "position": 1},
                    {"seed": "P1", "item_id": "P3", "position": 1},
                ]
            },
            "pins: entry 1 pins P3 at position 1 of seed P1, where entry 0 pins P2",
        ),
        (
            {
                "pins": [
                    {"seed": "P1", "item_id": "P2", "position": 1},
                    {"seed": "P1", "item_id": "P2", "position": 4},
                ]
            },
            "pins: entry 1 pins P2 at position 4",
        ),
        ({"pins": [{"category": "A >  > B", "item_id": "P2", "position": 1}]}, "pins.0.category"),
        ({"boost": [{"multiplier": 2.0}]}, "boost.0: give at least one condition"),
        ({"boost": [{"brands": ["A"], "multiplier": 0}]}, "boost.0.multiplier"),
        ({"boost": [{"brands": ["A"]}]}, "boost: entry 0"),
        (
            {"boost": [{"brands": ["A"], "multiplier": 2.0}, {"brands": ["B"], "multiplier": 0.5}]},
            "boost: entry 1",
        ),
        ({"boost": [{"brands": ["A"], "multiplier": 2.0, "shift": -0.1}]}, "boost: entry 0"),
        ({"bury": [{"brands": ["A"], "shift": 0.2}]}, "bury: entry 0"),
        (
            {"bury": [{"brands": ["A"], "price_min": 9, "price_max": 1, "shift": -1}]},
            "bury.0: price_min (9.0) must be <= price_max",
        ),
        ({"bury": [{"column": "color", "shift": -1}]}, "bury.0: column and values go together"),
        ({"bury": [{"values": ["red"], "shift": -1}]}, "bury.0: column and values go together"),
        ({"bury": [{"brands": [""], "shift": -1}]}, "bury.0.brands: entry 0 is an empty brand name"),
        ({"bury": [{"brands": ["A"], "shift": float("nan")}]}, "bury.0.shift"),
    ],
)
def test_invalid_rules_name_the_field_and_entry(fields, says):
    with pytest.raises(FilterConfigError) as err:
        FilterConfig.from_dict(fields)
    assert says in str(err.value)
    assert err.value.fields == [next(iter(fields))]


def test_invalid_rule_in_a_preset_file_is_reported_on_import(tmp_path):
    text = json.dumps({"name": "bad", "filters": {"pins": [{"seed": "P1", "item_id": "P2", "position": -2}]}})
    with pytest.raises(FilterConfigError, match=r"pins\.0\.position"):
        PresetStore(tmp_path).import_(text)
    assert PresetStore(tmp_path).list() == []


def test_models_are_frozen_and_strict():
    pin = Pin(seed="P1", item_id="P2", position=1)
    with pytest.raises(ValueError):
        pin.position = 2  # type: ignore[misc]
    assert Adjust(brands=["A"], multiplier=2).direction() == 1
    assert Adjust(brands=["A"], shift=-0.5).direction() == -1
    assert Adjust(brands=["A"], multiplier=2, shift=-1).direction() == 0
    assert PairBan(seed="B", item_id="A").key() == PairBan(seed="A", item_id="B").key()
    assert (
        PairBan(seed="B", item_id="A", one_way=True).key()
        != PairBan(seed="A", item_id="B", one_way=True).key()
    )


def test_rules_round_trip_through_the_rest_api(tmp_path):
    import flask

    from recsys.serving import register_api

    app = flask.Flask("test-merch-api")
    register_api(app, tmp_path, token="")
    client = app.test_client()
    body = {"config": {"same_gender": True, **RULES}}
    resp = client.put("/api/v1/presets/merch", json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    got = client.get("/api/v1/presets/merch").get_json()
    assert FilterConfig.from_dict(got["config"]) == FilterConfig.from_dict(body["config"])
    assert {
        "seed": "P000123",
        "category": None,
        "item_id": "P000456",
        "position": 1,
    } in got["config"]["pins"]
    bad = client.put(
        "/api/v1/presets/merch", json={"config": {"pins": [{"seed": "P1", "item_id": "P2", "position": 0}]}}
    )
    assert bad.status_code == 422 and "pins.0.position" in bad.get_json()["error"]["message"]
    assert bad.get_json()["error"].get("field") == "pins"
    assert [h["version"] for h in PresetStore(tmp_path).history("merch")] == [1]


def test_a_changed_copy_gets_its_own_hash():
    """model_copy(update=...) of a config whose hash was computed hashes its own content:
    the searchers cache compiled filters by hash (a stale one answered with the old rules)."""
    cfg = FilterConfig.from_dict({"same_category": True, **RULES})
    before = cfg.config_hash()
    plain = cfg.model_copy(update={"boost": [], "bury": []})
    assert plain.config_hash() == FilterConfig.from_dict(plain.canonical()).config_hash() != before
    assert cfg.model_copy().config_hash() == before
