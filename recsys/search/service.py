"""The per-run searcher cache, :func:`similar_items` and :func:`recommend_for_recent`."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys._watch import ChangeWatch
from recsys.config import file_stamp
from recsys.data.schema import dataset_report_path
from recsys.errors import IndexFileError, RunNotSearchableError, UnknownItemError
from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search.result import SearchResult
from recsys.search.searcher import FilteredSearcher

logger = logging.getLogger(__name__)

# -- per-run cache -------------------------------------------------------------------
# key (root, run id, stamp of the run's files) -> (searcher, the dataset's report.json, its stamp)
_searchers: dict[tuple[str, str, Any], tuple[FilteredSearcher, Path, tuple[int, int]]] = {}
_searchers_lock = threading.Lock()
_build_locks: dict[tuple[str, str, Any], threading.Lock] = {}
#: (data dir, run id) -> (the run's folder, its dataset report's folder), once ``Registry.run_dir``
#: has accepted the id: a later full check tests that the run still exists with the ``stat`` of
#: run.json that its files' stamp makes anyway
_run_folders: dict[tuple[str, str], tuple[str, str]] = {}
#: the run and report folders of the cached searchers, watched (inotify): while nothing changed in
#: them a call skips the eight ``stat`` calls of the full check (10-15 µs each on some hosts: a
#: third of what a live ``/similar`` request cost beyond its search); see :mod:`recsys._watch`
_WATCH = ChangeWatch()


def _cached_searcher(key: tuple[str, str, Any]) -> tuple[FilteredSearcher, Path] | None:
    """The cached searcher of ``key`` and its dataset's report.json while that is unchanged (a
    re-import)."""
    with _searchers_lock:
        hit = _searchers.get(key)
    if hit is None or file_stamp(hit[1]) != hit[2]:
        return None
    return hit[0], hit[1]


def get_searcher(registry: Any, run_id: str) -> FilteredSearcher:
    """The searcher of a run, cached by run id, its files' stamps and the dataset's; thread-safe.

    Loads the model's vectors, the run's ``index.bin`` when present and valid
    (an unusable one is logged and rebuilt in memory), and the catalogue of
    the run's dataset. A re-imported dataset (a new ``report.json``) is picked
    up at the next call.

    Raises
    ------
    RunNotFoundError
        Unknown run.
    RunNotSearchableError
        The run has no item vectors (a baseline model).
    """
    root = str(registry.root)
    rk = (root, run_id)
    hit = _WATCH.recall(rk)
    if hit is not None:
        return hit
    epoch = _WATCH.epoch()
    folder, report_dir = _run_folders.get(rk, (None, None))
    # the folders watched before the slow check: a change after its stats raises an event
    watched = report_dir is not None and _WATCH.watch(folder, report_dir)
    searcher, folder, report = _checked_searcher(registry, run_id, root, folder)
    _run_folders[rk] = (folder, str(report.parent))
    if watched:
        _WATCH.remember(rk, searcher, epoch)
    return searcher


def _checked_searcher(
    registry: Any, run_id: str, root: str, folder: str | None
) -> tuple[FilteredSearcher, str, Path]:
    """:func:`get_searcher` with every file checked: (searcher, run folder, dataset report)."""
    from recsys.registry import run_files_stamp

    if folder is None:
        folder = str(registry.run_dir(run_id))  # checks the id and that the run exists
    # every model file in the key: a rewritten (or damaged) vectors.npy is seen at the next call
    stamp = run_files_stamp(folder)
    if not stamp or stamp[0][0] != "run.json":  # the run is gone: run_dir says so
        folder = str(registry.run_dir(run_id))
        stamp = run_files_stamp(folder)
    key = (root, run_id, stamp)
    hit = _cached_searcher(key)
    if hit is not None:
        return hit[0], folder, hit[1]
    with _searchers_lock:
        lock = _build_locks.setdefault(key, threading.Lock())
    try:
        with lock:
            hit = _cached_searcher(key)
            if hit is not None:
                return hit[0], folder, hit[1]
            searcher, report, report_stamp = _build_searcher(registry, run_id, Path(folder))
            with _searchers_lock:
                for old in [k for k in _searchers if k[:2] == key[:2]]:
                    del _searchers[old]  # a newer run.json replaces the old searcher
                _searchers[key] = (searcher, report, report_stamp)
            return searcher, folder, report
    finally:
        with _searchers_lock:
            _build_locks.pop(key, None)


def _build_searcher(registry: Any, run_id: str, path: Path) -> tuple[FilteredSearcher, Path, tuple[int, int]]:
    from recsys.catalog import run_catalog_view
    from recsys.index import vectors_checksum

    meta = registry.get(run_id)
    # a baseline run says so in run.json: no need to load its model to find out
    model = registry.load_model(run_id) if meta.get("is_embedding", True) else None
    vectors = getattr(model, "vectors_", None)
    if vectors is None:
        raise RunNotSearchableError(
            f"run '{run_id}' ({meta.get('family')}) has no item vectors; pick an embedding run"
        )
    vectors = np.asarray(vectors, dtype=np.float32)
    name = meta["dataset"]["name"]
    report = dataset_report_path(name, registry.root)
    report_stamp = file_stamp(report)  # before the read: a re-import during it is seen next time
    view = run_catalog_view(registry, run_id)  # shared with the pages that only read catalogue rows
    index = None
    index_path = path / "index.bin"
    if index_path.exists():
        try:
            index = HnswIndex.load(
                index_path,
                expected_dim=vectors.shape[1],
                expected_count=vectors.shape[0],
                vectors_checksum=vectors_checksum(vectors),
                item_ids=model.item_ids_,
            )
        except IndexFileError as exc:
            logger.warning("run %s: %s; building a fresh index in memory", run_id, exc)
    # runs with tied (duplicate) vectors are searched exactly: see pipeline._index_writer
    index_info = (meta.get("artifacts") or {}).get("index")
    exact = isinstance(index_info, dict) and bool(index_info.get("exact_search"))
    searcher = FilteredSearcher(
        vectors,
        model.item_ids_,
        None,  # the catalogue is in the view
        index=index,
        view=view,
        query_vectors=getattr(model, "query_vectors_", None),
        space=(getattr(model, "params", None) or {}).get("metric", "cosine"),  # imported "ip" runs
        exact_max_rows=len(vectors) if exact else None,
    )
    return searcher, report, report_stamp


def clear_searcher_cache() -> None:
    """Forget every cached searcher (tests, run deletion)."""
    with _searchers_lock:
        _searchers.clear()
        _run_folders.clear()
    _WATCH.forget()


def similar_items(
    registry: Any,
    run_id: str,
    item_id: str,
    config: FilterConfig | dict[str, Any] | None = None,
    k: int = 10,
) -> SearchResult:
    """Filtered neighbours of ``item_id`` in run ``run_id``.

    The one code path behind the Explore page, Compare, the REST API and precompute. A seed
    without a vector in the run (an item training never saw) is answered by the run's fallback
    chain (:mod:`recsys.fallback`), its items filtered by the same rules (``served_by`` says
    which step served each). A run without item vectors (popularity, co-occurrence, tfidf,
    item_knn, sknn, vsknn) answers with its own ranking for the seed, completed by its fallback
    chain and cut under the same rules (:func:`similar_from_lists`, ``plan`` ``"list"``).

    Raises
    ------
    RunNotFoundError, FilterConfigError
    RunNotSearchableError
        An embedding run whose vectors cannot be read.
    UnknownItemError
        The seed is unknown to the run (to its vectors or model, and to its fallback chain).
    """
    cfg = FilterConfig.from_dict(config)
    try:
        return get_searcher(registry, run_id).search(item_id, cfg, k)
    except RunNotSearchableError:
        # no item vectors (popularity, co-occurrence, tfidf, the session kNN families): the run's
        # own ranking, completed by its fallback chain under the same rules (Compare's seed view)
        model = _lists_model(registry, run_id)
        if model is None:
            raise
        (res,) = _own_lists(registry, run_id, model, [str(item_id)], cfg, k)
        if res.plan == UNKNOWN_SEED:
            raise UnknownItemError(_unknown_seed_message(model, run_id, str(item_id))) from None
        return res
    except UnknownItemError:
        # no vector for this seed: the run's declared fallback chain answers, under the same rules
        model = registry.load_model(run_id)
        chain = getattr(model, "fallback_chain_", None)
        if chain is None or item_id not in chain:
            raise
        return _served_list(registry, run_id, model, str(item_id), None, cfg, k, [str(item_id)])


# -- recommendations from recently viewed items ------------------------------------------------
@dataclass
class RecentResult(SearchResult):
    """A :class:`SearchResult` for a list of recently viewed items (:func:`recommend_for_recent`).

    Attributes
    ----------
    method : {"two_tower", "mean_of_recent", "session_knn", "last_item", "fallback"}
        How the query was made ("session_knn": a session model's own ranking; "last_item":
        the own list of a run without vectors (popularity, co-occurrence, tfidf) for the most
        recent item its model knows; "fallback": the run's fallback chain, the model knowing
        none of the recent items).
    recent_item_ids : list of str
        The recent items the run knows, in the given order (excluded from the results).
    ignored_item_ids : list of str
        The recent items the run does not know (left out of the query).
    """

    method: str = "mean_of_recent"
    recent_item_ids: list[str] = field(default_factory=list)
    ignored_item_ids: list[str] = field(default_factory=list)


def recommend_for_recent(
    registry: Any,
    run_id: str,
    recent_ids: Sequence[str],
    config: FilterConfig | dict[str, Any] | None = None,
    k: int = 10,
    exclude_seen: bool = True,
) -> RecentResult:
    """Filtered recommendations for a list of recently viewed items (oldest first).

    The query is the run's user vector of the list for a two-tower run
    (``model.user_vectors([recent])``), else the mean of the recent items' unit vectors
    (their query vectors for a model with a second space for seeds), normalised. The
    recent items themselves are excluded; the most recent known item acts as the seed
    of the seed-dependent rules (same category, same gender, price band...).
    The code path of the REST ``/recommend`` endpoint and the Explore page's recent views.

    Parameters
    ----------
    registry : Registry
    run_id : str
        An embedding run.
    recent_ids : sequence of str
        Recently viewed item ids, oldest first; ids the run does not know are ignored
        (listed in ``ignored_item_ids``).
    config : FilterConfig or dict, optional
    k : int
    exclude_seen : bool
        Leave the recent items out of the results (default). Off: items viewed before
        may come back (repeat views), except the most recent one, the seed.

    Returns
    -------
    RecentResult
        At most ``k`` items, best first (none of them a recent item with ``exclude_seen``).
        A session-kNN run (sknn, vsknn, item_knn) answers with its own ranking, completed by
        the run's fallback chain and filtered by the same rules (the rule table applied to
        the list; ``served_by`` per item). Another run without vectors (popularity,
        co-occurrence, tfidf) answers with its own list for the most recent item its model
        knows (walking back from the last item; the seed of the rules and of the chain),
        the session's items left out with ``exclude_seen``: with it off, the answer is
        :func:`similar_items` of that item. An embedding run none of whose recent items has a
        vector, or a run whose model knows none of them, answers from its fallback chain.

    Raises
    ------
    RunNotFoundError
        Unknown run.
    RunNotSearchableError
        An embedding run whose item vectors are missing.
    UnknownItemError
        None of the recent items is known to the run.
    FilterConfigError
        ``config`` is an invalid dict.
    """
    cfg = FilterConfig.from_dict(config)
    recent = [str(i) for i in recent_ids]
    model = registry.load_model(run_id)
    if not getattr(model, "is_embedding", False):
        return _recommend_from_lists(registry, model, run_id, recent, cfg, k, exclude_seen)
    if getattr(model, "vectors_", None) is None:
        raise RunNotSearchableError(
            f"run '{run_id}' ({getattr(model, 'family', '?')}) is an embedding run but its item vectors"
            " are missing; retrain or re-import it"
        )
    rows = model.rows_of(recent)
    known = [i for i, r in zip(recent, rows) if r >= 0]
    ignored = [i for i, r in zip(recent, rows) if r < 0]
    chain = getattr(model, "fallback_chain_", None)
    if not known and chain is not None and any(i in chain for i in recent):
        t0 = time.perf_counter()
        known = [i for i in recent if i in chain]
        seed = known[-1]
        res = _served_list(registry, run_id, model, seed, None, cfg, k, known if exclude_seen else [seed])
        res.elapsed_ms = (time.perf_counter() - t0) * 1e3
        return RecentResult(
            **{**res.__dict__, "plan": "fallback"},
            method="fallback",
            recent_item_ids=known,
            ignored_item_ids=[i for i in recent if i not in known],
        )
    if not known:
        shown = ", ".join(recent[:5]) or "(empty list)"
        raise UnknownItemError(f"none of the recent items is known to run {run_id}: {shown}")
    if hasattr(model, "user_vectors"):
        method = "two_tower"
        vec = np.asarray(model.user_vectors([known]), dtype=np.float32).reshape(-1)
    else:
        method = "mean_of_recent"
        vec = model.query_unit_vectors()[rows[rows >= 0]].mean(axis=0).astype(np.float32)
    norm = float(np.linalg.norm(vec))
    if norm > 0:
        vec = vec / np.float32(norm)
    exclude = set(known) if exclude_seen else {known[-1]}
    result = get_searcher(registry, run_id).search_vector(vec, cfg, k + len(exclude), seed_item_id=known[-1])
    keep = [j for j, i in enumerate(result.item_ids) if str(i) not in exclude][:k]
    return RecentResult(
        item_ids=[str(result.item_ids[j]) for j in keep],
        scores=[float(result.scores[j]) for j in keep],
        rows=[int(result.rows[j]) for j in keep],
        removed_by_rule=dict(result.removed_by_rule or {}),
        plan=result.plan,
        n_eligible=result.n_eligible,
        elapsed_ms=result.elapsed_ms,
        skipped_rules=list(result.skipped_rules),
        seed_item_id=known[-1],
        method=method,
        recent_item_ids=known,
        ignored_item_ids=ignored,
    )


# -- the run's similarity scale -----------------------------------------------------------------
def similarity_scale(
    searcher: FilteredSearcher, k: int = 10, n_seeds: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Where a run's neighbour scores lie, for a "minimum similarity" control.

    Scores differ by model (a Prod2Vec in-out run scores 0.07-0.18, a content run 0.6-0.95),
    so a fixed 0-1 slider is either useless or empties every list. This samples ``n_seeds``
    seeds (seeded), takes their unfiltered top-``k`` scores and returns ``{"max": upper end
    (the 99th percentile of top-1 scores, rounded up to 0.05, at most 1), "quantiles": {10:
    q, 50: q, 90: q} of the top-k scores, "n_seeds": seeds used}``. Cached on the searcher.
    """
    cache = searcher.__dict__.setdefault("_similarity_scale", {})
    key = (k, n_seeds, seed)
    if key in cache:
        return cache[key]
    ids = searcher.view.item_id_list
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ids), size=min(n_seeds, len(ids)), replace=False) if len(ids) else []
    top1: list[float] = []
    allk: list[float] = []
    cfg = FilterConfig()
    for p in picks:
        res = searcher.search(ids[int(p)], cfg, k)
        if res.scores:
            top1.append(res.scores[0])
            allk.extend(res.scores)
    if not allk:
        out: dict[str, Any] = {"max": 1.0, "quantiles": {}, "n_seeds": 0}
    else:
        hi = float(np.quantile(top1, 0.99))
        out = {
            "max": float(min(1.0, max(0.05, math.ceil(hi / 0.05) * 0.05))),
            "quantiles": {q: float(np.quantile(allk, q / 100)) for q in (10, 50, 90)},
            "n_seeds": len(top1),
        }
    cache[key] = out
    return out


