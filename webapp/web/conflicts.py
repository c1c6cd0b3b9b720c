"""Edit conflicts: the one check for every form that edits a row carrying a ``version``.

The form carries the version it was opened at (``VersionField``); saving from it refuses to
overwrite a newer one (``VersionedRepository`` raises ``StaleDataError``, whether someone saved
before this request read the row or while it ran). ``save_edit`` is the view's side: commit,
or roll back, reload and show the conflict. Owners and admins edit items and posts through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from flask import flash
from sqlalchemy.orm.exc import StaleDataError

from webapp.extensions import db
from webapp.web.forms import Form

CONFLICT = "Someone saved a newer version while you were editing: nothing of yours is saved yet."


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


R = TypeVar("R", bound=Versioned)


@dataclass(frozen=True)
class Edit(Generic[R]):
    """How saving an edit went."""

    saved: bool
    changes: Any = None  # what the save returned
    current: R | None = None  # after a conflict: the row as saved now (None: deleted)


def save_edit(
    form: Form, noun: str, save: Callable[[int], Any], reload: Callable[[], R | None]
) -> Edit[R]:
    """Run ``save`` with the version ``form`` was opened at, and commit.

    When someone else saved in between: roll back and ``reload`` the row. The form then
    carries the version now saved (saving again is a deliberate overwrite) and reports the
    conflict, so the page is answered 409. A row deleted meanwhile is said in a flash.
    """
    try:
        changes = save(form.version.data)
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        current = reload()
        if current is None:
            flash(f"That {noun} was deleted while you were editing it.", "warning")
        else:
            form.version.carry(current.version)
            form.report_conflict(CONFLICT)
        return Edit(saved=False, current=current)
    return Edit(saved=True, changes=changes)
