"""The row helpers of ``webapp.web.rendering``: the same URLs as ``url_for``, and the one
``<time>`` element, exactly (snapshots)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask, url_for

from webapp.web.rendering import UrlPattern, time_tag

AWKWARD = ["plain", "a b", "a/b", "ü-ß", "50% & more", "x?y#z", "+plus", "dot.name", "~t", "'q'"]


@pytest.mark.parametrize(
    ("endpoint", "arg", "extra"),
    [
        ("profiles.detail", "username", {}),
        ("tags.detail", "name", {}),
        ("admin.items", "owner", {}),
        ("admin.posts", "tag", {"per_page": 50}),
        ("admin.user_edit", "user_id", {}),
    ],
)
def test_a_url_pattern_builds_what_url_for_builds(
    app: Flask, endpoint: str, arg: str, extra: dict[str, object]
) -> None:
    with app.test_request_context("/", base_url="http://localhost/mounted"):
        pattern = UrlPattern(endpoint, arg, **extra)
        values = [7, 2147483647] if arg.endswith("_id") else AWKWARD
        for value in values:
            assert pattern(value) == url_for(endpoint, **{**extra, arg: value}), value


def test_a_url_pattern_refuses_a_url_where_its_marker_shows_twice(app: Flask) -> None:
    with app.test_request_context("/"), pytest.raises(ValueError, match="URL pattern"):
        UrlPattern("posts.index", "page", q="2147483647")


@pytest.mark.parametrize(
    ("value", "fmt", "html"),
    [
        (
            datetime(2026, 1, 5, 3, 4, 5, tzinfo=UTC),
            "%d %b %Y, %H:%M UTC",
            '<time datetime="2026-01-05T03:04:05+00:00">05 Jan 2026, 03:04 UTC</time>',
        ),
        (
            datetime(2026, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=2))),
            "%d %b %Y",
            '<time datetime="2026-12-31T21:59:00+00:00">31 Dec 2026</time>',
        ),
        (None, "%d %b %Y", "—"),
    ],
)
def test_a_time_tag_is_exactly_this(value: datetime | None, fmt: str, html: str) -> None:
    assert time_tag(value, fmt) == html


def test_a_time_tags_format_is_escaped() -> None:
    value = datetime(2026, 1, 5, tzinfo=UTC)
    assert (
        time_tag(value, "<%Y>") == '<time datetime="2026-01-05T00:00:00+00:00">&lt;2026&gt;</time>'
    )
