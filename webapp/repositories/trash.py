"""The trash: moving rows in, listing them, restoring them, and erasing them for good.

Every statement here that must see trashed rows opts in (``WITH_TRASHED``) and then says
itself which rows it means (``deleted_at IS NULL`` or not): nothing is left to the filter.

"Trashed with": an admin who trashes a user trashes their items and posts still live in
the same statement's timestamp; restoring the user restores exactly the items and posts
whose ``deleted_at`` equals the user's, and leaves those trashed before in the trash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    String,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import aliased

from webapp.db.trash import WITH_TRASHED
from webapp.db.types import utcnow
from webapp.models import Item, Post, User
from webapp.models.user import USER_SEARCH_TEXT
from webapp.repositories.audit import AuditRepository
from webapp.repositories.base import Page, SessionLike, clamp_page, contains
from webapp.repositories.keyset import ListSpec, SortKey
from webapp.repositories.posts import name_of_user
from webapp.repositories.security import SessionRepository
from webapp.repositories.versioned import lock_afresh

TRASH_BATCH = 1_000
# The trash's kinds, as URLs and the audit log name them: (plural, model, target type).
KINDS: dict[str, tuple[type[Any], str]] = {
    "items": (Item, "item"),
    "posts": (Post, "post"),
    "users": (User, "user"),
}
_BULK = {**WITH_TRASHED, "synchronize_session": False}


def owner_column(model: type[Any]) -> Any:
    """The column naming the user a trashed item or post belongs to."""
    return Item.owner_id if model is Item else Post.author_id


def label_column(model: type[Any]) -> Any:
    """What names a row of ``model`` on a page (a title, a username)."""
    return User.username if model is User else model.title


def owner_is_live(model: type[Any]) -> ColumnElement[bool]:
    """An item's or post's owner is not in the trash (restoring it would show it again)."""
    owner = aliased(User)
    return exists().where(owner.id == owner_column(model), owner.deleted_at.is_(None))


@dataclass(frozen=True)
class Restored:
    """What a restore did: rows back, rows refused (their owner is in the trash), and the
    items and posts that came back with restored users."""

    restored: int = 0
    refused: int = 0
    items: int = 0
    posts: int = 0


class TrashRepository:
    def __init__(self, session: SessionLike) -> None:
        self.session = session

    # -- Into the trash ------------------------------------------------------------------------

    def trash(self, row: Item | Post, actor: User, *, now: datetime | None = None) -> None:
        """Move one item or post to the trash; ``AlreadyDeleted`` if it is gone or trashed.

        The row is locked and read afresh (``FOR UPDATE`` on PostgreSQL): of two deletes of one
        row the second waits, then finds it trashed. Its version goes up, so an edit form
        opened before refuses to save over it.
        """
        current: Item | Post = lock_afresh(self.session, type(row), row.id)
        current.deleted_at = now or utcnow()
        current.deleted_by_id = actor.id
        self.session.flush()

    def trash_users(self, ids: Sequence[int], actor: User, *, now: datetime) -> tuple[int, int]:
        """Trash the live users ``ids`` with their live items and posts, all at ``now``; their
        sessions end (their session records go). Returns the items and posts trashed."""
        content = []
        for model in (Item, Post):
            stmt = (
                update(model)
                .where(owner_column(model).in_(ids), model.deleted_at.is_(None))
                .values(deleted_at=now, deleted_by_id=actor.id, version=model.version + 1)
            )
            content.append(self._rowcount(self.session.execute(stmt, execution_options=_BULK)))
        self.session.execute(
            update(User)
            .where(User.id.in_(ids), User.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by_id=actor.id),
            execution_options=_BULK,
        )
        SessionRepository(self.session).end_of_users(list(ids))
        self.session.expire_all()
        return content[0], content[1]

    def trash_rows(
        self, model: type[Any], ids: Sequence[int], actor: User, *, now: datetime
    ) -> int:
        """Trash the live items or posts ``ids`` (a bulk action)."""
        stmt = (
            update(model)
            .where(model.id.in_(ids), model.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by_id=actor.id, version=model.version + 1)
        )
        done = self._rowcount(self.session.execute(stmt, execution_options=_BULK))
        self.session.expire_all()
        return done

    # -- Reading it ----------------------------------------------------------------------------

    def trashed(self, model: type[Any], row_id: int) -> Any | None:
        """The trashed row ``row_id`` of ``model``, or None (not there, or not trashed)."""
        stmt = select(model).where(model.id == row_id, model.deleted_at.is_not(None))
        return self.session.scalar(stmt, execution_options=WITH_TRASHED)

    def own_trash(
        self, kind: str, owner_id: int, *, page: int | None = 1, per_page: int = 20
    ) -> Page[Row[Any]]:
        """One page of what ``owner_id`` trashed of ``kind`` (items or posts), newest first."""
        model, _ = KINDS[kind]
        page, per_page = clamp_page(page, per_page, per_page)
        total = self.count_where(model, own_trash_target(kind, owner_id, None))
        last = max((total + per_page - 1) // per_page, 1)
        page = min(page, last)
        stmt = OWN_TRASH[kind].limit(per_page).offset((page - 1) * per_page)
        rows = self.session.execute(stmt, {"owner_id": owner_id}).all()
        return Page(items=rows, page=page, per_page=per_page, total=total)

    def refused_restores(self, model: type[Any], where: ColumnElement[bool]) -> int:
        """How many of the trashed items or posts ``where`` picks have an owner in the trash
        (a restore refuses them); 0 for users."""
        if model is User:
            return 0
        return self.count_where(model, and_(where, ~owner_is_live(model)))

    def count_where(self, model: type[Any], where: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(model).where(model.deleted_at.is_not(None), where)
        return self.session.scalar(stmt, execution_options=WITH_TRASHED) or 0

    def names_where(
        self, model: type[Any], where: ColumnElement[bool], limit: int = 10
    ) -> list[str]:
        """A few of the trashed rows ``where`` picks, named as a confirmation page lists them."""
        stmt = (
            select(label_column(model))
            .where(model.deleted_at.is_not(None), where)
            .order_by(model.id)
            .limit(limit)
        )
        return [str(name) for name in self.session.scalars(stmt, execution_options=WITH_TRASHED)]

    def content_of_users(self, where: ColumnElement[bool]) -> tuple[int, int]:
        """How many items and posts (trashed or not) belong to the users ``where`` picks: what
        erasing those users erases with them."""
        users = select(User.id).where(User.deleted_at.is_not(None), where)
        counts = [
            select(func.count()).select_from(m).where(owner_column(m).in_(users)).scalar_subquery()
            for m in (Item, Post)
        ]
        row = self.session.execute(select(*counts), execution_options=WITH_TRASHED).one()
        return int(row[0]), int(row[1])

    def _batches(self, model: type[Any], where: ColumnElement[bool]) -> Iterator[list[Any]]:
        """The trashed rows ``where`` picks, as (id, label, deleted_at) rows ``TRASH_BATCH`` at a
        time in id order; each batch is read after the one before was dealt with."""
        last_id = 0
        while True:
            rows = self.session.execute(
                select(model.id, label_column(model), model.deleted_at)
                .where(model.deleted_at.is_not(None), where, model.id > last_id)
                .order_by(model.id)
                .limit(TRASH_BATCH),
                execution_options=WITH_TRASHED,
            ).all()
            if not rows:
                return
            last_id = rows[-1][0]
            yield list(rows)

    # -- Out of it -----------------------------------------------------------------------------

    def restore(
        self,
        kind: str,
        where: ColumnElement[bool],
        *,
        actor: User,
        ip_address: str | None,
        audit_prefix: str = "admin.",
    ) -> Restored:
        """Restore the trashed rows of ``kind`` that ``where`` picks, one audit event each.

        A user comes back with the items and posts trashed with them (same ``deleted_at``),
        not with those trashed earlier. An item or post whose owner is in the trash is refused
        (it would show a user who is not there): restore the owner first.
        """
        model, target_type = KINDS[kind]
        restorable = where if model is User else and_(where, owner_is_live(model))
        refused = self.refused_restores(model, where)
        done = Restored(refused=refused)
        for rows in self._batches(model, restorable):
            ids = [row[0] for row in rows]
            items = posts = 0
            if model is User:
                items = self._restore_with_users(Item, ids, actor, ip_address, audit_prefix)
                posts = self._restore_with_users(Post, ids, actor, ip_address, audit_prefix)
            self._audit(
                f"{audit_prefix}{target_type}.restore", actor, target_type, rows, ip_address
            )
            self._clear(model, model.id.in_(ids))
            done = Restored(
                restored=done.restored + len(ids),
                refused=refused,
                items=done.items + items,
                posts=done.posts + posts,
            )
        self.session.expire_all()
        return done

    def _restore_with_users(
        self,
        model: type[Any],
        user_ids: list[int],
        actor: User,
        ip_address: str | None,
        audit_prefix: str,
    ) -> int:
        """Restore the items or posts trashed with the users ``user_ids`` (same ``deleted_at``)."""
        owner = aliased(User)
        with_owner = exists().where(
            owner.id == owner_column(model),
            owner.id.in_(user_ids),
            owner.deleted_at == model.deleted_at,
        )
        target_type = KINDS[f"{model.__tablename__}"][1]
        restored = 0
        for rows in self._batches(model, with_owner):
            ids = [row[0] for row in rows]
            self._audit(
                f"{audit_prefix}{target_type}.restore",
                actor,
                target_type,
                rows,
                ip_address,
                after={"with_user": True},
            )
            self._clear(model, model.id.in_(ids))
            restored += len(ids)
        return restored

    def _clear(self, model: type[Any], where: ColumnElement[bool]) -> None:
        values: dict[str, Any] = {"deleted_at": None, "deleted_by_id": None}
        if model is not User:
            values["version"] = model.version + 1
        stmt = update(model).where(where, model.deleted_at.is_not(None)).values(**values)
        self.session.execute(stmt, execution_options=_BULK)

    def delete_forever(
        self,
        kind: str,
        where: ColumnElement[bool],
        *,
        actor: User | None,
        ip_address: str | None,
        audit_prefix: str = "admin.",
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Erase the trashed rows of ``kind`` that ``where`` picks: a real DELETE, batched by id
        (a user's items and posts go with them, as the foreign keys cascade). One audit event
        per row when there is an ``actor``; ``progress`` is told each batch's size."""
        model, target_type = KINDS[kind]
        done = 0
        for rows in self._batches(model, where):
            ids = [row[0] for row in rows]
            if actor is not None:
                self._audit(
                    f"{audit_prefix}{target_type}.delete_forever",
                    actor,
                    target_type,
                    rows,
                    ip_address,
                )
            stmt = delete(model).where(model.id.in_(ids), model.deleted_at.is_not(None))
            self.session.execute(stmt, execution_options=_BULK)
            done += len(ids)
            if progress is not None:
                progress(len(ids))
        self.session.expire_all()
        return done

    def _audit(
        self,
        action: str,
        actor: User,
        target_type: str,
        rows: list[Any],
        ip_address: str | None,
        after: dict[str, Any] | None = None,
    ) -> None:
        name = "username" if target_type == "user" else "title"
        AuditRepository(self.session).record_many(
            action,
            actor=actor,
            target_type=target_type,
            befores=[(row[0], {name: row[1], "deleted_at": row[2].isoformat()}) for row in rows],
            after=after,
            ip_address=ip_address,
        )

    @staticmethod
    def _rowcount(result: Any) -> int:
        return int(getattr(result, "rowcount", 0) or 0)


