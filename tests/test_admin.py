"""The admin console's pages: guard, dashboard, users, items, posts, tags, audit."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm.exc import StaleDataError

from tests.factories import (
    PASSWORD,
    ItemFactory,
    OutboxMessageFactory,
    PostFactory,
    TagFactory,
    UserFactory,
)
from tests.helpers import AuthActions, redirect_target, session_count
from webapp.admin import services
from webapp.auth.forms import TAKEN
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, Tag, User, post_tags, utcnow
from webapp.repositories import AuditRepository, UserRepository
from webapp.repositories.versioned import VersionedRepository

NEW_PASSWORD = "a-brand-new-secret-42"


@pytest.fixture
def admin(client: FlaskClient, auth: AuthActions, admin_user: User) -> User:
    """``client`` signed in as the admin ``root`` (committed: a view's rollback keeps it)."""
    db.session.commit()
    return auth.login(admin_user)


def fresh(model: type, row_id: int) -> object | None:
    """The row as the app sees it now (None: deleted, or in the trash)."""
    db.session.expire_all()
    return db.session.scalar(select(model).where(model.id == row_id))


def events(action: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(db.session.scalars(stmt))


def text_of(response: object) -> str:
    return unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


# --- Guard ------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_with_next(client: FlaskClient) -> None:
    response = client.get("/admin/users?q=bob")
    assert redirect_target(response) == "/auth/login?next=%2Fadmin%2Fusers%3Fq%3Dbob"
    assert "Please sign in" in text_of(client.get(response.headers["Location"]))


def test_signed_in_non_admins_get_403(client: FlaskClient, auth: AuthActions, user: User) -> None:
    auth.login(user)
    response = client.get("/admin/")
    assert response.status_code == 403
    assert "You do not have permission" in text_of(response)
    assert 'href="/admin/"' not in text_of(client.get("/"))  # no Admin link either


def test_admins_get_through_and_see_the_admin_link(client: FlaskClient, admin: User) -> None:
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "<h1>Dashboard</h1>" in text_of(response)
    assert 'href="/admin/"' in text_of(client.get("/"))


@pytest.mark.parametrize("repeat", [1, 2])  # the second time the tabs come from the cache
def test_each_admin_page_marks_its_own_tab(client: FlaskClient, admin: User, repeat: int) -> None:
    tabs = {
        "/admin/": "Dashboard",
        "/admin/users": "Users",
        "/admin/items": "Items",
        "/admin/posts": "Posts",
        "/admin/tags": "Tags",
        "/admin/audit": "Audit log",
        "/admin/mail": "Mail",
        f"/admin/users/{admin.id}": "Users",  # a record marks its table
    }
    for _ in range(repeat):
        for path, tab in tabs.items():
            html = client.get(path).get_data(as_text=True)
            nav = html.split('<nav class="admin-nav"', 1)[1].split("</nav>", 1)[0]
            assert nav.count("<li>") == 8
            marked = re.findall(r'aria-current="page">([^<]+)</a>', nav)
            assert marked == ([tab] if tab else []), path


def test_a_demoted_admin_is_refused_on_the_next_request(client: FlaskClient, admin: User) -> None:
    assert client.get("/admin/users").status_code == 200
    db.session.execute(update(User).where(User.id == admin.id).values(is_admin=False))
    assert client.get("/admin/users").status_code == 403


# --- Dashboard --------------------------------------------------------------------------------


def test_dashboard_counts_newest_accounts_events_and_chart(
    client: FlaskClient, admin: User
) -> None:
    now = utcnow()
    ann = UserFactory(username="ann", created_at=now - timedelta(days=2))
    UserFactory(username="sleepy", is_active=False, created_at=now - timedelta(days=40))
    for _ in range(3):
        ItemFactory(owner=ann, created_at=now - timedelta(days=2))
    PostFactory(author=ann, tags=[TagFactory(name="one")], created_at=now - timedelta(days=1))
    AuditRepository(db.session).record("admin.test.event", actor=admin)
    OutboxMessageFactory()
    OutboxMessageFactory(status="failed", attempts=8)
    OutboxMessageFactory(status="failed", attempts=8)
    OutboxMessageFactory(status="sent", attempts=1)

    html = text_of(client.get("/admin/"))
    stats = {
        label: value
        for value, label in re.findall(
            r'stat-value">([\d,]+)</span> <span class="stat-label">([^<]+)', html
        )
    }
    assert stats == {
        "Active users": "2",
        "Inactive users": "1",
        "Admins": "1",
        "Items": "3",
        "Posts": "1",
        "Tags": "1",
        "Mail pending": "1",
        "Mail failed": "2",
    }
    assert "ann" in html and "admin.test.event" in html
    # The chart: server-drawn, no script, three series told apart by dashes and markers.
    assert "<script" not in html
    svg = html[
        html.index('<svg class="chart"') : html.index("</svg>", html.index('<svg class="chart"'))
    ]
    assert 'role="img"' in svg
    assert svg.count("<polyline") == 3
    assert {"<circle", "<rect", "<polygon"} <= set(re.findall(r"<circle|<rect|<polygon", svg))
    assert 'stroke-dasharray="8 5"' in svg and 'stroke-dasharray="2 4"' in svg
    # The numbers, as a table: two days ago, one sign-up (ann) and three items.
    day = (now - timedelta(days=2)).strftime("%d %b %Y")
    row = re.search(rf"<th scope=\"row\">{day}</th>((?:<td>\d+</td>){{3}})", html)
    assert row is not None
    assert re.findall(r"<td>(\d+)</td>", row.group(1)) == ["1", "3", "0"]


def test_dashboard_runs_a_fixed_number_of_queries(
    client: FlaskClient, admin: User, count_queries
) -> None:
    for _ in range(5):
        PostFactory(tags=[TagFactory()])
    with count_queries() as statements:
        assert client.get("/admin/").status_code == 200
    # On PostgreSQL the first also reads the tables' estimates, which the next seconds reuse.
    assert len(statements) <= 5 + (db.session.get_bind().dialect.name == "postgresql")
    with count_queries() as statements:
        assert client.get("/admin/").status_code == 200
    assert len(statements) <= 5, statements


# --- Users ------------------------------------------------------------------------------------


def test_the_user_list_shows_and_filters_who_confirmed_their_email(
    client: FlaskClient, admin: User
) -> None:
    confirmed_at = utcnow() - timedelta(days=3)
    UserFactory(username="sure", email_confirmed_at=confirmed_at)
    UserFactory(username="pending", email_confirmed_at=None)
    html = client.get("/admin/users").get_data(as_text=True)
    assert '<th scope="col">Confirmed</th>' in html
    row = re.search(r'<tr>(?:(?!</tr>).)*class="strong">sure<(?:(?!</tr>).)*</tr>', html, re.S)
    assert row is not None
    assert 'data-label="Confirmed"><span class="badge yes">Yes</span>' in row.group(0)
    pending = client.get("/admin/users?confirmed=no").get_data(as_text=True)
    names = re.findall(r'class="strong">([^<]+)<', pending)
    assert "pending" in names and "sure" not in names
    assert 'data-label="Confirmed"><span class="badge no">No</span>' in pending
    sure = re.findall(r'class="strong">([^<]+)<', client.get("/admin/users?confirmed=yes").text)
    assert "sure" in sure and "pending" not in sure
    assert '<option value="no" selected>No</option>' in pending


def test_create_a_user(client: FlaskClient, admin: User) -> None:
    page = text_of(client.get("/admin/users/new"))
    assert re.search(
        r'<input checked id="is_active" name="is_active" type="checkbox" value="y">', page
    )
    assert "disabled" not in page
    response = client.post(
        "/admin/users/new",
        data={
            "email": "New.Person@Example.com",
            "username": "newperson",
            "password": NEW_PASSWORD,
            "is_active": "y",
        },
    )
    created = db.session.scalar(select(User).where(User.username == "newperson"))
    assert created is not None
    assert redirect_target(response) == f"/admin/users/{created.id}"
    assert created.email == "new.person@example.com"
    assert created.is_active and not created.is_admin
    assert created.check_password(NEW_PASSWORD)
    (event,) = events("admin.user.create")
    assert event.actor_id == admin.id and event.target_id == created.id
    assert event.after == {
        "email": "new.person@example.com",
        "username": "newperson",
        "is_active": True,
        "is_admin": False,
    }
    assert event.ip_address == "127.0.0.1"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "alice@example.com"}, "email", TAKEN["email"]),
        ({"username": "ALICE"}, "username", TAKEN["username"]),
        ({"email": "not-an-email"}, "email", "Enter a valid email address"),
        ({"username": "no spaces"}, "username", "Use 3 to 50 characters"),
        ({"username": "x" * 51}, "username", "Field cannot be longer than 50"),
        ({"username": "nul\x00name"}, "username", "Remove the control characters"),
        ({"password": "short"}, "password", "Use at least 10 characters"),
        ({"password": "newperson1"}, "password", "must differ from your email and username"),
    ],
)
def test_create_refuses_bad_input_beside_the_field(
    client: FlaskClient, admin: User, user: User, data: dict, field: str, message: str
) -> None:
    form = {"email": "fine@example.com", "username": "newperson1", "password": NEW_PASSWORD}
    form.update(data)
    response = client.post("/admin/users/new", data=form)
    assert response.status_code == 422
    html = text_of(response)
    error = re.search(rf'id="{field}-error">([^<]+)<', html)
    assert error is not None and message in error.group(1)
    assert NEW_PASSWORD not in html  # the password is never sent back
    if field != "email":
        assert 'value="fine@example.com"' in html  # other values are kept
    assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_edit_a_user_records_before_and_after(client: FlaskClient, admin: User, user: User) -> None:
    response = client.post(
        f"/admin/users/{user.id}",
        data={
            "email": "alice@new.example",
            "username": "Alice2",
            "is_active": "y",
            "is_admin": "y",
        },
    )
    assert redirect_target(response) == f"/admin/users/{user.id}"
    edited = fresh(User, user.id)
    assert isinstance(edited, User)
    assert (edited.email, edited.username, edited.is_active, edited.is_admin) == (
        "alice@new.example",
        "Alice2",
        True,
        True,
    )
    (event,) = events("admin.user.update")
    assert event.before == {"email": "alice@example.com", "username": "alice", "is_admin": False}
    assert event.after == {"email": "alice@new.example", "username": "Alice2", "is_admin": True}
    assert "Saved Alice2." in text_of(client.get(response.headers["Location"]))


