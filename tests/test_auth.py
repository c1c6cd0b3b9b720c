"""Signing in and out, registration, forgotten passwords, email confirmation, rate limits."""

from __future__ import annotations

import statistics
import time
from types import SimpleNamespace
from typing import Any

import itsdangerous.timed
import pytest
from flask import Flask, g, template_rendered
from flask.testing import FlaskClient
from jinja2 import Template
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

import webapp.auth.services
import webapp.models.user
from tests.account_helpers import (
    NEW_PASSWORD,
    field_errors,
    flashes,
    is_signed_in,
    register,
    reload,
    session_user,
    sign_in,
    text,
)
from tests.conftest import Mailbox
from tests.factories import PASSWORD, UserFactory
from tests.helpers import AuthActions, csrf_token_from
from webapp.auth.forms import TAKEN
from webapp.auth.tokens import make_confirm_token, make_reset_token
from webapp.auth.views import CONFIRM_LINK_INVALID, LOGIN_FAILED, RESET_LINK_INVALID, RESET_SENT
from webapp.extensions import db
from webapp.models import AuditEvent, User
from webapp.models.user import PASSWORD_METHOD
from webapp.repositories import SessionRepository, UserRepository
from webapp.web.requests import is_safe_next


@pytest.fixture
def app_config(mailbox: Mailbox) -> dict[str, Any]:
    """Every test here sends its mail to a real local SMTP server."""
    return mailbox.config


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


@pytest.mark.parametrize("login", ["alice", "ALICE", "alice@example.com", "Alice@Example.com"])
def test_sign_in_with_username_or_email(client: FlaskClient, user: User, login: str) -> None:
    response = sign_in(client, login)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "alice" in page
    assert "Sign out" in page
    db.session.expire_all()
    assert db.session.get(User, user.id).last_login_at is not None  # type: ignore[union-attr]
    assert db.session.get(User, user.id).last_login_ip == "127.0.0.1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("login", "password"),
    [("alice", "wrong password"), ("nobody", PASSWORD), ("nobody@example.com", "whatever-it-is")],
)
def test_failed_sign_in_says_the_same_thing_beside_the_form(
    client: FlaskClient, user: User, login: str, password: str
) -> None:
    response = sign_in(client, login, password)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "do not match an active account" in html
    assert 'class="field-error"' in html
    assert f'value="{login}"' in html  # the login is kept, the password is not
    assert password not in html
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login_failed"))
    assert [e.after for e in events] == [{"login": login}]


def test_inactive_accounts_cannot_sign_in(client: FlaskClient) -> None:
    UserFactory(username="sleeper", is_active=False)
    response = sign_in(client, "sleeper")
    assert response.status_code == 422
    assert "do not match an active account" in response.get_data(as_text=True)


