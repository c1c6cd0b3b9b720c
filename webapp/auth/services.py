"""Signing in and out: the rules that the views and other blueprints share."""

from __future__ import annotations

import secrets
from functools import cache

from flask import session
from flask_login import login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db
from webapp.models import User
from webapp.models.user import PASSWORD_METHOD
from webapp.repositories import AuditRepository, UserRepository
from webapp.sqltypes import utcnow
from webapp.web import client_ip


@cache
def _dummy_hash() -> str:
    """Checked when no account matches, so a wrong login costs as much as a wrong password."""
    return generate_password_hash(secrets.token_hex(16), method=PASSWORD_METHOD)


def authenticate(login: str, password: str) -> User | None:
    """The active user whose email or username and password match, else ``None``.

    The same work is done whether or not the account exists (no user enumeration by timing).
    """
    user = UserRepository(db.session).get_by_login(login)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    if user.password_needs_rehash:
        user.set_password(password)  # upgrade a hash made with older parameters
    return user


def start_session(user: User, *, remember: bool = False) -> None:
    """Sign ``user`` in on a brand-new session (new CSRF token) and note when and from where."""
    session.clear()
    login_user(user, remember=remember)
    UserRepository(db.session).update(user, last_login_at=utcnow(), last_login_ip=client_ip())


def end_all_sessions(user: User) -> None:
    """Invalidate every session of ``user``, this one included, wherever it was made."""
    UserRepository(db.session).update(user, session_version=user.session_version + 1)


def sign_out(user: User) -> None:
    end_all_sessions(user)
    logout_user()
    session.clear()


def record_failed_login(login: str) -> None:
    AuditRepository(db.session).record(
        "auth.login_failed", after={"login": login[:100]}, ip_address=client_ip()
    )
