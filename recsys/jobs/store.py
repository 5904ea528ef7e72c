"""The job store: long work run outside the web process, state on disk.

A job is a folder ``<data_dir>/jobs/<job_id>/`` holding ``job.json`` (its
state) and ``log.txt`` (its log, with tracebacks). Because the state lives on
disk, a job survives page navigation and an app restart, and every user (every
web worker, every process) sees the same jobs.

``job.json``::

    {"job_id", "kind", "label", "params", "target", "runner",
     "status": "queued" | "running" | "done" | "failed" | "cancelled" | "interrupted",
     "progress": {"done", "total", "message", "fraction"},
     "created", "started", "finished", "updated", "seconds",
     "pid", "pid_created", "host", "result", "error"}

``error`` is one line meant for the UI; the traceback only goes to the log.

Slot classes: a job of a limited class (UMAP projections, :func:`recsys.jobs.kinds.job_slot`;
at most ``$RECSYS_UMAP_SLOTS`` at once, default 1) submitted while its class is full stays
``queued`` in the store with ``"waiting": "<class>"`` in its job.json and no process; when a
job of the class ends, the next waiting one (oldest first) is started by :meth:`JobStore.dispatch`,
which the ending job's process calls, and so does every listing of the jobs (the app polls it
every second), so a job killed without a word frees its slot too. This holds for runners with
``slots_in_store`` (the process runner); Celery relies on a dedicated queue instead
(:class:`recsys.jobs.runners.CeleryRunner`).

How a job is started and stopped is its runner's business
(:mod:`recsys.jobs.runners`); what it runs is its kind's
(:mod:`recsys.jobs.kinds`). :func:`run_job` runs a job in the current process
(the process runner's interpreter, or a Celery worker).

A job whose process died without writing a final state (killed, machine
rebooted) is reported as ``interrupted`` the next time anyone reads it: the
reader checks the recorded pid *and* its start time, so a recycled pid is not
mistaken for the job.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys._io import atomic_write_json, file_lock
from recsys.config import data_dir
from recsys.errors import JobError, RecsysError, StoredDataError
from recsys.jobs.kinds import JOB_KINDS, job_slot, slot_limit
from recsys.jobs.runners import RUNNERS, Runner, get_runner, process_alive

logger = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = frozenset({"queued", "running"})
FINISHED = frozenset({"done", "failed", "cancelled", "interrupted"})

#: Minimum seconds between two progress writes of job.json (~4 writes/s).
PROGRESS_INTERVAL = 0.25
#: A queued or running process-runner job with no recorded process after this
#: many seconds is interrupted (its submitter died between writing job.json and
#: starting the process).
NO_PID_GRACE_S = 30.0

_JOB_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class JobCancelled(BaseException):
    """Raised inside a job when it is asked to stop.

    A ``BaseException`` (like ``KeyboardInterrupt``), so that ``except
    Exception`` blocks in the job's own code do not swallow it, while
    ``finally`` blocks and the registry's cleanup still run.
    """


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _one_line_error(exc: BaseException) -> str:
    """A one-line message for the UI (no traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, RecsysError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _progress_dict(done: float, total: float, message: str) -> dict[str, Any]:
    fraction = None
    if total and total > 0:
        fraction = round(min(max(float(done) / float(total), 0.0), 1.0), 4)
    return {"done": done, "total": total, "message": str(message), "fraction": fraction}


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    if not module or not name:
        raise JobError(f"job target '{target}' is not of the form 'module:function'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise JobError(f"cannot load job function '{target}': {exc}") from exc


class JobStore:
    """The jobs of a data directory: submit, read, cancel, clean up.

    Parameters
    ----------
    root : path-like, optional
        The data directory (see :func:`recsys.config.data_dir`); jobs live
        under ``<root>/jobs``.
    runner : str or Runner, optional
        How :meth:`submit` starts a job: a :class:`~recsys.jobs.runners.Runner`
        or the name of one (``"process"``, ``"celery"``). Default:
        ``RECSYS_JOB_RUNNER``, else ``"process"`` (a detached local interpreter;
        no server needed).

    Notes
    -----
    Any number of ``JobStore`` instances, in any number of processes, may
    share a data directory: all state is read from disk on each call.
    """

    def __init__(
        self, root: str | os.PathLike[str] | None = None, runner: str | Runner | None = None
    ) -> None:
        self.root = data_dir(root)
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._runner = get_runner(runner)

    @property
    def runner(self) -> str:
        """The name of the runner :meth:`submit` uses (recorded in each job)."""
        return self._runner.name

    def _runner_of(self, job: dict[str, Any]) -> Runner:
        """The runner that owns ``job`` (this store's, or one by the name recorded in it)."""
        name = job.get("runner") or "process"
        if name == self._runner.name:
            return self._runner
        return get_runner(name) if name in RUNNERS else self._runner

    # -- paths ---------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        """The folder of a job (it may not exist)."""
        if not isinstance(job_id, str) or not job_id or not set(job_id) <= _JOB_ID_CHARS or job_id[0] == ".":
            raise JobError(f"'{job_id}' is not a valid job id")
        return self.jobs_dir / job_id

    def _job_file(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "job.json"

    def log_path(self, job_id: str) -> Path:
        """The log file of a job."""
        return self.job_dir(job_id) / "log.txt"

    # -- raw state -------------------------------------------------------------
    def _read(self, job_id: str) -> dict[str, Any]:
        """job.json, checked against :class:`recsys.stored.JobFile` (JobError when damaged)."""
        from recsys.stored import JobFile, read_stored, reason_of

        path = self._job_file(job_id)
        for attempt in range(3):
            try:
                job = read_stored(path, JobFile)
            except FileNotFoundError:
                raise JobError(f"job '{job_id}' not found in {self.jobs_dir}") from None
            except StoredDataError as exc:
                if attempt == 2:
                    raise JobError(
                        f"job '{job_id}' is damaged: {reason_of(exc)}; delete its folder {path.parent}"
                    ) from None
                time.sleep(0.05)  # writes are atomic, but be lenient with a slow file system
                continue
            if job["job_id"] != job_id:
                raise JobError(f"job '{job_id}' is damaged: job.json names job '{job['job_id']}'")
            return job
        raise AssertionError("unreachable")

    def damaged(self) -> list[dict[str, str]]:
        """``[{job_id, kind, error}]`` of the job folders whose job.json is damaged (lists skip them)."""
        out: list[dict[str, str]] = []
        self.list_jobs(limit=0, damaged=out)
        return out

    def _write(self, job: dict[str, Any]) -> None:
        job["updated"] = _now()
        atomic_write_json(self._job_file(job["job_id"]), job, f"the job record {job['job_id']}/job.json")

    def _locked(self, job_id: str) -> contextlib.AbstractContextManager[None]:
        """Serialise read-modify-write cycles of one job.json across processes.

        The job's own process (or Celery worker) and the app (cancel, the check
        for dead processes) both update it; without the lock a cancel that read
        "running" could overwrite the "done" state and result written a moment
        later.
        """
        folder = self.job_dir(job_id)
        if not folder.is_dir():
            raise JobError(f"job '{job_id}' not found in {self.jobs_dir}")
        return file_lock(folder / ".lock")

    # -- submit ----------------------------------------------------------------
    def submit(self, kind: str, params: dict[str, Any] | None = None, *, label: str | None = None) -> str:
        """Start a job of ``kind`` with ``params``; return its id at once.

        Parameters
        ----------
        kind : str
            A key of :data:`JOB_KINDS`.
        params : dict, optional
            Keyword arguments of the kind's function (JSON-able).
        label : str, optional
            A human-readable label for lists (defaults to the kind).

        Raises
        ------
        JobError
            Unknown kind, parameters that are not JSON, or the job could not be
            started (the job is then marked failed).
        """
        if kind not in JOB_KINDS:
            raise JobError(f"unknown job kind '{kind}'; choose one of: {', '.join(sorted(JOB_KINDS))}")
        params = dict(params or {})
        try:
            json.dumps(params)
        except (TypeError, ValueError) as exc:
            raise JobError(f"job '{kind}': parameters must be JSON-serialisable ({exc})") from None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        job_id = f"{kind}-{stamp}-{uuid.uuid4().hex[:6]}"
        job = {
            "job_id": job_id,
            "kind": kind,
            "label": label or kind,
            "params": params,
            "target": JOB_KINDS[kind],
            "runner": self.runner,
            "status": "queued",
            "progress": _progress_dict(0, 0, "queued"),
            "created": _now(),
            "started": None,
            "finished": None,
            "seconds": None,
            "pid": None,
            "pid_created": None,
            "host": None,
            "result": None,
            "error": None,
        }
        slot = job_slot(kind, params) if self._runner.slots_in_store else None
        if slot:
            job["waiting"] = slot
            job["progress"] = _progress_dict(0, 0, f"queued: waiting for a free {slot.upper()} slot")
        self.job_dir(job_id).mkdir(parents=True, exist_ok=False)
        try:
            self._write(job)
        except BaseException:  # e.g. a full disk: leave no job folder without a job.json
            import shutil

            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            raise
        if slot:
            failed = self.dispatch()
            if job_id in failed:
                raise JobError(f"job {job_id}: could not start ({self.runner} runner): {failed[job_id]}")
            logger.info("submitted job %s (%s runner, %s slot class)", job_id, self.runner, slot)
            return job_id
        try:
            self._start(job_id)
        except Exception as exc:
            raise JobError(f"job {job_id}: could not start ({self.runner} runner): {exc}") from exc
        logger.info("submitted job %s (%s runner)", job_id, self.runner)
        return job_id

    def _start(self, job_id: str, runner: Runner | None = None) -> None:
        """Start a queued job with its runner; on failure mark it failed and re-raise."""
        try:
            (runner or self._runner).start(self, job_id)
        except Exception as exc:
            with self._locked(job_id):
                job = self._read(job_id)
                job.update(
                    status="failed", finished=_now(), error=f"could not start the job: {_one_line_error(exc)}"
                )
                self._write(job)
            raise

    def job_slot(self, job_id: str) -> str | None:
        """The slot class of a job (:func:`recsys.jobs.kinds.job_slot`), or None."""
        job = self._read(job_id)
        return job_slot(job["kind"], job.get("params") or {})

    def dispatch(self) -> dict[str, str]:
        """Start the waiting jobs of each slot class while the class has a free slot.

        A slot is held by each active job of the class that is not waiting (running, or
        started and not yet running). Oldest waiting first. Serialised across processes by a
        lock file in the jobs folder. Returns ``{job_id: error}`` of the jobs that could not
        be started (they are marked failed).
        """
        failed: dict[str, str] = {}
        with file_lock(self.jobs_dir / ".dispatch.lock"):
            busy: dict[str, int] = {}
            waiting: list[dict[str, Any]] = []
            for job in self._active_jobs():
                slot = job.get("waiting")
                if slot and job["status"] == "queued":
                    waiting.append(job)
                    continue
                held = job_slot(job["kind"], job.get("params") or {})
                if held and self._runner_of(job).slots_in_store:
                    busy[held] = busy.get(held, 0) + 1
            waiting.sort(key=lambda j: j.get("created") or "")
            for job in waiting:
                slot = job["waiting"]
                if busy.get(slot, 0) >= slot_limit(slot):
                    continue
                job_id = job["job_id"]
                with self._locked(job_id):
                    fresh = self._read(job_id)
                    if fresh["status"] != "queued" or not fresh.get("waiting"):
                        continue
                    fresh["waiting"] = None
                    fresh["dispatched"] = _now()  # the grace for recording a process counts from here
                    fresh["progress"] = _progress_dict(0, 0, "starting")
                    self._write(fresh)
                busy[slot] = busy.get(slot, 0) + 1
                try:
                    self._start(job_id, self._runner_of(fresh))
                except Exception as exc:  # noqa: BLE001 - marked failed; the others still start
                    failed[job_id] = _one_line_error(exc)
                    busy[slot] -= 1
                    logger.warning("job %s: could not start: %s", job_id, exc)
                else:
                    logger.info("job %s: a %s slot is free; started", job_id, slot)
        return failed

    def _job_ids(self) -> list[str]:
        """Names of the job folders that hold a job.json (not the trash or lock files)."""
        return [
            p.name
            for p in self.jobs_dir.iterdir()
            if not p.name.startswith(".") and (p / "job.json").exists()
        ]

    def _active_jobs(self) -> list[dict[str, Any]]:
        """Every queued or running job (refreshed: a dead process no longer holds its slot)."""
        out = []
        for job_id in self._job_ids():
            try:
                job = self._read(job_id)
                if job.get("status") in ACTIVE:
                    job = self._refresh(job)
            except JobError:
                continue
            if job.get("status") in ACTIVE:
                out.append(job)
        return out

    # -- read ------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any]:
        """The state of a job (``job.json``), with a dead job marked interrupted.

        The returned dict also has ``cancel_requested`` (bool).

        Raises
        ------
        JobError
            No such job.
        """
        return self._refresh(self._read(job_id))

    def list_jobs(
        self,
        limit: int | None = 20,
        *,
        kind: str | None = None,
        status: str | list[str] | None = None,
        damaged: list[dict[str, str]] | None = None,
        _dispatched: bool = False,
    ) -> list[dict[str, Any]]:
        """Jobs, newest first (starting first any job waiting for a slot that is free now).

        Parameters
        ----------
        limit : int, optional
            At most this many (None: all).
        kind : str, optional
            Only jobs of this kind.
        status : str or list of str, optional
            Only jobs in these states (e.g. ``["queued", "running"]``).
        damaged : list, optional
            Receives ``{job_id, kind, error}`` of each job folder skipped because
            its job.json is damaged.
        """
        wanted = {status} if isinstance(status, str) else set(status) if status else None
        out = []
        n_damaged = len(damaged) if damaged is not None else 0
        for path in self.jobs_dir.iterdir():
            if path.name.startswith(".") or not (path / "job.json").exists():
                continue
            try:
                job = self._refresh(self._read(path.name))
            except JobError as exc:
                logger.warning("skipping job folder %s: %s", path, exc)
                if damaged is not None:
                    kind_ = path.name.split("-", 1)[0] if "-" in path.name else ""
                    damaged.append({"job_id": path.name, "kind": kind_, "error": str(exc)})
                continue
            if job.get("waiting") and job.get("status") == "queued" and not _dispatched:
                # a job waits for a slot: start what can start, then read the jobs again
                self.dispatch()
                if damaged is not None:
                    del damaged[n_damaged:]
                return self.list_jobs(limit, kind=kind, status=status, damaged=damaged, _dispatched=True)
            if kind and job.get("kind") != kind:
                continue
            if wanted and job.get("status") not in wanted:
                continue
            out.append(job)
        out.sort(key=lambda j: j.get("created") or "", reverse=True)
        return out[:limit] if limit is not None else out

    def refresh(self) -> list[str]:
        """Mark every queued/running job whose process is gone as interrupted.

        Reading a job (:meth:`get`, :meth:`list_jobs`) does the same check;
        call this once at app start to settle jobs left over from before.

        Returns
        -------
        list of str
            Ids of the jobs whose state changed.
        """
        changed = []
        for job_id in self._job_ids():
            try:
                before = self._read(job_id)
            except JobError:
                continue
            if before.get("status") in ACTIVE and self._refresh(before)["status"] not in ACTIVE:
                changed.append(job_id)
        self.dispatch()
        return changed

    def _pid_info(self, job: dict[str, Any]) -> tuple[int | None, float | None]:
        if job.get("pid"):
            return job["pid"], job.get("pid_created")
        launch = self.job_dir(job["job_id"]) / "launch.json"
        if launch.exists():
            try:
                info = json.loads(launch.read_text())
                return info.get("pid"), info.get("pid_created")
            except (OSError, json.JSONDecodeError):
                pass
        return None, None

    def _refresh(self, job: dict[str, Any]) -> dict[str, Any]:
        job_id = job["job_id"]
        job["cancel_requested"] = (self.job_dir(job_id) / "cancel").exists()
        if job.get("status") not in ACTIVE:
            return job
        # Only a job run on this host can be checked by pid (a Celery worker
        # elsewhere is not visible here).
        if job.get("host") not in (None, socket.gethostname()):
            return job
        if self._process_state(job) == "alive":
            return job
        # The process is gone (or never was): re-read, since it writes its
        # final state just before exiting.
        with self._locked(job_id):
            job = self._read(job_id)
            job["cancel_requested"] = (self.job_dir(job_id) / "cancel").exists()
            if job.get("status") not in ACTIVE:
                return job
            state = self._process_state(job)
            if state == "alive":
                return job
            cancelled = job["cancel_requested"]
            job.update(
                status="cancelled" if cancelled else "interrupted",
                finished=_now(),
                error=None
                if cancelled
                else "the job's process ended without reporting (killed or restarted)"
                if state == "dead"
                else "the job never started: no process was recorded for it (the app stopped while "
                "submitting it?); start it again",
            )
            self._write(job)
        logger.warning("job %s: no live process (%s); marked %s", job_id, state, job["status"])
        return job

    def _process_state(self, job: dict[str, Any]) -> str:
        """ "alive", "dead" (its recorded process is gone) or "none" (no process ever recorded).

        A job with no recorded process is given :data:`NO_PID_GRACE_S` to get one
        (the submitter records it right after starting it); a Celery job waits
        in the broker's queue with none, so it counts as alive.
        """
        pid, created = self._pid_info(job)
        if pid is not None:
            return "alive" if process_alive(pid, created) else "dead"
        if not self._runner_of(job).tracks_pid or (job.get("waiting") and job.get("status") == "queued"):
            return "alive"  # in the broker's queue, or waiting in this store for a slot
        born = _parse_time(job.get("dispatched") or job.get("created"))
        if born is None:
            try:
                born = self._job_file(job["job_id"]).stat().st_mtime
            except OSError:
                return "alive"
        return "none" if time.time() - born > NO_PID_GRACE_S else "alive"

    def log_tail(self, job_id: str, n_lines: int = 50) -> str:
        """The last ``n_lines`` lines of a job's log ("" when it has none yet)."""
        path = self.log_path(job_id)
        if not self._job_file(job_id).exists():
            raise JobError(f"job '{job_id}' not found in {self.jobs_dir}")
        if not path.exists() or n_lines <= 0:
            return ""
        size = path.stat().st_size
        chunk = max(4096, n_lines * 240)
        with open(path, "rb") as fh:
            while True:
                start = max(0, size - chunk)
                fh.seek(start)
                data = fh.read()
                lines = data.splitlines()
                if start == 0 or len(lines) > n_lines:
                    break
                chunk *= 4
        return "\n".join(x.decode("utf-8", errors="replace") for x in lines[-n_lines:])

    def wait(self, job_id: str, timeout: float = 60.0, poll: float = 0.1) -> dict[str, Any]:
        """Block until a job has finished (any final state); return its state.

        Raises
        ------
        JobError
            Still not finished after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise JobError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            time.sleep(poll)

    # -- cancel ------------------------------------------------------------------
    def cancel(self, job_id: str, grace: float = 5.0) -> dict[str, Any]:
        """Ask a job to stop; return its state.

        A ``process`` job gets SIGTERM on its process group (the job marks
        itself cancelled); if it is still alive after ``grace`` seconds, it
        gets SIGKILL and is marked cancelled here. A ``celery`` job is revoked
        if it has not started, and otherwise stops at its next progress
        report. Cancelling a finished job does nothing.
        """
        job = self.get(job_id)
        if job["status"] in FINISHED:
            return job
        (self.job_dir(job_id) / "cancel").touch()
        return self._runner_of(job).cancel(self, job, grace)

    def _mark_cancelled(self, job_id: str) -> dict[str, Any]:
        with self._locked(job_id):
            job = self._read(job_id)
            if job["status"] in ACTIVE:
                job.update(status="cancelled", finished=_now(), error=None)
                job["progress"] = {**job.get("progress", {}), "message": "cancelled"}
                self._write(job)
        job["cancel_requested"] = True
        return job

    # -- housekeeping ------------------------------------------------------------
    def delete(self, job_id: str) -> None:
        """Delete a finished job's folder (JobError if it is still active)."""
        job = self.get(job_id)
        if job["status"] in ACTIVE:
            raise JobError(f"job {job_id} is still {job['status']}: cancel it before deleting it")
        self._remove(job_id)

    def _remove(self, job_id: str) -> None:
        import shutil

        path = self.job_dir(job_id)
        trash = self.jobs_dir / f".deleted-{job_id}-{uuid.uuid4().hex[:6]}"
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    def cleanup(self, keep: int = 50) -> int:
        """Delete finished jobs beyond the ``keep`` newest; active ones are kept.

        Returns
        -------
        int
            Number of job folders deleted.
        """
        finished = [j for j in self.list_jobs(limit=None) if j["status"] in FINISHED]
        removed = 0
        for job in finished[keep:]:
            try:
                self._remove(job["job_id"])
                removed += 1
            except OSError as exc:
                logger.warning("could not delete job %s: %s", job["job_id"], exc)
        return removed


# -- inside the job process ------------------------------------------------------


class _Reporter:
    """The progress callback handed to a job's function.

    Writes job.json at most every :data:`PROGRESS_INTERVAL` seconds (and always
    the first and the final report), and raises :class:`JobCancelled` when a
    cancel was requested (the cooperative path used under Celery).
    """

    def __init__(self, store: JobStore, job: dict[str, Any]) -> None:
        self.store = store
        self.job = job
        self.cancel_file = store.job_dir(job["job_id"]) / "cancel"
        self._last_write = 0.0
        self._last_log = 0.0
        self._last_message = ""
        self._pending = False
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int, message: str = "") -> None:
        with self._lock:
            self.job["progress"] = _progress_dict(done, total, message)
            now = time.monotonic()
            self._pending = True
            if now - self._last_write >= PROGRESS_INTERVAL or (total and done >= total):
                if self.cancel_file.exists():
                    raise JobCancelled("cancel requested")
                with self.store._locked(self.job["job_id"]):
                    self.store._write(self.job)
                self._last_write = now
                self._pending = False
            if message and message != self._last_message and now - self._last_log >= 1.0:
                logger.info("progress %s/%s: %s", done, total, message)
                self._last_message, self._last_log = message, now

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                with self.store._locked(self.job["job_id"]):
                    self.store._write(self.job)
                self._pending = False


def _free_slot(store: JobStore, job: dict[str, Any]) -> None:
    """After a job of a slot class ends: start the next job waiting for the class."""
    if not job_slot(job["kind"], job.get("params") or {}):
        return
    try:
        store.dispatch()
    except Exception as exc:  # noqa: BLE001 - the next listing of the jobs dispatches too
        logger.warning("could not start the next waiting job: %s", exc)


def run_job(
    job_id: str, root: str | os.PathLike[str] | None = None, *, handle_signals: bool = True
) -> dict[str, Any]:
    """Run a submitted job in the current process and record its outcome.

    Called by the process runner (``python -m recsys.jobs run``) and by the
    Celery task. Marks the job running (with this process's pid), logs to
    ``log.txt``, calls the kind's function with a throttled progress
    callback, and records ``done`` with the result, ``failed`` with a one-line
    error (traceback in the log), or ``cancelled``.

    Parameters
    ----------
    job_id : str
        A job created by :meth:`JobStore.submit`.
    root : path-like, optional
        The data directory.
    handle_signals : bool
        Install a SIGTERM handler that cancels the job (the process runner).
        Celery workers keep their own handlers (pass False).

    Returns
    -------
    dict
        The final job state.
    """
    import psutil

    store = JobStore(root, runner="process")
    with store._locked(job_id):  # queued -> running, or nothing if a cancel got there first
        job = store._read(job_id)
        if job["status"] not in ("queued",):
            logger.warning("job %s is %s, not queued: not running it again", job_id, job["status"])
            return job
        if not (store.job_dir(job_id) / "cancel").exists():
            job.update(
                status="running",
                started=_now(),
                pid=os.getpid(),
                pid_created=psutil.Process().create_time(),
                host=socket.gethostname(),
                progress=_progress_dict(0, 0, "starting"),
            )
            store._write(job)
    if job["status"] == "queued":  # cancelled before it started
        job = store._mark_cancelled(job_id)
        _free_slot(store, job)
        return job

    handler = logging.FileHandler(store.log_path(job_id), mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_logger = logging.getLogger()
    old_level = root_logger.level
    root_logger.addHandler(handler)
    if root_logger.level > logging.INFO or root_logger.level == logging.NOTSET:
        root_logger.setLevel(logging.INFO)

    previous_handler = None
    in_main = threading.current_thread() is threading.main_thread()
    if handle_signals and in_main:

        def on_term(signum: int, frame: Any) -> None:
            raise JobCancelled(f"signal {signum}")

        previous_handler = signal.signal(signal.SIGTERM, on_term)

    reporter = _Reporter(store, job)
    t0 = time.perf_counter()
    logger.info("job %s (%s) started: %s params=%s", job_id, job["kind"], job["target"], job["params"])
    try:
        try:
            fn = _resolve(job["target"])
            result = fn(**job["params"], root=str(store.root), progress=reporter)
            # From here on a late SIGTERM must not turn a finished job into a cancelled one.
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            result = json.loads(json.dumps(result, default=str))
            reporter.flush()
            job.update(status="done", result=result, error=None)
            logger.info("job %s done in %.1f s", job_id, time.perf_counter() - t0)
        except (JobCancelled, KeyboardInterrupt):
            reporter.flush()
            job.update(status="cancelled", error=None)
            job["progress"] = {**job["progress"], "message": "cancelled"}
            logger.info("job %s cancelled after %.1f s", job_id, time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 - every failure must be recorded
            reporter.flush()
            job.update(status="failed", error=_one_line_error(exc))
            logger.error("job %s failed: %s\n%s", job_id, job["error"], traceback.format_exc())
        job.update(finished=_now(), seconds=round(time.perf_counter() - t0, 3))
        with store._locked(job_id):
            store._write(job)
        _free_slot(store, job)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)
        handler.close()
    return job
