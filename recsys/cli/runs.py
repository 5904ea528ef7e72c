"""``recsys runs``: list, show, activate, delete or export runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recsys.cli.common import (
    _print_json,
    _print_runs_table,
    _registry,
)
from recsys.errors import RecsysError


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


def add_parser(sub: Any) -> None:
    """Add the ``runs`` command."""
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
