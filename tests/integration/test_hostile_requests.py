"""Requests an attacker or a careless user sends, through the app of ``app.py`` (Flask's test client).

Every Dash request here is built from the app's own ``/_dash-dependencies``, as the browser
builds it: opening ``/explore?run=<long>``, uploading a file with a long name, a judgment the
Vetting page's outbox sends while ``judgments.sqlite`` is damaged. Then every server callback is
sent hostile values (one input at a time) and must answer with the page's own message, never a
500. The REST routes are enumerated from Flask's URL map: every state-changing one refuses an
anonymous caller and a viewer once a token is configured.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests._stored import tree_digest

EDITOR_TOKEN = "editor-secret-0123456789"
VIEWER_TOKEN = "viewer-secret-9876543210"
LONG_RUN = "r" * 300  # a valid run id's characters, longer than a file name may be


def _deps(client) -> list[dict[str, Any]]:
    return [d for d in client.get("/_dash-dependencies").get_json() if not d.get("clientside_function")]


def _dep(client, app, name: str) -> dict[str, Any]:
    from components.access import callback_name

    return next(d for d in _deps(client) if callback_name(app.callback_map[d["output"]]["callback"]) == name)


def _outputs(output: str) -> Any:
    """The ``outputs`` the renderer sends: one spec, or a list for a multi-output callback."""
    if not output.startswith(".."):
        ident, prop = output.rsplit(".", 1)
        return {"id": ident, "property": prop}
    specs = []
    for part in output[2:-2].split("..."):
        ident, prop = part.rsplit(".", 1)
        specs.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})
    return specs


def _post(client, dep: dict[str, Any], values: dict[str, Any], changed: str):
    """POST ``dep`` with ``values`` by ``"id.property"`` (None for the others), ``changed`` fired."""

    def items(specs):
        return [
            {"id": s["id"], "property": s["property"], "value": values.get(f"{s['id']}.{s['property']}")}
            for s in specs
        ]

    body = {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": items(dep["inputs"]),
        "state": items(dep.get("state", [])),
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", json=body)


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _open(client, path: str, search: str = ""):
    """What the browser asks when the address bar says ``path?search``."""
    router = next(d for d in _deps(client) if "_pages_content.children" in d["output"])
    values = {"_pages_location.pathname": path, "_pages_location.search": search}
    return _post(client, router, values, "_pages_location.pathname")


# ---------------------------------------------------------------------------
# a run id longer than a file name may be (was an OSError: 500, and a blank page)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/explore", "/map"])
def test_a_long_run_id_in_the_address_shows_the_page_and_says_the_id_is_invalid(client, path):
    resp = _open(client, path, f"?run={LONG_RUN}")
    assert resp.status_code == 200, _text(resp)[:300]
    body = resp.get_json()["response"]
    assert "_pages_content" in body  # the page itself was drawn
    assert "shell-callback-error" not in body  # not the safety net: the page handled it
    if path == "/explore":
        assert "This run cannot be explored" in _text(resp) and "not found" in _text(resp)


# ---------------------------------------------------------------------------
# uploads: a long browser file name, and a second file under a name already there
# ---------------------------------------------------------------------------
def _data_url(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def test_an_upload_with_a_long_name_is_stored_under_a_short_one(client, app, tmp_path):
    dep = _dep(client, app, "pages.data.receive_upload")
    name = "e" * 250 + ".csv"  # 254 bytes: a name Linux and macOS allow
    resp = _post(
        client,
        dep,
        {"data-upload.contents": _data_url("session_id,item_id\ns1,a\n"), "data-upload.filename": name},
        "data-upload.contents",
    )
    assert resp.status_code == 200, _text(resp)[:300]
    stored = Path(resp.get_json()["response"]["data-path"]["value"])
    assert stored.parent == tmp_path / "imports" / "uploads" and stored.suffix == ".csv"
    assert len(stored.name) <= 120 and stored.read_text() == "session_id,item_id\ns1,a\n"


def test_a_second_file_uploaded_under_the_same_name_keeps_the_first(client, app, tmp_path):
    dep = _dep(client, app, "pages.data.receive_upload")
    paths = []
    for text in ("session_id,item_id\ns1,a\n", "session_id,item_id\ns2,b\n", "session_id,item_id\ns2,b\n"):
        values = {"data-upload.contents": _data_url(text), "data-upload.filename": "events.csv"}
        resp = _post(client, dep, values, "data-upload.contents")
        assert resp.status_code == 200, _text(resp)[:300]
        paths.append(Path(resp.get_json()["response"]["data-path"]["value"]))
    assert paths[0].name == "events.csv" and paths[0].read_text().endswith("s1,a\n")
    assert paths[1] != paths[0] and paths[1].read_text().endswith("s2,b\n")
    assert paths[2] == paths[1]  # the same bytes again: the same file
    assert sorted(p.name for p in (tmp_path / "imports" / "uploads").iterdir()) == sorted(
        {p.name for p in paths}
    )


# ---------------------------------------------------------------------------
# a damaged judgments.sqlite
# ---------------------------------------------------------------------------
def _damage_judgments(root: Path) -> Path:
    path = root / "vetting" / "judgments.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an SQLite database" * 100)
    return path


def test_a_damaged_judgments_file_is_named_on_the_vetting_page(client, demo_data_copy):
    path = _damage_judgments(demo_data_copy)
    resp = _open(client, "/vetting")
    assert resp.status_code == 200, _text(resp)[:300]
    assert "_pages_content" in resp.get_json()["response"]
    assert "judgments file" in _text(resp) and "damaged" in _text(resp) and str(path.name) in _text(resp)


def test_a_judgment_sent_while_the_file_is_damaged_is_not_acknowledged(client, app, demo_data_copy):
    """The browser keeps an unacknowledged judgment in its outbox and sends it again."""
    from recsys.registry import Registry

    run = next(r["run_id"] for r in Registry(demo_data_copy).list_runs() if r["family"] == "prod2vec")
    path = _damage_judgments(demo_data_copy)
    damaged = path.read_bytes()
    dep = _dep(client, app, "pages.vetting.store_judgments")
    entry = {
        "t": 1,
        "dataset": "demo",
        "run": run,
        "preset": None,
        "seed": "P000001",
        "item_id": "P000002",
        "position": 1,
        "verdict": 1,
        "reason": "",
        "note": "",
        "at": "2026-01-01T00:00:00.000Z",
    }
    resp = _post(client, dep, {"vetting-outbox.data": [entry]}, "vetting-outbox.data")
    assert resp.status_code == 200, _text(resp)[:300]
    answer = resp.get_json()
    assert "vetting-acked" not in answer["response"]  # nothing acknowledged: nothing lost
    assert "damaged" in json.dumps(answer["sideUpdate"]["shell-callback-error"])  # the page says why
    assert path.read_bytes() == damaged


# ---------------------------------------------------------------------------
# every callback, hostile values one input at a time
# ---------------------------------------------------------------------------
HOSTILE = ["../../etc/passwd", "x" * 5000, -5, 10**12, 3.5, True, {"a": 1}, ["a"], "a\x00b", "C:\\x"]


def _concrete(ident: Any) -> Any:
    """A pattern id (``{"type": ..., "panel": ["MATCH"]}``) as one component of it."""
    if not isinstance(ident, dict):
        return ident
    return {k: ("explore" if isinstance(v, list) else v) for k, v in ident.items()}


def test_no_callback_answers_500_to_hostile_values(client, app, demo_data_copy):
    """What a hand-made request can put in any input: a clear message or no change, never a 500."""
    from components.access import WRITE_CALLBACKS, callback_name
    from recsys.jobs import JobStore

    jobs_before = [j["id"] for j in JobStore(demo_data_copy).list_jobs()]
    failures = []
    for dep in _deps(client):
        name = callback_name(app.callback_map[dep["output"]]["callback"])
        if name in WRITE_CALLBACKS:
            continue  # writes are tried by their own tests; these must not start jobs here
        outputs = _outputs(dep["output"]) if "." in dep["output"] else []
        if isinstance(outputs, list):
            outputs = [
                [{"id": _concrete(o["id"]), "property": o["property"]}]
                if isinstance(o["id"], dict) and ["ALL"] in o["id"].values()
                else {"id": _concrete(o["id"]), "property": o["property"]}
                for o in outputs
            ]
        specs = [("inputs", i) for i in range(len(dep["inputs"]))]
        specs += [("state", i) for i in range(len(dep.get("state", [])))]
        for where, pos in specs:
            for value in HOSTILE:
                groups = {"inputs": [], "state": []}
                for kind in groups:
                    for k, spec in enumerate(dep.get(kind, [])):
                        v = value if (kind, k) == (where, pos) else None
                        if v is None and spec["property"] in ("n_clicks", "n_intervals"):
                            v = 1
                        item = {"id": _concrete(spec["id"]), "property": spec["property"], "value": v}
                        is_all = isinstance(spec["id"], dict) and ["ALL"] in spec["id"].values()
                        groups[kind].append([item] if is_all else item)
                trigger = dep["inputs"][pos if where == "inputs" else 0]
                tid = _concrete(trigger["id"])
                tid = json.dumps(tid, sort_keys=True, separators=(",", ":")) if isinstance(tid, dict) else tid
                body = {
                    "output": dep["output"],
                    "outputs": outputs,
                    "inputs": groups["inputs"],
                    "state": groups["state"],
                    "changedPropIds": [f"{tid}.{trigger['property']}"],
                }
                resp = client.post("/_dash-update-component", json=body)
                if resp.status_code >= 500 or "Traceback" in _text(resp):
                    failures.append((name, where, pos, repr(value)[:20], resp.status_code))
    assert failures == []
    assert [j["id"] for j in JobStore(demo_data_copy).list_jobs()] == jobs_before  # reads start no job


# ---------------------------------------------------------------------------
# every state-changing REST route, from Flask's URL map
# ---------------------------------------------------------------------------
def test_every_rest_write_route_refuses_anonymous_and_viewer_callers(demo_data_copy, monkeypatch, tmp_path):
    from tests.integration.conftest import _fresh_app

    monkeypatch.setenv("RECSYS_API_TOKEN", EDITOR_TOKEN)
    monkeypatch.setenv("RECSYS_VIEWER_TOKEN", VIEWER_TOKEN)
    monkeypatch.delenv("RECSYS_ALLOWED_HOSTS", raising=False)
    server = _fresh_app(demo_data_copy, monkeypatch).server
    client = server.test_client()
    before = tree_digest(demo_data_copy)
    routes = []
    for rule in server.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            url = rule.rule.replace("<path:", "<").replace("<", "").replace(">", "")  # /presets/name
            view = server.view_functions[rule.endpoint]
            routes.append((method, url, bool(getattr(view, "requires_token", False))))
    writes = [(m, u) for m, u, w in routes if w]
    assert {("DELETE", "/api/v1/runs/run_id"), ("POST", "/api/v1/tune"), ("POST", "/api/v1/train")} <= set(
        writes
    )
    assert ("PUT", "/api/v1/presets/name") in writes and ("POST", "/api/v1/presets/name") in writes
    reads = {(m, u) for m, u, w in routes if not w}
    assert reads == {("POST", "/api/v1/similar"), ("POST", "/api/v1/recommend")}, reads
    body = {"family": "popularity", "dataset": "demo", "config": {}}
    for method, url in writes:
        anon = client.open(url, method=method, json=body)
        assert anon.status_code == 401, (method, url, anon.status_code)
        viewer = client.open(
            url, method=method, json=body, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
        )
        assert viewer.status_code == 403, (method, url, viewer.status_code)
    assert tree_digest(demo_data_copy) == before


def test_a_named_viewer_from_the_users_file_cannot_run_any_write_callback(
    demo_data_copy, monkeypatch, tmp_path
):
    """The role check is the same for Flask-Login users as for tokens: every write callback,
    sent as the browser of a signed-in viewer would (session cookie and CSRF header), is a 403."""
    import re

    from components.access import WRITE_CALLBACKS, _trigger_key, callback_name
    from recsys.auth import hash_password
    from tests.integration.conftest import _fresh_app

    users = tmp_path / "users.yaml"
    users.write_text(
        f"users:\n  - {{name: sam, role: viewer, password_hash: '{hash_password('sam-pw-1')}'}}\n"
    )
    monkeypatch.setenv("RECSYS_USERS_FILE", str(users))
    for var in ("RECSYS_API_TOKEN", "RECSYS_VIEWER_TOKEN", "RECSYS_ALLOWED_HOSTS"):
        monkeypatch.delenv(var, raising=False)
    app = _fresh_app(demo_data_copy, monkeypatch)
    client = app.server.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert (
        client.post(
            "/login", data={"csrf_token": csrf, "username": "sam", "password": "sam-pw-1"}
        ).status_code
        == 302
    )
    header = {"X-CSRFToken": client.get_cookie("_csrf_token").value}
    before = tree_digest(demo_data_copy)
    refused = set()
    for dep in client.get("/_dash-dependencies").get_json():
        if dep.get("clientside_function"):
            continue
        name = callback_name(app.callback_map[dep["output"]]["callback"])
        if name not in WRITE_CALLBACKS:
            continue
        props = [
            f"{json.dumps(i['id'], sort_keys=True) if isinstance(i['id'], dict) else i['id']}.{i['property']}"
            for i in dep["inputs"]
        ]
        triggers = WRITE_CALLBACKS[name]
        changed = props[:1] if triggers is None else [p for p in props if _trigger_key(p) in triggers][:1]
        body = {"output": dep["output"], "outputs": [], "inputs": [], "state": [], "changedPropIds": changed}
        resp = client.post("/_dash-update-component", json=body, headers=header)
        assert resp.status_code == 403, (name, resp.status_code)
        assert "sam" in resp.get_json()["error"]["message"]
        refused.add(name)
    assert refused == set(WRITE_CALLBACKS)
    assert tree_digest(demo_data_copy) == before
