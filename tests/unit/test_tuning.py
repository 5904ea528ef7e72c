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
    assert first["window"] == 1 and first["vectors"] == "auto", "the recommended settings are trial 0"
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
    seen = []
    meta = train_run(
        "prod2vec",
        {"workers": 1, "vector_size": 8},
        "grouped",
        tmp_path,
        tune={"budget_s": 120, "n_trials": 2, "sample": 0.5},
        progress=lambda done, total, message: seen.append((done, message)),
    )
    # the bar only moves forward: the search, then the refit, evaluation and saving
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == 1000
    assert any(m.startswith("tuning: 2 of 2 trials done") for _, m in seen)
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
    # saved without a label, it is named as a tuned run wherever a run is named
    from recsys.registry import Registry, run_label

    assert run_label(Registry(tmp_path).get(meta["run_id"])).startswith("prod2vec tuned · grouped · 20")
    with pytest.raises(Exception, match="tune supports"):
        train_run("cooccurrence", None, "grouped", tmp_path, tune={"budget_s": 5})


# -- per-family search spaces ---------------------------------------------------------------
def test_every_search_space_names_declared_params_and_starts_from_valid_settings():
    from recsys.models import get_model_class, validate_params
    from recsys.tuning import SEARCH_SPACES, TUNABLE, _start_point, search_space

    assert set(TUNABLE) == {"prod2vec", "meta_prod2vec", "content", "sknn", "vsknn", "item_knn"}
    for family, space in SEARCH_SPACES.items():
        specs = get_model_class(family).param_specs
        assert set(space) <= set(specs), family
        start = _start_point(family, space)
        validate_params(family, start)  # the first trial is a setting the family accepts
        for name, (kind, spec) in space.items():
            if kind == "categorical":
                for value in spec:
                    validate_params(family, {name: value})
            else:
                validate_params(family, {name: spec[0]})
                validate_params(family, {name: spec[1]})
    assert {"meta_category_level", "use_brand", "fill_from_metadata"} <= set(SEARCH_SPACES["meta_prod2vec"])
    assert "window" not in search_space("prod2vec", {"window": 3})
    with pytest.raises(Exception, match="tune supports"):
        search_space("popularity")


def test_meta_prod2vec_tuning_searches_its_metadata_tokens_and_reports_progress():
    data = grouped_dataset(n_sequences=200)
    train, _ = split(data, "time", test_fraction=0.2)
    messages = []
    result = tune(
        "meta_prod2vec",
        train,
        budget_s=120,
        n_trials=2,
        base_params={"workers": 1, "vector_size": 8, "epochs": 5},
        progress=lambda d, t, m: messages.append((d, t, m)),
    )
    assert "meta_category_level" in result["searched"] and "use_brand" in result["searched"]
    assert "epochs" not in result["searched"]
    assert [t["state"] for t in result["trials"]] == ["complete", "complete"]
    # progress says how many trials are done and the best validation score so far
    assert messages[-1][0] == messages[-1][1] == 1000
    best = max(t["value"] for t in result["trials"])
    assert (
        messages[-1][2].startswith("2 of 2 trials done")
        and f"best hr@20 {best:.4f} so far" in messages[-1][2]
    )
    assert result["mlflow"] is None  # tracking is off in the suite


@pytest.mark.parametrize("family", ["sknn", "vsknn"])
def test_session_knn_tuning_starts_from_the_defaults_and_keeps_the_best(family):
    from recsys.models import get_model_class, make_model

    data = grouped_dataset(n_sequences=300)
    train, _ = split(data, "time", test_fraction=0.2)
    result = tune(family, train, budget_s=120, n_trials=6)
    assert result["n_trials"] == 6 and "batch_size" not in result["searched"]
    assert {"k", "sample_size"} <= set(result["searched"])
    defaults = get_model_class(family).default_params
    assert result["trials"][0]["params"] == {n: defaults[n] for n in result["searched"]}
    assert result["start_value"] == result["trials"][0]["value"]
    assert result["best_value"] == max(t["value"] for t in result["trials"]) >= result["start_value"]
    # the trials really differ: the searched settings change what the model recommends
    assert len({tuple(sorted(t["params"].items())) for t in result["trials"]}) == 6
    make_model(family, **result["best_params"])  # the best is a setting the family accepts


