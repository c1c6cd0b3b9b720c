"""The database questions a load balancer asks: does it answer, which migrations has it run."""

from __future__ import annotations

from sqlalchemy import column, inspect, select, table, text
from sqlalchemy.exc import SQLAlchemyError

from webapp.repositories.base import SessionLike

# Alembic's own bookkeeping table: one row per head revision the database is at.
ALEMBIC_VERSION = table("alembic_version", column("version_num"))


def database_answers(session: SessionLike) -> bool:
    """True when a trivial query succeeds; the session is left clean either way."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        session.rollback()
        return False
    return True


def applied_revisions(session: SessionLike) -> frozenset[str] | None:
    """The Alembic revisions the database is at (empty if never migrated), None on error."""
    try:
        if not inspect(session.connection()).has_table(ALEMBIC_VERSION.name):
            return frozenset()
        return frozenset(session.scalars(select(ALEMBIC_VERSION.c.version_num)))
    except SQLAlchemyError:
        session.rollback()
        return None
