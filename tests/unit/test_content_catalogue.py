"""The content model on a catalogue alone (issue 13, deliver 5): no interactions, no category.

A fashion export of titles, brands and prices (Myntra) has neither interactions nor a category
column; the model learns from the catalogue's own text (title TF-IDF neighbours) and says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.schema import Dataset
from recsys.models.content import ContentModel
from recsys.models.content.model import CATALOGUE_BLEND
from recsys.models.content.pairs import text_pairs
from tests.unit.test_content import FAST, KINDS, PER_KIND, kind_of, kinds_dataset


def catalogue_only(category: bool = False) -> Dataset:
    """The four kinds' catalogue, no interactions; without ``category`` the column is blank."""
    ds = kinds_dataset()
    cat = ds.catalog.copy()
    if not category:
        cat["category"] = ""
    return Dataset("catalogue", cat, ds.interactions.iloc[:0])


def test_text_pairs_pair_uncovered_items_with_their_nearest_titles():
    cat = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "title": ["red wool scarf", "red wool scarf long", "blue denim jeans", "denim jeans", "zebra"],
        }
    )
    covered = np.array([False, False, False, True, False])
    pairs = text_pairs(cat, covered, 1)
    # a <-> b share the most words; c's nearest is d (covered items are still targets); d has a
    # pair already; e shares no word with any item: no pair
    assert pairs.tolist() == [[0, 1], [1, 0], [2, 3]]
    assert len(text_pairs(cat, covered, 0)) == 0
    assert len(text_pairs(cat, np.ones(5, dtype=bool), 3)) == 0
    wide = text_pairs(cat, covered, 3)
    assert set(map(tuple, wide.tolist())) == {(0, 1), (1, 0), (2, 3)}  # only items sharing a term


def test_content_model_trains_on_a_catalogue_alone_and_groups_items_by_their_words():
    ds = catalogue_only()
    model = ContentModel(**FAST).fit(ds)  # the content vector alone (tfidf_dim 0)
    src = model.coverage_["training_pairs"]
    assert (
        src["cooccurrence"] == 0 and src["category"] == 0 and src["title"] >= 4 * PER_KIND * len(KINDS) // 2
    )
    assert any("catalogue only" in n for n in model.coverage_["notes"])
    assert model.vectors_.shape[0] == len(ds.catalog)
    np.testing.assert_allclose(np.linalg.norm(model.vectors_, axis=1), 1.0, atol=1e-5)
    ids, _ = model.similar(ds.catalog["item_id"].tolist(), 5)
    seeds = kind_of(ds.catalog["item_id"].to_numpy())
    same = (kind_of(ids) == seeds[:, None]).mean()
    assert same > 0.9, same  # four kinds of 10: a random list would share the kind 23% of the time


def test_catalogue_only_hybrid_uses_the_declared_weight_and_says_why():
    ds = catalogue_only(category=True)
    model = ContentModel(**{**FAST, "tfidf_dim": 4096}).fit(ds)
    src = model.coverage_["training_pairs"]
    assert src["cooccurrence"] == 0 and src["category"] > 0 and src["title"] == 0  # category first
    assert model.blend_["a"] == CATALOGUE_BLEND
    assert "catalogue-only default" in model.blend_["chosen_on"]
    note = " ".join(model.coverage_["notes"])
    assert "same-category pairs" in note and f"{CATALOGUE_BLEND:.2f}" in note


def test_with_interactions_there_is_no_catalogue_note():
    model = ContentModel(**FAST).fit(kinds_dataset())
    assert model.coverage_["training_pairs"]["cooccurrence"] > 0
    assert "notes" not in model.coverage_


def test_the_first_run_on_a_catalogue_only_dataset_is_active_there(tmp_path):
    """s43-u's walk: the first content run trained on Myntra (a catalogue alone) from the Runs
    page was left inactive, because the demo, the default dataset, already had an active run of
    that family; Explore listed it without its star and served the demo's. It is active on its
    own dataset, the demo's run stays active on the demo."""
    from recsys.data.schema import save_dataset
    from recsys.data.synthetic import generate_demo
    from recsys.pipeline import train_run
    from recsys.registry import Registry

    save_dataset(generate_demo(n_items=200, n_sequences=300, seed=1), tmp_path)
    demo_run = train_run("tfidf", {}, "demo", tmp_path, max_cases=50, validate=False)
    shop = catalogue_only()
    save_dataset(Dataset("shop", shop.catalog, shop.interactions), tmp_path)
    shop_run = train_run("tfidf", {}, "shop", tmp_path)
    registry = Registry(tmp_path)
    assert shop_run.get("active") and registry.active("shop") == {"tfidf": shop_run["run_id"]}
    assert registry.active("demo")["tfidf"] == demo_run["run_id"]
    # the Runs page's "who serves the items": a catalogue-only run has no fallback chain to speak of
    from components.tuning import served_view
    from tests.callbacks._pages import text_of

    runs = {r["run_id"]: r for r in registry.list_runs()}
    shop_words = " ".join(text_of(served_view(runs[shop_run["run_id"]])).split())
    assert "a catalogue-only run has no fallback chain" in shop_words and "first step" not in shop_words
    assert "fallback chain's first step" in text_of(served_view(runs[demo_run["run_id"]]))
