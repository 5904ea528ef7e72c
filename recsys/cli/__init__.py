"""Command line: ``python -m recsys ...`` (run with ``--help`` for the commands).

One module per command (group), each with ``add_parser(sub)`` and its ``cmd_*``
function(s); :func:`build_parser` adds them in the order of ``--help``. Shared
argument types, progress bars and printing are in :mod:`recsys.cli.common`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from recsys.cli import check, demo, evaluate, importing, job, precompute, runs, spark, train, users, vectors
from recsys.config import ENV_DATA_DIR, data_dir
from recsys.errors import RecsysError

#: The command modules, in the order ``--help`` lists them.
COMMANDS = (demo, importing, train, evaluate, vectors, runs, precompute, check, users, spark, job)


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
    for module in COMMANDS:
        module.add_parser(sub)
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
