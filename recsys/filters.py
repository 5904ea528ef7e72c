"""Post-filter configuration (validated), its files, and versioned presets.

A :class:`FilterConfig` says which neighbours of a seed item may be shown.
:mod:`recsys.search` compiles it to boolean masks and applies it; this module
only validates, serialises and stores it.

Rules and their exact meaning
-----------------------------
Seed-independent (compiled once per config):

- ``price_min`` / ``price_max``: absolute bounds, inclusive. Items with a
  missing price are excluded while either bound is set.
- ``brands_allow``: when not empty, only items of these brands (an item with
  no brand is excluded). ``brands_deny``: items of these brands are excluded.
  Brand names match case-insensitively, surrounding spaces ignored.
- ``exclude_adult``: no adult items at all.

Seed-dependent (compiled per seed; skipped, and listed in
``SearchResult.skipped_rules``, when the seed's attribute is unknown):

- ``same_category``: same category path prefix at ``category_level``
  (0 = top level; a level deeper than the path compares the whole path).
  Skipped when the seed has no category.
- ``same_gender``: exactly the same gender value. Skipped when the seed has no
  gender.
- ``price_ratio_min`` / ``price_ratio_max``: ``price_ratio_min * seed_price <=
  price <= price_ratio_max * seed_price``. Skipped when the seed's price is
  missing or not positive; items with a missing price are excluded while the
  band applies.
- ``banned_brand_pairs``: symmetric: for a pair (A, B) a seed of brand A never
  shows brand B and a seed of brand B never shows brand A.
- Always on, not configurable: adult items are never shown next to a
  non-adult seed (nor for a query without a seed item).
- ``exclude_seed`` (default True): the seed itself is not shown.
- ``exclude_same_title``: items whose normalised title (case-folded, spaces
  collapsed) equals the seed's are not shown (skipped for an empty title).
- ``in_stock_only``: items whose catalogue ``in_stock`` is false are not shown
  (unknown stock is); skipped (listed in ``skipped_rules``) on a catalogue
  without an ``in_stock`` column.

On the ranked list (after the masks):

- ``min_similarity``: results scoring below it are dropped.
- ``max_per_brand``: walking the ranked list, at most this many items per
  brand are kept (items without a brand are not limited).

Merchandising rules (models and exact meaning in :mod:`recsys.merch`):
``do_not_associate`` (item pairs never shown together), ``pins`` (item X at
position p for a seed or a category's seeds), ``boost`` / ``bury`` (score
changes by an attribute condition). Empty by default, and left out of the
canonical form and hash while empty.

Serialisation: ``to_json``/``to_yaml`` write an envelope
``{"format": "recsys-filter", "version": 1, "hash": ..., "filters": {...}}``;
``from_json``/``from_yaml``/``from_dict`` accept that envelope or a bare
mapping of fields. :meth:`FilterConfig.config_hash` is a stable content hash
(independent of key and list order; a field added with a default changes no hash).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from recsys._io import atomic_write_json, file_lock
from recsys.errors import DamagedPresetError, FilterConfigError, PresetNotFoundError, StoredDataError
from recsys.merch import (
    Adjust,
    PairBan,
    Pin,
    check_adjustments,
    check_pair_bans,
    check_pins,
    clean_brands,
)

logger = logging.getLogger(__name__)

FORMAT_NAME = "recsys-filter"
FORMAT_VERSION = 1
_ENVELOPE_KEYS = {"format", "version", "hash", "filters", "name", "preset_version", "created"}


class _SearchKey:
    """A tuple of a config's fields with its hash computed once (:meth:`FilterConfig.search_key`):
    a tuple hashes all its items at every dict look-up (a 316-brand list: about 5 us a query)."""

    __slots__ = ("fields", "_hash")

    def __init__(self, fields: tuple) -> None:
        self.fields = fields
        self._hash = hash(fields)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return other.__class__ is _SearchKey and self._hash == other._hash and self.fields == other.fields

    def __repr__(self) -> str:
        return f"_SearchKey({self.fields!r})"


def _norm_brand(name: str) -> str:
    return " ".join(str(name).split()).casefold()


class FilterConfig(BaseModel):
    """Which neighbours of a seed may be shown (see the module docstring).

    All fields are optional; the defaults exclude only the seed (and adult
    items next to a non-adult seed, which is always on).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    same_category: bool = False
    category_level: int = Field(0, ge=0, le=32)
    same_gender: bool = False
    price_ratio_min: float | None = Field(None, ge=0)
    price_ratio_max: float | None = Field(None, gt=0)
    price_min: float | None = Field(None, ge=0)
    price_max: float | None = Field(None, ge=0)
    brands_allow: list[str] = Field(default_factory=list)
    brands_deny: list[str] = Field(default_factory=list)
    banned_brand_pairs: list[tuple[str, str]] = Field(default_factory=list)
    exclude_adult: bool = False
    min_similarity: float | None = Field(None, ge=-1.0, le=1.0)
    max_per_brand: int | None = Field(None, ge=1)
    exclude_seed: bool = True
    exclude_same_title: bool = False
    in_stock_only: bool = False
    do_not_associate: list[PairBan] = Field(default_factory=list)
    pins: list[Pin] = Field(default_factory=list)
    boost: list[Adjust] = Field(default_factory=list)
    bury: list[Adjust] = Field(default_factory=list)

    _hash: str | None = PrivateAttr(default=None)
    #: (brands_allow, brands_deny) as matched: :meth:`norm_brands`
    _norm: tuple[tuple[str, ...], tuple[str, ...]] | None = PrivateAttr(default=None)
    #: :meth:`search_key`, once computed
    _skey: Any = PrivateAttr(default=None)

    @field_validator("brands_allow", "brands_deny")
    @classmethod
    def _clean_brands(cls, value: list[str]) -> list[str]:
        return clean_brands(value)

    @field_validator("do_not_associate")
    @classmethod
    def _clean_bans(cls, value: list[PairBan]) -> list[PairBan]:
        return check_pair_bans(value)

    @field_validator("pins")
    @classmethod
    def _clean_pins(cls, value: list[Pin]) -> list[Pin]:
        return check_pins(value)

    @field_validator("boost")
    @classmethod
    def _check_boost(cls, value: list[Adjust]) -> list[Adjust]:
        return check_adjustments(value, +1, "boost")

    @field_validator("bury")
    @classmethod
    def _check_bury(cls, value: list[Adjust]) -> list[Adjust]:
        return check_adjustments(value, -1, "bury")

    @field_validator("banned_brand_pairs")
    @classmethod
    def _clean_pairs(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], tuple[str, str]] = {}
        for i, (a, b) in enumerate(value):
            a, b = " ".join(str(a).split()), " ".join(str(b).split())
            if not a or not b:
                raise ValueError(f"pair {i} has an empty brand name")
            key = tuple(sorted((a.casefold(), b.casefold())))
            pair = (a, b) if a.casefold() <= b.casefold() else (b, a)
            seen.setdefault(key, pair)  # type: ignore[arg-type]
        return [seen[key] for key in sorted(seen)]

    @model_validator(mode="after")
    def _cross_field(self) -> FilterConfig:
        problems = []
        if (
            self.price_ratio_min is not None
            and self.price_ratio_max is not None
            and self.price_ratio_min > self.price_ratio_max
        ):
            problems.append(
                f"price_ratio_min ({self.price_ratio_min}) must be <= price_ratio_max "
                f"({self.price_ratio_max})"
            )
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            problems.append(f"price_min ({self.price_min}) must be <= price_max ({self.price_max})")
        allow, deny = self.norm_brands()
        both = sorted(set(allow) & set(deny))
        if both:
            problems.append(
                f"brands_allow and brands_deny both list {', '.join(both)}: keep each brand in one"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- identity ---------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        # compare fields only (the cached hash is a private attribute)
        if not isinstance(other, FilterConfig):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  # lists inside: not hashable; use config_hash()

    def canonical(self) -> dict[str, Any]:
        """The fields as plain JSON types, in a fixed order: every field of format 1
        (:data:`_HASH_BASE_V1`), and each field added since only when it differs from its
        default, so a config that does not use a new rule keeps the file content and the
        hash it had before that rule existed."""
        data = self.model_dump(mode="json")
        defaults = _defaults_of(type(self))
        return {k: v for k, v in data.items() if k in _HASH_BASE_V1 or v != defaults.get(k, _MISSING)}

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> FilterConfig:
        """A copy (pydantic's), whose content hash is computed afresh: a copy with ``update``
        must not keep the hash of the config it came from (the searchers' compiled-filter
        cache and precomputed tables are keyed by it). ``update`` is not validated (as in
        pydantic): build changed configs with :meth:`from_dict` where values come from users."""
        copy = super().model_copy(update=update, deep=deep)
        copy._hash = None
        copy._norm = None
        copy._skey = None
        return copy

    def norm_brands(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``brands_allow`` and ``brands_deny`` as they are matched (whitespace collapsed,
        case-folded), computed once per config: validation needs them, and so do the content hash
        and a search's first query (a 500-brand list cost a new filter's first query 1,000 calls,
        about 0.5 ms at 1M items, issue 18)."""
        got = self.__pydantic_private__.get("_norm")  # the dict itself: ``self._norm`` is pydantic's
        if got is not None:  # __getattr__ (3 us warm, 20 us or more with cold caches)
            return got
        got = (tuple(map(_norm_brand, self.brands_allow)), tuple(map(_norm_brand, self.brands_deny)))
        self._norm = got
        return got

    def search_key(self) -> Any:
        """A cheap key of the config's content for a searcher's caches (computed once per config).

        Configs whose fields are equal have equal keys; configs that differ only in list order
        or brand case (one :meth:`config_hash`) may not, which costs a searcher a cache miss, never
        a wrong hit. A new filter's first query looks its config up by this key instead of the
        content hash: the hash (pydantic's JSON dump, ``json.dumps``, SHA-256) cost 200 to 280 us
        of CPU with cold caches, this tuple 35 to 60 us (issue 18). Configs with nested rules
        (do-not-associate pairs, pins, boost, bury) use the content hash.
        """
        priv = self.__pydantic_private__
        got = priv.get("_skey")
        if got is not None:
            return got
        d = self.__dict__
        key: Any = None
        if not (d["do_not_associate"] or d["pins"] or d["boost"] or d["bury"]):
            try:
                key = _SearchKey((type(self), *[tuple(v) if v.__class__ is list else v for v in d.values()]))
            except TypeError:  # a subclass's field of unhashable values
                key = None
        if key is None:
            key = self.config_hash()
        priv["_skey"] = key
        return key

    def config_hash(self) -> str:
        """A stable content hash (16 hex digits) of the fields set to a non-default value.

        Independent of key order, list order and brand-name case (brands match
        case-insensitively), so equivalent configs share one hash. A field at
        its default does not enter the hash, so adding a field with a default
        changes no stored hash.

        Migration: hashes stored before this rule (presets' ``hash``,
        precomputed tables' ``preset_hash``) covered every field of format 1
        (:data:`_HASH_BASE_V1`), defaults included. Those fields therefore
        always enter the hash (at their default they are a constant), and
        fields added since enter it only when set: every config that format 1
        could express keeps exactly its old hash, with nothing to rewrite.
        """
        cached = self.__pydantic_private__.get("_hash")  # the dict itself: ``self._hash`` costs ~3 us
        if cached is not None:  # (pydantic's __getattr__), paid on every served request
            return cached
        if self._hash is None:
            self._hash = _content_hash(self)
        return self._hash

    def active_rules(self) -> list[str]:
        """Names of the rules this config switches on, from the rule table (for display)."""
        from recsys.search.rules import active_rules

        return active_rules(self)

    # -- serialisation ------------------------------------------------------------
    def envelope(self, **meta: Any) -> dict[str, Any]:
        """The dict written by :meth:`to_json` / :meth:`to_yaml`."""
        out = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "hash": self.config_hash()}
        out.update({k: v for k, v in meta.items() if v is not None})
        out["filters"] = self.canonical()
        return out

    def to_json(self, indent: int | None = 2, **meta: Any) -> str:
        """JSON text with ``format``, ``version``, ``hash`` and ``filters``."""
        return json.dumps(self.envelope(**meta), indent=indent)

    def to_yaml(self, **meta: Any) -> str:
        """YAML text with the same content as :meth:`to_json`."""
        return yaml.safe_dump(self.envelope(**meta), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_dict(cls, data: Any, source: str = "filter config") -> FilterConfig:
        """Validate a mapping (an envelope or bare fields).

        Raises
        ------
        FilterConfigError
            Names every invalid field (``err.fields`` lists them).
        """
        if isinstance(data, FilterConfig):
            return data
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _config_error(
                f"{source}: expected a mapping of filter fields, got {type(data).__name__}", []
            )
        fields = data
        stored_hash = None
        if "filters" in data or "format" in data:
            unknown = sorted(set(data) - _ENVELOPE_KEYS)
            if unknown:
                raise _config_error(f"{source}: unknown top-level key(s) {', '.join(unknown)}", unknown)
            if data.get("format", FORMAT_NAME) != FORMAT_NAME:
                raise _config_error(
                    f"{source}: format is {data.get('format')!r}, expected {FORMAT_NAME!r}", ["format"]
                )
            version = data.get("version", FORMAT_VERSION)
            if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
                raise _config_error(
                    f"{source}: version {version!r} is not supported (this library reads "
                    f"1..{FORMAT_VERSION})",
                    ["version"],
                )
            fields = data.get("filters") or {}
            stored_hash = data.get("hash")
            if not isinstance(fields, dict):
                raise _config_error(f"{source}: 'filters' must be a mapping", ["filters"])
        try:
            config = cls.model_validate(fields)
        except ValidationError as exc:
            raise _from_validation_error(exc, source) from None
        if stored_hash is not None and stored_hash != config.config_hash():
            logger.warning(
                "%s: stored hash %s does not match the content (%s); the file was edited by hand",
                source,
                stored_hash,
                config.config_hash(),
            )
        return config

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "filter config JSON") -> FilterConfig:
        """Parse JSON text written by :meth:`to_json` (or bare fields)."""
        return cls.from_dict(_parse_json(text, source), source)

    @classmethod
    def from_yaml(cls, text: str, source: str = "filter config YAML") -> FilterConfig:
        """Parse YAML text written by :meth:`to_yaml` (or bare fields)."""
        return cls.from_dict(_parse_yaml(text, source), source)


#: The fields of format 1 with their defaults, as ``config_hash`` hashed them before it
#: skipped fields added later at their default. Frozen: never edit, even when a default
#: changes or a field is added (see :meth:`FilterConfig.config_hash`).
_HASH_BASE_V1: dict[str, Any] = {
    "same_category": False,
    "category_level": 0,
    "same_gender": False,
    "price_ratio_min": None,
    "price_ratio_max": None,
    "price_min": None,
    "price_max": None,
    "brands_allow": [],
    "brands_deny": [],
    "banned_brand_pairs": [],
    "exclude_adult": False,
    "min_similarity": None,
    "max_per_brand": None,
    "exclude_seed": True,
    "exclude_same_title": False,
}
_MISSING = object()
_DEFAULTS: dict[type, dict[str, Any]] = {}


def _defaults_of(cls: type[FilterConfig]) -> dict[str, Any]:
    """The default of every field of ``cls``, as JSON types (computed once per class)."""
    if cls not in _DEFAULTS:
        _DEFAULTS[cls] = cls().model_dump(mode="json")
    return _DEFAULTS[cls]


#: per class: every field's default as stored on an instance (Python values), and the hash of
#: the config whose fields are all at their defaults
_PLAIN_DEFAULTS: dict[type, dict[str, Any]] = {}
_DEFAULT_HASH: dict[type, str] = {}


def plain_defaults(cls: type[FilterConfig]) -> dict[str, Any]:
    """Every field's default as stored on an instance of ``cls`` (Python values; computed once
    per class, read by one dict comparison: "is this config all defaults?")."""
    plain = _PLAIN_DEFAULTS.get(cls)
    if plain is None:
        plain = _PLAIN_DEFAULTS[cls] = dict(cls().__dict__)
    return plain


def prepare_defaults(cls: type[FilterConfig]) -> None:
    """Compute ``cls``'s per-class constants now (its defaults as stored and as JSON, the hash of
    the config at its defaults) instead of on the first search that needs them: each builds a
    config and the hash converts one to JSON, 100 to 350 us of the process's first query with
    cold caches (issue 18, s44-f). Idempotent; the searchers call it at their creation."""
    _defaults_of(cls)
    _content_hash(cls())


def _content_hash(cfg: FilterConfig) -> str:
    """:meth:`FilterConfig.config_hash`'s digest. The config whose fields are all at their
    defaults (the no-filter config that every page, request or bench case builds anew) hashes to
    one constant, computed once per class: 0.5 us against 15 us for converting its fields."""
    cls = type(cfg)
    plain = _PLAIN_DEFAULTS.get(cls)
    if plain is None:
        plain = plain_defaults(cls)
    if cfg.__dict__ == plain:
        digest = _DEFAULT_HASH.get(cls)
        if digest is None:
            digest = _DEFAULT_HASH[cls] = _digest(cfg)
        return digest
    return _digest(cfg)


def _digest(cfg: FilterConfig) -> str:
    """16 hex digits of SHA-256 over the config's hashed fields as sorted, compact JSON."""
    data = dict(_HASH_BASE_V1)  # a format-1 field that is ever removed hashes as before
    data.update(cfg.canonical())
    # brand names match case-insensitively, so they hash that way too
    allow, deny = cfg.norm_brands()  # the fields' own lists, in their order (as canonical())
    data["brands_allow"], data["brands_deny"] = list(allow), list(deny)
    data["banned_brand_pairs"] = [[_norm_brand(a), _norm_brand(b)] for a, b in data["banned_brand_pairs"]]
    for name in ("boost", "bury"):
        if name in data:
            data[name] = [{**a, "brands": [_norm_brand(b) for b in a["brands"]]} for a in data[name]]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_json(text: str | bytes, source: str) -> Any:
    """JSON text -> data; a syntax error becomes a FilterConfigError naming line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _config_error(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", []
        ) from None


def _parse_yaml(text: str, source: str) -> Any:
    """YAML text -> data (safe loader); a syntax error becomes a FilterConfigError naming where."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise _config_error(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}", []) from None


