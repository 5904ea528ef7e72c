"""``recsys train``: train, evaluate and register one model variant."""

from __future__ import annotations

import argparse
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
from recsys.config import data_dir
from recsys.models.prod2vec import describe_auto_choice


def _fields(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model parameters and the request's other fields, from the flags."""
    params = _parse_pairs(args.param, "--param")
    fields = {
        "label": args.label,
        "split_method": _split_name(args.split or "time"),
        "split_options": _split_options(args),
        "test_dataset": args.test_dataset,
        "repeats": args.repeats,
    }
    return params, fields


def _tune_flags(args: argparse.Namespace) -> dict[str, Any]:
    flags = {"budget": args.budget, "trials": args.trials, "sample": args.tune_sample}
    if getattr(args, "min_trials", None) is not None:
        flags["min_trials"] = args.min_trials
    return flags


def cmd_tune(args: argparse.Namespace) -> int:
    """``recsys tune``: ``recsys train --tune``, or queued as a background job with ``--background``."""
    if not args.background:
        args.tune = True
        return cmd_train(args)
    from recsys.jobs import JobStore, submit_tune

    params, fields = _fields(args)
    store = JobStore(data_dir(args.data_dir))
    job_id = submit_tune(store, args.family, args.dataset, params, **_tune_flags(args), **fields)
    print(f"tuning job {job_id} submitted (see the Runs page; `recsys runs list` once it is done)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from recsys.jobs.kinds import train_request, tune_request
    from recsys.pipeline import train_run

    # the checks a submitted job gets (recsys.jobs.kinds), before any work
    params, fields = _fields(args)
    if args.tune:
        request = tune_request(
            args.family, args.dataset, params, root=args.data_dir, **_tune_flags(args), **fields
        )
    else:
        request = train_request(args.family, args.dataset, params, root=args.data_dir, **fields)
    bar = _progress(args, f"train {args.family}")
    meta = train_run(
        **request.job_params(),
        root=args.data_dir,
        k=args.k,
        max_cases=args.max_cases,
        activate=args.activate or None,
        progress=bar,
    )
    bar.close()
    _print_runs_table(args, [meta])
    if meta.get("tuning"):
        t = meta["tuning"]
        print(
            f"tuned on {t['validation']['validation_cases']} validation cases carved from the training part: "
            f"{t['n_trials']} trials in {t['seconds']} s, best {t['metric']} {t['best_value']:.4f} "
            f"(trial {t['best_trial']}; the recommended settings scored {t['start_value']}): {t['best_params']}"
        )
        for note in t.get("notes") or ():
            print(f"note: {note}")
    if meta.get("auto_choice"):
        print(describe_auto_choice(meta["auto_choice"]))
    if meta.get("metrics"):
        print()
        print(format_metrics(meta["metrics"]))
    _print_coverage(meta)
    return 0


def _add_tune_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(
        "--budget", default="10m", help=f"{prefix}wall-clock budget, e.g. 90s, 10m, 1h (default 10m)"
    )
    p.add_argument("--trials", type=_int_at_least(1), default=None, help=f"{prefix}at most this many trials")
    p.add_argument(
        "--min-trials",
        type=_int_at_least(1),
        default=None,
        help=f"{prefix}at least this many trials, even past the budget (default: the recommended "
        "settings and the tuner's portfolio of settings strong across datasets)",
    )
    p.add_argument(
        "--tune-sample",
        type=float,
        default=None,
        help=f"{prefix}fit trials on this share of the sequences, e.g. 0.1 (default: all)",
    )


def _add_common_args(p: argparse.ArgumentParser) -> None:
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


def add_parser(sub: Any) -> None:
    """Add the ``train`` and ``tune`` commands."""
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
    _add_common_args(p)
    p.add_argument(
        "--tune",
        action="store_true",
        help="prod2vec/meta_prod2vec/content: search the settings on this dataset first (Optuna TPE, "
        "on a time split of the training part), then refit the best on the whole training part",
    )
    _add_tune_args(p, "--tune: ")
    p.set_defaults(func=cmd_train)

    t = sub.add_parser(
        "tune",
        help="tune a family's settings on this dataset, then train the best into a run",
        description="Search the settings (Optuna TPE) on a time split carved from the training part "
        "(never the test part), refit the best on the whole training part, evaluate it once on the "
        "test part and save it as a run that records every trial; the sweep is logged to MLflow. "
        "Same as `recsys train FAMILY --tune`.",
    )
    t.add_argument("family", help="prod2vec, meta_prod2vec or content")
    _add_common_args(t)
    _add_tune_args(t)
    t.add_argument(
        "--background",
        action="store_true",
        help="queue it as a background job (as the Runs page's Tune button does) instead of waiting",
    )
    t.set_defaults(func=cmd_tune)
