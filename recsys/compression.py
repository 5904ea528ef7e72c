"""Compressed HTTP responses for the dashboard and the REST API (Flask-Compress).

What a browser downloads on a first Map visit at 100k items: plotly.js 4.8 MB, the other
bundles about 3 MB, the figure 1.7 MB. Over a network that is seconds; compressed with zstd
(level 3, Flask-Compress's first choice when the browser offers it) plotly.js is 1.44 MB in
about 60 ms of server CPU and the figure 1.08 MB in about 30 ms (gzip at level 6, Dash's own
``compress=True``, takes 470 ms and 230 ms for the same; measured on this machine). Brotli and
gzip serve browsers without zstd.

* Replies under :data:`MIN_SIZE` bytes (one TCP segment) go as they are, without a
  ``Vary: Accept-Encoding`` (they never vary by it), before Flask-Compress looks at them.
* Only JSON, JavaScript and CSS are compressed, never HTML: the login page carries the CSRF
  token next to text the user typed, the setting a BREACH attack needs.
* Static bundles (Dash's ``_dash-component-suites/`` and ``assets/``) are compressed once per
  URL (their URLs carry the version or modification time) and kept in memory
  (:class:`StaticCache`); callback answers are compressed each time.
* Without Flask-Compress installed the app runs uncompressed and says so once in the log.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

logger = logging.getLogger(__name__)

#: Response types worth compressing (text formats that are not HTML, see the module docstring).
MIMETYPES = ("application/json", "application/javascript", "text/javascript", "text/css")
#: URL path parts of files that never change under the same URL (Dash fingerprints them).
STATIC_PARTS = ("/_dash-component-suites/", "/assets/")
#: Smaller replies go uncompressed: one that fits in one TCP segment (1460 payload bytes on
#: Ethernet) saves no packet when compressed, and compressing it costs more CPU than the rest of
#: a REST similar-items answer (~0.9 KB at k=10; Flask-Compress's default threshold is 500 B).
MIN_SIZE = 1400
#: Bytes of compressed static files kept in memory (all bundles of every encoding fit).
STATIC_CACHE_BYTES = 64 * 1024 * 1024


class StaticCache:
    """Flask-Compress cache backend that keeps the compressed bodies of static files only.

    Flask-Compress asks the cache for every compressed response (key ``"algorithm;path"``);
    other keys are neither stored nor found, so callback answers are never served stale.
    Least recently used entries go first once ``max_bytes`` is exceeded."""

    def __init__(self, max_bytes: int = STATIC_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @staticmethod
    def cacheable(key: str) -> bool:
        return any(part in key for part in STATIC_PARTS)

    def get(self, key: str) -> bytes | None:
        if not self.cacheable(key):
            return None
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        if not self.cacheable(key) or len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._size -= len(old) if old is not None else 0
            self._items[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


def _cache_key(request: Any) -> str:
    return request.full_path


def enable_compression(server: Any) -> bool:
    """Compress ``server``'s (a Flask app's) JSON, JavaScript and CSS responses; False when
    Flask-Compress is not installed. Settings already in ``server.config`` are kept."""
    try:
        from flask_compress import Compress
    except ImportError:
        logger.warning("Flask-Compress is not installed: responses are sent uncompressed")
        return False
    server.config.setdefault("COMPRESS_MIMETYPES", list(MIMETYPES))
    server.config.setdefault("COMPRESS_ALGORITHM", ["zstd", "br", "gzip"])
    server.config.setdefault("COMPRESS_MIN_SIZE", MIN_SIZE)
    server.config.setdefault("COMPRESS_CACHE_BACKEND", StaticCache)
    server.config.setdefault("COMPRESS_CACHE_KEY", _cache_key)
    register = server.config.get("COMPRESS_REGISTER", True)
    server.config["COMPRESS_REGISTER"] = False
    compress = Compress(server)
    server.config["COMPRESS_REGISTER"] = register
    if register:
        min_size = int(server.config["COMPRESS_MIN_SIZE"])

        @server.after_request
        def _compress(response: Any) -> Any:
            # A body under the threshold is never compressed, so it does not vary by
            # Accept-Encoding either: return it before Flask-Compress parses any header.
            size = response.content_length
            if size is not None and size < min_size and not response.is_streamed:
                return response
            return compress.after_request(response)

        _compress.compress = compress  # type: ignore[attr-defined]  # its cache, for inspection

    return True
