"""MLflow tracking of every training run, import, evaluation and tuning sweep.

By default each run is logged to an embedded SQLite store in the data
directory, so ``mlflow ui --backend-store-uri sqlite:///<data dir>/mlflow.db``
shows every run and sweep with no server. Settings (environment):

``RECSYS_MLFLOW_URI``
    A tracking URI to log to instead (a team's server, ``http://mlflow:5000``).
``RECSYS_MLFLOW=off``
    Disables tracking.
``RECSYS_MLFLOW_EXPERIMENT``
    The experiment name (default ``recsys-lab/<dataset>``: one experiment per
    dataset, so runs on the same data sit side by side).
``RECSYS_MLFLOW_UI``
    The base URL of an MLflow UI (``http://localhost:5000``): the Runs page then
    links each run to its MLflow entry (:func:`run_link`).

What is logged per run: the model parameters (and split, index parameters),
metrics (``hr@10`` is logged as ``hr_at_10``; a Wilson 95% interval of hit
rates as ``..._ci_low``/``..._ci_high``, and any interval the evaluation
reports), timings (``time_fit_s``...), tags with the dataset name and
fingerprint, family and RecSys Lab run id, and the run folder (tag
``recsys.run_dir``; run.json is logged as an artifact). A tuning sweep is one
parent run with one child run per trial (:func:`sweep`), which MLflow's
parallel-coordinates view compares.

A failure of the tracking store never fails the work it records: every public
function here catches it and logs a warning. ``mlflow`` is imported only when
something is logged.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from recsys.config import data_dir

logger = logging.getLogger(__name__)

ENV_MLFLOW = "RECSYS_MLFLOW"
ENV_MLFLOW_URI = "RECSYS_MLFLOW_URI"
ENV_MLFLOW_UI = "RECSYS_MLFLOW_UI"
ENV_MLFLOW_EXPERIMENT = "RECSYS_MLFLOW_EXPERIMENT"
_OFF = {"off", "0", "false", "no", "disabled"}
_MAX_PARAM = 500  # MLflow accepts 6000 characters; keep the UI readable
_lock = threading.Lock()


def enabled() -> bool:
    """Whether tracking is on (``RECSYS_MLFLOW`` is not "off")."""
    return os.environ.get(ENV_MLFLOW, "").strip().lower() not in _OFF


def tracking_uri(root: str | os.PathLike[str] | None = None) -> str:
    """``$RECSYS_MLFLOW_URI``, else the SQLite store ``<data dir>/mlflow.db``."""
    uri = os.environ.get(ENV_MLFLOW_URI, "").strip()
    return uri or f"sqlite:///{data_dir(root) / 'mlflow.db'}"


def experiment_name(dataset: str | None) -> str:
    """``$RECSYS_MLFLOW_EXPERIMENT``, else ``recsys-lab/<dataset>``."""
    return os.environ.get(ENV_MLFLOW_EXPERIMENT, "").strip() or f"recsys-lab/{dataset or 'default'}"


def metric_key(name: str) -> str:
    """An MLflow-safe metric or parameter name (``hr@10`` -> ``hr_at_10``)."""
    name = str(name).replace("@", "_at_")
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)[:250]


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed on ``n`` cases."""
    if n <= 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            import numpy as np

            if isinstance(v, np.generic) and np.issubdtype(type(v), np.number):
                v = float(v)
            else:
                return None
        except ImportError:  # pragma: no cover
            return None
    v = float(v)
    return v if math.isfinite(v) else None


