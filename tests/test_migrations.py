"""The migrations build exactly the models' schema, and go down and up again, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex

from tests.conftest import BASE_TEST_CONFIG, ensure_database, postgres_url
from webapp import create_app
from webapp.db.migrations import include_object_for, render_type_as_impl
from webapp.extensions import db


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
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}

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
