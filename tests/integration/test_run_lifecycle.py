"""Run lifecycle in Chromium: every Overview card button opens a page that works for its run;
deleting the active run from the Runs page activates the newest other run of its dataset and
family and says so; the last one gone, the page says that none is left (``pytest --headless``).
"""

from __future__ import annotations

from recsys.registry import Registry
from tests.integration._browser import add_spare_run, wait_until
from tests.integration._browser import click as _click
from tests.integration.test_shell import _grid_row_ids


def _card_hrefs(dash_duo) -> list[str]:
    return [a.get_attribute("href") for a in dash_duo.find_elements(".variant-card a.btn")]


def _page_works(dash_duo, href: str) -> None:
    """The page opened by a card button shows its run's content and no error."""
    dash_duo.driver.get(href)
    if "/explore" in href:
        wait_until(
            lambda: dash_duo.find_elements("#explore-results .item-card"), timeout=40, what=f"cards at {href}"
        )
    elif "/map" in href:
        wait_until(lambda: dash_duo.find_elements("#map-graph canvas"), timeout=40, what=f"the map at {href}")
    elif "/compare" in href:
        wait_until(
            lambda: len(dash_duo.find_elements("#compare-lists .compare-col")) == 2,
            timeout=40,
            what=f"lists at {href}",
        )
    else:
        dash_duo.wait_for_element("#runs-grid .ag-row", timeout=40)
    body = dash_duo.find_element("body").text
    assert "Unknown run" not in body and "has no map here" not in body, href
    assert not dash_duo.find_elements(".alert-danger"), href


def _select_row(dash_duo, run_id: str) -> None:
    row = dash_duo.find_element(f"#runs-grid .ag-center-cols-container .ag-row[row-id='{run_id}']")
    _click(dash_duo, row.find_element("css selector", ".ag-cell"))


def _delete_selected(dash_duo) -> str:
    _click(dash_duo, dash_duo.find_element("#runs-delete"))
    dash_duo.wait_for_element("#runs-delete-text", timeout=15)
    wait_until(
        lambda: dash_duo.find_element("#runs-delete-text").text.strip(), timeout=15, what="the dialog text"
    )
    text = dash_duo.find_element("#runs-delete-text").text
    _click(dash_duo, dash_duo.find_element("#runs-delete-confirm"))
    return text


def test_cards_open_working_pages_and_deleting_the_active_run_hands_over(
    dash_duo, dash_app_copy, demo_data_copy
):
    registry = Registry(demo_data_copy)
    runs = {r["family"]: r["run_id"] for r in registry.list_runs()}
    spare = add_spare_run(demo_data_copy, "prod2vec", "spare prod2vec")
    dash_duo.driver.set_window_size(1400, 2400)  # the Runs page whole in view: no scrolling under a re-render
    dash_duo.start_server(dash_app_copy)

    # Overview: every button of every active-variant card opens a page that works.
    dash_duo.wait_for_page(f"{dash_duo.server_url}/")
    wait_until(lambda: len(_card_hrefs(dash_duo)) >= 3, timeout=40, what="the variant cards")
    hrefs = _card_hrefs(dash_duo)
    assert any("/compare" in h and runs["popularity"] in h for h in hrefs)  # the baseline's button
    for href in hrefs:
        _page_works(dash_duo, href)

    # Runs: delete the active prod2vec run; the dialog and the message name its successor.
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_element(f"#runs-grid .ag-row[row-id='{runs['prod2vec']}']", timeout=40)
    _select_row(dash_duo, runs["prod2vec"])
    text = _delete_selected(dash_duo)
    assert "spare prod2vec" in text and "becomes active" in text
    # named as the grid names it (recsys.registry.run_label), not by its run id
    dash_duo.wait_for_contains_text("#runs-action-msg", "spare prod2vec is now the active run", timeout=20)
    assert Registry(demo_data_copy).active("demo")["prod2vec"] == spare
    wait_until(
        lambda: runs["prod2vec"] not in _grid_row_ids(dash_duo, "runs-grid"), timeout=20, what="row gone"
    )

    # ... and the last one: the page says that none is left.
    _select_row(dash_duo, spare)
    text = _delete_selected(dash_duo)
    assert "no other prod2vec run of demo is left" in text
    dash_duo.wait_for_contains_text("#runs-action-msg", "none is active", timeout=20)
    assert "prod2vec" not in Registry(demo_data_copy).active("demo")
    assert dash_duo.get_logs() == []
