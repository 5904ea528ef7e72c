"""Merchandising rules: the data models of four :class:`recsys.filters.FilterConfig` fields.

A merchandiser corrects a list with rules that name items, not attributes:

- ``do_not_associate`` (:class:`PairBan`): ``item_id`` is never shown for ``seed``; unless
  ``one_way``, ``seed`` is never shown for ``item_id`` either.
- ``pins`` (:class:`Pin`): for ``seed`` (or for every seed whose category path is under
  ``category``), ``item_id`` is placed at ``position`` (1-based). A pinned item still obeys
  the other filters (a pin never shows an adult item next to a non-adult seed).
- ``boost`` / ``bury`` (:class:`Adjust`): items matching every given condition (brand in
  ``brands``, category under ``category``, price in ``[price_min, price_max]``, catalogue
  ``column`` in ``values``) get ``score * multiplier + shift`` before the cut to k. A boost
  raises (``multiplier >= 1``, ``shift >= 0``), a bury lowers (``multiplier <= 1``,
  ``shift <= 0``); neither may be neutral.

This module only validates and normalises the rules (how search applies them lives in
:mod:`recsys.search`). In a preset they are written inside ``filters``, e.g.
``{"pins": [{"seed": "P000123", "item_id": "P000456", "position": 1}]}``; the fields default
to empty lists and are left out of a config's canonical form (and hash) while empty, so
presets saved before these rules existed keep their content and hash.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The FilterConfig fields this module defines, in display order.
MERCH_FIELDS: tuple[str, ...] = ("do_not_associate", "pins", "boost", "bury")

#: Separator of category path levels (as in the catalogue: ``Women > Shoes > Running``).
CATEGORY_SEP = " > "


def clean_text(value: Any) -> str:
    """Surrounding spaces removed and inner runs of spaces collapsed."""
    return " ".join(str(value).split())


def clean_brands(value: list[str]) -> list[str]:
    """Brand names cleaned, de-duplicated case-insensitively, sorted (first spelling kept).

    Raises ValueError naming the entry index of an empty name.
    """
    seen: dict[str, str] = {}
    for i, name in enumerate(value):
        clean = clean_text(name)
        if not clean:
            raise ValueError(f"entry {i} is an empty brand name")
        seen.setdefault(clean.casefold(), clean)
    return [seen[key] for key in sorted(seen)]


def clean_category(value: str | None) -> str | None:
    """A category path with each level's spaces cleaned (``" Women >Shoes "`` -> ``Women > Shoes``)."""
    if value is None:
        return None
    parts = [clean_text(p) for p in str(value).split(">")]
    if not all(parts):
        raise ValueError(f"category {value!r} has an empty level")
    return CATEGORY_SEP.join(parts)


def _item_id(value: Any) -> str:
    clean = str(value).strip()
    if not clean:
        raise ValueError("an item id must not be empty")
    return clean


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class PairBan(_Rule):
    """``item_id`` is never shown for ``seed`` (nor ``seed`` for ``item_id`` unless ``one_way``)."""

    seed: str
    item_id: str
    one_way: bool = False

    @field_validator("seed", "item_id")
    @classmethod
    def _ids(cls, value: Any) -> str:
        return _item_id(value)

    @model_validator(mode="after")
    def _distinct(self) -> PairBan:
        if self.seed == self.item_id:
            raise ValueError(f"seed and item_id are the same item ({self.seed})")
        return self

    def key(self) -> tuple[str, str, bool]:
        """Identity: a two-way ban of (A, B) is the same rule as (B, A)."""
        if self.one_way:
            return (self.seed, self.item_id, True)
        a, b = sorted((self.seed, self.item_id))
        return (a, b, False)


class Pin(_Rule):
    """``item_id`` at ``position`` (1-based) for ``seed``, or for every seed under ``category``."""

    seed: str | None = None
    category: str | None = None
    item_id: str
    position: int = Field(ge=1, le=1000)

    @field_validator("seed", "item_id")
    @classmethod
    def _ids(cls, value: Any) -> str | None:
        return None if value is None else _item_id(value)

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        return clean_category(value)

    @model_validator(mode="after")
    def _one_target(self) -> Pin:
        if (self.seed is None) == (self.category is None):
            raise ValueError("give exactly one of seed (one seed) or category (every seed under it)")
        if self.seed is not None and self.seed == self.item_id:
            raise ValueError(f"a seed cannot be pinned to its own list ({self.seed})")
        return self

    def target(self) -> tuple[str, str]:
        """``("seed", id)`` or ``("category", path)``."""
        return ("seed", self.seed) if self.seed is not None else ("category", self.category or "")


