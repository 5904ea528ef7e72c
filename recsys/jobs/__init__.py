"""Background jobs: long work run outside the web process, state on disk.

- :mod:`recsys.jobs.store`: :class:`JobStore` (submit, read, cancel, clean up)
  and :func:`run_job` (runs one job in the current process);
- :mod:`recsys.jobs.runners`: how a job is started and stopped
  (:class:`ProcessRunner`, the default; :class:`CeleryRunner` for scale-out);
- :mod:`recsys.jobs.kinds`: what a job runs (:data:`JOB_KINDS`) and
  :func:`submit_train` / :func:`submit_tune`, the one validated way to queue a
  training / tuning job;
- :mod:`recsys.jobs.worker`: the Celery app
  (``celery -A recsys.jobs.worker worker``); imported only by workers.

``python -m recsys.jobs run <job_id> --data-dir <root>`` runs one job here
(the process runner starts it so).

Imports go one way: ``kinds`` and ``runners`` import nothing of this package,
``store`` imports both, ``worker`` imports ``runners`` and ``store``.
"""

from __future__ import annotations

from recsys.jobs.kinds import (
    INTERNAL_KINDS,
    JOB_KINDS,
    JobParamError,
    TrainRequest,
    submit_train,
    submit_tune,
    train_request,
    tune_request,
)
from recsys.jobs.runners import RUNNERS, CeleryRunner, ProcessRunner, Runner, get_runner
from recsys.jobs.store import ACTIVE, FINISHED, STATUSES, JobCancelled, JobStore, run_job

__all__ = [
    "ACTIVE",
    "FINISHED",
    "INTERNAL_KINDS",
    "JOB_KINDS",
    "RUNNERS",
    "STATUSES",
    "CeleryRunner",
    "JobCancelled",
    "JobParamError",
    "JobStore",
    "ProcessRunner",
    "Runner",
    "TrainRequest",
    "get_runner",
    "run_job",
    "submit_train",
    "submit_tune",
    "train_request",
    "tune_request",
]
