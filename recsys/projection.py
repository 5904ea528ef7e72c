"""2-D projections of item vectors (PCA, UMAP), cached per run, and neighbourhood purity.

- :func:`project` maps vectors to 2-D. Rows are L2-normalised first, since the
  models' similarity is cosine: on unit vectors Euclidean distance orders
  neighbours exactly as cosine does, so PCA and UMAP see what search sees.
- :func:`project_run` projects a run's vectors and stores
  ``runs/<run_id>/projection_<method>.parquet`` (``item_id``, ``x``, ``y`` as
  float32), written to a temporary file and renamed into place. It is the
  function of the background job kind ``"project"``.
- :func:`load_projection` reads it back, cached by file modification time.
- :func:`run_projection` is what the Map shows: the stored UMAP, or PCA (stored, or
  computed in memory and cached by the run's ``run.json`` stamp);
  :func:`sample_points` aligns it with a catalogue (seeded sample above a limit).
- :func:`neighbourhood_purity` measures, per label (category, brand...), the
  share of each item's k nearest neighbours that carry the same label;
  :func:`catalogue_purity` does it by a colouring's labels.

PCA is exact and cheap at any size (a d x d eigenproblem), so it is the fast
first view. UMAP is imported only inside :func:`project`; above ``max_points``
it is fitted on a seeded random sample and the other points are placed with
``UMAP.transform``, so every item still gets coordinates. UMAP runs on all
cores unless a ``seed`` is given: a seeded UMAP is single-threaded
(lmcinnes/umap#1001), so seed it for tests and reproducible figures only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys._io import Stamp, atomic_path, file_stamp
from recsys.config import Progress, null_progress
from recsys.errors import RecsysError
from recsys.topk import topk_rows_unordered

logger = logging.getLogger(__name__)

METHODS = ("pca", "umap")
MISSING_LABEL = "(missing)"
_CACHE_SIZE = 8
_cache: OrderedDict[str, tuple[Stamp, pd.DataFrame]] = OrderedDict()
_cache_lock = threading.Lock()


class ProjectionError(RecsysError, ValueError):
    """A projection cannot be computed (bad parameters, or a run without vectors)."""


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


def _check_vectors(vectors: Any) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ProjectionError(f"vectors must be a non-empty 2-D array (n_items, dim), got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ProjectionError(f"vectors contain NaN or infinite values (first in row {bad})")
    return x


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal components of ``x`` (rows as given), float32 (n, 2).

    Signs are fixed (largest loading positive) so repeated runs agree.
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    out = np.zeros((n, 2), dtype=np.float32)
    if n < 2:
        return out
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / (n - 1)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    comps = evecs[:, ::-1][:, : min(2, d)]
    flip = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(comps.shape[1])])
    comps = comps * np.where(flip == 0, 1.0, flip)
    out[:, : comps.shape[1]] = (centred @ comps).astype(np.float32)
    return out


def numba_cache_dir() -> Path:
    """Where numba keeps compiled UMAP/pynndescent code between processes.

    Every projection job is a fresh process, and umap-learn's numba functions took about a
    minute to compile in each; with a cache directory the functions marked ``cache=True``
    compile once per installation. ``$NUMBA_CACHE_DIR`` wins; else the user's cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``)/recsys-lab/numba; else the system temp folder.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for root in (base, Path(tempfile.gettempdir())):
        path = root / "recsys-lab" / "numba"
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
            return path
        except OSError:
            continue
    return Path(tempfile.gettempdir())


class _EpochProgress:
    """A file-like target for umap-learn's tqdm bar: turns "n/total" into progress calls."""

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.report = report

    def write(self, text: str) -> None:
        found = re.findall(r"(\d+)/(\d+)", text)
        if found:
            done, total = found[-1]
            self.report(int(done), int(total))

    def flush(self) -> None:
        pass


