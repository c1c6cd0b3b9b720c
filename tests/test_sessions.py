"""Every signed-in browser is a session record: listed, ended one by one or all together."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from tests.account_helpers import is_signed_in, sign_in, text
from tests.factories import UserFactory
from tests.helpers import AuthActions, QueryCounter, redirect_target, session_count
from webapp.account.devices import describe
from webapp.extensions import db
from webapp.models import AuditEvent, User, UserSession, utcnow
from webapp.repositories import SessionRepository

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


def records(user: User) -> list[UserSession]:
    return SessionRepository(db.session).of_user(user.id)


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def me(app: Flask) -> User:
    return UserFactory(username="alice", email="alice@example.com")


@pytest.mark.parametrize(
    ("user_agent", "shown"),
    [
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (EDGE_WINDOWS, "Edge on Windows"),
        (CHROME_ANDROID, "Chrome on Android"),
        ("curl/8.5.0", "curl"),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
        ("\x00" * 10, "Unknown browser"),
    ],
)
def test_a_device_is_named_from_its_user_agent(user_agent: str | None, shown: str) -> None:
    assert describe(user_agent) == shown


def test_signing_in_makes_a_record_with_device_and_address(app: Flask, me: User) -> None:
    browser = app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = FIREFOX_WINDOWS
    assert sign_in(browser, "alice").status_code == 302
    (record,) = records(me)
    assert record.user_agent == FIREFOX_WINDOWS
    assert record.ip_address == "127.0.0.1"
    assert utcnow() - record.created_at < timedelta(minutes=1)


def test_the_list_marks_this_browser_and_signs_out_another(app: Flask, me: User) -> None:
    mine, phone = app.test_client(), app.test_client()
    mine.environ_base["HTTP_USER_AGENT"] = FIREFOX_WINDOWS
    phone.environ_base["HTTP_USER_AGENT"] = SAFARI_IPHONE
    sign_in(mine, "alice")
    sign_in(phone, "alice")
    page = text(mine.get("/account/sessions"))
    assert "Firefox on Windows" in page and "Safari on iPhone" in page
    assert page.count("This browser") == 1
    assert 'Firefox on Windows</strong> <span class="badge yes">This browser' in page

    phone_record = next(r for r in records(me) if r.user_agent == SAFARI_IPHONE)
    response = mine.post(f"/account/sessions/{phone_record.id}/end", data={})
    assert redirect_target(response) == "/account/sessions"
    assert not is_signed_in(phone)
    assert is_signed_in(mine)
    assert [r.user_agent for r in records(me)] == [FIREFOX_WINDOWS]
    (event,) = events("account.session_ended")
    assert event.after == {"session": phone_record.id, "device": "Safari on iPhone"}


def test_a_copied_cookie_of_an_ended_session_is_refused(app: Flask, me: User) -> None:
    mine, other = app.test_client(), app.test_client()
    sign_in(mine, "alice")
    sign_in(other, "alice")
    cookie = other.get_cookie("session")
    assert cookie is not None
    other_record = records(me)[0]
    mine.post(f"/account/sessions/{other_record.id}/end", data={})
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert not is_signed_in(copy)


def test_signing_out_ends_the_record_and_its_copies(app: Flask, me: User) -> None:
    browser = app.test_client()
    sign_in(browser, "alice")
    cookie = browser.get_cookie("session")
    assert cookie is not None and session_count(me.id) == 1
    browser.post("/auth/logout", data={})
    assert session_count(me.id) == 0
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert not is_signed_in(copy)


def test_this_browser_is_not_ended_from_the_list(
    client: FlaskClient, auth: AuthActions, me: User
) -> None:
    auth.login(me)
    (record,) = records(me)
    response = client.post(f"/account/sessions/{record.id}/end", data={})
    assert redirect_target(response) == "/account/sessions"
    assert is_signed_in(client)


def test_another_persons_session_is_a_404(
    app: Flask, client: FlaskClient, auth: AuthActions, me: User
) -> None:
    bob = UserFactory(username="bob")
    AuthActions(app.test_client()).login(bob)
    auth.login(me)
    (theirs,) = records(bob)
    assert client.post(f"/account/sessions/{theirs.id}/end", data={}).status_code == 404
    assert client.post("/account/sessions/99999999999/end", data={}).status_code == 404
    assert session_count(bob.id) == 1


def test_ending_a_session_is_a_post_behind_csrf(
    app: Flask, client: FlaskClient, auth: AuthActions, me: User
) -> None:
    AuthActions(app.test_client()).login(me)
    auth.login(me)
    other = records(me)[-1]
    assert client.get(f"/account/sessions/{other.id}/end").status_code == 405
    assert client.post(f"/account/sessions/{other.id}/end", data={}, csrf=False).status_code == 400
    assert session_count(me.id) == 2


def test_last_active_is_written_at_most_once_a_minute(
    client: FlaskClient, auth: AuthActions, me: User, count_queries: QueryCounter
) -> None:
    auth.login(me)
    (record,) = records(me)
    with count_queries() as statements:
        assert client.get("/account/").status_code == 200
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]

    earlier = utcnow() - timedelta(minutes=5)
    record.last_active_at = earlier
    db.session.commit()
    with count_queries() as statements:
        assert client.get("/account/").status_code == 200
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1 and "user_sessions" in updates[0]
    (record,) = records(me)
    assert record.last_active_at > earlier + timedelta(minutes=4)


def test_the_sessions_page_runs_a_fixed_number_of_statements(
    app: Flask, client: FlaskClient, auth: AuthActions, me: User, count_queries: QueryCounter
) -> None:
    auth.login(me)
    counts = []
    for _ in range(2):
        for _ in range(5):
            AuthActions(app.test_client()).login(me)
        with count_queries() as statements:
            assert client.get("/account/sessions").status_code == 200
        counts.append(len(statements))
    assert counts == [2, 2]  # me with this session, my sessions


def test_a_deactivated_users_sessions_end(
    app: Flask, client: FlaskClient, auth: AuthActions, admin_user: User, me: User
) -> None:
    theirs = app.test_client()
    AuthActions(theirs).login(me)
    auth.login(admin_user)
    client.post(f"/admin/users/{me.id}", data={"email": me.email, "username": me.username})
    assert session_count(me.id) == 0
    assert not is_signed_in(theirs)


# -- An admin sees and ends a user's sessions -----------------------------------------------------


def test_an_admin_sees_a_users_sessions_and_ends_one(
    app: Flask, client: FlaskClient, auth: AuthActions, admin_user: User, me: User
) -> None:
    laptop, phone = app.test_client(), app.test_client()
    AuthActions(laptop).login(me, user_agent=FIREFOX_WINDOWS)
    AuthActions(phone).login(me, user_agent=SAFARI_IPHONE)
    auth.login(admin_user)
    page = text(client.get(f"/admin/users/{me.id}"))
    assert "Firefox on Windows" in page and "Safari on iPhone" in page
    assert "This browser" not in page  # none of them is the admin's

    phone_record = next(r for r in records(me) if r.user_agent == SAFARI_IPHONE)
    response = client.post(f"/admin/users/{me.id}/sessions/{phone_record.id}/end", data={})
    assert redirect_target(response) == f"/admin/users/{me.id}"
    assert not is_signed_in(phone) and is_signed_in(laptop)
    (event,) = events("admin.user.session_ended")
    assert event.actor_id == admin_user.id and event.target_id == me.id


def test_an_admin_ends_all_of_a_users_sessions(
    app: Flask, client: FlaskClient, auth: AuthActions, admin_user: User, me: User
) -> None:
    laptop, phone = app.test_client(), app.test_client()
    AuthActions(laptop).login(me)
    AuthActions(phone).login(me)
    auth.login(admin_user)
    response = client.post(f"/admin/users/{me.id}/sessions/end", data={})
    assert redirect_target(response) == f"/admin/users/{me.id}"
    assert not is_signed_in(laptop) and not is_signed_in(phone)
    (event,) = events("admin.user.sessions_ended")
    assert event.after == {"sessions_ended": 2}
    assert is_signed_in(client)


def test_an_admin_ending_their_own_sessions_stays_signed_in_here(
    app: Flask, client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    elsewhere = app.test_client()
    AuthActions(elsewhere).login(admin_user)
    auth.login(admin_user)
    client.post(f"/admin/users/{admin_user.id}/sessions/end", data={})
    assert is_signed_in(client) and not is_signed_in(elsewhere)


def test_an_admin_cannot_end_a_session_of_someone_else_through_a_user(
    app: Flask, client: FlaskClient, auth: AuthActions, admin_user: User, me: User
) -> None:
    bob = UserFactory(username="bob")
    AuthActions(app.test_client()).login(bob)
    auth.login(admin_user)
    (bobs,) = records(bob)
    assert client.post(f"/admin/users/{me.id}/sessions/{bobs.id}/end", data={}).status_code == 404
    assert session_count(bob.id) == 1


# -- Records of browsers closed without signing out ------------------------------------------------


def test_sessions_prune_erases_only_records_no_cookie_can_name(
    app: Flask, runner: FlaskCliRunner, me: User
) -> None:
    browsers = [app.test_client() for _ in range(3)]
    for browser in browsers:
        AuthActions(browser).login(me)
    abandoned, yearly, monthly = sorted(records(me), key=lambda r: r.id)
    longest = app.config["REMEMBER_COOKIE_DURATION"]
    abandoned.last_active_at = utcnow() - longest - timedelta(days=1)
    yearly.last_active_at = utcnow() - longest + timedelta(days=1)
    monthly.last_active_at = utcnow() - timedelta(days=10)
    db.session.commit()
    yearly_id, monthly_id = yearly.id, monthly.id

    result = runner.invoke(args=["sessions", "prune"])
    assert result.exit_code == 0, result.output
    assert "Erased 1 session record(s) idle for more than 365 days." in result.output
    assert {r.id for r in records(me)} == {yearly_id, monthly_id}
    assert not is_signed_in(browsers[0])  # (asking the others would make them active now)
    (event,) = events("sessions.prune")
    assert event.after == {"idle_days": 365, "erased": 1}

    result = runner.invoke(args=["sessions", "prune", "--days", "30"])
    assert "Erased 1 session record(s) idle for more than 30 days." in result.output
    assert {r.id for r in records(me)} == {monthly_id}
    assert [is_signed_in(b) for b in browsers] == [False, False, True]
    assert runner.invoke(args=["sessions", "prune", "--days", "0"]).exit_code == 2
