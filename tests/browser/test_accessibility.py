"""axe-core audits in Chromium: every page, in each state it can be in, has no serious or
critical violations.

The states: lists empty, on one page, and on the first, a middle and the last of many pages;
every form sent back with its errors (and the edit forms with an edit conflict); the error
pages. ``test_every_page_is_audited`` checks that each page of the app is in one of the lists
below, so a new page cannot go unaudited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select, update
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.browser.conftest import LiveServer, sign_in
from tests.conftest import BASE_TEST_CONFIG
from tests.factories import (
    ItemFactory,
    OutboxMessageFactory,
    PostFactory,
    TagFactory,
    UserFactory,
)
from webapp import create_app
from webapp.auth.tokens import make_reset_token
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import Item, Post, User
from webapp.repositories import AuditRepository

BLOCKING = {"serious", "critical"}

# Pages with "{item}", "{post}", "{member}" and "{tag}" for the ids of the site's rows (and
# "{reset_token}" for a password-reset link of olivia's).
PUBLIC_PAGES = [
    "/",
    "/auth/login",
    "/auth/register",
    "/auth/forgot",
    "/auth/reset/{reset_token}",
    "/posts/",
    "/posts/{post}",
    "/tags/",
    "/tags/garden",
    "/users/olivia",
    "/no-such-page",
]
MEMBER_PAGES = [
    "/items/",
    "/items/new",
    "/items/{item}",
    "/items/{item}/edit",
    "/items/{item}/delete",
    "/posts/new",
    "/posts/{post}/edit",
    "/posts/{post}/delete",
    "/account/",
    "/account/edit",
    "/account/password",
    "/account/delete",
    "/account/trash",
    "/account/trash?kind=posts",
    "/account/trash/bulk?bulk=purge&kind=items&ids={trashed_item}",
]
ADMIN_PAGES = [
    "/admin/",
    "/admin/users",
    "/admin/users/new",
    "/admin/users/{member}",
    "/admin/users/{member}/delete",
    "/admin/users/{member}/history",
    "/admin/items",
    "/admin/items/{item}",
    "/admin/items/{item}/delete",
    "/admin/items/{item}/history",
    "/admin/posts",
    "/admin/posts/{post}",
    "/admin/posts/{post}/delete",
    "/admin/posts/{post}/history",
    "/admin/tags",
    "/admin/tags/{tag}",
    "/admin/tags/{tag}/delete",
    "/admin/audit",
    "/admin/mail",
    "/admin/users/bulk?bulk=deactivate&scope=all",
    "/admin/items/bulk?bulk=delete&scope=all",
    "/admin/posts/bulk?bulk=delete&scope=all",
    "/admin/tags/bulk?bulk=delete&scope=all",
    "/admin/users/import",
    "/admin/items/import",
    "/admin/trash",
    "/admin/trash?kind=posts",
    "/admin/trash?kind=users",
    "/admin/trash/bulk?bulk=restore&kind=items&ids={trashed_item}",
    "/admin/trash/bulk?bulk=purge&kind=users&ids={trashed_user}",
]
# Numbered lists (public, and my items): page 1, a middle page and the last, of many.
NUMBERED_LISTS = ["/posts/", "/tags/", "/tags/garden", "/users/olivia", "/items/"]
# The admin's lists (keyset pages): the first, the next one (a middle page) and the last.
ADMIN_LISTS = [
    "/admin/users",
    "/admin/items",
    "/admin/posts",
    "/admin/tags",
    "/admin/audit",
    "/admin/mail",
]
# Lists with nothing to show: an empty site, or a search that matches nothing.
EMPTY_PAGES = [
    "/",
    "/posts/",
    "/posts/?q=nothing-like-this",
    "/posts/?tag=nothing-like-this",
    "/tags/",
    "/users/olivia",
    "/items/",
    "/items/?q=nothing-like-this",
    "/admin/",
    "/admin/users?q=nobody-like-this",
    "/admin/items",
    "/admin/posts",
    "/admin/tags",
    "/admin/audit",
    "/admin/mail",
    "/admin/trash",
    "/admin/trash?kind=users&q=nobody-like-this",
    "/account/trash",
]
# Forms sent back with their errors: (page, who is signed in: None, "olivia" or "mallory").
FORM_PAGES = [
    ("/auth/login", None),
    ("/auth/register", None),
    ("/auth/forgot", None),
    ("/auth/reset/{reset_token}", None),
    ("/items/new", "olivia"),
    ("/items/{item}/edit", "olivia"),
    ("/posts/new", "olivia"),
    ("/posts/{post}/edit", "olivia"),
    ("/account/edit", "olivia"),
    ("/account/password", "olivia"),
    ("/account/delete", "olivia"),
    ("/admin/users/new", "olivia"),
    ("/admin/users/{member}", "olivia"),
    ("/admin/items/{item}", "olivia"),
    ("/admin/posts/{post}", "olivia"),
    ("/admin/tags/{tag}", "olivia"),
]
# Import pages, each in its states: sent without a file (422), a preview with errors (422) and
# a clean preview (see ``test_import_pages_pass_axe``). A file input is not text, so the
# emptied-form audit above cannot reach them.
IMPORT_PAGES = {
    "/admin/users/import": (
        b"id,email,username,active,admin,created_at,email_confirmed_at,last_login_at\n"
        b",new@example.com,newbie,true,false,,,\n",
        b",not-an-email,newbie,true,false,,,\n,'=cmd@example.com,x y,true,false,,,\n",
    ),
    "/admin/items/import": (
        b"id,title,description,owner,created_at,updated_at\n,Lamp,'=1+1,olivia,,\n",
        b",,,nobody,,\n",
    ),
}
# Edit forms shown again after someone else saved the row (409).
CONFLICT_PAGES = ["/items/{item}/edit", "/posts/{post}/edit"]
# Error pages the site draws, each reached as a visitor would (see ``open_error_page``).
ERROR_PAGES = [404, 403, 405, 400, 413]
# Pages that are not HTML or never shown: files, probes, and links that only redirect.
NOT_PAGES = {
    "static",
    "main.healthz",
    "main.readyz",
    "account.export",
    "account.export_items",
    *(f"admin.{name}_export" for name in ("users", "items", "posts", "tags", "audit", "mail")),
    "auth.confirm",  # an emailed link: it confirms and redirects
}
# Audited in each of their states, errors included (off, set-up, codes, on; the code page with
# a wrong code; the sessions list; the recent sign-in page), by the journeys that reach them
# in tests/browser/test_two_factor.py: they need a secret or a pending sign-in to show.
AUDITED_IN_JOURNEYS = {
    "account.two_factor_page",
    "account.recovery_codes",
    "account.sessions",
    "auth.two_factor",
    "auth.reauthenticate",
}

# Where a form's text goes: emptied before it is sent, so every required field complains.
TEXT_INPUTS = (
    "input[type=text], input[type=email], input[type=password], input:not([type]), textarea"
)


def audit(page: Any) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]


@dataclass
class Site:
    """The served app and the ids of the rows the pages show."""

    server: LiveServer
    ids: dict[str, Any]

    def __call__(self, path: str) -> str:
        return self.server(path.format(**self.ids))


def _site(live_server: LiveServer, **ids: Any) -> Site:
    with live_server.app.app_context():
        olivia = db.session.scalars(select(User).filter_by(username="olivia")).one()
        ids["reset_token"] = make_reset_token(olivia)
    return Site(live_server, ids)


@pytest.fixture
def site(live_server: LiveServer) -> Site:
    """Every list on one page: an author (an admin) with an item and a tagged post, and a
    member, mallory, who is no admin."""
    with live_server.app.app_context():
        owner = UserFactory(username="olivia", email="olivia@example.com", is_admin=True)
        member = UserFactory(username="mallory", email="mallory@example.com")
        item = ItemFactory(owner=owner, title="Desk lamp")
        tag = TagFactory(name="garden")
        post = PostFactory(author=owner, title="Tomatoes", tags=[tag])
        # A history with a long text's word diff and an entry to restore.
        for before, after in (("Lamp", "Desk lamp"), ("a " * 50, "a " * 49 + "b")):
            field = "title" if before == "Lamp" else "description"
            AuditRepository(db.session).record(
                "admin.item.update",
                actor=owner,
                target_type="item",
                target_id=item.id,
                before={field: before},
                after={field: after},
            )
        # The trash: an item and a post olivia deleted, and a user an admin deleted.
        gone = UserFactory(username="trudy", email="trudy@example.com")
        trashed_item = ItemFactory(owner=owner, title="Old kettle")
        trashed_post = PostFactory(author=owner, title="Winter plans", tags=[tag])
        for row in (gone, trashed_item, trashed_post):
            row.deleted_at, row.deleted_by_id = utcnow(), owner.id
        db.session.commit()
        ids = {
            "item": item.id,
            "post": post.id,
            "tag": tag.id,
            "member": member.id,
            "trashed_item": trashed_item.id,
            "trashed_user": gone.id,
        }
    return _site(live_server, **ids)


@pytest.fixture
def empty_site(live_server: LiveServer) -> Site:
    """Nothing but the admin who signs in: every list is empty."""
    with live_server.app.app_context():
        UserFactory(username="olivia", email="olivia@example.com", is_admin=True)
        db.session.commit()
    return _site(live_server)


ROWS = 45  # three pages of every list but the tags (60 a page: see TAG_ROWS) and the profile
TAG_ROWS = 130  # three pages of tags


@pytest.fixture
def crowded_site(live_server: LiveServer) -> Site:
    """Three or more pages of every list."""
    with live_server.app.app_context():
        owner = UserFactory(username="olivia", email="olivia@example.com", is_admin=True)
        garden = TagFactory(name="garden")
        tags = [garden, *(TagFactory(name=f"tag-{n:03}") for n in range(TAG_ROWS - 1))]
        audit_log = AuditRepository(db.session)
        for n in range(ROWS):
            ItemFactory(owner=owner, title=f"Item {n:02}")
            PostFactory(author=owner, title=f"Post {n:02}", tags=[garden, tags[n + 1]])
            UserFactory(username=f"member{n:02}", email=f"member{n:02}@example.com")
            audit_log.record(f"admin.test.{n:02}", actor=owner, target_type="user")
            OutboxMessageFactory(recipient=f"reader{n:02}@example.com")
        db.session.commit()
    return _site(live_server)


def check(page: Any, problems: dict[str, list[str]], label: str) -> None:
    """Audit the page the browser shows; keep what was found under ``label``."""
    found = audit(page)
    if found:
        problems[label] = found


def open_page(page: Any, url: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, (url, response and response.status)


# -- One page of everything ---------------------------------------------------------------------


def test_public_pages_pass_axe(site: Site, page: Any) -> None:
    problems: dict[str, list[str]] = {}
    for path in PUBLIC_PAGES:
        page.goto(site(path))
        check(page, problems, path)
    assert problems == {}


def test_signed_in_and_admin_pages_pass_axe(site: Site, page: Any) -> None:
    sign_in(page, site.server, "olivia")
    problems: dict[str, list[str]] = {}
    for path in MEMBER_PAGES + ADMIN_PAGES:
        open_page(page, site(path))
        check(page, problems, path)
    assert problems == {}


# -- Empty, and many pages ----------------------------------------------------------------------


def test_empty_lists_pass_axe(empty_site: Site, page: Any) -> None:
    sign_in(page, empty_site.server, "olivia")
    problems: dict[str, list[str]] = {}
    for path in EMPTY_PAGES:
        open_page(page, empty_site(path))
        if path != "/admin/":
            assert page.locator(".empty").count() == 1, path
        check(page, problems, path)
    assert problems == {}


def pagination_state(page: Any) -> tuple[bool, bool]:
    """(a previous page is linked, a next page is linked), from the page's pagination."""
    nav = page.get_by_role("navigation", name="Pagination")
    assert nav.count() == 1, page.url
    has_prev = nav.locator("a[rel=prev]").count() == 1
    has_next = nav.locator("a[rel=next]").count() == 1
    return has_prev, has_next