class Adjust(_Rule):
    """A score change for the items matching every given condition (see the module docstring)."""

    brands: list[str] = Field(default_factory=list)
    category: str | None = None
    price_min: float | None = Field(None, ge=0)
    price_max: float | None = Field(None, ge=0)
    column: str | None = None
    values: list[str] = Field(default_factory=list)
    multiplier: float = Field(1.0, gt=0, le=1e6)
    shift: float = Field(0.0, ge=-1e6, le=1e6)

    @field_validator("brands")
    @classmethod
    def _brands(cls, value: list[str]) -> list[str]:
        return clean_brands(value)

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        return clean_category(value)

    @field_validator("column")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        if value is None:
            return None
        clean = str(value).strip()
        if not clean:
            raise ValueError("column must not be empty (leave it out for no column condition)")
        return clean

    @field_validator("values")
    @classmethod
    def _values(cls, value: list[str]) -> list[str]:
        return sorted({str(v).strip() for v in value if str(v).strip()})

    @model_validator(mode="after")
    def _conditions(self) -> Adjust:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError(f"price_min ({self.price_min}) must be <= price_max ({self.price_max})")
        if (self.column is None) != (not self.values):
            raise ValueError("column and values go together: the column's values that match")
        if not self.conditions():
            raise ValueError(
                "give at least one condition (brands, category, price_min/price_max, column + values)"
            )
        return self

    def conditions(self) -> list[str]:
        """Names of the conditions set (all must hold for an item to match)."""
        out = []
        if self.brands:
            out.append("brands")
        if self.category is not None:
            out.append("category")
        if self.price_min is not None or self.price_max is not None:
            out.append("price")
        if self.column is not None:
            out.append("column")
        return out

    def direction(self) -> int:
        """+1 raises every score, -1 lowers every score, 0 neutral or mixed.

        Scores are similarities that may be negative; a multiplier above 1 raises a positive
        score only, so the direction is judged on the parameters as the contract states them.
        """
        up = self.multiplier >= 1 and self.shift >= 0
        down = self.multiplier <= 1 and self.shift <= 0
        neutral = self.multiplier == 1 and self.shift == 0
        if neutral:
            return 0
        return 1 if up else -1 if down else 0


def check_pair_bans(value: list[PairBan]) -> list[PairBan]:
    """De-duplicated and sorted; a two-way ban is written with the smaller id as ``seed``
    (it is symmetric: (A, B) and (B, A) are one rule)."""
    keys = {ban.key() for ban in value}
    return [PairBan(seed=a, item_id=b, one_way=one_way) for a, b, one_way in sorted(keys)]


def check_pins(value: list[Pin]) -> list[Pin]:
    """Sorted by (target, position); duplicates dropped; conflicting pins raise ValueError.

    Two pins of one seed (or one category) conflict when they put different items at one
    position, or one item at two positions.
    """
    at: dict[tuple[tuple[str, str], int], tuple[int, Pin]] = {}
    where: dict[tuple[tuple[str, str], str], tuple[int, Pin]] = {}
    problems = []
    keep: list[Pin] = []
    for i, pin in enumerate(value):
        target = pin.target()
        old = at.get((target, pin.position))
        if old is not None and old[1] == pin:
            continue
        if old is not None:
            problems.append(
                f"entry {i} pins {pin.item_id} at position {pin.position} of {target[0]} {target[1]}, "
                f"where entry {old[0]} pins {old[1].item_id}"
            )
            continue
        other = where.get((target, pin.item_id))
        if other is not None:
            problems.append(
                f"entry {i} pins {pin.item_id} at position {pin.position} of {target[0]} {target[1]}, "
                f"entry {other[0]} at position {other[1].position}"
            )
            continue
        at[(target, pin.position)] = where[(target, pin.item_id)] = (i, pin)
        keep.append(pin)
    if problems:
        raise ValueError("; ".join(problems))
    return sorted(keep, key=lambda p: (p.target(), p.position))


def check_adjustments(value: list[Adjust], sign: int, name: str) -> list[Adjust]:
    """Each entry moves scores the way ``name`` says (+1 boost raises, -1 bury lowers).

    The list order is kept (a score matching several entries is changed by each in turn).
    """
    problems = []
    for i, adj in enumerate(value):
        if adj.direction() != sign:
            want = "multiplier >= 1 and shift >= 0" if sign > 0 else "multiplier <= 1 and shift <= 0"
            problems.append(
                f"entry {i} (multiplier {adj.multiplier}, shift {adj.shift}) does not "
                f"{'raise' if sign > 0 else 'lower'} scores: a {name} needs {want}, not both neutral"
            )
    if problems:
        raise ValueError("; ".join(problems))
    return list(value)
