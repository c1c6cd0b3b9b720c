"""The audit log: who did what to which row, with the values before and after, and when.

``_event`` is the one place an event's values are made: every event, one at a time
(``record``) or a bulk action's many (``record_many``), names its actor as they are named
now and never holds a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select

from webapp.models import AuditEvent, User
from webapp.repositories.base import BaseRepository

# Never recorded, whatever a caller passes in ``before`` or ``after``.
SECRET_FIELDS = frozenset({"password", "hashed_password", "session_version", "csrf_token"})


def _scrub(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v for k, v in values.items() if k not in SECRET_FIELDS}


def _event(
    action: str,
    actor: User | None,
    target_type: str | None,
    target_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    ip_address: str | None,
) -> dict[str, Any]:
    return {
        "action": action,
        "actor_id": actor.id if actor else None,
        "actor_name": actor.username if actor else None,
        "target_type": target_type,
        "target_id": target_id,
        "before": _scrub(before),
        "after": _scrub(after),
        "ip_address": ip_address,
    }


class AuditRepository(BaseRepository[AuditEvent]):
    model = AuditEvent
    default_order = (AuditEvent.created_at.desc(), AuditEvent.id.desc())

    def record(
        self,
        action: str,
        *,
        actor: User | None = None,
        actor_name: str | None = None,
        target_type: str | None = None,
        target_id: int | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        ip_address: str | None = None,
    ) -> AuditEvent:
        """A new event; ``actor_name`` names an actor that is no user (the command line)."""
        values = _event(action, actor, target_type, target_id, before, after, ip_address)
        return self.create(**{**values, "actor_name": actor.username if actor else actor_name})

    def record_many(
        self,
        action: str,
        *,
        actor: User,
        target_type: str,
        befores: Iterable[tuple[int, dict[str, Any]]],
        after: dict[str, Any] | None,
        ip_address: str | None,
    ) -> None:
        """One event per row a bulk action changes (its id and values before), one INSERT."""
        events = [
            _event(action, actor, target_type, target_id, before, after, ip_address)
            for target_id, before in befores
        ]
        if events:
            self.session.execute(insert(AuditEvent), events)

    def latest(self, limit: int = 10) -> list[AuditEvent]:
        return list(
            self.session.scalars(select(AuditEvent).order_by(*self.default_order).limit(limit))
        )

    def for_row(
        self, target_type: str, target_id: int, *, before_id: int | None = None, limit: int = 50
    ) -> list[AuditEvent]:
        """The events of one row, newest first: ``limit`` of them, older than ``before_id``."""
        stmt = select(AuditEvent).where(
            AuditEvent.target_type == target_type, AuditEvent.target_id == target_id
        )
        if before_id is not None:
            stmt = stmt.where(AuditEvent.id < before_id)
        return list(self.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))

    def befores_since(self, target_type: str, target_id: int, after_id: int) -> list[Any]:
        """The values before each change of one row newer than event ``after_id``, newest
        first: what undoing them, one by one, needs."""
        stmt = (
            select(AuditEvent.before)
            .where(
                AuditEvent.target_type == target_type,
                AuditEvent.target_id == target_id,
                AuditEvent.id > after_id,
            )
            .order_by(AuditEvent.id.desc())
        )
        return list(self.session.scalars(stmt))

    def newest_id(self, target_type: str, target_id: int) -> int:
        """The id of the row's newest event (0: none)."""
        stmt = select(func.max(AuditEvent.id)).where(
            AuditEvent.target_type == target_type, AuditEvent.target_id == target_id
        )
        return self.session.scalar(stmt) or 0
