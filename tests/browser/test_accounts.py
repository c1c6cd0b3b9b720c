"""Account journeys in Chromium, with the emails caught by a real local SMTP server."""

from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.parse
import urllib.request
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.browser.conftest import LiveServer, fill_sign_in, screenshot
from tests.conftest import Mailbox
from tests.factories import PASSWORD
from tests.helpers import CSRF_INPUT
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import User
from webapp.repositories import UserRepository

NEW_PASSWORD = "a-brand-new-passphrase"
SECOND_PASSWORD = "another-good-passphrase"


@pytest.fixture
def live_config(mailbox: Mailbox) -> dict[str, Any]:
    return mailbox.config


def make_user(live_server: LiveServer, **values: Any) -> None:
    with live_server.app.app_context():
        UserRepository(db.session).create_user(password=PASSWORD, **values)
        db.session.commit()


def stored_user(live_server: LiveServer, email: str) -> User | None:
    with live_server.app.app_context():
        return UserRepository(db.session).get_by_email(email)


def sign_out(page: Any) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    page.wait_for_selector("text=You have been signed out.")


def no_horizontal_scroll(page: Any) -> bool:
    return not page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def test_register_sign_out_sign_in_change_password_and_sign_in_again(
    live_server: LiveServer, page: Any, mailbox: Mailbox, backend: str
) -> None:
    page.goto(live_server("/"))
    page.get_by_role("link", name="Register").click()
    page.wait_for_url(live_server("/auth/register"))
    assert page.title() == "Create an account · webapp"
    page.get_by_label("Email address").fill("Journey@Example.com")
    page.get_by_label("Username").fill("journey")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    screenshot(page, f"accounts-register-{backend}")
    page.get_by_role("button", name="Create account").click()

    page.wait_for_url(live_server("/account/"))
    assert "Welcome, journey! Your account is ready." in page.inner_text(".flashes")
    assert page.locator(".nav-user").inner_text() == "journey"
    assert "journey@example.com" in page.inner_text("main")
    screenshot(page, f"accounts-overview-{backend}")

    sign_out(page)
    assert page.get_by_role("link", name="Sign in", exact=True).is_visible()
    fill_sign_in(page, live_server, "journey@example.com", NEW_PASSWORD)
    page.wait_for_url(live_server("/"))
    assert "Welcome back, journey." in page.inner_text(".flashes")

    page.get_by_role("link", name="My account").click()
    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Current password").fill(NEW_PASSWORD)
    page.get_by_label("New password", exact=True).fill(SECOND_PASSWORD)
    page.get_by_label("Repeat the new password").fill(SECOND_PASSWORD)
    screenshot(page, f"accounts-password-{backend}")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(live_server("/account/"))
    assert "Your password has been changed." in page.inner_text(".flashes")
    assert mailbox.last("journey@example.com")["Subject"] == "Your password was changed"

    sign_out(page)
    fill_sign_in(page, live_server, "journey", NEW_PASSWORD)  # the old one no longer works
    assert "do not match an active account" in page.inner_text("#password-error")
    fill_sign_in(page, live_server, "journey", SECOND_PASSWORD)
    page.wait_for_url(live_server("/"))
    assert page.locator(".nav-user").inner_text() == "journey"


def test_a_wrong_password_shows_the_error_beside_the_form(
    live_server: LiveServer, page: Any, phone_page: Any, backend: str
) -> None:
    make_user(live_server, email="wrong@example.com", username="wrongpw")
    for shown, name in ((page, "desktop"), (phone_page, "phone")):
        fill_sign_in(shown, live_server, "wrongpw", "not the password")
        error = shown.locator("#password-error")
        assert error.inner_text() == (
            "That email or username and password do not match an active account."
        )
        field = shown.get_by_label("Password", exact=True)
        assert field.get_attribute("aria-invalid") == "true"
        assert field.get_attribute("aria-describedby") == "password-error"
        assert field.input_value() == ""  # never echoed back
        assert shown.get_by_label("Email or username").input_value() == "wrongpw"
        assert no_horizontal_scroll(shown)
        screenshot(shown, f"accounts-login-error-{name}-{backend}")


def test_forgotten_password_through_the_emailed_link(
    live_server: LiveServer, page: Any, mailbox: Mailbox, backend: str
) -> None:
    make_user(live_server, email="forgetful@example.com", username="forgetful")
    page.goto(live_server("/auth/login"))
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email address").fill("forgetful@example.com")
    screenshot(page, f"accounts-forgot-{backend}")
    page.get_by_role("button", name="Email me a link").click()
    page.wait_for_url(live_server("/auth/login"))
    assert "we have emailed it a link" in page.inner_text(".flashes")

    link = mailbox.link("forgetful@example.com", path_only=False)
    assert link.startswith(live_server("/auth/reset/"))
    page.goto(link)
    assert "For the account forgetful" in page.inner_text("main")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    screenshot(page, f"accounts-reset-{backend}")
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(live_server("/auth/login"))
    assert "Your new password is set." in page.inner_text(".flashes")

    fill_sign_in(page, live_server, "forgetful", NEW_PASSWORD)
    page.wait_for_url(live_server("/"))
    page.goto(link)  # used once: it no longer works
    page.wait_for_url(live_server("/auth/forgot"))
    assert "invalid, has expired or was already used" in page.inner_text(".flashes")


