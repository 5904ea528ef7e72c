"""A small dataset with local item images and an imported run over it (cards, Runs page).

``make_image_data(root)`` stores dataset ``"shop"`` (the demo generator's 100 items) whose
catalogue points three items at files of its images folder, written here:

- ``GOOD`` -> ``pics/good.png``: a real 8 x 6 PNG (Pillow);
- ``BROKEN`` -> ``pics/broken.png``: served (200, image/png) but not an image, so the browser
  fails to decode it (no network error in the console) and shows the placeholder;
- ``MISSING`` -> ``pics/missing.png``: no such file;

one item at an http URL (``WEB``) and one without an image (``plain``). An ``external`` run (vectors imported with
:func:`recsys.external.import_vectors`: no training, a second) puts these five items
next to each other, so Explore with ``GOOD`` as the seed lists the other three first.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

DATASET = "shop"
PNG_SIZE = (8, 6)
GOOD_PATH, BROKEN_PATH, MISSING_PATH = "pics/good.png", "pics/broken.png", "pics/missing.png"
WEB_URL = "https://images.example.com/w.jpg"


def make_image_data(root: Path, *, missing: bool = True) -> dict[str, str]:
    """Fill the data directory ``root``; return the item ids (``good``, ``broken``, ``missing``,
    ``web``, ``plain``), the run id (``run``) and the dataset name (``dataset``).

    ``missing=False`` leaves out the two images a browser fetch would fail on with a console
    error (the 404 of ``MISSING`` and the unreachable ``WEB`` host): those items get none."""
    from PIL import Image

    from recsys.data.schema import save_dataset
    from recsys.data.synthetic import generate_demo
    from recsys.external import import_vectors
    from recsys.images import images_dir

    demo = generate_demo(n_items=100, n_sequences=60, seed=3)
    catalog = demo.catalog.copy()
    catalog["image_url"] = ""
    items = catalog["item_id"].astype(str).tolist()
    picked = dict(zip(("good", "broken", "missing", "web", "plain"), items[:5], strict=True))
    images = (GOOD_PATH, BROKEN_PATH, MISSING_PATH, WEB_URL) if missing else (GOOD_PATH, BROKEN_PATH)
    for key, value in zip(picked, images, strict=False):
        catalog.loc[catalog["item_id"].astype(str) == picked[key], "image_url"] = value
    save_dataset(dataclasses.replace(demo, name=DATASET, catalog=catalog), root)
    folder = images_dir(DATASET, root) / "pics"
    folder.mkdir(parents=True)
    Image.new("RGB", PNG_SIZE, (200, 30, 30)).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(len(items), 8)).astype(np.float32)
    vectors[1:5] = vectors[0] + 0.05 * rng.normal(size=(4, 8)).astype(np.float32)
    source = Path(root) / "source"
    source.mkdir()
    np.save(source / "vectors.npy", vectors)
    (source / "ids.txt").write_text("\n".join(items) + "\n")
    out = import_vectors(
        DATASET, "images test", source / "vectors.npy", ids=source / "ids.txt", evaluate=False, root=root
    )
    return {**picked, "run": out["run"]["run_id"], "dataset": DATASET}
