"""What a REST client sending ids no run knows costs: ``GET /api/v1/similar/<unknown id>`` (a 404
with the "which dataset holds it" hint), no run named, in-process through Flask's test client.

Prints ONE JSON line. The data directory (``--data-dir``, default a temporary folder) holds
``--datasets`` stored datasets of ``--items`` catalogue items each (synthetic ids and titles)
and one small embedding run per dataset (random vectors: the hint does not search them). The
first dataset's run answers by default; every id asked is in no catalogue, so each request
looks at every other dataset. Reports the median and mean milliseconds of ``--requests``
such 404s, after ``--warm`` warm-up requests (a first request may read and cache), and the
same for ``/api/v1/noop`` as the floor of a request through Flask.

Usage::

    python bench/api_unknown_ids.py [--datasets 4] [--items 100000] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_data(root: Path, n_datasets: int, n_items: int) -> None:
    from recsys.data.schema import INTERACTION_COLUMNS, Dataset, save_dataset
    from recsys.models.prod2vec import Prod2Vec
    from recsys.registry import Registry

    reg = Registry(root)
    for d in range(n_datasets):
        name = f"shop{d}"
        ids = [f"{name}-{i}" for i in range(n_items)]
        catalog = pd.DataFrame({"item_id": ids, "title": [f"Thing {i}" for i in range(n_items)]}).assign(
            category="Home > Things",
            brand="",
            gender="",
            price=np.nan,
            adult=False,
            description="",
            image_url="",
        )
        ds = Dataset(
            name=name, catalog=catalog, interactions=pd.DataFrame({c: [] for c in INTERACTION_COLUMNS})
        )
        save_dataset(ds, root)
        model = Prod2Vec()
        model.item_ids_ = np.asarray(ids[:1000])
        model.vectors_ = np.random.default_rng(d).normal(size=(1000, 16)).astype(np.float32)
        model.coverage_ = {}
        reg.create_run(model, dataset_name=name, dataset_fingerprint=ds.fingerprint())
    reg.set_default_dataset("shop0")


def timed(client, path: str, n: int, status: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        r = client.get(path.format(i=i))
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True)[:200])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=4)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    os.environ.setdefault("RECSYS_MLFLOW", "off")
    import flask

    from recsys.serving import register_api

    tmp = None
    if args.data_dir:
        root = Path(args.data_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="api-unknown-ids-")
        root = Path(tmp.name)
    if not (root / "runs").exists():
        make_data(root, args.datasets, args.items)
    app = flask.Flask("bench-unknown-ids")
    register_api(app, root)
    client = app.test_client()
    timed(client, "/api/v1/similar/nowhere-warm-{i}?k=10", args.warm, 404)
    timed(client, "/api/v1/noop", args.warm, 200)
    unknown = timed(client, "/api/v1/similar/nowhere-{i}?k=10", args.requests, 404)
    noop = timed(client, "/api/v1/noop", args.requests, 200)
    print(
        json.dumps(
            {
                "bench": "api_unknown_ids",
                "datasets": args.datasets,
                "items_per_dataset": args.items,
                "requests": args.requests,
                "unknown_id_404_ms_p50": round(statistics.median(unknown), 3),
                "unknown_id_404_ms_mean": round(statistics.fmean(unknown), 3),
                "noop_ms_p50": round(statistics.median(noop), 3),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
