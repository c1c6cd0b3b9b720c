from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, ScalarSelect, bindparam, func, select
from sqlalchemy.orm import aliased, joinedload, selectinload

from webapp.db.types import utcnow
from webapp.models import Post, Tag, User, post_tags
from webapp.models.post import TAG_SEPARATOR
from webapp.repositories.base import Page, contains
from webapp.repositories.tags import TagRepository
from webapp.repositories.versioned import VersionedRepository

# Every page that shows posts shows their author and tags: load both with the posts.
WITH_AUTHOR_AND_TAGS = (joinedload(Post.author), selectinload(Post.tags))

# A post's tag names, joined by ``TAG_SEPARATOR``, as a column beside the post.
# Each name is looked up by its id: a join here lets the planner hash the whole tags table
# once per post.
_TAG_NAME = select(Tag.name).where(Tag.id == post_tags.c.tag_id).scalar_subquery()
TAG_NAMES = (
    select(func.aggregate_strings(_TAG_NAME, TAG_SEPARATOR))
    .select_from(post_tags)
    .where(post_tags.c.post_id == Post.id)
    .correlate(Post)
    .scalar_subquery()
)


def name_of_user(user_id: Any) -> ScalarSelect[str]:
    """The username of the user ``user_id`` (a column of the outer row) as a column.

    A correlated lookup by primary key rather than a join: for a page of rows PostgreSQL
    plans a join with a Memoize cache sized for every user there is, which costs more than
    the page itself; a lookup per row costs microseconds and plans in no time.
    """
    user = aliased(User)
    return select(user.username).where(user.id == user_id).scalar_subquery()


# A list shows the start of a post's body (cut at 200 characters, at a word): these many
# characters are enough for the cut to come out exactly as it would from the whole body.
EXCERPT_SOURCE = 256

# What the pages that show posts read: plain rows, each post's author and tags in the same
# statement (one query for a list or a post page, no ORM objects built).
POST_CARD = (
    Post.id,
    Post.title,
    func.substr(Post.body, 1, EXCERPT_SOURCE).label("excerpt"),
    Post.created_at,
    Post.author_id,
    name_of_user(Post.author_id).label("author_username"),
    TAG_NAMES.label("tag_names"),
)
POST_PAGE = (
    Post.id,
    Post.title,
    Post.body,
    Post.created_at,
    Post.updated_at,
    Post.version,
    Post.author_id,
    name_of_user(Post.author_id).label("author_username"),
    TAG_NAMES.label("tag_names"),
)


_POST_VIEW = select(*POST_PAGE).where(Post.id == bindparam("post_id"))

NEWEST_FIRST = (Post.created_at.desc(), Post.id.desc())
_FEED = select(*POST_CARD).order_by(*NEWEST_FIRST)
_FEED_IDS = select(Post.id).order_by(*NEWEST_FIRST)


class PostRepository(VersionedRepository[Post]):
    model = Post
    default_order = NEWEST_FIRST

    def get_with_relations(self, post_id: int) -> Post | None:
        """One post with its author and tags, in two queries.

        A query rather than ``session.get``: a post already in the session (expired) would
        come back from ``get`` without its author, which would then load lazily.
        """
        return self.session.scalar(
            select(Post).where(Post.id == post_id).options(*WITH_AUTHOR_AND_TAGS)
        )

    def view(self, post_id: int) -> Row[Any] | None:
        """What a post's page shows: the post, its author's name and its tags, in one query."""
        return self.session.execute(_POST_VIEW, {"post_id": post_id}).first()

    def _feed_filters(
        self, *, q: str = "", tag: str = "", author_id: int | None = None
    ) -> list[ColumnElement[bool]]:
        filters = []
        if q:
            filters.append(contains(Post.title, q))
        if tag:
            filters.append(Post.tags.any(Tag.name == tag))
        if author_id is not None:
            filters.append(Post.author_id == author_id)
        return filters

    def feed(
        self,
        *,
        q: str = "",
        tag: str = "",
        author_id: int | None = None,
        page: int | None = 1,
        per_page: int | None = None,
    ) -> Page[Row[Any]]:
        """Newest posts first (``POST_CARD`` rows: authors and tags in the same query)."""
        filters = self._feed_filters(q=q, tag=tag, author_id=author_id)
        if filters:
            ids = select(Post.id).where(*filters).order_by(*self.default_order)
            stmt = select(*POST_CARD).where(*filters)
            stmt = stmt.order_by(*self.default_order)
        else:  # the whole feed: statements built once, at import
            ids, stmt = _FEED_IDS, _FEED
        return self.paginate(
            stmt,
            ids=ids,
            page=page,
            per_page=per_page,
            whole=None if filters else Post.__tablename__,
            rows=True,
        )

    def newest(self, limit: int = 10) -> Sequence[Row[Any]]:
        """The newest posts (``POST_CARD`` rows)."""
        return self.session.execute(_FEED.limit(limit)).all()

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
