"""Filters and globals the templates share."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from flask import Flask, request, url_for
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
        url = url_for(endpoint, **values)
        self.head, found, self.tail = url.partition(self.MARKER)
        if not found or self.MARKER in self.tail:
            raise ValueError(f"cannot make a URL pattern of {url!r}")
        self.in_query = "?" in self.head

    def __call__(self, value: Any) -> str:
        text = str(value)
        if isinstance(value, int) or _UNRESERVED.fullmatch(text):  # nothing to quote
            return f"{self.head}{text}{self.tail}"
        if self.in_query:
            return f"{self.head}{quote_plus(text, safe=self.QUERY_SAFE)}{self.tail}"
        return f"{self.head}{quote(text, safe=self.PATH_SAFE)}{self.tail}"


def fill(pattern: UrlPattern, value: Any) -> str:
    """``{{ edit_url | fill(user.id) }}``: a row's URL from a page's ``url_pattern``.

    A filter rather than a call: Jinja calls filters directly, which matters per row.
    """
    return pattern(value)


def time_tag(value: datetime | None, fmt: str = "%d %b %Y, %H:%M UTC") -> Markup:
    """``<time datetime="...">...</time>`` for a timestamp (empty for none), in one filter call.

    Built by concatenation: ``Markup.format`` costs more than the rest of a row's cells.
    """
    if value is None:
        return Markup("")
    iso, text = escape(value.isoformat()), escape(format_datetime(value, fmt))
    return Markup(f'<time datetime="{iso}">{text}</time>')  # noqa: S704 - both parts escaped


def register(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.do")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(format_date, "date")
    app.add_template_global(query_args_without)
    app.add_template_global(UrlPattern, "url_pattern")
    app.add_template_filter(fill)
    app.add_template_filter(time_tag)
    app.add_template_filter(tag_names)
    from webapp.posts.cards import post_cards  # it builds on the helpers above

    app.add_template_global(post_cards)