@pytest.mark.slow  # TensorFlow's import and two fits: ~45 s on the shared machine
def test_content_tuning_runs_two_tiny_trials():
    pytest.importorskip("tensorflow")
    data = grouped_dataset(n_sequences=120)
    train, _ = split(data, "time", test_fraction=0.2)
    tiny = {"epochs": 1, "pairs_per_epoch": 500, "batch_size": 64, "workers": 1, "hidden_units": [16]}
    tiny.update({"title_dim": 16, "wide_dim": 8, "validation_share": 0.0, "holdout_share": 0.0})
    result = tune("content", train, budget_s=300, n_trials=2, base_params=tiny)
    assert result["n_trials"] == 2 and "epochs" not in result["searched"]
    assert {"embedding_dim", "learning_rate", "temperature"} <= set(result["searched"])
    assert all(0 <= t["value"] <= 1 for t in result["trials"])


def test_tuning_refuses_a_catalogue_only_dataset(tmp_path):
    from recsys.data.schema import Dataset, save_dataset
    from recsys.pipeline import train_run

    data = grouped_dataset(n_sequences=20)
    save_dataset(Dataset("cat_only", data.catalog, data.interactions.iloc[0:0]), tmp_path)
    with pytest.raises(Exception, match="no interactions"):
        train_run("content", {}, "cat_only", tmp_path, tune={"budget_s": 5})


# -- the one check and submit function ----------------------------------------------------------
def test_tune_request_checks_family_budget_trials_and_sample(tmp_path):
    from recsys.data.schema import save_dataset
    from recsys.jobs import JobParamError, JobStore, submit_tune, tune_request

    save_dataset(grouped_dataset(n_sequences=20), tmp_path)
    req = tune_request(
        "prod2vec", "grouped", {"workers": 1}, root=tmp_path, budget="2m", trials=3, sample=0.5
    )
    assert req.tune == {"budget_s": 120.0, "n_trials": 3, "sample": 0.5}
    assert req.job_params()["params"] == {"workers": 1}
    for kwargs, field in (
        ({"family": "popularity"}, "family"),
        ({"budget": "soon"}, "budget"),
        ({"budget": "-1m"}, "budget"),
        ({"trials": 0}, "trials"),
        ({"trials": 2.5}, "trials"),
        ({"sample": 1.5}, "sample"),
        ({"sample": "half"}, "sample"),
        ({"params": {"windw": 3}}, "params"),
    ):
        args = {"family": "prod2vec", "dataset": "grouped", **kwargs}
        with pytest.raises(JobParamError) as info:
            tune_request(args.pop("family"), args.pop("dataset"), root=tmp_path, **args)
        assert info.value.field == field, kwargs
    store = JobStore(tmp_path)
    job_id = submit_tune(store, "meta_prod2vec", "grouped", budget=30, trials=1, label="mine")
    job = store.get(job_id)
    assert job["kind"] == "tune" and job["label"] == "Tune meta_prod2vec on grouped"
    assert job["params"]["tune"] == {"budget_s": 30.0, "n_trials": 1, "sample": None}
    assert job["params"]["label"] == "mine" and job["params"]["dataset_name"] == "grouped"
    store.cancel(job_id)


def test_the_content_model_is_tuned_on_cold_targets_when_there_are_enough(monkeypatch):
    import numpy as np

    from recsys import tuning
    from recsys.data.synthetic import generate_demo
    from recsys.evaluation import build_session_cases, interaction_counts

    data = generate_demo(n_items=600, n_sequences=300, seed=1)  # a long tail: cold and warm targets
    fit_part, valid = split(data, "time", test_fraction=0.3)
    cases = build_session_cases(valid, "every_position", max_cases=None)
    same, what = tuning.objective_cases("prod2vec", fit_part, cases, data.catalog)
    assert same is cases and what == "every position"
    counts = interaction_counts(fit_part.interactions, cases[1])
    n_cold = int((counts < tuning.COLD_THRESHOLD).sum())
    assert 0 < n_cold < len(cases[1]), "the data must hold cold and warm targets"
    monkeypatch.setattr(tuning, "MIN_COLD_CASES", n_cold)
    (contexts, targets), what = tuning.objective_cases("content", fit_part, cases, data.catalog)
    assert len(targets) == len(contexts) == n_cold and "cold targets" in what
    assert (interaction_counts(fit_part.interactions, targets) < tuning.COLD_THRESHOLD).all()
    monkeypatch.setattr(tuning, "MIN_COLD_CASES", n_cold + 1)  # too few: every case, said so
    kept, what = tuning.objective_cases("content", fit_part, cases, data.catalog)
    assert len(kept[1]) == len(cases[1]) and what == "every position"
    assert np.array_equal(kept[1], cases[1])


