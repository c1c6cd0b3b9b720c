"""The one list machinery: keyset pages in every sort order, filters, capped counts, queries."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import (
    ItemFactory,
    OutboxMessageFactory,
    PostFactory,
    TagFactory,
    UserFactory,
)
from tests.helpers import AuthActions, QueryCounter
from webapp.admin.params import parse_params
from webapp.admin.tables import TABLES
from webapp.extensions import db
from webapp.models import AuditEvent, User, utcnow
from webapp.repositories import AuditRepository, keyset
from webapp.repositories.admin import AUDIT_LIST, ITEM_LIST, TAG_LIST, USER_LIST
from webapp.repositories.counting import Total
from webapp.repositories.keyset import (
    Cursor,
    ListParams,
    ListRepository,
    ListSpec,
    _order,
)
from webapp.web.rendering import format_datetime, time_tag


def full_order(spec: ListSpec, params: ListParams) -> list[int]:
    """The ids in the order the database gives for the whole list (no paging)."""
    listing = ListRepository(db.session, spec)
    key = spec.sort_keys[params.sort]
    stmt = listing.filtered(params, spec.id_column)  # with the joins a sort key may need
    return list(db.session.scalars(stmt.order_by(*_order(key, spec.id_column, params.desc))))


def walk_forward(spec: ListSpec, params: ListParams) -> list[int]:
    listing = ListRepository(db.session, spec)
    key = spec.sort_keys[params.sort]
    page = listing.page(params)
    assert not page.has_prev
    assert page.first_cursor is None  # no page before: no cursor to it
    seen = [row.id for row in page.rows]
    while page.has_next:
        assert page.last_cursor is not None
        page = listing.page(replace(params, after=Cursor.decode(page.last_cursor, key)))
        assert page.has_prev
        assert len(page.rows) <= params.per_page
        seen += [row.id for row in page.rows]
    assert page.last_cursor is None  # no page after
    return seen


def walk_backward(spec: ListSpec, params: ListParams) -> list[int]:
    listing = ListRepository(db.session, spec)
    key = spec.sort_keys[params.sort]
    page = listing.page(replace(params, last=True))
    assert not page.has_next
    seen = [row.id for row in page.rows]
    while page.has_prev:
        assert page.first_cursor is not None
        page = listing.page(replace(params, before=Cursor.decode(page.first_cursor, key)))
        assert page.has_next
        seen = [row.id for row in page.rows] + seen
    return seen


@pytest.fixture
def people(app: Flask) -> list[User]:
    """23 users with ties in every column but the id (same time, same flags)."""
    moment = utcnow() - timedelta(days=1)
    users = []
    for n in range(23):
        users.append(
            UserFactory(
                username=f"{'Bob' if n % 2 else 'ann'}{n % 5}x{n}",
                email=f"p{n % 3}-{n}@example.com",
                is_active=n % 4 != 0,
                is_admin=n % 6 == 0,
                created_at=moment + timedelta(minutes=n % 3),
            )
        )
    return users


@pytest.mark.parametrize("sort", sorted(USER_LIST.sort_keys))
@pytest.mark.parametrize("desc", [False, True])
def test_user_pages_cover_every_row_once_in_order_both_ways(
    people: list[User], sort: str, desc: bool
) -> None:
    params = ListParams(sort=sort, desc=desc, per_page=5)
    expected = full_order(USER_LIST, params)
    assert len(expected) == 23
    assert walk_forward(USER_LIST, params) == expected
    assert walk_backward(USER_LIST, params) == expected


@pytest.mark.parametrize("sort", sorted(AUDIT_LIST.sort_keys))
@pytest.mark.parametrize("desc", [False, True])
def test_nullable_sort_keys_page_through_nulls(app: Flask, sort: str, desc: bool) -> None:
    audit = AuditRepository(db.session)
    actor = UserFactory(username="zed")
    for n in range(13):
        audit.record(
            f"test.{'b' if n % 2 else 'a'}",
            actor=actor if n % 3 == 0 else None,
            target_type=None if n % 4 == 0 else "user",
            target_id=n,
            ip_address=None if n % 2 else "10.0.0.1",
        )
    params = ListParams(sort=sort, desc=desc, per_page=4)
    expected = full_order(AUDIT_LIST, params)
    assert len(expected) == 13
    assert walk_forward(AUDIT_LIST, params) == expected
    assert walk_backward(AUDIT_LIST, params) == expected


@pytest.mark.parametrize("sort", sorted(ITEM_LIST.sort_keys))
def test_items_sorted_by_a_joined_column_page_correctly(app: Flask, sort: str) -> None:
    owners = [UserFactory(username=name) for name in ("carol", "Abe", "bea")]
    for n in range(14):
        ItemFactory(owner=owners[n % 3], title=f"{'Lamp' if n % 2 else 'desk'} {n % 4}")
    for desc in (False, True):
        params = ListParams(sort=sort, desc=desc, per_page=3)
        expected = full_order(ITEM_LIST, params)
        assert len(expected) == 14
        assert walk_forward(ITEM_LIST, params) == expected
        assert walk_backward(ITEM_LIST, params) == expected


@pytest.mark.parametrize(("sort", "extra"), [("created", False), ("title", False), ("owner", True)])
def test_a_page_selects_a_shown_sort_key_and_the_id_once(app: Flask, sort: str, extra: int) -> None:
    """The cursors read the sort value and the id from the row's own columns; only a key the
    page does not show (the owner's name, lower-cased) is selected beside them."""
    ItemFactory.create_batch(4)
    params = ListParams(sort=sort, desc=True, per_page=2)
    page = ListRepository(db.session, ITEM_LIST).page(params)
    fields = page.rows[0]._fields
    assert fields[: len(ITEM_LIST.columns)] == (
        "id",
        "title",
        "owner_id",
        "owner_username",
        "created_at",
        "updated_at",
    )
    assert "row_id" not in fields
    assert ("sort_value" in fields) == extra
    assert page.last_cursor is not None
    key = ITEM_LIST.sort_keys[sort]
    after = ListRepository(db.session, ITEM_LIST).page(
        replace(params, after=Cursor.decode(page.last_cursor, key))
    )
    assert [r.id for r in page.rows + after.rows] == full_order(ITEM_LIST, params)


def test_pages_of_one_shape_build_their_statement_once(
    people: list[User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy remembers a page's statement per ``PageShape``: a page whose shape was
    seen (another cursor of the same kind) builds nothing. A filter's value is part of the
    shape (it is in the SQL): each value gets its own statement and its own rows."""
    built: list[keyset.PageShape] = []
    build = keyset._page_select

    def counting(shape: keyset.PageShape) -> Any:
        built.append(shape)
        return build(shape)

    monkeypatch.setattr(keyset, "_page_select", counting)
    listing = ListRepository(db.session, USER_LIST)
    key = USER_LIST.sort_keys["email"]
    for active in ("yes", "no", "yes"):
        params = ListParams(sort="email", per_page=3, filters={"active": active})
        before = len(built)
        first = listing.page(params)
        second = listing.page(replace(params, after=Cursor.decode(first.last_cursor or "", key)))
        seen = len(built)
        listing.page(replace(params, after=Cursor.decode(second.last_cursor or "", key)))
        assert len(built) == seen  # the shape of the second page: nothing built
        assert all(shape.filters == (("active", active),) for shape in built[before:])
        shown = [r.id for r in first.rows + second.rows]
        assert shown == full_order(USER_LIST, params)[:6]
        assert {db.session.get(User, user_id).is_active for user_id in shown} == {active == "yes"}
    assert len(built) <= 4  # two shapes per filter value at most; "yes" again built nothing


def test_a_free_text_filter_builds_its_page_statement_each_time(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An owner's name is in the filter's SQL: its pages are not remembered per name (each
    would be a one-off entry in SQLAlchemy's caches), and each name finds its own rows."""
    built: list[keyset.PageShape] = []
    build = keyset._page_select
    monkeypatch.setattr(keyset, "_page_select", lambda shape: built.append(shape) or build(shape))
    owners = [UserFactory(username=name) for name in ("ivy", "jon")]
    for owner in owners:
        ItemFactory.create_batch(2, owner=owner)
    listing = ListRepository(db.session, ITEM_LIST)
    for owner in owners * 2:
        page = listing.page(
            ListParams(sort="created", per_page=5, filters={"owner": owner.username})
        )
        assert {row.owner_id for row in page.rows} == {owner.id} and len(page.rows) == 2
    assert len(built) == 4


def test_tags_sorted_by_post_count(app: Flask) -> None:
    tags = [TagFactory(name=f"t{n}") for n in range(7)]
    for n in range(6):
        PostFactory(tags=tags[: n + 1])  # t0 on 6 posts, t1 on 5, ... t6 on none
    params = ListParams(sort="posts", desc=True, per_page=2)
    forward = walk_forward(TAG_LIST, params)
    assert forward == [tag.id for tag in tags]
    assert walk_backward(TAG_LIST, params) == forward
    page = ListRepository(db.session, TAG_LIST).page(params)
    assert [(row.name, row.post_count) for row in page.rows] == [("t0", 6), ("t1", 5)]


def test_a_cursor_whose_rows_are_gone_falls_back_to_the_first_page(people: list[User]) -> None:
    listing = ListRepository(db.session, USER_LIST)
    params = ListParams(sort="email", per_page=5)
    key = USER_LIST.sort_keys["email"]
    beyond = Cursor(value="zzzz@example.com", id=10**6)
    page = listing.page(replace(params, after=beyond))
    assert len(page.rows) == 5  # the last page, not an empty one
    assert not page.has_next
    before_all = Cursor(value="", id=0)
    page = listing.page(replace(params, before=before_all))
    assert not page.has_prev
    assert [r.id for r in page.rows] == full_order(USER_LIST, params)[:5]
    assert Cursor.decode(beyond.encode(), key) == beyond


@pytest.mark.parametrize(
    "raw",
    ["", "!!!", "e30", "W10", "WzEsMl0", "WyJhIiwiYiJd", "x" * 500, "WyJhXHUwMDAwIiwxXQ"],
)
def test_malformed_cursors_are_ignored(raw: str) -> None:
    # e30 = {} · W10 = [] · WzEsMl0 = [1,2] (an int for a text key) · WyJhIiwiYiJd = ["a","b"]
    # the last one carries a NUL character, which PostgreSQL would refuse
    assert Cursor.decode(raw, USER_LIST.sort_keys["email"]) is None


def test_datetime_cursors_round_trip_and_must_be_aware() -> None:
    key = USER_LIST.sort_keys["created"]
    moment = utcnow()
    assert Cursor.decode(Cursor(moment, 7).encode(), key) == Cursor(moment, 7)
    naive = Cursor(moment.replace(tzinfo=None), 7).encode()
    assert Cursor.decode(naive, key) is None
    assert Cursor.decode(Cursor(True, 7).encode(), USER_LIST.sort_keys["active"]) is not None
    assert Cursor.decode(Cursor(1, 7).encode(), USER_LIST.sort_keys["active"]) is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ("created", True, 20)),
        ({"sort": "email"}, ("email", False, 20)),
        ({"sort": "email", "dir": "desc", "per_page": "50"}, ("email", True, 50)),
        ({"sort": "password", "dir": "sideways", "per_page": "7"}, ("created", True, 20)),
        ({"per_page": "100000000000"}, ("created", True, 20)),
        ({"per_page": "-1"}, ("created", True, 20)),
    ],
)
def test_params_are_checked_against_the_spec(args: dict[str, str], expected: tuple) -> None:
    params = parse_params(USER_LIST, args)
    assert (params.sort, params.desc, params.per_page) == expected


