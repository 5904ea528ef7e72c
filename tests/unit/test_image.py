"""ImageFeatureExtractor on generated PNG files, with no pretrained weights (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import Dataset
from recsys.errors import ModelFitError
from recsys.models.content import ContentModel
from recsys.models.image import ImageFeatureExtractor

PIL = pytest.importorskip("PIL.Image", reason="Pillow reads the images (keras.utils.load_img)")


def write_png(path: Path, colour: tuple[int, int, int], stripes: bool = False) -> str:
    arr = np.zeros((24, 24, 3), dtype=np.uint8)
    arr[...] = colour
    if stripes:
        arr[::4] = 255 - np.asarray(colour, dtype=np.uint8)
    PIL.fromarray(arr).save(path)
    return str(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("img")
    bad = d / "broken.png"
    bad.write_bytes(b"this is not a png")
    return {
        "red": write_png(d / "red.png", (220, 20, 20)),
        "red_copy": write_png(d / "red_copy.png", (220, 20, 20)),
        "blue": write_png(d / "blue.png", (20, 20, 220), stripes=True),
        "broken": str(bad),
        "missing": str(d / "nope.png"),
    }


@pytest.fixture(scope="module")
def extractor() -> ImageFeatureExtractor:
    return ImageFeatureExtractor(backbone="MobileNetV3Small", image_size=32)


def test_extract_gives_one_float32_row_per_path_and_reports_failures(extractor, images):
    paths = [
        images["red"],
        images["blue"],
        images["broken"],
        images["missing"],
        "",
        "https://cdn/x.jpg",
        images["red_copy"],
    ]
    feats = extractor.extract(paths)
    assert feats.dtype == np.float32 and feats.shape == (7, extractor.dim)
    assert np.isfinite(feats).all()
    # readable images: non-zero unit rows; the same picture gives the same features
    np.testing.assert_allclose(np.linalg.norm(feats[[0, 1, 6]], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(feats[0], feats[6], atol=1e-6)
    assert not np.allclose(feats[0], feats[1])
    # failures: zero rows, each reported with its row, path and reason
    assert not feats[2:6].any()
    reasons = {row: reason for row, _path, reason in extractor.failed_rows_}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert reasons[2].startswith("unreadable")
    assert reasons[3] == "file not found"
    assert "remote" in reasons[5]
    assert [p for p, _ in extractor.failed_] == [paths[i] for i in (2, 3, 4, 5)]


def test_local_weights_file_is_loaded(extractor, images, tmp_path):
    weights = tmp_path / "backbone.weights.h5"
    extractor.model().save_weights(str(weights))
    other = ImageFeatureExtractor(backbone="MobileNetV3Small", image_size=32, weights_path=str(weights))
    np.testing.assert_allclose(
        other.extract([images["red"], images["blue"]]),
        extractor.extract([images["red"], images["blue"]]),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"backbone": "AlexNet"}, "backbone"),
        ({"weights_path": "/no/such/weights.h5"}, "weights_path"),
        ({"image_size": 8}, "image_size"),
    ],
)
def test_bad_settings_raise_model_fit_error_naming_the_setting(images, kwargs, name):
    with pytest.raises(ModelFitError, match=name):
        ImageFeatureExtractor(**kwargs).extract([images["red"]])


def test_content_model_uses_image_features_when_asked(images):
    colours = {"r": (220, 20, 20), "b": (20, 20, 220)}
    folder = Path(images["red"]).parent
    rows = []
    for n in range(12):
        c = "r" if n % 2 else "b"
        path = write_png(folder / f"item{n}.png", colours[c], stripes=c == "b") if n != 11 else ""
        rows.append(
            {
                "item_id": f"x{n}",
                "title": f"thing {c}",
                "category": f"Cat > {c}",
                "brand": "",
                "gender": "",
                "price": 10.0,
                "adult": False,
                "description": "",
                "image_url": path,
            }
        )
    catalog = pd.DataFrame(rows)
    inter = pd.DataFrame(
        {
            "sequence_id": ["s1", "s1", "s2", "s2"],
            "user_id": "",
            "item_id": ["x0", "x2", "x1", "x3"],
            "timestamp": pd.Timestamp("2024-01-01"),
            "event_type": "view",
            "quantity": 1.0,
            "position": [0, 1, 0, 1],
        }
    )
    model = ContentModel(
        image_features=True,
        image_size=32,
        vector_size=8,
        embedding_dim=8,
        hidden_units=[16],
        epochs=1,
        pairs_per_epoch=200,
        batch_size=32,
        validation_share=0.0,
        wide_blocks=False,  # the deep vector alone: embedding_dim wide
        tfidf_dim=0,  # and no TF-IDF side (the hybrid's, recsys.models.content.hybrid)
        workers=1,
    ).fit(Dataset("img", catalog, inter))
    assert model.vectors_.shape == (12, 8)
    assert model.image_report_["failed"] == 1  # the item with no image_url
    assert model.image_report_["n_images"] == 11
