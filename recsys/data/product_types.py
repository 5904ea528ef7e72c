"""A product type inferred from the titles, for a catalogue that has no category column.

The type of a product is the head of its title: the last word of the name, where most
languages' shop titles put the noun ("DKNY Unisex Black Printed Medium Trolley **Bag**",
"Chocolate Sandwich **Cookies**"). A title's head phrase is its longest suffix of 1 to
``max_words`` normalised words (one by default: it agreed best with real categories) that ends
at least ``min_titles`` *distinct* titles; a title whose suffixes are all rarer gets no type
(left blank, not guessed).

No word list of any shop or language is used. What is learned from the catalogue itself:

- a *variant word* varies between titles that are otherwise identical, word for word: the
  colour in "Steel Water Bottle Red" / "Steel Water Bottle Blue", the size in "Cotton Kurta
  Small" / "Cotton Kurta Large". A word that varies in at least ``variant_share`` of the titles
  holding it is skipped when the head is read;
- words holding a digit (sizes, amounts, model numbers) are skipped, and so are *units*: words
  written right after a number in 90% of the titles holding them ("70 ml", "500 g", "2 pcs");
- a *joining word* ("with", "for", "de", "mit") comes, inside titles, mostly right after words
  that mostly end titles, after many different ones, and rarely ends a title itself: the head is
  read before it ("Slip-On Sneakers with Green Stripe Detail" -> Sneakers);
- the title is cut at its first separator (`` - ``, ``|``, ``,``, ``(``, ``:``) when one is
  present, as catalogues write a variant or a detail after it ("Durum Wheat Pasta - Lasagne",
  "Liquid Laundry Detergent, Daybreak Fresh Scent").

Titles are counted once however many items share them (size or colour variants under several
ids do not make a type on their own). The type's label is the word's most frequent spelling in
the titles ("T-shirt" for ``t-shirt``, ``T-Shirt`` and ``Tshirt``), its first letter upper-cased.

The settings were chosen by agreement with the real categories of catalogues that have them,
hidden: BigBasket's ``type``, Instacart's aisles and the demo's leaves, the setting whose worst
catalogue agrees best (``bench/product_types.py --grid``; ``docs/MEASUREMENTS.md``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

#: Chosen on BigBasket's ``type``, Instacart's aisles and the demo's leaves, hidden (the module docstring).
MIN_TITLES = 3
MAX_WORDS = 1
VARIANT_SHARE = 0.5


def _marks() -> str:
    """A character class body of Unicode's combining marks (categories Mn, Mc, Me): the vowel
    signs and viramas of Devanagari, Tamil, Thai... that ``\\w`` does not match, so a word
    "कुर्ता" is read whole, not as its consonants "क", "र", "त"."""
    spans: list[list[int]] = []
    for c in range(0x30000):
        if unicodedata.category(chr(c))[0] == "M":
            if spans and spans[-1][1] == c - 1:
                spans[-1][1] = c
            else:
                spans.append([c, c])
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in spans)


_LETTER = rf"(?:[^\W_]|[{_marks()}])"
_WORD = re.compile(rf"{_LETTER}+(?:['\u2019.\-]{_LETTER}+)*")
_CUT = re.compile(r"\s[-\u2013\u2014|:]\s|[,(\[|]")
_DIGIT = re.compile(r"\d")
_JOINERS = str.maketrans("", "", "'\u2019.-")


@dataclass(frozen=True)
class InferredTypes:
    """The result of :func:`infer_product_types`.

    Attributes
    ----------
    types : pandas.Series
        One label per title ("" where no shared head phrase was found), aligned with the input.
    n_types : int
        Distinct labels given.
    coverage : float
        Share of the titles that got a type.
    """

    types: pd.Series
    n_types: int
    coverage: float


def _words(title: str, cut: bool = True) -> list[tuple[str, str]]:
    """(normalised, as written) words of the title's first segment (of the whole title when
    ``cut`` is False)."""
    text = str(title)
    head = _CUT.split(text, maxsplit=1)[0] if cut else text
    if not head.strip():  # a title that starts with its separator: "(Pack of 2) Socks"
        head = text
    return [(m.casefold().translate(_JOINERS), m) for m in _WORD.findall(head)]


def variant_words(titles: Iterable[list[str]], variant_share: float = VARIANT_SHARE) -> set[str]:
    """Words that vary between otherwise identical titles in at least ``variant_share`` of the
    distinct titles holding them (a colour, a size, a flavour written at the same place).

    ``titles`` are distinct titles as lists of normalised words."""
    slot_of: list[int] = []  # one row per (title, place): the rest of the title, hashed
    word_of: list[str] = []
    held: Counter[str] = Counter()
    for words in {tuple(t) for t in titles}:
        held.update(set(words))
        # the words before and after each place, as running hashes: O(words) per title
        before = [0]
        for w in words:
            before.append(hash((before[-1], w)))
        after = [0]
        for w in reversed(words):
            after.append(hash((after[-1], w)))
        n = len(words)
        slot_of += [hash((i, before[i], after[n - 1 - i])) for i in range(n)]
        word_of += words
    rows = pd.DataFrame({"slot": slot_of, "word": word_of}).drop_duplicates()
    options = rows.groupby("slot")["word"].transform("size")
    varied = rows.loc[options.to_numpy() > 1, "word"].value_counts()
    return {w for w, n in varied.items() if n >= 2 and n >= variant_share * held[w]}


def unit_words(titles: list[tuple[str, ...]], numbers: set[str]) -> set[str]:
    """Words written right after a number in 90% of the (3 or more) titles holding them ("70 **ml**",
    "500 **g**", "2 **pcs**"): units and counts, not products."""
    held: Counter[str] = Counter()
    after_number: Counter[str] = Counter()
    for t in titles:
        held.update(t)
        for i in range(1, len(t)):
            if t[i - 1] in numbers and t[i] not in numbers:
                after_number[t[i]] += 1
    return {w for w, n in after_number.items() if n >= 0.9 * held[w] and held[w] >= 3}


def joining_words(titles: list[list[str]], min_titles: int = MIN_TITLES) -> set[str]:
    """Words that join a head to what follows it ("with", "for", "de", "mit"): inside a title,
    most often right after a word that mostly ends titles, and themselves rarely last.

    ``titles`` are distinct titles as lists of normalised words."""
    last: Counter[str] = Counter(t[-1] for t in titles if t)
    held: Counter[str] = Counter(w for t in titles for w in t)
    heads = {w for w, n in last.items() if n >= min_titles and n * 2 >= held[w]}
    inside: Counter[str] = Counter()
    after_head: Counter[str] = Counter()
    before: dict[str, set[str]] = defaultdict(set)
    for t in titles:
        for i in range(1, len(t) - 1):
            inside[t[i]] += 1
            after_head[t[i]] += t[i - 1] in heads
            before[t[i]].add(t[i - 1])
    return {
        w
        for w, n in inside.items()
        if n >= min_titles
        and after_head[w] * 2 >= n
        and len(before[w]) >= min_titles  # after many heads, not one ("Tea Tree Oil")
        and w not in heads
        and last[w] * 10 < n
    }


def infer_product_types(
    titles: Iterable[str] | pd.Series,
    *,
    min_titles: int = MIN_TITLES,
    max_words: int = MAX_WORDS,
    variant_share: float = VARIANT_SHARE,
    cut: bool = True,
    connectives: bool = True,
    units: bool = True,
) -> InferredTypes:
    """The head phrase of each title as its product type (see the module docstring).

    Parameters
    ----------
    titles : iterable of str or pandas.Series
        The products' names, one per item (blank for an item with none).
    min_titles : int, default MIN_TITLES
        Distinct titles a phrase must end to be a type.
    max_words : int, default MAX_WORDS
        Longest head phrase, in words.
    variant_share : float, default VARIANT_SHARE
        A word varying between otherwise identical titles in this share of the titles holding
        it is a variant word (colour, size) and never part of a type.
    cut : bool, default True
        Read the head of the title's first segment (before `` - ``, ``,``, ``(``...).
    connectives : bool, default True
        Read the head before a joining word (:func:`joining_words`).
    units : bool, default True
        Skip the words written after numbers (:func:`unit_words`).

    Returns
    -------
    InferredTypes
    """
    if min_titles < 2:
        raise ValueError("min_titles must be at least 2: a phrase one title holds is no type")
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    series = titles if isinstance(titles, pd.Series) else pd.Series(list(titles), dtype=object)
    text = series.fillna("").astype(str)
    codes, uniques = pd.factorize(text)
    parsed = [_words(t, cut) for t in uniques]
    full = [tuple(n for n, _ in words) for words in parsed]
    variants = variant_words(full, variant_share)
    numbers = {w for words in full for w in words if _DIGIT.search(w)}
    skipped = variants | numbers | (unit_words(full, numbers) if units else set())
    kept_of = [[(n, w) for n, w in words if n not in skipped] for words in parsed]
    joins = joining_words([[n for n, _ in k] for k in kept_of], min_titles) if connectives else set()
    heads: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for kept in kept_of:
        for i in range(1, len(kept) - 1):
            if kept[i][0] in joins:  # "Sneakers with Stripe Detail": the head is before "with"
                kept = kept[:i]
                break
        heads.append((tuple(n for n, _ in kept[-max_words:]), tuple(w for _, w in kept[-max_words:])))
    # support: distinct normalised titles ending with the phrase
    ends: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
    for (norm, _), key in zip(heads, full):
        for k in range(1, len(norm) + 1):
            ends[norm[-k:]].add(key)
    support = {phrase: len(keys) for phrase, keys in ends.items()}
    spellings: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    labels: list[str] = []
    for norm, written in heads:
        label = ""
        for k in range(len(norm), 0, -1):
            if support.get(norm[-k:], 0) >= min_titles:
                spellings[norm[-k:]][" ".join(written[-k:])] += 1
                label = norm[-k:]  # type: ignore[assignment]
                break
        labels.append(label)  # type: ignore[arg-type]
    shown = {phrase: _label(c) for phrase, c in spellings.items()}
    per_title = [shown[p] if p else "" for p in labels]
    out = pd.Series([per_title[c] if c >= 0 else "" for c in codes], index=series.index, dtype=object)
    typed = out != ""
    return InferredTypes(
        types=out.astype(str),
        n_types=int(out[typed].nunique()),
        coverage=float(typed.mean()) if len(out) else 0.0,
    )


def _label(spellings: Counter[str]) -> str:
    """The most frequent spelling, its first letter upper-cased ("trolley bag" -> "Trolley bag")."""
    best = max(spellings.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return best[:1].upper() + best[1:]