class _PhaseProgress(io.TextIOBase):
    """Stands in for ``sys.stdout`` during a verbose UMAP fit: turns what umap-learn and
    pynndescent print (also from numba code, which writes through ``sys.stdout``) into phase
    progress, so the bar moves during the nearest-neighbour search too, not only with the
    layout's epochs. Each complete line is also logged (the job's log keeps it).

    ``report(units, label)``: units in the neighbour phase's range of :func:`project`.
    """

    #: (text in the line, progress units, label); the NN-descent iterations fill 120-260.
    PHASES = (
        ("Finding Nearest Neighbors", 60, "finding neighbours"),
        ("Building RP forest", 80, "finding neighbours: random-projection trees"),
        ("NN descent for", 120, "finding neighbours: NN-descent (numba compiles it on first use)"),
        ("Stopping threshold met", 260, "finding neighbours: converged"),
        ("Finished Nearest Neighbor Search", 270, "neighbours found; building the fuzzy graph"),
        ("Construct embedding", 290, "initialising the layout"),
    )

    def __init__(self, report: Callable[[int, str], None]) -> None:
        self.report = report
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line.strip())
        return len(text)

    def _line(self, line: str) -> None:
        if not line:
            return
        logger.info("umap: %s", line)
        step = re.fullmatch(r"(\d+)\s*/\s*(\d+)", line)  # pynndescent: "\t 3  /  13"
        if step:
            done, total = int(step.group(1)), max(int(step.group(2)), 1)
            self.report(
                120 + int(140 * min(done, total) / total), f"finding neighbours: NN-descent {done}/{total}"
            )
            return
        for text, units, label in self.PHASES:
            if text in line:
                self.report(units, label)
                return


#: How many UMAP projections may run at once on this machine (``$RECSYS_UMAP_SLOTS``, default 1).
ENV_UMAP_SLOTS = "RECSYS_UMAP_SLOTS"


def umap_slots() -> int:
    """The number of UMAP projections allowed to run at once on this machine (>= 1)."""
    from recsys.jobs.kinds import slot_limit

    return slot_limit("umap")


