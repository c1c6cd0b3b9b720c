from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from webapp.db.trash import WITH_TRASHED
from webapp.models import Item, Post, User
from webapp.models.user import USER_SEARCH_TEXT
from webapp.repositories.base import BaseRepository, Page, contains
from webapp.validation import USERNAME_RE


def email_is(email: str) -> ColumnElement[bool]:
    """Whose email is ``email``: addresses are stored lower-case, so compared so."""
    return User.email == email.strip().lower()


def username_is(username: str) -> ColumnElement[bool]:
    """Whose username is ``username``, in any case (as the unique index on lower(username))."""
    return func.lower(User.username) == username.strip().lower()


class UserRepository(BaseRepository[User]):
    model = User
    default_order = (User.created_at.desc(), User.id.desc())
    unique_fields: ClassVar[dict[str, str]] = {
        "uq_users_email": "email",
        "uq_users_username_lower": "username",
    }

    def create_user(self, *, email: str, username: str, password: str, **values: Any) -> User:
        """A new user with ``password`` hashed (the clear text is never stored)."""
        user = User(email=email, username=username, **values)
        user.set_password(password)
        self.session.add(user)
        self.session.flush()
        return user

    def get_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(email_is(email)))

    def get_by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(username_is(username)))

    def get_by_login(self, identifier: str) -> User | None:
        """The user whose email or username is ``identifier``."""
        if "@" in identifier:
            return self.get_by_email(identifier)
        return self.get_by_username(identifier)

    def search(
        self, q: str = "", *, page: int | None = 1, per_page: int | None = None
    ) -> Page[User]:
        filters = [contains(USER_SEARCH_TEXT, q)] if q else []
        return self.list(filters=filters, page=page, per_page=per_page)

    def newest(self, limit: int = 5) -> list[User]:
        return list(self.session.scalars(select(User).order_by(*self.default_order).limit(limit)))

    def count_admins(self, *, active_only: bool = True) -> int:
        stmt = select(func.count()).select_from(User).where(User.is_admin.is_(True))
        if active_only:
            stmt = stmt.where(User.is_active.is_(True))
        return self.session.scalar(stmt) or 0

    def active_admin_ids(self, *, lock: bool = False) -> set[int]:
        """The ids of the active admins; ``lock`` holds their rows until the transaction ends.

        Locking serialises concurrent changes to admins on PostgreSQL, so two admins removing
        each other at the same moment cannot leave the site with none.
        """
        stmt = select(User.id).where(User.is_admin.is_(True), User.is_active.is_(True))
        if lock:
            stmt = stmt.with_for_update()
        return set(self.session.scalars(stmt))

    # -- Accounts ------------------------------------------------------------------------------

    def claim_totp_step(self, user: User, step: int) -> bool:
        """Record that a code of time step ``step`` was accepted for ``user``: True only if no
        code of that step or a later one was accepted before (one conditional UPDATE, so the
        same code sent twice at once is accepted once)."""
        result: Any = self.session.execute(
            update(User)
            .where(
                User.id == user.id,
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
        set_committed_value(user, "totp_last_step", step)  # what the row holds now; no 2nd write
        return True

    # Names stay taken while their user is in the trash (so a restore never makes a
    # duplicate): these two checks see trashed users.
    def email_taken(self, email: str, *, exclude_id: int | None = None) -> bool:
        stmt = select(User.id).where(email_is(email))
        if exclude_id is not None:
            stmt = stmt.where(User.id != exclude_id)
        return self.session.scalar(stmt.limit(1), execution_options=WITH_TRASHED) is not None

    def username_taken(self, username: str, *, exclude_id: int | None = None) -> bool:
        stmt = select(User.id).where(username_is(username))
        if exclude_id is not None:
            stmt = stmt.where(User.id != exclude_id)
        return self.session.scalar(stmt.limit(1), execution_options=WITH_TRASHED) is not None

    def unique_field(self, error: IntegrityError) -> str | None:
        """The form field whose uniqueness ``error`` broke (``email``/``username``), if any.

        PostgreSQL names the constraint; SQLite names the index or the ``table.column``.
        """
        diag = getattr(error.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None)
        if constraint in self.unique_fields:
            return self.unique_fields[constraint]
        message = str(error.orig)
        for name, field in self.unique_fields.items():
            if name in message or f"users.{field}" in message:
                return field
        return None

    def content_counts(self, user_id: int) -> tuple[int, int]:
        """How many items and posts ``user_id`` has, in one query."""
        items = select(func.count()).select_from(Item).where(Item.owner_id == user_id)
        posts = select(func.count()).select_from(Post).where(Post.author_id == user_id)
        row = self.session.execute(select(items.scalar_subquery(), posts.scalar_subquery())).one()
        return int(row[0]), int(row[1])

    def items_of(self, user_id: int) -> list[Item]:
        """Every item ``user_id`` owns, oldest first (for an export of their data)."""
        stmt = select(Item).where(Item.owner_id == user_id).order_by(Item.created_at, Item.id)
        return list(self.session.scalars(stmt))

    def posts_of(self, user_id: int) -> list[Post]:
        """Every post ``user_id`` wrote, oldest first, with its tags loaded."""
        stmt = (
            select(Post)
            .where(Post.author_id == user_id)
            .options(selectinload(Post.tags))
            .order_by(Post.created_at, Post.id)
        )
        return list(self.session.scalars(stmt))

    def get_public(self, username: str) -> User | None:
        """The active user with ``username`` (any case), as a public profile shows them."""
        if not USERNAME_RE.fullmatch(username):
            return None
        return self.session.scalar(
            select(User).where(username_is(username), User.is_active.is_(True))
        )