def test_deactivating_a_user_ends_their_open_session(
    app: Flask, client: FlaskClient, admin: User, user: User
) -> None:
    theirs = app.test_client()
    AuthActions(theirs).login(user)
    assert "Sign out" in text_of(theirs.get("/"))
    assert session_count(user.id) == 1

    client.post(
        f"/admin/users/{user.id}",
        data={"email": user.email, "username": user.username},  # boxes unticked
    )
    deactivated = fresh(User, user.id)
    assert isinstance(deactivated, User)
    assert deactivated.is_active is False
    assert session_count(user.id) == 0
    assert "Sign out" not in text_of(theirs.get("/"))
    (event,) = events("admin.user.update")
    assert event.before == {"is_active": True} and event.after == {"is_active": False}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"is_admin": "y"}, "You cannot deactivate your own account."),
        ({"is_active": "y"}, "You cannot remove your own admin rights."),
    ],
)
def test_an_admin_cannot_deactivate_or_demote_themselves(
    client: FlaskClient, admin: User, data: dict, message: str
) -> None:
    page = text_of(client.get(f"/admin/users/{admin.id}"))
    assert page.count("disabled") == 2  # both boxes, with a note that says why
    assert "You cannot deactivate or demote yourself." in page
    response = client.post(
        f"/admin/users/{admin.id}",
        data={"email": admin.email, "username": admin.username, **data},
    )
    assert response.status_code == 422
    assert message in text_of(response)
    me = fresh(User, admin.id)
    assert isinstance(me, User)
    assert me.is_active and me.is_admin
    assert events("admin.user.update") == []


