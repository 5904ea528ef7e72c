"""Small files shaped like public e-commerce / recsys exports, written inside the tests.

Each writer lays out one export as its publisher documents it (column names, order,
separator, header or none, file suffix, time format); the values are invented here, a
few dozen rows, never copied from a real dataset. Every writer returns the paths it wrote.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

#: Ten product ids and names used across the layouts (invented).
NAMES = [
    "Blue Mug",
    "Red Kettle",
    "Green Teapot",
    "Oak Board",
    "Steel Whisk",
    "Glass Jar",
    "Linen Apron",
    "Clay Bowl",
    "Tin Box",
    "Cork Mat",
]
EPOCH = 1_433_221_332  # an instant in 2015, unix seconds


def _lines(path: Path, rows: list[list[object]], sep: str = ",", header: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [sep.join(header)] if header else []
    out += [sep.join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _sessions(n_sessions: int = 8, per: int = 3) -> list[tuple[int, int, int]]:
    """(session number, step, item number) for a few sessions of ``per`` events."""
    return [(s, k, (s * 3 + k) % len(NAMES)) for s in range(n_sessions) for k in range(per)]


def retailrocket(folder: Path) -> dict[str, Path]:
    """RetailRocket ``events.csv``: timestamp (unix ms), visitorid, event, itemid, transactionid
    (filled on transaction rows only). No session column."""
    rows = []
    for s, k, i in _sessions():
        event = ("view", "addtocart", "transaction")[k]
        ms = (EPOCH + s * 86_400 + k * 60) * 1000 + 117
        rows.append([ms, 257597 + s, event, 355908 + i, 4000 + s if event == "transaction" else ""])
    header = ["timestamp", "visitorid", "event", "itemid", "transactionid"]
    return {"events": _lines(folder / "events.csv", rows, header=header)}


def diginetica(folder: Path) -> dict[str, Path]:
    """Diginetica (CIKM Cup 2016) ``train-item-views.csv`` (semicolon, userId mostly NA,
    timeframe = milliseconds since the session's start, eventdate a date) and ``products.csv``
    (itemId;pricelog2;product.name.tokens with comma-separated tokens)."""
    rows = []
    for s, k, i in _sessions():
        rows.append(
            [s + 1, "NA" if s % 3 else 5000 + s, 81766 + i, k * 52_000 + 3_000, f"2016-05-{9 + s:02d}"]
        )
    views = _lines(
        folder / "train-item-views.csv",
        rows,
        sep=";",
        header=["sessionId", "userId", "itemId", "timeframe", "eventdate"],
    )
    prods = [[81766 + i, 9 + i % 4, f"{4875 + i},{6 * i + 1},{1000 + i}"] for i in range(len(NAMES))]
    products = _lines(
        folder / "products.csv", prods, sep=";", header=["itemId", "pricelog2", "product.name.tokens"]
    )
    return {"events": views, "catalog": products}


def yoochoose(folder: Path) -> dict[str, Path]:
    """YooChoose (RecSys Challenge 2015) ``yoochoose-clicks.dat``: no header, comma:
    session id, ISO time with Z, item id, category ('0' = none, 'S' = special offer)."""
    rows = []
    for s, k, i in _sessions():
        t = pd.Timestamp("2014-04-07T10:51:09.277Z") + pd.Timedelta(minutes=60 * s + k)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        rows.append([s + 1, stamp, 214536502 + i, ("0", "S", "3")[i % 3]])
    return {"events": _lines(folder / "yoochoose-clicks.dat", rows)}


def hm(folder: Path) -> dict[str, Path]:
    """H&M (Kaggle 2022) ``transactions_train.csv`` (t_dat, customer_id as a 64-hex hash,
    article_id with a leading zero, price, sales_channel_id) and ``articles.csv``."""
    rows = []
    for s, _k, i in _sessions():
        customer = f"{s:064x}".replace("0", "a", 60 - s)
        rows.append([f"2018-09-{20 + s // 2:02d}", customer, f"0{108775015 + i}", f"0.0{50 + i}8", 1 + s % 2])
    tx = _lines(
        folder / "transactions_train.csv",
        rows,
        header=["t_dat", "customer_id", "article_id", "price", "sales_channel_id"],
    )
    header = [
        "article_id", "product_code", "prod_name", "product_type_no", "product_type_name",
        "product_group_name", "graphical_appearance_no", "graphical_appearance_name",
        "colour_group_code", "colour_group_name", "department_no", "department_name",
        "index_name", "section_name", "garment_group_name", "detail_desc",
    ]  # fmt: skip
    arts = []
    for i, name in enumerate(NAMES):
        kind = ("Vest top", "Trousers", "Sweater")[i % 3]
        group = ("Garment Upper body", "Garment Lower body", "Garment Upper body")[i % 3]
        desc = f'"{name} in soft jersey, with a round neckline"'
        arts.append([f"0{108775015 + i}", f"0{108775 + i}", name, 253 + i % 3, kind, group, 1010016,
                     "Solid", 9, "Black", 1676, "Jersey Basic", "Ladieswear", "Womens Everyday Basics",
                     "Jersey Basic", desc])  # fmt: skip
    return {"events": tx, "catalog": _lines(folder / "articles.csv", arts, header=header)}


ONLINE_RETAIL_II_COLUMNS = [
    "Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country",
]  # fmt: skip


def _online_retail_ii_frame(year: int) -> pd.DataFrame:
    rows = []
    for s, k, i in _sessions(6):
        cancelled = s == 5 and year == 2010
        rows.append(
            {
                "Invoice": f"C{489434 + s}" if cancelled else 489434 + s + (year - 2009) * 100,
                "StockCode": f"8504{i}" if i % 2 else 21232 + i,
                "Description": NAMES[i].upper(),
                "Quantity": -2 if cancelled else 1 + k,
                "InvoiceDate": pd.Timestamp(f"{year}-12-01 07:45:00") + pd.Timedelta(hours=s),
                "Price": 1.25 + i,
                "Customer ID": float(13085 + s) if s != 2 else None,
                "Country": "United Kingdom",
            }
        )
    return pd.DataFrame(rows, columns=ONLINE_RETAIL_II_COLUMNS)


def online_retail_ii_xlsx(folder: Path) -> dict[str, Path]:
    """UCI Online Retail II as published: one workbook, one sheet per year (Excel types:
    numeric invoices and stock codes where they are numbers, a float Customer ID, date-times),
    a cancellation ('C' invoice, negative quantity) and a line with no customer."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "online_retail_II.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        _online_retail_ii_frame(2009).to_excel(xl, sheet_name="Year 2009-2010", index=False)
        _online_retail_ii_frame(2010).to_excel(xl, sheet_name="Year 2010-2011", index=False)
    return {"events": path}


def online_retail_ii_csv(folder: Path) -> dict[str, Path]:
    """The CSV copy of Online Retail II (both years in one file; Customer ID as '13085.0')."""
    frame = pd.concat([_online_retail_ii_frame(2009), _online_retail_ii_frame(2010)])
    frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "online_retail_II.csv"
    frame.to_csv(path, index=False)
    return {"events": path}


def _jsonl(path: Path, records: list[dict], gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def amazon_2018(folder: Path) -> dict[str, Path]:
    """Amazon reviews 2014/2018 (McAuley): gzipped JSON lines named ``.json.gz`` (reviewerID,
    asin, overall, unixReviewTime in seconds, reviewTime, summary) and the metadata lines
    (asin, title, brand, category as a list, price as '$12.99', description as a list)."""
    reviews, meta = [], []
    for s, k, i in _sessions():
        reviews.append(
            {
                "reviewerID": f"A2SUAM1J3GNN{s}B",
                "asin": f"000001371{i}",
                "reviewerName": "J. Doe",
                "helpful": [k, 3],
                "reviewText": "Works as described.",
                "overall": 5.0 - k,
                "summary": f"review {s}-{k}",
                "unixReviewTime": EPOCH + s * 86_400 * 30 + k * 86_400,
                "reviewTime": "09 13, 2015",
            }
        )
    for i, name in enumerate(NAMES):
        meta.append(
            {
                "asin": f"000001371{i}",
                "title": name,
                "brand": ("Acme", "Bolt")[i % 2],
                "category": ["Home & Kitchen", ("Kitchen", "Dining")[i % 2]],
                "price": f"${3 + i}.99",
                "description": [f"A {name.lower()}.", "Dishwasher safe."],
                "imageURL": [],
            }
        )
    return {
        "events": _jsonl(folder / "Home_and_Kitchen_5.json.gz", reviews, gz=True),
        "catalog": _jsonl(folder / "meta_Home_and_Kitchen.json.gz", meta, gz=True),
    }


def amazon_2023(folder: Path) -> dict[str, Path]:
    """Amazon reviews 2023 (McAuley Lab): ``.jsonl`` with user_id, asin, parent_asin,
    timestamp in milliseconds and a review ``title`` (not the product's), and the metadata
    lines keyed by parent_asin (main_category, title, store, categories list, price or null)."""
    reviews, meta = [], []
    for s, k, i in _sessions():
        reviews.append(
            {
                "rating": 5.0 - k,
                "title": f"Review {s}-{k}: {('great', 'fine', 'meh')[k]}",
                "text": "Works as described.",
                "images": [],
                "asin": f"B0{i}8SZDGXG",
                "parent_asin": f"B0{i}BBQ29N5",
                "user_id": f"AEYORY2AVPMCPDV57CE337YU5LX{s}",
                "timestamp": (EPOCH + s * 86_400 + k * 600) * 1000 + 948,
                "helpful_vote": k,
                "verified_purchase": True,
            }
        )
    for i, name in enumerate(NAMES):
        meta.append(
            {
                "main_category": "All Beauty",
                "title": name,
                "average_rating": 4.5,
                "rating_number": 10 + i,
                "features": [],
                "description": [],
                "price": None if i % 4 == 0 else 3.5 + i,
                "images": [{"large": "https://example.invalid/i.jpg"}],
                "store": ("Acme", "Bolt")[i % 2],
                "categories": [],
                "details": {"Brand": ("Acme", "Bolt")[i % 2]},
                "parent_asin": f"B0{i}BBQ29N5",
            }
        )
    return {
        "events": _jsonl(folder / "All_Beauty.jsonl", reviews),
        "catalog": _jsonl(folder / "meta_All_Beauty.jsonl", meta),
    }


def movielens(folder: Path) -> dict[str, Path]:
    """MovieLens (GroupLens) ``ratings.csv`` (userId, movieId, rating, timestamp in seconds)
    and ``movies.csv`` (movieId, title with the year, genres separated by '|')."""
    rows = [[s + 1, 1 + i, 4.0 - k * 0.5, EPOCH + s * 7_200 + k * 30] for s, k, i in _sessions()]
    ratings = _lines(folder / "ratings.csv", rows, header=["userId", "movieId", "rating", "timestamp"])
    movies = [
        [
            1 + i,
            f'"{name}, The ({1990 + i})"',
            ("Adventure|Animation|Children", "Comedy|Romance", "Drama")[i % 3],
        ]
        for i, name in enumerate(NAMES)
    ]
    return {
        "events": ratings,
        "catalog": _lines(folder / "movies.csv", movies, header=["movieId", "title", "genres"]),
    }


def movielens_1m(folder: Path) -> dict[str, Path]:
    """MovieLens 1M (GroupLens): ``ratings.dat`` and ``movies.dat``, fields joined by ``::``, no
    header, movies.dat in latin-1 (titles like 'Cité des enfants perdus, La (1995)')."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{s + 1}::{1 + i}::{5 - k}::{EPOCH + s * 7_200 + k * 30}" for s, k, i in _sessions()]
    ratings = folder / "ratings.dat"
    ratings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    movies = folder / "movies.dat"
    titles = [f"{name}, La Cité ({1990 + i})" for i, name in enumerate(NAMES)]
    lines = [f"{1 + i}::{t}::{('Animation|Comedy', 'Drama')[i % 2]}" for i, t in enumerate(titles)]
    movies.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return {"events": ratings, "catalog": movies}


def olist(folder: Path) -> dict[str, Path]:
    """Olist (Brazilian e-commerce) ``olist_order_items_dataset.csv`` and
    ``olist_products_dataset.csv`` (product_category_name in Portuguese, misspelt 'lenght')."""
    rows = []
    for s, k, i in _sessions(8, 2):
        order = f"00010242fe8c5a6d1ba2dd792cb1621{s}"
        rows.append([order, k + 1, f"4244733e06e7ecb4970a6e2683c13e6{i}", "48436dade18ac8b2bce089ec2a041202",
                     f"2017-09-{19 + s:02d} 09:45:35", f"{58.9 + i:.2f}", "13.29"])  # fmt: skip
    items = _lines(
        folder / "olist_order_items_dataset.csv",
        rows,
        header=[
            "order_id",
            "order_item_id",
            "product_id",
            "seller_id",
            "shipping_limit_date",
            "price",
            "freight_value",
        ],
    )
    prods = [
        [
            f"4244733e06e7ecb4970a6e2683c13e6{i}",
            ("perfumaria", "artes", "cama_mesa_banho")[i % 3],
            40 + i,
            287,
            1,
        ]
        for i in range(len(NAMES))
    ]
    header = [
        "product_id",
        "product_category_name",
        "product_name_lenght",
        "product_description_lenght",
        "product_photos_qty",
    ]
    return {"events": items, "catalog": _lines(folder / "olist_products_dataset.csv", prods, header=header)}
