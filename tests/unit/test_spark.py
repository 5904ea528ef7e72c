"""The Spark jobs (recsys.spark) against the single-machine code, on a real local Spark.

One SparkSession (``local[2]``) is shared by the module; every test uses small seeded
data. Parity: Spark's sequences equal ``build_sequences``' and Spark's precomputed
table equals ``recsys precompute``'s; the streamed prod2vec equals an in-memory fit;
the vectors job equals the content model's own ``embed``. Skipped, with the reason,
only when no Java runtime is found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.sequences import build_sequences
from tests._spark import require_spark

rspark = require_spark()

from tests import _serving_data as _fixture  # noqa: E402

make_serving_data = _fixture.make_serving_data


@pytest.fixture(scope="module")
def spark() -> Any:
    session = rspark.get_spark(
        "local[2]",
        app_name="recsys-tests",
        conf={"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


def _frame(spark: Any, pdf: pd.DataFrame) -> Any:
    return spark.createDataFrame(pdf)


# ---------------------------------------------------------------------------
# sequences
# ---------------------------------------------------------------------------
RULES = [
    {},
    {"separate_by": "category", "category_level": 1, "max_len": 4},
    {"separate_by": "category+gender", "category_level": 0, "event_types": ["view", "cart"], "min_len": 1},
    {"session_gap": 300.0, "max_len": None, "dedupe_consecutive": False},
    {"session_gap": 120.0, "event_types": "view", "separate_by": "category", "max_len": 3},
]


@pytest.fixture(scope="module")
def demo_tables(spark: Any, demo_small: Any) -> tuple[Any, Any, pd.DataFrame]:
    # rows shuffled: order comes from sequence first appearance and position, not row order
    inter = demo_small.interactions.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return _frame(spark, inter), _frame(spark, demo_small.catalog[["item_id", "category", "gender"]]), inter


@pytest.mark.parametrize(
    "rules", RULES, ids=lambda r: ",".join(f"{k}={v}" for k, v in r.items()) or "default"
)
def test_spark_sequences_equal_build_sequences(demo_tables: Any, demo_small: Any, rules: dict) -> None:
    events, catalog, inter = demo_tables
    expected = build_sequences(inter, catalog=demo_small.catalog, **rules)
    got = rspark.collect_sequences(rspark.spark_build_sequences(events, catalog, **rules))
    assert len(expected) > 100
    assert got == expected


def test_session_gap_cuts_a_user_log_into_visits(spark: Any) -> None:
    """A user's log: a 2-hour pause starts a new visit; the cart event still counts for the gap."""
    t0 = pd.Timestamp("2024-03-01 10:00")
    rows = [
        ("u1", "a", t0, "view"),
        ("u1", "b", t0 + pd.Timedelta(minutes=5), "view"),
        ("u1", "c", t0 + pd.Timedelta(minutes=20), "cart"),  # keeps the visit alive
        ("u1", "d", t0 + pd.Timedelta(minutes=40), "view"),
        ("u1", "e", t0 + pd.Timedelta(hours=3), "view"),
        ("u1", "f", t0 + pd.Timedelta(hours=3, minutes=1), "view"),
        ("u2", "a", pd.NaT, "view"),
        ("u2", "b", pd.NaT, "view"),
    ]
    inter = pd.DataFrame(rows, columns=["sequence_id", "item_id", "timestamp", "event_type"])
    inter["position"] = inter.groupby("sequence_id").cumcount()
    expected = [["a", "b", "d"], ["e", "f"], ["a", "b"]]
    assert build_sequences(inter, session_gap=1800, event_types="view") == expected
    got = rspark.collect_sequences(
        rspark.spark_build_sequences(_frame(spark, inter), session_gap=1800, event_types="view")
    )
    assert got == expected
    # without the gap, u1 is one sequence
    assert build_sequences(inter, event_types="view")[0] == ["a", "b", "d", "e", "f"]


def test_both_engines_cut_sessions_by_the_one_rule_at_the_gap_boundary(spark: Any) -> None:
    """recsys.sequences.new_session: a gap of exactly session_gap keeps the session, a
    millisecond more starts a new one, in pandas and in Spark alike."""
    t0 = pd.Timestamp("2024-03-01 10:00")
    gaps = [1800.0, 1799.999, 1800.001, 0.0, 1800.0, 3600.0, 10.0]  # seconds before each next event
    times = [t0]
    for g in gaps:
        times.append(times[-1] + pd.Timedelta(seconds=g))
    inter = pd.DataFrame(
        {"sequence_id": "u1", "item_id": [f"i{j}" for j in range(len(times))], "timestamp": times}
    )
    inter["position"] = np.arange(len(inter))
    expected = [["i0", "i1", "i2"], ["i3", "i4", "i5"], ["i6", "i7"]]
    assert build_sequences(inter, session_gap=1800) == expected
    got = rspark.collect_sequences(rspark.spark_build_sequences(_frame(spark, inter), session_gap=1800))
    assert got == expected


