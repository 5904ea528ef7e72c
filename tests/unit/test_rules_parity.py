"""Parity of the merchandising rules: a seed's list with rules is identical in Explore, the
REST API, ``recsys precompute`` (SQLite) and ``recsys spark precompute`` (issue 16 target).

A real Prod2Vec run (gensim, one worker, seeded) is trained on the tiny serving catalogue;
a preset adds do-not-associate pairs (two-way and one-way), a seed pin, a category pin, a
boost and a bury on top of ordinary filters; a second preset pins items under a brand cap of
one (pins count towards ``max_per_brand``: a ranked item of the pinned brand leaves the list,
the lower of two pins of one brand is dropped). For every item of the run the four paths must
give the same item ids in the same order: Explore's list function (``explore_results``, what
the filter-change callback calls), ``GET /api/v1/similar/<id>?preset=``, the SQLite table
written by :func:`recsys.precompute.precompute` read back, and the table written by
:func:`recsys.spark.spark_precompute` on a real local Spark (skipped, with the reason, when
no Java runtime is found).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import flask
import pytest

from components.filter_panel import controls_from_filter_config
from recsys.filters import FilterConfig, PresetStore
from recsys.precompute import SQLiteStore, precompute
from recsys.registry import Registry
from recsys.serving import register_api
from tests import _serving_data as _fixture
from tests.callbacks._emc_data import card_ids
from tests.callbacks._pages import page

K = 6
BASE = {"exclude_adult": True, "max_per_brand": 3}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny serving data directory plus a trained prod2vec run and a preset with rules."""
    from recsys.pipeline import train_run
    from recsys.search import get_searcher

    root = tmp_path_factory.mktemp("rules-parity")
    out = _fixture.make_serving_data(root)
    params = {"vector_size": 8, "epochs": 20, "workers": 1, "seed": 3, "min_count": 1, "window": 3}
    meta = train_run("prod2vec", params, dataset_name="tiny", root=root, label="p2v-rules")
    run_id = meta["run_id"]
    searcher = get_searcher(Registry(root), run_id)
    items = [str(i) for i in searcher.view.item_id_by_row]
    assert len(items) >= 24, "the trained run should cover most of the catalogue"
    catalog = out["catalog"].set_index("item_id")
    base = FilterConfig(**BASE)
    plain = {s: [str(i) for i in searcher.search(s, base, K).item_ids] for s in items}
    # rules drawn from the lists the run gives without them, so each one changes something
    seed_a, seed_b, seed_c = items[0], items[1], items[2]
    ban_two_way = plain[seed_a][0]
    ban_one_way = plain[seed_b][1]
    pin_item = next(i for i in items if i not in plain[seed_c] and i != seed_c and not catalog.adult[i])
    leaf = "Women > Shoes > Heels"
    leaf_pin = next(i for i in items if catalog.category[i] == "Men > Shoes > Running")
    rules = {
        **BASE,
        "do_not_associate": [
            {"seed": seed_a, "item_id": ban_two_way},
            {"seed": seed_b, "item_id": ban_one_way, "one_way": True},
        ],
        "pins": [
            {"seed": seed_c, "item_id": pin_item, "position": 1},
            {"category": leaf, "item_id": leaf_pin, "position": 2},
        ],
        "boost": [{"brands": ["Crest"], "multiplier": 1.5, "shift": 0.05}],
        "bury": [{"category": "Women > Shoes > Running", "multiplier": 0.5, "shift": -0.2}],
    }
    config = FilterConfig.from_dict(rules)
    PresetStore(root).save("ruled", config)
    ruled = {s: [str(i) for i in searcher.search(s, config, K).item_ids] for s in items}
    # pins under a brand cap of one: seed_d's pins share the brand of an item its list shows
    capped_base = FilterConfig(exclude_adult=True, max_per_brand=1)
    brand_of = {i: str(catalog.brand[i]).strip().casefold() for i in items}
    seed_d = next(
        s
        for s in items[3:]
        if any(brand_of[i] for i in searcher.search(s, capped_base, K).item_ids) and not catalog.adult[s]
    )
    before = [str(i) for i in searcher.search(seed_d, capped_base, K).item_ids]
    shown = next(i for i in before if brand_of[i])
    same = [i for i in items if brand_of[i] == brand_of[shown] and i not in before and i != seed_d]
    same = [i for i in same if not catalog.adult[i]][:2]
    assert len(same) == 2, "the catalogue should have two more items of a shown brand"
    capped = FilterConfig.from_dict(
        {
            "exclude_adult": True,
            "max_per_brand": 1,
            "pins": [
                {"seed": seed_d, "item_id": same[1], "position": 4},
                {"seed": seed_d, "item_id": same[0], "position": 2},
                {"category": leaf, "item_id": leaf_pin, "position": 1},
            ],
        }
    )
    PresetStore(root).save("capped", capped)
    capped_lists = {s: [str(i) for i in searcher.search(s, capped, K).item_ids] for s in items}
    out.update(capped=capped_lists, capped_before=before, seed_d=seed_d, shown=shown, same=same)
    out.update(brand_of=brand_of)
    out.update(root=root, run_id=run_id, items=items, plain=plain, ruled=ruled, config=config)
    out.update(seed_a=seed_a, seed_b=seed_b, seed_c=seed_c, ban=(ban_two_way, ban_one_way))
    out.update(pin_item=pin_item, leaf=leaf, leaf_pin=leaf_pin)
    return out


