from __future__ import annotations

from typing import Any

from tests.browser.conftest import LiveServer, screenshot


def test_home_page_renders_with_its_stylesheet(
    live_server: LiveServer, page: Any, backend: str
) -> None:
    response = page.goto(live_server("/"))
    assert response is not None and response.status == 200
    assert page.title() == "Home · webapp"
    # The stylesheet really applied: the header has its own background and the hero its gradient.
    hero_background = page.eval_on_selector(".hero", "e => getComputedStyle(e).backgroundImage")
    assert "linear-gradient" in hero_background
    assert page.locator("h1").inner_text() == "Welcome to webapp"
    assert screenshot(page, f"home-desktop-{backend}").stat().st_size > 0


def test_navigation_reaches_pages_and_errors_look_like_the_site(
    live_server: LiveServer, page: Any, backend: str
) -> None:
    page.goto(live_server("/missing-page"))
    assert page.locator(".error-code").inner_text() == "404"
    page.get_by_role("link", name="Back to the home page").click()
    page.wait_for_url(live_server("/"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Posts").click()
    page.wait_for_url(live_server("/posts/"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    page.wait_for_url(live_server("/"))


def test_home_page_fits_a_phone(live_server: LiveServer, phone_page: Any, backend: str) -> None:
    phone_page.goto(live_server("/"))
    overflow = phone_page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    assert overflow is False
    screenshot(phone_page, f"home-phone-{backend}")
