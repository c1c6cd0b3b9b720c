"""CSV export of any filtered list: escaped formula cells, streamed in flat memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, event, insert

from tests.factories import (
    ItemFactory,
    OutboxMessageFactory,
    PostFactory,
    TagFactory,
    UserFactory,
)
from tests.helpers import AuthActions
from webapp.admin.tables import TABLES
from webapp.extensions import db
from webapp.models import Item, User, utcnow
from webapp.repositories import AuditRepository


@pytest.fixture
def admin(client: FlaskClient, auth: AuthActions, admin_user: User) -> User:
    return auth.login(admin_user)


def read_csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_export_is_an_attachment_of_the_filtered_sorted_list(
    client: FlaskClient, admin: User
) -> None:
    UserFactory(username="zoe", email="zoe@example.com", is_active=False)
    UserFactory(username="amy", email="amy@example.com", is_active=False)
    UserFactory(username="active", email="active@example.com")
    response = client.get("/admin/users/export?active=no&sort=username&dir=asc")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="users-')
    rows = read_csv(response)
    assert rows[0] == [
        "id",
        "email",
        "username",
        "active",
        "admin",
        "created_at",
        "email_confirmed_at",
        "last_login_at",
    ]
    assert [(r[1], r[2], r[3]) for r in rows[1:]] == [
        ("amy@example.com", "amy", "false"),
        ("zoe@example.com", "zoe", "false"),
    ]


@pytest.mark.parametrize(
    "title",
    ['=HYPERLINK("http://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"],
)
def test_formula_like_cells_are_escaped(client: FlaskClient, admin: User, title: str) -> None:
    ItemFactory(title=title, description="=1+1")
    ItemFactory(title="Plain lamp", description="-")
    rows = read_csv(client.get("/admin/items/export?sort=title&dir=asc"))
    header = rows[0]
    cells = {row[header.index("title")]: row[header.index("description")] for row in rows[1:]}
    assert cells == {"'" + title: "'=1+1", "Plain lamp": "'-"}


def test_every_table_exports_and_posts_carry_their_tags(client: FlaskClient, admin: User) -> None:
    post = PostFactory(title="Tagged", tags=[TagFactory(name="b-tag"), TagFactory(name="a-tag")])
    ItemFactory(owner=admin)
    AuditRepository(db.session).record(
        "admin.test", actor=admin, target_type="post", target_id=post.id, after={"x": 1}
    )
    OutboxMessageFactory()
    for name in TABLES:
        response = client.get(f"/admin/{name}/export")
        assert response.status_code == 200, name
        assert len(read_csv(response)) >= 2, name
    rows = read_csv(client.get("/admin/posts/export"))
    assert sorted(rows[1][rows[0].index("tags")].split(", ")) == ["a-tag", "b-tag"]
    rows = read_csv(client.get("/admin/audit/export"))
    assert json.loads(rows[1][rows[0].index("after")]) == {"x": 1}


def _many_items(owner: User, count: int) -> None:
    now = utcnow()
    rows = [
        {"title": f"Item number {n}", "description": "x" * 200, "owner_id": owner.id}
        for n in range(count)
    ]
    for row in rows:
        row.update(created_at=now, updated_at=now, version=1)
    db.session.execute(insert(Item), rows)
    db.session.flush()


@contextmanager
def cursor_names() -> Iterator[list[object]]:
    """The DB-API cursors that SELECTs from items ran on (named = server-side on psycopg2)."""
    seen: list[object] = []
    bind = db.session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM items" in statement:
            seen.append(getattr(cursor, "name", None))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _peak_while_streaming(client: FlaskClient) -> tuple[int, int]:
    """Stream the items export, dropping each line; (peak traced bytes, lines seen)."""
    response = client.get("/admin/items/export", buffered=False)
    assert response.is_streamed
    lines = 0
    tracemalloc.start()
    try:
        for _chunk in response.response:
            lines += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        response.close()
    return peak, lines


def test_export_streams_line_by_line_in_flat_memory(
    app: Flask, client: FlaskClient, admin: User, backend: str
) -> None:
    owner = UserFactory(username="hoarder")
    _many_items(owner, 3_000)  # several fetch batches already
    _peak_while_streaming(client)  # warm caches (compiled SQL, templates)
    small_peak, small_lines = _peak_while_streaming(client)
    assert small_lines == 3_001  # one chunk per row, plus the header

    _many_items(owner, 9_000)
    with cursor_names() as cursors:
        big_peak, big_lines = _peak_while_streaming(client)
    assert big_lines == 12_001
    # Four times the rows, the same memory: one fetch batch at a time, nothing gathered.
    assert big_peak < small_peak * 1.2, (small_peak, big_peak)
    if backend == "postgresql":
        assert cursors and all(cursors), "the export must read through a server-side cursor"
