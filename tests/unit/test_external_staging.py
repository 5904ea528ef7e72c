"""Import of a plain float32 .npy through the staging folder (a kernel copy, mapped, moved into
the run), the layouts read the ordinary way, and the ids' fast path to Arrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recsys.errors import DataValidationError
from recsys.external import ImportVectorsError, import_vectors
from recsys.external.read import map_npy, npy_layout
from recsys.external.validate import _arrow_strings, _ascii_arrow_strings, match_ids
from recsys.registry import Registry
from tests.unit.test_external import DIM, items, root

_FIXTURES = (items, root)  # test_external's: the demo dataset stored, 300 of its ids and seeded vectors


def imp(root: Path, path: Path, ids: Path, name: str = "ext", **kw):
    return import_vectors("demo", name, path, ids=ids, evaluate=False, root=root, **kw)


def under_runs(root: Path) -> list[str]:
    runs = root / "runs"
    return sorted(p.name for p in runs.iterdir() if p.name != "active.json") if runs.exists() else []


def write_v2(path: Path, vec: np.ndarray) -> Path:
    """A plain float32 matrix with a version 2.0 header (np.save writes 1.0)."""
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, vec, version=(2, 0))
    return path


def test_plain_npy_files_are_stored_byte_for_byte_and_a_later_rewrite_does_not_reach_the_run(
    root, items, tmp_path
):
    ids, vec = items
    src, ids_src = write_v2(tmp_path / "v.npy", vec), write_v2(tmp_path / "ids.npy", ids)
    original, original_ids = src.read_bytes(), ids_src.read_bytes()
    run = imp(root, src, ids_src)["run"]
    folder = Registry(root).run_dir(run["run_id"])
    # the user's files themselves (np.save would write 1.0 headers)
    assert (folder / "vectors.npy").read_bytes() == original
    assert (folder / "item_ids.npy").read_bytes() == original_ids
    # the run holds copies, not links: rewriting the sources in place leaves the run alone
    for path, data in ((src, np.zeros(DIM * 10, np.float32)), (ids_src, np.array(["zzz"] * 10))):
        with open(path, "r+b") as fh:
            fh.seek(npy_layout(path, "vectors" if path == src else "ids")[0])
            fh.write(data.astype(np.load(path, mmap_mode="r").dtype).tobytes())
    assert src.read_bytes() != original and ids_src.read_bytes() != original_ids
    model = Registry(root).load_model(run["run_id"])
    np.testing.assert_array_equal(model.vectors_, vec)
    np.testing.assert_array_equal(model.item_ids_, ids)
    assert [p for p in under_runs(root) if p.startswith(".")] == []  # no staging left behind


@pytest.mark.parametrize("layout", ["float64", "fortran", "big-endian", "trailing-bytes", "v2"])
def test_every_npy_layout_imports_the_same_run_and_report(root, items, tmp_path, layout):
    """The mapped path (plain float32, v1 or v2 header) and np.load's (anything else) agree."""
    ids, vec = items
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "plain.npy", vec)
    path = tmp_path / f"{layout}.npy"
    if layout == "float64":
        np.save(path, vec.astype(np.float64))
    elif layout == "fortran":
        np.save(path, np.asfortranarray(vec))
    elif layout == "big-endian":
        np.save(path, vec.astype(">f4"))
    elif layout == "trailing-bytes":
        path.write_bytes((tmp_path / "plain.npy").read_bytes() + b"\0" * 8)
    else:
        write_v2(path, vec)
        write_v2(tmp_path / "ids.npy", ids)  # mapped too
    assert (npy_layout(path) is not None) == (layout == "v2")
    a = imp(root, tmp_path / "plain.npy", tmp_path / "ids.npy")
    b = imp(root, path, tmp_path / "ids.npy", name=f"ext {layout}")  # one name twice is warned of
    ra, rb = dict(a["report"]), dict(b["report"])
    assert ra.pop("file") == "plain.npy" and rb.pop("file") == path.name
    assert ra == rb
    for out in (a, b):
        model = Registry(root).load_model(out["run"]["run_id"])
        np.testing.assert_array_equal(model.vectors_, vec)
        assert model.vectors_.dtype == np.float32
    assert a["run"]["provenance"]["vectors_sha256"] == b["run"]["provenance"]["vectors_sha256"]


