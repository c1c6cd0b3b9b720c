"""Who is signed in: Flask-Login's wiring, and the session-version check of its cookie."""

from __future__ import annotations

from flask import Flask, abort
from flask_login import current_user

from webapp.extensions import db, login_manager
from webapp.models import User
from webapp.repositories import UserRepository

USER_ID_MAX = 2_147_483_647


def load_user(token: str) -> User | None:
    """The user a session cookie names, if that session is still valid.

    The cookie holds ``"<id>:<session version>"``. Bumping a user's version (sign-out,
    password change, deactivation) makes every older cookie name no one. The user is the
    session's ``User`` row on every request, so a view that changes the signed-in user gets
    the same object back from ``UserRepository.get`` without another query.
    """
    user_id, _, version = token.partition(":")
    if not (is_number(user_id) and is_number(version)) or int(user_id) > USER_ID_MAX:
        return None
    user = UserRepository(db.session).get(int(user_id))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def is_number(text: str) -> bool:
    """ASCII digits only, and not too many of them (``"²".isdigit()`` is true)."""
    return text.isascii() and text.isdigit() and len(text) <= 10


def signed_in_row() -> User:
    """The signed-in user's row, for a view that changes it or records it as the actor.

    ``load_user`` put it in this request's session, so ``UserRepository.get`` finds it there
    without a query. Call it only where a user is signed in.
    """
    user = UserRepository(db.session).get(current_user.id)
    if user is None:  # deleted since the cookie was read
        abort(login_manager.unauthorized())
    return user


def configure_login(app: Flask) -> None:
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    # A session whose cookie was taken elsewhere keeps working only while its version holds.
    login_manager.session_protection = "basic"
