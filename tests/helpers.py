"""Test helpers: a CSRF-aware client, signing in, counting SQL statements."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import Connection, Engine, event
from werkzeug.test import TestResponse

from webapp.auth.services import ACCOUNTS_NAMED
from webapp.extensions import db
from webapp.models import User

# WTForms' fields and the hand-written forms (sign-out, ...) alike.
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


class CSRFClient(FlaskClient):
    """A test client that sends a valid CSRF token with every form POST.

    Pass ``csrf=False`` to send none, or put your own ``csrf_token`` in ``data``.
    """

    def open(self, *args: Any, csrf: bool = True, **kwargs: Any) -> TestResponse:
        # The test's app context (and so ``g`` and the session) outlives each request here,
        # unlike in production: forget the cached user and CSRF token and reload rows, as a new
        # request would.
        if has_app_context():
            g.pop("_login_user", None)
            g.pop(ACCOUNTS_NAMED, None)
            g.pop(self.application.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
            db.session.flush()
            db.session.expire_all()
        method = kwargs.get("method", "GET").upper()
        data = kwargs.get("data")
        if csrf and method == "POST" and isinstance(data, dict) and "csrf_token" not in data:
            kwargs["data"] = {**data, "csrf_token": self.csrf_token()}
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        """A token valid for this client's session (as Flask-WTF would issue it)."""
        app = self.application
        field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        with self.session_transaction() as session:
            raw = session.get(field)
            if raw is None:
                raw = secrets.token_hex(20)
                session[field] = raw
        serializer = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")  # type: ignore[arg-type]
        return str(serializer.dumps(raw))


class AuthActions:
    """Sign a user in or out without going through the sign-in form."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, user: User) -> User:
        with self._client.session_transaction() as session:
            session["_user_id"] = user.get_id()
            session["_fresh"] = True
        return user

    def logout(self) -> None:
        with self._client.session_transaction() as session:
            session.clear()


class QueryCounter:
    """Counts the SQL statements run inside ``with counter() as count:`` (savepoints ignored)."""

    IGNORED = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")

    def __init__(self, db: SQLAlchemy) -> None:
        self._db = db

    @contextmanager
    def __call__(self) -> Iterator[list[str]]:
        statements: list[str] = []
        bind = self._db.session.get_bind()
        engine = bind.engine if isinstance(bind, Connection) else bind
        assert isinstance(engine, Engine)

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not statement.lstrip().upper().startswith(self.IGNORED):
                statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)


def csrf_token_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)
