"""Per-dataset tuning of a model family with Optuna's TPE sampler.

The search never sees the test split: the *training* part of a run is split again by
time (its latest sequences form a validation part), every trial is fitted on the rest
(optionally on a seeded sample of its sequences, for speed: published work on Word2Vec
for recommendation finds that tuning on a 10% sample keeps most of the gain) and scored
by next-item HR@K on the validation part (every position, the session's items allowed
again: :func:`recsys.evaluation.evaluate_sessions`). The family's recommended settings
are the first trial, so the search can only keep or beat them on validation. The best
setting is then refitted on the whole training part by the caller
(:func:`recsys.pipeline.train_run`; the ``tune`` job kind of :mod:`recsys.jobs.kinds`).

The content model is scored on the validation cases whose target is cold in the fitting
part, when there are enough (:func:`objective_cases`). Each tunable family declares its search space in :data:`SEARCH_SPACES` (name ->
``(kind, spec)``, every name a parameter the family declares in its ``param_specs``);
parameters the user fixed are left out of the search.

Every trial is recorded (parameters, validation HR@K and MRR@K, seconds) in the run, and
the sweep is one MLflow parent run with one child per trial
(:func:`recsys.tracking.sweep`; nothing is logged when tracking is off).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from recsys.config import Progress, null_progress
from recsys.errors import ModelFitError

logger = logging.getLogger(__name__)

#: Prod2Vec: the word2vec settings that matter on session data, and the vector space.
PROD2VEC_SPACE: dict[str, tuple[str, Any]] = {
    "window": ("int_log", (1, 10)),
    "epochs": ("int_log", (5, 60)),
    "ns_exponent": ("float", (-0.5, 1.0)),
    "sample": ("float_log", (1e-5, 1e-2)),
    "negative": ("int", (3, 25)),
    "min_count": ("int", (1, 3)),
    "vector_size": ("categorical", (32, 64, 100, 128)),
    # "auto" (the recommended default: the best of the three on a split carved from the
    # trial's own fitting data) keeps the first trial the family's recommended settings
    "vectors": ("categorical", ("auto", "input", "input+output", "in-out")),
}

#: The search space of each tunable family (kinds: int, int_log, float, float_log, categorical).
SEARCH_SPACES: dict[str, dict[str, tuple[str, Any]]] = {
    "prod2vec": PROD2VEC_SPACE,
    # Meta-Prod2Vec: Prod2Vec's, plus how coarse the category token is and the brand token
    # (on a thin catalogue a coarse category makes many items share one vector), and whether
    # items with no vector of their own get their tokens' mean (on dunnhumby those 79% of the
    # catalogue crowd every list; vectors="auto" weighs it too)
    "meta_prod2vec": {
        **PROD2VEC_SPACE,
        "meta_category_level": ("categorical", (None, 0, 1)),
        "use_brand": ("categorical", (True, False)),
        "fill_from_metadata": ("categorical", (True, False)),
    },
    # content (two-tower over the catalogue): the training settings, not the feature set
    "content": {
        "embedding_dim": ("categorical", (32, 64, 128)),
        "epochs": ("int", (2, 8)),
        "learning_rate": ("float_log", (3e-4, 1e-2)),
        "dropout": ("float", (0.0, 0.3)),
        "temperature": ("float_log", (0.02, 0.2)),
        "window": ("int", (1, 5)),
        "hard_negatives": ("int", (0, 3)),
    },
}

#: Session kNN (session-rec's sknn / vsknn): how many neighbours vote, among how many recent
#: candidate sessions (0 = all), the similarity, and for vsknn the position weighting, the
#: vote decay and the idf weight of the items voted for (Ludewig & Jannach 2018 tune the
#: same names per dataset). Item kNN: its shrinkage and the balance of the two supports.
SESSION_KNN_SPACE: dict[str, tuple[str, Any]] = {
    "k": ("int_log", (20, 1500)),
    "sample_size": ("categorical", (250, 500, 1000, 2500, 5000, 0)),
}
SEARCH_SPACES["sknn"] = {**SESSION_KNN_SPACE, "similarity": ("categorical", ("cosine", "jaccard"))}
SEARCH_SPACES["vsknn"] = {
    **SESSION_KNN_SPACE,
    "weighting": ("categorical", ("div", "linear", "quadratic", "log", "same")),
    "weighting_score": ("categorical", ("div", "linear", "quadratic", "same")),
    "idf_weighting": ("categorical", (0.0, 1.0, 2.0, 5.0, 10.0)),
}
SEARCH_SPACES["item_knn"] = {
    "lmbd": ("categorical", (0.0, 5.0, 20.0, 50.0, 100.0)),
    "alpha": ("float", (0.0, 1.0)),
}

#: The first trials after the family's recommended settings (trial 0), before TPE samples
#: anything: a small fixed portfolio of settings that were strong on the validation splits
#: of several datasets (``bench/tune_trials.py --dump-trials``; Caselles-Dupre et al. 2018
#: find ns_exponent, window, sample and epochs matter most for word2vec on sessions). On a
#: loaded machine a short budget runs only a handful of trials, too few for TPE (its first
#: 10 are random): the portfolio gives those few trials settings that hold across datasets.
#: Names a family does not search (fixed by the user) are dropped; missing names take the
#: start point's value; each setting is clipped into the space.
PORTFOLIOS: dict[str, list[dict[str, Any]]] = {
    "prod2vec": [
        # a wider context, a gensim-like exponent, little sub-sampling, few epochs (the demo's
        # best trials: window 3-5, ns_exponent 0.3-0.7, sample 2e-3 to 7e-3, 12-16 epochs)
        {"window": 4, "epochs": 15, "ns_exponent": 0.5, "sample": 5e-3, "negative": 10},
        # a negative exponent: rare items drawn as negatives more often (Caselles-Dupre et al.)
        {"window": 1, "epochs": 50, "ns_exponent": -0.3, "sample": 3e-4, "negative": 20},
        # more epochs and negatives, stronger sub-sampling (REES46's best: window 1-2, 45-55 epochs);
        # last: on the datasets the portfolio was not read from it lost to the start point on
        # validation on the three basket datasets (Online Retail, Instacart, dunnhumby: 0.34 /
        # 0.04 / 0.015 against 0.36 / 0.08 / 0.04) and won only on Taobao's clicks (0.201 against
        # 0.191; s34-t), so where the budget cuts the portfolio short the other two run first
        {"window": 2, "epochs": 50, "ns_exponent": 0.5, "sample": 2e-4, "negative": 20},
    ],
}
PORTFOLIOS["meta_prod2vec"] = PORTFOLIOS["prod2vec"]
#: Families whose validation score is compared with the simple baselines' (co-occurrence and
#: item_knn, fitted on the same fitting part and scored on the same cases): the run records
#: them and says so when a baseline beats every trial (then the baseline is the better
#: choice on this dataset, and the recommended variant must not be the tuned model).
FLOOR_BASELINES: dict[str, dict[str, Any]] = {
    "cooccurrence": {"similarity": "jaccard"},
    "item_knn": {},
}
FLOORED = frozenset({"prod2vec", "meta_prod2vec"})
#: The start point and the portfolio run past the budget, but not past this multiple of it:
#: where one trial alone takes longer (Instacart's 50k-item catalogue on a loaded machine: 600 s
#: for the start point against a 60 s budget) the search stops there and says so.
MAX_OVERRUN = 3.0
#: TPE's random start (optuna's ``n_startup_trials`` default): a search that ends before the
#: start point, the portfolio and this many sampled trials is noted as cut short.
TPE_STARTUP = 10

#: Families the tuner knows.
TUNABLE = tuple(SEARCH_SPACES)
#: Families scored on the validation cases whose target is cold in the fitting part (fewer
#: than :data:`COLD_THRESHOLD` interactions): the content model is there for items with
#: little history, so its settings are chosen where it matters (the issue's target is
#: content >= 1.2x tfidf on cold items). With fewer than :data:`MIN_COLD_CASES` such cases
#: every case is used instead (the result's ``objective`` says which).
COLD_OBJECTIVE = frozenset({"content"})
COLD_THRESHOLD = 3
MIN_COLD_CASES = 100
#: Prod2Vec's space (the name earlier code imports).
SEARCH_SPACE = PROD2VEC_SPACE


def search_space(family: str, fixed: Any = ()) -> dict[str, tuple[str, Any]]:
    """The parameters searched for ``family``: its space less the ones in ``fixed``."""
    if family not in SEARCH_SPACES:
        raise ModelFitError(f"--tune supports {', '.join(TUNABLE)}, not {family!r}")
    return {k: v for k, v in SEARCH_SPACES[family].items() if k not in set(fixed)}


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


def _suggest(trial: Any, space: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (kind, spec) in space.items():
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


def _start_point(family: str, space: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The family's recommended settings, clipped into the search space (the first trial)."""
    from recsys.models import get_model_class

    d = get_model_class(family).default_params
    start = {}
    for name, (kind, spec) in space.items():
        v = d[name]
        if kind == "categorical":
            start[name] = v if v in spec else spec[0]
        elif kind.startswith("int"):
            start[name] = int(min(max(v, spec[0]), spec[1]))
        else:
            start[name] = float(min(max(v, spec[0]), spec[1]))
    return start


