"""Background jobs in the UI: the job progress card, the app-level poller, device detection.

The app shell holds ``dcc.Store(id=ids.JOBS_STORE)`` and a ``dcc.Interval``; the
:func:`poll_jobs` callback below reads the job state persisted by
:class:`recsys.jobs.JobStore` about once a second and writes a small JSON summary
into the store (only when something changed), so every page can show progress and
react when a job finishes, whichever page started it and whoever opened the app.

Store shape (``ids.JOBS_STORE``)::

    {"jobs": [job summary, newest first, at most MAX_JOBS], "active": [job ids queued or running]}

A job summary (:func:`job_summary`) has ``id, kind, status, fraction, message,
error, result, params, created, finished``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from components import ids
from recsys._io import file_lock, file_stamp
from recsys.config import data_dir
from recsys.errors import RecsysError

logger = logging.getLogger(__name__)

MAX_JOBS = 20
ACTIVE_STATES = ("queued", "running")
POLL_MS = 1000

_STATUS_COLOR = {
    "queued": "secondary",
    "running": "primary",
    "done": "success",
    "complete": "success",
    "succeeded": "success",
    "failed": "danger",
    "error": "danger",
    "cancelled": "warning",
    "canceled": "warning",
    "interrupted": "warning",
    "damaged": "danger",
}
_KIND_TITLE = {
    "demo": "Demo build",
    "train": "Training",
    "project": "Projection (UMAP)",
    "import": "Dataset import",
    "import_vectors": "Vectors import",
}


# -- plain data --------------------------------------------------------------
def job_store(root: str | os.PathLike[str] | None = None) -> Any:
    """The :class:`recsys.jobs.JobStore` of the data directory."""
    from recsys.jobs import JobStore

    return JobStore(data_dir(root))


def job_summary(job: dict[str, Any]) -> dict[str, Any]:
    """A small, JSON-safe view of a job record (what the browser store holds)."""
    progress = job.get("progress")
    done = total = None
    message = job.get("message") or ""
    if isinstance(progress, dict):
        done, total = progress.get("done"), progress.get("total")
        message = progress.get("message") or message
        if progress.get("fraction") is not None:
            done, total = progress["fraction"], 1.0
    elif isinstance(progress, (int, float)):
        done, total = float(progress), 1.0
    if done is None and "done" in job and "total" in job:
        done, total = job.get("done"), job.get("total")
    status = str(job.get("status", "queued"))
    fraction = 0.0
    if total:
        fraction = max(0.0, min(1.0, float(done or 0) / float(total)))
    if status in ("done", "complete", "succeeded"):
        fraction = 1.0
    return {
        "id": str(job.get("job_id") or job.get("id") or ""),
        "kind": str(job.get("kind", "")),
        "label": str(job.get("label") or ""),
        "status": status,
        "fraction": round(fraction, 4),
        "message": str(message)[:300],
        "error": str(job.get("error") or "")[:2000],
        "result": _small(job.get("result")),
        "params": _small(job.get("params")),
        "created": str(job.get("created") or job.get("submitted") or ""),
        "finished": str(job.get("finished") or ""),
    }


def list_job_summaries(
    root: str | os.PathLike[str] | None = None, limit: int = MAX_JOBS
) -> list[dict[str, Any]]:
    """Summaries of the most recent jobs, newest first."""
    from recsys.jobs import INTERNAL_KINDS

    damaged: list[dict[str, str]] = []
    jobs = job_store(root).list_jobs(limit=None, damaged=damaged)  # every job.json is read anyway
    out = [job_summary(j) for j in jobs if j.get("kind") not in INTERNAL_KINDS]
    out.sort(key=lambda j: j["created"], reverse=True)
    # job folders whose job.json is damaged: named, with why, after the readable ones
    out = out[:limit] + [job_summary({**bad, "status": "damaged"}) for bad in damaged[:5]]
    return out


def jobs_snapshot() -> dict[str, Any]:
    """``{"jobs": list_job_summaries()}`` for a page's first render; ``{}`` if the job store is unreadable.

    A page still renders without the job store (the failure is logged as a warning).
    """
    try:
        return {"jobs": list_job_summaries()}
    except Exception as exc:  # the page still renders without the job store
        logger.warning("job store unreadable: %s", exc)
        return {}


def jobs_badge(jobs: list[dict[str, Any]]) -> str:
    """The navbar badge: "2 jobs running · 1 queued" ("" when no job is active).

    Queued jobs are those waiting to start (e.g. for a free UMAP slot, see
    :class:`recsys.jobs.JobStore`), apart from the running ones.
    """
    running = sum(1 for j in jobs if j.get("status") == "running")
    queued = sum(1 for j in jobs if j.get("status") == "queued")
    parts = [f"{running} job{'s' if running != 1 else ''} running"] if running else []
    if queued:
        parts.append(f"{queued} queued" if running else f"{queued} job{'s' if queued != 1 else ''} queued")
    return " · ".join(parts)


def is_active(job: dict[str, Any]) -> bool:
    """True while a job is queued or running."""
    return job.get("status") in ACTIVE_STATES


def runs_version(root: str | os.PathLike[str] | None = None) -> str:
    """A cheap signature of the runs on disk (ids, active map, run.json times).

    It changes when a run is created, deleted, activated or updated (e.g. a
    projection added), so pages can reload their lists only then.
    """
    runs_dir = data_dir(root) / "runs"
    if not runs_dir.exists():
        return ""
    parts = []
    for p in sorted(runs_dir.iterdir()):
        if p.name.startswith("."):
            continue
        stamp = file_stamp(p)
        if stamp is None:
            continue
        parts.append(f"{p.name}:{stamp}")
        if p.is_dir():
            parts.append(str(file_stamp(p / "run.json")))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def on_app_start(root: str | os.PathLike[str] | None = None, demo: bool = True, keep_jobs: int = 100) -> None:
    """Clean up after a previous run and settle its jobs, prune old jobs, start the demo if empty.

    Temporary folders of saves that were killed are removed
    (:func:`recsys.stored.sweep_leftovers`); jobs with no live process become
    "interrupted" (the poller does the same for jobs that die later).
    """
    from recsys.stored import sweep_leftovers

    try:
        sweep_leftovers(data_dir(root))
    except OSError as exc:  # a read-only or vanished folder must not stop the app
        logger.warning("could not clean up leftovers of killed saves: %s", exc)
    store = job_store(root)
    changed = store.refresh()
    if changed:
        logger.info("marked %d job(s) from before the restart as interrupted", len(changed))
    store.cleanup(keep=keep_jobs)
    if demo:
        ensure_demo_job(root)


#: Job kinds whose end is a new embedding run.
BUILD_KINDS = ("demo", "train", "tune")


def active_build(root: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The newest queued or running job that makes runs (the demo build, a training), or None.

    Never raises: a page that asks only to word its empty state must not fail on the job store.
    """
    try:
        jobs = job_store(root).list_jobs(limit=None, status=list(ACTIVE_STATES))
    except (OSError, RecsysError, ValueError) as exc:
        logger.warning("could not read the job store: %s", exc)
        return None
    return next((job for job in jobs if job.get("kind") in BUILD_KINDS), None)


