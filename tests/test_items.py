"""My items: ownership on every route and method, forms, conflicts, pages and query counts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tests.factories import ItemFactory, UserFactory
from tests.helpers import AuthActions
from webapp.extensions import db
from webapp.models import Item, User
from webapp.repositories import ItemRepository

PER_PAGE = 5


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PER_PAGE": PER_PAGE}


@pytest.fixture
def signed_in(auth: AuthActions, user: User) -> User:
    return auth.login(user)


def reload(item_id: int) -> Item | None:
    """The row as the app sees it now (None: deleted, or in the trash)."""
    db.session.expire_all()
    return db.session.scalar(select(Item).where(Item.id == item_id))


def item_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Item)) or 0


def html_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def hidden_version(html: str) -> str:
    match = re.search(r'id="version" name="version" type="hidden" value="(\d+)"', html)
    assert match, "no version field in the form"
    return match.group(1)


# Every route that touches one item, with what a POST to it would send.
ITEM_ROUTES = [
    ("GET", "/items/{id}", None),
    ("GET", "/items/{id}/edit", None),
    ("POST", "/items/{id}/edit", {"title": "Hijacked", "description": "", "version": "1"}),
    ("GET", "/items/{id}/delete", None),
    ("POST", "/items/{id}/delete", {}),
]


# --- who may see and change an item -----------------------------------------------------


@pytest.mark.parametrize(("method", "path", "data"), ITEM_ROUTES)
def test_another_users_item_is_a_404_and_stays_unchanged(
    client: FlaskClient, signed_in: User, method: str, path: str, data: dict[str, str] | None
) -> None:
    theirs = ItemFactory(owner=UserFactory(username="bob"), title="Bob's bike")
    response = client.open(path.format(id=theirs.id), method=method, data=data)
    assert response.status_code == 404
    assert "Page not found" in html_of(response)
    assert "Bob&#39;s bike" not in html_of(response)
    kept = reload(theirs.id)
    assert kept is not None
    assert (kept.title, kept.version) == ("Bob's bike", 1)


@pytest.mark.parametrize(("method", "path", "data"), ITEM_ROUTES)
def test_owner_reaches_every_item_route(
    client: FlaskClient, signed_in: User, method: str, path: str, data: dict[str, str] | None
) -> None:
    mine = ItemFactory(owner=signed_in, title="My lamp")
    response = client.open(path.format(id=mine.id), method=method, data=data)
    if method == "GET":
        assert response.status_code == 200
        assert "My lamp" in html_of(response)
    elif path.endswith("/edit"):
        assert response.status_code == 302
        assert reload(mine.id).title == "Hijacked"  # type: ignore[union-attr]
    else:
        assert response.status_code == 302
        assert reload(mine.id) is None


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("GET", "/items/", None),
        ("GET", "/items/new", None),
        ("POST", "/items/new", {"title": "Sneaky"}),
        *ITEM_ROUTES,
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(
    client: FlaskClient, user: User, method: str, path: str, data: dict[str, str] | None
) -> None:
    item = ItemFactory(owner=user, title="Alice's lamp")
    response = client.open(path.format(id=item.id), method=method, data=data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    kept = reload(item.id)
    assert kept is not None
    assert (kept.title, kept.version) == ("Alice's lamp", 1)
    assert item_count() == 1


def test_unknown_and_oversized_ids_are_404(client: FlaskClient, signed_in: User) -> None:
    for path in ("/items/999999", "/items/99999999999999999999", "/items/abc/edit"):
        assert client.get(path).status_code == 404
    assert client.post("/items/999999/delete", data={}).status_code == 404


def test_my_items_list_shows_only_mine_newest_first(client: FlaskClient, signed_in: User) -> None:
    ItemFactory(owner=signed_in, title="Older thing")
    ItemFactory(owner=signed_in, title="Newer thing")
    ItemFactory(owner=UserFactory(), title="Someone else's thing")
    html = html_of(client.get("/items/"))
    assert html.index("Newer thing") < html.index("Older thing")
    assert "Someone else" not in html


def test_each_owner_pages_through_their_own_items_only(app: Flask, user: User) -> None:
    """The list's statement is built once and shared; the owner is a bound value in it, so
    two owners' pages (first and deeper, with the count) never mix."""
    other = UserFactory(username="bob", email="bob@example.com")
    for n in range(PER_PAGE + 2):
        ItemFactory(owner=user, title=f"Alice {n:02d}")
        ItemFactory(owner=other, title=f"Bob {n:02d}")
    for owner, mine, theirs in (
        (user, "Alice", "Bob"),
        (other, "Bob", "Alice"),
        (user, "Alice", "Bob"),
    ):
        client = app.test_client()
        AuthActions(client).login(owner)
        first = html_of(client.get("/items/"))
        second = html_of(client.get("/items/?page=2"))
        assert re.findall(rf">({mine} \d\d)<", first) == [
            f"{mine} {n:02d}" for n in range(PER_PAGE + 1, 1, -1)
        ]
        assert re.findall(rf">({mine} \d\d)<", second) == [f"{mine} 01", f"{mine} 00"]
        assert theirs not in first and theirs not in second
        assert "page=2" in first and "page=3" not in first  # counted: two pages, no more


