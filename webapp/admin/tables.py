"""How each admin table is shown: its columns, filters and bulk actions.

The queries behind each table are in ``webapp.repositories.admin``; this module only says
what the one list template shows for them. The big tables' rows are built in Python
(``webapp.web.rendering``: a page of 100 rows is the console's hot path); the audit log's
by its own template, ``templates/admin/rows/audit.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import current_app, url_for

from webapp.admin.params import query_args
from webapp.extensions import db
from webapp.repositories.admin import (
    AUDIT_LIST,
    AUDIT_TARGETS,
    BULK_TABLES,
    ITEM_LIST,
    MAIL_LIST,
    POST_LIST,
    TAG_LIST,
    USER_LIST,
    BulkTable,
)
from webapp.repositories.keyset import KeysetPage, ListParams, ListSpec
from webapp.repositories.outbox import OutboxRepository
from webapp.repositories.trash import KINDS as TRASH_KINDS
from webapp.repositories.trash import TRASH_LISTS
from webapp.web.rendering import RowRenderer, item_rows, post_rows, tag_rows, user_rows

YES_NO_ANY = (("yes", "Yes"), ("no", "No"))


@dataclass(frozen=True)
class Column:
    """One column of a list: its heading and its sort key (the cells are in the rows template)."""

    label: str
    sort: str | None = None
    numeric: bool = False


@dataclass(frozen=True)
class SortLink:
    """A column heading's link: sort by that column (the other way if it is the current one)."""

    column: Column
    href: str | None  # None: the column does not sort
    current: bool = False
    next_desc: bool = False


def with_args(base: str, **args: str) -> str:
    """``base`` (a URL from ``url_for``) with more query arguments appended."""
    extra = "&".join(f"{name}={quote(value, safe='')}" for name, value in args.items())
    return f"{base}{'&' if '?' in base else '?'}{extra}"


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
    # The page that imports a CSV file with the export's columns (``webapp.admin.imports``).
    import_endpoint: str | None = None
    intro: str = ""
    # The rows' HTML built in Python (``webapp.web.rendering``); None: the template
    # ``rows_template`` draws them.
    rows: RowRenderer | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The page's template (it extends admin/list.html) and what else it shows beside the rows.
    template: str = "admin/list.html"
    context: Callable[[], dict[str, Any]] | None = None

    # The page exports its rows as CSV (the trash does not).
    exportable: bool = True

    @property
    def endpoint(self) -> str:
        return f"admin.{self.name}"

    @property
    def section(self) -> str:
        """The admin tab the list belongs to."""
        return self.name

    @property
    def fixed_args(self) -> dict[str, str]:
        """Query arguments every link and form of the list keeps (the trash's kind)."""
        return {}

    @property
    def rows_template(self) -> str:
        return f"admin/rows/{self.name}.html"

    def query_args(self, params: ListParams, *, with_sort: bool = True) -> dict[str, Any]:
        """The list's filters (and sort) as the query-string arguments of its links."""
        return {**self.fixed_args, **query_args(self.spec, params, with_sort=with_sort)}

    def fragment_key(self, params: ListParams) -> tuple[Any, ...]:
        """What the list's heading, filters and sort links show (not the cursor): the key
        of their cached HTML (``FragmentCache``)."""
        return (self.name, tuple(sorted(self.query_args(params).items())))

    def sort_label(self, sort: str) -> str:
        return next((c.label for c in self.columns if c.sort == sort), sort)

    def sort_links(self, params: ListParams) -> list[SortLink]:
        """Each column's heading and its sort link.

        One ``url_for`` for the list with its filters; each link adds its sort.
        """
        base = url_for(self.endpoint, **self.query_args(params, with_sort=False))
        links: list[SortLink] = []
        for column in self.columns:
            if column.sort is None:
                links.append(SortLink(column, None))
                continue
            current = params.sort == column.sort
            if current:
                next_desc = not params.desc
            else:
                next_desc = self.spec.sort_keys[column.sort].descending_first
            href = with_args(base, sort=column.sort, dir="desc" if next_desc else "asc")
            links.append(SortLink(column, href, current, next_desc))
        return links

    def page_links(self, page: KeysetPage) -> dict[str, str | None]:
        """First / previous / next / last: the list with its filters and sort, and a cursor."""
        first = url_for(self.endpoint, **self.query_args(page.params))
        return {
            "first": first if page.has_prev else None,
            "previous": with_args(first, before=page.first_cursor)
            if page.has_prev and page.first_cursor
            else None,
            "next": with_args(first, after=page.last_cursor)
            if page.has_next and page.last_cursor
            else None,
            "last": with_args(first, last="1") if page.has_next else None,
        }

    def bulk_choice(self, name: str) -> BulkChoice | None:
        return next((choice for choice in self.bulk_choices if choice.name == name), None)

    def describe(self, count: int) -> str:
        return f"{count:,} {self.noun if count == 1 else self.plural}"


USERS = AdminTable(
    name="users",
    title="Users",
    noun="user",
    plural="users",
    spec=USER_LIST,
    search_label="Search email or username",
    columns=(
        Column("Username", sort="username"),
        Column("Email", sort="email"),
        Column("Active", sort="active"),
        Column("Admin", sort="admin"),
        Column("Joined", sort="created"),
        Column("Confirmed"),
    ),
    filters=(
        FilterField("active", "Active", YES_NO_ANY),
        FilterField("admin", "Admin", YES_NO_ANY),
        FilterField("confirmed", "Confirmed email", YES_NO_ANY),
    ),
    bulk=BULK_TABLES["users"],
    bulk_choices=(
        BulkChoice("activate", "Activate", "Activated"),
        BulkChoice("deactivate", "Deactivate", "Deactivated"),
        BulkChoice("delete", "Delete", "Deleted", danger=True),
    ),
    create_endpoint="admin.user_create",
    import_endpoint="admin.users_import",
    rows=user_rows,
)

