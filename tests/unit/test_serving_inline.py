"""Inline filters (``filters=``) are parsed and validated once per distinct text (issue 18)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recsys import serving
from tests import _serving_data as _fixture  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory: Any) -> Any:
    root = tmp_path_factory.mktemp("inline")
    _fixture.make_serving_data(root)
    return _fixture.make_client(root, token="")


def test_same_inline_text_gives_one_config_object_and_the_same_answer(client: Any) -> None:
    text = json.dumps({"exclude_adult": True, "max_per_brand": 2})
    assert serving._inline_config(text) is serving._inline_config(text)
    # a POSTed object with the keys in another order is the same filter
    assert serving._inline_config({"max_per_brand": 2, "exclude_adult": True}) == serving._inline_config(text)
    first = client.get(f"/api/v1/similar/it005?k=8&filters={text}").get_json()
    again = client.get(f"/api/v1/similar/it005?k=8&filters={text}").get_json()
    preset = client.get("/api/v1/similar/it005?preset=no-adult&k=8").get_json()
    assert first["items"] == again["items"] == preset["items"]
    assert first["config_hash"] == preset["config_hash"]


def test_invalid_inline_filters_are_refused_every_time(client: Any) -> None:
    for _ in range(2):  # an invalid filter is never cached as valid
        resp = client.get('/api/v1/similar/it001?filters={"category_level": -1}')
        assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "category_level"
        resp = client.get("/api/v1/similar/it001?filters=[1, 2]")
        assert resp.status_code == 400
    assert client.get("/api/v1/similar/it001?filters=").status_code == 200  # empty: the default
