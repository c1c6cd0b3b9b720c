"""The only HTML and URLs Python builds for the pages: rows of the busiest lists.

DESIGN §12 keeps markup in Jinja and ``url_for`` in templates unless ``make bench`` shows a
page at least 5% faster otherwise, in the same run. What is here passed that bar (README,
"Performance at scale", gives the run: Jinja rows against these, page by page):

- ``admin_rows``: the table rows of the admin users, items, posts and tags lists (50 to
  100 rows a page: the console's hot path);
- ``post_cards``: the posts of the home page, the feed, a tag's page and a profile;
- ``url_pattern`` + ``fill``: a list's row links from one ``url_for`` per kind of link,
  instead of one per row (the item list and the audit log's Jinja rows use it too);
- ``time_tag``: the one ``<time>`` element for a timestamp, a filter (every page's dates).

Every text value goes through ``escape``; ``tests/test_rendering.py`` holds each piece's
exact HTML (snapshots). Nothing here keeps anything between requests: there is no cache.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, quote_plus

from flask import Flask, current_app, render_template, request, url_for
from jinja2.filters import do_truncate
from markupsafe import Markup, escape

from webapp.db.types import as_utc
from webapp.models.post import split_tag_names

_SPECIAL = re.compile(r"[&<>\"']")


def _text(value: str) -> str:
    """``value`` escaped for HTML (most values have nothing to escape: they pass as they are,
    without a ``Markup`` object made for each)."""
    return str(escape(value)) if _SPECIAL.search(value) else value


# Characters no URL part quotes (RFC 3986 unreserved): such text is used as it is.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


class UrlPattern:
    """``url_for(endpoint, **{arg: value})`` for the many values of a list's rows.

    The URL is built once by ``url_for`` with a marker in place of the value; each row then
    only fills its value in, quoted as Werkzeug quotes it there (a path segment or a query
    argument). ``tests/test_rendering.py`` checks it against ``url_for`` for awkward values.
    """

    MARKER = "2147483647"  # accepted by every converter we use (int(max=...) and strings)
    PATH_SAFE = "!$&'()*+,/:;=@"  # Werkzeug's path-segment quoting
    QUERY_SAFE = "!$'()*,/:;?@"  # Werkzeug's query-string quoting

    def __init__(self, endpoint: str, arg: str, **values: Any) -> None:
        url = template_url_for(endpoint, **{**values, arg: int(self.MARKER)})
        self.head, found, self.tail = url.partition(self.MARKER)
        if not found or self.MARKER in self.tail:
            raise ValueError(f"cannot make a URL pattern of {url!r}")
        self.in_query = "?" in self.head

    def __call__(self, value: Any) -> str:
        if type(value) is int:  # an id: digits need no quoting (the most common case)
            return f"{self.head}{value}{self.tail}"
        text = str(value)
        if not _UNRESERVED.fullmatch(text):
            safe = self.QUERY_SAFE if self.in_query else self.PATH_SAFE
            text = (quote_plus if self.in_query else quote)(text, safe=safe)
        return f"{self.head}{text}{self.tail}"


def fill(pattern: UrlPattern, value: Any) -> str:
    """``{{ edit_url | fill(user.id) }}``: a row's URL from the page's ``url_pattern``."""
    return pattern(value)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# How a page shows a timestamp, by name: the text from the value's ISO form (which the
# ``<time>`` element carries anyway) and its month's name. Slicing that text costs half of
# what ``strftime`` does, and an admin list shows a hundred timestamps (README, "Performance
# at scale"). None of these texts holds a character HTML must escape.
TIME_STYLES: dict[str, Callable[[str, str], str]] = {
    # 25 Nov 2026, 09:47 UTC: where a timestamp stands alone (a record's page)
    "full": lambda iso, month: f"{iso[8:10]} {month} {iso[:4]}, {iso[11:16]} UTC",
    # 25 Nov 2026, 09:47: a list's column, headed "(UTC)"
    "minute": lambda iso, month: f"{iso[8:10]} {month} {iso[:4]}, {iso[11:16]}",
    # 25 Nov 2026
    "date": lambda iso, month: f"{iso[8:10]} {month} {iso[:4]}",
    # 25 Nov, 09:47: this year's recent events (the dashboard)
    "day": lambda iso, month: f"{iso[8:10]} {month}, {iso[11:16]}",
}


# "00" to "99": a timestamp's parts as text by indexing, without a format call for each.
TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))


def iso_utc(value: datetime) -> str:
    """``2026-11-25T09:47:05Z``: an aware UTC ``value`` to the second, the form a ``<time
    datetime>`` attribute takes. ``isoformat()`` also writes the microseconds and the offset,
    through C's printf, at three times the cost: a tenth of an admin list's instructions went
    on it (README, "Performance at scale")."""
    return (
        f"{value.year:04d}-{TWO_DIGITS[value.month]}-{TWO_DIGITS[value.day]}"
        f"T{TWO_DIGITS[value.hour]}:{TWO_DIGITS[value.minute]}:{TWO_DIGITS[value.second]}Z"
    )


def format_datetime(value: datetime | None, style: str = "full") -> str:
    """A timestamp as text, in UTC (a naive value is taken to be UTC already): the
    ``datetime`` filter, for an attribute (``aria-label``) where no element may go."""
    value = as_utc(value)
    return "" if value is None else TIME_STYLES[style](iso_utc(value), MONTHS[value.month - 1])


def _time(value: datetime | None, style: str) -> str:
    """The ``<time>`` element's HTML (nothing in it needs escaping: see TIME_STYLES)."""
    value = as_utc(value)
    if value is None:
        return "&mdash;"
    iso = iso_utc(value)
    return f'<time datetime="{iso}">{TIME_STYLES[style](iso, MONTHS[value.month - 1])}</time>'


