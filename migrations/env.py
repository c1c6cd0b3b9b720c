"""Alembic environment, run by Flask-Migrate inside the application context.

Every migration runs under the rules of DESIGN §8 (see ``webapp/db/migrations.py``): on
PostgreSQL with a lock timeout and a statement timeout, each revision in a transaction of its
own, and each step recording its revision's parents for the readiness check of older code.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.operations.ops import MigrationScript
from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from webapp.db.migrations import (
    include_object_for,
    render_type_as_impl,
    revision_parents_recorder,
    timeout_statements,
)

config = context.config
if config.config_file_name is not None:
    # Keep the application's own loggers: the stock call would switch them off.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

# Flask-Migrate's stock env.py calls the deprecated get_engine(); this is the engine itself,
# unless MIGRATIONS_DATABASE_URL names another way to the same database (the primary directly,
# when DATABASE_URL goes through PgBouncer in transaction mode).
target_db = current_app.extensions["migrate"].db
migrations_url = current_app.config.get("MIGRATIONS_DATABASE_URL")
engine = create_engine(migrations_url, poolclass=NullPool) if migrations_url else target_db.engine
config.set_main_option(
    "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
)
TIMEOUTS = timeout_statements(
    current_app.config["MIGRATION_LOCK_TIMEOUT"], current_app.config["MIGRATION_STATEMENT_TIMEOUT"]
)


def process_revision_directives(
    context_: Any, revision: Any, directives: list[MigrationScript]
) -> None:
    """Write no empty revision when autogenerate finds no change."""
    if getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops is not None and script.upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_db.metadata,
        literal_binds=True,
        render_item=render_type_as_impl,
        include_object=include_object_for(engine.dialect.name),
        # One transaction per revision, as online: a revision's autocommit block (a
        # concurrent index, a batched backfill) ends only its own revision's transaction.
        transaction_per_migration=True,
    )
    if engine.dialect.name == "postgresql":
        for statement in TIMEOUTS:
            context.execute(statement)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_item", render_type_as_impl)
    conf_args.setdefault("transaction_per_migration", True)
    conf_args.setdefault("on_version_apply", revision_parents_recorder(context.script))
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Session settings (the migrations' own direct connection, never PgBouncer's): they
            # hold for every statement, autocommit blocks included.
            for statement in TIMEOUTS:
                connection.exec_driver_sql(statement)
            connection.commit()
        conf_args.setdefault("include_object", include_object_for(connection.dialect.name))
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