def ensure_demo_job(root: str | os.PathLike[str] | None = None) -> str | None:
    """Submit the demo build when there are no runs and no demo job is queued or running.

    Returns the id of the submitted (or already active) demo job, or None when runs exist.
    """
    from recsys.registry import Registry

    root = data_dir(root)
    if Registry(root).list_runs(include_damaged=True):  # damaged runs are the user's data too
        return None
    store = job_store(root)
    # A lock, so two web workers starting at once submit one demo build, not two.
    with file_lock(store.jobs_dir / ".demo.lock"):
        for job in store.list_jobs(limit=None, kind="demo", status=list(ACTIVE_STATES)):
            return str(job["job_id"])
        from recsys.pipeline import APP_DEMO_FAMILIES

        job_id = store.submit("demo", {"families": list(APP_DEMO_FAMILIES)}, label="Demo build")
    logger.info("no runs in %s: started the demo build (job %s)", root, job_id)
    return job_id


# -- device ------------------------------------------------------------------
#: Seconds during which a device probe that has not answered yet is not started again.
DEVICE_RETRY_S = 300.0


def device_status(root: str | os.PathLike[str] | None = None, start: bool = True) -> dict[str, Any] | None:
    """The compute device deep models use (``{"device": "CPU" | "GPU: ...", ...}``), or None.

    Detecting it imports TensorFlow, which the web process must not do, so the
    first call submits the ``device`` job (:func:`recsys.jobs.kinds.probe_device`),
    which writes ``<data_dir>/device.json``, and returns None ("detecting");
    later calls read that file. A probe is not submitted again while one is
    queued or running, nor within :data:`DEVICE_RETRY_S` of the last one.
    """
    from recsys.jobs.kinds import DEVICE_FILE

    root = data_dir(root)
    path = root / DEVICE_FILE
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    if start:
        _start_device_probe(root)
    return None


