"""Saving an edit: the one edit-conflict check for a row carrying a ``version``, and the one
way a save is reported.

The form carries the version it was opened at (``VersionField``); saving from it refuses to
overwrite a newer one (``VersionedRepository`` raises ``StaleDataError``, whether someone saved
before this request read the row or while it ran). ``save_edit`` is the view's side: commit
and go on, or roll back and show the conflict. Owners and admins edit items and posts
through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from webapp.extensions import db
from webapp.web.forms import Form

CONFLICT = "Someone saved a newer version while you were editing: nothing of yours is saved yet."


def flash_saved(message: str, changed: object) -> None:
    """Say ``message`` after a save that changed something, and "Nothing changed." otherwise."""
    flash(message if changed else "Nothing changed.", "success" if changed else "info")


def save_edit(
    form: Form,
    noun: str,
    save: Callable[[int], Any],
    reload: Callable[[], Any],
    *,
    saved: str,
    done: str,
    gone: str,
) -> Response | None:
    """Run ``save`` with the version ``form`` was opened at (it returns what it changed), commit,
    say ``saved`` and go to ``done``.

    When someone else saved in between: roll back and ``reload`` the row (the view's object is
    refreshed with it). The form then carries the version now saved, so that saving again is
    a deliberate overwrite, and reports the conflict: ``None``, and the view shows the form
    again (answered 409). A row deleted meanwhile is said, and the answer goes to ``gone``.
    """
    try:
        changes = save(form.version.data)
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        current = reload()
        if current is None:
            flash(f"That {noun} was deleted while you were editing it.", "warning")
            return redirect(gone)
        form.version.carry(current.version)
        form.report_conflict(CONFLICT)
        return None
    flash_saved(saved, changes)
    return redirect(done)
