"""Browser tests of Explore, Map and Compare (headless Chromium; ``pytest --headless``).

Lean on purpose (two CPU cores shared): one test walks Explore like a merchandiser, one checks
that the map draws and Compare shows two lists with their overlap. Each ends with no browser
console errors.
"""

from __future__ import annotations

from selenium.webdriver.common.by import By

from recsys.data.schema import load_dataset
from recsys.registry import Registry
from tests.integration._browser import click, run_ids, wait_until


def _cards(dash_duo) -> list[str]:
    return [e.get_attribute("data-item") for e in dash_duo.find_elements("#explore-results .item-card")]


def _unique_title_item(root, run_id: str) -> tuple[str, str]:
    """An item of the run with a title no other item shares (and its title)."""
    model = Registry(root).load_model(run_id)
    cat = load_dataset("demo", root).catalog
    cat = cat[cat["item_id"].isin(set(map(str, model.item_ids_)))]
    counts = cat["title"].value_counts()
    row = cat[cat["title"].map(counts) == 1].iloc[0]
    return str(row["item_id"]), str(row["title"])


def test_explore_search_pick_and_same_category(dash_duo, dash_app, demo_data_dir):
    from components import ids

    run = run_ids(demo_data_dir)["prod2vec"]
    item, title = _unique_title_item(demo_data_dir, run)
    dash_duo.driver.set_window_size(1400, 1100)
    dash_duo.start_server(dash_app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/explore?run={run}")
    wait_until(lambda: len(_cards(dash_duo)) == 10, what="the first 10 cards")

    # Search by part of the title (server-side options), pick the item.
    dash_duo.find_element(f"#{ids.EXPLORE_SEED}").click()
    box = dash_duo.find_element(".dash-dropdown-search-container input")
    box.send_keys(title[2:-2].lower())
    wait_until(
        lambda: any(f"({item})" in o.text for o in dash_duo.find_elements(".dash-dropdown-option")),
        what="the searched item among the options",
    )
    next(o for o in dash_duo.find_elements(".dash-dropdown-option") if f"({item})" in o.text).click()
    dash_duo.wait_for_contains_text(f"#{ids.EXPLORE_SEED_CARD}", title, timeout=10)
    wait_until(
        lambda: len(_cards(dash_duo)) == 10 and item not in _cards(dash_duo), what="10 neighbours of the pick"
    )
    before = _cards(dash_duo)
    assert f"seed={item}" in dash_duo.driver.current_url and f"run={run}" in dash_duo.driver.current_url

    # Same category at the leaf level: the list changes and the rule's removed count appears.
    level = dash_duo.find_element(
        "#" + _css_id({"type": "filter-control", "panel": "explore", "field": "category_level"})
    )
    level.click()
    dash_duo.find_elements(".dash-dropdown-option")[-1].click()
    switch = dash_duo.find_element(
        "#" + _css_id({"type": "filter-control", "panel": "explore", "field": "same_category"})
    )
    click(dash_duo, switch)
    wait_until(
        lambda: dash_duo.find_elements(f"#{ids.EXPLORE_REMOVED} [data-rule='same_category']"),
        what="the same-category removed count",
    )
    wait_until(lambda: _cards(dash_duo) != before, what="a different list")
    removed = dash_duo.find_element(f"#{ids.EXPLORE_REMOVED} [data-rule='same_category']").text
    assert removed.startswith("−") and int(removed[1:].replace(",", "")) > 0
    assert dash_duo.get_logs() == []


def _css_id(component_id: dict) -> str:
    """The DOM id Dash gives a dict id, escaped for a CSS selector."""
    import json

    raw = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return "".join("\\" + c if not c.isalnum() and c not in "-_" else c for c in raw)


def test_map_draws_points_and_compare_shows_two_lists(dash_duo, dash_app, demo_data_dir):
    from components import ids

    runs = run_ids(demo_data_dir)
    dash_duo.driver.set_window_size(1400, 1100)
    dash_duo.start_server(dash_app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/map?run={runs['prod2vec']}")
    dash_duo.wait_for_element(f"#{ids.MAP_GRAPH} .js-plotly-plot", timeout=40)
    n_items = len(Registry(demo_data_dir).load_model(runs["prod2vec"]).item_ids_)

    def points() -> int:
        return dash_duo.driver.execute_script(
            f"const g = document.querySelector('#{ids.MAP_GRAPH} .js-plotly-plot');"
            "return g && g._fullData ? g._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : -1;"
        )

    wait_until(lambda: points() == n_items, timeout=40, what="every item drawn")
    assert dash_duo.find_elements(f"#{ids.MAP_GRAPH} canvas")  # WebGL
    dash_duo.wait_for_contains_text(f"#{ids.MAP_STATUS}", "PCA", timeout=10)

    pair = f"{runs['prod2vec']},{runs['popularity']}"
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?runs={pair}")
    wait_until(
        lambda: len(dash_duo.find_elements(f"#{ids.COMPARE_LISTS} .compare-col")) == 2,
        timeout=40,
        what="two lists",
    )
    cols = dash_duo.find_elements(f"#{ids.COMPARE_LISTS} .compare-col")
    assert all(len(c.find_elements(By.CSS_SELECTOR, ".cmp-item")) == 10 for c in cols)
    overlap = dash_duo.find_element(f"#{ids.COMPARE_AGREEMENT} [data-metric='overlap']").text
    assert 0.0 <= float(overlap) <= 1.0
    assert dash_duo.get_logs() == []
