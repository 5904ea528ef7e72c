"""One login for the dashboard and the REST API: roles, sessions, CSRF and the Host allow-list.

Nothing is configured (no token, no users file): there is no login, as before;
:func:`recsys.serving.check_bind` only allows that on a loopback address.

Once ``$RECSYS_API_TOKEN`` (the editor token), ``$RECSYS_VIEWER_TOKEN`` or a
users file (``$RECSYS_USERS_FILE``) is set, every page, every Dash route
(``/_dash-layout``, ``/_dash-dependencies``, ``/_dash-update-component``...) and
every REST endpoint needs either

- a session from the login page (a signed Flask session cookie, managed by
  Flask-Login: HttpOnly, SameSite=Lax, Secure when the request came over HTTPS),
  whose state-changing requests also carry a CSRF token (Flask-WTF; Dash's
  renderer sends the ``_csrf_token`` cookie back as the ``X-CSRFToken`` header), or
- ``Authorization: Bearer <token>`` (scripts and the REST API; no cookie, so no CSRF).

Two roles: ``viewer`` (every page and read endpoint) and ``editor`` (everything).
A request that changes state needs ``editor``: :func:`init_auth` takes the
classifier that says which requests write (the REST decorators and the Dash
callback list in ``components.access``). Unauthenticated requests get a 401 (a
redirect to ``/login`` for pages); a viewer's write gets a 403.

The Host allow-list (``$RECSYS_ALLOWED_HOSTS``, comma-separated, ``*`` for any;
default the loopback names) answers 400 to any other ``Host`` header, which
closes DNS rebinding against an app on loopback. It applies with or without a login.

A users file (YAML or JSON)::

    users:
      - {name: ana, role: editor, password_hash: "scrypt:32768:8:1$..."}
      - {name: sam, role: viewer, password_hash: "..."}

Hashes come from ``python -m recsys users hash`` (werkzeug's ``generate_password_hash``).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import flask
from flask import request

from recsys.errors import RecsysError

logger = logging.getLogger(__name__)

ENV_EDITOR_TOKEN = "RECSYS_API_TOKEN"
ENV_VIEWER_TOKEN = "RECSYS_VIEWER_TOKEN"
ENV_USERS_FILE = "RECSYS_USERS_FILE"
ENV_SECRET_KEY = "RECSYS_SECRET_KEY"
ENV_ALLOWED_HOSTS = "RECSYS_ALLOWED_HOSTS"

EDITOR = "editor"
VIEWER = "viewer"
ROLES = (VIEWER, EDITOR)

#: Names a loopback app answers to by default.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Paths open without a login: the login page itself and static styling.
PUBLIC_PREFIXES = ("/login", "/logout", "/assets/", "/_favicon.ico")
CSRF_COOKIE = "_csrf_token"  # the cookie Dash's renderer reads for its X-CSRFToken header
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXTENSION_KEY = "recsys_auth"


class AuthConfigError(RecsysError):
    """The users file or the tokens are not usable."""


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class UserRecord:
    name: str
    role: str
    password_hash: str


@dataclass
class AuthSettings:
    """Who may sign in. ``enabled`` is False when nothing is configured."""

    editor_token: str | None = None
    viewer_token: str | None = None
    users: dict[str, UserRecord] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.editor_token or self.viewer_token or self.users)

    @classmethod
    def from_env(cls) -> AuthSettings:
        users_file = os.environ.get(ENV_USERS_FILE)
        return cls(
            editor_token=(os.environ.get(ENV_EDITOR_TOKEN) or "").strip() or None,
            viewer_token=(os.environ.get(ENV_VIEWER_TOKEN) or "").strip() or None,
            users=load_users(users_file) if users_file else {},
        )

    def role_of_token(self, given: str) -> str | None:
        """The role a bearer token grants, None when it matches neither token."""
        given_b = given.encode()
        if self.editor_token and hmac.compare_digest(given_b, self.editor_token.encode()):
            return EDITOR
        if self.viewer_token and hmac.compare_digest(given_b, self.viewer_token.encode()):
            return VIEWER
        return None

    def fingerprint(self, role: str) -> str:
        """Changes when the token of ``role`` changes, so rotating a token ends its sessions."""
        token = self.editor_token if role == EDITOR else self.viewer_token
        return hashlib.sha256(f"{role}:{token or ''}".encode()).hexdigest()[:16]


def load_users(path: str | os.PathLike[str]) -> dict[str, UserRecord]:
    """Read a users file (YAML or JSON): ``{"users": [{"name", "role", "password_hash"}]}``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthConfigError(f"{ENV_USERS_FILE}={p}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise AuthConfigError(f"{ENV_USERS_FILE}={p}: not UTF-8 text (a bad byte at {exc.start})") from None
    try:
        import yaml

        raw = yaml.safe_load(text)
    except Exception as exc:  # yaml raises several types
        raise AuthConfigError(f"{p}: not valid YAML/JSON ({exc})") from None
    entries = raw.get("users") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise AuthConfigError(f"{p}: expected a 'users:' list of {{name, role, password_hash}}")
    users: dict[str, UserRecord] = {}
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise AuthConfigError(f"{p}: user {i} is not a mapping")
        name, role, pw = entry.get("name"), entry.get("role", VIEWER), entry.get("password_hash")
        if not isinstance(name, str) or not name.strip():
            raise AuthConfigError(f"{p}: user {i} has no name")
        if role not in ROLES:
            raise AuthConfigError(f"{p}: user '{name}' has role '{role}'; use 'viewer' or 'editor'")
        if not isinstance(pw, str) or ":" not in pw:
            raise AuthConfigError(
                f"{p}: user '{name}' needs a password_hash (make one with 'python -m recsys users hash')"
            )
        users[name.strip()] = UserRecord(name.strip(), role, pw)
    return users


def allowed_hosts(extra: tuple[str, ...] = ()) -> frozenset[str] | None:
    """The Host names the app answers; None means any (``RECSYS_ALLOWED_HOSTS=*``)."""
    raw = os.environ.get(ENV_ALLOWED_HOSTS)
    if raw is not None and raw.strip():
        names = {h.strip().lower().strip("[]") for h in raw.split(",") if h.strip()}
        if "*" in names:
            return None
        return frozenset(names)
    return frozenset({*LOOPBACK_HOSTS, *(h.lower().strip("[]") for h in extra if h)})


def host_name(host_header: str) -> str:
    """``example.com:8050`` -> ``example.com``; ``[::1]:8050`` -> ``::1``."""
    h = (host_header or "").strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    if h.count(":") == 1:
        return h.split(":", 1)[0]
    return h


def secret_key(root: Path) -> bytes:
    """``$RECSYS_SECRET_KEY``, else a random key kept in ``<data dir>/.secret_key`` (mode 0600),
    so sessions survive a restart and every worker of one data directory signs alike."""
    env = os.environ.get(ENV_SECRET_KEY)
    if env:
        return env.encode()
    path = root / ".secret_key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32).encode()
    from recsys._io import atomic_create_bytes

    if not atomic_create_bytes(path, key, 0o600):  # another worker wrote it first
        return path.read_bytes()
    return key


# ---------------------------------------------------------------------------
# users and the current role
# ---------------------------------------------------------------------------
class User:
    """A signed-in user (Flask-Login's user protocol)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, name: str, role: str, session_id: str | None = None) -> None:
        self.name = name
        self.role = role
        self._id = session_id or name

    def get_id(self) -> str:
        return self._id


def _settings() -> AuthSettings | None:
    return flask.current_app.extensions.get(EXTENSION_KEY)


def current_role() -> str | None:
    """``editor`` or ``viewer`` for the request's user; ``editor`` when no login is configured;
    None when a login is configured and the request has none."""
    settings = _settings() if flask.has_app_context() else None
    if settings is None or not settings.enabled:
        return EDITOR
    if not flask.has_request_context():
        return None
    from flask_login import current_user

    return current_user.role if getattr(current_user, "is_authenticated", False) else None


def current_user_name() -> str | None:
    """Who is signed in (a user name, ``editor``/``viewer`` for a token), None without a login."""
    settings = _settings() if flask.has_app_context() else None
    if settings is None or not settings.enabled or not flask.has_request_context():
        return None
    from flask_login import current_user

    return current_user.name if getattr(current_user, "is_authenticated", False) else None


def auth_enabled() -> bool:
    settings = _settings() if flask.has_app_context() else None
    return bool(settings and settings.enabled)


def can_edit() -> bool:
    """Whether the request's user may change state (True when no login is configured)."""
    return current_role() == EDITOR


# ---------------------------------------------------------------------------
# wiring
# ---------------------------------------------------------------------------
def init_auth(
    server: flask.Flask,
    *,
    root: Path,
    is_write: Callable[[flask.Request], bool],
    extra_hosts: tuple[str, ...] = (),
    settings: AuthSettings | None = None,
) -> AuthSettings:
    """Install the Host check, the login and the role checks on ``server``.

    Parameters
    ----------
    server : flask.Flask
        The Dash app's server (the REST blueprint lives on it too).
    root : Path
        The data directory (where the generated secret key is kept).
    is_write : callable
        ``is_write(request) -> bool``: whether a request changes state (the
        REST write endpoints and the Dash callbacks declared as writes).
    extra_hosts : tuple of str
        Host names to allow besides the loopback names (the address the app binds).
    settings : AuthSettings, optional
        Default: from the environment.
    """
    settings = settings if settings is not None else AuthSettings.from_env()
    server.extensions[EXTENSION_KEY] = settings
    hosts = allowed_hosts(extra_hosts)

    @server.before_request
    def _check_host() -> Any:
        if hosts is not None and host_name(request.host) not in hosts:
            return _plain(
                400,
                f"Host '{host_name(request.host)}' is not served here; add it to {ENV_ALLOWED_HOSTS} "
                "(comma-separated) to allow it",
            )
        return None

    if not settings.enabled:
        return settings

    from flask_login import LoginManager, current_user, login_user, logout_user
    from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
    from werkzeug.exceptions import MethodNotAllowed

    server.secret_key = secret_key(root)
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="recsys_session",
        WTF_CSRF_CHECK_DEFAULT=False,  # checked below, only for cookie sessions
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session's life
        WTF_CSRF_SSL_STRICT=False,  # the Origin/Referer check breaks behind proxies; the token is enough
    )
    server.session_interface = _SecureWhenHttps()
    csrf = CSRFProtect(server)
    manager = LoginManager(server)

    @manager.user_loader
    def _load(session_id: str) -> User | None:
        kind, _, rest = session_id.partition(":")
        if kind == "token":
            role, _, fp = rest.partition(":")
            if role in ROLES and hmac.compare_digest(fp, settings.fingerprint(role)):
                return User(role, role, session_id)
            return None
        if kind == "user":
            name, _, fp = rest.rpartition(":")
            rec = settings.users.get(name)
            if rec is not None and hmac.compare_digest(fp, _user_fp(rec)):
                return User(rec.name, rec.role, session_id)
        return None

    @manager.request_loader
    def _from_bearer(req: flask.Request) -> User | None:
        header = req.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        role = settings.role_of_token(given.strip())
        if role is None:
            return None
        flask.g.recsys_bearer = True
        return User(role, role, f"token:{role}:{settings.fingerprint(role)}")

    @server.before_request
    def _require_login() -> Any:
        path = request.path
        if path == "/login" or path.startswith(PUBLIC_PREFIXES[1:]):
            return None
        if not current_user.is_authenticated:
            if "Authorization" in request.headers:
                return _deny(401, _header_problem(request.headers["Authorization"]))
            if _wants_json(path):
                return _deny(
                    401, "sign in first (the login page is /login) or send 'Authorization: Bearer <token>'"
                )
            return flask.redirect(f"/login?next={_safe_next(request.full_path)}")
        if isinstance(request.routing_exception, MethodNotAllowed):
            return None  # nothing here serves this method (TRACE /api/v1/health): a 405, whatever the role
        bearer = bool(flask.g.get("recsys_bearer"))
        if request.method in _WRITE_METHODS and not bearer:
            csrf.protect()  # raises CSRFError (answered 400 below)
        if current_user.role != EDITOR and is_write(request):
            return _deny(
                403, f"signed in as '{current_user.name}' (viewer); this action needs the editor role"
            )
        return None

    @server.after_request
    def _csrf_cookie(resp: flask.Response) -> flask.Response:
        if current_user.is_authenticated and not flask.g.get("recsys_bearer"):
            resp.set_cookie(
                CSRF_COOKIE,
                generate_csrf(),
                samesite="Lax",
                secure=request.is_secure,
                httponly=False,  # Dash's renderer reads it and echoes it as X-CSRFToken
            )
        return resp

    @server.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError) -> Any:
        return _deny(400, f"CSRF check failed ({exc.description}); reload the page and try again")

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        error = None
        nxt = _safe_next(request.values.get("next") or "/")
        if request.method == "POST":
            csrf.protect()
            name = (request.form.get("username") or "").strip()
            secret = request.form.get("password") or ""
            user = _authenticate(settings, name, secret)
            if user is not None:
                flask.session.clear()
                login_user(user)
                logger.info("sign-in: %s (%s) from %s", user.name, user.role, request.remote_addr)
                return flask.redirect(nxt)
            logger.warning("failed sign-in for %r from %s", name or "<token>", request.remote_addr)
            error = "That user name and password, or that token, is not valid."
        return _login_page(error, nxt, generate_csrf(), bool(settings.users)), (401 if error else 200)

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> Any:
        logout_user()
        flask.session.clear()
        resp = flask.redirect("/login")
        resp.delete_cookie(CSRF_COOKIE)
        return resp

    logger.info(
        "login required (editor token %s, viewer token %s, %d named users)",
        "set" if settings.editor_token else "not set",
        "set" if settings.viewer_token else "not set",
        len(settings.users),
    )
    return settings


