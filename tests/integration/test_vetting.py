"""The Vetting page in Chromium: build a queue, judge five pairs with the keyboard (real key
events), turn a thumbs-down into a do-not-associate rule and confirm it."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from recsys.filters import FilterConfig, PresetStore
from recsys.merch import PairBan
from recsys.vetting.store import JudgmentStore
from tests.integration._browser import click, run_ids, wait_until


def _keys(dash_duo, *keys: str) -> None:
    """Real key events, back to back as a fast typist sends them (one WebDriver action chain)."""
    ActionChains(dash_duo.driver).send_keys(*keys).perform()


def _focused(dash_duo) -> int | None:
    found = dash_duo.find_elements(".vet-pair.vet-focused")
    return int(found[0].get_attribute("data-index")) if found else None


def test_judge_five_pairs_by_keyboard_and_turn_one_into_a_rule(dash_duo, dash_app_copy, demo_data_copy):
    run = run_ids(demo_data_copy)["prod2vec"]
    presets = PresetStore(demo_data_copy)
    presets.save("mid", FilterConfig(same_gender=True))
    dash_duo.start_server(dash_app_copy)
    dash_duo.driver.set_window_size(1400, 2400)  # the queue form and the pairs in view: no scrolling
    dash_duo.wait_for_page(f"{dash_duo.server_url}/vetting?run={run}&preset=mid")

    # each queue input is shown only in the modes that read it ("Per leaf" and the pasted ids
    # stood beside "By traffic", doing nothing: s44's walk)
    def shown() -> set[str]:
        boxes = ("#vetting-n", "#vetting-per-category", "#vetting-pasted")
        return {b for b in boxes if dash_duo.find_element(b).is_displayed()}

    def mode(label: str) -> None:
        click(dash_duo, dash_duo.driver.find_element(By.XPATH, f"//label[contains(., '{label}')]"))

    assert shown() == {"#vetting-n"}  # by traffic, the default
    for label, inputs in (
        ("Pasted ids", {"#vetting-pasted"}),
        ("N per leaf category", {"#vetting-n", "#vetting-per-category"}),
        ("At random", {"#vetting-n"}),
        ("By traffic", {"#vetting-n"}),
    ):
        mode(label)
        wait_until(lambda inputs=inputs: shown() == inputs, timeout=5, what=f"{label}: {inputs}")

    dash_duo.find_element("#vetting-n").clear()
    dash_duo.find_element("#vetting-n").send_keys("2")
    dash_duo.find_element("#vetting-build").click()
    wait_until(lambda: len(dash_duo.find_elements(".vet-pair")) >= 6, what="the first seed's pairs")
    wait_until(lambda: _focused(dash_duo) == 0, what="the first pair focused")

    store = JudgmentStore(demo_data_copy)
    queue = store.queue(store.queues(run=run, preset="mid")[0]["id"])
    assert queue["spec"]["mode"] == "traffic" and queue["spec"]["seeds"] == 2
    pairs = queue["pairs"]

    # 1 up, 2 down (other), j skips one, 6 down (brand clash), 1 up, 5 down (adult or unsafe)
    dash_duo.find_element("#vetting-keys-help").click()  # focus on the page, not a field
    _keys(dash_duo, "1", "2", "j", "6", "1", "5")
    wait_until(lambda: _focused(dash_duo) == 6, what="the focus moving on to pair 7")
    wait_until(lambda: len(store.frame()) == 5, what="five judgments in the store")

    df = store.frame(run=run, preset="mid").set_index("item_id")
    expected = {
        0: (1, None),
        1: (-1, "other"),
        3: (-1, "brand_clash"),
        4: (1, None),
        5: (-1, "adult_or_unsafe"),
    }
    assert set(df.index) == {pairs[i]["item_id"] for i in expected}
    for i, (verdict, reason) in expected.items():
        row = df.loc[pairs[i]["item_id"]]
        assert (row["seed"], row["position"], row["verdict"], row["reason"]) == (
            pairs[i]["seed"],
            pairs[i]["position"],
            verdict,
            reason,
        )
        assert row["user"] == "local" and row["dataset"] == "demo"
    assert not any(
        dash_duo.find_elements('.vet-pair[data-index="2"].vet-up, .vet-pair[data-index="2"].vet-down')
    )
    wait_until(
        lambda: dash_duo.find_element("#vetting-progress-total").get_attribute("data-done") == "5",
        what="progress showing 5 judged pairs",
    )

    # k goes back; the thumbs-down of pair 2 ("other") becomes a do-not-associate rule
    _keys(dash_duo, "k")
    wait_until(lambda: _focused(dash_duo) == 5, what="k moving back")
    # the Rule… button of pair 2 by mouse; "r" opens the focused pair's dialog
    _keys(dash_duo, "r")
    dash_duo.wait_for_contains_text("#vetting-rule-choice", "Never show", timeout=10)
    assert pairs[5]["item_id"] in dash_duo.find_element("#vetting-rule-choice").text
    dash_duo.find_element("#vetting-rule-cancel").click()
    wait_until(lambda: not dash_duo.find_elements(".modal.show"), what="the dialog closed")
    rule = dash_duo.find_element('.vet-pair[data-index="1"] button[id*="vetting-propose"]')
    click(dash_duo, rule)
    dash_duo.wait_for_element("#vetting-rule-modal", timeout=10)
    wait_until(
        lambda: pairs[1]["item_id"] in dash_duo.find_element("#vetting-rule-choice").text,
        timeout=10,
        what="the dialog proposing a rule for pair 2",
    )
    assert dash_duo.find_element("#vetting-rule-preset").get_attribute("value") == "mid"
    dash_duo.find_element("#vetting-rule-confirm").click()
    dash_duo.wait_for_contains_text("#vetting-rule-message", "is now version 2 (was 1)", timeout=15)

    cfg = presets.load("mid")
    assert cfg.same_gender  # the preset kept its filters
    assert [b.key() for b in cfg.do_not_associate] == [
        PairBan(seed=pairs[1]["seed"], item_id=pairs[1]["item_id"]).key()
    ]
    assert [h["version"] for h in presets.history("mid")] == [1, 2]
    assert len(store.frame()) == 5

    # two quick 1s on the first seed's last pair: the second judges the next seed's first pair,
    # whose card is not drawn yet when the key lands (the browser holds one seed's pairs): it
    # waits for the card rather than being lost
    last = sum(p["seed"] == pairs[0]["seed"] for p in pairs) - 1
    wait_until(lambda: not dash_duo.find_elements(".modal.show"), what="the dialog closed")
    dash_duo.find_element("#vetting-keys-help").click()
    _keys(dash_duo, *["j"] * (last - 5), "1", "1")
    wait_until(lambda: len(store.frame()) == 7, what="both judgments stored")
    wait_until(lambda: _focused(dash_duo) == last + 2, what="the focus on the next seed's second pair")
    df = store.frame(run=run, preset="mid")
    judged = {(r.seed, r.item_id): r.verdict for r in df.itertuples()}
    assert pairs[last + 1]["seed"] != pairs[0]["seed"]
    assert [judged.get((pairs[i]["seed"], pairs[i]["item_id"])) for i in (last, last + 1)] == [1, 1]
    assert dash_duo.get_logs() == []
