from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.db.types import utcnow
from webapp.extensions import Base
from webapp.models.indexes import trigram_index
from webapp.models.trash import Trashable, trash_indexes

if TYPE_CHECKING:
    from webapp.models.user import User

POST_BODY_MAX = 20_000
# How lists read a post's tags beside it: the names joined by this (a tag name holds no comma).
TAG_SEPARATOR = ", "


def split_tag_names(joined: str | None) -> list[str]:
    """A post's tag names, in name order, from its joined ``tag_names`` column."""
    return sorted(joined.split(TAG_SEPARATOR)) if joined else []


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Post(Trashable, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # Serves "an author's posts, newest first" and every lookup by author.
        Index("ix_posts_author_id_created_at", "author_id", "created_at", "id"),
        # Sort keys of the lists (keyset pages, numbered pages), the id breaking ties.
        Index("ix_posts_created_at_id", "created_at", "id"),
        Index("ix_posts_title_id", "title", "id"),
        Index("ix_posts_updated_at_id", "updated_at", "id"),
        *trash_indexes("posts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    author: Mapped[User] = relationship(back_populates="posts", foreign_keys=[author_id])
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tags, back_populates="posts", order_by="Tag.name", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Post {self.id} {self.title!r}>"


# Substring search over titles (the feed's and the admin list's search).
trigram_index("ix_posts_title_trgm", Post.title)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)

    posts: Mapped[list[Post]] = relationship(
        secondary=post_tags, back_populates="tags", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Tag {self.name!r}>"