def test_an_admin_cannot_delete_themselves(client: FlaskClient, admin: User) -> None:
    page = text_of(client.get(f"/admin/users/{admin.id}/delete"))
    assert "You cannot delete your own account here." in page
    assert 'class="danger">Delete</button>' not in page
    response = client.post(f"/admin/users/{admin.id}/delete", data={})
    assert redirect_target(response) == f"/admin/users/{admin.id}"
    flashed = text_of(client.get(f"/admin/users/{admin.id}"))
    assert '<p class="flash flash-error">You cannot delete your own account here.</p>' in flashed
    assert fresh(User, admin.id) is not None
    assert events("admin.user.delete") == []


def test_the_last_active_admin_cannot_be_removed_even_in_a_race(app: Flask) -> None:
    """Two admins removing each other: whoever comes second is no longer an admin."""
    first = UserFactory(username="first", is_admin=True)
    second = UserFactory(username="second", is_admin=True)
    with app.test_request_context(method="POST"):  # a service runs in a POST
        services.check_user_change(first, second, is_active=False, is_admin=True)
        db.session.execute(update(User).where(User.id == second.id).values(is_active=False))
        # ``second`` still believes it is an admin (it was loaded before), and tries back:
        with pytest.raises(services.RuleError, match="no longer an active admin"):
            services.check_user_change(second, first, is_active=True, is_admin=False)
        with pytest.raises(services.RuleError, match="no longer an active admin"):
            services.delete_user(second, first)
    assert db.session.scalar(select(User.is_admin).where(User.id == first.id)) is True


