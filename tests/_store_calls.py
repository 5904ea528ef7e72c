"""What the processes of ``tests/_at_once.py`` run: module-level, so that a child started from
the fork server can import them by name (a test module is not importable there)."""

from __future__ import annotations

from typing import Any

from recsys.precompute import SQLiteStore
from recsys.vetting.store import JudgmentStore

BASE = {"dataset": "demo", "run": "r1", "preset": "p"}


def open_and_list(path: str) -> None:
    SQLiteStore(path).list_tables()


def first_write(root: str, user: str) -> None:
    JudgmentStore(root).judge(**BASE, seed="A", item_id="B", verdict=1, user=user)


def judge_many(root: str, user: str, n: int, barrier: Any = None) -> None:
    store = JudgmentStore(root)  # its own connections
    if barrier is not None:
        barrier.wait()
    for i in range(n):
        store.judge(
            **BASE,
            seed=f"S{i % 10}",
            item_id=f"I{i}",
            position=i % 10 + 1,
            verdict=1 if i % 2 else -1,
            user=user,
        )
