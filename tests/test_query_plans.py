"""PostgreSQL's own plans for the pages that must not read whole tables.

A few tens of thousands of rows are committed and analysed, the pages are requested through
the app, every statement they run is captured, and PostgreSQL is asked with ``EXPLAIN`` how
it would run each one. Searches must go through the trigram indexes and deep keyset pages
along the sort key's index; no page may read a large table sequentially. The planner decides
this from the table statistics alone (no ``enable_seqscan`` tricks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import Engine, Select, event, select, text

from tests.conftest import BASE_TEST_CONFIG, postgres_url
from tests.helpers import AuthActions, CSRFClient
from webapp import create_app
from webapp.admin.params import parse_params
from webapp.extensions import db
from webapp.models import Item, Post, User
from webapp.repositories import counting
from webapp.repositories.admin import ITEM_LIST, USER_LIST
from webapp.repositories.counting import ESTIMATES
from webapp.repositories.keyset import Cursor, ListRepository, ListSpec, _order

pytestmark = pytest.mark.postgresql_only

USERS = 20_000
ITEMS = 60_000
POSTS = 20_000
TAGS = 200
LARGE_TABLES = ("users", "items", "posts", "post_tags")

# Realistic enough for the statistics: names and titles from hashes, times spread over a year.
FILL = [
    f"""INSERT INTO users (email, username, hashed_password, is_active, is_admin, created_at,
                           email_confirmed_at, session_version)
        SELECT 'p' || substr(md5(g::text), 1, 12) || '@example.org',
               'u' || substr(md5(g::text), 13, 12), 'x', g % 50 <> 0, false,
               now() - (g * 1579 % 31536000) * interval '1 second',
               CASE WHEN g % 100 <> 0 THEN now() END, 1
        FROM generate_series(1, {USERS}) AS g""",
    f"""INSERT INTO items (title, description, owner_id, created_at, updated_at, version)
        SELECT 'Item ' || substr(md5('i' || g), 1, 10), NULL, 1 + g % {USERS},
               now() - (g * 7919 % 31536000) * interval '1 second',
               now() - (g * 7919 % 31536000) * interval '1 second', 1
        FROM generate_series(1, {ITEMS}) AS g""",
    f"""INSERT INTO posts (title, body, author_id, created_at, updated_at, version)
        SELECT 'Post ' || substr(md5('p' || g), 1, 10), 'Body', 1 + g % {USERS},
               now() - (g * 104729 % 31536000) * interval '1 second',
               now() - (g * 104729 % 31536000) * interval '1 second', 1
        FROM generate_series(1, {POSTS}) AS g""",
    f"INSERT INTO tags (name) SELECT 'tag-' || g FROM generate_series(1, {TAGS}) AS g",
    f"""INSERT INTO post_tags (post_id, tag_id)
        SELECT p, 1 + (p + 67 * k) % {TAGS} FROM generate_series(1, {POSTS}) AS p,
               generate_series(1, 3) AS k""",
]


@dataclass(frozen=True)
class Data:
    app: Flask
    admin: User
    username: str  # some user's username (the user search finds that one user)
    title_part: str  # a fragment of one item's title
    post_title_part: str  # a fragment of one post's title


@pytest.fixture(scope="module")
def data(postgres_engine: Engine) -> Iterator[Data]:
    """The rows above, committed and analysed; the tables are emptied again afterwards."""
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": postgres_url()})
    app.test_client_class = CSRFClient
    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    with app.app_context():
        with db.engine.begin() as conn:
            # Ids from 1 (earlier tests' rolled-back inserts have moved the sequences on).
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            for statement in FILL:
                conn.execute(text(statement))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Statistics from every row (ANALYZE samples 300 x the target), not from a random
            # sample of the 60,000 items: the plans must not change from one run to the next.
            conn.execute(text("SET default_statistics_target = 250"))
            conn.execute(text("VACUUM ANALYZE"))
        admin = db.session.get(User, 1)
        assert admin is not None
        admin.is_admin = True
        db.session.commit()
        some_user = db.session.get(User, USERS // 2)
        some_item = db.session.get(Item, ITEMS // 3)
        some_post = db.session.get(Post, POSTS // 4)
        assert some_user is not None and some_item is not None and some_post is not None
        yield Data(
            app,
            admin,
            some_user.username,
            some_item.title.split()[1][:8],
            some_post.title.split()[1][:8],
        )
        db.session.remove()
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # Statistics of empty tables, so that no later test sees these rows' estimates.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        db.engine.dispose()


def statements_of(data: Data, path: str) -> list[tuple[str, Any]]:
    """Every SELECT the app runs to answer ``path`` (as the admin), with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and statement.strip() != "SELECT 1":
            seen.append((statement, parameters))

    with data.app.app_context():
        client = data.app.test_client()
        AuthActions(client).login(data.admin)
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = client.get(path)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert response.status_code == 200, path
    return seen


