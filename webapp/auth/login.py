"""Who is signed in: Flask-Login's wiring, and the session-version check of its cookie."""

from __future__ import annotations

from flask import Flask, abort
from flask_login import current_user

from webapp.extensions import db, login_manager
from webapp.models import User
from webapp.repositories import UserRepository
from webapp.web.requests import parse_int


def load_user(token: str) -> User | None:
    """The user a session cookie names, if that session is still valid.

    The cookie holds ``"<id>:<session version>"``. Bumping a user's version (sign-out,
    password change, deactivation) makes every older cookie name no one. The user is the
    session's ``User`` row on every request, so a view that changes the signed-in user gets
    the same object back from ``UserRepository.get`` without another query.
    """
    id_text, _, version_text = token.partition(":")
    user_id, version = parse_int(id_text, minimum=1), parse_int(version_text)
    if user_id is None or version is None:
        return None
    user = UserRepository(db.session).get(user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


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
