"""``recsys job run <id>`` (internal): run a queued background job."""

from __future__ import annotations

import argparse
from typing import Any

from recsys.config import data_dir


def cmd_job(args: argparse.Namespace) -> int:
    from recsys.jobs import run_job

    job = run_job(args.job_id, data_dir(args.data_dir))
    return 0 if job.get("status") in ("done", "cancelled") else 1


def add_parser(sub: Any) -> None:
    """Add the ``job`` command."""
    p = sub.add_parser("job", help="(internal) run a queued background job")
    p.add_argument("action", choices=["run"])
    p.add_argument("job_id")
    p.set_defaults(func=cmd_job)
