from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload, selectinload

from webapp.models import Post, Tag
from webapp.repositories.base import Page, contains
from webapp.repositories.tags import TagRepository
from webapp.repositories.versioned import VersionedRepository
from webapp.sqltypes import utcnow

# Every page that shows posts shows their author and tags: load both with the posts.
WITH_AUTHOR_AND_TAGS = (joinedload(Post.author), selectinload(Post.tags))


class PostRepository(VersionedRepository[Post]):
    model = Post
    default_order = (Post.created_at.desc(), Post.id.desc())

    def get_with_relations(self, post_id: int) -> Post | None:
        """One post with its author and tags, in two queries.

        A query rather than ``session.get``: a post already in the session (expired) would
        come back from ``get`` without its author, which would then load lazily.
        """
        return self.session.scalar(
            select(Post).where(Post.id == post_id).options(*WITH_AUTHOR_AND_TAGS)
        )

    def feed_query(
        self, *, q: str = "", tag: str = "", author_id: int | None = None
    ) -> Select[Any]:
        stmt = select(Post).options(*WITH_AUTHOR_AND_TAGS).order_by(*self.default_order)
        if q:
            stmt = stmt.where(contains(Post.title, q))
        if tag:
            stmt = stmt.where(Post.tags.any(Tag.name == tag))
        if author_id is not None:
            stmt = stmt.where(Post.author_id == author_id)
        return stmt

    def feed(
        self,
        *,
        q: str = "",
        tag: str = "",
        author_id: int | None = None,
        page: int | None = 1,
        per_page: int | None = None,
    ) -> Page[Post]:
        """Newest posts first, with authors and tags loaded in a fixed number of queries."""
        whole = None if (q or tag or author_id is not None) else Post.__tablename__
        return self.paginate(
            self.feed_query(q=q, tag=tag, author_id=author_id),
            page=page,
            per_page=per_page,
            whole=whole,
        )

    def newest(self, limit: int = 10) -> list[Post]:
        return list(self.session.scalars(self.feed_query().limit(limit)))

    def create_post(
        self, author_id: int, *, title: str, body: str | None, tag_names: Sequence[str]
    ) -> Post:
        """A new post; tags that do not exist yet are created."""
        tags = TagRepository(self.session).get_or_create(tag_names)
        return self.create(author_id=author_id, title=title, body=body or None, tags=tags)

    def update_post(
        self,
        post: Post,
        version: int,
        *,
        title: str,
        body: str | None,
        tag_names: Sequence[str],
    ) -> Post:
        """Save an edit made from ``version``; raises ``StaleDataError`` if that is out of date.

        ``updated_at`` is always set, so the row is updated (and its version bumped) even when
        only the tags changed: the tags live in another table.
        """
        self.check_version(post, version)
        tags = TagRepository(self.session).get_or_create(tag_names)
        return self.update(post, title=title, body=body or None, tags=tags, updated_at=utcnow())