def _user_fp(rec: UserRecord) -> str:
    """Changes when the user's password or role changes, so old sessions end."""
    return hashlib.sha256(f"{rec.role}:{rec.password_hash}".encode()).hexdigest()[:16]


def _authenticate(settings: AuthSettings, name: str, secret: str) -> User | None:
    if not secret:
        return None
    if name:
        rec = settings.users.get(name)
        if rec is None:
            return None
        from werkzeug.security import check_password_hash

        if check_password_hash(rec.password_hash, secret):
            return User(rec.name, rec.role, f"user:{rec.name}:{_user_fp(rec)}")
        return None
    role = settings.role_of_token(secret.strip())
    if role is None:
        return None
    return User(role, role, f"token:{role}:{settings.fingerprint(role)}")


def _header_problem(header: str) -> str:
    """Why an ``Authorization`` header signed nobody in: an empty token (an unset shell variable
    in ``-H "Authorization: Bearer $TOKEN"``), another scheme, or a token no role has."""
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return f"the Authorization header is not a bearer token ('{scheme[:20]} ...'): send 'Authorization: Bearer <token>'"
    if not given.strip():
        return (
            "the Authorization header's token is empty (is the variable that holds it set?): "
            "send 'Authorization: Bearer <token>'"
        )
    return "wrong token: 'Authorization: Bearer <token>' matches no configured token"


