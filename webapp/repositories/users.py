from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import func, or_, select

from webapp.models import User
from webapp.repositories.base import BaseRepository, Page, contains


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
        return self.session.scalar(select(User).where(User.email == email.strip().lower()))

    def get_by_username(self, username: str) -> User | None:
        return self.session.scalar(
            select(User).where(func.lower(User.username) == username.strip().lower())
        )

    def get_by_login(self, identifier: str) -> User | None:
        """The user whose email or username is ``identifier``."""
        if "@" in identifier:
            return self.get_by_email(identifier)
        return self.get_by_username(identifier)

    def search(
        self, q: str = "", *, page: int | None = 1, per_page: int | None = None
    ) -> Page[User]:
        filters = [or_(contains(User.email, q), contains(User.username, q))] if q else []
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
