"""Importing vectors as an ordinary run of family ``external`` (all or nothing)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recsys.config import Progress, data_dir, null_progress
from recsys.errors import DataValidationError, IndexFileError
from recsys.external.index_check import (
    check_index,
    copy_range,
    finish_staged_index,
    load_raw_index,
    read_hnswlib_header,
    source_stamp,
    stage_index,
)
from recsys.external.read import _EXAMPLES, detect_format, npy_layout, read_vectors
from recsys.external.validate import DROP_HINT, _examples, _positions, validate_table

logger = logging.getLogger(__name__)

METRICS = ("cosine", "ip")
ERRORS = ("raise", "drop")


def _file_info(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "name": path.name,
        "path": str(path.resolve()),
        "bytes": st.st_size,
        "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(timespec="seconds"),
    }


class ImportVectorsError(DataValidationError):
    """The vectors failed validation; ``report`` holds the full validation report."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def import_vectors(
    dataset: str,
    name: str,
    path: str | os.PathLike[str],
    *,
    ids: str | os.PathLike[str] | None = None,
    index: str | os.PathLike[str] | None = None,
    query_vectors: str | os.PathLike[str] | None = None,
    query_ids: str | os.PathLike[str] | None = None,
    metric: str = "cosine",
    fmt: str | None = None,
    query_fmt: str | None = None,
    column: str | None = None,
    errors: str = "raise",
    evaluate: bool = True,
    activate: bool | None = None,
    index_params: dict[str, Any] | None = None,
    source: str = "cli",
    root: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import vectors trained elsewhere as a run of family ``external``.

    Parameters
    ----------
    dataset : str
        The stored dataset whose catalogue the ids refer to.
    name : str
        A readable name (the run's label).
    path : path-like
        The vectors file (format from its name, or ``fmt``).
    ids : path-like, optional
        Ids in row order (needed for ``npy`` and ``projector``; overrides a table's).
    index : path-like, optional
        An hnswlib index over the same rows (``hnswlib.Index.save_index``); checked
        by :func:`check_index`, and rebuilt with a warning when it does not match.
    query_vectors, query_ids : path-like, optional
        A second space seeds are looked up by (e.g. a user tower's item-side
        inputs), matched to the item vectors by id; same dimension.
    metric : {"cosine", "ip"}
    errors : {"raise", "drop"}
        What to do with NaN/inf rows and duplicate ids.
    evaluate : bool
        Compute the offline metrics on the dataset's split (as ``train`` does; the
        vectors may have seen the held-out part, which run.json says).
    source : str
        Who asked ("cli", "ui", "rest"), recorded in the provenance.

    Returns
    -------
    dict
        ``{"run": run.json, "report": validation report}``.

    Raises
    ------
    ImportVectorsError
        The vectors failed validation (the report says why); nothing is stored.
    DataValidationError, DatasetNotFoundError
        Unreadable files, an unknown dataset.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys.data.schema import _stored_folder, dataset_meta
    from recsys.fallback import catalog_shares, seed_shares
    from recsys.index import HnswIndex, vectors_checksum
    from recsys.models.external import ExternalModel
    from recsys.pipeline import fallback_writer, run_fallback
    from recsys.registry import Registry
    from recsys.stored import disk_full_guard, saving_dir

    progress = progress or null_progress
    if metric not in METRICS:
        raise DataValidationError(f"metric must be one of {METRICS}, got {metric!r}")
    if errors not in ERRORS:
        raise DataValidationError(f"errors must be one of {ERRORS}, got {errors!r}")
    if not isinstance(name, str) or not name.strip():
        raise DataValidationError("give the imported run a name")
    from recsys.registry import label_problem

    problem = label_problem(name, "imported run's name")
    if problem:
        raise DataValidationError(problem)
    root = data_dir(root)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    meta_ds = dataset_meta(dataset, root)
    # only the id column: the titles and descriptions of a large catalogue are not needed here
    catalog_ids = (
        pq.read_table(_stored_folder(dataset, root) / "catalog.parquet", columns=["item_id"])
        .column("item_id")
        .combine_chunks()
        .cast(pa.string())
    )

    registry = Registry(root)
    # An index file is copied into the data directory and hashed (stage_index) in a thread
    # from the start, beside the reading, the validation and the check: copy and hash release
    # the GIL. The staging folder is hidden and locked (a start-up sweep removes it if the
    # process dies) and always removed here; a run only ever gets a complete, checked file.
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="import")
    cleanup = contextlib.ExitStack()
    staged_f = loaded_f = None
    staging: Path | None = None

    def staging_dir() -> Path:
        nonlocal staging
        if staging is None:
            with disk_full_guard("the imported files", registry.runs_dir):
                staging = Path(tempfile.mkdtemp(prefix=".import-", dir=registry.runs_dir))
            cleanup.callback(shutil.rmtree, staging, True)
            cleanup.enter_context(saving_dir(staging))
        return staging

    # the declared fallback chain (recsys.fallback) for the items without a vector: fitted on the
    # training part of the split the evaluation uses, as train_run fits it (or copied from another
    # run of the dataset that fitted the same one), saved in the run with the rest. It depends on
    # the dataset alone, so it is fitted in a thread from the start, beside the vectors' work
    has_events = int(meta_ds.get("summary", {}).get("interactions") or 0) > 0
    parts: list[Any] = []  # (dataset, train, test): read and split once, when needed

    def split_parts() -> list[Any]:
        if not parts:
            parts.extend(_split(dataset, root, has_events, full=bool(evaluate and has_events)))
        return parts

    def fit_chain() -> tuple[tuple[Any, dict[str, Any]], float]:
        t = time.perf_counter()
        out = run_fallback(
            registry,
            dataset,
            str(meta_ds.get("fingerprint", "")),
            {"method": "time" if has_events else "none"},
            lambda: (split_parts()[1], split_parts()[0].catalog),
        )
        return out, round(time.perf_counter() - t, 3)

    try:
        fallback_f = pool.submit(fit_chain)
        if index is not None and Path(index).is_file():
            try:
                head = read_hnswlib_header(index)
            except IndexFileError:
                head = None  # check_index says why
            if head is not None:
                staged_f = pool.submit(stage_index, Path(index), head, staging_dir() / "index.bin")
                loaded_f = pool.submit(load_raw_index, Path(index), head, metric)
        progress(0, 100, f"reading {Path(path).name}")
        t0 = time.perf_counter()
        staged = _stage_npy(path, fmt, "vectors", staging_dir, registry)
        staged_ids = _stage_npy(ids, "npy", "ids", staging_dir, registry) if staged else None
        table = read_vectors(path, fmt, ids, column, staged=staged, staged_ids=staged_ids)
        timings["read_s"] = round(time.perf_counter() - t0, 3)
        # the vectors' checksum (index header, provenance) in a thread beside the validation
        # and the index check; recomputed below in the rare case rows are left out
        checksum_f = pool.submit(vectors_checksum, table.vectors)
        progress(30, 100, "validating")
        t0 = time.perf_counter()
        keep, report = validate_table(table, catalog_ids, errors)
        catalog_pos = report.pop("_catalog_pos")
        sq_norms = report.pop("_sq_norms")
        report["errors"] = list(report["errors"])

        qtable = None
        if query_vectors is not None:
            qtable = read_vectors(query_vectors, query_fmt, query_ids, column)
            if qtable.vectors.shape[1] != table.vectors.shape[1]:
                report["errors"].append(
                    f"the query vectors ({qtable.file}) have dimension {qtable.vectors.shape[1]}, the item "
                    f"vectors {table.vectors.shape[1]}: both sides must share one space"
                )
            else:
                qkeep, qreport = validate_table(qtable, catalog_ids, errors, what="query vectors")
                qreport.pop("_catalog_pos")
                qreport.pop("_sq_norms")
                report["query_vectors"] = {
                    k: v for k, v in qreport.items() if k not in ("errors", "warnings")
                }
                report["errors"] += [e for e in qreport["errors"] if "catalogue" not in e]
                report["warnings"] += qreport["warnings"]
                qrows = np.flatnonzero(qkeep)  # usable query rows
                qpos = _positions(table.ids, qtable.ids[qrows])
                lacking = keep & (qpos < 0)
                if lacking.any():
                    ex = ", ".join(_examples(table.ids[lacking]))
                    msg = f"{int(lacking.sum()):,} item(s) have no query vector (e.g. {ex})"
                    if errors == "raise":
                        report["errors"].append(f"{msg}; give one for every item, or import with {DROP_HINT}")
                    else:
                        report["warnings"].append(msg + ": left out")
                        keep &= ~lacking
        report["rows_kept"] = int(keep.sum())
        catalog_missing = np.ones(len(catalog_ids), dtype=bool)
        catalog_missing[catalog_pos[keep]] = False
        missing_rows = np.flatnonzero(catalog_missing)
        report["catalog_items_without_vector"] = {
            "count": int(len(missing_rows)),
            "of": int(len(catalog_ids)),
            "examples": _examples(catalog_ids.take(pa.array(missing_rows[:_EXAMPLES]))),
        }
        if catalog_missing.any():
            report["warnings"].append(
                f"{int(catalog_missing.sum()):,} of {len(catalog_ids):,} catalogue items have no vector "
                "(they are not recommended; as seeds, the run's fallback chain serves them)"
            )
        twins = [  # one name for two runs read as one in every picker and grid (s41-w's walk)
            r["run_id"]
            for r in registry.list_runs()
            if r.get("label") == name.strip() and (r.get("dataset") or {}).get("name") == dataset
        ]
        if twins:
            report["warnings"].append(
                f"another run of dataset '{dataset}' is already named '{name.strip()}' ({twins[0]}): both are "
                "kept; give this one another name to tell them apart"
            )
        timings["validate_s"] = round(time.perf_counter() - t0, 3)
        if report["errors"]:
            raise ImportVectorsError("the vectors cannot be imported: " + "; ".join(report["errors"]), report)

        all_kept = bool(keep.all())
        item_ids = table.ids if all_kept else table.ids[keep]
        vectors = table.vectors if all_kept else table.vectors[keep]
        qvec = None
        if qtable is not None:
            qvec = qtable.vectors[qrows[_positions(item_ids, qtable.ids[qrows])]]

        index_params = {"space": metric, **(index_params or {})}
        index_params["space"] = metric
        adopted = None
        index_info: dict[str, Any] | None = None
        if not all_kept:
            checksum_f = pool.submit(vectors_checksum, vectors)
        if index is not None:
            progress(45, 100, "checking the index")
            t0 = time.perf_counter()
            index_path = Path(index)
            if not index_path.is_file():
                raise DataValidationError("no such index file", file=str(index_path))
            if not all_kept:
                index_info = {
                    "file": index_path.name,
                    "bytes": index_path.stat().st_size,
                    "warnings": [],
                    "status": "rebuild",
                    "reason": f"{int((~keep).sum()):,} row(s) were left out, so the index no longer "
                    "matches the vectors row for row",
                }
            else:
                adopted, index_info = check_index(
                    index_path,
                    vectors,
                    metric,
                    vectors_sha256="pending",
                    sq_norms=sq_norms,
                    preloaded=loaded_f,
                )
            if adopted is None:
                report["warnings"].append(
                    f"index {index_path.name} not used: {index_info['reason']}; rebuilt"
                )
            report["warnings"] += index_info.pop("warnings", [])
            report["index"] = index_info
            timings["index_check_s"] = round(time.perf_counter() - t0, 3)

        n_catalog, n_missing = len(catalog_ids), int(catalog_missing.sum())
        coverage = {
            "catalog_items": n_catalog,
            "items_with_vector": n_catalog - n_missing,
            "coverage": (n_catalog - n_missing) / n_catalog if n_catalog else 0.0,
            "missing_examples": [str(v) for v in catalog_ids.take(pa.array(missing_rows[:10]))],
        }
        model = ExternalModel.from_arrays(item_ids, vectors, qvec, metric=metric, coverage=coverage)
        if all_kept:  # the staged files are stored as they are: the bytes validated and hashed
            model.staged_vectors, model.staged_ids = table.mapped_file, table.mapped_ids_file
        checksum = checksum_f.result()
        if adopted is not None:
            adopted.vectors_sha256 = checksum

        def write_index(folder: os.PathLike[str]) -> dict[str, Any]:
            t = time.perf_counter()
            dest = Path(folder) / "index.bin"
            if adopted is not None:
                staged = staged_f.result() if staged_f is not None else None
                if staged is None:  # not staged (cannot happen: the check read the same header)
                    staged = stage_index(Path(index), read_hnswlib_header(index), dest)
                if source_stamp(Path(index)) != staged["source_stamp"]:
                    raise IndexFileError(
                        f"index file {Path(index).name} changed while it was imported: import it again"
                    )
                finish_staged_index(adopted, staged, dest)
                out = {
                    "file": "index.bin",
                    "source": "imported",
                    "M": adopted.M,
                    "ef_construction": adopted.ef_construction,
                    "space": metric,
                }
            else:
                progress(55, 100, "building the index")
                built = HnswIndex.build(vectors, **index_params)
                built.save(dest)
                out = {"file": "index.bin", "source": "built", **index_params}
            return {"index": {**out, "build_s": round(time.perf_counter() - t, 3)}}

        # the declared fallback chain (recsys.fallback) for the items without a vector: fitted on
        # the training part of the split the evaluation uses, as train_run fits it (or copied from
        # another run of the dataset that fitted the same one); saved in the run with the rest
        progress(58, 100, "fitting the fallback chain for items without a vector")
        t0 = time.perf_counter()
        (model.fallback_chain_, fallback_info), timings["fallback_s"] = fallback_f.result()
        timings["fallback_wait_s"] = round(time.perf_counter() - t0, 3)
        served = {
            "catalog": catalog_shares(
                model.fallback_chain_,
                [str(v) for v in catalog_ids.take(pa.array(missing_rows))],
                len(catalog_ids),
            )
        }
        if not has_events:
            served["note"] = (
                "a catalogue without events: the chain has the category and brand steps (their items "
                "in catalogue order, nothing being popular); no co-occurrence or popular step"
            )
        report["served"] = served
        if served["catalog"]["nothing"] > 0:
            report["warnings"].append(
                f"{served['catalog']['counts']['nothing']:,} catalogue item(s) have no vector and nothing in "
                "the fallback chain serves them (no list)"
            )

        metrics: dict[str, Any] = {}
        split_info: dict[str, Any] = {}
        if evaluate and has_events:
            progress(60, 100, "evaluating")
            t0 = time.perf_counter()
            metrics, split_info = _evaluate(model, *split_parts())
            seeds = seed_shares(metrics)
            if seeds is not None:
                served["test_seeds"] = seeds
            timings["evaluate_s"] = round(time.perf_counter() - t0, 3)

        provenance = {
            "source": source,
            "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "format": table.fmt,
            "metric": metric,
            "vectors_sha256": checksum,
            "files": {
                k: _file_info(Path(p))
                for k, p in (
                    ("vectors", path),
                    ("ids", ids),
                    ("index", index),
                    ("query_vectors", query_vectors),
                    ("query_ids", query_ids),
                )
                if p is not None
            },
        }
        progress(80, 100, "saving the run")
        timings["import_s"] = round(time.perf_counter() - t_all, 3)
        extra: dict[str, Any] = {
            "provenance": provenance,
            "import_report": report,
            "served": served,
            "device": {"device": "CPU"},
        }
        if split_info:
            extra["split"] = split_info
            extra["metrics_note"] = (
                "the vectors were trained outside RecSys Lab: they may have seen the held-out part of the split "
                "(the fallback chain was fitted on the training part only: it adds no such leak)"
            )
        run = registry.create_run(
            model,
            dataset_name=dataset,
            dataset_fingerprint=str(meta_ds.get("fingerprint", "")),
            metrics=metrics,
            timings=timings,
            extra=extra,
            writers=[fallback_writer(model.fallback_chain_, fallback_info), write_index],
            label=name.strip(),
        )
        if activate or (activate is None and "external" not in registry.active(dataset)):
            registry.activate(run["run_id"])
            run["active"] = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the staging thread is done with its folder
        cleanup.close()

    from recsys import tracking

    info = tracking.log_run(run, root)  # never raises: a tracking failure is a warning
    if info:
        run["mlflow"] = info
    progress(100, 100, f"run {run['run_id']} ready")
    return {"run": run, "report": report}


