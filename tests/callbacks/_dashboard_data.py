"""Small data directories with known contents for the Overview/Runs/Data callback tests.

``make_data_dir(root)`` stores a 200-item demo dataset and registers two runs with
fixed, known metrics (a fitted popularity model and a tiny fitted prod2vec), both
active, so the pages' output can be checked against exact numbers.
``page``, ``find`` and ``text_of`` are in :mod:`tests.callbacks._pages`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from recsys.data.schema import save_dataset
from recsys.data.synthetic import generate_demo
from recsys.models import make_model
from recsys.registry import Registry

N_ITEMS = 200
METRICS = {
    "popularity": {"hr@10": 0.125, "ndcg@10": 0.0625, "coverage@10": 0.05, "mrr@10": 0.04, "n_cases": 80},
    "prod2vec": {"hr@10": 0.25, "ndcg@10": 0.1875, "coverage@10": 0.5, "mrr@10": 0.1, "n_cases": 80},
}


_TEMPLATE: dict[str, Any] = {}


def make_data_dir(root: Path) -> dict[str, str]:
    """Fill ``root`` (an empty or new folder); return family -> run id.

    The data is built once per test process and copied, since fitting even a tiny
    prod2vec costs seconds (gensim's import).
    """
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="recsys-callbacks-"))
        _TEMPLATE["runs"] = _build(template)
        _TEMPLATE["path"] = template
    shutil.copytree(_TEMPLATE["path"], root, dirs_exist_ok=True)
    return dict(_TEMPLATE["runs"])


def _build(root: Path) -> dict[str, str]:
    dataset = generate_demo(n_items=N_ITEMS, n_sequences=300, seed=1)
    save_dataset(dataset, root)
    registry = Registry(root)
    out = {}
    for family, params in (
        ("popularity", {}),
        ("prod2vec", {"vector_size": 8, "epochs": 1, "min_count": 1, "workers": 1}),
    ):
        model = make_model(family, **params).fit(dataset)
        meta = registry.create_run(
            model,
            dataset_name="demo",
            dataset_fingerprint=dataset.fingerprint(),
            metrics=METRICS[family],
            label=f"{family} test run",
        )
        registry.activate(meta["run_id"])
        out[family] = meta["run_id"]
    return out