def test_a_truncated_or_failing_plain_npy_stores_nothing(root, items, tmp_path):
    ids, vec = items
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "v.npy", vec)
    full = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(full[:-100])
    with pytest.raises(DataValidationError, match="truncated"):
        imp(root, tmp_path / "cut.npy", tmp_path / "ids.npy")
    assert under_runs(root) == []
    bad = vec.copy()
    bad[5] = np.inf
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ImportVectorsError, match="NaN or inf"):
        imp(root, tmp_path / "nan.npy", tmp_path / "ids.npy")
    assert under_runs(root) == []


def test_mapped_vectors_are_read_only(tmp_path):
    vec = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "v.npy", vec)
    mapped = map_npy(tmp_path / "v.npy")
    np.testing.assert_array_equal(mapped, vec)
    with pytest.raises(ValueError, match="read-only"):
        mapped[0, 0] = 1.0
    np.save(tmp_path / "one.npy", vec[0])  # 1-D: not a matrix
    assert map_npy(tmp_path / "one.npy") is None


@pytest.mark.parametrize(
    "values",
    [
        ["sku1", "a b ", "", "x\x00y", "\x00lead", "0042", "last  "],
        ["ascii", "café", "名前"],  # not ASCII: the Python-object path
        [str(i) for i in range(1000)],
    ],
)
def test_ids_reach_arrow_unchanged_and_match_the_catalogue(values):
    ids = np.array(values)
    got = _arrow_strings(ids)
    assert got.to_pylist() == list(values)
    ascii_only = all(v.isascii() for v in values)
    assert (_ascii_arrow_strings(ids) is not None) == ascii_only
    catalog = pa.array(list(reversed(values)), type=pa.string())
    dup, pos = match_ids(ids, catalog)
    assert not dup.any()
    assert [catalog[int(p)].as_py() for p in pos] == list(values)


def test_labels_read_from_the_file_are_hnswlibs_in_both_file_kinds(tmp_path):
    """file_labels reads the level-0 records; hnswlib's own get_ids_list is the reference, for a
    raw save_index file (labels shuffled, added by 2 threads: records not in label order) and a
    RecSys Lab index.bin (the payload after its header)."""
    import hnswlib

    from recsys.external.index_check import file_labels, read_hnswlib_header
    from recsys.index import HnswIndex

    vec = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    labels = np.random.default_rng(1).permutation(500)
    raw = hnswlib.Index(space="cosine", dim=8)
    raw.init_index(max_elements=500, M=8, ef_construction=50, random_seed=1)
    raw.add_items(vec, labels, num_threads=2)
    raw.save_index(str(tmp_path / "raw.bin"))
    ours = HnswIndex.build(vec, space="cosine").save(tmp_path / "ours.bin")
    for path, expected in ((tmp_path / "raw.bin", raw.get_ids_list()), (ours, range(500))):
        got = file_labels(path, read_hnswlib_header(path))
        assert got.dtype == np.int64 and sorted(got.tolist()) == sorted(expected)
    # a truncated file has no labels to read (the check then rebuilds)
    cut = tmp_path / "cut.bin"
    cut.write_bytes((tmp_path / "raw.bin").read_bytes()[:4000])
    assert len(file_labels(cut, {"payload_offset": 0})) == 0


def test_a_preloaded_index_of_another_dimension_is_not_used(items, tmp_path):
    """The importer starts hnswlib's load from the header it read first; when the file has
    another dimension by the time the check runs (rewritten), the load is not used."""
    from concurrent.futures import Future

    from recsys.external.index_check import check_index, load_raw_index, read_hnswlib_header
    from tests.unit.test_external import hnsw_file

    ids, vec = items
    other = hnsw_file(tmp_path / "other.bin", vec[:, :8])
    preloaded: Future = Future()
    preloaded.set_result(load_raw_index(other, read_hnswlib_header(other), "cosine"))
    good = hnsw_file(tmp_path / "good.bin", vec)
    index, info = check_index(good, vec, "cosine", preloaded=preloaded)
    assert index is None and info["status"] == "rebuild" and "changed while it was imported" in info["reason"]
    fresh: Future = Future()
    fresh.set_result(load_raw_index(good, read_hnswlib_header(good), "cosine"))
    index, info = check_index(good, vec, "cosine", preloaded=fresh)
    assert index is not None and info["status"] == "used"
