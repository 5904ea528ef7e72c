"""The Map's first load, done ahead: built figures kept per source, and a warm-up thread.

A cold server paid the Map's first drawing of a run on the first user's request: reading
the run's catalogue and projection, aligning 100k item ids, building the figure (issue 14:
the first load after a start took 3.5 s against 1.2 s for the next ones). Three pieces
take that off the user's path:

- :class:`FigureMemo`: the Map's figures already built, keyed by the very objects they
  were built from (the run's catalogue view and projection frame, which their own caches
  replace when a file changes: ``item_ids.npy``, the dataset's report, ``run.json``, a
  projection file) and by run, projection, colouring and sample size. A new projection or
  a re-import gives new objects, so a figure is never served for data it was not built
  from, nor one dataset's for another's; a hit returns a copy (callers edit figures).
- :func:`run_lock`: one build at a time per run, so a request that comes while the
  warm-up is building the same run waits for it and then finds it built, instead of
  building it a second time beside it on the same cores.
- :func:`stored_path` and friends: the first figure (the sample the page's layout carries)
  is also stored as JSON under ``<data dir>/cache/map/``, named by a digest of what it was
  drawn from (the stamps of the run's ``run.json`` and ``item_ids.npy``, its projection
  files and its dataset's ``report.json``; the colouring, the sample size and
  :data:`STORED_FORMAT`). After a restart the layout reads that one file instead of loading
  the catalogue; any change to those files gives another name, so a stored figure is never
  served for data it was not drawn from.
- :func:`start_map_warmup`: a daemon thread, started when the app is served (``python
  app.py``, or each gunicorn worker: ``gunicorn.conf.py``), never on import, so app start
  and the tests that import ``app`` are not held up. It does what the Map's first load
  asks of the server before its figures are on screen (``pages.map.warm_first_map``: the
  first figure and the complete one) for the run the Map opens on, then looks again every
  :data:`WARM_INTERVAL_S` seconds: a new default run (activation, training, deletion) or a
  new projection of it is warmed within seconds; when nothing changed a pass is a few cache
  look-ups. ``RECSYS_MAP_WARMUP=0`` turns it off.

Only the standard library (and ``components.preload``, which imports no more) is imported here:
``app.py`` imports this module at start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from components.preload import wait_for_preload

logger = logging.getLogger(__name__)

#: Seconds between two warm-up passes (a pass with nothing new is a few cache look-ups).
WARM_INTERVAL_S = 3.0
ENV_WARMUP = "RECSYS_MAP_WARMUP"


# -- built figures ------------------------------------------------------------------------
def fresh(value: Any) -> Any:
    """A copy of a figure's dicts (and lists of dicts) that shares its arrays and strings.

    The Map's callbacks edit a figure's dicts (the layout's sample mark, a trace's opacity,
    the highlight trace's lists are replaced, never edited in place), so a kept figure is
    handed out as such a copy: about a millisecond, against a deep copy of 100k positions."""
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [fresh(v) for v in value]
    return value


class FigureMemo:
    """The last ``size`` figures built, each kept with the objects it was built from.

    :meth:`get` answers a copy of the figure built from the same ``sources`` (compared by
    identity) under the same ``key``, else builds and keeps it. ``keep`` is held with the
    entry and not compared: objects whose memory address is part of ``key`` (a projection
    frame is handed out as a new shallow copy on each read, sharing its columns), so that no
    other data can take that address while the entry exists."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: list[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], Any]] = []

    def get(
        self,
        sources: tuple[Any, ...],
        key: tuple[Any, ...],
        build: Callable[[], Any],
        keep: tuple[Any, ...] = (),
    ) -> Any:
        with self._lock:
            for src, k, _keep, value in self._entries:
                if k == key and len(src) == len(sources) and all(a is b for a, b in zip(src, sources)):
                    return fresh(value)
        value = build()
        with self._lock:
            self._entries.append((sources, key, keep, value))
            del self._entries[: -self.size]
        return fresh(value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


FIGURES = FigureMemo()

_run_locks: dict[tuple[str, str], threading.RLock] = {}
_run_locks_guard = threading.Lock()


def run_lock(root: str, run_id: str) -> threading.RLock:
    """The lock under which the Map reads and draws run ``run_id`` of data directory ``root``."""
    with _run_locks_guard:
        lock = _run_locks.get((root, run_id))
        if lock is None:
            lock = _run_locks[(root, run_id)] = threading.RLock()
        return lock


# -- the first figure on disk ------------------------------------------------------------
#: Part of every stored figure's name: bump it when the figure's content changes shape.
STORED_FORMAT = 1


def stored_digest(parts: Sequence[Any], files: Sequence[str | os.PathLike[str]]) -> str:
    """A digest of ``parts`` and of each file's (path, mtime_ns, size, inode), None when missing."""
    stamps = []
    for f in files:
        try:
            st = os.stat(f)
            stamps.append([str(f), st.st_mtime_ns, st.st_size, st.st_ino])
        except OSError:
            stamps.append([str(f), None])
    raw = json.dumps([STORED_FORMAT, list(parts), stamps], default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def stored_path(root: str | os.PathLike[str], run_id: str, color_by: str, digest: str) -> Path:
    """``<root>/cache/map/<run>.<colouring>.<digest>.json``."""
    color = "".join(c if c.isalnum() else "_" for c in color_by)
    return Path(root) / "cache" / "map" / f"{run_id}.{color}.{digest}.json"


def read_stored(path: Path) -> dict[str, Any] | None:
    """A stored figure (``{"figure", "meta"}``), or None when there is none or it cannot be read."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(value, dict)
        and isinstance(value.get("figure"), dict)
        and isinstance(value.get("meta"), dict)
    )
    return value if ok else None


def write_stored(path: Path, value: dict[str, Any]) -> None:
    """Store ``value`` at ``path`` (written aside, then renamed) and remove that run's and
    colouring's older ones. A folder that cannot be written only costs the next start."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(value, separators=(",", ":")))
        os.replace(tmp, path)
        stem = path.name.rsplit(".", 2)[0]  # <run>.<colouring>
        for old in path.parent.glob(f"{stem}.*.json"):
            if old != path and old.name.rsplit(".", 2)[0] == stem:
                old.unlink(missing_ok=True)
    except OSError as exc:
        logger.info("could not store the Map's first figure at %s: %s", path, exc)
        tmp.unlink(missing_ok=True)


def sweep_stored(registry: Any) -> int:
    """Remove the stored figures of runs that no longer exist in ``registry`` (a deleted run's
    files are never read again); the number removed. Called by each warm-up pass: one listing
    of a folder of a few files."""

    def exists(run_id: str) -> bool:
        try:
            registry.run_dir(run_id)  # raises for an unknown run (RecsysError)
        except Exception:  # noqa: BLE001 - any doubt: not this run's folder, the file goes
            return False
        return True

    removed = 0
    folder = Path(registry.root) / "cache" / "map"
    try:
        names = [f for f in folder.glob("*.json") if not f.name.startswith(".")]
    except OSError:
        return 0
    for f in names:
        run_id = f.name.rsplit(".", 3)[0]  # <run>.<colouring>.<digest>.json
        try:
            if not exists(run_id):
                f.unlink(missing_ok=True)
                removed += 1
        except OSError as exc:
            logger.info("could not remove the stored Map figure %s: %s", f, exc)
    return removed


# -- warm-up thread -----------------------------------------------------------------------
_thread: threading.Thread | None = None
_stop = threading.Event()
_state_lock = threading.Lock()
#: The last pass: ``{"run", "seconds", "at", "error"}`` (read by tests and the log).
last_pass: dict[str, Any] = {}


def warm_once() -> dict[str, Any]:
    """One pass: the Map's first load of the run it opens on, done now (see the module
    docstring); ``{"run", "seconds", "error"}``. Never raises: a run that cannot be read
    is left to the page, which says why."""
    t0 = time.perf_counter()
    run, error = None, None
    try:
        from pages.map import warm_first_map  # loaded with the app's pages already

        run = warm_first_map()
    except Exception as exc:  # noqa: BLE001 - a warm-up must never take the app down
        error = f"{type(exc).__name__}: {exc}"
    out = {"run": run, "seconds": round(time.perf_counter() - t0, 3), "at": time.time(), "error": error}
    if error and error != last_pass.get("error"):
        logger.warning("Map warm-up failed (the page will build its figure itself): %s", error)
    elif not error and (run != last_pass.get("run") or out["seconds"] > 0.2):
        logger.info("Map warm-up: run %s drawn ahead (%.2f s)", run, out["seconds"])
    last_pass.clear()
    last_pass.update(out)
    return out


def _loop(interval: float) -> None:
    wait_for_preload()  # never import pandas beside a request that is importing it
    while not _stop.is_set():
        warm_once()
        _stop.wait(interval)


def start_map_warmup(interval: float = WARM_INTERVAL_S) -> threading.Thread | None:
    """Start the warm-up thread (once per process; None when ``RECSYS_MAP_WARMUP=0``).

    Returns at once: the first pass runs in the thread, while the app starts serving."""
    global _thread
    if os.environ.get(ENV_WARMUP, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    with _state_lock:
        if _thread is not None and _thread.is_alive():
            return _thread
        _stop.clear()
        _thread = threading.Thread(target=_loop, args=(interval,), name="recsys-map-warmup", daemon=True)
        _thread.start()
        return _thread


def stop_map_warmup(timeout: float = 30.0) -> None:
    """Stop the warm-up thread (after its current pass) and wait for it."""
    global _thread
    with _state_lock:
        thread, _thread = _thread, None
        _stop.set()
    if thread is not None:
        thread.join(timeout)
