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
from recsys.errors import DamagedRunError, RecsysError, RunNotFoundError, StoredDataError
from recsys.models import ItemModel, get_model_class
from recsys.stored import (
    ActiveFile,
    RunFile,
    check_run_files,
    disk_full_guard,
    read_stored,
    reason_of,
    saving_dir,
)

logger = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # no "..", no hidden folders
_TRACKED_LIBS = ("numpy", "pandas", "gensim", "hnswlib", "scipy", "tensorflow", "keras", "umap-learn")
#: run folder -> (stamp of its files when loaded, model); one entry per run, replaced when
#: a file changes and dropped when the run is deleted.
_model_cache: dict[str, tuple[Any, ItemModel]] = {}
_cache_lock = threading.Lock()
#: run folder -> (stamp of its files, damage reason or None): the file checks of
#: :meth:`Registry.check` are redone only when a file changes.
_check_cache: dict[str, tuple[Any, str | None]] = {}


#: The files whose change (or damage) a run's caches must notice.
_RUN_FILES = ("run.json", "model.json", "item_ids.npy", "vectors.npy", "query_vectors.npy")


def run_files_stamp(folder: Path) -> tuple[Any, ...]:
    """(name, inode, mtime_ns, size) of the files that decide what a run answers.

    A few ``stat`` calls: cheap enough for every request (the searcher and model caches key on it).
    """
    out = []
    base = str(folder)
    for name in _RUN_FILES:
        try:
            st = os.stat(f"{base}/{name}")
        except OSError:
            continue
        out.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log a warning once per process (listings run on every page view)."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


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
    with disk_full_guard(path.name, path.parent):
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
        with disk_full_guard(f"run {run_id}", self.runs_dir):
            tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=self.runs_dir))
        try:
            # locked while filled (a start-up sweep leaves it alone); a full disk is one clear error
            with saving_dir(tmp), disk_full_guard(f"run {run_id}", self.runs_dir):
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
    def _read_meta(self, folder: Path) -> dict[str, Any]:
        """run.json of a run folder, checked against :class:`recsys.stored.RunFile`.

        Raises
        ------
        DamagedRunError
            run.json is unreadable, not JSON, of the wrong shape, or names another run.
        """
        try:
            meta = read_stored(folder / "run.json", RunFile)
        except FileNotFoundError:
            raise RunNotFoundError(f"run '{folder.name}' not found in {self.runs_dir}") from None
        except StoredDataError as exc:
            raise DamagedRunError(folder.name, reason_of(exc)) from None
        if meta["run_id"] != folder.name:
            raise DamagedRunError(
                folder.name, f"run.json names run '{meta['run_id']}', not its folder '{folder.name}'"
            )
        return meta

    def get(self, run_id: str) -> dict[str, Any]:
        """The run.json of a run, with ``active`` set.

        Raises
        ------
        RunNotFoundError
            No such run.
        DamagedRunError
            Its run.json is damaged (see :meth:`check` for the other files).
        """
        meta = self._read_meta(self.run_dir(run_id))
        meta["active"] = self.active().get(meta["family"]) == run_id
        return meta

    def check(self, run_id: str) -> None:
        """Raise :class:`DamagedRunError` when the run's files are damaged.

        run.json, model.json and the ``.npy`` headers are checked (no array is
        read); the verdict is cached until one of those files changes.
        """
        reason = self._damage(self.run_dir(run_id))
        if reason is not None:
            raise DamagedRunError(run_id, reason)

    def _damage(self, folder: Path, meta: dict[str, Any] | None = None) -> str | None:
        """Why a run folder is damaged, or None (cached per version of its files)."""
        stamp = run_files_stamp(folder)
        key = str(folder)
        hit = _check_cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            check_run_files(folder, meta if meta is not None else self._read_meta(folder))
            reason = None
        except DamagedRunError as exc:
            reason = exc.reason
        except StoredDataError as exc:
            reason = reason_of(exc)
        except FileNotFoundError as exc:  # removed while being checked
            reason = f"{Path(exc.filename or '?').name} is missing"
        if reason is not None:
            logger.warning("run %s is damaged: %s", folder.name, reason)
        _check_cache[key] = (stamp, reason)
        return reason

    def _damaged_entry(self, folder: Path, reason: str) -> dict[str, Any]:
        """What a listing shows of a damaged run: what can be read of run.json, and why."""
        try:
            raw = json.loads((folder / "run.json").read_text())
        except (OSError, ValueError, RecursionError):
            raw = None
        raw = raw if isinstance(raw, dict) else {}

        def text(key: str) -> str | None:
            return raw[key] if isinstance(raw.get(key), str) else None

        dataset = raw.get("dataset")
        name = dataset.get("name") if isinstance(dataset, dict) else None
        return {
            "run_id": folder.name,
            "label": text("label") or folder.name,
            "family": text("family") or "",
            "is_embedding": False,
            "dataset": {"name": name if isinstance(name, str) else ""},
            "created": text("created") or "",
            "status": "damaged",
            "metrics": {},
            "active": False,
            "damaged": True,
            "error": reason,
        }

    def list_runs(self, family: str | None = None, *, include_damaged: bool = False) -> list[dict[str, Any]]:
        """run.json of every complete run, newest first.

        Damaged runs (see :meth:`check`) are left out, so pickers and serving never
        offer them; with ``include_damaged`` they are listed too, as ``{"run_id",
        "label", "family", "created", "status": "damaged", "damaged": True,
        "error": <reason>}``.
        """
        active = self.active()
        out = []
        for p in self.runs_dir.iterdir():
            if p.name.startswith(".") or not (p / "run.json").exists():
                continue
            try:
                meta = self._read_meta(p)
                reason = self._damage(p, meta)
            except DamagedRunError as exc:
                meta, reason = {}, exc.reason
            except RunNotFoundError:  # deleted meanwhile
                continue
            if reason is not None:
                if include_damaged:
                    entry = self._damaged_entry(p, reason)
                    if not family or entry["family"] == family:
                        out.append(entry)
                continue
            if family and meta.get("family") != family:
                continue
            meta["active"] = active.get(meta.get("family")) == meta.get("run_id")
            out.append(meta)
        out.sort(key=lambda m: m.get("created", ""), reverse=True)
        return out

    def load_model(self, run_id: str) -> ItemModel:
        """The fitted model of a run (cached per run id while its files are unchanged).

        Raises
        ------
        DamagedRunError
            A file of the run is damaged or the model cannot be loaded from it.
        """
        path = self.run_dir(run_id)
        key, stamp = str(path), run_files_stamp(path)
        with _cache_lock:
            cached = _model_cache.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        self.check(run_id)
        meta = self._read_meta(path)
        try:
            model = get_model_class(meta["family"]).load(path)
        except ImportError:
            raise  # a family whose libraries are missing here: not the run's fault
        except DamagedRunError:
            raise
        except Exception as exc:  # noqa: BLE001 - anything a damaged file makes numpy/json raise
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            reason = f"the model cannot be loaded ({type(exc).__name__}: {first})"
            if isinstance(exc, RecsysError):
                reason = f"the model cannot be loaded ({first})"
            logger.warning("run %s is damaged: %s", run_id, reason)
            _check_cache[key] = (stamp, reason)  # the listings show it from now on
            raise DamagedRunError(run_id, reason) from exc
        with _cache_lock:
            _model_cache[key] = (stamp, model)
        return model

    # -- update ------------------------------------------------------------
    def update(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into run.json (dicts are merged one level deep)."""
        path = self.run_dir(run_id)
        meta = self._read_meta(path)
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(meta.get(key), dict):
                meta[key] = {**meta[key], **value}
            else:
                meta[key] = value
        atomic_write_text(path / "run.json", json.dumps(meta, indent=2, default=str))
        return meta

    def artifact_path(self, run_id: str, name: str) -> Path:
        """Where a run's artefact ``name`` lives (it may not exist yet)."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"invalid artefact name '{name}'")
        return self.run_dir(run_id) / name

    # -- active ------------------------------------------------------------
    def active(self) -> dict[str, str]:
        """family -> active run id (empty when runs/active.json is missing or damaged)."""
        try:
            data = read_stored(self.runs_dir / "active.json", ActiveFile)
        except FileNotFoundError:
            return {}
        except StoredDataError as exc:
            _warn_once(
                f"runs/active.json is damaged ({reason_of(exc)}); no run is active until one is activated"
            )
            return {}
        return {
            f: r for f, r in data.items() if _RUN_ID.match(r) and (self.runs_dir / r / "run.json").exists()
        }

    def active_problem(self) -> str | None:
        """Why runs/active.json cannot be used (it is then treated as empty), or None."""
        try:
            read_stored(self.runs_dir / "active.json", ActiveFile)
        except FileNotFoundError:
            return None
        except StoredDataError as exc:
            return (
                f"runs/active.json is damaged ({reason_of(exc)}): no run is active until you activate "
                "one, which rewrites the file"
            )
        return None

    def activate(self, run_id: str) -> dict[str, str]:
        """Make a run the active one of its family (a damaged run cannot be activated)."""
        meta = self.get(run_id)
        self.check(run_id)
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
            _check_cache.pop(str(path), None)
        active = self.active()
        if run_id in active.values():
            active = {f: r for f, r in active.items() if r != run_id}
            atomic_write_text(self.runs_dir / "active.json", json.dumps(active, indent=2))
        shutil.rmtree(trash, ignore_errors=True)
        logger.info("deleted run %s", run_id)
