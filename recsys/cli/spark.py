"""``recsys spark ...``: batch jobs on Apache Spark (sequences, train, vectors, precompute)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recsys.cli.common import (
    _duration_s,
    _int_at_least,
    _parse_pairs,
    _print_json,
    _print_runs_table,
    _progress,
    _registry,
)
from recsys.errors import RecsysError


def _spark_session(args: argparse.Namespace, name: str) -> Any:
    from recsys.spark import get_spark

    conf = _parse_pairs(args.conf, "--conf")
    return get_spark(args.master, app_name=f"recsys {name}", conf={k: str(v) for k, v in conf.items()})


def cmd_spark_sequences(args: argparse.Namespace) -> int:
    from recsys.spark import run_sequences

    spark = _spark_session(args, "sequences")
    result = run_sequences(
        spark,
        args.events,
        args.out,
        catalog_path=args.catalog,
        mode="overwrite" if args.overwrite else "error",
        separate_by=args.separate_by,
        category_level=args.category_level,
        max_len=None if args.max_len == 0 else args.max_len,
        min_len=args.min_len,
        event_types=args.event_types,
        dedupe_consecutive=not args.keep_repeats,
        session_gap=args.session_gap,
    )
    _print_json(result)
    return 0


def cmd_spark_train(args: argparse.Namespace) -> int:
    from recsys.spark import train_prod2vec

    bar = _progress(args, "train prod2vec")
    meta = train_prod2vec(
        args.sequences,
        args.dataset,
        args.data_dir,
        params=_parse_pairs(args.param, "--param"),
        label=args.label,
        batch_rows=args.batch_rows,
        activate=args.activate,
        progress=bar,
    )
    bar.close()
    _print_runs_table(args, [meta])
    return 0


def cmd_spark_vectors(args: argparse.Namespace) -> int:
    import time

    from recsys.spark import _dataset_paths, read_table, spark_vectors

    model_dir = Path(args.model)
    if not model_dir.exists():  # a run id
        model_dir = _registry(args).run_dir(args.model)
    spark = _spark_session(args, "vectors")
    t0 = time.perf_counter()
    events, stored_catalog = _dataset_paths(args.catalog)
    table = spark_vectors(
        spark, model_dir, read_table(spark, stored_catalog or events), partitions=args.partitions
    )
    table.write.mode("overwrite" if args.overwrite else "error").parquet(args.out)
    n = spark.read.parquet(args.out).count()
    _print_json({"items": n, "out": args.out, "seconds": round(time.perf_counter() - t0, 3)})
    return 0


def cmd_spark_precompute(args: argparse.Namespace) -> int:
    from recsys.checks import load_thresholds
    from recsys.spark import spark_precompute

    if not args.out and not args.store:
        raise RecsysError("nothing to write: give --out PATH (Parquet) and/or --store")
    checks = load_thresholds(args.thresholds, args.data_dir)  # a bad file is refused before Spark starts
    spark = _spark_session(args, "precompute")
    store = args.redis_url or args.store_path
    meta = spark_precompute(
        spark,
        args.data_dir,
        args.run,
        args.preset,
        k=args.k,
        out=args.out,
        store=store,
        write_store=args.store,
        partitions=args.partitions,
        mode="overwrite" if args.overwrite else "error",
        checks=checks,
    )
    _print_json({k: v for k, v in meta.items() if k != "config"})
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``spark`` command and its jobs."""
    sp = sub.add_parser(
        "spark",
        help="batch jobs on Apache Spark: sequences, train prod2vec, vectors, precompute",
        description="Run the batch half of the pipeline on Spark (local or a cluster). Every job "
        "reads and writes Parquet on any path Spark can reach (local, HDFS, S3...). Needs PySpark and "
        "a Java runtime.",
    )
    jobs = sp.add_subparsers(dest="spark_command", required=True, metavar="JOB")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--master", default="local[*]", help="Spark master (default local[*]; yarn, k8s://...)"
        )
        p.add_argument(
            "--conf",
            nargs="*",
            metavar="KEY=VALUE",
            help="Spark settings, e.g. --conf spark.executor.memory=8g",
        )
        p.add_argument("--overwrite", action="store_true", help="replace the output path if it exists")

    p = jobs.add_parser(
        "sequences",
        help="event logs -> ordered item sequences (Parquet)",
        description="Sessionise (optional time gap), filter event types, separate contexts, "
        "de-duplicate and cut event logs into item sequences, with the rules of the single-machine "
        "build_sequences. Input: a stored dataset folder (<data dir>/datasets/NAME) or an "
        "interactions Parquet/CSV in the import schema.",
    )
    common(p)
    p.add_argument("events", help="dataset folder, or interactions Parquet file/folder or CSV")
    p.add_argument("--out", required=True, help="output Parquet folder")
    p.add_argument("--catalog", default=None, help="catalogue Parquet/CSV (default: the dataset folder's)")
    p.add_argument("--separate-by", default=None, choices=["category", "category+gender"])
    p.add_argument("--category-level", type=_int_at_least(0), default=0, help="context level (default 0)")
    p.add_argument("--max-len", type=_int_at_least(0), default=20, help="longest sequence; 0 = no limit")
    p.add_argument("--min-len", type=_int_at_least(1), default=2, help="shortest sequence kept (default 2)")
    p.add_argument("--event-types", nargs="*", default=None, help="keep only these event types")
    p.add_argument("--session-gap", type=_duration_s, default=None, help="cut sessions at gaps, e.g. 30m")
    p.add_argument("--keep-repeats", action="store_true", help="keep consecutive repeats of an item")
    p.set_defaults(func=cmd_spark_sequences)

    p = jobs.add_parser(
        "train",
        help="train prod2vec (gensim on the driver) on a sequences table",
        description="Word2Vec stays gensim on the driver (Spark MLlib's Word2Vec has no "
        "negative-sampling exponent); the sequences stream from Parquet in record batches.",
    )
    p.add_argument("family", choices=["prod2vec"])
    p.add_argument("--sequences", required=True, help="sequences Parquet (output of 'spark sequences')")
    p.add_argument("--dataset", required=True, help="the stored dataset whose catalogue the run serves")
    p.add_argument("--param", nargs="*", metavar="NAME=VALUE", help="model parameters")
    p.add_argument("--label", default=None)
    p.add_argument("--activate", action="store_true")
    p.add_argument("--batch-rows", type=_int_at_least(1), default=65536, help="sequences per read batch")
    p.set_defaults(func=cmd_spark_train)

    p = jobs.add_parser(
        "vectors",
        help="vectors of every catalogue row from a saved content model (pandas UDF)",
        description="Batch inference of a model with transform/embed (the content model) over a "
        "catalogue; the model folder is shipped to the executors and loaded once per worker.",
    )
    common(p)
    p.add_argument("--model", required=True, help="run id or model folder (with model.json)")
    p.add_argument("--catalog", required=True, help="catalogue Parquet/CSV or a dataset folder")
    p.add_argument("--out", required=True, help="output Parquet folder (item_id, vector)")
    p.add_argument("--partitions", type=_int_at_least(1), default=None)
    p.set_defaults(func=cmd_spark_vectors)

    p = jobs.add_parser(
        "precompute",
        help="filtered top-k of every item of a run and preset, on Spark",
        description="The same FilteredSearcher as Explore and the API, one per executor worker. "
        "Writes Parquet (--out) and/or the precompute store the API serves from (--store). The "
        "behavioural checks of 'precompute' run on the table as it streams to the driver; a table "
        "failing a blocking check is not published (the store keeps its old table, the Parquet "
        "output is deleted).",
    )
    common(p)
    p.add_argument("--run", required=True)
    p.add_argument("--preset", required=True)
    p.add_argument("--k", type=_int_at_least(1), default=20)
    p.add_argument("--out", default=None, help="output Parquet folder")
    p.add_argument("--store", action="store_true", help="also write the precompute store")
    p.add_argument("--store-path", default=None, help="SQLite file (default <data-dir>/precomputed.sqlite)")
    p.add_argument("--redis-url", default=None, help="write the store to Redis instead")
    p.add_argument("--partitions", type=_int_at_least(1), default=None, help="item partitions")
    p.add_argument(
        "--thresholds",
        default=None,
        metavar="FILE",
        help="behavioural checks' thresholds, as 'precompute' (a table failing a blocking check is not published)",
    )
    p.set_defaults(func=cmd_spark_precompute)