# -- few trials: the portfolio first, a minimum count, the baselines' floor --------------------
def test_the_portfolio_follows_the_start_point_before_tpe_samples_anything():
    from recsys.tuning import PORTFOLIOS, _portfolio, _start_point, search_space

    assert len(PORTFOLIOS["prod2vec"]) >= 2, "a few strong settings come before TPE"
    data = grouped_dataset(n_sequences=200)
    train, _ = split(data, "time", test_fraction=0.2)
    fixed = {"workers": 1, "vector_size": 8, "epochs": 3}
    space = search_space("prod2vec", fixed)
    start = _start_point("prod2vec", space)
    portfolio = _portfolio("prod2vec", space, start)
    assert portfolio and all(set(p) == set(space) for p in portfolio)
    assert start not in portfolio and len({str(sorted(p.items())) for p in portfolio}) == len(portfolio)
    result = tune("prod2vec", train, budget_s=120, n_trials=len(portfolio) + 2, base_params=fixed)
    got = [t["params"] for t in result["trials"]]
    # trial 0 is the recommended settings, then the portfolio in its order, then TPE
    assert got[0] == start and got[1 : 1 + len(portfolio)] == portfolio
    assert result["portfolio"] == len(portfolio) and "epochs" not in got[1]
    # the portfolio's own values reach the trials (clipped into the space)
    for setting, trial in zip(PORTFOLIOS["prod2vec"], got[1:]):
        for name, value in setting.items():
            if name in space and space[name][0] != "categorical":
                lo, hi = space[name][1]
                assert trial[name] == pytest.approx(min(max(value, lo), hi)), name


def test_a_budget_spent_at_once_still_runs_the_start_point_and_the_portfolio_and_says_so(monkeypatch):
    from recsys import tuning
    from recsys.tuning import PORTFOLIOS

    data = grouped_dataset(n_sequences=200)
    train, _ = split(data, "time", test_fraction=0.2)
    fixed = {"workers": 1, "vector_size": 8, "epochs": 3}
    monkeypatch.setattr(tuning, "MAX_OVERRUN", 1e6)  # the forced trials may run far past 1 ms
    result = tune("prod2vec", train, budget_s=0.001, base_params=fixed, floor=False)
    assert result["n_trials"] == result["min_trials"] == 1 + len(PORTFOLIOS["prod2vec"])
    assert result["baselines"] == {}
    [note] = result["notes"]
    assert note.startswith("the budget (0.001 s) cut the search short") and "ran past the budget" in note
    # but not past MAX_OVERRUN budgets: a trial longer than that is the last one, and said so
    monkeypatch.setattr(tuning, "MAX_OVERRUN", 3.0)
    slow = tune("prod2vec", train, budget_s=0.001, base_params=fixed, floor=False)
    assert slow["n_trials"] == 1 and "0 of the portfolio's" in slow["notes"][0]
    # the caller's own minimum is kept whatever it costs
    asked = tune("prod2vec", train, budget_s=0.001, min_trials=2, base_params=fixed, floor=False)
    assert asked["n_trials"] == 2
    # --trials caps the minimum: one trial asked, one run, and no note about a cut budget
    one = tune("prod2vec", train, budget_s=0.001, n_trials=1, base_params=fixed, floor=False)
    assert one["n_trials"] == 1 and one["notes"] == []


def test_the_baselines_are_a_floor_a_run_names_when_one_beats_every_trial():
    from recsys.evaluation import build_session_cases, evaluate_sessions
    from recsys.fallback import FallbackChain
    from recsys.models import make_model

    data = grouped_dataset(n_sequences=300)
    train, _ = split(data, "time", test_fraction=0.2)
    # a Prod2Vec crippled by what the user fixed: two dimensions, one epoch, a tiny step
    crippled = {"workers": 1, "vector_size": 2, "epochs": 1, "alpha": 0.0005, "min_alpha": 0.0001}
    result = tune("prod2vec", train, budget_s=120, n_trials=2, base_params=crippled)
    base = result["baselines"]
    assert set(base) == {"cooccurrence", "item_knn"}
    # the floor is the baselines' own validation score on the trials' cases (same split, same chain)
    fit_part, valid = split(train, "time", test_fraction=0.1)
    cases = build_session_cases(valid, "every_position", max_cases=3000, seed=0)
    chain = FallbackChain().fit(fit_part, train.catalog)
    knn = make_model("item_knn").fit(fit_part)
    m = evaluate_sessions(
        knn, valid, k=20, exclude_seen=False, cases=cases, catalog=train.catalog, fallback=chain
    )
    assert base["item_knn"] == round(m["hr@20"], 4)
    assert max(base.values()) > result["best_value"], "the crippled model must lose to a baseline here"
    winner = max(base, key=base.get)
    assert any(n.startswith(f"{winner} beats every trial on validation") for n in result["notes"])
