"""gunicorn settings for ``gunicorn app:server`` (gunicorn reads ./gunicorn.conf.py by itself).

It binds 127.0.0.1:8050 unless told otherwise and refuses, before any worker
imports the app (so before the demo build is submitted), to bind an address
other machines can reach when no login is configured: set RECSYS_API_TOKEN (and
RECSYS_ALLOWED_HOSTS to the names clients use) first.
"""

import os
import sys

bind = [f"{os.environ.get('RECSYS_HOST', '127.0.0.1')}:{os.environ.get('RECSYS_PORT', '8050')}"]


def _hosts(binds):
    """'0.0.0.0:8050' -> '0.0.0.0'; '[::]:80' -> '::'; 'unix:/x.sock' -> None (local only)."""
    for b in binds:
        if b.startswith(("unix:", "fd://")):
            continue
        host = b.rsplit(":", 1)[0] if b.count(":") == 1 or b.startswith("[") else b
        yield host.strip("[]")


def _check(binds):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from recsys.auth import AuthSettings
    from recsys.errors import RecsysError
    from recsys.serving import check_bind

    try:
        enabled = AuthSettings.from_env().enabled
        for host in _hosts(binds):
            check_bind(host, enabled)
    except RecsysError as exc:
        print(f"RecSys Lab: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _command_line_binds():
    """The addresses given with -b/--bind on the command line or in GUNICORN_CMD_ARGS."""
    import shlex

    args = shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")) + sys.argv[1:]
    found = []
    for i, arg in enumerate(args):
        if arg in ("-b", "--bind") and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--bind="):
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-b") and len(arg) > 2:
            found.append(arg[2:])
    return found


# Checked while this file loads (before --preload imports the app) and again on start.
_check(_command_line_binds() or bind)


def on_starting(server):
    _check(server.cfg.bind)


def post_worker_init(worker):
    """Each worker imports pandas and the catalogue (``components.preload``) and draws the Map's
    first figure ahead (``components.map_warm``), in threads, after its fork."""
    from components.map_warm import start_map_warmup
    from components.preload import start_preload

    start_preload()
    start_map_warmup()
