"""What an import of users or items asks of the database: which of the file's values are
taken, who the owners are, and the rows written many at a time.

Every lookup takes a whole file's values and asks in batches of ``LOOKUP_BATCH``: one query
per batch, never one per row, so 100,000 rows cost about a hundred queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, select, text

from webapp.extensions import Base
from webapp.models import Item, User
from webapp.repositories.base import SessionLike, in_batches

# Values per ``IN (...)`` list: well under SQLite's limit on bound parameters (32,766).
LOOKUP_BATCH = 5_000
# Rows per INSERT batch (SQLAlchemy's insertmanyvalues then sends 1,000 per statement).
INSERT_BATCH = 5_000


class ImportRepository:
    def __init__(self, session: SessionLike) -> None:
        self.session = session

    def _found(self, column: Any, values: Iterable[Any], *, compare: Any = None) -> set[Any]:
        """Which of ``values`` some row holds in ``column`` (``compare``: the expression
        compared, ``lower(username)`` say; ``column`` by default)."""
        compare = column if compare is None else compare
        found: set[Any] = set()
        for batch in in_batches(sorted(set(values)), LOOKUP_BATCH):
            found.update(self.session.scalars(select(compare).where(compare.in_(batch))))
        return found

    def taken_emails(self, emails: Iterable[str]) -> set[str]:
        """Which of ``emails`` (lower-case, as stored) an account has."""
        return self._found(User.email, emails)

    def taken_usernames(self, lowered: Iterable[str]) -> set[str]:
        """Which of the lower-cased usernames an account has, in any case."""
        return self._found(User.username, lowered, compare=func.lower(User.username))

    def taken_ids(self, model: type[User] | type[Item], ids: Iterable[int]) -> set[int]:
        return self._found(model.id, ids)

    def user_ids_by_username(self, lowered: Iterable[str]) -> dict[str, int]:
        """lower(username) -> id, for the given lower-cased usernames that are accounts."""
        found: dict[str, int] = {}
        name = func.lower(User.username)
        for batch in in_batches(sorted(set(lowered)), LOOKUP_BATCH):
            stmt = select(name, User.id).where(name.in_(batch))
            found.update((str(name), int(user_id)) for name, user_id in self.session.execute(stmt))
        return found

    def insert_users(self, rows: Sequence[dict[str, Any]]) -> list[tuple[int, str, str, str, bool]]:
        """Insert the users; (id, email, username, password hash, active) of each, for the
        emails that go to them."""
        written: list[tuple[int, str, str, str, bool]] = []
        stmt = insert(User).returning(
            User.id, User.email, User.username, User.hashed_password, User.is_active
        )
        for group in _same_keys(rows):
            for batch in in_batches(group, INSERT_BATCH):
                written.extend(tuple(row) for row in self.session.execute(stmt, batch))  # type: ignore[misc]
        self._advance_ids(User, rows)
        return written

    def insert_items(self, rows: Sequence[dict[str, Any]]) -> int:
        for group in _same_keys(rows):
            for batch in in_batches(group, INSERT_BATCH):
                self.session.execute(insert(Item), batch)
        self._advance_ids(Item, rows)
        return len(rows)

    def _advance_ids(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        """PostgreSQL: move the table's id sequence past the ids the file gave, so the next
        row made by the site does not collide with one. (SQLite picks max(id) + 1 itself.)

        Only forwards: another transaction may have taken ids beyond ours meanwhile.
        """
        given = [row["id"] for row in rows if "id" in row]
        if not given or self.session.get_bind().dialect.name != "postgresql":
            return
        table = model.__table__.name  # type: ignore[attr-defined]
        self.session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:table, 'id'), :top) "
                "WHERE :top > COALESCE("
                "pg_sequence_last_value(pg_get_serial_sequence(:table, 'id')), 0)"
            ),
            {"table": table, "top": max(given)},
        )


def _same_keys(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The rows grouped by their keys (with an id, without one): one INSERT shape each."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())
