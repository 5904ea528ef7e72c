"""Runs on disk: create, list, load, activate, delete, all atomic.

A run is a folder ``<data_dir>/runs/<run_id>/`` holding ``run.json`` (model
family, parameters, dataset name and fingerprint, metrics, status, timings,
library versions), the saved model (``model.json``, ``item_ids.npy`` and, for
embedding models, ``vectors.npy``) and artefacts added later (``index.bin``,
``projection.parquet``). A run is written into a temporary folder and renamed
into place, so a crash never leaves half a run visible; artefacts added later
are written to a temporary file and renamed too.

One run per dataset and model family can be *active* (``runs/active.json``), and one
dataset is the *default* one: serving and the dashboard use the default dataset's active
run when none is named. Training, activating or deleting a run of another dataset never
changes what the default dataset serves; deleting an active run activates the newest other
complete run of the same dataset and family (:meth:`Registry.delete` says which, or that
none is left). ``active.json`` is ``{"default_dataset": name, "active": {dataset: {family:
run_id}}}``; the older flat ``{family: run_id}`` is read as that (each run under its own
dataset, the newest active run's dataset as the default).
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
        meta["active"] = self.is_active(meta)
        return meta

    def list_runs(self, family: str | None = None) -> list[dict[str, Any]]:
        """run.json of every complete run, newest first."""
        state = self._active_state()
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
            meta["active"] = self.is_active(meta, state)
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
    @staticmethod
    def _run_dataset(meta: dict[str, Any]) -> str:
        return str((meta.get("dataset") or {}).get("name") or "")

    def _read_meta(self, run_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.runs_dir / run_id / "run.json").read_text())
        except (OSError, ValueError, TypeError):
            return None

    def _active_state(self) -> dict[str, Any]:
        """``{"default_dataset": str | None, "active": {dataset: {family: run_id}}}`` of
        existing runs (the flat pre-dataset format converted)."""
        path = self.runs_dir / "active.json"
        empty: dict[str, Any] = {"default_dataset": None, "active": {}}
        if not path.exists():
            return empty
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("runs/active.json is unreadable; treating as empty")
            return empty
        if not isinstance(data, dict):
            return empty
        state: dict[str, Any] = {"default_dataset": None, "active": {}}
        if "active" in data and isinstance(data.get("active"), dict):  # current format
            state["default_dataset"] = data.get("default_dataset")
            for ds, fams in data["active"].items():
                if isinstance(fams, dict):
                    keep = {
                        f: r
                        for f, r in fams.items()
                        if isinstance(r, str)
                        and _RUN_ID.match(r)
                        and (self.runs_dir / r / "run.json").exists()
                    }
                    if keep:
                        state["active"][ds] = keep
            return state
        newest: tuple[str, str] | None = None  # flat {family: run_id}
        for family, run_id in data.items():
            if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
                continue
            meta = self._read_meta(run_id)
            if meta is None:
                continue
            ds = self._run_dataset(meta)
            state["active"].setdefault(ds, {})[family] = run_id
            if newest is None or str(meta.get("created", "")) > newest[0]:
                newest = (str(meta.get("created", "")), ds)
        state["default_dataset"] = newest[1] if newest else None
        return state

    def _write_active(self, state: dict[str, Any]) -> None:
        data = {"default_dataset": state.get("default_dataset"), "active": state.get("active", {})}
        atomic_write_text(self.runs_dir / "active.json", json.dumps(data, indent=2))

    def is_active(self, meta: dict[str, Any], state: dict[str, Any] | None = None) -> bool:
        """Whether the run of this run.json is the active one of its dataset and family."""
        state = state if state is not None else self._active_state()
        fams = state["active"].get(self._run_dataset(meta), {})
        return bool(meta.get("run_id")) and fams.get(meta.get("family")) == meta.get("run_id")

    def default_dataset(self) -> str | None:
        """The dataset served when no run is named: the stored choice while it has runs,
        else the dataset of the newest run (None without runs)."""
        chosen = self._active_state().get("default_dataset")
        runs = self.list_runs()
        if chosen and any(self._run_dataset(r) == chosen for r in runs):
            return chosen
        return self._run_dataset(runs[0]) if runs else None

    def set_default_dataset(self, name: str) -> None:
        """Serve ``name``'s active runs by default (it must have a run)."""
        if not any(self._run_dataset(r) == name for r in self.list_runs()):
            raise RunNotFoundError(f"no run of dataset '{name}': train one before making it the default")
        state = self._active_state()
        state["default_dataset"] = name
        self._write_active(state)

    def active(self, dataset: str | None = None) -> dict[str, str]:
        """family -> active run id of ``dataset`` (the default dataset when None)."""
        state = self._active_state()
        ds = dataset if dataset is not None else self.default_dataset()
        return dict(state["active"].get(ds or "", {}))

    def active_by_dataset(self) -> dict[str, dict[str, str]]:
        """dataset -> family -> active run id."""
        return {ds: dict(f) for ds, f in self._active_state()["active"].items()}

    def activate(self, run_id: str) -> dict[str, str]:
        """Make a run the active one of its dataset and family; return that dataset's
        family -> run id. The first run ever activated makes its dataset the default."""
        meta = self.get(run_id)
        ds = self._run_dataset(meta)
        state = self._active_state()
        state["active"].setdefault(ds, {})[meta["family"]] = run_id
        if not state.get("default_dataset"):
            state["default_dataset"] = ds
        self._write_active(state)
        return dict(state["active"][ds])

    def default_run(
        self, family: str | None = None, embedding_only: bool = True, dataset: str | None = None
    ) -> str | None:
        """The run served when none is named: in ``dataset`` (default: the default dataset)
        the active run of ``family`` (any family when None), else its newest run; other
        datasets only when that one has no such run."""
        state = self._active_state()
        runs = self.list_runs(family)
        if embedding_only:
            runs = [r for r in runs if r.get("is_embedding")]
        ds = dataset if dataset is not None else self.default_dataset()
        mine = [r for r in runs if self._run_dataset(r) == ds]
        for group in (mine, runs):
            for r in group:
                if self.is_active(r, state):
                    return r["run_id"]
            if group:
                return group[0]["run_id"]
        return None

        # -- delete ------------------------------------------------------------

    def delete(self, run_id: str) -> dict[str, Any]:
        """Delete a run (rename away first, so it disappears at once).

        Returns ``{"was_active": bool, "replacement": run_id | None}``: when the run was the
        active one of its dataset and family, the newest other complete run of that dataset
        and family becomes active (None: none is left, that family has no active run there).
        """
        path = self.run_dir(run_id)
        meta = self._read_meta(run_id) or {}
        state = self._active_state()
        was_active = self.is_active({**meta, "run_id": run_id}, state)
        trash = self.runs_dir / f".deleted-{run_id}-{uuid.uuid4().hex[:6]}"
        path.rename(trash)
        with _cache_lock:
            _model_cache.pop(str(path), None)
        replacement = None
        if was_active:
            ds, family = self._run_dataset(meta), meta.get("family")
            others = [
                r
                for r in self.list_runs(family)
                if self._run_dataset(r) == ds and r.get("status", "complete") == "complete"
            ]
            fams = state["active"].setdefault(ds, {})
            if others:
                replacement = others[0]["run_id"]
                fams[family] = replacement
            else:
                fams.pop(family, None)
                if not fams:
                    state["active"].pop(ds, None)
            self._write_active(state)
        shutil.rmtree(trash, ignore_errors=True)
        logger.info("deleted run %s%s", run_id, f" ({replacement} now active)" if replacement else "")
        return {"was_active": was_active, "replacement": replacement}