@contextlib.contextmanager
def umap_slot(
    on_wait: Callable[[], None] | None = None,
    poll: float = 1.0,
    lock_dir: str | os.PathLike[str] | None = None,
) -> Iterator[None]:
    """Hold one of the machine's :func:`umap_slots` UMAP slots (advisory file locks).

    Each projection job is its own process and UMAP uses every core: the demo build starts
    one job per embedding run, and several fits at once would share the cores and each take
    that many times longer, none finishing early (and each paying numba's start-up at once).
    So the jobs queue here: a waiting job calls ``on_wait()`` every ``poll`` seconds (the job's
    progress report, "queued"; a Celery job's cancel check runs in it) until a slot is free.
    The locks live in the system temp folder (``lock_dir`` in tests), so every data directory
    and every worker of the machine shares them; a killed job's lock goes with its process.
    Where file locks are not available (no ``fcntl``), projections are not queued.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(lock_dir or tempfile.gettempdir())
    handles = []
    try:
        for i in range(umap_slots()):
            handles.append(open(folder / f"recsys-lab-umap-{i}.lock", "a+"))  # noqa: SIM115
    except OSError as exc:  # an unwritable temp folder: run unqueued rather than fail
        logger.warning("UMAP queue unavailable (%s); projecting without waiting", exc)
        for fh in handles:
            fh.close()
        yield
        return
    held = None
    try:
        while held is None:
            for fh in handles:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue
                held = fh
                break
            if held is None:
                if on_wait is not None:
                    on_wait()
                time.sleep(poll)
        yield
    finally:
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
        for fh in handles:
            fh.close()


def _import_umap() -> Any:
    """Import umap-learn without its optional ParametricUMAP (which imports TensorFlow).

    ``umap/__init__.py`` tries ``from .parametric_umap import ...`` and falls
    back on ImportError; blocking that one submodule saves ~15 s and the
    memory of TensorFlow when TensorFlow is installed but not used here.
    """
    if "umap" in sys.modules:
        _cache_numba_functions(("umap", "pynndescent"))  # imported elsewhere first: still cache
        return sys.modules["umap"].UMAP
    if "numba" not in sys.modules:  # numba reads its cache folder when imported
        os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
    blocked = "umap.parametric_umap" not in sys.modules and "tensorflow" not in sys.modules
    if blocked:
        sys.modules["umap.parametric_umap"] = None  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)
            import umap
    finally:
        if blocked and sys.modules.get("umap.parametric_umap", 0) is None:
            del sys.modules["umap.parametric_umap"]
    _cache_numba_functions(("umap", "pynndescent"))
    return umap.UMAP


def _cache_numba_functions(packages: tuple[str, ...]) -> int:
    """Turn on numba's on-disk cache for the jitted functions of ``packages`` that lack it.

    umap-learn and pynndescent mark only some functions ``cache=True``; the others (among them
    pynndescent's NN-descent and random-projection trees) were compiled again in every
    projection job, about a minute and more on 2 busy cores before the first neighbour was
    found. Called right after the import, before anything is compiled. Returns how many
    functions it turned on.
    """
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba is a dependency of umap-learn
        return 0
    from numba.core.caching import NullCache

    turned = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for value in list(vars(module).values()):
            if (
                isinstance(value, Dispatcher)
                and isinstance(getattr(value, "_cache", None), NullCache)
                and getattr(value, "__module__", "") == name
            ):
                try:
                    value.enable_caching()
                    turned += 1
                except Exception as exc:  # noqa: BLE001 - a function numba cannot cache is compiled as before
                    logger.debug("numba cache not enabled for %s.%s: %s", name, value.__name__, exc)
    return turned


def project(
    vectors: np.ndarray,
    method: str = "pca",
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int | None = None,
    max_points: int = 100_000,
    progress: Progress | None = None,
    batch_size: int = 50_000,
) -> np.ndarray:
    """Project item vectors to 2-D.

    Parameters
    ----------
    vectors : array-like, shape (n_items, dim)
        Item vectors; rows are L2-normalised before projecting.
    method : {"pca", "umap"}
        PCA (exact, fast at any size) or UMAP (neighbourhood-preserving).
    n_neighbors : int
        UMAP's neighbourhood size (>= 2; capped at n_items - 1).
    min_dist : float
        UMAP's minimum distance between embedded points (>= 0).
    seed : int, optional
        Makes UMAP (and its sampling) reproducible; a seeded UMAP runs on one
        core only. Without it sampling uses seed 0 and UMAP runs in parallel.
    max_points : int
        UMAP is fitted on at most this many points (a seeded random sample);
        the rest are placed with ``UMAP.transform`` in batches. PCA always
        uses every point.
    progress : callable, optional
        ``progress(done, total, message)`` at each stage.
    batch_size : int
        Points per ``transform`` call above ``max_points``.

    Returns
    -------
    numpy.ndarray of float32, shape (n_items, 2)

    Raises
    ------
    ProjectionError
        Bad vectors or parameters.
    """
    progress = progress or null_progress
    if method not in METHODS:
        raise ProjectionError(f"unknown projection method '{method}'; choose one of: {', '.join(METHODS)}")
    x = _unit_rows(_check_vectors(vectors))
    n = x.shape[0]
    if method == "pca":
        progress(0, 1, f"PCA of {n} vectors")
        out = pca_2d(x)
        progress(1, 1, "PCA done")
        return out

    if int(n_neighbors) < 2:
        raise ProjectionError(f"n_neighbors must be >= 2, got {n_neighbors}")
    if float(min_dist) < 0:
        raise ProjectionError(f"min_dist cannot be negative, got {min_dist}")
    if int(max_points) < 10:
        raise ProjectionError(f"max_points must be >= 10, got {max_points}")
    if n <= 4:
        logger.info("only %d points: UMAP needs more; using PCA", n)
        return pca_2d(x)

    rng = np.random.default_rng(0 if seed is None else seed)
    sample = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else None
    fit_x = x if sample is None else x[sample]
    rest = None if sample is None else np.setdiff1d(np.arange(n), sample, assume_unique=True)
    n_batches = 0 if rest is None else int(np.ceil(len(rest) / batch_size))
    # progress units: 0-50 import (and numba's first-use compilation), 50-300 neighbours and
    # graph (phases and NN-descent iterations from umap-learn's verbose output), 300-1000 the
    # layout's epochs (reported by umap-learn's tqdm bar), then 100 a batch
    total = 1000 + 100 * n_batches

    progress(0, total, "queued: waiting for a free UMAP slot")
    with umap_slot(lambda: progress(0, total, "queued: another UMAP projection is running on this machine")):
        progress(0, total, "loading UMAP (numba compiles it on first use)")
        umap_cls = _import_umap()
        nn = int(min(n_neighbors, fit_x.shape[0] - 1))
        reducer = umap_cls(
            n_components=2,
            n_neighbors=nn,
            min_dist=float(min_dist),
            metric="euclidean",  # on unit rows: the same neighbours as cosine, and faster
            random_state=seed,
            n_jobs=1 if seed is not None else -1,
            low_memory=True,
            verbose=True,  # phases and NN-descent iterations, read by _PhaseProgress
            tqdm_kwds={
                "disable": False,
                "file": _EpochProgress(
                    lambda done, epochs: progress(
                        300 + int(700 * done / max(epochs, 1)), total, f"UMAP layout: epoch {done}/{epochs}"
                    )
                ),
                "bar_format": "{n}/{total}",
                "mininterval": 0,  # by epochs, not by time: a fast machine still reports the steps
                "miniters": 20,
            },
        )
        msg = f"fitting UMAP on {fit_x.shape[0]} points" + (f" (sample of {n})" if sample is not None else "")
        progress(50, total, msg + ": finding neighbours")
        t0 = time.perf_counter()
        phases = _PhaseProgress(lambda units, label: progress(units, total, f"{msg}: {label}"))
        with contextlib.redirect_stdout(phases), warnings.catch_warnings():
            # pynndescent's NN-descent takes its distance as an argument, which numba cannot
            # cache on disk (_cache_numba_functions); it says so once per job
            warnings.filterwarnings("ignore", message="Cannot cache compiled function")
            fitted = np.asarray(reducer.fit_transform(fit_x), dtype=np.float32)
        logger.info("%s: %.1f s", msg, time.perf_counter() - t0)
        if sample is None:
            progress(total, total, "UMAP done")
            return fitted

        out = np.empty((n, 2), dtype=np.float32)
        out[sample] = fitted
        for b in range(n_batches):
            rows = rest[b * batch_size : (b + 1) * batch_size]
            out[rows] = np.asarray(reducer.transform(x[rows]), dtype=np.float32)
            progress(
                1000 + 100 * (b + 1),
                total,
                f"placing the other points: {min((b + 1) * batch_size, len(rest))}/{len(rest)}",
            )
        progress(total, total, "UMAP done")
        logger.info("UMAP fitted on a %d-point sample of %d; the rest placed with transform", len(sample), n)
        return out


# -- per run -------------------------------------------------------------------


def projection_name(method: str) -> str:
    """File name of a run's projection for ``method``."""
    if method not in METHODS:
        raise ProjectionError(f"unknown projection method '{method}'; choose one of: {', '.join(METHODS)}")
    return f"projection_{method}.parquet"


def _write_projection(path: Path, item_ids: np.ndarray, coords: np.ndarray, meta: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "item_id": pa.array(np.asarray(item_ids).astype(str), type=pa.string()),
            "x": pa.array(coords[:, 0], type=pa.float32()),
            "y": pa.array(coords[:, 1], type=pa.float32()),
        }
    )
    table = table.replace_schema_metadata({f"recsys.{k}": str(v) for k, v in meta.items()})
    with atomic_path(path, what="the projection") as tmp:
        pq.write_table(table, tmp)


