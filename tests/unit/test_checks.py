"""Behavioural checks (recsys.checks): each check passes where it must and fails where it
must, on hand-made lists; the slice check, ``recsys check`` and precompute's refusal on a real
Prod2Vec run (gensim + hnswlib) of a small seeded baskets shop (tests/_checks_data.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.checks import (
    ChecksConfigError,
    ChecksFailedError,
    CheckThresholds,
    check_run,
    check_slices,
    load_thresholds,
    run_checks,
)
from tests._checks_data import make_shop

CATALOG = pd.DataFrame(
    {
        "item_id": ["s1", "s2", "a1", "a2", "n1", "n2", "n3", "n4", "n5"],
        "title": ["Red Mug", "Blue Mug", "Toy", "Toy 2", "red  MUG", "Plate", "Bowl", "Cup", "Jug"],
        "category": ["Home > Mugs"] * 2 + ["Adult > Toys"] * 2 + ["Home > Mugs"] * 5,
        "brand": ["Acme", "Bolt", "X", "X", "Acme", "Acme", "Acme", "Bolt", "Cora"],
        "adult": [False, False, True, True, False, False, False, False, False],
    }
)


def result(report: Any, name: str) -> Any:
    return next(r for r in report.results if r.name == name)


def test_adult_next_to_non_adult_seed_fails_and_adult_seeds_do_not_count() -> None:
    clean = {"s1": ["n1", "n2"], "s2": ["n3"], "a1": ["a2", "n1"]}  # an adult seed may show adult items
    r = result(run_checks(clean, CATALOG, k=5), "adult")
    assert (r.passed, r.value, r.blocking) == (True, 0.0, True)
    dirty = {"s1": ["n1", "a1"], "s2": ["n3"], "a1": ["a2"]}
    r = result(run_checks(dirty, CATALOG, k=5), "adult")
    assert r.passed is False and r.value == pytest.approx(0.5) and r.examples == [("s1", "a1")]
    # beyond k it is not shown
    assert result(run_checks(dirty, CATALOG, k=1), "adult").passed is True
    report = run_checks(dirty, CATALOG, k=5)
    assert not report.passed and [f.name for f in report.blocking_failures] == ["adult"]


def test_complementary_asymmetry_on_co_bought_pairs() -> None:
    baskets = pd.DataFrame(
        {
            "sequence_id": ["b1", "b1", "b2", "b2", "b3", "b3", "b4", "b4"],
            "item_id": ["s1", "n1", "s1", "n1", "s2", "n2", "s2", "n3"],
        }
    )
    spec = CheckThresholds.from_dict({"asymmetry": {"max_share": 0.0}})
    both_ways = {"s1": ["n1"], "n1": ["s1"], "s2": ["n2"], "n2": ["n4"]}
    r = result(run_checks(both_ways, CATALOG, 5, spec, interactions=baskets), "asymmetry")
    # s1<->n1 co-bought twice and shown both ways; s2-n2 bought together once only (< min_support 2)
    assert (r.passed, r.value) == (True, 0.0)
    one_way = {"s1": ["n1"], "n1": ["n2"]}
    r = result(run_checks(one_way, CATALOG, 5, spec, interactions=baskets), "asymmetry")
    assert (r.passed, r.value, r.examples) == (False, 1.0, [("s1", "n1")])
    low = CheckThresholds.from_dict({"asymmetry": {"max_share": 0.0, "min_support": 1}})
    r = result(run_checks({"s2": ["n2"], "n2": ["s1"]}, CATALOG, 5, low, interactions=baskets), "asymmetry")
    assert r.passed is False  # with support 1 the s2 -> n2 pair counts
    assert result(run_checks(one_way, CATALOG, 5), "asymmetry").passed is None  # no baskets: n/a


def test_same_title_duplicates_case_and_space_insensitive() -> None:
    r = result(run_checks({"s2": ["n2", "n3"], "n2": ["n4"]}, CATALOG, 5), "duplicates")
    assert (r.passed, r.value) == (True, 0.0)
    # "red  MUG" is the seed's own title, differently written
    r = result(run_checks({"s1": ["n1"], "n2": ["n4"]}, CATALOG, 5), "duplicates")
    assert (r.passed, r.value, r.examples) == (False, 0.5, [("s1", "n1")])
    # two items of the list sharing a title, the seed unrelated
    r = result(run_checks({"n2": ["s1", "n3", "n1"]}, CATALOG, 5), "duplicates")
    assert r.passed is False


def test_brand_concentration() -> None:
    spec = CheckThresholds.from_dict({"brand_concentration": {"max_share": 0.0, "min_items": 3}})
    mixed = {"s1": ["n4", "n5", "n1"], "s2": ["n1", "n4", "n5"]}
    r = result(run_checks(mixed, CATALOG, 5, spec), "brand_concentration")
    assert (r.passed, r.value) == (True, 0.0)
    dominated = {"s2": ["n1", "n2", "n4"], "s1": ["n4", "n5", "n1"]}  # s2: Acme 2 of 3 > 50%
    r = result(run_checks(dominated, CATALOG, 5, spec), "brand_concentration")
    assert (r.passed, r.value) == (False, 0.5)
    short = {"s2": ["n1", "n2"]}  # under min_items: not judged
    assert result(run_checks(short, CATALOG, 5, spec), "brand_concentration").passed is None


def test_slice_check_against_hand_computed_rates() -> None:
    spec = CheckThresholds().slices  # min_ratio 0.5, min_cases 30
    rates = {
        "overall": (0.4, 200),
        "slices": {"cold items": (0.1, 40), "category: Home": (0.5, 120), "x": (0, 3)},
    }
    r = check_slices(rates, spec, 10)
    assert r.passed is False and r.value == pytest.approx(0.25) and "cold items" in r.detail
    assert "too few cases to judge: x" in r.detail
    rates["slices"]["cold items"] = (0.3, 40)
    r = check_slices(rates, spec, 10)
    assert r.passed is True and r.value == pytest.approx(0.75)
    assert check_slices({"overall": (0.0, 10), "slices": {}}, spec, 10).passed is None


def test_thresholds_file_json_yaml_and_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("duplicates:\n  max_share: 0.1\n  blocking: true\n")
    t = CheckThresholds.from_file(tmp_path / "t.yaml")
    assert t.duplicates.max_share == 0.1 and t.duplicates.blocking and t.adult.blocking
    (tmp_path / "bad.json").write_text(json.dumps({"duplicate": {"max_share": 2}}))
    with pytest.raises(ChecksConfigError, match="duplicate.*checks: adult"):
        CheckThresholds.from_file(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text(json.dumps({"duplicates": {"max_share": 2}}))
    with pytest.raises(ChecksConfigError, match=r"duplicates\.max_share.*got 2"):
        CheckThresholds.from_file(tmp_path / "bad2.json")
    (tmp_path / "bad3.json").write_text("{not json")
    with pytest.raises(ChecksConfigError, match="not valid JSON"):
        CheckThresholds.from_file(tmp_path / "bad3.json")
    with pytest.raises(ChecksConfigError, match="does not exist"):
        load_thresholds(tmp_path / "nope.json")
    assert load_thresholds(None, tmp_path) == CheckThresholds()
    (tmp_path / "checks.json").write_text(json.dumps({"slices": {"min_ratio": 0.9}}))
    assert load_thresholds(None, tmp_path).slices.min_ratio == 0.9  # the data directory's file


# -- a real run -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("shop")
    return {"root": root, **make_shop(root)}


def test_check_run_on_a_real_run_measures_slices_and_filters(shop: dict[str, Any]) -> None:
    plain = check_run(shop["root"], shop["run"], "plain", k=5)
    same = check_run(shop["root"], shop["run"], "same-cat", k=5)
    assert plain.n_lists == 96 and plain.passed  # only the adult check blocks by default
    assert result(plain, "adult").passed is True
    # the slice check is judged on the run's held-out baskets
    sl_plain, sl_same = result(plain, "slices"), result(same, "slices")
    assert sl_plain.passed is not None and sl_plain.examples
    assert {e["slice"] for e in sl_plain.examples} >= {"category: Electronics", "category: Home"}
    # same category (leaf) cuts the TV -> cable partners: Electronics loses most of its hits
    assert sl_same.value < sl_plain.value
    # the titles repeat within a leaf: same-category lists are full of duplicates
    assert result(same, "duplicates").value > result(plain, "duplicates").value > 0.05


def test_cli_exit_code_follows_blocking_checks(shop: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    from recsys.__main__ import main

    base = [
        "--data-dir",
        str(shop["root"]),
        "-q",
        "check",
        "--run",
        shop["run"],
        "--preset",
        "same-cat",
        "--k",
        "5",
    ]
    assert main([*base, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["passed"] is True and out["run"] == shop["run"]
    assert {r["name"] for r in out["results"]} == {
        "adult",
        "asymmetry",
        "duplicates",
        "brand_concentration",
        "slices",
    }
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"duplicates": {"max_share": 0.05, "blocking": True}}))
    assert main([*base, "--thresholds", str(strict)]) == 1
    text = capsys.readouterr().out
    assert "duplicates" in text and "FAIL" in text and "blocking" in text
    # non-blocking failures do not change the exit code
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"duplicates": {"max_share": 0.0, "blocking": False}}))
    assert main([*base, "--thresholds", str(loose)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"duplicates": {"blocking": "sometimes"}}))
    assert main([*base, "--thresholds", str(bad)]) == 2
    assert "duplicates.blocking" in capsys.readouterr().err


def test_precompute_refuses_a_table_that_fails_a_blocking_check(shop: dict[str, Any], tmp_path: Path) -> None:
    from recsys.precompute import open_store, precompute
    from recsys.registry import Registry

    root, run = shop["root"], shop["run"]
    path = tmp_path / "pre.sqlite"
    meta = precompute(root, run, "plain", k=5, store=str(path))
    assert meta["checks"]["passed"] is True and meta["n_items"] == 96
    before = open_store(str(path)).list_tables()
    strict = CheckThresholds.from_dict({"duplicates": {"max_share": 0.05, "blocking": True}})
    with pytest.raises(ChecksFailedError, match="blocking check failed: duplicates") as info:
        precompute(root, run, "same-cat", k=5, store=str(path), checks=strict)
    assert info.value.report.blocking_failures[0].name == "duplicates"
    store = open_store(str(path))
    assert store.list_tables() == before  # nothing of the refused table was written
    preset_hash = before[0]["preset_hash"]
    assert store.get(run, preset_hash, "P0000") is not None  # the old table is still served
    from recsys.filters import PresetStore

    same_hash = PresetStore(root).load("same-cat").config_hash()
    assert store.table_meta(run, same_hash) is None
    assert Registry(root).get(run)["run_id"] == run
    # the same table passes when the check is not blocking
    loose = CheckThresholds.from_dict({"duplicates": {"max_share": 0.05}})
    assert precompute(root, run, "same-cat", k=5, store=str(path), checks=loose)["checks"]["passed"]


def test_precompute_cli_refusal_is_a_clear_message(shop: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    from recsys.__main__ import main

    strict = tmp_path / "strict.yaml"
    strict.write_text("duplicates:\n  max_share: 0.05\n  blocking: true\n")
    out = tmp_path / "cli.sqlite"
    argv = ["--data-dir", str(shop["root"]), "-q", "precompute", "--run", shop["run"], "--preset", "same-cat"]
    rc = main([*argv, "--k", "5", "--out", str(out), "--thresholds", str(strict)])
    err = capsys.readouterr().err
    assert rc == 2 and "not published" in err and "duplicates" in err
    assert "Traceback" not in err


def test_evaluate_reports_vetted_precision_or_no_judgments(shop: dict[str, Any], capsys: Any) -> None:
    from recsys.__main__ import main
    from recsys.registry import Registry
    from recsys.search import similar_items
    from tests._checks_data import write_judgments

    root, run = shop["root"], shop["run"]
    argv = ["--data-dir", str(root), "-q", "evaluate", "--run", run, "--k", "5", "--preset", "same-cat"]
    assert main(argv) == 0
    assert "vetted precision: no judgments for dataset shop" in capsys.readouterr().out
    from recsys.filters import PresetStore

    config = PresetStore(root).load("same-cat")
    shown = similar_items(Registry(root), run, "P0005", config, 5).item_ids
    at = "2026-01-01T10:00:00+00:00"
    write_judgments(root, [("P0005", shown[0], 1, "ann", at), ("P0005", shown[4], -1, "ann", at)])
    write_judgments(root, [("P0005", "P0005", -1, "ann", at)], dataset="another")  # another dataset: ignored
    try:
        assert main([*argv, "--json"]) == 0
        vetted = json.loads(capsys.readouterr().out)["vetted"]
        assert (vetted["precision"], vetted["judged_shown"], vetted["down_shown"]) == (0.5, 2, 1)
        assert main(argv[:-2]) == 0  # no preset: the unfiltered list
        assert "vetted precision@5:" in capsys.readouterr().out
    finally:
        (root / "vetting" / "judgments.sqlite").unlink()