def test_first_middle_and_last_of_many_pages_pass_axe(crowded_site: Site, page: Any) -> None:
    sign_in(page, crowded_site.server, "olivia")
    problems: dict[str, list[str]] = {}
    for path in NUMBERED_LISTS:
        open_page(page, crowded_site(path))
        last = int(page.locator(".pagination li").last.inner_text())
        assert last >= 3, path
        for number, expected in ((1, (False, True)), (2, (True, True)), (last, (True, False))):
            url = f"{path}?page={number}"
            open_page(page, crowded_site(url))
            assert pagination_state(page) == expected, url
            check(page, problems, url)
    pagination = page.get_by_role("navigation", name="Pagination")
    for path in ADMIN_LISTS:
        open_page(page, crowded_site(path))
        assert pagination_state(page) == (False, True), path
        check(page, problems, f"{path} (first)")
        pagination.locator("a[rel=next]").click()
        page.wait_for_load_state()
        assert pagination_state(page) == (True, True), page.url
        check(page, problems, f"{path} (middle)")
        pagination.get_by_role("link", name="Last").click()
        page.wait_for_load_state()
        assert pagination_state(page) == (True, False), page.url
        check(page, problems, f"{path} (last)")
    assert problems == {}


# -- Forms with their errors shown --------------------------------------------------------------