def project_run(
    run_id: str,
    method: str = "umap",
    root: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Project a run's item vectors and store them in the run folder.

    Writes ``projection_<method>.parquet`` (columns ``item_id``, ``x``, ``y``;
    float32) atomically; the parameters are kept in the Parquet metadata.
    This is the function of the job kind ``"project"``.

    Parameters
    ----------
    run_id : str
        A run of an embedding model.
    method : {"pca", "umap"}
    root : path-like, optional
        The data directory.
    progress : callable, optional
    **kw
        Passed to :func:`project` (``n_neighbors``, ``min_dist``, ``seed``,
        ``max_points``).

    Returns
    -------
    dict
        ``{"run_id", "method", "n_points", "seconds", "file", "sampled"}``.

    Raises
    ------
    RunNotFoundError
        No such run.
    ProjectionError
        The run has no item vectors (a baseline), or bad parameters.
    """
    from recsys.registry import Registry

    t0 = time.perf_counter()
    name = projection_name(method)
    registry = Registry(root)
    model = registry.load_model(run_id)
    if not getattr(model, "is_embedding", False) or getattr(model, "vectors_", None) is None:
        raise ProjectionError(
            f"run '{run_id}' ({model.family}) has no item vectors; projections need an embedding model run"
        )
    coords = project(model.vectors_, method=method, progress=progress, **kw)
    seconds = round(time.perf_counter() - t0, 3)
    max_points = int(kw.get("max_points", 100_000))
    sampled = method == "umap" and len(coords) > max_points
    meta = {"method": method, "seconds": seconds, "sampled": sampled, **kw}
    path = registry.artifact_path(run_id, name)
    _write_projection(path, model.item_ids_, coords, meta)
    logger.info("run %s: %s projection of %d points in %.1f s", run_id, method, len(coords), seconds)
    return {
        "run_id": run_id,
        "method": method,
        "n_points": int(len(coords)),
        "seconds": seconds,
        "file": name,
        "sampled": bool(sampled),
    }


def load_projection(
    root: str | os.PathLike[str] | None, run_id: str, method: str = "umap", *, compute: bool = False
) -> pd.DataFrame | None:
    """A run's stored projection, or None when it has not been computed.

    Cached by file path, modification time and size, so a recomputed
    projection is picked up at once. The frame has columns ``item_id`` (str),
    ``x``, ``y`` (float32); ``df.attrs`` holds the parameters it was made with.

    Parameters
    ----------
    root : path-like or None
        The data directory.
    run_id : str
    method : {"pca", "umap"}
    compute : bool
        Compute and store it now when missing (meant for PCA, which takes a
        fraction of a second; UMAP belongs in a background job).

    Raises
    ------
    RunNotFoundError
        No such run.
    """
    from recsys.registry import Registry

    registry = Registry(root)
    path = registry.artifact_path(run_id, projection_name(method))
    stamp = file_stamp(path)
    if stamp is None:
        if not compute:
            return None
        project_run(run_id, method=method, root=registry.root)
        stamp = file_stamp(path)
    key = str(path)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == stamp:
            _cache.move_to_end(key)
            return hit[1].copy(deep=False)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    df = table.to_pandas()
    meta = table.schema.metadata or {}
    df.attrs = {
        k.decode().removeprefix("recsys."): v.decode() for k, v in meta.items() if k.startswith(b"recsys.")
    }
    with _cache_lock:
        _cache[key] = (stamp, df)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return df.copy(deep=False)


_pca_lock = threading.Lock()
_pca_memo: OrderedDict[tuple[str, str], tuple[Stamp | None, pd.DataFrame]] = OrderedDict()


def run_projection(root: str | os.PathLike[str] | None, run_id: str, method: str) -> pd.DataFrame | None:
    """``item_id, x, y`` of a run, as the Map shows it.

    UMAP: the stored file, or None while it has not been computed (a background job makes
    it). PCA: the stored file when a job or the CLI wrote one, else computed in memory (a
    fraction of a second even at 100k items) and kept for the last four runs, keyed by the
    run's ``run.json`` stamp so a retrained run is projected again.

    Raises
    ------
    RunNotFoundError
        No such run.
    """
    from recsys.registry import Registry

    if method == "umap":
        return load_projection(root, run_id, "umap")
    stored = load_projection(root, run_id, "pca")
    if stored is not None:
        return stored
    registry = Registry(root)
    key, stamp = (str(registry.root), run_id), file_stamp(registry.run_dir(run_id) / "run.json")
    with _pca_lock:
        hit = _pca_memo.get(key)
        if hit is not None and hit[0] == stamp:
            _pca_memo.move_to_end(key)
            return hit[1]
    model = registry.load_model(run_id)
    coords = project(model.vectors_, method="pca")
    frame = pd.DataFrame(
        {"item_id": np.asarray(model.item_ids_, dtype=str), "x": coords[:, 0], "y": coords[:, 1]}
    )
    with _pca_lock:
        _pca_memo[key] = (stamp, frame)
        _pca_memo.move_to_end(key)
        while len(_pca_memo) > 4:
            _pca_memo.popitem(last=False)
    return frame


def sample_points(
    item_ids: Any, frame: pd.DataFrame, max_points: int = 100_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(x, y, positions, total)`` of the projected items a catalogue knows.

    ``positions`` are rows of ``item_ids`` (int32), ``x``/``y`` float32; ``total`` counts
    the projected items found in ``item_ids``. Above ``max_points`` a seeded random sample
    (kept in frame order) is returned.
    """
    pos = pd.Index(item_ids).get_indexer(frame["item_id"].astype(str).to_numpy())
    keep = np.flatnonzero(pos >= 0)
    total = len(keep)
    if total > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(keep, size=max_points, replace=False))
    x = frame["x"].to_numpy(dtype=np.float32)[keep]
    y = frame["y"].to_numpy(dtype=np.float32)[keep]
    return x, y, pos[keep].astype(np.int32), total


