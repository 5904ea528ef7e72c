"""The behavioural checks see a precomputed table chunk by chunk as it streams into its store
(issue 16): memory stays bounded by a chunk, every seed is checked (a failing seed in the last
chunk still blocks publishing, and the old table is still served), and the chunked report and
the published table equal the whole-table ones. SQLite always; Redis when ``redis-server`` exists.
"""

from __future__ import annotations

import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.checks import ChecksFailedError, ListChecks, checks_for_lists, run_checks, table_checks
from recsys.precompute import PublishChecks, SQLiteStore, open_store, precompute
from recsys.registry import Registry
from tests._checks_data import make_shop
from tests._redis import redis_server

N, K, CHUNK = 20_000, 10, 1_500  # the last chunk is a partial one


def big_catalog() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "item_id": [f"it{i}" for i in range(N)],
            "title": [f"title {i}" for i in range(N)],
            "brand": rng.choice(["Acme", "Bolt", "Cora", "Dune", "Echo"], N),
            "adult": np.arange(N) < 50,  # it0..it49 are adult
        }
    )


def rows(bad_last: bool = False, n: int = N) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """A table of ``n`` seeds made on the fly, fresh objects per row (as precompute's searcher makes
    them); with ``bad_last`` the last seed (non-adult) shows an adult item."""
    for s in range(n):
        items = [f"it{50 + (s * 7 + j * 13) % (N - 50)}" for j in range(K)]
        if bad_last and s == n - 1:
            items[3] = "it7"
        yield f"it{s}", [(i, 1.0 - j / 100) for j, i in enumerate(items)]


def meta(preset: str) -> dict[str, Any]:
    return {
        "run_id": "run1",
        "preset_name": preset,
        "preset_hash": f"h-{preset}",
        "k": K,
        "written_at": "2026-12-04T00:00:00+00:00",
        "written_ts": 1.0,
        "run_stamp": 0.0,
        "config": {},
    }


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "pre.sqlite")
        yield s
        s.close()
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis", reason="the redis package is not installed")
    with redis_server(binary, tmp_path) as url:
        s = open_store(url)
        yield s
        s.close()


def streamed(store: Any, catalog: pd.DataFrame, n: int, preset: str) -> tuple[int, int, PublishChecks]:
    """(rows written, peak traced bytes, the checks) of streaming ``n`` rows into ``store``."""
    gate = PublishChecks(ListChecks(catalog, K, run="run1", preset=preset), chunk=CHUNK)
    tracemalloc.start()
    try:
        written = store.write_table(meta(preset), gate.rows(rows(n=n)), before_publish=gate)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return written, peak, gate


def test_a_large_table_is_checked_chunk_by_chunk_in_bounded_memory(store: Any) -> None:
    catalog = big_catalog()
    streamed(store, catalog, CHUNK, "warm-up")  # imports and catalogue look-up tables, once
    _, quarter_peak, _ = streamed(store, catalog, N // 4, "quarter")
    n, peak, good = streamed(store, catalog, N, "p")
    assert n == N and good.report.passed and good.report.n_lists == N  # every seed was checked
    # the whole table is ~33 MB of Python objects: four times the rows, about the same peak
    assert peak - quarter_peak < 2e6, f"peak {peak / 1e6:.1f} MB vs {quarter_peak / 1e6:.1f} MB for N/4"
    assert [e[0] for e in store.get("run1", "h-p", f"it{N - 1}")] == [e[0] for e in list(rows())[-1][1]]

    bad = PublishChecks(ListChecks(catalog, K, run="run1", preset="p"), chunk=CHUNK)
    with pytest.raises(ChecksFailedError, match="is not published: blocking check failed: adult") as info:
        store.write_table({**meta("p"), "preset_hash": "h-p2"}, bad.rows(rows(bad_last=True)), bad)
    assert info.value.report.n_lists == N
    adult = next(r for r in info.value.report.results if r.name == "adult")
    assert adult.examples == [(f"it{N - 1}", "it7")]  # the one failing seed, in the last chunk
    assert store.table_meta("run1", "h-p2") is None  # nothing of the refused table was published
    assert store.table_meta("run1", "h-p")["n_items"] == N  # the old table is still served
    assert store.get("run1", "h-p", "it0") is not None and store.get("run1", "h-p2", "it0") is None


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("stream-shop")
    return {"root": root, **make_shop(root)}


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_chunked_report_equals_the_whole_table_report(shop: dict[str, Any], chunk: int) -> None:
    """Every check, including asymmetry (pairs across chunks) and slices (held-out seeds spread
    over chunks), gives the same report chunk by chunk as on the whole table at once."""
    from recsys.filters import PresetStore
    from recsys.vetting.precision import run_lists

    registry = Registry(shop["root"])
    ids = [str(i) for i in registry.load_model(shop["run"]).item_ids_]
    for preset in ("plain", "same-cat"):
        lists = run_lists(registry, shop["run"], ids, PresetStore(shop["root"]).load(preset), 5)
        whole = checks_for_lists(registry, shop["run"], lists, 5, preset=preset)
        checks = table_checks(registry, shop["run"], 5, preset=preset)
        seeds = list(lists)
        for start in range(0, len(seeds), chunk):
            checks.add({s: lists[s] for s in seeds[start : start + chunk]})
        chunked = checks.report()
        assert chunked.model_dump() == whole.model_dump()
        asym = next(r for r in whole.results if r.name == "asymmetry")
        slices = next(r for r in whole.results if r.name == "slices")
        assert asym.value is not None and slices.value is not None  # both were judged
    # the one-chunk path is the documented run_checks
    cat = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["x", "X ", "y"], "adult": [0, 0, 1]})
    lists = {"a": ["b", "c"], "b": ["a"], "c": ["a"]}
    one = ListChecks(cat, 2)
    for s in lists:
        one.add({s: lists[s]})
    assert one.report().model_dump() == run_checks(lists, cat, 2).model_dump()


