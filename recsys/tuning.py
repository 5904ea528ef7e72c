"""Per-dataset tuning of the Prod2Vec family with Optuna's TPE sampler.

The search never sees the test split: the *training* part of a run is split again by
time (its latest sequences form a validation part), every trial is fitted on the rest
(optionally on a seeded sample of its sequences, for speed: published work on Word2Vec
for recommendation finds that tuning on a 10% sample keeps most of the gain) and scored
by next-item HR@K on the validation part (every position, the session's items allowed
again: :func:`recsys.evaluation.evaluate_sessions`). The fixed tuned settings are the
first trial, so the search can only keep or beat them on validation. The best setting is
then refitted on the whole training part by the caller (:func:`recsys.pipeline.train_run`).

Every trial is recorded (parameters, validation HR@K and MRR@K, seconds) in the run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from recsys.config import Progress, null_progress
from recsys.errors import ModelFitError

logger = logging.getLogger(__name__)

#: Families the tuner knows, and the parameters it searches (the rest keep the defaults).
TUNABLE = ("prod2vec", "meta_prod2vec")
SEARCH_SPACE: dict[str, tuple[str, Any]] = {
    "window": ("int_log", (1, 10)),
    "epochs": ("int_log", (5, 60)),
    "ns_exponent": ("float", (-0.5, 1.0)),
    "sample": ("float_log", (1e-5, 1e-2)),
    "negative": ("int", (3, 25)),
    "min_count": ("int", (1, 3)),
    "vector_size": ("categorical", (32, 64, 100, 128)),
    "vectors": ("categorical", ("input", "input+output", "in-out")),
}


def parse_budget(text: str | float | int) -> float:
    """Seconds of a budget written ``90``, ``90s``, ``10m`` or ``1h``; ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().lower()
        unit = {"s": 1, "m": 60, "h": 3600}.get(s[-1:], None)
        try:
            seconds = float(s[:-1]) * unit if unit else float(s)
        except ValueError:
            raise ValueError(f"budget must look like 90s, 10m or 1h, got {text!r}") from None
    if not seconds > 0:
        raise ValueError(f"budget must be > 0, got {text!r}")
    return seconds


