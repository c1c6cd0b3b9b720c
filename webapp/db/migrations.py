"""Migrations: what Alembic needs to know about our schema (used by migrations/env.py and
tests), and the rules and helpers that keep a migration from taking the site down."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import op
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import to_tuple
from sqlalchemy import Column, MetaData, String, Table, TextClause, insert, select, text

from webapp.db.types import UTCDateTime
from webapp.models.indexes import COMPARED_INFO_KEY, DIALECTS_INFO_KEY


def render_type_as_impl(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Write our UTC type as the plain column type it stores, so migrations need no import."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_object_for(dialect_name: str) -> Callable[..., bool]:
    """An autogenerate ``include_object`` filter for ``dialect_name``.

    Indexes made on some databases only (``Index.info["dialects"]``, e.g. the PostgreSQL
    trigram indexes) are left out of the comparison on any other database, where neither the
    models (``ddl_if``) nor the migrations create them. Indexes whose expression Alembic
    cannot compare (``Index.info["autogenerate_compares"]`` False) are left out everywhere:
    the models' and, by name, the database's.
    """
    from webapp.extensions import Base

    uncompared = {
        index.name
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.info.get(COMPARED_INFO_KEY) is False
    }

    def include_object(
        obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any
    ) -> bool:
        if type_ == "table":
            # Bookkeeping beside alembic_version, made by the migration environment.
            return name != REVISION_PARENTS_TABLE
        if type_ != "index":
            return True
        if name in uncompared:
            return False
        dialects = getattr(obj, "info", {}).get(DIALECTS_INFO_KEY)
        return dialects is None or dialect_name in dialects

    return include_object


# -- Migrations without downtime (DESIGN §8) -----------------------------------------------
#
# The rules every revision follows on PostgreSQL, and the helpers that keep them:
#
# * every migration runs with ``lock_timeout`` (MIGRATION_LOCK_TIMEOUT, default 5 s) and
#   ``statement_timeout`` (MIGRATION_STATEMENT_TIMEOUT, default 60 s): ``timeout_statements``,
#   set by ``migrations/env.py``; a migration that cannot get its lock fails instead of
#   queueing every client behind it;
# * an index on an existing table is built ``CONCURRENTLY`` outside the transaction:
#   ``create_index_concurrently`` / ``drop_index_concurrently``;
# * a new column is nullable or has a constant server default;
# * a foreign key or check on existing rows is added ``NOT VALID`` (``add_check_not_valid``,
#   ``add_foreign_key_not_valid``) and validated in a later step (``validate_constraint``);
# * a backfill runs in batches, each its own transaction: ``backfill_in_batches``;
# * a column or table is dropped or renamed only in a later release, once no running code
#   uses it (expand, migrate, contract).
#
# ``make test`` lints every revision's offline SQL with squawk (tests/test_migration_rules.py);
# a revision that must break a rule says so in migrations/squawk-exceptions.toml.

# Alembic's ``alembic_version`` holds only the heads. This table keeps every revision's
# parents, written in the same transaction as each step, so that an instance whose code
# predates a revision can still tell that the database descends from its own head.
REVISION_PARENTS_TABLE = "alembic_revision_parents"
_lineage_metadata = MetaData()
REVISION_PARENTS = Table(
    REVISION_PARENTS_TABLE,
    _lineage_metadata,
    Column("revision", String(32), primary_key=True),
    Column("parent", String(32), primary_key=True),
)


def interval(seconds: float) -> str:
    """``seconds`` as a PostgreSQL interval literal in milliseconds (0 switches a timeout off)."""
    return f"'{round(seconds * 1000)}ms'"


def timeout_statements(lock_timeout: float, statement_timeout: float) -> list[str]:
    """The session settings every migration on PostgreSQL runs under."""
    return [
        f"SET lock_timeout = {interval(lock_timeout)}",
        f"SET statement_timeout = {interval(statement_timeout)}",
    ]


def revision_edges(script: ScriptDirectory) -> set[tuple[str, str]]:
    """Every (revision, parent) pair of the migration scripts in ``script``."""
    return {
        (revision.revision, parent)
        for revision in script.walk_revisions()
        for parent in to_tuple(revision.down_revision, default=())
    }


def revision_parents_recorder(script: ScriptDirectory) -> Callable[..., None]:
    """An ``on_version_apply`` callback: records the scripts' revision parents in the database.

    It runs inside each step's own transaction, after Alembic has moved ``alembic_version``:
    a revision is never visible there without its parents. Offline (``--sql``) runs write
    nothing, so their output is the revisions' own SQL.
    """
    edges = revision_edges(script)

    def record(*, ctx: MigrationContext, **_kw: Any) -> None:
        if ctx.as_sql or ctx.connection is None:
            return
        connection = ctx.connection
        REVISION_PARENTS.create(connection, checkfirst=True)
        known = {(row.revision, row.parent) for row in connection.execute(select(REVISION_PARENTS))}
        missing = sorted(edges - known)
        if missing:
            connection.execute(
                insert(REVISION_PARENTS), [{"revision": r, "parent": p} for r, p in missing]
            )

    return record


def on_postgresql() -> bool:
    """True when the migration runs against PostgreSQL (online or offline)."""
    return bool(op.get_context().dialect.name == "postgresql")


@contextmanager
def statement_timeout_lifted() -> Iterator[None]:
    """No ``statement_timeout`` inside: for work that blocks no reader or writer (a concurrent
    index build, a validation) but may run longer than one statement should. The lock
    timeout stays. The migration's own statement timeout is restored afterwards.
    """
    context = op.get_context()
    if context.as_sql:
        op.execute("SET statement_timeout = 0")
        yield
        op.execute(
            f"SET statement_timeout = {interval(_configured('MIGRATION_STATEMENT_TIMEOUT'))}"
        )
        return
    previous = op.get_bind().exec_driver_sql("SHOW statement_timeout").scalar()
    op.execute("SET statement_timeout = 0")
    try:
        yield
    finally:
        op.execute(f"SET statement_timeout = '{previous}'")


def _configured(name: str) -> float:
    from flask import current_app

    return float(current_app.config[name])


def create_index_concurrently(
    name: str, table: str, columns: Sequence[str | TextClause], **kw: Any
) -> None:
    """Build an index on an existing table without blocking its writes.

    PostgreSQL: ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` in Alembic's autocommit block
    (it cannot run in a transaction), with no statement timeout; an invalid index left by an
    earlier, interrupted build of the same name is dropped first, so the revision can simply
    be run again. SQLite: a plain ``CREATE INDEX``. ``kw`` goes to ``op.create_index``
    (``unique``, ``postgresql_using``, ``postgresql_where``, ...).
    """
    if not on_postgresql():
        op.create_index(name, table, list(columns), **kw)
        return
    with op.get_context().autocommit_block(), statement_timeout_lifted():
        if _invalid_index(name):
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(
            name, table, list(columns), postgresql_concurrently=True, if_not_exists=True, **kw
        )


def _invalid_index(name: str) -> bool:
    if op.get_context().as_sql:
        return False
    found = op.get_bind().execute(
        text(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name AND pg_catalog.pg_table_is_visible(c.oid)"
        ),
        {"name": name},
    )
    return bool(found.scalar())


def drop_index_concurrently(name: str, table: str) -> None:
    """Drop an index without blocking the table's reads and writes (plain on SQLite)."""
    if not on_postgresql():
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block(), statement_timeout_lifted():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


class MigrationRuleError(ValueError):
    """A revision asked for something the rules of DESIGN §8 forbid."""


def add_column(table: str, column: Column[Any]) -> None:
    """Add ``column`` as the rules allow: nullable, or NOT NULL with a server default (a
    constant one: PostgreSQL then adds it without rewriting the table). On PostgreSQL with
    ``IF NOT EXISTS``, so that a revision whose later steps commit on their own (a backfill,
    a concurrent index) can be run again after an interruption.
    """
    if not column.nullable and column.server_default is None:
        raise MigrationRuleError(
            f"{table}.{column.name}: a new column is nullable or has a server default; "
            "make it NOT NULL in a later step (add_check_not_valid, validate_constraint)"
        )
    op.add_column(table, column, if_not_exists=True if on_postgresql() else None)


def add_check_not_valid(name: str, table: str, condition: str) -> None:
    """Add a check without reading the existing rows (PostgreSQL: ``NOT VALID``, which new and
    updated rows already obey); ``validate_constraint`` checks the old rows later. SQLite
    rebuilds the table (it has no other way), which checks every row."""
    if not on_postgresql():
        with op.batch_alter_table(table) as batch:
            batch.create_check_constraint(name, text(condition))
        return
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def add_foreign_key_not_valid(
    name: str,
    table: str,
    referent: str,
    local_columns: Sequence[str],
    remote_columns: Sequence[str],
    *,
    ondelete: str | None = None,
) -> None:
    """Add a foreign key without reading the existing rows (``NOT VALID``); see
    ``add_check_not_valid``."""
    if not on_postgresql():
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                name, referent, list(local_columns), list(remote_columns), ondelete=ondelete
            )
        return
    on_delete = f" ON DELETE {ondelete}" if ondelete else ""
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({', '.join(local_columns)}) "
        f"REFERENCES {referent} ({', '.join(remote_columns)}){on_delete} NOT VALID"
    )


def validate_constraint(table: str, name: str) -> None:
    """Check the existing rows against a ``NOT VALID`` constraint, in a transaction of its own
    (``VALIDATE`` takes a lock that lets reads and writes go on). Nothing to do on SQLite."""
    if not on_postgresql():
        return
    with op.get_context().autocommit_block(), statement_timeout_lifted():
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def backfill_in_batches(
    table: str,
    assignments: str,
    *,
    where: str | None = None,
    key: str = "id",
    batch_size: int = 10_000,
    pause: float = 0.0,
) -> int:
    """``UPDATE table SET assignments [WHERE where]`` in batches of ``batch_size`` keys, each
    batch committed on its own (Alembic's autocommit block), so no row stays locked for
    longer than one batch and nothing waits for the whole backfill. Rows added while it runs
    are reached too (the upper bound is read again at the end). ``pause`` seconds between
    batches leave room to the application. Returns the number of rows updated (0 offline:
    a backfill reads the data, so ``--sql`` shows its statement as a comment).

    Make ``where`` exclude the rows already done (``new_column IS NULL``): the revision can
    then be run again after an interruption, and only what is left is written.
    """
    condition = f" AND ({where})" if where else ""
    # The names and expressions are the revision's own text, never a request's.
    statement = text(
        f"UPDATE {table} SET {assignments} WHERE {key} >= :low AND {key} < :high{condition}"  # noqa: S608
    )
    context = op.get_context()
    if context.as_sql:
        context.impl.static_output(
            f"-- backfill, in batches of {batch_size} {key}s, each its own transaction: "
            f"{statement.text}"
        )
        return 0
    bounds = text(f"SELECT min({key}), max({key}) FROM {table}")  # noqa: S608 - our own names
    updated = 0
    with context.autocommit_block():
        bind = op.get_bind()
        low, high = bind.execute(bounds).one()
        while low is not None and high is not None and low <= high:
            result = bind.execute(statement, {"low": low, "high": low + batch_size})
            updated += max(result.rowcount, 0)
            low += batch_size
            if low > high:  # rows added meanwhile: carry on up to the new end
                high = bind.execute(bounds).one()[1]
            if pause:
                time.sleep(pause)
    return updated


MIGRATIONS_DIRECTORY = Path(__file__).resolve().parents[2] / "migrations"


def code_head(directory: Path = MIGRATIONS_DIRECTORY) -> str:
    """The head of the real revision chain: what a revision kept outside it builds on."""
    head = ScriptDirectory(str(directory)).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration head in {directory}")
    return head
