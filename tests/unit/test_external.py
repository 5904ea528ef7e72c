"""Bring your own vectors: every import format, the malformed cases, index checks, export round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import save_dataset
from recsys.errors import DataValidationError
from recsys.external import ImportVectorsError, export_run, import_vectors, read_vectors
from recsys.registry import Registry

DIM = 16


@pytest.fixture
def root(tmp_data_dir, demo_small):
    save_dataset(demo_small, tmp_data_dir)
    return tmp_data_dir


@pytest.fixture
def items(demo_small):
    """300 catalogue ids and seeded vectors for them."""
    ids = demo_small.catalog["item_id"].astype(str).to_numpy(dtype=str)[:300]
    vec = np.random.default_rng(7).normal(size=(len(ids), DIM)).astype(np.float32)
    return ids, vec


def stored_runs(root: Path) -> list[str]:
    """Everything under runs/ (hidden temporary folders included)."""
    runs = root / "runs"
    return sorted(p.name for p in runs.iterdir() if p.name != "active.json") if runs.exists() else []


def exact_top(ids: np.ndarray, vec: np.ndarray, seed: str, k: int, metric: str = "cosine") -> list[str]:
    v = vec / np.linalg.norm(vec, axis=1, keepdims=True) if metric == "cosine" else vec
    row = int(np.flatnonzero(ids == seed)[0])
    s = v @ v[row]
    s[row] = -np.inf
    return [str(ids[i]) for i in np.argsort(-s, kind="stable")[:k]]


def run_arrays(root: Path, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    model = Registry(root).load_model(run_id)
    return np.asarray(model.item_ids_, dtype=str), np.asarray(model.vectors_)


def imp(root, path, **kw):
    kw.setdefault("evaluate", False)
    return import_vectors("demo", kw.pop("name", "ext"), path, root=root, **kw)


# -- every format --------------------------------------------------------------------------
def write_npy(tmp_path, ids, vec, ids_as="npy"):
    np.save(tmp_path / "v.npy", vec)
    if ids_as == "npy":
        np.save(tmp_path / "ids.npy", ids)
        return tmp_path / "v.npy", tmp_path / "ids.npy"
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    return tmp_path / "v.npy", tmp_path / "ids.txt"


@pytest.mark.parametrize("ids_as", ["npy", "txt"])
def test_npy_import_is_an_ordinary_searchable_run(root, items, tmp_path, ids_as):
    from recsys.search import similar_items

    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec, ids_as)
    out = imp(root, vpath, ids=ipath, name="my clip vectors")
    run = out["run"]
    assert run["family"] == "external" and run["label"] == "my clip vectors" and run["is_embedding"]
    prov = run["provenance"]
    assert prov["format"] == "npy" and prov["files"]["vectors"]["name"] == "v.npy"
    assert prov["files"]["ids"]["name"] == ipath.name and prov["metric"] == "cosine"
    rep = out["report"]
    assert (rep["rows"], rep["dimension"], rep["rows_kept"]) == (300, DIM, 300)
    assert rep["catalog_items_without_vector"] == {
        "count": 700,
        "of": 1000,
        "examples": rep["catalog_items_without_vector"]["examples"],
    }
    assert run["coverage"]["items_with_vector"] == 300
    got_ids, got_vec = run_arrays(root, run["run_id"])
    assert got_ids.tolist() == ids.tolist() and np.array_equal(got_vec, vec)
    assert (root / "runs" / run["run_id"] / "index.bin").exists()
    res = similar_items(Registry(root), run["run_id"], ids[3], None, 10)
    assert list(res.item_ids) == exact_top(ids, vec, ids[3], 10)


def test_a_second_import_under_a_name_already_taken_says_so(root, items, tmp_path):
    """The walk imported 'ui-w2vtxt' twice: two runs one name apart from nothing, in every picker."""
    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    first = imp(root, vpath, ids=ipath, name="team w2v")
    assert not [w for w in first["report"]["warnings"] if "already named" in w]
    second = imp(root, vpath, ids=ipath, name="team w2v")
    assert (
        f"another run of dataset 'demo' is already named 'team w2v' ({first['run']['run_id']}): both are kept"
        in second["report"]["warnings"][-1]
    )


def test_integer_ids_in_npy_match_the_catalogue(tmp_data_dir, demo_small, tmp_path):
    ds = demo_small
    cat = ds.catalog.copy()
    mapping = {old: str(1000 + n) for n, old in enumerate(cat["item_id"])}
    cat["item_id"] = cat["item_id"].map(mapping)
    inter = ds.interactions.copy()
    inter["item_id"] = inter["item_id"].map(mapping)
    save_dataset(type(ds)(name="demo", catalog=cat, interactions=inter, kind=ds.kind), tmp_data_dir)
    vec = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.save(tmp_path / "v.npy", vec)
    np.save(tmp_path / "ids.npy", np.arange(1000, 1050, dtype=np.int64))
    out = imp(tmp_data_dir, tmp_path / "v.npy", ids=tmp_path / "ids.npy")
    assert out["report"]["unknown_ids"]["count"] == 0 and out["report"]["rows_kept"] == 50


def test_parquet_list_column_and_numeric_columns(root, items, tmp_path):
    ids, vec = items
    pd.DataFrame({"item_id": ids, "emb": list(vec)}).to_parquet(tmp_path / "list.parquet")
    wide = pd.DataFrame(vec, columns=[f"d{i}" for i in range(DIM)])
    wide.insert(0, "item_id", ids)
    wide.to_parquet(tmp_path / "wide.parquet")
    for f in ("list.parquet", "wide.parquet"):
        run = imp(root, tmp_path / f)["run"]
        got_ids, got_vec = run_arrays(root, run["run_id"])
        assert got_ids.tolist() == ids.tolist() and np.array_equal(got_vec, vec), f


def test_csv_list_column_and_numeric_columns_keep_leading_zeros(root, items, tmp_path):
    ids, vec = items
    rows = ["item_id,vector"] + [f'{i},"[{", ".join(repr(float(x)) for x in v)}]"' for i, v in zip(ids, vec)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    wide = pd.DataFrame(vec.astype(np.float64), columns=[f"d{i}" for i in range(DIM)])
    wide.insert(0, "item_id", ids)
    wide.to_csv(tmp_path / "wide.csv", index=False, float_format="%.9g")
    for f in ("list.csv", "wide.csv"):
        run = imp(root, tmp_path / f)["run"]
        got_ids, got_vec = run_arrays(root, run["run_id"])
        assert got_ids.tolist() == ids.tolist(), f
        np.testing.assert_array_equal(got_vec, vec)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_text_and_binary_from_gensim(root, items, tmp_path, binary):
    from gensim.models import KeyedVectors

    ids, vec = items
    kv = KeyedVectors(DIM)
    kv.add_vectors(list(ids), vec)
    path = tmp_path / ("w.bin" if binary else "w.txt")
    kv.save_word2vec_format(str(path), binary=binary)
    run = imp(root, path)["run"]
    assert run["provenance"]["format"] == ("word2vec-binary" if binary else "word2vec")
    got_ids, got_vec = run_arrays(root, run["run_id"])
    assert got_ids.tolist() == ids.tolist()
    np.testing.assert_allclose(got_vec, vec, rtol=1e-6)


def test_projector_tsv_with_metadata_and_with_a_plain_id_list(root, items, tmp_path):
    ids, vec = items
    (tmp_path / "vectors.tsv").write_text("\n".join("\t".join(f"{x:.9g}" for x in v) for v in vec) + "\n")
    (tmp_path / "metadata.tsv").write_text(
        "title\titem_id\n" + "".join(f"t {n}\t{i}\n" for n, i in enumerate(ids))
    )
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    for meta in ("metadata.tsv", "ids.txt"):
        run = imp(root, tmp_path / "vectors.tsv", ids=tmp_path / meta)["run"]
        got_ids, got_vec = run_arrays(root, run["run_id"])
        assert got_ids.tolist() == ids.tolist() and np.array_equal(got_vec, vec), meta


# -- malformed input: a clear error and nothing stored ----------------------------------------
def refused(root, path, match, **kw):
    with pytest.raises(DataValidationError, match=match) as info:
        imp(root, path, **kw)
    assert stored_runs(root) == [], "a failed import must store nothing"
    return info.value


def test_wrong_dimension_in_each_text_format(root, items, tmp_path):
    ids, vec = items
    rows = ["item_id,vector"] + [
        f'{i},"{" ".join(map(str, v[: DIM - (n == 7)]))}"' for n, (i, v) in enumerate(zip(ids, vec))
    ]
    (tmp_path / "bad.csv").write_text("\n".join(rows))
    err = refused(root, tmp_path / "bad.csv", "wrong dimension")
    assert err.row == 8 and err.column == "vector" and "bad.csv" in str(err)

    lines = ["\t".join(map(str, v)) for v in vec]
    lines[4] = "\t".join(map(str, vec[4][:-2]))
    (tmp_path / "vectors.tsv").write_text("\n".join(lines))
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    assert refused(root, tmp_path / "vectors.tsv", "wrong dimension", ids=tmp_path / "ids.txt").row == 5

    text = [f"{len(ids)} {DIM}"] + [f"{i} " + " ".join(map(str, v)) for i, v in zip(ids, vec)]
    text[10] = text[10].rsplit(" ", 1)[0]
    (tmp_path / "w.txt").write_text("\n".join(text) + "\n")
    refused(root, tmp_path / "w.txt", "word2vec")

    lst = pd.DataFrame({"item_id": ids, "v": [v if n != 2 else v[:3] for n, v in enumerate(vec)]})
    lst.to_parquet(tmp_path / "bad.parquet")
    assert refused(root, tmp_path / "bad.parquet", "wrong dimension").row == 3


def test_ids_not_one_per_row(root, items, tmp_path):
    ids, vec = items
    np.save(tmp_path / "v.npy", vec)
    np.save(tmp_path / "ids.npy", ids[:-1])
    refused(root, tmp_path / "v.npy", "299 ids for 300 vector rows", ids=tmp_path / "ids.npy")
    # named as both places name it: the Data page has no '--ids', the CLI no 'Ids file' (s41-w)
    refused(
        root, tmp_path / "v.npy", "no ids: give the ids file \\('Ids file' on the Data page, --ids on the"
    )


def test_unknown_ids_are_left_out_and_reported_all_unknown_is_an_error(root, items, tmp_path):
    ids, vec = items
    mixed = ids.copy()
    mixed[[5, 9]] = ["nope-1", "nope-2"]
    vpath, ipath = write_npy(tmp_path, mixed, vec)
    out = imp(root, vpath, ids=ipath)
    rep = out["report"]
    assert rep["unknown_ids"] == {"count": 2, "examples": ["nope-1", "nope-2"]} and rep["rows_kept"] == 298
    assert any("unknown to the catalogue" in w for w in rep["warnings"])
    assert "nope-1" not in run_arrays(root, out["run"]["run_id"])[0].tolist()

    Registry(root).delete(out["run"]["run_id"])
    np.save(tmp_path / "ids.npy", np.array([f"x{i}" for i in range(300)]))
    refused(root, vpath, "none of the 300 ids is in the catalogue", ids=ipath)


def test_nan_rows_fail_unless_dropped_zero_rows_are_left_out(root, items, tmp_path):
    ids, vec = items
    vec = vec.copy()
    vec[4, 2] = np.nan
    vec[8] = np.inf
    vec[11] = 0
    vec[20] = 1e30  # finite, though its squared norm overflows: kept
    vpath, ipath = write_npy(tmp_path, ids, vec)
    err = refused(root, vpath, "2 vectors row.s. hold NaN or inf", ids=ipath)
    assert err.report["nan_rows"]["count"] == 2 and err.report["nan_rows"]["examples"][0].startswith("row 5")
    out = imp(root, vpath, ids=ipath, errors="drop")
    rep = out["report"]
    assert rep["rows_kept"] == 297 and rep["zero_rows"]["count"] == 1
    kept = run_arrays(root, out["run"]["run_id"])[0].tolist()
    assert ids[4] not in kept and ids[8] not in kept and ids[11] not in kept and ids[12] in kept
    assert ids[20] in kept


def test_duplicate_ids_fail_unless_dropped(root, items, tmp_path):
    ids, vec = items
    dup = ids.copy()
    dup[20] = dup[10]
    vpath, ipath = write_npy(tmp_path, dup, vec)
    err = refused(root, vpath, "duplicate id", ids=ipath)
    # said in the words of the CLI and the Data page, not the Python keyword 'errors=drop' (s41-w)
    assert "import with --errors drop (on the Data page: 'NaN rows, duplicates: drop')" in str(err)
    assert err.report["duplicate_ids"] == {"count": 1, "examples": [str(ids[10])]}
    out = imp(root, vpath, ids=ipath, errors="drop")
    got_ids, got_vec = run_arrays(root, out["run"]["run_id"])
    assert got_ids.tolist().count(ids[10]) == 1
    np.testing.assert_array_equal(got_vec[10], vec[10])  # the first one kept


def test_truncated_binary_files(root, items, tmp_path):
    from gensim.models import KeyedVectors

    ids, vec = items
    kv = KeyedVectors(DIM)
    kv.add_vectors(list(ids), vec)
    kv.save_word2vec_format(str(tmp_path / "full.bin"), binary=True)
    data = (tmp_path / "full.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) * 2 // 3])
    refused(root, tmp_path / "cut.bin", "truncated")

    np.save(tmp_path / "full.npy", vec)
    np.save(tmp_path / "ids.npy", ids)
    raw = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) // 2])
    refused(root, tmp_path / "cut.npy", "truncated", ids=tmp_path / "ids.npy")


def test_unknown_extension_and_missing_item_id_column(root, items, tmp_path):
    ids, vec = items
    (tmp_path / "v.dat").write_text("x")
    refused(root, tmp_path / "v.dat", "cannot tell the format")
    pd.DataFrame({"sku": ids, "v": list(vec)}).to_parquet(tmp_path / "v.parquet")
    refused(root, tmp_path / "v.parquet", "no 'item_id' column .columns found: sku, v")


# -- an hnswlib index built elsewhere --------------------------------------------------------
def hnsw_file(path, vec, space="cosine", dim=None, labels=None, M=12):
    import hnswlib

    index = hnswlib.Index(space=space, dim=dim or vec.shape[1])
    index.init_index(max_elements=len(vec), M=M, ef_construction=100, random_seed=1)
    index.add_items(vec, np.arange(len(vec)) if labels is None else labels)
    index.save_index(str(path))
    return path


def test_a_matching_index_is_used_as_is(root, items, tmp_path, caplog):
    from recsys.index import HnswIndex
    from recsys.search import clear_searcher_cache, get_searcher

    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    out = imp(root, vpath, ids=ipath, index=hnsw_file(tmp_path / "i.bin", vec))
    info = out["report"]["index"]
    assert (
        info["status"] == "used" and info["dim"] == DIM and info["count"] == 300 and info["recall@10"] >= 0.9
    )
    run = out["run"]
    assert run["artifacts"]["index"]["source"] == "imported"
    stored = root / "runs" / run["run_id"] / "index.bin"
    loaded = HnswIndex.load(stored, expected_dim=DIM, expected_count=300)
    assert (loaded.M, loaded.space) == (12, "cosine")
    clear_searcher_cache()
    with caplog.at_level("WARNING"):
        searcher = get_searcher(Registry(root), run["run_id"])
    assert searcher._index is not None and not [r for r in caplog.records if "fresh index" in r.message]


def test_an_imported_index_is_stored_byte_for_byte_and_damage_is_caught_on_load(root, items, tmp_path):
    """The index file is copied (and hashed) beside the check: the run's index.bin holds the
    exact bytes hnswlib wrote, under a header whose checksum is theirs; one flipped byte in the
    stored file is refused on load; no staging folder is left under runs/."""
    import hashlib

    from recsys.errors import IndexFileError
    from recsys.index import HnswIndex

    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    source = hnsw_file(tmp_path / "i.bin", vec).read_bytes()
    run = imp(root, vpath, ids=ipath, index=tmp_path / "i.bin")["run"]
    assert stored_runs(root) == [run["run_id"]]
    stored = root / "runs" / run["run_id"] / "index.bin"
    head = HnswIndex.read_header(stored)
    data = stored.read_bytes()
    assert data[head["_payload_offset"] :] == source
    assert head["payload_sha256"] == hashlib.sha256(source).hexdigest()
    HnswIndex.load(stored, expected_dim=DIM, expected_count=300)  # loads as saved
    damaged = bytearray(data)
    damaged[head["_payload_offset"] + len(source) // 2] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    with pytest.raises(IndexFileError, match="payload checksum mismatch"):
        HnswIndex.load(stored, expected_dim=DIM, expected_count=300)


def test_an_index_file_rewritten_during_the_import_is_refused_and_nothing_is_stored(root, items, tmp_path):
    """The copy is taken from the file as it was when the import started; when the file is
    rewritten before the check loads it (here: the same vectors with another M, so the check
    alone would pass), what the check saw is not what would be stored: refused."""
    import os
    import time

    from recsys.errors import IndexFileError

    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    f = hnsw_file(tmp_path / "i.bin", vec)

    def progress(done, total, message):
        if message.startswith("reading"):  # the copy has begun: the file's state is taken
            deadline = time.monotonic() + 30
            while not list((root / "runs").glob(".import-*/*")):
                assert time.monotonic() < deadline, "the index file was never staged"
                time.sleep(0.01)
        elif message.startswith("checking the index"):
            hnsw_file(f, vec, M=6)
            st = f.stat()
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    with pytest.raises(IndexFileError, match="changed while it was imported"):
        imp(root, vpath, ids=ipath, index=f, progress=progress)
    assert stored_runs(root) == []


def test_a_failed_import_with_an_index_leaves_nothing_under_runs(root, items, tmp_path):
    ids, vec = items
    vec = vec.copy()
    vec[3] = np.nan
    vpath, ipath = write_npy(tmp_path, ids, vec)
    with pytest.raises(ImportVectorsError, match="NaN"):
        imp(root, vpath, ids=ipath, index=hnsw_file(tmp_path / "i.bin", vec))
    assert stored_runs(root) == []


@pytest.mark.parametrize(
    "case,match",
    [
        ("dimension", "dimension 8, the vectors have 16"),
        ("count", "holds 299 items"),
        ("space", "built in the ip"),
        ("vectors", "vectors differ"),
        ("labels", "labels are not the row numbers"),
        ("garbage", "not an hnswlib index"),
    ],
)
def test_a_mismatched_index_is_rebuilt_with_a_warning(root, items, tmp_path, case, match):
    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    f = tmp_path / "i.bin"
    if case == "dimension":
        hnsw_file(f, vec[:, :8])
    elif case == "count":
        hnsw_file(f, vec[:-1])
    elif case == "space":
        hnsw_file(f, vec, space="ip")
    elif case == "vectors":
        hnsw_file(f, vec[::-1].copy())
    elif case == "labels":
        hnsw_file(f, vec, labels=np.arange(300) + 1000)
    else:
        f.write_bytes(b"\x07" * 500)
    out = imp(root, vpath, ids=ipath, index=f)
    info = out["report"]["index"]
    assert info["status"] == "rebuild" and match in info["reason"], info
    assert any("not used" in w and "rebuilt" in w for w in out["report"]["warnings"])
    assert out["run"]["artifacts"]["index"]["source"] == "built"
    from recsys.search import similar_items

    res = similar_items(Registry(root), out["run"]["run_id"], ids[0], None, 5)
    assert list(res.item_ids) == exact_top(ids, vec, ids[0], 5)


def test_an_ip_index_for_an_ip_import_and_ip_ranking(root, items, tmp_path):
    from recsys.search import similar_items

    ids, vec = items
    vec = vec * np.linspace(0.5, 3, len(vec), dtype=np.float32)[:, None]  # norms matter in ip
    vpath, ipath = write_npy(tmp_path, ids, vec)
    out = imp(root, vpath, ids=ipath, index=hnsw_file(tmp_path / "i.bin", vec, space="ip"), metric="ip")
    assert out["report"]["index"]["status"] == "used"
    run_id = out["run"]["run_id"]
    model = Registry(root).load_model(run_id)
    top, _ = model.similar([ids[2]], 10)
    assert top[0].tolist() == exact_top(ids, vec, ids[2], 10, metric="ip")
    assert top[0].tolist() != exact_top(ids, vec, ids[2], 10, metric="cosine")
    res = similar_items(Registry(root), run_id, ids[2], None, 10)
    assert list(res.item_ids) == exact_top(ids, vec, ids[2], 10, metric="ip")


# -- a second (query) space ----------------------------------------------------------------
def test_query_vectors_are_matched_by_id_and_must_share_the_dimension(root, items, tmp_path):
    ids, vec = items
    q = np.random.default_rng(3).normal(size=vec.shape).astype(np.float32)
    vpath, ipath = write_npy(tmp_path, ids, vec)
    order = np.random.default_rng(4).permutation(len(ids))
    np.save(tmp_path / "q.npy", q[order])
    np.save(tmp_path / "qids.npy", ids[order])
    out = imp(root, vpath, ids=ipath, query_vectors=tmp_path / "q.npy", query_ids=tmp_path / "qids.npy")
    model = Registry(root).load_model(out["run"]["run_id"])
    np.testing.assert_array_equal(model.query_vectors_, q)
    top, _ = model.similar([ids[0]], 5)
    qu = q[0] / np.linalg.norm(q[0])
    s = (vec / np.linalg.norm(vec, axis=1, keepdims=True)) @ qu
    s[0] = -np.inf
    assert top[0].tolist() == [str(ids[i]) for i in np.argsort(-s)[:5]]

    Registry(root).delete(out["run"]["run_id"])
    np.save(tmp_path / "q.npy", q[:, :8])
    refused(
        root,
        vpath,
        "dimension 8, the item vectors 16",
        ids=ipath,
        query_vectors=tmp_path / "q.npy",
        query_ids=tmp_path / "qids.npy",
    )
    np.save(tmp_path / "q.npy", q[:-3])
    np.save(tmp_path / "qids.npy", ids[:-3])
    refused(
        root,
        vpath,
        "3 item.s. have no query vector",
        ids=ipath,
        query_vectors=tmp_path / "q.npy",
        query_ids=tmp_path / "qids.npy",
    )


# -- export and round trip --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["npy", "parquet", "word2vec", "projector"])
def test_export_then_import_gives_identical_lists(root, items, tmp_path, fmt):
    from recsys.search import similar_items

    ids, vec = items
    q = np.random.default_rng(3).normal(size=vec.shape).astype(np.float32)
    vpath, ipath = write_npy(tmp_path, ids, vec)
    np.save(tmp_path / "q.npy", q)
    first = imp(root, vpath, ids=ipath, query_vectors=tmp_path / "q.npy", query_ids=ipath)["run"]["run_id"]
    out = tmp_path / "export"
    res = export_run(first, fmt, out, root)
    assert set(res["files"]) <= {p.name for p in out.iterdir()} and not [
        p for p in out.iterdir() if p.name.startswith(".")
    ]
    manifest = json.loads((out / "export.json").read_text())
    args = manifest["import_back"].split("--metric cosine ")[1].split()
    main_file, opts = out / args[0], {}
    for flag, value in zip(args[1::2], args[2::2]):
        opts[flag.lstrip("-").replace("-", "_")] = out / value
    second = imp(root, main_file, **opts)["run"]["run_id"]
    a_ids, a_vec = run_arrays(root, first)
    b_ids, b_vec = run_arrays(root, second)
    assert a_ids.tolist() == b_ids.tolist()
    np.testing.assert_array_equal(a_vec, b_vec)
    np.testing.assert_array_equal(Registry(root).load_model(second).query_vectors_, q)
    reg = Registry(root)
    for seed in ids[:20]:
        assert list(similar_items(reg, first, seed, None, 10).item_ids) == list(
            similar_items(reg, second, seed, None, 10).item_ids
        )


def test_projector_export_files(root, items, tmp_path, demo_small):
    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    run_id = imp(root, vpath, ids=ipath, name="clip v2")["run"]["run_id"]
    out = tmp_path / "p"
    export_run(run_id, "projector", out, root)
    meta = pd.read_csv(out / "metadata.tsv", sep="\t", dtype={"item_id": str}, keep_default_na=False)
    assert list(meta.columns) == ["item_id", "title", "category", "brand", "price"]
    cat = demo_small.catalog.set_index("item_id").loc[ids]
    assert meta["item_id"].tolist() == ids.tolist()
    assert meta["title"].tolist() == [str(t).replace("\t", " ") for t in cat["title"]]
    assert meta["brand"].tolist() == [str(b) for b in cat["brand"].fillna("")]
    tsv = np.loadtxt(out / "vectors.tsv", delimiter="\t", dtype=np.float32)
    np.testing.assert_array_equal(tsv, vec)
    config = json.loads((out / "projector_config.json").read_text())
    assert config == {
        "embeddings": [
            {
                "tensorName": "clip v2",
                "tensorShape": [300, DIM],
                "tensorPath": "vectors.tsv",
                "metadataPath": "metadata.tsv",
            }
        ]
    }


def test_word2vec_export_refuses_ids_with_spaces_and_baselines_have_nothing_to_export(
    root, tmp_path, demo_small
):
    from recsys.errors import RunNotSearchableError
    from recsys.pipeline import train_run

    meta = train_run("popularity", {}, "demo", root, max_cases=50)
    with pytest.raises(RunNotSearchableError, match="no item vectors"):
        export_run(meta["run_id"], "npy", tmp_path / "x", root)


def test_read_vectors_reports_a_csv_cell_that_is_not_a_list(tmp_path):
    (tmp_path / "v.csv").write_text('item_id,vector\na,"[1, 2]"\nb,"[1, x]"\n')
    with pytest.raises(DataValidationError, match="is not a list of numbers") as info:
        read_vectors(tmp_path / "v.csv")
    assert info.value.row == 2


def test_failed_validation_carries_the_full_report(root, items, tmp_path):
    ids, vec = items
    vec = vec.copy()
    vec[0, 0] = np.nan
    vpath, ipath = write_npy(tmp_path, ids, vec)
    with pytest.raises(ImportVectorsError) as info:
        imp(root, vpath, ids=ipath)
    assert info.value.report["rows"] == 300 and info.value.report["dimension"] == DIM


# -- items without a vector: the run's declared fallback chain (issue 13) -------------------------
def test_items_without_a_vector_are_served_by_the_fallback_chain_fitted_at_import(
    root, items, tmp_path, capsys
):
    """300 of the demo's 1,000 items have a vector: the other 700 are served by the chain the
    import fitted on the training part (Explore, REST: 200, not 404), the shares are reported
    (CLI, run.json, the test seeds'), and a second import of the dataset reuses the chain."""
    import flask

    from recsys.__main__ import main
    from recsys.fallback import chain_key
    from recsys.search import similar_items
    from recsys.serving import register_api

    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    argv = ["--data-dir", str(root), "-q", "import-vectors", str(vpath), "--ids", str(ipath)]
    assert main([*argv, "--dataset", "demo", "--name", "partial"]) == 0
    captured = capsys.readouterr()
    run = Registry(root).list_runs("external")[0]
    assert json.loads(captured.out)["report"]["served"] == run["served"]
    cat = run["served"]["catalog"]
    assert (cat["model"], cat["fallback"], cat["nothing"]) == (0.3, 0.7, 0.0)
    assert cat["counts"] == {"model": 300, "fallback": 700, "nothing": 0}
    assert "catalogue items (1,000): 30.0% served by the vectors, 70.0% by the fallback chain" in captured.err
    seeds = run["served"]["test_seeds"]  # the evaluation's cases, completed as served
    assert seeds["fallback"] == run["metrics"]["fallback_share"] > 0.5 and seeds["nothing"] == 0.0
    assert "test seeds (" in captured.err and "fitted on the training part only" in run["metrics_note"]
    # fitted on the training part of the time split the metrics use (its key says so), saved in the run
    assert run["artifacts"]["fallback"]["key"] == chain_key(run["dataset"]["fingerprint"], {"method": "time"})
    assert (root / "runs" / run["run_id"] / "fallback" / "fallback.json").is_file()

    seed = str(demo_small_missing(root, ids))
    got = similar_items(Registry(root), run["run_id"], seed, None, 10)
    assert len(got.item_ids) == 10 and seed not in got.item_ids
    assert set(got.served_by) <= {"cooccurrence", "category", "brand", "popular"}
    app = flask.Flask("fallback")
    register_api(app, root, token="")
    resp = app.test_client().get(f"/api/v1/similar/{seed}?run={run['run_id']}&k=10")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [i["item_id"] for i in resp.get_json()["items"]] == list(got.item_ids)

    # a second import of the same dataset and split copies the first one's chain
    again = imp(root, vpath, ids=ipath, name="partial again")["run"]
    assert again["artifacts"]["fallback"]["reused_from"] == run["run_id"]
    assert list(similar_items(Registry(root), again["run_id"], seed, None, 10).item_ids) == list(got.item_ids)


def demo_small_missing(root: Path, ids: np.ndarray) -> str:
    """A catalogue item of the stored demo with no vector among ``ids``."""
    from recsys.data.schema import load_stored_catalog

    catalog = load_stored_catalog("demo", root)["item_id"].astype(str)
    return str(catalog[~catalog.isin(set(ids))].iloc[0])


def test_an_import_that_fails_while_saving_the_chain_leaves_nothing_under_runs(
    root, items, tmp_path, monkeypatch
):
    from recsys.fallback import FallbackChain

    saved = FallbackChain.save

    def half_saved(self, path):  # writes part of the chain, then the disk fails
        saved(self, path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FallbackChain, "save", half_saved)
    ids, vec = items
    vpath, ipath = write_npy(tmp_path, ids, vec)
    with pytest.raises(Exception, match="space"):
        imp(root, vpath, ids=ipath)
    assert stored_runs(root) == [] and Registry(root).list_runs() == []


def test_a_catalogue_only_dataset_gets_the_category_and_brand_steps(tmp_data_dir, demo_small, tmp_path):
    """No events: no co-occurrence and nothing popular, but a seed without a vector still gets
    the items of its category (in catalogue order), and the report says what the chain has."""
    import dataclasses

    from recsys.search import similar_items

    catalog_only = dataclasses.replace(demo_small, interactions=demo_small.interactions.iloc[:0])
    save_dataset(catalog_only, tmp_data_dir)
    ids = demo_small.catalog["item_id"].astype(str).to_numpy(dtype=str)[:300]
    vec = np.random.default_rng(7).normal(size=(len(ids), DIM)).astype(np.float32)
    vpath, ipath = write_npy(tmp_path, ids, vec)
    out = import_vectors("demo", "cat only", vpath, ids=ipath, root=tmp_data_dir)
    served = out["report"]["served"]
    assert served["catalog"]["fallback"] == 0.7 and set(served["catalog"]["fallback_steps"]) == {"category"}
    assert "no co-occurrence or popular step" in served["note"] and "test_seeds" not in served
    seed = demo_small_missing(tmp_data_dir, ids)
    got = similar_items(Registry(tmp_data_dir), out["run"]["run_id"], seed, None, 5)
    category = demo_small.catalog.set_index("item_id")["category"].astype(str)
    assert len(got.item_ids) == 5 and set(got.served_by) == {"category"}
    assert {category[i] for i in got.item_ids} == {category[seed]}
