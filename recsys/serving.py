"""REST serving: a Flask blueprint mounted on the Dash server under ``/api/v1``.

The API answers from the same code path as the Explore page
(:func:`recsys.search.similar_items`), so a seed, run and preset give the same
list in both. Precomputed top-k tables (:mod:`recsys.precompute`) are served
when a request asks for ``source=precomputed``.

Mounting (in ``app.py``)::

    from recsys.serving import check_bind, register_api

    register_api(server, root=data_dir)  # token from $RECSYS_API_TOKEN
    check_bind(host, os.environ.get("RECSYS_API_TOKEN"))  # before app.run(host=...)

Security defaults: state-changing endpoints (saving/deleting presets,
deleting runs, submitting training jobs) require ``Authorization: Bearer
<token>`` when a token is configured; :func:`check_bind` refuses to bind a
non-loopback address without a token; request bodies, ``k`` and the number of
recent items are bounded. Errors are JSON ``{"error": {"status", "message",
"field"?}}``, never an HTML traceback.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

import flask
import numpy as np
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from recsys import __version__
from recsys.config import data_dir
from recsys.errors import (
    DamagedRunError,
    DatasetNotFoundError,
    DiskFullError,
    FilterConfigError,
    IndexFileError,
    JobError,
    PresetNotFoundError,
    RecsysError,
    RunNotFoundError,
    StoredDataError,
    UnknownItemError,
)

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
ENV_TOKEN = "RECSYS_API_TOKEN"
ENV_PRECOMPUTED = "RECSYS_PRECOMPUTED_URL"
ENV_PRELOAD = "RECSYS_API_PRELOAD"
EXTENSION_KEY = "recsys_api"
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")

#: Bounds applied to every request.
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_K = 200
DEFAULT_K = 10
DEFAULT_MAX_RECENT = 100


class InsecureBindError(RecsysError):
    """The server was asked to listen on a non-loopback address without an API token."""


class ApiError(Exception):
    """An error answered to the client as JSON with an HTTP status.

    Parameters
    ----------
    status : int
        HTTP status code.
    message : str
        What was wrong and what to do.
    field : str, optional
        The request parameter or body field at fault.
    """

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


# ---------------------------------------------------------------------------
# settings and per-app state
# ---------------------------------------------------------------------------
@dataclass
class ApiSettings:
    """Configuration of the API on one Flask app.

    Attributes
    ----------
    root : Path
        The data directory.
    token : str or None
        Bearer token required by state-changing endpoints (None: not required).
    max_body_bytes : int
        Largest accepted request body.
    max_k : int
        Largest accepted ``k``.
    max_recent : int
        Largest accepted number of ``recent_item_ids``.
    precomputed : str or None
        Where precomputed tables live: a ``redis://`` URL or a SQLite path
        (default ``<root>/precomputed.sqlite``).
    """

    root: Path
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_k: int = DEFAULT_MAX_K
    max_recent: int = DEFAULT_MAX_RECENT
    precomputed: str | None = None


@dataclass
class _ApiState:
    settings: ApiSettings
    registry: Any
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _default_runs: dict[str, tuple[Any, str | None]] = field(default_factory=dict)
    _presets: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    _store: Any = None
    _store_pid: int = -1
    _openapi: dict[str, Any] | None = None

    # -- runs ----------------------------------------------------------------
    def _runs_stamp(self) -> tuple[int, int]:
        runs_dir = self.registry.runs_dir
        active = runs_dir / "active.json"
        try:
            a = active.stat().st_mtime_ns
        except FileNotFoundError:
            a = 0
        return runs_dir.stat().st_mtime_ns, a

    def default_run(self, family: str | None = None) -> str | None:
        """Active embedding run (of ``family``), else the newest; cached until runs change."""
        stamp = self._runs_stamp()
        key = family or ""
        hit = self._default_runs.get(key)
        if hit is not None and hit[0] == stamp and not self._damaged(hit[1]):
            return hit[1]
        run_id = self.registry.default_run(family)
        self._default_runs[key] = (stamp, run_id)
        return run_id

    def _damaged(self, run_id: str | None) -> bool:
        """Whether a cached default run became damaged since (a few stats; then it is re-chosen)."""
        if run_id is None:
            return False
        try:
            self.registry.check(run_id)
        except RecsysError:
            return True
        return False

    def resolve_run(self, run_id: str | None, family: str | None = None) -> str:
        """The run to serve: ``run_id`` checked to exist, or the default one."""
        if run_id:
            if not isinstance(run_id, str):
                raise ApiError(400, "'run' must be a string run id", "run")
            self.registry.run_dir(run_id)  # raises RunNotFoundError
            return run_id
        chosen = self.default_run(family)
        if chosen is None:
            raise ApiError(
                404,
                "no embedding run exists yet: train one (python -m recsys train prod2vec) "
                "or pass 'run' explicitly",
                "run",
            )
        return chosen

    # -- presets -------------------------------------------------------------
    def preset_store(self) -> Any:
        from recsys.filters import PresetStore

        return PresetStore(self.settings.root)

    def load_preset(self, name: str) -> Any:
        """A saved preset's FilterConfig; cached while its file is unchanged."""
        from recsys.filters import validate_preset_name

        try:
            validate_preset_name(name)
        except FilterConfigError as exc:
            raise ApiError(400, str(exc), "preset") from None
        path = self.settings.root / "presets" / f"{name}.json"
        try:  # (inode, mtime): a preset re-saved within one clock tick is a new file
            st_ = path.stat()
            stamp: Any = (st_.st_ino, st_.st_mtime_ns)
        except (OSError, ValueError):
            stamp = None
        hit = self._presets.get(name)
        if stamp is not None and hit is not None and hit[0] == stamp:
            return hit[1]
        config = self.preset_store().load(name)
        if stamp is not None:
            self._presets[name] = (stamp, config)
        return config

    # -- precomputed tables --------------------------------------------------
    def store(self) -> Any:
        """The precomputed top-k store (opened lazily, once per process)."""
        pid = os.getpid()
        if self._store is None or self._store_pid != pid:
            from recsys.precompute import open_store

            with self._lock:
                if self._store is None or self._store_pid != pid:
                    self._store = open_store(self.settings.precomputed, root=self.settings.root)
                    self._store_pid = pid
        return self._store

    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            import yaml

            self._openapi = yaml.safe_load(OPENAPI_FILE.read_text())
        return self._openapi


