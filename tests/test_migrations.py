"""The migrations build exactly the models' schema, and go down and up again, on both databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateIndex

from tests.conftest import BASE_TEST_CONFIG, ensure_database, postgres_url
from tests.migration_lint import alembic_config
from webapp import ROOT, create_app
from webapp.db.migrations import (
    REVISION_PARENTS_TABLE,
    code_head,
    include_object_for,
    render_type_as_impl,
    revision_edges,
)
from webapp.extensions import db, migrate

DEMO_VERSIONS = ROOT / "tests" / "online_migration"


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite'}"
        return
    request.getfixturevalue("postgres_engine")  # skips or fails as the rest of the suite does
    url = make_url(postgres_url())
    url = url.set(database=f"{url.database}_migrations")
    rendered = url.render_as_string(hide_password=False)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()
    ensure_database(rendered)
    yield rendered


@pytest.fixture
def migration_app(empty_database_url: str) -> Iterator[Flask]:
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        yield app
        db.engine.dispose()


def schema_differences() -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "render_item": render_type_as_impl,
                "include_object": include_object_for(conn.dialect.name),
            },
        )
        return list(compare_metadata(context, db.metadata))


def test_upgrade_builds_the_models_schema_and_downgrade_undoes_it(migration_app: Flask) -> None:
    upgrade()
    assert schema_differences() == []
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "items", "posts", "tags", "post_tags", "audit_events"} <= tables

    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version", REVISION_PARENTS_TABLE}

    upgrade()
    assert schema_differences() == []


def test_the_user_search_index_is_migrated_as_the_models_declare_it(migration_app: Flask) -> None:
    """Autogenerate cannot compare this expression index (``trigram_index``): checked here."""
    upgrade()
    with db.engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            assert "ix_users_search_trgm" not in {
                i["name"] for i in inspect(conn).get_indexes("users")
            }
            return
        found = conn.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_users_search_trgm'")
        )
        declared = next(
            i for i in db.metadata.tables["users"].indexes if i.name == "ix_users_search_trgm"
        )
        expected = str(CreateIndex(declared).compile(dialect=conn.dialect))
    assert found is not None
    # PostgreSQL prints the expression back with casts and parentheses of its own.
    assert found == (
        "CREATE INDEX ix_users_search_trgm ON public.users USING gin "
        "(((((email)::text || ' '::text) || (username)::text)) gin_trgm_ops)"
    )
    assert expected == (
        "CREATE INDEX ix_users_search_trgm ON users USING gin "
        "((email || ' ' || username) gin_trgm_ops)"
    )
    downgrade(revision="0003")
    with db.engine.connect() as conn:
        names = {i["name"] for i in inspect(conn).get_indexes("users")}
    assert {"ix_users_email_trgm", "ix_users_username_trgm"} <= names
    assert "ix_users_search_trgm" not in names


def test_migrated_schema_enforces_case_insensitive_usernames(migration_app: Flask) -> None:
    upgrade()
    insert = text(
        "INSERT INTO users (email, username, hashed_password, created_at) "
        "VALUES (:email, :username, 'x', CURRENT_TIMESTAMP)"
    )
    with db.engine.connect() as conn:
        conn.execute(insert, {"email": "a@example.com", "username": "Alice"})
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            conn.execute(insert, {"email": "b@example.com", "username": "alice"})
        conn.rollback()


def test_flask_db_check_finds_no_drift_and_finds_a_missing_index(migration_app: Flask) -> None:
    """``flask db check`` (what CI and the suite run) passes on a migrated database, and fails
    once the schema and the models differ."""
    upgrade()
    runner = migration_app.test_cli_runner()
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    with db.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_items_title_id"))
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 1  # Flask-Migrate logs the difference and exits 1


def test_every_step_records_its_revision_parents(migration_app: Flask) -> None:
    """Older code reads these to tell that the database descends from its head (/readyz)."""
    upgrade()
    script = ScriptDirectory.from_config(migrate.get_config())
    with db.engine.connect() as conn:
        recorded = {
            (row.revision, row.parent)
            for row in conn.execute(text(f"SELECT revision, parent FROM {REVISION_PARENTS_TABLE}"))
        }
    assert recorded == revision_edges(script)
    assert ("0004", "0003") in recorded


# -- The rules at work: the demonstration revision of make online-migration, on both databases


def demo_config(app: Flask, variant: str = "safe") -> Config:
    return alembic_config(app, [DEMO_VERSIONS / variant])


def add_items(count: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (email, username, hashed_password, created_at) "
                "VALUES ('o@example.com', 'owner', 'x', CURRENT_TIMESTAMP)"
            )
        )
        owner = conn.scalar(text("SELECT id FROM users"))
        conn.execute(
            text(
                "INSERT INTO items (title, owner_id, created_at, updated_at) "
                "VALUES (:title, :owner, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            [{"title": f"Item Number {n}", "owner": owner} for n in range(count)],
        )


@dataclass
class Executed:
    statement: str
    autocommit: bool


@contextmanager
def executed_statements() -> Iterator[list[Executed]]:
    seen: list[Executed] = []

    def record(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        level = conn.get_execution_options().get("isolation_level")
        seen.append(Executed(" ".join(statement.split()), level == "AUTOCOMMIT"))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_the_safe_revision_backfills_in_batches_and_indexes_concurrently(
    migration_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONLINE_MIGRATION_BATCH_SIZE", "5")
    upgrade()
    add_items(12)
    with executed_statements() as seen:
        command.upgrade(demo_config(migration_app), "demo_safe")
    on_postgresql = db.engine.dialect.name == "postgresql"

    batches = [s for s in seen if s.statement.startswith("UPDATE items SET title_key")]
    assert len(batches) == 3  # ids 1-5, 6-10, 11-12: one statement, one transaction each
    assert all(b.autocommit for b in batches)
    index_builds = [s for s in seen if s.statement.startswith("CREATE INDEX")]
    assert len(index_builds) == 1
    if on_postgresql:
        assert index_builds[0].statement.startswith(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_title_key"
        )
        assert index_builds[0].autocommit
        settings = [s.statement for s in seen if s.statement.startswith("SET ")]
        assert settings[:2] == ["SET lock_timeout = '5000ms'", "SET statement_timeout = '60000ms'"]
    else:
        assert index_builds[0].statement == "CREATE INDEX ix_items_title_key ON items (title_key)"
    with db.engine.connect() as conn:
        keys = conn.execute(text("SELECT title, title_key FROM items")).all()
        assert len(keys) == 12
        assert all(key == title.lower() for title, key in keys)
        names = {i["name"] for i in inspect(conn).get_indexes("items")}
        assert "ix_items_title_key" in names
        if on_postgresql:
            valid = (
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_title_key'::regclass"
            )
            assert conn.scalar(text(valid))

    command.downgrade(demo_config(migration_app), "-1")
    with db.engine.connect() as conn:
        assert "title_key" not in {c["name"] for c in inspect(conn).get_columns("items")}


@pytest.mark.postgresql_only
@pytest.mark.parametrize("backend", ["postgresql"])  # lock_timeout is PostgreSQL's
def test_a_migration_gives_up_on_a_lock_instead_of_queueing_clients(migration_app: Flask) -> None:
    """lock_timeout: while a client holds a lock on items, the migration fails within the
    timeout instead of waiting (and making every later client wait behind it)."""
    upgrade()
    migration_app.config["MIGRATION_LOCK_TIMEOUT"] = 0.3
    reader = db.engine.connect()
    reader.execute(text("SELECT count(*) FROM items"))  # holds ACCESS SHARE until it ends
    release = threading.Timer(5.0, reader.rollback)  # without a lock timeout: waits 5 s
    release.start()
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError, match="lock timeout"):
            command.upgrade(demo_config(migration_app), "demo_safe")
    finally:
        waited = time.monotonic() - started
        release.cancel()
        reader.rollback()
        reader.close()
    assert waited < 2.0
    with db.engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == code_head()


def test_older_code_is_ready_on_a_database_migrated_past_its_head(
    migration_app: Flask, empty_database_url: str
) -> None:
    """Rolling deploys: a revision this code does not have, recorded as a descendant of this
    code's head, keeps /readyz at 200; forget its recorded parents and the answer is 503."""
    upgrade()
    command.upgrade(demo_config(migration_app), "demo_safe")
    older = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    response = older.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json["migrations"] == "ahead"
    assert response.json["revision"] == "demo_safe"
    assert response.json["head"] == code_head()

    with db.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {REVISION_PARENTS_TABLE} WHERE revision = 'demo_safe'"))
    assert older.test_client().get("/readyz").status_code == 503
    with older.app_context():
        db.engine.dispose()