def _wants_json(path: str) -> bool:
    return path.startswith(("/api/", "/_dash-", "/_reload-hash")) or request.method != "GET"


def _safe_next(target: str) -> str:
    """Only same-site paths (no scheme, no host, no '//'), to avoid an open redirect."""
    target = (target or "/").rstrip("?") or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if target.startswith(("/login", "/logout")):
        return "/"
    return target


def _deny(status: int, message: str) -> flask.Response:
    resp = flask.jsonify(error={"status": status, "message": message})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="recsys"'
    return resp


def _plain(status: int, message: str) -> flask.Response:
    return flask.Response(message + "\n", status=status, mimetype="text/plain")


class _SecureWhenHttps(flask.sessions.SecureCookieSessionInterface):
    """The session cookie carries ``Secure`` whenever the request came over HTTPS.

    A request without a session cookie (a script with a bearer token, a first visit) gets its
    empty session without building the signing serializer (itsdangerous test-encodes a value
    each time one is built), and a session nobody touched is not saved: the same answers as
    Flask's, minus per-request work on the REST API's path."""

    def open_session(self, app: flask.Flask, request: flask.Request) -> Any:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: flask.Flask, session: Any, response: flask.Response) -> None:
        if not session and not session.modified and not session.accessed:
            return  # Flask would only look up the cookie settings, then return
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (
            flask.has_request_context() and request.is_secure
        )


