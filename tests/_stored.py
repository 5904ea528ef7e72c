"""Hashes of a data directory's stored bytes, to prove that a refused request changed nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every stored file (job logs and the session secret aside)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and "jobs" not in p.parts and p.name != ".secret_key":
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
