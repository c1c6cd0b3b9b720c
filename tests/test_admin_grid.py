"""The authorization grid, generated from the app's URL map.

Every rule, method and role (anonymous, an ordinary user, the owner of the rows the URL names,
an admin) is requested and its status compared with ``EXPECTED``. A route added later
without an entry here fails ``test_every_route_has_an_expectation`` (and its own grid cases),
so nobody can add a page without saying who may see it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import BASE_TEST_CONFIG
from tests.factories import (
    ItemFactory,
    OutboxMessageFactory,
    PostFactory,
    TagFactory,
    UserFactory,
)
from tests.helpers import AuthActions
from webapp import create_app
from webapp.extensions import db
from webapp.repositories import AuditRepository, SessionRepository

ROLES = ("anonymous", "user", "owner", "admin")
SIGN_IN = 302  # anonymous visitors of a protected page are sent to the sign-in page
ADMIN_ONLY = (SIGN_IN, 403, 403, 200)
INVALID = 422  # an empty form comes back with its errors: 422 Unprocessable Content
ADMIN_FORM_ERROR = (SIGN_IN, 403, 403, INVALID)
# A field left out of a submission is empty (never the row's old value), so edits fail too.
ADMIN_REDIRECT = (SIGN_IN, 403, 403, 302)  # the action is done (or refused) and redirects
EVERYONE = (200, 200, 200, 200)
SIGNED_IN = (SIGN_IN, 200, 200, 200)  # one's own account pages: every signed-in user
SIGNED_IN_FORM = (SIGN_IN, INVALID, INVALID, INVALID)
SIGNED_OUT_ONLY = (200, 302, 302, 302)  # pages for visitors; the signed-in go on

# (endpoint, method) -> status for (anonymous, user, owner, admin).
# POSTs carry a valid CSRF token and no other data.
EXPECTED: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("static", "GET"): EVERYONE,
    ("main.index", "GET"): EVERYONE,
    ("main.healthz", "GET"): EVERYONE,
    ("auth.login", "GET"): (200, 302, 302, 302),
    ("auth.login", "POST"): (INVALID, 302, 302, 302),
    ("auth.logout", "POST"): (SIGN_IN, 302, 302, 302),
    # Items are private: anyone but the owner (admins included) gets a 404.
    ("items.index", "GET"): (SIGN_IN, 200, 200, 200),
    ("items.create", "GET"): (SIGN_IN, 200, 200, 200),
    ("items.create", "POST"): SIGNED_IN_FORM,  # the empty form comes back
    ("items.detail", "GET"): (SIGN_IN, 404, 200, 404),
    ("items.edit", "GET"): (SIGN_IN, 404, 200, 404),
    ("items.edit", "POST"): (SIGN_IN, 404, INVALID, 404),
    ("items.delete", "GET"): (SIGN_IN, 404, 200, 404),
    ("items.delete", "POST"): (SIGN_IN, 404, 302, 404),
    # Posts are public; their author or an admin may change them.
    ("posts.index", "GET"): EVERYONE,
    ("posts.detail", "GET"): EVERYONE,
    ("posts.create", "GET"): (SIGN_IN, 200, 200, 200),
    ("posts.create", "POST"): SIGNED_IN_FORM,
    ("posts.edit", "GET"): (SIGN_IN, 403, 200, 200),
    ("posts.edit", "POST"): (SIGN_IN, 403, INVALID, INVALID),
    ("posts.delete", "GET"): (SIGN_IN, 403, 200, 200),
    ("posts.delete", "POST"): (SIGN_IN, 403, 302, 302),
    ("tags.index", "GET"): EVERYONE,
    ("tags.detail", "GET"): EVERYONE,
    ("main.readyz", "GET"): (503, 503, 503, 503),  # test databases are not made by migrations
    # Accounts: one's own account; empty forms come back with their errors (422).
    ("account.index", "GET"): SIGNED_IN,
    ("account.edit", "GET"): SIGNED_IN,
    ("account.edit", "POST"): SIGNED_IN_FORM,
    ("account.password", "GET"): SIGNED_IN,
    ("account.password", "POST"): SIGNED_IN_FORM,
    ("account.delete", "GET"): SIGNED_IN,
    ("account.delete", "POST"): SIGNED_IN_FORM,
    ("account.export", "GET"): SIGNED_IN,
    ("account.export_items", "GET"): SIGNED_IN,
    # My trash; a bulk action without a choice goes back to it.
    ("account.trash", "GET"): SIGNED_IN,
    ("account.trash_bulk", "GET"): (SIGN_IN, 302, 302, 302),
    ("account.trash_bulk", "POST"): (SIGN_IN, 302, 302, 302),
    ("admin.trash", "GET"): ADMIN_ONLY,
    ("admin.trash_bulk", "GET"): ADMIN_REDIRECT,
    ("admin.trash_bulk", "POST"): ADMIN_REDIRECT,
    ("account.revoke_sessions", "POST"): (SIGN_IN, 302, 302, 302),
    ("account.sessions", "GET"): SIGNED_IN,
    # Another browser of the owner's: only the owner may end it; to others it does not exist.
    ("account.end_session", "POST"): (SIGN_IN, 404, 302, 404),
    ("account.two_factor_page", "GET"): SIGNED_IN,
    ("account.two_factor_setup", "POST"): (SIGN_IN, 302, 302, 302),
    # Nothing is being set up (no key waits for its first code): back to the two-factor page.
    ("account.two_factor_enable", "POST"): (SIGN_IN, 302, 302, 302),
    # No codes were just made, and two-factor is off: back to the two-factor page.
    ("account.recovery_codes", "GET"): (SIGN_IN, 302, 302, 302),
    ("account.recovery_codes_renew", "POST"): (SIGN_IN, 302, 302, 302),
    ("account.two_factor_disable", "POST"): (SIGN_IN, 302, 302, 302),
    # No password waits for a code: to the sign-in page (the signed-in go on).
    ("auth.two_factor", "GET"): (302, 302, 302, 302),
    ("auth.two_factor", "POST"): (302, 302, 302, 302),
    ("auth.reauthenticate", "GET"): SIGNED_IN,
    ("auth.reauthenticate", "POST"): SIGNED_IN_FORM,
    ("auth.register", "GET"): SIGNED_OUT_ONLY,
    ("auth.register", "POST"): (INVALID, 302, 302, 302),
    ("auth.forgot", "GET"): EVERYONE,
    ("auth.forgot", "POST"): (INVALID,) * 4,
    # A bad or expired link is explained with a flash on the page it redirects to.
    ("auth.reset", "GET"): (302, 302, 302, 302),
    ("auth.reset", "POST"): (302, 302, 302, 302),
    ("auth.confirm", "GET"): (302, 302, 302, 302),
    ("auth.confirm_resend", "POST"): (SIGN_IN, 302, 302, 302),
    ("profiles.detail", "GET"): EVERYONE,
    ("admin.dashboard", "GET"): ADMIN_ONLY,
    ("admin.users", "GET"): ADMIN_ONLY,
    ("admin.users_export", "GET"): ADMIN_ONLY,
    ("admin.users_bulk", "GET"): ADMIN_REDIRECT,  # no action chosen: back to the list
    ("admin.users_bulk", "POST"): ADMIN_REDIRECT,
    ("admin.user_create", "GET"): ADMIN_ONLY,
    ("admin.user_create", "POST"): ADMIN_FORM_ERROR,
    ("admin.user_edit", "GET"): ADMIN_ONLY,
    ("admin.user_edit", "POST"): ADMIN_FORM_ERROR,
    ("admin.user_password", "POST"): ADMIN_FORM_ERROR,
    ("admin.user_delete", "GET"): ADMIN_ONLY,
    ("admin.user_delete", "POST"): ADMIN_REDIRECT,
    ("admin.user_end_session", "POST"): ADMIN_REDIRECT,
    ("admin.user_end_sessions", "POST"): ADMIN_REDIRECT,
    ("admin.user_two_factor_reset", "POST"): ADMIN_REDIRECT,
    ("admin.items", "GET"): ADMIN_ONLY,
    ("admin.items_export", "GET"): ADMIN_ONLY,
    ("admin.items_bulk", "GET"): ADMIN_REDIRECT,
    ("admin.items_bulk", "POST"): ADMIN_REDIRECT,
    ("admin.item_edit", "GET"): ADMIN_ONLY,
    ("admin.item_edit", "POST"): ADMIN_FORM_ERROR,
    ("admin.item_delete", "GET"): ADMIN_ONLY,
    ("admin.item_delete", "POST"): ADMIN_REDIRECT,
    ("admin.posts", "GET"): ADMIN_ONLY,
    ("admin.posts_export", "GET"): ADMIN_ONLY,
    ("admin.posts_bulk", "GET"): ADMIN_REDIRECT,
    ("admin.posts_bulk", "POST"): ADMIN_REDIRECT,
    ("admin.post_edit", "GET"): ADMIN_ONLY,
    ("admin.post_edit", "POST"): ADMIN_FORM_ERROR,
    ("admin.post_delete", "GET"): ADMIN_ONLY,
    ("admin.post_delete", "POST"): ADMIN_REDIRECT,
    ("admin.tags", "GET"): ADMIN_ONLY,
    ("admin.tags_export", "GET"): ADMIN_ONLY,
    ("admin.tags_bulk", "GET"): ADMIN_REDIRECT,
    ("admin.tags_bulk", "POST"): ADMIN_REDIRECT,
    ("admin.tag_edit", "GET"): ADMIN_ONLY,
    ("admin.tag_edit", "POST"): ADMIN_FORM_ERROR,
    ("admin.tag_merge", "POST"): ADMIN_FORM_ERROR,
    ("admin.tag_delete", "GET"): ADMIN_ONLY,
    ("admin.tag_delete", "POST"): ADMIN_REDIRECT,
    ("admin.audit", "GET"): ADMIN_ONLY,
    ("admin.audit_export", "GET"): ADMIN_ONLY,
    ("admin.users_import", "GET"): ADMIN_ONLY,
    ("admin.users_import", "POST"): ADMIN_FORM_ERROR,
    ("admin.users_import_confirm", "POST"): ADMIN_REDIRECT,  # no preview token: choose again
    ("admin.items_import", "GET"): ADMIN_ONLY,
    ("admin.items_import", "POST"): ADMIN_FORM_ERROR,
    ("admin.items_import_confirm", "POST"): ADMIN_REDIRECT,
    ("admin.mail", "GET"): ADMIN_ONLY,
    ("admin.mail_export", "GET"): ADMIN_ONLY,
    ("admin.mail_retry", "POST"): ADMIN_REDIRECT,
    ("admin.user_history", "GET"): ADMIN_ONLY,
    ("admin.item_history", "GET"): ADMIN_ONLY,
    ("admin.post_history", "GET"): ADMIN_ONLY,
    # The world's one event is the item's: restoring it from another row's history is a 404.
    ("admin.item_restore", "POST"): ADMIN_REDIRECT,
    ("admin.user_restore", "POST"): (SIGN_IN, 403, 403, 404),
    ("admin.post_restore", "POST"): (SIGN_IN, 403, 403, 404),
}

# How a URL argument is filled in, from the rows the grid's world holds (see ``world``).
URL_ARGUMENTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "user_id": lambda rows: rows["owner"].id,
    "item_id": lambda rows: rows["item"].id,
    "post_id": lambda rows: rows["post"].id,
    "tag_id": lambda rows: rows["tag"].id,
    "name": lambda rows: rows["tag"].name,
    "username": lambda rows: rows["owner"].username,
    "filename": lambda rows: "css/site.css",
    "token": lambda rows: "not-a-valid-token",
    "message_id": lambda rows: rows["mail"].id,
    "event_id": lambda rows: rows["event"].id,
    "session_id": lambda rows: rows["session"].id,
}


def _url_map_routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every route of a freshly built app."""
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, rule.rule))
    return sorted(routes)


