"""Filtered similar-item search: the planner behind Explore and the REST API.

:class:`FilteredSearcher` holds a run's vectors, its HNSW index and the
catalogue attributes aligned with the vectors' rows (:class:`CatalogView`,
all NumPy codes). A :class:`~recsys.filters.FilterConfig` is compiled once
(cached by its hash) into a seed-independent boolean mask; per seed the
seed-dependent rules (same category/gender, price band, banned brand pairs,
adult next to a non-adult seed, the seed and same-title items) are ANDed in,
vectorised, over the seed's *domain*: the contiguous block of its category
(items are stored sorted by category path, so every category at every level is
one slice) or the whole catalogue.

The planner then picks, per query, by the estimated cost:

``exact_range`` / ``exact_subset``
    Exact dot products over the domain slice (dense) or over the gathered
    eligible rows. Cheap for small eligible sets (1% of 100k = 1k rows costs
    about one HNSW query).
``hnsw_overfetch``
    Unfiltered HNSW for ``max(4 * need, 64)`` candidates (the index's ``ef``
    still bounds the beam, so this costs about one unfiltered query),
    post-filtered; when that comes up short, exact search over the eligible
    items (``+exact_fallback``; or, when that would be much dearer, a 4x
    larger fetch first). Whether the first fetch usually fills the list is
    *learned* per compiled filter (a running hit rate, seeded with what
    independence of filter and vectors would predict): filters correlate with
    the vectors ("same category" keeps 5% of the catalogue but most of a
    seed's neighbours), so the plan is chosen by expected cost, with a few
    exploratory over-fetches while exact search is preferred.
``hnsw_filter``
    hnswlib's own filter callback. Never chosen automatically: it calls Python
    once per visited node (16x-150x slower than unfiltered at 10%-1%
    selectivity); available with ``plan="hnsw_filter"`` for comparison.

No per-seed mask over the catalogue is built unless exact search needs it:
the seed-dependent rules are resolved in O(1)/O(log n) (:class:`_SeedRules`);
gender, price band and adult rules go through a per-filter key index (one int
per item: category block x gender x price rank, -1 where the seed-independent
rules exclude it), so the exact eligible count is one binary search and each
HNSW candidate one range test. Banned brand pairs and same-title exclusion
take one vectorised pass over the domain slice.

Guarantees: k results whenever k eligible items exist, all of them when fewer
(never hnswlib's "contiguous 2D array" error), with ``min_similarity`` and
``max_per_brand`` applied on the ranked list. Scores are exact: NumPy dot
products, or, on the over-fetch hot path of a cosine run, hnswlib's own
distances (``1 - dot`` of the same unit vectors, float32), which agree with
them to float32 rounding (about 1e-7), so they do not depend on the plan
beyond that (near-exact ties may order differently).

Serving hot path: once a filter has answered a few automatic queries
(``_TABLE_AFTER``; a filter tried once or twice in Explore never pays for it), a
per-seed table is built (:meth:`FilteredSearcher._seed_table`, vectorised,
O(n log n)): one row
per seed position holds its key range, its slice of the key order, its
eligible count, its domain and its removed-by-rule counts, so a query reads one
row instead of resolving the rules; the over-fetch tests hnswlib labels by row
with one gather and plain lists. The same rules and counts as the general path
(tests check both against each other and against brute force).

Filters that ignore the vectors (issue 18). A *static* filter (only
seed-independent rules: brands, an absolute price range, adult items) has one
eligible set for every seed (:class:`~recsys.search.batch.StaticSet`: sorted
positions, a per-row test for HNSW labels and, up to 30% of the catalogue and
64 MB, a dense contiguous copy of the eligible unit vectors). A query either
over-fetches from the graph as many candidates as the filter's share of the
catalogue needs to fill k with 99% probability were filter and vectors
independent (:func:`~recsys.search.batch.fetch_for`; the fill rate is still
learned per filter), or runs one BLAS matrix-vector product over the dense
block (no gather), whichever its measured costs (``_S_*``) make cheaper. With
no rule at all (the default config on a catalogue without adult items) a query
is one ``knn_query`` for k + 1 with the seed dropped.

Cold filters: from ``background_min_items`` items on (20k), key indexes, seed
tables and static eligible sets are built by the searcher's background thread
(:class:`~recsys.search.background.Background`) and published with one assignment;
until they are ready a query answers from the general path with a mask over
its domain, so no request pays an O(n log n) build. :meth:`FilteredSearcher.wait_background`
waits for them (tests, benchmarks).

Batches: :meth:`FilteredSearcher.search_many` answers many seeds with one
multi-threaded ``knn_query``, vectorised eligibility tests and one BLAS
product per group of seeds that need exact search (exact top-k of many rows:
:func:`~recsys.search.batch.topk_rows`); precompute runs on it.

Identical vectors (thin catalogues): groups of equal candidate vectors are
found when the searcher is built; a list that reaches one is answered by exact
search, which scores each group once, so ties order by position in every plan.
Exact lists are rescored one way (:meth:`FilteredSearcher._canon`), so batch and
live answers carry bit-identical scores.

:func:`similar_items` is the one code path that the Explore page and the REST
API call; :func:`get_searcher` caches one searcher per run.
"""

from typing import Any

from recsys.search.rules import RULES, Rule, rule

#: public name -> the module that defines it (imported on first use, PEP 562, so that
#: ``recsys.search.rules`` (the filter panel, Explore's labels) loads without the executor)
_LAZY = {
    "CatalogView": "recsys.catalog",
    "IndexFileError": "recsys.errors",
    "RunNotFoundError": "recsys.errors",
    "RunNotSearchableError": "recsys.errors",
    "UnknownItemError": "recsys.errors",
    "CompiledFilter": "recsys.search.compiled",
    "filter_impact": "recsys.search.impact",
    "filter_impact_for_run": "recsys.search.impact",
    "PLANS": "recsys.search.planner",
    "_SUB_AFTER": "recsys.search.planner",
    "_TABLE_AFTER": "recsys.search.planner",
    "SearchResult": "recsys.search.result",
    "FilteredSearcher": "recsys.search.searcher",
    "RecentResult": "recsys.search.service",
    "clear_searcher_cache": "recsys.search.service",
    "get_searcher": "recsys.search.service",
    "recommend_for_recent": "recsys.search.service",
    "similar_items": "recsys.search.service",
    "similar_from_lists": "recsys.search.service",
    "similarity_scale": "recsys.search.service",
    "filter_list": "recsys.search.lists",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recsys.search' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PLANS",
    "RULES",
    "CatalogView",
    "CompiledFilter",
    "FilteredSearcher",
    "IndexFileError",
    "RecentResult",
    "Rule",
    "RunNotFoundError",
    "RunNotSearchableError",
    "SearchResult",
    "UnknownItemError",
    "_SUB_AFTER",
    "_TABLE_AFTER",
    "clear_searcher_cache",
    "filter_impact",
    "filter_impact_for_run",
    "get_searcher",
    "recommend_for_recent",
    "rule",
    "filter_list",
    "similar_from_lists",
    "similar_items",
    "similarity_scale",
]
