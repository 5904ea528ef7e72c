"""The answers of ``/similar`` and ``/recommend`` as plain functions (usable without HTTP, inside an app context)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.errors import (
    UnknownItemError,
)
from recsys.serving.core import (
    ApiError,
    _ApiState,
    _filter_config,
    _floats,
    _jsonable,
    _state,
    parse_k,
)


# ---------------------------------------------------------------------------
# handlers' logic (plain functions, usable without HTTP)
# ---------------------------------------------------------------------------
def similar_response(
    item_id: str,
    *,
    run: str | None = None,
    preset: str | None = None,
    filters: Any = None,
    k: Any = None,
    source: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """The JSON answer of ``/similar`` (call inside an app context with the API registered).

    ``dataset``: a stored dataset's name instead of a run: its default run answers
    (:func:`dataset_run`)."""
    st = _state()
    k = parse_k(k, st.settings.max_k)
    live = source in (None, "", "live")
    run_id = request_run(st, run, dataset, check=not live)  # live: the searcher's look-up checks it
    config, preset_name = _filter_config(preset, filters)
    if live:
        from recsys.search import similar_items

        try:
            result = similar_items(st.registry, run_id, item_id, config, k)
        except UnknownItemError as exc:
            raise _unknown_seed(exc, st, run_id, item_id, named=bool(run)) from exc
        ids, scores = result.item_ids, _floats(result.scores)
        removed = result.removed_by_rule
        n_elig = result.n_eligible
        return {
            "run": run_id,
            "item_id": item_id,
            "k": k,
            "preset": preset_name,
            "config_hash": config.config_hash(),
            "source": "live",
            "items": [{"item_id": str(i), "score": s} for i, s in zip(ids, scores)],
            "served_by": _served_by(result),
            "removed_by_rule": {
                str(r): int(n) for r, n in (removed if removed.__class__ is dict else dict(removed)).items()
            },
            "plan": result.plan if result.plan.__class__ is str else _jsonable(result.plan),
            "n_eligible": int(n_elig) if n_elig is not None else None,
            "elapsed_ms": round(float(result.elapsed_ms), 3),
        }
    if source != "precomputed":
        raise ApiError(400, f"'source' must be 'live' or 'precomputed', got '{source}'", "source")
    return _precomputed_response(st, run_id, item_id, config, preset_name, k)


def _precomputed_response(
    st: _ApiState, run_id: str, item_id: str, config: Any, preset_name: str | None, k: int
) -> dict[str, Any]:
    from recsys.precompute import staleness

    config_hash = config.config_hash()
    loc = str(st.settings.precomputed or "")
    if not loc.startswith(("redis://", "rediss://", "unix://")):
        from recsys.precompute import DEFAULT_SQLITE_NAME

        if not Path(loc or st.settings.root / DEFAULT_SQLITE_NAME).exists():  # a read creates no file
            raise ApiError(
                404,
                "no precomputed tables yet: run "
                f"'python -m recsys precompute --run {run_id} --preset <name>', or ask source=live",
                "source",
            )
    store = st.store()
    meta = store.table_meta(run_id, config_hash)
    if meta is None:
        other = store.preset_meta(run_id, preset_name) if preset_name else None
        if other is not None:
            raise ApiError(
                409,
                f"the precomputed table of preset '{preset_name}' for run {run_id} was written with "
                f"config hash {other['preset_hash']} but the preset is now {config_hash}: rerun "
                f"'python -m recsys precompute --run {run_id} --preset {preset_name}'",
                "preset",
            )
        what = f"preset '{preset_name}'" if preset_name else f"config hash {config_hash}"
        raise ApiError(
            404,
            f"no precomputed table for run {run_id} and {what}: run "
            f"'python -m recsys precompute --run {run_id} --preset <name>', or ask source=live",
            "source",
        )
    if k > int(meta["k"]):
        raise ApiError(
            409,
            f"the precomputed table holds the top {meta['k']} per item; ask k <= {meta['k']} "
            "or rerun precompute with a larger --k",
            "k",
        )
    stale = staleness(st.registry, meta)
    entries = store.get(run_id, config_hash, item_id)
    if entries is None:
        raise UnknownItemError(f"item '{item_id}' is not in run {run_id} (precomputed table has no row)")
    entries = entries[:k]
    return {
        "run": run_id,
        "item_id": item_id,
        "k": k,
        "preset": preset_name or meta.get("preset_name"),
        "config_hash": config_hash,
        "source": "precomputed",
        "items": [{"item_id": e[0], "score": e[1]} for e in entries],
        "served_by": [e[2] for e in entries],
        "precomputed": stale,
    }


def recommend_response(
    recent_item_ids: Any,
    *,
    run: str | None = None,
    preset: str | None = None,
    filters: Any = None,
    k: Any = None,
    exclude_seen: Any = True,
    dataset: str | None = None,
) -> dict[str, Any]:
    """The JSON answer of ``/recommend`` (:func:`recsys.search.recommend_for_recent`: two-tower user
    vector, else mean of the recent items' vectors)."""
    st = _state()
    max_recent = st.settings.max_recent
    if not isinstance(recent_item_ids, list) or not recent_item_ids:
        raise ApiError(400, "'recent_item_ids' must be a non-empty list of item ids", "recent_item_ids")
    if len(recent_item_ids) > max_recent:
        raise ApiError(
            400,
            f"'recent_item_ids' holds {len(recent_item_ids)} ids; at most {max_recent} are accepted",
            "recent_item_ids",
        )
    if not all(isinstance(i, str) and i for i in recent_item_ids):
        raise ApiError(400, "'recent_item_ids' must hold non-empty strings", "recent_item_ids")
    if not isinstance(exclude_seen, bool):
        raise ApiError(400, "'exclude_seen' must be true or false", "exclude_seen")
    k = parse_k(k, st.settings.max_k)
    config, preset_name = _filter_config(preset, filters)
    run_id = request_run(st, run, dataset, "two_tower")
    from recsys.search import recommend_for_recent

    try:
        result = recommend_for_recent(
            st.registry, run_id, recent_item_ids, config, k, exclude_seen=exclude_seen
        )
    except UnknownItemError as exc:
        raise _with_dataset_hint(
            exc, st, run_id, recent_item_ids, named=bool(run), family="two_tower"
        ) from exc
    return {
        "run": run_id,
        "method": result.method,
        "exclude_seen": exclude_seen,
        "skipped_rules": list(result.skipped_rules),
        "k": k,
        "preset": preset_name,
        "config_hash": config.config_hash(),
        "recent_item_ids": result.recent_item_ids,
        "ignored_item_ids": result.ignored_item_ids,
        "items": [{"item_id": i, "score": s} for i, s in zip(result.item_ids, _floats(result.scores))],
        "served_by": _served_by(result),
        "removed_by_rule": {str(r): int(n) for r, n in dict(result.removed_by_rule or {}).items()},
    }


#: (data dir, dataset, family) -> (runs stamp, run id): the run a ``dataset=`` request is served
#: by, chosen again when a run is added, deleted or activated (the stamp of ``runs/``)
_DATASET_RUNS: dict[tuple[str, str, str], tuple[Any, str]] = {}


def dataset_run(st: _ApiState, dataset: Any, family: str | None = None) -> str:
    """The run that answers a request naming ``dataset`` instead of a run: as Explore picks it,
    the dataset's active embedding run (of ``family`` first when given), else its newest one,
    else its newest run without vectors (answered from its own lists). Cached until runs change.

    Raises
    ------
    ApiError
        400 when ``dataset`` is not a string; 404 (field ``dataset``) for an unknown dataset
        (the message names the known ones) or one with no run yet.
    """
    if not isinstance(dataset, str) or not dataset:
        raise ApiError(400, "'dataset' must be a dataset name", "dataset")
    stamp = st._runs_stamp()
    key = (str(st.settings.root), dataset, family or "")
    hit = _DATASET_RUNS.get(key)
    if hit is not None and hit[0] == stamp and not st._damaged(hit[1]):
        return hit[1]
    registry = st.registry

    def pick(fam: str | None, embedding: bool) -> str | None:
        rid = registry.default_run(fam, embedding_only=embedding, dataset=dataset)
        return rid if rid and registry._run_dataset(registry.get(rid)) == dataset else None

    run_id = (family and pick(family, True)) or pick(None, True) or pick(None, False)
    if run_id is None:
        from recsys.data.schema import list_datasets

        known = list_datasets(registry.root)
        if dataset not in known:
            names = ", ".join(known) if known else "none yet (python -m recsys import ...)"
            raise ApiError(404, f"unknown dataset '{dataset}'; the datasets are: {names}", "dataset")
        raise ApiError(
            404,
            f"dataset '{dataset}' has no run yet: train one (the Runs page, POST /api/v1/train or "
            f"'python -m recsys train prod2vec --dataset {dataset}')",
            "dataset",
        )
    _DATASET_RUNS[key] = (stamp, run_id)
    return run_id


def request_run(
    st: _ApiState, run: Any, dataset: Any, family: str | None = None, *, check: bool = True
) -> str:
    """The run a request is served by: ``run`` when named (with ``dataset`` too, the run must be
    one of that dataset's), else ``dataset``'s run (:func:`dataset_run`), else the default run."""
    if dataset in (None, ""):
        if run or family is None:
            return st.resolve_run(run, check=check)
        return st.default_run(family) or st.resolve_run(None)
    if not run:
        return dataset_run(st, dataset, family)
    run_id = st.resolve_run(run, check=check)
    if not isinstance(dataset, str):
        raise ApiError(400, "'dataset' must be a dataset name", "dataset")
    of = st.registry._run_dataset(st.registry.get(run_id))
    if of != dataset:
        raise ApiError(
            400, f"run {run_id} is a run of dataset '{of}', not '{dataset}': drop one of the two", "dataset"
        )
    return run_id


def _with_dataset_hint(
    exc: UnknownItemError,
    st: _ApiState,
    run_id: str,
    item_ids: list[str],
    *,
    named: bool,
    family: str | None = None,
) -> UnknownItemError:
    """``exc``, or when no run was named and an item belongs to another dataset, ``exc`` with
    the dataset to name: the run served by default is one of the default dataset's, so an item
    of a dataset imported later is unknown to it (``?dataset=`` picks that dataset's run).

    An unknown id costs a ``stat`` per stored dataset and a set look-up in each one's cached
    catalogue ids (:func:`recsys.catalog.dataset_item_ids`; no Parquet read once cached). The
    whole catalogue is looked at, not a run's vector rows: a run answers a catalogue item
    without a vector from its fallback chain. Only when an item is found is that dataset's run
    asked for it once, so the hint never names a request that would 404 again."""
    if named:
        return exc
    from recsys.catalog import dataset_item_ids
    from recsys.data.schema import list_datasets
    from recsys.errors import RecsysError

    registry = st.registry
    try:
        served = registry._run_dataset(registry.get(run_id))
    except RecsysError:
        return exc
    wanted = list(dict.fromkeys(map(str, item_ids)))
    for name in list_datasets(registry.root):
        if name == served:
            continue
        try:
            ids = dataset_item_ids(registry.root, name)
        except RecsysError:
            continue
        found = next((i for i in wanted if i in ids), None)
        if found is None:
            continue
        head = f"{exc} (run {run_id} of dataset '{served}' answered); item '{found}' is in dataset '{name}'"
        try:
            other = dataset_run(st, name, family)
        except ApiError as err:
            return UnknownItemError(f"{head}, but {err.message}")
        if not _answers(registry, other, found):
            return UnknownItemError(
                f"{head}, but its run {other} has no vector for it and no fallback chain that lists "
                f"it: train a run on '{name}' (its fallback chain answers every catalogue item)"
            )
        return UnknownItemError(f"{head}: pass dataset={name} (its run {other} answers; or run={other})")
    return exc


def _unknown_seed(
    exc: UnknownItemError, st: _ApiState, run_id: str, item_id: str, *, named: bool
) -> UnknownItemError:
    """``exc`` ("has no vector in this run") said for what it is, the run's own dataset's
    catalogue first (ids cached by :func:`recsys.catalog.dataset_item_ids`): an item of it is one
    the run has no vector for and no fallback chain that answers (a run of imported vectors
    carries none), whatever other dataset holds the same id; else another dataset's hint
    (:func:`_with_dataset_hint`); else the id is in no catalogue: a typo or another system's id,
    where "has no vector" sent the caller looking for a missing vector."""
    from recsys.catalog import dataset_item_ids
    from recsys.errors import RecsysError

    registry = st.registry
    try:
        served = registry._run_dataset(registry.get(run_id))
        known = bool(served) and str(item_id) in dataset_item_ids(registry.root, served)
    except RecsysError:
        return _with_dataset_hint(exc, st, run_id, [item_id], named=named)
    if known:
        return UnknownItemError(
            f"item '{item_id}' is in dataset '{served}', but run {run_id} has no vector for it and no "
            "fallback chain that lists it: pick another seed item, or serve a run that covers it"
        )
    hinted = _with_dataset_hint(exc, st, run_id, [item_id], named=named)
    if hinted is not exc or not served:
        return hinted
    elsewhere = "" if named else ", nor in any other stored dataset"
    return UnknownItemError(
        f"item '{item_id}' is not in the catalogue of dataset '{served}' (run {run_id}'s){elsewhere}: check the id"
    )


def _answers(registry: Any, run_id: str, item_id: str) -> bool:
    """Whether ``run_id`` answers ``/similar`` for ``item_id`` (one search, k=1)."""
    from recsys.errors import RecsysError
    from recsys.filters import FilterConfig
    from recsys.search import similar_items

    try:
        similar_items(registry, run_id, item_id, FilterConfig(), 1)
    except RecsysError:
        return False
    return True


def _served_by(result: Any) -> list[str]:
    """Per item, what served it: "model", a step of the run's fallback chain or "pin"."""
    return [str(s) for s in result.served_by] if result.served_by else ["model"] * len(result.item_ids)
