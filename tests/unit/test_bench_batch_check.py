"""The batch part of ``bench/filtered_search.py`` scores ``search_many``'s lists against exact
filtered search (``batch_recall``: recall@10 and fill, each seed's own row excluded): exact lists
read 1.0, a list that misses an item or comes up short reads less."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from recsys.filters import FilterConfig
from recsys.index import HnswIndex
from recsys.search import FilteredSearcher
from tests.unit.test_search import uncorrelated_catalog

# Loaded from its file, not by putting bench/ on sys.path: bench/umap.py would then shadow
# umap-learn for every later test in the process.
_spec = importlib.util.spec_from_file_location(
    "_bench_filtered_search_batch", Path(__file__).resolve().parents[2] / "bench" / "filtered_search.py"
)
filtered_search = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = filtered_search
_spec.loader.exec_module(filtered_search)


def test_the_batch_check_scores_exact_lists_whole_and_a_miss_or_a_short_list_below():
    cat, vec = uncorrelated_catalog(3000, 4)
    index = HnswIndex.build(vec, M=16, ef_construction=100, ef=64, num_threads=1)
    searcher = FilteredSearcher(vec, cat["item_id"].to_numpy(), cat, index=index)
    brands = [f"b{i}" for i in range(10)]  # about 10%, drawn at random
    mask = cat["brand"].isin(brands).to_numpy()  # by vector row (catalogue row i is vector row i)
    unit = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    # seeds inside the filter (their own row is eligible: it must be left out) and outside it
    seeds = np.concatenate([np.flatnonzero(mask)[:30], np.flatnonzero(~mask)[:30]])
    cfg = FilterConfig(brands_allow=brands)
    exact = [searcher.search(f"u{s}", cfg, 10, plan="exact") for s in seeds]
    assert all(len(r) == 10 for r in exact)

    assert filtered_search.batch_recall(unit, mask, seeds, exact) == {"recall_at_10": 1.0, "fill_rate": 1.0}

    class Listed:  # what the check reads of a result: its rows and its length
        def __init__(self, rows):
            self.rows = rows

        def __len__(self):
            return len(self.rows)

    wrong = [Listed(list(r.rows)) for r in exact]
    wrong[0].rows[3] = int(seeds[0])  # the seed itself in place of an item: a miss
    wrong[40].rows = wrong[40].rows[:9]  # a short list
    got = filtered_search.batch_recall(unit, mask, seeds, wrong)
    assert got["recall_at_10"] == round(1 - 2 / (10 * len(seeds)), 4)
    assert got["fill_rate"] == round(1 - 1 / len(seeds), 4)