def test_email_confirmation_through_the_emailed_link(
    live_server: LiveServer, page: Any, phone_page: Any, mailbox: Mailbox, backend: str
) -> None:
    make_user(live_server, email="unconfirmed@example.com", username="unconfirmed")
    fill_sign_in(page, live_server, "unconfirmed", PASSWORD)
    page.wait_for_url(live_server("/"))
    banner = page.get_by_role("region", name="Email confirmation")
    assert "Please confirm your email address" in banner.inner_text()
    screenshot(page, f"accounts-banner-{backend}")
    banner.get_by_role("button", name="Send the link again").click()
    page.wait_for_url(live_server("/"))
    assert "We sent a new confirmation link" in page.inner_text(".flashes")

    link = mailbox.link("unconfirmed@example.com", path_only=False)
    page.goto(link)
    page.wait_for_url(live_server("/account/"))
    assert "is confirmed" in page.inner_text(".flashes")
    assert page.get_by_role("region", name="Email confirmation").count() == 0
    assert page.locator(".badge.yes").inner_text() == "Confirmed"
    user = stored_user(live_server, "unconfirmed@example.com")
    assert user is not None and user.email_confirmed_at is not None

    # The same pages on a phone: nothing wider than the screen.
    phone_page.goto(live_server("/auth/login"))
    fill_sign_in(phone_page, live_server, "unconfirmed", PASSWORD)
    phone_page.wait_for_url(live_server("/"))
    for path, name in (("/account/", "overview"), ("/account/edit", "edit")):
        phone_page.goto(live_server(path))
        assert no_horizontal_scroll(phone_page)
        screenshot(phone_page, f"accounts-{name}-phone-{backend}")


def test_account_pages_and_profile_look_finished(
    live_server: LiveServer, page: Any, phone_page: Any, backend: str
) -> None:
    from tests.factories import PostFactory, TagFactory

    make_user(
        live_server, email="writer@example.com", username="writer", email_confirmed_at=utcnow()
    )
    with live_server.app.app_context():
        writer = UserRepository(db.session).get_by_username("writer")
        tag = TagFactory(name="travel")
        for n in range(12):
            PostFactory(author=writer, title=f"Notes from day {n + 1}", tags=[tag])
        db.session.commit()
    for shown, name in ((page, "desktop"), (phone_page, "phone")):
        fill_sign_in(shown, live_server, "writer", PASSWORD)
        shown.wait_for_url(live_server("/"))
        for path, what in (
            ("/users/writer", "profile"),
            ("/account/delete", "delete"),
            ("/account/password", "password"),
            ("/auth/register", "register-signed-in"),
        ):
            shown.goto(live_server(path))
            assert no_horizontal_scroll(shown), path
            screenshot(shown, f"accounts-{what}-{name}-{backend}")
        shown.goto(live_server("/users/writer"))
        assert shown.locator(".post-card").count() == 10
        assert "12 posts" in shown.inner_text(".profile-card")


def test_registrations_racing_for_one_email_create_one_account(
    live_server: LiveServer, backend: str
) -> None:
    """Several people submit the same email at the same instant, each in their own session.

    Every one of them passes the "is it taken?" check before any insert lands (the password
    hashing in between takes a good fraction of a second), so the database constraint has to
    decide: one account is made, the others see the form again with the error beside the field.
    """
    people = 4
    barrier = threading.Barrier(people)
    outcomes: list[tuple[int, str]] = []

    def register(n: int) -> None:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(live_server("/auth/register")).read().decode()
        match = CSRF_INPUT.search(form)
        assert match
        body = urllib.parse.urlencode(
            {
                "csrf_token": match.group(1),
                "email": "race@example.com",
                "username": f"racer{n}",
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            }
        ).encode()
        barrier.wait()
        try:
            response = opener.open(live_server("/auth/register"), data=body)
            outcomes.append((response.status, response.read().decode()))
        except urllib.error.HTTPError as error:  # a 500 would land here
            outcomes.append((error.code, error.read().decode()))

    threads = [threading.Thread(target=register, args=(n,)) for n in range(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in outcomes)
    # The winner's redirect was followed (200); the others' forms came back (422); no 500.
    assert statuses == [200] + [422] * (people - 1)
    winners = [html for _, html in outcomes if "<h1>My account</h1>" in html]
    losers = [html for _, html in outcomes if "<h1>Create an account</h1>" in html]
    assert len(winners) == 1
    assert len(losers) == people - 1
    for html in losers:
        assert re.search(r'id="email-error">\s*An account already uses this email address.', html)
    with live_server.app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(User).where(User.email == "race@example.com")
        )
    assert count == 1
