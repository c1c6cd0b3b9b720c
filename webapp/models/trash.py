"""The trash: rows deleted by their owner or an admin are kept, marked, until purged.

A trashed row has ``deleted_at`` (when) and ``deleted_by_id`` (who; NULL once that user is
gone). Every query leaves trashed rows out (``webapp.db.trash``); the trash pages, the
uniqueness checks and the purge opt in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column


class Trashable:
    """Mixin: the two columns that put a row in the trash."""

    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    @property
    def in_trash(self) -> bool:
        return self.deleted_at is not None


def trash_indexes(table: str) -> tuple[Index, Index]:
    """A trashable table's two partial indexes, holding its trashed rows only.

    ``(deleted_at, id)``: the trash lists, newest first, and the purge's oldest rows.
    ``(deleted_by_id)``: erasing a user sets the rows they trashed to NULL through this.
    Both stay as small as the trash, and the live rows' writes never touch them.
    """
    trashed = text("deleted_at IS NOT NULL")
    by_someone = text("deleted_by_id IS NOT NULL")
    return (
        Index(
            f"ix_{table}_deleted_at_id",
            "deleted_at",
            "id",
            postgresql_where=trashed,
            sqlite_where=trashed,
        ),
        Index(
            f"ix_{table}_deleted_by_id",
            "deleted_by_id",
            postgresql_where=by_someone,
            sqlite_where=by_someone,
        ),
    )
