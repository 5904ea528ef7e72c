"""The ``/api/v1`` blueprint: error handlers, then the read-only and the state-changing route groups."""

from __future__ import annotations

import logging
import time
from typing import Any

import flask
from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from recsys import __version__
from recsys.errors import (
    FilterConfigError,
    RecsysError,
)
from recsys.serving.core import (
    _SIMILAR_FIELDS,
    API_PREFIX,
    ApiError,
    _config_dict,
    _http_json,
    _json_body,
    _preset_names,
    _run_summary,
    _state,
    _status_of,
    error_response,
    json_reply,
    require_token,
)
from recsys.serving.handlers import recommend_response, similar_response

logger = logging.getLogger(__name__)

#: the WSGI environ key of a request's start (:func:`create_blueprint`'s hooks): read and written
#: on the environ, one context look-up each, where ``flask.g`` costs a proxy and its own object
_T0 = "recsys.t0"
#: what GET /similar's query string may name (POST's body adds ``item_id``)
_SIMILAR_KEYS = frozenset(_SIMILAR_FIELDS)
_RECOMMEND_KEYS = frozenset({"recent_item_ids", "run", "dataset", "preset", "filters", "k", "exclude_seen"})


def _refuse_unknown(given: Any, known: frozenset[str], what: str = "field") -> None:
    """A 400 for names a request may not hold (a JSON body's fields, a query's parameters):
    each named, with the closest known name (``filter`` -> ``filters``) and the known ones.
    A typo must not be dropped: ``?filter=`` would otherwise answer unfiltered, with a 200."""
    if known.issuperset(given):
        return
    import difflib

    names = sorted(set(given) - known)
    close = difflib.get_close_matches(names[0], sorted(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ApiError(
        400, f"unknown {what}(s): {', '.join(names)}{hint}; known: {', '.join(sorted(known))}", names[0]
    )


# ---------------------------------------------------------------------------
# the blueprint
# ---------------------------------------------------------------------------
def create_blueprint() -> Blueprint:
    """A fresh ``/api/v1`` blueprint (one per app; settings live in ``app.extensions``)."""
    bp = Blueprint("recsys_api", __name__, url_prefix=API_PREFIX)

    @bp.before_request
    def _bound_body() -> None:
        req = request._get_current_object()  # one context look-up for what follows
        env = req.environ
        env[_T0] = time.perf_counter()  # the handler's start, for Server-Timing
        length = env.get("CONTENT_LENGTH")
        if (not length or length == "0") and "HTTP_TRANSFER_ENCODING" not in env:
            return  # no body (a GET, most requests): none to bound, nothing more to look up
        limit = _state().settings.max_body_bytes
        if req.content_length is not None and req.content_length > limit:
            raise ApiError(413, f"request body of {req.content_length} bytes exceeds {limit} bytes")
        if req.content_length is None and req.method in ("POST", "PUT", "PATCH", "DELETE"):
            # A chunked body has no length up front: read one byte past the limit, so a
            # longer body is refused (413) instead of being cut and parsed as broken JSON.
            req.max_content_length = limit + 1
            if len(req.get_data(cache=True)) > limit:
                raise ApiError(413, f"request body exceeds {limit} bytes")
        req.max_content_length = limit  # werkzeug raises 413 on a longer stream

    @bp.after_request
    def _server_timing(resp: flask.Response) -> flask.Response:
        t0 = request.environ.get(_T0)
        if t0 is not None:  # handler time, without queueing or the network
            resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.3f}"
        return resp

    _add_error_handlers(bp)
    _add_read_routes(bp)
    _add_write_routes(bp)

    # -- unknown paths under /api/v1 (else Dash's catch-all page would answer) --
    @bp.get("/<path:rest>")
    def unknown(rest: str) -> Any:
        raise ApiError(404, f"no endpoint {API_PREFIX}/{rest}; see {API_PREFIX}/openapi.json")

    return bp


def _add_error_handlers(bp: Blueprint) -> None:
    """Every error answers the JSON error body (never an HTML traceback)."""

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


def _add_read_routes(bp: Blueprint) -> None:
    """The read-only endpoints (open to every caller)."""

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
        import yaml

        text = yaml.safe_dump(_state().openapi(), sort_keys=False, allow_unicode=True)
        return flask.Response(text, mimetype="application/yaml")

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
        args = request.args
        _refuse_unknown(args, _SIMILAR_KEYS, "query parameter")
        # only the fields the query names (all known now), each its first value as ``args.get``
        # reads it: MultiDict.get of an absent key raises and catches a BadRequestKeyError (an
        # HTTPException built per field), three per preset request
        return json_reply(similar_response(item_id, **args.to_dict()))

    @bp.post("/similar")
    def similar_post() -> Any:
        body = _json_body()
        _refuse_unknown(body, _SIMILAR_KEYS | {"item_id"})
        item_id = body.get("item_id")
        if not isinstance(item_id, str) or not item_id:
            raise ApiError(400, "'item_id' (a non-empty string) is required", "item_id")
        return json_reply(similar_response(item_id, **{f: body.get(f) for f in _SIMILAR_FIELDS}))

    @bp.post("/recommend")
    def recommend() -> Any:
        body = _json_body()
        _refuse_unknown(body, _RECOMMEND_KEYS)
        return json_reply(
            recommend_response(
                body.get("recent_item_ids"),
                run=body.get("run"),
                preset=body.get("preset"),
                filters=body.get("filters"),
                k=body.get("k"),
                exclude_seen=body.get("exclude_seen", True),
                dataset=body.get("dataset"),
            )
        )


def _add_write_routes(bp: Blueprint) -> None:
    """The state-changing endpoints (``require_token``: the editor's bearer token once one is set)."""

    # -- state-changing ------------------------------------------------------
    @bp.route("/presets/<name>", methods=["PUT", "POST"])
    @require_token
    def preset_save(name: str) -> Any:
        from recsys.filters import FilterConfig

        if not request.get_data(cache=True):  # an empty body is no config, not the defaults ({})
            raise ApiError(
                400,
                "the request body is required: the preset's FilterConfig as a JSON object ({} for the defaults)",
                "body",
            )
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
        _refuse_unknown(body, frozenset({"family", "params", "dataset", "label"}))
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

    @bp.post("/tune")
    @require_token
    def tune() -> Any:
        """Search a family's settings on a split carved from the training data, then train the best."""
        from recsys.jobs import JobParamError, JobStore, submit_tune

        body = _json_body()
        st = _state()
        _refuse_unknown(
            body, frozenset({"family", "params", "dataset", "label", "budget", "trials", "sample"})
        )
        family, dataset = body.get("family"), body.get("dataset") or "demo"
        try:
            job_id = submit_tune(
                JobStore(st.settings.root),
                family,
                dataset,
                body.get("params") or {},
                budget=body.get("budget", "10m"),
                trials=body.get("trials"),
                sample=body.get("sample"),
                label=body.get("label"),
                job_label=f"Tune {family} on {dataset} (API)",
            )
        except JobParamError as exc:
            raise ApiError(400, str(exc), exc.field) from None
        return jsonify(job_id=job_id, status="submitted"), 202
