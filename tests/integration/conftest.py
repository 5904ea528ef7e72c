"""Shared fixtures of the browser tests (real headless Chromium via dash[testing]).

Run them with ``pytest --headless tests/integration``.

Fixtures
--------
``demo_data_dir`` (session)
    A temporary data directory holding a small prepared demo, built once per test
    session: ``generate_demo(n_items=DEMO_ITEMS, n_sequences=DEMO_SEQUENCES, seed=0)``
    saved as dataset ``"demo"``, plus two runs trained through
    :func:`recsys.pipeline.train_run`: ``popularity`` and a small ``prod2vec``
    (both active). ``DEMO_RUNS`` maps family -> run id after the fixture ran
    (also readable from ``Registry(demo_data_dir)``). Treat it as read-only.
``demo_data_copy`` (function)
    A private copy of ``demo_data_dir`` for tests that change data (train, delete,
    import); other tests then still see exactly two runs.
``dash_app`` (function)
    The app of ``app.py`` (``import_app("app")``) pointed at ``demo_data_dir``
    (``RECSYS_DATA_DIR``; the automatic demo build is off: ``RECSYS_NO_DEMO=1``).
    It first forgets earlier imports of ``app``, ``pages.*`` and ``components.*``
    and Dash's page and callback registries, so each test gets a fresh app with
    every callback registered (Dash moves module-level ``@callback``s into the
    first app that serves, so a module imported for an earlier test would
    otherwise have none left).
``dash_app_copy`` (function)
    The same app pointed at ``demo_data_copy``.

Each test's ``dash_duo.start_server(app)`` without a ``port`` serves on a port the system
says is free (:func:`_free_dash_port`), not dash's counter from 58050: the suite runs in two
pytest-xdist workers, and each worker's counter would start at 58050.

Typical test::

    def test_page(dash_duo, dash_app):
        dash_duo.start_server(dash_app)
        dash_duo.wait_for_page(f"{dash_duo.server_url}/explore")
        ...
        assert dash_duo.get_logs() == []
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEMO_ITEMS = 400
DEMO_SEQUENCES = 800
PROD2VEC_PARAMS = {"vector_size": 16, "epochs": 3, "min_count": 1, "workers": 1}
DEMO_RUNS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _free_dash_port() -> None:
    """Point dash[testing]'s next default server port at one that is free now (see above)."""
    from dash.testing.application_runners import BaseDashRunner

    from tests._redis import free_port

    BaseDashRunner._next_port = free_port()


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the small demo dataset and a popularity and a prod2vec run."""
    from recsys.data.schema import save_dataset
    from recsys.data.synthetic import generate_demo
    from recsys.pipeline import train_run

    root = tmp_path_factory.mktemp("recsys-data")
    save_dataset(generate_demo(n_items=DEMO_ITEMS, n_sequences=DEMO_SEQUENCES, seed=0), root)
    for family, params in (("popularity", {}), ("prod2vec", PROD2VEC_PARAMS)):
        meta = train_run(family, params, "demo", root, label=f"{family} (test)", activate=True)
        DEMO_RUNS[family] = meta["run_id"]
    return root


@pytest.fixture
def demo_data_copy(demo_data_dir: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the demo data directory."""
    dest = tmp_path / "data"
    shutil.copytree(demo_data_dir, dest, ignore=shutil.ignore_patterns("jobs", "uploads", "device.json"))
    return dest


def _fresh_app(root: Path, monkeypatch: pytest.MonkeyPatch):
    import dash
    from dash import _callback
    from dash.testing.application_runners import import_app

    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    monkeypatch.setenv("RECSYS_NO_DEMO", "1")
    monkeypatch.chdir(REPO)
    for name in list(sys.modules):
        if name == "app" or name.split(".")[0] in ("pages", "components"):
            del sys.modules[name]
    dash._pages.PAGE_REGISTRY.clear()
    _callback.GLOBAL_CALLBACK_LIST.clear()
    _callback.GLOBAL_CALLBACK_MAP.clear()
    return import_app("app")


@pytest.fixture
def app(demo_data_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The dashboard on a private copy of the demo data with no token, users file or allowed
    hosts configured (each test sets what it needs), its import folder under ``tmp_path``."""
    monkeypatch.setenv("RECSYS_IMPORT_DIR", str(tmp_path / "imports"))
    for var in ("RECSYS_API_TOKEN", "RECSYS_VIEWER_TOKEN", "RECSYS_USERS_FILE", "RECSYS_ALLOWED_HOSTS"):
        monkeypatch.delenv(var, raising=False)
    return _fresh_app(demo_data_copy, monkeypatch)


@pytest.fixture
def client(app):
    """Flask's test client of :func:`app`."""
    c = app.server.test_client()
    assert c.get("/_dash-layout").status_code == 200  # Dash registers its callbacks on first use
    return c


@pytest.fixture
def dash_app(demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """The dashboard on the shared, read-only demo data."""
    return _fresh_app(demo_data_dir, monkeypatch)


@pytest.fixture
def dash_app_copy(demo_data_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """The dashboard on a private copy of the demo data (for tests that change it)."""
    return _fresh_app(demo_data_copy, monkeypatch)