def test_sign_in_needs_a_csrf_token(client: FlaskClient, user: User) -> None:
    response = client.post("/auth/login", data={"login": "alice", "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert "Bad request" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/items/?page=2", "/items/?page=2"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/ok\r\nSet-Cookie: x=y", "/"),
        ("", "/"),
    ],
)
def test_next_is_followed_only_on_this_site(
    client: FlaskClient, user: User, target: str, expected: str
) -> None:
    response = sign_in(client, "alice", next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


@pytest.mark.parametrize("target", ["/a", "/a/b?c=d#e"])
def test_safe_next_accepts_local_paths(target: str) -> None:
    assert is_safe_next(target)


def test_sign_in_starts_a_new_session(client: FlaskClient, user: User) -> None:
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    sign_in(client, "alice")
    with client.session_transaction() as session:
        assert "planted" not in session
    assert session_user(client) == user.id


def test_sign_out_is_a_post_and_ends_copied_cookies(app: Flask, user: User) -> None:
    first = app.test_client()
    sign_in(first, "alice")
    copied = app.test_client()
    with first.session_transaction() as session:
        stolen = dict(session)
    with copied.session_transaction() as session:
        session.update(stolen)
    assert "Sign out" in copied.get("/").get_data(as_text=True)

    assert first.get("/auth/logout").status_code == 405
    response = first.post("/auth/logout", data={})
    assert response.status_code == 302
    assert "Sign out" not in first.get("/").get_data(as_text=True)
    assert "Sign out" not in copied.get("/").get_data(as_text=True)


def nav_of(page: str) -> str:
    return page.split('<nav class="site-nav"', 1)[1].split("</nav>", 1)[0]


def test_the_navigation_is_each_visitors_own(app: Flask, user: User, admin_user: User) -> None:
    """Every visitor sees their own name, tabs and current page, and a sign-out form for their
    own session, whoever asked for the same page before."""
    admin, member, visitor = app.test_client(), app.test_client(), app.test_client()
    sign_in(admin, "root")
    sign_in(member, "alice")
    for _round in range(2):
        for path, current in (("/posts/", "Posts"), ("/tags/", "Tags")):
            mine = f'aria-current="page">{current}</a>'
            admin_nav, member_nav = nav_of(text(admin.get(path))), nav_of(text(member.get(path)))
            visitor_nav = nav_of(text(visitor.get(path)))
            assert '<span class="nav-user">root</span>' in admin_nav and ">Admin</a>" in admin_nav
            assert '<span class="nav-user">alice</span>' in member_nav
            assert ">Admin</a>" not in member_nav and "root" not in member_nav
            assert "nav-user" not in visitor_nav and ">Sign in</a>" in visitor_nav
            assert all(mine in nav for nav in (admin_nav, member_nav, visitor_nav))
            assert all(nav.count("aria-current") == 1 for nav in (admin_nav, member_nav))
    token = csrf_token_from(nav_of(text(member.get("/"))))
    response = member.post("/auth/logout", data={"csrf_token": token}, csrf=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert not is_signed_in(member) and is_signed_in(admin)


def test_every_request_sees_the_signed_in_user_as_its_user_row(app: Flask, user: User) -> None:
    """One type for the signed-in user: the ``User`` row, on a read as on a write."""
    client = app.test_client()
    sign_in(client, "alice")
    seen: list[Any] = []

    def record(_sender: Flask, template: Template, **_extra: object) -> None:
        seen.append(g._login_user)

    template_rendered.connect(record, app)
    try:
        assert "alice" in text(client.get("/items/"))
        client.post("/items/new", data={"title": ""})  # refused: the form again
    finally:
        template_rendered.disconnect(record, app)
    reading, writing = seen[0], seen[-1]
    assert type(reading) is User and type(writing) is User
    assert reading.id == writing.id == user.id
    assert reading.get_id() == writing.get_id() != f"{user.id}:"  # one session's key


def test_a_deleted_user_is_signed_out_on_the_next_request(
    app: Flask, client: FlaskClient, user: User
) -> None:
    sign_in(client, "alice")
    with app.app_context():
        UserRepository(db.session).delete(db.session.get(User, user.id))
        db.session.commit()
    response = client.get("/account/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")


def test_the_sign_out_form_carries_a_token_that_signs_the_user_out(
    app: Flask, user: User, admin_user: User
) -> None:
    """Each session has its own CSRF token (Flask-WTF's, one per session), and it works."""
    first, other = app.test_client(), app.test_client()
    sign_in(first, "alice")
    sign_in(other, "root")

    def token(client: FlaskClient) -> str:
        return csrf_token_from(nav_of(text(client.get("/"))))

    mine = token(first)
    assert token(other) != mine
    response = first.post("/auth/logout", data={"csrf_token": mine}, csrf=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert not is_signed_in(first)


def test_sessions_follow_a_rotated_secret_key(app: Flask, client: FlaskClient, user: User) -> None:
    """Cookies signed with the previous key stay valid while it is a fallback, not after."""
    old = app.secret_key
    sign_in(client, "alice")
    assert is_signed_in(client)
    app.secret_key = "a-new-secret-key-for-this-test-0123456789"
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    assert is_signed_in(client)
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert not is_signed_in(client)


def test_deactivation_ends_open_sessions(
    client: FlaskClient, auth: AuthActions, user: User
) -> None:
    auth.login(user)
    assert "Sign out" in client.get("/").get_data(as_text=True)
    user.is_active = False
    db.session.commit()
    assert "Sign out" not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    "old_method", ["pbkdf2:sha256:1000", "pbkdf2:sha256:600000", "scrypt:16384:8:1"]
)
def test_an_old_hash_is_upgraded_at_sign_in(client: FlaskClient, old_method: str) -> None:
    old = UserFactory(
        username="legacy", hashed_password=generate_password_hash(PASSWORD, old_method)
    )
    assert sign_in(client, "legacy").status_code == 302
    upgraded = reload(old)
    assert upgraded.hashed_password.startswith("scrypt:131072:8:1$")
    assert upgraded.check_password(PASSWORD)


def test_a_current_hash_is_left_alone_at_sign_in(client: FlaskClient, user: User) -> None:
    stored = user.hashed_password
    assert sign_in(client, "alice").status_code == 302
    assert reload(user).hashed_password == stored


@pytest.mark.parametrize(
    "stored", ["$$$garbage", "", "scrypt:131072:8:1$salt", "scrypt:x:y:z$salt$00", "plain-text"]
)
def test_a_malformed_stored_hash_fails_that_sign_in_cleanly(
    client: FlaskClient, stored: str
) -> None:
    UserFactory(username="broken", hashed_password=stored)
    response = sign_in(client, "broken")
    assert response.status_code == 422
    assert "do not match an active account" in response.get_data(as_text=True)
    assert session_user(client) is None


def test_password_hashing_meets_owasp_guidance() -> None:
    name, n, r, p = PASSWORD_METHOD.split(":")
    assert name == "scrypt"
    assert int(n) >= 2**17
    assert (int(r), int(p)) == (8, 1)
    stored = generate_password_hash(PASSWORD, method=PASSWORD_METHOD)
    assert stored.startswith("scrypt:131072:8:1$")
    assert check_password_hash(stored, PASSWORD)


def test_signed_in_users_visiting_login_go_on(
    client: FlaskClient, auth: AuthActions, user: User
) -> None:
    auth.login(user)
    assert client.get("/auth/login").status_code == 302


def test_sign_in_follows_next_from_the_query_string(client: FlaskClient, user: User) -> None:
    page = text(client.get("/auth/login?next=/account/password"))
    assert 'name="next" type="hidden" value="/account/password"' in page
    response = sign_in(client, "alice", next="/account/password")
    assert response.headers["Location"] == "/account/password"


def test_an_account_page_sends_anonymous_visitors_to_sign_in_and_back(
    client: FlaskClient, user: User
) -> None:
    response = client.get("/account/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=%2Faccount%2F"
    assert sign_in(client, "alice", next="/account/").headers["Location"] == "/account/"


# -- Sessions: cookies, renewal, remember me -------------------------------------------------


def set_cookie(response: Any, name: str) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    return str(header)


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient, user: User) -> None:
    cookie = set_cookie(sign_in(client, "alice"), "session")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in development and tests
    assert not [h for h in client.get("/").headers.getlist("Set-Cookie") if "remember" in h]


PRODUCTION = {"ENV": "production", "SITE_URL": "https://localhost", "TRUSTED_HOSTS": ["localhost"]}


@pytest.mark.parametrize("app_config", [PRODUCTION])
def test_production_cookies_are_secure(client: FlaskClient, user: User) -> None:
    response = sign_in(client, "alice", remember="y")
    for name in ("session", "remember_token"):
        cookie = set_cookie(response, name)
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie


def test_sign_in_issues_a_new_csrf_token_and_drops_the_old_one(
    client: FlaskClient, user: User
) -> None:
    from itsdangerous import URLSafeTimedSerializer

    client.get("/auth/login")
    with client.session_transaction() as session:
        before = session["csrf_token"]
    sign_in(client, "alice")
    # The test's app context outlives requests; a real request would not have this cached.
    g.pop("csrf_token", None)
    client.get("/")  # a page with a form makes the new token
    with client.session_transaction() as session:
        after = session["csrf_token"]
    assert after != before
    serializer = URLSafeTimedSerializer(client.application.secret_key, salt="wtf-csrf-token")
    old_token = serializer.dumps(before)
    response = client.post("/auth/logout", data={"csrf_token": old_token})
    assert response.status_code == 400
    assert is_signed_in(client)


def test_remember_me_survives_the_browser_closing_until_sign_out(app: Flask, user: User) -> None:
    browser = app.test_client()
    cookie = set_cookie(sign_in(browser, "alice", remember="y"), "remember_token")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    remember = browser.get_cookie("remember_token")
    assert remember is not None

    reopened = app.test_client()  # the session cookie went with the browser; this one stays
    reopened.set_cookie("remember_token", remember.value)
    assert is_signed_in(reopened)

    browser.post("/auth/logout", data={})
    copied = app.test_client()
    copied.set_cookie("remember_token", remember.value)
    assert not is_signed_in(copied)
    assert not is_signed_in(reopened)


def test_logout_needs_a_csrf_token(client: FlaskClient, auth: AuthActions, user: User) -> None:
    auth.login(user)
    assert client.post("/auth/logout", data={}, csrf=False).status_code == 400
    assert is_signed_in(client)
    assert len(SessionRepository(db.session).of_user(user.id)) == 1


# -- No user enumeration: same words, same work ----------------------------------------------


@pytest.mark.parametrize(
    ("login", "password"),
    [("nobody", PASSWORD), ("alice", "wrong password"), ("sleeper", PASSWORD)],
    ids=["unknown", "wrong-password", "inactive"],
)
def test_every_failed_sign_in_checks_one_full_cost_hash(
    client: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch, login: str, password: str
) -> None:
    UserFactory(username="sleeper", is_active=False)
    checked: list[str] = []

    def spy(stored: str, given: str) -> bool:
        checked.append(stored.split("$", 1)[0])
        return check_password_hash(stored, given)

    monkeypatch.setattr(webapp.auth.services, "check_password_hash", spy)
    monkeypatch.setattr(webapp.models.user, "check_password_hash", spy)
    response = sign_in(client, login, password)
    assert field_errors(text(response)) == {"password": LOGIN_FAILED}
    assert checked == [PASSWORD_METHOD]


def test_unknown_accounts_take_as_long_as_wrong_passwords(client: FlaskClient, user: User) -> None:
    def duration(login: str) -> float:
        start = time.perf_counter()
        assert sign_in(client, login, "wrong password").status_code == 422
        return time.perf_counter() - start

    known = statistics.median(duration("alice") for _ in range(3))
    unknown = statistics.median(duration("nobody@example.com") for _ in range(3))
    # Without the stand-in hash an unknown account answers about fifty times faster; the wide
    # band leaves room for a busy machine.
    assert 1 / 3 < unknown / known < 3


# -- Registration ----------------------------------------------------------------------------


def test_register_creates_a_signed_in_unconfirmed_account(
    client: FlaskClient, mailbox: Mailbox
) -> None:
    response = register(client, email="New.Person@Example.COM")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/"
    user = UserRepository(db.session).get_by_username("newperson")
    assert user is not None
    assert user.email == "new.person@example.com"
    assert user.username == "NewPerson"
    assert user.hashed_password.startswith(PASSWORD_METHOD + "$")
    assert NEW_PASSWORD not in user.hashed_password
    assert user.check_password(NEW_PASSWORD)
    assert user.is_active
    assert not user.is_admin
    assert user.email_confirmed_at is None
    assert session_user(client) == user.id
    page = text(client.get("/account/"))
    assert "Welcome, NewPerson!" in page
    assert "Please confirm your email address" in page
    message = mailbox.last("new.person@example.com")
    assert message["Subject"] == "Confirm your email address"
    assert "auth.registered" in audit_actions()


def test_register_renews_the_session(client: FlaskClient) -> None:
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    register(client)
    with client.session_transaction() as session:
        assert "planted" not in session


def test_register_honours_a_safe_next(client: FlaskClient) -> None:
    assert register(client, next="/users/NewPerson").headers["Location"] == "/users/NewPerson"
    client.post("/auth/logout", data={})
    other = register(client, email="b@example.com", username="other", next="//evil.example")
    assert other.headers["Location"] == "/account/"


def test_signed_in_users_visiting_register_go_to_their_account(
    client: FlaskClient, auth: AuthActions, user: User
) -> None:
    auth.login(user)
    assert client.get("/auth/register").headers["Location"] == "/account/"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"email": ""}, "email", "This field is required."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address"),
        ({"email": "person@localhost"}, "email", "Enter a valid email address"),
        ({"email": "a" * 250 + "@example.com"}, "email", "longer than 255 characters"),
        ({"username": "ab"}, "username", "Use 3 to 50 characters"),
        ({"username": "x" * 51}, "username", "longer than 50 characters"),
        ({"username": "two words"}, "username", "Use 3 to 50 characters"),
        ({"username": "slash/name"}, "username", "Use 3 to 50 characters"),
        ({"username": "émile"}, "username", "Use 3 to 50 characters"),
        ({"password": "short-pw1", "confirm": "short-pw1"}, "password", "at least 10"),
        ({"password": "p" * 129, "confirm": "p" * 129}, "password", "at most 128"),
        ({"password": "12345678901234", "confirm": "12345678901234"}, "password", "digits"),
        (
            {"password": "NEW.PERSON@example.com", "confirm": "NEW.PERSON@example.com"},
            "password",
            "must differ from your email and username",
        ),
        (
            {
                "username": "LongUsername12",
                "password": "longusername12",
                "confirm": "longusername12",
            },
            "password",
            "must differ from your email and username",
        ),
        ({"confirm": "something-else-entirely"}, "confirm", "The two passwords differ."),
    ],
)
def test_register_refuses_what_breaks_a_rule(
    client: FlaskClient, mailbox: Mailbox, values: dict[str, str], field: str, message: str
) -> None:
    response = register(client, **values)
    assert response.status_code == 422
    page = text(response)
    errors = field_errors(page)
    assert list(errors) == [field]
    assert message in errors[field]
    assert user_count() == 0
    assert session_user(client) is None
    assert mailbox.messages == []
    if field != "username":
        assert f'value="{values.get("username", "NewPerson")}"' in page  # what was typed is kept...
    assert NEW_PASSWORD not in page  # ...but never a password


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"email": "ALICE@example.com"}, {"email"}),
        ({"username": "ALICE"}, {"username"}),
        ({"email": "alice@example.com", "username": "Alice"}, {"email", "username"}),
    ],
)
def test_a_taken_email_or_username_is_an_error_beside_it(
    client: FlaskClient, user: User, values: dict[str, str], fields: set[str]
) -> None:
    response = register(client, **values)
    assert response.status_code == 422
    errors = field_errors(text(response))
    assert errors == {field: TAKEN[field] for field in fields}
    assert user_count() == 1


