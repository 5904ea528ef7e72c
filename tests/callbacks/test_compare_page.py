"""Compare callbacks as plain functions: side-by-side lists, agreement, per-category chart, disagreements."""

from __future__ import annotations

from typing import Any

import pytest

from components.filter_panel import controls_from_filter_config
from recsys.compare import overlap_at_k, rank_biased_overlap, side_by_side
from recsys.filters import FilterConfig, PresetStore
from recsys.registry import Registry
from tests.callbacks._pages import find, page, text_of


@pytest.fixture
def compare(data: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data["root"]))
    return page("compare")


def values(**changes: Any) -> dict[str, Any]:
    return controls_from_filter_config(FilterConfig(**changes))


def _list_items(column: Any) -> list[str]:
    return [getattr(li, "data-item") for li in find(column, lambda c: hasattr(c, "data-item"))]


def test_two_lists_side_by_side_with_their_overlap_and_rbo(compare, data):
    a, b = data["runs"]["A"], data["runs"]["B"]
    lists, agreement, msg = compare.update_lists([a, b], "ws0", 8, values())
    cols = find(lists, lambda c: "compare-col" == getattr(c, "className", None))
    assert len(cols) == 2
    la, lb = _list_items(cols[0]), _list_items(cols[1])
    assert len(la) == len(lb) == 8
    cells = {
        getattr(c, "data-metric"): c.children for c in find(agreement, lambda c: hasattr(c, "data-metric"))
    }
    assert cells["overlap"] == f"{overlap_at_k(la, lb, 8):.2f}"
    assert cells["rbo"] == f"{rank_biased_overlap(la, lb):.2f}"
    assert "filters applied" in text_of(lists)


def test_same_filters_apply_to_every_run_baselines_included(compare, data):
    runs = data["runs"]
    chosen = [runs["A"], runs["B"], runs["popularity"]]
    plain, _, _ = compare.update_lists(chosen, "ws0", 8, values())
    cols = find(plain, lambda c: "compare-col" == getattr(c, "className", None))
    assert not all(i.startswith("w") for i in _list_items(cols[2])), "popularity alone mixes categories"
    lists, _, _ = compare.update_lists(chosen, "ws0", 8, values(same_category=True))
    cols = find(lists, lambda c: "compare-col" == getattr(c, "className", None))
    assert len(cols) == 3
    for col in cols:  # every run, the popularity baseline too: only "Women" items remain
        assert _list_items(col) and all(i.startswith("w") for i in _list_items(col))
        assert "filters applied" in text_of(col)


def test_side_by_side_reports_a_run_that_cannot_answer(data):
    out = side_by_side(Registry(data["root"]), [data["runs"]["A"], "no-such-run"], "ws0", None, 5)
    assert len(out["lists"][data["runs"]["A"]]["item_ids"]) == 5
    assert "not found" in out["lists"]["no-such-run"]["error"]
    assert out["pairs"][0]["overlap"] == 0.0


def test_fewer_than_two_runs_asks_for_more(compare, data):
    lists, agreement, _ = compare.update_lists([data["runs"]["A"]], "ws0", 8, values())
    assert "two to four runs" in text_of(lists)


def test_per_category_chart_has_one_bar_series_per_run(compare, data):
    graph = compare.update_per_category([data["runs"]["A"], data["runs"]["B"]])
    series = {t.name: dict(zip(t.x, t.y, strict=True)) for t in graph.figure.data}
    # named as the run pickers name them (label · family, ★ the active run)
    assert series == {
        "A · prod2vec ★": {"Home": 0.75, "Men": 0.25, "Women": 0.5},
        "B · prod2vec": {"Home": 0.5, "Men": 0.5, "Women": 0.4},
    }


