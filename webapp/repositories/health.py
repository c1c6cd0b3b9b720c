"""The database questions a load balancer asks: does it answer, which migrations has it run."""

from __future__ import annotations

from sqlalchemy import column, inspect, select, table, text
from sqlalchemy.exc import SQLAlchemyError

from webapp.db.migrations import REVISION_PARENTS_TABLE
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


# What the migration environment records beside alembic_version: each revision's parents
# (webapp.db.migrations.REVISION_PARENTS), so code older than a revision can place it.
REVISION_PARENTS = table(REVISION_PARENTS_TABLE, column("revision"), column("parent"))


def recorded_ancestors(session: SessionLike, revisions: frozenset[str]) -> frozenset[str] | None:
    """Every ancestor of ``revisions`` the database's recorded revision parents reach (empty
    if none are recorded), None on error. One recursive query over a table of a few rows."""
    try:
        if not inspect(session.connection()).has_table(REVISION_PARENTS.name):
            return frozenset()
        ancestors = (
            select(REVISION_PARENTS.c.parent.label("revision"))
            .where(REVISION_PARENTS.c.revision.in_(sorted(revisions)))
            .cte("ancestors", recursive=True)
        )
        ancestors = ancestors.union(
            select(REVISION_PARENTS.c.parent).join(
                ancestors, REVISION_PARENTS.c.revision == ancestors.c.revision
            )
        )
        return frozenset(session.scalars(select(ancestors.c.revision)))
    except SQLAlchemyError:
        session.rollback()
        return None
