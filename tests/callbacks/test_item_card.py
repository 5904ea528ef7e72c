"""Item cards: the compact markup the live Explore list sends per filter change."""

from __future__ import annotations

import json

from dash import html
from dash._utils import to_json

from components.item_card import CATEGORY_SEP, ITEM_ADD_TYPE, card_grid, html_node, item_card

ROW = {
    "item_id": "i7",
    "title": "Leather Tote Bag",
    "brand": "Acme",
    "category": "Women > Bags > Totes",
    "gender": "women",
    "price": 129.5,
    "image_url": "",
}


def _nodes(tree: object) -> list[dict]:
    """Every component of a serialised tree, depth first."""
    out: list[dict] = []

    def walk(n: object) -> None:
        if isinstance(n, list):
            for c in n:
                walk(c)
        elif isinstance(n, dict) and "props" in n:
            out.append(n)
            walk(n["props"].get("children"))

    walk(json.loads(to_json(tree)))
    return out


def test_html_node_is_the_json_form_of_the_dash_component():
    assert (
        html_node("Div", "x", className="a", **{"data-v": "1"})
        == html.Div("x", className="a", **{"data-v": "1"}).to_plotly_json()
    )
    assert html_node("Span", "2", className="b") == html.Span("2", className="b").to_plotly_json()
    # no children: Dash sends "children": null, the dict leaves it out (the renderer treats both alike)
    assert html_node("Div", className="c")["props"] == {"className": "c"}


def test_category_separator_matches_the_schema():
    from recsys.data.schema import CATEGORY_SEP as SCHEMA_SEP

    assert CATEGORY_SEP == SCHEMA_SEP


def test_card_shows_every_field_and_links_into_explore():
    card = item_card(ROW, score=0.8123, rank=3, run_id="r1", panel="p")
    nodes = _nodes(card)
    assert len(nodes) <= 9  # the card stays small: it is built 10-50 times per filter change
    by_class = {n["props"].get("className"): n["props"] for n in nodes}
    assert by_class["item-card card-body-x"]["data-item"] == "i7"
    assert by_class["card-head"] == {"children": "i7", "className": "card-head", "data-rank": "#3"}
    assert by_class["card-title"]["href"] == "/explore?seed=i7&run=r1"
    assert by_class["card-category"]["children"] == "Women › Bags › Totes"
    assert by_class["card-meta"]["data-gender"] == "Women" and by_class["card-meta"]["children"][0] == "Acme"
    assert by_class["card-price"]["children"] == "129.50"
    assert by_class["sim-bar"]["data-v"] == "0.812" and by_class["sim-bar"]["style"] == {"--sim": "81%"}
    assert by_class["card-add"]["id"] == {"type": ITEM_ADD_TYPE, "item": "i7", "panel": "p"}


def test_seed_card_is_tagged_without_score_or_link_and_missing_fields_show_placeholders():
    card = item_card({"item_id": "x1", "price": float("nan")}, score=0.5, seed=True)
    by_class = {n["props"].get("className"): n["props"] for n in _nodes(card)}
    assert "item-card seed-card card-body-x" in by_class
    assert by_class["card-head"]["data-tag"] == "seed"
    assert "sim-bar" not in by_class and "href" not in by_class["card-title"]
    assert by_class["card-category"]["children"] == "no category"
    assert by_class["card-meta"]["children"][0] == "no brand" and "data-gender" not in by_class["card-meta"]
    assert by_class["card-price"]["children"] == "—"


def test_card_grid_ranks_in_order():
    grid = card_grid([dict(ROW, item_id=f"i{i}") for i in range(3)], [0.9, 0.8, 0.7])
    heads = [n["props"] for n in _nodes(grid) if n["props"].get("className") == "card-head"]
    assert [(h["children"], h["data-rank"]) for h in heads] == [("i0", "#1"), ("i1", "#2"), ("i2", "#3")]


