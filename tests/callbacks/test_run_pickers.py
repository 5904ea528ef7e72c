"""A user with an imported dataset beside another picks a run on the Map: the run picker says
which dataset each run was trained on (run ids alone do not)."""

from __future__ import annotations

from dash import dcc

from components import ids
from tests._serving_data import make_second_dataset, make_serving_data
from tests.callbacks._pages import find, page


def _map_run_options(root, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    tree = page("map").layout()
    (picker,) = find(tree, lambda c: isinstance(c, dcc.Dropdown) and c.id == ids.MAP_RUN)
    return {o["value"]: o["label"] for o in picker.options}


def test_the_map_run_picker_names_each_runs_dataset_when_there_are_several(tmp_path, monkeypatch):
    (tmp_path / "one").mkdir()
    data = make_serving_data(tmp_path / "one")
    labels = _map_run_options(tmp_path / "one", monkeypatch)
    assert not any(text.endswith(" · tiny") for text in labels.values())  # one dataset: nothing to add

    shop_run, _ = make_second_dataset(tmp_path / "one")
    labels = _map_run_options(tmp_path / "one", monkeypatch)
    # a run saved without a label is named "family · dataset · date" (recsys.registry.run_label)
    assert "shop2" in labels[shop_run].split(" · ")[1:], labels[shop_run]
    # the demo-like runs are labelled "tiny-a", "tiny-b": a label naming its dataset is left as it is
    assert all("tiny" in labels[r] and not labels[r].endswith(" · tiny") for r in data["runs"])


def test_explore_the_map_and_compare_list_the_runs_once_per_layout(tmp_path, monkeypatch):
    """Each listing of the runs reads every run.json (and checks each run's files): Explore,
    the Map and Compare read them once per layout, not again to choose the run they open on
    (``components.pickers.opening_run`` listed them twice more: the default dataset, then the
    runs of it). Each page still opens on a run."""
    from recsys.registry import Registry

    make_serving_data(tmp_path)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    listings: list[str] = []
    list_runs = Registry.list_runs

    def counted(self, *args, **kwargs):
        listings.append("list_runs")
        return list_runs(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "list_runs", counted)
    pickers = {"explore": ids.EXPLORE_RUN, "map": ids.MAP_RUN, "compare": ids.COMPARE_RUNS}
    for name, picker_id in pickers.items():
        listings.clear()
        tree = page(name).layout()
        (picker,) = find(tree, lambda c, i=picker_id: isinstance(c, dcc.Dropdown) and c.id == i)
        assert picker.value, name
        assert len(listings) == 1, (name, len(listings))


def test_a_catalogue_only_shop_with_a_tfidf_run_is_told_which_model_explore_needs(tmp_path, monkeypatch):
    """A merchandiser imported a catalogue without interactions (Myntra) and trained TF-IDF, as
    the import note suggests. Explore, the Map and Vetting said "No embedding run yet. Train one
    on the Runs page (the demo build makes several)": there was a run, and no demo. Each now says
    that the TF-IDF run ranks without item vectors and that the content model learns them from
    the catalogue alone."""
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.models import make_model
    from recsys.registry import Registry
    from tests.callbacks._emc_data import catalog
    from tests.callbacks._pages import text_of

    ds = build_dataset("shop", catalog(), None)
    save_dataset(ds, tmp_path)
    model = make_model("tfidf").fit(ds)
    Registry(tmp_path).create_run(model, dataset_name="shop", dataset_fingerprint=ds.fingerprint())
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    for name in ("explore", "map", "vetting"):
        text = " ".join(text_of(page(name).layout()).split())
        assert "No run here has item vectors: tfidf (a run on shop)" in text, (name, text)
        assert "content model" in text and "demo build" not in text, (name, text)
