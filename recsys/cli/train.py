"""``recsys train``: train, evaluate and register one model variant."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recsys.cli.common import (
    _add_split_args,
    _int_at_least,
    _parse_pairs,
    _print_coverage,
    _print_runs_table,
    _progress,
    _split_name,
    _split_options,
    format_metrics,
)


def cmd_train(args: argparse.Namespace) -> int:
    from recsys.jobs.kinds import train_request
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
    # the checks a submitted training job gets (recsys.jobs.kinds), before any work
    request = train_request(
        args.family,
        args.dataset,
        params,
        root=args.data_dir,
        label=args.label,
        split_method=_split_name(args.split or "time"),
        split_options=_split_options(args),
        test_dataset=args.test_dataset,
        repeats=args.repeats,
    )
    bar = _progress(args, f"train {args.family}")
    meta = train_run(
        **request.job_params(),
        root=args.data_dir,
        k=args.k,
        max_cases=args.max_cases,
        activate=args.activate or None,
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
    if meta.get("metrics"):
        print()
        print(format_metrics(meta["metrics"]))
    _print_coverage(meta)
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``train`` command."""
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
