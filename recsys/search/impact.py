"""Filter impact: what a filter does over a sample of seeds, compared with no filter."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.filters import FilterConfig

if TYPE_CHECKING:  # pragma: no cover
    from recsys.search.searcher import FilteredSearcher

if TYPE_CHECKING:  # pragma: no cover
    from recsys.registry import Registry

logger = logging.getLogger(__name__)


def filter_impact(
    searcher: FilteredSearcher,
    config: FilterConfig | dict[str, Any],
    k: int = 10,
    n_seeds: int = 200,
    seed: int = 0,
    eval_cases: Sequence[tuple[str, Iterable[str]]] | None = None,
) -> dict[str, Any]:
    """What a filter does over a sample of seeds, compared with no filter.

    "Before" is ``FilterConfig()`` (seed excluded; adult items never next to a
    non-adult seed), "after" is ``config``.

    Parameters
    ----------
    searcher : FilteredSearcher
    config : FilterConfig or dict
    k : int
    n_seeds : int
        Seeds sampled uniformly (without replacement) from the run's items.
    seed : int
        Sampling seed.
    eval_cases : list of (seed_item_id, targets), optional
        Held-out cases (e.g. from :mod:`recsys.evaluation`): a hit is any
        target among the top k. Cases whose seed has no vector are skipped.

    Returns
    -------
    dict
        ``n_seeds``, ``k``, ``fill_rate`` (share of seeds that still get k),
        ``fill_rate_before``, ``mean_results``, ``mean_similarity_before``,
        ``mean_similarity_after``, ``mean_similarity_loss`` (mean over seeds
        with at least one filtered result of mean unfiltered top-k score minus
        mean filtered score), ``removed_by_rule`` (mean items per seed each rule
        rejects on its own), ``removed_by_rule_total``, ``coverage_before`` /
        ``coverage_after`` (share of the catalogue recommended to at least one
        sampled seed), ``plans`` (plan -> count), ``mean_elapsed_ms``, and with
        ``eval_cases``: ``hr_before``, ``hr_after``, ``n_cases``,
        ``n_cases_skipped``.
    """
    cfg = FilterConfig.from_dict(config)
    base = FilterConfig()
    rng = np.random.default_rng(seed)
    n = searcher.n
    picks = rng.choice(n, size=min(n_seeds, n), replace=False) if n else np.zeros(0, dtype=np.int64)
    seeds = [str(x) for x in searcher.view.item_ids[picks]]
    filled = filled_before = 0
    losses, sim_b, sim_a, n_results, elapsed = [], [], [], [], []
    removed_total: dict[str, int] = {}
    plans: dict[str, int] = {}
    seen_before: set[int] = set()
    seen_after: set[int] = set()
    for item in seeds:
        before = searcher.search(item, base, k)
        after = searcher.search(item, cfg, k)
        filled += len(after) >= k
        filled_before += len(before) >= k
        n_results.append(len(after))
        elapsed.append(after.elapsed_ms)
        plans[after.plan] = plans.get(after.plan, 0) + 1
        for rule, count in after.removed_by_rule.items():
            removed_total[rule] = removed_total.get(rule, 0) + int(count)
        seen_before.update(before.rows)
        seen_after.update(after.rows)
        if len(before):
            sim_b.append(float(np.mean(before.scores)))
        if len(after):
            sim_a.append(float(np.mean(after.scores)))
            if len(before):
                losses.append(float(np.mean(before.scores)) - float(np.mean(after.scores)))
    m = max(len(seeds), 1)
    out: dict[str, Any] = {
        "n_seeds": len(seeds),
        "k": k,
        "config_hash": cfg.config_hash(),
        "fill_rate": filled / m,
        "fill_rate_before": filled_before / m,
        "mean_results": float(np.mean(n_results)) if n_results else 0.0,
        "mean_similarity_before": float(np.mean(sim_b)) if sim_b else None,
        "mean_similarity_after": float(np.mean(sim_a)) if sim_a else None,
        "mean_similarity_loss": float(np.mean(losses)) if losses else None,
        "removed_by_rule_total": removed_total,
        "removed_by_rule": {r: c / m for r, c in removed_total.items()},
        "coverage_before": len(seen_before) / n if n else 0.0,
        "coverage_after": len(seen_after) / n if n else 0.0,
        "plans": plans,
        "mean_elapsed_ms": float(np.mean(elapsed)) if elapsed else 0.0,
    }
    if eval_cases is not None:
        hits_b = hits_a = used = skipped = 0
        for seed_item, targets in eval_cases:
            if searcher.view.position(str(seed_item)) < 0:
                skipped += 1
                continue
            wanted = {str(t) for t in targets}
            used += 1
            hits_b += bool(wanted.intersection(searcher.search(str(seed_item), base, k).item_ids))
            hits_a += bool(wanted.intersection(searcher.search(str(seed_item), cfg, k).item_ids))
        out.update(
            {
                f"hr@{k}_before": hits_b / used if used else None,
                f"hr@{k}_after": hits_a / used if used else None,
                "hr_before": hits_b / used if used else None,
                "hr_after": hits_a / used if used else None,
                "n_cases": used,
                "n_cases_skipped": skipped,
            }
        )
    return out


def filter_impact_for_run(
    registry: Registry,
    run_id: str,
    config: Any,
    k: int = 10,
    n_seeds: int = 200,
    n_cases: int = 500,
    seed: int = 0,
    split_method: str | None = None,
) -> dict[str, Any]:
    """:func:`recsys.search.filter_impact` of a run with held-out cases of its dataset.

    The run's dataset is split as the run was evaluated (``params``/``split`` in run.json,
    else a time split); up to ``n_cases`` (seed, targets) cases of the test part give HR@k
    before and after the filter.

    Returns
    -------
    dict
        As ``filter_impact`` with ``hr_before``/``hr_after`` (None when the dataset yields no
        test case).
    """
    from recsys.data.schema import load_dataset
    from recsys.evaluation import build_cases, split
    from recsys.search.service import get_searcher

    searcher = get_searcher(registry, run_id)
    meta = registry.get(run_id)
    method = split_method or (meta.get("split") or {}).get("method") or "time"
    cases: list[tuple[str, list[str]]] | None = None
    try:
        dataset = load_dataset(meta["dataset"]["name"], registry.root)
        _, test = split(dataset, method=method)
        seeds, targets = build_cases(test, max_cases=n_cases, seed=seed)
        cases = [(str(s), [str(t) for t in tg]) for s, tg in zip(seeds, targets, strict=True)]
    except Exception as exc:  # no interactions, no test part: impact without HR
        logger.info("filter impact of %s without held-out cases: %s", run_id, exc)
    return filter_impact(searcher, config, k=k, n_seeds=n_seeds, seed=seed, eval_cases=cases or None)
