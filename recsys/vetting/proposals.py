"""Rules proposed by judgments, and adding a confirmed one to a preset (a new preset version).

- a thumbs-down with reason ``brand_clash`` proposes a banned brand pair (the seed's brand,
  the item's brand; ``FilterConfig.banned_brand_pairs``) when both items have a brand and
  the brands differ;
- any thumbs-down proposes a do-not-associate pair (``FilterConfig.do_not_associate``, both
  directions);
- a thumbs-up proposes a pin of the item at its judged position for that seed
  (``FilterConfig.pins``).

Nothing changes until the merchandiser confirms: :func:`add_rule` saves the preset with the
rule, which :class:`recsys.filters.PresetStore` stores as the next version.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from recsys.errors import FilterConfigError
from recsys.filters import FilterConfig, PresetStore
from recsys.merch import PairBan, Pin

KINDS: tuple[str, ...] = ("banned_brand_pair", "do_not_associate", "pin")

#: A title in a rule's label is cut to this many characters (at a word, with "…").
TITLE_CHARS = 40


def item_name(item_id: str, title: str | None) -> str:
    """An item as a rule's label names it: ``"short title" (id)``, or the id alone when the
    catalogue has no title for it (or the title is the id)."""
    text = " ".join(str(title or "").split())
    if not text or text == item_id:
        return item_id
    short = textwrap.shorten(text, TITLE_CHARS, placeholder="…")
    if short == "…":  # one word longer than the bound: cut inside it
        short = text[: TITLE_CHARS - 1] + "…"
    return f"“{short}” ({item_id})"


def proposals(
    judgment: Mapping[str, Any],
    brands: Mapping[str, str | None] | None = None,
    titles: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """The rules a judgment can become (most specific first), each ``{kind, label, ...}``.

    ``judgment`` has ``seed, item_id, position, verdict, reason``; ``brands`` maps the two
    item ids to their brand names (needed for the brand pair); ``titles`` to their titles,
    which the labels show (shortened, with the ids) where the catalogue has them.
    """
    seed, item = str(judgment["seed"]), str(judgment["item_id"])
    titles = titles or {}
    seed_name, item_name_ = item_name(seed, titles.get(seed)), item_name(item, titles.get(item))
    out: list[dict[str, Any]] = []
    if int(judgment["verdict"]) < 0:
        brands = brands or {}
        a, b = (brands.get(seed) or "").strip(), (brands.get(item) or "").strip()
        if judgment.get("reason") == "brand_clash" and a and b and a.casefold() != b.casefold():
            out.append({"kind": "banned_brand_pair", "brands": [a, b], "label": f"Ban brand pair {a} ⇄ {b}"})
        out.append(
            {
                "kind": "do_not_associate",
                "seed": seed,
                "item_id": item,
                "one_way": False,
                "label": f"Never show {item_name_} and {seed_name} together",
            }
        )
    else:
        position = judgment.get("position")
        if position is not None and int(position) >= 1:
            out.append(
                {
                    "kind": "pin",
                    "seed": seed,
                    "item_id": item,
                    "position": int(position),
                    "label": f"Pin {item_name_} at position {int(position)} for {seed_name}",
                }
            )
    return out


def with_rule(config: FilterConfig, proposal: Mapping[str, Any]) -> FilterConfig:
    """``config`` plus the proposed rule (validated: a conflicting pin raises FilterConfigError)."""
    kind = proposal.get("kind")
    data = config.model_dump(mode="json")
    if kind == "banned_brand_pair":
        a, b = proposal["brands"]
        data["banned_brand_pairs"] = [*data["banned_brand_pairs"], [a, b]]
    elif kind == "do_not_associate":
        ban = PairBan(
            seed=proposal["seed"], item_id=proposal["item_id"], one_way=bool(proposal.get("one_way"))
        )
        data["do_not_associate"] = [*data["do_not_associate"], ban.model_dump()]
    elif kind == "pin":
        pin = Pin(seed=proposal["seed"], item_id=proposal["item_id"], position=int(proposal["position"]))
        data["pins"] = [*data["pins"], pin.model_dump()]
    else:
        raise FilterConfigError(f"unknown rule kind {kind!r} (known: {', '.join(KINDS)})")
    return FilterConfig.from_dict(data, f"preset with the new {kind} rule")


def add_rule(store: PresetStore, preset: str, proposal: Mapping[str, Any]) -> tuple[int | None, int]:
    """Save preset ``preset`` with the proposed rule; ``(version before, version after)``.

    Read and written under the preset store's lock, so two merchandisers confirming rules at
    once both keep theirs. A preset that does not exist yet starts from the default filters
    (version before None); when the preset already has the rule, both versions are equal.
    """
    return store.update(preset, lambda old: with_rule(old or FilterConfig(), proposal))
