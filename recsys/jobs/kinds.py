"""Job kinds: what a job runs, and the typed, validated way to submit a training job.

:data:`JOB_KINDS` maps a kind to ``"module:function"``, imported only inside
the job. The function is called as ``fn(**params, root=root, progress=progress)``
and returns a JSON-able result. The target is stored in ``job.json`` at submit
time, so kinds registered at run time (``JOB_KINDS["x"] = "pkg.mod:fn"``) work
in the job process too, provided the module is importable there.

:func:`submit_train` is the one way to queue a training job (the Runs page,
REST ``POST /api/v1/train``); :func:`train_request` is the check behind it,
also used by ``python -m recsys train`` before it trains in the foreground.
:func:`submit_tune` / :func:`tune_request` do the same for a tuning job (the
Runs page's Tune button, REST ``POST /api/v1/tune``, ``recsys tune`` and
``recsys train --tune``).
A bad family, parameter, dataset or label is refused at submit time, not
reported later by a failed job.

This module imports nothing of :mod:`recsys.jobs` (the store imports it).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from recsys.config import Progress
from recsys.errors import DatasetNotFoundError, JobError, RecsysError

if TYPE_CHECKING:
    from recsys.jobs.store import JobStore

logger = logging.getLogger(__name__)

#: kind -> "module:function"; resolved (imported) only inside the job process.
JOB_KINDS: dict[str, str] = {
    "demo": "recsys.pipeline:build_demo",
    # train_run, then the embedding run's UMAP map queued as a "project" job (as the demo does)
    "train": "recsys.pipeline:train_job",
    # a train run with a search first: recsys.tuning on a split carved from the training
    # part, the best setting refitted into a run (params carry ``tune``)
    "tune": "recsys.pipeline:train_job",
    "project": "recsys.projection:project_run",
    "import": "recsys.pipeline:import_job",
    "import_vectors": "recsys.external:import_vectors_job",
    # Which device deep models train on (imports TensorFlow, so never in the web process).
    "device": "recsys.jobs.kinds:probe_device",
    # Diagnostic kind: sleeps in steps and reports progress; used by the tests
    # and handy to check that a runner (process or Celery) works end to end.
    "sleep": "recsys.jobs.kinds:sleep",
}

#: Kinds that are housekeeping, not user work: job lists in the UI leave them out.
INTERNAL_KINDS = frozenset({"device"})

#: Slot classes: jobs of a class run at most N at a time per data directory, N read from the
#: environment variable named here (default 1). A UMAP fit uses every core, so several at once
#: only share them and none finishes early (see :func:`recsys.projection.umap_slot`).
SLOT_ENV: dict[str, str] = {"umap": "RECSYS_UMAP_SLOTS"}


def job_slot(kind: str, params: dict[str, Any]) -> str | None:
    """The slot class of a job (a key of :data:`SLOT_ENV`), or None when it is not limited.

    UMAP projections take the ``"umap"`` class (PCA ones take a fraction of a second and none).
    The diagnostic ``sleep`` kind takes the class named by its ``slot`` parameter, to check the
    queue end to end with real processes.
    """
    if kind == "project" and params.get("method", "umap") == "umap":
        return "umap"
    if kind == "sleep" and params.get("slot") in SLOT_ENV:
        return str(params["slot"])
    return None


def slot_limit(slot: str) -> int:
    """How many jobs of slot class ``slot`` may run at once (``$RECSYS_UMAP_SLOTS`` for "umap"; >= 1)."""
    try:
        return max(1, int(os.environ.get(SLOT_ENV.get(slot, ""), "1")))
    except ValueError:
        return 1


#: Where the ``device`` kind writes its answer, in the data directory.
DEVICE_FILE = "device.json"

SPLIT_METHODS = ("time", "leave_last_out", "cutoff", "last_days")
REPEATS = ("collapse", "keep")


class JobParamError(JobError, ValueError):
    """A job's parameters are refused at submit time; ``field`` names the bad one."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrainRequest:
    """The checked parameters of a ``train`` job (keyword arguments of :func:`recsys.pipeline.train_run`)."""

    family: str
    dataset_name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    split_method: str | None = None
    split_options: dict[str, Any] | None = None
    test_dataset: str | None = None
    repeats: str | None = None
    #: :func:`recsys.tuning.tune` settings (``budget_s``, ``n_trials``, ``sample``): search first
    tune: dict[str, Any] | None = None

    def job_params(self) -> dict[str, Any]:
        """The job's ``params`` (fields left at None are not sent: ``train_run``'s defaults apply)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def train_request(
    family: Any,
    dataset: Any,
    params: Any = None,
    *,
    root: str | os.PathLike[str] | None = None,
    label: Any = None,
    split_method: str | None = None,
    split_options: dict[str, Any] | None = None,
    test_dataset: str | None = None,
    repeats: str | None = None,
) -> TrainRequest:
    """Check a training request against the families and the stored datasets of ``root``.

    Raises
    ------
    JobParamError
        An unknown family, parameters that are not a mapping or that the
        family refuses (name, type, range), a label that is not a string, or
        an unknown split method or repeats mode (``field`` names which).
    DatasetNotFoundError
        ``dataset`` (or ``test_dataset``) is not stored in ``root``.
    """
    from recsys.data.schema import list_datasets
    from recsys.errors import ModelFitError
    from recsys.models import FAMILIES, validate_params

    if not isinstance(family, str):
        raise JobParamError(f"'family' must be one of: {', '.join(FAMILIES)}", "family")
    if family not in FAMILIES:
        raise JobParamError(
            f"unknown model family '{family}': 'family' must be one of: {', '.join(FAMILIES)}", "family"
        )
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise JobParamError("'params' must be a JSON object of model parameters", "params")
    try:
        validate_params(family, params)
    except ModelFitError as exc:
        raise JobParamError(str(exc), "params") from None
    from recsys.config import data_dir

    known = list_datasets(data_dir(root))
    for name in (dataset, test_dataset):
        if name is not None and (not isinstance(name, str) or name not in known):
            raise DatasetNotFoundError(f"dataset '{name}' not found (known: {', '.join(known) or 'none'})")
    if label is not None and not isinstance(label, str):
        raise JobParamError("'label' must be a string", "label")
    from recsys.registry import label_problem

    problem = label_problem(label, "'label'")
    if problem:
        raise JobParamError(problem, "label")
    if split_method is not None and split_method not in SPLIT_METHODS:
        raise JobParamError(f"'split_method' must be one of: {', '.join(SPLIT_METHODS)}", "split_method")
    if repeats is not None and repeats not in REPEATS:
        raise JobParamError(f"'repeats' must be one of: {', '.join(REPEATS)}", "repeats")
    if split_options is not None and not isinstance(split_options, dict):
        raise JobParamError("'split_options' must be a mapping", "split_options")
    return TrainRequest(
        family=family,
        dataset_name=dataset,
        params=dict(params),
        label=label,
        split_method=split_method,
        split_options=dict(split_options) if split_options else None,
        test_dataset=test_dataset,
        repeats=repeats,
    )


def submit_train(
    store: JobStore,
    family: Any,
    dataset: Any,
    params: Any = None,
    *,
    label: Any = None,
    job_label: str | None = None,
    split_method: str | None = None,
    split_options: dict[str, Any] | None = None,
    test_dataset: str | None = None,
    repeats: str | None = None,
) -> str:
    """Check a training request (:func:`train_request`) and queue it as a ``train`` job; return its id.

    ``label`` is the run's label; ``job_label`` the job's (default "Train <family> on <dataset>").
    """
    request = train_request(
        family,
        dataset,
        params,
        root=store.root,
        label=label,
        split_method=split_method,
        split_options=split_options,
        test_dataset=test_dataset,
        repeats=repeats,
    )
    return store.submit("train", request.job_params(), label=job_label or f"Train {family} on {dataset}")


def tune_request(
    family: Any,
    dataset: Any,
    params: Any = None,
    *,
    root: str | os.PathLike[str] | None = None,
    budget: Any = "10m",
    trials: Any = None,
    sample: Any = None,
    min_trials: Any = None,
    **train_fields: Any,
) -> TrainRequest:
    """Check a tuning request: :func:`train_request`'s checks, a tunable family and the search's budget.

    Parameters
    ----------
    budget : str or number
        Wall-clock budget of the search (``90s``, ``10m``, ``1h`` or seconds).
    trials : int, optional
        At most this many trials (>= 1).
    sample : float, optional
        Fit trials on this share of the sequences, in (0, 1].
    min_trials : int, optional
        At least this many trials even past the budget (>= 1; default: the tuner's own,
        the start point and its portfolio, :data:`recsys.tuning.PORTFOLIOS`).
    train_fields
        ``label``, ``split_method``, ``split_options``, ``test_dataset``, ``repeats``.

    Raises
    ------
    JobParamError
        A family the tuner does not search (``field="family"``), a bad budget,
        trials or sample; and everything :func:`train_request` refuses.
    """
    from recsys.tuning import TUNABLE, parse_budget

    if isinstance(family, str) and family not in TUNABLE:
        raise JobParamError(f"'family' must be one the tuner searches: {', '.join(TUNABLE)}", "family")
    request = train_request(family, dataset, params, root=root, **train_fields)
    _check_tunable_dataset(dataset, root)
    try:
        budget_s = parse_budget(budget)
    except ValueError as exc:
        raise JobParamError(f"'budget': {exc}", "budget") from None
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise JobParamError(f"'trials' must be an integer >= 1, got {trials!r}", "trials")
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 < sample <= 1
    ):
        raise JobParamError(f"'sample' must be a share in (0, 1], got {sample!r}", "sample")
    tune = {"budget_s": budget_s, "n_trials": trials, "sample": None if sample is None else float(sample)}
    if min_trials is not None:
        if isinstance(min_trials, bool) or not isinstance(min_trials, int) or min_trials < 1:
            raise JobParamError(f"'min_trials' must be an integer >= 1, got {min_trials!r}", "min_trials")
        tune["min_trials"] = min_trials
    return replace(request, tune=tune)


def _check_tunable_dataset(dataset: str, root: str | os.PathLike[str] | None) -> None:
    """Refuse a catalogue-only dataset before a job starts: the search needs interactions to
    carve its validation split from. The Runs page said "Tuning started" for prod2vec on
    BigBasket, and the job failed seconds later with this reason (s44's walk)."""
    from recsys.config import data_dir
    from recsys.data.schema import dataset_meta

    try:
        summary = dataset_meta(dataset, data_dir(root)).get("summary") or {}
    except (OSError, RecsysError):
        return  # unreadable here: the job says what is wrong
    if summary.get("interactions") == 0:
        raise JobParamError(
            f"cannot tune on '{dataset}': it has no interactions to carve a validation split from "
            "(a catalogue alone: train content or tfidf on it, with the recommended settings)",
            "dataset",
        )


def submit_tune(
    store: JobStore,
    family: Any,
    dataset: Any,
    params: Any = None,
    *,
    budget: Any = "10m",
    trials: Any = None,
    sample: Any = None,
    min_trials: Any = None,
    job_label: str | None = None,
    **train_fields: Any,
) -> str:
    """Check a tuning request (:func:`tune_request`) and queue it as a ``tune`` job; return its id.

    The job searches the family's settings on a split carved from the training part
    (:func:`recsys.tuning.tune`), then trains the best into a run (:func:`recsys.pipeline.train_run`)
    whose run.json keeps every trial under ``tuning``.
    """
    request = tune_request(
        family,
        dataset,
        params,
        root=store.root,
        budget=budget,
        trials=trials,
        sample=sample,
        min_trials=min_trials,
        **train_fields,
    )
    return store.submit("tune", request.job_params(), label=job_label or f"Tune {family} on {dataset}")


# -- kinds defined here ------------------------------------------------------------
def probe_device(root: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Job kind ``"device"``: write :func:`recsys.models._keras_utils.device_info` to ``<root>/device.json``."""
    from recsys._io import atomic_write_json
    from recsys.config import data_dir
    from recsys.models._keras_utils import device_info

    info = device_info()
    atomic_write_json(data_dir(root) / DEVICE_FILE, info, "the device probe's answer")
    return info


def sleep(
    seconds: float = 1.0,
    steps: int = 10,
    fail: bool = False,
    slot: str | None = None,
    root: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Diagnostic job kind ``"sleep"``: sleep in ``steps`` steps, reporting progress.

    With ``fail=True`` it raises half way, to check error reporting. ``slot`` (e.g. "umap")
    makes the job store queue it in that slot class (:func:`job_slot`); the job itself ignores it.
    """
    steps = max(int(steps), 1)
    for i in range(steps):
        if fail and i == steps // 2:
            raise JobError(f"sleep job asked to fail at step {i + 1} of {steps}")
        time.sleep(float(seconds) / steps)
        if progress is not None:
            progress(i + 1, steps, f"step {i + 1}/{steps}")
    logger.info("slept %.2f s in %d steps", seconds, steps)
    return {"slept": float(seconds), "steps": steps, "pid": os.getpid()}