ITEMS = AdminTable(
    name="items",
    title="Items",
    noun="item",
    plural="items",
    spec=ITEM_LIST,
    search_label="Search titles",
    columns=(
        Column("Title", sort="title"),
        Column("Owner", sort="owner"),
        Column("Created", sort="created"),
        Column("Updated", sort="updated"),
    ),
    filters=(FilterField("owner", "Owner", placeholder="username"),),
    bulk=BULK_TABLES["items"],
    bulk_choices=(BulkChoice("delete", "Delete", "Deleted", danger=True),),
    import_endpoint="admin.items_import",
    rows=item_rows,
)

POSTS = AdminTable(
    name="posts",
    title="Posts",
    noun="post",
    plural="posts",
    spec=POST_LIST,
    search_label="Search titles",
    columns=(
        Column("Title", sort="title"),
        Column("Author", sort="author"),
        Column("Created", sort="created"),
        Column("Updated", sort="updated"),
    ),
    filters=(
        FilterField("author", "Author", placeholder="username"),
        FilterField("tag", "Tag", placeholder="tag name"),
    ),
    bulk=BULK_TABLES["posts"],
    bulk_choices=(BulkChoice("delete", "Delete", "Deleted", danger=True),),
    rows=post_rows,
)

TAGS = AdminTable(
    name="tags",
    title="Tags",
    noun="tag",
    plural="tags",
    spec=TAG_LIST,
    search_label="Search tag names",
    columns=(
        Column("Name", sort="name"),
        Column("Posts", sort="posts", numeric=True),
    ),
    filters=(FilterField("used", "Used by posts", YES_NO_ANY),),
    bulk=BULK_TABLES["tags"],
    bulk_choices=(BulkChoice("delete", "Delete", "Deleted", danger=True),),
    intro="Open a tag to rename it or merge it into another.",
    rows=tag_rows,
)

AUDIT = AdminTable(
    name="audit",
    title="Audit log",
    noun="event",
    plural="events",
    spec=AUDIT_LIST,
    search_label="Search actions and actors",
    columns=(
        Column("Time", sort="time"),
        Column("Actor", sort="actor"),
        Column("Action", sort="action"),
        Column("Target", sort="target"),
        Column("Address", sort="address"),
    ),
    filters=(
        FilterField("event", "Action starts with", placeholder="admin.user"),
        FilterField("actor", "Actor", placeholder="username"),
        FilterField("target", "Target", tuple((t, t.capitalize()) for t in AUDIT_TARGETS)),
    ),
)


def mail_counts() -> dict[str, Any]:
    return {"counts": OutboxRepository(db.session).counts()}


MAIL = AdminTable(
    name="mail",
    title="Mail",
    noun="message",
    plural="messages",
    spec=MAIL_LIST,
    search_label="Search recipients and subjects",
    columns=(
        Column("Created", sort="created"),
        Column("Recipient", sort="recipient"),
        Column("Subject"),
        Column("Status"),
        Column("Attempts", sort="attempts", numeric=True),
        Column("Last error"),
        Column("Next try / sent"),
    ),
    filters=(
        FilterField(
            "status", "Status", (("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed"))
        ),
    ),
    intro=(
        "Every email the site sends waits here until the deliverer (flask mail deliver) hands "
        "it to the mail server. Bodies are not shown: they hold sign-in links."
    ),
    template="admin/mail.html",
    context=mail_counts,
)

TABLES: dict[str, AdminTable] = {t.name: t for t in (USERS, ITEMS, POSTS, TAGS, AUDIT, MAIL)}


@dataclass(frozen=True)
class TrashTable(AdminTable):
    """One kind's list in the admin trash (``/admin/trash?kind=items``): the list machinery
    of every admin table, at one URL for all kinds."""

    kind: str = "items"
    exportable: bool = False
    template: str = "admin/trash.html"

    @property
    def endpoint(self) -> str:
        return "admin.trash"

    @property
    def section(self) -> str:
        return "trash"

    @property
    def fixed_args(self) -> dict[str, str]:
        return {"kind": self.kind}

    @property
    def rows_template(self) -> str:
        return "admin/rows/trash.html"


TRASH_CHOICES = (
    BulkChoice("restore", "Restore", "Restored"),
    BulkChoice("purge", "Delete forever", "Deleted forever", danger=True),
)


def _trash_context() -> dict[str, Any]:
    """What the trash page says beside its rows: how long rows wait there."""
    return {"retention_days": current_app.config["TRASH_RETENTION_DAYS"]}


def _trash_table(kind: str, noun: str, name_label: str, detail_label: str) -> TrashTable:
    spec = TRASH_LISTS[kind]
    model, target_type = TRASH_KINDS[kind]
    return TrashTable(
        name=spec.name,
        title="Trash",
        noun=f"trashed {noun}",
        plural=f"trashed {kind}",
        spec=spec,
        search_label=f"Search {name_label.lower()}s",
        columns=(
            Column(name_label, sort="name"),
            Column(detail_label),
            Column("Deleted by"),
            Column("Deleted", sort="deleted"),
        ),
        # Only its truth counts on the page (checkboxes and the bulk bar are shown).
        bulk=BulkTable(spec=spec, target_type=target_type, label=model.id, snapshot=()),
        bulk_choices=TRASH_CHOICES,
        context=_trash_context,
        kind=kind,
    )


TRASH_TABLES: dict[str, TrashTable] = {
    "items": _trash_table("items", "item", "Title", "Owner"),
    "posts": _trash_table("posts", "post", "Title", "Author"),
    "users": _trash_table("users", "user", "Username", "Email"),
}
