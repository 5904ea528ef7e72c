"""What a killed save, a dead job and a full disk leave behind, and what the user is told.

- A save killed half-way leaves a hidden temporary run folder; the app's start removes it,
  but never the folder of a save that is still running.
- A job record with no live process settles to "interrupted", at start and on the poller.
- A full disk during a save (``OSError(ENOSPC)`` raised by the write itself) gives one clear
  message on the CLI, in the API (507) and in the UI, and leaves no half-written data.
"""

from __future__ import annotations

import contextvars
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) with its bytes; empty lock files aside."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with dataset "tiny" and runs A (active), B and a popularity run."""
    from tests.callbacks import _emc_data

    data = tmp_path / "data"
    data.mkdir()
    _emc_data.make_data_dir(data)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data))
    monkeypatch.setenv("RECSYS_NO_DEMO", "1")
    return data


def _model() -> Any:
    from recsys.models.prod2vec import Prod2Vec

    model = Prod2Vec()
    model.item_ids_ = np.asarray([f"i{n}" for n in range(300)], dtype=str)
    model.vectors_ = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    model._set_coverage(model.item_ids_)
    return model


# ---------------------------------------------------------------------------
# a save killed half-way
# ---------------------------------------------------------------------------
_HANGING_SAVE = """
import sys, time
from recsys.registry import Registry
from tests.reliability.test_leftovers_and_full_disk import _model

def hang(tmp):
    print("SAVING", flush=True)
    time.sleep(600)

Registry(sys.argv[1]).create_run(_model(), dataset_name="tiny", dataset_fingerprint="x", writers=[hang])
"""


def _start_hanging_save(root: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _HANGING_SAVE, str(root)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "SAVING"
    return proc


def _hidden(root: Path) -> list[Path]:
    return sorted(p for p in (root / "runs").iterdir() if p.name.startswith("."))


def test_a_killed_save_is_swept_at_start_but_a_running_one_is_not(root: Path) -> None:
    from components.jobs import on_app_start
    from recsys.registry import Registry

    runs_before = [r["run_id"] for r in Registry(root).list_runs(include_damaged=True)]
    killed = _start_hanging_save(root)
    (dead,) = _hidden(root)
    assert (dead / "vectors.npy").exists()  # half a run: model files, no run.json
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    running = _start_hanging_save(root)
    try:
        (alive,) = [p for p in _hidden(root) if p != dead]
        for p in (dead, alive):  # as if the crash happened a while ago
            os.utime(p, (time.time() - 3600, time.time() - 3600))
        on_app_start(root, demo=False)
        assert _hidden(root) == [alive], "the killed save's folder is removed, the running one kept"
        assert (alive / "vectors.npy").exists()
    finally:
        running.kill()
        running.wait()
    on_app_start(root, demo=False)
    assert _hidden(root) == []
    assert [r["run_id"] for r in Registry(root).list_runs(include_damaged=True)] == runs_before


def test_temporary_files_of_killed_writes_are_swept_and_nothing_else(root: Path) -> None:
    from components.jobs import on_app_start
    from recsys.registry import Registry

    run = Registry(root).list_runs()[0]["run_id"]
    leftovers = [
        root / "runs" / run / ".run.json.k1ll3d",
        root / "runs" / ".active.json.x7",
        root / ".device.json.q",
    ]
    kept = [root / ".device.json.pending", root / "presets" / ".lock"]
    (root / "presets").mkdir(exist_ok=True)
    for p in leftovers + kept:
        p.write_text("{")
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    before = _tree(root)
    on_app_start(root, demo=False)
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)
    after = _tree(root)
    assert after == {k: v for k, v in before.items() if root / k not in leftovers}


def test_a_dataset_replacement_killed_between_its_renames_is_put_back(root: Path) -> None:
    from recsys.data.schema import list_datasets, load_dataset
    from recsys.stored import sweep_leftovers

    before = _tree(root / "datasets" / "tiny")
    old = root / "datasets" / ".tiny.old"
    (root / "datasets" / "tiny").rename(old)  # the state after the first rename of save_dataset
    assert list_datasets(root) == []
    done = sweep_leftovers(root, min_age_s=0)
    assert list_datasets(root) == ["tiny"] and not old.exists(), done
    assert _tree(root / "datasets" / "tiny") == before
    assert len(load_dataset("tiny", root).catalog) == 20


# ---------------------------------------------------------------------------
# a job with no live process
# ---------------------------------------------------------------------------
def _orphan_job(root: Path, monkeypatch: pytest.MonkeyPatch, label: str) -> str:
    """A job whose submitter died after writing job.json and before starting its process."""
    from recsys.jobs import JobStore, ProcessRunner

    with monkeypatch.context() as m:
        m.setattr(ProcessRunner, "start", lambda self, store, job_id: None)
        return JobStore(root, runner="process").submit("sleep", {"seconds": 0}, label=label)


