"""The REST API keeps the contract its OpenAPI document states, checked by Schemathesis.

A client generated from ``/api/v1/openapi.json`` must be able to trust it: Schemathesis (a
property-based tester driven by the document) sends each operation requests built from its
schemas, valid and invalid, through the whole app (the login configured, the editor's token)
and checks that no answer is a 5xx, that every status and body is one the document declares,
that a request the document forbids (an unknown field, a wrong type) is refused, and that a
method a path does not serve is a 405. The cases are derandomised, so a run is repeatable.

POST /train and POST /tune are left out: a valid request starts a training job. Their refusals
are in ``tests/reliability/test_bad_inputs.py``; their auth in ``test_hostile_requests.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

EDITOR_TOKEN = "editor-contract-0123456789"
VIEWER_TOKEN = "viewer-contract-9876543210"
EDITOR = {"Authorization": f"Bearer {EDITOR_TOKEN}"}
#: the contract checked is the JSON, not the transfer: Schemathesis's in-process (WSGI) transport
#: does not undo a zstd or brotli body as an HTTP client does (a 200 of POST /similar at k=200
#: came back compressed in one CI run); compression has its own tests (test_compression.py)
PLAIN = {**EDITOR, "Accept-Encoding": "identity"}


@pytest.fixture(scope="module")
def server(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from tests.integration.conftest import _fresh_app

    root = tmp_path_factory.mktemp("contract") / "data"
    shutil.copytree(demo_data_dir, root, ignore=shutil.ignore_patterns("jobs", "uploads", "device.json"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_API_TOKEN", EDITOR_TOKEN)
        mp.setenv("RECSYS_VIEWER_TOKEN", VIEWER_TOKEN)
        mp.setenv("RECSYS_IMPORT_DIR", str(root.parent / "imports"))
        for var in ("RECSYS_USERS_FILE", "RECSYS_ALLOWED_HOSTS"):
            mp.delenv(var, raising=False)
        yield _fresh_app(root, mp).server


@pytest.fixture(scope="module")
def api_schema(server):
    from recsys.serving.core import openapi_spec

    spec = openapi_spec()
    # ids the demo catalogue holds, so generated requests reach the search, not only the 404
    seeds = {"enum": ["P000001", "P000002", "P000017", "P000123"]}
    spec["paths"]["/similar/{item_id}"]["get"]["parameters"][0]["schema"].update(seeds)
    spec["components"]["schemas"]["SimilarRequest"]["properties"]["item_id"].update(seeds)
    spec["components"]["schemas"]["RecommendRequest"]["properties"]["recent_item_ids"]["items"].update(seeds)
    schema = schemathesis.openapi.from_dict(spec)
    schema.app = server
    return schema.exclude(path_regex="^/(train|tune)$").exclude(method="DELETE", path_regex="^/runs/")


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.unsupported_method,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_keeps_the_documented_contract(api_schema, mode):
    # Schemathesis's pytest plugin does not load on this pytest; each operation's strategy is run
    # under Hypothesis here instead (the same cases and checks)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    checked = []
    for operation in operations:
        declared = api_schema.raw_schema["paths"][operation.path][operation.method.lower()]
        if mode is GenerationMode.NEGATIVE and not (
            declared.get("parameters") or declared.get("requestBody")
        ):
            continue  # nothing a client sends there can break the document

        @settings(
            max_examples=10,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            case.call_and_validate(headers=PLAIN, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:  # a free-text parameter alone (GET /runs?family=) has no invalid value
            assert mode is GenerationMode.NEGATIVE and "requestBody" not in declared, operation.label
            continue
        checked.append(operation.label)
    assert {"POST /similar", "POST /recommend", "PUT /presets/{name}", "GET /similar/{item_id}"} <= set(
        checked
    )


def test_a_method_a_path_does_not_serve_is_a_405_for_every_role(server):
    client = server.test_client()
    for token in (EDITOR_TOKEN, VIEWER_TOKEN):
        for method, path in (
            ("TRACE", "/api/v1/health"),
            ("PATCH", "/api/v1/similar"),
            ("PUT", "/api/v1/runs"),
        ):
            resp = client.open(path, method=method, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 405, (token[:6], method, path, resp.status_code)
            assert "GET" in resp.headers["Allow"] or "POST" in resp.headers["Allow"]  # RFC 9110
    # without a token it is still a 401: what the server serves is not told to a stranger
    assert client.open("/api/v1/health", method="TRACE").status_code == 401


def test_saving_a_preset_needs_a_body(server):
    client = server.test_client()
    resp = client.put("/api/v1/presets/empty-body", headers=EDITOR)
    assert resp.status_code == 400 and "body is required" in resp.get_json()["error"]["message"]
    assert client.get("/api/v1/presets/empty-body", headers=EDITOR).status_code == 404
    resp = client.put("/api/v1/presets/empty-body", headers=EDITOR, json={})  # {} is the defaults
    assert resp.status_code == 201
