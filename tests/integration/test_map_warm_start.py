"""``python app.py`` draws the Map's first load ahead in a thread while it starts serving
(``components.map_warm``): a user who opens the Map first thing after a deploy does not pay
the server's first drawing of the run."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.callbacks import _emc_data

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serving_the_app_draws_the_default_runs_map_ahead(tmp_path: Path) -> None:
    root = tmp_path / "data"
    runs = _emc_data.make_data_dir(root)
    port = _free_port()
    env = {**os.environ, "RECSYS_NO_DEMO": "1"}
    env.pop("RECSYS_MAP_WARMUP", None)
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--data-dir", str(root)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    seen: list[str] = []
    try:
        end = time.time() + 120
        warmed = False
        while time.time() < end and not warmed:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, "the app stopped:\n" + "".join(seen)
                continue
            seen.append(line)
            warmed = f"Map warm-up: run {runs['A']} drawn ahead" in line
        assert warmed, "no warm-up of the Map's default run:\n" + "".join(seen)
        # and the app serves meanwhile (the warm-up is a thread, not part of the start)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/map", timeout=30) as r:
            assert r.status == 200
        assert not [line for line in seen if "Traceback" in line or "warm-up failed" in line]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
