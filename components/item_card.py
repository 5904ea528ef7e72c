"""Item cards: one product with its title, brand, category path, gender, price and score.

Cards are plain ``html.Div`` trees (a few nodes each) so that a list of 50 renders and
serialises in well under a millisecond; images load lazily in the browser.

``item_card(row, score=..., rank=...)`` draws one card from a catalog row (a mapping with
``item_id, title, brand, category, gender, price, image_url``); ``card_grid(rows, scores)``
draws a responsive grid of them. Each card carries an "add to session" button whose id is
``{"type": ITEM_ADD_TYPE, "item": item_id, "panel": panel}`` so a page can listen to clicks
with a pattern-matching ``Input``.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from dash import html

from recsys.images import image_src

#: Separator of category levels (the value of ``recsys.data.schema.CATEGORY_SEP``; not imported
#: from there because ``recsys.data`` loads pandas, which the app must not import at start).
CATEGORY_SEP = " > "

#: Pattern-matching id type of the "add to session" button of a card.
ITEM_ADD_TYPE = "item-card-add"

_GENDER_LABEL = {"women": "Women", "men": "Men", "unisex": "Unisex", "kids": "Kids"}

#: The badge on an item whose title is the seed's (:func:`mark_same_title`), and its tooltip.
SAME_TITLE = "same title as the seed"
SAME_TITLE_WHY = (
    "This item's title is the seed's: often the same product listed under another id (a catalogue "
    "can list one product in two categories or pack sizes). “Exclude same title” in the filters hides such items."
)
#: The tooltip of a card's "category mean" badge (:func:`card_rows` sets ``stand_in``).
STAND_IN_WHY = (
    "No vector of its own: this item was too rare in (or absent from) the training data, so the "
    "run serves it with the mean vector of its category's items. Its neighbours and scores say "
    "only that it shares their category, not that shoppers pair them."
)


def fmt_price(value: Any) -> str:
    """A price for display: ``"€12.50"``-style with no currency symbol ("—" when missing)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(v):
        return "—"
    return f"{v:,.2f}"


def price_text(row: Mapping[str, Any]) -> str:
    """A card row's price as an item row shows it: "" for every item of a catalogue without any
    price (Instacart, Taobao: :func:`card_rows` marks them ``catalogue_has_prices``), where a
    column or line of "—" said nothing; else :func:`fmt_price` ("—" for one missing price)."""
    return "" if row.get("catalogue_has_prices") is False else fmt_price(row.get("price"))


def explore_href(item_id: str, run_id: str | None = None, preset: str | None = None) -> str:
    """The Explore URL that shows ``item_id`` (and the run/preset) as the seed."""
    query = {"seed": item_id}
    if run_id:
        query["run"] = run_id
    if preset:
        query["preset"] = preset
    return "/explore?" + urlencode(query)


def _text(row: Mapping[str, Any], key: str) -> str:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def brand_text(row: Mapping[str, Any]) -> str:
    """The brand a card or tooltip shows: the item's, "no brand" when it has none, nothing when
    the catalogue has no brands at all (:func:`card_rows` marks its rows so)."""
    brand = _text(row, "brand")
    if brand:
        return brand
    return "" if row.get("catalogue_has_brands") is False else "no brand"


def display_title(row: Mapping[str, Any]) -> str:
    """What a card, a picker or a tooltip shows as the item's name: its title; for a catalogue
    without titles (dunnhumby's products have none), its leaf category, then its id. A leaf
    that is a code (no letter: Taobao's numeric categories) is not shown as if it were a name."""
    title = _text(row, "title")
    if title and title != _text(row, "item_id"):
        return title
    category = _text(row, "category")
    leaf = category.rsplit(CATEGORY_SEP, 1)[-1].strip() if category else ""
    if leaf and not any(ch.isalpha() for ch in leaf):
        # a code, not a name (Taobao's categories are numbers): said as what it is
        return f"Item of category {leaf}"
    return leaf or title or _text(row, "item_id")