def _state() -> _ApiState:
    return current_app.extensions[EXTENSION_KEY]


# ---------------------------------------------------------------------------
# security helpers
# ---------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """True when ``host`` names only the local machine (127.0.0.0/8, ::1, localhost)."""
    h = (host or "").strip().strip("[]").lower()
    if h in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | bool | None, *, debug: bool = False) -> None:
    """Refuse to listen on a non-loopback address unless a login is configured.

    Parameters
    ----------
    host : str
        The address the server will bind (``127.0.0.1``, ``0.0.0.0``, a host name...).
    token : str, bool or None
        The configured API token (``$RECSYS_API_TOKEN``), or whether any login
        (editor/viewer token, users file) is configured.
    debug : bool
        Dash's debug mode (dev tools, reloader, tracebacks in the browser):
        never on a non-loopback address.

    Raises
    ------
    InsecureBindError
        When ``host`` is not a loopback address and no login is configured, or
        ``debug`` is asked on a non-loopback address.
    """
    if is_loopback(host):
        return
    if debug:
        raise InsecureBindError(
            f"refusing --debug on '{host}': debug mode shows tracebacks and runs a reloader; "
            "use it on 127.0.0.1 only"
        )
    if token is True or (isinstance(token, str) and token.strip()):
        logger.info("binding %s with a login: every page and endpoint needs a session or a token", host)
        return
    raise InsecureBindError(
        f"refusing to bind '{host}': it is reachable from other machines and no login is configured. "
        f"Set {ENV_TOKEN} (the editor token; RECSYS_VIEWER_TOKEN adds a read-only one), "
        "or bind 127.0.0.1."
    )


