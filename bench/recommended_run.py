"""Wall time of one Prod2Vec run with the recommended settings; prints ONE JSON line.

What a user meets on the Runs page or with ``recsys train prod2vec``: ``train_run`` with the
family's defaults (``vectors="auto"``: the space chosen on a validation carve of the training
part), every test case scored, the validation score on (default). The Word2Vec fits are
counted from the run's progress messages ("building vocabulary over N sequences", one per
fit), so the script runs against any tree (main's exported tree too).

The dataset is imported into ``--root`` once (Online Retail from ``../shared/datasets``, or
the demo generated at 5,000 items, seed 0) and loaded from there by the run.

Usage: ``python bench/recommended_run.py --dataset online_retail --root /tmp/me-data``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ensure_dataset(name: str, root: Path) -> None:
    from recsys.data.schema import load_dataset, save_dataset

    try:
        load_dataset(name, root)
        return
    except Exception:  # noqa: BLE001 - not stored yet
        pass
    if name == "demo":
        from recsys.data.synthetic import generate_demo

        ds = generate_demo(n_items=5000, seed=0)
    else:
        from recsys.data import adapters

        base = Path(os.environ.get("RECSYS_DATASETS", ROOT.parent / "shared" / "datasets"))
        if not base.exists():
            base = Path("/work/shared/datasets")
        ds = adapters.import_online_retail(base / "online_retail" / "online_retail.csv.gz")
    save_dataset(ds, root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["demo", "online_retail"], default="demo")
    ap.add_argument("--root", required=True, help="data directory (the dataset is stored there once)")
    ap.add_argument("--family", default="prod2vec", choices=["prod2vec", "meta_prod2vec"])
    ap.add_argument("--prepare-only", action="store_true", help="store the dataset and stop")
    args = ap.parse_args(argv)
    os.environ.setdefault("RECSYS_MLFLOW", "off")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    ensure_dataset(args.dataset, root)
    if args.prepare_only:
        return 0

    from recsys.pipeline import train_run

    fits: list[float] = []
    started = time.perf_counter()

    def progress(done: int, total: int, message: str = "") -> None:
        if "building vocabulary over" in message:
            fits.append(round(time.perf_counter() - started, 1))

    load_before = os.getloadavg()
    cpu0 = time.process_time()  # every thread's CPU time: less moved by other jobs than the wall
    meta = train_run(args.family, {}, args.dataset, root, progress=progress, activate=False)
    wall = time.perf_counter() - started
    choice = meta.get("auto_choice") or {}
    valid = meta["metrics"].get("validation") or {}
    out = {
        "tree": str(ROOT),
        "dataset": args.dataset,
        "family": args.family,
        "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "word2vec_fits": len(fits),
        "fit_started_at_s": fits,
        "timings": meta.get("timings"),
        "chosen": choice.get("chosen"),
        "choice_validation": choice.get("validation"),
        "validation_hr@10": valid.get("hr@10"),
        "validation_fit": valid.get("fit", "fitted again"),
        "test_hr@10": meta["metrics"].get("hr@10"),
        "load_average": {
            "start": [round(x, 2) for x in load_before],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
