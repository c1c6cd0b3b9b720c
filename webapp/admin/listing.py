"""How each admin table is shown: its columns, filters and bulk actions.

The queries behind each table are in ``webapp.repositories.admin``; this module only says
what the one list template shows for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from sqlalchemy import Row

from webapp.repositories.admin import (
    AUDIT_LIST,
    AUDIT_TARGETS,
    BULK_TABLES,
    ITEM_LIST,
    POST_LIST,
    TAG_LIST,
    USER_LIST,
    BulkTable,
)
from webapp.repositories.listing import ListSpec

YES_NO_ANY = (("yes", "Yes"), ("no", "No"))


@dataclass(frozen=True)
class Column:
    """One column of a list: its heading, its value, how the cell shows it, its sort key."""

    label: str
    value: Callable[[Row[Any]], Any]
    kind: str = "text"  # the macro in templates/admin/_cells.html that renders the cell
    sort: str | None = None
    link: Callable[[Row[Any]], str] | None = None
    numeric: bool = False


@dataclass(frozen=True)
class FilterField:
    name: str
    label: str
    choices: tuple[tuple[str, str], ...] | None = None  # (value, label); None: a text box
    placeholder: str = ""


@dataclass(frozen=True)
class BulkChoice:
    name: str
    label: str  # the verb, e.g. "Deactivate"
    done: str  # what the flash says afterwards, e.g. "Deactivated"
    danger: bool = False


@dataclass(frozen=True)
class AdminTable:
    name: str
    title: str
    noun: str
    plural: str
    spec: ListSpec
    columns: tuple[Column, ...]
    search_label: str
    filters: tuple[FilterField, ...] = ()
    bulk: BulkTable | None = None
    bulk_choices: tuple[BulkChoice, ...] = ()
    create_endpoint: str | None = None
    intro: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"admin.{self.name}"

    def bulk_choice(self, name: str) -> BulkChoice | None:
        return next((choice for choice in self.bulk_choices if choice.name == name), None)

    def describe(self, count: int) -> str:
        return f"{count:,} {self.noun if count == 1 else self.plural}"


def _user_url(user_id: int | None) -> str:
    return url_for("admin.user_edit", user_id=user_id) if user_id else ""


USERS = AdminTable(
    name="users",
    title="Users",
    noun="user",
    plural="users",
    spec=USER_LIST,
    search_label="Search email or username",
    columns=(
        Column(
            "Username",
            lambda row: row[0].username,
            kind="user",
            sort="username",
            link=lambda row: _user_url(row[0].id),
        ),
        Column("Email", lambda row: row[0].email, sort="email"),
        Column("Active", lambda row: row[0].is_active, kind="boolean", sort="active"),
        Column("Admin", lambda row: row[0].is_admin, kind="flag", sort="admin"),
        Column("Joined", lambda row: row[0].created_at, kind="datetime", sort="created"),
    ),
    filters=(
        FilterField("active", "Active", YES_NO_ANY),
        FilterField("admin", "Admin", YES_NO_ANY),
    ),
    bulk=BULK_TABLES["users"],
    bulk_choices=(
        BulkChoice("activate", "Activate", "Activated"),
        BulkChoice("deactivate", "Deactivate", "Deactivated"),
        BulkChoice("delete", "Delete", "Deleted", danger=True),
    ),
    create_endpoint="admin.user_create",
)

ITEMS = AdminTable(
    name="items",
    title="Items",
    noun="item",
    plural="items",
    spec=ITEM_LIST,
    search_label="Search titles",
    columns=(
        Column(
            "Title",
            lambda row: row[0].title,
            kind="link",
            sort="title",
            link=lambda row: url_for("admin.item_edit", item_id=row[0].id),
        ),
        Column(
            "Owner",
            lambda row: row[0].owner.username,
            kind="link",
            sort="owner",
            link=lambda row: _user_url(row[0].owner_id),
        ),
        Column("Created", lambda row: row[0].created_at, kind="datetime", sort="created"),
        Column("Updated", lambda row: row[0].updated_at, kind="datetime", sort="updated"),
    ),
    filters=(FilterField("owner", "Owner", placeholder="username"),),
    bulk=BULK_TABLES["items"],
    bulk_choices=(BulkChoice("delete", "Delete", "Deleted", danger=True),),
)

POSTS = AdminTable(
    name="posts",
    title="Posts",
    noun="post",
    plural="posts",
    spec=POST_LIST,
    search_label="Search titles",
    columns=(
        Column(
            "Title",
            lambda row: row[0].title,
            kind="post",
            sort="title",
            link=lambda row: url_for("admin.post_edit", post_id=row[0].id),
        ),
        Column(
            "Author",
            lambda row: row[0].author.username,
            kind="link",
            sort="author",
            link=lambda row: _user_url(row[0].author_id),
        ),
        Column("Created", lambda row: row[0].created_at, kind="datetime", sort="created"),
        Column("Updated", lambda row: row[0].updated_at, kind="datetime", sort="updated"),
    ),
    filters=(
        FilterField("author", "Author", placeholder="username"),
        FilterField("tag", "Tag", placeholder="tag name"),
    ),
    bulk=BULK_TABLES["posts"],
    bulk_choices=(BulkChoice("delete", "Delete", "Deleted", danger=True),),
)

TAGS = AdminTable(
    name="tags",
    title="Tags",
    noun="tag",
    plural="tags",
    spec=TAG_LIST,
    search_label="Search tag names",
    columns=(
        Column(
            "Name",
            lambda row: row[0].name,
            kind="link",
            sort="name",
            link=lambda row: url_for("admin.tag_edit", tag_id=row[0].id),
        ),
        Column(
            "Posts",
            lambda row: row.post_count,
            kind="link",
            sort="posts",
            link=lambda row: url_for("admin.posts", tag=row[0].name),
            numeric=True,
        ),
    ),
    filters=(FilterField("used", "Used by posts", YES_NO_ANY),),
    bulk=BULK_TABLES["tags"],
    bulk_choices=(BulkChoice("delete", "Delete", "Deleted", danger=True),),
    intro="Open a tag to rename it or merge it into another.",
)

AUDIT = AdminTable(
    name="audit",
    title="Audit log",
    noun="event",
    plural="events",
    spec=AUDIT_LIST,
    search_label="Search actions and actors",
    columns=(
        Column("Time", lambda row: row[0].created_at, kind="datetime", sort="time"),
        Column(
            "Actor",
            lambda row: row[0].actor_name,
            kind="link",
            sort="actor",
            link=lambda row: _user_url(row[0].actor_id),
        ),
        Column("Action", lambda row: row[0], kind="audit_action", sort="action"),
        Column("Target", lambda row: row[0], kind="audit_target", sort="target"),
        Column("Address", lambda row: row[0].ip_address, sort="address"),
    ),
    filters=(
        FilterField("event", "Action starts with", placeholder="admin.user"),
        FilterField("actor", "Actor", placeholder="username"),
        FilterField("target", "Target", tuple((t, t.capitalize()) for t in AUDIT_TARGETS)),
    ),
)

TABLES: dict[str, AdminTable] = {t.name: t for t in (USERS, ITEMS, POSTS, TAGS, AUDIT)}
