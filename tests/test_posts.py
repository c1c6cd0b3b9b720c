"""Posts: the public feed, post pages, writing, author/admin rules, tags, conflicts, queries."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from tests.factories import PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions
from webapp.extensions import db
from webapp.models import POST_BODY_MAX, Post, Tag, User

PER_PAGE = 5


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PER_PAGE": PER_PAGE}


@pytest.fixture
def signed_in(auth: AuthActions, user: User) -> User:
    return auth.login(user)


def html_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def reload(post_id: int) -> Post | None:
    """The row as the app sees it now (None: deleted, or in the trash)."""
    db.session.expire_all()
    return db.session.scalar(select(Post).where(Post.id == post_id))


def post_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Post)) or 0


def tag_names(post: Post) -> list[str]:
    return [tag.name for tag in post.tags]


def hidden_version(html: str) -> str:
    match = re.search(r'id="version" name="version" type="hidden" value="(\d+)"', html)
    assert match, "no version field in the form"
    return match.group(1)


# --- the public feed and post pages -----------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/posts/"])
def test_feed_shows_newest_first_with_links(client: FlaskClient, path: str) -> None:
    author = UserFactory(username="bob.smith")
    tag = TagFactory(name="gardening")
    older = PostFactory(title="Older post", author=author)
    newer = PostFactory(title="Newer post", author=author, tags=[tag])
    html = html_of(client.get(path))
    assert html.index("Newer post") < html.index("Older post")
    assert f'href="/posts/{newer.id}"' in html
    assert f'href="/posts/{older.id}"' in html
    assert 'href="/users/bob.smith"' in html
    assert 'href="/tags/gardening"' in html


def test_author_links_are_url_encoded(client: FlaskClient) -> None:
    PostFactory(author=UserFactory(username="a.b-c_d"))
    assert 'href="/users/a.b-c_d"' in html_of(client.get("/posts/"))


def test_feed_searches_titles(client: FlaskClient) -> None:
    PostFactory(title="Python tips", body="nothing")
    PostFactory(title="Gardening", body="python in the body does not count")
    html = html_of(client.get("/posts/?q=PYTHON"))
    assert "Python tips" in html
    assert "Gardening" not in html
    assert 'value="PYTHON"' in html


@pytest.mark.parametrize("asked", ["python", "Python", " python "])
def test_feed_filters_by_tag(client: FlaskClient, asked: str) -> None:
    python = TagFactory(name="python")
    PostFactory(title="Tagged post", tags=[python])
    PostFactory(title="Untagged post")
    html = html_of(client.get("/posts/", query_string={"tag": asked}))
    assert "Tagged post" in html
    assert "Untagged post" not in html
    assert "Showing posts tagged" in html


def test_feed_with_an_impossible_tag_is_empty_not_an_error(client: FlaskClient) -> None:
    PostFactory(title="Anything")
    response = client.get("/posts/?tag=%00<>&q=%00")
    assert response.status_code == 200
    assert "No posts match" in html_of(response)


def test_feed_search_and_tag_combine_and_pagination_keeps_both(client: FlaskClient) -> None:
    tag = TagFactory(name="news")
    for n in range(PER_PAGE + 1):
        PostFactory(title=f"Daily news {n}", tags=[tag])
    PostFactory(title="Daily other")
    html = html_of(client.get("/posts/?q=daily&tag=news"))
    assert "Daily other" not in html
    assert 'href="/posts/?page=2&amp;q=daily&amp;tag=news"' in html


def test_empty_feed_invites_writing(client: FlaskClient) -> None:
    html = html_of(client.get("/posts/"))
    assert "No posts yet" in html
    assert 'href="/posts/new"' in html


@pytest.mark.parametrize(
    ("page_arg", "shown_page", "newest_shown"),
    [
        ("0", 1, True),
        ("-3", 1, True),
        ("two", 1, True),
        ("3", 3, False),
        ("2147483648", 1, True),
        ("999999", 3, False),
    ],
)
def test_feed_page_numbers_out_of_range_give_a_sensible_page(
    client: FlaskClient, page_arg: str, shown_page: int, newest_shown: bool
) -> None:
    for n in range(2 * PER_PAGE + 1):
        PostFactory(title=f"Post number {n:02d}")
    response = client.get(f"/posts/?page={page_arg}")
    assert response.status_code == 200
    html = html_of(response)
    assert f'<span class="current" aria-current="page">{shown_page}</span>' in html
    assert ("Post number 10" in html) is newest_shown


def test_post_page_shows_author_tags_and_body_escaped_with_line_breaks(
    client: FlaskClient,
) -> None:
    post = PostFactory(
        title="<i>Hello</i>",
        body="First line\nSecond <script>alert(1)</script>",
        author=UserFactory(username="carol"),
        tags=[TagFactory(name="zeta"), TagFactory(name="alpha")],
    )
    response = client.get(f"/posts/{post.id}")
    assert response.status_code == 200
    html = html_of(response)
    assert "<h1>&lt;i&gt;Hello&lt;/i&gt;</h1>" in html
    assert (
        '<div class="body-text post-body">First line\n'
        "Second &lt;script&gt;alert(1)&lt;/script&gt;</div>"
    ) in html
    assert 'href="/users/carol"' in html
    assert html.index('href="/tags/alpha"') < html.index('href="/tags/zeta"')
    assert re.search(r"\d{2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", html)
    assert f'href="/posts/{post.id}/edit"' not in html  # anonymous: no edit link


def test_unknown_post_is_a_404(client: FlaskClient) -> None:
    assert client.get("/posts/424242").status_code == 404
    assert client.get("/posts/99999999999999").status_code == 404


# --- writing ----------------------------------------------------------------------------


def test_write_a_post_with_tags(client: FlaskClient, signed_in: User) -> None:
    TagFactory(name="python")
    form = html_of(client.get("/posts/new"))
    assert 'list="tag-suggestions"' in form
    assert '<option value="python"></option>' in form
    response = client.post(
        "/posts/new",
        data={
            "title": "  My first post ",
            "body": "Hello.\r\n\r\nBye.",
            "tags": " Python, Web  Dev ,python,, flask ",
        },
    )
    post = db.session.scalars(select(Post)).one()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/posts/{post.id}"
    assert (post.title, post.body, post.author_id) == (
        "My first post",
        "Hello.\n\nBye.",
        signed_in.id,
    )
    assert tag_names(post) == ["flask", "python", "web-dev"]
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 3  # python reused
    assert "Post “My first post” published." in html_of(client.get(f"/posts/{post.id}"))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"title": "", "tags": ""}, "title", "Give the post a title."),
        ({"title": "t" * 201, "tags": ""}, "title", "longer than 200 characters"),
        ({"title": "Null\x00", "tags": ""}, "title", "Remove the control characters"),
        ({"title": "Ok", "body": "b" * (POST_BODY_MAX + 1)}, "body", "longer than 20000"),
        ({"title": "Ok", "body": "nul \x00 inside"}, "body", "Remove the control characters"),
        ({"title": "Ok", "tags": "good, c++"}, "tags", 'Tag "c++" may only use letters'),
        ({"title": "Ok", "tags": "ok, ---"}, "tags", 'Tag "---" needs at least one letter'),
        ({"title": "Ok", "tags": "x" * 51}, "tags", "longer than 50 characters"),
        (
            {"title": "Ok", "tags": ",".join(f"t{n}" for n in range(11))},
            "tags",
            "Use at most 10 tags",
        ),
        ({"title": "Ok", "tags": "tab\there"}, "tags", "Remove the control characters"),
    ],
)
def test_bad_posts_are_refused_beside_the_field(
    client: FlaskClient, signed_in: User, data: dict[str, str], field: str, message: str
) -> None:
    response = client.post("/posts/new", data=data)
    assert response.status_code == 422
    html = html_of(response)
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert error, html
    assert message in error.group(1).replace("&#34;", '"').replace("&#43;", "+")
    assert post_count() == 0
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 0


def test_refused_post_keeps_what_was_typed(client: FlaskClient, signed_in: User) -> None:
    html = html_of(
        client.post(
            "/posts/new", data={"title": "Kept title", "body": "Kept\nbody", "tags": "ok, c++"}
        )
    )
    assert 'value="Kept title"' in html
    assert "Kept\nbody</textarea>" in html
    assert 'value="ok, c++"' in html


@pytest.mark.parametrize(("method", "data"), [("GET", None), ("POST", {"title": "Sneaky"})])
def test_writing_needs_sign_in(client: FlaskClient, method: str, data: Any) -> None:
    response = client.open("/posts/new", method=method, data=data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert post_count() == 0


# --- who may change a post --------------------------------------------------------------

CHANGE_ROUTES = [
    ("GET", "/posts/{id}/edit", None),
    ("POST", "/posts/{id}/edit", {"title": "Changed", "body": "", "tags": "new", "version": "1"}),
    ("GET", "/posts/{id}/delete", None),
    ("POST", "/posts/{id}/delete", {}),
]


@pytest.fixture
def bobs_post(app: Flask) -> Post:
    return PostFactory(
        title="Bob's post", author=UserFactory(username="bob"), tags=[TagFactory(name="old")]
    )


def assert_unchanged(post: Post) -> None:
    kept = reload(post.id)
    assert kept is not None
    assert (kept.title, kept.version, tag_names(kept)) == ("Bob's post", 1, ["old"])


@pytest.mark.parametrize(("method", "path", "data"), CHANGE_ROUTES)
def test_other_signed_in_users_get_a_403_and_nothing_changes(
    client: FlaskClient,
    signed_in: User,
    bobs_post: Post,
    method: str,
    path: str,
    data: dict[str, str] | None,
) -> None:
    response = client.open(path.format(id=bobs_post.id), method=method, data=data)
    assert response.status_code == 403
    assert "Forbidden" in html_of(response)
    assert_unchanged(bobs_post)


@pytest.mark.parametrize(("method", "path", "data"), CHANGE_ROUTES)
def test_anonymous_visitors_are_sent_to_sign_in(
    client: FlaskClient, bobs_post: Post, method: str, path: str, data: dict[str, str] | None
) -> None:
    response = client.open(path.format(id=bobs_post.id), method=method, data=data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert_unchanged(bobs_post)


@pytest.mark.parametrize("who", ["author", "admin"])
@pytest.mark.parametrize(("method", "path", "data"), CHANGE_ROUTES)
def test_author_and_admin_may_change_a_post(
    client: FlaskClient,
    auth: AuthActions,
    admin_user: User,
    bobs_post: Post,
    who: str,
    method: str,
    path: str,
    data: dict[str, str] | None,
) -> None:
    auth.login(bobs_post.author if who == "author" else admin_user)
    response = client.open(path.format(id=bobs_post.id), method=method, data=data)
    if method == "GET":
        assert response.status_code == 200
        assert "Bob&#39;s post" in html_of(response)
        assert_unchanged(bobs_post)
    elif path.endswith("/edit"):
        assert response.status_code == 302
        saved = reload(bobs_post.id)
        assert saved is not None
        assert (saved.title, tag_names(saved), saved.author.username) == ("Changed", ["new"], "bob")
    else:
        assert response.status_code == 302
        assert reload(bobs_post.id) is None


@pytest.mark.parametrize("who", ["author", "admin", "other", "anonymous"])
def test_edit_and_delete_links_only_for_those_who_may(
    client: FlaskClient, auth: AuthActions, admin_user: User, bobs_post: Post, who: str
) -> None:
    if who != "anonymous":
        auth.login({"author": bobs_post.author, "admin": admin_user, "other": UserFactory()}[who])
    html = html_of(client.get(f"/posts/{bobs_post.id}"))
    assert (f'href="/posts/{bobs_post.id}/edit"' in html) is (who in {"author", "admin"})
    assert (f'href="/posts/{bobs_post.id}/delete"' in html) is (who in {"author", "admin"})


@pytest.mark.parametrize(("method", "path", "data"), CHANGE_ROUTES)
def test_changing_a_missing_post_is_a_404(
    client: FlaskClient, signed_in: User, method: str, path: str, data: Any
) -> None:
    assert client.open(path.format(id=987654), method=method, data=data).status_code == 404


# --- editing ----------------------------------------------------------------------------


def test_edit_form_opens_with_the_post_and_its_tags(client: FlaskClient, signed_in: User) -> None:
    post = PostFactory(
        author=signed_in, title="Mine", tags=[TagFactory(name="b-tag"), TagFactory(name="a-tag")]
    )
    html = html_of(client.get(f"/posts/{post.id}/edit"))
    assert 'value="Mine"' in html
    assert 'value="a-tag, b-tag"' in html
    assert hidden_version(html) == "1"


def test_editing_only_the_tags_saves_and_bumps_the_version(
    client: FlaskClient, signed_in: User
) -> None:
    post = PostFactory(author=signed_in, title="Same", body="Same", tags=[TagFactory(name="old")])
    response = client.post(
        f"/posts/{post.id}/edit",
        data={"title": "Same", "body": "Same", "tags": "New, other", "version": "1"},
    )
    assert response.status_code == 302
    saved = reload(post.id)
    assert saved is not None
    assert (tag_names(saved), saved.version) == (["new", "other"], 2)
    assert "Post “Same” saved." in html_of(client.get(f"/posts/{post.id}"))
    # The old tag stays (it may be used again) but no longer lists the post.
    assert "Same" not in html_of(client.get("/tags/old")).split("<main", 1)[1]


def test_edit_conflict_shows_both_versions(client: FlaskClient, signed_in: User) -> None:
    post = PostFactory(author=signed_in, title="Draft", body="Original body")
    opened_at = hidden_version(html_of(client.get(f"/posts/{post.id}/edit")))
    db.session.execute(
        update(Post)
        .where(Post.id == post.id)
        .values(title="Admin's fix", body="Fixed body", version=Post.version + 1)
    )
    db.session.commit()

    response = client.post(
        f"/posts/{post.id}/edit",
        data={"title": "My rewrite", "body": "My body", "tags": "mine", "version": opened_at},
    )
    assert response.status_code == 409
    html = html_of(response)
    assert "This post changed since you opened it" in html
    assert "Admin&#39;s fix" in html
    assert "Fixed body" in html
    assert 'value="My rewrite"' in html
    assert hidden_version(html) == "2"
    saved = reload(post.id)
    assert saved is not None
    assert (saved.title, saved.version, tag_names(saved)) == ("Admin's fix", 2, [])
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 0  # "mine" rolled back


def test_delete_asks_first(client: FlaskClient, signed_in: User) -> None:
    post = PostFactory(author=signed_in, title="Short-lived", tags=[TagFactory(name="kept")])
    html = html_of(client.get(f"/posts/{post.id}/delete"))
    assert "Delete &ldquo;Short-lived&rdquo;?" in html
    assert reload(post.id) is not None
    response = client.post(f"/posts/{post.id}/delete", data={})
    assert response.status_code == 302
    assert response.headers["Location"] == "/posts/"
    assert reload(post.id) is None
    assert db.session.scalar(select(Tag.name)) == "kept"
    assert "Post “Short-lived” moved to your trash" in html_of(client.get("/posts/"))


# --- queries ----------------------------------------------------------------------------

# The signed-in user (when there is one), the count, the posts with their authors, their tags.
FEED_QUERY_BOUND = 4


@pytest.mark.parametrize(
    ("path", "signed"),
    [("/posts/", False), ("/posts/", True), ("/posts/?tag=common&q=post", False), ("/", True)],
)
def test_feed_query_count_does_not_grow(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    user: User,
    count_queries: Any,
    path: str,
    signed: bool,
) -> None:
    app.config["PER_PAGE"] = 50
    if signed:
        auth.login(user)
    common = TagFactory(name="common")
    client.get(path)  # reads the table's estimate, which the next seconds' pages reuse
    counts = []
    for rows in (5, 10):
        while post_count() < rows:
            PostFactory(author=UserFactory(), tags=[common, TagFactory()])
        with count_queries() as statements:
            response = client.get(path)
        assert response.status_code == 200
        assert html_of(response).count('class="card post-card"') == rows
        counts.append(len(statements))
    assert counts[0] == counts[1] <= FEED_QUERY_BOUND


def test_post_page_query_count(client: FlaskClient, count_queries: Any) -> None:
    post = PostFactory(tags=[TagFactory() for _ in range(5)])
    with count_queries() as statements:
        assert client.get(f"/posts/{post.id}").status_code == 200
    assert len(statements) == 1, "\n---\n".join(statements)  # the post, its author and tags
