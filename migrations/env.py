"""Alembic environment, run by Flask-Migrate inside the application context."""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.operations.ops import MigrationScript
from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from webapp.db.migrations import include_object_for, render_type_as_impl

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
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_item", render_type_as_impl)
    with engine.connect() as connection:
        conf_args.setdefault("include_object", include_object_for(connection.dialect.name))
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