def test_set_a_new_password(app: Flask, client: FlaskClient, admin: User, user: User) -> None:
    AuthActions(app.test_client()).login(user)
    response = client.post(
        f"/admin/users/{user.id}/password",
        data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert redirect_target(response) == f"/admin/users/{user.id}"
    changed = fresh(User, user.id)
    assert isinstance(changed, User)
    assert changed.check_password(NEW_PASSWORD)
    assert session_count(user.id) == 0
    (event,) = events("admin.user.password_set")
    assert event.target_id == user.id and event.after == {"sessions_ended": True}


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        (NEW_PASSWORD, "something-else-123", "The two passwords differ."),
        ("short", "short", "Use at least 10 characters."),
    ],
)
def test_set_password_errors_stay_beside_the_field(
    client: FlaskClient, admin: User, user: User, password: str, confirm: str, message: str
) -> None:
    response = client.post(
        f"/admin/users/{user.id}/password", data={"password": password, "confirm": confirm}
    )
    assert response.status_code == 422
    assert message in text_of(response)
    assert password not in text_of(response)
    assert fresh(User, user.id).check_password(PASSWORD)  # type: ignore[union-attr]


def test_deleting_a_user_says_what_goes_with_them(
    client: FlaskClient, admin: User, user: User
) -> None:
    ItemFactory.create_batch(3, owner=user)
    PostFactory.create_batch(2, author=user, tags=[TagFactory(name="kept")])
    page = text_of(client.get(f"/admin/users/{user.id}/delete"))
    assert "Delete the user alice?" in page
    assert "3 items" in page and "2 posts" in page

    response = client.post(f"/admin/users/{user.id}/delete", data={})
    assert redirect_target(response) == "/admin/users"
    assert fresh(User, user.id) is None
    assert db.session.scalar(select(func.count()).select_from(Item)) == 0
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 1
    (event,) = events("admin.user.trash")
    assert event.before == {
        "email": "alice@example.com",
        "username": "alice",
        "is_active": True,
        "is_admin": False,
        "items": 3,
        "posts": 2,
    }


def test_unknown_ids_are_404(client: FlaskClient, admin: User) -> None:
    for url in (
        "/admin/users/999999",
        "/admin/items/999999/delete",
        "/admin/posts/2147483647",
        "/admin/tags/2147483648",
    ):
        assert client.get(url).status_code == 404, url


# --- Items and posts --------------------------------------------------------------------------


def hidden_version(html: str) -> str:
    match = re.search(r'id="version" name="version" type="hidden" value="(\d+)"', html)
    assert match, "no version field in the form"
    return match.group(1)


def test_edit_an_item_with_a_version_check(client: FlaskClient, admin: User) -> None:
    item = ItemFactory(title="Old lamp", description="Bright")
    assert hidden_version(text_of(client.get(f"/admin/items/{item.id}"))) == "1"
    form = {"title": "New lamp", "description": "Brighter", "version": "1"}
    response = client.post(f"/admin/items/{item.id}", data=form)
    assert redirect_target(response) == f"/admin/items/{item.id}"
    edited = fresh(Item, item.id)
    assert isinstance(edited, Item)
    assert (edited.title, edited.description, edited.version) == ("New lamp", "Brighter", 2)
    (event,) = events("admin.item.update")
    assert event.before == {"title": "Old lamp", "description": "Bright"}
    assert event.after == {"title": "New lamp", "description": "Brighter"}

    stale = client.post(f"/admin/items/{item.id}", data={**form, "title": "Stale"})
    assert stale.status_code == 409
    html = text_of(stale)
    assert "This item changed since you opened it" in html
    assert "Your version" in html and "Saved version" in html
    assert 'value="Stale"' in html  # what the admin typed is kept
    assert fresh(Item, item.id).title == "New lamp"  # type: ignore[union-attr]
    # The form now carries the version saved: saving again is a deliberate overwrite.
    assert hidden_version(html) == "2"
    again = client.post(f"/admin/items/{item.id}", data={**form, "title": "Stale", "version": "2"})
    assert redirect_target(again) == f"/admin/items/{item.id}"
    assert fresh(Item, item.id).title == "Stale"  # type: ignore[union-attr]


