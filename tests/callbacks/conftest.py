"""Data directories the callback tests share (their contents: ``_dashboard_data``, ``_emc_data``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.callbacks import _dashboard_data, _emc_data


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Overview/Runs/Data data directory (``_dashboard_data``), set as RECSYS_DATA_DIR."""
    data = tmp_path / "data"
    _dashboard_data.make_data_dir(data)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data))
    return data


@pytest.fixture(scope="module")
def data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Explore/Map/Compare data directory (``_emc_data``), built once per test module.

    ``{"root": <dir>, "runs": {"A": run id, "B": run id, "popularity": run id}}``; a page
    fixture sets it as RECSYS_DATA_DIR. test_parity.py defines its own ``data`` (serving data).
    """
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    return {"root": root, "runs": _emc_data.make_data_dir(root)}
