"""Per-connection settings for SQLite: enforced foreign keys, WAL and a busy timeout."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    # SQLite ignores ON DELETE CASCADE unless foreign keys are switched on per connection.
    cursor.execute("PRAGMA foreign_keys = ON")
    # Readers do not block the writer; a writer waits for a lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.close()


def close_session_safely(_error: BaseException | None = None) -> None:
    """End the request's session even when its connection died under it.

    Flask-SQLAlchemy's own teardown would roll back on the dead connection and turn an
    already-rendered page into a 500; the pool has invalidated that connection, so the
    session is simply dropped.
    """
    from webapp.extensions import db

    try:
        db.session.remove()
    except SQLAlchemyError:
        db.session.registry.clear()


def register(app: Flask) -> None:
    # Teardown functions run last-registered first, so this runs before Flask-SQLAlchemy's.
    app.teardown_appcontext(close_session_safely)
