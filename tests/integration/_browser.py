"""Helpers the browser tests share: clicking like a user, waiting for a condition, the run ids
of a data directory."""

from __future__ import annotations

import time
from pathlib import Path

from recsys.registry import Registry


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate()`` every 0.2 s until it is true; fail the test after ``timeout`` seconds.

    An element that React re-draws between being found and being read (selenium's
    StaleElementReferenceException) counts as "not yet": the next poll finds the new one.
    """
    from selenium.common.exceptions import StaleElementReferenceException

    end = time.time() + timeout
    while time.time() < end:
        try:
            if predicate():
                return
        except StaleElementReferenceException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def scroll_to(driver, element) -> None:
    """Bring ``element`` to the middle of the window at once.

    ``behavior: 'instant'`` matters: Bootstrap sets ``scroll-behavior: smooth`` on the page, and
    headless Chromium (156+) can leave a smooth scroll unfinished, so a click then lands on a
    point outside the window ("element click intercepted").
    """
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)


def click(dash_duo, element, tries: int = 10) -> None:
    """Click like a user: scroll the element into view first, retry while a re-render covers it."""
    from selenium.common.exceptions import ElementClickInterceptedException

    for attempt in range(tries):
        scroll_to(dash_duo.driver, element)
        try:
            element.click()
            return
        except ElementClickInterceptedException:
            if attempt == tries - 1:
                raise
            time.sleep(0.3)


def run_ids(root: Path) -> dict[str, str]:
    """family -> run id of the runs registered in the data directory ``root``."""
    return {r["family"]: r["run_id"] for r in Registry(root).list_runs()}


def css_id(component_id: dict) -> str:
    """A CSS selector (``#...``) for the DOM id Dash gives a dict id."""
    import json

    raw = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return "#" + "".join("\\" + c if not c.isalnum() and c not in "-_" else c for c in raw)


def add_spare_run(root: Path, family: str, label: str) -> str:
    """Register a copy of the active ``family`` run of dataset demo as a newer, inactive run."""
    registry = Registry(root)
    time.sleep(1.1)  # "created" has one-second resolution: the spare is the newest
    model = registry.load_model(registry.active("demo")[family])
    return registry.create_run(model, dataset_name="demo", dataset_fingerprint="x", label=label)["run_id"]
