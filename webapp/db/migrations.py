"""What Alembic needs to know about our column types (used by migrations/env.py and tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
        if type_ != "index":
            return True
        if name in uncompared:
            return False
        dialects = getattr(obj, "info", {}).get(DIALECTS_INFO_KEY)
        return dialects is None or dialect_name in dialects

    return include_object
