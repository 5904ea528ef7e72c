"""RecSys Lab: builds the Dash app and its shell. Pages live in ``pages/``.

Run ``python app.py [--host 127.0.0.1] [--port 8050] [--data-dir ./data]`` (or the
RECSYS_HOST / RECSYS_PORT / RECSYS_DATA_DIR environment variables); in production
``gunicorn app:server``. With no runs yet, the demo build starts as a background job.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Dash, dcc, html

from components import access, ids
from components.jobs import POLL_MS, on_app_start
from components.layout import error_alert, navbar
from components.map_warm import start_map_warmup
from components.plotlyjs import plotlyjs_meta, register_plotlyjs
from components.preload import start_preload, wait_for_preload
from recsys import auth
from recsys.compression import enable_compression
from recsys.config import ENV_DATA_DIR, data_dir, upload_max_bytes
from recsys.errors import RecsysError
from recsys.images import register_media
from recsys.serving import API_PREFIX, check_bind, register_api


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; each defaults to its environment variable."""
    parser = argparse.ArgumentParser(description="RecSys Lab dashboard")
    parser.add_argument("--host", default=os.environ.get("RECSYS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("RECSYS_PORT", "8050")))
    parser.add_argument("--data-dir", default=os.environ.get(ENV_DATA_DIR), help="datasets, runs and jobs")
    parser.add_argument("--debug", action="store_true", help="Dash dev tools and reloader")
    parser.add_argument("--no-demo", action="store_true", help="do not start the demo build when empty")
    return parser.parse_args(argv)


def _refuse(message: str) -> None:
    """One line on stderr and exit 2: a refused start is a message, not a traceback."""
    print(f"RecSys Lab: {message}", file=sys.stderr)
    raise SystemExit(2)


def request_is_write(req) -> bool:
    """Whether a request changes state: a REST write endpoint, or a Dash callback declared as a
    write in ``components.access`` (unknown callbacks and unknown write paths count as writes)."""
    path = req.path
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        view = server.view_functions.get(req.endpoint or "")
        if view is None:
            return req.method not in ("GET", "HEAD", "OPTIONS")
        return bool(getattr(view, "requires_token", False))
    if path.endswith("/_dash-update-component"):
        body = auth.describe_request_body(req.get_data(cache=True))
        return access.dash_request_is_write(app, body)
    return req.method not in ("GET", "HEAD", "OPTIONS")


def callback_failed(exc: Exception) -> None:
    """Dash's ``on_error`` for every callback: the failure is logged with its traceback and the
    page shows what went wrong (a RecsysError's own message, which names the file or field) in
    the shell's alert, instead of the request failing with a 500 and the page silently not
    changing. The callback's outputs are left as they were."""
    output = (
        (flask.request.get_json(silent=True) or {}).get("output") if flask.has_request_context() else None
    )
    if isinstance(exc, RecsysError):
        logging.getLogger(__name__).warning("callback %s: %s", output, exc)
        message = str(exc)
    else:
        logging.getLogger(__name__).exception("callback %s failed", output)
        message = f"internal error ({type(exc).__name__}); the server log has the details"
    dash.set_props(ids.CALLBACK_ERROR, {"children": error_alert(message, "That did not work")})


def shell() -> html.Div:
    """The page shell, per request: viewers get the ``role-viewer`` class, which hides
    ``editor-only`` buttons (the server refuses their writes anyway)."""
    role = auth.current_role()
    return html.Div(
        [
            navbar(user=auth.current_user_name(), role=role if auth.auth_enabled() else None),
            dbc.Container(
                [html.Div(id=ids.CALLBACK_ERROR), dash.page_container], fluid="xl", className="page-body pb-5"
            ),
            dcc.Store(id=ids.JOBS_STORE),
            dcc.Store(id=ids.RUNS_VERSION_STORE),
            dcc.Interval(id=ids.JOBS_INTERVAL, interval=POLL_MS),
        ],
        id=ids.SHELL,
        className="role-editor" if role == auth.EDITOR else "role-viewer",
    )


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.data_dir:  # pages read it through recsys.config.data_dir()
        os.environ[ENV_DATA_DIR] = os.path.abspath(ARGS.data_dir)
    os.environ.setdefault("RECSYS_HOST", ARGS.host)  # the Host allow-list adds the bound name

try:  # before anything starts: a bad users file or an unsafe bind is one line, not a traceback
    AUTH_SETTINGS = auth.AuthSettings.from_env()
    if __name__ == "__main__":
        check_bind(ARGS.host, AUTH_SETTINGS.enabled, debug=ARGS.debug)
except RecsysError as exc:
    _refuse(str(exc))

app = Dash(
    __name__,
    use_pages=True,
    external_stylesheets=[],  # Bootswatch Flatly is vendored in assets/ (works offline, no CDN)
    suppress_callback_exceptions=True,
    title="RecSys Lab",
    meta_tags=plotlyjs_meta(),  # which plotly.js graphs load, read by assets/plotly_loader.js
    on_error=callback_failed,  # a failed callback says why on the page, never a bare 500
)
app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)  # screen readers' language
register_plotlyjs(app)  # the trimmed plotly.js bundle (components.plotly_bundle)
server = app.server
# one thread imports pandas and what is built on it; the other requests wait (components.preload)
server.before_request(wait_for_preload)
enable_compression(server)  # JSON, JavaScript and CSS go compressed (recsys.compression)
# Uploads travel base64-encoded inside a callback body: bound the body before it is read.
server.config["MAX_CONTENT_LENGTH"] = upload_max_bytes() * 4 // 3 + 1024 * 1024
register_api(server)  # REST /api/v1 on the same server
register_media(server)  # item images from each dataset's images folder only (recsys.images)
auth.init_auth(
    server,
    root=data_dir(),
    is_write=request_is_write,
    extra_hosts=tuple(h for h in (os.environ.get("RECSYS_HOST", ""),) if h and h not in ("0.0.0.0", "::")),
    settings=AUTH_SETTINGS,
)
app.layout = shell

try:  # settle jobs from before a restart; with no runs yet, start the demo build (once)
    on_app_start(
        demo=os.environ.get("RECSYS_NO_DEMO") != "1" and not (__name__ == "__main__" and ARGS.no_demo)
    )
except Exception as exc:  # the app must start even when the job store is unusable
    logging.getLogger(__name__).warning("could not check the job store: %s", exc)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not ARGS.debug or os.environ.get("WERKZEUG_RUN_MAIN") == "true":  # the reloader's child serves
        start_preload()  # pandas and the catalogue, imported while the app starts serving
        start_map_warmup()  # a thread: the Map's first drawing, off the first user's request
    app.run(host=ARGS.host, port=ARGS.port, debug=ARGS.debug)
