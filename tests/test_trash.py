"""The trash: deleted items, posts and users vanish everywhere, and come back on restore.

The absence walk requests every GET page of the app (derived from its URL map, with the
arguments ``tests/test_hostile_input.py`` reaches each one with) while a trashed item, post
and user with distinctive names exist, and checks that no page shows them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select, update

from tests.factories import PASSWORD, ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions
from tests.test_hostile_input import GET_ROUTES, PAGES
from webapp.db.trash import WITH_TRASHED, without_trash
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, User, post_tags
from webapp.repositories import UserRepository
from webapp.repositories.trash import TrashRepository

MARK = "zqxgone"  # in every trashed row's name: no page may show it
# Pages the walk leaves out, and why.
NOT_WALKED = {
    "static": "a file, not a page",
    "admin.trash": "the trash itself (opted in): checked below",
    "admin.trash_bulk": "the trash's confirmation (opted in): checked below",
    "account.trash": "my trash (opted in): checked below",
    "account.trash_bulk": "my trash's confirmation (opted in): checked below",
    "admin.audit": "the audit log records the deletions themselves, by name",
    "admin.audit_export": "the audit log, as CSV",
}


def trashed(row: Any, by: User, when: Any = None) -> None:
    row.deleted_at, row.deleted_by_id = when or utcnow(), by.id


def count_all(model: type[Any], *where: Any) -> int:
    stmt = select(func.count()).select_from(model).where(*where)
    return db.session.scalar(stmt, execution_options=WITH_TRASHED) or 0


def reread(model: type[Any], row_id: int) -> Any:
    db.session.expire_all()
    return db.session.get(model, row_id, execution_options=WITH_TRASHED)


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    """``test_hostile_input``'s rows (alice's item and tagged post, bob, root the admin),
    and beside them: alice's trashed item and post (tagged too), and a trashed user with
    an item and a post trashed with them."""
    alice = UserFactory(username="alice", email="alice@example.com")
    tag = TagFactory(name="grid")
    admin = UserFactory(username="root", email="root@example.com", is_admin=True)
    rows: dict[str, Any] = {
        "alice": alice,
        "bob": UserFactory(username="bob", email="bob@example.com"),
        "admin": admin,
        "item": ItemFactory(owner=alice, title="Old lamp", description="Dim"),
        "post": PostFactory(author=alice, tags=[tag]),
        "tag": tag,
        "other": TagFactory(name="other"),
    }
    gone = UserFactory(username=MARK, email=f"{MARK}@example.com")
    rows["gone"] = gone
    rows["gone_item"] = ItemFactory(owner=gone, title=f"{MARK} item of theirs")
    rows["gone_post"] = PostFactory(author=gone, title=f"{MARK} post of theirs", tags=[tag])
    rows["trashed_item"] = ItemFactory(
        owner=alice, title=f"{MARK} lamp", description=f"{MARK} desc"
    )
    rows["trashed_post"] = PostFactory(author=alice, title=f"{MARK} post", tags=[tag])
    db.session.flush()
    for name in ("trashed_item", "trashed_post"):
        trashed(rows[name], alice)
    TrashRepository(db.session).trash_users([gone.id], admin, now=utcnow())
    db.session.commit()
    return rows


def _walk_cases() -> list[Any]:
    cases = []
    for endpoint in sorted(GET_ROUTES):
        if endpoint in NOT_WALKED:
            continue
        role = PAGES[endpoint].role
        for who in dict.fromkeys([role, "admin"] if role == "anonymous" else [role]):
            cases.append(pytest.param(endpoint, who, id=f"{endpoint}-{who}"))
    return cases


def test_the_walk_covers_every_get_page() -> None:
    walked = {param.values[0] for param in _walk_cases()}
    assert sorted(GET_ROUTES.keys() - walked - NOT_WALKED.keys()) == []
    assert {"posts.index", "tags.detail", "profiles.detail", "admin.users"} <= walked


@pytest.mark.parametrize(("endpoint", "who"), _walk_cases())
def test_no_page_shows_a_trashed_row(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    world: dict[str, Any],
    endpoint: str,
    who: str,
) -> None:
    target = PAGES[endpoint]
    if who != "anonymous":
        auth.login(world[who])
    with app.test_request_context():
        url = url_for(endpoint, **target.args(world))
    query = target.query(world)
    response = client.get(url, query_string=query)
    body = response.get_data(as_text=True)
    assert response.status_code != 500, body  # /readyz: 503 (no migrations in the tests)
    assert MARK not in body.lower(), f"{url} ({who}) shows a trashed row"


def test_the_search_pages_find_no_trashed_row(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    auth.login(world["admin"])
    # Searches for words of the trashed rows' names (not the mark, which a form echoes).
    for url in (
        "/posts/?q=post",
        "/posts/?tag=grid",
        "/admin/users?q=example",
        "/admin/items?q=lamp",
        "/admin/items?q=theirs",
        "/admin/posts?q=post",
        "/admin/posts?tag=grid",
        "/admin/posts/export?q=post",
        "/admin/users/export?q=example",
        "/items/?q=lamp",
        "/tags/grid",
        "/admin/tags",
    ):
        body = client.get(url).get_data(as_text=True)
        assert MARK not in body.lower(), url


def test_a_trashed_rows_own_pages_are_404(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    auth.login(world["alice"])
    item, post = world["trashed_item"].id, world["trashed_post"].id
    for url in (f"/items/{item}", f"/items/{item}/edit", f"/posts/{post}", f"/posts/{post}/edit"):
        assert client.get(url).status_code == 404, url
    auth.login(world["admin"])
    gone = world["gone"].id
    for url in (
        f"/users/{MARK}",
        f"/admin/users/{gone}",
        f"/admin/users/{gone}/history",
        f"/admin/items/{item}",
        f"/admin/posts/{post}/history",
    ):
        assert client.get(url).status_code == 404, url


def test_counts_leave_trashed_rows_out(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    # The tag "grid" is on one live post and on two trashed ones.
    assert count_all(post_tags.join(Post), post_tags.c.tag_id == world["tag"].id) == 2 + 1
    tags_page = client.get("/tags/").get_data(as_text=True)
    assert "1 post" in tags_page and "3 posts" not in tags_page
    auth.login(world["admin"])
    assert ">1<" in client.get("/admin/tags?q=grid").get_data(as_text=True)
    users = client.get("/admin/users").get_data(as_text=True)
    assert "3 users" in users  # alice, bob, root: not the trashed one
    assert "1 item" in client.get("/admin/items").get_data(as_text=True)
    auth.login(world["alice"])
    account = client.get("/account/").get_data(as_text=True)
    assert "1 item, 1 post" in account


def test_an_owner_deletes_to_the_trash_and_restores(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    alice, item = world["alice"], world["item"]
    auth.login(alice)
    response = client.post(f"/items/{item.id}/delete", data={})
    assert response.status_code == 302
    kept = reread(Item, item.id)
    assert kept.deleted_at is not None and kept.deleted_by_id == alice.id
    flashed = client.get("/items/").get_data(as_text=True)
    assert "Item “Old lamp” moved to your trash" in flashed
    assert "Old lamp" not in client.get("/items/").get_data(as_text=True)
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "item.trash"))

    mine = client.get("/account/trash").get_data(as_text=True)
    assert "Old lamp" in mine and f"{MARK} lamp" in mine
    confirm = client.get(
        "/account/trash/bulk", query_string={"bulk": "restore", "kind": "items", "ids": item.id}
    )
    assert "Restore 1 item?" in confirm.get_data(as_text=True)
    client.post(
        "/account/trash/bulk", data={"bulk": "restore", "kind": "items", "ids": str(item.id)}
    )
    assert reread(Item, item.id).deleted_at is None
    assert "Old lamp" in client.get("/items/").get_data(as_text=True)
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "item.restore"))


def test_an_owner_does_not_see_what_an_admin_trashed(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    alice, admin, post = world["alice"], world["admin"], world["post"]
    auth.login(admin)
    client.post(f"/admin/posts/{post.id}/delete", data={})
    assert reread(Post, post.id).deleted_by_id == admin.id
    auth.login(alice)
    client.get("/account/")  # the admin's flash
    assert post.title not in client.get("/account/trash?kind=posts").get_data(as_text=True)
    client.post(
        "/account/trash/bulk", data={"bulk": "restore", "kind": "posts", "ids": str(post.id)}
    )
    assert reread(Post, post.id).deleted_at is not None


def test_the_admin_trash_lists_each_kind_and_restores(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    auth.login(world["admin"])
    items = client.get("/admin/trash").get_data(as_text=True)
    assert f"{MARK} lamp" in items and f"{MARK} item of theirs" in items
    assert "2 trashed items" in items
    posts = client.get("/admin/trash?kind=posts").get_data(as_text=True)
    assert f"{MARK} post" in posts
    users = client.get("/admin/trash?kind=users").get_data(as_text=True)
    assert f"{MARK}@example.com" in users and "root" in users  # deleted by root

    item = world["trashed_item"]
    client.post("/admin/trash/bulk", data={"bulk": "restore", "kind": "items", "ids": item.id})
    assert reread(Item, item.id).deleted_at is None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "admin.item.restore"))
    assert event is not None and event.target_id == item.id


def test_restoring_an_item_of_a_trashed_user_is_refused(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    auth.login(world["admin"])
    item = world["gone_item"]
    confirm = client.get(
        "/admin/trash/bulk", query_string={"bulk": "restore", "kind": "items", "ids": item.id}
    ).get_data(as_text=True)
    assert "cannot be restored yet" in confirm
    response = client.post(
        "/admin/trash/bulk",
        data={"bulk": "restore", "kind": "items", "ids": item.id},
        follow_redirects=True,
    )
    assert "stayed in the trash" in response.get_data(as_text=True)
    assert reread(Item, item.id).deleted_at is not None


def test_a_user_comes_back_with_what_was_trashed_with_them_only(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    bob = world["bob"]
    earlier_item = ItemFactory(owner=bob, title="Deleted before")
    kept_item = ItemFactory(owner=bob, title="Bob's lamp")
    kept_post = PostFactory(author=bob, title="Bob's post")
    trashed(earlier_item, bob, utcnow() - timedelta(days=2))
    db.session.commit()

    auth.login(admin)
    client.post(f"/admin/users/{bob.id}/delete", data={})
    user = reread(User, bob.id)
    assert user.deleted_at is not None and user.deleted_by_id == admin.id
    assert reread(Item, kept_item.id).deleted_at == user.deleted_at
    assert reread(Post, kept_post.id).deleted_at == user.deleted_at

    response = client.post(
        "/admin/trash/bulk",
        data={"bulk": "restore", "kind": "users", "ids": bob.id},
        follow_redirects=True,
    )
    assert "with 1 item and 1 post" in response.get_data(as_text=True)
    assert reread(User, bob.id).deleted_at is None
    assert reread(Item, kept_item.id).deleted_at is None
    assert reread(Post, kept_post.id).deleted_at is None
    assert reread(Item, earlier_item.id).deleted_at is not None  # deleted before: stays


def test_a_trashed_user_cannot_sign_in_and_their_session_ends(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    bob = world["bob"]
    auth.login(bob)
    assert client.get("/account/").status_code == 200
    TrashRepository(db.session).trash_users([bob.id], world["admin"], now=utcnow())
    db.session.commit()
    assert client.get("/account/").status_code == 302  # the session names no one now
    # Re-signing in with the old cookie's user fails too: the version moved on.
    auth.login(bob)
    assert client.get("/account/").status_code == 302
    client.get("/auth/login")  # the "please sign in" flash of the redirects above
    known = client.post("/auth/login", data={"login": "bob", "password": PASSWORD})
    unknown = client.post("/auth/login", data={"login": "nobody", "password": PASSWORD})
    assert known.status_code == unknown.status_code != 302

    def page(response: Any) -> str:  # the same page, but for the login typed and the token
        text = response.get_data(as_text=True).replace("bob", "nobody")
        return re.sub(r'name="csrf_token"[^>]*>', "", text)

    assert page(known) == page(unknown)
    assert client.get("/account/").status_code == 302  # still nobody signed in


def test_a_statement_built_without_trash_leaves_trashed_rows_out(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    """``without_trash`` (a statement built once, the signed-in user's) carries the criteria
    the event would add: a user marked trashed, their session record still there, is no one."""
    bob = world["bob"]
    auth.login(bob)
    assert client.get("/account/").status_code == 200
    stmt = without_trash(select(User.id).where(User.id == bob.id))
    assert db.session.scalar(stmt) == bob.id
    db.session.execute(update(User).where(User.id == bob.id).values(deleted_at=utcnow()))
    db.session.commit()
    assert db.session.scalar(stmt) is None
    # The criteria are part of the statement: WITH_TRASHED cannot lift them.
    assert db.session.scalar(stmt.execution_options(**WITH_TRASHED)) is None
    # A statement that opted in before is left as it is (a list of the trash).
    seeing = select(User.id).where(User.id == bob.id).execution_options(**WITH_TRASHED)
    assert without_trash(seeing) is seeing
    assert db.session.scalar(without_trash(seeing)) == bob.id
    response = client.get("/account/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/login"


def test_a_trashed_user_cannot_reset_their_password(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    from webapp.auth.tokens import make_reset_token

    gone = world["gone"]
    token = make_reset_token(gone)
    known = client.post("/auth/forgot", data={"email": f"{MARK}@example.com"})
    unknown = client.post("/auth/forgot", data={"email": "nobody-here@example.com"})
    assert known.status_code == unknown.status_code
    assert known.headers.get("Location") == unknown.headers.get("Location")
    page = client.get(f"/auth/reset/{token}")
    assert page.status_code in {302, 404} or "invalid" in page.get_data(as_text=True).lower()
    hashed = gone.hashed_password
    client.post(
        f"/auth/reset/{token}",
        data={"password": "a-brand-new-passphrase", "confirm": "a-brand-new-passphrase"},
    )
    assert reread(User, gone.id).hashed_password == hashed


def test_names_stay_taken_while_in_the_trash(client: FlaskClient, world: dict[str, Any]) -> None:
    users = UserRepository(db.session)
    assert users.email_taken(f"{MARK}@example.com")
    assert users.username_taken(MARK.upper())
    response = client.post(
        "/auth/register",
        data={
            "email": f"{MARK}@example.com",
            "username": MARK,
            "password": "a-long-enough-passphrase",
            "confirm": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 422
    assert count_all(User, User.username == MARK) == 1


def test_deleting_forever_erases_with_the_users_content(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    auth.login(world["admin"])
    gone = world["gone"]
    ids = {name: world[name].id for name in ("gone_item", "gone_post", "trashed_item")}
    confirm = client.get(
        "/admin/trash/bulk", query_string={"bulk": "purge", "kind": "users", "ids": gone.id}
    ).get_data(as_text=True)
    assert "cannot be undone" in confirm and "1 item and 1 post" in confirm
    client.post("/admin/trash/bulk", data={"bulk": "purge", "kind": "users", "ids": gone.id})
    assert reread(User, gone.id) is None
    assert reread(Item, ids["gone_item"]) is None
    assert reread(Post, ids["gone_post"]) is None
    assert reread(Item, ids["trashed_item"]) is not None  # alice's: not chosen
    assert db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "admin.user.delete_forever")
    )


def test_purge_erases_only_what_is_older_than_the_retention(
    app: Flask, runner: FlaskCliRunner, world: dict[str, Any]
) -> None:
    alice = world["alice"]
    ids = {name: world[name].id for name in ("trashed_item", "item")}
    old = utcnow() - timedelta(days=app.config["TRASH_RETENTION_DAYS"] + 1)
    old_item = ItemFactory(owner=alice, title="Long gone")
    trashed(old_item, alice, old)
    db.session.commit()
    old_id = old_item.id
    result = runner.invoke(args=["trash", "purge"])
    assert result.exit_code == 0, result.output
    assert "Erased 1 items, 0 posts and 0 users" in result.output
    assert reread(Item, old_id) is None
    assert reread(Item, ids["trashed_item"]) is not None  # recent: kept
    assert reread(Item, ids["item"]) is not None  # live: untouched

    result = runner.invoke(args=["trash", "purge", "--days", "0"])
    assert result.exit_code == 0, result.output
    assert count_all(Item, Item.deleted_at.is_not(None)) == 0
    assert count_all(User, User.deleted_at.is_not(None)) == 0
    assert count_all(User) == 3  # alice, bob, root
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "trash.purge"))
    assert event is not None and event.actor_name == "command line"


def test_purge_works_in_batches(
    app: Flask, runner: FlaskCliRunner, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("webapp.repositories.trash.TRASH_BATCH", 2)
    alice = world["alice"]
    for n in range(5):
        trashed(ItemFactory(owner=alice, title=f"Aged {n}"), alice, utcnow() - timedelta(days=99))
    db.session.commit()
    result = runner.invoke(args=["trash", "purge"])
    assert result.exit_code == 0, result.output
    assert "Erased 5 items" in result.output
    assert count_all(Item, Item.title.startswith("Aged ")) == 0


def test_self_deletion_still_erases_at_once(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    alice = world["alice"]
    alice_id, trashed_id = alice.id, world["trashed_item"].id
    auth.login(alice)
    client.post("/account/delete", data={"password": PASSWORD, "confirm": "y"})
    assert reread(User, alice_id) is None
    assert reread(Item, trashed_id) is None  # her trash goes with her


def test_admin_bulk_delete_moves_rows_to_the_trash(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    auth.login(world["admin"])
    bob = world["bob"]
    bobs = ItemFactory(owner=bob, title="Bob's kettle")
    db.session.commit()
    client.post("/admin/users/bulk", data={"bulk": "delete", "ids": bob.id})
    user = reread(User, bob.id)
    assert user is not None and user.deleted_at is not None
    assert reread(Item, bobs.id).deleted_at == user.deleted_at
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "admin.user.trash"))


def test_a_list_with_a_trashed_row_keeps_its_size_exact(
    client: FlaskClient, auth: AuthActions, world: dict[str, Any]
) -> None:
    """The keyset list of the trash pages, too: a search there counts trashed rows only."""
    auth.login(world["admin"])
    page = client.get(f"/admin/trash?kind=items&q={MARK}").get_data(as_text=True)
    assert "2 trashed items match the filters" in page
    assert urlsplit("/admin/trash").path == "/admin/trash"