def test_cli_spark_sequences_reads_a_stored_dataset_and_writes_parquet(
    spark: Any, demo_small: Any, tmp_data_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    from recsys.__main__ import main
    from recsys.data.schema import save_dataset

    folder = save_dataset(demo_small, tmp_data_dir)
    out = tmp_path / "seqs"
    args = ["spark", "sequences", str(folder), "--out", str(out), "--master", "local[2]"]
    args += ["--separate-by", "category", "--category-level", "1", "--session-gap", "30m"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    table = pd.read_parquet(out)
    expected = build_sequences(demo_small, separate_by="category", category_level=1, session_gap=1800)
    assert report["sequences"] == len(table) == len(expected)
    assert rspark.collect_sequences(table) == expected
    # a second run refuses to overwrite without --overwrite, with a message and no traceback
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# train prod2vec from streamed sequences
# ---------------------------------------------------------------------------
def test_streamed_prod2vec_equals_in_memory_fit(spark: Any, demo_small: Any, tmp_data_dir: Path) -> None:
    from recsys.data.schema import save_dataset
    from recsys.models.prod2vec import Prod2Vec
    from recsys.registry import Registry

    save_dataset(demo_small, tmp_data_dir)
    rules = {"separate_by": "category", "category_level": 0, "max_len": 10}
    table = rspark.spark_build_sequences(
        _frame(spark, demo_small.interactions), _frame(spark, demo_small.catalog), **rules
    )
    path = tmp_data_dir / "seqs"
    # one file in build_sequences' order, so gensim sees the same sentences in the same order
    table.orderBy(*rspark.SEQUENCE_ORDER).coalesce(1).write.parquet(str(path))
    # a fixed space: "auto" chooses on a split of the interactions, which streamed sequences lack
    params = {
        "vector_size": 16,
        "epochs": 3,
        "workers": 1,
        "seed": 7,
        "min_count": 2,
        "vectors": "in-out",
        **rules,
    }
    meta = rspark.train_prod2vec(path, "demo", tmp_data_dir, params=params, batch_rows=50)
    streamed = Registry(tmp_data_dir).load_model(meta["run_id"])
    reference = Prod2Vec(**params).fit(demo_small)
    np.testing.assert_array_equal(streamed.item_ids_, reference.item_ids_)
    np.testing.assert_allclose(streamed.vectors_, reference.vectors_, atol=1e-6)
    np.testing.assert_allclose(streamed.query_vectors_, reference.query_vectors_, atol=1e-6)
    assert (Registry(tmp_data_dir).run_dir(meta["run_id"]) / "index.bin").exists()
    assert meta["trained_on"]["sequences_count"] == len(build_sequences(demo_small, **rules))


# ---------------------------------------------------------------------------
# precompute
# ---------------------------------------------------------------------------
@pytest.fixture()
def serving(tmp_path: Path) -> dict[str, Any]:
    from recsys.filters import PresetStore

    out = make_serving_data(tmp_path)
    out["root"] = tmp_path
    PresetStore(tmp_path).save(
        "priced", {"same_gender": True, "price_ratio_min": 0.5, "price_ratio_max": 2.0, "max_per_brand": 2}
    )
    return out


@pytest.mark.parametrize("preset", ["same-cat", "priced"])
def test_spark_precompute_equals_recsys_precompute(spark: Any, serving: dict[str, Any], preset: str) -> None:
    from recsys.precompute import SQLiteStore, precompute

    root = serving["root"]
    for run_id in serving["runs"]:  # one run with index.bin, one without
        single = precompute(root, run_id, preset, k=6, store=root / "single.sqlite")
        out = root / f"spark-{run_id}-{preset}"
        meta = rspark.spark_precompute(
            spark,
            root,
            run_id,
            preset,
            k=6,
            out=out,
            write_store=True,
            store=root / "spark.sqlite",
            partitions=3,
        )
        assert meta["preset_hash"] == single["preset_hash"] and meta["n_items"] == single["n_items"]
        table = pd.read_parquet(out).sort_values("row")
        assert set(table["run_id"]) == {run_id} and set(table["preset_hash"]) == {single["preset_hash"]}
        a, b = SQLiteStore(root / "single.sqlite"), SQLiteStore(root / "spark.sqlite")
        assert table["item_id"].tolist() == [str(i) for i in serving["item_ids"]]
        for row in table.itertuples():
            expected = a.get(run_id, single["preset_hash"], row.item_id)
            assert list(zip(row.neighbors, row.scores, row.served_by)) == expected
            assert b.get(run_id, single["preset_hash"], row.item_id) == expected
        assert b.table_meta(run_id, single["preset_hash"])["n_items"] == len(serving["item_ids"])


@pytest.mark.parametrize(("preset", "partitions"), [("same-cat", 3), ("priced", 10)])
def test_spark_precompute_serves_seeds_without_a_vector_by_the_fallback_chain(
    spark: Any, serving: dict[str, Any], preset: str, partitions: int
) -> None:
    """The catalogue items the model has no vector for get the fallback chain's lists, under the
    preset's rules, in Spark's table as in ``recsys precompute``'s (with 10 partitions the
    chain's rows are split between two of them), and the checks say the same of both tables."""
    from recsys.precompute import SQLiteStore, precompute

    root = serving["root"]
    run_id = _fixture.make_run_with_missing_vectors(root, serving)
    single = precompute(root, run_id, preset, k=5, store=root / "single.sqlite")
    assert single["by_fallback"] == 6 and single["n_items"] == 48
    out = root / f"spark-fallback-{preset}"
    meta = rspark.spark_precompute(
        spark,
        root,
        run_id,
        preset,
        k=5,
        out=out,
        write_store=True,
        store=root / "spark.sqlite",
        partitions=partitions,
    )
    assert meta["n_items"] == 48 and meta["by_fallback"] == 6
    table = pd.read_parquet(out).sort_values("row")
    # precompute's order: the 42 items with a vector, then the six the chain serves
    expected_ids = [str(i) for n, i in enumerate(serving["item_ids"]) if not 30 <= n < 36]
    expected_ids += [f"it{n:03d}" for n in range(30, 36)]
    assert table["item_id"].tolist() == expected_ids
    a, b = SQLiteStore(root / "single.sqlite"), SQLiteStore(root / "spark.sqlite")
    for row in table.itertuples():
        expected = a.get(run_id, single["preset_hash"], row.item_id)
        assert list(zip(row.neighbors, row.scores, row.served_by)) == expected
        assert b.get(run_id, single["preset_hash"], row.item_id) == expected
    served = {row.item_id: list(row.neighbors) for row in table.itertuples()}
    assert all(served[f"it{n:03d}"] for n in range(30, 36))  # none of them is left without a list
    leaf = serving["catalog"].set_index("item_id")["category"]
    if preset == "same-cat":
        assert {leaf[i] for n in range(30, 36) for i in served[f"it{n:03d}"]} == {"Men > Shoes > Running"}
    drop = ("seconds",)
    assert {k: v for k, v in meta["checks"].items() if k not in drop} == {
        k: v for k, v in single["checks"].items() if k not in drop
    }


def test_spark_precompute_table_is_served_by_the_api(spark: Any, serving: dict[str, Any]) -> None:
    import flask

    from recsys.serving import register_api

    root, run_id = serving["root"], serving["runs"][0]
    rspark.spark_precompute(spark, root, run_id, "same-cat", k=5, write_store=True)
    app = flask.Flask("test-spark")
    register_api(app, root, token="")
    c = app.test_client()
    base = f"/api/v1/similar/it004?run={run_id}&preset=same-cat&k=5"
    live, pre = c.get(base).get_json(), c.get(base + "&source=precomputed").get_json()
    assert pre["source"] == "precomputed" and pre["precomputed"]["stale"] is False
    assert pre["items"] == live["items"] and len(pre["items"]) == 5


# ---------------------------------------------------------------------------
# vectors
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_spark_vectors_equal_the_models_own_embedding(spark: Any, tmp_path: Path) -> None:
    from recsys.models.content import ContentModel
    from tests.unit import test_content as content

    data = content.kinds_dataset(n_sessions=60)
    model = ContentModel(**{**content.FAST, "epochs": 1, "pairs_per_epoch": 500}).fit(data)
    model.save(tmp_path / "model")
    catalog = data.catalog.copy()
    extra = catalog.iloc[[0]].assign(item_id="brand-new", title="chef knife steel blade new")
    catalog = pd.concat([catalog, extra], ignore_index=True)
    got = rspark.spark_vectors(spark, tmp_path / "model", _frame(spark, catalog), partitions=1).toPandas()
    got = got.set_index("item_id").loc[catalog["item_id"]]
    expected = ContentModel.load(tmp_path / "model").embed(catalog)
    np.testing.assert_allclose(np.stack(got["vector"].to_numpy()), expected, atol=1e-5)


def test_spark_vectors_refuses_a_model_without_transform(spark: Any, serving: dict[str, Any]) -> None:
    from recsys.errors import RecsysError
    from recsys.registry import Registry

    folder = Registry(serving["root"]).run_dir(serving["runs"][0])
    with pytest.raises(RecsysError, match="no transform"):
        rspark.spark_vectors(spark, folder, _frame(spark, serving["catalog"]))
