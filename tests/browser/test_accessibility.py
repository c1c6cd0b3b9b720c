"""axe-core audits of the main pages in Chromium: no serious or critical violations."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import LiveServer, sign_in
from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from webapp.extensions import db

BLOCKING = {"serious", "critical"}
PUBLIC_PAGES = [
    "/",
    "/auth/login",
    "/auth/register",
    "/auth/forgot",
    "/posts/",
    "/posts/1",
    "/tags/",
    "/tags/garden",
    "/users/olivia",
    "/no-such-page",
]
MEMBER_PAGES = [
    "/items/",
    "/items/new",
    "/items/1",
    "/items/1/edit",
    "/posts/new",
    "/posts/1/edit",
    "/account/",
    "/account/password",
]
ADMIN_PAGES = [
    "/admin/",
    "/admin/users",
    "/admin/users/1",
    "/admin/items",
    "/admin/posts",
    "/admin/tags",
    "/admin/audit",
]


def audit(page: Any) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.fixture
def site(live_server: LiveServer) -> LiveServer:
    """An author with an item and a tagged post, and an admin, in the served database."""
    with live_server.app.app_context():
        owner = UserFactory(username="olivia", email="olivia@example.com", is_admin=True)
        ItemFactory(owner=owner, title="Desk lamp")
        PostFactory(author=owner, title="Tomatoes", tags=[TagFactory(name="garden")])
        db.session.commit()
    return live_server


def test_public_pages_pass_axe(site: LiveServer, page: Any) -> None:
    problems = {}
    for path in PUBLIC_PAGES:
        page.goto(site(path))
        problems[path] = audit(page)
    assert {path: found for path, found in problems.items() if found} == {}


def test_signed_in_and_admin_pages_pass_axe(site: LiveServer, page: Any) -> None:
    sign_in(page, site, "olivia")
    problems = {}
    for path in MEMBER_PAGES + ADMIN_PAGES:
        response = page.goto(site(path))
        assert response is not None and response.status == 200, path
        problems[path] = audit(page)
    assert {path: found for path, found in problems.items() if found} == {}
