"""The Vetting page as a merchandiser meets it at 1280x800 (s32-u's walk): the keys still judge
right after a dropdown was picked by mouse, a note typed on a card is stored with its
judgment, a judged pair's reason select shows its stored reason after a reload, the progress
table fits the queue column, Export says what it exported and the panels' numbers carry their
meaning."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from recsys.vetting.store import JudgmentStore
from tests.integration._browser import click, run_ids, wait_until


def _keys(dash_duo, *keys: str) -> None:
    ActionChains(dash_duo.driver).send_keys(*keys).perform()


def _focused(dash_duo) -> int | None:
    found = dash_duo.find_elements(".vet-pair.vet-focused")
    return int(found[0].get_attribute("data-index")) if found else None


def _note_then_judge(dash_duo, index: int, note: str, key: str) -> None:
    """Click card ``index``'s note, type ``note``, press Enter (back to judging), then ``key``."""
    field = dash_duo.find_element(f'.vet-pair[data-index="{index}"] .vet-note input')
    click(dash_duo, field)
    field.send_keys(note)
    field.send_keys(Keys.ENTER)
    _keys(dash_duo, key)


def _pick(dash_duo, dropdown: str, label: str) -> None:
    """Open a Dash dropdown by mouse and click one of its options (the dropdown keeps the focus)."""
    click(dash_duo, dash_duo.wait_for_element(f"#{dropdown}", timeout=30))
    wait_until(
        lambda: any(
            o.text.strip() == label for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")
        ),
        what=f"the option {label!r} of {dropdown}",
    )
    option = next(
        o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text.strip() == label
    )
    option.click()
    wait_until(
        lambda: label in dash_duo.find_element(f"#{dropdown}").text, what=f"{dropdown} showing {label}"
    )


