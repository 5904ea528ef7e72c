"""HNSW graphs on transparent huge pages (:mod:`recsys.hugepages`): the searcher's idle walk reads
one byte per 2 MB, which on a graph's 4 KB pages reaches one page of 512 (issue 18, s41-c)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from recsys import hugepages
from recsys.hugepages import _added, huge_pages

MB = 1 << 20


def test_the_ranges_a_call_mapped_are_cut_to_whole_huge_pages():
    before = [(0, 10 * MB), (40 * MB, 44 * MB)]
    after = [(0, 15 * MB), (20 * MB, 23 * MB + 4096), (30 * MB + 4096, 31 * MB), (40 * MB, 44 * MB)]
    # grown by the kernel's merge: its new part; a new mapping: its whole huge pages; under one
    # huge page or unchanged: nothing
    assert _added(before, after) == [(10 * MB, 14 * MB), (20 * MB, 22 * MB)]
    assert _added([(2 * MB, 6 * MB)], [(0, 8 * MB)]) == [(0, 2 * MB), (6 * MB, 8 * MB)]


def _huge_bytes(ranges: list[tuple[int, int]]) -> int:
    """AnonHugePages of the mappings that hold ``ranges`` (``/proc/self/smaps``)."""
    total, hold = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(x, 16) for x in head.split("-"))
                hold = any(s < end and e > start for s, e in ranges)
            elif hold and head == "AnonHugePages:":
                total += int(line.split()[1]) * 1024
    return total


def _thp_off() -> bool:
    try:
        return "[never]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux") or _thp_off(), reason="no transparent huge pages")
def test_the_main_index_lies_on_huge_pages_built_and_loaded_with_the_same_lists(tmp_path, monkeypatch):
    """:meth:`HnswIndex.build` maps its graph under :func:`huge_pages` (``add_items`` writes it onto
    them) and :meth:`HnswIndex.load` collapses what ``load_index`` wrote on 4 KB pages; where huge
    pages are ``never``, a loaded graph is left as hnswlib wrote it, and the lists are the same in
    all three (issue 18, s42-h)."""
    from recsys.index import HnswIndex

    # a base layer of about 38 MB (8 KB a vector): over malloc's largest mmap threshold (32 MB),
    # so that it is mapped by the call, as a 100k-item graph's (40 MB) or a 1M-item one's (400 MB)
    rng = np.random.default_rng(3)
    vec = rng.random((4_600, 2048), dtype=np.float32) - 0.5
    built = HnswIndex.build(vec, M=2, ef_construction=8, ef=16, num_threads=1)
    assert sum(e - s for s, e in built.huge_ranges) >= 32 * MB  # the base layer's whole huge pages
    assert _huge_bytes(built.huge_ranges) >= 32 * MB  # written onto huge pages
    path = built.save(tmp_path / "index.bin")
    loaded = HnswIndex.load(path)
    assert _huge_bytes(loaded.huge_ranges) >= 32 * MB  # collapsed
    monkeypatch.setattr(hugepages, "_thp_never", lambda: True)
    untouched = HnswIndex.load(path)  # hnswlib's own load_index, on its 4 KB pages
    assert _huge_bytes(untouched.huge_ranges) == 0
    want = untouched.knn(vec[:200], 10)[0]
    for index in (built, loaded):
        assert (index.knn(vec[:200], 10)[0] == want).all()


def test_a_set_graph_is_built_under_the_advice_when_its_base_layer_is_a_mapping_of_its_own(monkeypatch):
    """The searcher's background graphs (:meth:`StaticSet.build_sub`) map their memory inside
    :func:`huge_pages` (the advice itself: the test above) when their base layer is at least
    :data:`OWN_MAPPING` (at 1M a 10% block's 40 MB); a smaller one may share a heap: not advised."""
    from recsys.search import batch

    entered: list[int] = []
    real = batch.huge_pages

    def recording(*args, **kwargs):
        entered.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "huge_pages", recording)
    rng = np.random.default_rng(4)
    unit = rng.normal(size=(600, 8)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    mask = np.arange(600) % 2 == 0
    for own_mapping, want in ((batch.OWN_MAPPING, []), (300 * (8 * 4 + 8 * 8 + 12), [1])):
        monkeypatch.setattr(batch, "OWN_MAPPING", own_mapping)  # the second: this set's size
        ss = batch.StaticSet(mask, np.arange(600), np.arange(600), unit)
        ss.build_sub("cosine", M=8, ef_construction=32, ef=16, dense=unit[mask])
        assert ss.sub is not None and entered == want


def test_nothing_is_advised_where_proc_is_missing(monkeypatch):
    def missing() -> list:
        raise OSError("no /proc")

    monkeypatch.setattr(hugepages, "_anonymous", missing)
    with huge_pages() as ranges:
        np.ones(4 * MB, dtype=np.uint8)
    assert ranges == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="no /proc/self/maps")
def test_only_mappings_of_the_size_asked_are_advised():
    import mmap

    def mapped() -> mmap.mmap:
        # a private anonymous mapping of its own, whatever malloc's state: an 8 MB NumPy array may
        # come from memory the process freed (glibc raises its mmap threshold as big blocks are
        # freed: CI's long process mapped nothing new), and nothing new is nothing to advise
        m = mmap.mmap(-1, 8 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.write(b"\1" * (8 * MB))
        return m

    with huge_pages() as small:  # 8 MB: under OWN_MAPPING, as the growth of a shared heap
        a = mapped()
    with huge_pages(min_bytes=8 * MB) as asked:
        b = mapped()
    assert small == [] and sum(e - s for s, e in asked) >= 6 * MB
    assert a[:] == b[:] == b"\1" * (8 * MB)
    a.close()
    b.close()
