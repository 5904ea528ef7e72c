"""A synthetic shop with known structure: the demo dataset.

The generative story
--------------------
*Catalogue.* A fixed category tree of 49 leaf categories under Women, Men, Kids,
Unisex, Home, Electronics and one Adult category (its items have ``adult=True``).
Each leaf has a gender (Women -> women, Men -> men, Kids -> kids, Unisex -> unisex,
others ""), a typical price and spread, product nouns and adjectives. Brands (at least
200 at the default size, made of readable syllables such as "Nimbus" or "Korcrest")
belong to one domain (fashion, toys, home, electronics, adult), cover a few of its leaf
categories, and have a price tier (budget to luxury) and a popularity. Each item gets a
leaf (popular leaves get more items), a brand among the leaf's brands, a lognormal price
around ``leaf price x brand tier``, a title such as ``"Nimbus Women's Lightweight Trail
Running Shoe, Navy"``, and a short description. Within its leaf an item falls in a price
band (budget, mid, premium: the leaf's price tertiles); the pair leaf + band is its
*cluster*, the shopper intent it belongs to. Item popularity is Zipf-like within a leaf;
15% of items are niche (20x less popular) and 8% are *new*: launched between 60% and 95%
of the way through the period, they get no events before their launch. Together these
give a long tail of items with 0-2 events, for cold-item evaluation.

*Sessions.* Over 90 days (from 2024-01-01), each session has a shopper (``user_id``) and
a primary intent: a leaf (by leaf popularity), a price band and, half the time, a
preferred brand (that of an item of the intent's cluster drawn by popularity). Within an
intent the shopper has a *wish*: a product type and a budget, those of an item drawn
uniformly from the intent's cluster (so wishes are spread like the cluster's offer,
not like its popularity; the product type is the noun of the title, e.g. "Chelsea
Boot", which the category tree does not show). The shopper views 1 + Geometric(0.25)
items (at most 15). For each view the shop shows a listing of ``SHOWN`` (12) items drawn
by popularity (systematic sampling over the popularity mass, so an item is shown about
in proportion to its popularity): 45% of the time from the preferred brand in that leaf
(when there is one), else mostly from the intent's cluster, sometimes from the whole
leaf (8%); the shopper opens the shown item with the highest utility
``TYPE_BONUS (2.5) x [same product type as the wish] - |log(price / budget)| /
PRICE_SCALE (0.15) + Gumbel noise`` (a logit choice among the shown items). Items not
yet launched at the session's start are not shown. 4% of views are anywhere in the
shop, one item by popularity. Nothing in the choice looks at whether an item is new or
how often it was seen: a new item is opened when it is shown and fits the wish, like
any other. 30% of sessions have a second intent (with its own wish), which is a
complementary leaf (laptop -> mouse, laptop bag, keyboard; running shoes -> socks, water
bottle; ...) 60% of the time and a random leaf otherwise. 30% of sessions end in a
purchase: the last item viewed in the primary intent is added to the cart and, 60% of
the time when its leaf has complements, one or two complementary items in the same
price band are added too (the basket, drawn by popularity); then all carted items are
purchased. 10% of the other sessions abandon a cart. Events in a session are 1 s to a
few minutes apart. A view of a not-yet-launched item (only when every shown item was
unlaunched, or the launch fell inside the session) is replaced by the most popular
launched item of its cluster.

The result is ``kind="sessions"``; the purchase events of a session form its basket.
The catalogue carries the ground truth as extra columns: ``cluster`` (``"<leaf> |
<band>"``), ``price_band``, ``product_type`` (the title's noun), ``is_new`` and
``launched_at``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import CATALOG_COLUMNS, INTERACTION_COLUMNS, Dataset, ValidationReport

logger = logging.getLogger(__name__)

START = pd.Timestamp("2024-01-01")
SPAN_DAYS = 90
BANDS = ("budget", "mid", "premium")
SHOWN = 12  # items a listing shows per view; the shopper opens the one that fits the wish best
PRICE_SCALE = 0.15  # log-price distance from the budget that costs one unit of utility
TYPE_BONUS = 2.5  # utility of the wished product type (the noun of the title)
WISH_UNIFORM = True  # the wish is an item drawn uniformly from the cluster (False: by popularity)

# (path, median price, log-sigma, traffic weight, nouns, adjectives)
_W, _M = "Women", "Men"
_RUN_ADJ = ["Lightweight", "Cushioned", "Responsive", "Breathable", "Stability"]
_LEAVES: list[tuple[str, float, float, float, list[str], list[str]]] = [
    ("Women > Shoes > Running", 95, 0.35, 3.0, ["Running Shoe", "Trail Running Shoe", "Road Running Shoe"], _RUN_ADJ),
    ("Women > Shoes > Boots", 120, 0.4, 2.0, ["Ankle Boot", "Chelsea Boot", "Knee-High Boot", "Hiking Boot"],
     ["Leather", "Suede", "Waterproof", "Lined", "Classic"]),
    ("Women > Shoes > Sandals", 45, 0.4, 1.5, ["Sandal", "Slide", "Espadrille"],
     ["Strappy", "Flat", "Platform", "Leather", "Comfort"]),
    ("Women > Clothing > Dresses", 70, 0.45, 3.0, ["Midi Dress", "Maxi Dress", "Wrap Dress", "Shirt Dress"],
     ["Floral", "Linen", "Jersey", "Pleated", "Satin"]),
    ("Women > Clothing > Tops", 30, 0.45, 3.0, ["T-Shirt", "Blouse", "Tank Top", "Knit Sweater"],
     ["Cotton", "Relaxed", "Ribbed", "Oversized", "Silk"]),
    ("Women > Clothing > Jeans", 65, 0.35, 2.0, ["Skinny Jeans", "Straight Jeans", "Wide-Leg Jeans", "Mom Jeans"],
     ["High-Rise", "Stretch", "Vintage Wash", "Organic Cotton", "Cropped"]),
    ("Women > Clothing > Jackets", 130, 0.45, 1.5, ["Puffer Jacket", "Trench Coat", "Denim Jacket", "Rain Jacket"],
     ["Quilted", "Water-Repellent", "Cropped", "Longline", "Insulated"]),
    ("Women > Sportswear > Leggings", 45, 0.35, 2.0, ["Leggings", "Yoga Pants", "Running Tights"],
     ["High-Waist", "Seamless", "Compression", "7/8", "Thermal"]),
    ("Women > Accessories > Handbags", 90, 0.55, 2.0, ["Tote Bag", "Crossbody Bag", "Shoulder Bag", "Clutch"],
     ["Leather", "Quilted", "Woven", "Mini", "Structured"]),
    ("Women > Accessories > Jewellery", 45, 0.6, 1.5, ["Necklace", "Hoop Earrings", "Bracelet", "Ring"],
     ["Gold-Plated", "Sterling Silver", "Pearl", "Minimalist", "Layered"]),
    ("Men > Shoes > Running", 100, 0.35, 2.5, ["Running Shoe", "Trail Running Shoe", "Road Running Shoe"], _RUN_ADJ),
    ("Men > Shoes > Sneakers", 85, 0.4, 2.5, ["Low-Top Sneaker", "High-Top Sneaker", "Court Sneaker"],
     ["Leather", "Canvas", "Retro", "Minimal", "Suede"]),
    ("Men > Shoes > Formal", 120, 0.4, 1.0, ["Oxford Shoe", "Derby Shoe", "Loafer", "Brogue"],
     ["Leather", "Patent", "Suede", "Classic", "Handmade"]),
    ("Men > Clothing > Shirts", 45, 0.4, 2.0, ["Oxford Shirt", "Dress Shirt", "Flannel Shirt", "Linen Shirt"],
     ["Slim-Fit", "Regular-Fit", "Non-Iron", "Checked", "Striped"]),
    ("Men > Clothing > Jeans", 70, 0.35, 2.0, ["Slim Jeans", "Straight Jeans", "Tapered Jeans", "Relaxed Jeans"],
     ["Stretch", "Raw Denim", "Stonewashed", "Organic Cotton", "Selvedge"]),
    ("Men > Clothing > Jackets", 140, 0.45, 1.5, ["Bomber Jacket", "Parka", "Field Jacket", "Rain Jacket"],
     ["Quilted", "Waterproof", "Wool-Blend", "Insulated", "Packable"]),
    ("Men > Clothing > Suits", 220, 0.4, 0.8, ["Suit Jacket", "Two-Piece Suit", "Blazer"],
     ["Slim-Fit", "Wool", "Tailored", "Stretch", "Linen"]),
    ("Men > Accessories > Watches", 180, 0.7, 1.2, ["Chronograph Watch", "Dive Watch", "Dress Watch", "Field Watch"],
     ["Automatic", "Quartz", "Stainless Steel", "Titanium", "Solar"]),
    ("Men > Accessories > Wallets", 40, 0.45, 1.0, ["Bifold Wallet", "Card Holder", "Zip Wallet"],
     ["Leather", "Slim", "RFID-Blocking", "Canvas", "Vintage"]),
    ("Kids > Clothing > T-Shirts", 15, 0.35, 1.5, ["T-Shirt", "Graphic Tee", "Long-Sleeve Top"],
     ["Dinosaur", "Striped", "Rainbow", "Space", "Organic Cotton"]),
    ("Kids > Clothing > Outerwear", 45, 0.4, 1.0, ["Rain Jacket", "Snowsuit", "Fleece Jacket"],
     ["Waterproof", "Padded", "Reflective", "Hooded", "Lightweight"]),
    ("Kids > Shoes > Sneakers", 40, 0.35, 1.2, ["Sneaker", "Light-Up Sneaker", "School Shoe"],
     ["Velcro", "Washable", "Glitter", "Leather", "Canvas"]),
    ("Kids > Toys > Building Sets", 35, 0.6, 1.5, ["Building Set", "Construction Kit", "Marble Run"],
     ["Castle", "Space Station", "City", "Race Track", "Dinosaur"]),
    ("Kids > Toys > Plush", 20, 0.45, 1.0, ["Plush Bear", "Plush Bunny", "Plush Dinosaur", "Soft Toy"],
     ["Cuddly", "Giant", "Mini", "Organic", "Sleepy"]),
    ("Kids > Toys > Puzzles & Games", 22, 0.45, 1.0, ["Jigsaw Puzzle", "Board Game", "Card Game"],
     ["100-Piece", "Family", "Educational", "Travel", "Wooden"]),
    ("Unisex > Sports > Socks", 14, 0.3, 1.5, ["Running Socks", "Hiking Socks", "Ankle Socks 3-Pack"],
     ["Cushioned", "Merino", "Quick-Dry", "Compression", "Seamless"]),
    ("Unisex > Sports > Water Bottles", 22, 0.4, 1.0, ["Water Bottle", "Insulated Flask", "Squeeze Bottle"],
     ["Stainless Steel", "Leak-Proof", "BPA-Free", "1L", "750ml"]),
    ("Unisex > Sports > Yoga Mats", 35, 0.4, 1.0, ["Yoga Mat", "Exercise Mat", "Travel Mat"],
     ["Non-Slip", "Eco", "Extra-Thick", "Foldable", "Cork"]),
    ("Unisex > Bags > Backpacks", 65, 0.45, 1.5, ["Backpack", "Daypack", "Rolltop Backpack"],
     ["Water-Resistant", "25L", "Commuter", "Hiking", "Recycled"]),
    ("Unisex > Accessories > Sunglasses", 70, 0.6, 1.2, ["Sunglasses", "Aviator Sunglasses", "Wayfarer Sunglasses"],
     ["Polarised", "Tortoiseshell", "Mirrored", "Round", "Sport"]),
    ("Unisex > Accessories > Caps & Hats", 22, 0.35, 1.0, ["Baseball Cap", "Beanie", "Bucket Hat"],
     ["Cotton", "Wool", "Embroidered", "Adjustable", "Ribbed"]),
    ("Home > Kitchen > Cookware", 60, 0.5, 1.5, ["Frying Pan", "Saucepan Set", "Dutch Oven", "Wok"],
     ["Non-Stick", "Cast Iron", "Stainless Steel", "Ceramic", "Induction"]),
    ("Home > Kitchen > Coffee Makers", 120, 0.7, 1.2,
     ["Espresso Machine", "Drip Coffee Maker", "French Press", "Coffee Grinder"],
     ["Programmable", "Compact", "Dual-Boiler", "Stainless", "Burr"]),
    ("Home > Kitchen > Mugs & Cups", 16, 0.4, 1.2, ["Coffee Mug", "Travel Mug", "Espresso Cup Set"],
     ["Stoneware", "Insulated", "Handmade", "Porcelain", "Glazed"]),
    ("Home > Bedding > Duvet Covers", 60, 0.45, 1.2, ["Duvet Cover Set", "Pillowcase Pair", "Fitted Sheet"],
     ["Cotton Sateen", "Linen", "Percale", "Brushed Cotton", "Bamboo"]),
    ("Home > Decor > Candles", 20, 0.45, 1.2, ["Scented Candle", "Candle Set", "Tealight Holder"],
     ["Vanilla", "Sandalwood", "Fig", "Sea Salt", "Lavender"]),
    ("Home > Decor > Lamps", 75, 0.55, 1.0, ["Table Lamp", "Floor Lamp", "Desk Lamp"],
     ["Brass", "Ceramic", "Rattan", "Adjustable", "LED"]),
    ("Home > Decor > Cushions & Throws", 30, 0.45, 1.0, ["Cushion Cover", "Throw Blanket", "Floor Cushion"],
     ["Velvet", "Boucle", "Knitted", "Linen", "Embroidered"]),
    ("Electronics > Computers > Laptops", 900, 0.5, 2.0, ["Laptop", "Ultrabook", "Gaming Laptop", "2-in-1 Laptop"],
     ['13"', '14"', '15.6"', '16"', "Pro"]),
    ("Electronics > Computers > Mice", 30, 0.5, 1.2, ["Wireless Mouse", "Gaming Mouse", "Ergonomic Mouse"],
     ["Silent", "Bluetooth", "Rechargeable", "Compact", "Vertical"]),
    ("Electronics > Computers > Keyboards", 70, 0.5, 1.0, ["Mechanical Keyboard", "Wireless Keyboard", "Compact Keyboard"],
     ["Backlit", "Low-Profile", "Tenkeyless", "Bluetooth", "Ergonomic"]),
    ("Electronics > Computers > Laptop Bags", 45, 0.4, 1.0, ["Laptop Sleeve", "Laptop Backpack", "Messenger Bag"],
     ['13"', '15"', "Padded", "Water-Resistant", "Slim"]),
    ("Electronics > Phones > Smartphones", 600, 0.5, 2.5, ["Smartphone", "5G Smartphone", "Foldable Phone"],
     ["128GB", "256GB", "Dual-SIM", "Pro", "Lite"]),
    ("Electronics > Phones > Cases", 20, 0.4, 1.5, ["Phone Case", "Wallet Case", "Rugged Case"],
     ["Clear", "Silicone", "Leather", "MagSafe", "Shockproof"]),
    ("Electronics > Phones > Chargers", 30, 0.45, 1.2, ["USB-C Charger", "Wireless Charger", "Power Bank"],
     ["65W", "Fast", "GaN", "10000mAh", "Dual-Port"]),
    ("Electronics > Audio > Headphones", 120, 0.6, 2.0, ["Over-Ear Headphones", "Wireless Earbuds", "On-Ear Headphones"],
     ["Noise-Cancelling", "Bluetooth", "Sport", "Studio", "Foldable"]),
    ("Electronics > Audio > Speakers", 110, 0.6, 1.2, ["Bluetooth Speaker", "Smart Speaker", "Soundbar"],
     ["Portable", "Waterproof", "Stereo", "Wi-Fi", "Compact"]),
    ("Electronics > TV > Televisions", 700, 0.5, 1.2, ["LED TV", "OLED TV", "QLED TV"],
     ['43"', '50"', '55"', '65"', "4K"]),
    ("Adult > Wellness > Intimate Care", 40, 0.5, 0.4, ["Personal Massager", "Massage Oil", "Intimate Gift Set"],
     ["Discreet", "Rechargeable", "Sensual", "Premium", "Travel"]),
]  # fmt: skip

_COMPLEMENTS: dict[str, list[str]] = {
    "Electronics > Computers > Laptops": [
        "Electronics > Computers > Mice",
        "Electronics > Computers > Laptop Bags",
        "Electronics > Computers > Keyboards",
    ],
    "Electronics > Phones > Smartphones": [
        "Electronics > Phones > Cases",
        "Electronics > Phones > Chargers",
        "Electronics > Audio > Headphones",
    ],
    "Women > Shoes > Running": [
        "Unisex > Sports > Socks",
        "Unisex > Sports > Water Bottles",
        "Women > Sportswear > Leggings",
    ],
    "Men > Shoes > Running": ["Unisex > Sports > Socks", "Unisex > Sports > Water Bottles"],
    "Electronics > TV > Televisions": ["Electronics > Audio > Speakers"],
    "Home > Kitchen > Coffee Makers": ["Home > Kitchen > Mugs & Cups"],
    "Women > Clothing > Dresses": [
        "Women > Accessories > Handbags",
        "Women > Shoes > Sandals",
        "Women > Accessories > Jewellery",
    ],
    "Men > Clothing > Suits": [
        "Men > Shoes > Formal",
        "Men > Clothing > Shirts",
        "Men > Accessories > Watches",
    ],
    "Men > Clothing > Shirts": ["Men > Clothing > Jeans"],
    "Women > Clothing > Jeans": ["Women > Clothing > Tops"],
    "Women > Clothing > Jackets": ["Women > Shoes > Boots"],
    "Home > Bedding > Duvet Covers": ["Home > Decor > Cushions & Throws", "Home > Decor > Candles"],
    "Home > Decor > Lamps": ["Home > Decor > Candles", "Home > Decor > Cushions & Throws"],
    "Kids > Toys > Building Sets": ["Kids > Toys > Puzzles & Games", "Kids > Toys > Plush"],
    "Kids > Clothing > T-Shirts": ["Kids > Shoes > Sneakers"],
    "Unisex > Bags > Backpacks": ["Unisex > Sports > Water Bottles"],
    "Unisex > Sports > Yoga Mats": ["Women > Sportswear > Leggings", "Unisex > Sports > Water Bottles"],
    "Electronics > Audio > Headphones": ["Electronics > Phones > Chargers"],
    "Home > Kitchen > Cookware": ["Home > Kitchen > Mugs & Cups"],
}

_GENDER_OF_TOP = {"Women": "women", "Men": "men", "Kids": "kids", "Unisex": "unisex"}
_GENDER_WORD = {"women": "Women's ", "men": "Men's ", "kids": "Kids' ", "unisex": "", "": ""}
_COLOURS = {
    "fashion": ["Black", "White", "Navy", "Grey", "Olive", "Beige", "Burgundy", "Blue", "Pink", "Khaki"],
    "toys": ["Multicolour", "Blue", "Red", "Green", "Yellow"],
    "home": ["White", "Oak", "Grey", "Sage", "Terracotta", "Charcoal", "Cream", "Black"],
    "electronics": ["Black", "Silver", "White", "Space Grey", "Blue"],
    "adult": [""],
}
_BLURBS = {
    "fashion": [
        "Made to last, easy to care for.",
        "A wardrobe staple.",
        "True to size.",
        "Designed for comfort.",
    ],
    "toys": ["For ages 3 and up.", "A favourite gift.", "Safety tested.", "Hours of play."],
    "home": [
        "Makes any room feel finished.",
        "Easy to clean.",
        "Thoughtfully designed.",
        "Built for daily use.",
    ],
    "electronics": [
        "Two-year warranty.",
        "Works with all major devices.",
        "Fast setup.",
        "Energy efficient.",
    ],
    "adult": ["Ships in discreet packaging.", "Body-safe materials.", "Adults only."],
}
_PREFIXES = (
    "Nim Vel Aur Kor Zen Lum Ter Sol Nov Arc Bel Cas Dar Eld Fen Hal Ivo Jun Kal Mar Nor Ost Pax Quin Ros "
    "Sav Tor Ulm Vin Wex Yar Zol Alt Bri Cor Del Ever Fal Gra Hol Isa Jas Kin Lor Mon Nex Orb Pel Riv Sta"
).split()
_SUFFIXES = (
    "bus ora ex io ara en ix on um ia ova ant ell ine ure oak way ford dale mont line craft field wood stone "
    "peak crest haven brook gate ridge wave form lab works wear tec nest loom vale"
).split()


def _domain(path: str) -> str:
    top = path.split(" > ")[0]
    if top in ("Home", "Electronics"):
        return top.lower()
    if top == "Adult":
        return "adult"
    if path.startswith("Kids > Toys"):
        return "toys"
    return "fashion"


def brand_names() -> list[str]:
    """All brand names the generator can use (2000, in a fixed order)."""
    return [(p + s).capitalize() for s in _SUFFIXES for p in _PREFIXES]


def leaf_categories() -> list[str]:
    """The leaf category paths of the demo catalogue."""
    return [leaf[0] for leaf in _LEAVES]


class _PoolSampler:
    """Draw items by weight from groups of items (a group = one small non-negative int key).

    Items are sorted by key once; a draw for group g picks inside g's contiguous range
    by inverting the global cumulative weight, so a million draws are one searchsorted
    (done on sorted query values, which is several times faster on large catalogues).
    """

    def __init__(self, keys: np.ndarray, weights: np.ndarray) -> None:
        self.order = np.argsort(keys, kind="stable")
        self.cum = np.cumsum(weights[self.order].astype("float64"))
        counts = np.bincount(keys, minlength=int(keys.max()) + 1 if len(keys) else 1)
        self.end = np.cumsum(counts)
        self.start = self.end - counts

    def _bounds(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the group's slice ``[s, e)`` of the sorted items, whether it is empty, and
        the cumulative weight before it (``lo``); an empty group gets the dummy slice [0, 1)."""
        g = np.clip(groups, 0, len(self.start) - 1)
        start = np.where(groups < len(self.start), self.start[g], 0)
        end = np.where(groups < len(self.start), self.end[g], 0)
        empty = end <= start
        s = np.where(empty, 0, start)
        e = np.where(empty, 1, end)
        lo = np.where(s > 0, self.cum[np.maximum(s - 1, 0)], 0.0)
        return s, e, empty, lo

    def sample(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Item index per draw, or -1 where the group has no items."""
        s, e, empty, lo = self._bounds(groups)
        hi = self.cum[e - 1]
        r = lo + u * (hi - lo)
        srt = np.argsort(r)
        idx = np.empty(len(r), dtype="int64")
        idx[srt] = np.searchsorted(self.cum, r[srt], side="right")
        idx = np.clip(idx, s, e - 1)
        return np.where(empty, -1, self.order[idx])

    def listing(self, groups: np.ndarray, u0: np.ndarray, m: int) -> np.ndarray:
        """``m`` items per row by systematic sampling: positions ``(j + u0) / m`` of the group's
        popularity mass, j = 0..m-1 (an item is listed about in proportion to its weight, and
        twice only when it holds more than 1/m of the group's weight); -1 where the group is empty.

        Rows sorted by (group, u0) give sorted positions for every j, so one sort serves all m.
        """
        srt = np.lexsort((u0, groups))
        g, u = groups[srt], u0[srt]
        s, e, empty, lo = self._bounds(g)
        span = self.cum[e - 1] - lo
        out = np.empty((len(g), m), dtype="int64")
        for j in range(m):
            idx = np.searchsorted(self.cum, lo + (j + u) / m * span, side="right")
            out[srt, j] = np.where(empty, -1, self.order[np.clip(idx, s, e - 1)])
        return out


def _arrow_take(values: list[str], codes: np.ndarray | None = None) -> Any:
    import pyarrow as pa

    arr = pa.array(values, type=pa.string())
    if codes is not None:
        arr = arr.take(pa.array(np.asarray(codes, dtype="int64")))
    return arr


def _arrow_join(left: Any, right: Any, sep: str) -> Any:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(left, right, sep)


def _str_series(values: Any, codes: np.ndarray | None = None) -> pd.Series:
    """A pandas ``str`` Series of ``values`` (or ``values[codes]``), built through Arrow (fast).

    ``values`` is a list of str or an Arrow string array.
    """
    import pyarrow as pa

    arr = values if isinstance(values, pa.Array) else _arrow_take(values, codes)
    if isinstance(values, pa.Array) and codes is not None:
        arr = arr.take(pa.array(np.asarray(codes, dtype="int64")))
    try:
        return pd.Series(pd.arrays.ArrowStringArray(arr), dtype=str)
    except (AttributeError, TypeError, ValueError):  # other pandas versions
        return pd.Series(arr.to_pylist(), dtype=str)


def _default_n_sequences(n_items: int) -> int:
    return int(np.clip(4 * n_items, 2000, 1_000_000))


def generate_demo(
    n_items: int = 5000,
    n_sequences: int | None = None,
    seed: int = 0,
    name: str = "demo",
) -> Dataset:
    """Generate the synthetic demo dataset (see the module docstring for the story).

    Parameters
    ----------
    n_items : int, default 5000
        Catalogue size, 100 to a few million (1M items take about 20 s).
    n_sequences : int, optional
        Number of sessions; default ``4 * n_items`` clipped to [2000, 1_000_000].
    seed : int, default 0
        Same seed, same dataset (catalog and interactions are identical).
    name : str, default "demo"
        Dataset name.

    Returns
    -------
    Dataset
        ``kind="sessions"`` with view, cart and purchase events over 90 days; the
        catalogue has the schema columns plus ``cluster``, ``price_band``, ``is_new``
        and ``launched_at``.
    """
    if n_items < 100:
        raise ValueError(f"n_items must be at least 100, got {n_items}")
    n_seq = _default_n_sequences(n_items) if n_sequences is None else int(n_sequences)
    if n_seq < 1:
        raise ValueError(f"n_sequences must be at least 1, got {n_sequences}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    catalog, items = _make_catalog(n_items, rng)
    interactions = _make_sessions(n_seq, items, rng)
    report = ValidationReport(
        rows_read={"catalog": len(catalog), "interactions": len(interactions)},
        missing_prices=int(catalog["price"].isna().sum()),
    )
    logger.info(
        "generated demo: %d items, %d sessions, %d events in %.1f s",
        len(catalog),
        n_seq,
        len(interactions),
        time.perf_counter() - t0,
    )
    return Dataset(name=name, catalog=catalog, interactions=interactions, report=report, kind="sessions")


def _make_catalog(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, Any]]:
    n_leaves = len(_LEAVES)
    paths = np.array([leaf[0] for leaf in _LEAVES], dtype=object)
    leaf_median = np.array([leaf[1] for leaf in _LEAVES], dtype="float64")
    leaf_sigma = np.array([leaf[2] for leaf in _LEAVES], dtype="float64")
    leaf_weight = np.array([leaf[3] for leaf in _LEAVES], dtype="float64")
    leaf_weight /= leaf_weight.sum()
    domains = [_domain(p) for p in paths]
    dom_names = sorted(set(domains))
    leaf_dom = np.array([dom_names.index(d) for d in domains])

    # --- brands: domain, leaves covered, price tier, popularity
    n_brands = int(np.clip(n // 20, 60, 2000))
    names = np.array(brand_names(), dtype=object)
    names = names[rng.permutation(len(names))[:n_brands]]
    dom_share = np.array([leaf_weight[leaf_dom == d].sum() for d in range(len(dom_names))])
    brand_dom = rng.choice(len(dom_names), size=n_brands, p=dom_share / dom_share.sum())
    brand_dom[: len(dom_names)] = np.arange(len(dom_names))  # every domain has a brand
    tiers = np.array([0.55, 0.8, 1.0, 1.35, 2.0])
    brand_tier = rng.choice(tiers, size=n_brands, p=[0.15, 0.25, 0.3, 0.2, 0.1])
    brand_pop = rng.lognormal(0.0, 0.8, size=n_brands)
    cover = np.zeros((n_leaves, n_brands), dtype=bool)
    for b in range(n_brands):
        dom_leaves = np.flatnonzero(leaf_dom == brand_dom[b])
        k = int(rng.integers(2, min(7, len(dom_leaves)) + 1)) if len(dom_leaves) > 1 else 1
        cover[rng.choice(dom_leaves, size=k, replace=False), b] = True
    for leaf in range(n_leaves):  # at least two brands per leaf
        short = 2 - int(cover[leaf].sum())
        if short > 0:
            cand = np.flatnonzero((brand_dom == leaf_dom[leaf]) & ~cover[leaf])
            if len(cand):
                cover[leaf, rng.choice(cand, size=min(short, len(cand)), replace=False)] = True

    # --- items: leaf, brand, price, band
    per_leaf_min = min(3, n // n_leaves)
    item_leaf = np.concatenate(
        [
            np.repeat(np.arange(n_leaves), per_leaf_min),
            rng.choice(n_leaves, n - per_leaf_min * n_leaves, p=leaf_weight),
        ]
    )
    item_leaf = item_leaf[rng.permutation(n)]
    lb_leaf, lb_brand = np.nonzero(cover)  # sorted by leaf
    lb_w = brand_pop[lb_brand]
    leaf_tot = np.bincount(lb_leaf, weights=lb_w, minlength=n_leaves)
    lb_key = np.cumsum(lb_w / leaf_tot[lb_leaf])  # each leaf's brands span (leaf, leaf + 1]
    pick = np.searchsorted(lb_key, item_leaf + rng.random(n) * 0.999999, side="right")
    lo = np.searchsorted(lb_leaf, item_leaf, side="left")
    hi = np.searchsorted(lb_leaf, item_leaf, side="right") - 1
    pick = np.clip(pick, lo, hi)
    item_brand = lb_brand[pick]
    raw_price = (
        leaf_median[item_leaf] * brand_tier[item_brand] * rng.lognormal(0.0, leaf_sigma[item_leaf] * 0.8)
    )
    price = np.where(raw_price >= 10, np.round(raw_price) - 0.01, np.round(raw_price * 2) / 2 - 0.01)
    price = np.maximum(price, 0.99)
    order = np.lexsort((price, item_leaf))
    leaf_sorted = item_leaf[order]
    leaf_start = np.searchsorted(leaf_sorted, np.arange(n_leaves))
    leaf_count = np.bincount(item_leaf, minlength=n_leaves)
    rank = np.empty(n, dtype="int64")
    rank[order] = np.arange(n) - leaf_start[leaf_sorted]
    item_band = np.minimum((3 * rank) // np.maximum(leaf_count[item_leaf], 1), 2)

    # --- popularity: Zipf within leaf by a random rank, brand popularity, niche items
    pop_rank = np.empty(n, dtype="int64")
    perm = rng.permutation(n)
    order2 = perm[np.argsort(item_leaf[perm], kind="stable")]
    pop_rank[order2] = np.arange(n) - leaf_start[item_leaf[order2]]
    weight = (pop_rank + 1.0) ** -0.85 * np.sqrt(brand_pop[item_brand])
    niche = rng.random(n) < 0.15
    weight[niche] *= 0.05
    is_new = rng.random(n) < 0.08
    launch = np.where(is_new, rng.uniform(0.6, 0.95, n), 0.0)

    # --- text
    nouns = [leaf[4] for leaf in _LEAVES]
    adjs = [leaf[5] for leaf in _LEAVES]
    noun_i = (rng.random(n) * np.array([len(x) for x in nouns])[item_leaf]).astype("int64")
    adj_i = (rng.random(n) * np.array([len(x) for x in adjs])[item_leaf]).astype("int64")
    leaf_gender = [_GENDER_OF_TOP.get(p.split(" > ")[0], "") for p in paths]
    colour_lists = [_COLOURS[d] for d in domains]
    blurb_lists = [_BLURBS[d] for d in domains]
    col_i = (rng.random(n) * np.array([len(x) for x in colour_lists])[item_leaf]).astype(int)
    blurb_i = (rng.random(n) * np.array([len(x) for x in blurb_lists])[item_leaf]).astype(int)
    # titles and descriptions: the brand joined (in Arrow) to one of a few thousand stems
    n_adj, n_noun, n_col, n_blurb = 5, 4, 10, 4
    stem_title, stem_desc, tail_desc = [], [], []
    for leaf in range(n_leaves):
        last = paths[leaf].split(" > ")[-1].lower()
        for a in range(n_adj):
            for k in range(n_noun):
                adj = adjs[leaf][a % len(adjs[leaf])]
                noun = nouns[leaf][k % len(nouns[leaf])]
                stem_desc.append(f"{adj} {noun.lower()} by")
                for c in range(n_col):
                    colour = colour_lists[leaf][c % len(colour_lists[leaf])]
                    stem_title.append(
                        f"{_GENDER_WORD[leaf_gender[leaf]]}{adj} {noun}" + (f", {colour}" if colour else "")
                    )
        for bl in range(n_blurb):
            tail_desc.append(f", from our {last} range. {blurb_lists[leaf][bl % len(blurb_lists[leaf])]}")
    stem = (item_leaf * n_adj + adj_i) * n_noun + noun_i
    brand_str = _arrow_take(names.tolist(), item_brand)
    titles = _arrow_join(brand_str, _arrow_take(stem_title, stem * n_col + col_i), sep=" ")
    descs = _arrow_join(
        _arrow_join(_arrow_take(stem_desc, stem), brand_str, sep=" "),
        _arrow_take(tail_desc, item_leaf * n_blurb + blurb_i),
        sep="",
    )

    # product type: the noun of the title; one id per (leaf, noun)
    type_start = np.concatenate([[0], np.cumsum([len(x) for x in nouns])])
    type_id = type_start[item_leaf] + noun_i

    width = max(6, len(str(n)))
    id_num = rng.permutation(n) + 1
    item_ids = [f"P{k:0{width}d}" for k in id_num.tolist()]
    assert max(len(x) for x in nouns) <= n_noun and max(len(x) for x in adjs) <= n_adj
    catalog = pd.DataFrame(
        {
            "item_id": _str_series(item_ids),
            "title": _str_series(titles),
            "category": _str_series(paths.tolist(), item_leaf),
            "brand": _str_series(brand_str),
            "gender": _str_series(leaf_gender, item_leaf),
            "price": price.astype("float64"),
            "adult": np.array([p.startswith("Adult") for p in paths])[item_leaf],
            "description": _str_series(descs),
            "image_url": _str_series([""], np.zeros(n, dtype="int64")),
            "cluster": _str_series([f"{p} | {b}" for p in paths for b in BANDS], item_leaf * 3 + item_band),
            "product_type": _str_series([nn for leaf_nouns in nouns for nn in leaf_nouns], type_id),
            "price_band": _str_series(list(BANDS), item_band),
            "is_new": is_new,
            "launched_at": (START + pd.to_timedelta(launch * SPAN_DAYS, unit="D")).astype("datetime64[ns]"),
        }
    )
    assert tuple(catalog.columns[: len(CATALOG_COLUMNS)]) == CATALOG_COLUMNS
    comp_ptr = [0]
    comp_list: list[int] = []
    index_of = {p: i for i, p in enumerate(paths)}
    for p in paths:
        comp_list += [index_of[c] for c in _COMPLEMENTS.get(p, [])]
        comp_ptr.append(len(comp_list))
    items = {
        "ids": item_ids,
        "leaf": item_leaf,
        "band": item_band,
        "brand": item_brand,
        "weight": weight,
        "launch": launch,
        "ptype": type_id,
        "log_price": np.log(price),
        "leaf_weight": leaf_weight,
        "n_leaves": np.array(n_leaves),
        "n_brands": np.array(n_brands),
        "comp_ptr": np.array(comp_ptr),
        "comp_list": np.array(comp_list, dtype="int64"),
    }
    return catalog, items


def _make_sessions(n_seq: int, it: dict[str, Any], rng: np.random.Generator) -> pd.DataFrame:
    n_leaves = int(it["n_leaves"])
    n_brands = int(it["n_brands"])
    leaf, band, brand, weight, launch = it["leaf"], it["band"], it["brand"], it["weight"], it["launch"]
    n_items = len(leaf)
    old_weight = np.where(launch > 0, 0.0, weight)
    cluster_pool = _PoolSampler(leaf * 3 + band, weight)
    brand_pool = _PoolSampler(leaf * n_brands + brand, weight)
    leaf_pool = _PoolSampler(leaf, weight)
    all_pool = _PoolSampler(np.zeros(n_items, dtype="int64"), weight)
    # what a shopper wishes for (a price and a product type) is spread like the cluster's offer
    wish_pool = _PoolSampler(leaf * 3 + band, np.ones(n_items)) if WISH_UNIFORM else cluster_pool
    wish_leaf_pool = _PoolSampler(leaf, np.ones(n_items)) if WISH_UNIFORM else leaf_pool

    # fallback for views before launch: most popular launched item of the cluster (else leaf)
    fallback = np.full(n_items, -1, dtype="int64")
    for keys in (leaf * 3 + band, leaf):
        order = np.lexsort((-old_weight, keys))
        k_sorted = keys[order]
        first = np.searchsorted(k_sorted, keys)
        best = order[first]
        ok = (fallback < 0) & (old_weight[best] > 0)
        fallback[ok] = best[ok]
    fallback[fallback < 0] = int(np.argmax(old_weight))

    def draw(pool: _PoolSampler, groups: np.ndarray) -> np.ndarray:
        return pool.sample(groups, rng.random(len(groups)))

    ptype, log_price = it["ptype"], it["log_price"]

    def choose(shown: np.ndarray, ref: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The shown item (one row per view) with the highest utility for a shopper whose wish
        is the item ``ref`` (its product type and price), at session start ``t``."""
        util = np.abs(log_price[shown] - log_price[ref][:, None])
        util *= -1.0 / PRICE_SCALE
        util += TYPE_BONUS * (ptype[shown] == ptype[ref][:, None])
        util += rng.gumbel(size=shown.shape)
        util[launch[shown] > t[:, None]] = -np.inf  # not launched yet: not shown
        return shown[np.arange(len(shown)), np.argmax(util, axis=1)]

    # --- sessions and intents
    start = np.sort(rng.random(n_seq))  # fraction of the period; sorted so ids follow time
    users = rng.integers(0, max(n_seq // 4, 1), size=n_seq)
    leaf1 = rng.choice(n_leaves, size=n_seq, p=it["leaf_weight"])
    band1 = rng.choice(3, size=n_seq, p=[0.4, 0.4, 0.2])
    seed_item = draw(cluster_pool, leaf1 * 3 + band1)
    seed_item = np.where(seed_item < 0, draw(leaf_pool, leaf1), seed_item)
    brand1 = np.where(rng.random(n_seq) < 0.5, brand[seed_item], -1)
    comp_ptr, comp_list = it["comp_ptr"], it["comp_list"]
    n_comp = comp_ptr[leaf1 + 1] - comp_ptr[leaf1]
    has_comp = n_comp > 0
    second = rng.random(n_seq) < 0.3
    comp_pick = comp_list[
        np.minimum(comp_ptr[leaf1] + (rng.random(n_seq) * n_comp).astype(int), len(comp_list) - 1)
    ]
    use_comp = has_comp & (rng.random(n_seq) < 0.6)
    leaf2 = np.where(use_comp, comp_pick, rng.choice(n_leaves, size=n_seq, p=it["leaf_weight"]))
    band2 = np.where(use_comp, band1, rng.choice(3, size=n_seq, p=[0.4, 0.4, 0.2]))

    s_idx = np.flatnonzero(second)
    ref1 = draw(wish_pool, leaf1 * 3 + band1)
    ref1 = np.where(ref1 < 0, draw(wish_leaf_pool, leaf1), ref1)
    ref2 = draw(wish_pool, leaf2[s_idx] * 3 + band2[s_idx])
    ref2 = np.where(ref2 < 0, draw(wish_leaf_pool, leaf2[s_idx]), ref2)
    seg_ref = np.concatenate([ref1, ref2])
    seg_sess = np.concatenate([np.arange(n_seq), s_idx])
    seg_leaf = np.concatenate([leaf1, leaf2[s_idx]])
    seg_band = np.concatenate([band1, band2[s_idx]])
    seg_brand = np.concatenate([brand1, np.full(len(s_idx), -1)])
    seg_slot = np.concatenate([np.zeros(n_seq, dtype="int64"), np.full(len(s_idx), 100)])
    seg_n = np.minimum(rng.geometric(0.25, size=len(seg_sess)), 15)
    seg_n[n_seq:] = np.minimum(rng.geometric(0.35, size=len(s_idx)), 15)

    # --- views: the shop shows a few items (drawn by popularity), the shopper opens the best fit
    ev_seg = np.repeat(np.arange(len(seg_sess)), seg_n)
    seg_first = np.cumsum(seg_n) - seg_n
    ev_slot = seg_slot[ev_seg] + (np.arange(len(ev_seg)) - seg_first[ev_seg])
    ev_leaf, ev_band, ev_brand = seg_leaf[ev_seg], seg_band[ev_seg], seg_brand[ev_seg]
    ev_ref = seg_ref[ev_seg]
    ev_t = start[seg_sess[ev_seg]]
    u = rng.random(len(ev_seg))
    use_brand = (ev_brand >= 0) & (u < 0.45)
    use_leaf = ~use_brand & (u >= 0.88) & (u < 0.96)
    use_all = ~use_brand & (u >= 0.96)
    n_ev = len(ev_seg)
    # a listing: SHOWN positions spread evenly over the pool's popularity mass (systematic
    # sampling), so an item is shown with probability ~ its popularity and no slot is repeated
    # unless one item holds more than 1/SHOWN of the pool's popularity
    u0 = rng.random(n_ev)
    shown = np.full((n_ev, SHOWN), -1, dtype="int64")
    rows = np.flatnonzero(use_brand)
    shown[rows] = brand_pool.listing(ev_leaf[rows] * n_brands + ev_brand[rows], u0[rows], SHOWN)
    rows = np.flatnonzero(~use_brand & ~use_leaf & ~use_all)
    shown[rows] = cluster_pool.listing(ev_leaf[rows] * 3 + ev_band[rows], u0[rows], SHOWN)
    rows = np.flatnonzero(((shown[:, 0] < 0) & ~use_all) | use_leaf)
    shown[rows] = leaf_pool.listing(ev_leaf[rows], u0[rows], SHOWN)
    rows = np.flatnonzero(use_all)
    shown[rows] = all_pool.listing(np.zeros(len(rows), dtype="int64"), u0[rows], 1)[:, [0] * SHOWN]
    ev_item = choose(shown, ev_ref, ev_t)
    ev_sess = seg_sess[ev_seg]
    ev_type = np.zeros(len(ev_item), dtype="int8")

    # --- carts, baskets with complements, purchases
    last_view = ev_item[seg_first[:n_seq] + seg_n[:n_seq] - 1]  # last view of the primary intent
    buy = rng.random(n_seq) < 0.3
    abandon = ~buy & (rng.random(n_seq) < 0.1)
    b_idx = np.flatnonzero(buy)
    add_comp = has_comp[b_idx] & (rng.random(len(b_idx)) < 0.6)
    n_extra = np.where(add_comp, rng.choice([1, 2], size=len(b_idx), p=[0.6, 0.4]), 0)
    x_sess = np.repeat(b_idx, n_extra)
    x_k = np.arange(len(x_sess)) - np.repeat(np.cumsum(n_extra) - n_extra, n_extra)
    xl = leaf1[x_sess]
    x_leaf = comp_list[comp_ptr[xl] + (rng.random(len(x_sess)) * n_comp[x_sess]).astype(int)]
    x_item = draw(cluster_pool, x_leaf * 3 + band1[x_sess])
    x_item = np.where(x_item < 0, draw(leaf_pool, x_leaf), x_item)
    cart_sess = np.concatenate([b_idx, x_sess, np.flatnonzero(abandon)])
    cart_item = np.concatenate([last_view[b_idx], x_item, last_view[abandon]])
    cart_slot = np.concatenate([np.full(len(b_idx), 200), 201 + x_k, np.full(int(abandon.sum()), 200)])
    buy_sess = np.concatenate([b_idx, x_sess])
    buy_item = np.concatenate([last_view[b_idx], x_item])
    buy_slot = np.concatenate([np.full(len(b_idx), 300), 301 + x_k])

    sess = np.concatenate([ev_sess, cart_sess, buy_sess])
    item = np.concatenate([ev_item, cart_item, buy_item])
    slot = np.concatenate([ev_slot, cart_slot, buy_slot])
    etype = np.concatenate(
        [ev_type, np.ones(len(cart_sess), dtype="int8"), np.full(len(buy_sess), 2, dtype="int8")]
    )
    order = np.lexsort((slot, sess))
    sess, item, etype = sess[order], item[order], etype[order]
    sess_first = np.searchsorted(sess, np.arange(n_seq))
    position = np.arange(len(sess)) - sess_first[sess]

    # --- times: session start + cumulative gaps; nothing before an item's launch
    span_s = SPAN_DAYS * 86400.0
    gaps = np.where(position == 0, 0.0, 1.0 + rng.exponential(40.0, size=len(sess)))
    csum = np.cumsum(gaps)
    offset = csum - csum[sess_first[sess]]
    secs = np.minimum(start[sess] * span_s * 0.999 + offset, span_s - 1)
    early = launch[item] * span_s > secs
    item = np.where(early, fallback[item], item)
    ts = START + pd.to_timedelta(np.round(secs).astype("int64"), unit="s")

    width = max(7, len(str(n_seq)))
    n_users = max(n_seq // 4, 1)
    uw = max(6, len(str(n_users)))
    return pd.DataFrame(
        {
            "sequence_id": _str_series([f"S{k:0{width}d}" for k in range(n_seq)], sess),
            "user_id": _str_series([f"U{k:0{uw}d}" for k in range(n_users)], users[sess]),
            "item_id": _str_series(it["ids"], item),
            "timestamp": pd.Series(ts, dtype="datetime64[ns]"),
            "event_type": _str_series(["view", "cart", "purchase"], etype),
            "quantity": np.ones(len(sess), dtype="float64"),
            "position": position.astype("int64"),
        },
        columns=list(INTERACTION_COLUMNS),
    )
