"""An analyst's session in a real browser (s33-u): what the walk on Online Retail found,
each as a browser test on the demo data (headless Chromium; ``pytest --headless``; ports
8151 to 8159 so a parallel run on 8050 cannot clash). Each ends with no console errors."""

from __future__ import annotations

import json
import shlex
import urllib.request

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from recsys.registry import Registry
from tests.integration._browser import click, run_ids, wait_until
from tests.integration.test_explore_map_compare import _cards, _css_id
from tests.integration.test_vetting_walk import _pick


def _run_command(command: str) -> list[str]:
    """Run the curl command the page shows (parsed, without a shell) with urllib: the ids."""
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "curl"
    url = args[-1]
    data = args[args.index("-d") + 1].encode() if "-d" in args else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the test server
        return [i["item_id"] for i in json.load(resp)["items"]]


def test_explore_shows_the_rest_call_of_the_list_on_screen(dash_duo, dash_app, demo_data_dir):
    """Explore's list has a "Same list from the REST API" box: its command answers exactly the
    cards shown, with no filters (GET) and after a filter is switched on (POST, inline)."""
    from components import ids

    run = run_ids(demo_data_dir)["prod2vec"]
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(dash_app, port=8151)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/explore?run={run}")
    wait_until(lambda: len(_cards(dash_duo)) == 10, what="the first 10 cards")

    box = dash_duo.find_element(".api-call-box summary")
    click(dash_duo, box)
    pre = dash_duo.find_element(f"#{ids.EXPLORE_API_CALL}")
    wait_until(lambda: pre.is_displayed(), what="the command shown")
    command = pre.text
    assert command.startswith("curl") and "$RECSYS_API_TOKEN" in command and f"run={run}" in command
    assert _run_command(command) == _cards(dash_duo)

    before = _cards(dash_duo)
    switch = dash_duo.find_element(
        "#" + _css_id({"type": "filter-control", "panel": "explore", "field": "same_category"})
    )
    click(dash_duo, switch)
    wait_until(lambda: _cards(dash_duo) != before, what="the filtered list")
    wait_until(
        lambda: (
            '"same_category": true'
            in dash_duo.find_element(f"#{ids.EXPLORE_API_CALL}").get_attribute("textContent")
        ),
        what="the inline filter in the command",
    )
    # the box stayed open through the redraw (it folded again on every filter change)
    assert dash_duo.find_element(f"#{ids.EXPLORE_API_CALL}").is_displayed()
    command = dash_duo.find_element(f"#{ids.EXPLORE_API_CALL}").get_attribute("textContent")
    assert _run_command(command) == _cards(dash_duo)
    # folded by the user, it stays folded through the next change
    click(dash_duo, dash_duo.find_element(".api-call-box summary"))
    wait_until(lambda: not dash_duo.find_element(f"#{ids.EXPLORE_API_CALL}").is_displayed(), what="folded")
    click(dash_duo, switch)
    wait_until(
        lambda: (
            '"same_category"'
            not in dash_duo.find_element(f"#{ids.EXPLORE_API_CALL}").get_attribute("textContent")
        ),
        what="the command without the filter",
    )
    assert not dash_duo.find_element(f"#{ids.EXPLORE_API_CALL}").is_displayed()
    assert dash_duo.get_logs() == []


def test_overview_calls_no_lone_model_the_best_on_its_dataset(dash_duo, dash_app_copy, demo_data_copy):
    """A dataset with one model trained (the walk: TF-IDF done, Prod2Vec still training): the
    Overview's headline says it is the only one, not "the best model on this dataset"."""
    from recsys.registry import Registry

    Registry(demo_data_copy).delete(run_ids(demo_data_copy)["prod2vec"])
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(dash_app_copy, port=8152)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/")
    dash_duo.wait_for_contains_text(".headline", "The only model trained on this dataset so far", timeout=30)
    assert "best model on this dataset" not in dash_duo.find_element(".headline").text
    assert dash_duo.get_logs() == []


