"""Benchmark: a run's first seed search, right after its catalogue view is loaded (s35-u).

The seed search ranks matches by how often the dataset's interactions name them
(``recsys.catalog.item_popularity``). Main read the interactions' ``item_id`` column inside the
first search of a run (0.2 to 0.7 s on Online Retail at load 14, s34-u); the branch reads it in
a background thread started when the run's catalogue view is loaded, and a search before it is
ready answers in catalogue order.

Each repeat is a fresh process (no cache): load the run's view (``run_catalog_view``, not timed
here), wait ``--pause`` seconds (a user who opens the page, then types; 0: at once, the
branch's worst case, its background read then runs beside the search), then time
``search_items(view, QUERY, 50)`` once (the first search), then again after
the counts are ready (the later searches). Run it with the tree to measure as the current
directory (``PYTHONPATH=.``), main's and the branch's alternately, in one session.

Prints ONE JSON line: median first-search and later-search milliseconds, the view load, the
interactions, the load average before and after.

Usage: ``PYTHONPATH=. python bench/seed_search_first.py --data-dir D --run R [--query Q] [--repeats 5]
[--pause 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def once(data_dir: str, run: str, query: str, pause: float = 0.0) -> dict[str, float]:
    from recsys import catalog
    from recsys.registry import Registry

    registry = Registry(data_dir)
    t0 = time.perf_counter()
    view = catalog.run_catalog_view(registry, run)
    loaded = time.perf_counter() - t0
    time.sleep(pause)  # a user opens the page, then types
    t0 = time.perf_counter()
    catalog.search_items(view, query, 50)
    first = time.perf_counter() - t0
    try:  # the branch: wait for the background read; main read it in the first search
        catalog.item_popularity(view, wait=120)
    except TypeError:
        pass
    t0 = time.perf_counter()
    catalog.search_items(view, query, 50)
    later = time.perf_counter() - t0
    return {"view_s": loaded, "first_ms": first * 1000, "later_ms": later * 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--query", default="1")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--pause", type=float, default=0.0, help="seconds between the view load and the first search"
    )
    p.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.once:
        print(json.dumps(once(args.data_dir, args.run, args.query, args.pause)))
        return
    load_before = os.getloadavg()
    rows = []
    for _ in range(args.repeats):
        cmd = [sys.executable, __file__, "--once", "--data-dir", args.data_dir, "--run", args.run]
        cmd += ["--query", args.query, "--pause", str(args.pause)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    print(
        json.dumps(
            {
                "tree": os.getcwd(),
                "run": args.run,
                "query": args.query,
                "pause_s": args.pause,
                "repeats": args.repeats,
                **med,
                "first_ms_all": [round(r["first_ms"], 1) for r in rows],
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
