"""The app factory: :func:`register_api` mounts the blueprint on a Flask server."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from recsys.config import data_dir
from recsys.serving.core import (
    API_PREFIX,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_K,
    DEFAULT_MAX_RECENT,
    ENV_PRECOMPUTED,
    ENV_PRELOAD,
    ENV_TOKEN,
    EXTENSION_KEY,
    ApiSettings,
    _api_path,
    _ApiState,
    _http_json,
)
from recsys.serving.routes import create_blueprint

logger = logging.getLogger(__name__)


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
    _remember_ensure_sync(server)
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


def _remember_ensure_sync(server: flask.Flask) -> None:
    """Flask asks ``ensure_sync`` of every hook and view on every request (an ``inspect`` call
    each, seven per API request on the Dash server); the answer for a function never changes,
    so remember it (Flask documents overriding ``ensure_sync``)."""
    if getattr(server, "_recsys_ensure_sync", False):
        return
    plain = server.ensure_sync
    known: dict[Any, Callable[..., Any]] = {}

    def ensure_sync(func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return known[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable: ask every time
            return plain(func)
        out = plain(func)
        if len(known) < 4096:  # hooks and views: a fixed set (bound methods compare equal)
            known[func] = out
        return out

    server.ensure_sync = ensure_sync  # type: ignore[method-assign]
    server._recsys_ensure_sync = True  # type: ignore[attr-defined]


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
