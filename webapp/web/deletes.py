"""Deleting one versioned row from its confirmation page, shared by the blueprints."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect
from werkzeug.wrappers import Response

from webapp.extensions import db
from webapp.repositories.versioned import AlreadyDeleted, VersionedRepository


def delete_and_redirect(
    repository: VersionedRepository[Any], obj: Any, *, name: str, done: str
) -> Response:
    """Delete ``obj`` (``name`` says what it is: ``Item “Lamp”``), commit, and go to ``done``.

    If someone deleted it first (two tabs, two people), nothing is left to do: the same
    redirect, and the flash says so.
    """
    try:
        repository.delete(obj)
        db.session.commit()
    except AlreadyDeleted:
        db.session.rollback()
        flash(f"{name} had already been deleted.", "info")
        return redirect(done)
    flash(f"{name} deleted.", "success")
    return redirect(done)
