"""Stored XSS: script payloads posted into every stored text field come back only escaped,
on every page that shows them (and the fields that refuse them escape their error)."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.factories import PASSWORD, ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions, CSRFClient
from webapp.extensions import db
from webapp.models import Item, Post, User
from webapp.repositories import ItemRepository, PostRepository

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SINGLE = "'><svg onload=alert(1)>"
TEXTAREA = "</textarea><script>alert(2)</script>"
JS_URL = "javascript:alert(3)"
TEMPLATE = "{{7*7}}"
PAYLOADS = (SCRIPT, IMG, SINGLE, TEXTAREA, JS_URL, TEMPLATE)

TITLE = f"{SCRIPT}{IMG}"  # within 100 characters
DESCRIPTION = f"{TEXTAREA} {SINGLE} {JS_URL} {TEMPLATE}"
POST_TITLE = f"{SCRIPT}{IMG}{SINGLE}"
BODY = f'{TEXTAREA}\n{SCRIPT}\n{IMG}\n[link]({JS_URL}) <a href="{JS_URL}">x</a> {TEMPLATE}'
ADMIN_TITLE = f"{IMG}{TEXTAREA}"
ADMIN_DESCRIPTION = f"{SCRIPT} {TEMPLATE}"
# What must never appear in a page as markup (the payloads' active parts).
RAW = (
    "<script>alert(",
    "<img src=x onerror",
    "<svg onload",
    "</textarea><script",
    'href="javascript:',
    "href='javascript:",
    '<a href="javascript',
)


def assert_escaped(response: TestResponse, *shown: str) -> str:
    """No payload is active in the page; each of ``shown`` is there, as text."""
    assert response.status_code in {200, 422}, response.status_code
    page = response.get_data(as_text=True)
    for raw in RAW:
        assert raw not in page, f"unescaped {raw!r} in {response.request.path}"
    # An attribute cannot be broken out of: the quote before ``><img`` is escaped.
    assert IMG not in page and SINGLE not in page
    text = html.unescape(re.sub(r"<[^>]*>", " ", page))
    for value in shown:
        for line in value.split("\n"):
            assert line in text or line.strip() in text, (
                f"{line!r} not shown on {response.request.path}"
            )
    return page


@pytest.fixture
def stored(app: Flask, client: CSRFClient, auth: AuthActions) -> dict[str, object]:
    """alice writes an item and a post through the forms; an admin edits others of hers."""
    alice = UserFactory(username="alice", email="alice@example.com")
    root = UserFactory(username="root", email="root@example.com", is_admin=True)
    edited_item = ItemFactory(owner=alice, title="Plain", description="Plain")
    edited_post = PostFactory(author=alice, title="Plain", body="Plain")
    db.session.commit()

    auth.login(alice)
    created = client.post(
        "/items/new", data={"title": TITLE, "description": DESCRIPTION}, follow_redirects=True
    )
    assert_escaped(created, TITLE)  # the flash names the item
    published = client.post(
        "/posts/new",
        data={"title": POST_TITLE, "body": BODY, "tags": "xss-test"},
        follow_redirects=True,
    )
    assert_escaped(published, POST_TITLE)

    auth.login(root)
    saved = client.post(
        f"/admin/items/{edited_item.id}",
        data={
            "title": ADMIN_TITLE,
            "description": ADMIN_DESCRIPTION,
            "version": str(edited_item.version),
        },
        follow_redirects=True,
    )
    assert_escaped(saved, ADMIN_TITLE)
    saved = client.post(
        f"/admin/posts/{edited_post.id}",
        data={
            "title": ADMIN_TITLE,
            "body": BODY,
            "tags": "xss-test",
            "version": str(edited_post.version),
        },
        follow_redirects=True,
    )
    assert_escaped(saved, ADMIN_TITLE)

    items = ItemRepository(db.session)
    posts = PostRepository(db.session)
    item = next(i for i in items.list().items if i.title == TITLE)
    post = next(p for p in posts.list().items if p.title == POST_TITLE)
    assert isinstance(item, Item) and isinstance(post, Post)
    assert (item.description, post.body) == (DESCRIPTION, BODY)  # stored as typed
    return {
        "alice": alice,
        "root": root,
        "item": item,
        "post": post,
        "edited_item": edited_item,
        "edited_post": edited_post,
    }


def test_alices_pages_show_her_payloads_escaped(
    client: CSRFClient, auth: AuthActions, stored: dict[str, object]
) -> None:
    alice, item, post = stored["alice"], stored["item"], stored["post"]
    edited_item = stored["edited_item"]
    assert isinstance(alice, User) and isinstance(item, Item) and isinstance(post, Post)
    assert isinstance(edited_item, Item)
    auth.login(alice)
    pages = {
        "/items/": (TITLE, ADMIN_TITLE),
        f"/items/{item.id}": (TITLE, DESCRIPTION),
        f"/items/{item.id}/edit": (),  # values in the form's inputs and textarea
        f"/items/{item.id}/delete": (TITLE,),
        f"/items/{edited_item.id}": (ADMIN_TITLE, ADMIN_DESCRIPTION),
        "/": (POST_TITLE,),
        "/posts/": (POST_TITLE, ADMIN_TITLE),
        f"/posts/{post.id}": (POST_TITLE, BODY),
        f"/posts/{post.id}/edit": (),
        f"/posts/{post.id}/delete": (POST_TITLE,),
        "/posts/?q=script": (POST_TITLE,),
        "/tags/xss-test": (POST_TITLE,),
        "/tags/": (),
        "/users/alice": (POST_TITLE,),
        "/account/": (),
    }
    for path, shown in pages.items():
        page = assert_escaped(client.get(path), *shown)
        if path.endswith("/edit"):
            assert "&lt;/textarea&gt;" in page  # the body's breakout stayed inside the textarea


def test_admin_pages_show_the_payloads_escaped(
    client: CSRFClient, auth: AuthActions, stored: dict[str, object]
) -> None:
    root, item, post = stored["root"], stored["item"], stored["post"]
    edited_item, edited_post = stored["edited_item"], stored["edited_post"]
    assert isinstance(root, User) and isinstance(item, Item) and isinstance(post, Post)
    assert isinstance(edited_item, Item) and isinstance(edited_post, Post)
    auth.login(root)
    pages = {
        "/admin/": (),
        "/admin/items": (TITLE, ADMIN_TITLE),
        "/admin/items?q=script": (TITLE,),
        "/admin/posts": (POST_TITLE, ADMIN_TITLE),
        "/admin/users": (),
        "/admin/tags": (),
        "/admin/audit": (),  # the edits' before and after values
        f"/admin/items/{item.id}": (),
        f"/admin/items/{edited_item.id}": (),
        f"/admin/items/{item.id}/delete": (TITLE,),
        f"/admin/posts/{post.id}": (),
        f"/admin/posts/{edited_post.id}/delete": (ADMIN_TITLE,),
        f"/admin/users/{root.id}": (),
    }
    for path, shown in pages.items():
        assert_escaped(client.get(path), *shown)
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "&lt;script&gt;" in audit or "&lt;img" in audit  # the values are there, as text


def test_exports_are_not_html(
    client: CSRFClient, auth: AuthActions, stored: dict[str, object]
) -> None:
    alice, root = stored["alice"], stored["root"]
    assert isinstance(alice, User) and isinstance(root, User)
    auth.login(alice)
    for path in ("/account/export", "/account/export/items.csv"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype in {"application/json", "text/csv"}
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "attachment" in response.headers["Content-Disposition"]
    auth.login(root)
    for path in ("/admin/items/export", "/admin/posts/export", "/admin/audit/export"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        response.close()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_refused_values_are_escaped_in_their_errors(
    client: CSRFClient, auth: AuthActions, app: Flask, payload: str
) -> None:
    """Fields whose rules refuse markup (tags, usernames, tag names) echo it only escaped."""
    alice = UserFactory(username="alice", email="alice@example.com")
    root = UserFactory(username="root", email="root@example.com", is_admin=True)
    post = PostFactory(author=alice, title="Tagged", tags=[])
    tag = TagFactory(name="plain")
    db.session.commit()

    auth.login(alice)
    response = client.post("/posts/new", data={"title": "Fine", "tags": f"ok, {payload}"})
    assert_escaped(response)
    assert response.status_code == 422
    auth.login(root)
    for path, data in (
        ("/admin/users/new", {"email": "x@example.com", "username": payload, "password": "p"}),
        (f"/admin/users/{alice.id}", {"email": "alice@example.com", "username": payload}),
        (f"/admin/posts/{post.id}", {"title": "T", "tags": payload, "version": "1"}),
        (f"/admin/tags/{tag.id}", {"name": payload}),
        (f"/admin/tags/{tag.id}/merge", {"target": payload}),
    ):
        response = client.post(path, data=data)
        assert response.status_code in {409, 422}, path
        assert_escaped(response)
    auth.logout()
    response = client.post(
        "/auth/register",
        data={
            "email": "n@example.com",
            "username": payload,
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 422
    assert_escaped(response)