def test_an_owner_and_an_admin_editing_at_once_conflict(
    client: FlaskClient, auth: AuthActions, admin: User, user: User
) -> None:
    """One version check for both: whoever saves second from an older version is told."""
    post = PostFactory(author=user, title="Draft", body="Text", tags=[TagFactory(name="old")])
    db.session.commit()
    # The admin changes only the tags: the post's version moves all the same.
    response = client.post(
        f"/admin/posts/{post.id}",
        data={"title": "Draft", "body": "Text", "tags": "old, new", "version": "1"},
    )
    assert redirect_target(response) == f"/admin/posts/{post.id}"
    assert fresh(Post, post.id).version == 2  # type: ignore[union-attr]

    auth.login(user)  # the author saves from the form they opened at version 1
    theirs = client.post(
        f"/posts/{post.id}/edit",
        data={"title": "Final", "body": "Text", "tags": "old", "version": "1"},
    )
    assert theirs.status_code == 409
    assert "This post changed since you opened it" in text_of(theirs)
    assert fresh(Post, post.id).title == "Draft"  # type: ignore[union-attr]


def test_an_item_deleted_while_an_admin_edits_it(
    client: FlaskClient, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = ItemFactory(title="Goner")
    item_id = item.id
    db.session.commit()

    def deleted_meanwhile(repository: Any, obj: Any, version: int) -> None:
        repository.session.execute(delete(Item).where(Item.id == obj.id))
        repository.session.commit()  # someone else's request, done before ours saves
        raise StaleDataError("deleted")

    monkeypatch.setattr(VersionedRepository, "check_version", deleted_meanwhile)
    response = client.post(
        f"/admin/items/{item_id}", data={"title": "Mine", "description": "", "version": "1"}
    )
    assert redirect_target(response) == "/admin/items"
    assert "That item was deleted while you were editing it." in text_of(client.get("/admin/items"))
    assert fresh(Item, item_id) is None
    assert events("admin.item.update") == []


def test_a_description_its_owner_may_save_an_admin_may_save_too(
    client: FlaskClient, admin: User
) -> None:
    """Both forms count a line break as one character, as the text reads, though browsers
    send CRLF: 494 characters as stored, 504 as sent, within the limit of 500."""
    description = "\r\n".join(["x" * 44] * 11)
    stored = description.replace("\r\n", "\n")
    item = ItemFactory(owner=admin, title="Lamp")  # the admin owns it: one client does both
    as_owner = client.post(
        f"/items/{item.id}/edit", data={"title": "Lamp", "description": description, "version": 1}
    )
    assert redirect_target(as_owner) == f"/items/{item.id}"
    assert fresh(Item, item.id).description == stored  # type: ignore[union-attr]

    as_admin = client.post(
        f"/admin/items/{item.id}",
        data={"title": "Lamp 2", "description": description, "version": 2},
    )
    assert redirect_target(as_admin) == f"/admin/items/{item.id}"
    edited = fresh(Item, item.id)
    assert isinstance(edited, Item)
    assert (edited.title, edited.description, edited.version) == ("Lamp 2", stored, 3)


@pytest.mark.parametrize(
    ("title", "message"),
    [("", "Give the item a title."), ("x" * 101, "longer than 100"), ("a\x00b", "control")],
)
def test_item_titles_are_checked(
    client: FlaskClient, admin: User, title: str, message: str
) -> None:
    item = ItemFactory(title="Keep")
    response = client.post(f"/admin/items/{item.id}", data={"title": title, "version": "1"})
    assert response.status_code == 422
    assert message in text_of(response)
    assert fresh(Item, item.id).title == "Keep"  # type: ignore[union-attr]


def test_delete_an_item(client: FlaskClient, admin: User) -> None:
    item = ItemFactory(title="Goner")
    assert "Delete the item “Goner”?" in text_of(client.get(f"/admin/items/{item.id}/delete"))
    response = client.post(f"/admin/items/{item.id}/delete", data={})
    assert redirect_target(response) == "/admin/items"
    assert fresh(Item, item.id) is None
    (event,) = events("admin.item.trash")
    assert event.before == {"title": "Goner", "owner_id": item.owner_id}


def test_edit_a_post_and_its_tags(client: FlaskClient, admin: User) -> None:
    post = PostFactory(title="Draft", body="Text", tags=[TagFactory(name="old")])
    page = text_of(client.get(f"/admin/posts/{post.id}"))
    assert 'value="old"' in page
    response = client.post(
        f"/admin/posts/{post.id}",
        data={
            "title": "Final",
            "body": "  Line one\r\nLine two\n",  # as a browser sends it: CRLF line breaks
            "tags": "Web Dev, old",
            "version": "1",
        },
    )
    assert redirect_target(response) == f"/admin/posts/{post.id}"
    edited = fresh(Post, post.id)
    assert isinstance(edited, Post)
    assert edited.title == "Final" and edited.body == "Line one\nLine two"
    assert sorted(tag.name for tag in edited.tags) == ["old", "web-dev"]
    (event,) = events("admin.post.update")
    assert event.before["tags"] == ["old"] and event.after["tags"] == ["web-dev", "old"]


def test_delete_a_post_keeps_its_tags(client: FlaskClient, admin: User) -> None:
    post = PostFactory(tags=[TagFactory(name="stays")])
    response = client.post(f"/admin/posts/{post.id}/delete", data={})
    assert redirect_target(response) == "/admin/posts"
    assert fresh(Post, post.id) is None  # in the trash
    assert db.session.scalar(select(Tag.name)) == "stays"
    # The links stay while the post is in the trash (a restore brings them back with it).
    assert db.session.scalar(select(func.count()).select_from(post_tags)) == 1


# --- Tags -------------------------------------------------------------------------------------


def test_rename_a_tag(client: FlaskClient, admin: User) -> None:
    tag = TagFactory(name="pyhton")
    response = client.post(f"/admin/tags/{tag.id}", data={"name": " Python "})
    assert redirect_target(response) == f"/admin/tags/{tag.id}"
    assert fresh(Tag, tag.id).name == "python"  # type: ignore[union-attr]
    (event,) = events("admin.tag.rename")
    assert (event.before, event.after) == ({"name": "pyhton"}, {"name": "python"})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("taken", "already exists: merge into it instead"),
        ("no_under", "letters, digits and hyphens"),
    ],
)
def test_rename_refuses_a_taken_or_bad_name(
    client: FlaskClient, admin: User, name: str, message: str
) -> None:
    TagFactory(name="taken")
    tag = TagFactory(name="mine")
    response = client.post(f"/admin/tags/{tag.id}", data={"name": name})
    assert response.status_code == 422
    assert message in text_of(response)
    assert fresh(Tag, tag.id).name == "mine"  # type: ignore[union-attr]