def test_a_merchandisers_first_pairs_at_1280(dash_duo, dash_app_copy, demo_data_copy):
    run = run_ids(demo_data_copy)["prod2vec"]
    dash_duo.start_server(dash_app_copy, port=8872)  # s32-u's port: no clash with a parallel run on 8050
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/vetting?run={run}")

    # the default 20 seeds: the progress table scrolls (its scroll bar narrows the columns)
    click(dash_duo, dash_duo.find_element("#vetting-build"))
    wait_until(lambda: len(dash_duo.find_elements(".vet-pair")) >= 5, what="the first seed's pairs")
    wait_until(lambda: _focused(dash_duo) == 0, what="the first pair focused")
    store = JudgmentStore(demo_data_copy)
    pairs = store.queue(store.queues(run=run, preset="")[0]["id"])["pairs"]

    # a dropdown picked by mouse keeps the focus; the keys still judge (they used to open the
    # dropdown's search on "1" and vanish into it)
    _pick(dash_duo, "vetting-k", "5")
    _keys(dash_duo, "1", "7")
    wait_until(lambda: len(store.frame()) == 2, what="two judgments stored")
    wait_until(lambda: _focused(dash_duo) == 2, what="the focus on pair 3")
    assert not dash_duo.find_elements(".dash-dropdown-search")  # no dropdown opened by the keys

    # a note typed on the focused card, Enter, then "2": stored with its note
    _note_then_judge(dash_duo, 2, "a phone case, not a phone", "2")
    wait_until(lambda: len(store.frame()) == 3, what="the third judgment stored")
    df = store.frame(run=run).set_index("item_id")
    assert (df.loc[pairs[1]["item_id"], "verdict"], df.loc[pairs[1]["item_id"], "reason"]) == (
        -1,
        "price_mismatch",
    )
    row = df.loc[pairs[2]["item_id"]]
    assert (row["verdict"], row["reason"], row["note"]) == (-1, "other", "a phone case, not a phone")

    # the progress table fits the queue column at 1280 px (its last column was cut off)
    wait_until(
        lambda: dash_duo.find_element("#vetting-progress-total").get_attribute("data-done") == "3",
        what="progress showing 3 judged pairs",
    )
    scroller = dash_duo.find_element(".vet-progress-scroll")
    width, room = dash_duo.driver.execute_script(
        "return [arguments[0].scrollWidth, arguments[0].clientWidth]", scroller
    )
    assert width <= room, f"the progress table is {width}px wide in a {room}px column"
    # ... with its counts and their headers on one line each ("Seeds" read "Seed" over "s")
    lines = dash_duo.driver.execute_script(
        "return [...arguments[0].querySelectorAll('th:not(:first-child), td:not(:first-child)')].map(c => {"
        " const r = document.createRange(); r.selectNodeContents(c); return [c.textContent, r.getClientRects().length]; })",
        scroller,
    )
    assert lines and all(n == 1 for _, n in lines), [t for t, n in lines if n != 1]

    # Export says what it exported
    click(dash_duo, dash_duo.find_element("#vetting-export"))
    dash_duo.wait_for_contains_text("#vetting-io-message", "Exported 3 judgments of dataset demo", timeout=15)

    # the panels' numbers carry their meaning
    for k_box in ("#vetting-precision-k", "#vetting-checks-k"):  # a bare "10" said nothing
        assert dash_duo.find_element(k_box).text.strip() == "top 10"
    dash_duo.wait_for_contains_text("#vetting-precision-meaning", "share of thumbs-up", timeout=15)
    assert "thumbs-down pairs no longer shown" in dash_duo.find_element("#vetting-panels").text

    # after a reload, the judged pair's reason select shows the stored reason, so "2" keeps it
    dash_duo.wait_for_page(f"{dash_duo.server_url}/vetting?run={run}")
    wait_until(lambda: len(dash_duo.find_elements(".vet-pair")) >= 5, what="the queue reopened")
    wait_until(
        lambda: (
            dash_duo.find_element('.vet-pair[data-index="1"] select.vet-reason').get_attribute("value")
            == "price_mismatch"
        ),
        what="the stored reason in the select",
    )
    # ... and the judged pair's note shows in its note field
    assert dash_duo.find_element('.vet-pair[data-index="2"] .vet-note input').get_attribute("value") == (
        "a phone case, not a phone"
    )

    # a note typed on a card the cursor is not on: Enter brings the cursor there, so "1" judges
    # that card with its note (it judged the cursor's card, and the note was lost)
    wait_until(lambda: _focused(dash_duo) == 3, what="the cursor on the first pair not judged")
    _note_then_judge(dash_duo, 4, "same look, fine", "1")
    wait_until(lambda: len(store.frame()) == 4, what="the fourth judgment stored")
    df = store.frame(run=run).set_index("item_id")
    assert (df.loc[pairs[4]["item_id"], "verdict"], df.loc[pairs[4]["item_id"], "note"]) == (
        1,
        "same look, fine",
    )
    assert pairs[3]["item_id"] not in df.index
    assert dash_duo.get_logs() == []


