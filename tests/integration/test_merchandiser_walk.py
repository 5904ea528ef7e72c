"""A stakeholder's demo and a merchandiser on a catalogue without titles, in a real browser
(s34-u): what the walks found, each as a browser test on the demo data (headless Chromium;
``pytest --headless``; ports 8161 to 8165). Each ends with no console errors."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains

from tests.integration._browser import click, wait_until

EDITOR = "editor-secret-s34u-0123456789"
VIEWER = "viewer-secret-s34u-0123456789"


def _signed_in_app(dash_duo, root, monkeypatch, port: int):
    """The app over ``root`` with an editor and a viewer token; returns ``sign_in(token, path)``."""
    from tests.integration.conftest import _fresh_app

    monkeypatch.setenv("RECSYS_API_TOKEN", EDITOR)
    monkeypatch.setenv("RECSYS_VIEWER_TOKEN", VIEWER)
    app = _fresh_app(root, monkeypatch)
    dash_duo.start_server(app, navigate=False, port=port)
    dash_duo.driver.set_window_size(1280, 800)
    base = dash_duo.server.url.rstrip("/")

    def sign_in(token: str, path: str) -> None:
        # leave the page first: its callbacks still in flight when the cookie went got a 401 (a
        # signed-out request, as it should), which the browser logged (CI, once)
        dash_duo.driver.get("about:blank")
        dash_duo.driver.delete_all_cookies()
        dash_duo.driver.get(f"{base}/login?next={path}")
        dash_duo.wait_for_element("#password", timeout=30).send_keys(token)
        dash_duo.find_element("#login-submit").click()

    return sign_in


def test_a_viewers_runs_and_data_pages_say_what_they_can_do_there(dash_duo, demo_data_copy, monkeypatch):
    """A viewer saw the whole training form (Train hidden): fields that took input and led
    nowhere. The form is read-only for them (typing changes nothing), with a line saying that
    training needs the editor role; an editor's form takes input and has no such line. The Data
    page's import form (Import hidden) says a viewer can inspect and preview, not import."""
    from components import ids
    from components.tuning import TUNE_LABEL

    sign_in = _signed_in_app(dash_duo, demo_data_copy, monkeypatch, 8161)
    sign_in(VIEWER, "/runs")
    label = dash_duo.wait_for_element(f"#{ids.RUNS_LABEL}", timeout=30)
    note = dash_duo.find_element(".runs-viewer-note")
    assert note.is_displayed() and "training needs the editor role" in note.text
    assert not label.is_enabled()
    family = dash_duo.find_element(f"#{ids.RUNS_FAMILY}")  # a click where it is opens nothing
    ActionChains(dash_duo.driver).move_to_element(family).click().perform()
    assert not [o for o in dash_duo.find_elements(".dash-dropdown-option") if o.is_displayed()]
    assert not dash_duo.find_element(f"#{ids.RUNS_SUBMIT}").is_displayed()
    # the Tune card likewise: its fields took a viewer's input, with no Tune button
    tune_note = dash_duo.find_element(".tune-viewer-note")
    assert tune_note.is_displayed() and "tuning needs the editor role" in tune_note.text
    assert not dash_duo.find_element(f"#{TUNE_LABEL}").is_enabled()
    # the Data page's import form likewise says what a viewer can do there (inspect, preview)
    dash_duo.driver.get(f"{dash_duo.server.url.rstrip('/')}/data")
    note = dash_duo.wait_for_element(".data-viewer-note", timeout=30)
    assert note.is_displayed() and "importing or uploading needs the editor role" in note.text
    assert not dash_duo.find_element(f"#{ids.DATA_IMPORT}").is_displayed()
    # and the Import vectors card, whose button is hidden too (s41-w)
    note = dash_duo.find_element(".vio-viewer-note")
    assert note.is_displayed() and "importing vectors needs the editor role" in note.text
    assert not dash_duo.find_element(f"#{ids.VIO_SUBMIT}").is_displayed()
    assert not dash_duo.find_element(f"#{ids.VIO_NAME}").is_enabled()  # fields read-only, as Train's

    sign_in(EDITOR, "/runs")
    label = dash_duo.wait_for_element(f"#{ids.RUNS_LABEL}", timeout=30)
    wait_until(lambda: dash_duo.find_element(f"#{ids.RUNS_SUBMIT}").is_displayed(), what="Train")
    assert not dash_duo.find_element(".runs-viewer-note").is_displayed()
    assert dash_duo.find_element(f"#{TUNE_LABEL}").is_enabled()
    click(dash_duo, label)
    label.send_keys("my run")
    assert label.get_attribute("value") == "my run"
    dash_duo.driver.get(f"{dash_duo.server.url.rstrip('/')}/data")
    wait_until(lambda: dash_duo.find_element(f"#{ids.DATA_IMPORT}").is_displayed(), what="Import")
    assert not dash_duo.find_element(".data-viewer-note").is_displayed()
    assert not dash_duo.find_element(".vio-viewer-note").is_displayed()
    assert dash_duo.find_element(f"#{ids.VIO_NAME}").is_enabled()
    assert dash_duo.get_logs() == []
