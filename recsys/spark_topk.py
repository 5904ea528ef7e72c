"""``recsys spark precompute``: the filtered top-k of every item of a run, computed by Spark.

Part of :mod:`recsys.spark` (which re-exports :func:`spark_topk` and :func:`spark_precompute`):
a bundle of the run's vectors, its ``index.bin``, the dataset's catalogue and the run's fallback
chain is shipped with ``addFile`` and loaded once per Python worker into the same
:class:`~recsys.search.FilteredSearcher` that Explore and the API use. Each partition answers a
contiguous range of the table's rows (``spark.range``): the items with a vector through
``search_many``, then the catalogue items without one through the run's fallback chain, exactly
as :func:`recsys.precompute.precompute` and the live API do. The work that scales with the table
is done in the partitions, in parallel:

- the answers become Arrow record batches column by column (``mapInArrow``), not row by row;
- the behavioural checks (:class:`recsys.checks.ListChecks`, broadcast empty) check each
  partition's lists; the partial reports come back through an accumulator, keyed by the
  partition's first row, and the driver merges them in table order, so the report equals
  the single-machine one without reading the table back;
- the Parquet output is written by the partitions, in row order, with no sort.

Only the optional store (SQLite or Redis) is written by the driver, reading the rows partition by
partition, after the checks have passed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import RecsysError
from recsys.fallback import MODEL as MODEL_SOURCE
from recsys.spark import _WORKER_CACHE, _link_or_copy, _shipped, _staging_dir

logger = logging.getLogger(__name__)


def _bundle_run(registry: Any, run_id: str, root: Path, staging: Path, name: str) -> list[str]:
    """Write the files a worker needs to rebuild the run's searchers into ``staging/name``.

    The same inputs as :func:`recsys.search.get_searcher`: the model's vectors (and query
    vectors), item ids, the run's ``index.bin``, the dataset's catalogue and how the run is
    searched (``bundle.json``: its space, exact search for tied vectors); and, for the run's
    fallback chain (:mod:`recsys.fallback`), its ``fallback/`` folder and the catalogue items
    without a vector that it serves (``by_chain.npy``, in :func:`recsys.precompute.precompute`'s
    order). Returns those items.
    """
    from recsys.data.schema import dataset_report_path
    from recsys.fallback import FOLDER

    meta = registry.get(run_id)
    model = registry.load_model(run_id)
    vectors = getattr(model, "vectors_", None)
    if vectors is None:
        raise RecsysError(f"run {run_id} ({meta.get('family')}) has no item vectors; pick an embedding run")
    folder = staging / name
    folder.mkdir(parents=True)
    item_ids = np.asarray(model.item_ids_, dtype=str)
    np.save(folder / "vectors.npy", np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    np.save(folder / "item_ids.npy", item_ids, allow_pickle=False)
    qv = getattr(model, "query_vectors_", None)
    if qv is not None:
        np.save(folder / "query_vectors.npy", np.asarray(qv, dtype=np.float32), allow_pickle=False)
    run_dir = registry.run_dir(run_id)
    if (run_dir / "index.bin").exists():
        _link_or_copy(run_dir / "index.bin", folder / "index.bin")
    catalog = dataset_report_path(meta["dataset"]["name"], root).parent / "catalog.parquet"
    _link_or_copy(catalog, folder / "catalog.parquet")
    index_info = (meta.get("artifacts") or {}).get("index")
    chain = getattr(model, "fallback_chain_", None)
    by_chain = chain.items_beyond(item_ids.tolist()) if chain is not None else []
    if chain is not None:
        shutil.copytree(run_dir / FOLDER, folder / FOLDER, copy_function=_link_or_copy)
    np.save(folder / "by_chain.npy", np.asarray(by_chain, dtype=str), allow_pickle=False)
    how = {
        "space": (getattr(model, "params", None) or {}).get("metric", "cosine"),
        "exact": isinstance(index_info, dict) and bool(index_info.get("exact_search")),
        "similarities": bool(getattr(model, "is_embedding", False)),
    }
    (folder / "bundle.json").write_text(json.dumps(how))
    return by_chain


def _worker_run(name: str) -> SimpleNamespace:
    """The shipped run, loaded once per worker: ``searcher`` (its FilteredSearcher, built as
    ``get_searcher`` builds it), ``ids`` (item ids in row order), ``by_chain`` (the items its
    fallback chain serves), ``fallback(seed, cfg, k)`` (the list :func:`recsys.search.similar_items`
    serves such a seed)."""
    run = _WORKER_CACHE.get(name)
    if run is None:
        from recsys.catalog import CatalogView
        from recsys.errors import IndexFileError
        from recsys.fallback import FOLDER, load_chain
        from recsys.index import HnswIndex, vectors_checksum
        from recsys.search import FilteredSearcher
        from recsys.search.lists import catalogue_searcher
        from recsys.search.service import served_list

        path = _shipped(name)
        how = json.loads((path / "bundle.json").read_text())
        vectors = np.load(path / "vectors.npy", allow_pickle=False)
        item_ids = np.load(path / "item_ids.npy", allow_pickle=False)
        qfile = path / "query_vectors.npy"
        query = np.load(qfile, allow_pickle=False) if qfile.exists() else None
        catalog = pd.read_parquet(path / "catalog.parquet")
        index = None
        if (path / "index.bin").exists():
            try:
                index = HnswIndex.load(
                    path / "index.bin",
                    expected_dim=vectors.shape[1],
                    expected_count=vectors.shape[0],
                    vectors_checksum=vectors_checksum(vectors),
                    item_ids=item_ids,
                )
            except IndexFileError as exc:
                logger.warning("%s: %s; building a fresh index in memory", name, exc)
        searcher = FilteredSearcher(
            vectors,
            item_ids,
            catalog,
            index=index,
            query_vectors=query,
            space=how["space"],
            exact_max_rows=len(vectors) if how["exact"] else None,
        )
        chain = load_chain(path) if (path / FOLDER).is_dir() else None
        view = SimpleNamespace(built=None)

        def list_searcher() -> Any:
            if view.built is None:  # the rule-only searcher over the whole catalogue, as _list_searcher
                cat = catalog.assign(item_id=catalog["item_id"].astype(str))
                view.built = catalogue_searcher(
                    (name, "catalogue", 0), lambda: CatalogView(cat["item_id"].to_numpy(), cat)
                )
            return view.built

        def fallback(seed: str, cfg: Any, k: int) -> Any:
            return served_list(list_searcher, chain, seed, None, cfg, k, [seed], how["similarities"])

        run = SimpleNamespace(
            searcher=searcher,
            ids=[str(i) for i in item_ids],
            by_chain=[str(i) for i in np.load(path / "by_chain.npy", allow_pickle=False)],
            fallback=fallback,
        )
        _WORKER_CACHE[name] = run
        logger.info("loaded searcher %s (%d items) in worker %d", name, len(item_ids), os.getpid())
    return run


def _task_cpus() -> int:
    """The cores Spark gave this task (``spark.task.cpus``, 1 by default).

    A task's batched search uses that many hnswlib and BLAS threads, not every core of the
    machine: with ``local[N]`` or N executor cores Spark already runs N tasks at once, and
    each task taking every core would oversubscribe the machine (``local[2]`` on 2 cores ran
    slower than ``local[1]``).
    """
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return max(1, int(ctx.cpus())) if ctx is not None else 1


def _lists_batch(rows: np.ndarray, seeds: list[str], results: list[Any]) -> Any:
    """Search results as one Arrow record batch of the table (``row``, ``item_id``,
    ``neighbors``, ``scores``: null where a score is not finite, ``served_by``, as
    :func:`recsys.precompute.result_entries` stores them), built column-wise."""
    import itertools

    import pyarrow as pa

    lens = np.fromiter((len(r.item_ids) for r in results), dtype=np.int32, count=len(results))
    offsets = pa.array(np.r_[np.int32(0), np.cumsum(lens, dtype=np.int32)])
    total = int(offsets[-1].as_py())
    flat_ids = pa.array(
        [str(i) for i in itertools.chain.from_iterable(r.item_ids for r in results)], pa.string()
    )
    flat = np.fromiter(
        itertools.chain.from_iterable(r.scores for r in results), dtype=np.float64, count=total
    )
    scores = pa.array(flat, type=pa.float64(), mask=~np.isfinite(flat))
    sources = pa.array(
        [str(src) for r in results for src in (list(r.served_by or []) or [MODEL_SOURCE] * len(r.item_ids))],
        pa.string(),
    )
    return pa.RecordBatch.from_arrays(
        [
            pa.array(rows.astype(np.int64)),
            pa.array(seeds, pa.string()),
            pa.ListArray.from_arrays(offsets, flat_ids),
            pa.ListArray.from_arrays(offsets, scores),
            pa.ListArray.from_arrays(offsets, sources),
        ],
        names=["row", "item_id", "neighbors", "scores", "served_by"],
    )


class _Parts:
    """What the partitions of a precompute report back to the driver (a Spark accumulator): per
    partition, keyed by its first row, its row count and, when the checks run, the partial of its
    :class:`recsys.checks.ListChecks` (``partial()``). Keyed, so a retried task replaces its
    own report instead of adding to it."""

    def __init__(self, spark: Any, checks: Any = None, by_fallback: int = 0) -> None:
        from pyspark.accumulators import AccumulatorParam

        self.by_fallback = by_fallback  # rows the run's fallback chain serves

        class Merge(AccumulatorParam):
            def zero(self, value: dict) -> dict:
                return {}

            def addInPlace(self, a: dict, b: dict) -> dict:
                a.update(b)
                return a

        sc = spark.sparkContext
        self.acc = sc.accumulator({}, Merge())
        self.template = sc.broadcast(checks.blank()) if checks is not None else None

    def rows(self) -> int:
        return sum(int(p["rows"]) for p in self.acc.value.values())

    def merge_into(self, gate: Any) -> None:
        """The partitions' partial checks merged into the driver's, in table order."""
        t0 = time.perf_counter()
        for first in sorted(self.acc.value):
            part = self.acc.value[first]
            gate.checks.merge(part["checks"])
            gate.seconds += part["check_s"]  # the partitions' time in the checks, summed
        gate.seconds += time.perf_counter() - t0


def spark_topk(
    spark: Any,
    root: str | os.PathLike[str] | None,
    run_id: str,
    preset: str,
    *,
    k: int = 20,
    partitions: int | None = None,
    batch_size: int = 1024,
    checks: Any = None,
) -> tuple[Any, dict[str, Any], _Parts]:
    """The filtered top-k of every item of a run, as a lazy DataFrame, and the table's metadata.

    The rows are those of :func:`recsys.precompute.precompute`, in its order: every item with a
    vector (``row`` its row in the run), then the catalogue items the run's fallback chain serves
    (``row`` from the number of vectors on), each answered as the live API answers it. Every
    partition turns its answers into Arrow batches column-wise and, given ``checks`` (a
    :class:`recsys.checks.ListChecks`), checks its own lists; what it found comes back, once
    an action has run the table, through the returned :class:`_Parts`.

    Returns
    -------
    (pyspark.sql.DataFrame, dict, _Parts)
        Rows ``row``, ``item_id``, ``neighbors`` (array<string>), ``scores``
        (array<double>, null where not finite) and ``served_by`` (array<string>): the entries
        :func:`recsys.precompute.precompute` stores; the metadata record of :func:`recsys.precompute.make_table_meta`; the
        partitions' reports (and ``by_fallback``, the rows the chain serves).
    """
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType

    from recsys.precompute import CHECK_CHUNK, make_table_meta, run_stamp, table_inputs

    root, registry, run, config = table_inputs(root, run_id, preset, k, need_vectors=True)
    stamp = run_stamp(registry, run_id)
    name = f"recsys-run-{uuid.uuid4().hex[:12]}"
    staging = _staging_dir()
    by_chain = _bundle_run(registry, run_id, root, staging, name)
    n_vec = int(len(np.load(staging / name / "item_ids.npy", allow_pickle=False)))
    n = n_vec + len(by_chain)
    spark.sparkContext.addFile(str(staging / name), recursive=True)
    meta = make_table_meta(root, run_id, run, preset, config, k, stamp)
    cfg_dict = config.canonical()
    parts = _Parts(spark, checks, len(by_chain))
    acc, template = parts.acc, parts.template
    schema = StructType(
        [
            StructField("row", LongType(), False),
            StructField("item_id", StringType(), False),
            StructField("neighbors", ArrayType(StringType()), False),
            StructField("scores", ArrayType(DoubleType()), False),
            StructField("served_by", ArrayType(StringType()), False),
        ]
    )

    def answer(batches: Iterator[Any]) -> Iterator[Any]:
        from recsys.filters import FilterConfig

        w = _worker_run(name)
        cfg = FilterConfig.from_dict(cfg_dict)
        threads = _task_cpus()
        mine = template.value.blank() if template is not None else None
        check_s, n_rows, first = 0.0, 0, None
        for batch in batches:
            rows = batch.column(0).to_numpy()
            for start in range(0, len(rows), batch_size):
                part = rows[start : start + batch_size]
                first = int(part[0]) if first is None else first
                vec = part[part < n_vec]
                seeds = [w.ids[r] for r in vec]
                results = list(w.searcher.search_many(seeds, cfg, k, num_threads=threads)) if len(vec) else []
                for r in part[part >= n_vec]:  # the fallback chain's seeds come last, as in precompute
                    seeds.append(w.by_chain[r - n_vec])
                    results.append(w.fallback(seeds[-1], cfg, k))
                n_rows += len(part)
                out = _lists_batch(part, seeds, results)
                if mine is not None:
                    t0 = time.perf_counter()
                    for at in range(0, len(seeds), CHECK_CHUNK):
                        chunk = range(at, min(at + CHECK_CHUNK, len(seeds)))
                        mine.add({seeds[j]: results[j].item_ids for j in chunk})
                    check_s += time.perf_counter() - t0
                yield out
        if first is not None:
            acc.add({first: {"rows": n_rows, "checks": mine.partial() if mine else None, "check_s": check_s}})

    n_parts = partitions or spark.sparkContext.defaultParallelism
    table = spark.range(0, n, numPartitions=max(1, min(n_parts, max(n, 1)))).mapInArrow(answer, schema)
    return table, meta, parts


def spark_precompute(
    spark: Any,
    root: str | os.PathLike[str] | None,
    run_id: str,
    preset: str,
    *,
    k: int = 20,
    out: str | os.PathLike[str] | None = None,
    store: Any = None,
    write_store: bool = False,
    partitions: int | None = None,
    mode: str = "error",
    checks: Any = None,
) -> dict[str, Any]:
    """Filtered top-k of every item of a run for a preset, computed by Spark.

    The rows, and the behavioural checks, are those of :func:`recsys.precompute.precompute`
    (the same searcher, the run's fallback chain for the catalogue items without a vector, the
    same :class:`recsys.precompute.PublishChecks`). Each partition checks its own lists; the
    driver merges the partitions' partial checks in table order (the report equals the
    single-machine one) and never reads the table back for them. A table failing a blocking
    check is not published (:class:`recsys.checks.ChecksFailedError`): the store is not touched
    (it keeps serving its old table), and the Parquet output this job wrote is deleted. The
    checks read the run's dataset (its baskets and held-out cases) on the driver, and ship
    the catalogue and baskets to the executors (a broadcast).

    Parameters
    ----------
    out : path-like, optional
        Write the table as Parquet here (``run_id``, ``preset_hash``, ``row``,
        ``item_id``, ``neighbors``, ``scores``, ``served_by``), one file per partition, in row order.
    store : TopKStore or str, optional
        With ``write_store``: where to write (a store, Redis URL or SQLite path;
        default ``<root>/precomputed.sqlite``), atomically as :func:`recsys.precompute.precompute`
        does. Rows stream to the driver partition by partition (from ``out`` when given, else
        from the table, cached on the executors while it streams).
    partitions : int, optional
        Item partitions (default: Spark's default parallelism).
    checks : recsys.checks.CheckThresholds or False, optional
        As :func:`recsys.precompute.precompute` (default: ``<root>/checks.json`` or ``.yaml``
        when present, else the defaults; False skips the checks).

    Returns
    -------
    dict
        The table's metadata plus ``n_items``, ``by_fallback`` (rows the run's fallback chain
        serves), ``out``, ``location`` (store), ``seconds`` and ``checks`` (the checks' report,
        when they ran; its ``seconds`` sum the partitions' time in them).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from recsys.checks import ChecksFailedError
    from recsys.config import data_dir
    from recsys.precompute import PublishChecks, TopKStore, open_store
    from recsys.registry import Registry

    if out is None and not write_store:
        raise RecsysError("nothing to write: give an output path (--out) or ask for the store (--store)")
    t0 = time.perf_counter()
    root = data_dir(root)
    gate = None if checks is False else PublishChecks.for_run(Registry(root), run_id, preset, k, checks)
    table, meta, parts = spark_topk(
        spark, root, run_id, preset, k=k, partitions=partitions, checks=gate.checks if gate else None
    )
    result: dict[str, Any] = {**meta, "by_fallback": parts.by_fallback}
    cached = None
    if out is not None:
        (
            table.select(F.lit(run_id).alias("run_id"), F.lit(meta["preset_hash"]).alias("preset_hash"), "*")
            .write.mode(mode)
            .parquet(str(out))
        )
        result["out"] = str(out)
        source = spark.read.parquet(str(out)).select("item_id", "neighbors", "scores", "served_by")
    else:  # computed once, in parallel; the store then reads it partition by partition
        cached = source = table.persist(StorageLevel.MEMORY_AND_DISK)
        source.count()
    n = parts.rows()
    try:
        if gate is not None:
            parts.merge_into(gate)
            gate()  # ChecksFailedError on a blocking failure, before anything is published
        if write_store:
            target = store if isinstance(store, TopKStore) else open_store(store, root=root)
            try:

                def rows() -> Iterator[tuple[str, list[Any]]]:
                    for r in source.toLocalIterator(prefetchPartitions=True):
                        yield (
                            r["item_id"],
                            list(zip(r["neighbors"], r["scores"], r["served_by"], strict=True)),
                        )

                n = target.write_table(meta, rows())
                result["location"] = target.location
            finally:
                if not isinstance(store, TopKStore):
                    target.close()
    except ChecksFailedError:
        if out is not None:
            _delete_path(spark, str(out))  # a refused table is not left behind as Parquet either
        raise
    finally:
        if cached is not None:
            cached.unpersist()
    result["n_items"] = int(n)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    if gate is not None:
        result["checks"] = gate.summary()
    logger.info(
        "spark: top-%d of %d items for run %s preset %s in %.1f s", k, n, run_id, preset, result["seconds"]
    )
    return result


def _delete_path(spark: Any, path: str) -> None:
    """Delete a file or folder on any file system Spark reaches (local, HDFS, S3...)."""
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(target, True)
