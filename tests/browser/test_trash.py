"""The trash in Chromium: an admin deletes a post, finds it in the trash and restores it."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import LiveServer, screenshot, sign_in
from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from webapp.db.types import utcnow
from webapp.extensions import db


def test_an_admin_deletes_a_post_finds_it_in_the_trash_and_restores_it(
    live_server: LiveServer, page: Any, backend: str
) -> None:
    with live_server.app.app_context():
        UserFactory(username="root", email="root@example.com", is_admin=True)
        olivia = UserFactory(username="olivia", email="olivia@example.com")
        PostFactory(author=olivia, title="Tomato season", tags=[TagFactory(name="garden")])
        db.session.commit()

    sign_in(page, live_server, "root")
    page.goto(live_server("/admin/trash"))
    assert page.get_by_text("The trash holds no items.").is_visible()
    screenshot(page, f"admin-trash-empty-{backend}")

    page.goto(live_server("/admin/posts"))
    page.get_by_role("link", name="Tomato season").click()
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete").click()
    assert "moved to the trash" in page.locator(".flash-success").inner_text()
    page.goto(live_server("/posts/"))
    assert page.get_by_text("Tomato season").count() == 0
    page.goto(live_server("/tags/garden"))
    assert page.get_by_text("Tomato season").count() == 0

    page.get_by_role("link", name="Admin").click()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Trash").click()
    page.get_by_role("navigation", name="Kinds in the trash").get_by_role(
        "link", name="Posts"
    ).click()
    row = page.locator("table.admin-table tbody tr", has_text="Tomato season")
    assert row.count() == 1 and "root" in row.inner_text() and "olivia" in row.inner_text()
    screenshot(page, f"admin-trash-posts-{backend}")
    row.get_by_role("checkbox").check()
    page.get_by_label("Bulk action").select_option("restore")
    page.get_by_role("button", name="Apply to selected").click()
    assert page.get_by_role("heading", name="Restore 1 trashed post?").is_visible()
    page.get_by_role("button", name="Restore 1 trashed post").click()
    assert "Restored 1 trashed post." in page.locator(".flash-success").inner_text()
    assert page.get_by_text("The trash holds no posts.").is_visible()

    page.goto(live_server("/posts/"))
    assert page.get_by_role("link", name="Tomato season").is_visible()


def test_screenshots_of_the_trash_pages(live_server: LiveServer, page: Any, backend: str) -> None:
    """Every kind in the admin trash, a Delete forever confirmation, and an owner's trash."""
    with live_server.app.app_context():
        root = UserFactory(username="root", email="root@example.com", is_admin=True)
        olivia = UserFactory(username="olivia", email="olivia@example.com")
        gone = UserFactory(username="trudy", email="trudy@example.com")
        rows = [
            ItemFactory(owner=olivia, title="Old kettle"),
            PostFactory(author=olivia, title="Winter plans"),
        ]
        for row in rows:
            row.deleted_at, row.deleted_by_id = utcnow(), olivia.id
        gone_item = ItemFactory(owner=gone, title="Trudy's bike")
        for row in (gone, gone_item):
            row.deleted_at, row.deleted_by_id = utcnow(), root.id
        db.session.commit()
        gone_id = gone.id

    sign_in(page, live_server, "root")
    for kind in ("items", "posts", "users"):
        page.goto(live_server(f"/admin/trash?kind={kind}"))
        assert page.locator("table.admin-table tbody tr").count() >= 1
        screenshot(page, f"admin-trash-{kind}-{backend}")
    page.goto(live_server(f"/admin/trash/bulk?bulk=purge&kind=users&ids={gone_id}"))
    assert page.get_by_text("This cannot be undone.").is_visible()
    screenshot(page, f"admin-trash-confirm-purge-{backend}")

    page.context.clear_cookies()  # root signs out; olivia signs in
    sign_in(page, live_server, "olivia")
    page.goto(live_server("/account/trash"))
    assert page.get_by_text("Old kettle").is_visible()
    screenshot(page, f"account-trash-{backend}")
