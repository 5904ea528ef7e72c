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
) -> dict[str, Any]:
    """The JSON answer of ``/similar`` (call inside an app context with the API registered)."""
    st = _state()
    k = parse_k(k, st.settings.max_k)
    live = source in (None, "", "live")
    run_id = st.resolve_run(run, check=not live)  # live: the searcher's look-up checks it
    config, preset_name = _filter_config(preset, filters)
    if live:
        from recsys.search import similar_items

        try:
            result = similar_items(st.registry, run_id, item_id, config, k)
        except UnknownItemError as exc:
            raise _with_dataset_hint(exc, st, run_id, [item_id], named=bool(run)) from exc
        return {
            "run": run_id,
            "item_id": item_id,
            "k": k,
            "preset": preset_name,
            "config_hash": config.config_hash(),
            "source": "live",
            "items": [
                {"item_id": str(i), "score": s} for i, s in zip(result.item_ids, _floats(result.scores))
            ],
            "served_by": _served_by(result),
            "removed_by_rule": {str(r): int(n) for r, n in dict(result.removed_by_rule).items()},
            "plan": _jsonable(result.plan),
            "n_eligible": int(result.n_eligible) if result.n_eligible is not None else None,
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
    if run:
        run_id = st.resolve_run(run)
    else:
        run_id = st.default_run("two_tower") or st.resolve_run(None)
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
    the run to name: the run served by default is one of the default dataset's, so an item of
    a dataset imported later is unknown to it (``?run=`` picks the item's own run)."""
    if named:
        return exc
    from recsys.data.schema import load_stored_catalog
    from recsys.errors import RecsysError

    registry = st.registry
    try:
        served = registry._run_dataset(registry.get(run_id))
        others = sorted({registry._run_dataset(r) for r in registry.list_runs()} - {served, ""})
    except RecsysError:
        return exc
    wanted = set(map(str, item_ids))
    for name in others:
        try:
            ids = set(load_stored_catalog(name, registry.root)["item_id"].astype(str))
        except (RecsysError, KeyError):
            continue
        found = sorted(wanted & ids)
        if not found:
            continue

        def pick(fam: str | None, embedding: bool, ds: str = name) -> str | None:
            rid = registry.default_run(fam, embedding_only=embedding, dataset=ds)
            return rid if rid and registry._run_dataset(registry.get(rid)) == ds else None

        try:
            other = (family and pick(family, True)) or pick(None, True) or pick(None, False)
        except RecsysError:
            continue
        if other is None:
            continue
        return UnknownItemError(
            f"{exc} (without 'run', run {run_id} of dataset '{served}' answers); item "
            f"'{found[0]}' is in dataset '{name}': pass run={other} to ask that dataset's run"
        )
    return exc


def _served_by(result: Any) -> list[str]:
    """Per item, what served it: "model", a step of the run's fallback chain or "pin"."""
    return [str(s) for s in result.served_by] if result.served_by else ["model"] * len(result.item_ids)