def test_merge_moves_posts_without_duplicate_links(client: FlaskClient, admin: User) -> None:
    source, target = TagFactory(name="js"), TagFactory(name="javascript")
    source_id, target_id = source.id, target.id
    posts = [PostFactory(tags=[source]), PostFactory(tags=[source, target])]
    posts.append(PostFactory(tags=[target]))
    post_ids = [post.id for post in posts]
    response = client.post(f"/admin/tags/{source_id}/merge", data={"target": "JavaScript"})
    assert redirect_target(response) == f"/admin/tags/{target_id}"
    assert fresh(Tag, source_id) is None
    links = db.session.execute(select(post_tags.c.post_id, post_tags.c.tag_id)).all()
    assert sorted(links) == [(post_id, target_id) for post_id in sorted(post_ids)]
    (event,) = events("admin.tag.merge")
    assert event.before == {"name": "js", "posts": 2}
    assert event.after == {"merged_into": "javascript", "target_id": target_id}
    assert "1 posts moved" in text_of(client.get(response.headers["Location"]))


@pytest.mark.parametrize(
    ("target", "message"), [("nowhere", "There is no tag named"), ("js", "cannot be merged into")]
)
def test_merge_refuses_a_missing_tag_or_itself(
    client: FlaskClient, admin: User, target: str, message: str
) -> None:
    tag = TagFactory(name="js")
    PostFactory(tags=[tag])
    response = client.post(f"/admin/tags/{tag.id}/merge", data={"target": target})
    assert response.status_code == 422
    assert message in text_of(response)
    assert fresh(Tag, tag.id) is not None
    assert events("admin.tag.merge") == []


