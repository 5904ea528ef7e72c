"""Fixtures shared by every test folder (keep this file small)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# MLflow tracking stays off in the suite (fast, no mlflow.db); tests of recsys.tracking turn it on.
os.environ.setdefault("RECSYS_MLFLOW", "off")
# A training job queues no UMAP job in the suite (a UMAP fit per trained run would cost minutes);
# tests/unit/test_umap_after_train.py turns it on.
os.environ.setdefault("RECSYS_UMAP_AFTER_TRAIN", "off")

#: The real datasets live beside the project, never inside it (see ../shared/datasets/README.md).
SHARED_DATASETS = Path(
    os.environ.get("RECSYS_SHARED_DATASETS")
    or Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
)


@pytest.fixture(scope="session")
def demo_small():
    """The synthetic demo shop with 1,000 items, seed 0 (shared, do not mutate)."""
    from recsys.data.synthetic import generate_demo

    return generate_demo(n_items=1000, seed=0)


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    """An empty data directory (``<data_dir>/datasets``, ``runs``... are created on use)."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real datasets; skips the test when it is absent (a fresh clone)."""
    if not (SHARED_DATASETS / "README.md").exists():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS} (set RECSYS_SHARED_DATASETS to use them)")
    return SHARED_DATASETS.resolve()
