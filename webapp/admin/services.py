"""The admin console's rules: self-protection, the last admin, and an audit event per change.

Each function changes rows through the repositories and records what it did; the view (or
the command, for ``flask create-admin``) commits once afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement

from webapp.audit import audit
from webapp.auth import two_factor
from webapp.auth.services import current_session, end_all_sessions
from webapp.changes import changed_fields
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import Item, Post, Tag, User, UserSession
from webapp.repositories import (
    SessionRepository,
    TagRepository,
    UserRepository,
)
from webapp.repositories.admin import AdminRepository, BulkTable
from webapp.repositories.trash import Restored, TrashRepository
from webapp.web.requests import client_ip

USER_FIELDS = ("email", "username", "is_active", "is_admin")


class RuleError(Exception):
    """An admin asked for a change the rules forbid; the message says why."""


def _check_admins_remain(actor: User, user: User) -> None:
    """Refuse to take away ``user``'s admin powers if that would leave no active admin.

    The active admins' rows are locked first, so that two admins removing each other at the
    same moment are served one after the other and the second is refused.
    """
    admins = UserRepository(db.session).active_admin_ids(lock=True)
    if actor.id not in admins:
        raise RuleError("You are no longer an active admin.")
    if not admins - {user.id}:
        raise RuleError("The last active admin cannot be removed.")


def check_user_change(actor: User, user: User, *, is_active: bool, is_admin: bool) -> None:
    if user.id == actor.id:
        if not is_active:
            raise RuleError("You cannot deactivate your own account.")
        if not is_admin:
            raise RuleError("You cannot remove your own admin rights.")
    if user.is_admin and user.is_active and not (is_admin and is_active):
        _check_admins_remain(actor, user)


def create_user(
    actor: User | None,
    *,
    email: str,
    username: str,
    password: str,
    email_confirmed_at: datetime | None = None,
    **flags: bool,
) -> User:
    """A new user, audited; ``actor`` None is the command line (``flask create-admin``)."""
    user = UserRepository(db.session).create_user(
        email=email,
        username=username,
        password=password,
        email_confirmed_at=email_confirmed_at,
        **flags,
    )
    audit("admin.user.create", actor, user, after={f: getattr(user, f) for f in USER_FIELDS})
    return user


def update_user(
    actor: User,
    user: User,
    values: dict[str, Any],
    *,
    action: str = "admin.user.update",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply the changed fields of ``values`` (email, username, active, admin) and record
    ``action`` (with ``context`` beside the values after); returns the changes."""
    check_user_change(actor, user, is_active=values["is_active"], is_admin=values["is_admin"])
    before, after = changed_fields(user, values)
    if not after:
        return after
    UserRepository(db.session).update(user, **after)
    if after.get("is_active") is False:
        end_all_sessions(user)  # a deactivated user's open sessions end on their next click
    audit(action, actor, user, before=before, after={**after, **(context or {})})
    return after


def set_password(actor: User, user: User, password: str) -> None:
    user.set_password(password)
    end_all_sessions(user)
    audit("admin.user.password_set", actor, user, after={"sessions_ended": True})


def reset_two_factor(actor: User, user: User) -> None:
    """Turn ``user``'s two-factor off for them: they lost their authenticator and their
    recovery codes. Their password alone then signs them in, and they can turn it on again
    (an admin among them is asked to at once, when ``ADMIN_REQUIRE_TWO_FACTOR`` is on)."""
    if user.id == actor.id:
        raise RuleError(
            "Turn your own two-factor off on your account's two-factor page, with a code."
        )
    two_factor.turn_off(user)
    audit("admin.user.two_factor_reset", actor, user)


def end_session(actor: User, user: User, record: UserSession) -> None:
    """Sign ``user`` out of one browser."""
    SessionRepository(db.session).end_one(record)
    audit("admin.user.session_ended", actor, user, after={"session": record.id})


