from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.db.types import utcnow
from webapp.extensions import Base
from webapp.models.indexes import trigram_index
from webapp.models.trash import Trashable, trash_indexes

if TYPE_CHECKING:
    from webapp.models.user import User


class Item(Trashable, Base):
    __tablename__ = "items"
    __table_args__ = (
        # Serves "an owner's items, newest first" and every lookup by owner.
        Index("ix_items_owner_id_created_at", "owner_id", "created_at", "id"),
        # Sort keys of the lists (keyset pages, numbered pages), the id breaking ties.
        Index("ix_items_created_at_id", "created_at", "id"),
        Index("ix_items_title_id", "title", "id"),
        Index("ix_items_updated_at_id", "updated_at", "id"),
        *trash_indexes("items"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    owner: Mapped[User] = relationship(back_populates="items", foreign_keys=[owner_id])

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Item {self.id} {self.title!r}>"


# Substring search over titles.
trigram_index("ix_items_title_trgm", Item.title)
