"""The synthetic demo shop: determinism, counts, schema, and the structure models must learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.loaders import build_dataset
from recsys.data.schema import (
    CATALOG_COLUMNS,
    EVENT_TYPES,
    GENDERS,
    INTERACTION_COLUMNS,
    category_level,
    load_dataset,
    save_dataset,
)
from recsys.data.synthetic import SPAN_DAYS, START, generate_demo, leaf_categories


@pytest.fixture(scope="module")
def demo_default():
    return generate_demo()


@pytest.fixture(scope="module")
def events(demo_default):
    """Interactions joined with each item's ground truth."""
    cat = demo_default.catalog[
        ["item_id", "category", "cluster", "brand", "price", "product_type", "launched_at"]
    ]
    return demo_default.interactions.merge(cat, on="item_id", how="left")


def test_same_seed_same_data_other_seed_other_data(demo_small):
    again = generate_demo(n_items=1000, seed=0)
    pd.testing.assert_frame_equal(again.catalog, demo_small.catalog)
    pd.testing.assert_frame_equal(again.interactions, demo_small.interactions)
    assert again.fingerprint() == demo_small.fingerprint()
    other = generate_demo(n_items=1000, seed=1)
    assert other.fingerprint() != demo_small.fingerprint()
    assert other.catalog["title"].tolist() != demo_small.catalog["title"].tolist()


def test_default_size_counts(demo_default):
    s = demo_default.summary()
    assert demo_default.name == "demo" and demo_default.kind == "sessions"
    assert s["items"] == 5000
    assert s["sequences"] == 20000
    assert s["categories"] >= 30 and len(leaf_categories()) >= 30
    assert s["brands"] >= 200
    tops = set(category_level(demo_default.catalog["category"], 0))
    assert {"Women", "Men", "Kids", "Unisex", "Home", "Electronics", "Adult"} <= tops
    cat = demo_default.catalog
    adult = cat[cat["adult"]]
    assert len(adult) > 0 and (adult["category"].str.startswith("Adult")).all()
    assert not cat.loc[~cat["adult"], "category"].str.startswith("Adult").any()
    assert set(cat["gender"]) == {"women", "men", "kids", "unisex", ""}