def _config_error(message: str, fields: list[str]) -> FilterConfigError:
    err = FilterConfigError(message)
    err.fields = list(fields)  # type: ignore[attr-defined]
    return err


_RULE_MODELS: dict[str, type[BaseModel]] = {
    "do_not_associate": PairBan,
    "pins": Pin,
    "boost": Adjust,
    "bury": Adjust,
}


def _from_validation_error(exc: ValidationError, source: str) -> FilterConfigError:
    names = list(FilterConfig.model_fields)
    parts, fields = [], []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            model = _RULE_MODELS.get(str(e["loc"][0])) if len(e.get("loc", ())) > 1 else None
            allowed = list(model.model_fields) if model is not None else names
            msg = f"unknown field (allowed: {', '.join(allowed)})"
        if loc:
            fields.append(str(e["loc"][0]))
            parts.append(f"{loc}: {msg}")
        else:
            mentioned = [n for n in names if re.search(rf"\b{n}\b", msg)]
            fields.extend(mentioned)
            parts.append(msg)
    return _config_error(f"{source} is invalid: " + "; ".join(parts), sorted(set(fields)))


# -- presets -------------------------------------------------------------------------
_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


def validate_preset_name(name: str) -> str:
    """Return the preset name if it is a safe file name, else raise FilterConfigError."""
    if (
        not isinstance(name, str)
        or not _PRESET_NAME.fullmatch(name)
        or name.endswith((" ", "."))
        or ".." in name
    ):
        raise _config_error(
            f"preset name {name!r} is invalid: use 1-64 letters, digits, spaces, '_', '.' or "
            "'-', starting with a letter or digit",
            ["name"],
        )
    return name


