"""Exporting a run's vectors (npy, Parquet, word2vec text, Embedding Projector)."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataValidationError, RecsysError

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("projector", "parquet", "word2vec", "npy")


def _tsv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _write_matrix_text(
    path: Path, ids: np.ndarray | None, vectors: np.ndarray, sep: str, header: str | None
) -> None:
    df = pd.DataFrame(np.asarray(vectors, dtype=np.float32))
    if ids is not None:
        df.insert(0, "_id", ids)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        if header is not None:
            fh.write(header + "\n")
        # %.9g: nine significant digits give back every float32 exactly
        df.to_csv(fh, sep=sep, header=False, index=False, float_format="%.9g", lineterminator="\n")


def export_run(
    run_id: str,
    fmt: str,
    out: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write a run's vectors to the folder ``out`` in ``fmt``.

    ``npy``: ``vectors.npy``, ``item_ids.npy``, ``item_ids.txt``; ``parquet``:
    ``vectors.parquet`` (``item_id``, ``vector``); ``word2vec``: ``vectors.txt``
    (text format); ``projector``: ``vectors.tsv``, ``metadata.tsv`` (item_id,
    title, category, brand, price) and ``projector_config.json``. A run with a
    second (query) space also gets ``query_vectors.*``. Every export holds an
    ``export.json`` saying how to import it back. Files are written to a
    temporary folder first and moved into ``out`` once all are complete.

    Returns
    -------
    dict
        ``{"run_id", "format", "rows", "dimension", "files": [names], "folder"}``.

    Raises
    ------
    RunNotFoundError, RunNotSearchableError
        Unknown run, or a run without vectors (a baseline).
    DataValidationError
        Unknown format; ids a word2vec file cannot hold (with whitespace).
    """
    from recsys.errors import RunNotSearchableError
    from recsys.registry import Registry

    if fmt not in EXPORT_FORMATS:
        raise DataValidationError(
            f"unknown export format '{fmt}'; choose one of: {', '.join(EXPORT_FORMATS)}"
        )
    registry = Registry(root)
    meta = registry.get(run_id)
    model = registry.load_model(run_id) if meta.get("is_embedding", True) else None
    if getattr(model, "vectors_", None) is None:
        raise RunNotSearchableError(f"run '{run_id}' ({meta.get('family')}) has no item vectors to export")
    ids = np.asarray(model.item_ids_, dtype=str)
    vec = np.asarray(model.vectors_, dtype=np.float32)
    qvec = getattr(model, "query_vectors_", None)
    metric = (
        (meta.get("params") or {}).get("metric")
        or ((meta.get("artifacts") or {}).get("index") or {}).get("space")
        or "cosine"
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    files: list[str] = []
    import_cmd = ""
    try:
        if fmt == "npy":
            np.save(tmp / "vectors.npy", vec, allow_pickle=False)
            np.save(tmp / "item_ids.npy", ids, allow_pickle=False)
            (tmp / "item_ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
            files += ["vectors.npy", "item_ids.npy", "item_ids.txt"]
            if qvec is not None:
                np.save(tmp / "query_vectors.npy", np.asarray(qvec, np.float32), allow_pickle=False)
                files.append("query_vectors.npy")
            import_cmd = "vectors.npy --ids item_ids.npy" + (
                " --query-vectors query_vectors.npy --query-ids item_ids.npy" if qvec is not None else ""
            )
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            def table_of(m: np.ndarray) -> Any:
                flat = pa.array(np.ascontiguousarray(m, np.float32).reshape(-1))
                col = pa.FixedSizeListArray.from_arrays(flat, m.shape[1])
                return pa.table({"item_id": pa.array(ids), "vector": col})

            pq.write_table(table_of(vec), tmp / "vectors.parquet")
            files.append("vectors.parquet")
            if qvec is not None:
                pq.write_table(table_of(np.asarray(qvec)), tmp / "query_vectors.parquet")
                files.append("query_vectors.parquet")
            import_cmd = "vectors.parquet" + (
                " --query-vectors query_vectors.parquet" if qvec is not None else ""
            )
        elif fmt == "word2vec":
            bad = [i for i in ids if any(c.isspace() for c in i)]
            if bad:
                raise DataValidationError(
                    f"{len(bad)} item id(s) hold whitespace (e.g. '{bad[0]}'), which the word2vec format "
                    "cannot hold: export as parquet, npy or projector instead"
                )
            _write_matrix_text(tmp / "vectors.txt", ids, vec, " ", f"{len(ids)} {vec.shape[1]}")
            files.append("vectors.txt")
            if qvec is not None:
                _write_matrix_text(
                    tmp / "query_vectors.txt", ids, np.asarray(qvec), " ", f"{len(ids)} {vec.shape[1]}"
                )
                files.append("query_vectors.txt")
            import_cmd = "vectors.txt" + (" --query-vectors query_vectors.txt" if qvec is not None else "")
        else:  # projector
            _write_matrix_text(tmp / "vectors.tsv", None, vec, "\t", None)
            files += ["vectors.tsv", "metadata.tsv", "projector_config.json"]
            cols = ["item_id", "title", "category", "brand", "price"]
            try:
                from recsys.data.schema import load_stored_catalog

                cat = load_stored_catalog(meta["dataset"]["name"], registry.root).set_index("item_id")
                cat.index = cat.index.astype(str)
                cat = cat.reindex(ids)
            except RecsysError:
                cat = pd.DataFrame(index=ids)
            with open(tmp / "metadata.tsv", "w", encoding="utf-8", newline="\n") as fh:
                fh.write("\t".join(cols) + "\n")
                columns = [cat[c].tolist() if c in cat.columns else [None] * len(ids) for c in cols[1:]]
                for row, item in enumerate(ids):
                    fh.write("\t".join([_tsv_cell(item)] + [_tsv_cell(c[row]) for c in columns]) + "\n")
            name = meta.get("label") or run_id
            embeddings = [
                {
                    "tensorName": name,
                    "tensorShape": [int(vec.shape[0]), int(vec.shape[1])],
                    "tensorPath": "vectors.tsv",
                    "metadataPath": "metadata.tsv",
                }
            ]
            if qvec is not None:
                _write_matrix_text(tmp / "query_vectors.tsv", None, np.asarray(qvec), "\t", None)
                files.append("query_vectors.tsv")
                embeddings.append(
                    {
                        "tensorName": f"{name} (query space)",
                        "tensorShape": embeddings[0]["tensorShape"],
                        "tensorPath": "query_vectors.tsv",
                        "metadataPath": "metadata.tsv",
                    }
                )
            (tmp / "projector_config.json").write_text(json.dumps({"embeddings": embeddings}, indent=2))
            import_cmd = "vectors.tsv --ids metadata.tsv" + (
                " --query-vectors query_vectors.tsv --query-ids metadata.tsv" if qvec is not None else ""
            )
        manifest = {
            "run_id": run_id,
            "label": meta.get("label"),
            "family": meta.get("family"),
            "dataset": meta.get("dataset"),
            "format": fmt,
            "rows": int(vec.shape[0]),
            "dimension": int(vec.shape[1]),
            "metric": metric,
            "files": files,
            "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "import_back": f"python -m recsys import-vectors --dataset {meta['dataset']['name']} --name NAME "
            f"--metric {metric} {import_cmd}",
        }
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2, default=str))
        files.append("export.json")
        for f in files:
            os.replace(tmp / f, out / f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "run_id": run_id,
        "format": fmt,
        "rows": int(vec.shape[0]),
        "dimension": int(vec.shape[1]),
        "files": files,
        "folder": str(out),
    }


def export_zip(run_id: str, fmt: str, root: str | os.PathLike[str] | None = None) -> tuple[str, bytes]:
    """An export as a zip archive in memory: ``(file name, bytes)`` (the Runs page download)."""
    with tempfile.TemporaryDirectory(prefix="recsys-export-") as tmp:
        result = export_run(run_id, fmt, tmp, root)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in result["files"]:
                zf.write(Path(tmp) / f, arcname=f"{run_id}-{fmt}/{f}")
    return f"{run_id}-{fmt}.zip", buf.getvalue()
