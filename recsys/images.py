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
    if not isinstance(dataset, str) or not _DATASET.fullmatch(dataset) or ".." in dataset:
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


def _is_local(value: Any) -> bool:
    """A catalogue ``image_url`` that names a file of the images folder (not a URL, not empty)."""
    return isinstance(value, str) and bool(value.strip()) and "://" not in value


def local_image_summary(dataset: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """How many catalogue items of ``dataset`` have an image file in its images folder.

    Returns ``{"folder", "items", "local_paths", "with_image", "missing_examples"}``:
    catalogue rows, rows whose ``image_url`` is a local path, and those whose file is in the
    folder (listed once, not resolved row by row, so a large catalogue is counted quickly).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from recsys.data.schema import _stored_folder

    folder = images_dir(dataset, root)
    table = pq.read_table(_stored_folder(dataset, data_dir(root)) / "catalog.parquet")
    n = table.num_rows
    out: dict[str, Any] = {
        "folder": str(folder),
        "items": n,
        "local_paths": 0,
        "with_image": 0,
        "missing_examples": [],
    }
    if "image_url" not in table.column_names:
        return out
    values = [v.strip() if isinstance(v, str) else "" for v in table.column("image_url").to_pylist()]
    local = [v for v in values if _is_local(v)]
    out["local_paths"] = len(local)
    files: set[str] = set()
    if folder.is_dir():
        for dirpath, _dirs, names in os.walk(folder):
            rel = Path(dirpath).relative_to(folder)
            files.update(
                (rel / name).as_posix() for name in names if Path(name).suffix.lower() in IMAGE_TYPES
            )
    found = (
        pc.is_in(pa.array(local, pa.string()), value_set=pa.array(sorted(files), pa.string()))
        if local and files
        else None
    )
    hits = found.to_pylist() if found is not None else [False] * len(local)
    out["with_image"] = int(sum(hits))
    out["missing_examples"] = [v for v, ok in zip(local, hits, strict=True) if not ok][:5]
    return out


def resolve_catalog_images(catalog: Any, dataset: str, root: str | os.PathLike[str] | None = None) -> Any:
    """A copy of ``catalog`` whose local ``image_url`` paths are absolute paths into the dataset's
    images folder (what the image feature extractor reads); a path that leads out of the folder
    or to no image becomes "" (the extractor counts it as having no image). URLs stay."""
    if "image_url" not in catalog:
        return catalog

    def one(value: Any) -> Any:
        if not _is_local(value):
            return value
        try:
            return str(resolve_image(dataset, value.strip(), root))
        except DataValidationError:
            return ""

    out = catalog.copy()
    out["image_url"] = [one(v) for v in catalog["image_url"].tolist()]
    return out
