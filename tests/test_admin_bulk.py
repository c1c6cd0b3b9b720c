"""Bulk actions on selected rows or on every row matching the filters, and CSRF everywhere."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions, redirect_target, session_count
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, Tag, User, post_tags
from webapp.repositories import SessionRepository


@pytest.fixture
def admin(client: FlaskClient, auth: AuthActions, admin_user: User) -> User:
    db.session.commit()
    return auth.login(admin_user)


def active_names() -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(User.username).where(User.is_active.is_(True))))


def audit_actions() -> list[tuple[str, int | None]]:
    stmt = select(AuditEvent.action, AuditEvent.target_id).order_by(AuditEvent.id)
    return [(action, target) for action, target in db.session.execute(stmt)]


def test_the_confirmation_page_says_how_many_rows_change_and_changes_nothing(
    client: FlaskClient, admin: User
) -> None:
    for n in range(5):
        UserFactory(username=f"crowd{n}", is_active=n != 0)
    response = client.get("/admin/users/bulk?bulk=deactivate&scope=all&q=crowd")
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    assert "<h1>Deactivate 4 users?</h1>" in html
    assert "5 users match the current filters." in html
    assert "1 of them will not change" in html
    assert re.findall(r"<li>(crowd\d)</li>", html) == ["crowd1", "crowd2", "crowd3", "crowd4"]
    assert 'name="q" value="crowd"' in html and 'name="scope" value="all"' in html
    assert active_names() == {
        "root",
        "crowd1",
        "crowd2",
        "crowd3",
        "crowd4",
    }  # a GET changes nothing


def test_deactivate_all_matching_across_pages(app: Flask, client: FlaskClient, admin: User) -> None:
    crowd = [UserFactory(username=f"crowd{n:02d}") for n in range(45)]
    UserFactory(username="bystander")
    theirs = app.test_client()
    AuthActions(theirs).login(crowd[30])
    assert session_count(crowd[30].id) == 1

    response = client.post(
        "/admin/users/bulk",
        data={"bulk": "deactivate", "scope": "all", "q": "crowd", "per_page": "20"},
    )
    assert redirect_target(response) == "/admin/users?q=crowd"
    assert active_names() == {"root", "bystander"}
    assert session_count(crowd[30].id) == 0
    assert "Sign out" not in theirs.get("/").get_data(as_text=True)
    assert "Deactivated 45 users." in client.get("/admin/users?q=crowd").get_data(as_text=True)
    logged = audit_actions()
    assert len(logged) == 45 and {action for action, _ in logged} == {"admin.user.deactivate"}
    event = db.session.scalars(select(AuditEvent)).first()
    assert event is not None and (event.actor_id, event.actor_name) == (admin.id, "root")
    assert event.ip_address == "127.0.0.1"  # as every event from a request records it
    assert event.before is not None and event.before["is_active"] is True
    assert event.after == {"is_active": False}


def test_activate_selected_rows_only(client: FlaskClient, admin: User) -> None:
    sleepers = [UserFactory(username=f"sleeper{n}", is_active=False) for n in range(3)]
    chosen = [sleepers[0].id, sleepers[2].id]
    response = client.post(
        "/admin/users/bulk", data={"bulk": "activate", "scope": "selected", "ids": chosen}
    )
    assert redirect_target(response) == "/admin/users"
    assert active_names() == {"root", "sleeper0", "sleeper2"}
    assert audit_actions() == [
        ("admin.user.activate", chosen[0]),
        ("admin.user.activate", chosen[1]),
    ]


def test_a_bulk_change_that_changes_nothing_says_so_not_success(
    client: FlaskClient, admin: User
) -> None:
    """Rows gone (or already changed) since the confirmation page: no "0 users" success."""
    awake = UserFactory(username="awake", is_active=True)
    response = client.post(
        "/admin/users/bulk",
        data={"bulk": "activate", "scope": "selected", "ids": [awake.id, 999_999]},
    )
    html = client.get(redirect_target(response)).get_data(as_text=True)
    assert (
        '<p class="flash flash-info">Nothing changed: none of those users needed that any '
        "more.</p>" in html
    )
    assert "flash-success" not in html
    assert audit_actions() == []


def test_bulk_actions_leave_the_admin_themselves_out(client: FlaskClient, admin: User) -> None:
    other_admin = UserFactory(username="deputy", is_admin=True)
    UserFactory(username="plain")
    html = unescape(
        client.get(
            f"/admin/users/bulk?bulk=delete&scope=selected&ids={admin.id}&ids={other_admin.id}"
        ).get_data(as_text=True)
    )
    assert "<h1>Delete 1 user?</h1>" in html
    assert "Your own account is left out" in html

    for action in ("deactivate", "delete"):
        client.post("/admin/users/bulk", data={"bulk": action, "scope": "all"})
        me = db.session.get(User, admin.id)
        assert me is not None and me.is_active and me.is_admin
    db.session.expire_all()
    assert set(db.session.scalars(select(User.username))) == {"root"}


def test_bulk_delete_users_takes_their_rows(client: FlaskClient, admin: User) -> None:
    doomed = UserFactory(username="doomed")
    doomed_id, email = doomed.id, doomed.email
    ItemFactory.create_batch(2, owner=doomed)
    PostFactory(author=doomed, tags=[TagFactory(name="kept")])
    client.post("/admin/users/bulk", data={"bulk": "delete", "scope": "selected", "ids": doomed_id})
    db.session.expire_all()
    # In the trash, with their items and posts: out of every query.
    assert db.session.scalar(select(User).where(User.id == doomed_id)) is None
    assert db.session.scalar(select(func.count()).select_from(Item)) == 0
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0
    assert db.session.scalar(select(Tag.name)) == "kept"
    (event,) = db.session.scalars(select(AuditEvent))
    assert event.action == "admin.user.trash" and event.before == {
        "email": email,
        "username": "doomed",
        "is_active": True,
        "is_admin": False,
    }


@pytest.mark.parametrize(
    ("table", "model", "make"),
    [
        ("items", Item, lambda n: ItemFactory(title=f"bulk {n}")),
        ("posts", Post, lambda n: PostFactory(title=f"bulk {n}", tags=[TagFactory()])),
        ("tags", Tag, lambda n: TagFactory(name=f"bulk-{n}")),
    ],
)
def test_bulk_delete_on_every_table(
    client: FlaskClient, admin: User, table: str, model: type, make: object
) -> None:
    for n in range(4):
        make(n)  # type: ignore[operator]
    keeper = make("keep")  # type: ignore[operator]
    html = unescape(
        client.get(f"/admin/{table}/bulk?bulk=delete&scope=all&q=bulk").get_data(as_text=True)
    )
    assert f"<h1>Delete 5 {table}?</h1>" in html
    response = client.post(
        f"/admin/{table}/bulk", data={"bulk": "delete", "scope": "selected", "ids": [keeper.id]}
    )
    assert redirect_target(response) == f"/admin/{table}"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(model)) == 4
    client.post(f"/admin/{table}/bulk", data={"bulk": "delete", "scope": "all", "q": "bulk"})
    assert db.session.scalar(select(func.count()).select_from(model)) == 0
    assert len(audit_actions()) == 5
    # A trashed post keeps its tag links (for a restore); a deleted tag's go with it.
    links = 5 if model is Post else 0
    assert db.session.scalar(select(func.count()).select_from(post_tags)) == links


def flashes_after(client: FlaskClient, response: Any, location: str) -> list[tuple[str, str]]:
    """Where ``response`` redirects must be ``location``; the (category, text) flashed there."""
    assert redirect_target(response) == location
    html = unescape(client.get(location).get_data(as_text=True))
    return re.findall(r'<p class="flash flash-(\w+)">([^<]*)</p>', html)


@pytest.mark.parametrize("bulk", ["", "explode"])
def test_a_bulk_request_without_an_action_goes_back(
    client: FlaskClient, admin: User, bulk: str
) -> None:
    response = client.get(f"/admin/users/bulk?bulk={bulk}&scope=all&active=yes")
    flashed = flashes_after(client, response, "/admin/users?active=yes")
    assert flashed == [("error", "Choose what to do with the rows.")]


SELECT_ONE = "Select at least one user first."
NO_SUCH_IDS = "Nothing changed: no user has any of the selected ids."
GONE = "Nothing changed: none of the selected users exist any more."


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("ids", "flashed"),
    [
        ([], ("error", SELECT_ONE)),
        (["", " "], ("error", SELECT_ONE)),
        (["abc"], ("error", NO_SUCH_IDS)),
        (["99999999999"], ("error", NO_SUCH_IDS)),  # past any id a row can have
        (["abc", "99999999999", "-3", "1.5", "2147483648"], ("error", NO_SUCH_IDS)),
        (["999999"], ("info", GONE)),  # a well-formed id no row has
        (["gone", "abc"], ("info", GONE)),  # rows deleted since the list was shown
    ],
)
def test_a_selection_that_names_no_row_changes_nothing_and_says_why(
    client: FlaskClient, admin: User, method: str, ids: list[str], flashed: tuple[str, str]
) -> None:
    """Whether asked to confirm (GET) or to act (POST): no "0 users" success, no audit."""
    sleeper = UserFactory(username="sleeper", is_active=False)
    gone = [UserFactory(username=f"gone{n}").id for n in range(2)]
    db.session.execute(delete(User).where(User.id.in_(gone)))
    db.session.commit()
    sent = [str(value) for name in ids for value in (gone if name == "gone" else [name])]
    query = {"bulk": "activate", "scope": "selected", "ids": sent, "active": "yes"}
    if method == "GET":
        response = client.get("/admin/users/bulk", query_string=query)
    else:
        response = client.post("/admin/users/bulk", data=query)
    assert flashes_after(client, response, "/admin/users?active=yes") == [flashed]
    assert audit_actions() == []
    assert db.session.get(User, sleeper.id).is_active is False  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("table", "make"),
    [
        ("items", lambda: ItemFactory()),
        ("posts", lambda: PostFactory()),
        ("tags", lambda: TagFactory()),
    ],
)
def test_a_selection_gone_from_any_table_says_so(
    client: FlaskClient, admin: User, method: str, table: str, make: Any
) -> None:
    row_id = make().id
    kept = make().id
    model = {"items": Item, "posts": Post, "tags": Tag}[table]
    db.session.execute(delete(model).where(model.id == row_id))
    db.session.commit()
    query = {"bulk": "delete", "scope": "selected", "ids": [str(row_id)]}
    if method == "GET":
        response = client.get(f"/admin/{table}/bulk", query_string=query)
    else:
        response = client.post(f"/admin/{table}/bulk", data=query)
    flashed = flashes_after(client, response, f"/admin/{table}")
    assert flashed == [("info", f"Nothing changed: none of the selected {table} exist any more.")]
    assert db.session.get(model, kept) is not None
    assert audit_actions() == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_all_matching_when_nothing_matches_says_so(
    client: FlaskClient, admin: User, method: str
) -> None:
    query = {"bulk": "deactivate", "scope": "all", "q": "nobody-is-called-this"}
    if method == "GET":
        response = client.get("/admin/users/bulk", query_string=query)
    else:
        response = client.post("/admin/users/bulk", data=query)
    flashed = flashes_after(client, response, "/admin/users?q=nobody-is-called-this")
    assert flashed == [("info", "Nothing changed: no users match the current filters.")]
    assert audit_actions() == []


def test_acting_on_oneself_alone_says_why_nothing_changed(client: FlaskClient, admin: User) -> None:
    response = client.post(
        "/admin/users/bulk", data={"bulk": "delete", "scope": "selected", "ids": [admin.id]}
    )
    flashed = flashes_after(client, response, "/admin/users")
    assert flashed == [("info", "Nothing changed: an admin cannot delete themselves.")]
    assert db.session.get(User, admin.id) is not None


def test_nothing_to_change_shows_no_button(client: FlaskClient, admin: User) -> None:
    UserFactory(username="already", is_active=True)
    html = client.get("/admin/users/bulk?bulk=activate&scope=all&q=already").get_data(as_text=True)
    assert "<h1>Nothing to activate</h1>" in html
    assert (
        'type="submit"' not in html.split("<main", 1)[1].split("</main>")[0].split("Nothing to")[1]
    )


def admin_form_posts(app: Flask) -> list[tuple[str, str]]:
    """Every admin URL rule that accepts POST, with ids filled in."""
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin.") and "POST" in (rule.methods or set()):
            rules.append((rule.endpoint, rule.rule))
    return sorted(rules)


def test_every_admin_form_needs_a_csrf_token(app: Flask, client: FlaskClient, admin: User) -> None:
    user = UserFactory(username="target")
    item = ItemFactory(owner=user)
    post = PostFactory(author=user, tags=[TagFactory(name="t1")])
    tag = TagFactory(name="t2")
    db.session.commit()
    AuthActions(app.test_client()).login(user)
    (record,) = SessionRepository(db.session).of_user(user.id)
    ids = {"user_id": user.id, "item_id": item.id, "post_id": post.id, "tag_id": tag.id}
    ids["session_id"] = record.id
    # The forms are refused before their rows are looked up: any id will do.
    ids["event_id"] = ids["message_id"] = 1
    posted = admin_form_posts(app)
    assert len(posted) >= 14  # every table's bulk, and every create / edit / delete form
    payload = {
        "bulk": "delete",
        "scope": "all",
        "email": "x@example.com",
        "username": "xx-user",
        "password": "long-enough-password",
        "confirm": "long-enough-password",
        "title": "t",
        "name": "new-name",
        "target": "t1",
        "version": "1",
    }
    for _endpoint, rule in posted:
        url = re.sub(r"<int\([^)]*\):(\w+)>", lambda m: str(ids[m.group(1)]), rule)
        response = client.post(url, data=payload, csrf=False)
        assert response.status_code == 400, url
        assert "Bad request" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    assert db.session.scalar(select(func.count()).select_from(User)) == 2
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 2
