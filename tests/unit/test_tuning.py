"""Per-dataset tuning: Optuna TPE on a split carved from the training part only."""

from __future__ import annotations

import pytest
from test_model_contract import grouped_dataset

from recsys.evaluation import split
from recsys.tuning import SEARCH_SPACE, parse_budget, tune


def test_parse_budget():
    assert parse_budget("10m") == 600 and parse_budget("90s") == 90 and parse_budget("1h") == 3600
    assert parse_budget(45) == 45
    for bad in ("soon", "-5m", "0"):
        with pytest.raises(ValueError, match="budget"):
            parse_budget(bad)


def test_tune_records_every_trial_and_never_sees_the_test_split():
    data = grouped_dataset(n_sequences=200)
    train, test = split(data, "time", test_fraction=0.2)
    result = tune("prod2vec", train, budget_s=120, n_trials=3, base_params={"workers": 1, "vector_size": 8})
    assert result["n_trials"] == len(result["trials"]) == 3
    first = result["trials"][0]["params"]
    assert first["window"] == 1 and first["vectors"] == "in-out", "the fixed tuned settings are trial 0"
    # what the user fixed (vector_size) is kept in every trial and left out of the search
    assert result["searched"] == [n for n in SEARCH_SPACE if n != "vector_size"]
    for t in result["trials"]:
        assert set(t["params"]) == set(result["searched"]) and 0 <= t["value"] <= 1 and t["seconds"] >= 0
    assert result["best_value"] == max(t["value"] for t in result["trials"])
    n_train = train.interactions["sequence_id"].nunique()
    v = result["validation"]
    assert v["fit_sequences"] < n_train and v["validation_cases"] > 0
    # the validation cases come from the latest training sequences, none from the test part
    assert test.interactions["timestamp"].min() > train.interactions["timestamp"].max()


def test_train_run_with_tune_refits_the_best_and_records_the_search(tmp_path):
    from recsys.data.schema import save_dataset
    from recsys.pipeline import train_run

    save_dataset(grouped_dataset(n_sequences=200), tmp_path)
    meta = train_run(
        "prod2vec",
        {"workers": 1, "vector_size": 8},
        "grouped",
        tmp_path,
        tune={"budget_s": 120, "n_trials": 2, "sample": 0.5},
    )
    t = meta["tuning"]
    assert t["n_trials"] == 2 and t["sample"] == 0.5
    for name, value in t["best_params"].items():
        assert meta["params"][name] == value, name
    assert meta["params"]["workers"] == 1 and "tune_s" in meta["timings"]
    m = meta["metrics"]
    # the run says what share of test seeds the fallback served and what share got nothing
    assert 0 <= m["fallback_share"] <= 1 and m["no_recommendation_share"] == 0
    assert m["hr@10_ci"][0] <= m["hr@10"] <= m["hr@10_ci"][1]
    # recent views, both ways, and a validation score carved from the training part
    rv = m["recent_views"]
    assert rv["exclude_seen"]["exclude_seen"] is True and rv["include_seen"]["exclude_seen"] is False
    assert rv["exclude_seen"]["n_cases"] == rv["include_seen"]["n_cases"] > 0
    assert 0 < m["validation"]["n_cases"] and "hr@10" in m["validation"]
    with pytest.raises(Exception, match="tune supports"):
        train_run("cooccurrence", None, "grouped", tmp_path, tune={"budget_s": 5})