@pytest.mark.parametrize(
    ("values", "field"),
    [({"email": "alice@example.com"}, "email"), ({"username": "Alice"}, "username")],
)
def test_when_the_check_loses_a_race_the_database_decides(
    client: FlaskClient,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    values: dict[str, str],
    field: str,
) -> None:
    """Another request took the name after our check and before our insert: the unique
    constraint refuses the insert and the loser sees the form error, never a 500."""
    db.session.commit()  # alice is really there, as the other request would have left her
    monkeypatch.setattr(UserRepository, "email_taken", lambda *_a, **_k: False)
    monkeypatch.setattr(UserRepository, "username_taken", lambda *_a, **_k: False)
    response = register(client, **values)
    assert response.status_code == 422
    assert field_errors(text(response)) == {field: TAKEN[field]}
    assert user_count() == 1
    assert session_user(client) is None
    assert "auth.registered" not in audit_actions()


def test_an_unrelated_integrity_error_is_not_disguised(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UserRepository, "unique_field", lambda *_a: None)

    def collide(*_a: Any, **_k: Any) -> None:
        raise IntegrityError("INSERT", {}, Exception("CHECK constraint failed: something"))

    monkeypatch.setattr(webapp.auth.services, "register", collide)
    with pytest.raises(IntegrityError):
        register(client)


