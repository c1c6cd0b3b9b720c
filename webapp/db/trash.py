"""Trashed rows are left out of every query, once, here (SQLAlchemy's documented recipe).

Every ORM statement the session runs (SELECT, and bulk UPDATE and DELETE) gets
``with_loader_criteria(Trashable, deleted_at IS NULL, include_aliases=True)``: trashed items,
posts and users are absent from every page, list, count, search, feed, profile and export,
from lazy and eager loads, and from ``session.get``. A statement that must see them (a
trash page, a uniqueness check, restore, purge) opts in with ``WITH_TRASHED``:

    session.execute(stmt, execution_options=WITH_TRASHED)
    select(...).execution_options(**WITH_TRASHED)

Core statements over plain tables (``post_tags``) are not ORM statements: a count of tag
links joins ``posts`` to leave trashed posts out (``webapp.repositories.tags``).
Refreshing the columns of an object already loaded is not filtered (it is that row).

A statement built once and run on every request (the signed-in user's, at import; a list
page's, once per ``PageShape``) carries the criteria from the start (``without_trash``):
SQLAlchemy then computes its cache key once, instead of once per request for a copy with the
criteria added (a sixth of the signed-in user's statement's cost).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Executable, event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from webapp.models.trash import Trashable

INCLUDE_TRASHED = "include_trashed"
# The execution option that lets a statement see trashed rows.
WITH_TRASHED: dict[str, Any] = {INCLUDE_TRASHED: True}
# Set by ``without_trash``: the statement carries the criteria already.
TRASH_LEFT_OUT = "trash_left_out"


def _not_trashed(cls: Any) -> Any:
    return cls.deleted_at.is_(None)


NOT_TRASHED = with_loader_criteria(Trashable, _not_trashed, include_aliases=True)

Statement = TypeVar("Statement", bound=Executable)


def without_trash(stmt: Statement) -> Statement:
    """``stmt`` with trashed rows left out, for a statement built once (see above), unless
    it opted in with ``WITH_TRASHED`` itself. The criteria are part of it: ``WITH_TRASHED``
    given at execution cannot lift them."""
    if stmt.get_execution_options().get(INCLUDE_TRASHED, False):
        return stmt
    return stmt.options(NOT_TRASHED).execution_options(**{TRASH_LEFT_OUT: True})


@event.listens_for(Session, "do_orm_execute")
def _leave_trash_out(state: ORMExecuteState) -> None:
    if (
        state.is_column_load
        or state.is_relationship_load
        or state.execution_options.get(INCLUDE_TRASHED, False)
        or state.execution_options.get(TRASH_LEFT_OUT, False)
    ):
        return
    state.statement = state.statement.options(NOT_TRASHED)
