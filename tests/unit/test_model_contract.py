"""The contract every model family passes (in the manner of benfred/implicit's test mixin).

To add a family, append a :class:`Case` to ``CASES``: its name, the parameters used to
fit it on the small grouped data set below, one invalid parameter set that must raise
``ModelFitError``, and whether it must learn the group structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.errors import ModelFitError
from recsys.models import get_model_class, make_model
from recsys.models.base import PAD_ID

N_GROUPS = 5
GROUP_SIZE = 12


def grouped_dataset(
    n_groups: int = N_GROUPS,
    group_size: int = GROUP_SIZE,
    n_sequences: int = 300,
    seq_len: int = 6,
    seed: int = 0,
    kind: str = "sessions",
    cold_per_group: int = 2,
) -> Dataset:
    """Disjoint groups of items ("intents"); every sequence stays inside one group.

    Item ``g3_i07`` is item 7 of group 3; its category is ``Group 3 > Leaf`` and its
    brand ``Brand 3``. ``cold_per_group`` more items per group (``g3_cold0``...) are in
    the catalog but never in a sequence.
    """
    rng = np.random.default_rng(seed)
    cat_rows = []
    for g in range(n_groups):
        for i in range(group_size):
            cat_rows.append((f"g{g}_i{i:02d}", f"Group {g} > Leaf", f"Brand {g}"))
        for c in range(cold_per_group):
            cat_rows.append((f"g{g}_cold{c}", f"Group {g} > Leaf", f"Brand {g}"))
    catalog = pd.DataFrame(cat_rows, columns=["item_id", "category", "brand"])
    catalog["title"] = catalog["item_id"]
    catalog["gender"] = ""
    catalog["price"] = 10.0
    catalog["adult"] = False
    catalog["description"] = ""
    catalog["image_url"] = ""
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    for s in range(n_sequences):
        g = int(rng.integers(n_groups))
        items = rng.choice(group_size, size=seq_len, replace=False)
        for p, i in enumerate(items):
            rows.append(
                (f"s{s:04d}", "", f"g{g}_i{i:02d}", t0 + pd.Timedelta(hours=s, minutes=p), "view", 1.0, p)
            )
    inter = pd.DataFrame(
        rows, columns=["sequence_id", "user_id", "item_id", "timestamp", "event_type", "quantity", "position"]
    )
    return Dataset("grouped", catalog, inter, kind=kind)


def group_of(item_ids: np.ndarray) -> np.ndarray:
    return np.char.partition(np.asarray(item_ids, dtype=str), "_")[..., 0]


W2V_FAST = {  # gensim's settings where the tool's recommended defaults differ, made small and fast
    "vectors": "input",
    "alpha": 0.025,
    "min_alpha": None,
    "negative": 5,
    "ns_exponent": 0.75,
    "vector_size": 16,
    "epochs": 15,
    "window": 5,
    "min_count": 1,
    "sample": 0.0,
    "workers": 1,
    "seed": 1,
}


CONTENT_FAST = {
    "vector_size": 16,
    "fasttext_epochs": 5,
    "embedding_dim": 16,
    "hidden_units": [32],
    "wide_dim": 8,
    "epochs": 3,
    "pairs_per_epoch": 2000,
    "batch_size": 64,
    "workers": 1,
    "seed": 0,
}
TWO_TOWER_FAST = {
    "embedding_dim": 16,
    "id_dim": 16,
    "hidden_units": [32],
    "user_hidden": 32,
    "max_recent": 3,
    "epochs": 4,
    "batch_size": 64,
    "seed": 0,
}


@dataclass
class Case:
    family: str
    params: dict[str, Any]
    bad_params: dict[str, Any]
    learns_groups: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


CASES: list[Case] = [
    Case("popularity", {}, {"event_weights": {"view": -1}}, learns_groups=False),
    Case("cooccurrence", {"similarity": "jaccard"}, {"similarity": "pearson"}),
    Case("cooccurrence", {"similarity": "cosine", "top_k": 5}, {"top_k": 0}),
    Case("item_knn", {}, {"lmbd": -1.0}),
    Case("item_knn", {"top_k": 5, "alpha": 0.8}, {"alpha": 2.0}),
    Case("sknn", {}, {"k": 0}),
    Case("sknn", {"k": 20, "sample_size": 50, "similarity": "jaccard"}, {"similarity": "dice"}),
    Case("vsknn", {}, {"weighting": "exp"}),
    Case("vsknn", {"weighting": "linear", "weighting_score": "same", "sample_size": 0}, {"sample_size": -1}),
    Case("prod2vec", W2V_FAST, {**W2V_FAST, "window": 0}),
    Case("meta_prod2vec", W2V_FAST, {**W2V_FAST, "ns_exponent": float("nan")}),
    Case("tfidf", {}, {"brand_weight": -1.0}),
    Case("content", CONTENT_FAST, {**CONTENT_FAST, "embedding_dim": 0}),
    Case("two_tower", TWO_TOWER_FAST, {**TWO_TOWER_FAST, "max_recent": 0}),
]


@pytest.fixture(scope="module")
def data() -> Dataset:
    return grouped_dataset()


@pytest.fixture(
    scope="module", params=CASES, ids=lambda c: f"{c.family}-{'-'.join(map(str, c.params.values()))}"
)
def fitted(request, data):
    case: Case = request.param
    calls = []
    model = make_model(case.family, **case.params)
    assert model.fit(data, progress=lambda d, t, m: calls.append((d, t, m))) is model
    return case, model, calls


def test_fit_sets_ids_coverage_and_reports_progress(fitted, data):
    case, model, calls = fitted
    assert model.family == case.family
    assert model.item_ids_.dtype.kind == "U" and len(model.item_ids_) > 0
    cov = model.coverage_
    assert cov["catalog_items"] == len(data.catalog)
    assert 0 < cov["coverage"] <= 1
    assert cov["items_with_vector"] == round(cov["coverage"] * cov["catalog_items"])
    assert calls, "fit must report progress"
    assert all(d <= t for d, t, _ in calls)


def test_similar_shape_dtypes_order_and_seed_excluded(fitted):
    _, model, _ = fitted
    seeds = ["g0_i00", "g1_i03", "g4_i11"]
    ids, scores = model.similar(seeds, 5)
    assert ids.shape == (3, 5) and scores.shape == (3, 5)
    assert ids.dtype.kind == "U" and scores.dtype == np.float32
    for row, s in zip(ids, seeds):
        assert s not in row
        real = row[row != PAD_ID]
        assert len(set(real)) == len(real), "no duplicates in a list"
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores are sorted, best first"


def test_unknown_seed_is_padded_and_k_beyond_items_pads_the_tail(fitted):
    _, model, _ = fitted
    ids, scores = model.similar(["no-such-item", "g0_i00"], 3)
    assert list(ids[0]) == [PAD_ID] * 3
    assert np.all(np.isneginf(scores[0]))
    assert np.all(ids[1] != PAD_ID)
    big = len(model.item_ids_) + 5
    ids, scores = model.similar(["g0_i00"], big)
    pad = ids[0] == PAD_ID
    assert pad[-6:].all(), "at least the seed and 5 missing slots are padding"
    assert np.all(np.isneginf(scores[0][pad]))
    assert not pad[: np.argmax(pad)].any(), "padding only at the end"
    empty_ids, empty_scores = model.similar([], 4)
    assert empty_ids.shape == (0, 4) and empty_scores.shape == (0, 4)


def test_save_load_round_trip_gives_identical_results(fitted, tmp_path):
    case, model, _ = fitted
    model.save(tmp_path / "m")
    loaded = get_model_class(case.family).load(tmp_path / "m")
    seeds = ["g0_i00", "g2_i05", "g3_cold0", "nope"]
    a_ids, a_s = model.similar(seeds, 7)
    b_ids, b_s = loaded.similar(seeds, 7)
    np.testing.assert_array_equal(a_ids, b_ids)
    np.testing.assert_array_equal(a_s, b_s)
    assert loaded.get_params() == model.get_params()
    assert loaded.coverage_ == model.coverage_


def test_learns_the_groups(fitted):
    case, model, _ = fitted
    if not case.learns_groups:
        pytest.skip(f"{case.family} ignores the seed by design")
    seeds = [f"g{g}_i{i:02d}" for g in range(N_GROUPS) for i in range(GROUP_SIZE)]
    ids, _ = model.similar(seeds, 5)
    same = group_of(ids) == group_of(np.asarray(seeds))[:, None]
    assert same.mean() > 0.9, f"{case.family}: only {same.mean():.0%} of top-5 neighbours share the group"


def test_bad_params_raise_model_fit_error_naming_the_param(data):
    for case in CASES:
        bad_name = next(k for k in case.bad_params if case.bad_params[k] != case.params.get(k, object()))
        with pytest.raises(ModelFitError, match=bad_name):
            make_model(case.family, **case.bad_params).fit(data)
        with pytest.raises(ModelFitError, match="no_such_param"):
            make_model(case.family, no_such_param=1)


def test_similar_before_fit_is_a_clear_error():
    for case in CASES:
        with pytest.raises(ModelFitError, match="not fitted"):
            make_model(case.family, **case.params).similar(["a"], 3)
