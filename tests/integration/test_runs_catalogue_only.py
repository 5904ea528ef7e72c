"""Runs page in Chromium with a catalogue-only dataset (a catalogue imported without
interactions, as Myntra's): choosing it switches the form from Prod2Vec, which can only fail
there, to a family that trains on the catalogue alone, and training that family from the form
registers a run of that dataset (``pytest --headless``)."""

from __future__ import annotations

import time

from selenium.webdriver.common.keys import Keys

from recsys.registry import Registry
from tests.integration._browser import click as _click
from tests.integration._browser import wait_until


def _dropdown_text(dash_duo, component_id: str) -> str:
    return dash_duo.find_element(f"#{component_id}").text


def test_choosing_a_catalogue_only_dataset_switches_the_family_and_trains_on_it(
    dash_duo, dash_app_copy, demo_data_copy
):
    from components import ids
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.models import catalog_only_families
    from tests.callbacks._emc_data import catalog

    root = demo_data_copy
    save_dataset(build_dataset("shop", catalog(), None), root)  # a catalogue, no interactions
    alone = catalog_only_families()
    before = {r["run_id"] for r in Registry(root).list_runs()}

    dash_duo.driver.set_window_size(1400, 1200)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_element(f"#{ids.RUNS_GRID} .ag-row", timeout=30)
    # the form opens on the demo dataset (it has sessions) and Prod2Vec
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_FAMILY}", "prod2vec", timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_PARAMS}", "window", timeout=10)

    assert "not evaluated" not in dash_duo.find_element(f"#{ids.RUNS_EVAL_NOTE}").text  # the demo is
    # pick the catalogue-only dataset as a user does: open the menu, type, choose
    _click(dash_duo, dash_duo.find_element(f"#{ids.RUNS_DATASET}"))
    dash_duo.find_element("input.dash-dropdown-search").send_keys("shop")
    _click(dash_duo, dash_duo.find_element(".dash-dropdown-option"))
    wait_until(
        lambda: _dropdown_text(dash_duo, ids.RUNS_FAMILY).strip() in alone,
        timeout=10,
        what="the family to switch to one that trains on the catalogue alone",
    )
    family = _dropdown_text(dash_duo, ids.RUNS_FAMILY).strip()
    # and the form says the run will not be evaluated (its split settings do not apply)
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_EVAL_NOTE}", "so the run is not evaluated", timeout=10)
    # the form's settings follow: the chosen family's, not Prod2Vec's (gensim's ns_exponent)
    wait_until(
        lambda: "ns_exponent" not in dash_duo.find_element(f"#{ids.RUNS_PARAMS}").text,
        timeout=10,
        what="the settings to follow the family",
    )
    assert dash_duo.find_element(f"#{ids.RUNS_PARAMS}").text.strip()

    # the other family that trains on a catalogue alone (TF-IDF: seconds, where the content
    # model's Keras fit takes a minute), chosen from the menu
    other = next(f for f in alone if f != family)
    _click(dash_duo, dash_duo.find_element(f"#{ids.RUNS_FAMILY}"))
    dash_duo.find_element("input.dash-dropdown-search").send_keys(other)
    _click(dash_duo, dash_duo.find_element(".dash-dropdown-option"))
    wait_until(lambda: _dropdown_text(dash_duo, ids.RUNS_FAMILY).strip() == other, timeout=10, what=other)
    family = other

    label = dash_duo.find_element(f"#{ids.RUNS_LABEL}")
    label.send_keys(Keys.ESCAPE)  # close any open menu, which would cover the button
    label.send_keys("catalogue only")
    _click(dash_duo, dash_duo.find_element(f"#{ids.RUNS_SUBMIT}"))
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_SUBMIT_MSG}", "Training started", timeout=10)

    deadline = time.monotonic() + 120
    new: list[dict] = []
    while time.monotonic() < deadline and not new:
        new = [r for r in Registry(root).list_runs() if r["run_id"] not in before]
        time.sleep(0.5)
    assert len(new) == 1, "the job registered no run"
    run = new[0]
    assert run["family"] == family and run["dataset"]["name"] == "shop" and run["label"] == "catalogue only"
    dash_duo.wait_for_element(f"#{ids.RUNS_JOBS} .job-done", timeout=30)
    # the grid says why the run has no metrics, where it showed "—" in each cell (s44's walk)
    row = f"#{ids.RUNS_GRID} .ag-center-cols-container .ag-row[row-id='{run['run_id']}']"
    dash_duo.wait_for_element(row, timeout=30)
    cell = dash_duo.find_element(f"{row} [col-id='hr@10']")
    wait_until(lambda: cell.text.strip() == "not evaluated", timeout=10, what="the hr@10 cell's reason")
    note = dash_duo.find_element(f"{row} [col-id='notes']").text
    assert note.startswith("not evaluated: catalogue only"), note
    # an evaluated run of the demo keeps its figures, and a missing one its "—"
    demo = next(r for r in Registry(root).list_runs() if r["run_id"] in before and r["family"] == "prod2vec")
    demo_row = f"#{ids.RUNS_GRID} .ag-center-cols-container .ag-row[row-id='{demo['run_id']}']"
    assert dash_duo.find_element(f"{demo_row} [col-id='hr@10']").text.strip()[:2] == "0."
    assert "not evaluated" not in dash_duo.find_element(f"{demo_row}").text
    assert dash_duo.get_logs() == []
