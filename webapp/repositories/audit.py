from __future__ import annotations

from typing import Any

from sqlalchemy import select

from webapp.models import AuditEvent, User
from webapp.repositories.base import BaseRepository

# Never recorded, whatever a caller passes in ``before`` or ``after``.
SECRET_FIELDS = frozenset({"password", "hashed_password", "session_version", "csrf_token"})


def _scrub(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v for k, v in values.items() if k not in SECRET_FIELDS}


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
        return self.create(
            action=action,
            actor_id=actor.id if actor else None,
            actor_name=actor.username if actor else actor_name,
            target_type=target_type,
            target_id=target_id,
            before=_scrub(before),
            after=_scrub(after),
            ip_address=ip_address,
        )

    def latest(self, limit: int = 10) -> list[AuditEvent]:
        return list(
            self.session.scalars(select(AuditEvent).order_by(*self.default_order).limit(limit))
        )
