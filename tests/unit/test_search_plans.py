"""The planner's exploration of an over-fetch that never fills (issue 18, s28-18p)."""

from __future__ import annotations

import pytest

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from tests.unit.test_search import clustered_catalog


@pytest.fixture(scope="module")
def clustered():
    cat, vec = clustered_catalog(6000, 3)
    return cat, vec, HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)


def test_an_over_fetch_that_never_fills_is_explored_less_often_and_lists_stay_exact(clustered):
    """Each brand banned next to itself removes a seed's own cluster: most of the catalogue is
    eligible, yet an over-fetch of 64 rarely fills the list. Once 16 tries have shown its fill
    rate to be below break-even (rule of three), the planner re-tries it every 64th query instead
    of every 16th; every list equals exact search's."""
    cat, vec, index = clustered
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    cfg = FilterConfig(banned_brand_pairs=[(f"b{i}", f"b{i}") for i in range(20)])
    plans = []
    for j in range(900):
        item = f"c{(j * 29) % 6000}"
        res = searcher.search(item, cfg, 10)
        if j % 9 == 0:
            ref = searcher.search(item, cfg, 10, plan="exact")
            assert res.rows == ref.rows and res.n_eligible == ref.n_eligible
            assert res.scores == pytest.approx(ref.scores, abs=1e-6)
        plans.append(res.plan)
    stats = searcher.compile(cfg).stats
    # about a quarter of its tries fill (the seed's neighbours of other brands), where paying for
    # the over-fetch would need 40% (a beam search of 64 against exact search over 6,000 rows)
    assert stats.first_tries >= 16 and (stats.first_hits + 3) / stats.first_tries < 0.4, stats
    tried = [j for j, p in enumerate(plans) if p.startswith("hnsw_overfetch")]
    late = [j for j in tried if j >= 300]
    # every 16th query would try it 37 times among the last 600; every 64th, 9 or 10 times
    assert 5 <= len(late) <= 12, (len(late), tried)


def test_an_over_fetch_that_fills_is_still_chosen(clustered):
    """The back-off leaves a filter whose over-fetch fills alone: same top category and a price
    band (exact search would scan 3,000 rows) is answered by the over-fetch."""
    cat, vec, index = clustered
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    cfg = FilterConfig(same_category=True, category_level=0, price_ratio_min=0.5, price_ratio_max=2.0)
    plans = [searcher.search(f"c{(j * 37) % 6000}", cfg, 10).plan for j in range(400)]
    assert plans[200:].count("hnsw_overfetch") > 0.8 * 200


def test_a_searcher_measures_its_beams_when_created_so_a_new_filter_widens_at_once():
    """The over-fetch's beams are measured in the background when a searcher with an index is
    created (no query asks for them), once per index: a filter keeping 80% of a coarse graph's
    items (its k-th eligible label about 14 deep) is answered with the widened beam from its first
    filled over-fetches, and a second searcher of the same index has the beams at once."""
    from recsys.search.beams import beam_for
    from tests.unit.test_search_cold import _catalog

    cat, vec = _catalog(20000, 8)
    cat["adult"] = False
    # one build thread: the same graph every run (two threads build a different one each time, and
    # on some the first seed's eligible labels lie shallow, so the filter rightly keeps the fetch's
    # beam for it: the CI's [0, 0, 0, 32, 32, 32], at load, twice)
    index = HnswIndex.build(vec, M=4, ef_construction=20, ef=16, num_threads=1)
    ids = cat["item_id"].to_numpy()
    searcher = FilteredSearcher(vec, ids, cat, index=index, background_min_items=0)
    searcher.wait_background()
    assert searcher._beams is not None and searcher._beams[0] == index.ef  # before any query
    assert searcher._beams[1][-1] > 17  # this graph's deep labels need a wider beam than the fetch
    cfg = FilterConfig(brands_allow=[f"b{i}" for i in range(80)])
    seeds = [f"u{i}" for i in range(0, 20000, 67)]
    for s in seeds[:30]:  # answered from the lists, then compiled in the background
        searcher.search(s, cfg, 10)
    searcher.wait_background()
    used, plans = [], []
    for s in seeds[30:36]:  # its first over-fetches on the compiled filter
        plans.append(searcher.search(s, cfg, 10).plan)
        used.append(searcher.compile(cfg).stats.beam)
    st = searcher.compile(cfg).stats
    # the plans and the depths learned say which path the first queries took, should it fail again
    assert used[0] > 17 and st.beam == beam_for(searcher._beams[1], st.depth), (used, plans, st.depths)
    again = FilteredSearcher(vec, ids, cat, index=index, background_min_items=0)
    assert again._beams == searcher._beams  # measured once per index and ef
