"""Saving an item's or a post's edit, by its owner or an admin: the changed fields, the
versioned write and the audit event with the values before and after, written once.

Every change of an item or a post leaves an event naming the fields it changed, their values
before and after; an admin's history page (``webapp.admin.history``) reads a row's story,
and restores an earlier state, from these events.
"""

from __future__ import annotations

from typing import Any

from webapp.audit import audit
from webapp.extensions import db
from webapp.models import Item, Post, User
from webapp.repositories import ItemRepository, PostRepository


def changed_fields(obj: Any, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields of ``values`` that differ from ``obj``: (before, after)."""
    changed = {name: value for name, value in values.items() if getattr(obj, name) != value}
    return {name: getattr(obj, name) for name in changed}, changed


def item_values(item: Item) -> dict[str, Any]:
    """What an item's events record of it when it is made."""
    return {"title": item.title, "description": item.description}


def post_values(post: Post) -> dict[str, Any]:
    """What a post's events record of it when it is made."""
    return {"title": post.title, "body": post.body, "tags": [tag.name for tag in post.tags]}


def update_item(
    actor: User,
    item: Item,
    version: int,
    values: dict[str, Any],
    *,
    action: str,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply the changed fields of ``values`` to ``item`` if it is still at ``version`` (else
    ``StaleDataError``) and record ``action`` (with ``context`` beside the values after);
    returns the changes (none: nothing is written)."""
    items = ItemRepository(db.session)
    items.check_version(item, version)
    before, after = changed_fields(item, values)
    if after:
        items.update(item, **after)
        audit(action, actor, item, before=before, after={**after, **(context or {})})
    return after


def update_post(
    actor: User,
    post: Post,
    version: int,
    values: dict[str, Any],
    tag_names: list[str],
    *,
    action: str,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Save an edit of ``post`` (title, body, tags) made at ``version`` and record ``action``
    (with ``context`` beside the values after); returns the changes (none: nothing written)."""
    posts = PostRepository(db.session)
    posts.check_version(post, version)
    before, after = changed_fields(post, values)
    old_tags = [tag.name for tag in post.tags]
    if sorted(old_tags) != sorted(tag_names):
        before["tags"], after["tags"] = old_tags, list(tag_names)
    if after:
        posts.update_post(
            post, version, title=values["title"], body=values["body"], tag_names=tag_names
        )
        audit(action, actor, post, before=before, after={**after, **(context or {})})
    return after
