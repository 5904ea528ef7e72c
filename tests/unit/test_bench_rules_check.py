"""The rules case of ``bench/filtered_search.py`` (issue 16) checks its lists against brute force
by plan: a list of an exact plan must equal brute force, a list a graph answered is scored by its
recall (s31-r: at 1M the one list the case counted off brute force was a category block graph's
miss, an HNSW answer counted as an exact one)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.merch import PairBan
from recsys.search import FilteredSearcher
from tests.unit.test_search import clustered_catalog

# Loaded from its file, not by putting bench/ on sys.path: bench/umap.py would then shadow
# umap-learn for every later test in the process.
_spec = importlib.util.spec_from_file_location(
    "_bench_filtered_search", Path(__file__).resolve().parents[2] / "bench" / "filtered_search.py"
)
filtered_search = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = filtered_search  # its dataclasses look their module up
_spec.loader.exec_module(filtered_search)


def test_the_rules_case_scores_a_graphs_misses_as_recall_and_an_exact_plans_as_mismatches(monkeypatch):
    """On a catalogue whose graph is built too thin to find every neighbour (M=2, ef 10), the
    filter's and the bans' over-fetched lists miss some of brute force's items: the case reports
    them as lists off brute force and recall below 1, with no exact-plan mismatch (exact search
    priced high and the seed table's block scan never preferred, as a large catalogue plans). A
    wrong list from an exact plan (the last item dropped) is counted as a mismatch."""
    from recsys.search import planner

    monkeypatch.setattr(planner, "_COST_EXACT_BASE", 5000.0)
    monkeypatch.setattr(planner, "_S_EXACT_BASE", 5000.0)
    cat, vec = clustered_catalog(3000, 5)
    index = HnswIndex.build(vec, M=2, ef_construction=10, ef=10, num_threads=1)
    ids = cat["item_id"].to_numpy()
    searcher = FilteredSearcher(vec, ids, cat, index=index)
    seeds = np.arange(0, 3000, 23)[:120]
    base = FilterConfig(same_category=True, category_level=0)
    bans = [PairBan(seed=ids[s], item_id=ids[(s + 1) % 3000]) for s in seeds[:40]]
    ruled = FilterConfig(same_category=True, category_level=0, do_not_associate=bans)
    got = filtered_search.rules_case(searcher, ids, base, ruled, seeds, 100)
    assert got["graph_lists"] > 50, got
    assert got["lists_off_brute_force"] > 0 and got["recall_at_10"] < 1.0, got
    assert got["exact_plan_mismatches"] == 0
    assert got["filter_recall_at_10"] < 1.0

    real = FilteredSearcher.search

    def exact_but_short(self, item_id, config=None, k=10, plan="auto"):
        res = real(self, item_id, config, k, plan="exact")
        if config is ruled:
            res.item_ids = res.item_ids[:-1]
        return res

    monkeypatch.setattr(FilteredSearcher, "search", exact_but_short)
    got = filtered_search.rules_case(searcher, ids, base, ruled, seeds[:20], 20)
    assert got["exact_plan_mismatches"] == 20 and got["graph_lists"] == 0, got
