"""Edit-conflict checks for models that carry a ``version`` (SQLAlchemy's ``version_id_col``)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from webapp.extensions import Base
from webapp.repositories.base import BaseRepository, SessionLike


class Versioned(Protocol):
    id: int
    version: int


V = TypeVar("V", bound=Base)


class AlreadyDeleted(LookupError):
    """The row a delete was meant for is gone: someone else deleted it first."""


def lock_afresh(session: SessionLike, model: type[Any], row_id: int) -> Any:
    """The row ``row_id`` of ``model``, locked (``FOR UPDATE`` on PostgreSQL) and read afresh;
    ``AlreadyDeleted`` if it is gone. Of two deletes of one row the second waits here for the
    first to commit, then finds what it left."""
    current = session.scalar(
        select(model)
        .where(model.id == row_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if current is None:
        raise AlreadyDeleted(f"{model.__name__} {row_id} was deleted by someone else")
    return current


class VersionedRepository(BaseRepository[V]):
    """A repository whose rows refuse changes made from an out-of-date copy."""

    def check_version(self, obj: V, version: int) -> None:
        """Raise ``StaleDataError`` unless ``obj`` is still at ``version`` (the one a form saw)."""
        row = cast(Versioned, obj)
        if row.version != version:
            raise StaleDataError(
                f"{type(obj).__name__} {row.id} is at version {row.version}, not {version}"
            )

    def delete(self, obj: V) -> None:
        """Delete ``obj`` at whatever version it is now; ``AlreadyDeleted`` if it is gone.

        The row is locked and read afresh first (``FOR UPDATE`` on PostgreSQL). Of two deletes
        of one row the second then waits for the first to commit and finds nothing, where the
        ORM's version-checked DELETE would match no row and fail (``StaleDataError``). An edit
        saved in between does not stop a delete: the page asked "delete this?", not "delete
        this version of it". Reading afresh also unloads the row's collections, which the
        database's ``ON DELETE CASCADE`` clears.
        """
        row = cast(Versioned, obj)
        current: V = lock_afresh(self.session, self.model, row.id)
        super().delete(current)
