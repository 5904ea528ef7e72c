"""REST API (recsys.serving): endpoints, error statuses, token enforcement, bind check.

The fixture is a tiny data directory built here: a 48-item catalogue in four
leaf categories (one adult), two embedding runs with seeded clustered vectors
(one with an HNSW index file) and two presets. Expected lists are computed
independently with NumPy (exact cosine over the allowed items).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import flask
import numpy as np
import pytest
import yaml

from recsys.filters import FilterConfig, PresetStore
from recsys.registry import Registry
from recsys.serving import InsecureBindError, check_bind, register_api
from tests._serving_data import BRANDS, DIM, LEAVES, N_PER_LEAF, make_client, make_serving_data  # noqa: F401


def expected_ids(
    data: dict[str, Any], run_id: str, seed: str, k: int, allow: np.ndarray | None = None
) -> list:
    """Exact cosine top-k of ``seed`` over ``allow`` (the seed excluded), by NumPy."""
    vecs = data["vectors"][run_id]
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    pos = int(np.flatnonzero(data["item_ids"] == seed)[0])
    sims = unit @ unit[pos]
    mask = np.ones(len(sims), bool) if allow is None else allow.copy()
    mask[pos] = False
    order = [i for i in np.argsort(-sims, kind="stable") if mask[i]]
    return [str(data["item_ids"][i]) for i in order[:k]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("serving")
    out = make_serving_data(root)
    out["root"] = root
    return out


@pytest.fixture(scope="module")
def client(data: dict[str, Any]) -> flask.testing.FlaskClient:
    return make_client(data["root"], token="")


def err(resp: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json, resp.get_data(as_text=True)[:200]
    body = resp.get_json()["error"]
    assert body["status"] == status and body["message"]
    if field is not None:
        assert body.get("field") == field, body
    return body


# -- read-only endpoints ----------------------------------------------------------------
def test_health_version_noop(client: Any, data: dict[str, Any]) -> None:
    health = client.get("/api/v1/health").get_json()
    assert health["status"] == "ok" and health["default_run"] == data["runs"][0]
    version = client.get("/api/v1/version").get_json()
    assert version["api"] == "v1" and "numpy" in version["libraries"]
    noop = client.get("/api/v1/noop")
    assert noop.get_json() == {} and noop.headers["Server-Timing"].startswith("app;dur=")


def test_openapi_documents_every_route(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    app = client.application
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or "<path:rest>" in rule.rule:
            continue
        path = rule.rule.removeprefix("/api/v1").replace("<path:", "{").replace("<", "{").replace(">", "}")
        assert path in spec["paths"], f"{rule.rule} is not in openapi.yaml"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} undocumented"
    assert client.get("/api/v1/openapi.yaml").status_code == 200


def test_openapi_has_no_key_without_a_value(client: Any) -> None:
    """A null value in the spec is a YAML slip (an unquoted comma in a flow mapping splits a
    description into a stray key), which OpenAPI tools then show as a property. Only a schema's
    ``default`` may be null (pydantic's FilterConfig schema: an optional rule is off by default)."""

    def nulls(node: Any, path: str) -> list[str]:
        if isinstance(node, dict):
            return [
                p
                for k, v in node.items()
                for p in ([f"{path}/{k}"] if v is None and k != "default" else nulls(v, f"{path}/{k}"))
            ]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in nulls(v, f"{path}/{i}")]
        return []

    served = client.get("/api/v1/openapi.json").get_json()
    assert nulls(served, "") == []
    assert nulls(yaml.safe_load(client.get("/api/v1/openapi.yaml").get_data(as_text=True)), "") == []
    assert served["components"]["schemas"]["FilterConfig"]["properties"]["same_category"]["type"] == "boolean"
    from recsys.filters import _PRESET_NAME

    for method, op in served["paths"]["/presets/{name}"].items():  # the document states the store's rule
        assert op["parameters"][0]["schema"]["pattern"] == _PRESET_NAME.pattern, method


def test_runs_and_presets_listing(client: Any, data: dict[str, Any]) -> None:
    body = client.get("/api/v1/runs").get_json()
    ids = [r["run_id"] for r in body["runs"]]
    assert set(data["runs"]) <= set(ids)
    assert body["default_run"] == data["runs"][0]
    assert [r["active"] for r in body["runs"] if r["run_id"] == data["runs"][0]] == [True]
    names = {p["name"] for p in client.get("/api/v1/presets").get_json()["presets"]}
    assert {"same-cat", "no-adult"} <= names
    preset = client.get("/api/v1/presets/same-cat").get_json()
    assert preset["config"]["same_category"] is True
    assert preset["config_hash"] == FilterConfig(same_category=True, category_level=1).config_hash()


