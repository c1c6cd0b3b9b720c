"""What Alembic needs to know about our column types (used by migrations/env.py and tests)."""

from __future__ import annotations

from typing import Any

from webapp.sqltypes import UTCDateTime


def render_type_as_impl(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Write our UTC type as the plain column type it stores, so migrations need no import."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False
