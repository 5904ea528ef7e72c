"""``recsys evaluate``: re-evaluate a stored run."""

from __future__ import annotations

import argparse
from typing import Any

from recsys.cli.common import (
    _add_split_args,
    _int_at_least,
    _print_json,
    _registry,
    _split_name,
    _split_options,
    format_metrics,
)
from recsys.errors import RecsysError


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


def add_parser(sub: Any) -> None:
    """Add the ``evaluate`` command."""
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