def _trash_list(kind: str) -> ListSpec:
    """The admin trash list of one kind: its trashed rows, most recently trashed first."""
    model, _ = KINDS[kind]
    if model is User:
        name: Any = User.username
        detail: Any = User.email
        search: Any = lambda q: contains(USER_SEARCH_TEXT, q)  # noqa: E731
        name_key = SortKey(func.lower(User.username, type_=String))
    else:
        name, detail = model.title, name_of_user(owner_column(model))
        search = lambda q: contains(model.title, q)  # noqa: E731
        name_key = SortKey(model.title)
    return ListSpec(
        name=f"trash_{kind}",
        entity=model,
        id_column=model.id,
        columns=(
            model.id,
            name.label("name"),
            detail.label("detail"),
            name_of_user(model.deleted_by_id).label("deleted_by"),
            model.deleted_at,
        ),
        sort_keys={
            "deleted": SortKey(model.deleted_at, descending_first=True),
            "name": name_key,
        },
        default_sort="deleted",
        search=search,
        export_columns=(),
        where=model.deleted_at.is_not(None),
        execution_options=WITH_TRASHED,
    )


# The admin trash's lists, one per kind (keyset pages, like every admin list).
TRASH_LISTS: dict[str, ListSpec] = {kind: _trash_list(kind) for kind in KINDS}

# An owner's own trash: what they trashed themselves (a row an admin trashed stays with the
# admins), newest first. Plain rows; the owner is a bound parameter.
OWN_TRASH: dict[str, Any] = {
    kind: select(model.id, model.title.label("name"), model.deleted_at)
    .where(
        owner_column(model) == bindparam("owner_id"),
        model.deleted_by_id == owner_column(model),
        model.deleted_at.is_not(None),
    )
    .order_by(model.deleted_at.desc(), model.id.desc())
    .execution_options(**WITH_TRASHED)
    for kind, (model, _) in KINDS.items()
    if model is not User
}


def own_trash_target(kind: str, owner_id: int, ids: Sequence[int] | None) -> ColumnElement[bool]:
    """The rows ``ids`` (None: all) of ``kind`` that ``owner_id`` trashed themselves."""
    model, _ = KINDS[kind]
    mine = and_(owner_column(model) == owner_id, model.deleted_by_id == owner_id)
    return mine if ids is None else and_(model.id.in_(ids), mine)
