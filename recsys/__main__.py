"""Command line: ``python -m recsys ...`` (run with ``--help`` for the commands)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
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
    )
    bar.close()
    _print_runs_table(args, [r for r in _registry(args).list_runs() if r["run_id"] in result["runs"]])
    print(f"demo ready in {result['seconds']} s; data in {data_dir(args.data_dir)}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from recsys.data.adapters import import_dataset

    mapping = _parse_pairs(args.map, "--map")
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
        progress=_progress(args, f"import {args.source}"),
    )
    _print_json({"dataset": ds.name, "summary": ds.summary(), "report": ds.report.to_dict()})
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from recsys.data.schema import dataset_meta, list_datasets

    root = data_dir(args.data_dir)
    for name in list_datasets(root):
        s = dataset_meta(name, root).get("summary", {})
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
        split_method=args.split,
        k=args.k,
        activate=args.activate or None,
        label=args.label,
        progress=bar,
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
    _print_coverage(meta)
    return 0


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

    reg = _registry(args)
    meta = reg.get(args.run_id)
    model = reg.load_model(args.run_id)
    dataset = load_dataset(meta["dataset"]["name"], reg.root)
    method = args.split or meta.get("split", {}).get("method", "time")
    train, test = split(dataset, method=method)
    basket_targets = meta.get("split", {}).get(
        "basket_targets", "next" if dataset.kind == "baskets" else "rest"
    )
    metrics = evaluate(
        model,
        train,
        test,
        k=args.k,
        max_cases=args.max_cases,
        catalog=dataset.catalog,
        basket_targets=basket_targets,
    )
    if args.save:
        reg.update(args.run_id, metrics=metrics)
    _print_json(
        {k: v for k, v in metrics.items() if k != "per_category"} if not args.per_category else metrics
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
        m = r.get("metrics", {})
        cov = r.get("coverage", {})

        def f(key: str, m: dict[str, Any] = m) -> str:
            v = m.get(f"{key}@{k}")
            return f"{v:.4f}" if isinstance(v, (int, float)) else "-"

        print(
            f"{r['run_id']:42s} {r['family']:14s} {'*' if r.get('active') else '':3s} {f('hr'):>7s} "
            f"{f('ndcg'):>8s} {f('coverage'):>7s} {cov.get('items_with_vector', '-')!s:>7s}"
        )


def cmd_runs(args: argparse.Namespace) -> int:
    reg = _registry(args)
    if args.action == "list":
        _print_runs_table(args, reg.list_runs(args.family))
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
    meta = precompute(args.data_dir, args.run, args.preset, k=args.k, store=store, progress=bar)
    bar.close()
    _print_json({k: v for k, v in meta.items() if k != "config"})
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from recsys.auth import hash_password

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise RecsysError("give a password of at least 8 characters on standard input")
    print(hash_password(password))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys",
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

    p = sub.add_parser(
        "import",
        help="import a dataset (Online Retail, Instacart, REES46 or any CSV/Parquet)",
        description="Read, validate and store a dataset as Parquet under the data directory. "
        "Nothing already stored is changed when the import fails.",
    )
    p.add_argument(
        "source",
        choices=["online_retail", "instacart", "rees46", "csv"],
        help="the format: one of the known public datasets, or 'csv' for your own file",
    )
    p.add_argument("path", help="file (or folder, for instacart) to read; CSV, .csv.gz or Parquet")
    p.add_argument("--name", default=None, help="name to store the dataset under (default: the source name)")
    p.add_argument("--catalog", default=None, help="csv only: a separate catalogue file")
    p.add_argument(
        "--map",
        nargs="*",
        metavar="COLUMN=FIELD",
        help="csv only: map your column names to schema fields, e.g. --map SessionId=sequence_id",
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
        help="raise: stop at the first bad row (default); drop: skip bad rows and report them",
    )
    p.add_argument(
        "--encoding", default="utf-8", help="text encoding of CSV files (default utf-8; e.g. latin-1)"
    )
    p.add_argument(
        "--category-sep",
        default=None,
        help="csv only: separator of category path levels in your file (e.g. '/' or '.')",
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
    p.add_argument("--split", default="time", choices=["time", "leave_last_out"], help="evaluation split")
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
    p.add_argument("run_id")
    p.add_argument("--k", type=_int_at_least(1), default=10, help="metric cut-off (default 10)")
    p.add_argument(
        "--split",
        default=None,
        choices=["time", "leave_last_out"],
        help="evaluation split (default: the run's own)",
    )
    p.add_argument(
        "--max-cases", type=_int_at_least(1), default=5000, help="evaluation cases sampled (default 5000)"
    )
    p.add_argument("--per-category", action="store_true", help="also print the per-category breakdown")
    p.add_argument("--save", action="store_true", help="store the metrics in run.json")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("runs", help="list, show, activate or delete runs")
    p.add_argument("action", choices=["list", "show", "activate", "delete"])
    p.add_argument("run_id", nargs="?", default=None)
    p.add_argument("--family", default=None, help="list: only this family")
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
    p.set_defaults(func=cmd_precompute)

    p = sub.add_parser(
        "users",
        help="make a password hash for the users file (RECSYS_USERS_FILE)",
        description="Print a password hash for a users-file entry; the password is read from "
        "standard input (one line), never from the command line.",
    )
    p.add_argument("action", choices=["hash"])
    p.set_defaults(func=cmd_users)

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
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
