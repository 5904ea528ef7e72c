"""The searcher's own HNSW graphs on transparent huge pages (Linux; a no-op elsewhere).

hnswlib allocates a graph's memory with ``malloc``: on a kernel whose transparent huge pages are
on ``madvise`` (the development VM, most distributions' default) it lies on 4 KB pages, where NumPy
advises huge pages for its large arrays. The searcher keeps its memory warm by reading one byte per
2 MB every :data:`~recsys.search.background.KEEP_WARM_S` (:mod:`recsys.search.cold`): on a graph's
4 KB pages that read reaches one page of 512. On the VM a 1M-item graph left idle for 180 s while
read so had first queries at up to 5.9x its warm CPU p50 (not read: 117x), the same graph on huge
pages 2.0x (issue 18, s41-c: one trial, an indication). :func:`huge_pages` advises huge pages for
the memory a graph's ``init_index`` maps (its base layer, visited list and locks), found as the
anonymous address ranges the call added to ``/proc/self/maps``, so that ``add_items`` writes it
onto them; :func:`collapse` moves memory already written (``load_index`` fills what it maps) onto
them. Used for the graphs the searcher builds in the background (its eligible sets' and blocks'
graphs) and for the main index (:class:`recsys.index.HnswIndex`, built or loaded), whose queries,
raw hnswlib's own, read it about 20% to 25% faster there than on hnswlib's own 4 KB pages at 100k
(issue 18, s41-c, s42-h).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
from collections.abc import Iterator

logger = logging.getLogger(__name__)

#: ``madvise`` advice values (Linux's ``mman-common.h``)
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
#: a transparent huge page on x86-64 and arm64 with 4 KB pages
HUGE = 2 << 20
_LIBC: list[object] = []


def _madvise(start: int, end: int, advice: int) -> bool:
    if not _LIBC:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.madvise.restype = ctypes.c_int
        _LIBC.append(libc)
    return _LIBC[0].madvise(start, end - start, advice) == 0  # type: ignore[attr-defined]


def _anonymous() -> list[tuple[int, int]]:
    """The process's anonymous, private, writable mappings (start, end), from ``/proc/self/maps``:
    ``malloc``'s own mappings, its threads' arenas and the main arena's heap (grown by ``brk``)."""
    out = []
    with open("/proc/self/maps") as fh:
        for line in fh:
            fields = line.split()
            anonymous = len(fields) == 5 or (len(fields) == 6 and fields[5] == "[heap]")
            if anonymous and fields[1].startswith("rw") and fields[1].endswith("p"):
                start, _, end = fields[0].partition("-")
                out.append((int(start, 16), int(end, 16)))
    return out


def _added(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The address ranges of ``after`` that no range of ``before`` covers (a new mapping, or the
    part by which the kernel grew a neighbouring one it merged it with), cut to whole huge pages."""
    out = []
    old = sorted(before)
    for start, end in after:
        pieces = [(start, end)]
        for s, e in old:
            if e <= start or s >= end:
                continue
            pieces = [p for a, b in pieces for p in ((a, min(b, s)), (max(a, e), b)) if p[0] < p[1]]
        for a, b in pieces:
            a = -(-a // HUGE) * HUGE
            b = b // HUGE * HUGE
            if b > a:
                out.append((a, b))
    return out


#: malloc's largest mmap threshold (glibc on 64-bit): an allocation at least this large is always a
#: mapping of its own; a smaller one may come from a heap the process's other allocations share
#: (its growth is never advised: a heap on huge pages that shrinks and grows again pays 2 MB zeroed
#: per fault)
OWN_MAPPING = 32 << 20


@contextlib.contextmanager
def huge_pages(
    ranges: list[tuple[int, int]] | None = None, min_bytes: int = OWN_MAPPING
) -> Iterator[list[tuple[int, int]]]:
    """Advise huge pages for the anonymous memory mapped inside the ``with`` block (a graph's
    ``init_index``: one allocation of its whole base layer, plus its visited list and locks);
    yields the list to which those ranges are added (``ranges``, or a new one). Only ranges of at
    least ``min_bytes`` (less the two huge pages the cut may take) are advised: a graph's base
    layer of :data:`OWN_MAPPING` or more is a mapping of its own; the growth of a heap other
    allocations share is left alone. Memory first touched after the advice (``add_items``) gets
    huge pages at once. Another thread's large mapping made meanwhile may be advised too: advice
    only, the data is never changed. Never raises for the advice (logged at debug level)."""
    got: list[tuple[int, int]] = [] if ranges is None else ranges
    if not sys.platform.startswith("linux"):
        yield got
        return
    try:
        before = _anonymous()
    except OSError:
        before = None
    yield got
    if before is None:
        return
    try:
        for start, end in _added(before, _anonymous()):
            if end - start >= min_bytes - 2 * HUGE and _madvise(start, end, MADV_HUGEPAGE):
                got.append((start, end))
    except (OSError, AttributeError, ValueError):  # no /proc, no madvise: 4 KB pages, as before
        logger.debug("huge pages not advised", exc_info=True)


def base_layer_bytes(n: int, dim: int, M: int) -> int:
    """The bytes of an hnswlib graph's base layer (float32 vectors of ``dim``, degree ``M``): one
    ``malloc`` of ``n`` elements of a vector, ``2 * M`` links and their count, and a label."""
    return n * (dim * 4 + 8 * M + 12)


def _thp_never() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
            return "[never]" in fh.read()
    except OSError:  # no sysfs entry: no transparent huge pages (madvise says so itself)
        return False


def collapse(ranges: list[tuple[int, int]]) -> int:
    """Move the memory of ``ranges`` (:func:`huge_pages`'s), already written on 4 KB pages, onto
    huge pages now (``MADV_COLLAPSE``, Linux 6.1 on: the kernel copies each 2 MB into one huge
    page; ctypes releases the GIL meanwhile); returns the bytes collapsed. 0 where huge pages are
    off (``never``: the administrator's choice is kept), the kernel lacks it or refuses (no huge
    page free): the memory stays as it was, advised. Never raises."""
    if not ranges or _thp_never():
        return 0
    done = 0
    for start, end in ranges:
        try:
            if _madvise(start, end, MADV_COLLAPSE):
                done += end - start
        except (OSError, AttributeError, ValueError):
            logger.debug("huge pages not collapsed", exc_info=True)
            break
    return done
