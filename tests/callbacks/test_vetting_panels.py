"""The Vetting page's panels (components/vetting_panels.py) and Compare's vetted precision and
thumbs-down sorting, as plain callback calls with the values a browser sends, on a real
Prod2Vec run and a co-occurrence baseline of a small seeded shop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.filter_panel import controls_from_filter_config
from components.vetting_panels import CHECKS_BUTTON, VETTING_RUN, run_checks_panel, update_precision
from recsys.filters import FilterConfig
from recsys.registry import Registry
from recsys.search import similar_items
from tests._checks_data import make_shop, write_judgments
from tests.callbacks._pages import find, page, text_of, triggered

T0, T1 = "2026-01-01T10:00:00+00:00", "2026-01-01T12:00:00+00:00"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from recsys.pipeline import train_run

    root = tmp_path_factory.mktemp("vetting-shop")
    out = make_shop(root)
    out["baseline"] = train_run("cooccurrence", {}, "shop", root, k=5)["run_id"]
    return {"root": root, **out}


@pytest.fixture
def root(shop: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shop's data directory with no judgments (each test writes its own)."""
    monkeypatch.setenv("RECSYS_DATA_DIR", str(shop["root"]))
    judged = shop["root"] / "vetting"
    if judged.exists():
        for f in judged.iterdir():
            f.unlink()
    return shop["root"]


def listed(root: Path, run: str, seed: str, k: int = 10) -> list[str]:
    """A run's list for a seed: the filtered search, or a baseline's own ``similar``."""
    reg = Registry(root)
    if reg.get(run).get("is_embedding"):
        return similar_items(reg, run, seed, FilterConfig(), k).item_ids
    ids, _ = reg.load_model(run).similar([seed], k)
    return [str(i) for i in ids[0] if str(i)]


def test_precision_panel_follows_judgments(shop: dict[str, Any], root: Path) -> None:
    run = shop["run"]
    assert "No judgments yet" in text_of(update_precision(run, None, None, 10))
    shown = listed(root, run, "P0003")
    write_judgments(
        root,
        [
            ("P0003", shown[0], 1, "ann", T0),
            ("P0003", shown[1], -1, "ann", T0),
            ("P0003", shown[2], -1, "ann", T0),
            ("P0003", "P0090", 1, "ann", T0),  # an adult item: never shown next to P0003
        ],
    )
    view = update_precision(run, None, 1, 10)
    assert find(view, lambda c: getattr(c, "id", None) == "vetting-precision-value")[0].children == "0.333"
    text = text_of(view)
    assert "1 thumbs-up shown, 2 thumbs-down still shown" in text and "1 thumbs-up pairs no longer" in text
    assert f"P0003 → {shown[1]} (rank 2)" in text
    # a later judgment (the counter bumps) turns a thumbs-down up
    write_judgments(root, [("P0003", shown[1], 1, "ann", T1)])
    view = update_precision(run, None, 2, 10)
    assert find(view, lambda c: getattr(c, "id", None) == "vetting-precision-value")[0].children == "0.667"
    # at k=1 only the first item is shown
    assert "1.000" in text_of(update_precision(run, None, 2, 1))
    assert "Pick a run" in text_of(update_precision(None, None, 2, 10))


def test_checks_panel_runs_on_the_button_only(shop: dict[str, Any], root: Path) -> None:
    run = shop["run"]
    view = triggered(f"{CHECKS_BUTTON}.n_clicks", run_checks_panel, 1, run, "same-cat", 10)
    rows = {
        getattr(r, "data-check"): getattr(r, "data-passed")
        for r in find(view, lambda c: hasattr(c, "data-check"))
    }
    assert set(rows) == {"adult", "asymmetry", "duplicates", "brand_concentration", "slices"}
    assert rows["adult"] == "true" and rows["duplicates"] == "false"  # titles repeat within a leaf
    assert "Every blocking check passes" in text_of(view)
    # a new run clears the results
    cleared = triggered(f"{VETTING_RUN}.value", run_checks_panel, 1, run, None, 10)
    assert not find(cleared, lambda c: hasattr(c, "data-check"))
    (root / "checks.json").write_text('{"duplicates": {"blocking": true}}')
    try:
        view = triggered(f"{CHECKS_BUTTON}.n_clicks", run_checks_panel, 2, run, "same-cat", 10)
    finally:
        (root / "checks.json").unlink()
    assert "blocking check failed: duplicates" in text_of(view)
    bad = triggered(f"{CHECKS_BUTTON}.n_clicks", run_checks_panel, 3, run, "no-such-preset", 10)
    assert "Could not run the checks" in text_of(bad) and "no-such-preset" in text_of(bad)


def test_compare_shows_vetted_precision_for_every_run(shop: dict[str, Any], root: Path) -> None:
    compare = page("compare")
    run, base = shop["run"], shop["baseline"]
    values = controls_from_filter_config(FilterConfig())
    assert "no judgments" in text_of(compare.update_vetted(10, values))
    a, b = listed(root, run, "P0020"), listed(root, base, "P0020")
    only_a = [i for i in a[1:] if i not in b]
    write_judgments(root, [("P0020", a[0], 1, "ann", T0), ("P0020", only_a[0], -1, "bob", T0)])
    view = compare.update_vetted(10, values)
    cells = {
        getattr(r, "data-run"): [c.children for c in r.children]
        for r in find(view, lambda c: hasattr(c, "data-run"))
    }
    assert set(cells) == {run, base}
    assert cells[run][1:4] == ["0.500", "2", "1"]  # p@10, judged shown, thumbs-down shown
    expected_base = 1.0 if a[0] in b else None
    assert cells[base][1] == ("1.000" if expected_base else "—")


def test_disagreements_sorted_by_which_variant_gets_more_thumbs_down(
    shop: dict[str, Any], root: Path
) -> None:
    compare = page("compare")
    run, base = shop["run"], shop["baseline"]
    values = controls_from_filter_config(FilterConfig())
    empty = compare.update_disagreement(1, run, base, 10, values, "down_a")
    assert "No judged seed with a thumbs-down" in text_of(empty)
    rows = []
    down_in = {}
    for seed in ("P0001", "P0034", "P0050"):
        a, b = listed(root, run, seed), listed(root, base, seed)
        only_a, only_b = [i for i in a if i not in b], [i for i in b if i not in a]
        rows += [(seed, i, -1, "ann", T0) for i in only_a[:2]]  # two thumbs-down shown only by A
        rows += [(seed, i, -1, "ann", T0) for i in only_b[:1]]
        down_in[seed] = (len(only_a[:2]), len(only_b[:1]))
    write_judgments(root, rows)

    def order(sort: str) -> list[tuple[str, str, str]]:
        view = compare.update_disagreement(1, run, base, 10, values, sort)
        trs = find(view, lambda c: hasattr(c, "data-seed"))
        return [(getattr(t, "data-seed"), t.children[4].children, t.children[5].children) for t in trs]

    by_a = order("down_a")
    assert {s for s, _, _ in by_a} == set(down_in)
    assert [(int(x), int(y)) for _, x, y in by_a] == [down_in[s] for s, _, _ in by_a]
    diffs = [int(x) - int(y) for _, x, y in by_a]
    assert diffs == sorted(diffs, reverse=True)
    diffs_b = [int(y) - int(x) for _, x, y in order("down_b")]
    assert diffs_b == sorted(diffs_b, reverse=True)
    # the overlap sort has no thumbs-down columns and still works
    plain = compare.update_disagreement(1, run, base, 10, values, "overlap")
    assert "👎 A" not in text_of(plain) and find(plain, lambda c: hasattr(c, "data-seed"))