def test_filters_keep_only_known_values_and_clean_text() -> None:
    params = parse_params(
        USER_LIST, {"active": "maybe", "admin": "yes", "q": "  a\x00b\x07c  ", "owner": "x"}
    )
    assert params.filters == {"admin": "yes"}
    assert params.q == "abc"


def test_the_user_search_finds_part_of_an_email_or_a_username(app: Flask) -> None:
    by_name = UserFactory(username="Marigold", email="m1@example.com")
    by_email = UserFactory(username="someone", email="golden.m@mail.example")
    UserFactory(username="other", email="o@example.com")
    listing = ListRepository(db.session, USER_LIST)

    def found(q: str) -> set[int]:
        return {row.id for row in listing.page(parse_params(USER_LIST, {"q": q})).items}

    assert found("GOLD") == {by_name.id, by_email.id}
    assert found("rigol") == {by_name.id}
    assert found("mail.exa") == {by_email.id}
    assert found("zzz") == set()


def test_search_treats_like_wildcards_as_text(app: Flask) -> None:
    UserFactory(username="per_cent", email="a%b@example.com")
    UserFactory(username="percent", email="ab@example.com")
    listing = ListRepository(db.session, USER_LIST)
    found = listing.page(parse_params(USER_LIST, {"q": "%"})).items
    assert [u.username for u in found] == ["per_cent"]
    found = listing.page(parse_params(USER_LIST, {"q": "r_c"})).items
    assert [u.username for u in found] == ["per_cent"]