def plan_of(data: Data, statement: str, parameters: Any) -> dict[str, Any]:
    """The plan PostgreSQL ran ``statement`` with (``EXPLAIN ANALYZE``: what really ran)."""
    with data.app.app_context(), db.engine.connect() as conn:
        raw = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
        ).scalar()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    node: dict[str, Any] = plan[0]["Plan"]
    return node


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of ``plan`` that ran (a branch the executor never reached is left out)."""
    if plan.get("Actual Loops", 1) == 0:
        return
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans(data: Data, path: str) -> list[tuple[str, str, str]]:
    """(node type, table, index) of every scan that ran for ``path``'s statements."""
    found = []
    for statement, parameters in statements_of(data, path):
        for node in nodes(plan_of(data, statement, parameters)):
            if "Relation Name" in node or "Index Name" in node:
                found.append(
                    (node["Node Type"], node.get("Relation Name", ""), node.get("Index Name", ""))
                )
    return found


def assert_no_sequential_scan(found: list[tuple[str, str, str]]) -> None:
    sequential = [scan for scan in found if scan[0] == "Seq Scan" and scan[1] in LARGE_TABLES]
    assert not sequential, found


def deep_cursor_path(data: Data, spec: ListSpec, endpoint: str, **args: str) -> str:
    """The list's URL at row 40,001 (or the middle of a shorter list), as "Next" links it."""
    with data.app.app_context():
        params = parse_params(spec, {"per_page": "50", **args})
        total = db.session.scalar(select(db.func.count()).select_from(spec.entity)) or 0
        listing = ListRepository(db.session, spec)
        key = spec.sort_keys[params.sort]
        ordered = listing.filtered(params, key.column, spec.id_column, joined=key.joined)
        ordered = ordered.order_by(*_order(key, spec.id_column, params.desc))
        value, row_id = db.session.execute(
            ordered.offset(min(40_000, total // 2) - 1).limit(1)
        ).one()
        cursor = Cursor(value, row_id).encode()
    return f"{endpoint}?{urlencode({'per_page': '50', **args, 'after': cursor})}"


def test_the_user_search_reads_the_trigram_index(data: Data) -> None:
    found = scans(data, f"/admin/users?q={data.username}")
    assert_no_sequential_scan(found)
    indexes = {index for _, _, index in found}
    assert "ix_users_search_trgm" in indexes, found


def test_the_item_title_search_reads_the_trigram_index(data: Data) -> None:
    found = scans(data, f"/admin/items?q={data.title_part}")
    assert_no_sequential_scan(found)
    assert ("Bitmap Index Scan", "", "ix_items_title_trgm") in found, found


def test_the_post_title_search_reads_the_trigram_index(data: Data) -> None:
    found = scans(data, f"/posts/?q={data.post_title_part}")
    assert_no_sequential_scan(found)
    assert any(index == "ix_posts_title_trgm" for _, _, index in found), found


def test_the_unconfirmed_users_filter_walks_its_partial_index(data: Data) -> None:
    """One user in a hundred is unconfirmed: newest first, the page and its count read the
    partial index of those users instead of walking every user's creation time."""
    found = scans(data, "/admin/users?confirmed=no&per_page=50")
    assert_no_sequential_scan(found)
    # Not the signed-in user and their session record; not a bitmap's heap half (the count
    # reads each row's ``deleted_at`` there, to leave trashed users out: the index holds no
    # such column).
    listing = [
        scan
        for scan in found
        if scan[2] != "pk_users" and scan[1] != "user_sessions" and scan[0] != "Bitmap Heap Scan"
    ]
    assert len(listing) == 2, found  # the page and its capped count
    assert all(scan[2] == "ix_users_unconfirmed_created_at_id" for scan in listing), found


@pytest.mark.parametrize(
    ("spec", "endpoint", "args", "index"),
    [
        (ITEM_LIST, "/admin/items", {}, "ix_items_created_at_id"),
        (ITEM_LIST, "/admin/items", {"sort": "title", "dir": "asc"}, "ix_items_title_id"),
        (ITEM_LIST, "/admin/items", {"sort": "updated", "dir": "desc"}, "ix_items_updated_at_id"),
        (ITEM_LIST, "/admin/items", {"sort": "owner", "dir": "asc"}, "uq_users_username_lower"),
        (USER_LIST, "/admin/users", {}, "ix_users_created_at_id"),
        (USER_LIST, "/admin/users", {"sort": "email", "dir": "asc"}, "uq_users_email"),
        (USER_LIST, "/admin/users", {"sort": "active", "dir": "asc"}, "ix_users_is_active_id"),
    ],
    ids=[
        "items-created",
        "items-title",
        "items-updated",
        "items-owner",
        "users-created",
        "users-email",
        "users-active",
    ],
)
def test_a_deep_keyset_page_walks_the_sort_keys_index(
    data: Data, spec: ListSpec, endpoint: str, args: dict[str, str], index: str
) -> None:
    found = scans(data, deep_cursor_path(data, spec, endpoint, **args))
    assert_no_sequential_scan(found)
    assert any(scan[2] == index for scan in found), found


def test_a_deep_numbered_page_of_the_feed_walks_an_index(data: Data) -> None:
    found = scans(data, "/posts/?page=400")
    assert_no_sequential_scan(found)
    assert any(scan[2] == "ix_posts_created_at_id" for scan in found), found


@pytest.mark.parametrize("path", ["/admin/users", "/admin/items", "/admin/posts", "/posts/"])
def test_whole_tables_are_not_counted(data: Data, path: str) -> None:
    """An unfiltered list of a large table shows the planner's estimate: no statement it
    runs reads more rows of a large table than a page needs."""
    for statement, parameters in statements_of(data, path):
        for node in nodes(plan_of(data, statement, parameters)):
            if node.get("Relation Name") in LARGE_TABLES:
                assert node["Actual Rows"] * node["Actual Loops"] <= 500, (path, node)


def test_a_large_table_shows_the_planners_estimate_and_a_search_its_count(data: Data) -> None:
    with data.app.app_context():
        client = data.app.test_client()
        AuthActions(client).login(data.admin)
        users = client.get("/admin/users").get_data(as_text=True)
        items = client.get("/admin/items").get_data(as_text=True)
        search = client.get(f"/admin/users?q={data.username}").get_data(as_text=True)
        dashboard = client.get("/admin/").get_data(as_text=True)
    assert "About 20,000 users" in users
    assert "About 60,000 items" in items
    assert "1 user matches the filters" in search
    assert '<span class="stat-approx">about</span> 60,000' in dashboard


def test_a_large_tables_estimate_is_read_once_for_a_while(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimate costs the server more than a page of rows: it is kept for seconds."""
    ESTIMATES.forget()
    first = statements_of(data, "/admin/users")
    second = statements_of(data, "/admin/users")
    assert [("pg_class" in s) for s, _ in first].count(True) == 1
    assert not any("pg_class" in s for s, _ in second)
    assert len(second) == len(first) - 1  # the signed-in admin and the page's rows
    assert not any("count(" in s for s, _ in second)  # the estimate stands in for a count
    monkeypatch.setattr(counting, "ESTIMATE_MAX_AGE", 0.0)
    third = statements_of(data, "/admin/users")
    assert [("pg_class" in s) for s, _ in third].count(True) == 1


def test_a_whole_tables_count_statement_is_built_only_when_no_estimate_stands_in(
    data: Data,
) -> None:
    """A list page asks for its size on every request: the statement counting the rows is
    not even built while the planner's estimate answers."""
    built: list[str] = []

    def ids() -> Select[Any]:
        built.append("ids")
        return select(User.id)

    with data.app.app_context():
        estimated = counting.total_columns(db.session, ids, whole="users")
        assert estimated.count is None and estimated.known is not None
        assert built == []
        counted = counting.total_columns(db.session, ids)
    assert counted.count is not None and counted.known is None
    assert built == ["ids"]
