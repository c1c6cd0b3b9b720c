"""What the templates use to draw many rows fast: each measured by ``make bench``.

DESIGN §12 keeps markup in Jinja and ``url_for`` in templates unless ``make bench`` shows a
page at least 5% faster otherwise, in the same run. These two pass that bar (README,
"Performance at scale", gives the figures), and are the only places where Python writes
HTML or URLs for the templates:

- ``url_pattern`` + ``fill``: a list's row links from one ``url_for`` per kind of link,
  instead of one per row;
- ``time_tag``: the one ``<time>`` element for a timestamp, a filter rather than a macro
  (a Jinja macro call costs several times a filter call, and lists show two a row).

Neither keeps anything between requests: there is no cache here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, quote_plus

from flask import Flask, url_for
from markupsafe import Markup, escape

from webapp.db.types import as_utc

# Characters no URL part quotes (RFC 3986 unreserved): such text is used as it is.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
DATETIME_FORMAT = "%d %b %Y, %H:%M UTC"


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
        url = url_for(endpoint, **{**values, arg: int(self.MARKER)})
        self.head, found, self.tail = url.partition(self.MARKER)
        if not found or self.MARKER in self.tail:
            raise ValueError(f"cannot make a URL pattern of {url!r}")
        self.in_query = "?" in self.head

    def __call__(self, value: Any) -> str:
        text = str(value)
        if not _UNRESERVED.fullmatch(text):
            safe = self.QUERY_SAFE if self.in_query else self.PATH_SAFE
            text = (quote_plus if self.in_query else quote)(text, safe=safe)
        return f"{self.head}{text}{self.tail}"


def fill(pattern: UrlPattern, value: Any) -> str:
    """``{{ edit_url | fill(user.id) }}``: a row's URL from the page's ``url_pattern``."""
    return pattern(value)


def format_datetime(value: datetime | None, fmt: str = DATETIME_FORMAT) -> str:
    """A timestamp as text, in UTC (a naive value is taken to be UTC already)."""
    value = as_utc(value)
    return "" if value is None else value.strftime(fmt)


def time_tag(value: datetime | None, fmt: str = DATETIME_FORMAT) -> Markup:
    """``<time datetime="2026-11-25T09:47:05+00:00">25 Nov 2026, 09:47 UTC</time>``; a dash
    for no timestamp. The one way the pages show a timestamp."""
    value = as_utc(value)
    if value is None:
        return Markup("—")
    iso, text = escape(value.isoformat()), escape(value.strftime(fmt))
    return Markup(f'<time datetime="{iso}">{text}</time>')  # noqa: S704 - both parts escaped


def register(app: Flask) -> None:
    app.add_template_global(UrlPattern, "url_pattern")
    app.add_template_filter(fill)
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(time_tag)
