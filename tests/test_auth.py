from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.factories import PASSWORD, UserFactory
from tests.helpers import AuthActions
from webapp.extensions import db
from webapp.models import AuditEvent, User
from webapp.web import is_safe_next


def sign_in(client: FlaskClient, login: str, password: str = PASSWORD, **extra: str):
    return client.post("/auth/login", data={"login": login, "password": password, **extra})


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
    assert response.status_code == 200
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
    assert response.status_code == 200
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
        assert session["_user_id"] == user.get_id()


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


def test_deactivation_ends_open_sessions(
    client: FlaskClient, auth: AuthActions, user: User
) -> None:
    auth.login(user)
    assert "Sign out" in client.get("/").get_data(as_text=True)
    user.is_active = False
    db.session.commit()
    assert "Sign out" not in client.get("/").get_data(as_text=True)


def test_an_old_hash_is_upgraded_at_sign_in(client: FlaskClient) -> None:
    old = UserFactory(
        username="legacy", hashed_password=generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    )
    assert sign_in(client, "legacy").status_code == 302
    db.session.expire_all()
    upgraded = db.session.get(User, old.id)
    assert upgraded is not None
    assert upgraded.hashed_password.startswith("scrypt:131072:8:1$")
    assert upgraded.check_password(PASSWORD)


def test_a_malformed_stored_hash_fails_that_sign_in_cleanly(client: FlaskClient) -> None:
    UserFactory(username="broken", hashed_password="$$$garbage")
    response = sign_in(client, "broken")
    assert response.status_code == 200
    assert "do not match an active account" in response.get_data(as_text=True)


def test_signed_in_users_visiting_login_go_on(
    client: FlaskClient, auth: AuthActions, user: User
) -> None:
    auth.login(user)
    assert client.get("/auth/login").status_code == 302
