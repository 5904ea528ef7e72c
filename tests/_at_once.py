"""Run one function in several forked processes released together by a barrier."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from typing import Any


def _released(fn: Callable[..., Any], args: tuple[Any, ...], barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{args}: {exc!r}")


def errors_at_once(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[str]:
    """``fn(*args)`` for each ``args`` of ``calls``, each in its own process, all started at
    once; what each raised, as text (empty when every call returned)."""
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(len(calls)), ctx.Queue()
    procs = [ctx.Process(target=_released, args=(fn, args, barrier, errors)) for args in calls]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        # a fork copies only this thread: a lock another thread of this process held at the fork
        # stays held in the child (CI, s37: one child of six hung once); name them when it happens
        others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        assert p.exitcode == 0, (
            f"a process was lost (exit code {p.exitcode}); other threads of this process: {others}"
        )
    out = []
    while not errors.empty():
        out.append(errors.get())
    return out
