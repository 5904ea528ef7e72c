"""Which plotly.js the page names (components.plotlyjs): the trimmed bundle under a cacheable,
content-hashed URL, plotly.py's full bundle when it is missing."""

from __future__ import annotations

import hashlib
import os
import re

import plotly

from components import plotlyjs
from components.plotlyjs import META_NAME, plotlyjs_meta, register_plotlyjs

FULL = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")


def _client():
    import dash
    from dash import dcc

    app = dash.Dash(__name__, serve_locally=True, meta_tags=plotlyjs_meta())
    register_plotlyjs(app)
    app.layout = dcc.Graph(id="g")
    return app.server.test_client()


def _named(client) -> str:
    page = client.get("/").get_data(as_text=True)
    found = re.search(rf'<meta name="{META_NAME}" content="([^"]+)"', page)
    assert found, "no plotly.js meta tag in the page"
    return found.group(1)


def test_the_page_names_the_trimmed_bundle_under_a_name_that_changes_with_its_content():
    with open(plotlyjs.BUNDLE_FILE, "rb") as fh:
        body = fh.read()
    client = _client()
    path = _named(client)
    digest = hashlib.sha256(body).hexdigest()[:16]
    assert path == f"components.plotly_bundle/plotly-recsys.v4_1_1m{digest}.min.js"
    resp = client.get("/_dash-component-suites/" + path)
    assert resp.status_code == 200 and resp.data == body
    assert resp.cache_control.max_age == 31536000  # fingerprinted: the browser keeps it a year
    assert resp.mimetype in ("application/javascript", "text/javascript")
    # the same version as plotly.py's full bundle (what Dash serves when the trimmed one is missing)
    assert body.startswith(f"/*! plotly.js v{plotly.offline.get_plotlyjs_version()} ".encode())
    assert len(body) < os.path.getsize(FULL) / 2
    # Dash's plain URL of the full bundle (what dcc.Graph asks for by itself) still works
    plain = client.get("/_dash-component-suites/plotly/package_data/plotly.min.js")
    assert plain.status_code == 200 and plain.cache_control.max_age is None


def test_without_the_trimmed_bundle_the_page_names_plotly_pys_full_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(plotlyjs, "BUNDLE_FILE", str(tmp_path / "missing.min.js"))
    client = _client()
    path = _named(client)
    version = re.sub(r"[^\w-]", "_", plotly.__version__)
    assert path == f"plotly/package_data/plotly.v{version}m{int(os.stat(FULL).st_mtime)}.min.js"
    resp = client.get("/_dash-component-suites/" + path)
    assert resp.status_code == 200 and resp.cache_control.max_age == 31536000
    with open(FULL, "rb") as fh:
        assert resp.data == fh.read()


def test_no_meta_tag_when_no_bundle_is_found(monkeypatch, tmp_path):
    monkeypatch.setattr(plotlyjs, "BUNDLE_FILE", str(tmp_path / "missing.min.js"))
    monkeypatch.setattr(plotlyjs.os, "stat", lambda *_a, **_k: (_ for _ in ()).throw(FileNotFoundError()))
    assert plotlyjs.plotlyjs_path() is None
    assert plotlyjs_meta() == []
