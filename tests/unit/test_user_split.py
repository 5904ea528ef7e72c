"""Evaluation on the user's own split: a given test dataset, split options, repeats, intervals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.__main__ import main
from recsys.data.schema import Dataset, load_dataset, save_dataset
from recsys.evaluation import build_cases, confidence_interval, split
from recsys.registry import Registry


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The small demo shop, and its time split stored as two datasets "tr" and "te"."""
    from recsys.data.synthetic import generate_demo

    root = tmp_path_factory.mktemp("usersplit") / "data"
    demo = generate_demo(n_items=1000, seed=0)
    save_dataset(demo, root)
    train, test = split(demo, "time", test_fraction=0.1)
    for name, part in (("tr", train), ("te", test)):
        save_dataset(Dataset(name, part.catalog, part.interactions, kind=part.kind), root)
    return root


def cli(root, capsys, *argv):
    rc = main(["--data-dir", str(root), "-q", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_on_one_dataset_and_test_on_another(root, capsys):
    rc, out, err = cli(root, capsys, "train", "cooccurrence", "--dataset", "tr", "--test-dataset", "te")
    assert rc == 0, err
    run = Registry(root).list_runs("cooccurrence")[0]
    m = run["metrics"]
    assert run["split"]["method"] == "given" and run["split"]["test_dataset"] == "te"
    # every case scored: all consecutive distinct pairs of the test sessions
    seeds, _ = build_cases(load_dataset("te", root), max_cases=None)
    assert m["n_cases"] == len(seeds) and m["protocol"]["sampled"] is False
    lo, hi = m["ci95"]["hr@10"]
    assert lo < m["hr@10"] < hi
    assert hi - lo == pytest.approx(
        2 * 1.96 * np.sqrt(m["hr@10"] * (1 - m["hr@10"]) / m["n_cases"]), rel=0.05
    )
    assert "95% interval" in out and f"cases: {m['n_cases']:,}" in out

    # the same run evaluated on the same test set gives the same figures
    rc, out, err = cli(root, capsys, "evaluate", "--run", run["run_id"], "--test", "te", "--json")
    assert rc == 0, err
    again = json.loads(out)
    assert again["hr@10"] == m["hr@10"] and again["n_cases"] == m["n_cases"]
    assert again["unknown_test_items"] == 0


def test_unknown_test_items_and_seeds_without_recommendations_are_counted(root, tmp_path, capsys):
    te = load_dataset("te", root).interactions
    sessions = te["sequence_id"].unique()[:40]
    rows = te[te["sequence_id"].isin(sessions)][["sequence_id", "item_id"]].copy()
    new = pd.DataFrame(
        {"sequence_id": ["n1", "n1", "n2", "n2"], "item_id": ["NEW-1", "NEW-2", "NEW-3", "NEW-1"]}
    )
    path = tmp_path / "new test.csv"
    pd.concat([rows, new]).to_csv(path, index=False)
    rc, _, err = cli(root, capsys, "import", "csv", str(path), "--name", "te_new")
    assert rc == 0, err
    run_id = Registry(root).list_runs("cooccurrence")[0]["run_id"]
    rc, out, err = cli(root, capsys, "evaluate", run_id, "--test", "te_new", "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["unknown_test_items"] == 3
    # NEW-1 and NEW-3 seed cases: the model cannot know them; the run's fallback chain
    # (issue 13) serves them with the training part's most popular items, and says so
    assert m["model_no_recommendation_share"] * m["n_cases"] >= 2
    assert m["seeds_without_recs"] == 0 and m["fallback_steps"].get("popular", 0) > 0
    assert any("fewer than 500" in w for w in m["warnings"])
    rc, out, _ = cli(root, capsys, "evaluate", run_id, "--test", "te_new")
    assert "test items unknown to the training set: 3 of" in out and "warning: only" in out


def test_split_options_on_the_command_line(root, capsys):
    demo = load_dataset("demo", root)
    ts = demo.interactions["timestamp"]
    cutoff = str((ts.min() + (ts.max() - ts.min()) * 0.8).date())
    rc, _, err = cli(
        root, capsys, "train", "popularity", "--dataset", "demo", "--split", "cutoff", "--cutoff", cutoff
    )
    assert rc == 0, err
    (run,) = [r for r in Registry(root).list_runs("popularity") if r["split"]["method"] == "cutoff"]
    assert run["split"]["cutoff"] == cutoff
    train, test = split(demo, "cutoff", cutoff=cutoff)
    starts = test.interactions.groupby("sequence_id")["timestamp"].min()
    assert (starts >= pd.Timestamp(cutoff)).all()
    assert (train.interactions.groupby("sequence_id")["timestamp"].min() < pd.Timestamp(cutoff)).all()
    # re-evaluating without options uses the run's own split
    rc, out, err = cli(root, capsys, "evaluate", run["run_id"], "--json")
    assert rc == 0, err
    assert json.loads(out)["n_cases"] == run["metrics"]["n_cases"]

    rc, _, err = cli(
        root, capsys, "train", "popularity", "--dataset", "demo", "--split", "last-days", "--days", "3"
    )
    assert rc == 0, err
    # runs made in the same second tie on "created": find the new run by its split
    last_days = [r for r in Registry(root).list_runs("popularity") if "test_days" in r["split"]]
    assert [r["split"]["test_days"] for r in last_days] == [3]

    for argv, words in (
        (["--split", "last-days"], "--split last-days needs --days N"),
        (["--split", "cutoff"], "--split cutoff needs --cutoff DATE"),
        (["--split", "time", "--cutoff", "2024-01-01"], "--cutoff goes with --split cutoff"),
        (["--split", "cutoff", "--cutoff", "1990-01-01"], "leaves an empty training set"),
        (["--split", "cutoff", "--cutoff", "someday"], "--cutoff 'someday' is not a date"),
    ):
        rc, _, err = cli(root, capsys, "train", "popularity", "--dataset", "demo", *argv)
        assert rc == 2 and words in err and "Traceback" not in err, err


def test_repeats_keep_or_collapse():
    inter = pd.DataFrame(
        {
            "sequence_id": ["s"] * 4,
            "user_id": "",
            "item_id": ["A", "A", "B", "B"],
            "timestamp": pd.NaT,
            "event_type": "view",
            "quantity": 1.0,
            "position": range(4),
        }
    )
    ds = Dataset("r", pd.DataFrame({"item_id": ["A", "B"]}), inter)
    seeds, targets = build_cases(ds, max_cases=None)
    assert list(seeds) == ["A"] and [list(t) for t in targets] == [["B"]]
    seeds, targets = build_cases(ds, max_cases=None, repeats="keep")
    assert list(seeds) == ["A", "A", "B"] and [t[0] for t in targets] == ["A", "B", "B"]


def test_confidence_interval():
    lo, hi = confidence_interval(np.array([1.0] * 30 + [0.0] * 70), binary=True)
    assert lo < 0.3 < hi and 0.21 < lo < 0.22 and 0.39 < hi < 0.40  # Wilson, n=100, p=0.3
    assert confidence_interval(np.array([2.0, 2.0, 2.0])) == [2.0, 2.0]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--test-fraction", "1.5"], "--test-fraction: must be between 0 and 1"),
        (["--test-fraction", "half"], "--test-fraction: 'half' is not a number"),
        (["--split", "last-days", "--days", "-2"], "--days: must be above 0"),
        (["--split", "sometimes"], "invalid choice"),
    ],
)
def test_bad_split_values_are_usage_errors(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        main(["--data-dir", str(tmp_path), "-q", "train", "popularity", *argv])
    assert exc.value.code == 2 and words in capsys.readouterr().err