def _portfolio(family: str, space: dict[str, tuple[str, Any]], start: dict[str, Any]) -> list[dict[str, Any]]:
    """The family's :data:`PORTFOLIOS` settings as full trials of ``space`` (clipped, deduplicated)."""
    out: list[dict[str, Any]] = []
    seen = [start]
    for setting in PORTFOLIOS.get(family, ()):
        trial = dict(start)
        for name, v in setting.items():
            if name not in space:
                continue
            kind, spec = space[name]
            if kind == "categorical":
                trial[name] = v if v in spec else start[name]
            elif kind.startswith("int"):
                trial[name] = int(min(max(v, spec[0]), spec[1]))
            else:
                trial[name] = float(min(max(v, spec[0]), spec[1]))
        if trial not in seen:
            seen.append(trial)
            out.append(trial)
    return out


def _floor(fit_part: Any, valid: Any, cases: Any, catalog: Any, chain: Any, k: int) -> dict[str, float]:
    """Validation HR@K of the simple baselines (:data:`FLOOR_BASELINES`) on the trials' cases."""
    from recsys.evaluation import evaluate_sessions
    from recsys.models import make_model

    out = {}
    for family, params in FLOOR_BASELINES.items():
        try:
            model = make_model(family, **params).fit(fit_part)
        except ModelFitError as exc:  # a baseline that cannot fit here is no floor
            logger.warning("tuning floor: %s did not fit: %s", family, exc)
            continue
        m = evaluate_sessions(
            model, valid, k=k, exclude_seen=False, cases=cases, catalog=catalog, fallback=chain
        )
        out[family] = float(m[f"hr@{k}"])
    return out


