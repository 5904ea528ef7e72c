"""Command line: ``python -m recsys ...`` (run with ``--help`` for the commands).

The commands live in :mod:`recsys.cli` (one module per command); this file is
the entry point (``python -m recsys``, the ``recsys`` script, and the driver
script ``spark-submit`` runs).
"""

from __future__ import annotations

import sys

from recsys.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