def time_tag(value: datetime | None, style: str = "full") -> Markup:
    """``<time datetime="2026-11-25T09:47:05Z">25 Nov 2026, 09:47 UTC</time>``; a dash
    for no timestamp. The one way the pages show a timestamp; ``style`` names one of
    ``TIME_STYLES``."""
    return Markup(_time(value, style))  # noqa: S704 - see _time


EXCERPT_LENGTH = 200


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


def _tag_links(joined: str | None, url: UrlPattern) -> str:
    """A post's tags as a ``<ul class="tags">`` of links (nothing when it has none)."""
    names = split_tag_names(joined)
    if not names:
        return ""
    links = "".join(f'<li><a class="tag" href="{url(n)}">{_text(n)}</a></li>' for n in names)
    return f'<ul class="tags" aria-label="Tags">{links}</ul>'


def user_rows(rows: Sequence[Any]) -> Markup:
    """USER_LIST's rows (``webapp.repositories.admin``)."""
    edit = UrlPattern("admin.user_edit", "user_id")
    items = UrlPattern("admin.items", "owner")
    posts = UrlPattern("admin.posts", "author")
    out = []
    for user_id, username, email, active, admin, created, confirmed, *_ in rows:
        name = _text(username)
        out.append(
            f"<tr>{_select('user', user_id, name)}"
            f'<td data-label="Username"><a href="{edit(user_id)}" class="strong">{name}</a> '
            f'<span class="row-links"><a href="{items(username)}">items</a> &middot; '
            f'<a href="{posts(username)}">posts</a></span></td>'
            f'<td data-label="Email">{_text(email)}</td>'
            f'<td data-label="Active">{_badge(active)}</td>'
            f'<td data-label="Admin">{_badge(admin, "")}</td>'
            f'<td data-label="Joined">{_time(created, "minute")}</td>'
            f'<td data-label="Confirmed">{_badge(confirmed is not None)}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704 - every text value above is escaped


def item_rows(rows: Sequence[Any]) -> Markup:
    """ITEM_LIST's rows (``webapp.repositories.admin``)."""
    edit = UrlPattern("admin.item_edit", "item_id")
    owner = UrlPattern("admin.user_edit", "user_id")
    out = []
    for item_id, raw_title, owner_id, owner_name, created, updated, *_ in rows:
        title = _text(raw_title)
        out.append(
            f"<tr>{_select('item', item_id, title)}"
            f'<td data-label="Title"><a href="{edit(item_id)}">{title}</a></td>'
            f'<td data-label="Owner"><a href="{owner(owner_id)}">{_text(owner_name)}</a></td>'
            f'<td data-label="Created">{_time(created, "minute")}</td>'
            f'<td data-label="Updated">{_time(updated, "minute")}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704 - every text value above is escaped


def post_rows(rows: Sequence[Any]) -> Markup:
    """POST_LIST's rows (``webapp.repositories.admin``)."""
    edit = UrlPattern("admin.post_edit", "post_id")
    author = UrlPattern("admin.user_edit", "user_id")
    tagged = UrlPattern("admin.posts", "tag")
    out = []
    for post_id, raw_title, author_id, author_name, created, updated, joined, *_ in rows:
        title = _text(raw_title)
        tags = _tag_links(joined, tagged)
        out.append(
            f"<tr>{_select('post', post_id, title)}"
            f'<td data-label="Title"><a href="{edit(post_id)}">{title}</a>'
            f"{' ' + tags if tags else ''}</td>"
            f'<td data-label="Author"><a href="{author(author_id)}">{_text(author_name)}</a></td>'
            f'<td data-label="Created">{_time(created, "minute")}</td>'
            f'<td data-label="Updated">{_time(updated, "minute")}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704 - every text value above is escaped


def tag_rows(rows: Sequence[Any]) -> Markup:
    """TAG_LIST's rows (``webapp.repositories.admin``)."""
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


def post_cards(posts: Sequence[Any], heading: str = "h3") -> Markup:
    """``<div class="post-list">`` of POST_CARD rows (``webapp.repositories.posts``): title,
    author, date, the start of the body and the tags; each title an ``<h2>`` or ``<h3>``."""
    if heading not in {"h2", "h3"}:
        raise ValueError(f"not a heading for a post card: {heading!r}")
    env = current_app.jinja_env
    post_url = UrlPattern("posts.detail", "post_id")
    author_url = UrlPattern("profiles.detail", "username")
    tag_url = UrlPattern("tags.detail", "name")
    out = ['<div class="post-list">']
    for post in posts:
        excerpt = ""
        if post.excerpt:
            short = escape(do_truncate(env, post.excerpt, EXCERPT_LENGTH))
            excerpt = f'\n  <p class="excerpt">{short}</p>'
        tags = _tag_links(post.tag_names, tag_url)
        out.append(
            f'<article class="card post-card">\n'
            f'  <{heading} class="post-title"><a href="{post_url(post.id)}">'
            f"{_text(post.title)}</a></{heading}>\n"
            f'  <p class="meta">by <a href="{author_url(post.author_username)}">'
            f"{_text(post.author_username)}</a>"
            f" &middot; {_time(post.created_at, 'date')}</p>{excerpt}"
            f"{chr(10) + '  ' + tags if tags else ''}\n"
            f"</article>"
        )
    out.append("</div>")
    return Markup("\n".join(out))  # noqa: S704 - every text value above is escaped


class TemplateUrls:
    """``url_for`` for the templates, remembered per worker process.

    Key: the mount point (``SCRIPT_NAME``), the endpoint and its arguments. A URL depends on
    nothing else (the URL map is fixed once the app is made, static files' versions are
    read at start), so it cannot go stale. Not remembered: relative endpoints, special
    arguments (``_external``, ``_anchor``, ...), values that cannot be hashed, and anything in
    debug mode, where static files change under a running server. At most ``size`` URLs are
    kept (the oldest go first), so links carrying visitors' search text cannot grow it
    without end.
    """

    def __init__(self, app: Flask, size: int = 4096) -> None:
        self.app = app
        self.size = size
        self.urls: dict[tuple[Any, ...], str] = {}
        self.lock = threading.Lock()

    def __call__(self, endpoint: str, **values: Any) -> str:
        try:
            key = (request.script_root, endpoint, *values.items())
            url = self.urls.get(key)
        except (RuntimeError, TypeError):  # outside a request; an unhashable value
            return url_for(endpoint, **values)
        if url is None:
            url = url_for(endpoint, **values)
            if not (self.app.debug or endpoint[:1] == "." or any(n[:1] == "_" for n in values)):
                with self.lock:
                    if len(self.urls) >= self.size:
                        del self.urls[next(iter(self.urls))]
                    self.urls[key] = url
        return url


class FragmentCache:
    """Parts of pages that are the same for everyone who asks the same thing, rendered once
    per worker process.

    ``{{ cached_fragment("admin/_list_head.html", key, table=table, ...) }}`` renders the
    template with that context the first time ``key`` is seen (with the template's name and
    the mount point), and reuses the HTML afterwards. Key: everything the fragment shows. A
    fragment shows nothing but its key's values and constants (no user's data beyond the key,
    no CSRF token, no row, no cursor), and templates do not change under a running worker,
    so an entry cannot go stale. Bounded, least recently used out; off in debug mode.
    """

    def __init__(self, app: Flask, size: int = 1024) -> None:
        self.app = app
        self.size = size
        self.entries: OrderedDict[Hashable, Markup] = OrderedDict()
        self.lock = threading.Lock()

    def __call__(self, template_name: str, key: Hashable, **context: Any) -> Markup:
        if self.app.debug:
            return Markup(render_template(template_name, **context))  # noqa: S704 - a template
        full_key = (template_name, request.script_root, key)
        with self.lock:
            html = self.entries.get(full_key)
            if html is not None:
                self.entries.move_to_end(full_key)
                return html
        html = Markup(render_template(template_name, **context))  # noqa: S704 - a template
        with self.lock:
            self.entries[full_key] = html
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return html


TEMPLATE_URLS = "webapp.template_urls"  # the app's TemplateUrls, in ``app.extensions``


def template_url_for(endpoint: str, **values: Any) -> str:
    """``url_for`` through the app's ``TemplateUrls``, as the templates build links."""
    urls = current_app.extensions.get(TEMPLATE_URLS)
    return url_for(endpoint, **values) if urls is None else str(urls(endpoint, **values))


def register(app: Flask) -> None:
    urls = TemplateUrls(app)
    app.extensions[TEMPLATE_URLS] = urls
    app.jinja_env.globals["url_for"] = urls
    app.jinja_env.globals["cached_fragment"] = FragmentCache(app)
    app.add_template_global(post_cards)
    app.add_template_filter(split_tag_names, "tag_names")
    app.add_template_global(UrlPattern, "url_pattern")
    app.add_template_filter(fill)
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(time_tag)
