"""Run one function in several processes released together by a barrier.

The processes start from a fork server (one clean, single-threaded process per test worker),
not by forking the test process: a fork copies only the forking thread, and a lock that one of
the test process's other threads held at the fork (searchers' background builds, tqdm's
monitor, left by earlier tests in the worker) stayed held in the child, which then hung
(CI, s37 and s38). ``fn`` must therefore be importable by name: put it in
``tests/_store_calls.py``, which the server imports once."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any


def _released(fn: Callable[..., Any], args: tuple[Any, ...], barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{args}: {exc!r}")


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests._store_calls"])  # heeded when the server starts
    return ctx


def errors_at_once(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[str]:
    """``fn(*args)`` for each ``args`` of ``calls``, each in its own process, all started at
    once; what each raised, as text (empty when every call returned)."""
    ctx = _context()
    barrier, errors = ctx.Barrier(len(calls)), ctx.Queue()
    procs = [ctx.Process(target=_released, args=(fn, args, barrier, errors)) for args in calls]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, f"a process was lost (exit code {p.exitcode})"
    out = []
    while not errors.empty():
        out.append(errors.get())
    return out
