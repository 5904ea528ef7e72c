"""The app's first requests import pandas and the catalogue in one thread only (components.preload).

Dash fires several callbacks at once when a page opens and the server answers them in threads;
two threads importing pandas at the same moment can get it half-initialised (a 500 and a blank
page, seen under load). Every request therefore waits while the one import runs.
"""

from __future__ import annotations

import sys
import threading


def test_a_request_waits_while_another_thread_imports_pandas_and_then_is_answered(app):
    preload = sys.modules["components.preload"]
    client = app.server.test_client()
    preload._done.clear()  # as at start: the modules not yet imported
    answered: list[int] = []
    with preload._lock:  # another thread (the preload, or a first request) is importing them
        request = threading.Thread(target=lambda: answered.append(client.get("/_dash-layout").status_code))
        request.start()
        request.join(1.0)
        assert request.is_alive() and answered == []  # it waits instead of importing beside it
    request.join(30)
    assert answered == [200]
    assert preload._done.is_set() and "pandas" in sys.modules and "recsys.catalog" in sys.modules


def test_the_map_warm_up_waits_for_the_same_import(app, monkeypatch):
    preload = sys.modules["components.preload"]
    map_warm = sys.modules.get("components.map_warm")
    passes: list[int] = []
    monkeypatch.setattr(map_warm, "warm_once", lambda: (passes.append(1), map_warm._stop.set()))
    preload._done.clear()
    with preload._lock:
        thread = threading.Thread(target=map_warm._loop, args=(0.01,))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and passes == []
    thread.join(30)
    map_warm._stop.clear()
    assert passes == [1]