def test_with_one_run_picked_the_per_category_chart_keeps_to_its_dataset(data, tmp_path, monkeypatch):
    """One run picked drew every run of every dataset: the demo's categories beside Instacart's,
    six legend entries over the bars (s45's walk). It draws the picked run's dataset's runs."""
    import shutil

    import numpy as np

    from recsys.models.prod2vec import Prod2Vec

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    model = Prod2Vec()
    model.item_ids_ = np.array(["g1", "g2"])
    model.vectors_ = np.eye(2, 4, dtype=np.float32) + 0.1
    model._set_coverage(model.item_ids_)
    metrics = {"hr@10": 0.3, "per_category": {"Grocery": {"hr@10": 0.3, "n_cases": 9}}}
    Registry(root).create_run(model, dataset_name="shop", dataset_fingerprint="x", metrics=metrics, label="G")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    compare = page("compare")

    def series(run_ids: list[str]) -> dict[str, list[str]]:
        return {t.name.split(" ")[0]: list(t.x) for t in compare.update_per_category(run_ids).figure.data}

    assert series([data["runs"]["A"]]) == {"A": ["Home", "Men", "Women"], "B": ["Home", "Men", "Women"]}
    assert series([data["runs"]["A"], data["runs"]["B"]]).keys() == {"A", "B"}
    # catalogue-only runs (BigBasket's): the chart says why it has nothing to draw
    shelf = [{"run_id": f"s{i}", "split": {"method": "none"}, "metrics": {}} for i in (1, 2)]
    said = text_of(compare.per_category_figure(shelf))
    assert "No per-category hr@10: these runs are not evaluated: catalogue only" in said
    assert text_of(compare.per_category_figure([{"run_id": "x", "metrics": {}}])).endswith(
        "these runs' metrics."
    )


def test_disagreement_seeds_link_to_explore_and_compare(compare, data):
    a, b = data["runs"]["A"], data["runs"]["B"]
    view = compare.update_disagreement(1, a, b, 8, values())
    rows = find(view, lambda c: hasattr(c, "data-seed"))
    assert 1 <= len(rows) <= 10
    hrefs = [c.href for c in find(view, lambda c: getattr(c, "href", None))]
    assert any(h.startswith("/explore?seed=") for h in hrefs) and any(
        h.startswith("/compare?seed=") for h in hrefs
    )
    assert "Pick two different runs" in text_of(compare.update_disagreement(1, a, a, 8, values()))


def test_with_one_run_chosen_the_disagreement_card_asks_for_a_second_run(compare, data):
    """One run chosen offered "where two variants disagree" for the run against itself, with
    "Find" enabled (s44's walk): "Find" waits for two different runs, and the card says so."""
    from components import ids

    a, b = data["runs"]["A"], data["runs"]["B"]

    def card(tree: Any) -> tuple[Any, str]:
        button = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_DIS_BUTTON)[0]
        return button.disabled, text_of(
            find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_DISAGREE)[0]
        )

    disabled, said = card(compare.layout(runs=a))
    assert disabled is True and said == "Pick two different runs: choose a second run after “vs”."
    disabled, said = card(compare.layout(runs=f"{a},{b}"))
    assert not disabled and "Pick two" not in said
    # the user takes B out of the runs: the pair follows (A twice) and "Find" waits
    pair = compare.follow_runs([a], "ws0", a, b)[2:]
    assert pair == (a, a)
    disabled, said = compare.follow_pair(*pair)
    assert disabled is True and "Pick two different runs" in text_of(said)
    # then picks B after "vs": "Find" is on, and the card says what it will do
    disabled, said = compare.follow_pair(a, b)
    assert disabled is False and text_of(said) == compare.DIS_IDLE


def test_a_catalogue_without_prices_shows_no_price_dashes_in_the_lists(compare, data):
    """Instacart has no prices: each list row read "—" where a price goes (s44's walk); a
    catalogue with prices keeps them, and one missing price among them its "—"."""
    import pandas as pd

    from components.item_card import card_rows
    from recsys.catalog import CatalogView

    a = data["runs"]["A"]
    run = Registry(data["root"]).get(a)
    entry = {"item_ids": ["p1", "p2"], "scores": [0.9, 0.8], "filtered": True}

    def column_text(catalog: pd.DataFrame) -> str:
        view = CatalogView(catalog["item_id"].tolist(), catalog)
        rows = {r["item_id"]: r for r in card_rows(view, [0, 1, 2])}
        return text_of(compare.list_column(run, entry, rows, set(), "#000", "p0"))

    items = pd.DataFrame({"item_id": ["p0", "p1", "p2"], "title": ["Seed", "Banana", "Lemon"]})
    shown = column_text(items.assign(price=float("nan")))
    assert "Banana" in shown and "Lemon" in shown and "—" not in shown
    priced = column_text(items.assign(price=[1.0, 2.5, float("nan")]))
    assert "2.50" in priced and priced.count("—") == 1