def _token_ok(configured: str, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), configured.encode())


def require_token(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: the view changes state, so it needs the bearer token when one is set."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from recsys import auth

        if auth.auth_enabled():  # the app's login already ran; check the role again here
            if not auth.can_edit():
                raise ApiError(
                    403, "this endpoint changes state and needs the editor role (the editor token)"
                )
            return view(*args, **kwargs)
        token = _state().settings.token
        if token and not _token_ok(token, request.headers.get("Authorization")):
            given = "Authorization" in request.headers
            raise ApiError(
                401,
                "wrong API token"
                if given
                else "this endpoint changes state and needs "
                "'Authorization: Bearer <token>' (the server's RECSYS_API_TOKEN)",
            )
        return view(*args, **kwargs)

    wrapper.requires_token = True  # type: ignore[attr-defined]
    return wrapper


# ---------------------------------------------------------------------------
# request parsing
# ---------------------------------------------------------------------------
def _json_body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    body = _loads(raw, "body", "request body")
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object", "body")
    return body


#: Deepest JSON nesting accepted (a FilterConfig needs 3: object > list > pair).
MAX_JSON_DEPTH = 16


def _loads(raw: str | bytes, field: str, what: str) -> Any:
    """Parse JSON from a client: a clear 400 for bad syntax, bad encoding or silly nesting."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"{what} is not valid JSON: {exc}", field) from None
    except RecursionError:
        value = None
        depth = MAX_JSON_DEPTH + 1
    else:
        depth = _depth(value)
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, f"{what} is nested more than {MAX_JSON_DEPTH} levels deep", field)
    return value


def _depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of parsed JSON, counted without recursion (stops past ``limit``)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((v, d + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_k(value: Any, max_k: int, default: int = DEFAULT_K) -> int:
    """Validate ``k`` (an int, or a decimal string from a query) in 1..max_k."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ApiError(400, "'k' must be an integer", "k")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ApiError(400, f"'k' must be an integer, got '{value}'", "k") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ApiError(400, f"'k' must be an integer, got {value!r}", "k")
    if not 1 <= value <= max_k:
        raise ApiError(400, f"'k' must be between 1 and {max_k}, got {value}", "k")
    return value


#: inline filters parsed and validated once: raw text (or canonical JSON of a POSTed object)
#: -> FilterConfig. The same object comes back for the same text, so the searcher's
#: compiled-filter shortcut (an identity check) serves it like a preset.
_INLINE_CACHE: OrderedDict[str, Any] = OrderedDict()
_INLINE_CACHE_SIZE = 256
_INLINE_LOCK = threading.Lock()


def _parse_filters(filters: Any) -> Any:
    """Inline ``filters`` as given: JSON text is decoded; None for an absent or empty one."""
    if isinstance(filters, str) and filters.strip():
        filters = _loads(filters, "filters", "'filters'")
    return None if filters in (None, "", {}) else filters


def _inline_config(filters: Any) -> Any:
    """The FilterConfig of inline ``filters`` (JSON text or an object), cached by its text."""
    from recsys.filters import FilterConfig

    try:
        key = filters if isinstance(filters, str) else json.dumps(filters, sort_keys=True)
    except (TypeError, ValueError):
        key = None
    if key is not None:
        with _INLINE_LOCK:
            hit = _INLINE_CACHE.get(key)
            if hit is not None:
                _INLINE_CACHE.move_to_end(key)
                return hit
    parsed = _parse_filters(filters)
    if parsed is None:
        config = FilterConfig()
    elif not isinstance(parsed, dict):
        raise ApiError(400, "'filters' must be a JSON object (a FilterConfig)", "filters")
    else:
        config = FilterConfig.from_dict(parsed)  # raises FilterConfigError: never cached
    if key is not None:
        with _INLINE_LOCK:
            _INLINE_CACHE[key] = config
            while len(_INLINE_CACHE) > _INLINE_CACHE_SIZE:
                _INLINE_CACHE.popitem(last=False)
    return config


def _filter_config(preset: Any, filters: Any) -> tuple[Any, str | None]:
    """The FilterConfig of a request: a saved preset, inline filters, or the default.

    Inline filters are parsed and validated once per distinct text (:func:`_inline_config`).
    """
    if preset not in (None, ""):
        if filters not in (None, "", {}) and _parse_filters(filters) is not None:
            raise ApiError(400, "give either 'preset' or 'filters', not both", "filters")
        if not isinstance(preset, str):
            raise ApiError(400, "'preset' must be a preset name", "preset")
        return _state().load_preset(preset), preset
    return _inline_config(filters), None


def _floats(scores: Any) -> list[float | None]:
    if isinstance(scores, list):  # a SearchResult's plain floats: no array round trip
        return [s if math.isfinite(s) else None for s in scores]
    return [float(s) if math.isfinite(s) else None for s in np.asarray(scores, dtype=np.float64)]


# ---------------------------------------------------------------------------
# the blueprint
# ---------------------------------------------------------------------------
def create_blueprint() -> Blueprint:
    """A fresh ``/api/v1`` blueprint (one per app; settings live in ``app.extensions``)."""
    bp = Blueprint("recsys_api", __name__, url_prefix=API_PREFIX)

    @bp.before_request
    def _bound_body() -> None:
        flask.g.recsys_t0 = time.perf_counter()
        limit = _state().settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, f"request body of {request.content_length} bytes exceeds {limit} bytes")
        if request.content_length is None and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            # A chunked body has no length up front: read one byte past the limit, so a
            # longer body is refused (413) instead of being cut and parsed as broken JSON.
            request.max_content_length = limit + 1
            if len(request.get_data(cache=True)) > limit:
                raise ApiError(413, f"request body exceeds {limit} bytes")
        request.max_content_length = limit  # werkzeug raises 413 on a longer stream

    @bp.after_request
    def _server_timing(resp: flask.Response) -> flask.Response:
        t0 = flask.g.get("recsys_t0")
        if t0 is not None:  # handler time, without queueing or the network
            resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.3f}"
        return resp

    # -- errors --------------------------------------------------------------
    @bp.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> flask.Response:
        return error_response(exc.status, exc.message, exc.field)

    @bp.errorhandler(RecsysError)
    def _recsys_error(exc: RecsysError) -> flask.Response:
        status, fld = _status_of(exc)
        named = getattr(exc, "fields", None)  # FilterConfigError names the config fields at fault
        return error_response(status, str(exc), named[0] if named else fld)

    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        return _http_json(exc)

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception) -> flask.Response:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")

    # -- read-only -----------------------------------------------------------
    @bp.get("/health")
    def health() -> Any:
        st = _state()
        return jsonify(status="ok", version=__version__, default_run=st.default_run())

    @bp.get("/version")
    def version() -> Any:
        from recsys.registry import library_versions

        return jsonify(api="v1", recsys=__version__, libraries=library_versions())

    @bp.get("/noop")
    def noop() -> Any:
        return jsonify({})

    @bp.get("/openapi.json")
    def openapi_json() -> Any:
        return jsonify(_state().openapi())

    @bp.get("/openapi.yaml")
    def openapi_yaml() -> Any:
        return flask.Response(OPENAPI_FILE.read_text(), mimetype="application/yaml")

    @bp.get("/runs")
    def runs() -> Any:
        st = _state()
        family = request.args.get("family") or None
        # damaged runs are listed too (damaged: true, error: why); serving skips them
        out = [_run_summary(m) for m in st.registry.list_runs(family, include_damaged=True)]
        problem = st.registry.active_problem()
        return jsonify(runs=out, default_run=st.default_run(), warnings=[problem] if problem else [])

    @bp.get("/runs/<run_id>")
    def run_detail(run_id: str) -> Any:
        return jsonify(_state().registry.get(run_id))

    @bp.get("/presets")
    def presets() -> Any:
        store = _state().preset_store()
        out = []
        for entry in store.list():
            out.append(entry if isinstance(entry, dict) else {"name": str(entry)})
        return jsonify(presets=out)

    @bp.get("/presets/<name>")
    def preset_detail(name: str) -> Any:
        config = _state().load_preset(name)
        return jsonify(name=name, config_hash=config.config_hash(), config=_config_dict(config))

    # -- similar items ---------------------------------------------------------
    @bp.get("/similar/<path:item_id>")
    def similar_get(item_id: str) -> Any:
        return jsonify(similar_response(item_id, **{f: request.args.get(f) for f in _SIMILAR_FIELDS}))

    @bp.post("/similar")
    def similar_post() -> Any:
        body = _json_body()
        unknown = sorted(set(body) - {"item_id", *_SIMILAR_FIELDS})
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(unknown)}", unknown[0])
        item_id = body.get("item_id")
        if not isinstance(item_id, str) or not item_id:
            raise ApiError(400, "'item_id' (a non-empty string) is required", "item_id")
        return jsonify(similar_response(item_id, **{f: body.get(f) for f in _SIMILAR_FIELDS}))

    @bp.post("/recommend")
    def recommend() -> Any:
        body = _json_body()
        unknown = sorted(set(body) - {"recent_item_ids", "run", "preset", "filters", "k", "exclude_seen"})
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(unknown)}", unknown[0])
        return jsonify(
            recommend_response(
                body.get("recent_item_ids"),
                run=body.get("run"),
                preset=body.get("preset"),
                filters=body.get("filters"),
                k=body.get("k"),
                exclude_seen=body.get("exclude_seen", True),
            )
        )

    # -- state-changing ------------------------------------------------------
    @bp.route("/presets/<name>", methods=["PUT", "POST"])
    @require_token
    def preset_save(name: str) -> Any:
        from recsys.filters import FilterConfig

        body = _json_body()
        raw = body["config"] if set(body) == {"config"} else body
        if not isinstance(raw, dict):
            raise ApiError(400, "'config' must be a JSON object (a FilterConfig)", "config")
        from recsys.filters import validate_preset_name

        try:
            validate_preset_name(name)
        except FilterConfigError as exc:
            raise ApiError(400, str(exc), "name") from None
        config = FilterConfig.from_dict(raw, f"preset '{name}'")
        st = _state()
        existed = name in _preset_names(st.preset_store())
        version = st.preset_store().save(name, config)
        st._presets.pop(name, None)
        out = {"name": name, "version": int(version), "config_hash": config.config_hash()}
        return jsonify(out), (200 if existed else 201)

    @bp.delete("/presets/<name>")
    @require_token
    def preset_delete(name: str) -> Any:
        st = _state()
        st.load_preset(name)  # 400 on an invalid name, 404 when unknown
        st.preset_store().delete(name)
        st._presets.pop(name, None)
        return jsonify(deleted=name)

    @bp.delete("/runs/<run_id>")
    @require_token
    def run_delete(run_id: str) -> Any:
        outcome = _state().registry.delete(run_id)
        return jsonify(deleted=run_id, was_active=outcome["was_active"], now_active=outcome["replacement"])

    @bp.post("/train")
    @require_token
    def train() -> Any:
        from recsys.jobs import JobParamError, JobStore, submit_train

        body = _json_body()
        st = _state()
        unknown_fields = sorted(set(body) - {"family", "params", "dataset", "label"})
        if unknown_fields:
            raise ApiError(400, f"unknown field(s): {', '.join(unknown_fields)}", unknown_fields[0])
        family, dataset = body.get("family"), body.get("dataset") or "demo"
        try:  # checked now, so a bad parameter is a 400 (an unknown dataset a 404) here, not a failed job later
            job_id = submit_train(
                JobStore(st.settings.root),
                family,
                dataset,
                body.get("params") or {},
                label=body.get("label"),
                job_label=f"Train {family} on {dataset} (API)",
            )
        except JobParamError as exc:
            raise ApiError(400, str(exc), exc.field) from None
        return jsonify(job_id=job_id, status="submitted"), 202

    # -- unknown paths under /api/v1 (else Dash's catch-all page would answer) --
    @bp.get("/<path:rest>")
    def unknown(rest: str) -> Any:
        raise ApiError(404, f"no endpoint {API_PREFIX}/{rest}; see {API_PREFIX}/openapi.json")

    return bp


