"""``FilterConfig.config_hash`` depends only on the non-default fields, and hashes stored before stay valid.

``tests/fixtures/hash_v1/`` is a data directory written by the code of main
before the change (commit 3c78446): presets (one with two versions) and a
precomputed SQLite table of two presets for a tiny run. ``hash_v1_golden.json``
holds varied configs with the hash that code gave them. Nothing here is
regenerated: these files are the stored data of a user who upgrades.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import flask
import pytest
from pydantic import Field

from recsys.filters import FilterConfig, PresetStore
from recsys.precompute import open_store
from recsys.serving import register_api

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = json.loads((FIXTURES / "hash_v1_golden.json").read_text())["configs"]
RUN = "prod2vec-20261204-195258-517356"  # the run of the fixture's precomputed tables


@pytest.fixture()
def old_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "hash_v1", root)
    # A checkout does not keep file times: give the run's files the time they had when the
    # tables were written, as on the disk of a user who upgrades (else the tables read as stale).
    store = open_store(None, root)
    try:
        stamp = max(float(m["run_stamp"]) for m in store.list_tables())
    finally:
        store.close()
    for path in (root / "runs" / RUN).iterdir():
        os.utime(path, (stamp, stamp))
    return root


def test_configs_hash_as_before_the_change() -> None:
    assert len(GOLDEN) > 20
    for entry in GOLDEN:
        assert FilterConfig.from_dict(entry["filters"]).config_hash() == entry["hash"], entry


class _Extended(FilterConfig):
    """FilterConfig with fields a later version might add, with defaults."""

    in_stock_only: bool = False
    max_age_days: int | None = None
    tags: list[str] = Field(default_factory=list)


def test_a_field_added_with_a_default_changes_no_hash() -> None:
    # FilterConfig itself gained do_not_associate, pins, boost and bury (empty by default)
    # after the golden hashes were written; a subclass adds more
    for entry in GOLDEN:
        assert _Extended(**entry["filters"]).config_hash() == entry["hash"], entry
    # ...while setting one does change the hash, and to different values for different settings
    base = _Extended().config_hash()
    tagged = _Extended(tags=["x"]).config_hash()
    assert tagged not in (
        base,
        _Extended(in_stock_only=True).config_hash(),
        _Extended(tags=["y"]).config_hash(),
    )
    assert _Extended(max_age_days=3).config_hash() != base


def test_a_merchandising_rule_changes_the_hash() -> None:
    pinned = FilterConfig.from_dict({"pins": [{"seed": "it001", "item_id": "it002", "position": 1}]})
    assert pinned.config_hash() != FilterConfig().config_hash()


def test_a_field_at_its_default_hashes_as_when_it_is_left_out() -> None:
    assert FilterConfig(exclude_seed=True, brands_allow=[]).config_hash() == FilterConfig().config_hash()
    assert FilterConfig(exclude_seed=False).config_hash() != FilterConfig().config_hash()


def test_the_no_filter_configs_constant_hash_is_only_for_configs_at_their_defaults() -> None:
    # the all-default config's hash is kept once per class: an unvalidated copy moved off the
    # defaults must not get it, and one moved back must
    base = FilterConfig().config_hash()
    moved = FilterConfig().model_copy(update={"exclude_adult": True})
    assert moved.config_hash() == FilterConfig(exclude_adult=True).config_hash() != base
    back = moved.model_copy(update={"exclude_adult": False})
    assert back.config_hash() == base
    assert FilterConfig().model_copy(update={"brands_deny": ["Acme"]}).config_hash() != base


def test_stored_presets_keep_their_hash_and_versions(
    old_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = PresetStore(old_root)
    with caplog.at_level(logging.WARNING):
        for name in ("same-cat", "no-adult", "rich"):
            history = store.history(name)
            for entry in history:
                config = store.load(name, entry["version"])
                assert config.config_hash() == entry["hash"], (name, entry)
            # saving the same config again is not a new version
            assert store.save(name, store.load(name)) == history[-1]["version"]
            assert store.history(name) == history
    assert "edited by hand" not in caplog.text
    assert [e["version"] for e in store.history("rich")] == [1, 2]


def _client(root: Path) -> Any:
    app = flask.Flask("test-config-hash")
    register_api(app, root, token="")
    return app.test_client()


@pytest.mark.parametrize("preset", ["same-cat", "rich"])
def test_stored_precomputed_tables_still_answer(old_root: Path, preset: str) -> None:
    config = PresetStore(old_root).load(preset)
    store = open_store(None, old_root)
    try:
        meta = store.table_meta(RUN, config.config_hash())
    finally:
        store.close()
    assert meta is not None and meta["preset_name"] == preset
    c = _client(old_root)
    base = f"/api/v1/similar/it004?run={RUN}&preset={preset}&k=5"
    live, pre = c.get(base), c.get(base + "&source=precomputed")
    assert live.status_code == 200 and pre.status_code == 200, pre.get_json()
    pre_json = pre.get_json()
    assert pre_json["source"] == "precomputed"
    assert pre_json["precomputed"]["stale"] is False, pre_json["precomputed"]
    assert pre_json["items"] == live.get_json()["items"]
