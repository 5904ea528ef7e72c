"""recsys.jobs as a package: submit-time checks of training jobs, a plugged-in runner,
the device probe as a job kind, and imports that go one way."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset, save_dataset
from recsys.errors import DatasetNotFoundError
from recsys.jobs import JobParamError, JobStore, Runner, run_job, submit_train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    items = [f"i{i}" for i in range(6)]
    catalog = pd.DataFrame(
        {
            "item_id": items,
            "title": items,
            "category": "a",
            "brand": "b",
            "gender": "",
            "price": 1.0,
            "adult": False,
            "description": "",
            "image_url": "",
        }
    )
    inter = pd.DataFrame(
        {
            "sequence_id": np.repeat(["s1", "s2"], 3),
            "user_id": "",
            "item_id": items,
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(6), unit="h"),
            "event_type": "view",
            "quantity": 1.0,
            "position": np.tile(np.arange(3, dtype=np.int64), 2),
        }
    )
    save_dataset(Dataset(name="tiny", catalog=catalog, interactions=inter), tmp_path)
    return tmp_path


class _NoStart(Runner):
    """Records what would be started, starts nothing."""

    name = "process"

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, store: JobStore, job_id: str) -> None:
        self.started.append(job_id)

    def cancel(self, store: JobStore, job: dict[str, Any], grace: float) -> dict[str, Any]:
        return store._mark_cancelled(job["job_id"])


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("word2vec", "tiny"), {}, "family"),
        ((["popularity"], "tiny"), {}, "family"),
        (("prod2vec", "tiny", {"window": "wide"}), {}, "params"),
        (("prod2vec", "tiny", {"no_such_param": 1}), {}, "params"),
        (("popularity", "tiny", [1]), {}, "params"),
        (("popularity", "tiny"), {"label": 3}, "label"),
        (("popularity", "tiny"), {"split_method": "random"}, "split_method"),
        (("popularity", "tiny"), {"repeats": "twice"}, "repeats"),
    ],
)
def test_a_bad_training_request_is_refused_at_submit_and_starts_nothing(
    root: Path, args: tuple, kwargs: dict, field: str
) -> None:
    runner = _NoStart()
    store = JobStore(root, runner=runner)
    with pytest.raises(JobParamError) as err:
        submit_train(store, *args, **kwargs)
    assert err.value.field == field
    assert runner.started == [] and store.list_jobs(limit=None) == []


def test_an_unknown_dataset_is_refused_at_submit(root: Path) -> None:
    store = JobStore(root, runner=_NoStart())
    for kwargs in ({"dataset": "nope"}, {"dataset": "tiny", "test_dataset": "nope"}):
        with pytest.raises(DatasetNotFoundError, match="dataset 'nope' not found .known: tiny"):
            submit_train(store, "popularity", **kwargs)
    assert store.list_jobs(limit=None) == []


def test_a_good_training_request_is_queued_with_train_runs_keywords(root: Path) -> None:
    runner = _NoStart()
    store = JobStore(root, runner=runner)
    job_id = submit_train(
        store, "prod2vec", "tiny", {"window": 3}, label="w3", split_method="leave_last_out", repeats="keep"
    )
    job = store.get(job_id)
    assert runner.started == [job_id] and job["kind"] == "train" and job["status"] == "queued"
    assert job["label"] == "Train prod2vec on tiny" and job["target"] == "recsys.pipeline:train_job"
    assert job["params"] == {
        "family": "prod2vec",
        "dataset_name": "tiny",
        "params": {"window": 3},
        "label": "w3",
        "split_method": "leave_last_out",
        "repeats": "keep",
    }


class _ThreadRunner(Runner):
    """A runner plugged in by the caller: each job runs in a thread of this process."""

    name = "thread"

    def start(self, store: JobStore, job_id: str) -> None:
        threading.Thread(target=run_job, args=(job_id, store.root), kwargs={"handle_signals": False}).start()

    def cancel(self, store: JobStore, job: dict[str, Any], grace: float) -> dict[str, Any]:
        return store.get(job["job_id"])  # cooperative: the job stops at its next progress report


def test_a_runner_instance_plugs_into_the_store(tmp_path: Path) -> None:
    store = JobStore(tmp_path, runner=_ThreadRunner())
    assert store.runner == "thread"
    done = store.submit("sleep", {"seconds": 0.1, "steps": 2})
    assert store.wait(done, timeout=20)["status"] == "done"
    long = store.submit("sleep", {"seconds": 30, "steps": 300})
    deadline = time.monotonic() + 20
    while store.get(long)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    store.cancel(long)
    job = store.wait(long, timeout=20)
    assert job["status"] == "cancelled" and job["runner"] == "thread"


def test_the_device_probe_is_a_job_whose_answer_the_runs_page_reads(tmp_path: Path) -> None:
    from components.jobs import device_status, list_job_summaries

    assert device_status(tmp_path) is None  # "detecting": a device job was submitted
    assert device_status(tmp_path) is None  # ...once, not on every call
    store = JobStore(tmp_path)
    jobs = store.list_jobs(limit=None, kind="device")
    assert len(jobs) == 1
    assert list_job_summaries(tmp_path) == []  # housekeeping: not shown among the user's jobs
    job = store.wait(jobs[0]["job_id"], timeout=180)
    assert job["status"] == "done", store.log_tail(job["job_id"])
    info = device_status(tmp_path, start=False)
    assert info is not None and info["device"] == job["result"]["device"]
    assert info["device"] == "CPU" or info["device"].startswith("GPU: ")


def _module_imports(path: Path) -> set[str]:
    """Modules ``path`` imports at run time (``if TYPE_CHECKING`` blocks left out)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skip.update(id(n) for n in ast.walk(node))
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_imports_go_one_way() -> None:
    folder = REPO / "recsys" / "jobs"
    jobs = {
        p.stem: {m for m in _module_imports(p) if m.startswith("recsys.jobs")} for p in folder.glob("*.py")
    }
    assert jobs["kinds"] == set() and jobs["runners"] == set()
    assert jobs["store"] == {"recsys.jobs.kinds", "recsys.jobs.runners"}
    assert jobs["worker"] == {"recsys.jobs.runners", "recsys.jobs.store"}
    assert "recsys.jobs.worker" not in set().union(*jobs.values())
    # each module imports on its own, and the package does not pull in Celery
    code = (
        "import sys, importlib\n"
        "for m in ('recsys.jobs.kinds', 'recsys.jobs.runners', 'recsys.jobs.store', 'recsys.jobs'):\n"
        "    importlib.import_module(m)\n"
        "assert 'celery' not in sys.modules, 'recsys.jobs imported celery'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
