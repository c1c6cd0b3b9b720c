"""Readiness for a load balancer: the database answers and its schema is the code's."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from alembic.script import ScriptDirectory
from flask import current_app

from webapp.repositories.base import SessionLike
from webapp.repositories.health import applied_revisions, database_answers


@cache
def migration_heads(directory: str) -> frozenset[str]:
    """The head revision(s) of the migration scripts in ``directory`` (read once a process)."""
    return frozenset(ScriptDirectory(directory).get_heads())


@dataclass(frozen=True)
class Readiness:
    ready: bool
    details: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, str]:
        return {"status": "ok" if self.ready else "unavailable", **self.details}


def check_readiness(session: SessionLike) -> Readiness:
    if not database_answers(session):
        return Readiness(
            False, {"database": "unavailable", "reason": "the database does not answer"}
        )
    applied = applied_revisions(session)
    if applied is None:
        return Readiness(
            False, {"database": "error", "reason": "the migration state could not be read"}
        )
    heads = migration_heads(current_app.extensions["migrate"].directory)
    at = ",".join(sorted(applied)) or "none"
    head = ",".join(sorted(heads))
    if applied != heads:
        return Readiness(
            False,
            {
                "database": "ok",
                "migrations": "pending",
                "revision": at,
                "head": head,
                "reason": f"the database is at revision {at}, the code needs {head}",
            },
        )
    return Readiness(True, {"database": "ok", "migrations": "ok", "revision": at})
