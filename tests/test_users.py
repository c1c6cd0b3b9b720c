"""Public profiles: /users/<username>."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from tests.account_helpers import text
from tests.factories import PostFactory, TagFactory, UserFactory
from tests.helpers import QueryCounter
from webapp.models import Post, User
from webapp.profiles.views import POSTS_PER_PAGE

POST_TITLE = re.compile(r'<h3 class="post-title"><a href="[^"]*">(.*?)</a></h3>')


def dated_posts(author: User, count: int, *, start: int = 0) -> list[Post]:
    """``count`` posts a day apart, so that "newest first" has one right answer."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        PostFactory(author=author, title=f"Post {n:02d}", created_at=base + timedelta(days=n))
        for n in range(start, start + count)
    ]


def test_a_profile_shows_the_name_the_join_date_and_the_posts(
    client: FlaskClient, user: User
) -> None:
    user.created_at = datetime(2025, 5, 17, 9, 30, tzinfo=UTC)
    dated_posts(user, 2)
    PostFactory(author=user, title="Tagged", tags=[TagFactory(name="garden")])
    PostFactory(title="Someone else's")
    page = text(client.get("/users/alice"))
    assert "<title>alice &middot; webapp</title>" in page
    assert '<h1 id="profile-name">alice</h1>' in page
    assert "Member since <time" in page
    assert "17 May 2025" in page
    assert "3 posts" in page
    assert POST_TITLE.findall(page) == ["Tagged", "Post 01", "Post 00"]
    assert '<a class="tag" href="/tags/garden">garden</a>' in page
    assert "alice@example.com" not in page  # the address is private


def test_a_profile_is_found_whatever_the_case(client: FlaskClient) -> None:
    UserFactory(username="Mixed.Case")
    page = text(client.get("/users/mixed.CASE"))
    assert '<h1 id="profile-name">Mixed.Case</h1>' in page


def test_a_profile_without_posts_says_so(client: FlaskClient, user: User) -> None:
    page = text(client.get("/users/alice"))
    assert "alice has not written any posts yet." in page
    assert "0 posts" in page


@pytest.mark.parametrize("name", ["nobody", "sleeper", "x" * 51, "bad name", "a%00b", "al"])
def test_unknown_or_deactivated_profiles_are_404(
    client: FlaskClient, user: User, name: str
) -> None:
    UserFactory(username="sleeper", is_active=False)
    response = client.get(f"/users/{name}")
    assert response.status_code == 404
    assert "Page not found" in text(response)


def test_a_profile_is_paginated(client: FlaskClient, user: User) -> None:
    dated_posts(user, POSTS_PER_PAGE * 2 + 5)
    first = text(client.get("/users/alice"))
    assert POST_TITLE.findall(first) == [f"Post {n:02d}" for n in range(24, 14, -1)]
    assert 'href="/users/alice?page=2"' in first
    assert "Showing 1&ndash;10 of 25" in first

    last = text(client.get("/users/alice?page=3"))
    assert POST_TITLE.findall(last) == [f"Post {n:02d}" for n in range(4, -1, -1)]
    assert "Showing 21&ndash;25 of 25" in last
    assert 'href="/users/alice?page=2" rel="prev"' in last

    # Page numbers a URL may carry are made sensible.
    assert POST_TITLE.findall(text(client.get("/users/alice?page=999"))) == POST_TITLE.findall(last)
    assert POST_TITLE.findall(text(client.get("/users/alice?page=-2"))) == POST_TITLE.findall(first)
    assert client.get("/users/alice?page=99999999999999999999").status_code == 200


def test_a_profile_runs_a_fixed_number_of_queries(
    client: FlaskClient, user: User, count_queries: QueryCounter
) -> None:
    def queries() -> int:
        with count_queries() as statements:
            assert client.get("/users/alice").status_code == 200
        return len(statements)

    def add(n: int) -> None:
        for _ in range(n):
            PostFactory(author=user, tags=[TagFactory(), TagFactory()])

    add(4)
    few = queries()
    add(4)
    # the user, the count, one page of posts with their author, and their tags
    assert queries() == few <= 4
