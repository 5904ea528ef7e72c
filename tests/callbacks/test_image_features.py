"""The Runs page's "Image embeddings" card: local image count, the weights file it needs, and
the training job an editor starts (family content with image features)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import image_features as imf
from tests._image_data import make_image_data
from tests.callbacks._pages import find, page, text_of


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    monkeypatch.setenv("RECSYS_MLFLOW", "off")
    return {"root": root, **make_image_data(root)}


def test_runs_page_has_the_card_with_an_editor_only_button(shop):
    layout = page("runs").layout()
    (button,) = find(layout, lambda c: getattr(c, "id", None) == imf.IMG_SUBMIT)
    assert "editor-only" in button.className.split()
    (dataset,) = find(layout, lambda c: getattr(c, "id", None) == imf.IMG_DATASET)
    assert dataset.value == "shop"


def test_without_weights_it_says_why_and_which_file_and_cannot_start(shop):
    status, disabled = imf.show_image_status("shop", "MobileNetV3Small")
    text = text_of(status)
    assert "2 of 100" in text and "catalogue items have a local image" in text
    assert "pics/missing.png" in text  # a path naming no file is reported
    weights = shop["root"] / "weights" / "MobileNetV3Small.weights.h5"
    assert "No weights file" in text and str(weights) in text and disabled is True
    assert "Nothing started" in text_of(imf.start_image_training(1, "shop", "MobileNetV3Small"))
    assert imf.job_store().list_jobs(kind="train") == []


def test_with_the_weights_file_an_editor_starts_a_content_training_job_with_image_features(shop):
    weights = shop["root"] / "weights" / "ResNet50.weights.h5"
    weights.parent.mkdir()
    weights.write_bytes(b"stand-in: the card checks the file is there; the job loads it")
    status, disabled = imf.show_image_status("shop", "ResNet50")
    assert disabled is False and "No weights file" not in text_of(status)
    assert imf.show_image_status("shop", "MobileNetV3Small")[1] is True  # another backbone: its own file

    message = imf.start_image_training(1, "shop", "ResNet50")
    assert "Training started" in text_of(message)
    store = imf.job_store()
    (job,) = store.list_jobs(kind="train")
    store.cancel(job["job_id"])
    assert job["params"]["family"] == "content" and job["params"]["dataset_name"] == "shop"
    assert job["params"]["params"] == {
        "image_features": True,
        "image_backbone": "ResNet50",
        "image_weights_path": str(weights),
    }


def test_a_dataset_without_local_images_cannot_start(shop):
    import dataclasses

    from recsys.data.schema import load_dataset, save_dataset

    plain = load_dataset("shop", shop["root"])
    save_dataset(
        dataclasses.replace(plain, name="plain", catalog=plain.catalog.assign(image_url="")), shop["root"]
    )
    status, disabled = imf.show_image_status("plain", "MobileNetV3Small")
    assert disabled is True and "0 of 100" in text_of(status) and "No local images" in text_of(status)
