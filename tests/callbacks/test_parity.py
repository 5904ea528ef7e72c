"""Parity: the REST API returns exactly the list the Explore page shows.

For sampled seeds, two runs and three presets, the Explore filter-change
callback (``pages.explore.update_results``, called as a plain function with the
preset's control values, as the page holds them after "load preset") and
``GET /api/v1/similar/<seed>?run=&preset=&k=`` (Flask test client) must give
the same item ids in the same order. The precomputed table answers the same.
"""

from __future__ import annotations

import contextvars
import importlib.util
from pathlib import Path
from typing import Any

import flask
import numpy as np
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from components import ids
from components.filter_panel import controls_from_filter_config
from recsys.filters import FilterConfig, PresetStore
from recsys.precompute import precompute
from recsys.serving import register_api
from tests.callbacks._pages import page

_spec = importlib.util.spec_from_file_location(
    "_serving_fixture", Path(__file__).resolve().parents[1] / "unit" / "test_serving.py"
)
_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixture)

K = 8
PRESETS = ("same-cat", "no-adult", "rich")


@pytest.fixture(scope="module")
def explore() -> Any:
    """The Explore page module."""
    return page("explore")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("parity")
    out = _fixture.make_serving_data(root)
    PresetStore(root).save(
        "rich",
        FilterConfig(
            same_gender=True,
            price_ratio_min=0.5,
            price_ratio_max=3.0,
            brands_deny=["Dune"],
            banned_brand_pairs=[("Acme", "Bolt")],
            min_similarity=0.05,
            max_per_brand=2,
        ),
    )
    out["root"] = root
    return out


def card_ids(component: Any) -> list[str]:
    """Item ids of the cards in a rendered result grid, in display order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        if not hasattr(node, "to_plotly_json"):
            return
        item = getattr(node, "data-item", None)
        if item is not None:
            found.append(item)
            return
        walk(getattr(node, "children", None))

    walk(component)
    return found


def explore_list(explore: Any, root: Path, run_id: str, seed: str, preset: str) -> tuple[list[str], Any]:
    config = PresetStore(root).load(preset)
    values = controls_from_filter_config(config)
    loaded = {"name": preset, "hash": config.config_hash()}

    def call() -> dict[str, Any]:
        context_value.set(
            AttributeDict(triggered_inputs=[{"prop_id": f"{ids.EXPLORE_SEED}.value", "value": seed}])
        )
        return explore.update_results(seed, run_id, K, values, loaded)

    out = contextvars.copy_context().run(call)
    return card_ids(out["results"]), out


def test_api_list_equals_explore_list(explore: Any, data: dict[str, Any], monkeypatch: Any) -> None:
    root = data["root"]
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    app = flask.Flask("parity")
    register_api(app, root, token="")
    client = app.test_client()
    rng = np.random.default_rng(7)
    seeds = [str(s) for s in rng.choice(data["item_ids"], size=6, replace=False)] + [
        "it040"
    ]  # + an adult seed
    compared = 0
    for run_id in data["runs"]:
        for preset in PRESETS:
            for seed in seeds:
                page_ids, out = explore_list(explore, root, run_id, seed, preset)
                assert out["url"]["preset"] == preset, "Explore should recognise the loaded preset"
                resp = client.get(f"/api/v1/similar/{seed}?run={run_id}&preset={preset}&k={K}")
                assert resp.status_code == 200, resp.get_json()
                api_ids = [i["item_id"] for i in resp.get_json()["items"]]
                assert api_ids == page_ids, (run_id, preset, seed)
                compared += 1 if api_ids else 0
    assert compared >= len(data["runs"]) * len(PRESETS) * len(seeds) - 6, "too many empty lists to compare"


def test_precomputed_list_equals_explore_list(explore: Any, data: dict[str, Any], monkeypatch: Any) -> None:
    root = data["root"]
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    run_id = data["runs"][1]
    precompute(root, run_id, "rich", k=K)
    app = flask.Flask("parity-pre")
    register_api(app, root, token="")
    client = app.test_client()
    for seed in ("it001", "it014", "it027", "it033"):
        page_ids, _ = explore_list(explore, root, run_id, seed, "rich")
        resp = client.get(f"/api/v1/similar/{seed}?run={run_id}&preset=rich&k={K}&source=precomputed")
        assert resp.status_code == 200, resp.get_json()
        assert [i["item_id"] for i in resp.get_json()["items"]] == page_ids
