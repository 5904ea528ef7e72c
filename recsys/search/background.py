"""The searcher's background builds: one worker thread per searcher that builds what a filter
benefits from (key indexes, per-seed tables, dense eligible blocks, graphs) off the request
path; each result is published with one attribute assignment, so a query sees the structure
whole or not at all. Queries come first (:class:`Background`), and the thread is closed at exit.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: a background job starts (or goes on past a :meth:`Background.pause`) only once no query has
#: run for this long (seconds): queries get the GIL first
QUIET_S = 0.003
#: while queries keep coming, the worker looks for a quiet moment this often (seconds). Each look
#: takes the GIL, and on a loaded machine every such hand-over can cost the running query a
#: scheduling delay of milliseconds: looking every QUIET_S put 5 to 16 ms stalls on a new
#: filter's back-to-back first queries at 1M items (issue 18), looking every POLL_S leaves at most
#: one look in such a burst of 20 queries
POLL_S = 0.05
#: ... but waits at most this long for such a moment before a job (steady traffic), and this
#: long in all at the pauses inside one job
DEFER_MAX_S = 1.0
PAUSE_MAX_S = 0.25
#: the idle worker looks this often (seconds) for jobs held during queries (:meth:`Background.submit`):
#: no query wakes it. Handing them over at a query's end woke a thread that wants the GIL while
#: the next query ran: at 1M items and load 17 to 24 on 2 cores, the hand-over's wall time was
#: 28 us at the median and 2.5 ms at the 90th percentile (40 ms at worst), and a new filter's first
#: five queries took 10.8 ms at the 90th percentile against 0.68 ms with the jobs held (issue 18)
HANDOVER_S = 0.25
#: the idle worker reads its searcher's large memory (:attr:`Background.warm`) this often (seconds).
#: On the development machine's VM, memory left untouched for 60 to 70 s or more costs its next
#: touch about 70 us per 2 MB region, counted as the touching thread's CPU with no page fault the
#: guest sees (its host reclaims idle guest memory): a 1,000-row gather from a 256 MB array
#: untouched for 70 to 100 s took 7 to 13.5 ms, 0.14 to 0.35 ms after 5 to 60 s, and a 1M-item
#: searcher's first exact scan after two minutes idle 12.7 to 29.3 ms of CPU (issue 18, s36-f).
#: One read per 2 MB every KEEP_WARM_S kept such an array warm (0.48 ms after 90 s).
#: The same reads run while a job runs (:func:`_warm_during_jobs`): a 1M-item filter's ten block
#: graphs took 135 to 325 s to build on the worker with no query, and in three runs without these
#: reads 0, 4 and 13 of the 20 queries right after read 5.7x to 63x raw hnswlib's CPU p50 (0.3x to
#: 1.9x asked again), in two runs with them none (correlated 10% + price band; issue 18, s39-p: an
#: indication; a probe whose job only slept 100 s saw no such cost: the mechanism is not pinned down)
KEEP_WARM_S = 20.0


class _Foreground:
    """When the process's last query ended (``time.perf_counter()``), ``math.inf`` while one runs:
    one for every searcher of the process. Each searcher has its own worker, but they share the
    GIL and the cores: a worker that deferred only to its own searcher's queries ran a build (a
    compile, an eligible set, a graph's Python steps) through another searcher's query, which then
    waited for the GIL (the app holds a searcher per run; the bench's flag cases one per share)."""

    __slots__ = ("fg",)

    def __init__(self) -> None:
        self.fg = 0.0


#: the process's queries, as every :class:`Background` reads them (the searchers write ``FG.fg``)
FG = _Foreground()


class Background:
    """A lazily started daemon thread running build jobs one at a time, deduplicated by key.

    ``submit(key, fn)`` queues ``fn`` unless a job with that key is queued or
    running; ``wait()`` blocks until the queue is empty (tests, benchmarks).
    A failing job is logged; the query path keeps answering without what it
    would have built (and may submit it again).

    Queries come first: NumPy holds the GIL through a gather, a ``flatnonzero`` or a sort
    key over a million items (10 to 300 ms at 1M), and a query that released it (in
    ``knn_query``, a BLAS product) waited for the whole call: a new filter's first
    queries, which queue its builds, paid 10 to 40 ms each. So a query marks itself running
    (:attr:`fg`, shared by every searcher of the process: :data:`FG`), a job starts only once no
    query has run for :data:`QUIET_S` (at most :data:`DEFER_MAX_S` later), and long jobs
    :meth:`pause` between their steps.
    """

    def __init__(self, name: str = "recsys-search-build") -> None:
        _LIVE.add(self)
        self._closing = False
        self._q: queue.Queue[tuple[Any, Callable[[], None]]] = queue.Queue()
        self._pending: set[Any] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._name = name
        self._paused = 0.0  # seconds the running job has spent in pause()
        #: jobs submitted while a query runs: taken by the worker once no query runs
        #: (:meth:`_take_held`), or handed over by :meth:`release`; since when the first waits
        self._held: list[tuple[Any, Callable[[], None]]] = []
        self._held_since = 0.0
        #: what the idle worker runs every :data:`KEEP_WARM_S` once no query runs: the searcher's
        #: read of one byte per 2 MB of its large arrays and graphs (None: nothing)
        self.warm: Callable[[], None] | None = None
        self._warmed = time.perf_counter()
        #: whether the worker is inside a job (the reads then run on :func:`_warm_during_jobs`)
        self._busy = False

    @property
    def fg(self) -> float:
        """``time.perf_counter()`` when the process's last query ended, ``math.inf`` while one runs
        (:data:`FG`, set by the searchers' ``search``)."""
        return FG.fg

    @fg.setter
    def fg(self, value: float) -> None:
        FG.fg = value

    def start(self) -> None:
        """Start the worker thread now (a searcher that builds in the background does it in its
        constructor: starting it on a request cost that request a thread start, 7 ms at load)."""
        with self._lock:
            self._ensure_thread()

    def _ensure_thread(self) -> None:  # with self._lock held
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
            _start_warmer()

    def _quiet(self, cap: float) -> float:
        """Sleep (GIL released) until no query has run for :data:`QUIET_S`, at most ``cap``
        seconds; returns the time slept. While a query runs it looks again every :data:`POLL_S`
        only (each look takes the GIL from the query); after one, when :data:`QUIET_S` has passed."""
        t0 = now = time.perf_counter()
        while now - FG.fg < QUIET_S and now - t0 < cap:
            fg = FG.fg
            wait = POLL_S if fg == math.inf else fg + QUIET_S - now
            time.sleep(max(0.0, min(wait, cap - (now - t0))) + 1e-4)
            now = time.perf_counter()
        return now - t0

    def pause(self) -> None:
        """Inside a job, between two steps that hold the GIL: let a running query go first.

        A no-op outside the worker thread (a build run inline, for a batch or a small catalogue).
        """
        if threading.current_thread() is self._thread and self._paused < PAUSE_MAX_S:
            self._paused += self._quiet(PAUSE_MAX_S - self._paused)

    def submit(self, key: Any, fn: Callable[[], None]) -> bool:
        """Queue ``fn`` under ``key``; False when that key is already pending.

        Submitted while a query runs (:attr:`fg` is ``inf``), the job is held: the worker takes
        it once no query runs (it looks every :data:`HANDOVER_S`), or :meth:`release` hands it
        over. Waking the worker wakes a thread that wants the GIL, and on a loaded machine that
        cost the submitting query (a new filter's first) 5 to 16 ms, and when done at the query's
        end, the queries after it (:data:`HANDOVER_S`).
        """
        with self._lock:
            if key in self._pending:
                return False
            self._pending.add(key)
            self._ensure_thread()
            if FG.fg == math.inf and threading.current_thread() is not self._thread:
                if not self._held:
                    self._held_since = time.perf_counter()
                self._held.append((key, fn))
                return True
        self._q.put((key, fn))
        return True

    def release(self) -> None:
        """Hand the jobs held during queries to the worker now (:meth:`wait`; the worker takes
        them itself once queries pause, :meth:`_take_held`)."""
        if self._held:
            with self._lock:
                held, self._held = self._held, []
            for job in held:
                self._q.put(job)

    def pending(self, key: Any) -> bool:
        return key in self._pending

    def _take_held(self) -> None:
        """On the worker, woken by its own timer: queue the held jobs once no query has run for
        :data:`QUIET_S`, or once the first has waited :data:`DEFER_MAX_S` (steady traffic)."""
        if self._held:
            now = time.perf_counter()
            if now - FG.fg >= QUIET_S or now - self._held_since >= DEFER_MAX_S:
                self.release()

    def _keep_warm(self) -> None:
        """On the idle worker: run :attr:`warm` once :data:`KEEP_WARM_S` have passed since the last
        run, and only while no query runs (it holds the GIL for a few hundred reads)."""
        warm = self.warm
        if warm is None:
            return
        now = time.perf_counter()
        if now - self._warmed < KEEP_WARM_S or now - FG.fg < QUIET_S:
            return
        self._warmed = now
        try:
            warm()
        except Exception:  # a speed aid: never kills the worker
            logger.exception("keeping the search memory warm failed")

    def _run(self) -> None:
        _batch_policy()
        while True:
            try:
                key, fn = self._q.get(timeout=HANDOVER_S)
            except queue.Empty:
                self._take_held()
                self._keep_warm()
                continue
            try:
                if self._closing:  # the process is exiting: queued builds are dropped
                    continue
                self._quiet(DEFER_MAX_S)
                self._paused = 0.0
                self._busy = True
                fn()
            except Exception:  # a build failing must not kill the worker
                logger.exception("background search build %r failed", key)
            finally:
                self._busy = False
                with self._lock:
                    self._pending.discard(key)
                self._q.task_done()

    def wait(self) -> None:
        """Block until every queued build has finished."""
        self.release()
        self._q.join()

    def close(self) -> None:
        """Drop the queued builds and wait for the running one to end (at exit: a daemon thread
        stopped inside hnswlib's multi-threaded ``add_items`` aborts the process, exit code 134)."""
        self._closing = True
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            self._q.join()


def _batch_policy() -> None:
    """Run the calling thread (the worker) under Linux's ``SCHED_BATCH``: its wake-ups never preempt
    a running thread. Woken by a query (a job handed over) or by its own timer while a query ran,
    the worker preempted that query's thread on a loaded machine and, needing the GIL it holds,
    left it waiting for the CPU: 5 to 16 ms at load 16 on 2 cores. Its share of the CPU is
    unchanged (same nice value). A no-op where the policy does not exist."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        pass


#: every Background of the process, closed at exit (:meth:`Background.close`)
_LIVE: weakref.WeakSet[Background] = weakref.WeakSet()
_WARMER: list[threading.Thread] = []
_WARMER_LOCK = threading.Lock()


def _start_warmer() -> None:
    """Start the process's one :func:`_warm_during_jobs` thread (once)."""
    with _WARMER_LOCK:
        if not _WARMER or not _WARMER[0].is_alive():
            _WARMER[:] = [threading.Thread(target=_warm_during_jobs, name="recsys-search-warm", daemon=True)]
            _WARMER[0].start()


def _warm_during_jobs() -> None:
    """The idle worker's reads (:meth:`Background._keep_warm`) for the workers inside a job: a job
    holds its worker for as long as it runs (one ``add_items`` call builds a block's graph, GIL
    released), and a searcher whose worker built for minutes while no query ran found its memory
    cold afterwards (the VM's host reclaims memory left idle a minute: :data:`KEEP_WARM_S`). The
    same rules as the idle worker's: every ``KEEP_WARM_S``, only while no query runs."""
    _batch_policy()
    while True:
        time.sleep(min(KEEP_WARM_S / 4, 1.0))  # a look a second at most: one short GIL hold
        try:
            live = list(_LIVE)
        except RuntimeError:  # a searcher created meanwhile (a WeakSet iterates in Python): next look
            continue
        for bg in live:
            if bg._busy and not bg._closing:
                bg._keep_warm()  # logs its own failures: never kills this thread


@atexit.register
def _close_all() -> None:
    for bg in list(_LIVE):
        bg.close()
