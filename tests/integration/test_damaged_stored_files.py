"""Stored files damaged on disk, as a user meets them: each page, callback, REST route and CLI
command that reads the file names it and says what is wrong (never a 500, never "no data"),
and the rest of the app keeps working. Requests are built from the app's own
``/_dash-dependencies`` (see ``test_hostile_requests``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_hostile_requests import _dep, _open, _post, _text


def _prod2vec(root: Path) -> str:
    from recsys.registry import Registry

    return next(r["run_id"] for r in Registry(root).list_runs() if r["family"] == "prod2vec")


def _judged(root: Path, run: str) -> Path:
    """A judgments file with one thumbs-down on a pair the run shows."""
    from recsys.vetting.store import JudgmentStore

    store = JudgmentStore(root)
    store.judge(dataset="demo", run=run, seed="P000001", item_id="P000002", verdict=-1, user="ann")
    return store.path


# ---------------------------------------------------------------------------
# judgments.sqlite damaged: the precision panels say so (they read "no judgments" before)
# ---------------------------------------------------------------------------
JUDGMENT_DAMAGE = {
    "garbage": lambda b: b"this is not an SQLite database" * 100,
    "truncated": lambda b: b[:100],
}


def _vetting_precision(client, app, root, run) -> str:
    dep = _dep(client, app, "components.vetting_panels.update_precision")
    resp = _post(
        client, dep, {"vetting-run.value": run, "vetting-precision-k.value": 10}, "vetting-run.value"
    )
    assert resp.status_code == 200, _text(resp)[:300]
    return _text(resp)


def _compare_vetted(client, app, root, run) -> str:
    dep = _dep(client, app, "pages.compare.update_vetted")
    trigger = dep["inputs"][0]
    resp = _post(
        client, dep, {f"{trigger['id']}.{trigger['property']}": 10}, f"{trigger['id']}.{trigger['property']}"
    )
    assert resp.status_code == 200, _text(resp)[:300]
    return _text(resp)


def _cli_evaluate(client, app, root, run) -> str:
    import contextlib
    import io

    from recsys.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--data-dir", str(root), "-q", "evaluate", run])
    assert code == 0, err.getvalue()  # the run's metrics are still printed
    assert "hr@10" in out.getvalue()
    return json.dumps(out.getvalue() + err.getvalue())


@pytest.mark.parametrize("damage", sorted(JUDGMENT_DAMAGE))
@pytest.mark.parametrize(
    "surface", [_vetting_precision, _compare_vetted, _cli_evaluate], ids=lambda f: f.__name__
)
def test_a_damaged_judgments_file_is_named_in_the_precision_panels(
    client, app, demo_data_copy, surface, damage
):
    run = _prod2vec(demo_data_copy)
    path = _judged(demo_data_copy, run)
    healthy = surface(client, app, demo_data_copy, run)
    assert "damaged" not in healthy
    path.write_bytes(JUDGMENT_DAMAGE[damage](path.read_bytes()))
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    text = surface(client, app, demo_data_copy, run)
    assert "judgments file" in text and "damaged" in text and "judgments.sqlite" in text, text[-600:]
    assert "No judgments" not in text and "no judgments" not in text


def test_a_visit_to_the_vetting_page_creates_no_judgments_file(client, app, demo_data_copy):
    """Reads (the page, its queue list, its precision panel) leave the data directory as it was."""
    run = _prod2vec(demo_data_copy)
    assert not (demo_data_copy / "vetting").exists()
    resp = _open(client, "/vetting", f"?run={run}")
    assert resp.status_code == 200 and "shell-callback-error" not in _text(resp)
    dep = _dep(client, app, "pages.vetting.update_queues")
    resp = _post(client, dep, {"vetting-run.value": run}, "vetting-run.value")
    assert resp.status_code == 200, _text(resp)[:300]
    _vetting_precision(client, app, demo_data_copy, run)
    assert not (demo_data_copy / "vetting").exists()


# ---------------------------------------------------------------------------
# a run's files damaged after the page was drawn: the Map says which file (it fell to the
# page-wide safety net, or said "internal error (ValueError)" for item_ids.npy), the REST
# API lists the other runs
# ---------------------------------------------------------------------------
def _garbage(b: bytes) -> bytes:
    return b"\xff\xfe\x00\x81 not what was stored \x00"


DAMAGE = {
    "truncated": lambda b: b[: max(1, len(b) // 2)],
    "empty": lambda b: b"",
    "not utf-8": _garbage,
    "wrong shape": lambda b: b"[1, 2, 3]",
    "missing": None,
}
RUN_FILES = {  # damage class -> the run's files it is tried on
    "truncated": ["item_ids.npy", "fallback/fallback.json", "choice.json", "fallback/key_1.npy"],
    "empty": ["item_ids.npy", "fallback/fallback.json", "choice.json"],
    "not utf-8": ["item_ids.npy", "fallback/fallback.json", "choice.json"],
    "wrong shape": ["fallback/fallback.json", "model.json"],
    "missing": ["vectors.npy", "model.json", "fallback/popularity.npy"],
}


def _damage(path: Path, damage: str) -> None:
    if DAMAGE[damage] is None:
        path.unlink()
    else:
        path.write_bytes(DAMAGE[damage](path.read_bytes()))


@pytest.mark.parametrize(
    "damage,name", [(d, f) for d, files in RUN_FILES.items() for f in files], ids=lambda v: str(v)
)
def test_a_damaged_run_file_is_named_on_the_map_and_the_other_runs_keep_working(
    client, app, demo_data_copy, damage, name
):
    run = _prod2vec(demo_data_copy)
    _damage(demo_data_copy / "runs" / run / name, damage)
    dep = _dep(client, app, "pages.map.draw_map")
    values = {"map-run.value": run, "map-method.value": "pca", "map-color.value": "category:0"}
    resp = _post(client, dep, values, "map-run.value")
    assert resp.status_code == 200, _text(resp)[:300]
    text = _text(resp)
    assert "shell-callback-error" not in text  # the Map's own message, not the safety net's
    assert Path(name).name in text and "damaged" in text, text[-500:]
    runs = client.get("/api/v1/runs")
    assert runs.status_code == 200
    listed = {r["run_id"]: r for r in runs.get_json()["runs"]}
    assert any(r["family"] == "popularity" and r["status"] == "complete" for r in listed.values())


# ---------------------------------------------------------------------------
# the users file: the app refuses to start with one line naming it, never a traceback
# ---------------------------------------------------------------------------
USERS = "users:\n  - name: ann\n    role: editor\n    password_hash: 'pbkdf2:sha256:1$salt$hash'\n"


@pytest.mark.parametrize("damage", ["truncated", "empty", "not utf-8", "wrong shape", "missing"])
def test_a_damaged_users_file_refuses_the_start_naming_it(tmp_path, demo_data_copy, damage):
    import os
    import subprocess
    import sys

    path = tmp_path / "users.yaml"
    path.write_text(USERS)
    _damage(path, damage)
    env = {**os.environ, "RECSYS_USERS_FILE": str(path), "RECSYS_DATA_DIR": str(demo_data_copy)}
    env.update(RECSYS_NO_DEMO="1")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", "import app"], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr[-800:]
    assert "Traceback" not in done.stderr and str(path) in done.stderr, done.stderr[-800:]


# ---------------------------------------------------------------------------
# a tuning record of another shape in run.json: the run's details name it (was a bare error)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tuning",
    ["x", {"trials": "x"}, {"trials": [1]}, {"trials": [{"number": 1}], "searched": ["window"]}],
    ids=["text", "trials text", "trial a number", "trial without params"],
)
def test_a_tuning_record_of_the_wrong_shape_is_named_in_the_run_details(client, app, demo_data_copy, tuning):
    run = _prod2vec(demo_data_copy)
    path = demo_data_copy / "runs" / run / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "tuning": tuning}))
    dep = _dep(client, app, "pages.runs.show_tuning")
    resp = _post(client, dep, {"runs-grid.selectedRows": [{"run_id": run}]}, "runs-grid.selectedRows")
    assert resp.status_code == 200, _text(resp)[:300]
    text = _text(resp)
    assert "shell-callback-error" not in text
    assert "tuning trials in its run.json" in text and run in text, text[-500:]
    assert client.get(f"/api/v1/runs/{run}").status_code == 200  # the run itself still answers


def test_a_viewers_visit_creates_no_presets_folder(client, app, demo_data_copy):
    """Every page that lists presets (their dropdowns), the REST API's preset list and an unknown
    preset's read leave a data directory without presets as it was; the first save makes it."""
    import shutil

    from recsys.errors import PresetNotFoundError
    from recsys.filters import FilterConfig, PresetStore

    run = _prod2vec(demo_data_copy)
    presets = demo_data_copy / "presets"
    shutil.rmtree(presets, ignore_errors=True)
    for path, query in [
        ("/explore", f"?run={run}"),
        ("/compare", ""),
        ("/vetting", f"?run={run}"),
        ("/map", ""),
    ]:
        resp = _open(client, path, query)
        assert resp.status_code == 200 and "shell-callback-error" not in _text(resp), path
    assert client.get("/api/v1/presets").status_code == 200
    store = PresetStore(demo_data_copy)
    assert store.list() == [] and store.damaged() == []
    for read in (store.load, store.history, store.delete):
        with pytest.raises(PresetNotFoundError):
            read("nope")
    assert not presets.exists()
    assert store.save("first", FilterConfig(same_category=True)) == 1 and (presets / "first.json").exists()