class PresetStore:
    """Named, versioned filter presets under ``<root>/presets/<name>.json``.

    Each file holds the whole history: ``{"name": ..., "versions": [{"version":
    1, "hash": ..., "created": ..., "filters": {...}}, ...]}``. Saving a config
    identical to the latest version does not create a new version. Writes are
    atomic (temporary file + rename) and serialised by a lock file, so two
    processes saving at once do not lose a version.

    Parameters
    ----------
    root : path-like
        The data directory (see :func:`recsys.config.data_dir`).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # made by the first write (:meth:`_locked`), never by a read: a viewer's visit creates nothing
        self.dir = Path(root) / "presets"

    def _path(self, name: str) -> Path:
        return self.dir / f"{validate_preset_name(name)}.json"

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """The store's write lock (every write holds it); makes the folder on the first write."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return file_lock(self.dir / ".lock")

    def _read(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        if not path.exists():
            known = ", ".join(p["name"] for p in self.list()) or "none"
            raise PresetNotFoundError(f"preset '{name}' not found in {self.dir} (known: {known})")
        from recsys.stored import PresetFile, read_stored, reason_of

        try:
            return read_stored(path, PresetFile)
        except FileNotFoundError:
            raise PresetNotFoundError(f"preset '{name}' not found in {self.dir}") from None
        except StoredDataError as exc:
            raise DamagedPresetError(
                f"preset '{name}' is damaged: {reason_of(exc)}; delete it and save it again"
            ) from None

    def damaged(self) -> list[dict[str, str]]:
        """``[{name, error}]`` of the preset files that cannot be read (:meth:`list` skips them)."""
        from recsys.stored import PresetFile, read_stored, reason_of

        out = []
        for path in sorted(self.dir.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                read_stored(path, PresetFile)
            except StoredDataError as exc:
                out.append({"name": path.stem, "error": reason_of(exc)})
            except FileNotFoundError:
                continue
        return out

    def _write(self, name: str, data: dict[str, Any]) -> None:
        atomic_write_json(self._path(name), data, f"preset '{name}'", default=None)

    def save(self, name: str, config: FilterConfig | dict[str, Any]) -> int:
        """Store ``config`` as the next version of preset ``name``.

        Returns
        -------
        int
            The version number (the latest one, unchanged, when ``config`` is
            identical to it).
        """
        config = FilterConfig.from_dict(config, f"preset '{name}'")
        validate_preset_name(name)
        with self._locked():
            return self._save_locked(name, config)

    def update(
        self, name: str, change: Callable[[FilterConfig | None], FilterConfig]
    ) -> tuple[int | None, int]:
        """Save ``change(latest config or None)`` as the next version, read and written under
        the lock (two editors adding a rule at once both keep theirs).

        Returns
        -------
        (version before or None for a new preset, version after)
        """
        validate_preset_name(name)
        with self._locked():
            path = self._path(name)
            before = int(self._read(name)["versions"][-1]["version"]) if path.exists() else None
            return before, self._save_locked(name, change)

    def _save_locked(
        self, name: str, change: Callable[[FilterConfig | None], FilterConfig] | FilterConfig
    ) -> int:
        """Append a version (the caller holds the lock); ``change`` is the config or a function
        of the latest one."""
        path = self._path(name)
        data = self._read(name) if path.exists() else {"name": name, "versions": []}
        versions = data["versions"]
        if callable(change):
            old = (
                FilterConfig.from_dict(versions[-1].get("filters"), f"preset '{name}'") if versions else None
            )
            config = FilterConfig.from_dict(change(old), f"preset '{name}'")
        else:
            config = change
        if versions and versions[-1].get("hash") == config.config_hash():
            return int(versions[-1]["version"])
        number = int(versions[-1]["version"]) + 1 if versions else 1
        versions.append(
            {
                "version": number,
                "hash": config.config_hash(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "filters": config.canonical(),
            }
        )
        self._write(name, data)
        logger.info("saved preset %s version %d", name, number)
        return number

    def _entry(self, name: str, version: int | None) -> dict[str, Any]:
        data = self._read(name)
        if version is None:
            return data["versions"][-1]
        for entry in data["versions"]:
            if entry.get("version") == version:
                return entry
        have = ", ".join(str(e.get("version")) for e in data["versions"])
        raise PresetNotFoundError(f"preset '{name}' has no version {version} (versions: {have})")

    def load(self, name: str, version: int | None = None) -> FilterConfig:
        """The config of preset ``name`` (latest version unless given).

        Raises
        ------
        PresetNotFoundError
            Unknown name or version.
        """
        entry = self._entry(name, version)
        return FilterConfig.from_dict(entry.get("filters"), f"preset '{name}' version {entry.get('version')}")

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every version of a preset: ``[{version, hash, created}]``, oldest first."""
        return [{k: e.get(k) for k in ("version", "hash", "created")} for e in self._read(name)["versions"]]

    def list(self) -> list[dict[str, Any]]:
        """``[{name, version, hash, updated}]`` of every readable preset (latest version), by name.

        Damaged files are skipped (and logged); :meth:`damaged` names them.
        """
        from recsys.stored import PresetFile, read_stored, reason_of

        out = []
        for path in sorted(self.dir.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                data = read_stored(path, PresetFile)
            except StoredDataError as exc:
                logger.warning("skipping damaged preset file %s: %s", path, reason_of(exc))
                continue
            except FileNotFoundError:  # deleted meanwhile
                continue
            last = data["versions"][-1]
            out.append(
                {
                    "name": data.get("name") or path.stem,
                    "version": int(last["version"]),
                    "hash": last.get("hash"),
                    "updated": last.get("created"),
                }
            )
        return out

    def delete(self, name: str) -> None:
        """Delete a preset and its history."""
        if not self._path(name).exists():  # before the lock, which would make the folder
            raise PresetNotFoundError(f"preset '{name}' not found in {self.dir}")
        with self._locked():
            path = self._path(name)
            if not path.exists():
                raise PresetNotFoundError(f"preset '{name}' not found in {self.dir}")
            path.unlink()
        logger.info("deleted preset %s", name)

    def export(self, name: str, fmt: str = "json", version: int | None = None) -> str:
        """The preset as JSON or YAML text (with its name and version)."""
        entry = self._entry(name, version)
        config = FilterConfig.from_dict(entry.get("filters"), f"preset '{name}'")
        meta = {"name": name, "preset_version": entry.get("version")}
        if fmt == "json":
            return config.to_json(**meta)
        if fmt == "yaml":
            return config.to_yaml(**meta)
        raise _config_error(f"export format must be 'json' or 'yaml', got {fmt!r}", ["fmt"])

    def import_(self, text: str, name: str | None = None, fmt: str = "json") -> tuple[str, int]:
        """Store exported text as a new version of ``name`` (default: the name inside).

        Returns
        -------
        (name, version)
        """
        if fmt == "json":
            data = _parse_json(text, "imported preset")
        elif fmt == "yaml":
            data = _parse_yaml(text, "imported preset")
        else:
            raise _config_error(f"import format must be 'json' or 'yaml', got {fmt!r}", ["fmt"])
        config = FilterConfig.from_dict(data, "imported preset")
        name = name or (data.get("name") if isinstance(data, dict) else None)
        if not name:
            raise _config_error("imported preset has no name: pass one", ["name"])
        return name, self.save(name, config)
