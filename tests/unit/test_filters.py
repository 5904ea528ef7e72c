"""FilterConfig validation, JSON/YAML round trips, hashes, and versioned presets."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.errors import FilterConfigError, PresetNotFoundError
from recsys.filters import FilterConfig, PresetStore

FULL = {
    "same_category": True,
    "category_level": 1,
    "same_gender": True,
    "price_ratio_min": 0.5,
    "price_ratio_max": 2.0,
    "price_min": 5.0,
    "price_max": 500.0,
    "brands_allow": ["Nike", "Adidas"],
    "brands_deny": ["Zara"],
    "banned_brand_pairs": [["Puma", "Nike"]],
    "exclude_adult": True,
    "min_similarity": 0.2,
    "max_per_brand": 2,
    "exclude_seed": True,
    "exclude_same_title": True,
}


def test_defaults_only_exclude_the_seed():
    cfg = FilterConfig()
    assert cfg.exclude_seed and not cfg.same_category and cfg.brands_allow == []
    assert cfg.active_rules() == ["exclude_seed"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"price_ratio_min": 2.0, "price_ratio_max": 1.0}, ["price_ratio_min", "price_ratio_max"]),
        ({"price_min": 10, "price_max": 5}, ["price_min", "price_max"]),
        ({"price_min": -1}, ["price_min"]),
        ({"min_similarity": 1.5}, ["min_similarity"]),
        ({"max_per_brand": 0}, ["max_per_brand"]),
        ({"category_level": -1}, ["category_level"]),
        ({"brands_allow": ["Nike"], "brands_deny": ["nike"]}, ["brands_allow", "brands_deny"]),
        ({"brands_allow": ["  "]}, ["brands_allow"]),
        ({"banned_brand_pairs": [["A"]]}, ["banned_brand_pairs"]),
        ({"same_categroy": True}, ["same_categroy"]),
        ({"price_max": "cheap"}, ["price_max"]),
        ({"min_similarity": float("nan")}, ["min_similarity"]),
    ],
)
def test_invalid_configs_name_the_field(fields, named):
    with pytest.raises(FilterConfigError) as err:
        FilterConfig.from_dict(fields)
    for name in named:
        assert name in str(err.value)
    assert set(named) <= set(err.value.fields)


def test_unknown_field_message_lists_allowed_fields():
    with pytest.raises(FilterConfigError, match="unknown field.*same_category"):
        FilterConfig.from_json('{"same_categroy": true}')


def test_json_and_yaml_round_trip():
    cfg = FilterConfig.from_dict(FULL)
    assert FilterConfig.from_json(cfg.to_json()) == cfg
    assert FilterConfig.from_yaml(cfg.to_yaml()) == cfg
    env = json.loads(cfg.to_json())
    assert env["version"] == 1 and env["hash"] == cfg.config_hash() and env["format"] == "recsys-filter"
    assert FilterConfig.from_json(json.dumps(FULL)) == cfg  # bare fields are accepted too


def test_hash_is_stable_and_ignores_key_list_and_brand_case_order():
    a = FilterConfig.from_dict(FULL)
    shuffled = dict(reversed(list(FULL.items())))
    shuffled["brands_allow"] = ["adidas", "NIKE"]
    shuffled["banned_brand_pairs"] = [["nike", "puma"]]
    b = FilterConfig.from_dict(shuffled)
    assert a.config_hash() == b.config_hash()
    assert (
        FilterConfig().config_hash() == "5ffc9935a5241c5b"
    )  # pinned: presets stay addressable across releases
    assert FilterConfig(max_per_brand=2).config_hash() != FilterConfig(max_per_brand=3).config_hash()
    assert FilterConfig().config_hash() == FilterConfig.from_json(FilterConfig().to_json()).config_hash()


def test_hash_is_the_same_across_processes():
    import subprocess
    import sys

    code = "from recsys.filters import FilterConfig;print(FilterConfig(price_min=3, brands_deny=['X']).config_hash())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == FilterConfig(price_min=3, brands_deny=["X"]).config_hash()


@settings(max_examples=60, deadline=None)
@given(
    ratio=st.none() | st.floats(0, 10),
    mx=st.none() | st.floats(0.01, 1e6),
    sim=st.none() | st.floats(-1, 1),
    brands=st.lists(st.text("abcXYZ ", min_size=1, max_size=5).filter(str.strip), max_size=4),
    per=st.none() | st.integers(1, 50),
)
def test_round_trip_property(ratio, mx, sim, brands, per):
    cfg = FilterConfig.from_dict(
        {
            "price_ratio_min": ratio,
            "price_max": mx,
            "min_similarity": sim,
            "brands_deny": brands,
            "max_per_brand": per,
        }
    )
    for again in (FilterConfig.from_json(cfg.to_json()), FilterConfig.from_yaml(cfg.to_yaml())):
        assert again == cfg and again.config_hash() == cfg.config_hash()


def test_bad_text_is_reported_clearly():
    with pytest.raises(FilterConfigError, match="not valid JSON"):
        FilterConfig.from_json("{nope")
    with pytest.raises(FilterConfigError, match="not valid YAML"):
        FilterConfig.from_yaml("a: [1, 2")
    with pytest.raises(FilterConfigError, match="version 7"):
        FilterConfig.from_json('{"format": "recsys-filter", "version": 7, "filters": {}}')
    with pytest.raises(FilterConfigError, match="expected a mapping"):
        FilterConfig.from_yaml("- 1\n- 2\n")


def test_hand_edited_file_loads_with_a_warning(caplog):
    env = json.loads(FilterConfig(price_min=1).to_json())
    env["filters"]["price_min"] = 2
    with caplog.at_level(logging.WARNING):
        cfg = FilterConfig.from_json(json.dumps(env))
    assert cfg.price_min == 2 and "edited by hand" in caplog.text


def test_preset_store_versions_list_load_delete(tmp_path):
    store = PresetStore(tmp_path)
    assert store.save("women shoes", FilterConfig(same_category=True)) == 1
    assert store.save("women shoes", FilterConfig(same_category=True)) == 1  # unchanged: no new version
    assert store.save("women shoes", {"same_category": True, "max_per_brand": 2}) == 2
    assert store.load("women shoes").max_per_brand == 2
    assert store.load("women shoes", version=1).max_per_brand is None
    listing = store.list()
    assert [(p["name"], p["version"]) for p in listing] == [("women shoes", 2)]
    assert listing[0]["hash"] == store.load("women shoes").config_hash() and listing[0]["updated"]
    assert [h["version"] for h in store.history("women shoes")] == [1, 2]
    with pytest.raises(PresetNotFoundError, match="no version 3"):
        store.load("women shoes", version=3)
    store.delete("women shoes")
    with pytest.raises(PresetNotFoundError):
        store.load("women shoes")
    with pytest.raises(PresetNotFoundError):
        store.delete("women shoes")
    assert not [p for p in (tmp_path / "presets").iterdir() if p.name not in (".lock",)]


def test_preset_export_import(tmp_path):
    store = PresetStore(tmp_path)
    store.save("strict", FilterConfig.from_dict(FULL))
    for fmt in ("json", "yaml"):
        text = store.export("strict", fmt=fmt)
        name, version = PresetStore(tmp_path / fmt).import_(text, fmt=fmt)
        assert name == "strict" and version == 1
        assert PresetStore(tmp_path / fmt).load("strict") == store.load("strict")
    name, version = store.import_(store.export("strict"), name="copy")
    assert (name, version) == ("copy", 1)
    with pytest.raises(FilterConfigError, match="price_min"):
        store.import_('{"filters": {"price_min": -3}}', name="bad")


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "x" * 65, "trailing.", "nul\x00"])
def test_preset_names_must_be_safe(tmp_path, name):
    with pytest.raises(FilterConfigError, match="preset name"):
        PresetStore(tmp_path).save(name, FilterConfig())


def test_unknown_preset_lists_known_ones(tmp_path):
    store = PresetStore(tmp_path)
    store.save("a", FilterConfig())
    with pytest.raises(PresetNotFoundError, match="known: a"):
        store.load("b")


def test_a_new_rule_left_at_its_default_keeps_every_stored_hash():
    """in_stock_only (added after presets and tables were stored) hashes and serialises only when set."""
    assert "in_stock_only" not in FilterConfig().canonical()
    assert FilterConfig(in_stock_only=False).config_hash() == FilterConfig().config_hash()
    on = FilterConfig(in_stock_only=True)
    assert on.canonical()["in_stock_only"] is True and on.config_hash() != FilterConfig().config_hash()
    assert FilterConfig.from_json(on.to_json()) == on
