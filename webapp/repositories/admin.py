"""The admin console's data access: its tables' list specs, bulk actions and tag merges.

Search and filters are written so that they need none of a spec's joins (owners and authors
are matched through a subquery), so counting and bulk actions touch only the table itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)

from webapp.db.types import utcnow
from webapp.models import AuditEvent, Item, OutboxMessage, Post, Tag, User, post_tags
from webapp.models.mail import MAIL_STATUSES
from webapp.models.user import USER_SEARCH_TEXT
from webapp.repositories.audit import AuditRepository
from webapp.repositories.base import SessionLike, contains
from webapp.repositories.keyset import Expr, FilterSpec, ListSpec, SortKey, as_column
from webapp.repositories.posts import TAG_NAMES, name_of_user
from webapp.repositories.security import SessionRepository
from webapp.repositories.trash import TrashRepository
from webapp.repositories.users import username_is

BULK_BATCH = 1_000
# What the unique index on users holds, so ordering by it can use the index.
lower_username = func.lower(User.username, type_=String)
YES_NO = ("yes", "no")


def _user_id_named(username: str) -> Any:
    """The id of the user called ``username`` (any case), as a subquery."""
    return select(User.id).where(username_is(username)).scalar_subquery()


# Each spec's ``columns`` are what its list page shows (``templates/admin/rows/<name>.html``).
USER_LIST = ListSpec(
    name="users",
    entity=User,
    id_column=User.id,
    columns=(
        User.id,
        User.username,
        User.email,
        User.is_active,
        User.is_admin,
        User.created_at,
        User.email_confirmed_at,
    ),
    sort_keys={
        # lower(username) is what the unique index holds, so this order can use it.
        "username": SortKey(lower_username),
        "email": SortKey(User.email),
        "active": SortKey(User.is_active),
        "admin": SortKey(User.is_admin, descending_first=True),
        "created": SortKey(User.created_at, descending_first=True),
    },
    default_sort="created",
    search=lambda q: contains(USER_SEARCH_TEXT, q),
    filters={
        "active": FilterSpec(lambda v: User.is_active.is_(v == "yes"), YES_NO),
        "admin": FilterSpec(lambda v: User.is_admin.is_(v == "yes"), YES_NO),
        "confirmed": FilterSpec(
            lambda v: (
                User.email_confirmed_at.is_not(None)
                if v == "yes"
                else User.email_confirmed_at.is_(None)
            ),
            YES_NO,
        ),
    },
    export_columns=(
        ("id", User.id),
        ("email", User.email),
        ("username", User.username),
        ("active", User.is_active),
        ("admin", User.is_admin),
        ("created_at", User.created_at),
        ("email_confirmed_at", User.email_confirmed_at),
        ("last_login_at", User.last_login_at),
    ),
)

ITEM_LIST = ListSpec(
    name="items",
    entity=Item,
    id_column=Item.id,
    columns=(
        Item.id,
        Item.title,
        Item.owner_id,
        name_of_user(Item.owner_id).label("owner_username"),
        Item.created_at,
        Item.updated_at,
    ),
    joins=lambda stmt: stmt.join(Item.owner),
    sort_keys={
        "title": SortKey(Item.title),
        "owner": SortKey(lower_username, joined=True),
        "created": SortKey(Item.created_at, descending_first=True),
        "updated": SortKey(Item.updated_at, descending_first=True),
    },
    default_sort="created",
    search=lambda q: contains(Item.title, q),
    filters={"owner": FilterSpec(lambda v: Item.owner_id == _user_id_named(v))},
    export_columns=(
        ("id", Item.id),
        ("title", Item.title),
        ("description", Item.description),
        ("owner", User.username),
        ("created_at", Item.created_at),
        ("updated_at", Item.updated_at),
    ),
)

POST_LIST = ListSpec(
    name="posts",
    entity=Post,
    id_column=Post.id,
    columns=(
        Post.id,
        Post.title,
        Post.author_id,
        name_of_user(Post.author_id).label("author_username"),
        Post.created_at,
        Post.updated_at,
        TAG_NAMES.label("tag_names"),
    ),
    joins=lambda stmt: stmt.join(Post.author),
    sort_keys={
        "title": SortKey(Post.title),
        "author": SortKey(lower_username, joined=True),
        "created": SortKey(Post.created_at, descending_first=True),
        "updated": SortKey(Post.updated_at, descending_first=True),
    },
    default_sort="created",
    search=lambda q: contains(Post.title, q),
    filters={
        "author": FilterSpec(lambda v: Post.author_id == _user_id_named(v)),
        "tag": FilterSpec(lambda v: Post.tags.any(Tag.name == v.lower())),
    },
    export_columns=(
        ("id", Post.id),
        ("title", Post.title),
        ("author", User.username),
        ("tags", TAG_NAMES),
        ("created_at", Post.created_at),
        ("updated_at", Post.updated_at),
    ),
)

# A tag's posts, trashed ones left out (the join to ``posts`` brings in the trash filter).
POST_COUNT = (
    select(func.count())
    .select_from(post_tags)
    .join(Post, Post.id == post_tags.c.post_id)
    .where(post_tags.c.tag_id == Tag.id)
    .correlate(Tag)
    .scalar_subquery()
)

TAG_LIST = ListSpec(
    name="tags",
    entity=Tag,
    id_column=Tag.id,
    columns=(Tag.id, Tag.name, POST_COUNT.label("post_count")),
    sort_keys={
        "name": SortKey(Tag.name),
        "posts": SortKey(POST_COUNT, descending_first=True),
    },
    default_sort="name",
    search=lambda q: contains(Tag.name, q),
    filters={
        "used": FilterSpec(lambda v: Tag.posts.any() if v == "yes" else ~Tag.posts.any(), YES_NO)
    },
    export_columns=(("id", Tag.id), ("name", Tag.name), ("posts", POST_COUNT)),
)

AUDIT_TARGETS = ("user", "item", "post", "tag")

AUDIT_LIST = ListSpec(
    name="audit",
    entity=AuditEvent,
    id_column=AuditEvent.id,
    columns=(
        AuditEvent.id,
        AuditEvent.created_at,
        AuditEvent.actor_id,
        AuditEvent.actor_name,
        AuditEvent.action,
        AuditEvent.target_type,
        AuditEvent.target_id,
        AuditEvent.before,
        AuditEvent.after,
        AuditEvent.ip_address,
    ),
    sort_keys={
        "time": SortKey(AuditEvent.created_at, descending_first=True),
        "actor": SortKey(AuditEvent.actor_name, nullable=True),
        "action": SortKey(AuditEvent.action),
        "target": SortKey(AuditEvent.target_type, nullable=True),
        "address": SortKey(AuditEvent.ip_address, nullable=True),
    },
    default_sort="time",
    search=lambda q: or_(contains(AuditEvent.action, q), contains(AuditEvent.actor_name, q)),
    filters={
        "event": FilterSpec(lambda v: AuditEvent.action.startswith(v, autoescape=True)),
        "actor": FilterSpec(lambda v: func.lower(AuditEvent.actor_name) == v.lower()),
        "target": FilterSpec(lambda v: AuditEvent.target_type == v, AUDIT_TARGETS),
    },
    export_columns=(
        ("id", AuditEvent.id),
        ("time", AuditEvent.created_at),
        ("actor_id", AuditEvent.actor_id),
        ("actor", AuditEvent.actor_name),
        ("action", AuditEvent.action),
        ("target_type", AuditEvent.target_type),
        ("target_id", AuditEvent.target_id),
        ("before", AuditEvent.before),
        ("after", AuditEvent.after),
        ("ip_address", AuditEvent.ip_address),
    ),
)

# The outbox as the admin sees it: who, what, how it went; never a body (it holds the links).
MAIL_LIST = ListSpec(
    name="mail",
    entity=OutboxMessage,
    id_column=OutboxMessage.id,
    columns=(
        OutboxMessage.id,
        OutboxMessage.recipient,
        OutboxMessage.subject,
        OutboxMessage.status,
        OutboxMessage.attempts,
        OutboxMessage.last_error,
        OutboxMessage.created_at,
        OutboxMessage.next_attempt_at,
        OutboxMessage.sent_at,
    ),
    sort_keys={
        "created": SortKey(OutboxMessage.created_at, descending_first=True),
        "recipient": SortKey(OutboxMessage.recipient),
        "attempts": SortKey(OutboxMessage.attempts, descending_first=True),
    },
    default_sort="created",
    search=lambda q: or_(contains(OutboxMessage.recipient, q), contains(OutboxMessage.subject, q)),
    filters={"status": FilterSpec(lambda v: OutboxMessage.status == v, MAIL_STATUSES)},
    export_columns=(
        ("id", OutboxMessage.id),
        ("recipient", OutboxMessage.recipient),
        ("subject", OutboxMessage.subject),
        ("status", OutboxMessage.status),
        ("attempts", OutboxMessage.attempts),
        ("last_error", OutboxMessage.last_error),
        ("created_at", OutboxMessage.created_at),
        ("next_attempt_at", OutboxMessage.next_attempt_at),
        ("sent_at", OutboxMessage.sent_at),
    ),
)


@dataclass(frozen=True)
class BulkAction:
    """A change applied to many rows at once: which of them it changes, and how."""

    # The rows among the targeted ones that this action would really change, given the actor.
    changes: Callable[[int], ColumnElement[bool]]
    # New values for an UPDATE; ``None`` deletes the rows.
    values: Mapping[str, Any] | None = None
    # What the audit log records as the values after (never a secret).
    after: Mapping[str, Any] | None = None
    # The rows are users whose signed-in sessions end with the change.
    ends_sessions: bool = False
    # Moves the rows to the trash instead (``TrashRepository``); ``values`` is then unused.
    trash: bool = False
    # The audit log's name for the action (``admin.<type>.<audit>``); default: its own name.
    audit: str | None = None


def _not_actor(actor_id: int) -> ColumnElement[bool]:
    return User.id != actor_id


def _anything(_actor_id: int) -> ColumnElement[bool]:
    return true()


@dataclass(frozen=True)
class BulkTable:
    """A table's bulk actions and what the audit log keeps of each row before the change."""

    spec: ListSpec
    target_type: str
    # How a row is named on a confirmation page.
    label: Expr
    snapshot: Sequence[Expr]
    actions: Mapping[str, BulkAction] = field(default_factory=dict)


