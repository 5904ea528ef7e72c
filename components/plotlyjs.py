"""Where the browser gets plotly.js from: a fingerprinted, cacheable URL (issue 14).

Dash's own loader for plotly.js (``dcc.Graph``) asks for the plain path
``_dash-component-suites/plotly/package_data/plotly.min.js``, which Dash serves with an ETag
and no ``max-age``: the browser keeps it but asks the server again (a 304) on every visit
before it may run it. The fingerprinted path (version and modification time in the name, as
Dash writes it for every other bundle) is served with a one-year ``max-age``, so a later visit
runs it from the cache at once; a new plotly version changes the URL. Either way Chromium
reuses plotly.js's compiled code from the third load on (V8's code cache lives with the
cache entry): in headless Chromium its evaluation then took about 0.3-0.5 s instead of
1.4-3.4 s (load 6-11). ``assets/map_plotly_preload.js`` reads the path from the page's
``recsys-plotlyjs`` meta tag.
"""

from __future__ import annotations

import importlib.util
import os

#: Name of the ``<meta>`` tag that carries the path (after ``_dash-component-suites/``).
META_NAME = "recsys-plotlyjs"
PLOTLY_JS = "package_data/plotly.min.js"


def plotlyjs_path() -> str | None:
    """``plotly/package_data/plotly.v<version>m<mtime>.min.js``: the path Dash serves with a
    one-year max-age (its ``build_fingerprint`` of plotly.py's bundle); None when plotly.py's
    bundle is not found (the preload then uses Dash's plain path)."""
    from dash.fingerprint import build_fingerprint

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.origin:
        return None
    bundle = os.path.join(os.path.dirname(spec.origin), PLOTLY_JS)
    try:
        modified = int(os.stat(bundle).st_mtime)
    except OSError:
        return None
    from plotly import __version__

    return "plotly/" + build_fingerprint(PLOTLY_JS, __version__, modified)


def plotlyjs_meta() -> list[dict[str, str]]:
    """The meta tag for ``Dash(meta_tags=...)`` (none when the bundle is not found)."""
    path = plotlyjs_path()
    return [{"name": META_NAME, "content": path}] if path else []
