"""Browser journeys through items, posts and tags, in headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.browser.conftest import LiveServer, screenshot, sign_in
from tests.factories import PostFactory, TagFactory, UserFactory
from webapp.extensions import db
from webapp.models import Item, Post, User


@pytest.fixture
def member(live_server: LiveServer) -> str:
    """A user in the served app's database; returns the username."""
    with live_server.app.app_context():
        UserFactory(username="alice", email="alice@example.com")
        db.session.commit()
    return "alice"


def flash_text(page: Any) -> str:
    return str(page.locator(".flashes").inner_text())


def fits_the_screen(page: Any) -> bool:
    return not page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def test_create_edit_and_delete_an_item(
    live_server: LiveServer, page: Any, member: str, backend: str
) -> None:
    sign_in(page, live_server, member)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My items").click()
    assert "No items yet" in page.locator(".empty").inner_text()
    screenshot(page, f"items-empty-{backend}")
    page.get_by_role("link", name="create one").click()

    page.get_by_label("Title").fill("Desk lamp")
    page.get_by_label("Description").fill("Brass, with a green shade.\nBought in 2019.")
    page.get_by_role("button", name="Save item").click()
    assert "Item “Desk lamp” created." in flash_text(page)
    assert page.locator("h1").inner_text() == "Desk lamp"
    # Line breaks in the description survive to the page.
    assert page.locator(".body-text").inner_text() == "Brass, with a green shade.\nBought in 2019."
    screenshot(page, f"item-detail-{backend}")

    page.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Title").input_value() == "Desk lamp"
    page.get_by_label("Title").fill("Green desk lamp")
    page.get_by_role("button", name="Save item").click()
    assert "Item “Green desk lamp” saved." in flash_text(page)
    assert page.locator("h1").inner_text() == "Green desk lamp"

    page.get_by_role("link", name="My items").first.click()
    assert page.get_by_role("link", name="Green desk lamp").is_visible()
    screenshot(page, f"items-list-{backend}")
    page.get_by_role("link", name="Green desk lamp").click()

    page.locator(".actions").get_by_role("link", name="Delete").click()
    assert page.locator("h1").inner_text() == "Delete “Green desk lamp”?"
    screenshot(page, f"item-delete-{backend}")
    page.get_by_role("button", name="Delete item").click()
    page.wait_for_url(live_server("/items/"))
    assert "Item “Green desk lamp” moved to your trash" in flash_text(page)
    assert "No items yet" in page.locator(".empty").inner_text()
    with live_server.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Item)) == 0


def test_write_a_post_follow_its_tag_and_retag_it(
    live_server: LiveServer, page: Any, member: str, backend: str
) -> None:
    with live_server.app.app_context():
        TagFactory(name="python")
        db.session.commit()
    sign_in(page, live_server, member)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Posts").click()
    page.get_by_role("link", name="Write a post").click()

    # The tags field offers the existing tags.
    assert page.get_by_label("Tags").get_attribute("list") == "tag-suggestions"
    assert page.locator("#tag-suggestions option").evaluate_all("o => o.map(e => e.value)") == [
        "python"
    ]
    page.get_by_label("Title").fill("Tomatoes in November")
    page.get_by_label("Tags").fill("Gardening, Late Harvest")
    page.get_by_label("Body").fill("Still ripening.\n\n<b>Really.</b>")
    screenshot(page, f"post-form-{backend}")
    page.get_by_role("button", name="Publish post").click()
    assert "Post “Tomatoes in November” published." in flash_text(page)
    assert page.locator(".post-body").inner_text() == "Still ripening.\n\n<b>Really.</b>"
    screenshot(page, f"post-detail-{backend}")
    post_url = page.url

    page.get_by_role("link", name="late-harvest").click()
    page.wait_for_url(live_server("/tags/late-harvest"))
    assert page.get_by_role("link", name="Tomatoes in November").is_visible()
    screenshot(page, f"tag-page-{backend}")

    page.goto(post_url)
    page.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Tags").input_value() == "gardening, late-harvest"
    page.get_by_label("Tags").fill("gardening, autumn")
    page.get_by_role("button", name="Save post").click()
    assert "Post “Tomatoes in November” saved." in flash_text(page)

    page.goto(live_server("/tags/late-harvest"))
    assert page.get_by_role("link", name="Tomatoes in November").count() == 0
    assert "No posts carry this tag" in page.locator(".empty").inner_text()
    page.goto(live_server("/tags/autumn"))
    assert page.get_by_role("link", name="Tomatoes in November").is_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tags").click()
    assert "1 post" in page.locator(".tag-tile", has_text="autumn").inner_text()
    screenshot(page, f"tags-index-{backend}")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Posts").click()
    screenshot(page, f"posts-index-{backend}")


def test_an_edit_conflict_shows_both_versions(
    live_server: LiveServer, page: Any, member: str, backend: str
) -> None:
    with live_server.app.app_context():
        author = db.session.scalars(select(User).where(User.username == member)).one()
        post_id = PostFactory(title="Opening hours", body="Mon to Fri", author=author).id
        db.session.commit()
    sign_in(page, live_server, member)
    page.goto(live_server(f"/posts/{post_id}/edit"))
    page.get_by_label("Body").fill("Mon to Sat")
    # Meanwhile the same post is saved from another tab.
    with live_server.app.app_context():
        db.session.execute(
            update(Post)
            .where(Post.id == post_id)
            .values(body="Mon to Fri, 9 to 5", version=Post.version + 1)
        )
        db.session.commit()
    page.get_by_role("button", name="Save post").click()
    assert "This post changed since you opened it" in page.locator(".conflict h2").inner_text()
    versions = page.locator(".conflict-version")
    assert "Mon to Sat" in versions.nth(0).inner_text()
    assert "Mon to Fri, 9 to 5" in versions.nth(1).inner_text()
    assert page.get_by_label("Body").input_value() == "Mon to Sat"
    screenshot(page, f"post-conflict-{backend}")

    page.get_by_role("button", name="Save post").click()  # a deliberate overwrite
    assert "saved" in flash_text(page)
    assert page.locator(".post-body").inner_text() == "Mon to Sat"


@pytest.mark.parametrize(
    "path", ["/items/", "/items/new", "/posts/", "/posts/new", "/tags/", "/tags/long-tag"]
)
def test_content_pages_fit_a_phone(
    live_server: LiveServer, phone_page: Any, member: str, backend: str, path: str
) -> None:
    with live_server.app.app_context():
        tag = TagFactory(name="long-tag")
        author = UserFactory(username="a-rather-long-username-for-a-phone")
        for n in range(3):
            PostFactory(
                title=f"A fairly long post title that has to wrap on a small screen {n}",
                body="Word " * 80,
                author=author,
                tags=[tag, TagFactory()],
            )
        db.session.commit()
    sign_in(phone_page, live_server, member)
    phone_page.goto(live_server(path))
    assert fits_the_screen(phone_page)
    name = path.strip("/").replace("/", "-") or "home"
    screenshot(phone_page, f"phone-{name}-{backend}")
