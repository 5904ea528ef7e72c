"""REST serving: a Flask blueprint mounted on the Dash server under ``/api/v1``.

Modules: :mod:`~recsys.serving.core` (settings, per-app state, token and bind
checks, request parsing, error bodies), :mod:`~recsys.serving.handlers` (the
answers of ``/similar`` and ``/recommend`` as plain functions),
:mod:`~recsys.serving.routes` (the blueprint: read-only and state-changing
route groups), :mod:`~recsys.serving.app` (:func:`register_api`, the app
factory). Import the public names from here.

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

from recsys.serving.app import register_api
from recsys.serving.core import (
    API_PREFIX,
    DEFAULT_K,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_K,
    DEFAULT_MAX_RECENT,
    ENV_PRECOMPUTED,
    ENV_PRELOAD,
    ENV_TOKEN,
    EXTENSION_KEY,
    OPENAPI_FILE,
    ApiError,
    ApiSettings,
    InsecureBindError,
    _inline_config,
    check_bind,
    error_response,
    is_loopback,
    parse_k,
    require_token,
)
from recsys.serving.handlers import recommend_response, similar_response
from recsys.serving.routes import create_blueprint

__all__ = [
    "API_PREFIX",
    "DEFAULT_K",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_K",
    "DEFAULT_MAX_RECENT",
    "ENV_PRECOMPUTED",
    "ENV_PRELOAD",
    "ENV_TOKEN",
    "EXTENSION_KEY",
    "OPENAPI_FILE",
    "ApiError",
    "ApiSettings",
    "InsecureBindError",
    "_inline_config",
    "check_bind",
    "create_blueprint",
    "error_response",
    "is_loopback",
    "parse_k",
    "recommend_response",
    "register_api",
    "require_token",
    "similar_response",
]
