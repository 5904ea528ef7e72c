"""`pip install .` gives a `recsys` command and a `python -m recsys` that work from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project installed (without its dependencies, which this venv has) into a folder."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), str(REPO)],
        capture_output=True,
        text=True,
        cwd=build,
        timeout=300,
    )  # fmt: skip
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        pytest.skip("pip is not available in this interpreter")
    assert proc.returncode == 0, proc.stderr
    return target


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)  # the installed copy, not the repository
    return env


@pytest.mark.slow
def test_installed_command_and_module_work_outside_the_repository(installed, tmp_path):
    elsewhere = tmp_path / "somewhere else"
    elsewhere.mkdir()
    (elsewhere / "events.csv").write_text("SessionId;ItemId\ns1;a\ns1;b\ns2;a\n")
    script = installed / "bin" / "recsys"
    assert script.exists()
    data = elsewhere / "data"
    for argv in (
        [str(script)],
        [sys.executable, "-m", "recsys"],
    ):
        proc = subprocess.run(
            [*argv, "--data-dir", str(data), "-q", "import", "csv", "events.csv", "--name", "mine",
             "--map", "SessionId=sequence_id", "ItemId=item_id"],
            cwd=elsewhere,
            env=_env(installed),
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert '"interactions": 3' in proc.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import recsys; print(recsys.__file__)"],
        cwd=elsewhere,
        env=_env(installed),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    # the commands ran the installed copy (with its data files), not the repository's
    assert Path(where).resolve().parents[1] == installed.resolve()
    assert (installed / "recsys" / "openapi.yaml").exists()
    assert (data / "datasets" / "mine" / "report.json").exists()
