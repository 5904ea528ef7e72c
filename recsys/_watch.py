"""Knowing that no watched file changed without a ``stat`` per file: Linux inotify (inotify_simple).

The searcher cache (:func:`recsys.search.get_searcher`) checks on every call that none of a run's
files (and its dataset's report) changed: eight ``stat`` calls, 10-15 µs each on some hosts (a
sandboxed kernel), about a third of what a live ``/similar`` request costs beyond the search.
:class:`ChangeWatch` lets a caller skip them while nothing changed in the watched folders: one
non-blocking ``read`` of an inotify descriptor per call, which returns whatever the kernel queued
(events are queued when the write happens, so a change made before a call is seen by that call).

Anything it cannot vouch for makes ``quiet()`` False, and the caller checks the files as before:
no inotify (not Linux, or the limits reached), another process (a forked worker gets its own
descriptor), any event (including a queue overflow), and a full check at least every
``FULL_CHECK_S`` seconds, since a network filesystem (NFS, SMB) raises no event for a write made
on another host.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any

#: at most this long between two full checks whatever the events say (writes from other hosts)
FULL_CHECK_S = 1.0


def _inotify() -> Any:
    """A non-blocking inotify instance, or None (not Linux, inotify_simple missing, limits reached)."""
    try:
        from inotify_simple import INotify, flags
    except ImportError:
        return None
    try:
        ino = INotify(nonblocking=True)
    except OSError:
        return None
    ino.recsys_mask = (  # what changes a file's content, name or presence
        flags.MODIFY
        | flags.ATTRIB
        | flags.CLOSE_WRITE
        | flags.MOVED_FROM
        | flags.MOVED_TO
        | flags.CREATE
        | flags.DELETE
        | flags.DELETE_SELF
        | flags.MOVE_SELF
    )
    return ino


class ChangeWatch:
    """Folders watched for changes, per process, and values remembered while nothing changed.

    ``watch(folder, ...)`` adds folders (False when one cannot be watched). A caller takes
    ``epoch()``, then checks its files the slow way, then ``remember(key, value, epoch)``:
    ``recall(key)`` returns that value while no event has come since the epoch was taken and the
    check is younger than ``FULL_CHECK_S``, else None (and the caller checks again). An event
    forgets every value; a value checked before an event (a slower thread's) is not remembered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._ino: Any = None
        self._epoch = 0
        self._folders: set[str] = set()
        self._values: dict[object, tuple[object, float]] = {}
        # the descriptor is a file object: closed at exit, not left to the interpreter's teardown
        # (which warned "ResourceWarning: unclosed file <_io.FileIO name=12 ...>" after the tests)
        atexit.register(self.close)

    def close(self) -> None:
        """Close this process's inotify descriptor (the next call opens a new one)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        ino, self._ino, self._pid = self._ino, None, -1
        if ino is not None:
            try:
                ino.close()
            except OSError:
                pass

    def _open(self) -> bool:
        """The descriptor of this process (opened after a fork: events are read by one process)."""
        pid = os.getpid()
        if self._pid == pid:
            return self._ino is not None
        self._close()  # a forked parent's copy: this process reads its own
        self._pid, self._folders, self._values = pid, set(), {}
        self._epoch += 1
        self._ino = _inotify() if os.name == "posix" else None
        return self._ino is not None

    def _drain(self) -> None:
        """Read the queued events (lock held); any forgets every value."""
        if self._pid != os.getpid() or self._ino is None:
            return
        try:
            got = self._ino.read(timeout=0)
        except BlockingIOError:
            return
        except OSError:
            got = True
        if got:
            self._epoch += 1
            self._values.clear()
            # a watched folder may have been deleted or moved (its watch goes with its inode): every
            # folder is watched again by the next full check (adding a watch twice is harmless)
            self._folders.clear()

    def watch(self, *folders: str) -> bool:
        """Watch ``folders`` (each once); False when any cannot be watched."""
        with self._lock:
            if not self._open():
                return False
            for folder in folders:
                if folder in self._folders:
                    continue
                try:
                    self._ino.add_watch(folder, self._ino.recsys_mask)
                except OSError:
                    return False
                self._folders.add(folder)
            return True

    def epoch(self) -> int:
        """Take before a slow check whose result is to be remembered."""
        with self._lock:
            self._drain()
            return self._epoch

    def remember(self, key: object, value: object, epoch: int) -> None:
        """Keep ``value`` for ``key`` unless an event came after ``epoch`` was taken."""
        with self._lock:
            self._drain()
            if self._epoch == epoch and self._pid == os.getpid() and self._ino is not None:
                self._values[key] = (value, time.monotonic())

    def recall(self, key: object) -> object | None:
        """The value remembered for ``key`` while nothing changed (see the class), else None."""
        with self._lock:  # the read and the values together: no caller sees a drained event unhandled
            self._drain()
            got = self._values.get(key)
            if got is None or self._pid != os.getpid():
                return None
            if time.monotonic() - got[1] >= FULL_CHECK_S:
                del self._values[key]
                return None
            return got[0]

    def forget(self) -> None:
        """Forget every remembered value (a cache cleared by its owner)."""
        with self._lock:
            self._epoch += 1
            self._values.clear()
