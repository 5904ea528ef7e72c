"""How a job is started and stopped: pluggable runners (like :class:`recsys.precompute.TopKStore`).

:class:`Runner` is the interface :class:`~recsys.jobs.store.JobStore` talks to;
it never branches on a runner's name.

``process`` (:class:`ProcessRunner`, the default, no server needed)
    Starts a fresh interpreter, ``python -m recsys.jobs run <job_id> --data-dir
    <root>``, in its own session, with stdout/stderr appended to ``log.txt``.
    It is a new interpreter, not a fork, so TensorFlow and gensim are imported
    cleanly inside the job and never in the web process. Cancel sends SIGTERM
    to the job's process group (SIGKILL after a grace period).
``celery`` (:class:`CeleryRunner`, scale-out)
    Sends the task ``recsys.run_job`` to a Celery worker (see
    :mod:`recsys.jobs.worker`), which calls the same
    :func:`~recsys.jobs.store.run_job`. Cancel is cooperative there: a queued
    task is revoked, a running job stops at its next progress report.

This module imports nothing of :mod:`recsys.jobs` (the store hands itself to
the runner's methods), and Celery only inside :class:`CeleryRunner`'s methods.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys._io import atomic_write_json, atomic_write_text
from recsys.errors import JobError

if TYPE_CHECKING:
    from celery import Celery

    from recsys.jobs.store import JobStore

logger = logging.getLogger(__name__)

ENV_RUNNER = "RECSYS_JOB_RUNNER"
ENV_BROKER = "RECSYS_CELERY_BROKER"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
TASK_NAME = "recsys.run_job"


def process_alive(pid: int | None, created: float | None) -> bool:
    """Whether ``pid`` is alive and is the same process that started at ``created``."""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if created is not None and abs(proc.create_time() - float(created)) > 1.0:
            return False  # the pid was reused by another process
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _reap(proc: subprocess.Popen) -> None:
    """Wait for a job's process (so it leaves no zombie); quietly, since the app may be stopping."""
    try:
        proc.wait()
    except BaseException:  # noqa: BLE001 - e.g. SystemExit raised into threads by a stopping server
        pass


