"""The column mapping of an import: which fields exist, what they mean, guessing and checking it.

One place for what the Data page's mapping form, the command line (``recsys import csv
--map COLUMN=FIELD``) and the loaders know about mapping a file's columns to the schema:

- :data:`CATALOG_FIELDS`, :data:`INTERACTION_FIELDS`, :data:`FIELDS`: the fields a column
  can be mapped to, with their meaning (``import --help`` lists them with
  :func:`fields_help`); :data:`MAPPING_FIELDS`: the fields the Data page's form offers,
  which are required, and a hint for each;
- :data:`FIELD_ALIASES`: column names that mean a field; :func:`guess_mapping` (column ->
  field, as the command line reports it) and :func:`guess_fields` (field -> column, as
  the form pre-fills it) guess from them;
- :func:`parse_map_pairs` (the command line's ``--map`` words) and
  :func:`mapping_from_choices` (the form's dropdowns) build a mapping
  ``{file column: field}``; :func:`required_fields` says which fields must be mapped;
  :func:`check_targets` refuses a target that is not a field, naming the closest ones
  (:func:`did_you_mean`, also used for misspelled column names).

Applying a mapping to a frame is :func:`recsys.data.tables.apply_mapping`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from recsys.errors import DataValidationError

#: Schema fields a file column can be mapped to, and what each means.
CATALOG_FIELDS: dict[str, str] = {
    "item_id": "the product's id (SKU, product code); required in a catalogue",
    "title": "the product's name",
    "category": "category path like 'Women > Shoes'; map several columns to join them in order",
    "brand": "brand name",
    "gender": "women, men, unisex or kids (F, M, female, girls... are understood)",
    "price": "unit price; currency symbols and thousands separators are removed",
    "adult": "true/false: an adult-only item",
    "in_stock": "true/false: the item can be bought now (optional; the 'in stock only' filter needs it)",
    "description": "free text about the product",
    "image_url": "link to an image",
}
INTERACTION_FIELDS: dict[str, str] = {
    "sequence_id": "session, order, invoice or basket id; required unless --session-gap cuts sessions",
    "item_id": "the product's id; required in an events file",
    "user_id": "customer or user id",
    "timestamp": "time of the event: ISO 8601, unix seconds, milliseconds, microseconds or nanoseconds",
    "event_type": "view, cart or purchase (or your codes with --event-map)",
    "quantity": "number of units (blank is 1)",
    "position": "order of the event inside its sequence (e.g. add-to-cart order)",
}
FIELDS: dict[str, str] = {**INTERACTION_FIELDS, **{k: v for k, v in CATALOG_FIELDS.items() if k != "item_id"}}
#: Words users write for a field (for "did you mean" on a mapping target).
FIELD_SYNONYMS: dict[str, str] = {
    "session": "sequence_id",
    "session_id": "sequence_id",
    "order": "sequence_id",
    "order_id": "sequence_id",
    "basket": "sequence_id",
    "invoice": "sequence_id",
    "sku": "item_id",
    "product": "item_id",
    "product_id": "item_id",
    "item": "item_id",
    "customer": "user_id",
    "user": "user_id",
    "time": "timestamp",
    "date": "timestamp",
    "datetime": "timestamp",
    "event": "event_type",
    "behavior": "event_type",
    "behaviour": "event_type",
    "action": "event_type",
    "qty": "quantity",
    "name": "title",
    "product_name": "title",
    "cost": "price",
    "amount": "price",
    "department": "category",
    "aisle": "category",
}
#: Column names (lower-cased, letters and digits only) that mean a field, in order of preference.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "sequence_id": ("sequenceid", "sessionid", "usersession", "session", "orderid", "basketid", "invoiceno", "invoiceid", "invoice", "visitid", "transactionid", "receiptid", "receipt", "ticketid", "cartid"),
    "item_id": ("itemid", "productid", "sku", "stockcode", "item", "product", "articleid", "parentasin", "asin", "movieid"),
    "user_id": ("userid", "customerid", "user", "customer", "visitorid", "clientid", "householdid", "reviewerid", "uid", "memberid", "shopperid", "accountid"),
    "timestamp": ("timestamp", "time", "eventtime", "datetime", "date", "invoicedate", "createdat", "orderdate", "transactiontimestamp", "eventdate", "tdat", "unixreviewtime", "ts", "eventtimestamp", "eventdatetime", "occurredat", "purchasedat", "orderedat"),
    "event_type": ("eventtype", "event", "eventname", "action", "behaviortype", "behaviourtype", "behavior", "behaviour"),
    "quantity": ("quantity", "qty"),
    "position": ("position", "addtocartorder", "orderitemid", "timeframe"),
    "title": ("title", "name", "productname", "itemname", "prodname", "product", "item"),
    "category": ("category", "categorycode", "categorypath", "categoryname", "categories", "maincategory", "productcategoryname", "producttypename", "genres", "genre", "producttype", "categoryid", "cat"),
    "brand": ("brand", "brandname", "productbrand"),
    "gender": ("gender", "sex"),
    "price": ("price", "unitprice", "saleprice", "sellingprice"),
    "adult": ("adult",),
    "in_stock": ("instock", "isinstock", "available", "isavailable"),
    "description": ("description", "productdescription", "detaildesc"),
    "image_url": ("imageurl", "image", "imagelink"),
}  # fmt: skip


#: Fields that several columns may be mapped to: their values are joined in order.
JOINABLE_FIELDS = ("category",)
#: Targets that drop a column on purpose.
DROP_TARGETS = ("", "-", "drop")


def drops(target: Any) -> bool:
    """Whether a mapping target drops its column on purpose (None, or one of ``DROP_TARGETS``)."""
    return target is None or (isinstance(target, str) and target.strip().lower() in DROP_TARGETS)


#: The fields the Data page's mapping form offers: (field, required, hint), in form order.
MAPPING_FIELDS: tuple[tuple[str, bool, str], ...] = (
    ("sequence_id", True, "session, order or basket id"),
    ("item_id", True, "product id"),
    ("user_id", False, ""),
    ("timestamp", False, "ISO 8601 or Unix time"),
    ("event_type", False, "view / cart / purchase"),
    ("quantity", False, ""),
    ("title", False, ""),
    ("category", False, "path like Women > Shoes; several columns join in order"),
    ("brand", False, ""),
    ("gender", False, ""),
    ("price", False, ""),
    ("adult", False, ""),
    ("description", False, ""),
    ("image_url", False, ""),
)


def fields_help(indent: str = "  ") -> str:
    """The valid mapping targets, one per line, for ``import --help`` and messages."""
    width = max(map(len, FIELDS))
    return "\n".join(f"{indent}{name:<{width}}  {text}" for name, text in FIELDS.items())


#: Fields whose column holds ids: a column whose sampled values read like names is not guessed as one.
ID_FIELDS = ("sequence_id", "item_id", "user_id")


def looks_like_names(values: Iterable[Any] | None) -> bool:
    """Whether sampled values of a column read like names (most non-empty ones hold a space:
    ``"Garlic Oil - Vegetarian Capsule 500 mg"``), not like ids (``"85123A"``, ``"10017413"``,
    a UUID). ``None`` (no sample) is False: the column name alone decides."""
    if values is None:
        return False
    texts = [str(v).strip() for v in values]
    texts = [t for t in texts if t and t.lower() not in ("nan", "none", "<na>")]
    return bool(texts) and sum(" " in t for t in texts) * 2 > len(texts)


_BLANK_TEXTS = ("", "nan", "none", "null", "na", "n/a", "<na>", "nat")
#: Fields that must be filled on every row: a column mostly blank in the sample is not guessed as one
#: (RetailRocket's ``transactionid`` is filled on purchases only: it is no session id).
FILLED_FIELDS = ("sequence_id", "item_id")
#: Product attributes: on an events file, a column whose value differs between rows of the same
#: item describes the event, not the product (Amazon's review ``title``), and is not guessed as one.
PRODUCT_TEXT_FIELDS = ("title", "description", "brand", "category")


#: Fields whose values are numbers: a column named like one but holding text is not guessed as it.
NUMERIC_FIELDS = ("quantity", "position")
_NUMBER = re.compile(r"^[-+]?\d+([.,]\d+)?$")


def _mostly_numbers(values: Iterable[Any]) -> bool:
    texts = [str(v).strip() for v in values]
    texts = [t for t in texts if t.lower() not in _BLANK_TEXTS]
    return not texts or sum(bool(_NUMBER.match(t)) for t in texts) * 2 > len(texts)


#: Words in a column's name that say it holds a price (``market_price``, ``MRP``, ``unit_cost``).
_PRICE_WORDS = ("price", "mrp", "cost")


def looks_like_price(column: str, values: Iterable[Any]) -> bool:
    """Whether a column, by its name (a price alias or a name holding ``price``, ``mrp`` or
    ``cost``, not ``log``) and its sampled values (most filled ones hold a digit), looks like a price."""
    key = re.sub(r"[^a-z0-9]", "", str(column).lower())
    if key not in FIELD_ALIASES["price"] and not any(w in key for w in _PRICE_WORDS):
        return False
    if "log" in key:  # Diginetica's pricelog2: a log price is no price
        return False
    texts = [str(v).strip() for v in values]
    texts = [t for t in texts if t.lower() not in _BLANK_TEXTS]
    return bool(texts) and sum(any(ch.isdigit() for ch in t) for t in texts) * 2 > len(texts)


def _blank_share(values: Iterable[Any]) -> float:
    texts = [str(v).strip().lower() for v in values]
    return sum(t in _BLANK_TEXTS for t in texts) / len(texts) if texts else 0.0


def unfit_reason(field: str, column: str, samples: Mapping[str, Any] | None) -> str | None:
    """Why ``column``, whose name means ``field``, is not guessed as it (None: it may be): an
    id column whose values read like names; the title from a ``product``/``item`` column whose
    values read like ids; a column blank in the whole sample, or a session or item column
    blank in more than half of it; a quantity or position column that holds text."""
    values = None if samples is None else samples.get(column)
    if values is not None:
        share = _blank_share(values)
        if share == 1.0:
            return "it is blank in all the first rows"
        if field in FILLED_FIELDS and share > 0.5:
            return "it is blank in most of the first rows"
        if field in NUMERIC_FIELDS and not _mostly_numbers(values):
            return "its values are not numbers"
    names = samples is not None and looks_like_names(values)
    if field in ID_FIELDS and names:
        return "its values read like names, not ids"
    if field == "title" and re.sub(r"[^a-z0-9]", "", column.lower()) in ("product", "item") and not names:
        return "its values read like ids, not names"
    return None


def varies_per_item(column: str, item_column: str | None, samples: Mapping[str, Any] | None) -> bool:
    """Whether, in the sample, most items seen on several rows have several different values of
    ``column`` (so it describes the rows, e.g. a review's title, not the product)."""
    if samples is None or item_column is None or column not in samples or item_column not in samples:
        return False
    if len(samples[column]) != len(samples[item_column]):  # not sampled from the same rows
        return False
    seen: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for item, value in zip(samples[item_column], samples[column]):
        key = str(item)
        counts[key] = counts.get(key, 0) + 1
        text = str(value).strip()
        if text.lower() not in _BLANK_TEXTS:
            seen.setdefault(key, set()).add(text)
    repeated = [k for k, n in counts.items() if n > 1 and k in seen]
    if len(repeated) < 3:
        return False
    return sum(len(seen[k]) > 1 for k in repeated) * 2 > len(repeated)


def item_column(columns: Sequence[str], chosen: Mapping[str, Any]) -> str | None:
    """The column holding item ids: one named item_id, or the one guessed as it (``chosen``:
    {file column: field})."""
    if "item_id" in columns:
        return "item_id"
    return next((c for c, f in chosen.items() if f == "item_id"), None)


def ruled_out(field: str, column: str, samples: Mapping[str, Any] | None, item_col: str | None) -> str | None:
    """Why ``column``, whose name means ``field``, is not guessed as it, as a note for the
    report (None: it may be): its values contradict the field (:func:`unfit_reason`), or it is
    a product attribute that differs between rows of the same item (:func:`varies_per_item`;
    ``item_col``: the column of item ids)."""
    why = unfit_reason(field, column, samples)
    if why:
        return f"'{column}' not used as {field}: {why}"
    if field in PRODUCT_TEXT_FIELDS and varies_per_item(column, item_col, samples):
        return (
            f"'{column}' not used as the product's {field}: it differs between rows of the same "
            f"item (it describes the event); pass --map {column}={field} if it is the product's"
        )
    return None


#: The words after an id column's stem that mean "id" ("Receipt No", "Article Nr", "Order Number",
#: "Product Code"): such a name is guessed as ``<stem>id`` when no column is named that.
_ID_SUFFIX = re.compile(r"(no|nr|num|number|code|key)$")


def guess_mapping(
    columns: Iterable[str],
    fields: Iterable[str] | None = None,
    samples: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
    given: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """{file column: field} for columns whose name means a field (a field already present as a
    column is left alone; each column and field is used once).

    ``samples`` (column -> some of its values, in row order) keeps a column from a guess its
    values contradict (see :func:`ruled_out`): BigBasket's
    ``product`` holds product names, so it is the title, not the item id. Each column
    passed over for its values is explained in ``notes``.

    ``given`` ({file column: field or None}, the user's ``--map``) overrides the guesses for
    what it names: its columns are not guessed, nor are the fields it maps a column to; every
    other column keeps its guess (``--map index=item_id`` still takes BigBasket's ``product``
    as the title)."""
    columns = [str(c) for c in columns]
    present = set(columns)
    given = {str(k): v for k, v in (given or {}).items()}
    taken = {v for v in given.values() if isinstance(v, str)}
    norm = {}
    for c in columns:
        if c not in given:
            norm.setdefault(re.sub(r"[^a-z0-9]", "", c.lower()), c)
    # "Receipt No", "Article Nr", "Order Number": the id of its stem, only for a field that no
    # column names outright (H&M's article_id is the item, not its product_code)
    stems: dict[str, str] = {}
    for n, c in norm.items():
        stem = _ID_SUFFIX.sub("", n)
        if stem != n and stem:
            stems.setdefault(stem + "id", c)
    out: dict[str, str] = {}
    for field in fields or FIELD_ALIASES:
        if field in present or field in taken:
            continue
        for names in (norm, stems):
            if _guess_one(field, names, columns, samples, notes, given, out):
                break
    return out


def _guess_one(
    field: str,
    names: Mapping[str, str],
    columns: list[str],
    samples: Mapping[str, Any] | None,
    notes: list[str] | None,
    given: Mapping[str, Any],
    out: dict[str, str],
) -> bool:
    """The first column of ``names`` (normalised name -> column) named like ``field`` whose values
    do not rule it out, put in ``out``; whether one was."""
    for alias in FIELD_ALIASES.get(field, ()):
        col = names.get(alias)
        if not col or col in out or col in FIELD_ALIASES:
            continue
        note = ruled_out(field, col, samples, item_column(columns, {**given, **out}))
        if note:
            if notes is not None and samples is not None and col in samples:
                notes.append(note)
            continue
        out[col] = field
        return True
    return False


def guess_fields(columns: Sequence[str], samples: Mapping[str, Any] | None = None) -> dict[str, str | None]:
    """Field -> file column (None when no column means it), as the Data page pre-fills its form:
    the guesses of :func:`guess_mapping` (the ones the command line applies and reports), plus
    each column named as its field (``price``), unless its values rule it out."""
    columns = [str(c) for c in columns]
    guessed = {f: c for c, f in guess_mapping(columns, samples=samples).items()}
    item_col = item_column(columns, {c: f for f, c in guessed.items()})
    return {
        field: field
        if field in columns and not ruled_out(field, field, samples, item_col)
        else guessed.get(field)
        for field in FIELD_ALIASES
    }


def mapping_from_choices(
    fields: Sequence[str], chosen: Sequence[Any], required: set[str] | None = None
) -> dict[str, str]:
    """Chosen columns per field (the form's dropdowns) -> mapping ``{file column: field}``.

    ``category`` may hold several columns: they are joined into one path in the order chosen.
    ``required`` defaults to the fields marked required in :data:`MAPPING_FIELDS`.

    Raises
    ------
    DataValidationError
        A required field is not mapped, or one column is mapped to two fields.
    """
    mapping: dict[str, str] = {}
    required = {f for f, req, _ in MAPPING_FIELDS if req} if required is None else required
    for field, choice in zip(fields, chosen):
        columns = [c for c in (choice if isinstance(choice, list) else [choice]) if c]
        if not columns:
            if field in required:
                raise DataValidationError(f"map a column to the required field '{field}'", column=field)
            continue
        for column in columns:
            if column in mapping:
                raise DataValidationError(
                    f"column '{column}' is mapped to both '{mapping[column]}' and '{field}'; map it once",
                    column=column,
                )
            mapping[column] = field
    return mapping


def required_fields(options: dict[str, Any]) -> set[str]:
    """Fields the form must map: item_id always; sequence_id unless sessions are cut on a gap
    or the file is a catalogue."""
    if options.get("role") == "catalog" or options.get("session_gap"):
        return {"item_id"}
    return {"sequence_id", "item_id"}


def parse_map_pairs(pairs: Iterable[str] | None) -> dict[str, str]:
    """The command line's ``--map COLUMN=FIELD ...`` words -> mapping ``{file column: field}``.

    Targets are checked when the mapping is applied (:func:`check_targets`).

    Raises
    ------
    DataValidationError
        A word without ``=`` or without a column before it.
    """
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DataValidationError(
                f"--map '{pair}' is not of the form COLUMN=FIELD (e.g. --map SessionId=sequence_id)"
            )
        mapping[key] = value
    return mapping


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest names among ``choices`` (case and punctuation insensitive)."""
    choices = [str(c) for c in choices]

    def key(s: str) -> str:
        return re.sub(r"[^a-z0-9]", "", s.lower())

    keyed = {key(c): c for c in choices}
    exact = [keyed[key(name)]] if key(name) in keyed and keyed[key(name)] != name else []
    close = difflib.get_close_matches(key(name), list(keyed), n=n, cutoff=0.6)
    out = exact + [keyed[c] for c in close if keyed[c] not in exact]
    return out[:n]


def check_targets(mapping: Mapping[str, Any], *, file: str | None = None) -> None:
    """Refuse a mapping target that is not a schema field, listing the valid ones."""
    for src, dst in mapping.items():
        if drops(dst):
            continue
        if not isinstance(dst, str) or dst not in FIELDS:
            close = did_you_mean(str(dst), FIELDS)
            synonym = FIELD_SYNONYMS.get(str(dst).strip().lower())
            if synonym and synonym not in close:
                close = [synonym, *close]
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise DataValidationError(
                f"--map {src}={dst}: '{dst}' is not a field of the schema.{hint} Valid fields:\n"
                f"{fields_help()}\n(a column you do not map is taken as the field its name means, else kept as an extra attribute)",
                file=file,
                column=str(src),
            )