def _suggest(trial: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (kind, spec) in SEARCH_SPACE.items():
        if kind == "int_log":
            out[name] = trial.suggest_int(name, *spec, log=True)
        elif kind == "int":
            out[name] = trial.suggest_int(name, *spec)
        elif kind == "float":
            out[name] = trial.suggest_float(name, *spec)
        elif kind == "float_log":
            out[name] = trial.suggest_float(name, *spec, log=True)
        else:
            out[name] = trial.suggest_categorical(name, list(spec))
    return out


def _start_point(family: str) -> dict[str, Any]:
    """The family's fixed tuned settings, clipped into the search space (the first trial)."""
    from recsys.models import get_model_class

    d = get_model_class(family).default_params
    start = {}
    for name, (kind, spec) in SEARCH_SPACE.items():
        v = d[name]
        if kind == "categorical":
            start[name] = v if v in spec else spec[0]
        elif kind.startswith("int"):
            start[name] = int(min(max(v, spec[0]), spec[1]))
        else:
            start[name] = float(min(max(v, spec[0]), spec[1]))
    return start


def sample_sequences(dataset: Any, fraction: float, seed: int = 0) -> Any:
    """A dataset keeping a seeded ``fraction`` of its sequences (whole)."""
    from recsys.data.schema import Dataset

    if not 0 < fraction <= 1:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    if fraction >= 1:
        return dataset
    seqs = dataset.interactions["sequence_id"].unique()
    rng = np.random.default_rng(seed)
    keep = rng.choice(seqs, size=max(1, int(round(fraction * len(seqs)))), replace=False)
    inter = dataset.interactions[dataset.interactions["sequence_id"].isin(keep)]
    return Dataset(
        f"{dataset.name}:sample", dataset.catalog, inter.reset_index(drop=True), dataset.report, dataset.kind
    )


def tune(
    family: str,
    train: Any,
    *,
    budget_s: float = 600.0,
    n_trials: int | None = None,
    sample: float | None = None,
    k: int = 20,
    validation_fraction: float = 0.1,
    max_cases: int = 3000,
    base_params: dict[str, Any] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Search ``family``'s settings on a time split carved from ``train``.

    Parameters
    ----------
    family : {"prod2vec", "meta_prod2vec"}
    train : Dataset
        The training part of the run (never its test part).
    budget_s : float
        Wall-clock budget; the trial running when it ends is finished.
    n_trials : int, optional
        Stop after this many trials (whichever comes first).
    sample : float, optional
        Fit trials on this seeded share of the fitting part's sequences (e.g. 0.1).
    k : int
        Cut-off of the validation metric (HR@K, every position).
    validation_fraction : float
        Share of the training sequences (the latest) held out for validation.
    max_cases : int
        Validation cases (seeded sample).
    base_params : dict, optional
        Parameters kept fixed (the user's), under the searched ones.

    Returns
    -------
    dict
        ``best_params`` (searched names only), ``best_value``, ``metric``, ``trials``
        (each ``{"number", "params", "value", "mrr", "seconds", "state"}``), ``budget_s``,
        ``n_trials``, ``sample``, ``validation`` (how the split was carved), ``seconds``.
    """
    import optuna

    from recsys.evaluation import build_session_cases, evaluate_sessions, split
    from recsys.models import make_model

    if family not in TUNABLE:
        raise ModelFitError(f"--tune supports {', '.join(TUNABLE)}, not {family!r}")
    progress = progress or null_progress
    started = time.perf_counter()
    fit_part, valid = split(train, "time", test_fraction=validation_fraction)
    if sample:
        fit_part = sample_sequences(fit_part, sample, seed)
    cases = build_session_cases(valid, "every_position", max_cases=max_cases, seed=seed)
    if not len(cases[1]):
        raise ModelFitError(f"tuning: the validation part of '{train.name}' has no next-item case")
    base = {**(base_params or {})}
    trials: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        t0 = time.perf_counter()
        searched = _suggest(trial)
        params = {**base, **searched}
        model = make_model(family, **params).fit(fit_part)
        m = evaluate_sessions(model, valid, k=k, exclude_seen=False, cases=cases, catalog=train.catalog)
        value = float(m[f"hr@{k}"])
        trials.append(
            {
                "number": trial.number,
                "params": searched,
                "value": value,
                "mrr": float(m[f"mrr@{k}"]),
                "seconds": round(time.perf_counter() - t0, 2),
                "state": "complete",
            }
        )
        done = time.perf_counter() - started
        progress(min(int(done), int(budget_s)), int(budget_s), f"trial {trial.number}: hr@{k}={value:.4f}")
        logger.info("tuning %s trial %d: hr@%d=%.4f %s", family, trial.number, k, value, searched)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(_start_point(family))
    study.optimize(objective, n_trials=n_trials, timeout=budget_s, catch=(ModelFitError,))
    complete = [t for t in trials if t["state"] == "complete"]
    if not complete:
        raise ModelFitError("tuning: no trial finished; raise the budget")
    best = max(complete, key=lambda t: (t["value"], -t["number"]))
    return {
        "family": family,
        "metric": f"hr@{k} (validation, every position)",
        "best_params": best["params"],
        "best_value": best["value"],
        "best_trial": best["number"],
        "start_value": complete[0]["value"] if complete[0]["number"] == 0 else None,
        "trials": trials,
        "n_trials": len(trials),
        "budget_s": float(budget_s),
        "sample": sample,
        "validation": {
            "split": "time, the latest sequences of the training part",
            "fraction": validation_fraction,
            "fit_sequences": int(fit_part.interactions["sequence_id"].nunique()),
            "validation_cases": int(len(cases[1])),
        },
        "sampler": f"optuna TPESampler(seed={seed})",
        "seconds": round(time.perf_counter() - started, 1),
    }
