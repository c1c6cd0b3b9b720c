"""Tags: normalisation rules, the tag list with counts, one tag's posts, pagination, queries."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import PostFactory, TagFactory, UserFactory
from webapp.extensions import db
from webapp.models import Post, Tag
from webapp.validation import ValidationError, normalise_tag, parse_tags

PER_PAGE = 5


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PER_PAGE": PER_PAGE}


def html_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def count_of(model: type[Any]) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


# --- the rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("python", "python"),
        ("  Python  ", "python"),
        ("WEB DEV", "web-dev"),
        ("web   dev", "web-dev"),
        ("web\u00a0dev", "web-dev"),
        ("web - dev", "web-dev"),
        ("-edge-", "edge"),
        ("web--dev", "web-dev"),
        ("c99", "c99"),
        ("2024", "2024"),
        ("x" * 50, "x" * 50),
    ],
)
def test_normalise_tag(raw: str, name: str) -> None:
    assert normalise_tag(raw) == name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "A tag cannot be empty."),
        ("   ", "A tag cannot be empty."),
        ("---", 'Tag "---" needs at least one letter or digit.'),
        ("c++", 'Tag "c++" may only use letters, digits and hyphens.'),
        ("C#", 'Tag "C#" may only use letters, digits and hyphens.'),
        ("snake_case", 'Tag "snake_case" may only use letters'),
        ("café", 'Tag "café" may only use letters'),
        ("a/b", 'Tag "a/b" may only use letters'),
        ("<b>", 'Tag "<b>" may only use letters'),
        ("x" * 51, "is longer than 50 characters"),
        ("é" * 40, "…" + '" may only use letters'),  # a long bad tag is named, shortened
    ],
)
def test_bad_tags_are_named_in_the_error(raw: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_tag(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", []),
        (" , ,, ", []),
        ("python", ["python"]),
        ("Python, python, PYTHON", ["python"]),
        ("b, a, b", ["b", "a"]),
        ("web dev, Web-Dev, flask", ["web-dev", "flask"]),
        (",".join(f"t{n}" for n in range(10)), [f"t{n}" for n in range(10)]),
        (",".join(["same"] * 30), ["same"]),  # duplicates do not count towards the limit
    ],
)
def test_parse_tags(text: str, names: list[str]) -> None:
    assert parse_tags(text) == names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (",".join(f"t{n}" for n in range(11)), "Use at most 10 tags (there are 11)."),
        ("fine, c++, also-fine", 'Tag "c++"'),
        ("fine, ---", 'Tag "---"'),
    ],
)
def test_parse_tags_refuses(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse_tags(text)


# --- the pages ----------------------------------------------------------------------------


def test_tag_list_shows_post_counts_most_used_first(client: FlaskClient) -> None:
    popular, rare = TagFactory(name="popular"), TagFactory(name="rare")
    TagFactory(name="unused")
    PostFactory(tags=[popular, rare])
    PostFactory(tags=[popular])
    html = html_of(client.get("/tags/"))
    assert html.index("popular") < html.index("rare") < html.index("unused")
    assert '<span class="tag-count">2 posts</span>' in html
    assert '<span class="tag-count">1 post</span>' in html
    assert '<span class="tag-count">0 posts</span>' in html
    assert 'href="/tags/popular"' in html


def test_empty_tag_list_says_so(client: FlaskClient) -> None:
    assert "No tags yet" in html_of(client.get("/tags/"))


def test_tag_page_lists_that_tags_posts(client: FlaskClient) -> None:
    python = TagFactory(name="python")
    PostFactory(title="Snakes and ladders", tags=[python], author=UserFactory(username="dora"))
    PostFactory(title="Unrelated")
    response = client.get("/tags/python")
    assert response.status_code == 200
    html = html_of(response)
    assert "Posts tagged" in html
    assert "Snakes and ladders" in html
    assert "Unrelated" not in html
    assert 'href="/users/dora"' in html


def test_tag_without_posts_says_so(client: FlaskClient) -> None:
    TagFactory(name="lonely")
    response = client.get("/tags/lonely")
    assert response.status_code == 200
    assert "No posts carry this tag" in html_of(response)


@pytest.mark.parametrize("path", ["/tags/nothing-here", "/tags/c++", "/tags/%00", "/tags/---"])
def test_unknown_or_impossible_tag_is_a_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "Page not found" in html_of(response)


def test_tag_names_in_other_spellings_lead_to_the_tag(client: FlaskClient) -> None:
    TagFactory(name="web-dev")
    response = client.get("/tags/Web%20Dev")
    assert response.status_code == 301
    assert response.headers["Location"] == "/tags/web-dev"


@pytest.mark.parametrize(
    ("page_arg", "shown_page"),
    [("0", 1), ("-2", 1), ("x", 1), ("2", 2), ("3", 3), ("999999999", 3), ("9" * 30, 1)],
)
def test_tag_page_numbers_out_of_range_give_a_sensible_page(
    client: FlaskClient, page_arg: str, shown_page: int
) -> None:
    tag = TagFactory(name="busy")
    for n in range(2 * PER_PAGE + 1):
        PostFactory(title=f"Busy post {n:02d}", tags=[tag])
    response = client.get(f"/tags/busy?page={page_arg}")
    assert response.status_code == 200
    html = html_of(response)
    assert f'<span class="current" aria-current="page">{shown_page}</span>' in html
    assert ("Busy post 10" in html) is (shown_page == 1)
    assert ("Busy post 00" in html) is (shown_page == 3)
    assert 'href="/tags/busy?page=' in html


@pytest.mark.parametrize(("page_arg", "shown_page"), [("0", 1), ("-1", 1), ("y", 1), ("50", 2)])
def test_tag_list_page_numbers_out_of_range(
    app: Flask, client: FlaskClient, page_arg: str, shown_page: int, monkeypatch: Any
) -> None:
    monkeypatch.setattr("webapp.tags.views.TAGS_PER_PAGE", 3)
    for n in range(4):
        TagFactory(name=f"tag-{n}")
    response = client.get(f"/tags/?page={page_arg}")
    assert response.status_code == 200
    html = html_of(response)
    assert f'<span class="current" aria-current="page">{shown_page}</span>' in html
    assert ("tag-0" in html) is (shown_page == 1)
    assert ("tag-3" in html) is (shown_page == 2)


# --- queries ------------------------------------------------------------------------------

TAG_LIST_QUERY_BOUND = 2  # the count of tags, the tags with their post counts
TAG_PAGE_QUERY_BOUND = 4  # the tag, the count, the posts with their authors, their tags


def test_tag_list_query_count_does_not_grow(client: FlaskClient, count_queries: Any) -> None:
    counts = []
    for rows in (10, 20):
        while count_of(Tag) < rows:
            PostFactory(author=UserFactory(), tags=[TagFactory(), TagFactory()])
        with count_queries() as statements:
            response = client.get("/tags/")
        assert response.status_code == 200
        assert html_of(response).count('class="tag-tile"') == rows
        counts.append(len(statements))
    assert counts[0] == counts[1] <= TAG_LIST_QUERY_BOUND


def test_tag_page_query_count_does_not_grow(
    app: Flask, client: FlaskClient, count_queries: Any
) -> None:
    app.config["PER_PAGE"] = 50
    tag = TagFactory(name="shared")
    counts = []
    for rows in (5, 10):
        while count_of(Post) < rows:
            PostFactory(author=UserFactory(), tags=[tag, TagFactory()])
        with count_queries() as statements:
            response = client.get("/tags/shared")
        assert response.status_code == 200
        assert html_of(response).count('class="card post-card"') == rows
        counts.append(len(statements))
    assert counts[0] == counts[1] <= TAG_PAGE_QUERY_BOUND
