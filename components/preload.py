"""The modules requests import on first use, imported once, before any request imports them.

pandas (and the ``recsys`` modules built on it) are kept off the app's start path, so the first
requests import them. Dash fires several callbacks at once when a page loads, the server answers
them in threads, and the app's own background threads (the Map's warm-up, the seed search's
reads) import the same modules: two threads importing pandas at the same moment can meet
CPython's import deadlock avoidance, and one of them gets the module half-initialised
("partially initialized module 'pandas' ..."): a 500 and a blank page (seen at load 20).

:func:`wait_for_preload` runs before every request (``app.py``) and before the Map warm-up's
first pass: the first caller imports them under a lock while the others wait, so only one thread
ever imports them; once done, the wait is one ``Event.is_set``. :func:`start_preload` does it in
a thread as soon as the app serves (``python app.py``, and each gunicorn worker after its fork:
never before a fork, whose child would inherit a half-done import), so the first request seldom
waits for it.

Only the standard library is imported here: ``app.py`` imports this module at start.
"""

from __future__ import annotations

import importlib
import logging
import threading

logger = logging.getLogger(__name__)

#: What requests and the background threads import lazily (pandas with its optional parts, the
#: Arrow reader, the catalogue and the search package built on them).
MODULES = ("pandas", "pyarrow", "pyarrow.parquet", "recsys.catalog", "recsys.search")

_lock = threading.Lock()
_done = threading.Event()


def preload() -> None:
    """Import :data:`MODULES` once; a second caller waits for the first. Never raises: a module
    that fails to import fails again, with its own message, where it is used."""
    if _done.is_set():
        return
    with _lock:
        if _done.is_set():
            return
        try:
            for name in MODULES:
                try:
                    importlib.import_module(name)
                except Exception as exc:  # noqa: BLE001 (reported where the module is used)
                    logger.warning("could not preload %s: %s", name, exc)
        finally:
            _done.set()


def wait_for_preload() -> None:
    """Return once :data:`MODULES` are imported (importing them here when no preload ran)."""
    if not _done.is_set():
        preload()


def start_preload() -> threading.Thread | None:
    """Import :data:`MODULES` in a daemon thread (None when they already are)."""
    if _done.is_set():
        return None
    thread = threading.Thread(target=preload, name="recsys-preload", daemon=True)
    thread.start()
    return thread