def test_parts_checked_apart_and_merged_in_order_equal_the_whole_table_report(shop: dict[str, Any]) -> None:
    """What Spark's partitions do: each part of the table is checked by its own blank copy (the
    copy travels pickled, as a broadcast does), its partial comes back pickled, and the parts
    merged in table order give the whole-table report, examples and asymmetry pairs included;
    merged out of order, the first examples differ."""
    import pickle

    from recsys.filters import PresetStore
    from recsys.vetting.precision import run_lists

    registry = Registry(shop["root"])
    ids = [str(i) for i in registry.load_model(shop["run"]).item_ids_]
    lists = run_lists(registry, shop["run"], ids, PresetStore(shop["root"]).load("plain"), 5)
    whole = checks_for_lists(registry, shop["run"], lists, 5, preset="plain").model_dump()
    seeds = list(lists)
    bounds = [0, 13, 14, 50, len(seeds)]  # uneven parts, one of a single seed
    driver = table_checks(registry, shop["run"], 5, preset="plain")
    shipped = pickle.dumps(driver.blank())
    partials = []
    for a, b in zip(bounds, bounds[1:]):
        part = pickle.loads(shipped)
        part.add({s: lists[s] for s in seeds[a:b]})
        partials.append(pickle.loads(pickle.dumps(part.partial())))
    for p in partials:
        driver.merge(p)
    assert driver.report().model_dump() == whole
    assert driver.n_lists == len(seeds)
    # the duplicates check has more than ten failing lists: its examples are the first ten in table order
    dup = next(r for r in whole["results"] if r["name"] == "duplicates")
    assert len(dup["examples"]) == 10
    shuffled = table_checks(registry, shop["run"], 5, preset="plain")
    for p in reversed(partials):
        shuffled.merge(p)
    assert shuffled.report().model_dump() != whole


def test_precompute_in_chunks_publishes_what_it_computes(shop: dict[str, Any], tmp_path: Path) -> None:
    """The streamed table equals the lists the searcher gives, and its report the whole-table one."""
    from recsys.filters import PresetStore
    from recsys.vetting.precision import run_lists

    root, run = shop["root"], shop["run"]
    registry = Registry(root)
    ids = [str(i) for i in registry.load_model(run).item_ids_]
    lists = run_lists(registry, run, ids, PresetStore(root).load("same-cat"), 5)
    meta_out = precompute(root, run, "same-cat", k=5, store=str(tmp_path / "a.sqlite"), check_chunk=7)
    store = SQLiteStore(tmp_path / "a.sqlite")
    try:
        stored = {s: [e[0] for e in store.get(run, meta_out["preset_hash"], s)] for s in ids}
    finally:
        store.close()
    assert stored == {s: [str(i) for i in v] for s, v in lists.items()}
    whole = checks_for_lists(registry, run, lists, 5, preset="same-cat").to_dict()
    assert {k: v for k, v in meta_out["checks"].items() if k != "seconds"} == whole
