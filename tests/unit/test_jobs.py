"""Background jobs: real detached processes running the diagnostic ``sleep`` kind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from recsys.errors import JobError
from recsys.jobs import JOB_KINDS, JobStore, run_job


def _wait_for(predicate, timeout: float = 20.0, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("condition not met in time")


@pytest.fixture()
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path, runner="process")


def test_sleep_job_reports_progress_and_finishes_with_result(store: JobStore) -> None:
    job_id = store.submit("sleep", {"seconds": 1.2, "steps": 6}, label="nap")
    assert store.get(job_id)["status"] in ("queued", "running")
    seen_done: set[int] = set()

    def finished():
        job = store.get(job_id)
        seen_done.add(job["progress"]["done"])
        return job if job["status"] not in ("queued", "running") else None

    job = _wait_for(finished, poll=0.02)
    assert job["status"] == "done", job
    assert job["result"]["steps"] == 6 and job["result"]["slept"] == 1.2
    # it ran in another process, not in the test process
    assert job["result"]["pid"] == job["pid"] != os.getpid()
    # progress advanced through intermediate values and ended complete
    assert len(seen_done - {0, 6}) >= 2, seen_done
    assert job["progress"] == {"done": 6, "total": 6, "message": "step 6/6", "fraction": 1.0}
    assert job["label"] == "nap" and job["error"] is None
    assert job["started"] and job["finished"] and job["seconds"] >= 1.0
    assert "done in" in store.log_tail(job_id)


def test_state_is_visible_from_another_store_and_another_process(store: JobStore) -> None:
    job_id = store.submit("sleep", {"seconds": 0.6, "steps": 3})
    other = JobStore(store.root)  # another user / web worker
    assert other.get(job_id)["kind"] == "sleep"
    assert [j["job_id"] for j in other.list_jobs()] == [job_id]
    store.wait(job_id, timeout=20)
    # a separate interpreter sees the same final state
    code = (
        "import json,sys; from recsys.jobs import JobStore; "
        f"print(json.dumps(JobStore(sys.argv[1]).get('{job_id}')['status']))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(store.root)], capture_output=True, text=True)
    assert json.loads(out.stdout) == "done", out.stderr


def test_job_outlives_the_process_that_submitted_it(store: JobStore) -> None:
    # the "app" submits a job and exits (restart, page worker recycled): the job goes on
    code = (
        "import sys; from recsys.jobs import JobStore; "
        "print(JobStore(sys.argv[1]).submit('sleep', {'seconds': 1.0, 'steps': 4}))"
    )
    app = subprocess.run([sys.executable, "-c", code, str(store.root)], capture_output=True, text=True)
    assert app.returncode == 0, app.stderr
    job_id = app.stdout.strip()
    job = JobStore(store.root).wait(job_id, timeout=30)  # the restarted app
    assert job["status"] == "done" and job["progress"]["fraction"] == 1.0


def test_cancel_running_job_stops_its_process(store: JobStore) -> None:
    job_id = store.submit("sleep", {"seconds": 30, "steps": 300})
    job = _wait_for(
        lambda: (j := store.get(job_id))["status"] == "running" and j["progress"]["done"] > 0 and j
    )
    pid = job["pid"]
    t0 = time.monotonic()
    job = store.cancel(job_id)
    assert time.monotonic() - t0 < 4, "SIGTERM should stop the job well before the grace period"
    assert job["status"] == "cancelled" and job["cancel_requested"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # the job recorded the cancel itself (SIGTERM handler) and wrote to its log
    assert "cancelled" in store.log_tail(job_id)
    assert store.get(job_id)["status"] == "cancelled"
    # cancelling again is harmless
    assert store.cancel(job_id)["status"] == "cancelled"


def test_failing_job_is_failed_with_one_line_message_and_traceback_in_log(store: JobStore) -> None:
    job_id = store.submit("sleep", {"seconds": 0.2, "steps": 4, "fail": True})
    job = store.wait(job_id, timeout=20)
    assert job["status"] == "failed"
    assert job["error"] == "sleep job asked to fail at step 3 of 4"
    assert "\n" not in job["error"]
    log = store.log_tail(job_id, 100)
    assert "Traceback (most recent call last)" in log and "JobError" in log


def test_killed_job_becomes_interrupted(store: JobStore) -> None:
    job_id = store.submit("sleep", {"seconds": 30, "steps": 300})
    job = _wait_for(lambda: (j := store.get(job_id))["status"] == "running" and j)
    os.killpg(job["pid"], signal.SIGKILL)  # e.g. the machine or the app's container restarted
    job = _wait_for(lambda: (j := JobStore(store.root).get(job_id))["status"] != "running" and j)
    assert job["status"] == "interrupted"
    assert job["error"] and job["finished"]


def test_refresh_marks_job_with_reused_pid_as_interrupted(store: JobStore) -> None:
    # A job.json left over from before a restart whose pid now belongs to another
    # process (here: this test process, with a different start time).
    job_id = store.submit("sleep", {"seconds": 0.1, "steps": 1})
    store.wait(job_id, timeout=20)
    path = store.job_dir(job_id) / "job.json"
    job = json.loads(path.read_text())
    job.update(status="running", pid=os.getpid(), pid_created=psutil.Process().create_time() - 3600)
    path.write_text(json.dumps(job))
    assert store.refresh() == [job_id]
    assert store.get(job_id)["status"] == "interrupted"
    # a live process with the right start time stays running
    job.update(status="running", pid=os.getpid(), pid_created=psutil.Process().create_time())
    path.write_text(json.dumps(job))
    assert store.refresh() == []
    assert store.get(job_id)["status"] == "running"


def test_runtime_registered_kind_runs_and_run_job_never_reruns(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(JOB_KINDS, "nap", "recsys.jobs.kinds:sleep")
    store = JobStore(tmp_path)
    job_id = store.submit("nap", {"seconds": 0.05, "steps": 2})
    job = store.wait(job_id, timeout=20)
    assert job["status"] == "done" and job["target"] == "recsys.jobs.kinds:sleep"
    # run_job refuses to run a job twice
    assert run_job(job_id, tmp_path)["status"] == "done"


def test_submit_rejects_unknown_kind_and_bad_params(store: JobStore) -> None:
    with pytest.raises(JobError, match="unknown job kind 'nope'"):
        store.submit("nope")
    with pytest.raises(JobError, match="JSON"):
        store.submit("sleep", {"seconds": object()})
    with pytest.raises(JobError, match="not found"):
        store.get("sleep-0-abc")
    with pytest.raises(JobError, match="not a valid job id"):
        store.get("../etc")
    assert store.list_jobs() == []


def test_list_filter_and_cleanup_keeps_newest(store: JobStore) -> None:
    ids = [store.submit("sleep", {"seconds": 0.05, "steps": 1}) for _ in range(3)]
    for job_id in ids:
        store.wait(job_id, timeout=20)
    failed = store.submit("sleep", {"seconds": 0.05, "steps": 2, "fail": True})
    store.wait(failed, timeout=20)
    assert [j["job_id"] for j in store.list_jobs(status="failed")] == [failed]
    assert len(store.list_jobs(limit=2)) == 2
    assert store.cleanup(keep=2) == 2
    remaining = {j["job_id"] for j in store.list_jobs(limit=None)}
    assert remaining == {failed, ids[-1]}


def test_cancel_waits_for_the_workers_write_and_never_overwrites_a_finished_result(store: JobStore) -> None:
    """A cancel that races a job's final write: the job's process holds the job lock while it
    records "done"; the cancel waits for it, then sees a finished job and leaves its result."""
    import threading

    job_id = store.submit("sleep", {"seconds": 0.1, "steps": 1})
    store.wait(job_id, timeout=20)
    path = store.job_dir(job_id) / "job.json"
    job = json.loads(path.read_text())
    job.update(status="running", result=None, pid=None)
    path.write_text(json.dumps(job))
    # another process (standing in for the job's own) takes the lock and, a moment later,
    # writes the final state through the store
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys, time\n"
            "from recsys.jobs import JobStore\n"
            "s = JobStore(sys.argv[1])\n"
            "with s._locked(sys.argv[2]):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(0.5)\n"
            "    job = s._read(sys.argv[2])\n"
            "    job.update(status='done', result={'answer': 42})\n"
            "    s._write(job)\n",
            str(store.root),
            job_id,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert holder.stdout.readline().strip() == "locked"
    out: dict = {}
    cancel = threading.Thread(target=lambda: out.update(store._mark_cancelled(job_id)))
    cancel.start()
    time.sleep(0.2)
    assert cancel.is_alive(), "the cancel must wait for the lock held by the job's process"
    holder.wait(timeout=20)
    cancel.join(timeout=20)
    final = json.loads(path.read_text())
    assert final["status"] == "done" and final["result"] == {"answer": 42}
    assert out["status"] == "done"


def test_cancel_of_a_deleted_job_names_it(store: JobStore) -> None:
    job_id = store.submit("sleep", {"seconds": 0.05, "steps": 1})
    store.wait(job_id, timeout=20)
    store.delete(job_id)
    with pytest.raises(JobError, match=job_id):
        store._mark_cancelled(job_id)


# -- slot classes: waiting UMAP-class jobs hold no process ------------------------------------


def _job_processes(job_ids: list[str]) -> set[str]:
    """Ids of the jobs that have a live ``python -m recsys.jobs run <id>`` process now."""
    alive = set()
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if "recsys.jobs" in cmd and "run" in cmd:
            alive |= {j for j in job_ids if j in cmd}
    return alive


def test_jobs_of_a_slot_class_wait_in_the_store_without_a_process(store: JobStore, monkeypatch) -> None:
    """Three UMAP-class jobs with one slot: one process at a time; the others wait as "queued"
    with no process (not even past NO_PID_GRACE_S) and start when the slot frees, started by
    the ending job's own process (nothing here lists the jobs)."""
    monkeypatch.setenv("RECSYS_UMAP_SLOTS", "1")
    monkeypatch.setattr("recsys.jobs.store.NO_PID_GRACE_S", 0.5)  # the third waits ~2 s
    ids = [store.submit("sleep", {"seconds": 1.0, "steps": 4, "slot": "umap"}) for _ in range(3)]
    first, second, third = (store.get(j) for j in ids)
    assert first["status"] in ("queued", "running") and not first.get("waiting")
    for waiting in (second, third):
        assert waiting["status"] == "queued" and waiting["waiting"] == "umap"
        assert "waiting for a free UMAP slot" in waiting["progress"]["message"]
        assert not (store.job_dir(waiting["job_id"]) / "launch.json").exists()
    most_at_once = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # processes first, then the states: a job done by then may still have its process
        # exiting while the next one starts, and does not count
        processes = _job_processes(ids)
        jobs = [store.get(j) for j in ids]  # get() never dispatches
        unfinished = {j["job_id"] for j in jobs if j["status"] != "done"}
        most_at_once = max(most_at_once, len(processes & unfinished))
        if all(j["status"] == "done" for j in jobs):
            break
        assert not any(j["status"] in ("failed", "interrupted") for j in jobs), jobs
        time.sleep(0.05)
    assert [j["status"] for j in jobs] == ["done"] * 3, jobs
    assert most_at_once == 1
    # one after the other: each started after the previous one finished
    for before, after in zip(jobs, jobs[1:], strict=False):
        assert after["started"] >= before["finished"], (before, after)


