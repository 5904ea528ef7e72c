"""Precomputed top-k tables (recsys.precompute) and the API's source=precomputed mode.

Round trip: for every item of a run, the precomputed answer equals the live one.
Staleness: a preset changed since the table was written gives 409, a run whose
vectors changed gives ``stale: true``, a larger k than stored gives 409.
Redis is tested only when a ``redis-server`` binary exists.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import flask
import pytest

from recsys.__main__ import main as cli_main
from recsys.filters import FilterConfig, PresetStore
from recsys.precompute import SQLiteStore, open_store, precompute
from recsys.serving import register_api
from tests import _serving_data as _fixture  # noqa: E402
from tests._at_once import errors_at_once
from tests._redis import redis_server
from tests._store_calls import open_and_list

make_serving_data = _fixture.make_serving_data


def client_for(root: Path, **kwargs: Any) -> Any:
    app = flask.Flask("test-precompute")
    register_api(app, root, token="", **kwargs)
    return app.test_client()


@pytest.fixture()
def data(tmp_path: Path) -> dict[str, Any]:
    out = make_serving_data(tmp_path)
    out["root"] = tmp_path
    return out


def live_and_pre(c: Any, run_id: str, item: str, preset: str, k: int) -> tuple[dict, dict]:
    base = f"/api/v1/similar/{item}?run={run_id}&preset={preset}&k={k}"
    live = c.get(base)
    pre = c.get(base + "&source=precomputed")
    assert live.status_code == 200, live.get_json()
    assert pre.status_code == 200, pre.get_json()
    return live.get_json(), pre.get_json()


def test_round_trip_every_item_equals_live(data: dict[str, Any]) -> None:
    root, run_a = data["root"], data["runs"][0]
    meta = precompute(root, run_a, "same-cat", k=6)
    assert meta["n_items"] == len(data["item_ids"]) and meta["k"] == 6
    assert Path(meta["location"]) == root / "precomputed.sqlite"
    c = client_for(root)
    for item in data["item_ids"]:
        live, pre = live_and_pre(c, run_a, str(item), "same-cat", 6)
        assert pre["source"] == "precomputed" and pre["items"] == live["items"]
        assert pre["precomputed"]["stale"] is False and pre["precomputed"]["k"] == 6
    # a shorter list is a prefix of the stored one
    live, pre = live_and_pre(c, run_a, "it004", "same-cat", 3)
    assert pre["items"] == live["items"] and len(pre["items"]) == 3


def test_missing_table_unknown_item_and_k_too_large(data: dict[str, Any]) -> None:
    root, run_a, run_b = data["root"], data["runs"][0], data["runs"][1]
    c = client_for(root)
    resp = c.get(f"/api/v1/similar/it001?run={run_a}&preset=same-cat&source=precomputed")
    assert resp.status_code == 404 and "python -m recsys precompute" in resp.get_json()["error"]["message"]
    precompute(root, run_a, "same-cat", k=5)
    assert c.get(f"/api/v1/similar/it001?run={run_b}&preset=same-cat&source=precomputed").status_code == 404
    resp = c.get(f"/api/v1/similar/ghost?run={run_a}&preset=same-cat&k=5&source=precomputed")
    assert resp.status_code == 404 and resp.get_json()["error"]["field"] == "item_id"
    resp = c.get(f"/api/v1/similar/it001?run={run_a}&preset=same-cat&k=6&source=precomputed")
    assert resp.status_code == 409 and resp.get_json()["error"]["field"] == "k"


def test_changed_preset_is_409_and_recompute_replaces_the_table(data: dict[str, Any]) -> None:
    root, run_a = data["root"], data["runs"][0]
    precompute(root, run_a, "same-cat", k=5)
    c = client_for(root)
    PresetStore(root).save("same-cat", FilterConfig(same_category=True, category_level=0))
    resp = c.get(f"/api/v1/similar/it001?run={run_a}&preset=same-cat&k=5&source=precomputed")
    assert resp.status_code == 409
    assert "rerun" in resp.get_json()["error"]["message"] and resp.get_json()["error"]["field"] == "preset"
    precompute(root, run_a, "same-cat", k=5)
    live, pre = live_and_pre(c, run_a, "it001", "same-cat", 5)
    assert pre["items"] == live["items"]
    store = SQLiteStore(root / "precomputed.sqlite")
    tables = [t for t in store.list_tables() if t["preset_name"] == "same-cat"]
    assert len(tables) == 1, "the table of the old preset version must be gone"
    assert tables[0]["preset_hash"] == FilterConfig(same_category=True, category_level=0).config_hash()
    store.close()


def test_run_changed_after_writing_is_flagged_stale(data: dict[str, Any]) -> None:
    root, run_a = data["root"], data["runs"][0]
    precompute(root, run_a, "no-adult", k=5)
    c = client_for(root)
    _, pre = live_and_pre(c, run_a, "it002", "no-adult", 5)
    assert pre["precomputed"]["stale"] is False and pre["precomputed"]["age_s"] >= 0
    vectors = root / "runs" / run_a / "vectors.npy"
    future = time.time() + 60
    os.utime(vectors, (future, future))
    _, pre = live_and_pre(c, run_a, "it002", "no-adult", 5)
    assert pre["precomputed"]["stale"] is True
    assert any("vectors or index" in r for r in pre["precomputed"]["reasons"])


def test_reimported_catalogue_is_flagged_stale(data: dict[str, Any]) -> None:
    from recsys.data.schema import load_dataset, save_dataset

    root, run_a = data["root"], data["runs"][0]
    precompute(root, run_a, "same-cat", k=5)
    c = client_for(root)
    assert live_and_pre(c, run_a, "it003", "same-cat", 5)[1]["precomputed"]["stale"] is False
    ds = load_dataset("tiny", root)
    ds.catalog.loc[ds.catalog["item_id"] == "it004", "category"] = "Men > Shoes > Running"
    save_dataset(ds, root)
    pre = c.get(f"/api/v1/similar/it003?run={run_a}&preset=same-cat&k=5&source=precomputed").get_json()
    assert pre["precomputed"]["stale"] is True
    assert any("catalogue" in r for r in pre["precomputed"]["reasons"])


def test_cli_precompute_writes_a_table(data: dict[str, Any], capsys: Any) -> None:
    root, run_b = data["root"], data["runs"][1]
    out = root / "custom.sqlite"
    code = cli_main(
        [
            "--data-dir",
            str(root),
            "-q",
            "precompute",
            "--run",
            run_b,
            "--preset",
            "no-adult",
            "--k",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_items"] == len(data["item_ids"]) and printed["location"] == str(out)
    c = client_for(root, precomputed=str(out))
    live, pre = live_and_pre(c, run_b, "it010", "no-adult", 4)
    assert pre["items"] == live["items"]
    assert (
        cli_main(["--data-dir", str(root), "-q", "precompute", "--run", "nope", "--preset", "no-adult"]) == 2
    )
    assert cli_main(["--data-dir", str(root), "-q", "precompute", "--run", run_b, "--preset", "nope"]) == 2


@pytest.fixture()
def redis_url(tmp_path: Path) -> Any:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis", reason="the redis package is not installed")
    try:
        with redis_server(binary, tmp_path) as url:
            yield url
    except RuntimeError:
        pytest.skip("redis-server did not start within 10 s")


def test_redis_round_trip(data: dict[str, Any], redis_url: str) -> None:
    root, run_a = data["root"], data["runs"][0]
    meta = precompute(root, run_a, "same-cat", k=5, store=redis_url)
    assert meta["location"] == redis_url and meta["n_items"] == len(data["item_ids"])
    assert (
        not (root / "precomputed.sqlite").exists()
        or not SQLiteStore(root / "precomputed.sqlite").list_tables()
    )
    c = client_for(root, precomputed=redis_url)
    for item in ("it000", "it013", "it030", "it047"):
        live, pre = live_and_pre(c, run_a, item, "same-cat", 5)
        assert pre["items"] == live["items"]
    # a new preset version replaces the old table atomically; the API sees 409 until then
    PresetStore(root).save("same-cat", FilterConfig(same_category=True, category_level=0))
    assert c.get(f"/api/v1/similar/it001?run={run_a}&preset=same-cat&source=precomputed").status_code == 409
    precompute(root, run_a, "same-cat", k=5, store=redis_url)
    store = open_store(redis_url)
    assert [t["preset_hash"] for t in store.list_tables()] == [
        FilterConfig(same_category=True, category_level=0).config_hash()
    ]
    store.close()
    live, pre = live_and_pre(c, run_a, "it001", "same-cat", 5)
    assert pre["items"] == live["items"]


def test_round_trip_with_ranked_list_rules_equals_live(data: dict[str, Any]) -> None:
    """A preset with max_per_brand goes through the batch's ranked path (one knn_query for the
    batch, then the live hot path's ranking per seed): every stored list equals the live one."""
    root, run_a = data["root"], data["runs"][0]
    precompute(root, run_a, "no-adult", k=6, batch_size=16)
    c = client_for(root)
    for item in data["item_ids"]:
        live, pre = live_and_pre(c, run_a, str(item), "no-adult", 6)
        assert pre["items"] == live["items"]


