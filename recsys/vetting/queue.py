"""Queues of seeds to vet: which seeds, and their top-k pairs frozen for judging.

Seeds are sampled from a run's catalogue view (:class:`recsys.search.CatalogView`):

- ``traffic``: most interacted-with first (the lists most shoppers see);
- ``category``: up to N per leaf category, the busiest leaves first (by their items' traffic),
  until the queue holds ``n`` seeds (every leaf when ``n`` allows);
- ``random``: uniformly, seeded (the same seed number gives the same queue);
- ``pasted``: the ids a merchandiser pasted (unknown ids are reported, not dropped silently).

:func:`queue_pairs` then takes each seed's top-k under the preset through the run's searcher
(the code path of Explore and the REST API) and lists the pairs in judging order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

MODES: tuple[str, ...] = ("traffic", "category", "random", "pasted")
MAX_SEEDS = 2000


def leaf_categories(view: Any) -> np.ndarray:
    """The full category path of each position of ``view`` ("" for none)."""
    level = view.max_level
    return np.asarray(view.cat_names[level], dtype=object)[view.cat_codes[level]]


def parse_ids(text: str | None) -> list[str]:
    """Ids pasted one per line or separated by commas, spaces or tabs; duplicates dropped."""
    seen: dict[str, None] = {}
    for token in re.split(r"[\s,;]+", text or ""):
        token = token.strip().strip("'\"")
        if token:
            seen.setdefault(token, None)
    return list(seen)


def sample_seeds(
    view: Any,
    mode: str,
    *,
    n: int = 50,
    per_category: int = 2,
    popularity: Sequence[int] | np.ndarray | None = None,
    pasted: str | None = None,
    random_state: int = 0,
) -> tuple[list[str], list[str]]:
    """``(seed ids, problems)`` for a queue (see the module docstring for the modes).

    Parameters
    ----------
    view : CatalogView
        The run's catalogue view (items in position order).
    n : int
        How many seeds (traffic, random, category); the pasted mode keeps every known id up
        to :data:`MAX_SEEDS`.
    per_category : int
        Seeds per leaf category (category mode), the most interacted-with of each leaf
        when ``popularity`` is given, else the first ones. Leaves are taken busiest first
        (their items' interactions summed; by name without ``popularity``) until ``n`` seeds:
        a catalogue of thousands of leaves (dunnhumby's 3,903) used to fill the queue with
        the first 2,000 leaves by name, whatever ``n`` said.
    popularity : array, optional
        Interactions per position of ``view`` (required for ``traffic``).
    """
    if mode not in MODES:
        raise ValueError(f"sampling mode {mode!r} is not one of {', '.join(MODES)}")
    n = max(1, min(int(n), MAX_SEEDS))
    ids = np.asarray(view.item_ids, dtype=str)
    problems: list[str] = []
    if mode == "pasted":
        wanted = parse_ids(pasted)
        unknown = [i for i in wanted if view.position(i) < 0]
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            problems.append(f"{len(unknown)} pasted id(s) are not items of this run: {shown}")
        known = [i for i in wanted if view.position(i) >= 0]
        if len(known) > MAX_SEEDS:
            problems.append(f"only the first {MAX_SEEDS} of {len(known)} pasted ids are queued")
        return known[:MAX_SEEDS], problems
    pop = None if popularity is None else np.asarray(popularity, dtype=np.int64)
    if mode == "traffic":
        if pop is None:
            raise ValueError("sampling by traffic needs the items' interaction counts")
        order = np.argsort(-pop, kind="stable")
        order = order[pop[order] > 0][:n]
        if len(order) < n:
            problems.append(f"only {len(order)} items have any interactions")
        return [str(ids[p]) for p in order], problems
    if mode == "random":
        rng = np.random.default_rng(random_state)
        picked = rng.choice(view.n, size=min(n, view.n), replace=False) if view.n else []
        return [str(ids[p]) for p in picked], problems
    per = max(1, min(int(per_category), MAX_SEEDS))
    leaves = leaf_categories(view)
    names, codes = np.unique(leaves.astype(str), return_inverse=True)
    order = np.arange(len(names))  # by name, or the busiest leaves first
    if pop is not None:
        traffic = np.bincount(codes, weights=pop, minlength=len(names))
        order = np.lexsort((order, -traffic))
    out: list[str] = []
    covered = 0
    for leaf in order:
        if len(out) >= n:
            break
        members = np.flatnonzero(codes == leaf)
        if pop is not None:
            members = members[np.argsort(-pop[members], kind="stable")]
        out.extend(str(ids[p]) for p in members[: min(per, n - len(out))])
        covered += 1
    if covered < len(names):
        busiest = "the busiest first" if pop is not None else "in name order"
        problems.append(
            f"{len(out)} seeds from {covered} of {len(names)} leaf categories ({busiest}); "
            "raise Seeds to cover more"
        )
    return out, problems


def queue_pairs(searcher: Any, seeds: Sequence[str], config: Any, k: int) -> list[dict[str, Any]]:
    """The pairs to judge: each seed's top-k under ``config`` (``{seed, item_id, position,
    score, category}``; ``category`` is the seed's), seeds in the given order."""
    view = searcher.view
    leaves = leaf_categories(view)
    pairs: list[dict[str, Any]] = []
    for seed in seeds:
        pos = view.position(seed)
        if pos < 0:
            continue
        result = searcher.search(seed, config, k)
        for rank, (item, score) in enumerate(zip(result.item_ids, result.scores), start=1):
            pairs.append(
                {
                    "seed": str(seed),
                    "item_id": str(item),
                    "position": rank,
                    "score": round(float(score), 6),
                    "category": str(leaves[pos]),
                }
            )
    return pairs
