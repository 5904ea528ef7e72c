"""A run with Prod2Vec's recommended settings (``vectors="auto"``) fits Word2Vec twice: the
choice's fit on the validation carve (which also gives the run's validation score) and the
fit on the whole training part. It used to fit four times (the validation score fitted the
same carve again, choosing the space again inside it)."""

from __future__ import annotations

import pytest
from gensim.models import Word2Vec
from test_model_contract import grouped_dataset

from recsys.data.schema import load_dataset, save_dataset
from recsys.evaluation import split
from recsys.pipeline import train_run, validation_metrics

#: the recommended settings, made small; one worker and a seed make gensim bit-reproducible
SMALL = {"workers": 1, "seed": 3, "vector_size": 16, "epochs": 8}


@pytest.fixture()
def root(tmp_path):
    save_dataset(grouped_dataset(n_sequences=400, seq_len=5), tmp_path)
    return tmp_path


def _counting_fits(monkeypatch) -> list[int]:
    """Count gensim's real ``Word2Vec.train`` calls (the real method runs)."""
    calls: list[int] = []
    real = Word2Vec.train

    def train(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Word2Vec, "train", train)
    return calls


@pytest.mark.parametrize("family", ["prod2vec", "meta_prod2vec"])
def test_a_recommended_run_fits_word2vec_twice_and_scores_validation_on_the_choices_fit(
    family, root, monkeypatch
):
    fits = _counting_fits(monkeypatch)
    bar: list[str] = []
    meta = train_run(
        family, dict(SMALL), "grouped", root, max_cases=300, progress=lambda d, t, msg: bar.append(msg)
    )
    assert len(fits) == 2, f"{len(fits)} Word2Vec fits for one run"
    assert meta["params"]["vectors"] == "auto"
    c = meta["auto_choice"]
    v = meta["metrics"]["validation"]
    assert v["n_cases"] > 0 and "choice's fit" in v["fit"]
    assert any("validation score" in m and "choice's fit" in m for m in bar), "the job card says so"

    # the same score as a fresh fit of the chosen setting on the same carve (the path before)
    fits.clear()
    dataset = load_dataset("grouped", root)
    train, _ = split(dataset, "time", test_fraction=0.1)  # the run's training part
    chosen = {**SMALL, "vectors": c["chosen"].split(",")[0], **c.get("settings", {})}
    fresh = validation_metrics(family, chosen, train, dataset, k=10, max_cases=300)
    assert len(fits) == 1
    for key in ("hr@10", "hr@10_ci", "ndcg@10", "n_cases", "no_recommendation_share"):
        assert v[key] == fresh[key], (key, v[key], fresh[key])


def test_a_fixed_space_still_fits_the_validation_carve_itself(root, monkeypatch):
    fits = _counting_fits(monkeypatch)
    meta = train_run("prod2vec", {**SMALL, "vectors": "input"}, "grouped", root, max_cases=300)
    assert len(fits) == 2  # the run's fit, the validation carve's fit
    assert "auto_choice" not in meta and "fit" not in meta["metrics"]["validation"]
    assert meta["metrics"]["validation"]["n_cases"] > 0


def test_the_job_card_says_when_the_fallback_chain_is_fitted(root):
    """After the model's last epoch the fallback chain is fitted (minutes on a big catalogue): the
    card says so, in the run's fit and in its validation fit, instead of keeping "epoch 8/8"."""
    bar: list[str] = []
    train_run(
        "prod2vec",
        {**SMALL, "vectors": "input"},
        "grouped",
        root,
        max_cases=300,
        progress=lambda d, t, msg: bar.append(msg),
    )
    said = [i for i, m in enumerate(bar) if "fitting the fallback chain" in m]
    assert len(said) == 2, bar  # the run's fit, then the validation carve's
    epochs = [i for i, m in enumerate(bar) if "epoch" in m]
    assert (
        epochs[0]
        < said[0]
        < next(i for i, m in enumerate(bar) if m.startswith("evaluating") or ": evaluating" in m)
    )
    assert "validation score" in bar[said[1]]
