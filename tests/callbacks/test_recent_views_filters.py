"""Explore's recent-views panel on a session-kNN run: the filter panel's rules hold on its list
(the rule table applied to the session model's ranking and to the fallback chain's items)."""

from __future__ import annotations

from components.filter_panel import controls_from_filter_config
from recsys.data.schema import load_dataset
from recsys.filters import FilterConfig
from recsys.pipeline import train_run
from tests.callbacks._emc_data import card_ids
from tests.callbacks._pages import page, text_of


def values(**changes):
    out = controls_from_filter_config(FilterConfig())
    out.update(changes)
    return out


def test_recent_views_of_a_session_knn_run_obey_the_filters(root):
    run = train_run("sknn", {}, "demo", root, max_cases=60, validate=False)["run_id"]
    explore = page("explore")
    demo = load_dataset("demo", root)
    cat = demo.catalog.assign(item_id=demo.catalog["item_id"].astype(str)).set_index("item_id")
    inter = demo.interactions.sort_values(["sequence_id", "position"])
    longest = inter.groupby("sequence_id")["item_id"].apply(lambda s: list(dict.fromkeys(map(str, s))))
    session = max(longest, key=len)[:4]
    seed = session[-1]
    k = 10

    _, plain = explore.session_view(session, run, k, values())
    got = card_ids(plain)
    assert len(got) == k and not set(session) & set(got)
    brands = [cat.loc[i, "brand"] for i in got]
    assert len(set(brands)) > 1, "the unfiltered list mixes brands"
    assert "ignored" not in text_of(plain) and "similar past sessions (session kNN)" in text_of(plain)
    assert "not applied" not in text_of(plain)

    # brand deny: the list's own first brand disappears, the list is refilled to k
    _, denied = explore.session_view(session, run, k, values(brands_deny=[brands[0]]))
    got = card_ids(denied)
    assert len(got) == k and brands[0] not in {cat.loc[i, "brand"] for i in got}

    # same category as the most recent item (a seed rule)
    top = str(cat.loc[seed, "category"]).split(" > ")[0]
    assert {str(cat.loc[i, "category"]).split(" > ")[0] for i in card_ids(plain)} != {top}
    _, same = explore.session_view(session, run, k, values(same_category=True, category_level=0))
    got = card_ids(same)
    assert got and {str(cat.loc[i, "category"]).split(" > ")[0] for i in got} == {top}

    # an absolute price ceiling under the list's prices
    prices = sorted(float(cat.loc[i, "price"]) for i in card_ids(plain))
    cap = prices[len(prices) // 2]
    _, cheap = explore.session_view(session, run, k, values(price_max=cap))
    got = card_ids(cheap)
    assert got and max(float(cat.loc[i, "price"]) for i in got) <= cap


def test_recent_views_of_items_training_never_saw_come_from_the_fallback(root):
    """A session of catalogue items the run never trained on: the fallback chain serves it,
    under the filters, and the panel says so."""
    from recsys.registry import Registry

    run = train_run("sknn", {}, "demo", root, max_cases=60, validate=False)["run_id"]
    model = Registry(root).load_model(run)
    demo = load_dataset("demo", root)
    cat = demo.catalog.assign(item_id=demo.catalog["item_id"].astype(str)).set_index("item_id")
    unseen = [i for i in cat.index if model.rows_of([i])[0] < 0]
    assert unseen, "the demo's training part leaves some catalogue items out"
    explore = page("explore")
    _, recs = explore.session_view(unseen[:1], run, 6, values(exclude_adult=True))
    got = card_ids(recs)
    assert len(got) == 6 and unseen[0] not in got
    assert "fallback chain" in text_of(recs)
    seed_top = str(cat.loc[unseen[0], "category"]).split(" > ")[0]
    _, same = explore.session_view(unseen[:1], run, 6, values(same_category=True, category_level=0))
    assert {str(cat.loc[i, "category"]).split(" > ")[0] for i in card_ids(same)} == {seed_top}
