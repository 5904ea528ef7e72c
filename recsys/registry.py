"""Runs on disk: create, list, load, activate, delete, all atomic.

A run is a folder ``<data_dir>/runs/<run_id>/`` holding ``run.json`` (model
family, parameters, dataset name and fingerprint, metrics, status, timings,
library versions), the saved model (``model.json``, ``item_ids.npy`` and, for
embedding models, ``vectors.npy``) and artefacts added later (``index.bin``,
``projection_<method>.parquet``). A run is written into a temporary folder and renamed
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

import functools
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

from recsys._io import atomic_write_json, atomic_write_text, file_stamp  # noqa: F401  (atomic_write_text: old import path)
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

#: A run id: a file name, not a path (no "/", no hidden folder, no trailing newline, which
#: ``$`` would let through) and short enough for the file system (a long one is not an OSError).
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
#: The longest label a run may have (the run form, ``POST /train`` and ``/tune``'s ``label``, a
#: vectors import's name): the run-id bound, long enough for any descriptive name, short enough
#: that the run pickers and tables stay readable and run.json stays small.
MAX_LABEL = 200
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
    """(name, :func:`~recsys._io.file_stamp`) of the files that decide what a run answers.

    A few ``stat`` calls: cheap enough for every request (the searcher and model caches key on it).
    """
    base = str(folder)
    return tuple((name, stamp) for name in _RUN_FILES if (stamp := file_stamp(f"{base}/{name}")) is not None)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log a warning once per process (listings run on every page view)."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on (without importing them)."""
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    """Read once per process: the package metadata scan takes tens of milliseconds, and
    the libraries a process has loaded do not change under it."""
    out = {"python": platform.python_version()}
    for name in _TRACKED_LIBS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    from recsys import __version__

    out["recsys"] = __version__
    return out