def _login_page(error: str | None, nxt: str, csrf_token: str, with_users: bool) -> str:
    user_field = (
        '<label class="form-label" for="username">User name <span class="text-muted">'
        "(leave empty to sign in with a token)</span></label>"
        '<input class="form-control mb-3" id="username" name="username" autocomplete="username">'
        if with_users
        else ""
    )
    secret_label = "Password or access token" if with_users else "Access token"
    alert = f'<div class="alert alert-danger" role="alert">{html.escape(error)}</div>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · RecSys Lab</title>
<link rel="stylesheet" href="/assets/0-bootstrap-flatly.min.css"></head>
<body class="bg-light"><main class="container" style="max-width: 28rem; margin-top: 12vh">
<h1 class="h3 mb-3">◆ RecSys Lab</h1>
<p class="text-muted">Sign in with the token your administrator gave you: the viewer token shows
every page; the editor token also trains, imports, saves presets and deletes runs.</p>
{alert}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{html.escape(csrf_token)}">
<input type="hidden" name="next" value="{html.escape(nxt)}">
{user_field}
<label class="form-label" for="password">{secret_label}</label>
<input class="form-control mb-3" id="password" name="password" type="password"
 autocomplete="current-password" required autofocus>
<button class="btn btn-primary w-100" id="login-submit" type="submit">Sign in</button>
</form></main></body></html>"""


def hash_password(password: str) -> str:
    """A password hash for the users file (werkzeug's scrypt)."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password)


def describe_request_body(raw: bytes) -> dict[str, Any] | None:
    """The JSON object of a Dash callback request, None when it is not one."""
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None
