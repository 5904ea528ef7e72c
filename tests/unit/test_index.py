"""HNSW index: build, query, exact search, and a file format that refuses bad files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from recsys.errors import IndexFileError
from recsys.index import HnswIndex, exact_search, vectors_checksum


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(10, 16))
    return (centers[rng.integers(0, 10, 500)] + 0.3 * rng.normal(size=(500, 16))).astype(np.float32)


@pytest.fixture(scope="module")
def index(data) -> HnswIndex:
    return HnswIndex.build(data, item_ids=[f"i{i}" for i in range(len(data))], ef=100, num_threads=1)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_knn_matches_exact_cosine(data, index):
    rows, sims = index.knn(data[:50], 10)
    ex_rows, ex_sims = exact_search(unit(data), unit(data[:50]), 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, ex_rows)])
    assert recall >= 0.99
    assert rows[:, 0].tolist() == list(range(50))  # each vector is its own nearest
    np.testing.assert_allclose(sims, ex_sims, atol=1e-4)
    assert rows.dtype == np.int64 and sims.dtype == np.float32


def test_inner_product_space_returns_dot_products(data):
    idx = HnswIndex.build(data, space="ip", ef=200, num_threads=1)
    rows, sims = idx.knn(data[:3], 5)
    np.testing.assert_allclose(
        sims, np.take_along_axis(data[:3] @ data.T, rows, axis=1), rtol=1e-4, atol=1e-3
    )
    ex_rows, _ = exact_search(data, data[:3], 5)
    assert all(len(set(a) & set(b)) >= 4 for a, b in zip(rows, ex_rows))


def test_k_larger_than_index_pads(data):
    idx = HnswIndex.build(data[:4], num_threads=1)
    rows, sims = idx.knn(data[:2], 7)
    assert (rows[:, :4] >= 0).all() and (rows[:, 4:] == -1).all()
    assert np.isneginf(sims[:, 4:]).all()


def test_filter_with_fewer_allowed_than_k_never_raises(data, index):
    allowed = np.zeros(len(data), dtype=bool)
    allowed[[3, 77, 402]] = True
    rows, sims = index.knn(data[:5], 10, filter_rows=allowed)
    for r in rows:
        got = set(r[r >= 0].tolist())
        assert got <= {3, 77, 402} and len(got) == 3
    rows2, _ = index.knn(data[:1], 10, filter_rows=np.array([9, 11]))
    assert set(rows2[0][rows2[0] >= 0].tolist()) == {9, 11}
    none, _ = index.knn(data[:1], 3, filter_rows=np.zeros(len(data), dtype=bool))
    assert (none == -1).all()


def test_knn_rows_single_query_fast_path(data, index):
    rows, _ = index.knn(data[7], 12)
    fast = index.knn_rows(data[7], 12)
    assert fast.tolist() == rows[0].tolist()  # same beam search, same order
    assert fast[0] == 7
    small = HnswIndex.build(data[:5], num_threads=1)
    assert sorted(small.knn_rows(data[0].astype(np.float64), 50).tolist()) == [0, 1, 2, 3, 4]  # k clipped
    with pytest.raises(ValueError, match="dimension 3"):
        index.knn_rows(np.ones(3, dtype=np.float32), 5)


def test_exact_search_with_allowed_rows_and_padding():
    items = unit(np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32))
    rows, sims = exact_search(items, np.array([1, 0], dtype=np.float32), 3, allowed_rows=np.array([3, 2]))
    assert rows.tolist() == [[2, 3, -1]]
    np.testing.assert_allclose(sims[0, :2], [0.0, -1.0], atol=1e-6)
    assert np.isneginf(sims[0, 2])
    mask = np.array([True, True, False, False])
    rows, _ = exact_search(items, items[:1], 1, allowed_rows=mask)
    assert rows.tolist() == [[0]]


def test_save_load_round_trip(tmp_path, data, index):
    path = index.save(tmp_path / "index.bin")
    assert [p.name for p in tmp_path.iterdir()] == ["index.bin"]  # no temporary files left
    loaded = HnswIndex.load(
        path, expected_dim=16, expected_count=500, vectors_checksum=vectors_checksum(data)
    )
    assert (loaded.dim, loaded.count, loaded.space, loaded.M, loaded.ef) == (16, 500, "cosine", 16, 100)
    a, _ = index.knn(data[:20], 5)
    b, _ = loaded.knn(data[:20], 5)
    assert (a == b).all()
    head = HnswIndex.read_header(path)
    assert head["vectors_sha256"] == vectors_checksum(data)


@pytest.fixture
def saved(tmp_path, index) -> Path:
    return index.save(tmp_path / "index.bin")


def test_truncated_file_is_refused(saved):
    raw = saved.read_bytes()
    for cut in (5, 20, len(raw) // 2, len(raw) - 1):
        saved.write_bytes(raw[:cut])
        with pytest.raises(IndexFileError, match="truncated"):
            HnswIndex.load(saved)


def test_corrupted_payload_is_refused(saved):
    raw = bytearray(saved.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    saved.write_bytes(bytes(raw))
    with pytest.raises(IndexFileError, match="corrupted"):
        HnswIndex.load(saved)


def test_corrupted_header_and_bad_magic_are_refused(saved):
    raw = saved.read_bytes()
    magic, hlen = struct.unpack("<8sI", raw[:12])
    saved.write_bytes(raw[:12] + b"{" * hlen + raw[12 + hlen :])
    with pytest.raises(IndexFileError, match="corrupted"):
        HnswIndex.load(saved)
    saved.write_bytes(b"XXXXXXXX" + raw[8:])
    with pytest.raises(IndexFileError, match="not a RecSys Lab index"):
        HnswIndex.load(saved)
    saved.write_bytes(raw + b"junk")
    with pytest.raises(IndexFileError, match="trailing"):
        HnswIndex.load(saved)


def test_header_lying_about_count_is_refused(saved):
    raw = saved.read_bytes()
    _, hlen = struct.unpack("<8sI", raw[:12])
    head = json.loads(raw[12 : 12 + hlen])
    head["format_version"] = 99
    new = json.dumps(head).encode()
    saved.write_bytes(raw[:8] + struct.pack("<I", len(new)) + new + raw[12 + hlen :])
    with pytest.raises(IndexFileError, match="format version 99"):
        HnswIndex.load(saved)


def test_mismatched_run_is_refused(saved, data):
    with pytest.raises(IndexFileError, match="dimension 16"):
        HnswIndex.load(saved, expected_dim=32)
    with pytest.raises(IndexFileError, match="holds 500 items"):
        HnswIndex.load(saved, expected_count=499)
    with pytest.raises(IndexFileError, match="other vectors"):
        HnswIndex.load(saved, vectors_checksum=vectors_checksum(data + 1))


def test_missing_file_and_raw_hnswlib_file_are_refused(tmp_path, index):
    with pytest.raises(IndexFileError, match="does not exist"):
        HnswIndex.load(tmp_path / "nope.bin")
    raw = tmp_path / "raw.bin"
    index._index.save_index(str(raw))
    with pytest.raises(IndexFileError):
        HnswIndex.load(raw)


def test_build_rejects_bad_input(data):
    with pytest.raises(ValueError, match="NaN"):
        HnswIndex.build(np.array([[1.0, np.nan]], dtype=np.float32))
    with pytest.raises(ValueError, match="space"):
        HnswIndex.build(data, space="l2")
    with pytest.raises(ValueError, match="item_ids"):
        HnswIndex.build(data, item_ids=["a"])


def test_knn_one_returns_rows_and_cosine_distances_best_first():
    rng = np.random.default_rng(7)
    vec = rng.normal(size=(300, 8)).astype(np.float32)
    index = HnswIndex.build(vec, M=16, ef_construction=200, ef=128, num_threads=1)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    rows, dist = index.knn_one(np.ascontiguousarray(unit[5][None, :]), 20)
    assert rows.shape == dist.shape == (20,)
    assert int(rows[0]) == 5
    assert np.all(np.diff(dist) >= 0)
    np.testing.assert_allclose(1.0 - dist, unit[rows.astype(np.int64)] @ unit[5], atol=1e-5)
    exact = np.argsort(-(unit @ unit[5]))[:20]
    assert len(set(exact.tolist()) & set(rows.tolist())) >= 19