def catalogue_purity(
    view: Any, vectors: np.ndarray, by: str, k: int = 10, max_queries: int | None = 2000
) -> pd.DataFrame:
    """:func:`neighbourhood_purity` of a run's items by a colouring's labels (all labels kept).

    ``vectors`` are the catalogue's rows (e.g. a searcher's unit vectors); exact search.
    """
    from recsys.labels import item_labels

    labels = item_labels(view, np.arange(view.n), by, top_n=None)
    return neighbourhood_purity(vectors, labels, k=k, method="exact", max_queries=max_queries)


# -- neighbourhood purity ----------------------------------------------------------


def _topk_unordered(sims: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest values of each row (in no particular order).

    The selection is :func:`recsys.topk.topk_rows_unordered` (ties go to the lower column).
    ``np.argpartition`` over long rows is the bottleneck of exact search, so a threshold is
    taken first from a strided subset of columns: the k-th largest value of any subset is at
    most the k-th largest of the row, so every true top-k value passes it, and only
    ~k x stride candidates per row remain; they are selected by the same function, in
    column order, so the result is the one over the whole row. About 7x faster at 100k columns.
    """
    b, n = sims.shape
    stride = n // max(32 * k, 1024)
    if stride < 4:
        return topk_rows_unordered(sims, k)
    sub = sims[:, ::stride]
    m = sub.shape[1]
    threshold = np.partition(sub, m - k, axis=1)[:, m - k]
    mask = sims >= threshold[:, None]
    if int(mask.sum()) > 8 * b * k * stride:  # many ties (duplicate vectors): plain selection
        return topk_rows_unordered(sims, k)
    r, c = np.nonzero(mask)  # by row, columns ascending
    counts = np.bincount(r, minlength=b)
    slot = np.arange(len(r)) - np.repeat(np.cumsum(counts) - counts, counts)
    cand = np.full((b, int(counts.max())), -np.inf, dtype=sims.dtype)  # padding sorts last
    cols = np.zeros(cand.shape, dtype=np.int64)
    cand[r, slot] = sims[r, c]
    cols[r, slot] = c
    return np.take_along_axis(cols, topk_rows_unordered(cand, k), axis=1)


def _knn_exact(unit: np.ndarray, rows: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    n = unit.shape[0]
    bs = max(1, min(batch_size, 16_000_000 // max(n, 1)))
    out = np.empty((len(rows), k), dtype=np.int64)
    for start in range(0, len(rows), bs):
        q = rows[start : start + bs]
        sims = unit[q] @ unit.T
        sims[np.arange(len(q)), q] = -np.inf  # exclude the item itself
        out[start : start + len(q)] = _topk_unordered(sims, k)
    return out


def _knn_hnsw(unit: np.ndarray, rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    import hnswlib

    n, dim = unit.shape
    index = hnswlib.Index(space="ip", dim=dim)  # unit rows: inner product = cosine
    index.init_index(max_elements=n, ef_construction=100, M=16, random_seed=seed)
    index.add_items(unit, np.arange(n))
    index.set_ef(max(2 * (k + 1), 64))
    labels, _ = index.knn_query(unit[rows], k=k + 1)
    labels = labels.astype(np.int64)
    not_self = labels != rows[:, None]
    # keep the first k neighbours that are not the item itself
    order = np.argsort(~not_self, axis=1, kind="stable")
    return np.take_along_axis(labels, order, axis=1)[:, :k]


def neighbourhood_purity(
    vectors: np.ndarray,
    labels: Any,
    k: int = 10,
    *,
    method: str = "auto",
    max_queries: int | None = 20_000,
    seed: int = 0,
    exact_limit: int = 50_000,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Share of each item's k nearest neighbours (cosine) that have its label, per label.

    Parameters
    ----------
    vectors : array-like, shape (n_items, dim)
    labels : array-like, length n_items
        E.g. each item's top-level category. Missing values form the label
        ``"(missing)"``.
    k : int
        Neighbours per item (capped at n_items - 1).
    method : {"auto", "exact", "hnsw"}
        Exact batched NumPy search, or an HNSW index over all items; ``"auto"``
        is exact up to ``exact_limit`` items, or while queries x items stays
        under 2.5e9 (20k sampled queries over 125k items).
    max_queries : int or None
        Measure on a seeded random sample of this many items (their
        neighbours are still searched among all items); None measures every
        item. The default keeps a 100k-item catalogue to a few seconds, with a
        standard error of the overall purity below 0.004.
    seed : int
        Seed of the sample and of the HNSW index.
    exact_limit : int
        Largest n for which ``"auto"`` picks exact search.
    batch_size : int
        Query rows per matrix product in exact search.

    Returns
    -------
    pandas.DataFrame
        One row per label, most frequent first: ``label``, ``n_items`` (items
        with that label), ``n_queries`` (of them measured), ``purity`` (mean
        share of same-label neighbours), ``baseline`` (the share expected from
        random neighbours, ``(n_label - 1) / (n - 1)``), ``lift``
        (purity / baseline). ``attrs`` holds ``k``, ``method``, ``overall``
        (mean over all measured items).
    """
    x = _check_vectors(vectors)
    n = x.shape[0]
    lab = pd.Series(np.asarray(labels, dtype=object))
    if len(lab) != n:
        raise ProjectionError(f"labels has {len(lab)} entries but vectors has {n} rows")
    if n < 2:
        raise ProjectionError("neighbourhood purity needs at least 2 items")
    if int(k) < 1:
        raise ProjectionError(f"k must be >= 1, got {k}")
    if method not in ("auto", "exact", "hnsw"):
        raise ProjectionError(f"unknown method '{method}'; choose auto, exact or hnsw")
    lab = lab.where(lab.notna() & (lab.astype(str) != ""), MISSING_LABEL)
    codes, uniques = pd.factorize(lab, sort=False)
    codes = codes.astype(np.int64)
    kk = int(min(k, n - 1))
    rows = np.arange(n)
    if max_queries is not None and max_queries < n:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=int(max_queries), replace=False))
    if method == "auto":
        chosen = "exact" if n <= exact_limit or len(rows) * n <= 2_500_000_000 else "hnsw"
    else:
        chosen = method
    unit = _unit_rows(x)
    t0 = time.perf_counter()
    nbrs = _knn_exact(unit, rows, kk, batch_size) if chosen == "exact" else _knn_hnsw(unit, rows, kk, seed)
    share = (codes[nbrs] == codes[rows][:, None]).mean(axis=1)
    n_labels = len(uniques)
    counts = np.bincount(codes, minlength=n_labels)
    q_counts = np.bincount(codes[rows], minlength=n_labels)
    sums = np.bincount(codes[rows], weights=share, minlength=n_labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(q_counts > 0, sums / np.maximum(q_counts, 1), np.nan)
        baseline = (counts - 1) / (n - 1)
        lift = np.where(baseline > 0, purity / baseline, np.nan)
    df = pd.DataFrame(
        {
            "label": np.asarray(uniques, dtype=object),
            "n_items": counts.astype(np.int64),
            "n_queries": q_counts.astype(np.int64),
            "purity": purity.astype(np.float64),
            "baseline": baseline.astype(np.float64),
            "lift": lift.astype(np.float64),
        }
    )
    df = df.sort_values(
        ["n_items", "label"],
        ascending=[False, True],
        key=lambda col: col.astype(str) if col.name == "label" else col,
        kind="stable",
    ).reset_index(drop=True)
    df.attrs = {"k": kk, "method": chosen, "overall": float(share.mean()), "n_queries": int(len(rows))}
    logger.debug("purity of %d items (%s, k=%d) in %.2f s", len(rows), chosen, kk, time.perf_counter() - t0)
    return df
