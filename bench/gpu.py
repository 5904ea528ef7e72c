"""GPU check of the Keras models: prints ONE JSON line.

Trains the content model and the two-tower model on the demo shop twice, once on the
accelerator and once with the accelerator hidden (same backend, same machine), each in its
own process, and reports per device: the device the model recorded (``ku.device_info``),
fit time, cold-item HR@10 of the content model and next-item HR@10 of the two-tower
model (so a broken GPU path shows as a quality drop, not only as a time), and the ratio
of CPU time to GPU time.

Usage::

    KERAS_BACKEND=jax python bench/gpu.py [--items 5000]      # or tensorflow / torch

Runs on a machine with an accelerator; with none it still runs and says so
(``"gpu": null``). Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
K = 10


def one_device(n_items: int) -> dict:
    """Fit both models in this process (on whatever device it sees) and score them."""
    from recsys.data.synthetic import generate_demo
    from recsys.evaluation import cold_items, evaluate, split
    from recsys.models import _keras_utils as ku
    from recsys.models import make_model
    from recsys.models.two_tower import TwoTowerModel, evaluate_next_item, session_lists

    def step(msg: str) -> None:  # progress on stderr, so a slow step shows where time goes
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    step("generating the demo shop")
    dataset = generate_demo(n_items=n_items, n_sequences=n_items * 4, seed=0)
    train, test = split(dataset, method="time")
    cold = cold_items(train, threshold=3, catalog=dataset.catalog["item_id"].astype(str))
    out: dict = {"device": ku.device_info()}
    step(f"device {out['device']}; fitting the content model")
    t0 = time.perf_counter()
    content = make_model("content").fit(train)
    out["content_fit_s"] = round(time.perf_counter() - t0, 2)
    m = evaluate(content, train, test, k=K, catalog=dataset.catalog, target_filter=cold)
    out[f"content_cold_hr@{K}"] = round(m[f"hr@{K}"], 4)
    out["content_cold_cases"] = int(m["n_cases"])
    step(f"content done in {out['content_fit_s']} s; fitting two-tower")
    t0 = time.perf_counter()
    tt = TwoTowerModel().fit(train)
    out["two_tower_fit_s"] = round(time.perf_counter() - t0, 2)
    out[f"two_tower_hr@{K}"] = round(evaluate_next_item(tt, session_lists(test), K)[f"hr@{K}"], 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--child", choices=["gpu", "cpu"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_device(args.items)))
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    result: dict = {"backend": backend, "items": args.items}
    hide = {  # the same backend with the accelerator hidden
        "CUDA_VISIBLE_DEVICES": "",
        "JAX_PLATFORMS": "cpu",
    }
    for name, extra in (("gpu", {}), ("cpu", hide)):
        env = {**os.environ, **extra}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--items", str(args.items), "--child", name],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            result[name] = {"error": proc.stderr.strip().splitlines()[-5:]}
            continue
        result[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        result[name]["wall_s"] = round(time.perf_counter() - t0, 1)
    gpu, cpu = result.get("gpu", {}), result.get("cpu", {})
    if "content_fit_s" in gpu and "content_fit_s" in cpu:
        result["content_cpu_over_gpu"] = round(cpu["content_fit_s"] / gpu["content_fit_s"], 2)
        result["two_tower_cpu_over_gpu"] = round(cpu["two_tower_fit_s"] / gpu["two_tower_fit_s"], 2)
    try:
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        result["load_avg_1m"] = None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
