"""The audit log from a request: who did what to which row, from which address.

Every event a view or a service records goes through ``audit`` (a bulk action's many through
``AuditRepository.record_many``, with the same address).
"""

from __future__ import annotations

from typing import Any

from webapp.extensions import db
from webapp.models import User
from webapp.repositories import AuditRepository
from webapp.web.requests import client_ip


def audit(
    action: str,
    actor: User | None,
    target: Any = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record ``action`` by ``actor`` (``None``: someone not signed in) on ``target`` (a row:
    its kind and id are kept), with the values before and after (secrets are dropped)."""
    AuditRepository(db.session).record(
        action,
        actor=actor,
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=target.id if target is not None else None,
        before=before,
        after=after,
        ip_address=client_ip(),
    )