def test_the_rules_change_the_lists(data: dict[str, Any]) -> None:
    """The preset is not a no-op: each rule shows in the lists the searcher gives."""
    ruled, plain, catalog = data["ruled"], data["plain"], data["catalog"].set_index("item_id")
    two_way, one_way = data["ban"]
    assert two_way not in ruled[data["seed_a"]]
    if data["seed_a"] in data["items"] and two_way in data["items"]:
        assert data["seed_a"] not in ruled[two_way]
    assert one_way not in ruled[data["seed_b"]]
    assert ruled[data["seed_c"]][0] == data["pin_item"]
    heels = [s for s in data["items"] if catalog.category[s] == data["leaf"]]
    assert heels and all(ruled[s][1] == data["leaf_pin"] for s in heels)
    changed = sum(ruled[s] != plain[s] for s in data["items"])
    assert changed > len(heels) + 3, "boost and bury should reorder lists beyond the pinned ones"


def test_pins_count_towards_the_brand_cap(data: dict[str, Any]) -> None:
    """Under max_per_brand=1 no list shows a brand twice, pins included; seed_d's first pin takes
    its brand's place (the ranked item of that brand leaves), the lower pin of that brand goes."""
    capped, brand_of = data["capped"], data["brand_of"]
    for seed, ids in capped.items():
        branded = [brand_of[i] for i in ids if brand_of[i]]
        assert len(branded) == len(set(branded)), (seed, ids)
    d = capped[data["seed_d"]]
    assert d[1] == data["same"][0] and data["shown"] not in d and data["same"][1] not in d
    assert len(d) == len(data["capped_before"])  # one item per brand, as without the pins


@pytest.mark.parametrize("preset", ["ruled", "capped"])
def test_explore_and_the_api_give_the_same_list_with_rules(
    data: dict[str, Any], monkeypatch: Any, preset: str
) -> None:
    root, run_id = data["root"], data["run_id"]
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    explore = page("explore")
    values = controls_from_filter_config(PresetStore(root).load(preset))
    app = flask.Flask("rules-parity")
    register_api(app, root, token="")
    client = app.test_client()
    expected = data[preset]
    for seed in data["items"]:
        out = explore.explore_results(run_id, seed, K, values)
        assert out["message"] is None, (seed, out["message"])
        page_ids = card_ids(out["results"])
        resp = client.get(f"/api/v1/similar/{seed}?run={run_id}&preset={preset}&k={K}")
        assert resp.status_code == 200, resp.get_json()
        api_ids = [i["item_id"] for i in resp.get_json()["items"]]
        assert page_ids == api_ids == expected[seed], seed
        assert out["config_hash"] == PresetStore(root).load(preset).config_hash()


def stored_lists(path: Path, run_id: str, preset_hash: str, items: list[str]) -> dict[str, list[str]]:
    store = SQLiteStore(path)
    try:
        return {s: [e[0] for e in store.get(run_id, preset_hash, s)] for s in items}
    finally:
        store.close()


def test_precompute_and_spark_store_the_same_lists_with_rules(data: dict[str, Any], monkeypatch: Any) -> None:
    root, run_id, items = data["root"], data["run_id"], data["items"]
    metas = {}
    for preset in ("ruled", "capped"):
        meta = precompute(root, run_id, preset, k=K, store=root / "single.sqlite")
        assert meta["preset_hash"] == PresetStore(root).load(preset).config_hash()
        assert stored_lists(root / "single.sqlite", run_id, meta["preset_hash"], items) == data[preset]
        metas[preset] = meta

    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install -r requirements.txt)")
    from recsys import spark as rspark

    if not rspark.java_available():
        pytest.skip("no Java runtime (java on PATH or JAVA_HOME): Spark cannot start")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # the workers import recsys from this venv
    spark = rspark.get_spark(
        "local[1]",
        app_name="recsys-rules-parity",
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "1"},
    )
    try:
        smetas = {
            preset: rspark.spark_precompute(
                spark, root, run_id, preset, k=K, write_store=True, store=root / "spark.sqlite", partitions=2
            )
            for preset in ("ruled", "capped")
        }
    finally:
        spark.stop()
    for preset, smeta in smetas.items():
        meta = metas[preset]
        assert smeta["preset_hash"] == meta["preset_hash"] and smeta["n_items"] == meta["n_items"]
        assert stored_lists(root / "spark.sqlite", run_id, meta["preset_hash"], items) == data[preset]