def _stage_npy(path: Any, fmt: str | None, what: str, staging_dir: Any, registry: Any) -> Path | None:
    """A copy of a plain ``.npy`` file (:func:`npy_layout`: float32 vectors, unicode ids) in the
    staging folder, or None (another format or layout, or unreadable: :func:`read_vectors`
    then reads the file itself and says why).

    One kernel-side copy (``copy_file_range``; a reflink where the file system shares blocks):
    the import then maps the copy instead of reading the file into memory, validates and hashes
    those very bytes, and moves the file into the run instead of writing it again. A file
    rewritten meanwhile cannot split what was checked from what is stored.
    """
    from recsys.stored import disk_full_guard

    if path is None:
        return None
    src = Path(path)
    try:
        if (fmt or detect_format(src)) != "npy" or not src.is_file() or npy_layout(src, what) is None:
            return None
    except DataValidationError:
        return None
    dest = staging_dir() / ("vectors.npy" if what == "vectors" else "item_ids.npy")
    try:
        with disk_full_guard(f"the imported {what}", registry.runs_dir):
            with open(src, "rb") as fin, open(dest, "wb") as out:
                copy_range(fin, out, 0, os.fstat(fin.fileno()).st_size, 0)
    except IndexFileError:  # shorter than when it was opened: read the file itself
        dest.unlink(missing_ok=True)
        return None
    return dest