# -- similar items -------------------------------------------------------------------------
def test_similar_default_run_matches_exact_search(client: Any, data: dict[str, Any]) -> None:
    run_a = data["runs"][0]
    for seed in ("it000", "it020", "it030"):
        body = client.get(f"/api/v1/similar/{seed}?k=5").get_json()
        assert body["run"] == run_a and body["source"] == "live" and body["k"] == 5
        assert [i["item_id"] for i in body["items"]] == expected_ids(data, run_a, seed, 5)
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)


def test_similar_with_preset_keeps_the_category(client: Any, data: dict[str, Any]) -> None:
    cat = data["catalog"]
    level1 = cat["category"].str.rsplit(" > ", n=1).str[0].to_numpy()
    run_b = data["runs"][1]
    seed = "it030"  # Men > Shoes > Running, whose vectors sit near women's running shoes
    unfiltered = client.get(f"/api/v1/similar/{seed}?run={run_b}&k=10").get_json()
    body = client.get(f"/api/v1/similar/{seed}?run={run_b}&preset=same-cat&k=10").get_json()
    ids = [i["item_id"] for i in body["items"]]
    assert body["preset"] == "same-cat" and body["removed_by_rule"]["same_category"] > 0
    allow = level1 == "Men > Shoes"
    assert ids == expected_ids(data, run_b, seed, 10, allow)
    assert ids != [i["item_id"] for i in unfiltered["items"]]
    assert all(cat.set_index("item_id").loc[i, "category"].startswith("Men > Shoes") for i in ids)


def test_post_and_inline_filters_give_the_same_list(client: Any, data: dict[str, Any]) -> None:
    get = client.get("/api/v1/similar/it005?preset=no-adult&k=8").get_json()
    post = client.post("/api/v1/similar", json={"item_id": "it005", "preset": "no-adult", "k": 8}).get_json()
    inline = json.dumps({"exclude_adult": True, "max_per_brand": 2})
    via_filters = client.get(f"/api/v1/similar/it005?k=8&filters={inline}").get_json()
    post_filters = client.post(
        "/api/v1/similar",
        json={"item_id": "it005", "filters": {"exclude_adult": True, "max_per_brand": 2}, "k": 8},
    ).get_json()
    lists = [[i["item_id"] for i in b["items"]] for b in (get, post, via_filters, post_filters)]
    assert lists[0] == lists[1] == lists[2] == lists[3]
    brands = data["catalog"].set_index("item_id").loc[lists[0], "brand"]
    assert brands.value_counts().max() <= 2
    assert not data["catalog"].set_index("item_id").loc[lists[0], "adult"].any()


# -- error statuses ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("k=abc", 400, "k"),
        ("k=0", 400, "k"),
        ("k=201", 400, "k"),
        ("k=2.5", 400, "k"),
        ("filters={not json", 400, "filters"),
        ('filters={"category_level": -1}', 422, "category_level"),
        ('filters={"no_such_rule": true}', 422, "no_such_rule"),
        ("filters=[1, 2]", 400, "filters"),
        ("preset=nope", 404, "preset"),
        ("preset=../etc", 400, "preset"),
        ("run=no-such-run", 404, "run"),
        ("preset=same-cat&filters={}", 200, None),
        ('preset=same-cat&filters={"exclude_adult": true}', 400, "filters"),
        ("source=cache", 400, "source"),
        # a misspelt name was dropped: the list came back unfiltered with a 200 (s41-w)
        ('filter={"exclude_adult": true}', 400, "filter"),
        ("k=5&presets=same-cat", 400, "presets"),
    ],
)
def test_bad_parameters_get_json_errors(client: Any, query: str, status: int, field: str | None) -> None:
    resp = client.get(f"/api/v1/similar/it001?{query}")
    if status == 200:
        assert resp.status_code == 200
    else:
        err(resp, status, field)


