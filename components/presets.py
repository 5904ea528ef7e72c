"""Filter presets in the UI: save under a name, load, delete, download as JSON/YAML, upload.

``preset_bar(panel, names, selected)`` draws the controls; their ids are pattern-matching
dicts ``{"type": PRESET_*, "panel": panel}`` so the page that owns the filter panel wires
them to its controls. The helpers below are the plain-Python halves the callbacks call
(each one wraps one :class:`recsys.filters.PresetStore` method and turns its errors into a
message for the page).
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.forms import hidden_label
from recsys.errors import FilterConfigError, PresetNotFoundError, RecsysError
from recsys.filters import FilterConfig, PresetStore

PRESET_SELECT = "preset-select"
PRESET_NAME = "preset-name"
PRESET_SAVE = "preset-save"
PRESET_DELETE = "preset-delete"
PRESET_JSON = "preset-download-json"
PRESET_YAML = "preset-download-yaml"
PRESET_DOWNLOAD = "preset-download"
PRESET_UPLOAD = "preset-upload"
PRESET_MESSAGE = "preset-message"

MAX_UPLOAD_BYTES = 256 * 1024


def pid(kind: str, panel: str) -> dict[str, str]:
    """The id of one preset control of a panel."""
    return {"type": kind, "panel": panel}


def preset_names(store: PresetStore) -> list[str]:
    """Names of the stored presets, sorted."""
    names = []
    for entry in store.list():
        names.append(entry["name"] if isinstance(entry, dict) else str(entry))
    return sorted(names)


def preset_options(store: PresetStore) -> list[dict[str, str]]:
    """Dropdown options of the stored presets."""
    return [{"label": n, "value": n} for n in preset_names(store)]


def download_preset(store: PresetStore, name: str, fmt: str) -> dict[str, Any]:
    """A ``dcc.Download`` payload for a stored preset in ``fmt`` ("json" or "yaml").

    Raises
    ------
    PresetNotFoundError
        When no preset of that name exists.
    """
    fmt = fmt.lower()
    if fmt not in ("json", "yaml"):
        raise FilterConfigError(f"unknown preset format '{fmt}': use json or yaml")
    text = store.export(name, fmt)
    ext = "yaml" if fmt == "yaml" else "json"
    return {
        "content": text,
        "filename": f"{name}.{ext}",
        "type": "application/json" if ext == "json" else "text/yaml",
    }


def decode_upload(contents: str, filename: str | None) -> tuple[str, str]:
    """``dcc.Upload`` contents (a data URL) -> (text, format guessed from the file name).

    Raises
    ------
    FilterConfigError
        When the upload is not a readable UTF-8 text file of a sensible size.
    """
    if not contents or "," not in contents:
        raise FilterConfigError(f"{filename or 'upload'}: empty or unreadable upload")
    _, _, payload = contents.partition(",")
    try:
        raw = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise FilterConfigError(f"{filename or 'upload'}: not a valid upload ({exc})") from exc
    if len(raw) > MAX_UPLOAD_BYTES:
        raise FilterConfigError(f"{filename}: {len(raw):,} bytes is too large for a preset (max 256 KiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FilterConfigError(f"{filename}: not a UTF-8 text file; upload a .json or .yaml preset") from exc
    if not text.strip():
        raise FilterConfigError(f"{filename or 'upload'}: the file is empty; upload a .json or .yaml preset")
    suffix = Path(filename or "").suffix.lower()
    fmt = "yaml" if suffix in (".yaml", ".yml") else "json" if suffix == ".json" else ""
    if not fmt:
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
    return text, fmt


def import_upload(store: PresetStore, contents: str, filename: str | None) -> tuple[str, FilterConfig]:
    """Store an uploaded preset file; return its name and config.

    The name comes from the file (its ``name`` field, else the file name without suffix).

    Raises
    ------
    FilterConfigError
        When the file is not a valid preset (the message names the file and the field).
    """
    text, fmt = decode_upload(contents, filename)
    fallback = (
        re.sub(r"[^A-Za-z0-9 _.\-]", "-", Path(filename or "uploaded").stem).strip(" .-_") or "uploaded"
    )
    label = filename or "upload"
    try:
        try:
            name, _version = store.import_(text, name=None, fmt=fmt)
        except FilterConfigError as exc:
            if "has no name" not in str(exc):
                raise
            name, _version = store.import_(text, name=fallback[:64], fmt=fmt)
    except FilterConfigError as exc:
        raise FilterConfigError(f"{label}: {exc}") from exc
    except RecsysError:
        raise
    except Exception as exc:  # odd files the parsers choke on in unexpected ways
        raise FilterConfigError(f"{label}: not a valid {fmt.upper()} preset ({exc})") from exc
    return name, store.load(name)


def preset_bar(panel: str, names: list[str], selected: str | None = None) -> html.Div:
    """Controls to save/load/delete/download/upload presets of a filter panel.

    Parameters
    ----------
    panel : str
        The filter panel these presets belong to (``"explore"``).
    names : list of str
        Stored preset names (dropdown options).
    selected : str, optional
        Preset selected at first render (e.g. from the URL).
    """
    return html.Div(
        [
            html.Div(
                [
                    dcc.Dropdown(
                        id=pid(PRESET_SELECT, panel),
                        options=[{"label": n, "value": n} for n in names],
                        value=selected if selected in names else None,
                        placeholder="Load a preset…",
                        className="preset-select",
                    ),
                    dbc.Button(
                        "Delete",
                        id=pid(PRESET_DELETE, panel),
                        className="editor-only",
                        color="danger",
                        outline=True,
                        size="sm",
                        n_clicks=0,
                        title="delete the selected preset",
                    ),
                ],
                className="preset-row",
            ),
            html.Div(
                [
                    hidden_label("preset name", pid(PRESET_NAME, panel)),
                    dbc.Input(
                        id=pid(PRESET_NAME, panel),
                        placeholder="name, e.g. same-category-mid-price",
                        size="sm",
                        value=selected or "",
                        debounce=False,
                    ),
                    dbc.Button(
                        "Save",
                        id=pid(PRESET_SAVE, panel),
                        color="primary",
                        size="sm",
                        n_clicks=0,
                        className="editor-only",
                    ),
                ],
                # the name is only for saving: a viewer saw a name field with no Save beside it
                className="preset-row editor-only",
            ),
            html.Div(  # Save, Delete and Upload are hidden for a viewer, who was not told (s41-w)
                "Viewer: saving, deleting and uploading presets need the editor role.",
                className="small text-muted viewer-only preset-viewer-note",
            ),
            html.Div(
                [
                    dbc.ButtonGroup(
                        [
                            dbc.Button(
                                fmt,
                                id=pid(button, panel),
                                color="secondary",
                                outline=True,
                                size="sm",
                                n_clicks=0,
                                title=f"download the selected preset as {fmt}",
                            )
                            for fmt, button in (("JSON", PRESET_JSON), ("YAML", PRESET_YAML))
                        ],
                        size="sm",
                    ),
                    dcc.Upload(
                        html.Span(["⇪ Upload preset"]),
                        id=pid(PRESET_UPLOAD, panel),
                        accept=".json,.yaml,.yml",
                        max_size=MAX_UPLOAD_BYTES,
                        className="preset-upload editor-only",
                    ),
                ],
                className="preset-row",
            ),
            dcc.Download(id=pid(PRESET_DOWNLOAD, panel)),
            html.Div(id=pid(PRESET_MESSAGE, panel), className="preset-message"),
        ],
        className="preset-bar",
    )


def message(text: str, color: str = "success") -> dbc.Alert:
    """A small dismissable alert for the preset bar."""
    return dbc.Alert(
        text,
        color=color,
        dismissable=True,
        className="py-1 px-2 mb-0 mt-2 small",
        duration=6000 if color == "success" else None,
    )


def safe_load(store: PresetStore, name: str) -> tuple[FilterConfig | None, str | None]:
    """(config, None) or (None, error message) for a preset name."""
    try:
        return store.load(name), None
    except PresetNotFoundError as exc:
        return None, str(exc)
    except FilterConfigError as exc:
        return None, f"preset '{name}' is invalid: {exc}"