# -- Forgotten password ----------------------------------------------------------------------


def test_forgot_answers_the_same_whether_or_not_the_account_exists(
    client: FlaskClient, user: User, mailbox: Mailbox
) -> None:
    UserFactory(email="sleeper@example.com", is_active=False)
    answers = []
    for email in ("Alice@Example.com", "nobody@example.com", "sleeper@example.com"):
        response = client.post("/auth/forgot", data={"email": email})
        assert response.status_code == 302
        assert response.headers["Location"] == "/auth/login"
        answers.append(flashes(text(client.get("/auth/login"))))
    assert answers[0] == answers[1] == answers[2] == [RESET_SENT]
    # Each address gets one message (the same writes either way): only the account's has a
    # reset link; the others say that no active account uses the address.
    assert [m["To"] for m in mailbox.messages] == [
        "alice@example.com",
        "nobody@example.com",
        "sleeper@example.com",
    ]
    assert "/auth/reset/" in mailbox.link("alice@example.com")
    for address in ("nobody@example.com", "sleeper@example.com"):
        assert mailbox.link(address) == "/auth/forgot"
        assert "There is no active account with this address" in mailbox.body(address)


def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
    app: Flask, client: FlaskClient, auth: AuthActions, user: User, mailbox: Mailbox
) -> None:
    elsewhere = app.test_client()
    AuthActions(elsewhere).login(user)
    assert is_signed_in(elsewhere)

    client.post("/auth/forgot", data={"email": "alice@example.com"})
    message = mailbox.last("alice@example.com")
    assert message["Subject"] == "Reset your password"
    assert "within 30 minutes" in mailbox.body("alice@example.com")
    link = mailbox.link("alice@example.com")
    assert link.startswith("/auth/reset/")

    form = client.get(link)
    assert form.status_code == 200
    assert "Set a new password" in text(form)
    assert form.headers["Referrer-Policy"] == "no-referrer"
    data = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    response = client.post(link, data=data)
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"

    fresh = reload(user)
    assert fresh.check_password(NEW_PASSWORD)
    assert fresh.email_confirmed_at is not None  # following the link proved the address
    assert not is_signed_in(elsewhere)
    assert "auth.password_reset" in audit_actions()
    assert mailbox.last("alice@example.com")["Subject"] == "Your password was changed"

    for method in (client.get, client.post):
        again = method(link, data=data)
        assert again.status_code == 302
        assert again.headers["Location"] == "/auth/forgot"
    assert RESET_LINK_INVALID in flashes(text(client.get("/auth/forgot")))
    assert reload(user).hashed_password == fresh.hashed_password
    assert sign_in(client, "alice", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(("minutes", "works"), [(29, True), (31, False)])
def test_a_reset_link_lasts_30_minutes(
    client: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch, minutes: int, works: bool
) -> None:
    token = make_reset_token(user)
    later = time.time() + minutes * 60
    monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: later))
    response = client.get(f"/auth/reset/{token}")
    assert (response.status_code == 200) is works


