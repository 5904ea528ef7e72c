"""The REST API's settings, per-app state, security (token, bind check), request parsing and error bodies."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

import flask
import numpy as np
from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from recsys._io import file_stamp
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
OPENAPI_FILE = Path(__file__).resolve().parents[1] / "openapi.yaml"

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
    _presets: dict[str, tuple[Any, Any, str]] = field(default_factory=dict)  # name -> (stamp, config, path)
    _store: Any = None
    _store_pid: int = -1
    _openapi: dict[str, Any] | None = None

    # -- runs ----------------------------------------------------------------
    def _runs_stamp(self) -> tuple[Any, Any]:
        runs_dir = self.registry.runs_dir
        return file_stamp(runs_dir), file_stamp(runs_dir / "active.json")

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

    def resolve_run(self, run_id: str | None, family: str | None = None, *, check: bool = True) -> str:
        """The run to serve: ``run_id`` checked to exist, or the default one.

        ``check=False`` skips the existence check (a ``stat``) for callers whose next step
        checks it anyway and raises the same :class:`RunNotFoundError` (live search)."""
        if run_id:
            if not isinstance(run_id, str):
                raise ApiError(400, "'run' must be a string run id", "run")
            if check:
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
        hit = self._presets.get(name)  # only names that passed the check below are cached
        if hit is not None and file_stamp(hit[2]) == hit[0]:  # one stat: a re-save is seen at once
            return hit[1]
        from recsys.filters import validate_preset_name

        try:
            validate_preset_name(name)
        except FilterConfigError as exc:
            raise ApiError(400, str(exc), "preset") from None
        path = str(self.settings.root / "presets" / f"{name}.json")
        stamp = file_stamp(path)  # the inode: a preset re-saved within one clock tick is a new file
        config = self.preset_store().load(name)
        if stamp is not None:
            self._presets[name] = (stamp, config, path)
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
            self._openapi = openapi_spec()
        return self._openapi


def openapi_spec() -> dict[str, Any]:
    """The served OpenAPI document: ``openapi.yaml`` completed by the rules every route follows.

    The responses the auth layer and the request parsing give on every route are added here from
    the same rules, not written per route: 401 on every operation (once a login is configured),
    403 on those that change state (``security``), 400 on those that take parameters or a body,
    413 on those with a body. ``FilterConfig`` (and the models it nests) is pydantic's own JSON
    schema of :class:`recsys.filters.FilterConfig`, so the document cannot drift from the
    validation: a field added there is documented here.
    """
    import yaml

    from recsys.filters import FilterConfig

    spec = yaml.safe_load(OPENAPI_FILE.read_text())
    schemas = spec["components"]["schemas"]
    filters = FilterConfig.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(filters.pop("$defs", {}))
    schemas["FilterConfig"] = filters
    ref = "#/components/responses/"
    for ops in spec["paths"].values():
        for op in ops.values():
            responses = op["responses"]
            responses.setdefault("401", {"$ref": ref + "Unauthorized"})
            if op.get("security"):
                responses.setdefault("403", {"$ref": ref + "Forbidden"})
            if op.get("parameters") or op.get("requestBody"):
                responses.setdefault("400", {"$ref": ref + "BadRequest"})
            if op.get("requestBody"):
                responses.setdefault("413", {"$ref": ref + "TooLarge"})
    return spec


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

    if filters is None:  # no filter (most requests): the cached default config, no encoding
        key: str | None = "null"
    else:
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
# helpers
# ---------------------------------------------------------------------------
#: The reply encoder of the hot endpoints: orjson (compact, keys in the order built; Flask's jsonify
#: sorts them and runs its provider per call). A k=10 answer (about 0.9 KB) costs it 2 to 3 us
#: against 18 to 38 us for the stdlib's C encoder. Values it would write otherwise than Flask's
#: provider (dates, dataclasses) are passed to ``_refuse``, so they fall back to jsonify as
#: before; so do non-str keys and NumPy scalars (orjson raises TypeError). A NaN that slipped
#: through goes as ``null``: never invalid JSON.
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - pinned in requirements.txt; the stdlib encoder answers
    _orjson = None
    _REPLY_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    _dumps: Callable[[Any], str | bytes] = _REPLY_ENCODER.encode
else:
    _OPTS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS

    def _refuse(obj: Any) -> Any:
        raise TypeError(f"{type(obj).__name__} is left to Flask's JSON provider")

    def _dumps(obj: Any) -> bytes:
        return _orjson.dumps(obj, _refuse, _OPTS)


def json_reply(obj: Any, status: int = 200) -> flask.Response:
    """``obj`` as a JSON response, encoded once by orjson (falls back to :func:`flask.jsonify`
    for values only Flask's provider knows, such as dates)."""
    try:
        body = _dumps(obj)
    except TypeError:  # orjson.JSONEncodeError is one
        resp = jsonify(obj)
    else:
        # the header ``mimetype=`` writes for JSON (no charset), without deriving it per reply
        resp = current_app.response_class(body, content_type="application/json")
    resp.status_code = status
    return resp


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
        resp = error_response(code, message)
        resp.headers["Allow"] = allowed  # RFC 9110: a 405 lists what the path serves
        return resp
    elif isinstance(exc, NotFound):
        message = f"no endpoint {request.path}; see {API_PREFIX}/openapi.json"
    else:
        message = exc.description or exc.name
    return error_response(code, message)


def _status_of(exc: RecsysError) -> tuple[int, str | None]:
    if type(exc).__name__ == "RunNotSearchableError":  # an embedding run whose vectors are missing
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
_SIMILAR_FIELDS = ("run", "preset", "filters", "k", "source", "dataset")

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