def item_titles(view: Any, item_ids: Sequence[str]) -> dict[str, str]:
    """``{item id: display_title}`` of the ids ``view`` has (the others left out): how a rule
    that names items (Explore's "Never together", Vetting's proposals) names them."""
    pos = [p for p in (view.position(str(i)) for i in dict.fromkeys(item_ids)) if p >= 0]
    return {str(r["item_id"]): display_title(r) for r in card_rows(view, pos)} if pos else {}


def html_node(tag: str, children: Any = None, **props: Any) -> dict[str, Any]:
    """A ``dash.html`` component in its JSON form (what ``Component.to_plotly_json()`` returns).

    For the fixed inner nodes of a card: a dict is built and serialised several times faster
    than a ``Component`` (whose constructor validates every keyword), and Dash's renderer
    takes either form. ``html_node("Div", "x", className="a")`` renders like
    ``html.Div("x", className="a")``; ``data-*`` props go in ``**{"data-v": ...}``.
    """
    if children is not None:
        props["children"] = children
    return {"props": props, "type": tag, "namespace": "dash_html_components"}


def similarity_bar(score: float) -> dict[str, Any]:
    """A thin bar whose width is the similarity (clipped to 0..1), the value drawn by CSS.

    One element (the fill is a background sized by ``--sim``; the number is ``data-v``), so
    a list of cards stays cheap to build and serialise.
    """
    width = max(0.0, min(1.0, float(score))) * 100
    return html_node(
        "Div",
        className="sim-bar",
        style={"--sim": f"{width:.0f}%"},
        title="cosine similarity to the seed",
        **{"data-v": f"{score:.3f}"},
    )


def item_card(
    row: Mapping[str, Any],
    *,
    score: float | None = None,
    rank: int | None = None,
    seed: bool = False,
    run_id: str | None = None,
    panel: str | None = None,
    link: bool = True,
) -> html.Div:
    """One product card.

    Parameters
    ----------
    row : mapping
        A catalog row (``item_id``, ``title``, ``brand``, ``category``, ``gender``, ``price``,
        optional ``image_url``); missing fields are shown as blank or "—".
    score : float, optional
        Similarity to the seed (shown as a bar).
    rank : int, optional
        1-based position in the list.
    seed : bool
        Draw it as the seed (highlighted, no score).
    run_id : str, optional
        Run carried by the title link into Explore.
    panel : str, optional
        When given, the card gets an "add to session" button (see ``ITEM_ADD_TYPE``).
    link : bool
        Make the title a link that opens the item as the seed in Explore.

    Notes
    -----
    The live Explore list builds and serialises ten to fifty cards per filter change, so a
    card is small: the rank or "seed" tag and the gender pill are drawn by CSS from
    ``data-rank`` / ``data-tag`` / ``data-gender`` attributes, the brand is the text of the
    meta line, and the inner nodes are :func:`html_node` dicts. The card itself (with
    ``data-item``) and its "add to session" button are ``Component`` objects.
    """
    item_id = _text(row, "item_id")
    title = display_title(row)
    category = _text(row, "category")
    gender = _GENDER_LABEL.get(_text(row, "gender"), _text(row, "gender"))
    image = card_image(row)

    head_attrs = {"data-tag": "seed"} if seed else ({"data-rank": f"#{rank}"} if rank is not None else {})
    title_node = (
        html_node("A", title, href=explore_href(item_id, run_id), className="card-title", title=title)
        if link and not seed
        else html_node("Div", title, className="card-title", title=title)
    )
    meta_attrs = {"data-gender": gender} if gender else {}
    body: list[Any] = [
        html_node("Div", item_id, className="card-head", **head_attrs),
        title_node,
        html_node(
            "Div",
            " › ".join(category.split(CATEGORY_SEP)) if category else "no category",
            className="card-category",
            title=category,
        )
        if category or row.get("catalogue_has_categories") is not False
        else None,
        html_node(
            "Div",
            [
                brand_text(row),
                html_node("Span", price_text(row), className="card-price"),
            ],
            className="card-meta",
            **meta_attrs,
        ),
    ]
    for name, text in row.get("extra") or ():
        body.append(html_node("Div", [html_node("B", f"{name}: "), text], className="card-extra"))
    body = [node for node in body if node is not None]
    if row.get("stand_in"):
        body.append(html_node("Span", "category mean", className="stand-in-badge", title=STAND_IN_WHY))
    if row.get("same_title"):
        body.append(html_node("Span", SAME_TITLE, className="same-title-badge", title=SAME_TITLE_WHY))
    if score is not None and not seed:
        body.append(similarity_bar(score))
    if panel is not None:
        body.append(
            html.Button(
                "+ session",
                id={"type": ITEM_ADD_TYPE, "item": item_id, "panel": panel},
                className="card-add",
                title="add to the recent-views session",
            )
        )
    classes = "item-card seed-card" if seed else "item-card"
    if image:
        children: list[Any] = [
            thumbnail(image, title),
            html.Div(body, className="card-body-x"),
        ]
        return html.Div(children, className=classes + " has-img", **{"data-item": item_id})
    return html.Div(body, className=classes + " card-body-x", **{"data-item": item_id})