# ---------------------------------------------------------------------------
# handlers' logic (plain functions, usable without HTTP)
# ---------------------------------------------------------------------------
def similar_response(
    item_id: str,
    *,
    run: str | None = None,
    preset: str | None = None,
    filters: Any = None,
    k: Any = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The JSON answer of ``/similar`` (call inside an app context with the API registered)."""
    st = _state()
    k = parse_k(k, st.settings.max_k)
    run_id = st.resolve_run(run)
    config, preset_name = _filter_config(preset, filters)
    if source in (None, "", "live"):
        from recsys.search import similar_items

        result = similar_items(st.registry, run_id, item_id, config, k)
        return {
            "run": run_id,
            "item_id": item_id,
            "k": k,
            "preset": preset_name,
            "config_hash": config.config_hash(),
            "source": "live",
            "items": [
                {"item_id": str(i), "score": s} for i, s in zip(result.item_ids, _floats(result.scores))
            ],
            "removed_by_rule": {str(r): int(n) for r, n in dict(result.removed_by_rule).items()},
            "plan": _jsonable(result.plan),
            "n_eligible": int(result.n_eligible) if result.n_eligible is not None else None,
            "elapsed_ms": round(float(result.elapsed_ms), 3),
        }
    if source != "precomputed":
        raise ApiError(400, f"'source' must be 'live' or 'precomputed', got '{source}'", "source")
    return _precomputed_response(st, run_id, item_id, config, preset_name, k)


def _precomputed_response(
    st: _ApiState, run_id: str, item_id: str, config: Any, preset_name: str | None, k: int
) -> dict[str, Any]:
    from recsys.precompute import staleness

    config_hash = config.config_hash()
    loc = str(st.settings.precomputed or "")
    if not loc.startswith(("redis://", "rediss://", "unix://")):
        from recsys.precompute import DEFAULT_SQLITE_NAME

        if not Path(loc or st.settings.root / DEFAULT_SQLITE_NAME).exists():  # a read creates no file
            raise ApiError(
                404,
                "no precomputed tables yet: run "
                f"'python -m recsys precompute --run {run_id} --preset <name>', or ask source=live",
                "source",
            )
    store = st.store()
    meta = store.table_meta(run_id, config_hash)
    if meta is None:
        other = store.preset_meta(run_id, preset_name) if preset_name else None
        if other is not None:
            raise ApiError(
                409,
                f"the precomputed table of preset '{preset_name}' for run {run_id} was written with "
                f"config hash {other['preset_hash']} but the preset is now {config_hash}: rerun "
                f"'python -m recsys precompute --run {run_id} --preset {preset_name}'",
                "preset",
            )
        what = f"preset '{preset_name}'" if preset_name else f"config hash {config_hash}"
        raise ApiError(
            404,
            f"no precomputed table for run {run_id} and {what}: run "
            f"'python -m recsys precompute --run {run_id} --preset <name>', or ask source=live",
            "source",
        )
    if k > int(meta["k"]):
        raise ApiError(
            409,
            f"the precomputed table holds the top {meta['k']} per item; ask k <= {meta['k']} "
            "or rerun precompute with a larger --k",
            "k",
        )
    stale = staleness(st.registry, meta)
    entries = store.get(run_id, config_hash, item_id)
    if entries is None:
        raise UnknownItemError(f"item '{item_id}' is not in run {run_id} (precomputed table has no row)")
    entries = entries[:k]
    return {
        "run": run_id,
        "item_id": item_id,
        "k": k,
        "preset": preset_name or meta.get("preset_name"),
        "config_hash": config_hash,
        "source": "precomputed",
        "items": [{"item_id": i, "score": s} for i, s in entries],
        "precomputed": stale,
    }


def recommend_response(
    recent_item_ids: Any,
    *,
    run: str | None = None,
    preset: str | None = None,
    filters: Any = None,
    k: Any = None,
    exclude_seen: Any = True,
) -> dict[str, Any]:
    """The JSON answer of ``/recommend`` (:func:`recsys.search.recommend_for_recent`: two-tower user
    vector, else mean of the recent items' vectors)."""
    st = _state()
    max_recent = st.settings.max_recent
    if not isinstance(recent_item_ids, list) or not recent_item_ids:
        raise ApiError(400, "'recent_item_ids' must be a non-empty list of item ids", "recent_item_ids")
    if len(recent_item_ids) > max_recent:
        raise ApiError(
            400,
            f"'recent_item_ids' holds {len(recent_item_ids)} ids; at most {max_recent} are accepted",
            "recent_item_ids",
        )
    if not all(isinstance(i, str) and i for i in recent_item_ids):
        raise ApiError(400, "'recent_item_ids' must hold non-empty strings", "recent_item_ids")
    if not isinstance(exclude_seen, bool):
        raise ApiError(400, "'exclude_seen' must be true or false", "exclude_seen")
    k = parse_k(k, st.settings.max_k)
    config, preset_name = _filter_config(preset, filters)
    if run:
        run_id = st.resolve_run(run)
    else:
        run_id = st.default_run("two_tower") or st.resolve_run(None)
    from recsys.search import recommend_for_recent

    result = recommend_for_recent(st.registry, run_id, recent_item_ids, config, k, exclude_seen=exclude_seen)
    return {
        "run": run_id,
        "method": result.method,
        "exclude_seen": exclude_seen,
        "skipped_rules": list(result.skipped_rules),
        "k": k,
        "preset": preset_name,
        "config_hash": config.config_hash(),
        "recent_item_ids": result.recent_item_ids,
        "ignored_item_ids": result.ignored_item_ids,
        "items": [{"item_id": i, "score": s} for i, s in zip(result.item_ids, _floats(result.scores))],
        "removed_by_rule": {str(r): int(n) for r, n in dict(result.removed_by_rule or {}).items()},
    }


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def error_response(status: int, message: str, field: str | None = None) -> flask.Response:
    """The JSON error body ``{"error": {"status", "message", "field"?}}`` with its status."""
    err: dict[str, Any] = {"status": int(status), "message": message}
    if field:
        err["field"] = field
    resp = jsonify(error=err)
    resp.status_code = int(status)
    return resp


def _http_json(exc: HTTPException) -> flask.Response:
    code = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        message = f"request body too large (limit {_state().settings.max_body_bytes} bytes)"
    elif isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(exc.valid_methods or []))
        message = f"method {request.method} not allowed on {request.path} (allowed: {allowed})"
    elif isinstance(exc, NotFound):
        message = f"no endpoint {request.path}; see {API_PREFIX}/openapi.json"
    else:
        message = exc.description or exc.name
    return error_response(code, message)


def _status_of(exc: RecsysError) -> tuple[int, str | None]:
    if type(exc).__name__ == "RunNotSearchableError":  # a baseline run: no vectors to search
        return 400, "run"
    if isinstance(exc, DiskFullError):  # the server's disk, not the client's fault
        return 507, None
    if isinstance(exc, StoredDataError):  # a damaged stored file: that run/preset is unavailable
        return 503, "run" if isinstance(exc, DamagedRunError) else None
    if isinstance(exc, UnknownItemError):
        return 404, "item_id"
    if isinstance(exc, RunNotFoundError):
        return 404, "run"
    if isinstance(exc, PresetNotFoundError):
        return 404, "preset"
    if isinstance(exc, DatasetNotFoundError):
        return 404, "dataset"
    if isinstance(exc, FilterConfigError):
        return 422, "filters"
    if isinstance(exc, (IndexFileError, JobError)):
        return 503, None
    return 400, None


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "model_dump"):
        return _jsonable(obj.model_dump())
    if hasattr(obj, "__dict__"):
        return _jsonable(vars(obj))
    return str(obj)


