"""The audit log: who did what to which row, from which address (or the command line).

Every event a view or a service records goes through ``audit`` (a bulk action's many through
``AuditRepository.record_many``, with the same address).
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context

from webapp.extensions import db
from webapp.models import User
from webapp.repositories import AuditRepository
from webapp.web.requests import client_ip

# The actor of a change made with a ``flask`` command (no username can contain a space).
COMMAND_LINE = "command line"


def audit(
    action: str,
    actor: User | None,
    target: Any = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record ``action`` by ``actor`` on ``target`` (a row: its kind and id are kept), with
    the values before and after (secrets are dropped). ``actor`` None is someone not signed
    in, in a request; outside one, the command line (which has no address)."""
    in_request = has_request_context()
    AuditRepository(db.session).record(
        action,
        actor=actor,
        actor_name=None if actor or in_request else COMMAND_LINE,
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=target.id if target is not None else None,
        before=before,
        after=after,
        ip_address=client_ip() if in_request else None,
    )