def main_form(page: Any) -> Any:
    """The page's first form that takes text (not the search box, not the sign-out button)."""
    return page.locator("main form[method=post]").filter(has=page.locator(TEXT_INPUTS)).first


def send_emptied(page: Any) -> Any:
    """Empty the text fields of the page's main form and send it, skipping the browser's own
    checks (``novalidate``) so that the server's errors are the ones shown."""
    form = main_form(page)
    form.evaluate("form => form.noValidate = true")
    for field in form.locator(TEXT_INPUTS).all():
        if field.is_visible():
            field.fill("")
    with page.expect_navigation() as sent:
        form.locator("[type=submit]").first.click()
    return sent.value


def test_forms_with_errors_pass_axe(site: Site, browser: Any) -> None:
    problems: dict[str, list[str]] = {}
    for path, who in FORM_PAGES:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            if who is not None:
                sign_in(page, site.server, who)
            open_page(page, site(path))
            response = send_emptied(page)
            assert response.status == 422, (path, response.status)
            assert page.locator(".field-error").count() >= 1, path
            check(page, problems, path)
        finally:
            context.close()
    assert problems == {}


def test_edit_conflicts_pass_axe(site: Site, page: Any) -> None:
    sign_in(page, site.server, "olivia")
    problems: dict[str, list[str]] = {}
    for path, model in zip(CONFLICT_PAGES, (Item, Post), strict=True):
        open_page(page, site(path))
        page.get_by_label("Title").fill("Mine")
        with site.server.app.app_context():  # someone else saves first
            db.session.execute(update(model).values(title="Theirs", version=model.version + 1))
            db.session.commit()
        with page.expect_navigation() as sent:
            main_form(page).locator("[type=submit]").first.click()
        assert sent.value.status == 409, path
        check(page, problems, f"{path} (conflict)")
    assert problems == {}