ROUTES = _url_map_routes()


def test_every_route_has_an_expectation() -> None:
    found = {(endpoint, method) for endpoint, method, _ in ROUTES}
    missing = sorted(found - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - found)
    assert not missing, f"routes without an entry in EXPECTED: {missing}"
    assert not stale, f"entries in EXPECTED for routes that no longer exist: {stale}"


def test_the_grid_covers_every_admin_route_and_every_role() -> None:
    admin_routes = [r for r in ROUTES if r[0].startswith("admin.")]
    assert len(admin_routes) >= 35
    assert len(ROUTES) * len(ROLES) == len(GRID)


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    """An owner with an item and a tagged post, another user, and an admin (all committed)."""
    owner = UserFactory(username="olivia", email="olivia@example.com")
    tag = TagFactory(name="grid")
    rows = {
        "owner": owner,
        "user": UserFactory(username="mallory", email="mallory@example.com"),
        "admin": UserFactory(username="root", email="root@example.com", is_admin=True),
        "item": ItemFactory(owner=owner),
        "post": PostFactory(author=owner, tags=[tag]),
        "tag": tag,
        "mail": OutboxMessageFactory(),
    }
    rows["session"] = SessionRepository(db.session).create(user_id=owner.id, key="owner-laptop")
    db.session.commit()
    rows["event"] = AuditRepository(db.session).record(
        "admin.item.update",
        target_type="item",
        target_id=rows["item"].id,
        before={"title": "Before"},
        after={"title": rows["item"].title},
    )
    db.session.commit()
    return rows


