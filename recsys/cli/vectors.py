"""``recsys import-vectors``: import item vectors trained elsewhere as a run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recsys.cli.common import (
    _print_json,
    _progress,
)


def cmd_import_vectors(args: argparse.Namespace) -> int:
    from recsys.external import ImportVectorsError, import_vectors

    bar = _progress(args, "import vectors")
    try:
        out = import_vectors(
            args.dataset,
            args.name,
            args.file,
            ids=args.ids,
            index=args.index,
            query_vectors=args.query_vectors,
            query_ids=args.query_ids,
            metric=args.metric,
            fmt=args.format,
            column=args.column,
            errors=args.errors,
            evaluate=not args.no_evaluate,
            activate=args.activate or None,
            source="cli",
            root=args.data_dir,
            progress=bar,
        )
    except ImportVectorsError as exc:
        bar.close()
        _print_json({"stored": False, "report": exc.report})
        raise
    bar.close()
    _print_json({"stored": True, "run_id": out["run"]["run_id"], "report": out["report"]})
    from recsys.fallback import served_lines

    for line in served_lines(out["report"].get("served") or {}):
        print(line, file=sys.stderr)
    for warning in out["report"].get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``import-vectors`` command."""
    p = sub.add_parser(
        "import-vectors",
        help="import item vectors trained elsewhere (and their hnswlib index) as a run",
        description="Read item vectors (.npy + ids, Parquet/CSV with item_id, word2vec text or binary, "
        "Embedding Projector TSV), validate them against the dataset's catalogue, check an hnswlib index "
        "built elsewhere (rebuilt with a warning when it does not match) and store everything as a run of "
        "family 'external'. Nothing is stored when validation fails.",
    )
    p.add_argument("file", help="the vectors file")
    p.add_argument("--dataset", required=True, help="the stored dataset the ids belong to")
    p.add_argument("--name", required=True, help="a readable name for the run")
    p.add_argument(
        "--ids", default=None, help="ids in row order: .npy, or text with one id a line (or metadata.tsv)"
    )
    p.add_argument("--index", default=None, help="an hnswlib index file over the same rows (save_index)")
    p.add_argument("--query-vectors", default=None, help="a second space seeds are looked up by (same ids)")
    p.add_argument("--query-ids", default=None, help="ids of --query-vectors when it needs them")
    p.add_argument("--metric", default="cosine", choices=["cosine", "ip"], help="similarity (default cosine)")
    p.add_argument(
        "--format",
        default=None,
        choices=["npy", "parquet", "csv", "word2vec", "word2vec-binary", "projector"],
        help="file format (default: from the file name)",
    )
    p.add_argument("--column", default=None, help="parquet/csv: the vector column when there are several")
    p.add_argument(
        "--errors",
        default="raise",
        choices=["raise", "drop"],
        help="NaN/inf rows and duplicate ids: raise (default) or drop them and report",
    )
    p.add_argument("--no-evaluate", action="store_true", help="skip the offline metrics")
    p.add_argument("--activate", action="store_true", help="make it the active external run")
    p.set_defaults(func=cmd_import_vectors)
