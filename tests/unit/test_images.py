"""Item images are served from the dataset's images folder only."""

from __future__ import annotations

import flask
import pytest

from recsys.images import image_src, register_media

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def client(tmp_data_dir, tmp_path):
    images = tmp_data_dir / "datasets" / "shop" / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.png").write_bytes(PNG)
    (images / "sub" / "b.JPG").write_bytes(b"\xff\xd8jpeg")
    (images / "notes.txt").write_text("not an image")
    (tmp_data_dir / "datasets" / "shop" / "catalog.png").write_bytes(PNG)  # beside, not inside
    (tmp_path / "secret.png").write_bytes(b"secret")
    (images / "link.png").symlink_to(tmp_path / "secret.png")
    app = flask.Flask("media-test")
    register_media(app, tmp_data_dir)
    return app.test_client()


def test_an_image_inside_the_folder_is_served(client):
    resp = client.get("/media/shop/a.png")
    assert resp.status_code == 200 and resp.data == PNG and resp.mimetype == "image/png"
    resp = client.get("/media/shop/sub/b.JPG")
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"


@pytest.mark.parametrize(
    "url",
    [
        "/media/shop/../catalog.png",
        "/media/shop/%2e%2e/catalog.png",
        "/media/shop/sub/../../catalog.png",
        "/media/shop//etc/passwd",
        "/media/shop/link.png",  # a symlink leading out
        "/media/shop/notes.txt",  # not an image
        "/media/shop/missing.png",
        "/media/..%2Fshop/a.png",
        "/media/other/a.png",
    ],
)
def test_anything_else_is_refused_with_the_same_404(client, url):
    resp = client.get(url, follow_redirects=True)  # werkzeug merges "//" with a redirect
    assert resp.status_code == 404 and b"secret" not in resp.data and resp.data == b"image not found"


def test_image_src():
    assert image_src("https://cdn.example/x.jpg", "shop") == "https://cdn.example/x.jpg"
    assert image_src("sub/b 1.jpg", "shop") == "/media/shop/sub/b%201.jpg"
    assert image_src("../x.jpg", "shop") is None and image_src("/etc/x.jpg", "shop") is None
    assert image_src("file:///etc/passwd", "shop") is None and image_src("", "shop") is None
    assert image_src("x.jpg", None) is None


@pytest.fixture(scope="module")
def shop_root(tmp_path_factory):
    from tests._image_data import make_image_data

    root = tmp_path_factory.mktemp("shop")
    return root, make_image_data(root)


def test_local_image_summary_counts_the_items_whose_file_is_in_the_images_folder(shop_root):
    from recsys.images import images_dir, local_image_summary

    root, shop = shop_root
    summary = local_image_summary("shop", root)
    # good.png and broken.png exist (broken is not a decodable image, but a file); missing.png does not
    assert summary["items"] == 100 and summary["local_paths"] == 3 and summary["with_image"] == 2
    assert summary["missing_examples"] == ["pics/missing.png"]
    assert summary["folder"] == str(images_dir("shop", root))


def test_resolve_catalog_images_maps_local_paths_into_the_folder_only(shop_root, tmp_path):
    import pandas as pd

    from recsys.images import images_dir, resolve_catalog_images

    root, _shop = shop_root
    (tmp_path / "secret.png").write_bytes(PNG)
    catalog = pd.DataFrame(
        {
            "item_id": list("abcde"),
            "image_url": [
                "pics/good.png",
                "https://x.example/a.jpg",
                "../catalog.parquet",
                str(tmp_path / "secret.png"),
                "pics/missing.png",
            ],
        }
    )
    out = resolve_catalog_images(catalog, "shop", root)
    folder = images_dir("shop", root).resolve()
    assert out["image_url"].tolist() == [
        str(folder / "pics" / "good.png"),
        "https://x.example/a.jpg",
        "",
        "",
        "",
    ]
    assert catalog["image_url"].iloc[0] == "pics/good.png"  # the input is not changed


def test_the_image_extractor_reads_a_datasets_local_images_in_training(shop_root):
    """The chain a training job runs (recsys.pipeline): resolve the catalogue's paths, then extract."""
    pytest.importorskip("PIL.Image")
    from recsys.data.schema import load_dataset
    from recsys.models.image import ImageFeatureExtractor
    from recsys.pipeline import _with_local_images

    root, shop = shop_root
    catalog = _with_local_images(load_dataset("shop", root), "shop", root).catalog
    extractor = ImageFeatureExtractor(backbone="MobileNetV3Small", image_size=32)
    feats = extractor.extract(catalog["image_url"].tolist())
    ids = catalog["item_id"].astype(str).tolist()
    assert abs(float((feats[ids.index(shop["good"])] ** 2).sum()) - 1.0) < 1e-4  # read: a unit row
    failed = {ids[i] for i, _path, _reason in extractor.failed_rows_}
    assert {shop["broken"], shop["missing"], shop["web"]} <= failed and shop["good"] not in failed


def test_weights_file_is_named_per_backbone_in_the_data_dir(tmp_data_dir):
    from recsys.errors import ModelFitError
    from recsys.models.image import weights_file

    assert weights_file("ResNet50", tmp_data_dir) == tmp_data_dir / "weights" / "ResNet50.weights.h5"
    with pytest.raises(ModelFitError):
        weights_file("../x", tmp_data_dir)