def mark_same_title(
    view: Any, seed_pos: int, positions: Sequence[int] | Any, rows: list[dict[str, Any]]
) -> int:
    """Mark the card ``rows`` (of ``positions``) whose title is the seed's, normalised as the
    "Exclude same title" rule compares them (an empty title matches nothing): ``same_title``,
    drawn as a badge by :func:`item_card`. Returns how many were marked."""
    import numpy as np

    pos = np.asarray(positions, dtype=np.int64)
    if seed_pos < 0 or len(pos) == 0 or view.title[seed_pos] == view.empty_title:
        return 0
    same = view.title[pos] == view.title[seed_pos]
    for row, hit in zip(rows, same.tolist(), strict=True):
        if hit:
            row["same_title"] = True
    return int(same.sum())


def card_image(row: Mapping[str, Any]) -> str | None:
    """The ``<img src>`` of a card row: its ``image`` (set by :func:`card_rows` from the
    catalogue's ``image_url`` and the dataset) or, for a row built elsewhere, an http(s)
    ``image_url`` as is (a local path needs the dataset, so it is left out)."""
    if "image" in row:
        return row["image"] or None
    return image_src(row.get("image_url"), None)


def thumbnail(src: str, alt: str = "", className: str = "card-img") -> dict[str, Any]:
    """A lazily loaded ``<img>`` of an item; a broken one is swapped for the placeholder by
    ``assets/image_fallback.js`` (it watches the ``card-img`` class)."""
    classes = className if "card-img" in className.split() else f"card-img {className}"
    return html_node("Img", src=src, className=classes, alt=alt, loading="lazy")


def card_grid(
    rows: Sequence[Mapping[str, Any]],
    scores: Sequence[float] | None = None,
    *,
    run_id: str | None = None,
    panel: str | None = None,
    className: str = "",
) -> html.Div:
    """A responsive grid of item cards, ranked in the given order."""
    scores = list(scores) if scores is not None else [None] * len(rows)
    cards = [
        item_card(row, score=s, rank=i + 1, run_id=run_id, panel=panel)
        for i, (row, s) in enumerate(zip(rows, scores, strict=False))
    ]
    return html.Div(cards, className=f"card-grid {className}".strip())


# -- fast row access for cards -------------------------------------------------------------
#: Columns a card shows, read once per catalogue view into NumPy arrays (position order).
CARD_COLUMNS = ("item_id", "title", "brand", "category", "gender", "price", "image_url")
_columns_cache: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _card_columns(view: Any) -> dict[str, Any]:
    """The card columns of a :class:`recsys.catalog.CatalogView`, cached per view object.

    ``view.attributes`` builds a DataFrame per call (milliseconds at 100k items); a list of
    cards needs a few values from each of k rows, so this reads every column once.
    """
    import numpy as np
    import pandas as pd

    with _cache_lock:
        hit = _columns_cache.get(view)
    if hit is not None:
        return hit
    frame = view.attributes(np.arange(view.n))
    cols: dict[str, np.ndarray] = {}
    for name in CARD_COLUMNS:
        if name in frame:
            series = frame[name]
            if name == "price":
                cols[name] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            else:
                cols[name] = series.astype(object).where(series.notna(), "").to_numpy(dtype=object)
        else:
            cols[name] = np.full(view.n, "" if name != "price" else np.nan, dtype=object)
    cols["item_id"] = np.asarray(view.item_ids, dtype=object)
    # a catalogue without any brand (Online Retail, dunnhumby): cards say nothing of brands
    # rather than "no brand" on every item
    cols["_brands"] = bool(any(str(b).strip() for b in cols["brand"]))
    # nor "—" for the price of every item of a catalogue without prices (Taobao, Instacart)
    cols["_prices"] = bool(np.isfinite(np.asarray(cols["price"], dtype=np.float64)).any())
    # nor "no category" on every card of a catalogue without categories (Myntra)
    cols["_categories"] = bool(any(str(c).strip() for c in cols["category"]))
    # items served by their category's mean vector (Taobao's 6,814 of 55k): marked on the card
    cols["_stand_in"] = getattr(view, "stand_in", None)
    with _cache_lock:
        _columns_cache[view] = cols
    return cols


