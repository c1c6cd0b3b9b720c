"""Migrations take their own way to the primary (``MIGRATIONS_DATABASE_URL``).

The app itself is tested through a real PgBouncer by running the request-level tests with
``TEST_VIA_PGBOUNCER=1`` (``make test-pgbouncer``; see the README).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from tests.conftest import BASE_TEST_CONFIG, ensure_database
from tests.pgcluster import free_port
from webapp import ROOT, create_app
from webapp.config import normalise_database_url
from webapp.extensions import db


@pytest.fixture
def scratch_url(postgres_engine: Engine) -> Iterator[str]:
    """An empty database beside the test database, reached directly (never via PgBouncer)."""
    import os

    from tests.conftest import DEFAULT_PG_URL

    url = make_url(normalise_database_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)))
    url = url.set(database=f"{url.database}_migrations_url")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    rendered = url.render_as_string(hide_password=False)
    ensure_database(rendered)
    yield rendered
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def test_flask_db_upgrade_uses_migrations_database_url(scratch_url: str) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    app = create_app(
        {
            **BASE_TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": nowhere,
            "MIGRATIONS_DATABASE_URL": scratch_url.replace("postgresql+psycopg2", "postgresql"),
        }
    )
    assert app.config["MIGRATIONS_DATABASE_URL"] == scratch_url  # normalised to psycopg2
    with app.app_context():
        upgrade()
        db.engine.dispose()
    engine = create_engine(scratch_url)
    with engine.connect() as conn:
        applied = set(conn.scalars(text("SELECT version_num FROM alembic_version")))
        users = conn.scalar(text("SELECT to_regclass('users') IS NOT NULL"))
    engine.dispose()
    assert applied == set(ScriptDirectory(str(ROOT / "migrations")).get_heads())
    assert users
