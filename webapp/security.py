"""Who is signed in: Flask-Login's user loader and the session-version check."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import bindparam, select

from webapp.extensions import db, login_manager
from webapp.models import User

# Built once: every signed-in request runs it, and building a statement (and its cache key)
# costs more than ``Session.get`` saves by looking in an identity map that is always empty.
USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def load_user(token: str) -> User | None:
    """The user a session cookie names, if that session is still valid.

    The cookie holds ``"<id>:<session version>"``. Bumping a user's version (sign-out,
    password change, deactivation) makes every older cookie name no one.
    """
    user_id, _, version = token.partition(":")
    if not (user_id.isdigit() and version.isdigit()) or len(user_id) > 10:
        return None
    user = db.session.execute(USER_BY_ID, {"user_id": int(user_id)}).scalar_one_or_none()
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def configure_login(app: Flask) -> None:
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    # A session whose cookie was taken elsewhere keeps working only while its version holds.
    login_manager.session_protection = "basic"
