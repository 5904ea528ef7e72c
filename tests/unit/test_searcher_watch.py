"""The searcher cache skips its per-call file checks while nothing changed (issue 18, serving).

A live ``/similar`` request used to ``stat`` eight files (the run's, its dataset report) before
searching; with the run and report folders watched (inotify) a call makes none while no file
changed, and a change made before a call is still seen by that call.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import INTERACTION_COLUMNS, Dataset, save_dataset
from recsys.models import FAMILIES
from recsys.registry import Registry
from recsys.search import clear_searcher_cache, get_searcher
from tests.unit.test_search import FixedVectors, make_catalog

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux-only")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setitem(FAMILIES, "test_fixed", "tests.unit.test_search:FixedVectors")
    cat, inter = make_catalog(40, 0)[0], pd.DataFrame(columns=list(INTERACTION_COLUMNS), dtype=object)
    save_dataset(Dataset("tiny", cat, inter), tmp_path)
    reg = Registry(tmp_path)
    meta = reg.create_run(FixedVectors().fit(None), dataset_name="tiny", dataset_fingerprint="x")
    clear_searcher_cache()
    yield reg, meta["run_id"], cat, inter
    clear_searcher_cache()


def count_stats(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = os.stat

    def counting(path, *a, **kw):
        seen.append(str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(os, "stat", counting)
    return seen


def test_a_warm_searcher_costs_no_stat_per_call(run, monkeypatch):
    reg, run_id, _, _ = run
    first = get_searcher(reg, run_id)
    for _ in range(2):  # the folders are watched from the second call's full check on
        assert get_searcher(reg, run_id) is first
    seen = count_stats(monkeypatch)
    for _ in range(5):
        assert get_searcher(reg, run_id) is first
    assert seen == []


def test_a_file_rewritten_in_place_is_seen_at_the_next_call(run):
    """vectors.npy overwritten in place (no rename): the next call loads the new vectors."""
    reg, run_id, _, _ = run
    first = get_searcher(reg, run_id)
    for _ in range(3):
        assert get_searcher(reg, run_id) is first
    path = reg.artifact_path(run_id, "vectors.npy")
    vec = np.load(path)
    with open(path, "r+b") as fh:  # same size, new values, in place
        fh.seek(-vec[-1].nbytes, os.SEEK_END)
        fh.write((vec[-1] * 2 + 1).astype(vec.dtype).tobytes())
    second = get_searcher(reg, run_id)
    assert second is not first
    np.testing.assert_allclose(second._vectors_rows[-1], vec[-1] * 2 + 1)


def test_a_reimported_catalogue_is_seen_at_the_next_call(run):
    reg, run_id, cat, inter = run
    first = get_searcher(reg, run_id)
    for _ in range(3):
        assert get_searcher(reg, run_id) is first
    cat2 = cat.copy()
    cat2["brand"] = "new-brand"
    save_dataset(Dataset("tiny", cat2, inter), reg.root)
    second = get_searcher(reg, run_id)
    assert second is not first
    assert set(second.view.attributes(np.arange(3))["brand"]) == {"new-brand"}


def test_a_deleted_run_is_seen_at_the_next_call(run):
    from recsys.errors import RunNotFoundError

    reg, run_id, _, _ = run
    for _ in range(3):
        get_searcher(reg, run_id)
    os.remove(reg.run_dir(run_id) / "run.json")
    with pytest.raises(RunNotFoundError):
        get_searcher(reg, run_id)


def test_a_run_folder_replaced_whole_is_watched_again(run):
    """The run's folder moved away and a copy with other vectors moved in at its path (a restore):
    the next call loads the copy, and a later in-place change inside the copy is seen too (the
    watch of the old folder went with it)."""
    import shutil

    reg, run_id, _, _ = run
    first = get_searcher(reg, run_id)
    for _ in range(3):
        assert get_searcher(reg, run_id) is first
    folder = reg.run_dir(run_id)
    copy = folder.with_name(folder.name + "-copy")
    shutil.copytree(folder, copy)
    vec = np.load(copy / "vectors.npy")
    np.save(copy / "vectors.npy", vec[::-1].copy())
    os.rename(folder, folder.with_name(folder.name + "-old"))
    os.rename(copy, folder)
    second = get_searcher(reg, run_id)
    assert second is not first
    np.testing.assert_allclose(second._vectors_rows, vec[::-1])
    for _ in range(3):
        assert get_searcher(reg, run_id) is second
    with open(folder / "vectors.npy", "r+b") as fh:  # in place, inside the new folder
        fh.seek(-vec[0].nbytes, os.SEEK_END)
        fh.write((vec[0] * 3).astype(vec.dtype).tobytes())
    third = get_searcher(reg, run_id)
    assert third is not second
    np.testing.assert_allclose(third._vectors_rows[-1], vec[0] * 3)


def test_the_watch_descriptor_is_closed_at_exit_and_after_a_fork(tmp_path):
    """The suite printed ``ResourceWarning: unclosed file <_io.FileIO name=12 ...>`` at exit: the
    searcher's inotify descriptor (a FileIO) was left to the interpreter's teardown, and a forked
    process (a gunicorn worker, a job) dropped its parent's copy unclosed."""
    import subprocess
    import textwrap
    from pathlib import Path

    script = textwrap.dedent(
        f"""
        import os
        from recsys.search import service
        assert service._WATCH.watch({str(tmp_path)!r})
        pid = os.fork()
        if pid == 0:  # the child opens its own descriptor, closing its copy of the parent's
            assert service._WATCH.watch({str(tmp_path)!r})
            service._WATCH.close()
            os._exit(0)
        os.waitpid(pid, 0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "always::ResourceWarning", "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-800:]
    assert "ResourceWarning" not in done.stderr, done.stderr[-800:]
