"""A user imports a second dataset, trains a run on it and asks the REST API for one of its
items without naming a run: the default run (of the default dataset) does not know the item,
and the 404 says which dataset holds it and which run to name."""

from __future__ import annotations

from recsys.registry import Registry
from tests._serving_data import make_client, make_second_dataset, make_serving_data


def test_an_item_of_another_dataset_names_its_dataset_and_run(tmp_path):
    data = make_serving_data(tmp_path)
    other_run, other_ids = make_second_dataset(tmp_path, n_items=12)
    reg = Registry(tmp_path)
    if reg.default_dataset() == "shop2":  # whichever is not served by default is asked
        other_run, item = data["runs"][0], str(data["item_ids"][5])
        other_name = "tiny"
    else:
        item, other_name = other_ids[3], "shop2"
    client = make_client(tmp_path)

    r = client.get(f"/api/v1/similar/{item}?k=3")
    assert r.status_code == 404
    message = r.get_json()["error"]["message"]
    assert f"is in dataset '{other_name}'" in message and f"run={other_run}" in message
    # naming that run answers
    r = client.get(f"/api/v1/similar/{item}?k=3&run={other_run}")
    assert r.status_code == 200 and len(r.get_json()["items"]) == 3

    r = client.post("/api/v1/recommend", json={"recent_item_ids": [item], "k": 3})
    assert r.status_code == 404 and f"run={other_run}" in r.get_json()["error"]["message"]

    # an id no dataset holds keeps the plain message; a named run is not second-guessed
    r = client.get("/api/v1/similar/nowhere?k=3")
    assert r.status_code == 404 and "is in dataset" not in r.get_json()["error"]["message"]
    served = reg.default_run()
    r = client.get(f"/api/v1/similar/{item}?k=3&run={served}")
    assert r.status_code == 404 and "is in dataset" not in r.get_json()["error"]["message"]