# -- Error pages --------------------------------------------------------------------------------


def open_error_page(page: Any, site: Site, code: int) -> None:
    """Reach the error page ``code`` as a visitor would."""
    if code == 404:
        open_page(page, site("/no-such-page"), 404)
    elif code == 403:  # a member who is no admin, at the admin console
        sign_in(page, site.server, "mallory")
        open_page(page, site("/admin/"), 403)
    elif code == 405:  # sign-out only takes a POST
        open_page(page, site("/auth/logout"), 405)
    elif code == 400:  # a form sent without its CSRF token
        open_page(page, site("/auth/login"))
        page.locator("input[name=csrf_token]").evaluate("input => input.remove()")
        with page.expect_navigation() as sent:
            page.get_by_role("button", name="Sign in").click()
        assert sent.value.status == 400
    elif code == 413:  # more than the site accepts
        sign_in(page, site.server, "olivia")
        open_page(page, site("/items/new"))
        size = site.server.app.config["MAX_CONTENT_LENGTH"] + 1
        page.get_by_label("Description").evaluate(f"field => field.value = 'x'.repeat({size})")
        main_form(page).evaluate("form => form.noValidate = true")
        with page.expect_navigation() as sent:
            page.get_by_role("button", name="Save item").click()
        assert sent.value.status == 413
    else:
        raise AssertionError(f"no way to reach a {code} page here")


