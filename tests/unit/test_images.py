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
