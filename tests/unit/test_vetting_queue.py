"""Queues of seeds to vet (recsys.vetting.queue) and judgments turned into preset rules
(recsys.vetting.proposals), on a small seeded demo catalogue with real searchers."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.schema import interaction_counts
from recsys.data.synthetic import generate_demo
from recsys.errors import FilterConfigError
from recsys.filters import FilterConfig, PresetStore
from recsys.merch import PairBan, Pin
from recsys.search import FilteredSearcher
from recsys.vetting.proposals import add_rule, proposals, with_rule
from recsys.vetting.queue import leaf_categories, parse_ids, queue_pairs, sample_seeds


@pytest.fixture(scope="module")
def demo():
    data = generate_demo(n_items=300, n_sequences=400, seed=3)
    cat = data.catalog
    vec = np.random.default_rng(0).standard_normal((len(cat), 8)).astype(np.float32)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat)
    pop = interaction_counts(data.interactions, searcher.view.item_ids)
    return data, searcher, pop


def test_traffic_takes_the_most_interacted_items_first(demo):
    data, searcher, pop = demo
    seeds, problems = sample_seeds(searcher.view, "traffic", n=10, popularity=pop)
    counts = data.interactions["item_id"].astype(str).value_counts()
    assert [int(counts[s]) for s in seeds] == sorted(counts.to_numpy().tolist(), reverse=True)[:10]
    assert problems == []
    with pytest.raises(ValueError, match="interaction counts"):
        sample_seeds(searcher.view, "traffic", n=10)


def test_category_takes_n_per_leaf_most_popular_first(demo):
    data, searcher, pop = demo
    seeds, problems = sample_seeds(searcher.view, "category", n=2000, per_category=2, popularity=pop)
    cat = data.catalog.set_index("item_id")["category"]
    leaves = cat.value_counts()
    assert problems == [] and len(seeds) == sum(min(2, c) for c in leaves)
    got = cat.loc[seeds].value_counts()
    assert set(got.index) == set(leaves.index)  # every leaf is looked at
    assert all(got[leaf] == min(2, leaves[leaf]) for leaf in leaves.index)
    counts = dict(zip(searcher.view.item_ids, pop))
    for leaf in leaves.index:
        members = cat.index[cat == leaf]
        best = max(counts[i] for i in members)
        assert counts[next(s for s in seeds if cat[s] == leaf)] == best


def test_category_stops_at_n_seeds_with_the_busiest_leaves(demo):
    """``n`` caps a category queue too, the leaves with the most traffic first (a catalogue of
    3,903 leaves, dunnhumby's, filled the queue with the first 2,000 leaves by name, ignoring
    the Seeds box: leaves whose items nobody bought before the busiest ones)."""
    data, searcher, pop = demo
    cat = data.catalog.set_index("item_id")["category"]
    traffic = (
        data.interactions["item_id"].astype(str).map(cat).value_counts().reindex(cat.unique(), fill_value=0)
    )
    seeds, problems = sample_seeds(searcher.view, "category", n=5, per_category=2, popularity=pop)
    assert len(seeds) == 5
    got = list(dict.fromkeys(cat.loc[seeds]))
    assert traffic[got].is_monotonic_decreasing
    assert traffic[got[-1]] >= traffic.drop(got).max()
    assert [cat.loc[seeds].value_counts()[leaf] for leaf in got] == [2, 2, 1]
    assert len(problems) == 1 and f"from 3 of {cat.nunique()} leaf categories" in problems[0]


def test_random_is_seeded_and_distinct(demo):
    _, searcher, _ = demo
    a, _ = sample_seeds(searcher.view, "random", n=25, random_state=7)
    b, _ = sample_seeds(searcher.view, "random", n=25, random_state=7)
    c, _ = sample_seeds(searcher.view, "random", n=25, random_state=8)
    assert a == b != c and len(set(a)) == 25


def test_pasted_ids_keep_order_and_report_unknown_ones(demo):
    _, searcher, _ = demo
    ids = [str(i) for i in searcher.view.item_ids[:3]]
    text = f"{ids[2]}\n{ids[0]}, NOPE-1 {ids[2]};\t{ids[1]}\n"
    assert parse_ids(text) == [ids[2], ids[0], "NOPE-1", ids[1]]
    seeds, problems = sample_seeds(searcher.view, "pasted", pasted=text)
    assert seeds == [ids[2], ids[0], ids[1]]
    assert problems == ["1 pasted id(s) are not items of this run: NOPE-1"]
    with pytest.raises(ValueError, match="not one of"):
        sample_seeds(searcher.view, "popular")


def test_queue_pairs_are_each_seeds_top_k_under_the_preset(demo):
    data, searcher, _ = demo
    seeds = [str(i) for i in searcher.view.item_ids[::60]]
    cfg = FilterConfig(same_category=True)
    pairs = queue_pairs(searcher, [*seeds, "NOPE"], cfg, 5)
    cat = data.catalog.set_index("item_id")["category"]
    leaves = dict(zip(searcher.view.item_ids, leaf_categories(searcher.view)))
    for seed in seeds:
        mine = [p for p in pairs if p["seed"] == seed]
        assert [p["item_id"] for p in mine] == searcher.search(seed, cfg, 5).item_ids
        assert [p["position"] for p in mine] == list(range(1, len(mine) + 1))
        assert all(p["category"] == cat[seed] == leaves[seed] for p in mine)
    assert [p["seed"] for p in pairs] == sorted((p["seed"] for p in pairs), key=seeds.index)


def test_proposals_from_judgments():
    brands = {"A": "Acme", "B": "Bolt", "C": "acme"}
    down = {"seed": "A", "item_id": "B", "position": 2, "verdict": -1, "reason": "brand_clash"}
    kinds = [p["kind"] for p in proposals(down, brands)]
    assert kinds == ["banned_brand_pair", "do_not_associate"]
    assert proposals(down, brands)[0]["brands"] == ["Acme", "Bolt"]
    # same brand (case-insensitively) or another reason: no brand pair
    assert [p["kind"] for p in proposals({**down, "item_id": "C"}, brands)] == ["do_not_associate"]
    assert [p["kind"] for p in proposals({**down, "reason": "duplicate"}, brands)] == ["do_not_associate"]
    up = proposals({"seed": "A", "item_id": "B", "position": 4, "verdict": 1}, brands)
    assert [(p["kind"], p["position"]) for p in up] == [("pin", 4)]


def test_confirming_a_proposal_adds_the_rule_and_a_preset_version(tmp_path):
    store = PresetStore(tmp_path)
    store.save("mid", FilterConfig(same_gender=True))
    ban = {"kind": "do_not_associate", "seed": "A", "item_id": "B", "one_way": False}
    assert add_rule(store, "mid", ban) == (1, 2)
    cfg = store.load("mid")
    assert cfg.same_gender and cfg.do_not_associate == [PairBan(seed="A", item_id="B")]
    assert add_rule(store, "mid", {**ban, "seed": "B", "item_id": "A"}) == (2, 2)  # already there
    assert add_rule(store, "mid", {"kind": "pin", "seed": "A", "item_id": "C", "position": 1}) == (2, 3)
    assert add_rule(store, "mid", {"kind": "banned_brand_pair", "brands": ["Acme", "Bolt"]}) == (3, 4)
    cfg = store.load("mid")
    assert cfg.pins == [Pin(seed="A", item_id="C", position=1)] and cfg.banned_brand_pairs == [
        ("Acme", "Bolt")
    ]
    assert [h["version"] for h in store.history("mid")] == [1, 2, 3, 4]
    # a conflicting pin is refused with the reason, and no version is added
    with pytest.raises(FilterConfigError, match="where entry 0 pins C"):
        add_rule(store, "mid", {"kind": "pin", "seed": "A", "item_id": "D", "position": 1})
    assert len(store.history("mid")) == 4
    # a new preset starts from the default filters
    assert add_rule(store, "vetted", ban) == (None, 1)
    assert store.load("vetted") == with_rule(FilterConfig(), ban)


def test_concurrent_confirmations_keep_both_rules(tmp_path):
    import threading

    store = PresetStore(tmp_path)
    store.save("p", FilterConfig())
    barrier = threading.Barrier(4)

    def confirm(i: int) -> None:
        barrier.wait()
        add_rule(PresetStore(tmp_path), "p", {"kind": "do_not_associate", "seed": f"S{i}", "item_id": "X"})

    threads = [threading.Thread(target=confirm, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(store.load("p").do_not_associate) == 4 and store.history("p")[-1]["version"] == 5
