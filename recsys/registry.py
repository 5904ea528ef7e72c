"""Runs on disk: create, list, load, activate, delete, all atomic.

A run is a folder ``<data_dir>/runs/<run_id>/`` holding ``run.json`` (model
family, parameters, dataset name and fingerprint, metrics, status, timings,
library versions), the saved model (``model.json``, ``item_ids.npy`` and, for
embedding models, ``vectors.npy``) and artefacts added later (``index.bin``,
``projection.parquet``). A run is written into a temporary folder and renamed
into place, so a crash never leaves half a run visible; artefacts added later
are written to a temporary file and renamed too.

One run per model family can be *active* (``runs/active.json``): serving and
the dashboard use it by default.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from recsys.config import data_dir
from recsys.errors import RunNotFoundError, StoredDataError
from recsys.models import ItemModel, get_model_class

logger = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # no "..", no hidden folders
_TRACKED_LIBS = ("numpy", "pandas", "gensim", "hnswlib", "scipy", "tensorflow", "keras", "umap-learn")
#: run folder -> (run.json's mtime when loaded, model); one entry per run, replaced when
#: run.json changes and dropped when the run is deleted.
_model_cache: dict[str, tuple[int, ItemModel]] = {}
_cache_lock = threading.Lock()


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on (without importing them)."""
    out = {"python": platform.python_version()}
    for name in _TRACKED_LIBS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    from recsys import __version__

    out["recsys"] = __version__
    return out


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Registry:
    """The runs stored under a data directory.

    Parameters
    ----------
    root : path-like, optional
        The data directory (see :func:`recsys.config.data_dir`).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = data_dir(root)
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """The folder of an existing run; raises RunNotFoundError otherwise."""
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise RunNotFoundError(f"'{run_id}' is not a valid run id")
        path = self.runs_dir / run_id
        if not (path / "run.json").exists():
            raise RunNotFoundError(f"run '{run_id}' not found in {self.runs_dir}")
        return path

    # -- create ------------------------------------------------------------
    def create_run(
        self,
        model: ItemModel,
        *,
        dataset_name: str,
        dataset_fingerprint: str,
        metrics: dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
        extra: dict[str, Any] | None = None,
        writers: list[Callable[[Path], dict[str, Any] | None]] | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """Save a fitted model as a new run, atomically; return its run.json.

        ``writers`` are called with the temporary run folder before it is
        renamed into place (e.g. to build ``index.bin``); a dict they return
        is merged into run.json under ``artifacts``.
        """
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_id = f"{model.family}-{stamp}-{uuid.uuid4().hex[:6]}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=self.runs_dir))
        try:
            t0 = time.perf_counter()
            model.save(tmp)
            artifacts: dict[str, Any] = {}
            for writer in writers or []:
                artifacts.update(writer(tmp) or {})
            meta = {
                "run_id": run_id,
                "label": label or run_id,
                "family": model.family,
                "is_embedding": model.is_embedding,
                "params": model.get_params(),
                "dataset": {"name": dataset_name, "fingerprint": dataset_fingerprint},
                "metrics": metrics or {},
                "coverage": getattr(model, "coverage_", {}),
                "timings": {**(timings or {}), "save_s": round(time.perf_counter() - t0, 3)},
                "status": "complete",
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "versions": library_versions(),
                "artifacts": artifacts,
                **(extra or {}),
            }
            (tmp / "run.json").write_text(json.dumps(meta, indent=2, default=str))
            tmp.rename(self.runs_dir / run_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("created run %s", run_id)
        return meta

    # -- read --------------------------------------------------------------
    def get(self, run_id: str) -> dict[str, Any]:
        """The run.json of a run, with ``active`` set."""
        path = self.run_dir(run_id) / "run.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoredDataError(
                f"{path} is unreadable ({exc}); restore it or delete the run folder"
            ) from exc
        meta["active"] = self.active().get(meta["family"]) == run_id
        return meta

    def list_runs(self, family: str | None = None) -> list[dict[str, Any]]:
        """run.json of every complete run, newest first."""
        active = self.active()
        out = []
        for p in self.runs_dir.iterdir():
            if p.name.startswith(".") or not (p / "run.json").exists():
                continue
            try:
                meta = json.loads((p / "run.json").read_text())
            except (OSError, json.JSONDecodeError):
                logger.warning("skipping unreadable run folder %s", p)
                continue
            if family and meta.get("family") != family:
                continue
            meta["active"] = active.get(meta.get("family")) == meta.get("run_id")
            out.append(meta)
        out.sort(key=lambda m: m.get("created", ""), reverse=True)
        return out

    def load_model(self, run_id: str) -> ItemModel:
        """The fitted model of a run (cached per run id)."""
        path = self.run_dir(run_id)
        key, mtime = str(path), (path / "run.json").stat().st_mtime_ns
        with _cache_lock:
            cached = _model_cache.get(key)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        meta = json.loads((path / "run.json").read_text())
        model = get_model_class(meta["family"]).load(path)
        with _cache_lock:
            _model_cache[key] = (mtime, model)
        return model

    # -- update ------------------------------------------------------------
    def update(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into run.json (dicts are merged one level deep)."""
        path = self.run_dir(run_id) / "run.json"
        meta = json.loads(path.read_text())
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(meta.get(key), dict):
                meta[key] = {**meta[key], **value}
            else:
                meta[key] = value
        atomic_write_text(path, json.dumps(meta, indent=2, default=str))
        return meta

    def artifact_path(self, run_id: str, name: str) -> Path:
        """Where a run's artefact ``name`` lives (it may not exist yet)."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"invalid artefact name '{name}'")
        return self.run_dir(run_id) / name

    # -- active ------------------------------------------------------------
    def active(self) -> dict[str, str]:
        """family -> active run id."""
        path = self.runs_dir / "active.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            logger.warning("runs/active.json is unreadable; treating as empty")
            return {}
        return {f: r for f, r in data.items() if (self.runs_dir / r / "run.json").exists()}

    def activate(self, run_id: str) -> dict[str, str]:
        """Make a run the active one of its family."""
        meta = self.get(run_id)
        active = self.active()
        active[meta["family"]] = run_id
        atomic_write_text(self.runs_dir / "active.json", json.dumps(active, indent=2))
        return active

    def default_run(self, family: str | None = None, embedding_only: bool = True) -> str | None:
        """The active run of ``family`` (or any family), else the newest run."""
        active = self.active()
        runs = self.list_runs(family)
        if embedding_only:
            runs = [r for r in runs if r.get("is_embedding")]
        for r in runs:
            if active.get(r["family"]) == r["run_id"]:
                return r["run_id"]
        return runs[0]["run_id"] if runs else None

    # -- delete ------------------------------------------------------------
    def delete(self, run_id: str) -> None:
        """Delete a run (rename away first, so it disappears at once)."""
        path = self.run_dir(run_id)
        trash = self.runs_dir / f".deleted-{run_id}-{uuid.uuid4().hex[:6]}"
        path.rename(trash)
        with _cache_lock:
            _model_cache.pop(str(path), None)
        active = self.active()
        if run_id in active.values():
            active = {f: r for f, r in active.items() if r != run_id}
            atomic_write_text(self.runs_dir / "active.json", json.dumps(active, indent=2))
        shutil.rmtree(trash, ignore_errors=True)
        logger.info("deleted run %s", run_id)
