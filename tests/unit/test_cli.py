"""The command line, end to end on a small demo: what an analyst types and reads."""

from __future__ import annotations

import json

import pytest

from recsys.__main__ import main
from recsys.registry import Registry


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "data"
    rc = main(
        ["--data-dir", str(root), "-q", "demo", "--items", "1000", "--families", "popularity", "cooccurrence"]
    )
    assert rc == 0
    return root


def test_demo_stores_dataset_and_evaluated_active_runs(demo_dir, capsys):
    runs = Registry(demo_dir).list_runs()
    assert sorted(r["family"] for r in runs) == ["cooccurrence", "popularity"]
    assert all(r["active"] for r in runs)
    from recsys.filters import PresetStore

    presets = {p["name"] for p in PresetStore(demo_dir).list()}
    assert presets == {"same-category", "same-category-and-price"}
    assert PresetStore(demo_dir).load("same-category").same_category
    by_family = {r["family"]: r for r in runs}
    # the baseline every model must beat is beaten by co-occurrence on the demo shop
    assert by_family["cooccurrence"]["metrics"]["hr@10"] > 2 * by_family["popularity"]["metrics"]["hr@10"]
    assert main(["--data-dir", str(demo_dir), "runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "cooccurrence" in out and "popularity" in out and "hr@10" in out


def test_train_with_params_and_show(demo_dir, capsys):
    rc = main(
        [
            "--data-dir",
            str(demo_dir),
            "-q",
            "train",
            "prod2vec",
            "--param",
            "epochs=2",
            "vector_size=16",
            "--label",
            "tiny p2v",
        ]
    )
    assert rc == 0
    run = Registry(demo_dir).list_runs("prod2vec")[0]
    assert run["params"]["epochs"] == 2 and run["params"]["vector_size"] == 16
    assert run["label"] == "tiny p2v"
    assert (demo_dir / "runs" / run["run_id"] / "index.bin").exists()
    # the recommended vector space is chosen on a split of the training part: said and recorded
    c = run["auto_choice"]
    assert run["params"]["vectors"] == "auto" and c["chosen"] in c["validation"] and c["cases"] > 0
    assert max(v["hr@20"] for v in c["validation"].values()) == c["validation"][c["chosen"]]["hr@20"]
    out = capsys.readouterr().out
    assert f"vectors=auto chose {c['chosen']} on {c['cases']} validation cases" in out, out
    assert main(["--data-dir", str(demo_dir), "runs", "show", run["run_id"]]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == run["run_id"]
    # runs list names each run's dataset and label: the name a user gave is how they find it (s41-w)
    assert main(["--data-dir", str(demo_dir), "runs", "list"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(run["run_id"]))
    assert line.endswith("  demo / tiny p2v"), line
    # a run saved without a label is named as the pages name it, not by its run id again
    from recsys.registry import run_label

    assert main(["--data-dir", str(demo_dir), "-q", "train", "popularity"]) == 0
    bare = next(r for r in Registry(demo_dir).list_runs("popularity") if r["label"] == r["run_id"])
    capsys.readouterr()
    assert main(["--data-dir", str(demo_dir), "runs", "list"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(bare["run_id"]))
    assert line.endswith(f"  demo / {run_label(bare)}") and "popularity · demo · 20" in line, line


def test_bad_parameter_is_a_clear_error_not_a_traceback(demo_dir, capsys):
    rc = main(["--data-dir", str(demo_dir), "-q", "train", "prod2vec", "--param", "window=0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "window" in err and "Traceback" not in err


def test_unknown_run_and_family(demo_dir, capsys):
    assert main(["--data-dir", str(demo_dir), "runs", "show", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--data-dir", str(demo_dir), "-q", "train", "word2vec"]) == 2
    assert "unknown model family 'word2vec'" in capsys.readouterr().err


def test_import_csv_with_missing_column_names_the_file_and_column(tmp_path, capsys):
    bad = tmp_path / "events.csv"
    bad.write_text("visit,thing\ns1,p1\ns1,p2\n")  # names that mean no field
    rc = main(["--data-dir", str(tmp_path / "d"), "import", "csv", str(bad), "--name", "mine"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "events.csv" in err and "sequence_id" in err
    assert not (tmp_path / "d" / "datasets" / "mine").exists()
    # with a mapping the same file imports
    rc = main(
        [
            "--data-dir",
            str(tmp_path / "d"),
            "import",
            "csv",
            str(bad),
            "--name",
            "mine",
            "--map",
            "visit=sequence_id",
            "thing=item_id",
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["summary"]["sequences"] == 1


@pytest.mark.parametrize(
    "argv,option",
    [
        (["train", "popularity", "--k", "0"], "--k"),
        (["evaluate", "some-run", "--k", "-1"], "--k"),
        (["evaluate", "some-run", "--max-cases", "0"], "--max-cases"),
        (["demo", "--items", "50"], "--items"),
        (["check", "--run", "some-run", "--k", "0"], "--k"),
    ],
)
def test_out_of_range_numbers_are_usage_errors_not_tracebacks(tmp_path, capsys, argv, option):
    with pytest.raises(SystemExit) as exc:
        main(["--data-dir", str(tmp_path), "-q", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "must be at least" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["csv", "EVENTS", "--name", "../outside"], "'../outside' is not allowed"),
        (["online_retail", "EVENTS", "--map", "session=sequence_id"], "only applies to source 'csv'"),
    ],
)
def test_bad_import_options_are_clear_errors_not_tracebacks(tmp_path, capsys, argv, expected):
    events = tmp_path / "events.csv"
    events.write_text("sequence_id,item_id\ns1,p1\ns1,p2\n")
    argv = [str(events) if a == "EVENTS" else a for a in argv]
    rc = main(["--data-dir", str(tmp_path / "d"), "-q", "import", *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and expected in err
    assert not (tmp_path / "outside").exists()


def test_tune_in_the_foreground_and_as_a_background_job(demo_dir, capsys):
    from recsys.jobs import JobStore

    base = ["--data-dir", str(demo_dir), "-q"]
    assert main([*base, "tune", "prod2vec", "--budget", "soon"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main([*base, "tune", "cooccurrence"]) == 2
    assert "prod2vec, meta_prod2vec, content" in capsys.readouterr().err
    params = ["--param", "vector_size=8", "workers=1", "epochs=3"]
    assert (
        main([*base, "tune", "prod2vec", *params, "--trials", "2", "--tune-sample", "0.5", "--label", "t"])
        == 0
    )
    out = capsys.readouterr().out
    assert "2 trials" in out and "validation cases carved from the training part" in out
    (run,) = [r for r in Registry(demo_dir).list_runs() if r.get("label") == "t"]
    assert run["tuning"]["n_trials"] == 2 and run["tuning"]["sample"] == 0.5
    # the session kNN baselines are tuned the same way (`recsys train sknn --tune`)
    assert main([*base, "train", "sknn", "--tune", "--trials", "2", "--label", "s"]) == 0
    assert "2 trials" in capsys.readouterr().out
    (run,) = [r for r in Registry(demo_dir).list_runs() if r.get("label") == "s"]
    assert run["family"] == "sknn" and run["tuning"]["n_trials"] == 2
    assert set(run["tuning"]["best_params"]) == {"k", "sample_size", "similarity"}
    assert main([*base, "tune", "meta_prod2vec", "--background", "--trials", "3", "--budget", "90s"]) == 0
    assert "tuning job" in capsys.readouterr().out
    store = JobStore(demo_dir)
    (job,) = store.list_jobs(kind="tune")
    assert job["params"]["family"] == "meta_prod2vec"
    assert job["params"]["tune"] == {"budget_s": 90.0, "n_trials": 3, "sample": None}
    store.cancel(job["job_id"])


def test_tune_runs_its_minimum_trials_past_a_short_budget_and_says_the_search_was_cut(demo_dir, capsys):
    from recsys.jobs import JobStore

    base = ["--data-dir", str(demo_dir), "-q"]
    params = ["--param", "vector_size=8", "workers=1", "epochs=3"]
    argv = [*base, "tune", "prod2vec", *params, "--budget", "1s", "--min-trials", "3", "--label", "m"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 trials" in out and "note: the budget (1 s) cut the search short: 3 trials" in out
    (run,) = [r for r in Registry(demo_dir).list_runs() if r.get("label") == "m"]
    assert run["tuning"]["n_trials"] == 3 and run["tuning"]["notes"][0].startswith("the budget (1 s)")
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "tune", "prod2vec", "--min-trials", "0"])
    assert exit_info.value.code == 2 and "--min-trials: must be at least 1" in capsys.readouterr().err
    assert main([*base, "tune", "prod2vec", "--background", "--min-trials", "4", "--budget", "90s"]) == 0
    job_id = capsys.readouterr().out.split("tuning job ")[1].split()[0]
    store = JobStore(demo_dir)
    job = store.get(job_id)
    assert job["params"]["tune"] == {"budget_s": 90.0, "n_trials": None, "sample": None, "min_trials": 4}
    store.cancel(job["job_id"])


def test_content_trains_on_a_catalogue_only_export_and_says_how(tmp_path, capsys):
    """A Myntra-like export: titles, brands, genders, prices; no interactions, no category."""
    rows = ["Product_ID,Product_Name,Product_Brand,Gender,Price"]
    kinds = [("Slim Fit Jeans", "Men"), ("Floral Print Kurta", "Women"), ("Running Shoes", "Men")]
    for i in range(36):
        name, gender = kinds[i % 3]
        rows.append(f"{1000 + i},Brand{i % 4} {gender} {name} {i},Brand{i % 4},{gender},{500 + 10 * i}")
    (tmp_path / "catalog.csv").write_text("\n".join(rows) + "\n")
    root = str(tmp_path / "d")
    argv = ["--data-dir", root, "-q", "import", "csv", "--catalog", str(tmp_path / "catalog.csv")]
    argv += ["--name", "shop", "--map", "Product_ID=item_id", "Product_Name=title", "Product_Brand=brand"]
    assert main(argv + ["Gender=gender", "Price=price"]) == 0
    small = ["epochs=1", "vector_size=8", "embedding_dim=8", "fasttext_epochs=2", "pairs_per_epoch=500"]
    capsys.readouterr()
    assert main(["--data-dir", root, "train", "content", "--dataset", "shop", "--param", *small]) == 0
    out = capsys.readouterr().out
    assert "note: catalogue only" in out and "title TF-IDF neighbour pairs" in out
    run = Registry(root).list_runs("content")[0]
    pairs = run["coverage"]["training_pairs"]
    # no category column: the type read off the titles (Jeans, Kurta, Shoes) gives same-category pairs
    assert pairs["cooccurrence"] == 0 and pairs["category"] >= 36 and pairs["title"] == 0
