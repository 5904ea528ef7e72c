"""Prod2Vec / Meta-Prod2Vec behaviour beyond the shared model contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_model_contract import W2V_FAST, group_of, grouped_dataset

from recsys.data.schema import Dataset
from recsys.errors import ModelFitError
from recsys.models import make_model
from recsys.models.prod2vec import DEFAULT_PARAMS, TUNED_PARAMS, MetaProd2Vec, Prod2Vec, tuned_params


@pytest.fixture(scope="module")
def data() -> Dataset:
    return grouped_dataset()


def test_deterministic_with_seed_and_one_worker(data):
    a = Prod2Vec(**W2V_FAST).fit(data)
    b = Prod2Vec(**W2V_FAST).fit(data)
    np.testing.assert_array_equal(a.item_ids_, b.item_ids_)
    np.testing.assert_array_equal(a.vectors_, b.vectors_)
    c = Prod2Vec(**{**W2V_FAST, "seed": 2}).fit(data)
    assert not np.array_equal(a.vectors_, c.vectors_)
    # 60 items with their own vector, the 10 cold catalogue items served by their category's mean
    assert a.vectors_.dtype == np.float32 and a.vectors_.shape == (70, 16)
    assert a.fallback_.sum() == 10 and not a.fallback_[:60].any()


def test_loss_is_logged_per_epoch_as_deltas_and_progress_per_epoch(data):
    calls = []
    m = Prod2Vec(**W2V_FAST).fit(data, progress=lambda d, t, msg: calls.append((d, t, msg)))
    assert len(m.loss_history_) == W2V_FAST["epochs"]
    assert all(x > 0 for x in m.loss_history_)
    # deltas, not gensim's cumulative running loss: the loss of an epoch goes down
    assert m.loss_history_[-1] < 0.8 * m.loss_history_[0]
    epochs = [(d, t) for d, t, msg in calls if "epoch" in msg]
    assert epochs == [(e, W2V_FAST["epochs"]) for e in range(1, W2V_FAST["epochs"] + 1)]


def test_min_count_drops_rare_items_and_coverage_says_so(data):
    rare = pd.DataFrame(
        {
            "sequence_id": ["rare", "rare"],
            "user_id": ["", ""],
            "item_id": ["g0_cold0", "g0_i00"],
            "timestamp": pd.to_datetime(["2025-01-01", "2025-01-01"]),
            "event_type": ["view", "view"],
            "quantity": [1.0, 1.0],
            "position": [0, 1],
        }
    )
    ds = Dataset("r", data.catalog, pd.concat([data.interactions, rare], ignore_index=True))
    m = Prod2Vec(**{**W2V_FAST, "min_count": 2, "fallback": "none"}).fit(ds)
    assert "g0_cold0" not in set(m.item_ids_)
    assert m.coverage_["items_with_vector"] == 60 and m.coverage_["from_fallback"] == 0
    assert "g0_cold0" in m.coverage_["missing_examples"]
    assert m.similar(["g0_cold0"], 3)[0].tolist() == [["", "", ""]]
    # the declared fallback (default): the rare and the cold items get their category's mean vector
    fb = Prod2Vec(**{**W2V_FAST, "min_count": 2}).fit(ds)
    assert fb.coverage_["coverage"] == 1.0 and fb.coverage_["from_fallback"] == 10
    assert set(fb.item_ids_[fb.fallback_]) == {f"g{g}_cold{c}" for g in range(5) for c in range(2)}
    ids, _ = fb.similar(["g0_cold0", "g3_cold1"], 5)
    assert (group_of(ids) == np.asarray([["g0"], ["g3"]])).mean() > 0.9


def test_meta_prod2vec_gives_cold_items_vectors_from_metadata(data):
    m = MetaProd2Vec(**W2V_FAST).fit(data)
    assert m.coverage_["coverage"] == 1.0
    assert m.coverage_["from_metadata"] == 10
    cold = [f"g{g}_cold{c}" for g in range(5) for c in range(2)]
    assert set(m.item_ids_[m.from_metadata_]) == set(cold)
    assert not any(i.startswith(("cat:", "brand:")) for i in m.item_ids_), "metadata tokens are not items"
    ids, _ = m.similar(cold, 5)
    same = group_of(ids) == group_of(np.asarray(cold))[:, None]
    assert same.mean() > 0.9, f"cold items' neighbours share their group only {same.mean():.0%}"
    assert m.coverage_["from_fallback"] == 10 and m.coverage_["from_category"] == 0
    off = MetaProd2Vec(**W2V_FAST, fill_from_metadata=False, fallback="none").fit(data)
    assert off.coverage_["from_metadata"] == 0 and off.coverage_["items_with_vector"] == 60
    cat = MetaProd2Vec(**W2V_FAST, fill_from_metadata=False).fit(data)
    assert cat.coverage_["from_metadata"] == 0 and cat.coverage_["from_category"] == 10


def test_meta_prod2vec_save_load_keeps_the_metadata_mask(data, tmp_path):
    m = MetaProd2Vec(**W2V_FAST).fit(data)
    m.save(tmp_path / "m")
    back = MetaProd2Vec.load(tmp_path / "m")
    np.testing.assert_array_equal(back.from_metadata_, m.from_metadata_)
    assert back.loss_history_ == pytest.approx(m.loss_history_)


def _mixed_sessions(seed: int = 0) -> Dataset:
    """Every session alternates items of group 0 and 1, or of group 2 and 3."""
    base = grouped_dataset(n_sequences=1)
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(400):
        g1 = int(rng.choice([0, 2]))
        g2 = g1 + 1
        a = [f"g{g1}_i{i:02d}" for i in rng.choice(12, 3, replace=False)]
        b = [f"g{g2}_i{i:02d}" for i in rng.choice(12, 3, replace=False)]
        items = [x for pair in zip(a, b) for x in pair]
        for p, it in enumerate(items):
            rows.append((f"s{s}", "", it, pd.Timestamp("2024-01-01") + pd.Timedelta(hours=s), "view", 1.0, p))
    inter = pd.DataFrame(rows, columns=list(base.interactions.columns))
    return Dataset("mixed", base.catalog, inter)


def test_context_separation_removes_cross_context_similarity():
    ds = _mixed_sessions()
    partner_gap = {}
    for sep in (None, "category"):
        m = Prod2Vec(**W2V_FAST, separate_by=sep).fit(ds)
        unit, groups = m.unit_vectors(), group_of(m.item_ids_)
        sims = unit @ unit.T

        def mean_sim(a: str, b: str, sims=sims, groups=groups) -> float:
            return float(sims[np.ix_(groups == a, groups == b)].mean())

        assert mean_sim("g0", "g0") > mean_sim("g0", "g1")
        # how much closer the partner group (same sessions) is than an unrelated group
        partner_gap[sep] = mean_sim("g0", "g1") - mean_sim("g0", "g2")
    assert partner_gap[None] > 0.4, "mixed sessions make the partner group similar"
    assert abs(partner_gap["category"]) < 0.15, "separated sessions make it no closer than any other group"


def test_tuned_params_are_valid_and_change_what_matters():
    for cls in (Prod2Vec, MetaProd2Vec):
        cls(**TUNED_PARAMS)._validate()
        cls(**tuned_params(cls.family))._validate()
    # in-out makes Meta-Prod2Vec's metadata-filled items hubs: it keeps w+c vectors
    assert tuned_params("meta_prod2vec")["vectors"] == "input+output"
    assert tuned_params("prod2vec") == TUNED_PARAMS and tuned_params("prod2vec") is not TUNED_PARAMS
    for name in ("epochs", "window", "ns_exponent", "negative", "vectors"):
        assert TUNED_PARAMS[name] != DEFAULT_PARAMS[name], name
    # gensim's own defaults, with skip-gram
    assert {k: DEFAULT_PARAMS[k] for k in ("window", "sample", "ns_exponent", "epochs", "negative")} == {
        "window": 5,
        "sample": 1e-3,
        "ns_exponent": 0.75,
        "epochs": 5,
        "negative": 5,
    }
    assert (
        DEFAULT_PARAMS["vector_size"] == 100
        and DEFAULT_PARAMS["min_count"] == 5
        and DEFAULT_PARAMS["sg"] == 1
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"vector_size": 0},
        {"epochs": 1.5},
        {"sample": -0.1},
        {"alpha": 0},
        {"sg": 2},
        {"separate_by": "brand"},
        {"max_len": 1},
        {"workers": 0},
        {"hs": 2},
        {"cbow_mean": True},
        {"shrink_windows": "no"},
        {"dedupe": 1},
        {"vectors": "output"},
        {"min_alpha": 0.5},
        {"min_alpha": 0.0},
        {"negative": 0},
        {"negative": -1},
    ],
)
def test_invalid_params_name_the_param(data, bad):
    with pytest.raises(ModelFitError, match=next(iter(bad))):
        make_model("prod2vec", **bad).fit(data)


def test_unusable_data_is_a_clear_error(data):
    single = data.interactions.drop_duplicates("sequence_id")
    with pytest.raises(ModelFitError, match="no sequence with 2 or more items"):
        Prod2Vec(**W2V_FAST).fit(Dataset("one", data.catalog, single))
    with pytest.raises(ModelFitError, match="min_count"):
        Prod2Vec(**{**W2V_FAST, "min_count": 10_000}).fit(data)
    with pytest.raises(ModelFitError, match="meta_category_level"):
        MetaProd2Vec(**W2V_FAST, meta_category_level=-1).fit(data)


def _pairs(n: int = 600, seed: int = 0) -> Dataset:
    """Two-item sequences ``g0_iNN g1_iNN``: item NN of group 0 is always followed by item NN of group 1."""
    base = grouped_dataset(n_sequences=1)
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        i = int(rng.integers(12))
        for p, it in enumerate([f"g0_i{i:02d}", f"g1_i{i:02d}"]):
            rows.append((f"s{s}", "", it, pd.Timestamp("2024-01-01") + pd.Timedelta(hours=s), "view", 1.0, p))
    return Dataset("pairs", base.catalog, pd.DataFrame(rows, columns=list(base.interactions.columns)))


def test_input_plus_output_vectors_find_the_item_that_follows():
    ds = _pairs()
    seeds = [f"g0_i{i:02d}" for i in range(12)]
    partner = np.asarray([f"g1_i{i:02d}" for i in range(12)])
    hit = {}
    for vectors in ("input", "input+output", "in-out"):
        m = Prod2Vec(**{**W2V_FAST, "window": 1, "vectors": vectors}).fit(ds)
        assert m.vectors_.dtype == np.float32
        ids, _ = m.similar(seeds, 1)
        hit[vectors] = float((ids[:, 0] == partner).mean())
    # input vectors of x and y only share that they predict each other: not close;
    # the input+output sum contains in(x).out(y), which training made large, and
    # in-out scores exactly in(x).out(y)
    assert hit["input+output"] >= 0.9, hit
    assert hit["in-out"] >= 0.9, hit
    assert hit["input"] <= 0.5, hit


def test_in_out_looks_seeds_up_by_input_vectors_among_output_vectors(tmp_path):
    ds = _pairs()
    m = Prod2Vec(**{**W2V_FAST, "window": 1, "vectors": "in-out"}).fit(ds)
    plain = Prod2Vec(**{**W2V_FAST, "window": 1, "vectors": "input"}).fit(ds)
    assert m.query_vectors_ is not None and m.query_vectors_.shape == m.vectors_.shape
    assert plain.query_vectors_ is None
    # same seed, same training: the query space is the plain model's input space
    np.testing.assert_array_equal(m.query_vectors_, plain.vectors_)
    seeds = m.item_ids_.tolist()
    ids, scores = m.similar(seeds, 5)
    assert not (ids == np.asarray(seeds)[:, None]).any(), "a seed is never its own neighbour"
    q = m.query_vectors_ / np.linalg.norm(m.query_vectors_, axis=1, keepdims=True)
    c = m.vectors_ / np.linalg.norm(m.vectors_, axis=1, keepdims=True)
    j = m.rows_of([ids[0, 0]])[0]
    assert scores[0, 0] == pytest.approx(float(q[0] @ c[j]), abs=1e-5)
    m.save(tmp_path / "m")
    back = Prod2Vec.load(tmp_path / "m")
    np.testing.assert_array_equal(back.query_vectors_, m.query_vectors_)
    np.testing.assert_array_equal(back.similar(seeds, 5)[0], ids)


def test_meta_prod2vec_in_out_fills_both_spaces_for_cold_items(data):
    m = MetaProd2Vec(**{**W2V_FAST, "vectors": "in-out"}).fit(data)
    assert m.coverage_["from_metadata"] == 10
    assert m.query_vectors_.shape == m.vectors_.shape == (70, 16)
    cold = m.item_ids_[m.from_metadata_]
    rows = m.rows_of(cold)
    assert (
        np.isfinite(m.query_vectors_[rows]).all() and (np.abs(m.query_vectors_[rows]).sum(axis=1) > 0).all()
    )
    assert not np.allclose(m.query_vectors_[rows], m.vectors_[rows])
    ids, _ = m.similar(cold.tolist(), 5)
    same = group_of(ids) == group_of(cold)[:, None]
    assert same.mean() > 0.8, f"cold items' in-out neighbours share their group only {same.mean():.0%}"


def test_hierarchical_softmax_without_negatives_learns_the_groups(data):
    m = Prod2Vec(**{**W2V_FAST, "hs": 1, "negative": 0}).fit(data)
    ids, _ = m.similar(m.item_ids_.tolist(), 5)
    same = group_of(ids) == group_of(m.item_ids_)[:, None]
    assert same.mean() > 0.9
    for vectors in ("input+output", "in-out"):
        with pytest.raises(ModelFitError, match="'vectors'.*negative"):
            Prod2Vec(**{**W2V_FAST, "hs": 1, "negative": 0, "vectors": vectors}).fit(data)


def test_gensim_knobs_reach_the_training(data):
    """Each new knob changes the (bit-reproducible, workers=1) vectors; its default does not."""
    ref = Prod2Vec(**W2V_FAST).fit(data).vectors_
    same = Prod2Vec(**{**W2V_FAST, "shrink_windows": True, "hs": 0, "cbow_mean": 1, "min_alpha": None}).fit(
        data
    )
    np.testing.assert_array_equal(same.vectors_, ref)
    for change in ({"shrink_windows": False}, {"min_alpha": 0.01}, {"hs": 1}):
        other = Prod2Vec(**{**W2V_FAST, **change}).fit(data)
        assert not np.array_equal(other.vectors_, ref), change
    cbow = Prod2Vec(**W2V_FAST, sg=0).fit(data).vectors_
    summed = Prod2Vec(**W2V_FAST, sg=0, cbow_mean=0).fit(data).vectors_
    assert not np.array_equal(cbow, summed)


def test_dedupe_off_keeps_repeated_items_in_the_sequences():
    base = grouped_dataset(n_sequences=1)
    items = ["g0_i00", "g0_i00", "g0_i01"]
    inter = pd.DataFrame(
        {
            "sequence_id": ["s"] * 3,
            "user_id": [""] * 3,
            "item_id": items,
            "timestamp": pd.to_datetime(["2024-01-01"] * 3),
            "event_type": ["view"] * 3,
            "quantity": [1.0] * 3,
            "position": [0, 1, 2],
        }
    )
    ds = Dataset("rep", base.catalog, inter)
    assert Prod2Vec(**W2V_FAST)._sequences(ds) == [["g0_i00", "g0_i01"]]
    assert Prod2Vec(**W2V_FAST, dedupe=False)._sequences(ds) == [items]


def test_defaults_are_the_recommended_settings_keeping_every_item(data):
    from recsys.models.prod2vec import GENSIM_DEFAULTS, RECOMMENDED_PARAMS

    for cls in (Prod2Vec, MetaProd2Vec):
        d = cls.default_params
        assert d["min_count"] == 1 and d["fallback"] == "category"
        # the tuned settings, except the vector space: chosen on each dataset ("auto")
        assert {k: d[k] for k in tuned_params(cls.family) if k != "vectors"} == {
            k: v for k, v in tuned_params(cls.family).items() if k != "vectors"
        }
        assert d["vectors"] == "auto"
        assert cls.param_presets["gensim defaults"]["min_count"] == 5
        assert set(cls.param_help) >= set(d), "a help line per parameter"
    assert Prod2Vec.default_params == RECOMMENDED_PARAMS
    assert GENSIM_DEFAULTS["min_count"] == 5 and GENSIM_DEFAULTS["epochs"] == 5
    m = Prod2Vec(epochs=3, workers=1).fit(data)  # recommended settings: nothing dropped
    assert m.coverage_["coverage"] == 1.0
    assert m.coverage_["items_with_vector"] - m.coverage_["from_fallback"] == 60


def test_fallback_uses_the_brand_when_the_category_is_missing(data):
    extra = data.catalog.iloc[:1].copy()
    extra["item_id"], extra["category"], extra["brand"] = "nocat", "", "Brand 2"
    ds = Dataset("b", pd.concat([data.catalog, extra], ignore_index=True), data.interactions)
    m = Prod2Vec(**W2V_FAST).fit(ds)
    assert "nocat" in set(m.item_ids_[m.fallback_])
    ids, _ = m.similar(["nocat"], 5)
    assert (group_of(ids) == "g2").mean() > 0.9


def _sparse_sessions() -> Dataset:
    """Sessions of 4 views inside one of 20 groups of 100 items: each item is seen about
    1.6 times, as on a click log with a long tail (Taobao: ~1.5 events per item)."""
    return grouped_dataset(n_groups=20, group_size=100, n_sequences=400, seq_len=4, cold_per_group=0)


def _hr(model, test) -> float:
    from recsys.evaluation import build_session_cases, evaluate_sessions

    cases = build_session_cases(test, "every_position", max_cases=None)
    return float(evaluate_sessions(model, test, k=20, exclude_seen=False, cases=cases)["hr@20"])


def test_auto_vectors_leave_the_in_out_space_where_it_collapses_and_keep_it_where_it_wins(tmp_path):
    """The recommended settings (vectors="auto") choose the space on a split of the training
    data: on sparse sessions in-out lists are noise, on "x is followed by y" it is the answer."""
    from recsys.evaluation import split

    train, test = split(_sparse_sessions(), "time", test_fraction=0.2)
    bar = []
    auto = Prod2Vec(workers=1, vector_size=16).fit(train, progress=lambda d, t, msg: bar.append(d / t))
    assert bar == sorted(bar) and bar[-1] == 1.0, "the validation fit, then the fit: the bar only moves on"
    fixed = Prod2Vec(workers=1, vector_size=16, vectors="in-out").fit(train)
    c = auto.choice_
    assert c["param"] == "vectors" and set(c["validation"]) == {"in-out", "input+output", "input"}
    best = max(v["hr@20"] for v in c["validation"].values())
    assert c["validation"][c["chosen"]]["hr@20"] == best and c["chosen"] != "in-out", c
    assert c["cases"] > 0 and "time" in c["split"] and c["seconds"] > 0
    assert auto.query_vectors_ is None  # served in the chosen space, not in-out
    # on the sessions it never saw, the chosen space beats the fixed in-out one
    assert _hr(auto, test) >= max(0.05, 3 * _hr(fixed, test)), (_hr(auto, test), _hr(fixed, test))
    auto.save(tmp_path / "m")
    assert Prod2Vec.load(tmp_path / "m").choice_ == c

    pairs = Prod2Vec(workers=1, vector_size=16, window=1).fit(_pairs())
    # input vectors of x and y are not close (see above): the spaces that score in(x).out(y) win
    assert pairs.choice_["chosen"] in ("in-out", "input+output"), pairs.choice_
    assert (pairs.query_vectors_ is not None) == (pairs.choice_["chosen"] == "in-out")
    ids, _ = pairs.similar([f"g0_i{i:02d}" for i in range(12)], 1)
    assert (ids[:, 0] == np.asarray([f"g1_i{i:02d}" for i in range(12)])).mean() >= 0.9


def test_auto_vectors_without_a_validation_case_keep_the_first_space_and_say_why():
    base = grouped_dataset(n_sequences=1)
    two = base.interactions.iloc[:2]  # one sequence of two items: nothing left to fit on once one is held out
    m = Prod2Vec(**{**W2V_FAST, "vectors": "auto"}).fit(Dataset("two", base.catalog, two))
    assert m.choice_["chosen"] == "input+output" and "no validation split" in m.choice_["why"]
    assert m.query_vectors_ is None  # w+c: the least-regret space, not in-out
    # without negative sampling only the input space exists
    hs = Prod2Vec(**{**W2V_FAST, "vectors": "auto", "hs": 1, "negative": 0}).fit(grouped_dataset())
    assert hs.choice_["candidates"] == ["input"] and hs.choice_["chosen"] == "input"


def test_auto_vectors_are_chosen_for_meta_prod2vec_too(data):
    m = MetaProd2Vec(**{**W2V_FAST, "vectors": "auto"}).fit(data)
    c = m.choice_
    spaces = ["input+output", "in-out", "input"]
    assert c["candidates"] == spaces + [f"{v}, no metadata fill" for v in spaces]
    assert c["chosen"] in c["candidates"]
    assert (m.query_vectors_ is not None) == c["chosen"].startswith("in-out")
    fill = c.get("settings", {}).get("fill_from_metadata", True)
    assert fill == ("no metadata fill" not in c["chosen"])
    assert m.coverage_["from_metadata"] == (10 if fill else 0)


def test_meta_auto_choice_scores_each_space_without_the_metadata_fill_too():
    """dunnhumby in miniature: most of the catalogue is never bought, and every item shares
    one brand token. Filled from their tokens, those items all get one vector, and in the
    in-out space the tokens' output vectors (the most frequent words) outrank every real
    item. The choice scores each space with and without the fill, from one fit."""
    base = grouped_dataset(n_groups=10, group_size=20, n_sequences=300, seq_len=4, cold_per_group=60)
    data = Dataset("thin", base.catalog.assign(brand="National"), base.interactions)
    m = MetaProd2Vec(**{**W2V_FAST, "vectors": "auto", "fallback": "none"}).fit(data)
    v = {name: s["hr@20"] for name, s in m.choice_["validation"].items()}
    assert v["in-out, no metadata fill"] >= max(0.3, 5 * v["in-out"]), v
    fill = m.choice_.get("settings", {}).get("fill_from_metadata", True)
    assert m.coverage_["from_metadata"] == (600 if fill else 0), (m.choice_["chosen"], m.coverage_)
