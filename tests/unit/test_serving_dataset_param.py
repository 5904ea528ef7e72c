"""A client of an imported dataset asks the REST API by dataset name (``dataset=``) instead of a
run id, and a client sending ids no run knows gets the 404 hint without a catalogue read each
time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import INTERACTION_COLUMNS, Dataset, save_dataset
from recsys.registry import Registry
from tests._serving_data import make_client, make_second_dataset, make_serving_data


@pytest.fixture
def two_datasets(tmp_path):
    data = make_serving_data(tmp_path)
    Registry(tmp_path).set_default_dataset("tiny")
    shop_run, shop_ids = make_second_dataset(tmp_path)
    return tmp_path, data, shop_run, shop_ids


def test_dataset_names_the_run_that_answers(two_datasets):
    root, data, shop_run, shop_ids = two_datasets
    client = make_client(root)
    r = client.get(f"/api/v1/similar/{shop_ids[3]}?k=3&dataset=shop2")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["run"] == shop_run and len(body["items"]) == 3
    # the same answer as naming the run, by GET and POST
    assert (
        client.get(f"/api/v1/similar/{shop_ids[3]}?k=3&run={shop_run}").get_json()["items"] == body["items"]
    )
    r = client.post("/api/v1/similar", json={"item_id": shop_ids[3], "k": 3, "dataset": "shop2"})
    assert r.status_code == 200 and r.get_json()["items"] == body["items"]
    r = client.post("/api/v1/recommend", json={"recent_item_ids": shop_ids[:2], "k": 3, "dataset": "shop2"})
    assert r.status_code == 200 and r.get_json()["run"] == shop_run
    # the default dataset by name is what no name serves
    item = str(data["item_ids"][5])
    default = client.get(f"/api/v1/similar/{item}?k=4").get_json()
    named = client.get(f"/api/v1/similar/{item}?k=4&dataset=tiny").get_json()
    assert named["run"] == default["run"] and named["items"] == default["items"]
    # run and dataset together: the run must be one of the dataset's
    assert client.get(f"/api/v1/similar/{shop_ids[3]}?dataset=shop2&run={shop_run}").status_code == 200
    r = client.get(f"/api/v1/similar/{item}?dataset=shop2&run={data['runs'][0]}")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "dataset"
    assert "dataset 'tiny', not 'shop2'" in r.get_json()["error"]["message"]


def test_dataset_follows_the_active_run(two_datasets):
    root, data, _shop_run, _ = two_datasets
    client = make_client(root)
    item = str(data["item_ids"][5])
    reg = Registry(root)
    reg.set_default_dataset("shop2")  # tiny is asked by name, not served by default
    first = client.get(f"/api/v1/similar/{item}?dataset=tiny").get_json()["run"]
    other = next(r for r in data["runs"] if r != first)
    reg.activate(other)
    assert client.get(f"/api/v1/similar/{item}?dataset=tiny").get_json()["run"] == other


def test_unknown_dataset_is_a_404_naming_the_known_ones(two_datasets):
    root, _data, _shop_run, shop_ids = two_datasets
    client = make_client(root)
    r = client.get(f"/api/v1/similar/{shop_ids[0]}?dataset=shop3")
    assert r.status_code == 404
    err = r.get_json()["error"]
    assert err["field"] == "dataset" and "unknown dataset 'shop3'" in err["message"]
    assert "shop2" in err["message"] and "tiny" in err["message"]
    r = client.post("/api/v1/recommend", json={"recent_item_ids": [shop_ids[0]], "dataset": "nope"})
    assert r.status_code == 404 and r.get_json()["error"]["field"] == "dataset"
    r = client.post("/api/v1/similar", json={"item_id": shop_ids[0], "dataset": 3})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "dataset"
    # a dataset with no run yet says so
    catalog = pd.DataFrame({"item_id": ["a"], "title": ["A"], "category": "", "brand": "", "gender": ""})
    catalog = catalog.assign(price=np.nan, adult=False, description="", image_url="")
    empty = pd.DataFrame({c: [] for c in INTERACTION_COLUMNS})
    save_dataset(Dataset(name="empty", catalog=catalog, interactions=empty), root)
    r = client.get("/api/v1/similar/a?dataset=empty")
    assert r.status_code == 404 and "has no run yet" in r.get_json()["error"]["message"]


def test_the_404_hint_names_the_dataset_and_reads_no_catalogue_per_request(two_datasets, monkeypatch):
    root, _data, shop_run, shop_ids = two_datasets
    client = make_client(root)
    r = client.get(f"/api/v1/similar/{shop_ids[3]}?k=3")
    assert r.status_code == 404
    message = r.get_json()["error"]["message"]
    assert "is in dataset 'shop2'" in message and "pass dataset=shop2" in message and shop_run in message
    assert client.get(f"/api/v1/similar/{shop_ids[3]}?k=3&dataset=shop2").status_code == 200
    # an id in no catalogue is told so (s41-w): the served dataset's ids are read once, then cached
    r = client.get("/api/v1/similar/nowhere?k=3")
    assert r.status_code == 404 and "is not in the catalogue of dataset" in r.get_json()["error"]["message"]

    reads: list[str] = []
    real = pd.read_parquet
    monkeypatch.setattr(
        pd, "read_parquet", lambda path, *a, **kw: reads.append(str(path)) or real(path, *a, **kw)
    )
    for n in range(20):  # a client sending ids no dataset holds
        r = client.get(f"/api/v1/similar/nowhere-{n}?k=3")
        assert r.status_code == 404 and "is in dataset" not in r.get_json()["error"]["message"]
    assert reads == []
    # a re-import is seen at once: the new item is found in the new catalogue
    make_second_dataset(root, n_items=15)
    r = client.get("/api/v1/similar/sku-14?k=3")
    assert r.status_code == 404 and "is in dataset 'shop2'" in r.get_json()["error"]["message"]
    assert any("catalog.parquet" in p for p in reads)


def test_the_hint_on_an_item_without_a_vector_says_what_the_run_can_do(tmp_path):
    """The hint looks at the dataset's whole catalogue: an item without a vector is named when
    that dataset's run answers it from its fallback chain, and said to be unanswerable when the
    run has no chain (a run of vectors imported without one)."""
    make_serving_data(tmp_path)
    Registry(tmp_path).set_default_dataset("tiny")
    make_second_dataset(tmp_path, n_items=14, n_vectors=12, chain=False)
    client = make_client(tmp_path)
    r = client.get("/api/v1/similar/sku-13?k=3")
    message = r.get_json()["error"]["message"]
    assert r.status_code == 404 and "is in dataset 'shop2'" in message
    assert "no vector for it and no fallback chain" in message and "pass dataset" not in message
    r = client.get("/api/v1/similar/sku-13?k=3&dataset=shop2")  # true: and said so (s41-w)
    assert r.status_code == 404 and "is in dataset 'shop2', but run" in r.get_json()["error"]["message"]
    assert "has no vector for it and no fallback chain that lists it" in r.get_json()["error"]["message"]
    # the same ids imported again as another dataset (REES46 imported twice, s41-w's walk): the
    # item is the served dataset's, not a reason to send the caller to the other one
    from recsys.data.schema import load_dataset

    shop2 = load_dataset("shop2", tmp_path)
    save_dataset(Dataset(name="shop2again", catalog=shop2.catalog, interactions=shop2.interactions), tmp_path)
    message = client.get("/api/v1/similar/sku-13?k=3&dataset=shop2").get_json()["error"]["message"]
    assert "is in dataset 'shop2', but run" in message and "shop2again" not in message

    other = tmp_path / "with-chain"
    other.mkdir()
    make_serving_data(other)
    Registry(other).set_default_dataset("tiny")
    make_second_dataset(other, n_items=14, n_vectors=12, chain=True)
    client = make_client(other)
    r = client.get("/api/v1/similar/sku-13?k=3")
    assert r.status_code == 404 and "pass dataset=shop2" in r.get_json()["error"]["message"]
    r = client.get("/api/v1/similar/sku-13?k=3&dataset=shop2")
    assert r.status_code == 200 and r.get_json()["items"]
    assert "model" not in r.get_json()["served_by"]  # the chain served it