def test_an_item_without_a_title_is_named_by_its_leaf_category_in_cards_pickers_and_tooltips():
    """dunnhumby's products have no names: a card titled by its id told a merchandiser nothing
    (every neighbour read as a number). The leaf category names it; the id stays in the card head."""
    from components.pickers import item_label

    row = {
        "item_id": "995242",
        "title": "",
        "brand": "Private",
        "category": "GROCERY > FLUID MILK > WHITE ONLY",
    }
    by_class = {n["props"].get("className"): n["props"] for n in _nodes(item_card(row, score=0.3, rank=1))}
    assert by_class["card-title"]["children"] == "WHITE ONLY"
    assert by_class["card-head"]["children"] == "995242"
    assert item_label(row) == "WHITE ONLY · Private  (995242)"
    assert (
        item_label({**row, "title": "995242"}) == "WHITE ONLY · Private  (995242)"
    )  # a title that is the id
    assert item_label({**row, "category": ""}) == "995242 · Private  (995242)"  # nothing else to show
    assert item_label({**row, "title": "Whole Milk 1 gal"}).startswith("Whole Milk 1 gal · ")


def test_a_numeric_category_code_is_not_shown_as_an_items_name():
    """Taobao's categories are numbers: a card titled "4159072" read as a product name (or an id)."""
    from components.pickers import item_label

    row = {"item_id": "2268318", "title": "", "brand": "", "category": "4159072"}
    by_class = {n["props"].get("className"): n["props"] for n in _nodes(item_card(row, score=0.3, rank=1))}
    assert by_class["card-title"]["children"] == "Item of category 4159072"
    assert by_class["card-head"]["children"] == "2268318"
    assert item_label(row) == "Item of category 4159072  (2268318)"
    assert item_label({**row, "category": "Toys > 4159072"}) == "Item of category 4159072  (2268318)"
    assert item_label({**row, "category": "Toys > Lego 2"}) == "Lego 2  (2268318)"  # a name with a number


def test_a_catalogue_without_prices_shows_no_price_dash_on_its_cards():
    """Taobao has no prices: every card showed "—" where the price goes (as "no brand" before,
    s33-u). On a catalogue without any price the cards leave it out; where some items have a
    price, a missing one still reads "—"."""
    import pandas as pd

    from components.item_card import card_rows
    from recsys.catalog import CatalogView

    def prices(catalog: pd.DataFrame) -> list[str]:
        view = CatalogView(catalog["item_id"].tolist(), catalog)
        cards = [item_card(r, score=0.5, rank=1) for r in card_rows(view, range(view.n))]
        return [
            next(
                n["props"].get("children", "")
                for n in _nodes(c)
                if n["props"].get("className") == "card-price"
            )
            for c in cards
        ]

    bare = pd.DataFrame({"item_id": ["a", "b"], "title": ["", ""], "category": ["4159072", "4159072"]})
    assert prices(bare) == ["", ""]
    some = bare.assign(price=[12.5, None])
    assert prices(some)[1] == "—" and prices(some)[0] != ""


def test_a_catalogue_without_categories_shows_no_category_line_on_its_cards():
    """Myntra's catalogue has no categories: every card read "no category" (as "no brand" and
    "—" did on catalogues without brands or prices). On a catalogue without any category the cards
    leave the line out; where some items have one, a missing one still reads "no category"."""
    import pandas as pd

    from components.item_card import card_rows
    from recsys.catalog import CatalogView

    def categories(catalog: pd.DataFrame) -> list[list[str]]:
        view = CatalogView(catalog["item_id"].tolist(), catalog)
        cards = [item_card(r, score=0.5, rank=1) for r in card_rows(view, range(view.n))]
        return [
            [
                n["props"].get("children", "")
                for n in _nodes(c)
                if n["props"].get("className") == "card-category"
            ]
            for c in cards
        ]

    bare = pd.DataFrame(
        {"item_id": ["a", "b"], "title": ["DKNY Trolley Bag", "Roadster Tee"], "brand": ["DKNY", "Roadster"]}
    )
    assert categories(bare) == [[], []]
    some = bare.assign(category=["Bags > Trolley", ""])
    assert categories(some) == [["Bags › Trolley"], ["no category"]]