#: A column holding a code rather than words ("aisle_id", "department id", "manufacturerId"):
#: an extra only on an item without a title, where a code is all there is to tell items apart.
_ID_COLUMN = re.compile(r"(?:^|[_\s])(?:id|Id|ID)$|[a-z]Id$")

#: Catalogue columns a card shows itself, or flags rather than text: not repeated as extras.
_SHOWN_COLUMNS = frozenset(CARD_COLUMNS) | {"adult", "in_stock"}


def card_extras(
    view: Any, positions: list[int], limit: int = 4, width: int = 90
) -> list[list[tuple[str, str]]]:
    """Per position: up to ``limit`` (column, text) pairs of the catalogue's other columns with
    a value (``description`` first, then the others in file order: dunnhumby's package size and
    manufacturer, Myntra's colour), each cut at a word to ``width`` characters. A catalogue
    without titles or images (dunnhumby, Taobao) is judged by these, not by ids."""
    import pandas as pd

    names = sorted((c for c in view.columns if c not in _SHOWN_COLUMNS), key=lambda c: c != "description")
    if not names or not positions:
        return [[] for _ in positions]
    titled = "title" in view.columns
    out = []
    for rec in view.attributes(positions)[names + (["title"] if titled else [])].to_dict("records"):
        pairs: list[tuple[str, str]] = []
        has_title = titled and bool(str(rec.get("title") or "").strip())
        for name in names:
            if has_title and _ID_COLUMN.search(name):
                continue  # a code (Instacart's "aisle id: 24"): a titled item is read by its title
            value = rec.get(name)
            text = "" if value is None or pd.isna(value) else " ".join(str(value).split())
            if text:
                cut = text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + "…"
                pairs.append((name.replace("_", " "), cut))
            if len(pairs) == limit:
                break
        out.append(pairs)
    return out


def card_rows(
    view: Any, positions: Sequence[int] | Any, dataset: str | None = None, extras: bool = False
) -> list[dict[str, Any]]:
    """Card rows (``CARD_COLUMNS``) of catalogue positions (ints or an int array), in order.

    Each row also has ``image``: what the card's ``<img src>`` holds
    (:func:`recsys.images.image_src` of ``image_url``: an http(s) URL as is, a path in the
    images folder of ``dataset`` as ``/media/<dataset>/<path>``; None without an image, or
    for a local path when ``dataset`` is not given); ``stand_in`` where the run serves the item
    by its category's mean vector; with ``extras``, ``extra``: :func:`card_extras`.
    """
    cols = _card_columns(view)
    pos = positions.tolist() if hasattr(positions, "tolist") else [int(p) for p in positions]
    rows = [{name: cols[name][p] for name in CARD_COLUMNS} for p in pos]
    for row in rows:
        row["image"] = image_src(row["image_url"], dataset)
        if not cols["_brands"]:
            row["catalogue_has_brands"] = False
        if not cols["_prices"]:
            row["catalogue_has_prices"] = False
        if not cols["_categories"]:
            row["catalogue_has_categories"] = False
    if extras:  # the Vetting page: every text the catalogue has, so a pair can be judged
        for row, more in zip(rows, card_extras(view, pos)):
            row["extra"] = more
    stand_in = cols["_stand_in"]
    if stand_in is not None:
        for row, p in zip(rows, pos):
            if stand_in[p]:
                row["stand_in"] = True
    return rows
