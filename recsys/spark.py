"""The batch half of the pipeline on Apache Spark, for event logs and catalogues that outgrow one machine.

Spark does the distribution; the project's own code does the work inside each
partition, so the answers equal the single-machine ones (parity tests in
``tests/unit/test_spark.py``). PySpark is imported only inside these functions:
the dashboard and the library never need it.

Jobs (``python -m recsys spark ...``; Parquet in and out, on any path Spark reaches):

``sequences`` (:func:`spark_build_sequences`)
    Event logs (the import schema) to ordered item sequences, with the rules of
    :func:`recsys.sequences.build_sequences` written as DataFrame operations:
    session-gap sessionisation (window ``lag`` over each sequence), the event-type
    filter, context separation by category level and gender (a join with the
    catalogue), consecutive de-duplication and the maximum length (window ranks).
    Every window is partitioned by ``sequence_id`` (or a superset of it), so Spark
    shuffles the events once by sequence.
``train prod2vec`` (:func:`train_prod2vec`)
    Word2Vec stays gensim, on the driver, streaming the sequences from Parquet in
    record batches (memory bounded by one batch plus the vocabulary). Spark MLlib's
    ``Word2Vec`` is not used: it has no negative-sampling exponent (``ns_exponent``),
    the setting that matters most for recommendation (Caselles-Dupré et al., 2018),
    nor the output vectors the "in-out" and "input+output" spaces use.
``vectors`` (:func:`spark_vectors`)
    Batch inference of a saved model with a ``transform`` (or ``embed``, the content
    model's name for it) over a catalogue, in a pandas UDF; the model folder is
    shipped with ``SparkContext.addFile`` and loaded once per Python worker.
``precompute`` (:func:`spark_precompute`, in :mod:`recsys.spark_topk`)
    The filtered top-k of every item of a run for a preset: a bundle of the run's
    vectors, its ``index.bin``, the dataset's catalogue and the run's fallback chain is
    shipped with ``addFile`` and loaded once per Python worker into the same
    :class:`~recsys.search.FilteredSearcher` that Explore and the API use; each
    partition answers its items with ``search_many`` (and the items without a vector
    with the fallback chain) and checks its own lists. Output Parquet and, when
    asked, the precompute store the API serves from; the behavioural checks of
    ``recsys precompute`` gate both (a table failing a blocking check is not published).

Python workers are reused between tasks (Spark's default
``spark.python.worker.reuse=true``), so "once per worker" is once per executor
core for the life of the job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataValidationError, RecsysError

logger = logging.getLogger(__name__)

#: Columns of a sequences table (``spark sequences`` output).
SEQUENCE_COLUMNS = ("sequence_id", "session", "part", "chunk", "items", "seq_order")
#: Sort a sequences table by these to get :func:`recsys.sequences.build_sequences`' order.
SEQUENCE_ORDER = ("seq_order", "session", "part", "chunk")


class SparkUnavailableError(RecsysError):
    """Spark cannot start here (no Java runtime, or PySpark missing)."""


# ---------------------------------------------------------------------------
# session
# ---------------------------------------------------------------------------
def java_available() -> bool:
    """Whether a Java runtime is reachable (``JAVA_HOME`` or ``java`` on the PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return True
    return shutil.which("java") is not None


def get_spark(master: str = "local[*]", app_name: str = "recsys", conf: dict[str, str] | None = None) -> Any:
    """A SparkSession for ``master`` (``local[*]``, ``yarn``, ``k8s://...``, ``spark://...``).

    Python workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise, so
    they see the same packages (numpy, hnswlib, gensim, recsys). The session time
    zone is UTC, as stored timestamps are. Under ``spark-submit`` the submitted
    master wins (``getOrCreate`` returns the running session).

    Raises
    ------
    SparkUnavailableError
        PySpark is not installed or no Java runtime is found.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SparkUnavailableError("PySpark is not installed: pip install pyspark==4.3.0") from exc
    if not java_available():
        raise SparkUnavailableError(
            "Spark needs a Java runtime (17 or 21) and none was found: install one "
            "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.pythonUDF.arrow.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        # pandas writes timestamp[ns]; Spark reads those columns only as epoch nanoseconds
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_table(spark: Any, path: str | os.PathLike[str]) -> Any:
    """A Parquet file or folder, or a CSV file (header row, text cells), as a DataFrame."""
    p = str(path)
    if p.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        sep = "\t" if ".tsv" in p else ","
        return spark.read.option("header", "true").option("sep", sep).csv(p)
    return spark.read.parquet(p)


def _dataset_paths(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """(events, catalogue) of a stored dataset folder, or (path, None) for a file."""
    folder = Path(path)
    if folder.is_dir() and (folder / "interactions.parquet").exists():
        cat = folder / "catalog.parquet"
        return str(folder / "interactions.parquet"), str(cat) if cat.exists() else None
    return str(path), None


# ---------------------------------------------------------------------------
# sequences
# ---------------------------------------------------------------------------
def spark_build_sequences(
    events: Any,
    catalog: Any = None,
    *,
    separate_by: str | None = None,
    category_level: int = 0,
    max_len: int | None = 20,
    min_len: int = 2,
    event_types: str | Iterable[str] | None = None,
    dedupe_consecutive: bool = True,
    session_gap: float | None = None,
) -> Any:
    """:func:`recsys.sequences.build_sequences` as Spark DataFrame operations.

    Parameters
    ----------
    events : pyspark.sql.DataFrame
        The import schema: ``sequence_id``, ``item_id`` and, when present,
        ``position``, ``timestamp``, ``event_type``. Rows are numbered in the order
        read (``monotonically_increasing_id``): that is the "as stored" order of
        sequences and the tie-break of equal positions, as in ``build_sequences``.
    catalog : pyspark.sql.DataFrame, optional
        ``item_id``, ``category`` (and ``gender``), needed by ``separate_by``.
    separate_by, category_level, max_len, min_len, event_types, dedupe_consecutive, session_gap
        As :func:`recsys.sequences.build_sequences`.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per sequence: ``sequence_id``, ``session`` (number of the session
        inside the stored sequence), ``part`` (rank of the first item of its context
        group), ``chunk`` (``max_len`` chunk number), ``items`` (array of item ids)
        and ``seq_order`` (first row of the stored sequence). Sorted by
        :data:`SEQUENCE_ORDER` it lists exactly ``build_sequences``' output.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from recsys.sequences import check_sequence_options, new_session

    check_sequence_options(separate_by, max_len, min_len, session_gap)
    cols = set(events.columns)
    for col in ("sequence_id", "item_id"):
        if col not in cols:
            raise DataValidationError("interactions have no such column", column=col)
    wanted = None
    if event_types is not None:
        wanted = [event_types] if isinstance(event_types, str) else list(event_types)
        if "event_type" not in cols:
            raise DataValidationError("cannot filter by event type: no such column", column="event_type")
    if session_gap is not None and "timestamp" not in cols:
        raise DataValidationError("cannot cut sessions by time: no such column", column="timestamp")

    df = events.withColumn("_row", F.monotonically_increasing_id())
    df = df.select(
        F.col("sequence_id").cast("string").alias("sequence_id"),
        F.col("item_id").cast("string").alias("item_id"),
        (F.col("position").cast("double") if "position" in cols else F.col("_row").cast("double")).alias(
            "_pos"
        ),
        "_row",
        *(["event_type"] if wanted is not None else []),
        *(
            [_micros(events.schema["timestamp"].dataType, F.col("timestamp")).alias("_us")]
            if session_gap
            else []
        ),
    )
    by_seq = Window.partitionBy("sequence_id").orderBy(F.col("_pos").asc_nulls_last(), "_row")
    if session_gap is not None:
        prev = F.lag("_us").over(by_seq)
        seconds = (F.col("_us") - prev) / F.lit(1e6)
        cut = F.coalesce(new_session(seconds, F.lit(float(session_gap))), F.lit(False))
        df = df.withColumn("_cut", cut.cast("long")).withColumn(
            "session",
            F.sum("_cut").over(by_seq.rowsBetween(Window.unboundedPreceding, Window.currentRow)),
        )
    else:
        df = df.withColumn("session", F.lit(0).cast("long"))
    if wanted is not None:
        df = df.filter(F.col("event_type").isin(wanted))

    if separate_by is not None:
        if catalog is None:
            raise DataValidationError(
                f"separate_by={separate_by!r} needs a catalog with categories: pass the dataset's catalogue"
            )
        if "category" not in catalog.columns:
            raise DataValidationError(
                "catalog has no such column (needed for context separation)", column="category"
            )
        if category_level < 0:
            raise ValueError(f"category level must be >= 0, got {category_level}")
        from recsys.data.schema import CATEGORY_SEP

        parts = F.split(F.coalesce(F.col("category").cast("string"), F.lit("")), CATEGORY_SEP, -1)
        ctx = F.array_join(F.slice(parts, 1, category_level + 1), CATEGORY_SEP)
        if separate_by == "category+gender":
            if "gender" not in catalog.columns:
                raise DataValidationError(
                    "catalog has no such column (separate_by='category+gender')", column="gender"
                )
            ctx = F.concat(ctx, F.lit("|"), F.coalesce(F.col("gender").cast("string"), F.lit("")))
        ctx_table = catalog.select(F.col("item_id").cast("string").alias("item_id"), ctx.alias("_ctx"))
        ctx_table = ctx_table.dropDuplicates(["item_id"])
        df = df.join(ctx_table, "item_id", "left").withColumn("_ctx", F.coalesce("_ctx", F.lit("")))
    else:
        df = df.withColumn("_ctx", F.lit(""))

    group = ["sequence_id", "session"]
    context = [*group, "_ctx"]
    df = df.withColumn("seq_order", F.min("_row").over(Window.partitionBy("sequence_id")))
    in_group = Window.partitionBy(*group).orderBy(F.col("_pos").asc_nulls_last(), "_row")
    df = df.withColumn("_r", F.row_number().over(in_group))
    df = df.withColumn("part", F.min("_r").over(Window.partitionBy(*context)))
    by_ctx = Window.partitionBy(*context).orderBy("_r")
    if dedupe_consecutive:
        df = df.withColumn("_prev", F.lag("item_id").over(by_ctx))
        df = df.filter(F.col("_prev").isNull() | (F.col("_prev") != F.col("item_id")))
    if max_len is not None:
        rank = F.row_number().over(by_ctx) - 1
        df = df.withColumn("chunk", F.floor(rank / F.lit(max_len)).cast("long"))
    else:
        df = df.withColumn("chunk", F.lit(0).cast("long"))
    out = (
        df.groupBy(*context, "part", "chunk")
        .agg(
            F.sort_array(F.collect_list(F.struct("_r", "item_id"))).alias("_s"),
            F.min("seq_order").alias("seq_order"),
        )
        .withColumn("items", F.transform("_s", lambda x: x["item_id"]))
        .filter(F.size("items") >= min_len)
    )
    return out.select(*SEQUENCE_COLUMNS)


def _micros(dtype: Any, col: Any) -> Any:
    """Microseconds since the epoch of a timestamp column.

    Timestamps (and ISO strings) are converted by Spark; integers are epoch numbers
    whose unit is read from their size, as the importer does (nanoseconds: what Spark
    reads pandas' ``timestamp[ns]`` Parquet columns as, with
    ``spark.sql.legacy.parquet.nanosAsLong``; micro-, milliseconds or seconds).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType, IntegerType, LongType

    if isinstance(dtype, (LongType, IntegerType, DoubleType, FloatType)):
        v = col.cast("double")
        a = F.abs(v)
        scaled = F.when(a >= 1e17, v / 1e3).when(a >= 1e14, v).when(a >= 1e11, v * 1e3).otherwise(v * 1e6)
        return F.floor(scaled).cast("long")
    return F.unix_micros(col.cast("timestamp"))


def collect_sequences(table: Any) -> list[list[str]]:
    """A sequences DataFrame (or a pandas frame of one) as ``build_sequences``' list, in its order."""
    pdf = table if isinstance(table, pd.DataFrame) else table.toPandas()
    pdf = pdf.sort_values(list(SEQUENCE_ORDER), kind="stable")
    return [list(map(str, items)) for items in pdf["items"]]


def run_sequences(
    spark: Any,
    events_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    catalog_path: str | os.PathLike[str] | None = None,
    mode: str = "error",
    **rules: Any,
) -> dict[str, Any]:
    """Read events (a file, or a stored dataset folder), build sequences, write them as Parquet.

    Returns ``{"sequences": n, "out": path, "seconds": s}``.
    """
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    events_file, stored_catalog = _dataset_paths(events_path)
    catalog_file = str(catalog_path) if catalog_path is not None else stored_catalog
    events = read_table(spark, events_file)
    catalog = read_table(spark, catalog_file) if catalog_file and rules.get("separate_by") else None
    table = spark_build_sequences(events, catalog, **rules)
    table.write.mode(mode).parquet(str(out))
    n = spark.read.parquet(str(out)).agg(F.count(F.lit(1))).first()[0]
    return {"sequences": int(n), "out": str(out), "seconds": round(time.perf_counter() - t0, 3)}


# ---------------------------------------------------------------------------
# training: gensim on the driver, sequences streamed from Parquet
# ---------------------------------------------------------------------------
class ParquetSequences:
    """A restartable iterable over the ``items`` column of a sequences Parquet table.

    Each pass reads the files in record batches of ``batch_rows`` rows, so memory
    holds one batch whatever the table's size; gensim makes one pass for the
    vocabulary and one per epoch.
    """

    def __init__(self, path: str | os.PathLike[str], column: str = "items", batch_rows: int = 65536) -> None:
        import pyarrow.dataset as pads

        self.path = str(path)
        self.column = column
        self.batch_rows = int(batch_rows)
        try:
            self._dataset = pads.dataset(self.path, format="parquet")
        except (OSError, ValueError) as exc:
            raise DataValidationError(f"not a readable Parquet table ({exc})", file=self.path) from exc
        if column not in self._dataset.schema.names:
            raise DataValidationError(
                f"no '{column}' column; columns present: {', '.join(self._dataset.schema.names)}",
                file=self.path,
                column=column,
            )
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = int(self._dataset.count_rows())
        return self._len

    def __iter__(self) -> Iterator[list[str]]:
        for batch in self._dataset.to_batches(columns=[self.column], batch_size=self.batch_rows):
            for items in batch.column(0).to_pylist():
                if items:
                    yield [str(i) for i in items]


def train_prod2vec(
    sequences_path: str | os.PathLike[str],
    dataset_name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    params: dict[str, Any] | None = None,
    label: str | None = None,
    batch_rows: int = 65536,
    activate: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Train Prod2Vec (gensim, on this machine) on a sequences table and register the run.

    The sequence rules (sessions, contexts, max length) were applied by
    ``spark sequences``; the model's own ``separate_by``/``max_len``/``dedupe`` are not
    applied again. The run gets an HNSW index like any trained run, and no offline
    metrics (there is no held-out split here: evaluate it with ``recsys evaluate``).

    Returns
    -------
    dict
        The new run's run.json.
    """
    from recsys.config import data_dir
    from recsys.data.schema import dataset_meta, load_stored_catalog
    from recsys.models.prod2vec import Prod2Vec
    from recsys.pipeline import _index_writer
    from recsys.registry import Registry

    corpus = ParquetSequences(sequences_path, batch_rows=batch_rows)

    class StreamedProd2Vec(Prod2Vec):
        """Prod2Vec whose sentences are streamed from Parquet (saved and loaded as ``prod2vec``)."""

        def _sequences(self, dataset: Any) -> Any:
            return corpus

    root = data_dir(root)
    registry = Registry(root)
    fingerprint = dataset_meta(dataset_name, root).get("fingerprint", "")
    catalog = load_stored_catalog(dataset_name, root)
    model = StreamedProd2Vec(**(params or {}))
    t0 = time.perf_counter()
    model.fit(SimpleNamespace(name=dataset_name, catalog=catalog), progress=progress)
    fit_s = round(time.perf_counter() - t0, 3)
    meta = registry.create_run(
        model,
        dataset_name=dataset_name,
        dataset_fingerprint=fingerprint,
        timings={"fit_s": fit_s},
        extra={
            "trained_on": {"sequences": str(sequences_path), "sequences_count": len(corpus), "by": "spark"},
            "device": {"device": "CPU"},
        },
        writers=[_index_writer(model, {})],
        label=label,
    )
    if activate:
        registry.activate(meta["run_id"])
    return meta


# ---------------------------------------------------------------------------
# shipping files to executors, loaded once per Python worker
# ---------------------------------------------------------------------------
_WORKER_CACHE: dict[str, Any] = {}


def _shipped(name: str) -> Path:
    """The local copy of a folder shipped with ``addFile(..., recursive=True)``."""
    from pyspark import SparkFiles

    return Path(SparkFiles.get(name))


def _staging_dir() -> Path:
    """A temporary folder for files to ship, removed when this process exits (the executors
    fetch shipped files while the job runs, so it must outlive the lazy DataFrame)."""
    import atexit

    path = Path(tempfile.mkdtemp(prefix="recsys-spark-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# ---------------------------------------------------------------------------
# vectors: batch inference of a model with transform/embed
# ---------------------------------------------------------------------------
def _inference(model: Any) -> Any:
    fn = getattr(model, "transform", None) or getattr(model, "embed", None)
    if fn is None:
        raise RecsysError(
            f"a {type(model).__name__} model has no transform (or embed) method: it cannot embed "
            "catalogue rows; pick a content model run"
        )
    return fn


def _worker_model(name: str) -> Any:
    model = _WORKER_CACHE.get(name)
    if model is None:
        from recsys.models import get_model_class

        path = _shipped(name)
        meta = json.loads((path / "model.json").read_text())
        model = get_model_class(meta["family"]).load(path)
        _WORKER_CACHE[name] = model
        logger.info("loaded model %s in worker %d", name, os.getpid())
    return model


def spark_vectors(
    spark: Any,
    model_dir: str | os.PathLike[str],
    catalog: Any,
    *,
    partitions: int | None = None,
) -> Any:
    """Vectors of every catalogue row from a saved model, computed on the executors.

    Parameters
    ----------
    model_dir : path-like
        A run folder or a folder written by ``model.save`` (``model.json`` inside),
        of a model with ``transform`` or ``embed`` (the content model).
    catalog : pyspark.sql.DataFrame
        The catalogue (the import schema; the columns the model reads).
    partitions : int, optional
        Repartition the catalogue first (default: as read).

    Returns
    -------
    pyspark.sql.DataFrame
        ``item_id`` (string), ``vector`` (array<float>): one list column, the layout
        ``import-vectors`` reads.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    from recsys.models import get_model_class

    folder = Path(model_dir)
    if not (folder / "model.json").exists():
        raise DataValidationError(
            "not a model folder (no model.json); pass a run folder (<data dir>/runs/<run id>)",
            file=str(folder),
        )
    family = json.loads((folder / "model.json").read_text())["family"]
    _inference(get_model_class(family))  # refuse a model without transform before shipping it
    name = f"recsys-model-{uuid.uuid4().hex[:12]}"
    staging = _staging_dir()
    shutil.copytree(folder, staging / name, copy_function=_link_or_copy)
    spark.sparkContext.addFile(str(staging / name), recursive=True)
    columns = catalog.columns

    @pandas_udf("array<float>")
    def embed(rows: pd.DataFrame) -> pd.Series:
        model = _worker_model(name)
        frame = rows.copy()
        for col in ("title", "description", "brand", "category", "gender", "image_url"):
            if col in frame:
                frame[col] = frame[col].fillna("").astype(str)
        vecs = np.asarray(_inference(model)(frame.reset_index(drop=True)), dtype=np.float32)
        return pd.Series(list(vecs))

    cat = catalog.repartition(partitions) if partitions else catalog
    return cat.select(
        F.col("item_id").cast("string").alias("item_id"), embed(F.struct(*columns)).alias("vector")
    )


def __getattr__(name: str) -> Any:
    """``spark_topk`` and ``spark_precompute`` live in :mod:`recsys.spark_topk` (which imports the
    helpers above), read from there on first use."""
    if name in ("spark_topk", "spark_precompute"):
        from recsys import spark_topk as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
