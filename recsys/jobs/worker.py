"""The Celery worker of the scale-out runner: the same jobs, run by Celery workers over Redis.

The embedded runner (a detached local process per job) needs no server. When
jobs should run on other machines, or be queued and rate-limited by an
existing engine, point the app and the workers at a Redis broker::

    export RECSYS_CELERY_BROKER=redis://127.0.0.1:6379/0
    export RECSYS_JOB_RUNNER=celery          # the app sends jobs to Celery
    celery -A recsys.jobs.worker worker --pool=solo --loglevel=INFO

Workers must see the same data directory (it is passed with each task; use a
shared filesystem across machines), because job state, logs and runs are
files. Each task calls :func:`recsys.jobs.store.run_job`, so progress, logs
and results look exactly as with the embedded runner.

Notes
-----
- ``--pool=solo`` (or ``--pool=threads``/prefork with ``--concurrency``) all work;
  TensorFlow and gensim are imported inside the job functions, so a prefork
  worker forks before they are loaded.
- The app only sends tasks by name (:class:`recsys.jobs.runners.CeleryRunner`),
  so the web process never imports this module.
"""

from __future__ import annotations

from celery import Celery

from recsys.jobs.runners import TASK_NAME, celery_app
from recsys.jobs.store import run_job


def make_app(broker: str | None = None) -> Celery:
    """A Celery app for ``broker`` (default: ``RECSYS_CELERY_BROKER``) with the job task registered."""
    celery = celery_app(broker)

    @celery.task(name=TASK_NAME)
    def run_job_task(job_id: str, root: str) -> str:
        """Run one job of ``root`` in this worker; returns its final status."""
        return run_job(job_id, root, handle_signals=False)["status"]

    return celery


#: The app the ``celery -A recsys.jobs.worker worker`` command loads.
app = make_app()
run_job_task = app.tasks[TASK_NAME]
