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


@pytest.fixture
def app(demo_data_copy, monkeypatch, tmp_path):
    from tests.integration.conftest import _fresh_app

    monkeypatch.setenv("RECSYS_IMPORT_DIR", str(tmp_path / "imports"))
    for var in ("RECSYS_API_TOKEN", "RECSYS_VIEWER_TOKEN", "RECSYS_USERS_FILE", "RECSYS_ALLOWED_HOSTS"):
        monkeypatch.delenv(var, raising=False)
    return _fresh_app(demo_data_copy, monkeypatch)


@pytest.fixture
def client(app):
    c = app.server.test_client()
    assert c.get("/_dash-layout").status_code == 200
    return c


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