BULK_TABLES: dict[str, BulkTable] = {
    "users": BulkTable(
        spec=USER_LIST,
        target_type="user",
        label=User.username,
        snapshot=(User.email, User.username, User.is_active, User.is_admin),
        actions={
            "activate": BulkAction(
                changes=lambda _actor: User.is_active.is_(False),
                values={"is_active": True},
                after={"is_active": True},
            ),
            # An admin never deactivates or deletes themselves, so one active admin remains.
            "deactivate": BulkAction(
                changes=lambda actor: and_(User.is_active.is_(True), _not_actor(actor)),
                values={"is_active": False},
                after={"is_active": False},
                ends_sessions=True,  # their open sessions end at once
            ),
            # To the trash, with their live items and posts; their sessions end.
            "delete": BulkAction(changes=_not_actor, trash=True, audit="trash"),
        },
    ),
    "items": BulkTable(
        spec=ITEM_LIST,
        target_type="item",
        label=Item.title,
        snapshot=(Item.title, Item.owner_id),
        actions={"delete": BulkAction(changes=_anything, trash=True, audit="trash")},
    ),
    "posts": BulkTable(
        spec=POST_LIST,
        target_type="post",
        label=Post.title,
        snapshot=(Post.title, Post.author_id),
        actions={"delete": BulkAction(changes=_anything, trash=True, audit="trash")},
    ),
    "tags": BulkTable(
        spec=TAG_LIST,
        target_type="tag",
        label=Tag.name,
        snapshot=(Tag.name,),
        actions={"delete": BulkAction(changes=_anything)},
    ),
}