def _list_searcher(registry: Any, run_id: str) -> FilteredSearcher:
    """A rule-only searcher over the whole catalogue of the run's dataset
    (:func:`recsys.search.lists.catalogue_searcher`), cached per dataset and report.json."""
    from recsys.catalog import CatalogView, run_catalog_view
    from recsys.data.schema import load_stored_catalog
    from recsys.search.lists import catalogue_searcher

    meta = registry.get(run_id)
    name = meta["dataset"]["name"]
    key = (str(registry.root), name, file_stamp(dataset_report_path(name, registry.root)))

    def build() -> Any:
        if not meta.get("is_embedding", True):  # a run without vectors: its view is the catalogue's
            return run_catalog_view(registry, run_id)
        catalog = load_stored_catalog(name, registry.root)
        return CatalogView(catalog["item_id"].astype(str).to_numpy(), catalog)

    return catalogue_searcher(key, build)


def _fetch_size(cfg: FilterConfig, k: int) -> int:
    """Items ranked before the rules cut a list to k: k without rules, more with them."""
    return k if cfg == FilterConfig() else max(10 * k, 200)


def _served_list(
    registry: Any,
    run_id: str,
    model: Any,
    seed: str,
    ranked: tuple[np.ndarray, np.ndarray] | None,
    cfg: FilterConfig,
    k: int,
    exclude: Sequence[str],
    rules: FilteredSearcher | None = None,
) -> SearchResult:
    """A model's ranked list (``ranked``: one row of ids and scores, or None) completed by the
    run's fallback chain from ``seed`` and cut to k under ``cfg``'s rules (the rule table,
    :func:`recsys.search.lists.filter_list`; ``rules``: the run's :func:`_list_searcher` when
    the caller has it)."""
    return served_list(
        (lambda: rules) if rules is not None else (lambda: _list_searcher(registry, run_id)),
        getattr(model, "fallback_chain_", None),
        seed,
        ranked,
        cfg,
        k,
        exclude,
        similarities=bool(getattr(model, "is_embedding", False)),
    )