def test_a_lassoed_cluster_says_what_it_is(dash_duo, dash_app, demo_data_dir):
    """Lasso a cluster on the Map: besides "N items selected" and the list, the selection says
    which categories it holds and their shares, and its price range, computed on every
    selected item."""
    import sys

    import pandas as pd

    from tests.integration.test_map_events import _POINTS_JS, GRAPH, _drag, _inside, _region

    run = run_ids(demo_data_dir)["prod2vec"]
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(dash_app, port=8153)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/map?run={run}")
    dash_duo.wait_for_element("#map-graph .js-plotly-plot", timeout=40)
    wait_until(lambda: dash_duo.driver.execute_script(_POINTS_JS), timeout=40, what="the points drawn")
    dash_duo.driver.execute_script(f"{GRAPH}.scrollIntoView({{block: 'center', behavior: 'instant'}})")
    points = dash_duo.driver.execute_script(_POINTS_JS)
    view = sys.modules["components.common"].run_searcher(run).view
    x0, y0, x1, y1 = _region(points)
    inside = sorted(_inside(points, x0, y0, x1, y1, 0))
    _drag(dash_duo.driver, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)])
    dash_duo.wait_for_text_to_equal("#map-selection-info", f"{len(inside):,} items selected", timeout=15)
    dash_duo.wait_for_element("#map-selection-summary", timeout=15)
    cats = view.attributes(inside)["category"].astype(str).str.replace(" > ", " › ", regex=False)
    top, share = cats.value_counts().index[0], cats.value_counts().iloc[0] / len(cats)
    summary = dash_duo.find_element("#map-selection-summary").text
    assert f"Categories: {top} {share:.0%}" in summary, summary
    prices = pd.to_numeric(view.attributes(inside)["price"], errors="coerce").dropna()
    if len(prices):
        assert "Prices: " in summary and "median" in summary
    assert dash_duo.get_logs() == []


@pytest.fixture(scope="module")
def nobrand(demo_data_dir, tmp_path_factory) -> dict:
    """The demo catalogue as dataset "nobrand": without its brand column (as Online Retail,
    which has no brands), no categories (as a catalogue that has none), and numeric item ids
    (P000243 -> 10243, as Instacart's product ids), with a prod2vec and a popularity run, beside
    the demo's, in a copy of the demo data made once for this module (its tests only read it:
    built per test, its copy and two trainings cost 7 to 10 s of the second test's setup)."""
    import shutil

    from recsys.data.loaders import build_dataset
    from recsys.data.schema import load_dataset, save_dataset
    from recsys.pipeline import train_run
    from tests.integration.conftest import PROD2VEC_PARAMS

    def numeric(ids):
        return ids.str[1:].astype(int).add(10000).astype(str)

    demo_data_copy = tmp_path_factory.mktemp("nobrand") / "data"
    shutil.copytree(
        demo_data_dir, demo_data_copy, ignore=shutil.ignore_patterns("jobs", "uploads", "device.json")
    )
    demo = load_dataset("demo", demo_data_copy)
    cat = demo.catalog.drop(columns=["brand"]).assign(category="", item_id=lambda d: numeric(d["item_id"]))
    events = demo.interactions.assign(item_id=lambda d: numeric(d["item_id"]))
    save_dataset(build_dataset("nobrand", cat, events), demo_data_copy)
    runs = {
        family: train_run(family, params, "nobrand", demo_data_copy, label=f"no brands {family}")["run_id"]
        for family, params in (("prod2vec", PROD2VEC_PARAMS), ("popularity", {}))
    }
    return {"root": demo_data_copy, "runs": runs}


def _option(dash_duo, text: str):
    """The open dropdown's first option whose text holds ``text`` (None when none does)."""
    return next((o for o in dash_duo.find_elements(".dash-dropdown-option") if text in o.text), None)


def _server_ranked_query(root, run: str) -> tuple[str, list[str]]:
    """A word of the run's titles and the ids the server's seed search lists for it, most
    interacted-with first, where that order is neither the ids' (numeric) order, which Dash's
    dropdown re-rank gave on numeric ids (Instacart), nor the titles' alphabetical order."""
    import re

    from recsys.catalog import item_popularity, run_catalog_view, search_items

    view = run_catalog_view(Registry(root), run)
    counts = item_popularity(view, wait=30)  # the server ranks by them once they are read
    assert counts is not None
    titles = dict(zip(view.item_ids, view.attributes(np.arange(view.n))["title"]))
    for word in sorted({w for t in titles.values() for w in re.findall(r"[a-z]{4,}", t.lower())}):
        pos = search_items(view, word)
        ids = [str(i) for i in view.item_ids[pos]]
        if not 3 <= len(ids) <= 6 or counts[pos[0]] == counts[pos[1]]:  # all in the open list
            continue
        if ids[0] != min(ids, key=int) and titles[ids[0]] != min(titles[i] for i in ids):
            return word, ids
    raise AssertionError("no title word ranks apart from id and title order")


