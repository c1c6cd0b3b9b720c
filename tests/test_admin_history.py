"""A row's history in the admin console: its changes newest first, and restoring them."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import ItemFactory, PostFactory, UserFactory
from tests.helpers import AuthActions, redirect_target
from webapp.admin.history import word_diff
from webapp.auth.forms import TAKEN
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, User
from webapp.repositories import AuditRepository


@pytest.fixture
def admin(client: FlaskClient, auth: AuthActions, admin_user: User) -> User:
    db.session.commit()
    return auth.login(admin_user)


def text_of(response: object) -> str:
    return unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


def restore_forms(html: str) -> dict[int, dict[str, str]]:
    """Each restore button's event id and hidden fields, from a history page."""
    forms = {}
    pattern = r'<form method="post" action="/admin/\w+/\d+/history/(\d+)/restore"(.*?)</form>'
    for event_id, body in re.findall(pattern, html, re.S):
        fields = dict(
            re.findall(r'<input type="hidden" name="(as_of|version)" value="(\d+)"', body)
        )
        forms[int(event_id)] = fields
    return forms


def row_events(kind: str, row_id: int) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.target_type == kind, AuditEvent.target_id == row_id)
        .order_by(AuditEvent.id)
    )
    return list(db.session.scalars(stmt))


def edit_item(client: FlaskClient, item_id: int, title: str, description: str = "") -> None:
    version = db.session.get(Item, item_id).version  # type: ignore[union-attr]
    response = client.post(
        f"/admin/items/{item_id}",
        data={"title": title, "description": description, "version": str(version)},
    )
    assert response.status_code == 302


def restore(client: FlaskClient, kind: str, row_id: int, event_id: int) -> str:
    """Press "Restore these values" on ``event_id``'s entry; the page it lands on."""
    page = text_of(client.get(f"/admin/{kind}s/{row_id}/history"))
    fields = restore_forms(page)[event_id]
    response = client.post(f"/admin/{kind}s/{row_id}/history/{event_id}/restore", data=fields)
    assert redirect_target(response) == f"/admin/{kind}s/{row_id}/history"
    return text_of(client.get(response.headers["Location"]))


