"""Every list page's SQL budget, stated in one place: the statements a request runs.

Each page is requested with N rows to show and again with 2N (both more than a page holds,
so counts and "next" links are in play); the number of statements must be the same both
times and exactly the budget below. The budgets count what a page needs: the signed-in
user (when there is one), the page's rows (related values and a whole table's size come in
the same statement), and a capped count when a filtered list runs over more than one page.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions, QueryCounter
from webapp.extensions import db
from webapp.models import Tag, User
from webapp.repositories import AuditRepository

# (path, signed in as the admin, statements, what they are)
BUDGETS = [
    ("/", False, 1, "newest posts with authors and tags"),
    ("/posts/", False, 1, "posts with authors, tags and the table's size"),
    ("/posts/?q=Note", False, 2, "matching posts, their capped count"),
    ("/posts/?page=2", False, 1, "a deeper page: ids skipped by index, then the page"),
    ("/tags/", False, 2, "tag count, tags with post counts"),
    ("/tags/common", False, 3, "the tag, its posts, their capped count"),
    ("/users/writer", False, 3, "the author, their posts, their capped count"),
    ("/items/", True, 3, "me, my items, their capped count"),
    ("/admin/users?per_page=20", True, 2, "me, users with the table's size"),
    ("/admin/users?per_page=20&q=user", True, 3, "me, matching users, their capped count"),
    ("/admin/items?per_page=20", True, 2, "me, items with owners and the table's size"),
    ("/admin/posts?per_page=20", True, 2, "me, posts with authors, tags and the size"),
    ("/admin/tags?per_page=20", True, 2, "me, tags with post counts and the size"),
    ("/admin/audit?per_page=20", True, 2, "me, events with the table's size"),
    ("/admin/", True, 5, "me, daily series, counts, newest users, latest events"),
]


def add_rows(admin: User, n: int) -> None:
    """``n`` more of everything the pages above list."""
    writer = db.session.scalar(select(User).where(User.username == "writer"))
    writer = writer or UserFactory(username="writer")
    common = db.session.scalar(select(Tag).where(Tag.name == "common"))
    common = common or TagFactory(name="common")
    audit = AuditRepository(db.session)
    for _ in range(n):
        person = UserFactory()
        ItemFactory(owner=admin)
        ItemFactory(owner=person)
        PostFactory(author=writer, title="Note", tags=[common, TagFactory()])
        audit.record("test.event", actor=person, target_type="user", target_id=person.id)


@pytest.mark.parametrize(
    ("path", "signed_in", "budget", "what"), BUDGETS, ids=[b[0] for b in BUDGETS]
)
def test_a_list_page_runs_its_budget_of_statements_whatever_it_shows(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    admin_user: User,
    count_queries: QueryCounter,
    path: str,
    signed_in: bool,
    budget: int,
    what: str,
) -> None:
    if signed_in:
        auth.login(admin_user)
    client.get(path)  # reads large tables' estimates, which the next seconds' pages reuse
    counts = []
    for n in (25, 25):  # 25 rows, then 50: both more than a page
        add_rows(admin_user, n)
        with count_queries() as statements:
            response = client.get(path)
        assert response.status_code == 200, path
        counts.append(len(statements))
    assert counts == [budget, budget], (what, counts)