def label_problem(value: Any, what: str = "label") -> str | None:
    """Why ``value`` cannot be a run's label (None when it can: None, or text of at most
    :data:`MAX_LABEL` characters without control characters)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"the {what} must be text, got {type(value).__name__}"
    if len(value.strip()) > MAX_LABEL:
        return f"the {what} is {len(value.strip()):,} characters long; at most {MAX_LABEL} are allowed"
    if any(ord(c) < 32 or ord(c) == 127 for c in value.strip()):
        return f"the {what} holds a control character (a line break, tab or NUL); use plain text"
    return None


def run_label(run: Any) -> str:
    """The name a page gives a run: its label, or, for a run saved without one (``recsys train``
    without ``--label`` stores its run id as the label), what the run is: "family · dataset ·
    date time" (``prod2vec · taobao · 2026-12-07 10:42``, UTC as ``created`` is), not the raw run
    id. A tuned run says so ("prod2vec tuned · demo · ..."): beside the family's other runs of
    the same day it is the one a user looks for. Every place that names a run (the Runs grid,
    Explore's and Compare's pickers, Overview) takes it from here."""
    run = run if isinstance(run, dict) else {}
    run_id = str(run.get("run_id") or "")
    label = str(run.get("label") or "").strip()
    if label and label != run_id:
        return label
    created = str(run.get("created") or "")
    when = f"{created[:10]} {created[11:16]}".strip() if len(created) >= 16 else created[:10]
    dataset = (
        str((run.get("dataset") or {}).get("name") or "") if isinstance(run.get("dataset"), dict) else ""
    )
    family = str(run.get("family") or "")
    if family and run.get("tuning"):
        family += " tuned"
    parts = [family, dataset, when]
    return " · ".join(p for p in parts if p) or run_id


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
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            shown = run_id[:60] + "..." if isinstance(run_id, str) and len(run_id) > 60 else run_id
            raise RunNotFoundError(
                f"'{shown}' is not a valid run id (up to 200 letters, digits, '_', '.' or '-')"
            )
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
        problem = label_problem(label)
        if problem:
            from recsys.errors import DataValidationError

            raise DataValidationError(f"run not saved: {problem}")
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
        meta["active"] = self.is_active(meta)
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
        state = self._active_state()
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
            meta["active"] = self.is_active(meta, state)
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
            from recsys.fallback import load_chain

            model = get_model_class(meta["family"]).load(path)
            # the run's declared fallback chain (recsys.fallback; None for runs saved before it)
            model.fallback_chain_ = load_chain(path)
        except ImportError:
            raise  # a family whose libraries are missing here: not the run's fault
        except DamagedRunError:
            raise
        except Exception as exc:  # noqa: BLE001 - anything a damaged file makes numpy/json raise
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            reason = f"the model cannot be loaded ({type(exc).__name__}: {first})"
            if isinstance(exc, RecsysError):
                reason = f"the model cannot be loaded ({first})"
            if getattr(exc, "path", None) is not None and getattr(exc, "detail", None):
                # a file the model reads (recsys.stored.read_npy & co.): named within the run
                # ("fallback/cooccurrence/similarity.npz is missing"), as check_run_files names its own
                reason = f"{_within(Path(exc.path), path)} {exc.detail}"
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
        atomic_write_json(path / "run.json", meta)
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

    def _raw_meta(self, run_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.runs_dir / run_id / "run.json").read_text())
        except (OSError, ValueError, TypeError):
            return None

    def _active_state(self) -> dict[str, Any]:
        """``{"default_dataset": str | None, "active": {dataset: {family: run_id}}}`` of
        existing runs (the flat pre-dataset format converted)."""
        empty: dict[str, Any] = {"default_dataset": None, "active": {}}
        try:
            data = read_stored(self.runs_dir / "active.json", ActiveFile)
        except FileNotFoundError:
            return empty
        except StoredDataError as exc:
            _warn_once(
                f"runs/active.json is damaged ({reason_of(exc)}); no run is active until one is activated"
            )
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
                        and _RUN_ID.fullmatch(r)
                        and (self.runs_dir / r / "run.json").exists()
                    }
                    if keep:
                        state["active"][ds] = keep
            return state
        newest: tuple[str, str] | None = None  # flat {family: run_id}
        for family, run_id in data.items():
            if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
                continue
            meta = self._raw_meta(run_id)
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
        atomic_write_json(self.runs_dir / "active.json", data)

    def is_active(self, meta: dict[str, Any], state: dict[str, Any] | None = None) -> bool:
        """Whether the run of this run.json is the active one of its dataset and family."""
        state = state if state is not None else self._active_state()
        fams = state["active"].get(self._run_dataset(meta), {})
        return bool(meta.get("run_id")) and fams.get(meta.get("family")) == meta.get("run_id")

    def default_dataset(self, runs: list[dict[str, Any]] | None = None) -> str | None:
        """The dataset served when no run is named: the stored choice while it has runs,
        else the dataset of the newest run (None without runs). ``runs``: what
        :meth:`list_runs` gave the caller, so a page lists them once."""
        chosen = self._active_state().get("default_dataset")
        runs = self.list_runs() if runs is None else runs
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

    def active_by_dataset(self) -> dict[str, dict[str, str]]:
        """dataset -> family -> active run id."""
        return {ds: dict(f) for ds, f in self._active_state()["active"].items()}

    def activate(self, run_id: str) -> dict[str, str]:
        """Make a run the active one of its dataset and family; return that dataset's
        family -> run id. The first run ever activated makes its dataset the default.
        A damaged run cannot be activated."""
        meta = self.get(run_id)
        self.check(run_id)
        ds = self._run_dataset(meta)
        state = self._active_state()
        state["active"].setdefault(ds, {})[meta["family"]] = run_id
        if not state.get("default_dataset"):
            state["default_dataset"] = ds
        self._write_active(state)
        return dict(state["active"][ds])

    def default_run(
        self,
        family: str | None = None,
        embedding_only: bool = True,
        dataset: str | None = None,
        runs: list[dict[str, Any]] | None = None,
    ) -> str | None:
        """The run served when none is named: in ``dataset`` (default: the default dataset)
        the active run of ``family`` (any family when None), else its newest run; other
        datasets only when that one has no such run. ``runs``: what :meth:`list_runs` gave
        the caller (every family), so a page lists them once."""
        state = self._active_state()
        every = self.list_runs() if runs is None else runs
        runs = [r for r in every if not family or r.get("family") == family]
        if embedding_only:
            runs = [r for r in runs if r.get("is_embedding")]
        ds = dataset if dataset is not None else self.default_dataset(every)
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
        meta = self._raw_meta(run_id) or {}
        state = self._active_state()
        was_active = self.is_active({**meta, "run_id": run_id}, state)
        trash = self.runs_dir / f".deleted-{run_id}-{uuid.uuid4().hex[:6]}"
        path.rename(trash)
        with _cache_lock:
            _model_cache.pop(str(path), None)
            _check_cache.pop(str(path), None)
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


def _within(file: Path, folder: Path) -> str:
    """``file`` relative to ``folder`` when it is inside it, else its name."""
    try:
        return file.relative_to(folder).as_posix()
    except ValueError:
        return file.name