def flatten_metrics(
    metrics: Mapping[str, Any] | None, timings: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """The numbers of a run's metrics and timings as MLflow metrics, with intervals.

    Scalars keep their name (made MLflow-safe); a ``[low, high]`` pair or a
    ``{"low", "high"}`` dict under a key becomes ``<key>_low``/``<key>_high``;
    hit rates (``hr@k``) with ``n_cases`` also get a Wilson 95% interval.
    Nested breakdowns (``per_category``) are left out.
    """
    out: dict[str, float] = {}
    metrics = metrics or {}
    for key, value in metrics.items():
        num = _number(value)
        if num is not None:
            out[metric_key(key)] = num
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            lo, hi = _number(value[0]), _number(value[1])
            if lo is not None and hi is not None:
                out[metric_key(f"{key}_low")], out[metric_key(f"{key}_high")] = lo, hi
        elif isinstance(value, Mapping) and {"low", "high"} <= set(value):
            lo, hi = _number(value["low"]), _number(value["high"])
            if lo is not None and hi is not None:
                out[metric_key(f"{key}_low")], out[metric_key(f"{key}_high")] = lo, hi
    n = _number(metrics.get("n_cases"))
    for key, value in metrics.items():
        if str(key).startswith("hr@") and n and _number(value) is not None:
            has_interval = any(k.startswith(metric_key(key) + "_ci") for k in out)
            if not has_interval:
                lo, hi = wilson_interval(float(value), int(n))
                out[metric_key(f"{key}_ci_low")], out[metric_key(f"{key}_ci_high")] = lo, hi
    for key, value in (timings or {}).items():
        num = _number(value)
        if num is not None:
            out[metric_key(f"time_{key}")] = num
    return out


def _flat_params(params: Mapping[str, Any] | None, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_params(value, f"{name}."))
        else:
            out[metric_key(name)] = str(value)[:_MAX_PARAM]
    return out


def run_params(meta: Mapping[str, Any]) -> dict[str, str]:
    """The parameters of a run.json to log: model parameters, split, index and provenance."""
    params = _flat_params(meta.get("params"))
    params.update(_flat_params(meta.get("split"), "split."))
    index = (meta.get("artifacts") or {}).get("index") or {}
    params.update(_flat_params({k: v for k, v in index.items() if k not in ("file", "build_s")}, "index."))
    prov = meta.get("provenance") or {}
    if prov:
        params.update(_flat_params({"format": prov.get("format"), "source": prov.get("source")}, "import."))
    params["family"] = str(meta.get("family"))
    return params


def _run_name(meta: Mapping[str, Any]) -> str:
    """The MLflow run name of a run.json: the name the pages give it
    (:func:`recsys.registry.run_label`: its label, or "family · dataset · date time" for a run
    saved without one), not its raw run id."""
    from recsys.registry import run_label  # the registry imports the models: off this import path

    return run_label(dict(meta))


def run_tags(meta: Mapping[str, Any], root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    dataset = meta.get("dataset") or {}
    tags = {
        "recsys.run_id": str(meta.get("run_id")),
        "recsys.family": str(meta.get("family")),
        "recsys.label": str(meta.get("label") or meta.get("run_id")),
        "recsys.dataset": str(dataset.get("name")),
        "recsys.dataset_fingerprint": str(dataset.get("fingerprint")),
        "mlflow.runName": _run_name(meta)[:250],
    }
    if meta.get("run_id"):
        run_dir = data_dir(root) / "runs" / str(meta["run_id"])
        tags["recsys.run_dir"] = str(run_dir)
        tags["recsys.run_uri"] = run_dir.as_uri()
    return tags


class _Tracker:
    """An MlflowClient bound to one tracking URI (no global MLflow state is touched)."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        from mlflow.tracking import MlflowClient

        self.root = data_dir(root)
        self.uri = tracking_uri(self.root)
        self.client = MlflowClient(tracking_uri=self.uri)

    def experiment_id(self, name: str) -> str:
        with _lock:
            exp = self.client.get_experiment_by_name(name)
            if exp is not None:
                return exp.experiment_id
            artifacts = None  # a tracking server chooses its own artifact store
            if self.uri.startswith("sqlite:///"):  # a local store: artifacts beside its file, not in the cwd
                artifacts = (Path(self.uri[len("sqlite:///") :]).parent / "mlflow-artifacts").as_uri()
            try:
                return self.client.create_experiment(name, artifact_location=artifacts)
            except Exception:  # noqa: BLE001 - created meanwhile by another process
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
                return exp.experiment_id

    def create(self, experiment: str, tags: Mapping[str, str], parent: str | None = None) -> Any:
        exp_id = self.experiment_id(experiment)
        tags = dict(tags)
        if parent:
            tags["mlflow.parentRunId"] = parent
        return self.client.create_run(exp_id, tags=tags, run_name=tags.get("mlflow.runName"))

    def log(
        self,
        run_id: str,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        step: int = 0,
    ) -> None:
        import time

        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
        )


def _warn(what: str, exc: BaseException) -> None:
    logger.warning("MLflow tracking failed (%s); the work itself is not affected: %s", what, exc)


def log_run(
    meta: Mapping[str, Any],
    root: str | os.PathLike[str] | None = None,
    *,
    parent: str | None = None,
    update_run_json: bool = True,
) -> dict[str, Any] | None:
    """Log one RecSys Lab run (its run.json) as an MLflow run; return ``{"run_id",
    "experiment_id", "uri"}`` (also stored in run.json under ``mlflow``), or None when
    tracking is off or failed (a warning is logged, nothing raised).

    Parameters
    ----------
    meta : dict
        The run.json of a run (what :func:`recsys.pipeline.train_run` returns).
    parent : str, optional
        The MLflow run id of a sweep: this run becomes one of its children.
    """
    if not enabled():
        return None
    try:
        tracker = _Tracker(root)
        dataset = (meta.get("dataset") or {}).get("name")
        run = tracker.create(experiment_name(dataset), run_tags(meta, tracker.root), parent)
        rid = run.info.run_id
        try:
            tracker.log(rid, run_params(meta), flatten_metrics(meta.get("metrics"), meta.get("timings")))
            run_json = tracker.root / "runs" / str(meta.get("run_id")) / "run.json"
            if run_json.exists():
                try:
                    tracker.client.log_artifact(rid, str(run_json))
                except Exception as exc:  # noqa: BLE001 - an artifact store may refuse; params are in
                    _warn(f"run.json artifact of {meta.get('run_id')}", exc)
            tracker.client.set_terminated(rid, "FINISHED")
        except Exception:
            tracker.client.set_terminated(rid, "FAILED")
            raise
        info = {"run_id": rid, "experiment_id": run.info.experiment_id, "uri": tracker.uri}
        if update_run_json and meta.get("run_id"):
            from recsys.registry import Registry

            Registry(tracker.root).update(str(meta["run_id"]), mlflow=info)
        return info
    except Exception as exc:  # noqa: BLE001 - tracking never fails a training run
        _warn(f"run {meta.get('run_id')}", exc)
        return None


def log_evaluation(
    meta: Mapping[str, Any],
    metrics: Mapping[str, Any],
    root: str | os.PathLike[str] | None = None,
    *,
    name: str = "evaluation",
) -> str | None:
    """Log a re-evaluation of a stored run as a child of the run's MLflow entry (or a new
    run when it has none); return the MLflow run id, or None."""
    if not enabled():
        return None
    try:
        tracker = _Tracker(root)
        dataset = (meta.get("dataset") or {}).get("name")
        parent = (meta.get("mlflow") or {}).get("run_id")
        if parent and (meta.get("mlflow") or {}).get("uri") != tracker.uri:
            parent = None  # logged to another store
        tags = {
            **run_tags(meta, tracker.root),
            "mlflow.runName": f"{_run_name(meta)} · {name}"[:250],
            "recsys.kind": name,
        }
        run = tracker.create(experiment_name(dataset), tags, parent)
        tracker.log(run.info.run_id, run_params(meta), flatten_metrics(metrics))
        tracker.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id
    except Exception as exc:  # noqa: BLE001
        _warn(f"evaluation of {meta.get('run_id')}", exc)
        return None


class Sweep:
    """A tuning sweep: one MLflow parent run, one child per trial (see :func:`sweep`).

    ``parent_id`` is None when tracking is off or the store failed; every method
    is then a no-op, so the tuning code needs no ``if``.
    """

    def __init__(
        self,
        tracker: _Tracker | None,
        parent_id: str | None,
        experiment: str,
        root: str | os.PathLike[str] | None,
    ) -> None:
        self._tracker = tracker
        self.parent_id = parent_id
        self.experiment = experiment
        self.root = root
        self.trials = 0

    def log_trial(
        self,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any] | None = None,
        *,
        trial: int | None = None,
        meta: Mapping[str, Any] | None = None,
        timings: Mapping[str, Any] | None = None,
        state: str = "FINISHED",
    ) -> str | None:
        """Log one trial as a child run; return its MLflow run id (None when off/failed).

        Parameters
        ----------
        params : dict
            The trial's parameters (what the sweep varies).
        metrics : dict, optional
            Its results (``hr@10``, the objective...), with intervals as in
            :func:`flatten_metrics`.
        trial : int, optional
            The trial number (default: the count of trials logged so far).
        meta : dict, optional
            The run.json of a registered run the trial trained: its tags (run id,
            dataset fingerprint, family) are added and run.json gets the link.
        state : {"FINISHED", "FAILED", "KILLED"}
            A pruned or failed trial is logged too, with its state.
        """
        number = self.trials if trial is None else int(trial)
        self.trials += 1
        if self._tracker is None or self.parent_id is None:
            return None
        try:
            tags = {"mlflow.runName": f"trial {number}", "recsys.trial": str(number), "recsys.kind": "trial"}
            if meta:
                tags.update(run_tags(meta, self._tracker.root))
                tags["mlflow.runName"] = f"trial {number} · {_run_name(meta)}"[:250]
            run = self._tracker.create(self.experiment, tags, self.parent_id)
            rid = run.info.run_id
            self._tracker.log(rid, _flat_params(params), flatten_metrics(metrics, timings))
            self._tracker.client.set_terminated(rid, state)
            if meta and meta.get("run_id"):
                from recsys.registry import Registry

                info = {"run_id": rid, "experiment_id": run.info.experiment_id, "uri": self._tracker.uri}
                Registry(self._tracker.root).update(str(meta["run_id"]), mlflow=info)
            return rid
        except Exception as exc:  # noqa: BLE001
            _warn(f"trial {number}", exc)
            return None

    def log_best(self, params: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> None:
        """Record the best trial on the parent run (params as ``best.<name>``, metrics as ``best_<name>``)."""
        if self._tracker is None or self.parent_id is None:
            return
        try:
            self._tracker.log(
                self.parent_id,
                _flat_params(params, "best."),
                {f"best_{k}": v for k, v in flatten_metrics(metrics).items()},
            )
        except Exception as exc:  # noqa: BLE001
            _warn("best trial", exc)


@contextlib.contextmanager
def sweep(
    name: str,
    *,
    dataset: str,
    root: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Sweep]:
    """A tuning sweep as one MLflow parent run; trials are logged with ``Sweep.log_trial``.

    Example
    -------
    >>> with sweep("prod2vec window x ns_exponent", dataset="demo", params={"n_trials": 20}) as sw:
    ...     for i, p in enumerate(candidates):
    ...         m = fit_and_score(p)
    ...         sw.log_trial(p, m, trial=i)
    ...     sw.log_best(best_params, best_metrics)

    The parent ends FINISHED, or FAILED when the block raises (the exception is
    re-raised); a tracking failure only logs a warning.
    """
    tracker = None
    parent_id = None
    experiment = experiment_name(dataset)
    if enabled():
        try:
            tracker = _Tracker(root)
            all_tags = {
                "mlflow.runName": name,
                "recsys.kind": "sweep",
                "recsys.dataset": dataset,
                **(tags or {}),
            }
            run = tracker.create(experiment, all_tags)
            parent_id = run.info.run_id
            if params:
                tracker.log(parent_id, _flat_params(params))
        except Exception as exc:  # noqa: BLE001
            _warn(f"sweep {name}", exc)
            tracker, parent_id = None, None
    sw = Sweep(tracker, parent_id, experiment, root)
    status = "FAILED"
    try:
        yield sw
        status = "FINISHED"
    finally:
        if tracker is not None and parent_id is not None:
            try:
                tracker.log(parent_id, metrics={"trials": sw.trials})
                tracker.client.set_terminated(parent_id, status)
            except Exception as exc:  # noqa: BLE001
                _warn(f"sweep {name}", exc)


def run_link(meta: Mapping[str, Any]) -> str | None:
    """The MLflow UI URL of a run (``$RECSYS_MLFLOW_UI``/#/experiments/<id>/runs/<id>), or None
    when no UI is configured or the run was not tracked."""
    base = os.environ.get(ENV_MLFLOW_UI, "").strip().rstrip("/")
    info = meta.get("mlflow") or {}
    if not base or not info.get("run_id") or not info.get("experiment_id"):
        return None
    if not base.startswith(("http://", "https://")):
        return None
    return f"{base}/#/experiments/{info['experiment_id']}/runs/{info['run_id']}"


def store_path(root: str | os.PathLike[str] | None = None) -> Path | None:
    """The SQLite file of the embedded store, when that is the store in use."""
    uri = tracking_uri(root)
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None