def test_seeds_without_a_vector_are_served_by_the_fallback_live_and_precomputed(data: dict[str, Any]) -> None:
    """A run whose model has no vector for six items (30..35, Men > Shoes > Running): the run's
    fallback chain serves them, under the preset's rules, live and in the precomputed table."""
    import numpy as np

    root = data["root"]
    run = _fixture.make_run_with_missing_vectors(root, data)
    c = client_for(root)
    live = c.get(f"/api/v1/similar/it031?run={run}&preset=same-cat&k=5").get_json()
    assert live["items"] and live["plan"] == "list" and set(live["served_by"]) <= {"cooccurrence", "category"}
    leaf = data["catalog"].set_index("item_id")["category"]
    assert {leaf[i["item_id"]] for i in live["items"]} == {"Men > Shoes > Running"}
    assert "it031" not in {i["item_id"] for i in live["items"]}
    meta = precompute(root, run, "same-cat", k=5)
    assert meta["n_items"] == len(data["item_ids"]) and meta["by_fallback"] == 6
    for item in ("it031", "it035", "it001"):
        live, pre = live_and_pre(c, run, item, "same-cat", 5)
        assert pre["items"] == live["items"]
        assert pre["served_by"] == live["served_by"]  # what served each item is stored with it
    assert (
        set(pre["served_by"]) == {"model"}
        and "model" not in live_and_pre(c, run, "it031", "same-cat", 5)[1]["served_by"]
    )
    # stored compactly: a third element only where a fallback step served the item
    raw = dict(
        SQLiteStore(root / "precomputed.sqlite")
        ._con()
        .execute("SELECT item_id, value FROM topk WHERE run_id = ? AND item_id IN ('it001', 'it031')", (run,))
        .fetchall()
    )
    assert all(len(e) == 2 for e in json.loads(raw["it001"]))
    assert all(len(e) == 3 and e[2] in ("cooccurrence", "category") for e in json.loads(raw["it031"]))
    # an id the catalogue does not hold is still a 404
    assert c.get(f"/api/v1/similar/ghost?run={run}").status_code == 404
    assert np.isfinite([i["score"] for i in live["items"]]).all()


def test_one_thread_writes_the_same_table(data: dict[str, Any], tmp_path: Path) -> None:
    """``num_threads=1`` (what each Spark task uses) changes the speed, never a list."""
    root, run_a = data["root"], data["runs"][0]
    every = precompute(root, run_a, "same-cat", k=6, store=tmp_path / "every.sqlite")
    one = precompute(root, run_a, "same-cat", k=6, store=tmp_path / "one.sqlite", num_threads=1)
    a, b = SQLiteStore(tmp_path / "every.sqlite"), SQLiteStore(tmp_path / "one.sqlite")
    lists = [a.get(run_a, every["preset_hash"], str(i)) for i in data["item_ids"]]
    assert all(lists) and lists == [b.get(run_a, one["preset_hash"], str(i)) for i in data["item_ids"]]


def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Workers starting together race to switch the new file to WAL: the losers wait; none
    reports a healthy store as damaged ("database is locked")."""
    for r in range(30):
        path = str(tmp_path / f"r{r}" / "precomputed.sqlite")
        assert errors_at_once(open_and_list, [(path,)] * 6) == []
        assert SQLiteStore(path).list_tables() == []
