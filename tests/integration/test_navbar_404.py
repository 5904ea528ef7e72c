"""The navbar lists every registered page; an unknown address shows the 404 page (Chromium)."""

from __future__ import annotations

from tests.integration._browser import wait_until


def test_navbar_from_the_page_registry_and_a_404_page(dash_duo, dash_app):
    import dash

    from components import ids

    pages = sorted(
        (p for p in dash.page_registry.values() if p["path"] != "/404"), key=lambda p: p.get("order", 99)
    )
    dash_duo.start_server(dash_app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/no-such-page")
    dash_duo.wait_for_contains_text("#_pages_content", "Page not found", timeout=30)
    links = [a.get_attribute("pathname") for a in dash_duo.find_elements(f"#{ids.NAVBAR} .nav-link")]
    assert links == [p["path"] for p in pages] and "/404" not in links
    assert len(dash_duo.find_elements(".not-found-links a")) == len(pages)
    # a link of the 404 page leads to a working page
    next(a for a in dash_duo.find_elements(".not-found-links a") if a.text == "Runs").click()
    wait_until(lambda: dash_duo.driver.current_url.endswith("/runs"), timeout=15, what="the Runs page")
    dash_duo.wait_for_element("#runs-grid", timeout=30)
    assert dash_duo.get_logs() == []