def test_a_job_with_no_process_settles_to_interrupted_at_start_and_on_the_poller(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.jobs.store
    from components.jobs import on_app_start, poll_jobs
    from recsys.jobs import JobStore

    store = JobStore(root)
    first = _orphan_job(root, monkeypatch, "before the restart")
    assert store.get(first)["status"] == "queued"  # within the grace period it may still start
    monkeypatch.setattr(recsys.jobs.store, "NO_PID_GRACE_S", 0.0)
    on_app_start(root, demo=False)
    job = store._read(first)  # the record on disk, not a refreshed view
    assert job["status"] == "interrupted" and "never started" in job["error"]

    second = _orphan_job(root, monkeypatch, "after the start")
    data, _, _ = poll_jobs(1, None, None)
    by_id = {j["id"]: j for j in data["jobs"]}
    assert by_id[second]["status"] == "interrupted" and data["active"] == []
    assert store._read(second)["status"] == "interrupted"


def test_a_celery_job_waiting_in_its_queue_is_left_queued(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.jobs.store
    from recsys.jobs import JobStore

    job_id = _orphan_job(root, monkeypatch, "celery")
    path = root / "jobs" / job_id / "job.json"
    path.write_text(path.read_text().replace('"runner": "process"', '"runner": "celery"'))
    monkeypatch.setattr(recsys.jobs.store, "NO_PID_GRACE_S", 0.0)
    assert JobStore(root).refresh() == [] and JobStore(root).get(job_id)["status"] == "queued"


# ---------------------------------------------------------------------------
# a full disk
# ---------------------------------------------------------------------------
def _enospc(*_: Any, **__: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def disk_fills_after(monkeypatch: pytest.MonkeyPatch):
    """``fill(n_bytes)``: numpy's array writes fail with ENOSPC once ``n_bytes`` were written.

    The write itself fails half-way (the file holds the first bytes), as on a real full disk.
    """
    import numpy.lib.format as fmt

    real = fmt.write_array

    def fill(budget: int) -> None:
        left = {"bytes": budget}

        def write_array(fp, array, *args, **kwargs):
            data = np.ascontiguousarray(array).tobytes()
            if left["bytes"] < len(data) + 128:
                fp.write(b"\x93NUMPY" + data[: max(0, left["bytes"])])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            left["bytes"] -= len(data) + 128
            return real(fp, array, *args, **kwargs)

        monkeypatch.setattr(fmt, "write_array", write_array)

    return fill


def test_a_full_disk_while_saving_a_run_keeps_nothing_and_says_so(root: Path, disk_fills_after) -> None:
    from recsys.errors import DiskFullError
    from recsys.registry import Registry

    before = _tree(root)
    disk_fills_after(5_000)  # item_ids fit, the vectors do not
    with pytest.raises(DiskFullError) as info:
        Registry(root).create_run(_model(), dataset_name="tiny", dataset_fingerprint="x")
    message = str(info.value)
    assert "was not saved: the disk is full" in message and "free some space" in message
    assert info.value.errno == errno.ENOSPC
    assert _tree(root) == before and _hidden(root) == []


def test_a_full_disk_while_writing_run_json_keeps_nothing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys.errors import DiskFullError
    from recsys.registry import Registry

    before = _tree(root)
    real = Path.write_text

    def write_text(self: Path, text: str, *args: Any, **kwargs: Any) -> int:
        if self.name == "run.json":
            real(self, text[: len(text) // 2])
            _enospc()
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(DiskFullError, match="was not saved: the disk is full"):
        Registry(root).create_run(_model(), dataset_name="tiny", dataset_fingerprint="x")
    assert _tree(root) == before


def test_the_cli_says_the_disk_is_full_without_a_traceback(
    root: Path, disk_fills_after, capsys: pytest.CaptureFixture[str]
) -> None:
    from recsys.__main__ import main

    before = _tree(root / "runs")
    disk_fills_after(0)
    code = main(["--data-dir", str(root), "-q", "train", "popularity", "--dataset", "tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: run popularity-") and "the disk is full" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _tree(root / "runs") == before


def test_the_api_answers_507_on_a_full_disk_and_writes_nothing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flask

    from recsys.serving import register_api

    server = flask.Flask("full-disk")
    register_api(server, root=root)
    client = server.test_client()
    before = _tree(root)
    monkeypatch.setattr("tempfile.mkstemp", _enospc)  # creating any file fails, as on a full disk
    resp = client.put("/api/v1/presets/new", json={"config": {"same_gender": True}})
    assert resp.status_code == 507
    assert "preset 'new' was not saved: the disk is full" in resp.get_json()["error"]["message"]
    resp = client.post("/api/v1/train", json={"family": "popularity", "dataset": "tiny"})
    assert resp.status_code == 507 and "the disk is full" in resp.get_json()["error"]["message"]
    assert _tree(root) == before


def test_the_runs_page_says_the_disk_is_full(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    from components import ids
    from recsys.registry import Registry
    from tests.callbacks._pages import page, text_of

    runs_page = page("runs")
    registry = Registry(root)
    b = next(r["run_id"] for r in registry.list_runs() if r["label"] == "B")
    before = _tree(root)
    monkeypatch.setattr("tempfile.mkstemp", _enospc)

    def call() -> Any:
        context_value.set(
            AttributeDict(triggered_inputs=[{"prop_id": f"{ids.RUNS_ACTIVATE}.n_clicks", "value": 1}])
        )
        return runs_page.run_action(1, None, [{"run_id": b}], 0)

    msg, _ = contextvars.copy_context().run(call)
    assert "Action failed" in text_of(msg) and "the disk is full" in text_of(msg)
    msg = runs_page.start_training(1, "popularity", "tiny", None, [], [])
    assert "Could not start the training job" in text_of(msg) and "the disk is full" in text_of(msg)
    assert _tree(root) == before