def test_reset_links_must_be_genuine(client: FlaskClient, user: User) -> None:
    token = make_reset_token(user)
    payload, _, signature = token.rpartition(".")
    forged = f"{payload}.{signature[::-1]}"
    for bad in (forged, make_confirm_token(user), "not-a-token"):
        response = client.get(f"/auth/reset/{bad}")
        assert response.status_code == 302
        assert response.headers["Location"] == "/auth/forgot"
    assert client.get(f"/auth/reset/{'a' * 600}").status_code == 404


def test_a_deactivated_account_cannot_use_its_reset_link(client: FlaskClient, user: User) -> None:
    token = make_reset_token(user)
    user.is_active = False
    db.session.flush()
    assert client.get(f"/auth/reset/{token}").headers["Location"] == "/auth/forgot"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"password": "alice@example.com", "confirm": "alice@example.com"}, "password", "differ"),
        ({"password": "short", "confirm": "short"}, "password", "at least 10"),
        ({"password": NEW_PASSWORD, "confirm": "typo"}, "confirm", "The two passwords differ."),
    ],
)
def test_a_new_password_from_a_reset_follows_the_rules(
    client: FlaskClient, user: User, values: dict[str, str], field: str, message: str
) -> None:
    stored = user.hashed_password
    response = client.post(f"/auth/reset/{make_reset_token(user)}", data=values)
    assert response.status_code == 422
    assert message in field_errors(text(response))[field]
    assert reload(user).hashed_password == stored