def _split(dataset_name: str, root: Path, has_events: bool, full: bool) -> tuple[Any, Any, Any]:
    """``(dataset, train, test)``: the time split train_run makes by default (the imported
    run's chain is fitted on ``train``, its metrics scored on ``test``); a catalogue without
    events is its own training part, with no test part. Unless ``full`` (the evaluation's),
    the catalogue holds only the columns the chain reads (a real catalogue's titles and
    descriptions are most of its bytes)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from recsys.data.schema import Dataset, _stored_folder, dataset_meta, load_dataset
    from recsys.evaluation import split

    if full:
        ds = load_dataset(dataset_name, root)
    else:
        folder = _stored_folder(dataset_name, root)
        try:
            names = pq.read_schema(folder / "catalog.parquet").names
            columns = [c for c in ("item_id", "category", "brand") if c in names]
            catalog = pd.read_parquet(folder / "catalog.parquet", columns=columns)
            interactions = pd.read_parquet(folder / "interactions.parquet")
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types (as load_dataset says)
            raise DataValidationError(f"stored dataset is unreadable: {exc}", file=str(folder)) from exc
        kind = dataset_meta(dataset_name, root).get("kind", "sessions")
        ds = Dataset(dataset_name, catalog, interactions, kind=kind)
    if not has_events:
        return ds, ds, None
    train, test = split(ds, method="time")
    return ds, train, test


def _evaluate(model: Any, ds: Any, train: Any, test: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from recsys.evaluation import evaluate

    basket_targets = "next" if ds.kind == "baskets" else "rest"
    metrics = evaluate(
        model, train, test, k=10, max_cases=3000, catalog=ds.catalog, basket_targets=basket_targets
    )
    return metrics, {"method": "time", "k": 10, "max_cases": 3000, "basket_targets": basket_targets}


def import_vectors_job(
    dataset: str,
    name: str,
    path: str,
    *,
    root: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The background-job (and REST) form of :func:`import_vectors`: every path is resolved
    inside the import folder (:func:`recsys.config.resolve_import_path`) first."""
    from recsys.config import resolve_import_path

    resolved = {"path": resolve_import_path(path, root)}
    for key in ("ids", "index", "query_vectors", "query_ids"):
        if options.get(key):
            resolved[key] = resolve_import_path(options[key], root)
        else:
            options.pop(key, None)
    options.update({k: v for k, v in resolved.items() if k != "path"})
    options.setdefault("source", "ui")
    try:
        out = import_vectors(dataset, name, resolved["path"], root=root, progress=progress, **options)
    except ImportVectorsError as exc:
        raise DataValidationError(str(exc)) from None
    run = out["run"]
    return {"run_id": run["run_id"], "label": run["label"], "report": out["report"]}