def search_notes(
    result: dict[str, Any], *, budget_s: float, n_trials: int | None, min_trials: int
) -> list[str]:
    """What a reader of the run must know about how the search went, in sentences."""
    notes = []
    done = result["n_trials"]
    fixed = 1 + result["portfolio"]
    if n_trials is None and done < fixed + TPE_STARTUP:
        sampled = max(done - fixed, 0)
        over = result["seconds"] > budget_s and done <= min_trials
        notes.append(
            f"the budget ({budget_s:g} s) cut the search short: {done} trials, the recommended settings "
            f"and {min(done, fixed) - 1} of the portfolio's {result['portfolio']}, then {sampled} sampled "
            f"(TPE's first {TPE_STARTUP} are random)"
            + (f"; the first {done} ran past the budget ({result['seconds']:g} s)" if over else "")
            + "; raise --budget or set --trials (or --min-trials) for a fuller search"
        )
    floor = result.get("baselines") or {}
    if floor:
        best_base = max(floor, key=lambda f: floor[f])
        if floor[best_base] > result["best_value"]:
            notes.append(
                f"{best_base} beats every trial on validation ({floor[best_base]:.4f} against "
                f"{result['best_value']:.4f}): it is the better choice on this dataset"
            )
    return notes


def objective_cases(
    family: str, fit_part: Any, cases: tuple[list[list[str]], Any], catalog: Any
) -> tuple[Any, str]:
    """The validation cases a family is scored on, and what they are in words.

    Families in :data:`COLD_OBJECTIVE` keep the cases whose target has fewer than
    :data:`COLD_THRESHOLD` interactions in ``fit_part`` when there are at least
    :data:`MIN_COLD_CASES` of them; every other family (or too few cold cases) keeps all.
    """
    from recsys.evaluation import cold_items

    if family in COLD_OBJECTIVE:
        cold = cold_items(fit_part, COLD_THRESHOLD, catalog=catalog["item_id"].astype(str))
        keep = np.isin(np.asarray(cases[1], dtype=str), cold)
        if int(keep.sum()) >= MIN_COLD_CASES:
            kept = ([c for c, m in zip(cases[0], keep) if m], np.asarray(cases[1])[keep])
            return kept, f"cold targets (< {COLD_THRESHOLD} interactions in the fitting part)"
    return cases, "every position"


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
    min_trials: int | None = None,
    sample: float | None = None,
    floor: bool = True,
    k: int = 20,
    validation_fraction: float = 0.1,
    max_cases: int = 3000,
    base_params: dict[str, Any] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    root: Any = None,
    dataset_name: str | None = None,
) -> dict[str, Any]:
    """Search ``family``'s settings on a time split carved from ``train``.

    Parameters
    ----------
    family : {"prod2vec", "meta_prod2vec", "content", "sknn", "vsknn", "item_knn"}
        A key of :data:`SEARCH_SPACES`.
    train : Dataset
        The training part of the run (never its test part).
    budget_s : float
        Wall-clock budget; the trial running when it ends is finished.
    n_trials : int, optional
        Stop after this many trials (whichever comes first).
    min_trials : int, optional
        Run at least this many trials even when the budget is spent; ``n_trials`` caps it.
        Default: the start point and the family's portfolio (:data:`PORTFOLIOS`), none
        started after :data:`MAX_OVERRUN` times the budget. The result's ``notes`` say when
        the budget cut the search short.
    sample : float, optional
        Fit trials on this seeded share of the fitting part's sequences (e.g. 0.1).
    floor : bool
        Prod2Vec-family: also score co-occurrence and item_knn on the same validation
        cases (``baselines``), and note when one beats every trial.
    k : int
        Cut-off of the validation metric (HR@K, every position).
    validation_fraction : float
        Share of the training sequences (the latest) held out for validation.
    max_cases : int
        Validation cases (seeded sample).
    base_params : dict, optional
        Parameters the user fixed: kept in every trial and left out of the search.
    progress : callable, optional
        ``progress(done, total, message)``; the message says how many trials are done
        and the best validation score so far.
    root : path-like, optional
        The data directory (its MLflow store, :mod:`recsys.tracking`).
    dataset_name : str, optional
        The dataset's name in MLflow (default ``train.name``).

    Returns
    -------
    dict
        ``best_params`` (searched names only), ``best_value``, ``metric``, ``trials``
        (each ``{"number", "params", "value", "mrr", "seconds", "state"}``), ``budget_s``,
        ``n_trials``, ``sample``, ``validation`` (how the split was carved), ``seconds``,
        ``searched`` (the names searched), ``portfolio`` (how many portfolio settings followed
        the start point), ``baselines`` (the floor's validation scores, or {}), ``notes``
        (sentences: a search cut short, a baseline above every trial) and ``mlflow`` (the
        sweep's parent run id, or None).
    """
    import optuna

    from recsys import tracking
    from recsys.evaluation import build_session_cases, evaluate_sessions, split
    from recsys.models import make_model

    base = {**(base_params or {})}
    space = search_space(family, base)
    if not space:
        raise ModelFitError(f"tuning {family}: every searched parameter is fixed; nothing to tune")
    progress = progress or null_progress
    started = time.perf_counter()
    if train.interactions is None or not len(train.interactions):
        raise ModelFitError(
            f"tuning needs interactions to carve a validation split from; '{train.name}' has none"
        )
    fit_part, valid = split(train, "time", test_fraction=validation_fraction)
    if sample:
        fit_part = sample_sequences(fit_part, sample, seed)
    cases = build_session_cases(valid, "every_position", max_cases=max_cases, seed=seed)
    n_cases = int(len(cases[1]))
    if not n_cases:
        raise ModelFitError(f"tuning: the validation part of '{train.name}' has no next-item case")
    cases, objective_on = objective_cases(family, fit_part, cases, train.catalog)
    n_cases = int(len(cases[1]))
    # the lists are scored as a run serves them: completed by its fallback chain (recsys.fallback),
    # so a setting that drops items (min_count) is judged on what its seeds are actually shown
    from recsys.fallback import FallbackChain

    chain = FallbackChain().fit(fit_part, train.catalog)
    metric = f"hr@{k}"
    trials: list[dict[str, Any]] = []
    validation = {
        "split": "time, the latest sequences of the training part",
        "fraction": validation_fraction,
        "fit_sequences": int(fit_part.interactions["sequence_id"].nunique()),
        "validation_cases": n_cases,
        "objective": objective_on,
    }

    def report(number: int) -> None:
        complete = [t for t in trials if t["state"] == "complete"]
        done_s = time.perf_counter() - started
        share = done_s / budget_s
        if n_trials:
            share = max(share, len(trials) / n_trials)
        of = f" of {n_trials}" if n_trials else ""
        best = (
            f"best {metric} {max(t['value'] for t in complete):.4f} so far" if complete else "none scored yet"
        )
        progress(int(1000 * min(share, 1.0)), 1000, f"{len(trials)}{of} trials done (trial {number}); {best}")

    def objective(trial: Any) -> float:
        t0 = time.perf_counter()
        searched = _suggest(trial, space)
        params = {**base, **searched}
        try:
            model = make_model(family, **params).fit(fit_part)
        except ModelFitError as exc:
            seconds = round(time.perf_counter() - t0, 2)
            trials.append(
                {
                    "number": trial.number,
                    "params": searched,
                    "value": None,
                    "mrr": None,
                    "seconds": seconds,
                    "state": "failed",
                    "error": str(exc)[:300],
                }
            )
            sw.log_trial(searched, None, trial=trial.number, timings={"trial_s": seconds}, state="FAILED")
            report(trial.number)
            raise
        m = evaluate_sessions(
            model, valid, k=k, exclude_seen=False, cases=cases, catalog=train.catalog, fallback=chain
        )
        value = float(m[metric])
        seconds = round(time.perf_counter() - t0, 2)
        trials.append(
            {
                "number": trial.number,
                "params": searched,
                "value": value,
                "mrr": float(m[f"mrr@{k}"]),
                "seconds": seconds,
                "state": "complete",
            }
        )
        sw.log_trial(
            searched,
            {metric: value, f"mrr@{k}": float(m[f"mrr@{k}"]), "n_cases": n_cases},
            trial=trial.number,
            timings={"trial_s": seconds},
        )
        report(trial.number)
        logger.info("tuning %s trial %d: %s=%.4f %s", family, trial.number, metric, value, searched)
        return value

    name = dataset_name or train.name
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start = _start_point(family, space)
    portfolio = _portfolio(family, space, start)
    for setting in (start, *portfolio):
        study.enqueue_trial(setting)
    first = 1 + len(portfolio) if min_trials is None else max(int(min_trials), 1)
    if n_trials:
        first = min(first, n_trials)
    baselines = _floor(fit_part, valid, cases, train.catalog, chain, k) if floor and family in FLOORED else {}
    sweep_params = {
        "family": family,
        "budget_s": float(budget_s),
        "n_trials": n_trials,
        "sample": sample,
        "metric": f"{metric} (validation, {objective_on})",
        "validation": validation,
        "fixed": base,
    }
    tags = {"recsys.family": family, "recsys.kind": "sweep"}
    with tracking.sweep(
        f"tune {family} on {name}", dataset=name, root=root, params=sweep_params, tags=tags
    ) as sw:
        # the start point and the portfolio run whatever the budget (a loaded machine must not
        # cut them); TPE then gets what is left of it
        # (up to MAX_OVERRUN times the budget, unless the caller set min_trials)
        cap = None if min_trials is not None else MAX_OVERRUN * budget_s
        study.optimize(objective, n_trials=first, timeout=cap, catch=(ModelFitError,))
        left = budget_s - (time.perf_counter() - started)
        more = None if n_trials is None else n_trials - len(trials)
        if left > 0 and (more is None or more > 0):
            study.optimize(objective, n_trials=more, timeout=left, catch=(ModelFitError,))
        complete = [t for t in trials if t["state"] == "complete"]
        if not complete:
            errors = "; ".join(sorted({t.get("error", "") for t in trials}))[:500]
            raise ModelFitError(f"tuning: no trial finished; raise the budget ({errors or 'no error'})")
        best = max(complete, key=lambda t: (t["value"], -t["number"]))
        sw.log_best(best["params"], {metric: best["value"], "n_cases": n_cases})
    result = {
        "family": family,
        "metric": f"{metric} (validation, {objective_on})",
        "best_params": best["params"],
        "best_value": best["value"],
        "best_trial": best["number"],
        "start_value": complete[0]["value"] if complete[0]["number"] == 0 else None,
        "trials": trials,
        "n_trials": len(trials),
        "searched": list(space),
        "budget_s": float(budget_s),
        "sample": sample,
        "validation": validation,
        "sampler": f"optuna TPESampler(seed={seed})",
        "mlflow": {"sweep_run_id": sw.parent_id} if sw.parent_id else None,
        "seconds": round(time.perf_counter() - started, 1),
        "portfolio": len(portfolio),
        "min_trials": first,
        "baselines": {f: round(v, 4) for f, v in baselines.items()},
    }
    result["notes"] = search_notes(result, budget_s=budget_s, n_trials=n_trials, min_trials=first)
    for note in result["notes"]:
        logger.warning("tuning %s on %s: %s", family, name, note)
    return result
