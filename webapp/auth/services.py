"""Accounts: signing in and out, sessions, passwords; the rules the views share."""

from __future__ import annotations

import secrets
import time
from functools import cache

from flask import current_app, g, request, session
from flask_login import current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.audit import audit
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import User, UserSession
from webapp.models.user import PASSWORD_METHOD
from webapp.repositories import SessionRepository, UserRepository
from webapp.validation import EMAIL_MAX, has_control_chars
from webapp.web.requests import client_ip

# Session key: the account whose password was accepted and that waits for its two-factor code.
PENDING_KEY = "two_factor_pending"
# ``g`` key: the accounts this request looked up by email or username (see ``account_named``).
ACCOUNTS_NAMED = "accounts_named"


@cache
def _dummy_hash() -> str:
    """Checked when no account matches, so a wrong login costs as much as a wrong password."""
    return generate_password_hash(secrets.token_hex(16), method=PASSWORD_METHOD)


def account_named(login: str) -> User | None:
    """The account whose email or username is ``login``, looked up once per request.

    The sign-in limits key on it before the view runs, and the view then signs it in. A value
    no form would accept (too long, control characters) names no account and is not looked up.
    """
    identifier = login.strip().lower()
    if not identifier or len(identifier) > EMAIL_MAX or has_control_chars(identifier):
        return None
    found: dict[str, User | None] = g.setdefault(ACCOUNTS_NAMED, {})
    if identifier not in found:
        found[identifier] = UserRepository(db.session).get_by_login(identifier)
    return found[identifier]


def authenticate(login: str, password: str) -> User | None:
    """The active user whose email or username and password match, else ``None``.

    The same work is done whether or not the account exists (no user enumeration by timing).
    """
    user = account_named(login)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    if user.password_needs_rehash:
        user.set_password(password)  # upgrade a hash made with older parameters
    return user


USER_AGENT_MAX = 512


def start_session(user: User, *, remember: bool = False) -> None:
    """Sign ``user`` in on a brand-new session (new CSRF token) and note when and from where:
    a session record of its own, whose random key the cookies carry."""
    session.clear()
    record = SessionRepository(db.session).create(
        user_id=user.id,
        key=secrets.token_urlsafe(32),
        user_agent=(request.user_agent.string or "")[:USER_AGENT_MAX] or None,
        ip_address=client_ip(),
    )
    g.user_session = record
    user.signed_in_under(record.key)
    login_user(user, remember=remember)
    UserRepository(db.session).update(user, last_login_at=utcnow(), last_login_ip=client_ip())


def await_second_factor(user: User, *, remember: bool) -> None:
    """The password was right and ``user`` has two-factor on: nobody is signed in yet; the
    session only remembers who waits for a code, since when, and "remember me"."""
    session.clear()
    session[PENDING_KEY] = {"user_id": user.id, "remember": remember, "at": int(time.time())}


def pending_second_factor() -> tuple[User, bool] | None:
    """The active account waiting for its two-factor code, and its "remember me"; None when
    nothing waits or it waited longer than ``TWO_FACTOR_PENDING_SECONDS``."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    user_id, started = pending.get("user_id"), pending.get("at")
    if not isinstance(user_id, int) or not isinstance(started, int):
        return None
    if time.time() - started > current_app.config["TWO_FACTOR_PENDING_SECONDS"]:
        return None
    user = UserRepository(db.session).get(user_id)
    if user is None or not user.is_active or not user.two_factor_enabled:
        return None
    return user, bool(pending.get("remember"))


def current_session() -> UserSession | None:
    """The session record this request is signed in under (``load_user`` found it)."""
    if not current_user.is_authenticated:  # asking loads the user, and with it the record
        return None
    record: UserSession | None = g.get("user_session")
    return record


def end_all_sessions(user: User) -> None:
    """End every session of ``user``, this one included, wherever it was made."""
    SessionRepository(db.session).end(user.id)


def end_other_sessions(user: User) -> int:
    """End every other session of ``user``; this one goes on. Returns how many ended."""
    record = current_session()
    return SessionRepository(db.session).end(
        user.id, keep_id=record.id if record is not None else None
    )


def sign_out(user: User) -> None:
    record = current_session()
    if record is not None:
        SessionRepository(db.session).end_one(record)
    logout_user()
    session.clear()


def record_failed_login(login: str) -> None:
    audit("auth.login_failed", None, after={"login": login[:100]})


def register(*, email: str, username: str, password: str) -> User:
    """A new, active, not yet confirmed account (the caller commits and signs it in)."""
    user = UserRepository(db.session).create_user(email=email, username=username, password=password)
    audit("auth.registered", user, user, after={"email": user.email, "username": user.username})
    return user


def change_password(user: User, password: str) -> None:
    """Set a new password and end ``user``'s other sessions (this one stays signed in)."""
    user.set_password(password)
    end_other_sessions(user)
    audit("account.password_changed", user, user)


def reset_password(user: User, password: str) -> None:
    """Set a new password from a reset link and end every session of ``user``.

    Following the emailed link proved the address, so an unconfirmed one becomes confirmed.
    """
    user.set_password(password)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    end_all_sessions(user)
    audit("auth.password_reset", user, user)


def confirm_email(user: User) -> None:
    UserRepository(db.session).update(user, email_confirmed_at=utcnow())
    audit("auth.email_confirmed", user, user, after={"email": user.email})


def change_email(user: User, email: str) -> str:
    """Make the confirmed ``email`` the address of ``user``; returns the previous one."""
    previous = user.email
    UserRepository(db.session).update(user, email=email, email_confirmed_at=utcnow())
    audit(
        "account.email_changed", user, user, before={"email": previous}, after={"email": user.email}
    )
    return previous


def rename(user: User, username: str) -> None:
    previous = user.username
    UserRepository(db.session).update(user, username=username)
    audit(
        "account.username_changed",
        user,
        user,
        before={"username": previous},
        after={"username": username},
    )


def delete_account(user: User) -> None:
    """Remove ``user`` with their items and posts, leaving an audit event, and sign out."""
    users = UserRepository(db.session)
    items, posts = users.content_counts(user.id)
    audit(
        "account.deleted",
        user,
        user,
        before={"username": user.username, "items": items, "posts": posts},
    )
    users.delete(user)
    logout_user()
    session.clear()
