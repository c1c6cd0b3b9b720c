"""``webapp.web.rendering``: the same URLs as ``url_for``, and the exact HTML of the one
``<time>`` element, the admin rows and the post cards (snapshots)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, template_rendered, url_for
from flask.testing import FlaskClient
from jinja2 import Template
from markupsafe import escape

from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions
from webapp.models import User
from webapp.web.rendering import (
    TEMPLATE_URLS,
    TIME_STYLES,
    TemplateUrls,
    UrlPattern,
    format_datetime,
    iso_utc,
    item_rows,
    post_cards,
    post_rows,
    tag_rows,
    time_tag,
    user_rows,
)

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
            "full",
            '<time datetime="2026-01-05T03:04:05Z">05 Jan 2026, 03:04 UTC</time>',
        ),
        (
            datetime(2026, 1, 5, 3, 4, 5, 250000, tzinfo=UTC),
            "minute",
            '<time datetime="2026-01-05T03:04:05Z">05 Jan 2026, 03:04</time>',
        ),
        (
            datetime(2026, 2, 28, 23, 59, tzinfo=UTC),
            "day",
            '<time datetime="2026-02-28T23:59:00Z">28 Feb, 23:59</time>',
        ),
        (
            datetime(2026, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=2))),
            "date",
            '<time datetime="2026-12-31T21:59:00Z">31 Dec 2026</time>',
        ),
        (None, "date", "&mdash;"),
    ],
)
def test_a_time_tag_is_exactly_this(value: datetime | None, fmt: str, html: str) -> None:
    assert time_tag(value, fmt) == html


@pytest.mark.parametrize("style", sorted(TIME_STYLES))
@pytest.mark.parametrize("month", range(1, 13))
def test_every_time_style_shows_what_strftime_would(style: str, month: int) -> None:
    """The styles slice the ISO text; each shows what its strftime format would, every
    month, and nothing HTML must escape."""
    formats = {
        "full": "%d %b %Y, %H:%M UTC",
        "minute": "%d %b %Y, %H:%M",
        "date": "%d %b %Y",
        "day": "%d %b, %H:%M",
    }
    value = datetime(2026, month, 9, 7, 5, 3, 120, tzinfo=UTC)
    text = format_datetime(value, style)
    assert text == value.strftime(formats[style])
    assert str(escape(text)) == text


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 5, 3, 4, 5, 999999, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2000, 10, 10, 10, 10, 10, tzinfo=UTC),
        datetime(999, 2, 3, 0, 0, 0, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
    ],
)
def test_iso_utc_is_isoformat_to_the_second_with_z(value: datetime) -> None:
    expected = value.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert iso_utc(value) == expected
    assert datetime.fromisoformat(iso_utc(value)) == value.replace(microsecond=0)


def test_an_unknown_time_style_is_refused() -> None:
    with pytest.raises(KeyError, match="'%d %b'"):
        time_tag(datetime(2026, 1, 5, tzinfo=UTC), "%d %b")


# --- rows and cards: the exact HTML (snapshots) ------------------------------------------------

WHEN = datetime(2026, 11, 25, 9, 47, 5, tzinfo=UTC)
WHEN_HTML = '<time datetime="2026-11-25T09:47:05Z">25 Nov 2026, 09:47</time>'
HOSTILE = "<b>\"Tom\" & 'Jerry'</b>"
HOSTILE_HTML = "&lt;b&gt;&#34;Tom&#34; &amp; &#39;Jerry&#39;&lt;/b&gt;"


def render(app: Flask, draw: Any, *args: Any) -> str:
    with app.test_request_context("/"):
        return str(draw(*args))


def test_a_user_row_is_exactly_this(app: Flask) -> None:
    row = (7, "a b", HOSTILE, True, False, WHEN, None)
    assert render(app, user_rows, [row]) == (
        '<tr><td class="select-col"><input type="checkbox" name="ids" value="7" id="select-7" '
        'aria-label="Select user a b"></td>'
        '<td data-label="Username"><a href="/admin/users/7" class="strong">a b</a> '
        '<span class="row-links"><a href="/admin/items?owner=a+b">items</a> &middot; '
        '<a href="/admin/posts?author=a+b">posts</a></span></td>'
        f'<td data-label="Email">{HOSTILE_HTML}</td>'
        '<td data-label="Active"><span class="badge yes">Yes</span></td>'
        '<td data-label="Admin"><span class="badge">No</span></td>'
        f'<td data-label="Joined">{WHEN_HTML}</td>'
        '<td data-label="Confirmed"><span class="badge no">No</span></td></tr>\n'
    )


def test_an_item_row_is_exactly_this(app: Flask) -> None:
    row = (3, HOSTILE, 7, "alice", WHEN, None)
    assert render(app, item_rows, [row]) == (
        '<tr><td class="select-col"><input type="checkbox" name="ids" value="3" id="select-3" '
        f'aria-label="Select item {HOSTILE_HTML}"></td>'
        f'<td data-label="Title"><a href="/admin/items/3">{HOSTILE_HTML}</a></td>'
        '<td data-label="Owner"><a href="/admin/users/7">alice</a></td>'
        f'<td data-label="Created">{WHEN_HTML}</td>'
        '<td data-label="Updated">&mdash;</td></tr>\n'
    )


def test_a_post_row_is_exactly_this(app: Flask) -> None:
    tagged = (5, "Hello", 7, "alice", WHEN, WHEN, "web-dev, c++")
    untagged = (6, "Bare", 7, "alice", WHEN, WHEN, None)
    html = render(app, post_rows, [tagged, untagged])
    first, second = html.splitlines()
    assert first == (
        '<tr><td class="select-col"><input type="checkbox" name="ids" value="5" id="select-5" '
        'aria-label="Select post Hello"></td>'
        '<td data-label="Title"><a href="/admin/posts/5">Hello</a> <ul class="tags" '
        'aria-label="Tags"><li><a class="tag" href="/admin/posts?tag=c%2B%2B">c++</a></li>'
        '<li><a class="tag" href="/admin/posts?tag=web-dev">web-dev</a></li></ul></td>'
        '<td data-label="Author"><a href="/admin/users/7">alice</a></td>'
        f'<td data-label="Created">{WHEN_HTML}</td><td data-label="Updated">{WHEN_HTML}</td></tr>'
    )
    assert '<a href="/admin/posts/6">Bare</a></td>' in second and "tags" not in second


def test_a_tag_row_is_exactly_this(app: Flask) -> None:
    assert render(app, tag_rows, [(4, "c++", 12)]) == (
        '<tr><td class="select-col"><input type="checkbox" name="ids" value="4" id="select-4" '
        'aria-label="Select tag c++"></td>'
        '<td data-label="Name"><a href="/admin/tags/4">c++</a></td>'
        '<td class="num" data-label="Posts"><a href="/admin/posts?tag=c%2B%2B">12</a></td></tr>\n'
    )


def test_a_post_card_is_exactly_this(app: Flask) -> None:
    post = SimpleNamespace(
        id=9,
        title=HOSTILE,
        excerpt="word " * 60,
        created_at=WHEN,
        author_username="a b",
        tag_names="news",
    )
    bare = SimpleNamespace(
        id=10, title="Bare", excerpt=None, created_at=WHEN, author_username="bob", tag_names=None
    )
    html = render(app, post_cards, [post, bare], "h2")
    assert html == (
        '<div class="post-list">\n'
        '<article class="card post-card">\n'
        f'  <h2 class="post-title"><a href="/posts/9">{HOSTILE_HTML}</a></h2>\n'
        '  <p class="meta">by <a href="/users/a%20b">a b</a> &middot; '
        '<time datetime="2026-11-25T09:47:05Z">25 Nov 2026</time></p>\n'
        f'  <p class="excerpt">{("word " * 39).strip()}...</p>\n'
        '  <ul class="tags" aria-label="Tags"><li><a class="tag" href="/tags/news">news</a>'
        "</li></ul>\n"
        "</article>\n"
        '<article class="card post-card">\n'
        '  <h2 class="post-title"><a href="/posts/10">Bare</a></h2>\n'
        '  <p class="meta">by <a href="/users/bob">bob</a> &middot; '
        '<time datetime="2026-11-25T09:47:05Z">25 Nov 2026</time></p>\n'
        "</article>\n"
        "</div>"
    )


def test_a_post_card_takes_only_a_heading_level(app: Flask) -> None:
    with pytest.raises(ValueError, match="heading"):
        render(app, post_cards, [], "script")


# --- the caches: what they keep, and that it is what the page would draw anyway ----------------


def test_template_links_are_built_once_and_match_url_for(app: Flask, client: FlaskClient) -> None:
    urls = app.extensions[TEMPLATE_URLS]
    urls.urls.clear()
    for _ in range(3):
        assert 'href="/posts/"' in client.get("/").get_data(as_text=True)
    kept = {key[1] for key in urls.urls}
    assert {"posts.index", "static"} <= kept
    # Mounted elsewhere, the same links carry that mount point.
    html = client.get("/", base_url="http://localhost/site").get_data(as_text=True)
    assert 'href="/site/posts/"' in html
    with app.test_request_context("/"):
        for endpoint, values in [
            ("tags.detail", {"name": "a b/ü"}),
            ("admin.users", {"q": "50% & more", "per_page": 50}),
            ("static", {"filename": "css/site.css"}),
        ]:
            assert urls(endpoint, **values) == url_for(endpoint, **values)
            assert urls(endpoint, **values) == url_for(endpoint, **values)  # from the cache
        before = dict(urls.urls)
        assert urls("posts.index", _external=True) == "http://localhost/posts/"
        assert urls("admin.users", active=["yes", "no"]) == url_for(
            "admin.users", active=["yes", "no"]
        )
        assert urls.urls == before  # special arguments and unhashable values are not kept


def test_template_links_are_bounded_and_off_in_debug_mode(app: Flask) -> None:
    urls = TemplateUrls(app, size=3)
    with app.test_request_context("/"):
        for q in ("a", "b", "c", "d"):
            assert urls("posts.index", q=q) == f"/posts/?q={q}"
        assert len(urls.urls) == 3
        assert ("", "posts.index", ("q", "a")) not in urls.urls  # the oldest went first
        urls.urls.clear()
        app.debug = True
        try:
            urls("posts.index")
        finally:
            app.debug = False
        assert urls.urls == {}


def test_a_lists_controls_are_drawn_once_per_list_and_parameters(
    app: Flask, client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    for n in range(60):
        UserFactory(username=f"many{n:02d}", email=f"many{n:02d}@example.com")
    auth.login(admin_user)
    drawn: list[str] = []

    def record(_sender: Flask, template: Template, **_extra: object) -> None:
        drawn.append(str(template.name))

    controls = "admin/_list_controls.html"
    with template_rendered.connected_to(record, app):
        first = client.get("/admin/users?q=many&per_page=50").get_data(as_text=True)
        following = re.findall(r'href="([^"]+)" rel="next"', first)[0].replace("&amp;", "&")
        second = client.get(following).get_data(as_text=True)
        assert drawn.count(controls) == 1  # the next page reuses the controls
        other = client.get("/admin/users?q=man&per_page=50").get_data(as_text=True)
        assert drawn.count(controls) == 2  # other parameters: other controls
        app.debug = True
        try:
            client.get("/admin/users?q=many&per_page=50")
        finally:
            app.debug = False
        assert drawn.count(controls) == 3  # never kept in debug mode
    # Reused, the controls still say what this request asked for, and the rows differ.
    assert 'name="q" value="many"' in second and 'name="q" value="man"' in other
    assert re.findall(r'class="strong">(many\d+)<', first) != re.findall(
        r'class="strong">(many\d+)<', second
    )


# --- pages of ASCII data are ASCII -------------------------------------------------------------

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_templates_write_every_non_ascii_character_as_a_reference() -> None:
    """``&middot;``, not a literal middle dot. One non-ASCII character makes CPython hold the
    whole page as two bytes a character, which every join and the final UTF-8 encoding then
    pay for (2.6% of an admin list's instructions). Text written in Python (flash messages,
    form errors) is escaped, not markup, and keeps its characters."""
    found = [
        f"{path.relative_to(TEMPLATES)}:{number}: {char!r}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for char in line
        if not char.isascii()
    ]
    assert not found, "write these as character references (&mdash;, &#9660;):\n" + "\n".join(found)


def test_the_busiest_pages_of_ascii_data_are_ascii(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    """The templates and the rows built in Python together: nothing adds a non-ASCII
    character to a page whose data has none."""
    owner = UserFactory(username="owner")
    item = ItemFactory(owner=admin_user, title="Lamp")
    post = PostFactory(author=owner, title="Hello", tags=[TagFactory(name="news")])
    auth.login(admin_user)
    paths = [
        "/",
        "/posts/",
        f"/posts/{post.id}",
        "/items/",
        f"/items/{item.id}",
        "/admin/",
        "/admin/users",
        "/admin/items",
        "/admin/posts",
        "/admin/tags",
        "/admin/items?per_page=10&sort=title",
    ]
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, path
        body = answer.get_data(as_text=True)
        assert body.isascii(), (path, sorted({c for c in body if not c.isascii()}))