def test_schema_conformance(demo_small):
    cat, inter = demo_small.catalog, demo_small.interactions
    assert tuple(cat.columns[: len(CATALOG_COLUMNS)]) == CATALOG_COLUMNS
    assert {"cluster", "price_band", "product_type", "is_new", "launched_at"} <= set(cat.columns)
    assert tuple(inter.columns) == INTERACTION_COLUMNS
    assert cat["item_id"].is_unique
    assert set(cat["gender"]) <= set(GENDERS)
    assert cat["price"].dtype == "float64" and (cat["price"] > 0).all()
    assert cat["adult"].dtype == bool
    assert inter["item_id"].isin(cat["item_id"]).all()
    assert set(inter["event_type"]) == set(EVENT_TYPES)
    assert inter["timestamp"].dtype == "datetime64[ns]" and inter["timestamp"].notna().all()
    assert inter["position"].dtype == "int64"
    # sorted by (sequence_id, position), positions 0..n-1 in each sequence
    assert inter.equals(inter.sort_values(["sequence_id", "position"], kind="stable"))
    expected = inter.groupby("sequence_id").cumcount()
    assert (inter["position"] == expected).all()
    # time runs forward inside a session, over about 90 days
    assert (inter.groupby("sequence_id")["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()
    assert inter["timestamp"].min() >= START
    assert inter["timestamp"].max() < START + pd.Timedelta(days=SPAN_DAYS)
    assert inter["timestamp"].max() - inter["timestamp"].min() > pd.Timedelta(days=80)


def test_output_is_already_valid_for_the_strict_loader(demo_small, tmp_data_dir):
    rebuilt = build_dataset("demo", demo_small.catalog, demo_small.interactions, errors="raise")
    assert rebuilt.fingerprint() == demo_small.fingerprint()
    save_dataset(demo_small, tmp_data_dir)
    assert load_dataset("demo", tmp_data_dir).fingerprint() == demo_small.fingerprint()


def test_titles_are_readable_and_match_their_item(demo_default):
    cat = demo_default.catalog
    assert cat["title"].str.len().between(10, 80).all()
    assert (cat.apply(lambda r: r["title"].startswith(r["brand"] + " "), axis=1)).all()
    women = cat[cat["gender"] == "women"]
    assert women["title"].str.contains("Women's").all()
    running = cat[cat["category"] == "Women > Shoes > Running"]
    assert running["title"].str.contains("Running Shoe").all()
    assert cat["description"].str.contains(" by ").all()


def test_prices_follow_the_category(demo_default):
    median = demo_default.catalog.groupby("category")["price"].median()
    assert median["Electronics > Computers > Laptops"] > 10 * median["Unisex > Sports > Socks"]
    assert median["Electronics > TV > Televisions"] > 5 * median["Electronics > Phones > Cases"]
    # price bands are tertiles of the price within the leaf
    cat = demo_default.catalog
    by_band = cat.groupby(["category", "price_band"])["price"].median().unstack()
    assert (by_band["budget"] <= by_band["mid"]).all() and (by_band["mid"] <= by_band["premium"]).all()


def test_sessions_follow_intents(events):
    e = events
    same_seq = e["sequence_id"].to_numpy()[1:] == e["sequence_id"].to_numpy()[:-1]
    same_leaf = (e["category"].to_numpy()[1:] == e["category"].to_numpy()[:-1])[same_seq]
    same_cluster = (e["cluster"].to_numpy()[1:] == e["cluster"].to_numpy()[:-1])[same_seq]
    assert same_leaf.mean() > 0.7
    assert same_cluster.mean() > 0.5
    # random pairs of events would share a leaf far less often
    shares = e["category"].value_counts(normalize=True)
    assert (shares**2).sum() < 0.1


def test_views_follow_the_wished_price_and_product_type(demo_default, events):
    """Within an intent the shopper opens the shown item that fits their wish (a product type and
    a budget): two consecutive views of one cluster (different brands) are nearer in price and
    share the title's product type more often than the same views paired across sessions."""
    e = events[events["event_type"] == "view"].reset_index(drop=True)
    nxt = e.shift(-1)
    pair = (e["sequence_id"] == nxt["sequence_id"]) & (e["cluster"] == nxt["cluster"])
    pair &= e["brand"] != nxt["brand"]
    a, b = e[pair], nxt[pair]
    assert len(a) > 10_000
    # control: each second view swapped with that of another pair of the same cluster
    rng = np.random.default_rng(0)
    key = a["cluster"].to_numpy(dtype=str)
    perm = np.empty(len(key), dtype=int)
    perm[np.argsort(key, kind="stable")] = np.lexsort((rng.random(len(key)), key))
    c = b.iloc[perm]
    other_brand = a["brand"].to_numpy() != c["brand"].to_numpy()

    def log_gap(x: pd.DataFrame, y: pd.DataFrame) -> np.ndarray:
        return np.abs(np.log(x["price"].to_numpy(dtype=float)) - np.log(y["price"].to_numpy(dtype=float)))

    def same_type(x: pd.DataFrame, y: pd.DataFrame) -> np.ndarray:
        return x["product_type"].to_numpy() == y["product_type"].to_numpy()

    assert log_gap(a, b).mean() < 0.9 * log_gap(a, c)[other_brand].mean()
    assert same_type(a, b).mean() > same_type(a, c)[other_brand].mean() + 0.1
    # the product type is the noun of the title
    cat = demo_default.catalog
    assert cat.apply(lambda r: r["product_type"] in r["title"], axis=1).all()


def test_baskets_hold_complementary_items(events):
    buys = events[events["event_type"] == "purchase"]
    laptop_baskets = buys.loc[buys["category"] == "Electronics > Computers > Laptops", "sequence_id"].unique()
    baskets = buys[buys["sequence_id"].isin(laptop_baskets)]
    sizes = baskets.groupby("sequence_id").size()
    multi = sizes[sizes >= 2].index
    assert len(multi) >= 20
    accessories = {
        "Electronics > Computers > Mice",
        "Electronics > Computers > Laptop Bags",
        "Electronics > Computers > Keyboards",
    }
    has_accessory = (
        baskets[baskets["sequence_id"].isin(multi)]
        .groupby("sequence_id")["category"]
        .apply(lambda c: bool(accessories & set(c)))
    )
    assert has_accessory.mean() > 0.9


def test_long_tail_and_new_items(demo_default, events):
    counts = demo_default.interactions["item_id"].value_counts()
    counts = counts.reindex(demo_default.catalog["item_id"], fill_value=0)
    assert (counts <= 2).mean() >= 0.05  # cold items exist
    assert (counts == 0).sum() > 0
    assert counts.max() > 10 * counts.median()  # and popular ones
    # no event before an item's launch; launched items do get events afterwards
    assert (events["timestamp"] >= events["launched_at"]).all()
    new = demo_default.catalog.loc[demo_default.catalog["is_new"], "item_id"]
    assert 0.04 < len(new) / len(demo_default.catalog) < 0.12
    assert counts[new].gt(0).mean() > 0.3


def test_time_split_is_possible(demo_small):
    ts = demo_small.interactions["timestamp"]
    cut = ts.quantile(0.9)
    test = demo_small.interactions[ts > cut]
    assert len(test) > 0.05 * len(ts)
    assert test["sequence_id"].nunique() > 100


@pytest.mark.parametrize("n_items", [100, 20_000])
def test_scales(n_items):
    ds = generate_demo(n_items=n_items, n_sequences=500, seed=3)
    assert len(ds.catalog) == n_items
    assert ds.interactions["sequence_id"].nunique() == 500
    assert ds.catalog["item_id"].is_unique
    assert ds.interactions["item_id"].isin(ds.catalog["item_id"]).all()
    assert np.isfinite(ds.catalog["price"]).all()


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n_items must be at least 100"):
        generate_demo(n_items=10)
    with pytest.raises(ValueError, match="n_sequences"):
        generate_demo(n_items=100, n_sequences=0)
