"""Labels of catalogue items by a categorical colouring (category level, brand, gender).

The Map colours its points by them and :func:`recsys.projection.catalogue_purity` measures
how well each label holds together among nearest neighbours. Imports only NumPy at module
level (the dashboard imports this at start).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The label of the points outside the top N of a colouring.
OTHER_LABEL = "other"


def readable_label(name: Any, what: str = "category") -> str:
    """``name`` as a chart shows it: an anonymised id made only of digits (Taobao's categories,
    ``2520377``) reads "category 2520377", not a bare number a chart's axis would take for a
    quantity; any other name is kept."""
    text = str(name)
    return f"{what} {text}" if text.isdigit() else text


def item_labels(view: Any, positions: np.ndarray, by: str, top_n: int | None = None) -> np.ndarray:
    """Each item's label for a categorical colouring, as an object array.

    Parameters
    ----------
    view : recsys.catalog.CatalogView
        The catalogue (its category levels, brands and genders).
    positions : array of int
        Catalogue rows.
    by : str
        ``"category:<level>"`` (deeper levels are capped at the catalogue's deepest),
        ``"brand"`` or ``"gender"``. Blank values get "(no category)", "(no brand)",
        "(unknown)".
    top_n : int, optional
        Keep the ``top_n`` most frequent labels among ``positions`` and call the rest
        :data:`OTHER_LABEL`; None keeps every label (what purity needs: lumping labels
        together would inflate it).

    Raises
    ------
    ValueError
        An unknown colouring.
    """
    if by.startswith("category:"):
        level = min(int(by.split(":")[1]), view.max_level)
        names = np.asarray(view.cat_names[level], dtype=object)
        labels = names[view.cat_codes[level][positions]]
        labels = np.where(labels == "", "(no category)", labels)
    elif by == "brand":
        labels = np.asarray(view.brand_display, dtype=object)[view.brand[positions]]
        labels = np.where(labels == "", "(no brand)", labels)
    elif by == "gender":
        labels = np.asarray(view.gender_names, dtype=object)[view.gender[positions]]
        labels = np.where(labels == "", "(unknown)", labels)
    else:
        raise ValueError(f"unknown categorical colouring '{by}'")
    if top_n is None:
        return labels.astype(object)
    import pandas as pd  # off the app's start path

    counts = pd.Series(labels).value_counts()
    top = set(counts.index[:top_n])
    if len(counts) > top_n:
        labels = np.where(pd.Series(labels).isin(top).to_numpy(), labels, OTHER_LABEL)
    return labels.astype(object)
