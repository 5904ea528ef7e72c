"""Helpers the browser tests share: waiting for a condition, the run ids of a data directory."""

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
