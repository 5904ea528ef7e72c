"""Browser: Explore's cards load an item's local image from the dataset's images folder, and a
broken one shows the placeholder (headless Chromium; ``pytest --headless``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._image_data import PNG_SIZE, make_image_data
from tests.integration._browser import wait_until
from tests.integration.conftest import _fresh_app

IMG = "#{card} [data-item='{item}'] img.card-img"
NATURAL = "var i = document.querySelector(arguments[0]); return i && i.complete ? [i.naturalWidth, i.naturalHeight, i.getAttribute('src')] : null;"


@pytest.fixture
def shop_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("RECSYS_MLFLOW", "off")
    shop = make_image_data(root, missing=False)  # no 404 in the console: see make_image_data
    return _fresh_app(root, monkeypatch), shop


def loaded(dash_duo, selector: str):
    """[naturalWidth, naturalHeight, src] of the image once the browser finished with it."""
    dash_duo.driver.execute_script(
        "var i = document.querySelector(arguments[0]); if (i) i.scrollIntoView({block: 'center', behavior: 'instant'});",
        selector,
    )
    return dash_duo.driver.execute_script(NATURAL, selector)


def test_explore_card_loads_a_local_image_and_a_broken_one_shows_the_placeholder(dash_duo, shop_app):
    from components import ids
    from components.item_card import explore_href

    app, shop = shop_app
    dash_duo.start_server(app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}{explore_href(shop['good'], shop['run'])}")

    seed_img = IMG.format(card=ids.EXPLORE_SEED_CARD, item=shop["good"])
    dash_duo.wait_for_element(seed_img, timeout=60)
    wait_until(lambda: loaded(dash_duo, seed_img) is not None, 20, "the seed's image to load")
    width, height, src = loaded(dash_duo, seed_img)
    assert src == "/media/shop/pics/good.png" and (width, height) == PNG_SIZE

    broken = IMG.format(card=ids.EXPLORE_RESULTS, item=shop["broken"])
    dash_duo.wait_for_element(broken, timeout=60)
    wait_until(
        lambda: (loaded(dash_duo, broken) or [0, 0, ""])[2] == "/assets/image_placeholder.svg",
        20,
        "the broken image to be swapped for the placeholder",
    )
    assert loaded(dash_duo, broken)[0] > 0  # the placeholder itself loads
    assert "img-placeholder" in dash_duo.find_element(broken).get_attribute("class")
    # the other items have no image (missing=False): their cards have no <img>
    cards = dash_duo.driver.find_elements("css selector", f"#{ids.EXPLORE_RESULTS} .item-card[data-item]")
    with_img = {c.get_attribute("data-item") for c in cards if c.find_elements("css selector", "img")}
    assert len(cards) > 2 and with_img == {shop["broken"]}
    assert dash_duo.get_logs() == []


def test_runs_page_says_how_many_items_have_images_and_which_weights_file_it_needs(dash_duo, shop_app):
    from components import image_features as imf

    app, _shop = shop_app
    dash_duo.start_server(app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_contains_text(
        f"#{imf.IMG_STATUS}", "2 of 100 catalogue items have a local image", timeout=60
    )
    path = dash_duo.find_element(f"#{imf.IMG_STATUS} .img-weights-path").text
    assert path.endswith("/weights/MobileNetV3Small.weights.h5")
    assert dash_duo.find_element(f"#{imf.IMG_SUBMIT}").get_attribute("disabled") is not None
    assert dash_duo.get_logs() == []
