"""The seed search's popularity order after a dataset is imported again under the same name
(s35-q's review of s34-u's ``recsys.catalog.item_popularity``): the counts are the new data's."""

from __future__ import annotations

import pandas as pd

from components.common import run_catalog_view
from recsys.catalog import item_popularity
from recsys.data.loaders import build_dataset
from recsys.data.schema import load_dataset, save_dataset
from tests.callbacks import _emc_data
from tests.callbacks._pages import page


def test_the_seed_search_ranks_by_the_counts_of_the_dataset_imported_again(tmp_path, monkeypatch):
    """Typing "tote" lists the five bags most interacted-with first. The shop re-imports "tiny"
    (same name, same catalogue) with a month where the least bought bag sold most: the next
    search ranks it first, without restarting the app (the counts are read per catalogue view,
    and a re-import makes a new view)."""
    root = tmp_path / "data"
    runs = _emc_data.make_data_dir(root)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    explore = page("explore")

    def bags() -> list[str]:
        # the counts are read in the background once the page loads the run's view (the search
        # never waits for them): wait here, as a user's typing would, for the version just imported
        assert item_popularity(run_catalog_view(runs["A"]), wait=30) is not None
        return [o["value"] for o in explore.update_seed_options("tote", runs["A"], None)]

    first = bags()
    counts = load_dataset("tiny", root).interactions["item_id"].astype(str).value_counts()
    assert first[0] == max(first, key=lambda i: (counts.get(i, 0), -first.index(i)))
    least = first[-1]
    ds = load_dataset("tiny", root)
    start = pd.Timestamp("2024-02-01")
    more = pd.DataFrame(
        [
            {"sequence_id": f"r{s}", "item_id": item, "timestamp": start + pd.Timedelta(hours=s, minutes=j)}
            for s in range(40)
            for j, item in enumerate((least, "ws0"))
        ]
    )
    inter = pd.concat([ds.interactions[["sequence_id", "item_id", "timestamp"]], more], ignore_index=True)
    save_dataset(build_dataset("tiny", _emc_data.catalog(), inter), root)
    again = bags()
    assert again[0] == least, (first, again)
    assert sorted(again) == sorted(first)
