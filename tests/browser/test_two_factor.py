"""Two-factor sign-in, my sessions and a recent sign-in, in Chromium (with axe audits)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from sqlalchemy import update

from tests.browser.conftest import LiveServer, fill_sign_in, screenshot
from tests.browser.test_accessibility import audit
from tests.factories import PASSWORD
from webapp.auth import two_factor
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import UserSession
from webapp.repositories import UserRepository

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def live_config() -> dict[str, Any]:
    return {"ADMIN_REQUIRE_TWO_FACTOR": True}


def make_user(live_server: LiveServer, **values: Any) -> None:
    with live_server.app.app_context():
        UserRepository(db.session).create_user(password=PASSWORD, **values)
        db.session.commit()


def set_up_two_factor(page: Any, backend: str | None) -> tuple[str, list[str]]:
    """On /account/two-factor (off): set it up; the secret and the recovery codes."""
    if backend:
        screenshot(page, f"two-factor-off-{backend}")
    assert audit(page) == []
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    page.wait_for_selector(".totp-setup svg")
    secret = page.inner_text("code.secret").replace(" ", "")
    if backend:
        screenshot(page, f"two-factor-setup-{backend}")
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, f"two-factor-setup-phone-{backend}")
        page.set_viewport_size({"width": 1280, "height": 900})
    assert audit(page) == []
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    page.wait_for_selector(".recovery-codes")
    codes = [c.strip() for c in page.locator(".recovery-codes code").all_inner_texts()]
    assert len(codes) == 10
    if backend:
        screenshot(page, f"two-factor-recovery-codes-{backend}")
    assert audit(page) == []
    return secret, codes


def next_code(secret: str) -> str:
    """A code of the next time step (the current one was spent turning it on)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def test_two_factor_sessions_and_recent_sign_in(
    live_server: LiveServer, browser: Any, page: Any, backend: str
) -> None:
    make_user(live_server, email="alice@example.com", username="alice")
    fill_sign_in(page, live_server, "alice", PASSWORD)
    page.wait_for_url(live_server("/"))
    page.goto(live_server("/account/two-factor"))
    secret, codes = set_up_two_factor(page, backend)
    page.get_by_role("link", name="I have saved them").click()
    page.wait_for_url(live_server("/account/two-factor"))
    assert "10 of 10" in page.inner_text("main")
    screenshot(page, f"two-factor-on-{backend}")
    assert audit(page) == []

    # Another browser: the password, then a wrong code, then the right one.
    other_context = browser.new_context(viewport={"width": 1280, "height": 900}, user_agent=FIREFOX)
    other = other_context.new_page()
    fill_sign_in(other, live_server, "alice", PASSWORD)
    other.wait_for_url(live_server("/auth/two-factor"))
    other.get_by_label("Code from your authenticator app, or a recovery code").fill("000000")
    other.get_by_role("button", name="Verify and sign in").click()
    other.wait_for_selector(".field-error")
    assert "not right" in other.inner_text(".field-error")
    screenshot(other, f"two-factor-code-error-{backend}")
    assert audit(other) == []
    other.get_by_label("Code from your authenticator app, or a recovery code").fill(
        next_code(secret)
    )
    other.get_by_role("button", name="Verify and sign in").click()
    other.wait_for_url(live_server("/"))
    assert "Welcome back, alice." in other.inner_text(".flashes")

    # The first browser sees both and signs the other out.
    page.goto(live_server("/account/sessions"))
    rows = page.locator(".sessions-table tbody tr")
    assert rows.count() == 2
    assert "Firefox on Windows" in page.inner_text("main")
    assert page.locator(".sessions-table .badge").count() == 1
    screenshot(page, f"account-sessions-{backend}")
    assert audit(page) == []
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: no sideways scrolling
    assert not page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    screenshot(page, f"account-sessions-phone-{backend}")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Sign out Firefox on Windows").click()
    page.wait_for_selector("text=Signed out Firefox on Windows.")
    other.goto(live_server("/account/"))
    other.wait_for_url(live_server("/auth/login?next=%2Faccount%2F"))
    other_context.close()

    # A recovery code signs in once.
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    fill_sign_in(page, live_server, "alice", PASSWORD)
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(codes[0])
    page.get_by_role("button", name="Verify and sign in").click()
    page.wait_for_url(live_server("/"))
    assert "recovery code" in page.inner_text(".flashes")

    # Ten minutes later, changing the password asks for the password and a code again.
    with live_server.app.app_context():
        db.session.execute(
            update(UserSession).values(authenticated_at=utcnow() - timedelta(minutes=11))
        )
        db.session.commit()
    page.goto(live_server("/account/password"))
    page.wait_for_url(live_server("/auth/reauthenticate?next=/account/password"))
    screenshot(page, f"reauthenticate-{backend}")
    assert audit(page) == []
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(codes[1])
    page.get_by_role("button", name="Confirm it is you").click()
    page.wait_for_url(live_server("/account/password"))
    assert page.get_by_role("heading", name="Change password").is_visible()


def test_an_admin_is_sent_to_set_up_two_factor_and_back(
    live_server: LiveServer, page: Any, backend: str
) -> None:
    make_user(live_server, email="root@example.com", username="root", is_admin=True)
    fill_sign_in(page, live_server, "root", PASSWORD)
    page.wait_for_url(live_server("/"))
    page.goto(live_server("/admin/users?q=ro"))
    page.wait_for_url(live_server("/account/two-factor?next=/admin/users?q%3Dro"))
    assert "Administrators must use two-factor sign-in" in page.inner_text(".flashes")
    set_up_two_factor(page, None)
    page.get_by_role("link", name="I have saved them: carry on").click()
    page.wait_for_url(live_server("/admin/users?q=ro"))
    assert page.get_by_role("heading", name="Users").is_visible()
    page.goto(live_server("/admin/users/1"))
    assert page.locator(".session-list .badge").inner_text() == "This browser"
    screenshot(page, f"admin-user-sessions-{backend}")
    assert audit(page) == []

    # Olivia lost her phone and her recovery codes: the admin turns her two-factor off.
    make_user(live_server, email="olivia@example.com", username="olivia")
    with live_server.app.app_context():
        users = UserRepository(db.session)
        olivia = users.get_by_login("olivia")
        assert olivia is not None
        secret = two_factor.encrypt_secret(pyotp.random_base32())
        users.update(olivia, totp_secret=secret, totp_enabled_at=utcnow())
        db.session.commit()
        olivia_id = olivia.id
    page.goto(live_server(f"/admin/users/{olivia_id}"))
    screenshot(page, f"admin-user-two-factor-on-{backend}")
    assert audit(page) == []
    page.get_by_role("button", name="Turn off two-factor for olivia").click()
    page.wait_for_selector(".flashes")
    assert "Two-factor sign-in is off for olivia" in page.inner_text(".flashes")
    assert page.get_by_text("Off: their password alone signs them in.").is_visible()
    screenshot(page, f"admin-user-two-factor-reset-{backend}")
    assert audit(page) == []