def test_search_covers_title_and_description_of_my_items_only(
    client: FlaskClient, signed_in: User
) -> None:
    ItemFactory(owner=signed_in, title="Brass lamp", description="desk")
    ItemFactory(owner=signed_in, title="Chair", description="Oak with a BRASS plate")
    ItemFactory(owner=signed_in, title="Kettle", description="steel")
    ItemFactory(owner=UserFactory(), title="Brass bed")
    html = html_of(client.get("/items/?q=brass"))
    assert "Brass lamp" in html
    assert "Chair" in html
    assert "Kettle" not in html
    assert "Brass bed" not in html
    assert 'value="brass"' in html  # the search box keeps what was searched
    nothing = html_of(client.get("/items/?q=100%25"))
    assert "No items match &ldquo;100%&rdquo;" in nothing


def test_empty_list_invites_to_create_one(client: FlaskClient, signed_in: User) -> None:
    html = html_of(client.get("/items/"))
    assert "No items yet" in html
    assert 'href="/items/new"' in html


@pytest.mark.parametrize(
    ("page_arg", "shown_page", "newest_shown"),
    [
        ("0", 1, True),
        ("-1", 1, True),
        ("abc", 1, True),
        ("", 1, True),
        ("1.5", 1, True),
        ("3", 3, False),
        ("999999999", 3, False),  # past the end: the last page
        ("99999999999999999999999", 1, True),  # absurd: the first page
    ],
)
def test_page_numbers_out_of_range_give_a_sensible_page(
    client: FlaskClient, signed_in: User, page_arg: str, shown_page: int, newest_shown: bool
) -> None:
    for n in range(2 * PER_PAGE + 1):
        ItemFactory(owner=signed_in, title=f"Thing {n:02d}")
    response = client.get(f"/items/?page={page_arg}")
    assert response.status_code == 200
    html = html_of(response)
    assert f'<span class="current" aria-current="page">{shown_page}</span>' in html
    assert ("Thing 10" in html) is newest_shown
    assert ("Thing 00" in html) is not newest_shown


def test_pagination_links_keep_the_search(client: FlaskClient, signed_in: User) -> None:
    for n in range(PER_PAGE + 1):
        ItemFactory(owner=signed_in, title=f"Lamp {n}")
    html = html_of(client.get("/items/?q=lamp"))
    assert 'href="/items/?page=2&amp;q=lamp"' in html


# --- creating, editing, deleting -------------------------------------------------------


def test_create_an_item(client: FlaskClient, signed_in: User) -> None:
    form = client.get("/items/new")
    assert 'name="title"' in html_of(form)
    response = client.post(
        "/items/new", data={"title": "  Desk lamp ", "description": "Brass.\r\nSecond line."}
    )
    item = db.session.scalars(select(Item)).one()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/items/{item.id}"
    assert (item.title, item.description, item.owner_id) == (
        "Desk lamp",
        "Brass.\nSecond line.",
        signed_in.id,
    )
    page = html_of(client.get(response.headers["Location"]))
    assert "Item “Desk lamp” created." in page
    assert '<div class="body-text">Brass.\nSecond line.</div>' in page


def test_an_empty_description_is_stored_as_none(client: FlaskClient, signed_in: User) -> None:
    client.post("/items/new", data={"title": "Bare", "description": "   "})
    assert db.session.scalars(select(Item)).one().description is None


