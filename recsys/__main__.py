"""Command line: ``python -m recsys ...`` (run with ``--help`` for the commands)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recsys.config import ENV_DATA_DIR, Progress, data_dir
from recsys.errors import RecsysError

logger = logging.getLogger("recsys.cli")


class TqdmProgress:
    """A ``progress(done, total, message)`` callable drawing a tqdm bar."""

    def __init__(self, desc: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=1, desc=desc, disable=not enabled, unit="", bar_format="{l_bar}{bar}| {postfix}"
        )

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(message[:60], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _progress(args: argparse.Namespace, desc: str) -> Progress | TqdmProgress:
    return TqdmProgress(desc, enabled=not args.quiet and sys.stderr.isatty() or args.progress)


def _parse_pairs(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    """Parse ``key=value`` options; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecsysError(f"{what} '{pair}' is not of the form key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``low``, else a usage error (not a traceback later)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def _positive(text: str) -> float:
    """An argparse ``type``: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_demo(args: argparse.Namespace) -> int:
    from recsys.pipeline import DEMO_FAMILIES, build_demo

    bar = _progress(args, "demo")
    result = build_demo(
        args.data_dir,
        n_items=args.items,
        seed=args.seed,
        families=args.families or DEMO_FAMILIES,
        progress=bar,
        project=False,  # no background jobs from a command that exits: `python -m recsys project`
    )
    bar.close()
    _print_runs_table(args, [r for r in _registry(args).list_runs() if r["run_id"] in result["runs"]])
    print(f"demo ready in {result['seconds']} s; data in {data_dir(args.data_dir)}")
    return 0


def _split_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    import csv

    return [c.strip() for c in next(csv.reader([text]))]


def cmd_import(args: argparse.Namespace) -> int:
    from recsys.data.adapters import import_dataset
    from recsys.data.mapping import parse_map_pairs

    mapping = parse_map_pairs(args.map)
    options: dict[str, Any] = {}
    if args.source == "csv":
        options = {
            "sep": args.sep,
            "header": args.header,
            "columns": _split_list(args.columns),
            "catalog_header": args.catalog_header,
            "catalog_columns": _split_list(args.catalog_columns),
            "catalog_encoding": args.catalog_encoding,
            "decimal": args.decimal,
            "tz": args.tz,
            "session_gap": args.session_gap,
            "event_map": args.event_map,
        }
    else:
        given = [
            flag
            for flag, value in (
                ("--sep", args.sep),
                ("--no-header/--header", args.header),
                ("--columns", args.columns),
                ("--catalog-columns", args.catalog_columns),
                ("--catalog-encoding", args.catalog_encoding),
                ("--decimal", args.decimal),
                ("--tz", args.tz),
                ("--session-gap", args.session_gap),
                ("--event-map", args.event_map),
                ("--catalog", args.catalog),
            )
            if value is not None
        ]
        if given:
            raise RecsysError(
                f"{', '.join(given)}: only for 'import csv'; the {args.source} importer knows its files"
            )
    if args.path is None and not (args.source == "csv" and args.catalog):
        raise RecsysError(
            "give the file to import (for csv: the events file, or a catalogue with --catalog FILE)"
        )
    ds = import_dataset(
        args.source,
        args.path,
        name=args.name,
        root=data_dir(args.data_dir),
        mapping=mapping or None,
        catalog_path=args.catalog,
        kind=args.kind,
        errors=args.errors,
        encoding=args.encoding,
        category_sep=args.category_sep,
        progress=None if args.dry_run else _progress(args, f"import {args.source}"),
        dry_run=args.dry_run,
        **options,
    )
    if args.dry_run:
        print(format_report(ds))
        print()
        print("first 5 parsed rows (nothing stored: --dry-run)")
        if len(ds.interactions):
            print("events:")
            print(ds.interactions.head(5).to_string(index=False))
        print("catalogue:")
        print(ds.catalog.head(5).to_string(index=False, max_colwidth=40))
        return 0
    _print_json({"dataset": ds.name, "summary": ds.summary(), "report": ds.report.to_dict()})
    if not args.quiet:
        print(format_report(ds), file=sys.stderr)
    return 0


def format_report(ds: Any) -> str:
    """The validation report as text lines (what was detected, dropped, filled, warned)."""
    r = ds.report
    s = ds.summary()
    lines = [
        f"dataset {ds.name}: {s['items']:,} items, {s['interactions']:,} interactions in "
        f"{s['sequences']:,} {'baskets' if ds.kind == 'baskets' else 'sessions'}, {s['users']:,} users, "
        f"{s['categories']:,} categories, {s['brands']:,} brands"
    ]
    for table, notes in r.reading.items():
        name = notes.get("file", table)
        lines.append(f"{table} ({name}):")
        for key, value in notes.items():
            if key != "file":
                lines.append(f"  {key}: {value}")
    for table, n in r.rows_read.items():
        lines.append(f"rows read, {table}: {n:,}")
    for reason, n in r.rows_dropped.items():
        lines.append(f"dropped {n:,} rows: {reason}")
    for w in r.warnings:
        lines.append(f"note: {w}")
    return "\n".join(lines)


def cmd_datasets(args: argparse.Namespace) -> int:
    from recsys.data.schema import dataset_meta, list_datasets

    root = data_dir(args.data_dir)
    for name in list_datasets(root):
        try:
            s = dataset_meta(name, root).get("summary", {})
        except RecsysError as exc:  # a damaged report.json: named, the others still listed
            print(f"{name:20s} DAMAGED   {exc}")
            continue
        print(
            f"{name:20s} {s.get('kind', ''):9s} items={s.get('items')} sequences={s.get('sequences')} "
            f"interactions={s.get('interactions')}"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from recsys.pipeline import train_run

    params = _parse_pairs(args.param, "--param")
    tune = None
    if args.tune:
        from recsys.tuning import parse_budget

        try:
            budget = parse_budget(args.budget)
        except ValueError as exc:
            print(f"error: --budget: {exc}", file=sys.stderr)
            return 2
        if args.tune_sample is not None and not 0 < args.tune_sample <= 1:
            print(f"error: --tune-sample must be in (0, 1], got {args.tune_sample}", file=sys.stderr)
            return 2
        tune = {"budget_s": budget, "n_trials": args.trials, "sample": args.tune_sample}
    bar = _progress(args, f"train {args.family}")
    meta = train_run(
        args.family,
        params,
        args.dataset,
        args.data_dir,
        split_method=_split_name(args.split or "time"),
        k=args.k,
        max_cases=args.max_cases,
        activate=args.activate or None,
        label=args.label,
        progress=bar,
        split_options=_split_options(args),
        test_dataset=args.test_dataset,
        repeats=args.repeats,
        tune=tune,
    )
    bar.close()
    _print_runs_table(args, [meta])
    if meta.get("tuning"):
        t = meta["tuning"]
        print(
            f"tuned on {t['validation']['validation_cases']} validation cases carved from the training part: "
            f"{t['n_trials']} trials in {t['seconds']} s, best {t['metric']} {t['best_value']:.4f} "
            f"(trial {t['best_trial']}; the fixed settings scored {t['start_value']}): {t['best_params']}"
        )
    if meta.get("metrics"):
        print()
        print(format_metrics(meta["metrics"]))
    _print_coverage(meta)
    return 0


def _split_name(value: str) -> str:
    return value.replace("-", "_")


def _split_options(args: argparse.Namespace) -> dict[str, Any]:
    """The split's options from the command line, refusing those of another split."""
    method = _split_name(args.split or "time")
    given = {
        "--test-fraction": ("test_fraction", args.test_fraction, ("time",)),
        "--cutoff": ("cutoff", args.cutoff, ("cutoff",)),
        "--days": ("test_days", args.days, ("last_days", "time")),
    }
    out: dict[str, Any] = {}
    for flag, (key, value, methods) in given.items():
        if value is None:
            continue
        if method not in methods:
            raise RecsysError(f"{flag} goes with --split {' or '.join(m.replace('_', '-') for m in methods)}")
        out[key] = value
    if method == "cutoff" and "cutoff" not in out:
        raise RecsysError("--split cutoff needs --cutoff DATE, e.g. --cutoff 2024-05-01")
    if method == "last_days" and "test_days" not in out:
        raise RecsysError("--split last-days needs --days N, e.g. --days 7")
    if getattr(args, "test_dataset", None) or getattr(args, "test", None):
        if args.split or out:
            raise RecsysError("a given test dataset is the split: drop --split and its options")
    return out


def format_metrics(m: dict[str, Any]) -> str:
    """Metrics with their 95% intervals and case counts, then the protocol and warnings."""
    k = m.get("k", 10)
    ci = m.get("ci95", {})
    lines = [f"{'metric':14s} {'value':>8s}  {'95% interval':>19s}"]
    for name in ("hr", "ndcg", "mrr", "precision", "recall", "coverage", "popularity_bias"):
        key = f"{name}@{k}"
        if key not in m:
            continue
        lo_hi = ci.get(key)
        interval = f"[{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]" if lo_hi else ""
        lines.append(f"{key:14s} {m[key]:8.4f}  {interval:>19s}")
    n_seeds = m.get("n_seeds", 0)
    no_recs = m.get("seeds_without_recs", 0)
    lines.append(f"cases: {m.get('n_cases', 0):,} ({n_seeds:,} distinct seeds)")
    proto = m.get("protocol") or {}
    if proto:
        what = proto.get("cases", "")
        if proto.get("cases") == "next item":
            what += f", repeats {proto.get('repeats')}"
        lines.append(f"protocol: {what}{', sampled' if proto.get('sampled') else ', every case scored'}")
    if n_seeds:
        lines.append(f"no recommendation for {no_recs:,} of {n_seeds:,} test seeds ({no_recs / n_seeds:.1%})")
    if "unknown_test_items" in m:
        lines.append(
            f"test items unknown to the training set: {m['unknown_test_items']:,} of {m.get('test_items', 0):,}"
        )
    for w in m.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _print_coverage(meta: dict[str, Any]) -> None:
    """What share of test seeds the fallback served and what share got nothing (never silent)."""
    m = meta.get("metrics", {})
    cov = meta.get("coverage", {})
    print(
        f"coverage: {cov.get('items_with_vector', '-')} of {cov.get('catalog_items', '-')} catalogue items "
        f"represented ({cov.get('from_fallback', 0)} by the fallback); test seeds served by the fallback "
        f"{m.get('fallback_share', 0.0):.1%}, by nothing {m.get('no_recommendation_share', 0.0):.1%}"
    )
    if m.get("coverage_warning"):
        print(f"WARNING: {m['coverage_warning']}", file=sys.stderr)
    rv = m.get("recent_views") or {}
    if rv:
        k = m.get("k", 10)
        parts = [f"{name} hr@{k}={v.get(f'hr@{k}', 0):.4f}" for name, v in rv.items()]
        print("recent views (every position): " + ", ".join(parts))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from recsys.data.schema import load_dataset
    from recsys.evaluation import evaluate, split

    run_id = args.run or args.run_id
    if not run_id:
        raise RecsysError("name the run: recsys evaluate --run RUN_ID (see 'recsys runs list')")
    if args.run and args.run_id and args.run != args.run_id:
        raise RecsysError("give the run once: either RUN_ID or --run RUN_ID")
    reg = _registry(args)
    meta = reg.get(run_id)
    model = reg.load_model(run_id)
    dataset = load_dataset(meta["dataset"]["name"], reg.root)
    stored = meta.get("split", {})
    options = _split_options(args)
    if args.test:
        train, test = dataset, load_dataset(args.test, reg.root)
    else:
        method = _split_name(args.split) if args.split else stored.get("method", "time")
        if method == "given":
            if not stored.get("test_dataset"):
                raise RecsysError("this run was tested on a given dataset; pass --test DATASET")
            train, test = dataset, load_dataset(stored["test_dataset"], reg.root)
        else:
            if not args.split:
                options = {k: stored[k] for k in ("test_fraction", "test_days", "cutoff") if k in stored}
            train, test = split(dataset, method=method, **options)
    basket_targets = stored.get("basket_targets", "next" if dataset.kind == "baskets" else "rest")
    metrics = evaluate(
        model,
        train,
        test,
        k=args.k,
        max_cases=args.max_cases,
        catalog=dataset.catalog,
        basket_targets=basket_targets,
        repeats=args.repeats,
    )
    if args.save:
        reg.update(run_id, metrics=metrics)
    from recsys.vetting.precision import format_vetted, vetted_for_cli

    vetted = vetted_for_cli(reg, run_id, args.preset, args.k)
    from recsys import tracking

    tracking.log_evaluation(meta, metrics, reg.root)
    if args.json:
        shown = metrics if args.per_category else {k: v for k, v in metrics.items() if k != "per_category"}
        _print_json({**shown, "vetted": vetted})
    else:
        print(format_metrics(metrics))
        print(format_vetted(vetted))
        if args.per_category:
            for cat, row in metrics.get("per_category", {}).items():
                print(
                    f"  {cat:30s} n={row['n']:6d} "
                    + " ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "n")
                )
    return 0


def _registry(args: argparse.Namespace):
    from recsys.registry import Registry

    return Registry(args.data_dir)


def _print_runs_table(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    k = 10
    print(
        f"{'run_id':42s} {'family':14s} {'act':3s} {'hr@10':>7s} {'ndcg@10':>8s} {'cov@10':>7s} {'items':>7s}"
    )
    for r in runs:
        if r.get("damaged"):
            print(f"{r['run_id']:42s} {r.get('family') or '?':14s} DAMAGED: {r.get('error')}")
            continue
        m = r.get("metrics", {})
        cov = r.get("coverage", {})

        def f(key: str, m: dict[str, Any] = m) -> str:
            v = m.get(f"{key}@{k}")
            return f"{v:.4f}" if isinstance(v, (int, float)) else "-"

        print(
            f"{r['run_id']:42s} {r['family']:14s} {'*' if r.get('active') else '':3s} {f('hr'):>7s} "
            f"{f('ndcg'):>8s} {f('coverage'):>7s} {cov.get('items_with_vector', '-')!s:>7s}"
        )


def cmd_import_vectors(args: argparse.Namespace) -> int:
    from recsys.external import ImportVectorsError, import_vectors

    bar = _progress(args, "import vectors")
    try:
        out = import_vectors(
            args.dataset,
            args.name,
            args.file,
            ids=args.ids,
            index=args.index,
            query_vectors=args.query_vectors,
            query_ids=args.query_ids,
            metric=args.metric,
            fmt=args.format,
            column=args.column,
            errors=args.errors,
            evaluate=not args.no_evaluate,
            activate=args.activate or None,
            source="cli",
            root=args.data_dir,
            progress=bar,
        )
    except ImportVectorsError as exc:
        bar.close()
        _print_json({"stored": False, "report": exc.report})
        raise
    bar.close()
    _print_json({"stored": True, "run_id": out["run"]["run_id"], "report": out["report"]})
    for warning in out["report"].get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    reg = _registry(args)
    if args.action == "export":
        from recsys.external import export_run

        if not args.out:
            raise RecsysError("'runs export' needs --out DIR (the folder to write)")
        _print_json(export_run(_need_id(args), args.format, args.out, reg.root))
        return 0
    if args.action == "list":
        _print_runs_table(args, reg.list_runs(args.family, include_damaged=True))
        problem = reg.active_problem()
        if problem:
            print(f"warning: {problem}", file=sys.stderr)
    elif args.action == "show":
        _print_json(reg.get(_need_id(args)))
    elif args.action == "delete":
        reg.delete(_need_id(args))
        print(f"deleted {args.run_id}")
    elif args.action == "activate":
        reg.activate(_need_id(args))
        print(f"activated {args.run_id}")
    return 0


def _need_id(args: argparse.Namespace) -> str:
    if not args.run_id:
        raise RecsysError(f"'runs {args.action}' needs a run id (see 'python -m recsys runs list')")
    return args.run_id


def cmd_job(args: argparse.Namespace) -> int:
    from recsys.jobs import run_job

    job = run_job(args.job_id, data_dir(args.data_dir))
    return 0 if job.get("status") in ("done", "cancelled") else 1


def cmd_precompute(args: argparse.Namespace) -> int:
    from recsys.precompute import precompute

    store = args.redis_url or args.out
    bar = _progress(args, f"precompute {args.preset}")
    from recsys.checks import load_thresholds

    checks = load_thresholds(args.thresholds, args.data_dir)
    meta = precompute(
        args.data_dir, args.run, args.preset, k=args.k, store=store, progress=bar, checks=checks
    )
    bar.close()
    _print_json({k: v for k, v in meta.items() if k != "config"})
    return 0


def _spark_session(args: argparse.Namespace, name: str) -> Any:
    from recsys.spark import get_spark

    conf = _parse_pairs(args.conf, "--conf")
    return get_spark(args.master, app_name=f"recsys {name}", conf={k: str(v) for k, v in conf.items()})


def _duration_s(text: str) -> float:
    """An argparse ``type``: seconds, or a number with s/m/h/d (``30m``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    scale = units.get(t[-1:], None)
    try:
        value = float(t[:-1] if scale else t) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration (e.g. 1800, 30m, 2h)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


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
    from pathlib import Path

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
    from recsys.spark import spark_precompute

    if not args.out and not args.store:
        raise RecsysError("nothing to write: give --out PATH (Parquet) and/or --store")
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
    )
    _print_json({k: v for k, v in meta.items() if k != "config"})
    return 0


def _add_spark_parser(sub: Any) -> None:
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
        "Writes Parquet (--out) and/or the precompute store the API serves from (--store).",
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
    p.set_defaults(func=cmd_spark_precompute)


def cmd_users(args: argparse.Namespace) -> int:
    from recsys.auth import hash_password

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise RecsysError("give a password of at least 8 characters on standard input")
    print(hash_password(password))
    return 0


def _add_split_args(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(
        "--split",
        default=None,
        choices=["time", "cutoff", "last-days", "leave-last-out", "last_days", "leave_last_out"],
        help="evaluation split: time (the latest --test-fraction of sequences), cutoff (sequences from "
        "--cutoff DATE on), last-days (the last --days N days) or leave-last-out (the last event of "
        f"every sequence); default: {default or 'the run’s own'}",
    )
    p.add_argument(
        "--test-fraction", type=_fraction, default=None, help="time split: share held out (default 0.1)"
    )
    p.add_argument("--cutoff", default=None, metavar="DATE", help="cutoff split: e.g. 2024-05-01")
    p.add_argument("--days", type=_positive, default=None, help="last-days split: days held out")
    p.add_argument(
        "--repeats",
        default="collapse",
        choices=["collapse", "keep"],
        help="next-item cases: collapse consecutive repeats of an item (default) or keep every position",
    )
    p.add_argument(
        "--max-cases",
        type=_int_at_least(1),
        default=None,
        help="sample this many test cases (default: score every case)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys" if Path(sys.argv[0]).name == "recsys" else "python -m recsys",
        description="RecSys Lab: build, evaluate and serve embedding-based item recommendations.",
    )
    parser.add_argument(
        "--data-dir", default=None, help=f"data directory (default: ${ENV_DATA_DIR} or ./data)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--progress", action="store_true", help="progress bars even when not on a terminal")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="generate the demo data and train the default variants",
        description="Generate the synthetic demo catalogue and sessions, then train "
        "popularity, co-occurrence, Prod2Vec and Meta-Prod2Vec on it and evaluate them.",
    )
    p.add_argument(
        "--items",
        type=_int_at_least(100),
        default=5000,
        help="number of catalogue items (1k to 1M; default 5000)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the generator (default 0)")
    p.add_argument(
        "--families",
        nargs="+",
        default=None,
        help="model families to train (default: popularity cooccurrence prod2vec meta_prod2vec)",
    )
    p.set_defaults(func=cmd_demo)

    from recsys.data.reading import fields_help

    p = sub.add_parser(
        "import",
        help="import a dataset (your own CSV/Parquet export, or Online Retail, Instacart, REES46)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read, validate and store a dataset as Parquet under the data directory. "
        "Nothing already stored is changed when the import fails.\n\n"
        "For 'csv', the separator, header row, price format and timestamp format are detected and "
        "reported; every guess can be overridden. Map your columns to these fields with "
        "--map COLUMN=FIELD (columns you do not map are kept as extra attributes):\n"
        + fields_help()
        + "\n\nExamples:\n"
        "  recsys import csv events.txt --map SessionId=sequence_id ItemId=item_id Time=timestamp\n"
        "  recsys import csv log.csv --columns user_id,item_id,category,event_type,timestamp "
        "--event-map pv=view buy=purchase --session-gap 30m\n"
        "  recsys import csv --catalog products.csv --map sku=item_id name=title dept=category aisle=category",
    )
    p.add_argument(
        "source",
        choices=["online_retail", "instacart", "rees46", "csv"],
        help="the format: 'csv' for your own file, or one of the known public datasets",
    )
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help="file (or folder, for instacart) to read; CSV, .txt, .tsv, .csv.gz or Parquet. "
        "For csv it is the events file; leave it out to import a catalogue alone (--catalog)",
    )
    p.add_argument("--name", default=None, help="name to store the dataset under (default: the source name)")
    p.add_argument("--catalog", default=None, help="csv only: a catalogue file (one row per item)")
    p.add_argument(
        "--map",
        nargs="*",
        metavar="COLUMN=FIELD",
        help="csv only: map your columns to the fields listed above, e.g. --map SessionId=sequence_id; "
        "by position when the file has no header (--map 0=item_id); several columns to category "
        "join into one path in order; FIELD '-' drops a column",
    )
    p.add_argument(
        "--kind",
        default="sessions",
        choices=["sessions", "baskets"],
        help="csv only: ordered sessions or unordered baskets (orders, invoices)",
    )
    p.add_argument(
        "--errors",
        default="raise",
        choices=["raise", "drop"],
        help="raise: stop at the first bad value (default); drop: skip bad rows and count them",
    )
    p.add_argument(
        "--encoding", default="utf-8", help="text encoding of the files (default utf-8; e.g. cp1252, latin-1)"
    )
    p.add_argument(
        "--catalog-encoding", default=None, help="csv only: encoding of the catalogue, when it differs"
    )
    p.add_argument(
        "--sep",
        default=None,
        help="csv only: field separator: comma, semicolon, tab, pipe or one character (default: detected)",
    )
    hdr = p.add_mutually_exclusive_group()
    hdr.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const=False,
        default=None,
        help="csv only: the first row is data, not column names (default: detected)",
    )
    hdr.add_argument(
        "--header",
        dest="header",
        action="store_const",
        const=True,
        help="csv only: the first row names the columns",
    )
    p.add_argument(
        "--columns",
        default=None,
        metavar="A,B,C",
        help="csv only: names for the columns of the events file (or of the catalogue when it is the only "
        "file), in order; schema field names need no --map",
    )
    chdr = p.add_mutually_exclusive_group()
    chdr.add_argument(
        "--catalog-no-header",
        dest="catalog_header",
        action="store_const",
        const=False,
        default=None,
        help="csv only: the catalogue's first row is data",
    )
    chdr.add_argument(
        "--catalog-header", dest="catalog_header", action="store_const", const=True, help=argparse.SUPPRESS
    )
    p.add_argument(
        "--catalog-columns", default=None, metavar="A,B,C", help="csv only: names for the catalogue's columns"
    )
    p.add_argument(
        "--decimal",
        default=None,
        choices=[".", ","],
        help="csv only: decimal mark of prices (default: detected; '£3.42', '₹1,099', '1.234,50 €' all read)",
    )
    p.add_argument(
        "--tz",
        default=None,
        help="csv only: time zone of timestamps written without one, e.g. UTC+8 or Europe/London (default UTC)",
    )
    p.add_argument(
        "--session-gap",
        default=None,
        metavar="DURATION",
        help="csv only: cut sessions from user_id and timestamp where the next event comes later than "
        "this, e.g. 30m (needed when there is no session column)",
    )
    p.add_argument(
        "--event-map",
        nargs="*",
        metavar="CODE=TYPE",
        default=None,
        help="csv only: your event codes as view, cart or purchase (or drop), e.g. --event-map pv=view buy=purchase",
    )
    p.add_argument(
        "--category-sep",
        default=None,
        help="csv only: separator of category path levels in your file (e.g. '/' or '.')",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read and validate only: print the report and the first 5 parsed rows, store nothing",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("datasets", help="list stored datasets")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser(
        "train",
        help="train, evaluate and register one model variant",
        description="Split the dataset, fit the model on the training part, evaluate it on the "
        "held-out part, build its index and save everything as a new run.",
    )
    p.add_argument(
        "family",
        help="popularity, cooccurrence, item_knn, sknn, vsknn, prod2vec, meta_prod2vec, content, tfidf or two_tower",
    )
    p.add_argument("--dataset", default="demo", help="stored dataset name (default: demo)")
    p.add_argument(
        "--param",
        nargs="*",
        metavar="NAME=VALUE",
        help="model parameters, e.g. --param window=3 epochs=10 ns_exponent=-0.5",
    )
    p.add_argument(
        "--test-dataset",
        default=None,
        metavar="DATASET",
        help="test on this stored dataset (your own split); the model is fitted on all of --dataset",
    )
    _add_split_args(p, "time")
    p.add_argument("--k", type=_int_at_least(1), default=10, help="metric cut-off (default 10)")
    p.add_argument("--label", default=None, help="a readable name for the run")
    p.add_argument("--activate", action="store_true", help="make it the active run of its family")
    p.add_argument(
        "--tune",
        action="store_true",
        help="prod2vec/meta_prod2vec: search the settings on this dataset first (Optuna TPE, on a "
        "time split of the training part), then refit the best on the whole training part",
    )
    p.add_argument(
        "--budget", default="10m", help="--tune wall-clock budget, e.g. 90s, 10m, 1h (default 10m)"
    )
    p.add_argument("--trials", type=_int_at_least(1), default=None, help="--tune: at most this many trials")
    p.add_argument(
        "--tune-sample",
        type=float,
        default=None,
        help="--tune: fit trials on this share of the sequences, e.g. 0.1 (default: all)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="re-evaluate a stored run",
        description="Recompute the offline metrics of a run on its dataset's split.",
    )
    p.add_argument("run_id", nargs="?", default=None, help="the run (or --run)")
    p.add_argument("--run", default=None, help="the run to evaluate (see 'recsys runs list')")
    p.add_argument(
        "--test", default=None, metavar="DATASET", help="score on this stored dataset (your own test set)"
    )
    p.add_argument("--k", type=_int_at_least(1), default=10, help="metric cut-off (default 10)")
    _add_split_args(p, None)
    p.add_argument("--per-category", action="store_true", help="also print the per-category breakdown")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--save", action="store_true", help="store the metrics in run.json")
    p.add_argument(
        "--preset", default=None, help="filters of the lists scored on the judged pairs (vetted precision)"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "import-vectors",
        help="import item vectors trained elsewhere (and their hnswlib index) as a run",
        description="Read item vectors (.npy + ids, Parquet/CSV with item_id, word2vec text or binary, "
        "Embedding Projector TSV), validate them against the dataset's catalogue, check an hnswlib index "
        "built elsewhere (rebuilt with a warning when it does not match) and store everything as a run of "
        "family 'external'. Nothing is stored when validation fails.",
    )
    p.add_argument("file", help="the vectors file")
    p.add_argument("--dataset", required=True, help="the stored dataset the ids belong to")
    p.add_argument("--name", required=True, help="a readable name for the run")
    p.add_argument(
        "--ids", default=None, help="ids in row order: .npy, or text with one id a line (or metadata.tsv)"
    )
    p.add_argument("--index", default=None, help="an hnswlib index file over the same rows (save_index)")
    p.add_argument("--query-vectors", default=None, help="a second space seeds are looked up by (same ids)")
    p.add_argument("--query-ids", default=None, help="ids of --query-vectors when it needs them")
    p.add_argument("--metric", default="cosine", choices=["cosine", "ip"], help="similarity (default cosine)")
    p.add_argument(
        "--format",
        default=None,
        choices=["npy", "parquet", "csv", "word2vec", "word2vec-binary", "projector"],
        help="file format (default: from the file name)",
    )
    p.add_argument("--column", default=None, help="parquet/csv: the vector column when there are several")
    p.add_argument(
        "--errors",
        default="raise",
        choices=["raise", "drop"],
        help="NaN/inf rows and duplicate ids: raise (default) or drop them and report",
    )
    p.add_argument("--no-evaluate", action="store_true", help="skip the offline metrics")
    p.add_argument("--activate", action="store_true", help="make it the active external run")
    p.set_defaults(func=cmd_import_vectors)

    p = sub.add_parser("runs", help="list, show, activate, delete or export runs")
    p.add_argument("action", choices=["list", "show", "activate", "delete", "export"])
    p.add_argument("run_id", nargs="?", default=None)
    p.add_argument("--family", default=None, help="list: only this family")
    p.add_argument(
        "--format",
        default="projector",
        choices=["projector", "parquet", "word2vec", "npy"],
        help="export: file format (default projector: vectors.tsv, metadata.tsv, projector_config.json)",
    )
    p.add_argument("--out", default=None, help="export: the folder to write")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser(
        "precompute",
        help="write the filtered top-k of every item of a run and preset (served with source=precomputed)",
        description="Run the filtered search of every item of a run with a saved preset and store the "
        "lists in a key-value table keyed by (run, preset hash, item): a SQLite file under the data "
        "directory by default, or Redis with --redis-url. The API serves it with ?source=precomputed "
        "and reports how stale it is.",
    )
    p.add_argument("--run", required=True, help="an embedding run id (see 'python -m recsys runs list')")
    p.add_argument("--preset", required=True, help="a saved filter preset name")
    p.add_argument("--k", type=_int_at_least(1), default=20, help="list length stored per item (default 20)")
    p.add_argument("--redis-url", default=None, help="write to Redis instead, e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--out", default=None, help="SQLite file to write (default <data-dir>/precomputed.sqlite)")
    p.add_argument(
        "--thresholds", default=None, metavar="FILE", help="behavioural checks' thresholds (see 'check')"
    )
    p.set_defaults(func=cmd_precompute)

    from recsys.cli_check import add_parser as add_check_parser

    add_check_parser(sub)

    p = sub.add_parser(
        "users",
        help="make a password hash for the users file (RECSYS_USERS_FILE)",
        description="Print a password hash for a users-file entry; the password is read from "
        "standard input (one line), never from the command line.",
    )
    p.add_argument("action", choices=["hash"])
    p.set_defaults(func=cmd_users)

    _add_spark_parser(sub)

    p = sub.add_parser("job", help="(internal) run a queued background job")
    p.add_argument("action", choices=["run"])
    p.add_argument("job_id")
    p.set_defaults(func=cmd_job)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except RecsysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: file not found: {exc.filename}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only folder, a permission: one line, no traceback
        from recsys.stored import disk_full_message, is_disk_full

        if is_disk_full(exc):
            message = disk_full_message("the result", exc.filename or data_dir(args.data_dir), exc)
        else:
            message = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        print(f"error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__module__.startswith(("pyspark", "py4j")):  # e.g. an output path that exists
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"error: Spark: {first}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
