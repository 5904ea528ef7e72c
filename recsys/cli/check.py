"""``recsys check --run R --preset P``: the behavioural checks of a run's lists.

Prints a table (or one JSON line with ``--json``); exits 1 when a blocking check
fails, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from recsys.cli.common import _int_at_least

_positive_int = _int_at_least(1)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "check",
        help="behavioural checks of a run's lists (adult, asymmetry, duplicates, brands, slices)",
        description="Compute the filtered lists of a run with a preset and check them: adult items next "
        "to non-adult seeds, complementary asymmetry on co-bought pairs, same-title duplicates, brand "
        "concentration, and HR@k of slices (cold items, rare categories, each top-level category) "
        "against all held-out cases. Exit code 1 when a check marked blocking fails.",
    )
    p.add_argument("--run", required=True, help="the run (see 'recsys runs list')")
    p.add_argument("--preset", default=None, help="a saved filter preset (default: no filters)")
    p.add_argument("--k", type=_positive_int, default=10, help="list length checked (default 10)")
    p.add_argument(
        "--thresholds",
        default=None,
        metavar="FILE",
        help='JSON or YAML thresholds, e.g. {"duplicates": {"max_share": 0.02, "blocking": true}} '
        "(default: <data-dir>/checks.json or .yaml when present, else the built-in defaults)",
    )
    p.add_argument(
        "--max-seeds",
        type=_positive_int,
        default=None,
        help="check this many seeds drawn at random (default: all)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    p.set_defaults(func=cmd_check)
    return p


def cmd_check(args: argparse.Namespace) -> int:
    from recsys.checks import check_run, load_thresholds

    thresholds = load_thresholds(args.thresholds, args.data_dir)
    report = check_run(
        args.data_dir, args.run, args.preset, k=args.k, thresholds=thresholds, max_seeds=args.max_seeds
    )
    if args.json:
        print(json.dumps(report.to_dict(), default=str, separators=(",", ":")))
    else:
        print(
            f"checks of run {args.run}, preset {args.preset or '(none)'}, {report.n_lists} lists at k={args.k}"
        )
        print(report.table())
    if not report.passed:
        print(f"error: {report.failure_message()}", file=sys.stderr)
        return 1
    return 0
