"""Test helpers: a CSRF-aware client, signing in, counting SQL statements."""

from __future__ import annotations

import contextvars
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import has_app_context
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import Connection, Engine, event, inspect, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from webapp.extensions import db
from webapp.models import User
from webapp.repositories import SessionRepository

# WTForms' fields and the hand-written forms (sign-out, ...) alike.
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


class CSRFClient(FlaskClient):
    """A test client whose every request runs as in production, and that sends a valid CSRF
    token with every form POST (``csrf=False`` sends none; a ``csrf_token`` in ``data`` wins).

    Each request gets an app context of its own (so its own ``g`` and database session), as
    under gunicorn, not the test's: it runs in an empty ``contextvars.Context``. The test's
    session is another client of the database: what it set up is committed before the
    request (so the request sees it), and it reads afresh after (so it sees what the request
    saved).
    """

    def open(self, *args: Any, csrf: bool = True, **kwargs: Any) -> TestResponse:
        method = kwargs.get("method", "GET").upper()
        data = kwargs.get("data")
        if csrf and method == "POST" and isinstance(data, dict) and "csrf_token" not in data:
            kwargs["data"] = {**data, "csrf_token": self.csrf_token()}
        in_test = has_app_context()
        if in_test:
            with housekeeping():
                db.session.commit()
        context = contextvars.Context()
        response = context.run(super().open, *args, **kwargs)
        if not response.is_sequence:  # streamed: its body is read in the request's context
            response.response = InContext(response.response, context)
        if in_test:
            with housekeeping():
                read_afresh(db.session)
        return response

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


# True while the test client commits the test's session or reads it afresh around a request:
# ``QueryCounter`` leaves those statements out (they are the harness's, not the app's).
_HOUSEKEEPING: contextvars.ContextVar[bool] = contextvars.ContextVar("housekeeping", default=False)


@contextmanager
def housekeeping() -> Iterator[None]:
    token = _HOUSEKEEPING.set(True)
    try:
        yield
    finally:
        _HOUSEKEEPING.reset(token)


class InContext:
    """A streamed body whose every step runs in ``context`` (where its request was pushed)."""

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        self.body, self.context = iter(body), context

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self.context.run(next, self.body)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            self.context.run(close)


def read_afresh(session: Session) -> None:
    """After a request: the test's rows are read again from the database on next use, and a
    row the request deleted is let go (its last values stay readable, as after a delete in
    the same session), not reloaded into an error."""
    by_class: dict[type[Any], dict[Any, Any]] = defaultdict(dict)
    for key, obj in list(session.identity_map.items()):
        by_class[key[0]][key[1]] = obj
    for cls, objects in by_class.items():
        mapper = inspect(cls)
        if len(mapper.primary_key) != 1:
            continue
        column = mapper.primary_key[0]
        ids = [key[0] for key in objects]
        found = set(session.scalars(select(column).where(column.in_(ids))))
        for key, obj in objects.items():
            if key[0] not in found:
                session.expunge(obj)
    session.expire_all()


class AuthActions:
    """Sign a user in or out without going through the sign-in form."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, user: User, *, user_agent: str | None = None) -> User:
        """Sign ``user`` in as the sign-in page would: a session record of its own, whose
        key the session cookie carries."""
        record = SessionRepository(db.session).create(
            user_id=user.id, key=secrets.token_urlsafe(32), user_agent=user_agent
        )
        user.signed_in_under(record.key)
        db.session.commit()  # seen by the client's requests, whichever client it is
        with self._client.session_transaction() as session:
            session["_user_id"] = user.get_id()
            session["_fresh"] = True
        return user

    def logout(self) -> None:
        with self._client.session_transaction() as session:
            session.clear()


def session_count(user_id: int) -> int:
    """How many signed-in sessions (records) ``user_id`` has."""
    return len(SessionRepository(db.session).of_user(user_id))


class QueryCounter:
    """Counts the SQL statements requests run inside ``with counter() as count:`` (savepoints
    ignored)."""

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
            if _HOUSEKEEPING.get():  # the test client's own, around a request
                return
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


def redirect_target(response: TestResponse) -> str:
    """Where ``response`` redirects (it must be a redirect): a test checks both."""
    assert response.status_code == 302, response.status_code
    return str(response.headers["Location"])