def test_a_catalogue_without_brands_or_categories_offers_no_rule_that_needs_them(
    dash_duo, nobrand, monkeypatch
):
    """Online Retail has no brands: every card and the map's hover card said "no brand". On a
    catalogue without any brand the cards leave the brand out (the price stays; the map's hover
    card uses the same brand_text). The seed search lists the server's best match first (Dash's
    dropdown re-ranked it: on Instacart "banana" listed a rare "Banana & Sweet Potato…" before
    "Banana"). Without categories, "Same category" is disabled and says why, and Vetting's
    queue modes follow a switch to this dataset ("N per leaf category" stayed offered)."""
    from tests.integration.conftest import _fresh_app

    demo_data_copy, run = nobrand["root"], nobrand["runs"]["prod2vec"]
    app = _fresh_app(demo_data_copy, monkeypatch)
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(app, port=8154)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/explore?run={run}")
    wait_until(lambda: len(_cards(dash_duo)) == 10, what="the first 10 cards")
    # type a word into the seed search: the options in the server's order, best match first
    word, ranked = _server_ranked_query(demo_data_copy, run)
    click(dash_duo, dash_duo.find_element("#explore-seed"))
    dash_duo.find_element(".dash-dropdown-search-container input").send_keys(word)

    def shown() -> list[str]:
        texts = [o.text for o in dash_duo.find_elements(".dash-dropdown-option")]
        return [t.rsplit("(", 1)[-1].rstrip(")") for t in texts]

    listed: list[str] = []  # read once per poll: React redraws the list while it answers

    def all_listed() -> bool:
        listed[:] = shown()
        return sorted(listed) == sorted(ranked)

    wait_until(all_listed, what=f"the options {ranked} for {word!r}")
    assert listed == ranked, (word, listed)
    dash_duo.find_element(".dash-dropdown-search-container input").send_keys(Keys.ESCAPE)
    # "Same category" cannot apply: disabled, and says why
    same = dash_duo.find_element(
        "#" + _css_id({"type": "filter-control", "panel": "explore", "field": "same_category"})
    )
    assert not same.is_enabled()
    why = same.find_element(By.XPATH, "ancestor::div[contains(@class, 'filter-unavailable')]")
    assert "no categories" in why.text and "no categories" in why.get_attribute("title")
    metas = [e.text for e in dash_duo.find_elements("#explore-results .card-meta")]
    assert len(metas) == 10 and not any("no brand" in m for m in metas), metas
    assert all(m.strip() for m in metas)  # the price is still there
    assert "no brand" not in dash_duo.find_element("#explore-seed-card").text
    # the brand rules cannot apply: said, and their pickers do not open
    hint = dash_duo.find_element(".brands-unavailable")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", hint)
    assert hint.is_displayed() and "no brands" in hint.text
    allow = dash_duo.find_element(
        "#" + _css_id({"type": "filter-control", "panel": "explore", "field": "brands_allow"})
    )
    click(dash_duo, allow)
    assert not [o for o in dash_duo.find_elements(".dash-dropdown-option") if o.is_displayed()]
    # nor can "Max per brand" be set (items without a brand are never capped: it would do nothing)
    cap = dash_duo.find_element(
        "#" + _css_id({"type": "filter-control", "panel": "explore", "field": "max_per_brand"})
    )
    assert not cap.is_enabled()
    note = dash_duo.find_element(".max-per-brand-unavailable")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", note)
    assert note.is_displayed() and "no brands" in note.text
    # the recent-views panel answers with this dataset's run: it opened on the demo's two-tower
    # run, which knows none of these items ("none of the recent items is known to run ...")
    click(dash_duo, dash_duo.find_element("#explore-seed-card .card-add"))
    wait_until(
        lambda: len(dash_duo.find_elements("#explore-session-results .item-card")) == 10,
        what="the recent-views panel's 10 cards",
    )
    assert "no brands" in dash_duo.find_element("#explore-session-run").text

    # a switch of the Explore run to the demo's moves the panel to a demo run
    def demo_option():  # the first click may only close the brand picker opened above
        if not dash_duo.find_elements(".dash-dropdown-option"):
            click(dash_duo, dash_duo.find_element("#explore-run"))
        return _option(dash_duo, "prod2vec (test) ★ · demo")

    wait_until(demo_option, what="the demo's prod2vec run offered")
    click(dash_duo, _option(dash_duo, "prod2vec (test) ★ · demo"))
    wait_until(
        lambda: "· demo" in dash_duo.find_element("#explore-session-run").text,
        what="the recent-views run on the demo",
    )
    # Vetting on the demo (it has categories), then a switch to this dataset: its queue modes
    demo_run = Registry(demo_data_copy).active("demo")["prod2vec"]
    dash_duo.wait_for_page(f"{dash_duo.server_url}/vetting?run={demo_run}")

    def per_leaf():
        label = dash_duo.find_element("#vetting-mode").find_element(
            By.XPATH, ".//label[contains(., 'N per leaf category')]"
        )
        return label, dash_duo.find_element(f"#{label.get_attribute('for')}")

    assert per_leaf()[1].is_enabled()
    _pick(dash_duo, "vetting-dataset", "nobrand")
    wait_until(lambda: not per_leaf()[1].is_enabled(), what="'N per leaf category' disabled on nobrand")
    assert "needs categories" in per_leaf()[0].text
    assert dash_duo.get_logs() == []