# -- Email confirmation ----------------------------------------------------------------------


def test_the_emailed_link_confirms_the_address(client: FlaskClient, mailbox: Mailbox) -> None:
    register(client)
    link = mailbox.link("new.person@example.com")
    assert link.startswith("/auth/confirm/")
    response = client.get(link)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/"
    user = UserRepository(db.session).get_by_email("new.person@example.com")
    assert user is not None
    assert user.email_confirmed_at is not None
    page = text(client.get("/account/"))
    assert "Thank you: new.person@example.com is confirmed." in flashes(page)
    assert "Please confirm your email address" not in page
    assert '<span class="badge yes">Confirmed</span>' in page
    assert "auth.email_confirmed" in audit_actions()

    again = client.get(link, follow_redirects=True)
    assert "new.person@example.com was already confirmed." in flashes(text(again))


def test_the_link_works_without_being_signed_in(
    client: FlaskClient, user: User, mailbox: Mailbox
) -> None:
    response = client.get(f"/auth/confirm/{make_confirm_token(user)}")
    assert response.headers["Location"] == "/auth/login"
    assert reload(user).email_confirmed_at is not None


def test_unconfirmed_users_sign_in_and_see_a_banner_that_resends_the_link(
    client: FlaskClient, user: User, mailbox: Mailbox
) -> None:
    assert user.email_confirmed_at is None
    assert sign_in(client, "alice").status_code == 302
    page = text(client.get("/users/alice"))
    assert "Please confirm your email address" in page
    assert "Send the link again" in page
    assert 'name="next" value="/users/alice"' in page

    response = client.post("/auth/confirm/resend", data={"next": "/users/alice"})
    assert response.headers["Location"] == "/users/alice"
    assert mailbox.last("alice@example.com")["Subject"] == "Confirm your email address"
    client.get(mailbox.link("alice@example.com"))
    assert reload(user).email_confirmed_at is not None
    assert "Please confirm your email address" not in text(client.get("/"))


def test_confirmed_users_see_no_banner_and_get_no_new_link(
    client: FlaskClient, auth: AuthActions, mailbox: Mailbox
) -> None:
    from webapp.models import utcnow

    auth.login(UserFactory(email_confirmed_at=utcnow()))
    assert "Please confirm your email address" not in text(client.get("/"))
    response = client.post("/auth/confirm/resend", data={}, follow_redirects=True)
    assert "Your email address is already confirmed." in flashes(text(response))
    assert mailbox.messages == []


def test_resending_needs_a_signed_in_user_and_a_csrf_token(
    client: FlaskClient, auth: AuthActions, user: User, mailbox: Mailbox
) -> None:
    assert (
        client.post("/auth/confirm/resend", data={}).headers["Location"].startswith("/auth/login")
    )
    auth.login(user)
    assert client.post("/auth/confirm/resend", data={}, csrf=False).status_code == 400
    assert mailbox.messages == []


def test_a_bad_confirmation_link_changes_nothing(client: FlaskClient, user: User) -> None:
    token = make_confirm_token(user)
    for bad in (token[:-3] + "xyz", make_reset_token(user)):
        response = client.get(f"/auth/confirm/{bad}", follow_redirects=True)
        assert CONFIRM_LINK_INVALID in flashes(text(response))
    assert reload(user).email_confirmed_at is None