def served_list(
    list_searcher: Any,
    chain: Any,
    seed: str,
    ranked: tuple[np.ndarray, np.ndarray] | None,
    cfg: FilterConfig,
    k: int,
    exclude: Sequence[str],
    similarities: bool,
) -> SearchResult:
    """A ranked list (``ranked``: one row of ids and scores, or None) completed by ``chain`` (a
    :class:`recsys.fallback.FallbackChain`, or None) from ``seed`` and cut to k under ``cfg``'s
    rules; ``list_searcher()`` gives the rule-only searcher over the dataset's catalogue
    (:func:`recsys.search.lists.catalogue_searcher`). What :func:`similar_items` serves a seed
    without a vector, also run by :func:`recsys.spark.spark_precompute` in its partitions."""
    from recsys.models.base import padded_results
    from recsys.search.lists import filter_list

    fetch = _fetch_size(cfg, k)
    ids, scores = ranked if ranked is not None else padded_results(1, fetch)
    if chain is not None:  # with rules on, as many of the chain's items again: the rules may drop them all
        width = fetch if fetch == k else 2 * fetch
        ids, scores, served = chain.complete([seed], ids, scores, width, [list(exclude)])
    else:
        served = np.where(np.asarray(ids, dtype=str) != "", "model", "")
    keep = np.asarray(ids[0], dtype=str) != ""
    res, sources = filter_list(
        list_searcher(),
        seed,
        np.asarray(ids[0], dtype=str)[keep],
        np.asarray(scores[0], dtype=np.float32)[keep],
        np.asarray(served[0], dtype=str)[keep],
        cfg,
        k,
        similarities=similarities,
    )
    res.served_by = sources
    return res


