"""Every Explore control driven with real events in Chromium (``pytest --headless``).

Each rule is switched on as a user does (a click on a switch, typing into a number box and
Enter, picking from a dropdown, a click on the slider's track) and the list is checked
against the rule itself, read from the catalogue: same gender -> every card has the seed's
gender; max per brand 1 -> no brand twice; and so on. Before each rule the test asserts that
the list breaks it, so a rule that stops working fails the test instead of passing unnoticed.

One page load walks the whole panel (each server start costs seconds on a busy machine):
``test_every_filter_control_applies_its_rule``; the run switch, k and the session panel are
``test_k_run_switch_and_session_panel``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from components import ids
from recsys.data.schema import load_dataset
from recsys.filters import FilterConfig
from recsys.registry import Registry
from recsys.vetting.proposals import item_name
from tests.integration._browser import click as _click
from tests.integration._browser import css_id, run_ids, wait_until

PANEL = "explore"
K = 50


def _control(field: str) -> str:
    return css_id({"type": "filter-control", "panel": PANEL, "field": field})


def _cards(dash_duo) -> list[str]:
    return [e.get_attribute("data-item") for e in dash_duo.find_elements("#explore-results .item-card")]


def _scores(dash_duo) -> list[float]:
    return [float(e.get_attribute("data-v")) for e in dash_duo.find_elements("#explore-results .sim-bar")]


def _catalog(root: Path) -> dict[str, dict[str, Any]]:
    cat = load_dataset("demo", root).catalog
    return {str(r["item_id"]): r for r in cat.to_dict("records")}


def _top(path: str) -> str:
    return str(path).split(" > ")[0]


def _known(value: Any) -> bool:
    return value is not None and value == value and str(value).strip() != ""


def _choose_seed(root: Path, run: str, cat: dict[str, dict[str, Any]]) -> str:
    """A seed whose unfiltered top-K list breaks every rule the test switches on (so each rule
    visibly changes it): mixed genders, other top categories, repeated brands."""
    from recsys.search import get_searcher

    searcher = get_searcher(Registry(root), run)
    best, best_score = None, -1
    for seed in map(str, searcher.view.item_ids):
        items = searcher.search(seed, FilterConfig(), K).item_ids
        s = cat[seed]
        if not all(_known(s[c]) for c in ("gender", "category", "brand", "price", "title")):
            continue  # a rule relative to the seed is skipped when the seed lacks the attribute
        rows = [cat[str(i)] for i in items]
        brands = [r["brand"] for r in rows]
        score = sum(
            (
                any(r["gender"] != s["gender"] for r in rows),
                any(_top(r["category"]) != _top(s["category"]) for r in rows),
                len(set(brands)) < len(brands),
                len(items) == K,
            )
        )
        if score > best_score:
            best, best_score = seed, score
    assert best is not None
    return best


def _open(dash_duo, app, url: str) -> None:
    dash_duo.driver.set_window_size(1400, 2400)  # the panel whole in view: no scrolling under re-renders
    dash_duo.start_server(app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}{url}")
    wait_until(lambda: len(_cards(dash_duo)) == 10, timeout=40, what="the first 10 cards")


def _pick(dash_duo, css: str, label: str, search: bool = False) -> None:
    """Open a dropdown with a click (typing ``label`` when ``search``) and click its option."""
    _click(dash_duo, dash_duo.find_element(css))
    if search:
        dash_duo.find_element(".dash-dropdown-search-container input").send_keys(label)
    wait_until(
        lambda: any(o.text.strip() == label for o in dash_duo.find_elements(".dash-dropdown-option")),
        timeout=15,
        what=f"option {label}",
    )
    _click(
        dash_duo, next(o for o in dash_duo.find_elements(".dash-dropdown-option") if o.text.strip() == label)
    )
    ActionChains(dash_duo.driver).send_keys(Keys.ESCAPE).perform()  # close a multi-select's menu


def _type(dash_duo, field: str, value: str) -> None:
    box = dash_duo.find_element(_control(field))
    box.clear()
    box.send_keys(value + Keys.ENTER)


def _switch(dash_duo, field: str) -> None:
    _click(dash_duo, dash_duo.find_element(_control(field)))


def _settles(dash_duo, rule, what: str, timeout: float = 30) -> list[str]:
    """Wait until the list is non-empty and every card obeys ``rule(items)``; the items."""
    last: list[str] = []

    def ok() -> bool:
        nonlocal last
        last = _cards(dash_duo)
        return bool(last) and rule(last)

    try:
        wait_until(ok, timeout=timeout, what=what)
    except AssertionError:
        dash_duo.driver.save_screenshot("/tmp/wt14b_fail.png")
        raise AssertionError(
            f"{what}: list {last}; summary {dash_duo.find_element('#explore-summary').text}"
        ) from None
    return last


def test_every_filter_control_applies_its_rule(dash_duo, dash_app, demo_data_dir):
    root = demo_data_dir
    run = run_ids(root)["prod2vec"]
    cat = _catalog(root)
    seed = _choose_seed(root, run, cat)
    s = cat[seed]
    _open(dash_duo, dash_app, f"/explore?seed={seed}&run={run}")
    _pick(dash_duo, "#explore-k", str(K))
    base = _settles(dash_duo, lambda items: len(items) == K, f"{K} cards")
    base_scores = _scores(dash_duo)

    # same gender: before, the list mixes genders; after, every card has the seed's
    assert any(cat[i]["gender"] != s["gender"] for i in base), "the seed's list has one gender only"
    _switch(dash_duo, "same_gender")
    _settles(dash_duo, lambda items: all(cat[i]["gender"] == s["gender"] for i in items), "same gender")
    _switch(dash_duo, "same_gender")
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # same category at the top level: every card's top category is the seed's
    assert any(_top(cat[i]["category"]) != _top(s["category"]) for i in base)
    _pick(dash_duo, _control("category_level"), "top level")
    _switch(dash_duo, "same_category")
    _settles(
        dash_duo,
        lambda items: all(_top(cat[i]["category"]) == _top(s["category"]) for i in items),
        "same top category",
    )
    # ... and at the leaf level: the whole path is the seed's
    _pick(dash_duo, _control("category_level"), "level 3 (leaf)")
    _settles(dash_duo, lambda items: all(cat[i]["category"] == s["category"] for i in items), "same leaf")
    _switch(dash_duo, "same_category")
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # exclude the seed off: the seed itself joins the list (where its score puts it: an in-out
    # Prod2Vec run scores an item against the others' context vectors); on again: gone
    assert seed not in base
    _switch(dash_duo, "exclude_seed")
    _settles(dash_duo, lambda items: seed in items, "the seed in the list")
    _switch(dash_duo, "exclude_seed")
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # absolute price range: every card's price inside [lo, hi]
    prices = sorted(float(cat[i]["price"]) for i in base)
    lo, hi = prices[len(prices) // 4], prices[3 * len(prices) // 4]
    _type(dash_duo, "price_min", f"{lo}")
    _type(dash_duo, "price_max", f"{hi}")
    _settles(
        dash_duo, lambda items: all(lo <= float(cat[i]["price"]) <= hi for i in items), "prices in range"
    )
    _type(dash_duo, "price_min", "")
    _type(dash_duo, "price_max", "")
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # price relative to the seed: every card within 0.8x..1.5x the seed's price
    sp = float(s["price"])
    assert any(not 0.8 * sp <= float(cat[i]["price"]) <= 1.5 * sp for i in base)
    _type(dash_duo, "price_ratio_min", "0.8")
    _type(dash_duo, "price_ratio_max", "1.5")
    _settles(
        dash_duo,
        lambda items: all(0.8 * sp - 1e-6 <= float(cat[i]["price"]) <= 1.5 * sp + 1e-6 for i in items),
        "prices within the band",
    )
    _type(dash_duo, "price_ratio_min", "")
    _type(dash_duo, "price_ratio_max", "")
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # max per brand 1: no brand twice
    brands = [cat[i]["brand"] for i in base]
    assert len(set(brands)) < len(brands)
    _type(dash_duo, "max_per_brand", "1")
    _settles(
        dash_duo,
        lambda items: len({cat[i]["brand"] for i in items}) == len(items) and len(items) > 1,
        "one card per brand",
    )
    _type(dash_duo, "max_per_brand", "")
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # brand allow-list: only the picked brand; deny-list: never the picked brand
    common = max(set(brands), key=lambda b: (brands.count(b), b))
    _pick(dash_duo, _control("brands_allow"), common, search=True)
    _settles(dash_duo, lambda items: all(cat[i]["brand"] == common for i in items), f"only {common}")
    _click(dash_duo, dash_duo.find_element(_control("brands_allow") + " .dash-dropdown-clear"))
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")
    _pick(dash_duo, _control("brands_deny"), common, search=True)
    _settles(dash_duo, lambda items: all(cat[i]["brand"] != common for i in items), f"no {common}")
    _click(dash_duo, dash_duo.find_element(_control("brands_deny") + " .dash-dropdown-clear"))
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # banned brand pair (seed's brand ⇄ another brand of the list): added, that brand leaves;
    # removed from the pairs' list, it comes back
    other = next(b for b in sorted(set(brands), key=lambda b: -brands.count(b)) if b != s["brand"])
    pair_a = css_id({"type": "filter-pair-a", "panel": PANEL})
    pair_b = css_id({"type": "filter-pair-b", "panel": PANEL})
    _pick(dash_duo, pair_a, str(s["brand"]), search=True)
    _pick(dash_duo, pair_b, other, search=True)
    _click(dash_duo, dash_duo.find_element(css_id({"type": "filter-pair-add", "panel": PANEL})))
    _settles(
        dash_duo, lambda items: all(cat[i]["brand"] != other for i in items), f"no {other} (banned pair)"
    )
    assert f"{s['brand']} ⇄ {other}" in dash_duo.find_element(_control("banned_brand_pairs")).text
    _pick(dash_duo, _control("banned_brand_pairs"), f"{s['brand']} ⇄ {other}")  # unticks it
    _settles(dash_duo, lambda items: items == base, "the unfiltered list back")

    # minimum similarity: a click on the slider's track; every score at least the new value
    slider = dash_duo.find_element(_control("min_similarity"))
    track = slider.find_element("css selector", ".dash-slider-root")
    width = track.size["width"]
    ActionChains(dash_duo.driver).move_to_element_with_offset(track, int(width * 0.15), 0).click().perform()
    thumb = slider.find_element("css selector", "[role=slider]")
    wait_until(lambda: float(thumb.get_attribute("aria-valuenow") or 0) > 0, timeout=10, what="a threshold")
    threshold = float(thumb.get_attribute("aria-valuenow"))
    assert min(base_scores) < threshold, "the threshold removes nothing: the test would prove nothing"
    wait_until(
        lambda: _cards(dash_duo) != base and all(v >= threshold - 5e-4 for v in _scores(dash_duo)),
        timeout=30,
        what=f"every score >= {threshold}",
    )
    removed = dash_duo.find_element("#explore-removed [data-rule='min_similarity']").text
    assert int(removed.lstrip("−").replace(",", "")) > 0

    # exclude same title, on a seed with title twins in the catalogue: the rule removes exactly
    # them (its count in the bars), and none is listed
    titles: dict[str, list[str]] = {}
    for i, row in cat.items():
        titles.setdefault(str(row["title"]), []).append(i)
    twin_seed, twins = next((v[0], v[1:]) for v in titles.values() if len(v) > 1)
    dash_duo.driver.get(f"{dash_duo.server_url}/explore?seed={twin_seed}&run={run}")
    wait_until(lambda: len(_cards(dash_duo)) == 10, timeout=40, what="the twin seed's cards")
    assert not dash_duo.find_elements("#explore-removed [data-rule='exclude_same_title']")
    _switch(dash_duo, "exclude_same_title")
    wait_until(
        lambda: (
            dash_duo.find_element("#explore-removed [data-rule='exclude_same_title']").text
            == f"−{len(twins)}"
        ),
        timeout=30,
        what=f"the same-title rule removing the {len(twins)} twin(s)",
    )
    assert not set(twins) & set(_cards(dash_duo))
    assert dash_duo.get_logs() == []


def _session_cards(dash_duo) -> list[str]:
    return [
        e.get_attribute("data-item") for e in dash_duo.find_elements("#explore-session-results .item-card")
    ]


def test_k_run_switch_and_session_panel(dash_duo, dash_app_copy, demo_data_copy):
    from recsys.pipeline import train_run
    from recsys.search import get_searcher, recommend_for_recent
    from tests.integration.conftest import PROD2VEC_PARAMS

    root = demo_data_copy
    registry = Registry(root)
    first = run_ids(root)["prod2vec"]
    second = train_run(
        "prod2vec", {**PROD2VEC_PARAMS, "vector_size": 8, "seed": 7}, "demo", root, label="second prod2vec"
    )["run_id"]
    seed = str(get_searcher(registry, first).view.item_ids[0])
    lists = {r: get_searcher(registry, r).search(seed, FilterConfig(), 10).item_ids for r in (first, second)}
    assert list(lists[first]) != list(lists[second]), "the two runs agree: the switch would prove nothing"
    # opened with no run named: on the served prod2vec (the only active run with vectors), saying why
    _open(dash_duo, dash_app_copy, f"/explore?seed={seed}")
    dash_duo.wait_for_contains_text(
        "#explore-run-why", "Opened on the best active variant on 'demo'", timeout=10
    )

    # k: 10 cards, then 20 (the first 10 unchanged: k only cuts the ranking)
    ten = _settles(dash_duo, lambda items: items == list(lists[first]), "the first run's list")
    _pick(dash_duo, "#explore-k", "20")
    _settles(dash_duo, lambda items: len(items) == 20 and items[:10] == ten, "20 cards")
    _pick(dash_duo, "#explore-k", "10")
    _settles(dash_duo, lambda items: items == ten, "10 cards again")

    # the run switch: the list is the second run's, and the address bar follows
    _pick(dash_duo, "#explore-run", next(o["label"] for o in _run_options(root) if o["value"] == second))
    _settles(dash_duo, lambda items: items == list(lists[second]), "the second run's list")
    wait_until(lambda: f"run={second}" in dash_duo.driver.current_url, timeout=10, what="run= in the URL")
    # the Variant line describes the run shown, no longer the one the page opened on (issue 13)
    dash_duo.wait_for_contains_text(
        "#explore-run-why",
        "Showing second prod2vec on 'demo' (not active), picked here",
        timeout=10,
    )
    assert "Opened on" not in dash_duo.find_element("#explore-run-why").text

    # the session panel (k 50, so that the viewed item ranks among its own recommendations):
    # "+ session" on a card adds it; its recommendations are the library's
    _pick(dash_duo, "#explore-k", str(K))
    _settles(dash_duo, lambda items: len(items) == K, f"{K} cards")
    session_run = dash_duo.find_element("#explore-session-run").text
    run_for_session = next(o["value"] for o in _run_options(root) if o["label"] == session_run.strip())

    def recs(items: list[str], exclude_seen: bool) -> list[str]:
        cfg = FilterConfig()
        return list(recommend_for_recent(registry, run_for_session, items, cfg, K, exclude_seen).item_ids)

    # two cards A, B such that, once seen items are not hidden, one of them is among the
    # session's recommendations (an in-out Prod2Vec run does not rank an item near its own
    # context vectors, but a session's mean may land near one of its items)
    cards = _cards(dash_duo)[:15]
    pair = next(([a, b] for a in cards for b in cards if a != b and {a, b} & set(recs([a, b], False))), None)
    assert pair is not None, "no session of two cards shows a seen item: the toggle would prove nothing"
    hidden, shown = recs(pair, True), recs(pair, False)
    assert not set(pair) & set(hidden)
    titles = _catalog(root)
    for n, item in enumerate(pair, start=1):
        _click(dash_duo, dash_duo.find_element(f"#explore-results .item-card[data-item='{item}'] .card-add"))
        dash_duo.wait_for_contains_text("#explore-session", str(titles[item]["title"]), timeout=20)
        assert len(dash_duo.find_elements("#explore-session .session-chip")) == n
    wait_until(lambda: _session_cards(dash_duo) == hidden, timeout=20, what="recommendations, seen hidden")

    # "hide items already viewed" off: a seen item comes back, where the library ranks it
    _click(dash_duo, dash_duo.find_element("#explore-session-exclude-seen input"))
    wait_until(lambda: _session_cards(dash_duo) == shown, timeout=20, what="recommendations with seen items")

    # Clear: no chips, no recommendations
    _click(dash_duo, dash_duo.find_element("#explore-session-clear"))
    dash_duo.wait_for_contains_text("#explore-session", "No recent views yet", timeout=20)
    wait_until(lambda: _session_cards(dash_duo) == [], timeout=20, what="no recommendations")
    assert dash_duo.get_logs() == []


def test_a_switch_to_another_datasets_run_starts_on_its_seed(dash_duo, dash_app_copy, demo_data_copy):
    """A newcomer on the demo's Explore picked the run of the dataset they had imported (Taobao):
    the seed box went blank and the lists said "Pick a seed item". The page moves to a seed of
    that run, as it opens on one, with its list; a seed the run knows is kept (the switch above)."""
    from tests._serving_data import make_second_dataset

    root = demo_data_copy
    shop_run, shop_ids = make_second_dataset(root)
    first = run_ids(root)["prod2vec"]
    _open(dash_duo, dash_app_copy, f"/explore?run={first}")
    label = next(o["label"] for o in _run_options(root) if o["value"] == shop_run)
    _pick(dash_duo, "#explore-run", label)
    _settles(dash_duo, lambda items: set(items) <= set(shop_ids), "the shop run's list")
    seed = dash_duo.find_element("#explore-seed-card").text
    assert "Thing" in seed, seed
    wait_until(lambda: "seed=sku-" in dash_duo.driver.current_url, timeout=10, what="seed= in the URL")
    assert "Thing" in dash_duo.find_element("#explore-seed").text  # the box shows it
    # the filter panel is the shop's: it has no genders, so "Same gender" says it is unavailable
    # (the demo's panel, kept on a switch, offered it and the demo's brands: s45-u's walk)
    wait_until(
        lambda: "the catalogue has no genders" in dash_duo.find_element("body").text,
        timeout=20,
        what="the shop's own filter panel",
    )
    assert dash_duo.find_element("#explore-run").text.startswith(label[:20])
    assert dash_duo.get_logs() == []


def _run_options(root: Path) -> list[dict[str, str]]:
    from components.pickers import embedding_runs, run_options

    return run_options(embedding_runs(Registry(root)))


def test_merchandising_rule_chips_apply_and_remove(dash_duo, dash_app_copy, demo_data_copy):
    """A preset's "never together" pair hides its item and a pin puts its item at its position;
    removing each chip (unticking it in its list) undoes exactly that."""
    from recsys.filters import PresetStore
    from recsys.search import get_searcher

    root = demo_data_copy
    run = run_ids(root)["prod2vec"]
    searcher = get_searcher(Registry(root), run)
    seed = str(searcher.view.item_ids[0])
    base = list(searcher.search(seed, FilterConfig(), 10).item_ids)
    hidden = base[0]
    pinned = next(str(i) for i in searcher.view.item_ids if str(i) not in base and str(i) != seed)
    PresetStore(root).save(
        "merch",
        FilterConfig.from_dict(
            {
                "do_not_associate": [{"seed": seed, "item_id": hidden}],
                "pins": [{"seed": seed, "item_id": pinned, "position": 2}],
            }
        ),
    )
    dash_duo.driver.set_window_size(1400, 2400)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/explore?seed={seed}&run={run}&preset=merch")
    dash_duo.wait_for_contains_text(_control("pins"), f"({pinned}) @2 for ", timeout=40)
    _settles(dash_duo, lambda items: items[1] == pinned and hidden not in items, "the rules applied", 10)

    # the summary's eligible count adds up with what the panel names: the seed and the adult
    # items (never next to a non-adult seed) are said, not hidden ("4,960 eligible of 5,000"
    # beside "No rule removed anything", s44's walk); the pair ban removes one more
    view = searcher.view
    adult = int(view.adult.sum()) if not view.adult[view.position(seed)] else 0
    assert adult > 0
    dash_duo.wait_for_contains_text(
        f"#{ids.EXPLORE_SUMMARY}", f"{view.n - 1 - adult - 1:,} eligible of {view.n:,}", timeout=10
    )
    removed = dash_duo.find_element(f"#{ids.EXPLORE_REMOVED}").text
    assert f"Always left out: the seed itself, {adult:,} adult items" in removed, removed
    assert "Never together\n−1" in removed or "Never together −1" in removed, removed

    # the rules name their items as Vetting names them (title and id), not by bare ids
    names = {i: item_name(i, _catalog(root)[i]["title"]) for i in (seed, hidden, pinned)}
    assert all(names[i] != i for i in names)  # the demo's items have titles
    never = _control("do_not_associate")
    text = dash_duo.find_element(never).text
    # a two-way ban has no direction: the chip names the pair in either order
    pair = next(
        p for p in (f"{names[seed]} ⇄ {names[hidden]}", f"{names[hidden]} ⇄ {names[seed]}") if p in text
    )
    # the whole rule can be read on the control (wrapped, not one line cut after the first item)
    shown = dash_duo.find_element(never).find_element("css selector", ".dash-dropdown-value")
    assert dash_duo.driver.execute_script(
        "return arguments[0].scrollWidth <= arguments[0].clientWidth", shown
    )
    _pick(dash_duo, never, pair)  # unticks it
    _settles(dash_duo, lambda items: hidden in items and items[1] == pinned, "the pair's item back")
    _pick(dash_duo, _control("pins"), f"{names[pinned]} @2 for {names[seed]}")
    _settles(dash_duo, lambda items: items == base, "the list without rules")
    assert dash_duo.get_logs() == []