def test_a_misspelt_parameter_names_the_one_meant(client: Any) -> None:
    """``?filter=`` (for ``filters``) answered the unfiltered list with a 200 (s41-w's walk)."""
    body = err(client.get('/api/v1/similar/it001?filter={"price_max": 1}'), 400, "filter")
    assert "unknown query parameter(s): filter (did you mean 'filters'?)" in body["message"]
    body = err(client.post("/api/v1/recommend", json={"recent_item_ids": ["it001"], "exclude_seem": 1}), 400)
    assert "exclude_seem (did you mean 'exclude_seen'?)" in body["message"]


def test_a_repeated_parameter_answers_its_first_value(client: Any) -> None:
    """``?k=3&k=5`` is served with k=3 (the first value, as ``args.get`` reads it), and a
    repeated bad value is refused by its first one, as a single one would be."""
    assert client.get("/api/v1/similar/it001?k=3&k=5").get_json()["k"] == 3
    err(client.get("/api/v1/similar/it001?k=0&k=5"), 400, "k")


def test_unknown_item_is_404(client: Any, data: dict[str, Any]) -> None:
    body = err(client.get("/api/v1/similar/no-such-item"), 404, "item_id")
    # an id in no catalogue is said to be one, not "has no vector in this run" (s41-w)
    assert "item 'no-such-item' is not in the catalogue of dataset" in body["message"]
    assert "nor in any other stored dataset: check the id" in body["message"]
    run = data["runs"][1]
    body = err(client.post("/api/v1/similar", json={"item_id": "no-such-item", "run": run}), 404, "item_id")
    assert (
        "is not in the catalogue of dataset" in body["message"] and f"(run {run}'s): check" in body["message"]
    )


def test_post_body_errors(client: Any) -> None:
    err(client.post("/api/v1/similar", data="{oops", content_type="application/json"), 400, "body")
    err(client.post("/api/v1/similar", json=[1, 2]), 400, "body")
    err(client.post("/api/v1/similar", json={"k": 3}), 400, "item_id")
    err(client.post("/api/v1/similar", json={"item_id": "it001", "k": "3x"}), 400, "k")
    err(client.post("/api/v1/similar", json={"item_id": "it001", "k": True}), 400, "k")
    err(client.post("/api/v1/similar", json={"item_id": "it001", "colour": "red"}), 400, "colour")
    big = {"item_id": "it001", "filters": {"brands_deny": ["x" * 100] * 1000}}
    err(client.post("/api/v1/similar", json=big), 413)


