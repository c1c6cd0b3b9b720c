"""Per-connection settings for SQLite: enforced foreign keys, WAL and a busy timeout."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, event


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