def test_compare_on_a_catalogue_without_brands_names_the_seed_and_items_cleanly(
    dash_duo, nobrand, monkeypatch
):
    """Compare's seed line read "Regency Cakestand 3 Tier · · " on Online Retail (empty brand and
    category joined), and two different items of one title ("Heart T-Light Holder") looked like
    one item listed twice: the line names what the seed has, and every listed item its id."""
    from tests.integration.conftest import _fresh_app

    runs = ",".join(nobrand["runs"][f] for f in ("prod2vec", "popularity"))
    app = _fresh_app(nobrand["root"], monkeypatch)
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(app, port=8155)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/compare?runs={runs}")
    wait_until(lambda: len(dash_duo.find_elements(".compare-col .cmp-item")) == 20, what="two lists of 10")
    facts = dash_duo.find_element(".compare-seed-facts").text
    assert "· ·" not in facts and facts.strip().startswith("·"), facts
    for item in dash_duo.find_elements(".compare-col .cmp-item"):
        assert item.find_element(By.CSS_SELECTOR, ".cmp-id").text == item.get_attribute("data-item")
    assert dash_duo.get_logs() == []


def test_a_viewer_on_explore_sees_no_preset_name_field(dash_duo, demo_data_copy, monkeypatch):
    """Signed in as a viewer, Explore's preset box showed a "name, e.g. ..." field with no Save
    button beside it (Save is editor-only): the whole save row is the editor's; loading and
    downloading a preset stay. An editor still sees the field."""
    from components.presets import PRESET_NAME
    from tests.integration.conftest import _fresh_app

    monkeypatch.setenv("RECSYS_API_TOKEN", "editor-secret-s33u-0123456789")
    monkeypatch.setenv("RECSYS_VIEWER_TOKEN", "viewer-secret-s33u-0123456789")
    app = _fresh_app(demo_data_copy, monkeypatch)
    run = run_ids(demo_data_copy)["prod2vec"]
    dash_duo.start_server(app, navigate=False, port=8156)
    dash_duo.driver.set_window_size(1280, 800)
    base = dash_duo.server.url.rstrip("/")
    name = "#" + _css_id({"type": PRESET_NAME, "panel": "explore"})

    def sign_in(token: str) -> None:
        dash_duo.driver.get(f"{base}/login?next=/explore?run={run}")
        dash_duo.wait_for_element("#password", timeout=30).send_keys(token)
        dash_duo.find_element("#login-submit").click()
        wait_until(lambda: len(_cards(dash_duo)) == 10, what="the first 10 cards")

    sign_in("viewer-secret-s33u-0123456789")
    assert not dash_duo.find_element(name).is_displayed()
    assert dash_duo.find_element(".preset-select").is_displayed()  # loading a preset stays
    # sign out as a user does, leaving the page first: deleting the cookies under the live page
    # let its 1 s job poll (or a callback still due after the first cards) go out signed out
    # before the next page load, a 401 in the console (the test failed once at load 20 to 28)
    dash_duo.driver.get(f"{base}/logout")
    dash_duo.driver.delete_all_cookies()
    sign_in("editor-secret-s33u-0123456789")
    assert dash_duo.find_element(name).is_displayed()
    assert dash_duo.get_logs() == []


def test_metric_values_with_their_interval_are_readable_at_1280(dash_duo, dash_app):
    """The Overview's and Compare's metric grids read "0.373 ±0.…" at 1280x800: the interval,
    what a stakeholder reads to trust a difference, was cut. Every metric cell shows its text."""
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(dash_app, port=8157)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/")
    wait_until(lambda: dash_duo.find_elements(".metric-cell"), what="the runs grid's metric cells")
    cut = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('.metric-cell')].filter(c => c.offsetParent !== null)"
        ".filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent)"
    )
    texts = [e.text for e in dash_duo.find_elements(".metric-cell") if e.is_displayed()]
    assert any("±" in t for t in texts), texts
    assert cut == [], cut
    assert dash_duo.get_logs() == []
