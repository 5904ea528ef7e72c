"""Item images in the cards of Explore, Compare, Vetting and the Map's hover card.

A catalogue ``image_url`` that is a path in the dataset's images folder becomes
``/media/<dataset>/<path>`` (served by :func:`recsys.images.register_media`); an http(s) URL
stays as it is; an item without one gets no ``<img>``.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from components import ids
from components.filter_panel import controls_from_filter_config
from recsys.filters import FilterConfig
from tests._image_data import BROKEN_PATH, GOOD_PATH, MISSING_PATH, WEB_URL, make_image_data
from tests.callbacks._pages import find, page


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("images")
    return {"root": root, **make_image_data(root)}


@pytest.fixture(autouse=True)
def _data_dir(shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(shop["root"]))
    monkeypatch.setenv("RECSYS_MLFLOW", "off")


def image_srcs(tree: Any) -> dict[str, str]:
    """data-item -> the src of the first <img> inside that card (cards without one left out)."""
    out: dict[str, str] = {}
    for card in find(tree, lambda c: getattr(c, "data-item", None) is not None):
        imgs = [n for n in _json_nodes(card.to_plotly_json()) if n["type"] == "Img"]
        if imgs:
            out[getattr(card, "data-item")] = imgs[0]["props"]["src"]
    return out


def _json_nodes(node: Any) -> list[dict]:
    """Every node of a component tree, whether built as Components or as JSON dicts."""
    out: list[dict] = []

    def walk(n: Any) -> None:
        if isinstance(n, (list, tuple)):
            for c in n:
                walk(c)
        elif hasattr(n, "to_plotly_json"):
            walk(n.to_plotly_json())
        elif isinstance(n, dict) and "props" in n:
            out.append(n)
            walk(n["props"].get("children"))

    walk(node)
    return out


def media(path: str) -> str:
    return f"/media/shop/{path}"


def test_explore_cards_show_local_images_through_media_and_urls_as_they_are(shop):
    explore = page("explore")
    values = controls_from_filter_config(FilterConfig())

    def results() -> dict[str, Any]:
        context_value.set(
            AttributeDict(triggered_inputs=[{"prop_id": f"{ids.EXPLORE_SEED}.value", "value": shop["good"]}])
        )
        return explore.update_results(shop["good"], shop["run"], 10, values, {})

    out = contextvars.copy_context().run(results)
    srcs = image_srcs(out["results"])
    assert srcs == {
        shop["broken"]: media(BROKEN_PATH),
        shop["missing"]: media(MISSING_PATH),
        shop["web"]: WEB_URL,
    }
    seed = explore.update_seed_card(shop["good"], shop["run"])
    assert image_srcs(seed) == {shop["good"]: media(GOOD_PATH)}


def test_map_hover_card_shows_the_thumbnail(shop):
    from recsys.registry import Registry
    from recsys.search import get_searcher

    mapp = page("map")
    pos = get_searcher(Registry(shop["root"]), shop["run"]).view.position(shop["good"])
    hover = {"points": [{"bbox": {"x0": 1, "x1": 3, "y0": 1, "y1": 3}, "curveNumber": 0, "customdata": pos}]}
    show, _bbox, card = mapp.show_tooltip(hover, shop["run"])
    assert show is True
    imgs = [n for n in _json_nodes(card) if n["type"] == "Img"]
    assert [i["props"]["src"] for i in imgs] == [media(GOOD_PATH)]
    # an item without an image: no <img> at all
    plain = get_searcher(Registry(shop["root"]), shop["run"]).view.position(shop["plain"])
    hover["points"][0]["customdata"] = plain
    assert not [n for n in _json_nodes(mapp.show_tooltip(hover, shop["run"])[2]) if n["type"] == "Img"]


def test_compare_lists_show_thumbnails(shop):
    from recsys.external import import_vectors

    second = import_vectors(
        "shop",
        "second",
        Path(shop["root"]) / "source" / "vectors.npy",
        ids=Path(shop["root"]) / "source" / "ids.txt",
        evaluate=False,
        activate=False,
        root=shop["root"],
    )["run"]["run_id"]
    compare = page("compare")
    lists, _agreement, _msg = compare.update_lists(
        [shop["run"], second], shop["good"], 10, controls_from_filter_config(FilterConfig())
    )
    srcs = image_srcs(lists)
    assert srcs[shop["broken"]] == media(BROKEN_PATH) and srcs[shop["web"]] == WEB_URL


def test_vetting_cards_show_local_images(shop):
    vetting = page("vetting")
    _opts, qid, msg = vetting.build_queue(1, shop["run"], None, 10, "pasted", 1, 1, shop["good"])
    assert isinstance(qid, str), msg
    queue, _cursor, group = vetting.load_queue(qid)
    srcs = image_srcs(vetting.show_seed(queue, group))
    assert srcs[shop["good"]] == media(GOOD_PATH)  # the seed card
    assert srcs[shop["broken"]] == media(BROKEN_PATH)