def test_counts_stop_at_the_cap(people: list[User]) -> None:
    listing = ListRepository(db.session, USER_LIST)
    assert listing.size(ListParams(sort="created"), cap=10) == Total(10, capped=True)
    assert listing.size(ListParams(sort="created"), cap=23) == Total(23)
    assert listing.size(parse_params(USER_LIST, {"active": "no"})) == Total(6)


def test_a_capped_count_reads_more_than_the_cap(
    client: FlaskClient, auth: AuthActions, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(4):
        UserFactory()
    auth.login(admin_user)
    monkeypatch.setattr(ListRepository, "count_cap", 3)
    html = client.get("/admin/users").get_data(as_text=True)
    assert "More than 3 users" in html
    assert "Apply to all 3+ matching" in html


def _links(html: str, label: str) -> list[str]:
    pattern = rf'<a [^>]*href="([^"]+)"[^>]*>\s*{re.escape(label)}'
    return re.findall(pattern, unescape(html))


def test_the_page_links_walk_the_list_keeping_filters_and_sort(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    for n in range(45):
        UserFactory(username=f"walker{n:02d}", email=f"walker{n:02d}@example.com")
    UserFactory(username="outsider")
    auth.login(admin_user)
    url = "/admin/users?q=walker&sort=username&dir=asc"
    names: list[str] = []
    for _ in range(5):
        html = client.get(url).get_data(as_text=True)
        names += re.findall(r'class="strong">(walker\d+)<', html)
        following = _links(html, "Next")
        if not following:
            break
        url = following[0]
        assert "q=walker" in url and "sort=username" in url and "after=" in url
        assert "page=" not in url and "offset" not in url
    assert names == [f"walker{n:02d}" for n in range(45)]

    html = client.get("/admin/users?q=walker&sort=username&dir=asc&last=1").get_data(as_text=True)
    assert re.findall(r'class="strong">(walker\d+)<', html)[-1] == "walker44"
    previous = _links(html, "\u2039 Previous")[0]
    assert "before=" in previous and "q=walker" in previous
    html = client.get(previous).get_data(as_text=True)
    assert re.findall(r'class="strong">(walker\d+)<', html)[0] == "walker05"
    first = _links(html, "\u00ab First")[0]
    assert "before" not in first and "after" not in first and "q=walker" in first


def test_sort_headers_toggle_direction_and_drop_the_cursor(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    auth.login(admin_user)
    html = client.get("/admin/users?sort=email&dir=asc&active=yes").get_data(as_text=True)
    assert 'aria-sort="ascending"' in html
    email_link = next(h for h in _links(html, "Email") if "sort=email" in h)
    assert "dir=desc" in email_link and "active=yes" in email_link and "after" not in email_link
    joined_link = next(h for h in _links(html, "Joined") if "sort=created" in h)
    assert "dir=desc" in joined_link  # dates start newest first


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_list_page_runs_a_fixed_number_of_queries(
    client: FlaskClient,
    auth: AuthActions,
    admin_user: User,
    count_queries: QueryCounter,
    name: str,
) -> None:
    """Same statement count for N and 2N rows, and under the stated budget."""
    # mail: one more than audit, for the counts by status above the rows.
    budget = {"users": 3, "items": 3, "posts": 4, "tags": 3, "audit": 3, "mail": 4}[name]
    auth.login(admin_user)

    def add_rows(n: int) -> None:
        for _ in range(n):
            owner = UserFactory()
            ItemFactory(owner=owner)
            PostFactory(author=owner, tags=[TagFactory(), TagFactory()])
            AuditRepository(db.session).record("test.event", actor=owner, target_type="user")
            OutboxMessageFactory(recipient=owner.email)

    client.get(f"/admin/{name}?per_page=50")  # reads the estimates the next seconds reuse
    counts = []
    for n in (10, 10):  # 10 rows, then 20
        add_rows(n)
        with count_queries() as statements:
            response = client.get(f"/admin/{name}?per_page=50")
        assert response.status_code == 200
        counts.append(len(statements))
    shown = len(re.findall(r'<td [^>]*data-label="', response.get_data(as_text=True)))
    assert shown >= 20
    assert counts[0] == counts[1] <= budget, counts


def test_audit_filters_find_events(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    audit = AuditRepository(db.session)
    audit.record("admin.user.update", actor=admin_user, target_type="user", target_id=1)
    audit.record("admin.item.delete", actor=admin_user, target_type="item", target_id=2)
    audit.record("auth.login_failed", after={"login": "who"})
    auth.login(admin_user)
    html = client.get("/admin/audit?event=admin.&target=item").get_data(as_text=True)
    assert "admin.item.delete" in html
    assert "admin.user.update" not in html and "auth.login_failed" not in html
    html = client.get("/admin/audit?actor=ROOT").get_data(as_text=True)
    assert "admin.user.update" in html and "auth.login_failed" not in html
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "x")) is None


def test_filters_by_owner_author_and_tag(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    ItemFactory(owner=ann, title="Ann's lamp")
    ItemFactory(owner=bob, title="Bob's lamp")
    python = TagFactory(name="python")
    PostFactory(author=ann, title="Ann writes", tags=[python])
    PostFactory(author=bob, title="Bob writes")
    auth.login(admin_user)
    html = client.get("/admin/items?owner=ANN").get_data(as_text=True)
    assert "Ann&#39;s lamp" in html and "Bob&#39;s lamp" not in html
    html = client.get("/admin/posts?author=bob").get_data(as_text=True)
    assert "Bob writes" in html and "Ann writes" not in html
    html = client.get("/admin/posts?tag=python").get_data(as_text=True)
    assert "Ann writes" in html and "Bob writes" not in html
    html = client.get("/admin/tags?used=no").get_data(as_text=True)
    assert "No tags match these filters" in html


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_sort_key_can_carry_a_cursor(name: str) -> None:
    for key in TABLES[name].spec.sort_keys.values():
        assert key.python_type in {str, int, bool, datetime}


def test_the_next_page_keeps_the_lists_controls_and_shows_other_rows(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    for n in range(60):
        UserFactory(username=f"many{n:02d}", email=f"many{n:02d}@example.com")
    auth.login(admin_user)
    first = client.get("/admin/users?q=many&per_page=50").get_data(as_text=True)
    following = _links(first, "Next")[0]
    second = client.get(following).get_data(as_text=True)
    other = client.get("/admin/users?q=man&per_page=50").get_data(as_text=True)
    assert 'name="q" value="many"' in second and 'name="q" value="man"' in other
    assert re.findall(r'class="strong">(many\d+)<', first) != re.findall(
        r'class="strong">(many\d+)<', second
    )
    sort_link = next(h for h in _links(second, "Username") if "sort=username" in h)
    assert "q=many" in sort_link and "per_page=50" in sort_link and "after" not in sort_link


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 5, 3, 4, 5, 999999, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ],
)
def test_a_timestamp_shows_utc_text_and_the_instant(app: Flask, value: datetime) -> None:
    """The one ``<time>`` renderer: the ``datetime`` filter's text (UTC) and the instant."""
    html = time_tag(value, "minute")
    match = re.fullmatch(r'<time datetime="([^"]+)">([^<]+)</time>', html.strip())
    assert match is not None, html
    assert match.group(2) == format_datetime(value, "minute")
    assert datetime.fromisoformat(match.group(1)) == value.replace(microsecond=0)
    assert match.group(1).endswith("Z")


def test_a_naive_timestamp_is_taken_as_utc_whatever_the_machines_zone(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the database's UTC type takes it (``as_utc``), not as the server's local time."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        value = datetime(2026, 7, 1, 12, 0, 0)
        html = time_tag(value)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert html.strip() == '<time datetime="2026-07-01T12:00:00Z">01 Jul 2026, 12:00 UTC</time>'


def test_no_timestamp_shows_a_dash(app: Flask) -> None:
    assert time_tag(None) == "&mdash;"


def render_macro(app: Flask, template: str, call: str, **values: Any) -> str:
    """A macro of ``template`` called as ``call`` with ``values``, as a page would render it."""
    with app.test_request_context("/"):
        source = f'{{% from "{template}" import {call.split("(")[0]} %}}{{{{ {call} }}}}'
        return app.jinja_env.from_string(source).render(**values)


def test_page_links_show_the_pages_that_exist_and_escape_their_urls(app: Flask) -> None:
    def nav(**links: str | None) -> str:
        full = {"first": None, "previous": None, "next": None, "last": None, **links}
        call = "render_keyset_pagination(links)"
        return render_macro(app, "macros/pagination.html", call, links=full).strip()

    assert nav() == ""
    html = nav(next="/admin/users?q=a&after=x", last="/l")
    assert '<span class="disabled" aria-hidden="true">&laquo; First</span>' in html
    assert '<span class="disabled" aria-hidden="true">&lsaquo; Previous</span>' in html
    assert '<a href="/admin/users?q=a&amp;after=x" rel="next">Next &rsaquo;</a>' in html
    assert '<a href="/l">Last &raquo;</a>' in html
    html = nav(first="/f", previous='/p?q="><')
    assert '<a href="/p?q=&#34;&gt;&lt;" rel="prev">' in html
    assert '<span class="disabled" aria-hidden="true">Last &raquo;</span>' in html


def test_hidden_inputs_keep_a_lists_filters_escaped(app: Flask) -> None:
    args = {"q": '"><script>', "per_page": "50"}
    html = render_macro(app, "macros/forms.html", "hidden_inputs(args)", args=args)
    assert html.strip() == (
        '<input type="hidden" name="q" value="&#34;&gt;&lt;script&gt;">'
        '<input type="hidden" name="per_page" value="50">'
    )