def test_compare_disagreements_sorted_by_thumbs_down_at_1280(dash_duo, dash_app_copy, demo_data_copy):
    """Compare at 1280x800: the disagreement card's controls stay inside it (the sort dropdown
    and "Find" ran off the page), and sorting by thumbs-down lists the judged seed."""
    from recsys.vetting.store import JudgmentStore

    ids = run_ids(demo_data_copy)
    a, b = ids["prod2vec"], ids["popularity"]
    # a thumbs-down on a's first answer for a seed: "more 👎 in A" finds that seed
    import pandas as pd

    from recsys.registry import Registry
    from recsys.search import similar_items

    events = pd.read_parquet(demo_data_copy / "datasets" / "demo" / "interactions.parquet")
    seed = str(events["item_id"].value_counts().index[0])  # the most popular item: both runs know it
    shown = similar_items(Registry(demo_data_copy), a, seed, None, 10).item_ids
    JudgmentStore(demo_data_copy).judge(
        dataset="demo",
        run=a,
        preset=None,
        seed=seed,
        item_id=shown[0],
        position=1,
        verdict=-1,
        reason="wrong_category",
        note="",
        user="local",
    )
    dash_duo.start_server(dash_app_copy, port=8873)
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/compare?runs={a},{b}")
    button = dash_duo.find_element("#compare-dis-button")
    card = dash_duo.driver.execute_script("return arguments[0].closest('.card')", button)
    right, card_right, page, view = dash_duo.driver.execute_script(
        "return [arguments[0].getBoundingClientRect().right, arguments[1].getBoundingClientRect().right,"
        " document.documentElement.scrollWidth, document.documentElement.clientWidth]",
        button,
        card,
    )
    assert right <= card_right, f"'Find' ends at {right}px, its card at {card_right}px"
    assert page <= view, f"the page is {page}px wide in a {view}px window"

    _pick(dash_duo, "compare-dis-sort", "more 👎 in A")
    click(dash_duo, dash_duo.find_element("#compare-dis-button"))
    catalog = pd.read_parquet(demo_data_copy / "datasets" / "demo" / "catalog.parquet").set_index("item_id")
    dash_duo.wait_for_contains_text(
        "#compare-disagree", str(catalog.loc[seed, "title"]), timeout=60
    )  # by title
    assert dash_duo.get_logs() == []


def test_a_viewer_can_browse_the_queue_but_sees_no_judging_controls(dash_duo, demo_data_copy, monkeypatch):
    """Signed in with the viewer token: a line says what a viewer can do, the cards carry no
    reason select or note field (they did, and did nothing), and a key judges nothing."""
    from recsys.filters import FilterConfig
    from recsys.registry import Registry
    from recsys.search import get_searcher
    from recsys.vetting.queue import queue_pairs
    from tests.integration.conftest import _fresh_app

    monkeypatch.setenv("RECSYS_API_TOKEN", "editor-secret-s32u-0123456789")
    monkeypatch.setenv("RECSYS_VIEWER_TOKEN", "viewer-secret-s32u-0123456789")
    app = _fresh_app(demo_data_copy, monkeypatch)
    run = run_ids(demo_data_copy)["prod2vec"]
    searcher = get_searcher(Registry(demo_data_copy), run)
    store = JudgmentStore(demo_data_copy)
    store.save_queue(  # a queue an editor built
        dataset="demo",
        run=run,
        preset=None,
        spec={"mode": "pasted", "k": 5, "seeds": 2},
        pairs=queue_pairs(searcher, [str(s) for s in searcher.view.item_ids[:2]], FilterConfig(), 5),
        user="editor",
    )
    dash_duo.start_server(app, navigate=False, port=8874)  # the login page first
    dash_duo.driver.set_window_size(1280, 800)
    base = dash_duo.server.url.rstrip("/")
    dash_duo.driver.get(f"{base}/login?next=/vetting?run={run}")
    dash_duo.wait_for_element("#password", timeout=30).send_keys("viewer-secret-s32u-0123456789")
    dash_duo.find_element("#login-submit").click()
    wait_until(lambda: len(dash_duo.find_elements(".vet-pair")) >= 5, what="the queue's pairs")
    assert dash_duo.find_element("#vetting-viewer-note").is_displayed()
    assert not [e for e in dash_duo.find_elements("select.vet-reason, .vet-note input") if e.is_displayed()]
    wait_until(lambda: _focused(dash_duo) == 0, what="the first pair focused")
    _keys(dash_duo, "1", "j")
    wait_until(lambda: _focused(dash_duo) == 1, what="j moving on")
    # the "1" judged nothing, and says so where the viewer looks (it was silently ignored; s41-w)
    wait_until(
        lambda: dash_duo.find_element("#vetting-viewer-note").text.startswith(
            "Not judged: you are signed in"
        ),
        what="the viewer note saying the 1 was refused",
    )
    assert len(store.frame()) == 0
    assert dash_duo.get_logs() == []
