"""``recsys import`` and ``recsys datasets``: read, validate and store datasets."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recsys.cli.common import (
    _print_json,
    _progress,
    _split_list,
)
from recsys.config import data_dir
from recsys.errors import RecsysError


def cmd_import(args: argparse.Namespace) -> int:
    from recsys.data.adapters import import_dataset
    from recsys.data.mapping import parse_map_pairs

    mapping = parse_map_pairs(args.map)
    options: dict[str, Any] = {}
    if args.source == "csv":
        options = {
            "sep": args.sep,
            "header": args.header,
            "columns": _split_list(args.columns),
            "catalog_header": args.catalog_header,
            "catalog_columns": _split_list(args.catalog_columns),
            "catalog_encoding": args.catalog_encoding,
            "decimal": args.decimal,
            "tz": args.tz,
            "session_gap": args.session_gap,
            "event_map": args.event_map,
        }
    else:
        given = [
            flag
            for flag, value in (
                ("--sep", args.sep),
                ("--no-header/--header", args.header),
                ("--columns", args.columns),
                ("--catalog-columns", args.catalog_columns),
                ("--catalog-encoding", args.catalog_encoding),
                ("--decimal", args.decimal),
                ("--tz", args.tz),
                ("--session-gap", args.session_gap),
                ("--event-map", args.event_map),
                ("--catalog", args.catalog),
            )
            if value is not None
        ]
        if given:
            raise RecsysError(
                f"{', '.join(given)}: only for 'import csv'; the {args.source} importer knows its files"
            )
    if args.path is None and not (args.source == "csv" and args.catalog):
        raise RecsysError(
            "give the file to import (for csv: the events file, or a catalogue with --catalog FILE)"
        )
    ds = import_dataset(
        args.source,
        args.path,
        name=args.name,
        root=data_dir(args.data_dir),
        mapping=mapping or None,
        catalog_path=args.catalog,
        kind=args.kind,
        errors=args.errors,
        encoding=args.encoding,
        category_sep=args.category_sep,
        progress=None if args.dry_run else _progress(args, f"import {args.source}"),
        dry_run=args.dry_run,
        **options,
    )
    if args.dry_run:
        print(format_report(ds))
        print()
        print("first 5 parsed rows (nothing stored: --dry-run)")
        if len(ds.interactions):
            print("events:")
            print(ds.interactions.head(5).to_string(index=False))
        print("catalogue:")
        print(ds.catalog.head(5).to_string(index=False, max_colwidth=40))
        return 0
    _print_json({"dataset": ds.name, "summary": ds.summary(), "report": ds.report.to_dict()})
    if not args.quiet:
        print(format_report(ds), file=sys.stderr)
    return 0


def format_report(ds: Any) -> str:
    """The validation report as text lines (what was detected, dropped, filled, warned)."""
    r = ds.report
    s = ds.summary()
    lines = [
        f"dataset {ds.name}: {s['items']:,} items, {s['interactions']:,} interactions in "
        f"{s['sequences']:,} {'baskets' if ds.kind == 'baskets' else 'sessions'}, {s['users']:,} users, "
        f"{s['categories']:,} categories, {s['brands']:,} brands"
    ]
    for table, notes in r.reading.items():
        name = notes.get("file", table)
        lines.append(f"{table} ({name}):")
        for key, value in notes.items():
            if key != "file":
                lines.append(f"  {key}: {value}")
    for table, n in r.rows_read.items():
        lines.append(f"rows read, {table}: {n:,}")
    for reason, n in r.rows_dropped.items():
        lines.append(f"dropped {n:,} rows: {reason}")
    for w in r.warnings:
        lines.append(f"note: {w}")
    return "\n".join(lines)


def cmd_datasets(args: argparse.Namespace) -> int:
    from recsys.data.schema import dataset_meta, list_datasets

    root = data_dir(args.data_dir)
    for name in list_datasets(root):
        try:
            s = dataset_meta(name, root).get("summary", {})
        except RecsysError as exc:  # a damaged report.json: named, the others still listed
            print(f"{name:20s} DAMAGED   {exc}")
            continue
        print(
            f"{name:20s} {s.get('kind', ''):9s} items={s.get('items')} sequences={s.get('sequences')} "
            f"interactions={s.get('interactions')}"
        )
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``import``, ``datasets`` commands."""
    from recsys.data.reading import fields_help

    p = sub.add_parser(
        "import",
        help="import a dataset (your own CSV/Parquet export, or Online Retail, Instacart, REES46)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read, validate and store a dataset as Parquet under the data directory. "
        "Nothing already stored is changed when the import fails.\n\n"
        "For 'csv', the separator, header row, price format and timestamp format are detected and "
        "reported; every guess can be overridden. Columns named like a field are taken as it (the "
        "report says which); map your columns to these fields with --map COLUMN=FIELD, which "
        "overrides the guess for the columns and fields it names (other columns are kept as extra "
        "attributes):\n" + fields_help() + "\n\nWhen no column is a category, the product type read "
        "off the titles (their shared last word: 'Bag', 'Kurta', 'T-shirt') is stored as the category "
        "and the report says so; --map category=- leaves it out, --map COLUMN=category uses your "
        "column.\n\nExamples:\n"
        "  recsys import csv events.txt --map SessionId=sequence_id ItemId=item_id Time=timestamp\n"
        "  recsys import csv log.csv --columns user_id,item_id,category,event_type,timestamp "
        "--event-map pv=view buy=purchase --session-gap 30m\n"
        "  recsys import csv --catalog products.csv --map sku=item_id name=title dept=category aisle=category",
    )
    p.add_argument(
        "source",
        choices=["online_retail", "instacart", "rees46", "csv"],
        help="the format: 'csv' for your own file, or one of the known public datasets",
    )
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help="file (or folder, for instacart) to read; CSV, .txt, .tsv, .dat (gzipped too), Parquet, "
        "JSON lines or array (.jsonl, .json, gzipped too) or an Excel workbook (.xlsx). "
        "For csv it is the events file; leave it out to import a catalogue alone (--catalog)",
    )
    p.add_argument("--name", default=None, help="name to store the dataset under (default: the source name)")
    p.add_argument("--catalog", default=None, help="csv only: a catalogue file (one row per item)")
    p.add_argument(
        "--map",
        nargs="*",
        metavar="COLUMN=FIELD",
        help="csv only: map your columns to the fields listed above, e.g. --map SessionId=sequence_id; "
        "by position when the file has no header (--map 0=item_id); several columns to category "
        "join into one path in order; FIELD '-' drops a column; category=- stores no category "
        "(none inferred from the titles either)",
    )
    p.add_argument(
        "--kind",
        default=None,
        choices=["sessions", "baskets"],
        help="csv only: ordered sessions or unordered baskets (orders, invoices); default baskets for a "
        "shop platform's orders export (Shopify, WooCommerce, Magento), else sessions",
    )
    p.add_argument(
        "--errors",
        default="raise",
        choices=["raise", "drop"],
        help="raise: stop at the first bad value (default); drop: skip bad rows and count them",
    )
    p.add_argument(
        "--encoding", default="utf-8", help="text encoding of the files (default utf-8; e.g. cp1252, latin-1)"
    )
    p.add_argument(
        "--catalog-encoding", default=None, help="csv only: encoding of the catalogue, when it differs"
    )
    p.add_argument(
        "--sep",
        default=None,
        help="csv only: field separator: comma, semicolon, tab, pipe, :: or one character (default: detected)",
    )
    hdr = p.add_mutually_exclusive_group()
    hdr.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const=False,
        default=None,
        help="csv only: the first row is data, not column names (default: detected)",
    )
    hdr.add_argument(
        "--header",
        dest="header",
        action="store_const",
        const=True,
        help="csv only: the first row names the columns",
    )
    p.add_argument(
        "--columns",
        default=None,
        metavar="A,B,C",
        help="csv only: names for the columns of the events file (or of the catalogue when it is the only "
        "file), in order; schema field names need no --map",
    )
    chdr = p.add_mutually_exclusive_group()
    chdr.add_argument(
        "--catalog-no-header",
        dest="catalog_header",
        action="store_const",
        const=False,
        default=None,
        help="csv only: the catalogue's first row is data",
    )
    chdr.add_argument(
        "--catalog-header", dest="catalog_header", action="store_const", const=True, help=argparse.SUPPRESS
    )
    p.add_argument(
        "--catalog-columns", default=None, metavar="A,B,C", help="csv only: names for the catalogue's columns"
    )
    p.add_argument(
        "--decimal",
        default=None,
        choices=[".", ","],
        help="csv only: decimal mark of prices (default: detected; '£3.42', '₹1,099', '1.234,50 €' all read)",
    )
    p.add_argument(
        "--tz",
        default=None,
        help="csv only: time zone of timestamps written without one, e.g. UTC+8 or Europe/London (default UTC)",
    )
    p.add_argument(
        "--session-gap",
        default=None,
        metavar="DURATION",
        help="csv only: cut sessions from user_id and timestamp where the next event comes later than "
        "this, e.g. 30m (needed when there is no session column)",
    )
    p.add_argument(
        "--event-map",
        nargs="*",
        metavar="CODE=TYPE",
        default=None,
        help="csv only: your event codes as view, cart or purchase (or drop), e.g. --event-map pv=view buy=purchase",
    )
    p.add_argument(
        "--category-sep",
        default=None,
        help="csv only: separator of category path levels in your file (e.g. '/' or '.')",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read and validate only: print the report and the first 5 parsed rows, store nothing",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("datasets", help="list stored datasets")
    p.set_defaults(func=cmd_datasets)
