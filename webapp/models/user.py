from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Index, String, Text, false, func, literal_column, true
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.db.types import utcnow
from webapp.extensions import Base
from webapp.models.indexes import trigram_index
from webapp.models.trash import Trashable, trash_indexes

if TYPE_CHECKING:
    from webapp.models.item import Item
    from webapp.models.post import Post
    from webapp.models.security import RecoveryCode, UserSession

# OWASP (2025): scrypt with N >= 2**17, r = 8, p = 1.
PASSWORD_METHOD = "scrypt:131072:8:1"  # noqa: S105 - a hashing method, not a password


class User(Trashable, Base):
    __tablename__ = "users"
    __table_args__ = (*trash_indexes("users"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    username: Mapped[str] = mapped_column(String(50))
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    email_confirmed_at: Mapped[datetime | None]
    # No longer read: sessions are ``UserSession`` rows now. Dropped in a later release, once
    # no running instance of the previous release writes it (expand → migrate → contract).
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    last_login_at: Mapped[datetime | None]
    last_login_ip: Mapped[str | None] = mapped_column(String(45))
    # Two-factor sign-in (TOTP): the secret, encrypted (``webapp.auth.two_factor``); set while
    # it is being set up, and on once ``totp_enabled_at`` is. The last time step a code was
    # accepted for: no code is accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    items: Mapped[list[Item]] = relationship(
        back_populates="owner",
        foreign_keys="Item.owner_id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    posts: Mapped[list[Post]] = relationship(
        back_populates="author",
        foreign_keys="Post.author_id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    sessions: Mapped[list[UserSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"

    @validates("email")
    def _lower_email(self, _key: str, email: str) -> str:
        return email.strip().lower()

    def set_password(self, password: str) -> None:
        self.hashed_password = generate_password_hash(password, method=PASSWORD_METHOD)

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches; a malformed stored hash is simply a mismatch."""
        try:
            return check_password_hash(self.hashed_password, password)
        except (ValueError, TypeError):
            return False

    @property
    def password_needs_rehash(self) -> bool:
        return not self.hashed_password.startswith(PASSWORD_METHOD + "$")

    @property
    def is_confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    def signed_in_under(self, session_key: str) -> None:
        """Note the session record this request runs under (not a column): ``get_id`` names
        it, so the cookies Flask-Login writes carry it."""
        self._session_key = session_key

    # Flask-Login's user protocol. The id carries the key of the browser's session record:
    # deleting the record (sign-out, sign out everywhere else, a password change,
    # deactivation, an admin ending it) makes every cookie that names it name no one.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{getattr(self, '_session_key', '')}"


# Usernames are unique ignoring case; the display keeps the case that was typed.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
# Sort keys of the lists (keyset pages) and the dashboard's counts; the id breaks ties.
Index("ix_users_created_at_id", User.created_at, User.id)
Index("ix_users_is_active_id", User.is_active, User.id)
Index("ix_users_is_admin_id", User.is_admin, User.id)
# The "not confirmed" filter, newest first: only the unconfirmed users (a partial index).
Index(
    "ix_users_unconfirmed_created_at_id",
    User.created_at,
    User.id,
    postgresql_where=User.email_confirmed_at.is_(None),
    sqlite_where=User.email_confirmed_at.is_(None),
)
# What the admin user search looks in: email and username as one text, so that one trigram
# index serves the search (two indexes, one per column, cost PostgreSQL about twice as much).
USER_SEARCH_TEXT = User.email + literal_column("' '") + User.username
trigram_index("ix_users_search_trgm", USER_SEARCH_TEXT)
