"""Who is signed in: Flask-Login's user loader and the session-version check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Flask, abort
from flask_login import current_user
from sqlalchemy import bindparam, select

from webapp.db.session import is_read_request
from webapp.extensions import db, login_manager
from webapp.models import User
from webapp.models.user import SignInIdentity


@dataclass(frozen=True, slots=True)
class SignedInUser(SignInIdentity):
    """The signed-in user of a read request: the user's row as plain values, not an ORM object.

    Reading a page needs the name, the flags and the session version; building an ORM
    ``User`` for that (instance state, identity map) costs about as much again as the query
    itself, on every signed-in page. Code that changes the user, or reaches its relations,
    takes ``current_user_row()``. Write requests load the ORM ``User`` from the start.
    """

    id: int
    email: str
    username: str
    is_active: bool
    is_admin: bool
    created_at: datetime
    email_confirmed_at: datetime | None
    session_version: int
    last_login_at: datetime | None
    last_login_ip: str | None


# Built once: every signed-in request runs one of them, and building a statement (and its
# cache key) costs more than ``Session.get`` saves by looking in an identity map that is
# always empty.
USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
SIGNED_IN_USER_BY_ID = select(
    *(getattr(User, name) for name in SignedInUser.__dataclass_fields__)
).where(User.id == bindparam("user_id"))


def load_user(token: str) -> User | SignedInUser | None:
    """The user a session cookie names, if that session is still valid.

    The cookie holds ``"<id>:<session version>"``. Bumping a user's version (sign-out,
    password change, deactivation) makes every older cookie name no one.
    """
    user_id, _, version = token.partition(":")
    if not (user_id.isdigit() and version.isdigit()) or len(user_id) > 10:
        return None
    user: User | SignedInUser | None
    if is_read_request():
        row = db.session.connection().execute(SIGNED_IN_USER_BY_ID, {"user_id": int(user_id)})
        values = row.one_or_none()
        user = None if values is None else SignedInUser(*values)
    else:
        user = db.session.execute(USER_BY_ID, {"user_id": int(user_id)}).scalar_one_or_none()
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def current_user_row() -> User:
    """The signed-in user as an ORM ``User``: for code that changes it or follows its relations.

    A write request has it already; a read request looks it up (one more query). Call it only
    where a user is signed in.
    """
    user = current_user._get_current_object()
    if isinstance(user, User):
        return user
    found = db.session.get(User, user.id)
    if found is None:  # deleted since this request began
        abort(login_manager.unauthorized())
    return found


def configure_login(app: Flask) -> None:
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    # A session whose cookie was taken elsewhere keeps working only while its version holds.
    login_manager.session_protection = "basic"
