"""How the app uses its database connections.

- SQLite: enforced foreign keys, WAL and a busy timeout on every connection.
- Liveness: a pooled connection that sat idle for a while is pinged before a request gets it.
- Reads without a transaction: on PostgreSQL a GET runs its queries in autocommit mode.
- Teardown: a request's session ends cleanly even when its connection died under it.
- Failover: a write refused because the server is read-only (a standby) drops its connection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, has_request_context, request
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ONLY_SQL_TRANSACTION = "25006"  # SQLSTATE: "cannot execute INSERT in a read-only transaction"
View = TypeVar("View", bound=Callable[..., Any])


class WriteInReadRequest(RuntimeError):
    """A GET (or HEAD) request tried to change data without saying it does."""


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


def changes_data(view: View) -> View:
    """Mark a GET view that writes (an emailed confirmation link): it keeps a transaction.

    Every other GET, HEAD and OPTIONS request only reads, as HTTP says it should.
    """
    view.db_transaction = "write"  # type: ignore[attr-defined]
    return view


def reads_in_transaction(view: View) -> View:
    """Mark a GET view whose reads need a transaction (a server-side cursor, on PostgreSQL)."""
    view.db_transaction = "read"  # type: ignore[attr-defined]
    return view


def _read_view_transaction() -> str | None:
    """In a GET/HEAD/OPTIONS request: its view's mark (None, "read" or "write"); else "write"."""
    if not has_request_context() or request.method not in READ_METHODS:
        return "write"
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "db_transaction", None)


def is_read_request() -> bool:
    """True inside a GET/HEAD/OPTIONS request whose view is not marked ``@changes_data``."""
    return _read_view_transaction() != "write"


def reads_without_transaction() -> bool:
    """True inside a read request whose view did not ask for a transaction."""
    return _read_view_transaction() is None


@event.listens_for(Session, "before_flush")
def _refuse_flush_in_read(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    if is_read_request():
        raise WriteInReadRequest(
            f"{request.method} {request.path} tried to save changes; mark its view @changes_data"
        )


@event.listens_for(Session, "do_orm_execute")
def _refuse_dml_in_read(state: ORMExecuteState) -> None:
    writes = state.is_insert or state.is_update or state.is_delete
    locks = state.is_select and getattr(state.statement, "_for_update_arg", None) is not None
    if (writes or locks) and is_read_request():
        raise WriteInReadRequest(
            f"{request.method} {request.path} ran an INSERT, UPDATE, DELETE or FOR UPDATE; "
            "mark its view @changes_data"
        )


class ConnectionPolicy:
    """Pool listeners: ping connections that sat idle; run reads without a transaction.

    A connection checked in less than ``ping_after_idle`` seconds ago proved itself alive
    moments ago: it is handed out without a round trip. One idle for longer (the database may
    have restarted, a firewall may have dropped it) is pinged first and, if dead, replaced:
    the pool retries with a new connection. A connection that dies in between fails its
    request with a 503, and SQLAlchemy then replaces every connection older than the failure.

    On PostgreSQL (psycopg2), a read request's connection is switched to autocommit: its
    SELECTs run without the ``BEGIN`` and ``ROLLBACK`` round trips of a transaction. At READ
    COMMITTED (PostgreSQL's default) each statement takes its own snapshot either way, so a
    read sees exactly what it would inside a transaction. Writes in such a request are refused
    (``WriteInReadRequest``) rather than committed statement by statement. A view that reads
    through a server-side cursor (which lives in a transaction) is marked
    ``@reads_in_transaction``; one that writes on GET, ``@changes_data``.

    A statement refused because the server is read-only (SQLSTATE 25006: a standby, reached
    through a proxy or a URL without ``target_session_attrs=read-write`` after a failover) is
    treated as a disconnect (``handle_error``'s ``is_disconnect``, SQLAlchemy's documented
    switch): the pool drops that connection and every older one, the request answers 503 with
    ``Retry-After``, and the next connection is made afresh, finding the primary if libpq can.
    """

    def __init__(self, engine: Engine, ping_after_idle: float) -> None:
        self.dialect = engine.dialect
        self.ping_after_idle = ping_after_idle
        self.autocommit_reads = engine.dialect.driver == "psycopg2"
        event.listen(engine, "checkout", self.checkout)
        event.listen(engine, "checkin", self.checkin)
        if self.autocommit_reads:
            event.listen(engine, "handle_error", self.handle_error)

    def checkout(
        self, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        returned = record.info.get("checked_in_at")
        if returned is not None and time.monotonic() - returned >= self.ping_after_idle:
            self.ping(dbapi_connection)
        if self.autocommit_reads and reads_without_transaction():
            dbapi_connection.autocommit = True
            record.info["autocommit"] = True

    def checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()
        switched = record.info.pop("autocommit", False)
        if switched and dbapi_connection is not None and not dbapi_connection.closed:
            dbapi_connection.autocommit = False

    @staticmethod
    def handle_error(context: ExceptionContext) -> None:
        if getattr(context.original_exception, "pgcode", None) == READ_ONLY_SQL_TRANSACTION:
            context.is_disconnect = True

    def ping(self, dbapi_connection: Any) -> None:
        try:
            self.dialect.do_ping(dbapi_connection)
        except self.dialect.loaded_dbapi.Error as error:
            if self.dialect.is_disconnect(error, dbapi_connection, None):
                raise DisconnectionError(str(error)) from error
            raise


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
    from webapp.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            ConnectionPolicy(engine, app.config["DB_PING_AFTER_IDLE"])
    # Teardown functions run last-registered first, so this runs before Flask-SQLAlchemy's.
    app.teardown_appcontext(close_session_safely)