def test_layout_from_query_and_preset_loading(compare, data):
    a, b = data["runs"]["A"], data["runs"]["B"]
    PresetStore(data["root"]).save("cmp", FilterConfig(same_gender=True))
    tree = compare.layout(seed="hk1", runs=f"{b},{a}", preset="cmp")
    from components import ids

    assert find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_RUNS)[0].value == [b, a]
    assert find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_SEED)[0].value == "hk1"
    assert compare.load_preset("cmp")["controls"]["same_gender"] is True
    assert compare.load_preset(None)["controls"]["same_gender"] is False


def test_a_run_whose_dataset_was_deleted_shows_an_alert_not_a_traceback(data, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    shutil.rmtree(root / "datasets" / "tiny")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    out = page("compare").layout(runs=f"{data['runs']['A']},{data['runs']['B']}")
    alerts = find(out, lambda c: type(c).__name__ == "Alert")
    assert len(alerts) == 1
    assert "Could not load run" in text_of(alerts) and "dataset 'tiny' not found" in text_of(alerts)


def test_unknown_runs_in_the_url_are_named_not_silently_dropped(compare, data):
    a = data["runs"]["A"]
    page_ = compare.layout(runs=f"{a},ghost-run")
    assert "Unknown or deleted run(s) left out: ghost-run." in text_of(page_)
    assert "left out" not in text_of(compare.layout(runs=a))


def test_with_only_baseline_runs_seeds_come_from_the_dataset_catalogue(data, tmp_path, monkeypatch):
    """No embedding run to borrow a catalogue from: the seed picker still offers the dataset's items."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    registry = Registry(root)
    for name in ("A", "B"):
        registry.delete(data["runs"][name])
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    compare = page("compare")
    pop = data["runs"]["popularity"]
    from components import ids

    tree = compare.layout(runs=pop)
    seed = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_SEED)[0]
    assert seed.value and seed.options and seed.value in {o["value"] for o in seed.options}
    typed = compare.update_seed_options("hk", [pop], None)
    assert typed and all("hk" in o["value"] or "hk" in o["label"].lower() for o in typed)


def test_default_seed_is_one_every_chosen_run_has_a_vector_for(data, tmp_path, monkeypatch):
    """A run that dropped the usual default seed (e.g. below min_count) does not open on "no vector"."""
    import shutil

    import numpy as np

    from components import ids
    from recsys.data.schema import load_dataset
    from recsys.models.prod2vec import Prod2Vec
    from tests.callbacks._emc_data import vectors

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    compare = page("compare")
    a = data["runs"]["A"]
    usual = find(
        compare.layout(runs=f"{a},{data['runs']['B']}"), lambda c: getattr(c, "id", None) == ids.COMPARE_SEED
    )
    usual_seed = usual[0].value
    ds = load_dataset("tiny", root)
    keep = [i for i in ds.catalog["item_id"].astype(str) if i != usual_seed]
    model = Prod2Vec()
    model.item_ids_ = np.asarray(keep, dtype=str)
    model.vectors_ = vectors(keep)
    model._set_coverage(ds.catalog["item_id"].astype(str).tolist())
    c = Registry(root).create_run(model, dataset_name="tiny", dataset_fingerprint=ds.fingerprint())["run_id"]
    tree = compare.layout(runs=f"{a},{c}")
    seed = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_SEED)[0].value
    assert seed and seed != usual_seed and seed in keep
    # the side-by-side lists open with an answer from both runs, not a "no vector" message
    row, _table, _msg = compare.compare_view([a, c], seed, 5, values())
    assert "has no vector" not in text_of(row)


def test_two_to_four_runs_a_fifth_cannot_be_picked(compare):
    options = [{"label": f"run {i}", "value": f"r{i}"} for i in range(6)]
    opts, value = compare.limit_runs(["r0", "r1", "r2"], options)
    assert value is compare.no_update and not any(o["disabled"] for o in opts)
    opts, value = compare.limit_runs(["r0", "r1", "r2", "r3"], options)
    assert value is compare.no_update
    assert [o["value"] for o in opts if o["disabled"]] == ["r4", "r5"]  # the fifth is not selectable
    opts, value = compare.limit_runs(["r0", "r1", "r2", "r3", "r5"], options)
    assert value == ["r0", "r1", "r2", "r3"]


def test_count_metrics_are_shown_as_integers():
    from components.metrics import _INTEGER_FORMAT, metrics_grid

    runs = [
        {"run_id": "a", "metrics": {"hr@10": 0.25, "n_cases": 10.0, "coverage@10": 1.0}},
        {"run_id": "b", "metrics": {"hr@10": 0.5, "n_cases": 1200.0, "coverage@10": 0.0}},
    ]
    grid = metrics_grid("g", runs, metrics=("hr@10", "n_cases", "coverage@10"))
    fmt = {c["field"]: c.get("valueFormatter") for c in grid.columnDefs}
    assert fmt["n_cases"] is _INTEGER_FORMAT
    # rates of 0 and 1 stay rates: three decimals (and their interval when the run has one)
    assert fmt["hr@10"] is not _INTEGER_FORMAT and fmt["coverage@10"] is not _INTEGER_FORMAT
    assert "'.3f'" in fmt["hr@10"]["function"] and "'.3f'" in fmt["coverage@10"]["function"]


def test_runs_of_one_label_are_told_apart_in_every_compare_table(data, tmp_path, monkeypatch):
    """A label retrained on one dataset, and the same label on another shop: the vetted precision
    table, the list headers and the per-category legend name each run so it can be told apart."""
    import shutil

    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from tests.callbacks._emc_data import _embedding_run, catalog, interactions, vectors

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    registry = Registry(root)
    cat = catalog()
    item_ids = cat["item_id"].tolist()
    tiny = build_dataset("tiny", cat, interactions(item_ids))
    shop2 = build_dataset("shop2", cat, interactions(item_ids))
    save_dataset(shop2, root)
    hr = {"Women": 0.3, "Men": 0.3, "Home": 0.3}
    again = _embedding_run(registry, tiny, vectors(item_ids, perturb=True), "A", hr)
    other = _embedding_run(registry, shop2, vectors(item_ids), "A", hr)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    compare = page("compare")
    first = data["runs"]["A"]

    table = compare.vetted_view(10, values())
    names = {
        getattr(tr, "data-run"): text_of(tr.children[0])
        for tr in find(table, lambda c: hasattr(c, "data-run"))
    }
    a_names = [names[r] for r in (first, again, other)]
    assert all(n.startswith("A") for n in a_names), a_names
    assert len(set(a_names)) == 3, a_names
    assert "shop2" in names[other] and "tiny" in names[first]

    lists, _agreement, _msg = compare.update_lists([first, again], "ws0", 5, values())
    heads = [text_of(s) for s in find(lists, lambda c: getattr(c, "className", None) == "fw-semibold")]
    assert len({h for h in heads if h.startswith("A")}) == 2, heads

    fig = compare.per_category_figure([registry.get(r) for r in (first, again, other)]).figure
    assert len({bar.name for bar in fig.data}) == 3, [bar.name for bar in fig.data]


def test_the_opening_and_a_change_of_runs_take_the_seed_by_one_rule(data, tmp_path, monkeypatch):
    """Compare's layout and ``follow_runs`` chose the seed by two copies of one rule with different
    error handling: with a chosen run whose dataset was deleted listed first, a change of runs
    skipped it and took the other run's seed, while opening the same runs from the URL showed only
    "Could not load run". Now both skip it, take the same seed, and its column says why."""
    import shutil

    from components import ids
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from tests.callbacks._emc_data import _embedding_run, catalog, interactions, vectors

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    cat = catalog()
    gone = build_dataset("gone", cat, interactions(cat["item_id"].tolist()))
    save_dataset(gone, root)
    lost = _embedding_run(Registry(root), gone, vectors(cat["item_id"].tolist()), "lost", {"Women": 0.3})
    shutil.rmtree(root / "datasets" / "gone")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    compare = page("compare")
    a = data["runs"]["A"]

    tree = compare.layout(runs=f"{lost},{a}")
    assert "Could not load run" not in text_of(tree)
    opened = find(tree, lambda c: getattr(c, "id", None) == ids.COMPARE_SEED)[0].value
    # the same runs picked in the browser, from a seed the page did not have (another dataset's)
    followed, options, _, _ = compare.follow_runs([lost, a], "not-an-item", None, None)
    assert opened and followed == opened and opened in {o["value"] for o in options}
    lists, _, _ = compare.compare_view([lost, a], opened, 5, values())
    assert "dataset 'gone' not found" in text_of(lists)


def test_a_run_saved_without_a_label_is_named_by_what_it_is_everywhere(data, tmp_path, monkeypatch):
    """``recsys train`` without ``--label`` stores the run id as the label, and Explore's Variant
    list, Compare and the Runs grid showed "prod2vec-20261207-104233-3f9a1c". They now read
    "prod2vec · tiny · <date> <time>" (family, dataset, when), from one helper."""
    import re
    import shutil

    from components import ids
    from recsys.data.schema import load_dataset
    from tests.callbacks._emc_data import _embedding_run, vectors

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    registry = Registry(root)
    ds = load_dataset("tiny", root)
    bare = _embedding_run(registry, ds, vectors(ds.catalog["item_id"].tolist()), None, {"Women": 0.2})
    assert registry.get(bare)["label"] == bare  # as the CLI stores it
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    readable = re.compile(r"^prod2vec · tiny · \d{4}-\d\d-\d\d \d\d:\d\d$")

    def option(tree, picker):
        (dropdown,) = find(tree, lambda c: getattr(c, "id", None) == picker)
        return next(o["label"] for o in dropdown.options if o["value"] == bare)

    explore_name = option(page("explore").layout(run=bare), ids.EXPLORE_RUN)
    compare_name = option(page("compare").layout(runs=f"{bare},{data['runs']['A']}"), ids.COMPARE_RUNS)
    grid_name = next(r["label"] for r in page("runs").refresh_runs(None, None) if r["run_id"] == bare)
    assert readable.match(explore_name) and bare not in explore_name, explore_name
    assert explore_name == compare_name == grid_name
    # a label the user gave is kept as it is
    assert option(page("compare").layout(), ids.COMPARE_RUNS) == explore_name
    assert (
        next(r["label"] for r in page("runs").refresh_runs(None, None) if r["run_id"] == data["runs"]["B"])
        == "B"
    )


def test_the_per_category_chart_shows_the_categories_with_most_cases_and_the_rest_as_one(
    data, tmp_path, monkeypatch
):
    """On Taobao the chart drew 37 bar groups named by anonymised category ids, on an axis Plotly
    took for numbers. It now shows the 12 categories with the most cases, read as "category N",
    and the other 25 as one group whose value is their cases-weighted mean."""
    import shutil

    import numpy as np

    from recsys.data.schema import load_dataset
    from recsys.models.prod2vec import Prod2Vec

    root = tmp_path / "data"
    shutil.copytree(data["root"], root)
    registry = Registry(root)
    ds = load_dataset("tiny", root)
    cases = {str(2520377 + 7919 * i): 5 + 3 * i for i in range(37)}  # the last 12 have the most
    made = []
    for n, hr in enumerate((0.2, 0.4)):
        model = Prod2Vec()
        model.item_ids_ = ds.catalog["item_id"].to_numpy(dtype=str)
        model.vectors_ = np.eye(len(model.item_ids_), 4, k=n, dtype=np.float32) + 0.1
        model._set_coverage(model.item_ids_)
        per_cat = {c: {"hr@10": hr, "n_cases": k} for c, k in cases.items()}
        metrics = {"hr@10": hr, "per_category": per_cat}
        made.append(
            registry.create_run(
                model,
                dataset_name="tiny",
                dataset_fingerprint=ds.fingerprint(),
                metrics=metrics,
                label=f"r{n}",
            )["run_id"]
        )
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    graph = page("compare").update_per_category(made)  # the Runs dropdown's value
    fig = graph.figure
    top = sorted(cases, key=lambda c: -cases[c])[:12]
    assert fig.layout.xaxis.type == "category"
    assert [t.name.split(" ")[0] for t in fig.data] == [
        "r0",
        "r1",
    ]  # in the order picked: the columns' colours
    assert [t.name.split(" ")[0] for t in page("compare").update_per_category(made[::-1]).figure.data] == [
        "r1",
        "r0",
    ]
    for trace in fig.data:  # one series per run, named "r0 · prod2vec" and "r1 · prod2vec"
        hr = {"r0": 0.2, "r1": 0.4}[trace.name.split(" ")[0]]
        assert list(trace.x) == [f"category {c}" for c in top] + ["other 25 categories"]
        assert list(trace.y) == pytest.approx([hr] * 13)
        assert trace.customdata[-1] == sum(cases.values()) - sum(cases[c] for c in top)
