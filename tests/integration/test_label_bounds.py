"""Labels a user types (a run's label on the Runs form and ``POST /train``, a tuning run's label,
a vectors import's name) are bounded: over :data:`recsys.registry.MAX_LABEL` characters (or with a
line break) the form and the REST API say which value is too long and by how much, and nothing
is queued. Requests are built from the app's own ``/_dash-dependencies``."""

from __future__ import annotations

import json

import pytest

from recsys.registry import MAX_LABEL, label_problem
from tests.integration.test_hostile_requests import _dep, _outputs, _text

TOO_LONG = "a" * (MAX_LABEL + 1)


def _click(client, dep, values: dict[str, object]):
    """Press the form's button (its first input) with ``values`` by ``"id.property"``; pattern
    (ALL) states are sent as the empty lists a form without those fields sends."""

    def items(specs):
        out = []
        for s in specs:
            if isinstance(s["id"], dict):
                out.append([])
            else:
                out.append({**s, "value": values.get(f"{s['id']}.{s['property']}")})
        return out

    trigger = dep["inputs"][0]
    values = {**values, f"{trigger['id']}.{trigger['property']}": 1}
    body = {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": items(dep["inputs"]),
        "state": items(dep.get("state", [])),
        "changedPropIds": [f"{trigger['id']}.{trigger['property']}"],
    }
    return client.post("/_dash-update-component", json=body)


def test_the_bound_and_its_edges():
    assert label_problem(None) is None and label_problem("a" * MAX_LABEL) is None
    assert f"{MAX_LABEL + 1} characters" in label_problem(TOO_LONG)
    assert "control character" in label_problem("two\nlines")


FORMS = {
    "runs form": (
        "pages.runs.start_training",
        {"runs-family.value": "popularity", "runs-dataset.value": "demo"},
        "runs-label.value",
    ),
    "tune form": (
        "components.tuning.start_tuning",
        {"tune-family.value": "prod2vec", "tune-dataset.value": "demo", "tune-budget.value": "1m"},
        "tune-label.value",
    ),
    "vectors import form": (
        "components.vectors_io.start_vectors_import",
        {"vio-dataset.value": "demo", "vio-path.value": "vectors.npy", "vio-format.value": "npy"},
        "vio-name.value",
    ),
}


@pytest.mark.parametrize("label", [TOO_LONG, "two\nlines"], ids=["too long", "line break"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_form_refuses_a_label_over_the_bound_and_queues_nothing(client, app, demo_data_copy, form, label):
    from recsys.jobs import JobStore

    name, values, field = FORMS[form]
    before = [j["id"] for j in JobStore(demo_data_copy).list_jobs()]
    resp = _click(client, _dep(client, app, name), {**values, field: label})
    assert resp.status_code == 200, _text(resp)[:300]
    text = _text(resp)
    assert "shell-callback-error" not in text
    assert (
        f"{MAX_LABEL + 1} characters" in text and f"at most {MAX_LABEL}" in text
    ) or "control character" in text
    assert [j["id"] for j in JobStore(demo_data_copy).list_jobs()] == before


@pytest.mark.parametrize(
    "route,body",
    [
        ("/api/v1/train", {"family": "popularity", "dataset": "demo"}),
        ("/api/v1/tune", {"family": "prod2vec", "dataset": "demo", "budget": "1m"}),
    ],
)
def test_the_rest_api_refuses_a_label_over_the_bound(client, demo_data_copy, route, body):
    from recsys.jobs import JobStore

    resp = client.post(route, data=json.dumps({**body, "label": TOO_LONG}), content_type="application/json")
    assert resp.status_code == 400, _text(resp)[:300]
    error = resp.get_json()["error"]
    assert error["field"] == "label" and f"at most {MAX_LABEL}" in error["message"]
    assert JobStore(demo_data_copy).list_jobs() == []
