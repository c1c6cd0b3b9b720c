"""Who is signed in: Flask-Login's wiring, and the check of its cookie against the session
record it names."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, abort, current_app, g
from flask_login import current_user
from sqlalchemy.orm.attributes import set_committed_value

from webapp.db.session import is_read_request
from webapp.db.types import utcnow
from webapp.extensions import db, login_manager
from webapp.models import User
from webapp.repositories import SessionRepository, UserRepository
from webapp.web.requests import parse_int

# The cookie holds "<user id>:<session key>"; a key is 43 characters (token_urlsafe(32)).
SESSION_KEY_MAX = 64


def load_user(token: str) -> User | None:
    """The user a session cookie names, if that session still exists.

    The cookie holds ``"<id>:<session key>"``. Ending a session deletes its record (sign-out,
    a password change, deactivation, "sign out everywhere else", an admin), so a cookie kept
    or copied from it names no one. The user and the record come in one query; the user is
    then this request's ``User`` row, so a view that changes the signed-in user gets the same
    object back from ``UserRepository.get`` without another query.

    The record's last activity is written at most once per ``SESSION_ACTIVITY_SECONDS``, so
    a page view almost never writes.
    """
    id_text, _, key = token.partition(":")
    user_id = parse_int(id_text, minimum=1)
    if user_id is None or not key or len(key) > SESSION_KEY_MAX:
        return None
    sessions = SessionRepository(db.session)
    found = sessions.signed_in(user_id, key)
    if found is None:
        return None
    user, record = found
    if not user.is_active:
        return None
    user.signed_in_under(key)
    g.user_session = record
    now = utcnow()
    every = timedelta(seconds=current_app.config["SESSION_ACTIVITY_SECONDS"])
    if now - record.last_active_at >= every:
        sessions.touch(record.id, now, primary=db.engine)
        set_committed_value(record, "last_active_at", now)  # written: not a change to flush
        if is_read_request():
            # A page view's only write, once a minute: bookkeeping, committed on its own.
            db.session.commit()
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
    # A session whose cookie was taken elsewhere keeps working only while its record exists.
    login_manager.session_protection = "basic"