class Runner(ABC):
    """Starts and stops the jobs of a :class:`~recsys.jobs.store.JobStore`.

    Attributes
    ----------
    name : str
        Recorded in each job's ``job.json`` (``"runner"``), so any store can
        find the runner that owns a job (:func:`get_runner`).
    tracks_pid : bool
        Whether a job of this runner must have a recorded process soon after
        submit (a Celery job waits in the broker's queue with none).
    slots_in_store : bool
        Whether the store holds jobs of a limited slot class
        (:func:`recsys.jobs.kinds.job_slot`) until a slot is free, so a waiting job
        holds no process. Celery leaves this to the broker: a dedicated queue and the
        concurrency of the workers that consume it (see :class:`CeleryRunner`).
    """

    name: str
    tracks_pid: bool = True
    slots_in_store: bool = True

    @abstractmethod
    def start(self, store: JobStore, job_id: str) -> None:
        """Start the queued job ``job_id`` (whose ``job.json`` exists); raise when it cannot."""

    @abstractmethod
    def cancel(self, store: JobStore, job: dict[str, Any], grace: float) -> dict[str, Any]:
        """Stop an active job (the ``cancel`` marker is already written); return its state."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ProcessRunner(Runner):
    """A detached local interpreter per job (see the module docstring)."""

    name = "process"

    def start(self, store: JobStore, job_id: str) -> None:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        pkg_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "recsys.jobs", "run", job_id, "--data-dir", str(store.root)]
        with open(store.log_path(job_id), "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        # Recorded by the parent too, so a job that dies before it reports
        # (e.g. an import error) is still detected as interrupted.
        try:
            import psutil

            created = psutil.Process(proc.pid).create_time()
        except Exception:  # noqa: BLE001 - the process may already be gone
            created = None
        atomic_write_json(
            store.job_dir(job_id) / "launch.json",
            {"pid": proc.pid, "pid_created": created},
            f"the job record {job_id}/launch.json",
        )
        # Reap the child when it exits so it does not linger as a zombie.
        threading.Thread(target=_reap, args=(proc,), name=f"reap-{job_id}", daemon=True).start()

    def cancel(self, store: JobStore, job: dict[str, Any], grace: float) -> dict[str, Any]:
        job_id = job["job_id"]
        pid, created = store._pid_info(job)
        if pid is None or not process_alive(pid, created):
            return store._mark_cancelled(job_id)
        import psutil

        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and process_alive(pid, created):
            time.sleep(0.05)
        if process_alive(pid, created):
            logger.warning("job %s did not stop within %.1f s of SIGTERM; sending SIGKILL", job_id, grace)
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    psutil.Process(pid).kill()
                except psutil.Error:
                    pass
            psutil.wait_procs([psutil.Process(pid)] if psutil.pid_exists(pid) else [], timeout=2)
        return store._mark_cancelled(job_id)


def broker_url() -> str:
    """The broker URL: ``RECSYS_CELERY_BROKER``, else a local Redis."""
    return os.environ.get(ENV_BROKER) or DEFAULT_BROKER


def celery_app(broker: str | None = None) -> Celery:
    """A Celery app for ``broker`` (default: :func:`broker_url`), configured for jobs; no tasks.

    Clients only send the task by name; :mod:`recsys.jobs.worker` registers it.
    """
    from celery import Celery

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
    return celery


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


class CeleryRunner(Runner):
    """Jobs sent to Celery workers over a broker (see the module docstring).

    Workers must see the same data directory (it is passed with each task; use
    a shared filesystem across machines), because job state, logs and runs are
    files. No result backend is needed: the job's state is in ``job.json``.

    Slot classes (UMAP projections): the store does not hold them back here. Set
    ``RECSYS_CELERY_UMAP_QUEUE=<queue>`` in the app and UMAP jobs are sent to that
    queue, and run one worker for it with the concurrency wanted
    (``celery -A recsys.jobs.worker worker -Q <queue> --concurrency=1``), next to the
    workers of the default queue: waiting UMAP jobs then wait in the broker, holding
    nothing. Without the variable they go to the default queue like any job.
    """

    name = "celery"
    tracks_pid = False
    slots_in_store = False

    def __init__(self, broker: str | None = None) -> None:
        self.broker = broker

    def __repr__(self) -> str:
        return f"CeleryRunner(broker={self.broker!r})"

    def client(self) -> Celery:
        """The (cached) client app of this runner's broker."""
        url = self.broker or broker_url()
        with _clients_lock:
            if url not in _clients:
                _clients[url] = celery_app(url)
            return _clients[url]

    def send(self, job_id: str, root: str, queue: str | None = None) -> str:
        """Queue job ``job_id`` of data directory ``root`` (on ``queue``, else the default
        queue); return the Celery task id.

        Raises
        ------
        kombu.exceptions.OperationalError
            The broker cannot be reached (the store marks the job failed).
        """
        extra = {"queue": queue} if queue else {}
        return str(self.client().send_task(TASK_NAME, args=[job_id, root], retry=False, **extra).id)

    def revoke(self, task_id: str) -> None:
        """Revoke a queued task so no worker starts it (running ones are left alone)."""
        self.client().control.revoke(task_id)

    def ping(self, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Replies of live workers (empty when none answers within ``timeout``)."""
        return self.client().control.ping(timeout=timeout) or []

    @staticmethod
    def queue_of(slot: str | None) -> str | None:
        """The Celery queue of a slot class (``$RECSYS_CELERY_<SLOT>_QUEUE``), or None (default queue)."""
        return (os.environ.get(f"RECSYS_CELERY_{slot.upper()}_QUEUE") or None) if slot else None

    def start(self, store: JobStore, job_id: str) -> None:
        task_id = self.send(job_id, str(store.root), self.queue_of(store.job_slot(job_id)))
        atomic_write_text(store.job_dir(job_id) / "celery_task", task_id)

    def cancel(self, store: JobStore, job: dict[str, Any], grace: float) -> dict[str, Any]:
        job_id = job["job_id"]
        task_file = store.job_dir(job_id) / "celery_task"
        if task_file.exists():
            try:
                self.revoke(task_file.read_text().strip())
            except Exception as exc:  # noqa: BLE001 - the marker still stops the job
                logger.warning("job %s: could not revoke the Celery task: %s", job_id, exc)
        if job["status"] == "queued":
            return store._mark_cancelled(job_id)
        return store.get(job_id)


#: name -> runner class; a runner registered here can be chosen by name
#: (``JobStore(root, runner="name")``, ``RECSYS_JOB_RUNNER``).
RUNNERS: dict[str, type[Runner]] = {"process": ProcessRunner, "celery": CeleryRunner}


def get_runner(runner: str | Runner | None = None) -> Runner:
    """A runner: an instance as given, else by name (default ``RECSYS_JOB_RUNNER``, else ``"process"``).

    Raises
    ------
    JobError
        An unknown runner name.
    """
    if isinstance(runner, Runner):
        return runner
    name = runner or os.environ.get(ENV_RUNNER) or "process"
    if name not in RUNNERS:
        raise JobError(f"unknown job runner '{name}' (from {ENV_RUNNER}?); choose one of: {tuple(RUNNERS)}")
    return RUNNERS[name]()
