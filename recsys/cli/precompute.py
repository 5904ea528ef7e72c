"""``recsys precompute``: write the filtered top-k of every item of a run and preset."""

from __future__ import annotations

import argparse
from typing import Any

from recsys.cli.common import (
    _int_at_least,
    _print_json,
    _progress,
)


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


def add_parser(sub: Any) -> None:
    """Add the ``precompute`` command."""
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
