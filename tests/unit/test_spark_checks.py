"""``recsys spark precompute`` runs the behavioural checks of ``recsys precompute`` (issue 16).

A real Prod2Vec run of the small seeded baskets shop (tests/_checks_data.py) is precomputed on a
real local Spark (``local[1]``): the checks give the single-machine report, a table failing a
blocking check is not published (the store keeps serving its old table; the Parquet output is
deleted), and the CLI takes the same ``--thresholds`` file and says why, without a traceback.
Skipped, with the reason, only when no Java runtime is found.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from recsys.checks import ChecksFailedError, CheckThresholds
from recsys.filters import PresetStore
from recsys.precompute import open_store, precompute
from tests._checks_data import make_shop
from tests._spark import require_spark

rspark = require_spark()

K = 5
STRICT = {"duplicates": {"max_share": 0.05, "blocking": True}}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("spark-shop")
    return {"root": root, **make_shop(root)}


@pytest.fixture(scope="module")
def spark() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYSPARK_PYTHON", sys.executable)  # the workers import recsys from this venv
        session = rspark.get_spark(
            "local[1]",
            app_name="recsys-spark-checks",
            conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "1"},
        )
        yield session
        session.stop()


def _results(report: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {r["name"]: (r["value"], r["passed"]) for r in report["results"]}


def test_spark_precompute_refuses_what_precompute_refuses_and_keeps_the_old_table(
    shop: dict[str, Any], spark: Any, tmp_path: Path
) -> None:
    root, run = shop["root"], shop["run"]
    path = tmp_path / "spark.sqlite"
    plain = rspark.spark_precompute(spark, root, run, "plain", k=K, write_store=True, store=str(path))
    assert plain["checks"]["passed"] is True and plain["checks"]["n_lists"] == plain["n_items"] == 96
    single = precompute(root, run, "plain", k=K, store=str(tmp_path / "single.sqlite"))
    assert _results(plain["checks"]) == _results(single["checks"])  # the same checks, the same numbers
    before = open_store(str(path)).list_tables()
    strict = CheckThresholds.from_dict(STRICT)
    with pytest.raises(ChecksFailedError) as single_refusal:
        precompute(root, run, "same-cat", k=K, store=str(tmp_path / "single.sqlite"), checks=strict)
    with pytest.raises(ChecksFailedError) as info:
        rspark.spark_precompute(
            spark, root, run, "same-cat", k=K, write_store=True, store=str(path), partitions=3, checks=strict
        )
    assert str(info.value) == str(single_refusal.value)  # the same clear message
    assert "is not published: blocking check failed: duplicates" in str(info.value)
    assert info.value.report.model_dump() == single_refusal.value.report.model_dump()
    store = open_store(str(path))
    try:
        assert store.list_tables() == before  # nothing of the refused table was written
        assert store.get(run, before[0]["preset_hash"], "P0000") is not None  # the old table is served
        assert store.table_meta(run, PresetStore(root).load("same-cat").config_hash()) is None
    finally:
        store.close()
    # the same table is published when the check does not block
    loose = CheckThresholds.from_dict({"duplicates": {"max_share": 0.05}})
    meta = rspark.spark_precompute(
        spark, root, run, "same-cat", k=K, write_store=True, store=str(path), checks=loose
    )
    assert meta["checks"]["passed"] is True and meta["n_items"] == 96


def test_a_refused_parquet_output_is_deleted(shop: dict[str, Any], spark: Any, tmp_path: Path) -> None:
    root, run = shop["root"], shop["run"]
    out = tmp_path / "table.parquet"
    strict = CheckThresholds.from_dict(STRICT)
    with pytest.raises(ChecksFailedError, match="not published"):
        rspark.spark_precompute(spark, root, run, "same-cat", k=K, out=str(out), checks=strict)
    assert not out.exists()
    meta = rspark.spark_precompute(spark, root, run, "same-cat", k=K, out=str(out))  # default thresholds
    assert meta["checks"]["passed"] is True and meta["checks"]["n_lists"] == 96
    assert out.exists() and spark.read.parquet(str(out)).count() == 96


def test_cli_takes_the_thresholds_file_and_says_why(
    shop: dict[str, Any], spark: Any, tmp_path: Path, capsys: Any
) -> None:
    from recsys.__main__ import main

    strict = tmp_path / "strict.yaml"
    strict.write_text("duplicates:\n  max_share: 0.05\n  blocking: true\n")
    path = tmp_path / "cli.sqlite"
    argv = ["--data-dir", str(shop["root"]), "-q", "spark", "precompute", "--master", "local[1]"]
    argv += ["--run", shop["run"], "--k", str(K), "--store", "--store-path", str(path)]
    assert main([*argv, "--preset", "plain"]) == 0  # the default thresholds pass
    capsys.readouterr()
    before = open_store(str(path)).list_tables()
    rc = main([*argv, "--preset", "same-cat", "--thresholds", str(strict)])
    err = capsys.readouterr().err
    assert rc == 2 and "not published" in err and "duplicates" in err
    assert "Traceback" not in err
    assert open_store(str(path)).list_tables() == before
