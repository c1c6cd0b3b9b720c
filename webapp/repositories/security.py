"""Signed-in browsers (``UserSession``) and two-factor recovery codes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, bindparam, delete, func, select, update

from webapp.db.trash import without_trash
from webapp.models import RecoveryCode, User, UserSession
from webapp.repositories.base import BaseRepository

# Every signed-in request runs this one: it is built once, with parameters and with the
# trash's criteria, rather than per request (building it cost about a sixth of the query's
# time in Python, adding the criteria per request another sixth).
SIGNED_IN = without_trash(
    select(User, UserSession)
    .join(UserSession, UserSession.user_id == User.id)
    .where(UserSession.key == bindparam("key"), User.id == bindparam("user_id"))
)


class SessionRepository(BaseRepository[UserSession]):
    model = UserSession

    def signed_in(self, user_id: int, key: str) -> tuple[User, UserSession] | None:
        """The user and their session record named by a cookie, in one query."""
        row = self.session.execute(SIGNED_IN, {"key": key, "user_id": user_id}).one_or_none()
        return (row[0], row[1]) if row is not None else None

    def of_user(self, user_id: int) -> list[UserSession]:
        """Every session of ``user_id``, the most recently active first."""
        stmt = (
            select(UserSession)
            .where(UserSession.user_id == user_id)
            .order_by(UserSession.last_active_at.desc(), UserSession.id.desc())
        )
        return list(self.session.scalars(stmt))

    def get_of_user(self, user_id: int, session_id: int) -> UserSession | None:
        return self.session.scalar(
            select(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
        )

    def touch(self, session_id: int, now: datetime, *, primary: Engine) -> None:
        """Note that a session was active at ``now``: one UPDATE on the ``primary``, in the
        request's transaction there, as bookkeeping (not through the unit of work, so a read
        request may do it: see ``webapp.auth.login``). A read request's other statements may
        run on a replica; this one never does."""
        stmt = update(UserSession).where(UserSession.id == session_id).values(last_active_at=now)
        self.session.connection(bind_arguments={"bind": primary}).execute(stmt)

    def end(self, user_id: int, *, keep_id: int | None = None) -> int:
        """End every session of ``user_id`` (except ``keep_id``); returns how many ended."""
        condition = UserSession.user_id == user_id
        if keep_id is not None:
            condition = condition & (UserSession.id != keep_id)
        return self._delete(condition)

    def end_one(self, session: UserSession) -> None:
        self._delete(UserSession.id == session.id)

    def end_of_users(self, user_ids: list[int]) -> int:
        """End every session of the users ``user_ids`` (a bulk deactivation)."""
        return self._delete(UserSession.user_id.in_(user_ids))

    @staticmethod
    def idle_before(when: datetime) -> ColumnElement[bool]:
        """The records last active before ``when``."""
        return UserSession.last_active_at < when

    def _delete(self, condition: ColumnElement[bool]) -> int:
        result: Any = self.session.execute(
            delete(UserSession).where(condition).execution_options(synchronize_session="fetch")
        )
        return int(result.rowcount or 0)


class RecoveryCodeRepository(BaseRepository[RecoveryCode]):
    model = RecoveryCode

    def replace(self, user_id: int, code_hashes: Iterable[str]) -> None:
        """Void every code of ``user_id`` and keep ``code_hashes`` instead."""
        self.clear(user_id)
        self.session.add_all(RecoveryCode(user_id=user_id, code_hash=h) for h in code_hashes)
        self.session.flush()

    def clear(self, user_id: int) -> None:
        self.session.execute(
            delete(RecoveryCode)
            .where(RecoveryCode.user_id == user_id)
            .execution_options(synchronize_session=False)
        )

    def use(self, user_id: int, code_hash: str, now: datetime) -> bool:
        """Spend the unused code ``code_hash`` of ``user_id``: True once, False ever after.

        One conditional UPDATE, so two requests with the same code cannot both succeed.
        """
        result: Any = self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)

    def unused_count(self, user_id: int) -> int:
        stmt = select(func.count()).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
        return self.session.scalar(stmt) or 0