def end_sessions(actor: User, user: User) -> int:
    """Sign ``user`` out everywhere (the acting admin's own browser stays signed in)."""
    current = current_session()
    keep = current.id if current is not None and user.id == actor.id else None
    ended = SessionRepository(db.session).end(user.id, keep_id=keep)
    audit("admin.user.sessions_ended", actor, user, after={"sessions_ended": ended})
    return ended


def delete_user(actor: User, user: User) -> tuple[int, int]:
    """Move ``user`` to the trash with their live items and posts (the same ``deleted_at``);
    their sessions end. Returns the items and posts trashed with them."""
    if user.id == actor.id:
        raise RuleError("You cannot delete your own account here.")
    if user.is_admin and user.is_active:
        _check_admins_remain(actor, user)
    items, posts = UserRepository(db.session).content_counts(user.id)
    before: dict[str, Any] = {f: getattr(user, f) for f in USER_FIELDS}
    before.update(items=items, posts=posts)
    audit("admin.user.trash", actor, user, before=before)
    return TrashRepository(db.session).trash_users([user.id], actor, now=utcnow())


def delete_item(actor: User, item: Item) -> None:
    """Move ``item`` to the trash (``AlreadyDeleted`` if someone did first)."""
    before = {"title": item.title, "owner_id": item.owner_id}
    TrashRepository(db.session).trash(item, actor)
    audit("admin.item.trash", actor, item, before=before)


def delete_post(actor: User, post: Post) -> None:
    """Move ``post`` to the trash (``AlreadyDeleted`` if someone did first)."""
    before = {"title": post.title, "author_id": post.author_id}
    TrashRepository(db.session).trash(post, actor)
    audit("admin.post.trash", actor, post, before=before)


def rename_tag(actor: User, tag: Tag, name: str) -> bool:
    """Rename ``tag``; ``False`` when the name is already that."""
    if name == tag.name:
        return False
    before = {"name": tag.name}
    TagRepository(db.session).update(tag, name=name)
    audit("admin.tag.rename", actor, tag, before=before, after={"name": name})
    return True


def merge_tag(actor: User, source: Tag, target: Tag) -> int:
    """Move ``source``'s posts to ``target`` and remove ``source``; returns the posts moved."""
    if source.id == target.id:
        raise RuleError("A tag cannot be merged into itself.")
    admin = AdminRepository(db.session)
    before = {"name": source.name, "posts": admin.post_count(source.id)}
    audit(
        "admin.tag.merge",
        actor,
        source,
        before=before,
        after={"merged_into": target.name, "target_id": target.id},
    )
    return admin.merge_tags(source, target)


def delete_tag(actor: User, tag: Tag) -> None:
    before = {"name": tag.name, "posts": AdminRepository(db.session).post_count(tag.id)}
    audit("admin.tag.delete", actor, tag, before=before)
    TagRepository(db.session).delete(tag)


def bulk_apply(table: BulkTable, action: str, target: ColumnElement[bool], actor: User) -> int:
    # The actor is left out of these actions; they must still be an admin themselves.
    removes_admins = table.target_type == "user" and action in {"deactivate", "delete"}
    if removes_admins and actor.id not in UserRepository(db.session).active_admin_ids(lock=True):
        raise RuleError("You are no longer an active admin.")
    return AdminRepository(db.session).bulk_apply(
        table, action, target, actor=actor, ip_address=client_ip()
    )


def restore_from_trash(kind: str, target: ColumnElement[bool], actor: User) -> Restored:
    """Restore the trashed rows of ``kind`` (items, posts, users) that ``target`` picks."""
    return TrashRepository(db.session).restore(kind, target, actor=actor, ip_address=client_ip())


def delete_forever(kind: str, target: ColumnElement[bool], actor: User) -> int:
    """Erase the trashed rows of ``kind`` that ``target`` picks (users with all they own)."""
    return TrashRepository(db.session).delete_forever(
        kind, target, actor=actor, ip_address=client_ip()
    )
