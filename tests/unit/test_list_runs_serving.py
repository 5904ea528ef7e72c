"""Runs without item vectors (co-occurrence, tfidf) served like embedding runs (issue 13).

Such a run answers a seed with its own ranking, completed by the run's fallback chain and cut
under the filter's rules. The list for a seed is the same in the library (``similar_items``),
REST ``GET /api/v1/similar``, Compare (``side_by_side``) and a precomputed table (REST
``source=precomputed``), under presets; recent views (library and ``POST /api/v1/recommend``)
answer from the most recent item the model knows, with ``exclude_seen`` on and off.

The tiny serving data: 24 three-item sessions inside one leaf category each, which never hold
items 3, 7 and 11 of a leaf, so the co-occurrence model does not know those (its fallback chain
does, through their category); every item has a title, so tfidf knows them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recsys.compare import side_by_side
from recsys.errors import UnknownItemError
from recsys.filters import FilterConfig, PresetStore
from recsys.precompute import precompute
from recsys.registry import Registry
from recsys.search import recommend_for_recent, similar_items
from tests._serving_data import make_client, make_serving_data

K = 6
PRESETS = ("same-cat", "no-adult", "merch")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from recsys.pipeline import train_run

    root = tmp_path_factory.mktemp("list_runs")
    out = make_serving_data(root)
    PresetStore(root).save(
        "merch",
        FilterConfig(
            price_ratio_min=0.5,
            price_ratio_max=3.0,
            brands_deny=["Dune"],
            max_per_brand=2,
            pins=[{"seed": "it005", "item_id": "it010", "position": 1}],
        ),
    )
    out["lists"] = {
        family: train_run(family, {}, "tiny", root, max_cases=30, validate=False, activate=False)["run_id"]
        for family in ("cooccurrence", "tfidf")
    }
    out["root"] = root
    return out


def rest_items(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


@pytest.mark.parametrize("family", ["cooccurrence", "tfidf"])
def test_a_seed_gets_one_list_in_the_library_rest_compare_and_precompute(
    data: dict[str, Any], family: str
) -> None:
    root, run = data["root"], data["lists"][family]
    reg = Registry(root)
    model = reg.load_model(run)
    assert not model.is_embedding and not hasattr(model, "recommend")
    c = make_client(root, token="")
    seeds = [str(i) for i in data["item_ids"]]  # every catalogue item: known to the model or the chain
    by_source: dict[str, set[str]] = {}
    for preset in PRESETS:
        table = precompute(root, run, preset, k=K, checks=False)
        assert table["n_items"] == len(seeds)
        config = PresetStore(root).load(preset)
        for seed in seeds:
            lib = similar_items(reg, run, seed, config, K)
            assert lib.plan == "list" and len(lib.served_by) == len(lib.item_ids)
            live = c.get(f"/api/v1/similar/{seed}?run={run}&preset={preset}&k={K}")
            assert live.status_code == 200, live.get_json()
            live = live.get_json()
            assert rest_items(live) == lib.item_ids, (preset, seed)
            assert live["served_by"] == lib.served_by and live["plan"] == "list"
            compare = side_by_side(reg, [run], seed, config, K)["lists"][run]
            assert compare["item_ids"] == lib.item_ids and compare["served_by"] == lib.served_by
            pre = c.get(f"/api/v1/similar/{seed}?run={run}&preset={preset}&k={K}&source=precomputed")
            assert pre.status_code == 200, pre.get_json()
            assert rest_items(pre.get_json()) == lib.item_ids, (preset, seed)
            assert pre.get_json()["served_by"] == lib.served_by, (preset, seed)
            for item, source in zip(lib.item_ids, lib.served_by):
                by_source.setdefault(source, set()).add(item)
    # the lists are the run's own (plus the chain where it has fewer than k), not the chain alone
    assert by_source.get("model")
    if family == "cooccurrence":
        assert set(by_source) - {"model", "pin"}, "the chain completes the short co-occurrence lists"
        assert table["by_fallback"] == 12  # items 3, 7, 11 of each leaf
    else:
        assert table["by_fallback"] == 0


def test_the_preset_rules_hold_on_a_list_runs_answers(data: dict[str, Any]) -> None:
    root, run = data["root"], data["lists"]["cooccurrence"]
    reg = Registry(root)
    cat = data["catalog"].set_index("item_id")
    c = make_client(root, token="")
    plain = similar_items(reg, run, "it005", None, K)
    merch = rest_items(c.get(f"/api/v1/similar/it005?run={run}&preset=merch&k={K}").get_json())
    assert merch[0] == "it010" and "it010" not in plain.item_ids[:1], "the pin is placed"
    assert "Dune" not in {cat.loc[i, "brand"] for i in merch}
    assert max(list(cat.loc[merch, "brand"].value_counts())) <= 2
    seed_price = cat.loc["it005", "price"]
    assert all(0.5 * seed_price <= cat.loc[i, "price"] <= 3.0 * seed_price for i in merch)
    same = similar_items(reg, run, "it005", PresetStore(root).load("same-cat"), K)
    assert same.item_ids and {cat.loc[i, "category"].split(" > ")[1] for i in same.item_ids} == {"Shoes"}
    assert all(cat.loc[i, "category"].startswith("Women > Shoes") for i in same.item_ids)


def test_a_seed_no_part_of_the_run_is_a_clear_404(data: dict[str, Any]) -> None:
    root, run = data["root"], data["lists"]["tfidf"]
    with pytest.raises(UnknownItemError, match="unknown to run"):
        similar_items(Registry(root), run, "no-such-item", None, K)
    resp = make_client(root, token="").get(f"/api/v1/similar/no-such-item?run={run}&k={K}")
    body = resp.get_json()
    assert resp.status_code == 404 and body["error"]["field"] == "item_id"
    assert "no-such-item" in body["error"]["message"]
    # Compare's column for the run says it as it does for an embedding run's unknown seed
    got = side_by_side(Registry(root), [run], "no-such-item", None, K)["lists"][run]
    assert got["error"] == "item 'no-such-item' is not known to this run: pick another seed item"


def test_recent_views_answer_from_the_most_recent_item_the_model_knows(data: dict[str, Any]) -> None:
    root, run = data["root"], data["lists"]["cooccurrence"]
    reg = Registry(root)
    model = reg.load_model(run)
    c = make_client(root, token="")
    # it003 is the most recent view, but the co-occurrence model never saw it: the seed walks back to it005
    session = ["it004", "it005", "it003", "no-such-item"]
    assert list(model.rows_of(session) >= 0) == [True, True, False, False]
    own = [i for i in model.similar(["it005"], 20)[0][0] if i]
    assert "it004" in own, "a session item is among the seed's own neighbours"

    def both(exclude_seen: bool, **extra: Any) -> Any:
        lib = recommend_for_recent(reg, run, session, extra.get("filters"), K, exclude_seen=exclude_seen)
        body = c.post(
            "/api/v1/recommend",
            json={"recent_item_ids": session, "run": run, "k": K, "exclude_seen": exclude_seen, **extra},
        )
        assert body.status_code == 200, body.get_json()
        body = body.get_json()
        assert rest_items(body) == lib.item_ids and body["served_by"] == lib.served_by
        assert body["method"] == lib.method == "last_item" and lib.seed_item_id == "it005"
        assert body["ignored_item_ids"] == ["no-such-item"]
        assert body["recent_item_ids"] == ["it004", "it005", "it003"]
        return lib

    hidden = both(True)
    assert len(hidden.item_ids) == K and not set(session) & set(hidden.item_ids)
    mine = [i for i, s in zip(hidden.item_ids, hidden.served_by) if s == "model"]
    assert mine == [i for i in own if i not in session][: len(mine)] and mine
    shown = both(False)
    assert "it004" in shown.item_ids and "it005" not in shown.item_ids
    # with exclude_seen off, the answer is the seed's own list (similar_items of it005)
    assert shown.item_ids == similar_items(reg, run, "it005", None, K).item_ids
    # the filters hold on the recent-views list too
    cat = data["catalog"].set_index("item_id")
    denied = both(True, filters={"brands_deny": [cat.loc[hidden.item_ids[0], "brand"]]})
    assert denied.item_ids and cat.loc[hidden.item_ids[0], "brand"] not in set(
        cat.loc[denied.item_ids, "brand"]
    )


def test_recent_views_the_model_knows_nothing_of_are_served_by_the_chain(data: dict[str, Any]) -> None:
    root, run = data["root"], data["lists"]["cooccurrence"]
    reg = Registry(root)
    c = make_client(root, token="")
    for exclude_seen in (True, False):
        lib = recommend_for_recent(reg, run, ["it007", "it003"], None, K, exclude_seen=exclude_seen)
        body = c.post(
            "/api/v1/recommend",
            json={"recent_item_ids": ["it007", "it003"], "run": run, "k": K, "exclude_seen": exclude_seen},
        ).get_json()
        assert lib.method == body["method"] == "fallback" and lib.seed_item_id == "it003"
        assert len(lib.item_ids) == K and "model" not in lib.served_by
        assert rest_items(body) == lib.item_ids and body["served_by"] == lib.served_by
    resp = c.post("/api/v1/recommend", json={"recent_item_ids": ["nope"], "run": run, "k": K})
    assert resp.status_code == 404 and "none of the recent items" in resp.get_json()["error"]["message"]


def test_tfidf_recent_views_on_off(data: dict[str, Any]) -> None:
    root, run = data["root"], data["lists"]["tfidf"]
    reg = Registry(root)
    session = ["it001", "it002"]
    on = recommend_for_recent(reg, run, session, None, K, exclude_seen=True)
    off = recommend_for_recent(reg, run, session, None, K, exclude_seen=False)
    assert on.method == off.method == "last_item" and on.seed_item_id == "it002"
    assert "it001" not in on.item_ids and "it001" in off.item_ids  # "Product 1" is close to "Product 2"
    assert off.item_ids == similar_items(reg, run, "it002", None, K).item_ids


def test_spark_precompute_still_needs_vectors_and_says_why(data: dict[str, Any]) -> None:
    from recsys.precompute import PrecomputeError, table_inputs

    run = data["lists"]["tfidf"]
    with pytest.raises(PrecomputeError, match="no item vectors for Spark.*recsys precompute"):
        table_inputs(Path(data["root"]), run, "same-cat", K, need_vectors=True)
    assert table_inputs(Path(data["root"]), run, "same-cat", K)[2]["run_id"] == run