def test_two_slots_run_two_at_once_and_a_waiting_job_cancels_without_starting(
    store: JobStore, monkeypatch
) -> None:
    monkeypatch.setenv("RECSYS_UMAP_SLOTS", "2")
    ids = [store.submit("sleep", {"seconds": 3.0, "steps": 6, "slot": "umap"}) for _ in range(3)]
    _wait_for(lambda: _job_processes(ids[:2]) == set(ids[:2]))
    assert store.get(ids[2])["waiting"] == "umap"
    cancelled = store.cancel(ids[2])
    assert cancelled["status"] == "cancelled"
    for job_id in ids[:2]:
        assert store.wait(job_id, timeout=60)["status"] == "done"
    assert store.list_jobs(None, status="cancelled")[0]["job_id"] == ids[2]
    job = store.get(ids[2])
    assert job["status"] == "cancelled" and job["started"] is None and job["pid"] is None


def test_a_killed_slot_holder_frees_its_slot_at_the_next_listing(store: JobStore, monkeypatch) -> None:
    """A job killed without a word never runs its own dispatch: the app's listing does it."""
    monkeypatch.setenv("RECSYS_UMAP_SLOTS", "1")
    holder = store.submit("sleep", {"seconds": 30.0, "steps": 30, "slot": "umap"})
    waiting = store.submit("sleep", {"seconds": 0.2, "steps": 2, "slot": "umap"})
    pid = _wait_for(lambda: store.get(holder).get("pid"))
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    assert store.get(waiting)["status"] == "queued"
    listed = {j["job_id"]: j for j in store.list_jobs(None)}  # what the app's poller calls
    assert listed[holder]["status"] == "interrupted"
    assert listed[waiting]["status"] in ("queued", "running") and not listed[waiting].get("waiting")
    assert store.wait(waiting, timeout=60)["status"] == "done"
