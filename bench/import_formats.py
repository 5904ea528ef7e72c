"""Benchmark: the generic import of one export written as CSV, gzipped JSON lines and .xlsx.

No target: it tells how long the file kinds the import reads take for the same content, so a
user knows what a year of invoices in Excel costs, and it checks that reading the new kinds
left the CSV path as fast as it was (run this script on main's tree and on the branch, in
the same session, alternating, with ``--formats csv``).

Setup (not timed): ``--n`` invoice lines in Online Retail II's layout (Invoice, StockCode,
Description, Quantity, InvoiceDate, Price, Customer ID, Country; seeded, invented), written
once per format (the workbook with two sheets, as UCI ships it). Then, alternately per repeat,
each format is imported with ``import_dataset("csv", ..., kind="baskets", errors="drop",
dry_run=True)``: read, mapping guessed (or given), validated and normalised, nothing stored.

Prints ONE JSON line: the median seconds per format, each format's ratio to CSV, the rows,
the load average before and after, the core count.

``--formats`` may also name ``shopify.csv`` and ``ga4.json`` (s31-x): the same lines as Shopify's
orders export and as GA4 purchase events in its BigQuery JSON export, recognised by their
columns (what the platform layouts' preparation costs over the plain CSV).

Usage: ``python bench/import_formats.py [--n 100000] [--repeats 3] [--formats csv,jsonl.gz,xlsx]
[--explicit-map]`` (``--explicit-map`` passes the mapping, as main's tree needs for this layout).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


EXPLICIT_MAP = {
    "Invoice": "sequence_id",
    "StockCode": "item_id",
    "Description": "title",
    "Quantity": "quantity",
    "InvoiceDate": "timestamp",
    "Price": "price",
    "Customer ID": "user_id",
}


def make_lines(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    invoice = 489434 + np.sort(rng.integers(0, max(1, n // 20), n))
    stock = rng.integers(0, 4000, n)
    return pd.DataFrame(
        {
            "Invoice": invoice.astype(str),
            "StockCode": np.char.add("2", stock.astype(str)),
            "Description": np.char.add("ITEM NUMBER ", stock.astype(str)),
            "Quantity": rng.integers(1, 24, n),
            "InvoiceDate": pd.Timestamp("2009-12-01 07:45")
            + pd.to_timedelta((invoice - invoice.min()) * 600, unit="s"),
            "Price": np.round(rng.uniform(0.3, 20, n), 2),
            "Customer ID": (12346 + invoice % 5000).astype(float),
            "Country": "United Kingdom",
        }
    )


def write(frame: pd.DataFrame, folder: Path, fmt: str) -> Path:
    path = folder / f"online_retail_II.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl.gz":
        text = frame.assign(InvoiceDate=frame["InvoiceDate"].astype(str)).to_json(
            orient="records", lines=True
        )
        path.write_bytes(gzip.compress(text.encode()))
    elif fmt == "xlsx":
        half = len(frame) // 2
        with pd.ExcelWriter(path, engine="openpyxl") as xl:
            frame.iloc[:half].to_excel(xl, sheet_name="Year 2009-2010", index=False)
            frame.iloc[half:].to_excel(xl, sheet_name="Year 2010-2011", index=False)
    elif fmt == "shopify.csv":
        shopify_orders(frame).to_csv(path, index=False)
    elif fmt == "ga4.json":
        path.write_text("".join(json.dumps(r) + "\n" for r in ga4_events(frame)), encoding="utf-8")
    else:
        raise SystemExit(f"unknown format {fmt}")
    return path


def shopify_orders(frame: pd.DataFrame) -> pd.DataFrame:
    """The same lines as Shopify's orders export lays them out (s31-x): ``Name`` the order, the
    order's fields (Email, Financial Status, Created at with its offset) on its first line only."""
    first = ~frame["Invoice"].duplicated()
    email = frame["Customer ID"].astype(int).astype(str) + "@example.invalid"
    return pd.DataFrame(
        {
            "Name": "#" + frame["Invoice"],
            "Email": email.where(first, ""),
            "Financial Status": pd.Series("paid", index=frame.index).where(first, ""),
            "Created at": frame["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S -0500").where(first, ""),
            "Lineitem quantity": frame["Quantity"],
            "Lineitem name": frame["Description"],
            "Lineitem price": frame["Price"],
            "Lineitem sku": frame["StockCode"],
            "Vendor": "Acme",
            "Cancelled at": "",
        }
    )


def ga4_events(frame: pd.DataFrame) -> list[dict]:
    """The same lines as GA4 purchase events in its BigQuery JSON export (s31-x): one event per
    invoice with an ``items`` array, ``event_timestamp`` in microseconds, ``ga_session_id`` in
    ``event_params``."""
    out = []
    for _invoice, lines in frame.groupby("Invoice", sort=False):
        micros = int(lines["InvoiceDate"].iloc[0].value // 1000)
        out.append(
            {
                "event_date": lines["InvoiceDate"].iloc[0].strftime("%Y%m%d"),
                "event_timestamp": str(micros),
                "event_name": "purchase",
                "event_params": [{"key": "ga_session_id", "value": {"int_value": str(micros // 10**6)}}],
                "user_id": None,
                "user_pseudo_id": f"{int(lines['Customer ID'].iloc[0])}.1700000000",
                "items": [
                    {"item_id": i, "item_name": t, "price": float(p), "quantity": int(q)}
                    for i, t, p, q in zip(
                        lines["StockCode"], lines["Description"], lines["Price"], lines["Quantity"]
                    )
                ],
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--formats", default="csv,jsonl.gz,xlsx")
    ap.add_argument(
        "--explicit-map",
        action="store_true",
        help="map the columns with --map's mapping instead of guessing (main before 30x guessed no 'Invoice')",
    )
    args = ap.parse_args()
    from recsys.data.adapters import import_dataset

    formats = [f for f in args.formats.split(",") if f]
    load_before = os.getloadavg()
    frame = make_lines(args.n)
    times: dict[str, list[float]] = {f: [] for f in formats}
    rows: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-import-formats-") as tmp:
        folder = Path(tmp)
        paths = {f: write(frame, folder, f) for f in formats}
        sizes = {f: paths[f].stat().st_size for f in formats}
        for _ in range(args.repeats):
            for fmt in formats:
                t0 = time.perf_counter()
                ds = import_dataset(
                    "csv",
                    paths[fmt],
                    name="bench",
                    root=folder / "data",
                    mapping=EXPLICIT_MAP if args.explicit_map else None,
                    kind="baskets",
                    errors="drop",
                    dry_run=True,
                )
                times[fmt].append(time.perf_counter() - t0)
                rows[fmt] = len(ds.interactions)
    med = {f: statistics.median(v) for f, v in times.items()}
    out = {
        "bench": "import_formats",
        "n": args.n,
        "repeats": args.repeats,
        "mapping": "explicit" if args.explicit_map else "guessed",
        "median_s": {f: round(v, 3) for f, v in med.items()},
        "ratio_to_csv": {f: round(v / med["csv"], 2) for f, v in med.items()} if "csv" in med else {},
        "rows_imported": rows,
        "file_bytes": sizes,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
