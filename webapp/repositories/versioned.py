"""Edit-conflict checks for models that carry a ``version`` (SQLAlchemy's ``version_id_col``)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, cast

from sqlalchemy.orm.exc import StaleDataError

from webapp.extensions import Base
from webapp.repositories.base import BaseRepository


class Versioned(Protocol):
    id: int
    version: int


V = TypeVar("V", bound=Base)


class VersionedRepository(BaseRepository[V]):
    """A repository whose rows refuse changes made from an out-of-date copy."""

    def check_version(self, obj: V, version: int) -> None:
        """Raise ``StaleDataError`` unless ``obj`` is still at ``version`` (the one a form saw)."""
        row = cast(Versioned, obj)
        if row.version != version:
            raise StaleDataError(
                f"{type(obj).__name__} {row.id} is at version {row.version}, not {version}"
            )

    def update_at_version(self, obj: V, version: int, **changes: Any) -> V:
        """Apply ``changes`` only if ``obj`` is still at ``version``.

        Raises ``StaleDataError`` when someone saved in between, whether before this request
        loaded the row (versions differ) or while it ran (the versioned UPDATE matches nothing).
        """
        self.check_version(obj, version)
        return self.update(obj, **changes)
