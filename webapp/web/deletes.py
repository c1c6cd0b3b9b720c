"""Deleting one item or post from its confirmation page, shared by the blueprints: it goes
to the trash, from which its owner (``/account/trash``) or an admin can restore it."""

from __future__ import annotations

from flask import flash, redirect
from werkzeug.wrappers import Response

from webapp.audit import audit
from webapp.auth.login import signed_in_row
from webapp.extensions import db
from webapp.models import Item, Post
from webapp.repositories.trash import TrashRepository
from webapp.repositories.versioned import AlreadyDeleted


def trash_and_redirect(row: Item | Post, *, name: str, done: str) -> Response:
    """Move ``row`` to the trash (``name`` says what it is: ``Item “Lamp”``), commit, and go
    to ``done``. Audited as ``item.trash`` by its owner, ``admin.item.trash`` by an admin.

    If someone deleted it first (two tabs, two people), nothing is left to do: the same
    redirect, and the flash says so.
    """
    actor = signed_in_row()
    noun = type(row).__name__.lower()
    owner_id = row.owner_id if isinstance(row, Item) else row.author_id
    action = f"{noun}.trash" if owner_id == actor.id else f"admin.{noun}.trash"
    before = {"title": row.title, f"{'owner' if noun == 'item' else 'author'}_id": owner_id}
    try:
        TrashRepository(db.session).trash(row, actor)
        audit(action, actor, row, before=before)
        db.session.commit()
    except AlreadyDeleted:
        db.session.rollback()
        flash(f"{name} had already been deleted.", "info")
        return redirect(done)
    where = "your trash (Account → Trash)" if owner_id == actor.id else "the trash"
    flash(f"{name} moved to {where}.", "success")
    return redirect(done)
