"""Compressed responses (recsys.compression): what a browser gets for bundles, callback answers
and pages, on a real Dash app served by Flask's test client."""

from __future__ import annotations

import gzip
import json

import pytest

pytest.importorskip("flask_compress", reason="Flask-Compress is not installed (requirements.txt)")

from recsys.compression import StaticCache, enable_compression  # noqa: E402

BROWSER = "gzip, deflate, br, zstd"  # what Chromium sends


def _decode(resp) -> bytes:
    encoding = resp.headers.get("Content-Encoding")
    if encoding == "zstd":
        from backports import zstd

        return zstd.decompress(resp.data)
    if encoding == "br":
        import brotli

        return brotli.decompress(resp.data)
    if encoding == "gzip":
        return gzip.decompress(resp.data)
    assert encoding is None, encoding
    return resp.data


@pytest.fixture
def client():
    import dash
    import flask
    from dash import html

    app = dash.Dash(__name__, serve_locally=True)
    app.layout = html.Div("x" * 2000, id="big")
    payload = {"x": list(range(50_000))}

    @app.server.route("/sized/<int:n>")
    def sized(n):  # a JSON answer of exactly n bytes
        return flask.Response('"' + "a" * (n - 2) + '"', mimetype="application/json")

    @app.server.route("/figure")
    def figure():  # a callback-sized JSON answer
        return flask.jsonify(payload)

    @app.server.route("/login-like")
    def login_like():  # HTML with a secret next to user text: never compressed
        return "<html>" + "token " * 500 + flask.request.args.get("q", "") + "</html>"

    assert enable_compression(app.server)
    with app.server.test_client() as c:
        c.payload = payload
        yield c


PLOTLY_JS = "/_dash-component-suites/plotly/package_data/plotly.min.js"


def test_json_answers_are_compressed_with_the_best_encoding_the_browser_offers(client):
    resp = client.get("/figure", headers={"Accept-Encoding": BROWSER})
    assert resp.headers["Content-Encoding"] == "zstd"
    assert json.loads(_decode(resp)) == client.payload
    assert len(resp.data) < len(json.dumps(client.payload)) / 2
    older = client.get("/figure", headers={"Accept-Encoding": "gzip, deflate"})
    assert older.headers["Content-Encoding"] == "gzip" and json.loads(_decode(older)) == client.payload
    plain = client.get("/figure")
    assert "Content-Encoding" not in plain.headers and json.loads(plain.data) == client.payload
    assert "Accept-Encoding" in plain.headers["Vary"]


def test_replies_that_fit_one_tcp_segment_go_uncompressed(client):
    """A REST similar-items answer (~0.9 KB at k=10) saves no packet when compressed: sent as is."""
    from recsys.compression import MIN_SIZE

    assert 1000 < MIN_SIZE <= 1460  # one Ethernet TCP segment's payload
    small = client.get(f"/sized/{MIN_SIZE - 1}", headers={"Accept-Encoding": BROWSER})
    assert "Content-Encoding" not in small.headers and len(small.data) == MIN_SIZE - 1
    assert small.headers["Content-Type"] == "application/json"
    big = client.get(f"/sized/{MIN_SIZE}", headers={"Accept-Encoding": BROWSER})
    assert big.headers["Content-Encoding"] == "zstd" and len(_decode(big)) == MIN_SIZE


def test_plotly_js_is_compressed_once_and_served_from_memory(client):
    first = client.get(PLOTLY_JS, headers={"Accept-Encoding": BROWSER})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "zstd"
    body = _decode(first)
    assert len(body) > 3_000_000 and len(first.data) < len(body) / 2
    assert any("plotly.min.js" in k for k in _find_cache(client.application)._items)
    again = client.get(PLOTLY_JS, headers={"Accept-Encoding": BROWSER})
    assert again.data == first.data


def _find_cache(server) -> StaticCache:
    for func in server.after_request_funcs[None]:
        owner = getattr(func, "__self__", None) or getattr(func, "compress", None)
        if owner is not None and isinstance(getattr(owner, "cache", None), StaticCache):
            return owner.cache
    raise AssertionError("no StaticCache registered")


def test_html_is_never_compressed(client):
    resp = client.get("/login-like?q=secret-guess", headers={"Accept-Encoding": BROWSER})
    assert "Content-Encoding" not in resp.headers and b"secret-guess" in resp.data


def test_static_cache_keeps_only_static_files_within_its_budget():
    cache = StaticCache(max_bytes=10)
    cache.set("zstd;/figure?", b"12345")
    assert cache.get("zstd;/figure?") is None  # a callback answer: compressed each time
    cache.set("zstd;/assets/a.js?m=1", b"123456")
    cache.set("zstd;/_dash-component-suites/b.js?", b"12345")
    assert cache.get("zstd;/assets/a.js?m=1") is None  # the oldest went over the budget
    assert cache.get("zstd;/_dash-component-suites/b.js?") == b"12345"