#: ``plan`` of a list-run answer for a seed that neither the model nor the fallback chain knows
UNKNOWN_SEED = "unknown_seed"


def _lists_model(registry: Any, run_id: str) -> Any | None:
    """The model of a run that answers from its own ranked lists (no item vectors: popularity,
    co-occurrence, tfidf, item_knn, sknn, vsknn), or None for an embedding run."""
    if registry.get(run_id).get("is_embedding", True):
        return None
    model = registry.load_model(run_id)
    return None if getattr(model, "is_embedding", False) else model


def _unknown_seed_message(model: Any, run_id: str, seed: str) -> str:
    why = (
        "neither its model nor its fallback chain lists it"
        if getattr(model, "fallback_chain_", None) is not None
        else "its model does not list it and the run has no fallback chain"
    )
    return (
        f"item '{seed}' is unknown to run {run_id} ({getattr(model, 'family', '?')}): {why}"
        " (an item outside the run's dataset?)"
    )


def _own_lists(
    registry: Any, run_id: str, model: Any, seeds: list[str], cfg: FilterConfig, k: int
) -> list[SearchResult]:
    """Per seed, the model's own ``similar`` list completed by the run's fallback chain and cut
    to k under ``cfg``'s rules; a seed neither the model nor the chain knows gets an empty
    result whose ``plan`` is :data:`UNKNOWN_SEED`."""
    if not seeds:
        return []
    ids, scores = model.similar(seeds, _fetch_size(cfg, k))
    chain = getattr(model, "fallback_chain_", None)
    by_model = model.rows_of(seeds) >= 0
    rules = _list_searcher(registry, run_id)  # once for the batch (it reads run.json)
    out = []
    for n, seed in enumerate(seeds):
        if not by_model[n] and (chain is None or seed not in chain):
            out.append(SearchResult([], [], [], {}, UNKNOWN_SEED, 0, 0.0, [], seed))
            continue
        ranked = (ids[n : n + 1], scores[n : n + 1])
        out.append(_served_list(registry, run_id, model, seed, ranked, cfg, k, [seed], rules))
    return out