@pytest.mark.parametrize("code", ERROR_PAGES)
def test_error_pages_pass_axe(site: Site, page: Any, code: int) -> None:
    open_error_page(page, site, code)
    assert page.locator(".error-page").count() == 1
    assert audit(page) == []


# -- Imports ----------------------------------------------------------------------------------


def test_import_pages_pass_axe(site: Site, page: Any, tmp_path: Any) -> None:
    sign_in(page, site.server, "olivia")
    problems: dict[str, list[str]] = {}
    for path, (clean, bad_rows) in IMPORT_PAGES.items():
        states = {"without a file": None, "with errors": clean + bad_rows, "clean": clean}
        for state, content in states.items():
            open_page(page, site(path))
            form = page.locator("main form[enctype='multipart/form-data']")
            if content is not None:
                upload = tmp_path / "import.csv"
                upload.write_bytes(content)
                form.get_by_label("CSV file", exact=True).set_input_files(str(upload))
            form.evaluate("form => form.noValidate = true")
            with page.expect_navigation() as sent:
                form.get_by_role("button", name="Check the file").click()
            assert sent.value.status == (200 if state == "clean" else 422), (path, state)
            check(page, problems, f"{path} ({state})")
    assert problems == {}


# -- Coverage -----------------------------------------------------------------------------------


def test_every_page_is_audited() -> None:
    """Each page of the app is in one of the lists above (or says why it is not a page)."""
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    adapter = app.url_map.bind("localhost")
    ids = {"item": 1, "post": 1, "member": 1, "tag": 1, "reset_token": "token"}
    ids |= {"trashed_item": 1, "trashed_user": 1}
    paths = [
        *PUBLIC_PAGES,
        *MEMBER_PAGES,
        *ADMIN_PAGES,
        *NUMBERED_LISTS,
        *ADMIN_LISTS,
        *EMPTY_PAGES,
        *(path for path, _ in FORM_PAGES),
        *CONFLICT_PAGES,
    ]
    audited = set()
    for path in paths:
        try:
            endpoint, _ = adapter.match(urlsplit(path.format(**ids)).path, method="GET")
        except (NotFound, MethodNotAllowed):
            continue  # the 404 page
        audited.add(endpoint)
    pages = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or set())}
    assert sorted(pages - audited - NOT_PAGES - AUDITED_IN_JOURNEYS) == []
    # Every form page is also audited with its errors shown.
    post_pages = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if {"GET", "POST"} <= (rule.methods or set())
    }
    with_errors = set()
    for path in [*(path for path, _ in FORM_PAGES), *IMPORT_PAGES]:
        endpoint, _ = adapter.match(urlsplit(path.format(**ids)).path, method="GET")
        with_errors.add(endpoint)
    confirm_only = {endpoint for endpoint in post_pages if endpoint.endswith(("_delete", "_bulk"))}
    confirm_only |= {"items.delete", "posts.delete"}
    assert sorted(post_pages - with_errors - confirm_only - AUDITED_IN_JOURNEYS) == []
