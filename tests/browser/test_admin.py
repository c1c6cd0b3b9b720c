"""Admin journeys in Chromium: search and deactivate, bulk across pages, CSV download."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.browser.conftest import LiveServer, screenshot, sign_in
from tests.factories import ItemFactory, OutboxMessageFactory, PostFactory, TagFactory, UserFactory
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import User


def make_rows(live_server: LiveServer, build: Any) -> None:
    with live_server.app.app_context():
        build()
        db.session.commit()


def test_an_admin_deactivates_a_user_whose_session_ends_on_the_next_click(
    live_server: LiveServer, page: Any, browser: Any, backend: str
) -> None:
    def build() -> None:
        UserFactory(username="root", email="root@example.com", is_admin=True)
        UserFactory(username="victor", email="victor@example.com")
        UserFactory(username="vicky", email="vicky@example.com")

    make_rows(live_server, build)
    their_context = browser.new_context()
    theirs = their_context.new_page()
    try:
        sign_in(theirs, live_server, "victor")
        assert theirs.get_by_role("button", name="Sign out").is_visible()

        sign_in(page, live_server, "root")
        page.get_by_role("link", name="Admin").click()
        page.get_by_role("navigation", name="Admin").get_by_role("link", name="Users").click()
        page.get_by_label("Search email or username").fill("victor")
        page.get_by_role("button", name="Search", exact=True).click()
        assert "q=victor" in page.url
        rows = page.locator("table.admin-table tbody tr")
        assert rows.count() == 1
        screenshot(page, f"admin-users-search-{backend}")
        rows.first.get_by_role("link", name="victor", exact=True).click()
        page.get_by_label("Active (may sign in)").uncheck()
        page.get_by_role("button", name="Save changes").click()
        assert page.locator(".flash-success").inner_text() == "Saved victor."
        assert not page.get_by_label("Active (may sign in)").is_checked()
        screenshot(page, f"admin-user-edit-{backend}")

        # Their very next click finds them signed out.
        theirs.get_by_role("link", name="Home").click()
        assert theirs.get_by_role("link", name="Sign in", exact=True).is_visible()
        assert theirs.get_by_role("button", name="Sign out").count() == 0
    finally:
        their_context.close()


def test_bulk_deactivate_all_matching_rows_across_pages(
    live_server: LiveServer, page: Any, backend: str
) -> None:
    def build() -> None:
        UserFactory(username="root", email="root@example.com", is_admin=True)
        for n in range(45):
            UserFactory(username=f"crowd{n:02d}", email=f"crowd{n:02d}@example.com")
        UserFactory(username="bystander")

    make_rows(live_server, build)
    sign_in(page, live_server, "root")
    page.goto(live_server("/admin/users?q=crowd"))
    assert page.locator("#list-summary").inner_text().startswith("45 users match the filters")
    assert page.locator("table.admin-table tbody tr").count() == 20
    page.get_by_role("link", name="Next \u203a").click()  # page 2 keeps the search
    assert "q=crowd" in page.url and "after=" in page.url

    page.get_by_label("Bulk action").select_option("deactivate")
    page.get_by_role("button", name="Apply to all 45 matching").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Deactivate 45 users?"
    screenshot(page, f"admin-bulk-confirm-{backend}")
    page.get_by_role("button", name="Deactivate 45 users").click()
    assert page.locator(".flash-success").inner_text() == "Deactivated 45 users."

    page.get_by_label("Active", exact=True).select_option("no")
    page.get_by_role("button", name="Search", exact=True).click()
    assert page.locator("#list-summary").inner_text().startswith("45 users match the filters")

    # Rows ticked on a later page, without any script: reactivate two of them.
    page.get_by_role("link", name="Next \u203a").click()
    page.get_by_label("Select user crowd24").check()
    page.get_by_label("Select user crowd23").check()
    page.get_by_label("Bulk action").select_option("activate")
    page.get_by_role("button", name="Apply to selected").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Activate 2 users?"
    page.get_by_role("button", name="Activate 2 users").click()
    assert page.locator(".flash-success").inner_text() == "Activated 2 users."

    with live_server.app.app_context():
        active = set(db.session.scalars(select(User.username).where(User.is_active.is_(True))))
    assert active == {"root", "bystander", "crowd23", "crowd24"}


def test_csv_export_downloads_the_filtered_rows(
    live_server: LiveServer, page: Any, tmp_path: Path, backend: str
) -> None:
    def build() -> None:
        root = UserFactory(username="root", email="root@example.com", is_admin=True)
        for title in ("Desk lamp", '=HYPERLINK("http://evil.example")', "Floor lamp"):
            ItemFactory(owner=root, title=f"{title} lamp" if title.startswith("=") else title)
        ItemFactory(owner=root, title="Kettle")
        PostFactory(author=root, tags=[TagFactory(name="lamps")])

    make_rows(live_server, build)
    sign_in(page, live_server, "root")
    page.goto(live_server("/admin/items?q=lamp&sort=title&dir=asc"))
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert re.fullmatch(r"items-\d{8}-\d{6}\.csv", download.suggested_filename)
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["title"] for row in rows] == [
        '\'=HYPERLINK("http://evil.example") lamp',
        "Desk lamp",
        "Floor lamp",
    ]
    assert {row["owner"] for row in rows} == {"root"}
    with live_server.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_admin_pages_look_finished_on_a_desktop_and_a_phone(
    live_server: LiveServer, page: Any, phone_page: Any, backend: str
) -> None:
    def build() -> None:
        root = UserFactory(username="root", email="root@example.com", is_admin=True)
        tag = TagFactory(name="python")
        for n in range(12):
            member = UserFactory(username=f"member{n}", is_active=n % 5 != 0)
            ItemFactory(owner=member, title=f"Camera {n}")
            PostFactory(author=member, title=f"Notes {n}", tags=[tag])
        ItemFactory(owner=root)

    make_rows(live_server, build)
    for current, kind in ((page, "desktop"), (phone_page, "phone")):
        sign_in(current, live_server, "root")
        for path, name in (
            ("/admin/", "dashboard"),
            ("/admin/users", "users"),
            ("/admin/posts", "posts"),
            ("/admin/audit", "audit"),
        ):
            response = current.goto(live_server(path))
            assert response is not None and response.status == 200
            overflow = current.evaluate(
                "document.documentElement.scrollWidth > document.documentElement.clientWidth"
            )
            assert overflow is False, f"{path} overflows on a {kind}"
            screenshot(current, f"admin-{name}-{kind}-{backend}")
    # One chart is shown on each screen (a narrow drawing on phones), with its numbers beside.
    for current, view_box in ((page, "0 0 720 280"), (phone_page, "0 0 360 260")):
        current.goto(live_server("/admin/"))
        chart = current.get_by_role("img", name="Sign-ups, new items and new posts per day")
        assert chart.count() == 1
        assert chart.get_attribute("viewBox") == view_box
        assert current.locator("table caption", has_text="New rows per day").count() == 1


def test_the_outbox_page_empty_with_rows_and_a_failed_message_retried(
    live_server: LiveServer, page: Any, phone_page: Any, backend: str
) -> None:
    make_rows(
        live_server, lambda: UserFactory(username="root", email="root@example.com", is_admin=True)
    )
    sign_in(page, live_server, "root")
    page.goto(live_server("/admin/mail"))
    assert page.get_by_text("No messages yet").is_visible()
    screenshot(page, f"admin-mail-empty-{backend}")

    def build() -> None:
        for n in range(6):
            OutboxMessageFactory(
                recipient=f"reader{n}@example.com", status="sent", attempts=1, sent_at=utcnow()
            )
        OutboxMessageFactory(recipient="waiting@example.com")
        OutboxMessageFactory(
            recipient="slow@example.com",
            attempts=2,
            last_error="ConnectionRefusedError: [Errno 111] Connection refused",
        )

    make_rows(live_server, build)
    page.goto(live_server("/admin/mail"))
    assert page.locator("table.admin-table tbody tr").count() == 8
    screenshot(page, f"admin-mail-rows-{backend}")

    make_rows(
        live_server,
        lambda: OutboxMessageFactory(
            recipient="bounced@example.com",
            subject="Reset your password",
            status="failed",
            attempts=8,
            last_error="550 5.1.1 <bounced@example.com>: Recipient address rejected",
        ),
    )
    for current, kind in ((page, "desktop"), (phone_page, "phone")):
        if kind == "phone":
            sign_in(current, live_server, "root")
        current.goto(live_server("/admin/mail?status=failed"))
        overflow = current.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert overflow is False, f"/admin/mail overflows on a {kind}"
        screenshot(current, f"admin-mail-failed-{kind}-{backend}")
    page.get_by_role("button", name="Retry the message to bounced@example.com").click()
    assert "will be sent again" in page.locator(".flash-success").inner_text()
    assert page.get_by_text("No messages match these filters").is_visible()
    page.goto(live_server("/admin/"))
    screenshot(page, f"admin-dashboard-with-mail-{backend}")


GREEN = (
    "Brass, with a green shade, a heavy round base and a switch on the cord; "
    "bought at the Saturday market"
)


def test_an_admin_reads_an_items_history_and_restores_an_earlier_title(
    live_server: LiveServer, page: Any, backend: str
) -> None:
    def build() -> None:
        UserFactory(username="root", email="root@example.com", is_admin=True)
        owner = UserFactory(username="maria", email="maria@example.com")
        ItemFactory(
            owner=owner,
            title="Reading lamp",
            description=GREEN,
        )

    make_rows(live_server, build)
    sign_in(page, live_server, "root")
    page.goto(live_server("/admin/items"))
    page.get_by_role("link", name="Reading lamp").click()
    page.get_by_role("link", name="History").click()
    assert page.locator(".empty").inner_text() == "No change of this item has been recorded."
    screenshot(page, f"admin-history-empty-{backend}")

    page.get_by_role("link", name="Back to the item").click()
    for title, description in (
        (
            "Desk lamp",
            GREEN,
        ),
        (
            "Desk lamp",
            GREEN.replace("a green shade", "a white paper shade"),
        ),
    ):
        page.get_by_label("Title").fill(title)
        page.get_by_label("Description").fill(description)
        page.get_by_role("button", name="Save item").click()
        assert page.locator(".flash-success").inner_text() == "Item saved."
    page.get_by_role("link", name="History").click()
    entries = page.locator("li.history-entry")
    assert entries.count() == 2
    assert entries.first.locator("ins").first.inner_text() == "white paper"
    screenshot(page, f"admin-history-{backend}")

    entries.nth(1).get_by_role("button", name="Restore these values").click()
    assert page.locator(".flash-success").inner_text() == "Restored the values this change left."
    assert (
        page.locator("li.history-entry")
        .first.locator("h2")
        .inner_text()
        .startswith("Restored earlier values")
    )
    screenshot(page, f"admin-history-restored-{backend}")
    page.get_by_role("link", name="Back to the item").click()
    assert page.get_by_label("Description").input_value() == GREEN


def test_an_admin_imports_a_file_fixes_the_row_it_names_and_imports_it(
    live_server: LiveServer, page: Any, backend: str, tmp_path: Path
) -> None:
    make_rows(
        live_server, lambda: UserFactory(username="root", email="root@example.com", is_admin=True)
    )
    header = "id,email,username,active,admin,created_at,email_confirmed_at,last_login_at"
    good = [f",person{n}@example.com,person{n},true,false,,," for n in range(24)]
    rows = [*good[:6], ",not-an-email,broken,true,false,,,", *good[6:]]
    people = tmp_path / "people.csv"
    people.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")

    sign_in(page, live_server, "root")
    page.goto(live_server("/admin/users"))
    page.get_by_role("link", name="Import CSV").click()
    assert page.get_by_role("heading", name="Import users").is_visible()
    screenshot(page, f"admin-import-form-{backend}")
    page.get_by_label("CSV file", exact=True).set_input_files(str(people))
    page.get_by_role("button", name="Check the file").click()
    errors = page.locator("#import-errors tbody tr")
    assert errors.count() == 1
    assert errors.first.locator("td").all_inner_texts()[:2] == ["8", "email"]  # line 8: row 7
    assert page.get_by_role("button", name=re.compile("^Import")).count() == 0
    screenshot(page, f"admin-import-errors-{backend}")

    # Fixed in the file, chosen again: the preview is clean, and Import writes every row.
    people.write_text(
        "\n".join([header, *rows]).replace("not-an-email", "fixed@example.com") + "\n",
        encoding="utf-8",
    )
    page.get_by_role("link", name="Choose another file").click()
    page.get_by_label("CSV file", exact=True).set_input_files(str(people))
    page.get_by_role("button", name="Check the file").click()
    assert page.locator("#import-errors").count() == 0
    assert page.locator("#import-rows tbody tr").count() == 20
    screenshot(page, f"admin-import-preview-{backend}")
    page.get_by_role("button", name="Import 25 users").click()
    page.wait_for_url(live_server("/admin/users"))
    assert "Imported 25 users from people.csv" in page.locator(".flash-success").inner_text()
    screenshot(page, f"admin-import-done-{backend}")
    with live_server.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 26
        assert db.session.scalar(
            select(User.username).where(User.email == "fixed@example.com")
        ) == ("broken")
