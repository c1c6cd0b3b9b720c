"""Indexes that exist on one database only (trigram search indexes on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Index
from sqlalchemy.orm import InstrumentedAttribute

# ``Index.info`` key naming the only dialects an index is made on (read by the migrations'
# autogenerate filter, ``webapp.migrations_support.include_object_for``).
DIALECTS_INFO_KEY = "dialects"


def trigram_index(name: str, column: InstrumentedAttribute[str]) -> Index:
    """A GIN trigram index on ``column``, on PostgreSQL only (``pg_trgm``).

    It serves ``column ILIKE '%text%'`` on the bare column, so substring search uses an index
    instead of reading the whole table. SQLite has no such index: it reads the table.
    """
    key = column.key
    index = Index(
        name,
        column,
        postgresql_using="gin",
        postgresql_ops={key: "gin_trgm_ops"},
        info={DIALECTS_INFO_KEY: ("postgresql",)},
    )
    return index.ddl_if(dialect="postgresql")
