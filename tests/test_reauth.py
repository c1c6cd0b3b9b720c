"""What matters needs a recent sign-in; the page that asks for it carries the person on."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.account_helpers import NEW_PASSWORD, field_errors, text
from tests.factories import PASSWORD, UserFactory
from tests.helpers import AuthActions, redirect_target
from webapp.auth import two_factor
from webapp.extensions import db
from webapp.models import AuditEvent, User, utcnow
from webapp.repositories import SessionRepository


def go_stale(user: User, minutes: int = 11) -> None:
    """Every session of ``user`` last proved who it is ``minutes`` ago."""
    for record in SessionRepository(db.session).of_user(user.id):
        record.authenticated_at = utcnow() - timedelta(minutes=minutes)
    db.session.commit()


def input_value(page: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*value="([^"]*)"', page)
    return match.group(1) if match else None


@pytest.fixture
def me(app: Flask, auth: AuthActions) -> User:
    return auth.login(UserFactory(username="alice", email="alice@example.com"))


def test_a_page_that_matters_asks_again_then_opens(client: FlaskClient, me: User) -> None:
    go_stale(me)
    response = client.get("/account/password")
    assert redirect_target(response) == "/auth/reauthenticate?next=/account/password"
    page = text(client.get(redirect_target(response)))
    assert "Confirm it is you" in page and 'name="code"' not in page  # no two-factor here

    wrong = client.post(
        "/auth/reauthenticate", data={"password": "not it", "next": "/account/password"}
    )
    assert wrong.status_code == 422
    assert "not your current password" in field_errors(text(wrong))["password"]
    right = client.post(
        "/auth/reauthenticate", data={"password": PASSWORD, "next": "/account/password"}
    )
    assert redirect_target(right) == "/account/password"
    assert client.get("/account/password").status_code == 200
    assert db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "auth.reauthenticated")
    ).one()


def test_within_ten_minutes_nothing_is_asked(client: FlaskClient, me: User) -> None:
    go_stale(me, minutes=9)
    assert client.get("/account/password").status_code == 200


def test_a_stale_password_change_is_not_made_and_its_form_comes_back(
    client: FlaskClient, me: User
) -> None:
    go_stale(me)
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 200
    page = text(response)
    assert "Confirm it is you" in page
    assert NEW_PASSWORD not in page and PASSWORD not in page  # passwords are never carried
    assert db.session.get(User, me.id).check_password(PASSWORD)  # type: ignore[union-attr]


def test_an_email_change_carries_on_with_the_form_filled_in(client: FlaskClient, me: User) -> None:
    go_stale(me)
    response = client.post(
        "/account/edit",
        data={"email": "alice.new@example.com", "username": "alice2", "current_password": ""},
    )
    page = text(response)
    assert "Confirm it is you" in page
    assert input_value(page, "keep.email") == "alice.new@example.com"
    assert input_value(page, "keep.username") == "alice2"
    assert db.session.get(User, me.id).username == "alice"  # type: ignore[union-attr]

    done = client.post(
        "/auth/reauthenticate",
        data={
            "password": PASSWORD,
            "next": "/account/edit",
            "keep.email": "alice.new@example.com",
            "keep.username": "alice2",
        },
    )
    assert redirect_target(done) == "/account/edit"
    form = text(client.get("/account/edit"))
    assert input_value(form, "email") == "alice.new@example.com"
    assert input_value(form, "username") == "alice2"
    again = text(client.get("/account/edit"))  # kept once only
    assert input_value(again, "email") == "alice@example.com"


def test_a_username_change_alone_is_not_asked(client: FlaskClient, me: User) -> None:
    go_stale(me)
    response = client.post("/account/edit", data={"email": me.email, "username": "alice2"})
    assert redirect_target(response) == "/account/"
    assert db.session.get(User, me.id).username == "alice2"  # type: ignore[union-attr]


def test_deleting_the_account_asks_again(client: FlaskClient, me: User) -> None:
    go_stale(me)
    assert client.get("/account/delete").status_code == 302
    client.post("/account/delete", data={"password": PASSWORD})
    assert db.session.get(User, me.id) is not None


def test_two_factor_changes_ask_again_with_a_code_where_it_is_on(
    client: FlaskClient, me: User
) -> None:
    secret = two_factor.begin_setup(me)
    me.totp_enabled_at = utcnow()
    db.session.commit()
    go_stale(me)
    response = client.post("/account/two-factor/recovery-codes", data={})
    assert "Confirm it is you" in text(response)
    page = text(client.get("/auth/reauthenticate?next=/account/two-factor"))
    assert 'name="code"' in page

    no_code = client.post(
        "/auth/reauthenticate", data={"password": PASSWORD, "next": "/account/two-factor"}
    )
    assert "Enter a code" in field_errors(text(no_code))["code"]
    code = pyotp.TOTP(secret).now()
    done = client.post(
        "/auth/reauthenticate",
        data={"password": PASSWORD, "code": code, "next": "/account/two-factor"},
    )
    assert redirect_target(done) == "/account/two-factor"
    renewed = client.post("/account/two-factor/recovery-codes", data={})
    assert redirect_target(renewed).startswith("/account/two-factor/recovery-codes")


def test_an_unsafe_next_goes_to_my_account(client: FlaskClient, me: User) -> None:
    go_stale(me)
    response = client.post(
        "/auth/reauthenticate", data={"password": PASSWORD, "next": "https://evil.example/"}
    )
    assert redirect_target(response) == "/account/"


class TestAdmins:
    @pytest.fixture
    def me(self, app: Flask, auth: AuthActions) -> User:
        return auth.login(UserFactory(username="root", email="root@example.com", is_admin=True))

    def test_a_role_change_asks_again_but_other_edits_do_not(
        self, client: FlaskClient, me: User
    ) -> None:
        user = UserFactory(username="bob", email="bob@example.com")
        go_stale(me)
        edit = {"email": user.email, "username": "bobby", "is_active": "y"}
        assert redirect_target(client.post(f"/admin/users/{user.id}", data=edit))
        assert db.session.get(User, user.id).username == "bobby"  # type: ignore[union-attr]

        promote = {**edit, "is_admin": "y"}
        page = text(client.post(f"/admin/users/{user.id}", data=promote))
        assert "Confirm it is you" in page
        assert input_value(page, "keep.is_admin") == "y"
        assert db.session.get(User, user.id).is_admin is False  # type: ignore[union-attr]

    def test_deleting_a_user_asks_again(self, client: FlaskClient, me: User) -> None:
        user = UserFactory(username="bob", email="bob@example.com")
        go_stale(me)
        response = client.get(f"/admin/users/{user.id}/delete")
        assert (
            redirect_target(response) == f"/auth/reauthenticate?next=/admin/users/{user.id}/delete"
        )
        client.post(f"/admin/users/{user.id}/delete", data={})
        assert db.session.get(User, user.id) is not None
        bulk = client.post(
            "/admin/users/bulk", data={"bulk": "delete", "scope": "selected", "ids": str(user.id)}
        )
        assert "Confirm it is you" in text(bulk)
        assert db.session.get(User, user.id) is not None