def _start_device_probe(root: Path) -> None:
    store = job_store(root)
    try:
        with file_lock(store.jobs_dir / ".device.lock"):  # one probe, however many workers ask
            for job in store.list_jobs(limit=1, kind="device"):
                created = _parse_created(job.get("created"))
                if job["status"] in ACTIVE_STATES or time.time() - created < DEVICE_RETRY_S:
                    return
            store.submit("device", label="Device probe")
    except (OSError, RecsysError) as exc:
        logger.warning("could not start the device probe: %s", exc)


def _parse_created(value: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0


# -- components --------------------------------------------------------------
def job_title(job: dict[str, Any]) -> str:
    """A human title: "Training prod2vec on demo", "Dataset import: retail"..."""
    kind = job.get("kind", "")
    params = job.get("params") or {}
    title = _KIND_TITLE.get(kind, kind.title() or "Job")
    if kind in ("train", "tune"):
        family = params.get("family", "")
        ds = params.get("dataset_name") or params.get("dataset") or ""
        title = f"{'Tuning' if kind == 'tune' else 'Training'} {family}" + (f" on {ds}" if ds else "")
    elif kind == "import":
        title = f"Dataset import: {params.get('name', '')}"
    elif kind == "project":
        title = f"Projection (UMAP) of {run_name(params.get('run_id'))}"
    return title


def run_name(run_id: Any) -> str:
    """The run named as the grid names it (:func:`recsys.registry.run_label`), its id when it
    cannot be read (deleted since): the card of the UMAP queued after a training read
    "Projection (UMAP) of content-20261207-230655-cec805" (s44's walk)."""
    from recsys.registry import Registry, run_label

    if not run_id:
        return ""
    try:
        return run_label(Registry(data_dir()).get(str(run_id)))
    except (RecsysError, OSError):
        return str(run_id)


def job_card(job: dict[str, Any], log_tail: str | None = None, show_cancel: bool = True) -> dbc.Card:
    """A card for one job: title, status badge, progress bar, message, log tail, cancel.

    ``job`` is a :func:`job_summary`. The cancel button has the id
    ``{"type": ids.JOB_CANCEL, "job": <id>}`` and is handled by :func:`cancel_job`.
    """
    status = job.get("status", "queued")
    active = is_active(job)
    pct = int(round(100 * float(job.get("fraction") or 0)))
    color = _STATUS_COLOR.get(status, "secondary")
    # the cancel button sits in the header, beside the badge: at the card's end it moved down each
    # time the job's message or log appeared, and the page re-created it there (a click on it as
    # the log appeared was lost; seen as a stale element in the Runs browser test)
    right: list[Any] = [dbc.Badge(status, color=color, className="text-uppercase job-status")]
    if active and show_cancel:
        right.append(
            dbc.Button(
                "Cancel",
                id={"type": ids.JOB_CANCEL, "job": job.get("id", "")},
                color="outline-danger",
                size="sm",
                className="ms-2 editor-only",
            )
        )
    header = html.Div(
        [
            html.Div(
                [
                    html.Span(job_title(job), className="fw-semibold"),
                    " ",
                    html.Small(job.get("id", ""), className="text-muted ms-1"),
                ]
            ),
            html.Div(right, className="d-flex align-items-center job-actions"),
        ],
        className="d-flex justify-content-between align-items-center mb-2",
    )
    body: list[Any] = [header]
    if active or status not in ("failed", "error"):
        body.append(
            dbc.Progress(
                value=max(pct, 3) if active else pct,
                label=f"{pct}%" if pct >= 8 else "",
                striped=active,
                animated=active,
                color=color,
                className="job-progress mb-2",
            )
        )
    if job.get("message"):
        body.append(html.Div(job["message"], className="job-message small text-muted"))
    if job.get("error"):
        body.append(dbc.Alert(job["error"], color="danger", className="job-error small mb-2 mt-2"))
    if log_tail:
        body.append(
            html.Details(
                [html.Summary("Log", className="small"), html.Pre(log_tail, className="job-log")],
                open=active,
                className="mt-2",
            )
        )
    return dbc.Card(dbc.CardBody(body), className=f"job-card job-{status} mb-3")


def job_cards(
    jobs: list[dict[str, Any]], root: str | os.PathLike[str] | None = None, log_lines: int = 12
) -> list:
    """Cards for ``jobs`` (summaries), with the log tail of the active ones."""
    store = job_store(root) if jobs else None
    cards = []
    for job in jobs:
        tail = None
        if store is not None and (is_active(job) or job.get("status") in ("failed", "error")):
            try:
                tail = store.log_tail(job["id"], log_lines)
            except Exception as exc:  # a vanished log must not break the page
                logger.debug("no log for job %s: %s", job.get("id"), exc)
            if isinstance(tail, list):
                tail = "\n".join(tail)
        cards.append(job_card(job, tail))
    return cards


# -- callbacks ---------------------------------------------------------------
@callback(
    Output(ids.JOBS_STORE, "data"),
    Output(ids.RUNS_VERSION_STORE, "data"),
    Output(ids.JOBS_BADGE, "children"),
    Input(ids.JOBS_INTERVAL, "n_intervals"),
    State(ids.JOBS_STORE, "data"),
    State(ids.RUNS_VERSION_STORE, "data"),
    State(ids.JOBS_BADGE, "children"),
)
def poll_jobs(
    _n: int | None,
    current: dict | None,
    current_version: str | None,
    current_badge: str | None = None,
):
    """Refresh the job store and the runs signature; outputs only what changed."""
    try:
        jobs = list_job_summaries()
    except Exception as exc:  # the store must never break every page
        logger.warning("could not read the job store: %s", exc)
        return no_update, no_update, no_update
    data = {"jobs": jobs, "active": [j["id"] for j in jobs if is_active(j)]}
    version = runs_version()
    badge = jobs_badge(jobs)
    return (
        data if data != current else no_update,
        version if version != current_version else no_update,
        badge if badge != (current_badge or "") else no_update,
    )


@callback(
    Input({"type": ids.JOB_CANCEL, "job": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def cancel_job(n_clicks: list[int | None]) -> None:
    """Cancel the job whose card's Cancel button was clicked."""
    trigger = ctx.triggered_id
    if not trigger or not any(n_clicks or []):
        return
    try:
        job_store().cancel(trigger["job"])
    except Exception as exc:
        logger.warning("could not cancel job %s: %s", trigger.get("job"), exc)


def _small(value: Any) -> Any:
    """Keep only JSON-safe, small values (the browser store is not a database)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        return None
    if len(text) > 4000:
        return None
    return json.loads(text)
