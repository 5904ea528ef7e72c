"""Scale-out job runner: the same jobs, run by Celery workers over Redis.

The embedded runner (a detached local process per job, see :mod:`recsys.jobs`)
needs no server. When jobs should run on other machines, or be queued and
rate-limited by an existing engine, point the app and the workers at a Redis
broker::

    export RECSYS_CELERY_BROKER=redis://127.0.0.1:6379/0
    export RECSYS_JOB_RUNNER=celery          # the app sends jobs to Celery
    celery -A recsys.celery_app worker --pool=solo --loglevel=INFO

Workers must see the same data directory (``--data-dir`` / ``RECSYS_DATA_DIR``
is passed with each task; use a shared filesystem across machines), because job
state, logs and runs are files. Each task calls :func:`recsys.jobs.run_job`, so
progress, logs and results look exactly as with the embedded runner.

Notes
-----
- ``--pool=solo`` (or ``--pool=threads``/prefork with ``--concurrency``) all work;
  TensorFlow and gensim are imported inside the job functions, so a prefork
  worker forks before they are loaded.
- Cancel is cooperative under Celery: a queued task is revoked, a running job
  stops at its next progress report (the worker is never killed).
- No result backend is needed: the job's state is in ``job.json``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery

from recsys.jobs import run_job

ENV_BROKER = "RECSYS_CELERY_BROKER"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
TASK_NAME = "recsys.run_job"

_apps: dict[str, Celery] = {}
_apps_lock = threading.Lock()


def broker_url() -> str:
    """The broker URL: ``RECSYS_CELERY_BROKER``, else a local Redis."""
    return os.environ.get(ENV_BROKER) or DEFAULT_BROKER


def make_app(broker: str | None = None) -> Celery:
    """A Celery app for ``broker`` (default: :func:`broker_url`) with the job task."""
    celery = Celery("recsys", broker=broker or broker_url())
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,  # a job lost with its worker is redelivered...
        task_reject_on_worker_lost=False,  # ...but not re-run after a crash mid-job
        worker_prefetch_multiplier=1,  # long tasks: take one at a time
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Fail fast (not after redis-py's retries) when the broker is down, so
        # "submit" answers a web request within a second either way.
        broker_transport_options={"socket_connect_timeout": 2, "max_retries": 0},
    )

    @celery.task(name=TASK_NAME)
    def run_job_task(job_id: str, root: str) -> str:
        """Run one job of ``root`` in this worker; returns its final status."""
        return run_job(job_id, root, handle_signals=False)["status"]

    return celery


#: The app the ``celery -A recsys.celery_app worker`` command loads.
app = make_app()
run_job_task = app.tasks[TASK_NAME]


def _client(broker: str | None = None) -> Celery:
    url = broker or broker_url()
    with _apps_lock:
        if url not in _apps:
            _apps[url] = app if url == app.conf.broker_url else make_app(url)
        return _apps[url]


def send_job(job_id: str, root: str, broker: str | None = None) -> str:
    """Queue job ``job_id`` of data directory ``root``; return the Celery task id.

    Raises
    ------
    kombu.exceptions.OperationalError
        The broker cannot be reached (the caller marks the job failed).
    """
    result = _client(broker).send_task(TASK_NAME, args=[job_id, root], retry=False)
    return str(result.id)


def revoke(task_id: str, broker: str | None = None) -> None:
    """Revoke a queued task so no worker starts it (running ones are left alone)."""
    _client(broker).control.revoke(task_id)


def ping(broker: str | None = None, timeout: float = 1.0) -> list[dict[str, Any]]:
    """Replies of live workers (empty when none answers within ``timeout``)."""
    return _client(broker).control.ping(timeout=timeout) or []