@pytest.mark.parametrize(
    ("title", "description", "field", "message"),
    [
        ("", "", "title", "Give the item a title."),
        ("   ", "", "title", "Give the item a title."),
        ("x" * 101, "", "title", "longer than 100 characters"),
        ("Lamp\x00", "", "title", "Remove the control characters"),
        ("Lamp\nTwo", "", "title", "Remove the control characters"),
        ("Lamp", "d" * 501, "description", "longer than 500 characters"),
        ("Lamp", "nul\x00here", "description", "Remove the control characters"),
        ("Lamp", "bell\x07", "description", "Remove the control characters"),
    ],
)
def test_bad_input_is_refused_beside_the_field_and_kept(
    client: FlaskClient, signed_in: User, title: str, description: str, field: str, message: str
) -> None:
    response = client.post("/items/new", data={"title": title, "description": description})
    assert response.status_code == 422
    html = html_of(response)
    assert f'<p class="field-error" id="{field}-error">' in html
    assert message in html
    assert 'aria-invalid="true"' in html
    assert item_count() == 0


def test_values_are_kept_when_the_form_is_refused(client: FlaskClient, signed_in: User) -> None:
    html = html_of(client.post("/items/new", data={"title": "", "description": "Keep <me>"}))
    assert "Keep &lt;me&gt;</textarea>" in html


def test_a_long_description_with_windows_line_breaks_fits(
    client: FlaskClient, signed_in: User
) -> None:
    description = "\r\n".join(["x" * 49] * 10)  # 490 characters + 9 line breaks as users see it
    response = client.post("/items/new", data={"title": "Lines", "description": description})
    assert response.status_code == 302
    assert len(db.session.scalars(select(Item)).one().description or "") == 499


def test_a_post_without_a_csrf_token_changes_nothing(client: FlaskClient, signed_in: User) -> None:
    response = client.post("/items/new", data={"title": "Forged"}, csrf=False)
    assert response.status_code == 400
    assert item_count() == 0


