"""The column mapping shared by the Data page's form and ``recsys import csv --map``."""

from __future__ import annotations

import pytest

from recsys.data.mapping import (
    FIELDS,
    MAPPING_FIELDS,
    check_targets,
    guess_fields,
    guess_mapping,
    mapping_from_choices,
    parse_map_pairs,
    required_fields,
)
from recsys.errors import DataValidationError


def test_the_form_offers_schema_fields_and_requires_the_ids() -> None:
    offered = [f for f, _, _ in MAPPING_FIELDS]
    assert set(offered) <= set(FIELDS) and len(offered) == len(set(offered))
    assert {f for f, req, _ in MAPPING_FIELDS if req} == {"sequence_id", "item_id"}


def test_guess_fields_prefills_the_form_from_column_names() -> None:
    got = guess_fields(["Session ID", "SKU", "Price", "name", "item"])
    assert got["sequence_id"] == "Session ID" and got["item_id"] == "SKU"  # SKU before item: alias order
    assert got["price"] == "Price" and got["title"] == "name"
    assert got["user_id"] is None and set(got) == set(guess_fields([]))
    # one column serves one field
    assert list(guess_fields(["time"]).values()).count("time") == 1


def test_guess_mapping_is_the_command_lines_column_to_field_guess() -> None:
    assert guess_mapping(["SessionId", "ItemId", "item_id"]) == {
        "SessionId": "sequence_id"
    }  # item_id present


def test_mapping_from_choices_checks_required_and_repeated_columns() -> None:
    fields = ["sequence_id", "item_id", "category", "price"]
    got = mapping_from_choices(fields, ["s", "p", ["dept", "aisle"], None])
    assert got == {"s": "sequence_id", "p": "item_id", "dept": "category", "aisle": "category"}
    assert list(got) == ["s", "p", "dept", "aisle"]  # category columns joined in the order chosen
    with pytest.raises(DataValidationError, match="required field 'item_id'"):
        mapping_from_choices(fields, ["s", None, [], None])
    with pytest.raises(DataValidationError, match="'s' is mapped to both 'sequence_id' and 'item_id'"):
        mapping_from_choices(fields, ["s", "s", [], None])
    # a catalogue alone, or sessions cut on a gap, need no sequence column
    assert required_fields({"role": "catalog"}) == required_fields({"session_gap": "30m"}) == {"item_id"}
    assert required_fields({}) == {"sequence_id", "item_id"}
    assert mapping_from_choices(fields, [None, "p", [], None], required_fields({"role": "catalog"})) == {
        "p": "item_id"
    }


def test_parse_map_pairs_reads_the_command_line_words() -> None:
    assert parse_map_pairs(["SessionId=sequence_id", "0=item_id", "junk=-"]) == {
        "SessionId": "sequence_id",
        "0": "item_id",
        "junk": "-",
    }
    assert parse_map_pairs(None) == {}
    for bad in ("order", "=item_id"):
        with pytest.raises(DataValidationError, match=f"--map '{bad}' is not of the form COLUMN=FIELD"):
            parse_map_pairs([bad])


def test_check_targets_names_the_closest_field() -> None:
    check_targets({"a": "item_id", "b": "-", "c": None})
    with pytest.raises(
        DataValidationError, match="'product' is not a field of the schema. Did you mean item_id"
    ):
        check_targets({"s": "product"})


def test_a_column_of_names_is_guessed_as_the_title_not_an_id() -> None:
    cols = ["index", "product", "brand", "sale_price"]
    names = {"index": ["1", "2", "3"], "product": ["Garlic Oil 500 mg", "Water Bottle - Orange", "Soap"]}
    assert guess_fields(cols, names)["item_id"] is None and guess_fields(cols, names)["title"] == "product"
    assert guess_mapping(cols, samples=names) == {"product": "title", "sale_price": "price"}
    codes = {"product": ["85123A", "71053", "22423"]}
    assert guess_fields(cols, codes)["item_id"] == "product" and guess_fields(cols, codes)["title"] is None
    # without values the name alone decides, as before
    assert guess_fields(cols)["item_id"] == "product"
    # a session column of names is not a session id either
    assert guess_fields(["session", "sku"], {"session": ["Morning visit one", "x y"]})["sequence_id"] is None


def test_values_that_contradict_a_name_keep_the_column_from_the_guess() -> None:
    # a quantity or position column holding text would stop the import: not guessed, and said why
    notes: list[str] = []
    text = {
        "session": ["a", "b"],
        "sku": ["x", "y"],
        "timeframe": ["Q1 2020", "Q2 2020"],
        "qty": ["one", "two"],
    }
    assert guess_mapping(["session", "sku", "timeframe", "qty"], samples=text, notes=notes) == {
        "session": "sequence_id",
        "sku": "item_id",
    }
    assert "'timeframe' not used as position: its values are not numbers" in notes
    numbers = {"session": ["a", "b"], "sku": ["x", "y"], "timeframe": ["3000", "55000"], "qty": ["1", "2"]}
    assert guess_fields(["session", "sku", "timeframe", "qty"], numbers)["position"] == "timeframe"
    # an empty column gives way to the next name of the field (Amazon's categories: [] but main_category)
    meta = {
        "parent_asin": ["B1", "B2"],
        "categories": ["", ""],
        "main_category": ["All Beauty", "All Beauty"],
    }
    assert guess_fields(list(meta), meta)["category"] == "main_category"
