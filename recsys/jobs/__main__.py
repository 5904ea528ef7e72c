"""``python -m recsys.jobs run <job_id> --data-dir <root>``: run one submitted job in this process."""

from __future__ import annotations

import argparse
import sys

from recsys.jobs.store import run_job


def main(argv: list[str] | None = None) -> int:
    """Run one job; exit status 0 when it is done or cancelled, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m recsys.jobs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a submitted job in this process")
    p_run.add_argument("job_id")
    p_run.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    job = run_job(args.job_id, args.data_dir)
    return 0 if job["status"] in ("done", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
