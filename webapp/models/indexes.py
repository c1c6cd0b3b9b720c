"""Indexes that exist on one database only (trigram search indexes on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index
from sqlalchemy.orm import InstrumentedAttribute

# ``Index.info`` key naming the only dialects an index is made on (read by the migrations'
# autogenerate filter, ``webapp.db.migrations.include_object_for``).
DIALECTS_INFO_KEY = "dialects"
# ``Index.info`` key: False for an index autogenerate cannot compare (see ``trigram_index``).
COMPARED_INFO_KEY = "autogenerate_compares"


def trigram_index(name: str, indexed: InstrumentedAttribute[str] | Any) -> Index:
    """A GIN trigram index on a column or an expression, on PostgreSQL only (``pg_trgm``).

    It serves ``indexed ILIKE '%text%'`` written with the same column or expression, so
    substring search uses an index instead of reading the whole table. SQLite has no such
    index: it reads the table.
    """
    info: dict[str, Any] = {DIALECTS_INFO_KEY: ("postgresql",)}
    if isinstance(indexed, InstrumentedAttribute):
        key = indexed.key
    else:  # an expression: labelled, so the operator class can name it
        key = f"{name}_expression"
        indexed = indexed.label(key)
        # Alembic compares the expression as PostgreSQL prints it back, with parentheses
        # around each ``||``, to SQLAlchemy's rendering without them, and so sees a change
        # where there is none. The migration test checks this index by hand instead.
        info[COMPARED_INFO_KEY] = False
    index = Index(
        name,
        indexed,
        postgresql_using="gin",
        postgresql_ops={key: "gin_trgm_ops"},
        info=info,
    )
    return index.ddl_if(dialect="postgresql")