def build_url(rule: str, rows: dict[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in URL_ARGUMENTS:
            pytest.fail(f"no value for URL argument {name!r} in {rule}: add it to URL_ARGUMENTS")
        return str(URL_ARGUMENTS[name](rows))

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", fill, rule)


GRID = [
    pytest.param(endpoint, method, rule, role, id=f"{endpoint}-{method}-{role}")
    for endpoint, method, rule in ROUTES
    for role in ROLES
]


@pytest.mark.parametrize(("endpoint", "method", "rule", "role"), GRID)
def test_route_answers_each_role_as_expected(
    client: FlaskClient,
    auth: AuthActions,
    world: dict[str, Any],
    endpoint: str,
    method: str,
    rule: str,
    role: str,
) -> None:
    expected_by_role = EXPECTED.get((endpoint, method))
    if expected_by_role is None:
        pytest.fail(f"{method} {rule} ({endpoint}) has no entry in EXPECTED")
    expected = expected_by_role[ROLES.index(role)]
    if role != "anonymous":
        auth.login(world[role])
    url = build_url(rule, world)
    response = client.open(url, method=method, data={} if method == "POST" else None)
    try:
        assert response.status_code == expected, f"{role} {method} {url}"
        if role == "anonymous" and endpoint.startswith("admin."):
            assert response.headers["Location"].startswith("/auth/login?next=%2Fadmin")
        if expected == 403:
            assert "You do not have permission" in response.get_data(as_text=True)
    finally:
        response.close()  # a static file response holds the file open until closed
