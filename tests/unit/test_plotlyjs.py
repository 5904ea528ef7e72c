"""plotly.js's cacheable URL (components.plotlyjs): what the browser is told and what it gets."""

from __future__ import annotations

import os
import re

import plotly

from components.plotlyjs import META_NAME, plotlyjs_meta, plotlyjs_path

BUNDLE = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")


def _client():
    import dash
    from dash import dcc

    app = dash.Dash(__name__, serve_locally=True, meta_tags=plotlyjs_meta())
    app.layout = dcc.Graph(id="g")
    return app.server.test_client()


def test_the_page_names_a_fingerprinted_plotly_js_the_browser_may_keep_for_a_year():
    client = _client()
    page = client.get("/").get_data(as_text=True)
    found = re.search(rf'<meta name="{META_NAME}" content="([^"]+)"', page)
    assert found, "no plotly.js meta tag in the page"
    path = found.group(1)
    # the version and the bundle's modification time are in the name: a new plotly, a new URL
    version = re.sub(r"[^\w-]", "_", plotly.__version__)
    assert path == f"plotly/package_data/plotly.v{version}m{int(os.stat(BUNDLE).st_mtime)}.min.js"
    resp = client.get("/_dash-component-suites/" + path)
    assert resp.status_code == 200
    assert resp.cache_control.max_age == 31536000
    with open(BUNDLE, "rb") as fh:
        assert resp.data == fh.read()
    # Dash's plain URL (what dcc.Graph asks for by itself) is revalidated on every visit (ETag, no max-age)
    plain = client.get("/_dash-component-suites/plotly/package_data/plotly.min.js")
    assert plain.status_code == 200 and plain.cache_control.max_age is None


def test_no_meta_tag_when_plotly_has_no_bundle(monkeypatch):
    monkeypatch.setattr(os, "stat", lambda *_a, **_k: (_ for _ in ()).throw(FileNotFoundError()))
    assert plotlyjs_path() is None
    assert plotlyjs_meta() == []