def test_a_confirmation_link_for_an_old_address_no_longer_works(
    client: FlaskClient, user: User
) -> None:
    token = make_confirm_token(user)
    user.email = "alice@new.example.com"
    db.session.flush()
    client.get(f"/auth/confirm/{token}")
    assert reload(user).email_confirmed_at is None


# -- Rate limits -----------------------------------------------------------------------------

LIMITED: dict[str, Any] = {"RATELIMIT_ENABLED": True}


def post_from(client: FlaskClient, url: str, address: str, **data: str) -> Any:
    return client.post(url, data=data, environ_base={"REMOTE_ADDR": address})


def assert_limited(response: Any) -> None:
    assert response.status_code == 429
    page = text(response)
    assert "Too many requests" in page
    assert "You can try again in" in page
    assert " UTC." in page
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("app_config", [{**LIMITED, "RATELIMIT_LOGIN_ADDRESS": "3 per minute"}])
def test_sign_in_is_limited_per_client_address(client: FlaskClient) -> None:
    # No password: the form fails without hashing, and still counts.
    for n in range(3):
        assert post_from(client, "/auth/login", "10.0.0.1", login=f"user{n}").status_code == 422
    assert_limited(post_from(client, "/auth/login", "10.0.0.1", login="someone-else"))
    assert post_from(client, "/auth/login", "10.0.0.2", login="user0").status_code == 422
    assert client.get("/auth/login", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200


@pytest.mark.parametrize("app_config", [{**LIMITED, "RATELIMIT_LOGIN_ACCOUNT": "2 per minute"}])
def test_failed_sign_ins_are_limited_per_account_from_any_address(client: FlaskClient) -> None:
    assert post_from(client, "/auth/login", "10.0.0.1", login="alice").status_code == 422
    assert post_from(client, "/auth/login", "10.0.0.2", login=" ALICE ").status_code == 422
    assert_limited(post_from(client, "/auth/login", "10.0.0.3", login="Alice"))
    assert post_from(client, "/auth/login", "10.0.0.3", login="bob").status_code == 422


@pytest.mark.parametrize(
    "app_config", [{**LIMITED, "RATELIMIT_LOGIN_ACCOUNT_ADDRESS": "1 per minute"}]
)
def test_successful_sign_ins_do_not_use_up_the_account_limit(app: Flask, user: User) -> None:
    for _ in range(2):
        assert sign_in(app.test_client(), "alice").status_code == 302
    client = app.test_client()
    assert sign_in(client, "alice", "wrong password").status_code == 422
    assert_limited(sign_in(client, "alice"))


def sign_in_from(client: FlaskClient, address: str, login: str, password: str = PASSWORD) -> int:
    response = post_from(client, "/auth/login", address, login=login, password=password)
    return int(response.status_code)


ATTACKER, OWNER = "198.51.100.66", "203.0.113.7"


@pytest.mark.parametrize(
    "app_config", [{**LIMITED, "RATELIMIT_LOGIN_ACCOUNT_ADDRESS": "3 per minute"}]
)
def test_email_and_username_count_against_one_account(client: FlaskClient, user: User) -> None:
    """Five wrong passwords by email and five more by username are ten at one account."""
    assert sign_in_from(client, ATTACKER, "alice@example.com", "wrong password 1") == 422
    assert sign_in_from(client, ATTACKER, "ALICE", "wrong password 2") == 422
    assert sign_in_from(client, ATTACKER, " Alice@Example.com ", "wrong password 3") == 422
    assert sign_in_from(client, ATTACKER, "alice", "wrong password 4") == 429
    assert sign_in_from(client, ATTACKER, "alice@example.com", "wrong password 5") == 429


@pytest.mark.parametrize(
    "app_config", [{**LIMITED, "RATELIMIT_LOGIN_ACCOUNT_ADDRESS": "3 per minute"}]
)
def test_the_owner_gets_in_from_another_address_while_the_guesser_stays_held_back(
    app: Flask, user: User
) -> None:
    attacker, owner = app.test_client(), app.test_client()
    for n in range(3):
        assert sign_in_from(attacker, ATTACKER, "alice", f"guess {n}") == 422
    assert sign_in_from(attacker, ATTACKER, "alice") == 429  # even the right password, there

    assert sign_in_from(owner, OWNER, "alice@example.com") == 302
    assert session_user(owner) == user.id
    assert reload(user).last_login_ip == OWNER

    assert sign_in_from(attacker, ATTACKER, "alice", "guess 4") == 429
    assert sign_in_from(attacker, ATTACKER, "alice@example.com") == 429
    assert session_user(attacker) is None


@pytest.mark.parametrize("app_config", [{**LIMITED, "RATELIMIT_LOGIN_ACCOUNT": "3 per hour"}])
def test_guessing_from_many_addresses_is_capped_per_account_but_not_where_the_owner_signs_in(
    app: Flask, user: User
) -> None:
    assert sign_in_from(app.test_client(), OWNER, "alice") == 302  # the owner's usual address
    botnet = [f"192.0.2.{n}" for n in range(1, 6)]
    statuses = [sign_in_from(app.test_client(), a, "alice", "guess") for a in botnet]
    assert statuses == [422, 422, 422, 429, 429]
    assert sign_in_from(app.test_client(), "192.0.2.99", "alice") == 429  # a new address
    assert sign_in_from(app.test_client(), OWNER, "ALICE") == 302  # the usual one


@pytest.mark.parametrize(
    "app_config",
    [
        {
            **LIMITED,
            "RATELIMIT_LOGIN_ACCOUNT_ADDRESS": "2 per minute",
            "RATELIMIT_LOGIN_ACCOUNT": "3 per hour",
        }
    ],
)
def test_an_unknown_name_is_limited_exactly_like_an_account(
    client: FlaskClient, user: User
) -> None:
    def attempts(login: str) -> list[int]:
        first = [sign_in_from(client, ATTACKER, login, "guess") for _ in range(3)]
        return first + [sign_in_from(client, f"192.0.2.{n}", login, "guess") for n in range(3)]

    assert attempts("alice") == attempts("nobody") == [422, 422, 429, 422, 429, 429]


@pytest.mark.parametrize("app_config", [LIMITED])
@pytest.mark.parametrize("login", ["ali\x00ce", "x" * 10_000, "\ufffd", ""])
def test_a_hostile_name_is_refused_beside_the_field_with_the_limits_on(
    client: FlaskClient, user: User, login: str
) -> None:
    assert sign_in_from(client, ATTACKER, login) == 422


@pytest.mark.parametrize("app_config", [LIMITED])
def test_the_limits_and_the_sign_in_look_the_account_up_once(
    client: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    original = UserRepository.get_by_login

    def spy(self: UserRepository, identifier: str) -> User | None:
        looked_up.append(identifier)
        return original(self, identifier)

    monkeypatch.setattr(UserRepository, "get_by_login", spy)
    assert sign_in_from(client, ATTACKER, " Alice ", "wrong password") == 422
    assert sign_in_from(client, OWNER, "alice") == 302
    assert looked_up == ["alice", "alice"]  # once per request


@pytest.mark.parametrize(
    "app_config",
    [
        {
            **LIMITED,
            "RATELIMIT_REGISTER_ADDRESS": "2 per hour",
            "RATELIMIT_REGISTER_ACCOUNT": "2 per hour",
        }
    ],
)
def test_registration_is_limited_per_address_and_per_email(client: FlaskClient) -> None:
    for n in range(2):
        response = post_from(client, "/auth/register", "10.0.0.1", email=f"p{n}@example.com")
        assert response.status_code == 422  # no password: refused without hashing
    assert_limited(post_from(client, "/auth/register", "10.0.0.1", email="p9@example.com"))
    assert post_from(client, "/auth/register", "10.0.0.2", email="q@example.com").status_code == 422
    assert post_from(client, "/auth/register", "10.0.0.3", email="Q@example.com").status_code == 422
    assert_limited(post_from(client, "/auth/register", "10.0.0.4", email="q@example.com"))


@pytest.mark.parametrize(
    "app_config",
    [{**LIMITED, "RATELIMIT_RESET_ADDRESS": "2 per hour", "RATELIMIT_RESET_ACCOUNT": "2 per hour"}],
)
def test_reset_requests_are_limited_per_address_and_per_email(
    client: FlaskClient, user: User
) -> None:
    for n in range(2):
        response = post_from(client, "/auth/forgot", "10.0.0.1", email=f"p{n}@example.com")
        assert response.status_code == 302
    assert_limited(post_from(client, "/auth/forgot", "10.0.0.1", email="p9@example.com"))
    for address in ("10.0.0.2", "10.0.0.3"):
        assert (
            post_from(client, "/auth/forgot", address, email="alice@example.com").status_code == 302
        )
    assert_limited(post_from(client, "/auth/forgot", "10.0.0.4", email="ALICE@example.com"))


@pytest.mark.parametrize("app_config", [{**LIMITED, "RATELIMIT_LOGIN_ADDRESS": "1 per hour"}])
def test_the_429_page_says_when_to_retry(client: FlaskClient) -> None:
    post_from(client, "/auth/login", "10.0.0.1", login="x")
    response = post_from(client, "/auth/login", "10.0.0.1", login="x")
    assert_limited(response)
    seconds = int(response.headers["Retry-After"])
    assert 3500 < seconds <= 3601
    assert "You can try again in 60 minutes, at " in text(response)
    assert 'class="site-header"' in text(response)
