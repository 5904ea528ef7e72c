"""The Map's first load of a big run whose first figure is not stored yet (a run just imported
or trained, never opened), in headless Chromium, paired across checkouts: prints ONE JSON line.

Builds a catalogue of ``--items`` items in aisles under departments (Instacart's shape) with
clustered 32-d vectors registered as an external run, in a temporary data directory. Each round
starts each checkout's ``app.py`` on it (the map warm-up off, the stored figures and projections
removed, so the load is a first one), opens ``/data`` (plotly.js and the bundles cached, the
data page's callbacks done), then ``/map?run=…``, and records from that navigation:
``page_shown_s`` (the Map's page title on screen) and ``points_s`` (the first scatter points
drawn). Checkouts alternate first and second from round to round.

Usage: ``python bench/map_unstored_load.py --tree main=/tmp/base --tree new=. [--items 92000] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import browser as B  # noqa: E402

PROBE = """
const t = document.querySelector('.page-title');
const gd = document.querySelector('#map-graph .js-plotly-plot');
const pts = gd && gd._fullData ? gd._fullData.reduce((a, d) => a + ((d.x && d.x.length) || 0), 0) : 0;
return [!!(t && t.textContent.includes('Map')), pts];
"""


def make_data(root: Path, n: int) -> str:
    """A catalogue of ``n`` items and an external run of clustered vectors; the run id."""
    import numpy as np
    import pandas as pd

    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.models.external import ExternalModel
    from recsys.registry import Registry

    rng = np.random.default_rng(0)
    dept = rng.integers(0, 21, n)
    aisle = dept * 10 + rng.integers(0, 7, n)
    ids = np.array([str(i) for i in range(1, n + 1)])
    cat = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"Product {i} of aisle {a}" for i, a in zip(range(n), aisle)],
            "category": [f"D{d} > A{a}" for d, a in zip(dept, aisle)],
        }
    )
    ds = build_dataset("big", cat, None)
    save_dataset(ds, root)
    centers = rng.normal(size=(210, 32)).astype(np.float32)
    vec = centers[aisle] + 0.3 * rng.normal(size=(n, 32)).astype(np.float32)
    model = ExternalModel.from_arrays(ids, vec, catalog_ids=ids)
    meta = Registry(root).create_run(
        model, dataset_name="big", dataset_fingerprint=ds.fingerprint(), label="big"
    )
    return str(meta["run_id"])


def _get(url: str, timeout: float) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=timeout).status == 200  # noqa: S310 - local app
    except Exception:  # noqa: BLE001 - not up yet
        return False


def one_load(tree: str, root: Path, run: str) -> dict:
    """One first load of the run's Map with ``tree``'s app.py."""
    shutil.rmtree(root / "cache", ignore_errors=True)
    for path in glob.glob(str(root / "runs" / run / "projection*")):
        os.remove(path)
    with B.app_and_browser(root, Path(tree), {"RECSYS_MAP_WARMUP": "0"}) as (driver, url):
        end = time.time() + 120
        while not _get(f"{url}/_dash-layout", 30) and time.time() < end:
            time.sleep(0.3)
        driver.get(f"{url}/data")
        time.sleep(8.0)  # its callbacks done: they import pandas, which a layout served meanwhile can trip on
        load = open("/proc/loadavg").read().split()[0]
        start = time.perf_counter()
        driver.execute_script(f"window.location.href = '/map?run={run}'")
        seen: dict = {}
        while time.perf_counter() - start < 90:
            try:
                shown, points = driver.execute_script(PROBE)
            except Exception:  # noqa: BLE001 - the page is being replaced
                time.sleep(0.02)
                continue
            now = round(time.perf_counter() - start, 2)
            if shown:
                seen.setdefault("page_shown_s", now)
            if points:
                seen.update(points_s=now, n_points=points)
                break
            time.sleep(0.02)
        return {**seen, "load1": float(load)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a checkout")
    parser.add_argument("--items", type=int, default=92_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree)
    with tempfile.TemporaryDirectory(prefix="map-unstored-") as tmp:
        root = Path(tmp) / "data"
        run = make_data(root, args.items)
        loads: dict[str, list] = {name: [] for name in trees}
        for r in range(args.rounds):
            names = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in names:
                loads[name].append(one_load(trees[name], root, run))
    print(json.dumps({"items": args.items, "loads": loads}))


if __name__ == "__main__":
    main()