def test_an_owners_changes_are_in_the_history_and_an_earlier_state_comes_back(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    owner = UserFactory(username="maria")
    db.session.commit()
    auth.login(owner)
    client.post("/items/new", data={"title": "Lamp", "description": "Brass"})
    item = db.session.scalars(select(Item).where(Item.title == "Lamp")).one()
    client.post(
        f"/items/{item.id}/edit",
        data={"title": "Desk lamp", "description": "Brass", "version": "1"},
    )
    auth.logout()
    auth.login(admin_user)
    edit_item(client, item.id, "Desk lamp", "Green")

    page = text_of(client.get(f"/admin/items/{item.id}/history"))
    created, renamed, recoloured = row_events("item", item.id)
    assert [e.action for e in (created, renamed, recoloured)] == [
        "item.create",
        "item.update",
        "admin.item.update",
    ]
    # Newest first, each with who and what changed.
    shown = [int(n) for n in re.findall(r'id="change-(\d+)"', page)]
    assert shown == [recoloured.id, renamed.id, created.id]
    assert "maria" in page and "root" in page
    # The newest change is the item as it is now: nothing to restore there.
    assert set(restore_forms(page)) == {created.id, renamed.id}

    after = restore(client, "item", item.id, created.id)
    restored = db.session.get(Item, item.id)
    assert restored is not None
    assert (restored.title, restored.description) == ("Lamp", "Brass")
    event = row_events("item", item.id)[-1]
    assert event.action == "admin.item.restore"
    assert event.before == {"title": "Desk lamp", "description": "Green"}
    assert event.after == {"title": "Lamp", "description": "Brass", "restored_from": created.id}
    assert "Restored the values this change left." in after
    assert f"change #{created.id}" in after


def test_restoring_a_middle_change_puts_back_every_field_as_it_was_then(
    client: FlaskClient, admin: User
) -> None:
    item = ItemFactory(title="One", description="first")
    db.session.commit()
    edit_item(client, item.id, "Two", "first")
    edit_item(client, item.id, "Two", "second")
    edit_item(client, item.id, "Three", "third")
    middle = row_events("item", item.id)[0]  # One → Two; the description was still "first"
    restore(client, "item", item.id, middle.id)
    again = db.session.get(Item, item.id)
    assert again is not None
    assert (again.title, again.description) == ("Two", "first")


def test_a_post_restores_its_tags_and_long_text_is_shown_as_a_word_diff(
    client: FlaskClient, admin: User
) -> None:
    body = ("The quick brown fox jumps over the lazy dog, " * 3).strip()
    post = PostFactory(title="Fox", body=body)
    db.session.commit()
    form = {"title": "Fox", "body": body, "tags": "animals, dogs", "version": "1"}
    assert client.post(f"/admin/posts/{post.id}", data=form).status_code == 302
    changed = body.replace("lazy", "sleepy", 1)
    form = {"title": "Fox", "body": changed, "tags": "cats", "version": "2"}
    assert client.post(f"/admin/posts/{post.id}", data=form).status_code == 302

    page = text_of(client.get(f"/admin/posts/{post.id}/history"))
    assert "<del>lazy</del><ins>sleepy</ins>" in page
    tagged = row_events("post", post.id)[0]
    restore(client, "post", post.id, tagged.id)
    again = db.session.get(Post, post.id)
    assert again is not None
    assert again.body == body
    assert sorted(tag.name for tag in again.tags) == ["animals", "dogs"]


def test_a_restore_of_a_taken_email_says_which_field_and_why(
    client: FlaskClient, admin: User
) -> None:
    user = UserFactory(email="bo@example.com", username="bobby")
    db.session.commit()
    for email in ("bo@two.example.com", "bo@three.example.com"):
        form = {"email": email, "username": "bobby", "is_active": "y"}
        assert client.post(f"/admin/users/{user.id}", data=form).status_code == 302
    UserFactory(email="bo@two.example.com", username="someone-else")
    db.session.commit()
    first = row_events("user", user.id)[0]  # left the address bo@two.example.com
    page = restore(client, "user", user.id, first.id)
    assert f"Not restored: Email address: {TAKEN['email']}" in page
    again = db.session.get(User, user.id)
    assert again is not None
    assert again.email == "bo@three.example.com"
    assert row_events("user", user.id)[-1].action == "admin.user.update"


def test_a_user_restore_goes_through_the_admin_rules_and_never_touches_the_password(
    client: FlaskClient, admin: User
) -> None:
    user = UserFactory(username="cyril", is_active=True)
    db.session.commit()
    hashed = user.hashed_password
    form = {"email": user.email, "username": "cyril2", "is_active": "y"}
    assert client.post(f"/admin/users/{user.id}", data=form).status_code == 302
    client.post(
        f"/admin/users/{user.id}/password",
        data={"password": "a-new-secret-42", "confirm": "a-new-secret-42"},
    )
    renamed = row_events("user", user.id)[0]
    form = {"email": user.email, "username": "cyril3"}  # deactivated too
    assert client.post(f"/admin/users/{user.id}", data=form).status_code == 302
    restore(client, "user", user.id, renamed.id)
    again = db.session.get(User, user.id)
    assert again is not None
    assert (again.username, again.is_active) == ("cyril2", True)
    assert again.hashed_password != hashed  # the password set since stays
    for event in row_events("user", user.id):
        assert "hashed_password" not in (event.before or {})
        assert "hashed_password" not in (event.after or {})


def test_a_restore_keeps_the_admin_rules(client: FlaskClient, admin: User) -> None:
    audit = AuditRepository(db.session)
    made = audit.record(
        "admin.user.create", target_type="user", target_id=admin.id, after={"username": "root"}
    )
    audit.record(
        "admin.user.update",
        target_type="user",
        target_id=admin.id,
        before={"is_admin": False},
        after={"is_admin": True},
    )
    db.session.commit()
    page = restore(client, "user", admin.id, made.id)  # back to before they were an admin
    assert "Not restored: You cannot remove your own admin rights." in page
    assert db.session.get(User, admin.id).is_admin  # type: ignore[union-attr]


def test_a_change_made_after_the_page_was_opened_stops_the_restore(
    client: FlaskClient, admin: User
) -> None:
    item = ItemFactory(title="A")
    db.session.commit()
    edit_item(client, item.id, "B")
    edit_item(client, item.id, "C")
    page = text_of(client.get(f"/admin/items/{item.id}/history"))
    first = row_events("item", item.id)[0]
    fields = restore_forms(page)[first.id]
    edit_item(client, item.id, "D")  # someone else, in another tab
    response = client.post(f"/admin/items/{item.id}/history/{first.id}/restore", data=fields)
    follow = text_of(client.get(response.headers["Location"]))
    assert "changed since you opened its history: nothing was restored" in follow
    assert db.session.get(Item, item.id).title == "D"  # type: ignore[union-attr]


def test_a_stale_version_is_refused_even_when_the_log_has_not_moved(
    client: FlaskClient, admin: User
) -> None:
    item = ItemFactory(title="A")
    db.session.commit()
    edit_item(client, item.id, "B")
    edit_item(client, item.id, "C")
    page = text_of(client.get(f"/admin/items/{item.id}/history"))
    first = row_events("item", item.id)[0]
    fields = {**restore_forms(page)[first.id], "version": "1"}
    client.post(f"/admin/items/{item.id}/history/{first.id}/restore", data=fields)
    follow = text_of(client.get(f"/admin/items/{item.id}/history"))
    assert "Not restored: someone saved this item meanwhile" in follow
    assert db.session.get(Item, item.id).title == "C"  # type: ignore[union-attr]


def test_a_state_the_form_no_longer_accepts_is_refused_and_said(
    client: FlaskClient, admin: User
) -> None:
    item = ItemFactory(title="Fine")
    db.session.commit()
    audit = AuditRepository(db.session)
    # Written before the title limit existed: a change from a title no form accepts now.
    first = audit.record(
        "admin.item.update", target_type="item", target_id=item.id, after={"title": "x" * 1000}
    )
    audit.record(
        "admin.item.update",
        target_type="item",
        target_id=item.id,
        before={"title": "x" * 1000},
        after={"title": "Fine"},
    )
    db.session.commit()
    page = restore(client, "item", item.id, first.id)
    assert "Not restored: Title: " in page
    assert db.session.get(Item, item.id).title == "Fine"  # type: ignore[union-attr]
    assert row_events("item", item.id)[-1].after == {"title": "Fine"}


def test_a_field_the_table_no_longer_has_still_renders_and_is_not_restored(
    client: FlaskClient, admin: User
) -> None:
    item = ItemFactory(title="Vase")
    db.session.commit()
    AuditRepository(db.session).record(
        "admin.item.update",
        target_type="item",
        target_id=item.id,
        before={"title": "Old vase", "colour": "red"},
        after={"title": "Vase", "colour": "blue"},
    )
    db.session.commit()
    edit_item(client, item.id, "New vase")
    page = text_of(client.get(f"/admin/items/{item.id}/history"))
    assert "Colour" in page and "red" in page and "blue" in page
    old = row_events("item", item.id)[0]
    restore(client, "item", item.id, old.id)
    assert db.session.get(Item, item.id).title == "Vase"  # type: ignore[union-attr]


def test_wrong_ids_are_404s_and_non_admins_403(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    item, other = ItemFactory(), ItemFactory()
    db.session.commit()
    auth.login(admin_user)
    edit_item(client, other.id, "Other")
    event = row_events("item", other.id)[0]
    assert client.get("/admin/items/999999/history").status_code == 404
    assert client.get("/admin/posts/999999/history").status_code == 404
    assert client.get("/admin/users/999999/history").status_code == 404
    wrong_row = client.post(f"/admin/items/{item.id}/history/{event.id}/restore", data={})
    assert wrong_row.status_code == 404
    assert (
        client.post(f"/admin/items/{other.id}/history/999999/restore", data={}).status_code == 404
    )
    assert client.get(f"/admin/items/{item.id}/history?before=%C2%B2").status_code == 200
    auth.logout()
    member = UserFactory()
    db.session.commit()
    auth.login(member)
    assert client.get(f"/admin/items/{other.id}/history").status_code == 403


def test_an_empty_history_says_so_and_the_edit_pages_link_to_it(
    client: FlaskClient, admin: User
) -> None:
    item, post, user = ItemFactory(), PostFactory(), UserFactory()
    db.session.commit()
    assert "No change of this item has been recorded." in text_of(
        client.get(f"/admin/items/{item.id}/history")
    )
    for kind, row_id in (("items", item.id), ("posts", post.id), ("users", user.id)):
        edit_page = text_of(client.get(f"/admin/{kind}/{row_id}"))
        assert f'href="/admin/{kind}/{row_id}/history"' in edit_page


def test_long_histories_are_paged_and_a_restore_from_an_older_page_is_exact(
    client: FlaskClient, admin: User
) -> None:
    item = ItemFactory(title="t0")
    db.session.commit()
    for n in range(1, 56):
        AuditRepository(db.session).record(
            "admin.item.update",
            target_type="item",
            target_id=item.id,
            before={"title": f"t{n - 1}"},
            after={"title": f"t{n}"},
        )
    item.title = "t55"
    db.session.commit()
    first_page = text_of(client.get(f"/admin/items/{item.id}/history"))
    assert first_page.count('class="card history-entry"') == 50
    older = re.search(r'href="(/admin/items/\d+/history\?before=\d+)"', first_page)
    assert older is not None
    second_page = text_of(client.get(older.group(1)))
    assert second_page.count('class="card history-entry"') == 5
    assert "Newest" in second_page or "First" in second_page
    events = row_events("item", item.id)
    third = events[2]  # t2 → t3
    forms = restore_forms(second_page)
    assert third.id in forms
    response = client.post(
        f"/admin/items/{item.id}/history/{third.id}/restore", data=forms[third.id]
    )
    assert response.status_code == 302
    assert db.session.get(Item, item.id).title == "t3"  # type: ignore[union-attr]


def test_word_diff_marks_removed_and_added_words() -> None:
    parts = [(s.kind, s.text) for s in word_diff("a red fox", "a blue fox")]
    assert parts == [("same", "a "), ("removed", "red"), ("added", "blue"), ("same", " fox")]
