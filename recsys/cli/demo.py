"""``recsys demo``: generate the demo data and train the default variants."""

from __future__ import annotations

import argparse
from typing import Any

from recsys.cli.common import (
    _int_at_least,
    _print_runs_table,
    _progress,
    _registry,
)
from recsys.config import data_dir


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


def add_parser(sub: Any) -> None:
    """Add the ``demo`` command."""
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
