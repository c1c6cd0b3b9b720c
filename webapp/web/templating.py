"""Filters and globals the templates share."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from flask import Flask, current_app, render_template, request, url_for
from markupsafe import Markup, escape

from webapp.repositories.posts import tag_names


def format_datetime(value: datetime | None, fmt: str = "%d %b %Y, %H:%M UTC") -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime(fmt)


def format_date(value: datetime | None) -> str:
    return format_datetime(value, "%d %b %Y")


def query_args_without(*names: str) -> dict[str, str]:
    """The current query string as a dict, without ``names`` (for pagination links)."""
    return {k: v for k, v in request.args.items() if k not in names}


# Characters no URL part quotes (RFC 3986 unreserved): such text is used as it is.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


class UrlPattern:
    """``url_for(endpoint, **{arg: value})`` for the many values of a list's rows.

    The URL is built once by ``url_for`` with a marker in place of the value; each row then
    only fills its value in, quoted as Werkzeug quotes it there (a path segment or a query
    argument). Rendering a page of rows costs one ``url_for`` per kind of link, not per row.
    """

    MARKER = "2147483647"  # accepted by every converter we use (int(max=...) and strings)
    PATH_SAFE = "!$&'()*+,/:;=@"  # Werkzeug's path-segment quoting
    QUERY_SAFE = "!$'()*,/:;?@"  # Werkzeug's query-string quoting

    def __init__(self, endpoint: str, arg: str, **values: Any) -> None:
        values = {**values, arg: int(self.MARKER)}
        url = cached_url_for(endpoint, **values)
        self.head, found, self.tail = url.partition(self.MARKER)
        if not found or self.MARKER in self.tail:
            raise ValueError(f"cannot make a URL pattern of {url!r}")
        self.in_query = "?" in self.head

    def __call__(self, value: Any) -> str:
        if type(value) is int:  # nothing to quote
            return f"{self.head}{value}{self.tail}"
        return f"{self.head}{self.quote(value)}{self.tail}"

    def quote(self, value: Any) -> str:
        """``value`` quoted as this URL's part needs it (for ``with_quoted``)."""
        text = str(value)
        if _UNRESERVED.fullmatch(text):  # nothing to quote
            return text
        if self.in_query:
            return quote_plus(text, safe=self.QUERY_SAFE)
        return quote(text, safe=self.PATH_SAFE)

    def with_quoted(self, quoted: str) -> str:
        """The URL for a value ``quote`` (of a pattern of the same kind) already quoted."""
        return f"{self.head}{quoted}{self.tail}"


def fill(pattern: UrlPattern, value: Any) -> str:
    """``{{ edit_url | fill(user.id) }}``: a row's URL from a page's ``url_pattern``.

    A filter rather than a call: Jinja calls filters directly, which matters per row.
    """
    return pattern(value)


def hidden_inputs(args: dict[str, Any]) -> Markup:
    """``<input type="hidden">`` for each query argument (a form that keeps a list's filters)."""
    return Markup(  # noqa: S704 - names and values escaped
        "".join(
            f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
            for name, value in args.items()
        )
    )


def time_tag(value: datetime | None, fmt: str = "%d %b %Y, %H:%M UTC") -> Markup:
    """``<time datetime="...">...</time>`` for a timestamp (empty for none), in one filter call.

    Built by concatenation: ``Markup.format`` costs more than the rest of a row's cells.
    """
    if value is None:
        return Markup("")
    iso, text = escape(value.isoformat()), escape(format_datetime(value, fmt))
    return Markup(f'<time datetime="{iso}">{text}</time>')  # noqa: S704 - both parts escaped


class TemplateUrls:
    """``url_for`` for an app's templates, remembered per process.

    A page's layout alone builds a dozen links that are the same on every request (the
    navigation, the stylesheet with its content version); each is built once per mount point
    (``SCRIPT_NAME``) and then looked up: a dictionary lookup where ``url_for`` costs several
    microseconds. Not remembered: relative endpoints, special arguments (``_external``,
    ``_anchor``, ...), values that cannot be hashed, and anything in debug mode, where static
    files change under a running server. At most ``size`` links are kept (the oldest go
    first), so links carrying visitors' search text cannot make it grow without end.
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
            if self.remembers(endpoint, values):
                with self.lock:
                    if len(self.urls) >= self.size:
                        del self.urls[next(iter(self.urls))]
                    self.urls[key] = url
        return url

    def remembers(self, endpoint: str, values: dict[str, Any]) -> bool:
        return not (
            self.app.debug or endpoint[:1] == "." or any(name[:1] == "_" for name in values)
        )


class FragmentCache:
    """Parts of pages that are the same for everyone who asks the same thing, rendered once.

    ``{{ cached_fragment("admin/_list_controls.html", key, table=table, ...) }}`` renders the
    template with that context the first time ``key`` (and the mount point) is seen, and
    reuses the HTML afterwards. The key must name everything the fragment shows (a fragment
    showing a user's name has it in its key), and the fragment nothing that changes between
    requests with the same key (no CSRF token, no row). Bounded, least recently used first
    out; off in debug mode, where templates change under the server.
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


def cached_url_for(endpoint: str, **values: Any) -> str:
    """``url_for`` remembered per worker as the templates' is (``TemplateUrls``): for Python
    code that builds the same links on every request (row URL patterns, a list's links)."""
    urls = current_app.extensions.get(TEMPLATE_URLS)
    return url_for(endpoint, **values) if urls is None else str(urls(endpoint, **values))


def register(app: Flask) -> None:
    urls = TemplateUrls(app)
    app.extensions[TEMPLATE_URLS] = urls
    app.jinja_env.globals["url_for"] = urls
    app.jinja_env.globals["cached_fragment"] = FragmentCache(app)
    app.jinja_env.add_extension("jinja2.ext.do")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(format_date, "date")
    app.add_template_global(query_args_without)
    app.add_template_global(hidden_inputs)
    app.add_template_global(UrlPattern, "url_pattern")
    app.add_template_filter(fill)
    app.add_template_filter(time_tag)
    app.add_template_filter(tag_names)
    from webapp.posts.cards import post_cards  # it builds on the helpers above

    app.add_template_global(post_cards)