def _config_dict(config: Any) -> dict[str, Any]:
    return config.canonical()


def _preset_names(store: Any) -> set[str]:
    return {e["name"] if isinstance(e, dict) else str(e) for e in store.list()}


#: The optional parameters of ``/similar`` (query string of GET, body of POST).
_SIMILAR_FIELDS = ("run", "preset", "filters", "k", "source")

_RUN_FIELDS = ("run_id", "label", "family", "is_embedding", "active", "status", "created", "dataset")


def _run_summary(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: meta.get(k) for k in _RUN_FIELDS}
    out["metrics"] = {k: v for k, v in (meta.get("metrics") or {}).items() if isinstance(v, (int, float))}
    out["items_with_vector"] = (meta.get("coverage") or {}).get("items_with_vector")
    out["damaged"] = bool(meta.get("damaged"))
    out["error"] = meta.get("error") if meta.get("damaged") else None
    return out


def _api_path() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def register_api(
    server: flask.Flask,
    root: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_k: int = DEFAULT_MAX_K,
    max_recent: int = DEFAULT_MAX_RECENT,
    precomputed: str | None = None,
    preload: bool | None = None,
) -> None:
    """Mount the ``/api/v1`` blueprint on a Flask server (the Dash app's ``app.server``).

    Parameters
    ----------
    server : flask.Flask
        The WSGI app to mount on.
    root : path-like, optional
        The data directory (default: ``$RECSYS_DATA_DIR`` or ``./data``).
    token : str, optional
        Bearer token for state-changing endpoints (default ``$RECSYS_API_TOKEN``;
        none: they are open, which :func:`check_bind` only allows on loopback).
    max_body_bytes, max_k, max_recent : int
        Request bounds.
    precomputed : str, optional
        Precomputed-table location: a ``redis://`` URL or a SQLite path
        (default ``$RECSYS_PRECOMPUTED_URL``, else ``<root>/precomputed.sqlite``).
    preload : bool, optional
        Load the default run's searcher (vectors, index, catalogue) in a
        background thread now, so the first request does not pay for it
        (default: ``$RECSYS_API_PRELOAD == "1"``; useful under gunicorn).
    """
    from recsys.registry import Registry

    root_path = data_dir(root)
    token = token if token is not None else (os.environ.get(ENV_TOKEN) or None)
    settings = ApiSettings(
        root=root_path,
        token=token,
        max_body_bytes=max_body_bytes,
        max_k=max_k,
        max_recent=max_recent,
        precomputed=precomputed or os.environ.get(ENV_PRECOMPUTED) or None,
    )
    state = _ApiState(settings=settings, registry=Registry(root_path))
    server.extensions[EXTENSION_KEY] = state
    server.register_blueprint(create_blueprint())
    if preload if preload is not None else os.environ.get(ENV_PRELOAD) == "1":
        threading.Thread(target=_preload, args=(state,), name="recsys-api-preload", daemon=True).start()

    # Routing errors (wrong method, body limits) happen before a blueprint is
    # chosen: answer JSON for /api/v1 paths, leave other paths to Dash.
    for exc_class in (NotFound, MethodNotAllowed, RequestEntityTooLarge):
        previous = server.error_handler_spec.get(None, {}).get(exc_class.code, {}).get(exc_class)
        server.register_error_handler(exc_class, _app_level_handler(previous))
    logger.info(
        "REST API mounted at %s (data dir %s, token %s)", API_PREFIX, root_path, "set" if token else "not set"
    )


def _preload(state: _ApiState) -> None:
    try:
        run_id = state.default_run()
        if run_id is None:
            return
        from recsys.search import get_searcher

        t0 = time.perf_counter()
        get_searcher(state.registry, run_id)
        logger.info("preloaded run %s in %.1f s", run_id, time.perf_counter() - t0)
    except Exception:  # a failed preload only means a slower first request
        logger.warning("preloading the default run failed", exc_info=True)


def _app_level_handler(previous: Callable[[Any], Any] | None) -> Callable[[HTTPException], Any]:
    def handle(exc: HTTPException) -> Any:
        if _api_path():
            return _http_json(exc)
        return previous(exc) if previous is not None else exc

    return handle
