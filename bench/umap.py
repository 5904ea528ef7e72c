"""Benchmark: a UMAP projection as the app runs it, against plain ``umap.UMAP().fit_transform``.

Target (issue 14, deliverable 5): :func:`recsys.projection.project` with ``method="umap"``
(what the ``"project"`` job runs) finishes within 1.5x of ``umap.UMAP().fit_transform`` on the
same vectors.

Setup (not timed): seeded clustered vectors (``--clusters`` Gaussian blobs in ``--dim``
dimensions, rows L2-normalised as the app does before projecting) saved to a temporary
``.npy``. A warm-up projection of 2,000 points fills numba's compilation cache first (the cost
paid once per installation, reported as ``warmup_s``).

Each side then runs in a FRESH interpreter, as a job does:

- ``ours``: ``recsys.projection.project(x, "umap")``, timed from the call, so it includes
  importing umap-learn (our import skips TensorFlow) and loading numba's cached code;
- ``plain``: ``import umap`` (not timed), then ``umap.UMAP().fit_transform(x)`` timed.

So the ratio is conservative: ours pays its import, plain does not. The two run one after
the other (``plain`` first); the machine is shared, so the load average before and after is
printed with the figures. Prints ONE JSON line.

Usage: ``python bench/umap.py [--n 100000] [--dim 64] [--clusters 50]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

_OURS = """
import sys, time, numpy as np
sys.path.insert(0, {repo!r})
from recsys.projection import project
x = np.load({path!r})
t0 = time.perf_counter()
out = project(x, "umap")
print(time.perf_counter() - t0, out.shape[0])
"""

_PLAIN = """
import time, numpy as np
import umap
x = np.load({path!r})
t0 = time.perf_counter()
out = umap.UMAP().fit_transform(x)
print(time.perf_counter() - t0, out.shape[0])
"""


def vectors(n: int, dim: int, clusters: int, seed: int = 0) -> np.ndarray:
    """Seeded Gaussian blobs, rows L2-normalised (what :func:`project` feeds UMAP)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, size=n)
    x = centres[labels] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(code: str) -> float:
    """Run ``code`` in a fresh interpreter; the seconds it printed."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1].split()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clusters", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.npy", Path(tmp) / "big.npy"
        np.save(small, vectors(2_000, args.dim, args.clusters, seed=1))
        np.save(big, vectors(args.n, args.dim, args.clusters))
        t0 = time.perf_counter()
        timed(_OURS.format(repo=str(REPO), path=str(small)))
        warmup = time.perf_counter() - t0
        load_before = os.getloadavg()[0]
        plain = timed(_PLAIN.format(path=str(big)))
        ours = timed(_OURS.format(repo=str(REPO), path=str(big)))
        load_after = os.getloadavg()[0]
    print(
        json.dumps(
            {
                "bench": "umap",
                "n": args.n,
                "dim": args.dim,
                "plain_fit_transform_s": round(plain, 1),
                "ours_project_s": round(ours, 1),
                "ratio": round(ours / plain, 3),
                "target_ratio": 1.5,
                "warmup_s": round(warmup, 1),
                "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
