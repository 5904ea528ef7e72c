"""Item images: http(s) URLs as they are, local files only from a dataset's images folder.

A catalogue's ``image_url`` is either an ``http(s)://`` URL (the browser loads it) or a path
relative to ``<data dir>/datasets/<dataset>/images/``, which the app serves at
``/media/<dataset>/<path>`` (:func:`register_media`) from that folder only: the path is
resolved (symlinks followed) before the check, so neither ``..`` nor a link can lead out,
and anything refused gets the same 404 whether or not it exists. A broken or missing image
shows a placeholder in the browser (``assets/image_fallback.js``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from recsys.config import data_dir
from recsys.errors import DataValidationError

MEDIA_PREFIX = "/media"
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
}
_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def images_dir(dataset: str, root: str | os.PathLike[str] | None = None) -> Path:
    """``<data dir>/datasets/<dataset>/images`` (it may not exist)."""
    if not isinstance(dataset, str) or not _DATASET.match(dataset) or ".." in dataset:
        raise DataValidationError(f"'{dataset}' is not a dataset name")
    return data_dir(root) / "datasets" / dataset / "images"


def resolve_image(dataset: str, relpath: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The image file ``relpath`` inside the dataset's images folder, or DataValidationError
    (one message for outside, missing, not a file or not an image type)."""
    refused = DataValidationError("no such image in the dataset's images folder", file=str(relpath)[:200])
    base = images_dir(dataset, root)
    if not isinstance(relpath, str) or not relpath or "\x00" in relpath or len(relpath) > 1024:
        raise refused
    try:
        base_real = base.resolve(strict=True)
        real = (base / relpath).resolve(strict=True)
    except (OSError, RuntimeError):
        raise refused from None
    if not real.is_relative_to(base_real) or real == base_real or not real.is_file():
        raise refused
    if real.suffix.lower() not in IMAGE_TYPES:
        raise refused
    return real


def image_src(value: Any, dataset: str | None) -> str | None:
    """What an ``<img src>`` should hold for a catalogue ``image_url``: an http(s) URL as is,
    a relative local path as ``/media/<dataset>/<path>``; None for anything else."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith(("http://", "https://")):
        return text
    if dataset and "://" not in text and not text.startswith(("/", "\\")) and ".." not in Path(text).parts:
        return f"{MEDIA_PREFIX}/{quote(dataset)}/{quote(text)}"
    return None


def register_media(server: Any, root: str | os.PathLike[str] | None = None) -> None:
    """Serve ``GET /media/<dataset>/<path>`` from the dataset's images folder only."""
    import flask

    def media(dataset: str, relpath: str) -> Any:
        try:
            path = resolve_image(dataset, relpath, root)
        except DataValidationError:
            return flask.Response("image not found", status=404, mimetype="text/plain")
        response = flask.send_file(path, mimetype=IMAGE_TYPES[path.suffix.lower()], max_age=3600)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    server.add_url_rule(f"{MEDIA_PREFIX}/<dataset>/<path:relpath>", "recsys_media", media, methods=["GET"])
