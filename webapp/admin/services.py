"""The admin console's rules: self-protection, the last admin, and an audit event per change.

Each function changes rows through the repositories and records what it did; the view (or
the command, for ``flask create-admin``) commits once afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import has_request_context
from sqlalchemy import ColumnElement

from webapp.auth.services import end_all_sessions
from webapp.extensions import db
from webapp.models import Item, Post, Tag, User
from webapp.repositories import (
    AuditRepository,
    ItemRepository,
    PostRepository,
    TagRepository,
    UserRepository,
)
from webapp.repositories.admin import AdminRepository, BulkTable
from webapp.web.requests import client_ip

USER_FIELDS = ("email", "username", "is_active", "is_admin")
# The actor of a change made with a ``flask`` command (no username can contain a space).
COMMAND_LINE = "command line"


class RuleError(Exception):
    """An admin asked for a change the rules forbid; the message says why."""


def record(
    action: str,
    actor: User | None,
    target: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record an admin change; ``actor`` None is the command line (which has no address)."""
    AuditRepository(db.session).record(
        action,
        actor=actor,
        actor_name=None if actor else COMMAND_LINE,
        target_type=type(target).__name__.lower(),
        target_id=target.id,
        before=before,
        after=after,
        ip_address=client_ip() if has_request_context() else None,
    )


def _changes(obj: Any, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields of ``values`` that differ from ``obj``: (before, after)."""
    changed = {name: value for name, value in values.items() if getattr(obj, name) != value}
    return {name: getattr(obj, name) for name in changed}, changed


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
    record("admin.user.create", actor, user, after={f: getattr(user, f) for f in USER_FIELDS})
    return user


def update_user(actor: User, user: User, values: dict[str, Any]) -> dict[str, Any]:
    """Apply the changed fields of ``values`` (email, username, active, admin); returns them."""
    check_user_change(actor, user, is_active=values["is_active"], is_admin=values["is_admin"])
    before, after = _changes(user, values)
    if not after:
        return after
    UserRepository(db.session).update(user, **after)
    if after.get("is_active") is False:
        end_all_sessions(user)  # a deactivated user's open sessions end on their next click
    record("admin.user.update", actor, user, before=before, after=after)
    return after


def set_password(actor: User, user: User, password: str) -> None:
    user.set_password(password)
    end_all_sessions(user)
    record("admin.user.password_set", actor, user, after={"sessions_ended": True})


def delete_user(actor: User, user: User) -> None:
    if user.id == actor.id:
        raise RuleError("You cannot delete your own account here.")
    if user.is_admin and user.is_active:
        _check_admins_remain(actor, user)
    items, posts = AdminRepository(db.session).owned_counts(user.id)
    before: dict[str, Any] = {f: getattr(user, f) for f in USER_FIELDS}
    before.update(items=items, posts=posts)
    record("admin.user.delete", actor, user, before=before)
    UserRepository(db.session).delete(user)


def update_item(actor: User, item: Item, values: dict[str, Any]) -> dict[str, Any]:
    before, after = _changes(item, values)
    if after:
        ItemRepository(db.session).update(item, **after)
        record("admin.item.update", actor, item, before=before, after=after)
    return after


def delete_item(actor: User, item: Item) -> None:
    before = {"title": item.title, "owner_id": item.owner_id}
    record("admin.item.delete", actor, item, before=before)
    ItemRepository(db.session).delete(item)


def update_post(
    actor: User, post: Post, values: dict[str, Any], tag_names: list[str]
) -> dict[str, Any]:
    before, after = _changes(post, values)
    old_tags = [tag.name for tag in post.tags]
    if sorted(old_tags) != sorted(tag_names):
        before["tags"], after["tags"] = old_tags, tag_names
    if not after:
        return after
    changes = {name: value for name, value in after.items() if name != "tags"}
    if "tags" in after:
        changes["tags"] = TagRepository(db.session).get_or_create(tag_names)
    PostRepository(db.session).update(post, **changes)
    record("admin.post.update", actor, post, before=before, after=after)
    return after


def delete_post(actor: User, post: Post) -> None:
    before = {"title": post.title, "author_id": post.author_id}
    record("admin.post.delete", actor, post, before=before)
    PostRepository(db.session).delete(post)


def rename_tag(actor: User, tag: Tag, name: str) -> bool:
    """Rename ``tag``; ``False`` when the name is already that."""
    if name == tag.name:
        return False
    before = {"name": tag.name}
    TagRepository(db.session).update(tag, name=name)
    record("admin.tag.rename", actor, tag, before=before, after={"name": name})
    return True


def merge_tag(actor: User, source: Tag, target: Tag) -> int:
    """Move ``source``'s posts to ``target`` and remove ``source``; returns the posts moved."""
    if source.id == target.id:
        raise RuleError("A tag cannot be merged into itself.")
    admin = AdminRepository(db.session)
    before = {"name": source.name, "posts": admin.post_count(source.id)}
    record(
        "admin.tag.merge",
        actor,
        source,
        before=before,
        after={"merged_into": target.name, "target_id": target.id},
    )
    return admin.merge_tags(source, target)


def delete_tag(actor: User, tag: Tag) -> None:
    before = {"name": tag.name, "posts": AdminRepository(db.session).post_count(tag.id)}
    record("admin.tag.delete", actor, tag, before=before)
    TagRepository(db.session).delete(tag)


def bulk_apply(table: BulkTable, action: str, target: ColumnElement[bool], actor: User) -> int:
    # The actor is left out of these actions; they must still be an admin themselves.
    removes_admins = table.target_type == "user" and action in {"deactivate", "delete"}
    if removes_admins and actor.id not in UserRepository(db.session).active_admin_ids(lock=True):
        raise RuleError("You are no longer an active admin.")
    return AdminRepository(db.session).bulk_apply(
        table, action, target, actor=actor, ip_address=client_ip()
    )
