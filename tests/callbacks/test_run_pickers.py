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
    assert labels[shop_run].endswith(" · shop2")
    # the demo-like runs are labelled "tiny-a", "tiny-b": a label naming its dataset is left as it is
    assert all("tiny" in labels[r] and not labels[r].endswith(" · tiny") for r in data["runs"])
