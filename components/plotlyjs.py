"""Which plotly.js the browser gets, from a fingerprinted, cacheable URL (issue 14).

``dcc.Graph`` loads plotly.js itself, when the first graph mounts, from Dash's plain path to
plotly.py's full bundle (4.8 MB, every trace type), unless ``window.Plotly`` is already set.
``assets/plotly_loader.js`` sets it on every page to a lazy stand-in that loads the path named
in the page's ``recsys-plotlyjs`` meta tag when a graph first asks for it (on a document that
opens the Map, at once): the trimmed bundle of :mod:`components.plotly_bundle` (1.47 MB), or,
when that file is missing, plotly.py's full bundle. Pages without graphs load neither.

Both paths are fingerprinted as Dash writes them for every other bundle (version and content
hash or modification time in the name), so Dash serves them with a one-year ``max-age``: a
later visit runs plotly.js from the cache without first asking the server (Dash's plain path is
revalidated, a 304, on every visit). Chromium reuses the compiled code from the third load on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from typing import Any

from components import plotly_bundle

#: Name of the ``<meta>`` tag that carries the path (after ``_dash-component-suites/``).
META_NAME = "recsys-plotlyjs"
PLOTLY_JS = "package_data/plotly.min.js"
#: Dash's component-suites namespace of the trimmed bundle (the package that holds it).
BUNDLE_NAMESPACE = plotly_bundle.__name__
BUNDLE_FILE = os.path.join(os.path.dirname(plotly_bundle.__file__), plotly_bundle.BUNDLE)


@lru_cache(maxsize=4)
def _content_hash(path: str, modified: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def bundle_path() -> str | None:
    """``components.plotly_bundle/plotly-recsys.v<version>m<sha256>.min.js``: the trimmed bundle
    under a name that changes with its content; None when the file is missing."""
    from dash.fingerprint import build_fingerprint

    try:
        st = os.stat(BUNDLE_FILE)
    except OSError:
        return None
    digest = _content_hash(BUNDLE_FILE, int(st.st_mtime), st.st_size)
    return f"{BUNDLE_NAMESPACE}/" + build_fingerprint(plotly_bundle.BUNDLE, plotly_bundle.__version__, digest)


def full_plotlyjs_path() -> str | None:
    """``plotly/package_data/plotly.v<version>m<mtime>.min.js``: plotly.py's full bundle under the
    path Dash serves with a one-year max-age (its ``build_fingerprint``); None when not found."""
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


def plotlyjs_path() -> str | None:
    """The path the page names: the trimmed bundle, else plotly.py's full one, else None (then
    ``dcc.Graph`` loads Dash's plain path by itself)."""
    return bundle_path() or full_plotlyjs_path()


def plotlyjs_meta() -> list[dict[str, str]]:
    """The meta tag for ``Dash(meta_tags=...)`` (none when no bundle is found)."""
    path = plotlyjs_path()
    return [{"name": META_NAME, "content": path}] if path else []


def register_plotlyjs(app: Any) -> None:
    """Let Dash's component-suites route serve the trimmed bundle (it serves only registered
    paths; registered at start, so every worker serves it before it has rendered a page)."""
    if os.path.exists(BUNDLE_FILE):
        app.registered_paths[BUNDLE_NAMESPACE].add(plotly_bundle.BUNDLE)