def test_edit_an_item(client: FlaskClient, signed_in: User) -> None:
    item = ItemFactory(owner=signed_in, title="Lamp", description="Old")
    form = html_of(client.get(f"/items/{item.id}/edit"))
    assert 'value="Lamp"' in form
    version = hidden_version(form)
    response = client.post(
        f"/items/{item.id}/edit",
        data={"title": "Brass lamp", "description": "", "version": version},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/items/{item.id}"
    saved = reload(item.id)
    assert saved is not None
    assert (saved.title, saved.description, saved.version) == ("Brass lamp", None, 2)
    assert "Item “Brass lamp” saved." in html_of(client.get(f"/items/{item.id}"))


def test_refused_edit_keeps_the_values_and_the_row(client: FlaskClient, signed_in: User) -> None:
    item = ItemFactory(owner=signed_in, title="Lamp")
    response = client.post(
        f"/items/{item.id}/edit", data={"title": "x" * 101, "description": "new", "version": "1"}
    )
    assert response.status_code == 422
    html = html_of(response)
    assert "x" * 101 in html
    assert "new</textarea>" in html
    assert reload(item.id).title == "Lamp"  # type: ignore[union-attr]


@pytest.mark.parametrize("version", [None, "", "abc", "0"])
def test_edit_without_a_valid_version_is_refused(
    client: FlaskClient, signed_in: User, version: str | None
) -> None:
    item = ItemFactory(owner=signed_in, title="Lamp")
    data = {"title": "Changed", "description": ""}
    if version is not None:
        data["version"] = version
    response = client.post(f"/items/{item.id}/edit", data=data)
    assert response.status_code == 422
    assert "out of date: reload the page" in html_of(response)
    assert reload(item.id).title == "Lamp"  # type: ignore[union-attr]


def test_edit_conflict_shows_both_versions_and_overwrites_nothing(
    client: FlaskClient, signed_in: User
) -> None:
    item = ItemFactory(owner=signed_in, title="Lamp", description="Mine from before")
    opened_at = hidden_version(html_of(client.get(f"/items/{item.id}/edit")))
    # Someone else (another tab, another device) saves first.
    db.session.execute(
        update(Item)
        .where(Item.id == item.id)
        .values(title="Their lamp", description="Theirs", version=Item.version + 1)
    )
    db.session.commit()

    response = client.post(
        f"/items/{item.id}/edit",
        data={"title": "My lamp", "description": "Mine", "version": opened_at},
    )
    assert response.status_code == 409
    html = html_of(response)
    assert "This item changed since you opened it" in html
    assert "Your version" in html
    assert "Saved version" in html
    assert "Their lamp" in html
    assert "Theirs" in html
    assert 'value="My lamp"' in html  # the form still holds what I typed
    saved = reload(item.id)
    assert saved is not None
    assert (saved.title, saved.version) == ("Their lamp", 2)

    # Saving again from the conflict page is a deliberate overwrite of the version seen.
    assert hidden_version(html) == "2"
    again = client.post(
        f"/items/{item.id}/edit",
        data={"title": "My lamp", "description": "Mine", "version": "2"},
    )
    assert again.status_code == 302
    final = reload(item.id)
    assert final is not None
    assert (final.title, final.version) == ("My lamp", 3)


def test_a_save_that_lands_during_the_request_is_a_conflict_too(
    client: FlaskClient, signed_in: User
) -> None:
    """The versioned UPDATE itself refuses when the row changed after this request read it."""
    item = ItemFactory(owner=signed_in, title="Lamp")
    db.session.commit()  # the request rolls back: keep the rows it started from

    def someone_else_saves(session: Session, *_args: Any) -> None:
        session.connection().execute(
            update(Item.__table__)
            .where(Item.id == item.id)
            .values(title="Sneaked in", version=Item.version + 1)
        )

    # The request's own session (each request has its own): the first flush after this.
    event.listen(Session, "before_flush", someone_else_saves, once=True)

    response = client.post(
        f"/items/{item.id}/edit", data={"title": "Mine", "description": "", "version": "1"}
    )
    assert response.status_code == 409
    assert "This item changed since you opened it" in html_of(response)
    # The whole request was rolled back, the other save included (it ran inside it here).
    assert reload(item.id).title == "Lamp"  # type: ignore[union-attr]


def test_an_item_deleted_while_its_form_was_open_goes_back_to_the_list(
    client: FlaskClient, signed_in: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = ItemFactory(owner=signed_in, title="Lamp")
    item_id = item.id
    db.session.commit()

    def deleted_meanwhile(repository: Any, obj: Any, version: int) -> None:
        repository.session.execute(delete(Item).where(Item.id == obj.id))
        repository.session.commit()  # another request (another tab) deleted it first
        raise StaleDataError("deleted")

    monkeypatch.setattr(ItemRepository, "check_version", deleted_meanwhile)
    response = client.post(
        f"/items/{item_id}/edit", data={"title": "Mine", "description": "", "version": "1"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/items/"
    assert "That item was deleted while you were editing it." in html_of(client.get("/items/"))
    assert reload(item_id) is None


def test_delete_asks_first_then_deletes_on_post(client: FlaskClient, signed_in: User) -> None:
    item = ItemFactory(owner=signed_in, title="Old kettle")
    confirm = client.get(f"/items/{item.id}/delete")
    assert confirm.status_code == 200
    html = html_of(confirm)
    assert "Delete &ldquo;Old kettle&rdquo;?" in html
    assert f'action="/items/{item.id}/delete"' in html
    assert 'method="post"' in html
    assert reload(item.id) is not None

    response = client.post(f"/items/{item.id}/delete", data={})
    assert response.status_code == 302
    assert response.headers["Location"] == "/items/"
    assert reload(item.id) is None
    assert "Item “Old kettle” moved to your trash" in html_of(client.get("/items/"))


def test_item_text_is_escaped(client: FlaskClient, signed_in: User) -> None:
    item = ItemFactory(owner=signed_in, title="<script>x()</script>", description="<b>bold</b>")
    for path in (f"/items/{item.id}", "/items/", f"/items/{item.id}/edit"):
        html = html_of(client.get(path))
        assert "<script>x()" not in html
        assert "&lt;script&gt;x()&lt;/script&gt;" in html


def test_item_page_shows_readable_dates(client: FlaskClient, signed_in: User) -> None:
    item = ItemFactory(owner=signed_in)
    html = html_of(client.get(f"/items/{item.id}"))
    assert re.search(r"\d{2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", html)


# --- queries ----------------------------------------------------------------------------

ITEMS_LIST_QUERY_BOUND = 3  # the signed-in user, the count, the page of items


def test_items_list_query_count_does_not_grow(
    app: Flask, client: FlaskClient, signed_in: User, count_queries: Any
) -> None:
    app.config["PER_PAGE"] = 50  # every row on one page: N rows shown, then 2N
    counts = []
    for rows in (10, 20):
        while item_count() < rows:
            ItemFactory(owner=signed_in)
        with count_queries() as statements:
            response = client.get("/items/")
        assert response.status_code == 200
        assert html_of(response).count('class="card item-card"') == rows
        counts.append(len(statements))
    assert counts[0] == counts[1] <= ITEMS_LIST_QUERY_BOUND