# ---------------------------------------------------------------------------
# the fallback chain's co-occurrence model and a family's own files (a TF-IDF run's matrix):
# named within the run with what is wrong (was "the model cannot be loaded (BadZipFile: ...)")
# ---------------------------------------------------------------------------
COOC = "fallback/cooccurrence/"
MODEL_FILES = {  # damage class -> (family, file) it is tried on
    "truncated": [
        ("prod2vec", COOC + "similarity.npz"),
        ("prod2vec", COOC + "item_ids.npy"),
        ("tfidf", "tfidf.npz"),
    ],
    "not utf-8": [
        ("prod2vec", COOC + "similarity.npz"),
        ("prod2vec", COOC + "model.json"),
        ("tfidf", "tfidf.npz"),
    ],
    "wrong shape": [("prod2vec", COOC + "model.json")],
    "missing": [
        ("prod2vec", COOC + "popularity.npy"),
        ("prod2vec", COOC + "model.json"),
        ("tfidf", "tfidf.npz"),
    ],
}
WHAT_IS_WRONG = {
    "truncated": ("is truncated", "is not a readable"),
    "not utf-8": ("is not a readable", "is not UTF-8", "not JSON"),
    "wrong shape": ("should hold", "of the stored shape"),
    "missing": ("is missing",),
}


