"""A batch answer's results: one :class:`~recsys.search.result.SearchResult` per seed, built
column by column.

The batch paths of :meth:`~recsys.search.FilteredSearcher.search_many` answer in arrays (rows,
scores, counts and plans per seed, :class:`~recsys.search.batch.BatchAnswer`); the caller wants
one result object per seed. That step is the only Python left per seed of an unfiltered batch,
and it runs on one thread after hnswlib's multi-threaded ``knn_query``, so it counts in full
against raw hnswlib's batch: each field's lists are made by one C call for the whole batch
(``tolist`` of the gathered ids, rows and scores) and the results by one ``map`` over them, not
a Python loop with a dataclass call per seed (about 5 ms less per 1,000 seeds at load 25).
"""

from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from recsys.search.result import SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from recsys.filters import FilterConfig
    from recsys.search.batch import BatchAnswer
    from recsys.search.compiled import CompiledFilter
    from recsys.search.searcher import FilteredSearcher


def answers(
    searcher: FilteredSearcher,
    got: BatchAnswer,
    pos: np.ndarray,
    cfg: FilterConfig,
    cf: CompiledFilter,
    k: int,
    ms: float,
) -> list[SearchResult]:
    """The results of the batch answer ``got`` for the seeds at positions ``pos`` (rows padded
    with -1 cut off; ``elapsed_ms`` = ``ms``), then ties and placement rules seed by seed where
    the searcher has them. Each result owns its lists and its rule counts."""
    counts = np.count_nonzero(got.rows >= 0, axis=1)
    ids2 = searcher._ids_by_row()[np.maximum(got.rows, 0)].tolist()  # one C call for the whole batch
    rows2, sims2 = got.rows.tolist(), got.sims.tolist()
    for j in np.flatnonzero(counts < k).tolist():
        c = int(counts[j])
        ids2[j], sims2[j], rows2[j] = ids2[j][:c], sims2[j][:c], rows2[j][:c]
    b = len(pos)
    out = list(
        map(
            SearchResult,
            ids2,
            sims2,
            rows2,
            map(dict, got.removed),  # shared per group in the answer: each result its own copy
            got.plans,
            got.n_elig.tolist(),
            repeat(ms, b),
            map(list, got.skipped),
            searcher.view.item_ids[pos].tolist(),
        )
    )
    ties = searcher._tie_of is not None
    if ties or cf.place_rules:
        for j, p in enumerate(pos.tolist()):
            if ties and counts[j]:
                out[j] = searcher._fix_ties(out[j], searcher.qunit[p], p, cfg, k, exact_ok=False)
            if cf.place_rules:
                out[j] = searcher._place(out[j], searcher.qunit[p], p, cfg, k)
    return out
