"""Readiness for a load balancer: the database answers and its schema serves this code.

An instance is ready when the database is at its migration head or at a revision that
descends from it (DESIGN §8, rolling deploys): while a new release's migrations run, and
after, the old instances keep serving, since every revision only adds what old code ignores.
A database behind the code's head, or on a line that does not contain it, is not ready.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from alembic.script import ScriptDirectory
from alembic.util import to_tuple
from flask import current_app

from webapp.repositories.base import SessionLike
from webapp.repositories.health import applied_revisions, database_answers, recorded_ancestors


@dataclass(frozen=True)
class RevisionGraph:
    """This code's migration scripts: their heads, and each revision with its ancestors."""

    heads: frozenset[str]
    lineage: dict[str, frozenset[str]]  # revision -> itself and all its ancestors

    def reached_from(self, revisions: frozenset[str]) -> frozenset[str]:
        """The known revisions ``revisions`` contain, with all their ancestors."""
        reached: set[str] = set()
        for revision in revisions:
            reached |= self.lineage.get(revision, frozenset())
        return frozenset(reached)


# Key: the migrations directory of this deployment. The scripts in it are fixed when the code
# is deployed (a new release is a new process), so the graph read once cannot go stale;
# reading it costs milliseconds, which a readiness probe polled every few seconds should not.
@cache
def revision_graph(directory: str) -> RevisionGraph:
    script = ScriptDirectory(directory)
    parents = {
        revision.revision: to_tuple(revision.down_revision, default=())
        for revision in script.walk_revisions()
    }
    lineage: dict[str, frozenset[str]] = {}

    def ancestors_of(revision: str) -> frozenset[str]:
        if revision not in lineage:
            found = {revision}
            for parent in parents.get(revision, ()):
                found |= ancestors_of(parent)
            lineage[revision] = frozenset(found)
        return lineage[revision]

    for revision in parents:
        ancestors_of(revision)
    return RevisionGraph(frozenset(script.get_heads()), lineage)


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
    graph = revision_graph(current_app.extensions["migrate"].directory)
    at = ",".join(sorted(applied)) or "none"
    head = ",".join(sorted(graph.heads))
    if applied == graph.heads:  # the usual answer, from alembic_version alone
        return Readiness(True, {"database": "ok", "migrations": "ok", "revision": at})
    reached = graph.reached_from(applied)
    unknown = applied - graph.lineage.keys()
    if unknown and not graph.heads <= reached:
        # Revisions newer than this code: their recorded parents say where they come from.
        recorded = recorded_ancestors(session, unknown)
        if recorded is None:
            return Readiness(
                False, {"database": "error", "reason": "the migration state could not be read"}
            )
        reached |= graph.reached_from(recorded)
    if graph.heads <= reached:
        return Readiness(
            True,
            {"database": "ok", "migrations": "ahead", "revision": at, "head": head},
        )
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
