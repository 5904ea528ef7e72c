"""The recommended variant: the simplest within one standard error of the paired validation gap."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.selection import cases_fingerprint, pack_hits, paired_gap, recommend, unpack_hits


def _hits(n: int, both: int, only_a: int, only_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Two variants' hits on ``n`` cases: ``both`` hit by both, ``only_a`` / ``only_b`` by one."""
    a = np.zeros(n, dtype=bool)
    b = np.zeros(n, dtype=bool)
    a[:both] = b[:both] = True
    a[both : both + only_a] = True
    b[both + only_a : both + only_a + only_b] = True
    return a, b


def test_a_lead_within_the_noise_goes_to_the_simpler_variant():
    # REES46's validation (s35-q): vsknn 298 of 844, sknn 296; they disagree on 40 cases
    sknn, vsknn = _hits(844, 277, 19, 21)
    assert (sknn.sum(), vsknn.sum()) == (296, 298)
    chosen, why = recommend({"cooccurrence": np.zeros(844, dtype=bool), "sknn": sknn, "vsknn": vsknn})
    assert why["best"] == "vsknn" and chosen == "sknn"
    assert why["gaps"]["sknn"]["gap"] == pytest.approx(2 / 844, abs=1e-4)
    assert why["gaps"]["sknn"]["gap"] < why["gaps"]["sknn"]["se"]


def test_a_lead_the_paired_cases_can_see_keeps_the_better_variant():
    # 20 cases apart of 844, every one of them won by vsknn: their two 95% intervals overlap
    # (about +-3.2 points each), the paired gap's error is 0.5 points
    sknn, vsknn = _hits(844, 280, 0, 20)
    chosen, why = recommend({"sknn": sknn, "vsknn": vsknn})
    assert chosen == "vsknn" == why["best"]
    assert why["gaps"]["sknn"]["gap"] > 4 * why["gaps"]["sknn"]["se"]


def test_the_simplest_of_the_close_ones_and_ties():
    a, b = _hits(500, 100, 0, 0)  # identical hits: the simpler
    assert recommend({"popularity": a, "sknn": b})[0] == "popularity"
    far, near = _hits(500, 100, 0, 60)  # popularity far behind; item_knn within the noise of sknn
    near2 = near.copy()
    near2[np.flatnonzero(near & ~far)[:2]] = False  # two hits fewer than the best
    near2[np.flatnonzero(~near)[:1]] = True  # and one it alone has
    chosen, why = recommend({"popularity": far, "item_knn": near2, "sknn": near})
    assert why["best"] == "sknn" and chosen == "item_knn"
    assert recommend({"sknn": near, "vsknn": far})[0] == "sknn"  # the best is the simplest
    assert recommend({}) == (None, {"best": None, "z": 1.0, "gaps": {}})


def test_the_same_list_after_every_seed_is_recommended_only_as_the_best_itself():
    # Instacart's validation (s37-q): popularity 0.40 points behind sknn, within one paired error
    pop, sknn = _hits(1500, 140, 30, 36)
    gap, se = paired_gap(sknn, pop)
    assert 0 < gap <= se
    chosen, why = recommend({"popularity": pop, "cooccurrence": np.zeros(1500, dtype=bool), "sknn": sknn})
    assert why["best"] == "sknn" and chosen == "sknn"
    assert recommend({"popularity": pop, "sknn": sknn}, only_if_best=())[0] == "popularity"
    assert recommend({"popularity": sknn, "sknn": pop})[0] == "popularity"  # the best itself


def test_paired_gap():
    a, b = _hits(10, 2, 3, 1)
    gap, se = paired_gap(a, b)
    d = a.astype(float) - b.astype(float)
    assert gap == pytest.approx(0.2) and se == pytest.approx(d.std(ddof=1) / np.sqrt(10))


def test_a_runs_stored_hits_read_back_and_damaged_ones_say_so():
    """What run.json keeps (``metrics["validation"]["per_case"]``), through JSON and back."""
    import json

    hits = np.array([1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=bool)  # 9 cases: across a byte
    stored = json.loads(json.dumps(pack_hits(hits, "f00d")))
    back, cases = unpack_hits(stored)
    assert cases == "f00d" and back.tolist() == hits.tolist()
    assert unpack_hits(None) == (
        None,
        "has no per-case validation hits stored (a run trained before they were kept)",
    )
    assert unpack_hits({**stored, "n": 17}) == (None, "has damaged per-case validation hits")
    assert unpack_hits({**stored, "hits": "%%"}) == (None, "has damaged per-case validation hits")


def test_the_cases_fingerprint_tells_other_cases_and_cut_offs_apart():
    seeds, targets = ["x", "y"], [np.array(["y"]), np.array(["z"])]
    same = cases_fingerprint(np.array(seeds), [["y"], ["z"]], 10)
    assert cases_fingerprint(seeds, targets, 10) == same
    assert cases_fingerprint(seeds, [["y"], ["w"]], 10) != same
    assert cases_fingerprint(["y", "x"], [["z"], ["y"]], 10) != same  # the order counts
    assert cases_fingerprint(seeds, targets, 20) != same
