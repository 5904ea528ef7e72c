"""Compare's session input in a real browser (headless Chromium; ``pytest --headless``): a user
types two items into the session box and every run answers that session side by side."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from recsys.data.schema import load_dataset
from recsys.registry import Registry
from tests.integration._browser import click, run_ids, wait_until


def _session(root) -> list[str]:
    """Two distinct items viewed in a row in one training session of the demo."""
    inter = load_dataset("demo", root).interactions.sort_values(["sequence_id", "position"])
    for _, g in inter.groupby("sequence_id"):
        items = list(dict.fromkeys(map(str, g["item_id"])))
        if len(items) >= 3:
            return items[:2]
    raise AssertionError("no session of three items in the demo")


def _columns(dash_duo) -> list[list[str]]:
    from components import ids

    return [
        [li.get_attribute("data-item") for li in col.find_elements(By.CSS_SELECTOR, ".cmp-item")]
        for col in dash_duo.find_elements(f"#{ids.COMPARE_LISTS} .compare-col")
    ]


def _open(dash_duo, selector: str) -> None:
    """Open a dropdown like a user: click its trigger until its search box shows (a click that
    lands while the previous pick's popover is still closing toggles nothing)."""
    import time

    for _ in range(10):
        if dash_duo.find_elements(".dash-dropdown-search-container input"):
            return
        click(dash_duo, dash_duo.find_element(selector))
        time.sleep(0.5)
    raise AssertionError(f"{selector} did not open")


def test_compare_a_session_typed_by_the_user(dash_duo, dash_app_copy, demo_data_copy):
    from components import ids
    from recsys.pipeline import train_run
    from recsys.search import recommend_for_recent

    sknn = train_run("sknn", {}, "demo", demo_data_copy, max_cases=50, validate=False)["run_id"]
    p2v = run_ids(demo_data_copy)["prod2vec"]
    session = _session(demo_data_copy)
    dash_duo.driver.set_window_size(1400, 1100)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/compare?runs={sknn},{p2v}")
    wait_until(lambda: len(_columns(dash_duo)) == 2 and all(_columns(dash_duo)), timeout=40, what="two lists")
    seed_lists = _columns(dash_duo)

    for item in session:  # type each item's id into the session box and pick it
        _open(dash_duo, f"#{ids.COMPARE_SESSION}")
        box = dash_duo.find_element(".dash-dropdown-search-container input")
        box.send_keys(Keys.CONTROL, "a")  # the previous search may still be in the box
        box.send_keys(Keys.BACKSPACE)
        box.send_keys(item)
        wait_until(
            lambda item=item: any(
                f"({item})" in o.text for o in dash_duo.find_elements(".dash-dropdown-option")
            ),
            what=f"{item} among the options",
        )
        next(o for o in dash_duo.find_elements(".dash-dropdown-option") if f"({item})" in o.text).click()
    wait_until(
        lambda: len(dash_duo.find_elements(".compare-session-line [data-item]")) == 2,
        timeout=30,
        what="the session line with both items",
    )
    shown = [
        a.get_attribute("data-item") for a in dash_duo.find_elements(".compare-session-line [data-item]")
    ]
    assert shown == session
    reg = Registry(demo_data_copy)
    want = [recommend_for_recent(reg, run, session, None, 10).item_ids for run in (sknn, p2v)]
    wait_until(lambda: _columns(dash_duo) == want, timeout=30, what="both runs answering the session")
    assert want != seed_lists and not set(session) & set(want[0] + want[1])
    heads = [h.text for h in dash_duo.find_elements(f"#{ids.COMPARE_LISTS} .cmp-method")]
    assert any("session kNN" in h for h in heads) and any("mean of the recent" in h for h in heads)
    assert dash_duo.get_logs() == []


def test_picking_another_datasets_runs_moves_the_seed_and_the_pair(dash_duo, dash_app_copy, demo_data_copy):
    """A newcomer on Compare swapped the demo's runs for those of the dataset they had imported
    (Taobao): every list said the demo's seed has no vector, and "where two variants disagree"
    still named the demo's runs. The seed moves to one the chosen runs know; the pair to them."""
    import time

    from components import ids
    from tests._serving_data import make_second_dataset

    shop = [make_second_dataset(demo_data_copy)[0], make_second_dataset(demo_data_copy, n_vectors=10)[0]]
    things = {f"sku-{i}" for i in range(14)}
    dash_duo.driver.set_window_size(1400, 1100)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/compare")
    wait_until(lambda: len(_columns(dash_duo)) == 2 and all(_columns(dash_duo)), timeout=40, what="two lists")
    assert not things & set(sum(_columns(dash_duo), []))  # the demo's runs

    def toggle(run_text: str) -> None:
        _open(dash_duo, f"#{ids.COMPARE_RUNS}")
        option = next(o for o in dash_duo.find_elements(".dash-dropdown-option") if run_text in o.text)
        click(dash_duo, option)
        time.sleep(0.5)

    demo = [
        o.text
        for o in _options(dash_duo, f"#{ids.COMPARE_RUNS}")
        if o.get_attribute("aria-selected") == "true"
    ]
    for run in shop:  # add the shop's two runs, then take the demo's off
        toggle(run)
    for text in demo:
        toggle(text)
    dash_duo.find_element("body").send_keys(Keys.ESCAPE)
    wait_until(
        lambda: (
            len(_columns(dash_duo)) == 2
            and all(_columns(dash_duo))
            and set(sum(_columns(dash_duo), [])) <= things
        ),
        timeout=30,
        what="both shop runs' lists",
    )
    assert "Thing" in dash_duo.find_element(f"#{ids.COMPARE_SEED}").text
    pair = [dash_duo.find_element(f"#{i}").text for i in (ids.COMPARE_DIS_A, ids.COMPARE_DIS_B)]
    assert all(any(run in text for run in shop) for text in pair) and pair[0] != pair[1], pair
    assert dash_duo.get_logs() == []


def _options(dash_duo, selector: str) -> list:
    _open(dash_duo, selector)
    return dash_duo.find_elements(".dash-dropdown-option")