def test_delete_a_tag_keeps_its_posts(client: FlaskClient, admin: User) -> None:
    tag = TagFactory(name="gone")
    post = PostFactory(tags=[tag])
    assert "Its links to 1 post" in text_of(client.get(f"/admin/tags/{tag.id}/delete"))
    response = client.post(f"/admin/tags/{tag.id}/delete", data={})
    assert redirect_target(response) == "/admin/tags"
    assert fresh(Tag, tag.id) is None and fresh(Post, post.id) is not None


# --- Audit ------------------------------------------------------------------------------------


def test_the_audit_log_never_holds_a_password_or_a_hash(
    client: FlaskClient, admin: User, user: User
) -> None:
    client.post(
        "/admin/users/new",
        data={"email": "x@example.com", "username": "xavier", "password": NEW_PASSWORD},
    )
    client.post(
        f"/admin/users/{user.id}/password", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    client.post("/auth/logout", data={})
    client.post("/auth/login", data={"login": "alice", "password": "wrong-password-1"})
    dumped = json.dumps([(e.before, e.after) for e in db.session.scalars(select(AuditEvent))])
    assert NEW_PASSWORD not in dumped and "wrong-password-1" not in dumped
    assert "scrypt" not in dumped and "hashed_password" not in dumped
    assert len(events("admin.user.create")) == len(events("admin.user.password_set")) == 1


def test_the_audit_page_lists_changes(client: FlaskClient, admin: User, user: User) -> None:
    client.post(
        f"/admin/users/{user.id}",
        data={"email": user.email, "username": "alicia", "is_active": "y"},
    )
    html = text_of(client.get("/admin/audit"))
    assert "admin.user.update" in html
    assert re.search(r"username</span>:\s*<del>alice</del>.*?<ins>alicia</ins>", html, re.S)
    assert f'href="/admin/users/{user.id}">user #{user.id}</a>' in html


@pytest.mark.parametrize(
    ("url_of", "field", "value"),
    [
        (lambda u: "/admin/users/new", "email", "alice@example.com"),
        (lambda u: "/admin/users/new", "username", "Alice"),
        (lambda u: f"/admin/users/{u.id}", "email", "alice@example.com"),
        (lambda u: f"/admin/users/{u.id}", "username", "ALICE"),
    ],
)
def test_a_lost_uniqueness_race_is_a_field_error_not_a_500(
    client: FlaskClient,
    admin: User,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    url_of: Any,
    field: str,
    value: str,
) -> None:
    """Another request takes the email or username between our check and our write."""
    other = UserFactory(username="other", email="other@example.com")
    db.session.commit()
    monkeypatch.setattr(UserRepository, "email_taken", lambda *_a, **_k: False)
    monkeypatch.setattr(UserRepository, "username_taken", lambda *_a, **_k: False)
    data = {"email": "fresh@example.com", "username": "fresh", "password": NEW_PASSWORD}
    data[field] = value
    response = client.post(url_of(other), data={**data, "is_active": "y"})
    assert response.status_code == 422
    error = re.search(rf'id="{field}-error">([^<]+)<', text_of(response))
    assert error is not None and error.group(1) == TAKEN[field]
    assert fresh(User, other.id).email == "other@example.com"  # type: ignore[union-attr]
    assert db.session.scalar(select(func.count()).select_from(User)) == 3


def test_an_admin_may_demote_another_admin(client: FlaskClient, admin: User) -> None:
    deputy = UserFactory(username="deputy", email="deputy@example.com", is_admin=True)
    response = client.post(
        f"/admin/users/{deputy.id}",
        data={"email": deputy.email, "username": deputy.username, "is_active": "y"},
    )
    assert redirect_target(response) == f"/admin/users/{deputy.id}"
    assert fresh(User, deputy.id).is_admin is False  # type: ignore[union-attr]
    (event,) = events("admin.user.update")
    assert (event.before, event.after) == ({"is_admin": True}, {"is_admin": False})
