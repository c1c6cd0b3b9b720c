"""Helpers for the account tests: reading pages, signing in, snapshots of what is stored."""

from __future__ import annotations

import html
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tests.factories import PASSWORD
from webapp.extensions import db
from webapp.models import User
from webapp.repositories import SessionRepository

NEW_PASSWORD = "a-brand-new-passphrase"
FIELD_ERROR = re.compile(r'<p class="field-error" id="([\w-]+)-error">(.*?)</p>', re.S)
FLASH = re.compile(r'<p class="flash flash-(\w+)">(.*?)</p>', re.S)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def field_errors(page: str) -> dict[str, str]:
    """The error shown beside each field, by field id."""
    return {name: html.unescape(message.strip()) for name, message in FIELD_ERROR.findall(page)}


def flashes(page: str) -> list[str]:
    return [html.unescape(message.strip()) for _, message in FLASH.findall(page)]


def sign_in(
    client: FlaskClient, login: str, password: str = PASSWORD, **extra: Any
) -> TestResponse:
    return client.post("/auth/login", data={"login": login, "password": password, **extra})


def register(client: FlaskClient, **values: str) -> TestResponse:
    data = {
        "email": "new.person@example.com",
        "username": "NewPerson",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
        **values,
    }
    return client.post("/auth/register", data=data)


def session_user(client: FlaskClient) -> int | None:
    """The id of the user whose live session record this client's session cookie names."""
    with client.session_transaction() as session:
        value = session.get("_user_id")
    if value is None:
        return None
    user_id, _, key = str(value).partition(":")
    found = SessionRepository(db.session).signed_in(int(user_id), key)
    return found[0].id if found is not None else None


def is_signed_in(client: FlaskClient) -> bool:
    """Asks the site itself: only a live session shows the sign-out button."""
    return "Sign out</button>" in text(client.get("/"))


def users_snapshot() -> list[tuple[Any, ...]]:
    """Every stored account, as the fields a form could change."""
    db.session.expire_all()
    rows = db.session.scalars(select(User).order_by(User.id))
    return [
        (u.id, u.email, u.username, u.hashed_password, u.session_version, u.email_confirmed_at)
        for u in rows
    ]


def reload(user: User) -> User:
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    assert fresh is not None
    return fresh