def similar_from_lists(
    registry: Any,
    run_id: str,
    item_ids: Sequence[str],
    config: FilterConfig | dict[str, Any] | None = None,
    k: int = 10,
) -> list[SearchResult]:
    """Filtered lists of a run without item vectors (popularity, co-occurrence, tfidf, the session
    kNN families: a seed is a one-item session), one per seed, batched: the model's own
    ``similar`` ranking completed by the run's fallback chain and cut to k under the filter's
    rules (``plan`` is ``"list"``, ``served_by`` per item). :func:`similar_items` answers
    such a run's seed through the same code, so Compare, REST and precompute agree. A seed
    neither the model nor the chain knows gets an empty list (``plan`` :data:`UNKNOWN_SEED`;
    :func:`similar_items` raises UnknownItemError for it)."""
    cfg = FilterConfig.from_dict(config)
    return _own_lists(registry, run_id, registry.load_model(run_id), [str(i) for i in item_ids], cfg, k)


def _recommend_from_lists(
    registry: Any, model: Any, run_id: str, recent: list[str], cfg: FilterConfig, k: int, exclude_seen: bool
) -> RecentResult:
    """:func:`recommend_for_recent` for a run without item vectors: a session model's
    ``recommend`` ranking (seed: the most recent item the run knows), or another model's own
    ``similar`` list for the most recent item the model knows (walking back from the last one),
    the session's items dropped with ``exclude_seen``; completed by the run's fallback chain
    from the seed, under the filter's rules (:func:`recsys.search.lists.filter_list`)."""
    from recsys.models.base import drop_seen

    t0 = time.perf_counter()
    rows = model.rows_of(recent)
    chain = getattr(model, "fallback_chain_", None)
    known = [i for i, r in zip(recent, rows) if r >= 0 or (chain is not None and i in chain)]
    ignored = [i for i in recent if i not in known]
    if not known:
        shown = ", ".join(recent[:5]) or "(empty list)"
        raise UnknownItemError(f"none of the recent items is known to run {run_id}: {shown}")
    by_model = [i for i, r in zip(recent, rows) if r >= 0]
    session_model = hasattr(model, "recommend")
    seed = by_model[-1] if by_model and not session_model else known[-1]
    exclude = list(dict.fromkeys(known)) if exclude_seen else [seed]
    fetch = _fetch_size(cfg, k)
    ranked = None
    if by_model and session_model:
        ranked = model.recommend([by_model], fetch, exclude_seen=exclude_seen)
    elif by_model:  # the seed's own list (the seed itself never in it), the session's items dropped
        ids, scores = model.similar([seed], fetch + len(exclude))
        ranked = drop_seen(ids, scores, [exclude], fetch)
    res = _served_list(registry, run_id, model, seed, ranked, cfg, k, exclude)
    method = ("session_knn" if session_model else "last_item") if by_model else "fallback"
    return RecentResult(
        item_ids=res.item_ids,
        scores=res.scores,
        rows=[int(r) for r in model.rows_of(res.item_ids)],
        removed_by_rule=res.removed_by_rule,
        plan=method,
        n_eligible=res.n_eligible,
        elapsed_ms=(time.perf_counter() - t0) * 1e3,
        skipped_rules=res.skipped_rules,
        seed_item_id=seed,
        served_by=res.served_by,
        method=method,
        recent_item_ids=known,
        ignored_item_ids=ignored,
    )
