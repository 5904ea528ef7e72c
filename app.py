"""RecSys Lab: builds the Dash app and its shell. Pages live in ``pages/``.

Run ``python app.py [--host 127.0.0.1] [--port 8050] [--data-dir ./data]`` (or the
RECSYS_HOST / RECSYS_PORT / RECSYS_DATA_DIR environment variables); in production
``gunicorn app:server``. With no runs yet, the demo build starts as a background job.
"""

from __future__ import annotations

import argparse
import logging
import os

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html

from components import ids
from components.jobs import POLL_MS, on_app_start
from components.layout import navbar
from recsys.config import ENV_DATA_DIR
from recsys.images import register_media
from recsys.serving import ENV_TOKEN, check_bind, register_api


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; each defaults to its environment variable."""
    parser = argparse.ArgumentParser(description="RecSys Lab dashboard")
    parser.add_argument("--host", default=os.environ.get("RECSYS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("RECSYS_PORT", "8050")))
    parser.add_argument("--data-dir", default=os.environ.get(ENV_DATA_DIR), help="datasets, runs and jobs")
    parser.add_argument("--debug", action="store_true", help="Dash dev tools and reloader")
    parser.add_argument("--no-demo", action="store_true", help="do not start the demo build when empty")
    return parser.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.data_dir:  # pages read it through recsys.config.data_dir()
        os.environ[ENV_DATA_DIR] = os.path.abspath(ARGS.data_dir)

app = Dash(
    __name__,
    use_pages=True,
    external_stylesheets=[],  # Bootswatch Flatly is vendored in assets/ (works offline, no CDN)
    suppress_callback_exceptions=True,
    title="RecSys Lab",
)
server = app.server
register_api(server)  # REST /api/v1 on the same server (token from $RECSYS_API_TOKEN)
register_media(server)  # item images from each dataset's images folder only (recsys.images)

app.layout = html.Div(
    [
        navbar(),
        dbc.Container(dash.page_container, fluid="xl", className="page-body pb-5"),
        dcc.Store(id=ids.JOBS_STORE),
        dcc.Store(id=ids.RUNS_VERSION_STORE),
        dcc.Interval(id=ids.JOBS_INTERVAL, interval=POLL_MS),
    ]
)

try:  # settle jobs from before a restart; with no runs yet, start the demo build (once)
    on_app_start(
        demo=os.environ.get("RECSYS_NO_DEMO") != "1" and not (__name__ == "__main__" and ARGS.no_demo)
    )
except Exception as exc:  # the app must start even when the job store is unusable
    logging.getLogger(__name__).warning("could not check the job store: %s", exc)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_bind(ARGS.host, os.environ.get(ENV_TOKEN))  # non-loopback only with an API token
    app.run(host=ARGS.host, port=ARGS.port, debug=ARGS.debug)
