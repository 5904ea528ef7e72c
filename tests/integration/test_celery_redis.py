"""The scale-out job runner: a real redis-server and a real Celery worker.

Skipped (with the reason) when the ``redis-server`` binary (Debian package
``redis-server``) or the ``celery``/``redis`` Python packages are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS = shutil.which("redis-server")
pytest.importorskip("celery", reason="celery is not installed (pip install celery redis)")
pytest.importorskip("redis", reason="the redis client is not installed (pip install redis)")
if REDIS is None:
    pytest.skip("redis-server binary not found (apt-get install redis-server)", allow_module_level=True)

from tests._redis import redis_server, stop_process  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with redis_server(REDIS, tmp_path_factory.mktemp("redis")) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _start_worker(broker: str, log: Path, *args: str) -> subprocess.Popen:
    """A real Celery worker of ``recsys.jobs.worker`` (``args``: e.g. ``-Q umap``), once it answers."""
    env = {**os.environ, "RECSYS_CELERY_BROKER": broker, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "recsys.jobs.worker",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *args,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(REPO),
        )
    from recsys.jobs import CeleryRunner

    deadline = time.monotonic() + 60
    while len(CeleryRunner(broker).ping(timeout=0.5)) < 1 + ("-Q" in args):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            pytest.fail(f"celery worker did not come up:\n{log.read_text()[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def worker(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen]:
    proc = _start_worker(broker, tmp_path_factory.mktemp("celery") / "worker.log")
    yield proc
    stop_process(proc)


@pytest.fixture()
def celery_store(broker: str, worker: subprocess.Popen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from recsys.jobs import JobStore

    monkeypatch.setenv("RECSYS_CELERY_BROKER", broker)
    monkeypatch.setenv("RECSYS_JOB_RUNNER", "celery")
    return JobStore(tmp_path)


def test_sleep_job_runs_on_celery_worker(celery_store, worker: subprocess.Popen) -> None:
    assert celery_store.runner == "celery"
    job_id = celery_store.submit("sleep", {"seconds": 0.5, "steps": 5})
    job = celery_store.wait(job_id, timeout=60)
    assert job["status"] == "done", job
    assert job["runner"] == "celery"
    # it ran inside the worker process, and reported progress and logs as usual
    assert job["result"]["pid"] == worker.pid == job["pid"]
    assert job["progress"]["fraction"] == 1.0
    assert "done in" in celery_store.log_tail(job_id)


def test_failed_and_cancelled_jobs_on_celery(celery_store) -> None:
    failing = celery_store.submit("sleep", {"seconds": 0.2, "steps": 4, "fail": True})
    job = celery_store.wait(failing, timeout=60)
    assert job["status"] == "failed" and "fail at step 3" in job["error"]

    long = celery_store.submit("sleep", {"seconds": 60, "steps": 600})
    deadline = time.monotonic() + 30
    while celery_store.get(long)["status"] != "running":
        assert time.monotonic() < deadline, "celery job never started"
        time.sleep(0.05)
    celery_store.cancel(long)
    job = celery_store.wait(long, timeout=20)  # stops at its next progress report
    assert job["status"] == "cancelled"
    # the worker survived the cancel and takes the next job
    nxt = celery_store.submit("sleep", {"seconds": 0.1, "steps": 1})
    assert celery_store.wait(nxt, timeout=60)["status"] == "done"


def test_umap_jobs_go_to_their_own_queue_when_one_is_named(
    celery_store, broker, tmp_path, monkeypatch
) -> None:
    """RECSYS_CELERY_UMAP_QUEUE: UMAP-class jobs wait in that queue (the default worker never
    takes them) and run on a worker started for it; other jobs still go to the default queue."""
    monkeypatch.setenv("RECSYS_CELERY_UMAP_QUEUE", "recsys-umap-test")
    umap_like = celery_store.submit("sleep", {"seconds": 0.2, "steps": 2, "slot": "umap"})
    plain = celery_store.submit("sleep", {"seconds": 0.2, "steps": 2})
    assert celery_store.wait(plain, timeout=60)["status"] == "done"
    time.sleep(1.0)
    assert celery_store.get(umap_like)["status"] == "queued"  # not taken by the default worker
    umap_worker = _start_worker(
        broker, tmp_path / "umap-worker.log", "-Q", "recsys-umap-test", "--concurrency=1"
    )
    try:
        job = celery_store.wait(umap_like, timeout=60)
        assert job["status"] == "done" and job["pid"] == umap_worker.pid
    finally:
        stop_process(umap_worker)
