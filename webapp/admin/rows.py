"""The admin lists' table rows, as HTML built in Python.

A page of 50 or 100 rows is the console's hot path. Drawn by Jinja, each autoescaped value
and each call costs a few microseconds, about 12 µs a row, more than the whole rest of the
page; built here with one f-string per row it costs about 3 µs. The markup is what the list
template would write (``templates/admin/list.html`` includes it in its ``<tbody>``): every
text value passes through ``escape``; numbers, dates and our own URLs need none.

Each row is a plain row of the columns the table's ``ListSpec`` selects, unpacked in the
order the spec lists them (``webapp.repositories.admin``; then the list's own columns follow).
Links come from ``UrlPattern``: one ``url_for`` per kind of link for the whole page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from webapp.db.types import as_utc
from webapp.repositories.posts import tag_names
from webapp.web.templating import UrlPattern

TWO_DIGITS = tuple(f"{number:02d}" for number in range(60))
MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SPECIAL = re.compile(r"[&<>\"']")


def _text(value: str) -> str:
    """``value`` escaped for HTML (most values have nothing to escape: they pass as they are)."""
    return str(escape(value)) if _SPECIAL.search(value) else value


def _time(value: datetime | None) -> str:
    """A ``<time>`` element: "25 Nov 2026, 09:47" (UTC), as the ``datetime`` filter writes it,
    with the machine-readable "2026-11-25T09:47:05Z".

    Two-digit parts are looked up, not formatted: this runs for every timestamp of every row
    (two a row on the items list), and ``isoformat`` and format specs cost three times as much.
    """
    value = as_utc(value)
    if value is None:
        return "—"
    year, month = value.year, value.month
    day, hour, minute = TWO_DIGITS[value.day], TWO_DIGITS[value.hour], TWO_DIGITS[value.minute]
    return (
        f'<time datetime="{year:04d}-{TWO_DIGITS[month]}-{day}T{hour}:{minute}:'
        f'{TWO_DIGITS[value.second]}Z">{day} {MONTHS[month]} {year}, {hour}:{minute}</time>'
    )


def _select(noun: str, row_id: int, label: str) -> str:
    """The row's checkbox for bulk actions; ``label`` is already escaped."""
    return (
        f'<td class="select-col"><input type="checkbox" name="ids" value="{row_id}" '
        f'id="select-{row_id}" aria-label="Select {noun} {label}"></td>'
    )


def _badge(value: bool, no_class: str = " no") -> str:
    if value:
        return '<span class="badge yes">Yes</span>'
    return f'<span class="badge{no_class}">No</span>'


def user_rows(rows: Sequence[Any]) -> Markup:
    edit = UrlPattern("admin.user_edit", "user_id")
    items = UrlPattern("admin.items", "owner")
    posts = UrlPattern("admin.posts", "author")  # a query argument too: quoted as ``items``
    out = []
    for user_id, username, email, active, admin, created, confirmed, *_ in rows:
        name, arg = _text(username), items.quote(username)
        out.append(
            f"<tr>{_select('user', user_id, name)}"
            f'<td data-label="Username"><a href="{edit(user_id)}" class="strong">{name}</a> '
            f'<span class="row-links"><a href="{items.with_quoted(arg)}">items</a> · '
            f'<a href="{posts.with_quoted(arg)}">posts</a></span></td>'
            f'<td data-label="Email">{_text(email)}</td>'
            f'<td data-label="Active">{_badge(active)}</td>'
            f'<td data-label="Admin">{_badge(admin, "")}</td>'
            f'<td data-label="Joined">{_time(created)}</td>'
            f'<td data-label="Confirmed">{_badge(confirmed is not None)}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704 - every text value above is escaped


def item_rows(rows: Sequence[Any]) -> Markup:
    edit = UrlPattern("admin.item_edit", "item_id")
    owner = UrlPattern("admin.user_edit", "user_id")
    out = []
    for item_id, raw_title, owner_id, owner_name, created, updated, *_ in rows:
        title = _text(raw_title)
        out.append(
            f"<tr>{_select('item', item_id, title)}"
            f'<td data-label="Title"><a href="{edit(item_id)}">{title}</a></td>'
            f'<td data-label="Owner"><a href="{owner(owner_id)}">{_text(owner_name)}</a></td>'
            f'<td data-label="Created">{_time(created)}</td>'
            f'<td data-label="Updated">{_time(updated)}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704 - every text value above is escaped


def post_rows(rows: Sequence[Any]) -> Markup:
    edit = UrlPattern("admin.post_edit", "post_id")
    author = UrlPattern("admin.user_edit", "user_id")
    tagged = UrlPattern("admin.posts", "tag")
    out = []
    for post_id, raw_title, author_id, author_name, created, updated, joined, *_ in rows:
        tags = "".join(
            f'<li><a class="tag" href="{tagged(name)}">{_text(name)}</a></li>'
            for name in tag_names(joined)
        )
        tag_list = f' <ul class="tags" aria-label="Tags">{tags}</ul>' if tags else ""
        title = _text(raw_title)
        out.append(
            f"<tr>{_select('post', post_id, title)}"
            f'<td data-label="Title"><a href="{edit(post_id)}">{title}</a>{tag_list}</td>'
            f'<td data-label="Author"><a href="{author(author_id)}">{_text(author_name)}</a></td>'
            f'<td data-label="Created">{_time(created)}</td>'
            f'<td data-label="Updated">{_time(updated)}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704 - every text value above is escaped


def tag_rows(rows: Sequence[Any]) -> Markup:
    edit = UrlPattern("admin.tag_edit", "tag_id")
    tagged = UrlPattern("admin.posts", "tag")
    out = []
    for tag_id, raw_name, post_count, *_ in rows:
        name = _text(raw_name)
        out.append(
            f"<tr>{_select('tag', tag_id, name)}"
            f'<td data-label="Name"><a href="{edit(tag_id)}">{name}</a></td>'
            f'<td class="num" data-label="Posts"><a href="{tagged(raw_name)}">'
            f"{post_count}</a></td></tr>\n"
        )
    return Markup("".join(out))  # noqa: S704 - every text value above is escaped


RowRenderer = Callable[[Sequence[Any]], Markup]


def keyset_nav(links: Mapping[str, str | None]) -> Markup:
    """First / previous / next / last under a list (``AdminTable.page_links``), keeping its
    filters and sort; a page that does not exist is shown disabled. Nothing when the list
    has a single page."""
    if not (links["first"] or links["last"]):
        return Markup("")
    parts = ['<nav class="pagination keyset" aria-label="Pagination">']
    for key, label, rel in _NAV_LINKS:
        target = links["first"] if key in {"first", "previous"} else links["last"]
        if target:
            href = escape(links[key] or "")
            parts.append(f'<a href="{href}"{rel}>{label}</a>')
        else:
            parts.append(f'<span class="disabled" aria-hidden="true">{label}</span>')
    parts.append("</nav>")
    return Markup("\n".join(parts))  # noqa: S704 - the links are escaped, the labels ours


_NAV_LINKS = (
    ("first", "&laquo; First", ""),
    ("previous", "&lsaquo; Previous", ' rel="prev"'),
    ("next", "Next &rsaquo;", ' rel="next"'),
    ("last", "Last &raquo;", ""),
)
