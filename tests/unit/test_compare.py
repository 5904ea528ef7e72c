"""recsys.compare: agreement of rankings with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.compare import (
    disagreement_seeds,
    overlap_at_k,
    pairwise_agreement,
    per_category_table,
    rank_biased_overlap,
    row_overlap,
    sample_seeds,
)


# -- overlap@k -------------------------------------------------------------------------
def test_overlap_counts_common_items_in_the_top_k_ignoring_order():
    assert overlap_at_k(["a", "b", "c", "d"], ["b", "x", "a", "y"], 4) == 0.5
    # only the top 2 count: {a, b} vs {b, x}
    assert overlap_at_k(["a", "b", "c", "d"], ["b", "x", "a", "y"], 2) == 0.5
    assert overlap_at_k(["a", "b"], ["a", "b"], 2) == 1.0
    assert overlap_at_k(["a", "b"], ["c", "d"], 2) == 0.0


def test_overlap_ignores_padding_and_divides_by_k():
    # 2 common real items out of k = 4; the shared "" padding is not an item
    assert overlap_at_k(["a", "b", "", ""], ["b", "a", "", ""], 4) == 0.5
    assert math.isnan(overlap_at_k(["", ""], [], 2))
    with pytest.raises(ValueError, match="k must be >= 1"):
        overlap_at_k(["a"], ["a"], 0)


def test_row_overlap_matches_the_scalar_version_row_by_row():
    a = np.array([["a", "b", "c"], ["a", "b", ""], ["", "", ""]])
    b = np.array([["c", "b", "a"], ["x", "a", ""], ["", "", ""]])
    got = row_overlap(a, b, 3)
    assert got[0] == 1.0
    assert got[1] == pytest.approx(1 / 3)
    assert math.isnan(got[2])
    for i in range(2):
        assert got[i] == pytest.approx(overlap_at_k(a[i], b[i], 3))


# -- RBO -------------------------------------------------------------------------------
def test_rbo_is_one_for_identical_and_zero_for_disjoint_rankings():
    assert rank_biased_overlap(list("abcde"), list("abcde")) == pytest.approx(1.0)
    assert rank_biased_overlap(list("abc"), list("xyz")) == 0.0
    assert rank_biased_overlap(list("abc"), []) == 0.0
    assert math.isnan(rank_biased_overlap([], []))


def test_rbo_hand_computed_swap_at_depth_two():
    # a = [1, 2, 3], b = [1, 3, 2], p = 0.9
    # X_1 = 1, X_2 = 1, X_3 = 3 -> A_d = X_d / d = 1, 0.5, 1
    # (1-p)/p * (1*0.9 + 0.5*0.81 + 1*0.729) + X_3/3 * 0.9**3 = 2.034/9 + 0.729 = 0.955
    assert rank_biased_overlap(["1", "2", "3"], ["1", "3", "2"], p=0.9) == pytest.approx(0.955)


def test_rbo_hand_computed_top_weighting():
    # a disagreement at the top costs more than the same disagreement at the bottom
    top_swap = rank_biased_overlap(list("abcd"), list("bacd"), p=0.5)
    bottom_swap = rank_biased_overlap(list("abcd"), list("abdc"), p=0.5)
    # top swap: X = 0, 2, 3, 4 -> A = 0, 1, 1, 1
    #   (1-p)/p = 1 -> 0*0.5 + 1*0.25 + 1*0.125 + 1*0.0625 + 1 * 0.0625 = 0.5
    assert top_swap == pytest.approx(0.5)
    # bottom swap: X = 1, 2, 2, 4 -> A = 1, 1, 2/3, 1
    #   0.5 + 0.25 + (2/3)*0.125 + 0.0625 + 0.0625 = 0.958333...
    assert bottom_swap == pytest.approx(0.5 + 0.25 + 0.125 * 2 / 3 + 0.0625 + 0.0625)
    assert top_swap < bottom_swap


def test_rbo_uneven_lengths_hand_computed():
    # S = [a, b] (s=2), L = [a, c, b] (l=3), p = 0.5, (1-p)/p = 1
    # X_1 = 1, X_2 = 1 (S[:2]={a,b} vs L[:2]={a,c}), X_3 = 2 (S vs L[:3])
    # sum_{d=1..3} X_d/d p^d = 1*0.5 + 0.5*0.25 + (2/3)*0.125 = 0.708333
    # sum_{d=3..3} X_s (d-s)/(s d) p^d = 1 * 1/(2*3) * 0.125 = 0.0208333
    # ((X_l - X_s)/l + X_s/s) p^l = ((2-1)/3 + 1/2) * 0.125 = 0.1041667
    expected = (0.5 + 0.125 + 0.125 * 2 / 3) + 0.125 / 6 + (1 / 3 + 1 / 2) * 0.125
    assert rank_biased_overlap(["a", "b"], ["a", "c", "b"], p=0.5) == pytest.approx(expected)
    # symmetric in its arguments
    assert rank_biased_overlap(["a", "c", "b"], ["a", "b"], p=0.5) == pytest.approx(expected)


def test_rbo_depth_cuts_and_padding_is_ignored():
    assert rank_biased_overlap(list("abxy"), list("abzw"), depth=2) == pytest.approx(1.0)
    assert rank_biased_overlap(["a", "b", ""], ["a", "b"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="p must be in"):
        rank_biased_overlap(["a"], ["a"], p=1.0)


def test_pairwise_agreement_has_one_row_per_pair():
    rows = pairwise_agreement({"r1": list("abcd"), "r2": list("abcd"), "r3": list("dcxy")}, k=4)
    assert [(r["a"], r["b"]) for r in rows] == [("r1", "r2"), ("r1", "r3"), ("r2", "r3")]
    assert rows[0]["overlap"] == 1.0 and rows[0]["rbo"] == pytest.approx(1.0)
    assert rows[1]["overlap"] == 0.5 and rows[1]["common"] == ["c", "d"]
    assert rows[1]["rbo"] < rows[1]["overlap"]  # the common items sit at the bottom of r1


# -- disagreement ------------------------------------------------------------------------
def test_disagreement_seeds_lists_lowest_overlap_first_and_skips_empty():
    seeds = ["s1", "s2", "s3", "s4"]
    a = np.array([list("abc"), list("abc"), list("abc"), ["", "", ""]])
    b = np.array([list("abc"), list("xyz"), list("axy"), list("abc")])
    got = disagreement_seeds(seeds, a, b, k=3, n=10)
    assert got["seed"].tolist() == ["s2", "s3", "s1"]  # s4: variant a has nothing
    assert got["overlap"].tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    assert got["n_a"].tolist() == [3, 3, 3]
    assert disagreement_seeds(seeds, a, b, k=3, n=1)["seed"].tolist() == ["s2"]
    with pytest.raises(ValueError, match="4 seeds"):
        disagreement_seeds(seeds, a[:2], b, k=3)


def test_sample_seeds_is_reproducible_and_distinct():
    ids = [f"i{n}" for n in range(100)]
    s1, s2 = sample_seeds(ids, 10, seed=3), sample_seeds(ids, 10, seed=3)
    assert s1 == s2 and len(set(s1)) == 10
    assert sample_seeds(ids[:5], 10) == ids[:5]


# -- per-category table ------------------------------------------------------------------
def test_per_category_table_rolls_up_to_top_level_weighted_by_cases():
    runs = [
        {
            "run_id": "r1",
            "label": "Prod2Vec",
            "metrics": {
                "per_category": {
                    "Women > Shoes": {"hr@10": 0.5, "n_cases": 10},
                    "Women > Bags": {"hr@10": 0.2, "n_cases": 30},
                    "Men": {"hr@10": 0.4, "n_cases": 5},
                }
            },
        },
        {"run_id": "r2", "metrics": {"per_category": [{"category": "Men", "hr@10": 0.1, "n_cases": 5}]}},
        {"run_id": "r3", "metrics": {"hr@10": 0.3}},  # no per-category block: no rows
    ]
    table = per_category_table(runs, "hr@10")
    assert table[["run_id", "category"]].values.tolist() == [["r1", "Men"], ["r2", "Men"], ["r1", "Women"]]
    women = table[(table.run_id == "r1") & (table.category == "Women")].iloc[0]
    assert women["value"] == pytest.approx((0.5 * 10 + 0.2 * 30) / 40)
    assert women["n_cases"] == 40
    assert table.loc[table.run_id == "r2", "label"].iloc[0] == "r2"
    assert per_category_table([], "hr@10").empty


def test_per_category_table_accepts_metric_major_layout():
    runs = [{"run_id": "r", "metrics": {"per_category": {"hr@10": {"A": 0.25, "B": 0.75}}}}]
    table = per_category_table(runs)
    assert dict(zip(table.category, table.value, strict=True)) == {"A": 0.25, "B": 0.75}