def test_bodies_without_a_length_or_over_it_are_bounded_on_every_method(client: Any) -> None:
    """The body bound holds whatever the request says of its length: a chunked body (no
    Content-Length, read to its end as gunicorn passes it) over the limit is refused, and a
    declared length over the limit is refused on a GET too; a bodyless GET is answered."""
    big = json.dumps({"item_id": "it001", "filters": {"brands_deny": ["x" * 100] * 1000}}).encode()
    chunked = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
    over = client.post(
        "/api/v1/similar",
        input_stream=io.BytesIO(big),
        headers=chunked,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},  # as gunicorn: none
    )
    assert "exceeds" in err(over, 413)["message"]
    small = json.dumps({"item_id": "it001", "k": 2}).encode()
    ok = client.post(
        "/api/v1/similar",
        input_stream=io.BytesIO(small),
        headers=chunked,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert ok.status_code == 200 and len(ok.get_json()["items"]) == 2
    err(client.get("/api/v1/noop", environ_overrides={"CONTENT_LENGTH": str(len(big))}), 413)
    plain = client.get("/api/v1/similar/it001?k=2")
    assert plain.status_code == 200 and plain.headers["Server-Timing"].startswith("app;dur=")


def test_unknown_paths_and_methods_are_json(client: Any) -> None:
    err(client.get("/api/v1/nope"), 404)
    err(client.post("/api/v1/runs"), 405)
    err(client.delete("/api/v1/similar/it001"), 405)


def test_non_api_paths_keep_flask_defaults(data: dict[str, Any]) -> None:
    app = flask.Flask("other")

    @app.get("/hello")
    def hello() -> str:
        return "hi"

    register_api(app, data["root"])
    c = app.test_client()
    assert c.get("/hello").get_data(as_text=True) == "hi"
    resp = c.get("/not-api")
    assert resp.status_code == 404 and not resp.is_json


def test_a_damaged_run_json_is_json_503_naming_the_run(client: Any, data: dict[str, Any]) -> None:
    broken = data["root"] / "runs" / "broken-run"
    broken.mkdir()
    (broken / "run.json").write_text("{ not json")
    try:
        body = err(client.get("/api/v1/runs/broken-run"), 503)
        assert "Traceback" not in body["message"] and body["field"] == "run"
        assert "run 'broken-run' is damaged: run.json is not valid JSON" in body["message"]
        listed = {r["run_id"]: r for r in client.get("/api/v1/runs").get_json()["runs"]}
        assert listed["broken-run"]["damaged"] is True and "run.json" in listed["broken-run"]["error"]
        assert not any(r["damaged"] for k, r in listed.items() if k != "broken-run")
    finally:
        (broken / "run.json").unlink()
        broken.rmdir()


# -- recommend -----------------------------------------------------------------------------------
def test_recommend_mean_of_recent_vectors(client: Any, data: dict[str, Any]) -> None:
    run_a = data["runs"][0]
    recent = ["it000", "it001", "it002"]
    body = client.post("/api/v1/recommend", json={"recent_item_ids": recent + ["ghost"], "k": 5}).get_json()
    assert body["method"] == "mean_of_recent" and body["run"] == run_a
    assert body["ignored_item_ids"] == ["ghost"]
    vecs = data["vectors"][run_a]
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    q = unit[[0, 1, 2]].mean(axis=0)
    order = [str(data["item_ids"][i]) for i in np.argsort(-(unit @ q)) if data["item_ids"][i] not in recent]
    assert [i["item_id"] for i in body["items"]] == order[:5]


def test_recommend_with_preset_and_errors(client: Any, data: dict[str, Any]) -> None:
    body = client.post(
        "/api/v1/recommend", json={"recent_item_ids": ["it036", "it037"], "preset": "no-adult", "k": 5}
    ).get_json()
    assert (
        body["items"]
        and not data["catalog"].set_index("item_id").loc[[i["item_id"] for i in body["items"]], "adult"].any()
    )
    err(client.post("/api/v1/recommend", json={"recent_item_ids": []}), 400, "recent_item_ids")
    err(client.post("/api/v1/recommend", json={"recent_item_ids": "it001"}), 400, "recent_item_ids")
    err(client.post("/api/v1/recommend", json={"recent_item_ids": ["it001"] * 101}), 400, "recent_item_ids")
    err(client.post("/api/v1/recommend", json={"recent_item_ids": ["ghost"]}), 404, "item_id")
    err(client.post("/api/v1/recommend", json={"recent_item_ids": ["it001"], "k": 500}), 400, "k")
    err(client.post("/api/v1/recommend", json={"recent_item_ids": ["it001"], "run": "zzz"}), 404, "run")


def test_recommend_for_recent_is_the_library_path_behind_the_endpoint(
    client: Any, data: dict[str, Any]
) -> None:
    from recsys.errors import UnknownItemError
    from recsys.search import RecentResult, recommend_for_recent

    reg = Registry(data["root"])
    run_a = data["runs"][0]
    recent = ["it000", "ghost", "it013"]  # a women's running item, an unknown id, then a heel
    result = recommend_for_recent(reg, run_a, recent, FilterConfig(same_category=True, category_level=2), k=6)
    assert isinstance(result, RecentResult) and result.method == "mean_of_recent"
    assert result.recent_item_ids == ["it000", "it013"] and result.ignored_item_ids == ["ghost"]
    assert result.seed_item_id == "it013"  # seed-dependent rules follow the most recent known item
    # same category as it013 (Women > Shoes > Heels: items 12..23), the recent items excluded
    assert len(result) == 6 and all(12 <= int(i[2:]) < 24 and i != "it013" for i in result.item_ids)
    assert result.scores == sorted(result.scores, reverse=True)
    vecs = data["vectors"][run_a]
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    q = unit[[0, 13]].mean(axis=0)
    allowed = [i for i in np.argsort(-(unit @ q)) if 12 <= i < 24 and i != 13]
    assert result.item_ids == [str(data["item_ids"][i]) for i in allowed[:6]]
    body = client.post(
        "/api/v1/recommend",
        json={
            "recent_item_ids": recent,
            "run": run_a,
            "filters": {"same_category": True, "category_level": 2},
            "k": 6,
        },
    ).get_json()
    assert [it["item_id"] for it in body["items"]] == result.item_ids
    assert body["ignored_item_ids"] == ["ghost"]
    with pytest.raises(UnknownItemError, match="none of the recent items"):
        recommend_for_recent(reg, run_a, ["ghost"], None, k=3)


def test_recommend_exclude_seen_switch(client: Any, data: dict[str, Any]) -> None:
    run_a = data["runs"][0]
    recent = ["it000", "it001", "it002"]
    vecs = data["vectors"][run_a]
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    q = unit[[0, 1, 2]].mean(axis=0)
    ranked = [str(data["item_ids"][i]) for i in np.argsort(-(unit @ q))]
    body = client.post(
        "/api/v1/recommend", json={"recent_item_ids": recent, "k": 5, "exclude_seen": False}
    ).get_json()
    assert body["exclude_seen"] is False
    # repeat views may come back; only the most recent item (the seed) stays out
    assert [i["item_id"] for i in body["items"]] == [i for i in ranked if i != "it002"][:5]
    assert {"it000", "it001"} & {i["item_id"] for i in body["items"]}
    err(
        client.post("/api/v1/recommend", json={"recent_item_ids": recent, "exclude_seen": "no"}),
        400,
        "exclude_seen",
    )


def test_recommend_from_a_session_knn_run(tmp_path: Path) -> None:
    from recsys.data.schema import load_dataset
    from recsys.models import make_model

    made = make_serving_data(tmp_path)
    reg = Registry(tmp_path)
    ds = load_dataset("tiny", tmp_path)
    model = make_model("vsknn").fit(ds)
    meta = reg.create_run(model, dataset_name="tiny", dataset_fingerprint=ds.fingerprint(), label="vsknn")
    c = make_client(tmp_path, token="")
    recent = ["it000", "it001"]
    body = c.post(
        "/api/v1/recommend", json={"recent_item_ids": recent, "run": meta["run_id"], "k": 4}
    ).get_json()
    expected = model.recommend([recent], 4)[0][0]
    assert body["method"] == "session_knn"
    assert [i["item_id"] for i in body["items"]] == [i for i in expected if i]
    assert not set(recent) & {i["item_id"] for i in body["items"]}
    # sessions stay inside one leaf (items 0..11 here): so do the recommendations
    assert all(int(i["item_id"][2:]) < 12 for i in body["items"])
    assert body["served_by"] == ["model"] * len(body["items"])
    assert made["runs"]


def test_filters_apply_to_session_knn_lists(tmp_path: Path) -> None:
    """The filter panel's rules hold on a session model's list, by REST and the library alike."""
    from recsys.data.schema import load_dataset
    from recsys.fallback import FallbackChain
    from recsys.models import make_model
    from recsys.search import recommend_for_recent

    make_serving_data(tmp_path)
    reg = Registry(tmp_path)
    ds = load_dataset("tiny", tmp_path)
    model = make_model("sknn").fit(ds)
    chain = FallbackChain().fit(ds)
    meta = reg.create_run(
        model,
        dataset_name="tiny",
        dataset_fingerprint=ds.fingerprint(),
        writers=[lambda folder: chain.save(folder / "fallback")],
    )
    run = meta["run_id"]
    c = make_client(tmp_path, token="")
    cat = ds.catalog.set_index("item_id")
    recent = ["it000", "it001"]

    def ask(filters: dict[str, Any], k: int = 8) -> dict[str, Any]:
        body = c.post(
            "/api/v1/recommend", json={"recent_item_ids": recent, "run": run, "k": k, "filters": filters}
        ).get_json()
        lib = recommend_for_recent(reg, run, recent, filters, k)
        assert [i["item_id"] for i in body["items"]] == lib.item_ids, "REST and the library agree"
        return body

    plain = [i["item_id"] for i in ask({})["items"]]
    brands = {cat.loc[i, "brand"] for i in plain}
    assert len(brands) > 1, "the unfiltered list has several brands"
    deny = sorted(brands)[0]
    body = ask({"brands_deny": [deny]})
    got = [i["item_id"] for i in body["items"]]
    assert got and deny not in {cat.loc[i, "brand"] for i in got}
    assert body["removed_by_rule"]["brands_deny"] == int((cat["brand"] == deny).sum())
    assert "brands_deny" not in body["skipped_rules"]
    prices = [cat.loc[i, "price"] for i in plain]
    cap = float(np.median(prices))
    got = [i["item_id"] for i in ask({"price_max": cap})["items"]]
    assert got and max(cat.loc[i, "price"] for i in got) <= cap < max(prices)
    # max_per_brand and a pin (a merchandising rule) on the same list
    got = [i["item_id"] for i in ask({"max_per_brand": 1})["items"]]
    assert len({cat.loc[i, "brand"] for i in got}) == len(got)
    pinned = ask({"pins": [{"seed": "it001", "item_id": "it005", "position": 1}]})
    assert pinned["items"][0]["item_id"] == "it005" and pinned["served_by"][0] == "pin"
    # a pin counts towards max_per_brand, as on the searcher's lists: one item of its brand
    first = ask({"max_per_brand": 1})["items"][0]["item_id"]
    pin = next(
        i for i in cat.index if cat.loc[i, "brand"] == cat.loc[first, "brand"] and i not in {first, *recent}
    )
    capped = ask({"pins": [{"seed": "it001", "item_id": pin, "position": 1}], "max_per_brand": 1})
    got = [i["item_id"] for i in capped["items"]]
    assert got[0] == pin and first not in got and len({cat.loc[i, "brand"] for i in got}) == len(got)
    # a category rule relative to the seed (the most recent item, a women's running shoe): the
    # sessions stay in one leaf, so the chain completes the list from the category's popular items
    body = ask({"same_category": True, "category_level": 1}, k=20)
    got = [i["item_id"] for i in body["items"]]
    assert got and {cat.loc[i, "category"].startswith("Women > Shoes") for i in got} == {True}
    assert "model" in body["served_by"] and set(body["served_by"]) <= {"model", "category", "cooccurrence"}
    # a seed the session model never saw is served by the fallback chain, filtered the same way
    new = c.post(
        "/api/v1/recommend",
        json={"recent_item_ids": ["it047"], "run": run, "k": 5, "filters": {"exclude_adult": True}},
    ).get_json()
    assert new["items"] and set(new["served_by"]) - {"model"}
    assert not any(bool(cat.loc[i["item_id"], "adult"]) for i in new["items"])


# -- state-changing endpoints and the token ---------------------------------------------------------
def test_token_guards_state_changing_endpoints(data: dict[str, Any]) -> None:
    c = make_client(data["root"], token="s3cret")
    good = {"Authorization": "Bearer s3cret"}
    cfg = {"same_gender": True}
    err(c.put("/api/v1/presets/tok-test", json=cfg), 401)
    err(c.put("/api/v1/presets/tok-test", json=cfg, headers={"Authorization": "Bearer wrong"}), 401)
    err(c.put("/api/v1/presets/tok-test", json=cfg, headers={"Authorization": "s3cret"}), 401)
    err(c.delete("/api/v1/presets/same-cat"), 401)
    err(c.delete(f"/api/v1/runs/{data['runs'][0]}"), 401)
    err(c.post("/api/v1/train", json={"family": "popularity", "dataset": "tiny"}), 401)
    assert "tok-test" not in {p["name"] for p in PresetStore(data["root"]).list()}
    # reads stay open
    assert c.get("/api/v1/similar/it001?k=3").status_code == 200
    resp = c.put("/api/v1/presets/tok-test", json=cfg, headers=good)
    assert resp.status_code == 201 and resp.get_json()["version"] == 1
    resp = c.post("/api/v1/presets/tok-test", json={"config": {"same_gender": False}}, headers=good)
    assert resp.status_code == 200 and resp.get_json()["version"] == 2
    assert PresetStore(data["root"]).load("tok-test") == FilterConfig(same_gender=False)
    err(c.put("/api/v1/presets/tok-test", json={"price_min": -3}, headers=good), 422, "price_min")
    err(c.put("/api/v1/presets/bad..name", json=cfg, headers=good), 400, "name")
    assert c.delete("/api/v1/presets/tok-test", headers=good).get_json() == {"deleted": "tok-test"}
    err(c.delete("/api/v1/presets/tok-test", headers=good), 404, "preset")


def test_without_a_token_state_changes_are_open_on_loopback(data: dict[str, Any], monkeypatch: Any) -> None:
    monkeypatch.delenv("RECSYS_API_TOKEN", raising=False)
    c = make_client(data["root"])
    assert c.put("/api/v1/presets/open-test", json={"exclude_adult": True}).status_code == 201
    assert c.delete("/api/v1/presets/open-test").status_code == 200


def test_token_from_environment(data: dict[str, Any], monkeypatch: Any) -> None:
    monkeypatch.setenv("RECSYS_API_TOKEN", "from-env")
    c = make_client(data["root"])
    err(c.delete("/api/v1/presets/same-cat"), 401)
    err(c.delete("/api/v1/presets/no-such", headers={"Authorization": "Bearer from-env"}), 404)


def test_delete_run(tmp_path: Path) -> None:
    made = make_serving_data(tmp_path)
    c = make_client(tmp_path, token="t")
    run_b = made["runs"][1]
    assert c.delete(f"/api/v1/runs/{run_b}", headers={"Authorization": "Bearer t"}).status_code == 200
    assert run_b not in [r["run_id"] for r in Registry(tmp_path).list_runs()]
    err(c.get(f"/api/v1/similar/it001?run={run_b}"), 404, "run")
    err(c.delete(f"/api/v1/runs/{run_b}", headers={"Authorization": "Bearer t"}), 404, "run")


def test_train_endpoint_validates_and_submits(tmp_path: Path) -> None:
    from recsys.jobs import JobStore

    make_serving_data(tmp_path)
    c = make_client(tmp_path, token="t")
    auth = {"Authorization": "Bearer t"}
    err(c.post("/api/v1/train", json={"family": "nonsense"}, headers=auth), 400, "family")
    err(c.post("/api/v1/train", json={"family": ["popularity"]}, headers=auth), 400, "family")
    err(c.post("/api/v1/train", json={"family": {}}, headers=auth), 400, "family")
    err(
        c.post("/api/v1/train", json={"family": "popularity", "dataset": "nope"}, headers=auth),
        404,
        "dataset",
    )
    err(c.post("/api/v1/train", json={"family": "popularity", "params": [1]}, headers=auth), 400, "params")
    resp = c.post("/api/v1/train", json={"family": "popularity", "dataset": "tiny"}, headers=auth)
    assert resp.status_code == 202
    job_id = resp.get_json()["job_id"]
    store = JobStore(tmp_path)
    job = store.wait(job_id, timeout=60)
    assert job["kind"] == "train" and job["params"]["family"] == "popularity", job
    assert job["status"] == "done", store.log_tail(job_id)
    assert any(r["family"] == "popularity" for r in Registry(tmp_path).list_runs())


def test_tune_endpoint_checks_like_the_tune_button_and_needs_the_token(tmp_path: Path) -> None:
    from recsys.jobs import JobStore

    make_serving_data(tmp_path)
    c = make_client(tmp_path, token="t")
    auth = {"Authorization": "Bearer t"}
    err(c.post("/api/v1/tune", json={"family": "prod2vec", "dataset": "tiny"}), 401)
    err(c.post("/api/v1/tune", json={"family": "popularity", "dataset": "tiny"}, headers=auth), 400, "family")
    err(
        c.post(
            "/api/v1/tune", json={"family": "prod2vec", "dataset": "tiny", "budget": "soon"}, headers=auth
        ),
        400,
        "budget",
    )
    err(
        c.post("/api/v1/tune", json={"family": "prod2vec", "dataset": "tiny", "trials": 0}, headers=auth),
        400,
        "trials",
    )
    err(
        c.post("/api/v1/tune", json={"family": "prod2vec", "dataset": "tiny", "sample": 2}, headers=auth),
        400,
        "sample",
    )
    err(
        c.post("/api/v1/tune", json={"family": "prod2vec", "dataset": "tiny", "seed": 2}, headers=auth),
        400,
        "seed",
    )
    err(c.post("/api/v1/tune", json={"family": "prod2vec", "dataset": "nope"}, headers=auth), 404, "dataset")
    assert JobStore(tmp_path).list_jobs() == []
    body = {"family": "prod2vec", "dataset": "tiny", "budget": "1m", "trials": 2, "params": {"workers": 1}}
    resp = c.post("/api/v1/tune", json=body, headers=auth)
    assert resp.status_code == 202
    store = JobStore(tmp_path)
    job = store.get(resp.get_json()["job_id"])
    assert job["kind"] == "tune" and job["params"]["tune"] == {
        "budget_s": 60.0,
        "n_trials": 2,
        "sample": None,
    }
    assert job["params"]["params"] == {"workers": 1}
    store.cancel(job["job_id"])


# -- bind check ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_check_bind_allows_loopback_without_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com", ""])
def test_check_bind_refuses_other_addresses_without_token(host: str) -> None:
    with pytest.raises(InsecureBindError, match="RECSYS_API_TOKEN"):
        check_bind(host, None)
    with pytest.raises(InsecureBindError):
        check_bind(host, "   ")
    check_bind(host, "a-real-token")


def test_preset_saved_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    """The preset cache notices a re-save even when the file's mtime did not move (coarse clocks)."""
    import os

    make_serving_data(tmp_path)
    c = make_client(tmp_path, token="")
    first = c.get("/api/v1/presets/no-adult").get_json()
    path = tmp_path / "presets" / "no-adult.json"
    before = path.stat()
    PresetStore(tmp_path).save("no-adult", FilterConfig(exclude_adult=False))  # e.g. another worker
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same mtime tick
    second = c.get("/api/v1/presets/no-adult").get_json()
    assert second["config_hash"] == FilterConfig(exclude_adult=False).config_hash()
    assert second["config_hash"] != first["config_hash"]


def test_similar_follows_a_preset_resaved_or_deleted_by_another_process(tmp_path: Path) -> None:
    """The cached preset (and its cached config hash) of /similar is dropped the moment the file
    changes: a re-save in the same mtime tick answers with the new rules, a delete is a 404."""
    import os

    make_serving_data(tmp_path)
    c = make_client(tmp_path, token="")
    url = "/api/v1/similar/it001?preset=no-adult&k=20"
    first = c.get(url).get_json()
    assert first["config_hash"] == FilterConfig(exclude_adult=True, max_per_brand=2).config_hash()
    assert c.get(url).get_json()["config_hash"] == first["config_hash"]  # served from the cache
    path = tmp_path / "presets" / "no-adult.json"
    before = path.stat()
    PresetStore(tmp_path).save("no-adult", FilterConfig(same_category=True, category_level=1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same mtime tick
    second = c.get(url).get_json()
    assert second["config_hash"] == FilterConfig(same_category=True, category_level=1).config_hash()
    assert second["items"] and second["removed_by_rule"].get("same_category", 0) > 0, second
    path.unlink()
    err(c.get(url), 404, "preset")


def test_unexpected_failure_is_json_500_without_traceback(
    client: Any, data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("an unforeseen bug")

    monkeypatch.setattr("recsys.search.similar_items", boom)
    body = err(client.get("/api/v1/similar/it000"), 500)
    assert "Traceback" not in body["message"] and "RuntimeError" in body["message"]


def test_garbage_model_files_are_json_503_naming_the_file(client: Any, data: dict[str, Any]) -> None:
    # A run folder whose model files are garbage: the run is damaged, the others serve on.
    source = data["root"] / "runs" / data["runs"][0]
    broken = data["root"] / "runs" / "garbage-run"
    broken.mkdir()
    try:
        meta = json.loads((source / "run.json").read_text())
        (broken / "run.json").write_text(json.dumps({**meta, "run_id": "garbage-run"}))
        (broken / "model.json").write_text((source / "model.json").read_text())
        (broken / "item_ids.npy").write_bytes(b"not a numpy file")
        (broken / "vectors.npy").write_bytes(b"not a numpy file")
        body = err(client.get("/api/v1/similar/it000?run=garbage-run"), 503)
        assert "Traceback" not in body["message"]
        assert "run 'garbage-run' is damaged: item_ids.npy is not a readable .npy array" in body["message"]
        assert client.get(f"/api/v1/similar/it000?run={data['runs'][0]}").status_code == 200
    finally:
        for f in broken.iterdir():
            f.unlink()
        broken.rmdir()


def test_json_reply_is_compact_in_key_order_and_leaves_dates_to_flask() -> None:
    """The hot endpoints' body (orjson): compact, keys in the order built, unicode kept; a value only
    Flask's provider writes (a date) goes through ``jsonify`` as before (an HTTP date)."""
    import datetime

    import flask

    from recsys.serving.core import json_reply

    app = flask.Flask("reply")
    with app.app_context():
        resp = json_reply({"z": 1, "a": [0.25, None, "é"]}, 201)
        assert resp.status_code == 201 and resp.mimetype == "application/json"
        assert json.loads(resp.get_data()) == {"z": 1, "a": [0.25, None, "é"]}
        assert resp.get_data(as_text=True).startswith('{"z":1,"a":[0.25,null,')
        when = datetime.datetime(2026, 12, 6, 4, 20, tzinfo=datetime.timezone.utc)
        dated = json_reply({"at": when})
        assert json.loads(dated.get_data()) == {"at": "Sun, 06 Dec 2026 04:20:00 GMT"}