def _plain(value: Any) -> Any:
    """A value as JSON can hold it."""
    return value.isoformat() if hasattr(value, "isoformat") else value


class AdminRepository:
    """Writes and reads that only the admin console needs."""

    def __init__(self, session: SessionLike) -> None:
        self.session = session

    def count_where(self, table: BulkTable, where: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(table.spec.entity).where(where)
        return self.session.scalar(stmt) or 0

    def names_where(
        self, table: BulkTable, where: ColumnElement[bool], limit: int = 10
    ) -> list[str]:
        """A few of the rows ``where`` picks, named as the confirmation page lists them."""
        stmt = select(table.label).where(where).order_by(table.spec.id_column).limit(limit)
        return [str(name) for name in self.session.scalars(stmt)]

    def bulk_apply(
        self,
        table: BulkTable,
        action_name: str,
        target: ColumnElement[bool],
        *,
        actor: User,
        ip_address: str | None,
    ) -> int:
        """Apply ``action_name`` to the targeted rows it changes; one audit event per row.

        Set-based and batched by id: memory stays flat however many rows match.
        """
        action = table.actions[action_name]
        id_column = table.spec.id_column
        where = and_(target, action.changes(actor.id))
        audit_action = f"admin.{table.target_type}.{action.audit or action_name}"
        now = utcnow()  # one moment for the whole action: a user's content is trashed with them
        names = [str(as_column(column).key) for column in table.snapshot]
        done, last_id = 0, 0
        while True:
            rows = self.session.execute(
                select(id_column, *table.snapshot)
                .where(where, id_column > last_id)
                .order_by(id_column)
                .limit(BULK_BATCH)
            ).all()
            if not rows:
                break
            ids = [row[0] for row in rows]
            last_id = ids[-1]
            AuditRepository(self.session).record_many(
                audit_action,
                actor=actor,
                target_type=table.target_type,
                befores=[
                    (row[0], {n: _plain(v) for n, v in zip(names, row[1:], strict=True)})
                    for row in rows
                ],
                after=dict(action.after) if action.after else None,
                ip_address=ip_address,
            )
            entity = table.spec.entity
            if action.trash:
                trash = TrashRepository(self.session)
                if entity is User:
                    trash.trash_users(ids, actor, now=now)
                else:
                    trash.trash_rows(entity, ids, actor, now=now)
                done += len(ids)
                continue
            if action.values is None:
                stmt: Any = delete(entity).where(id_column.in_(ids))
            else:
                stmt = update(entity).where(id_column.in_(ids)).values(**action.values)
            self.session.execute(stmt, execution_options={"synchronize_session": False})
            if action.ends_sessions:
                SessionRepository(self.session).end_of_users(ids)
            done += len(ids)
        # Rows changed behind the ORM's back: nothing loaded before may be trusted now.
        self.session.expire_all()
        return done

    def merge_tags(self, source: Tag, target: Tag) -> int:
        """Move ``source``'s posts to ``target`` (no duplicate links), then drop ``source``.

        Returns how many posts gained ``target``.
        """
        other = post_tags.alias("other")
        already_tagged = exists().where(
            other.c.tag_id == target.id, other.c.post_id == post_tags.c.post_id
        )
        moving = select(post_tags.c.post_id, literal(target.id, Integer)).where(
            post_tags.c.tag_id == source.id, ~already_tagged
        )
        result = self.session.execute(insert(post_tags).from_select(["post_id", "tag_id"], moving))
        self.session.execute(
            delete(Tag).where(Tag.id == source.id),
            execution_options={"synchronize_session": False},
        )
        self.session.expire_all()
        return int(getattr(result, "rowcount", 0) or 0)

    def post_count(self, tag_id: int) -> int:
        """How many posts carry tag ``tag_id`` (trashed ones left out, through the join)."""
        stmt = (
            select(func.count())
            .select_from(post_tags)
            .join(Post, Post.id == post_tags.c.post_id)
            .where(post_tags.c.tag_id == tag_id)
        )
        return self.session.scalar(stmt) or 0