@pytest.mark.parametrize(
    "damage,family,name",
    [(d, fam, f) for d, files in MODEL_FILES.items() for fam, f in files],
    ids=lambda v: str(v),
)
def test_a_damaged_model_file_is_named_within_the_run(client, app, demo_data_copy, damage, family, name):
    import numpy as np

    from recsys.pipeline import train_run

    if family == "prod2vec":
        run = _prod2vec(demo_data_copy)
    else:
        run = train_run(family, {}, "demo", demo_data_copy, label=f"{family} (test)")["run_id"]
    folder = demo_data_copy / "runs" / run
    seed = str(np.load(folder / "item_ids.npy")[0])
    _damage(folder / name, damage)
    resp = client.get(f"/api/v1/similar/{seed}?run={run}&k=5")
    assert resp.status_code == 503, resp.get_data(as_text=True)[:300]
    text = resp.get_data(as_text=True)
    assert name in text, text[:400]  # the file, as a path within the run
    assert any(w in text for w in WHAT_IS_WRONG[damage]), text[:400]
    assert "cannot be loaded" not in text, text[:400]
    # the Runs listing says the same, and the other runs still answer
    listed = {r["run_id"]: r for r in client.get("/api/v1/runs").get_json()["runs"]}
    assert any(r["family"] == "popularity" and r["status"] == "complete" for r in listed.values())
