"""What a stakeholder sees on the first screen at 1280x720 (a projector) and 1920x1080 (s35-u):
Compare's control card keeps its height while its pickers load, and the Map's whole plot is on
screen. Headless Chromium (``pytest --headless``), ports 8176 and 8177; each test ends with no
console errors."""

from __future__ import annotations

import time

from tests.integration._browser import wait_until

#: The Compare control card (found by its first label: the same on every version of the page)
_CONTROLS_HEIGHT = """
var card = [...document.querySelectorAll('.page-body .card')]
  .find(c => c.innerText.indexOf('Runs (2 to 4)') === 0);
return card ? card.getBoundingClientRect().height : null;
"""


def test_compare_controls_keep_their_height_while_the_pickers_load(dash_duo, dash_app):
    """The pickers (dcc.Dropdown) arrive as a separate script after the layout has drawn: the
    card was drawn with its labels only, then grew by 70 px when they came, pushing the lists
    down under the reader's eyes (s34-u at load 14). Drawn with that script held back (blocked),
    the card is already as tall as once the pickers are there."""
    driver = dash_duo.driver
    driver.set_window_size(1280, 720)
    dash_duo.start_server(dash_app, port=8176)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*async-dropdown*"]})
    driver.get(f"{dash_duo.server_url}/compare")
    wait_until(lambda: driver.execute_script(_CONTROLS_HEIGHT), what="the control card, pickers held back")
    assert not dash_duo.find_elements("#compare-runs")  # the pickers are not drawn yet
    early = driver.execute_script(_CONTROLS_HEIGHT)
    # the held-back script's errors belong to this load only: leave the page, then drop them
    driver.get("about:blank")
    time.sleep(0.5)
    dash_duo.get_logs()
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    driver.get(f"{dash_duo.server_url}/compare")
    wait_until(
        lambda: dash_duo.find_elements("#compare-runs .dash-dropdown, #compare-runs"), what="the pickers"
    )
    wait_until(lambda: "2 selected" in dash_duo.find_element("#compare-runs").text, what="the runs picked")
    late = driver.execute_script(_CONTROLS_HEIGHT)
    assert abs(late - early) <= 1, (early, late)
    assert dash_duo.get_logs() == []


def test_the_map_plot_is_whole_on_the_first_screen(dash_duo, dash_app):
    """At 1280x720 the Map's plot began 382 px down and was 640 px tall: a third of it on the
    first screen. At both sizes the whole plot (its drawn SVG, not only its box) is now on screen,
    and it stays a usable size."""
    driver = dash_duo.driver
    dash_duo.start_server(dash_app, port=8177)
    for width, height in ((1280, 720), (1920, 1080)):
        driver.set_window_size(width, height)
        driver.get(f"{dash_duo.server_url}/map")
        wait_until(lambda: dash_duo.find_elements("#map-graph .main-svg"), what="the plot")
        wait_until(lambda: dash_duo.find_elements("#map-graph .legend .traces"), what="its legend")
        top, bottom, svg_bottom, inner = driver.execute_script(
            "var g = document.querySelector('#map-graph').getBoundingClientRect();"
            "var s = document.querySelector('#map-graph .main-svg').getBoundingClientRect();"
            "return [g.top, g.bottom, s.bottom, window.innerHeight];"
        )
        assert max(bottom, svg_bottom) <= inner, (width, top, bottom, svg_bottom, inner)
        assert bottom - top >= 240, (width, top, bottom)
    assert dash_duo.get_logs() == []
