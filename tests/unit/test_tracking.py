"""MLflow tracking against a real SQLite store in a temporary folder, read back with mlflow.search_runs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from recsys.data.schema import save_dataset
from recsys.registry import Registry

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, demo_small):
    """A data dir with tracking on (default store) and one tiny Prod2Vec run trained into it."""
    from recsys.pipeline import train_run

    mp = pytest.MonkeyPatch()
    mp.setenv("RECSYS_MLFLOW", "on")
    mp.delenv("RECSYS_MLFLOW_URI", raising=False)
    mp.delenv("RECSYS_MLFLOW_EXPERIMENT", raising=False)
    root = tmp_path_factory.mktemp("mlflow") / "data"
    save_dataset(demo_small, root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)  # what mlflow.search_runs reads
    meta = train_run(
        "prod2vec", {"epochs": 1, "vector_size": 8, "workers": 1}, "demo", root, label="tiny", max_cases=200
    )
    yield {"root": root, "meta": meta, "uri": uri, "mp": mp}
    mp.undo()


def runs_df(**kw):
    return mlflow.search_runs(experiment_names=["recsys-lab/demo"], **kw)


def test_a_training_run_is_logged_with_params_metrics_intervals_timings_and_tags(tracked):
    meta, root = tracked["meta"], tracked["root"]
    assert (root / "mlflow.db").exists()
    assert meta["mlflow"]["uri"] == tracked["uri"]
    assert Registry(root).get(meta["run_id"])["mlflow"]["run_id"] == meta["mlflow"]["run_id"]
    df = runs_df(filter_string=f"tags.`recsys.run_id` = '{meta['run_id']}'")
    assert len(df) == 1
    row = df.iloc[0]
    assert row["run_id"] == meta["mlflow"]["run_id"] and row["status"] == "FINISHED"
    assert (
        row["params.family"] == "prod2vec"
        and row["params.vector_size"] == "8"
        and row["params.epochs"] == "1"
    )
    assert row["params.split.method"] == "time"
    assert row["tags.recsys.dataset_fingerprint"] == meta["dataset"]["fingerprint"]
    assert row["tags.recsys.family"] == "prod2vec" and row["tags.mlflow.runName"] == "tiny"
    assert row["tags.recsys.run_dir"] == str(root / "runs" / meta["run_id"])
    hr = meta["metrics"]["hr@10"]
    assert row["metrics.hr_at_10"] == pytest.approx(hr)
    assert row["metrics.hr_at_10_ci_low"] <= hr <= row["metrics.hr_at_10_ci_high"]
    assert row["metrics.hr_at_10_ci_high"] - row["metrics.hr_at_10_ci_low"] > 0
    assert row["metrics.time_fit_s"] == pytest.approx(meta["timings"]["fit_s"])
    assert row["artifact_uri"].startswith((root / "mlflow-artifacts").as_uri())
    client = mlflow.tracking.MlflowClient()
    assert [a.path for a in client.list_artifacts(row["run_id"])] == ["run.json"]


def test_a_sweep_is_one_parent_with_one_child_per_trial(tracked):
    from recsys.tracking import sweep

    root = tracked["root"]
    with sweep(
        "p2v window sweep", dataset="demo", root=root, params={"n_trials": 3, "objective": "ndcg@10"}
    ) as sw:
        for i, window in enumerate((2, 4, 8)):
            sw.log_trial(
                {"window": window, "ns_exponent": -0.5},
                {"ndcg@10": 0.1 * (i + 1), "n_cases": 100},
                trial=i,
                state="FAILED" if window == 8 else "FINISHED",
            )
        sw.log_best({"window": 4}, {"ndcg@10": 0.2})
    parent = runs_df(filter_string="tags.`recsys.kind` = 'sweep'")
    assert len(parent) == 1 and parent.iloc[0]["status"] == "FINISHED"
    assert parent.iloc[0]["params.best.window"] == "4" and parent.iloc[0]["metrics.trials"] == 3
    pid = parent.iloc[0]["run_id"]
    children = runs_df(filter_string=f"tags.mlflow.parentRunId = '{pid}'").sort_values("tags.recsys.trial")
    assert children["params.window"].tolist() == ["2", "4", "8"]
    assert children["metrics.ndcg_at_10"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert children["status"].tolist() == ["FINISHED", "FINISHED", "FAILED"]


def test_a_failing_sweep_marks_its_parent_failed(tracked):
    from recsys.tracking import sweep

    with pytest.raises(RuntimeError, match="boom"):
        with sweep("broken sweep", dataset="demo", root=tracked["root"]) as sw:
            sw.log_trial({"window": 1}, {"hr@10": 0.0})
            raise RuntimeError("boom")
    df = runs_df(filter_string="tags.mlflow.runName = 'broken sweep'")
    assert df.iloc[0]["status"] == "FAILED"


def test_train_run_as_a_sweep_child_and_evaluation_logging(tracked, capsys):
    from recsys.__main__ import main
    from recsys.pipeline import train_run
    from recsys.tracking import sweep

    root = tracked["root"]
    with sweep("popularity sweep", dataset="demo", root=root) as sw:
        meta = train_run("popularity", {}, "demo", root, max_cases=100, tracking_parent=sw.parent_id)
    child = runs_df(filter_string=f"tags.`recsys.run_id` = '{meta['run_id']}'")
    assert child.iloc[0]["tags.mlflow.parentRunId"] == sw.parent_id
    # trained without a label: MLflow names it as the pages do ("popularity · demo · date"),
    # not by its run id
    from recsys.registry import run_label

    name = run_label(meta)
    assert name.startswith("popularity · demo · 20") and child.iloc[0]["tags.mlflow.runName"] == name
    assert main(["--data-dir", str(root), "evaluate", meta["run_id"], "--max-cases", "50"]) == 0
    capsys.readouterr()
    evals = runs_df(filter_string=f"tags.mlflow.parentRunId = '{meta['mlflow']['run_id']}'")
    assert len(evals) == 1 and evals.iloc[0]["tags.recsys.kind"] == "evaluation"
    assert evals.iloc[0]["tags.mlflow.runName"] == f"{name} · evaluation"
    assert "metrics.hr_at_10" in evals.columns and not np.isnan(evals.iloc[0]["metrics.hr_at_10"])


def test_an_import_is_logged_with_its_provenance(tracked, tmp_path):
    from recsys.external import import_vectors

    root = tracked["root"]
    model = Registry(root).load_model(tracked["meta"]["run_id"])
    np.save(tmp_path / "v.npy", model.vectors_)
    np.save(tmp_path / "ids.npy", np.asarray(model.item_ids_, dtype=str))
    run = import_vectors(
        "demo", "outside", tmp_path / "v.npy", ids=tmp_path / "ids.npy", root=root, evaluate=False
    )["run"]
    df = runs_df(filter_string=f"tags.`recsys.run_id` = '{run['run_id']}'")
    assert df.iloc[0]["params.family"] == "external" and df.iloc[0]["params.import.format"] == "npy"
    assert df.iloc[0]["params.metric"] == "cosine"


def test_run_link_needs_a_ui_url(tracked, monkeypatch):
    from recsys.tracking import run_link

    meta = Registry(tracked["root"]).get(tracked["meta"]["run_id"])
    monkeypatch.delenv("RECSYS_MLFLOW_UI", raising=False)
    assert run_link(meta) is None
    monkeypatch.setenv("RECSYS_MLFLOW_UI", "http://mlflow.local:5000/")
    m = meta["mlflow"]
    assert run_link(meta) == f"http://mlflow.local:5000/#/experiments/{m['experiment_id']}/runs/{m['run_id']}"
    monkeypatch.setenv("RECSYS_MLFLOW_UI", "javascript:alert(1)")
    assert run_link(meta) is None


def test_off_logs_nothing_and_a_broken_store_never_fails_training(
    tmp_data_dir, demo_small, monkeypatch, caplog, tmp_path
):
    from recsys.pipeline import train_run

    save_dataset(demo_small, tmp_data_dir)
    monkeypatch.setenv("RECSYS_MLFLOW", "off")
    meta = train_run("popularity", {}, "demo", tmp_data_dir, max_cases=50)
    assert "mlflow" not in meta and not (tmp_data_dir / "mlflow.db").exists()

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("RECSYS_MLFLOW", "on")
    monkeypatch.setenv("RECSYS_MLFLOW_URI", f"sqlite:///{blocker}/mlflow.db")
    with caplog.at_level(logging.WARNING, logger="recsys.tracking"):
        meta = train_run("popularity", {}, "demo", tmp_data_dir, max_cases=50)
    assert Registry(tmp_data_dir).get(meta["run_id"])["status"] == "complete" and "mlflow" not in meta
    assert any("MLflow tracking failed" in r.message for r in caplog.records)


def test_uri_override_logs_to_the_team_store(tmp_data_dir, demo_small, monkeypatch, tmp_path):
    from recsys.pipeline import train_run

    save_dataset(demo_small, tmp_data_dir)
    team = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setenv("RECSYS_MLFLOW", "on")
    monkeypatch.setenv("RECSYS_MLFLOW_URI", team)
    monkeypatch.setenv("RECSYS_MLFLOW_EXPERIMENT", "shop-recs")
    meta = train_run("popularity", {}, "demo", tmp_data_dir, max_cases=50)
    assert meta["mlflow"]["uri"] == team and not (tmp_data_dir / "mlflow.db").exists()
    assert (tmp_path / "mlflow-artifacts").is_dir() and not Path("mlruns").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team)
    df = mlflow.search_runs(experiment_names=["shop-recs"])
    assert df["tags.recsys.run_id"].tolist() == [meta["run_id"]]
    assert json.loads(json.dumps(meta["mlflow"]))["experiment_id"] == df.iloc[0]["experiment_id"]


def test_a_tuning_sweep_logs_one_child_per_trial_and_the_refitted_run(tracked):
    """recsys.tuning logs every trial (params, validation metric) under one parent run."""
    from recsys.pipeline import train_run

    root = tracked["root"]
    meta = train_run(
        "prod2vec",
        {"workers": 1, "vector_size": 8},
        "demo",
        root,
        max_cases=100,
        tune={"budget_s": 120, "n_trials": 2},
    )
    t = meta["tuning"]
    pid = t["mlflow"]["sweep_run_id"]
    parent = runs_df(filter_string=f"attributes.run_id = '{pid}'")
    assert len(parent) == 1 and parent.iloc[0]["status"] == "FINISHED"
    row = parent.iloc[0]
    assert row["tags.recsys.kind"] == "sweep" and row["tags.recsys.family"] == "prod2vec"
    assert row["metrics.trials"] == 2 and row["metrics.best_hr_at_20"] == pytest.approx(t["best_value"])
    for name, value in t["best_params"].items():
        assert row[f"params.best.{name}"] == str(value), name
    children = runs_df(filter_string=f"tags.mlflow.parentRunId = '{pid}'")
    trials = children[children["tags.recsys.kind"] == "trial"].sort_values("tags.recsys.trial")
    assert trials["tags.recsys.trial"].tolist() == ["0", "1"]
    for (_, child), trial in zip(trials.iterrows(), t["trials"]):
        assert child["metrics.hr_at_20"] == pytest.approx(trial["value"])
        assert child["metrics.mrr_at_20"] == pytest.approx(trial["mrr"])
        assert child["params.window"] == str(trial["params"]["window"])
        assert child["params.vectors"] == trial["params"]["vectors"]
        assert "params.vector_size" not in child or child.isna()["params.vector_size"]  # fixed, not searched
    # the best setting refitted on the whole training part is the sweep's last child
    (refit,) = children[children["tags.recsys.run_id"] == meta["run_id"]]["run_id"].tolist()
    assert refit == meta["mlflow"]["run_id"]
