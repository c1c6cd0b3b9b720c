"""My account: overview, email and username, password, sessions, my data, deletion; and bad
input on every account form."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.account_helpers import (
    NEW_PASSWORD,
    field_errors,
    flashes,
    is_signed_in,
    reload,
    session_user,
    sign_in,
    text,
    users_snapshot,
)
from tests.conftest import Mailbox
from tests.factories import PASSWORD, ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions, QueryCounter, session_count
from webapp.account.views import WRONG_PASSWORD
from webapp.auth.forms import TAKEN
from webapp.auth.tokens import make_confirm_token, make_reset_token
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, User, post_tags
from webapp.repositories import UserRepository


@pytest.fixture
def app_config(mailbox: Mailbox) -> dict[str, Any]:
    """Every test here sends its mail to a real local SMTP server."""
    return mailbox.config


@pytest.fixture
def me(auth: AuthActions, user: User) -> User:
    """alice, signed in."""
    return auth.login(user)


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


# -- Overview --------------------------------------------------------------------------------


def test_the_overview_shows_my_account(client: FlaskClient, me: User) -> None:
    me.last_login_at = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    me.last_login_ip = "203.0.113.9"
    ItemFactory.create_batch(2, owner=me)
    PostFactory(author=me)
    ItemFactory()  # someone else's
    page = text(client.get("/account/"))
    assert "<h1>My account</h1>" in page
    assert "alice@example.com" in page
    assert '<span class="badge no">Not confirmed</span>' in page
    assert me.created_at.strftime("%d %b %Y") in page
    assert "04 Mar 2026, 05:06 UTC" in page
    assert "from 203.0.113.9" in page
    assert "2 items, 1 post" in page
    assert 'action="/account/sessions/revoke"' in page
    assert "Sign out everywhere else" in page
    for link in ("/account/edit", "/account/password", "/account/export", "/account/delete"):
        assert f'href="{link}"' in page
    assert 'href="/users/alice"' in page


def test_the_overview_runs_a_fixed_number_of_queries(
    client: FlaskClient, me: User, count_queries: QueryCounter
) -> None:
    def queries() -> int:
        with count_queries() as statements:
            assert client.get("/account/").status_code == 200
        return len(statements)

    ItemFactory.create_batch(3, owner=me)
    PostFactory.create_batch(3, author=me)
    few = queries()
    ItemFactory.create_batch(3, owner=me)
    PostFactory.create_batch(3, author=me)
    assert queries() == few <= 3


# -- Email and username ----------------------------------------------------------------------


def edit(client: FlaskClient, **values: str) -> Any:
    data = {"email": "alice@example.com", "username": "alice", "current_password": "", **values}
    return client.post("/account/edit", data=data)


def test_the_edit_form_starts_from_my_account(client: FlaskClient, me: User) -> None:
    page = text(client.get("/account/edit"))
    assert 'value="alice@example.com"' in page
    assert 'value="alice"' in page


@pytest.mark.parametrize("username", ["Alice.B-2", "ALICE"])
def test_changing_my_username(client: FlaskClient, me: User, username: str) -> None:
    response = edit(client, username=username)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/"
    assert reload(me).username == username
    assert f"Your username is now {username}." in flashes(text(client.get("/account/")))
    [event] = events("account.username_changed")
    assert (event.before, event.after) == ({"username": "alice"}, {"username": username})


def test_a_taken_username_is_an_error_beside_it(client: FlaskClient, me: User) -> None:
    UserFactory(username="bob")
    response = edit(client, username="BOB")
    assert field_errors(text(response)) == {"username": TAKEN["username"]}
    assert reload(me).username == "alice"


def test_a_username_race_is_decided_by_the_database(
    client: FlaskClient, me: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    UserFactory(username="bob")
    db.session.commit()
    monkeypatch.setattr(UserRepository, "username_taken", lambda *_a, **_k: False)
    response = edit(client, username="Bob")
    assert response.status_code == 422
    assert field_errors(text(response)) == {"username": TAKEN["username"]}
    assert reload(me).username == "alice"
    assert events("account.username_changed") == []


def test_saving_without_changes_says_so(client: FlaskClient, me: User, mailbox: Mailbox) -> None:
    response = edit(client, email="ALICE@example.com")  # the same address, typed differently
    assert response.status_code == 302
    assert "Nothing changed." in flashes(text(client.get("/account/")))
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("password", "message"),
    [("", "Enter your current password to change your email address."), ("wrong", WRONG_PASSWORD)],
)
def test_changing_my_email_needs_my_password(
    client: FlaskClient, me: User, mailbox: Mailbox, password: str, message: str
) -> None:
    response = edit(client, email="alice@new.example.com", current_password=password)
    assert field_errors(text(response)) == {"current_password": message}
    assert mailbox.messages == []
    assert reload(me).email == "alice@example.com"


def test_a_taken_email_is_an_error_beside_it(
    client: FlaskClient, me: User, mailbox: Mailbox
) -> None:
    UserFactory(email="bob@example.com")
    response = edit(client, email="Bob@Example.com", current_password=PASSWORD)
    assert field_errors(text(response)) == {"email": TAKEN["email"]}
    assert mailbox.messages == []


def test_a_new_email_takes_effect_once_confirmed_and_the_old_one_is_told(
    client: FlaskClient, me: User, mailbox: Mailbox
) -> None:
    response = edit(client, email="Alice@New.Example.com", current_password=PASSWORD)
    assert response.status_code == 302
    page = text(client.get("/account/"))
    assert any("changes to it once you follow the link" in f for f in flashes(page))
    assert reload(me).email == "alice@example.com"  # not yet
    assert "alice@example.com" in page
    message = mailbox.last("alice@new.example.com")
    assert message["Subject"] == "Confirm your email address"
    assert "change the email address" in mailbox.body("alice@new.example.com")
    assert mailbox.to("alice@example.com") == []

    response = client.get(mailbox.link("alice@new.example.com"))
    assert response.headers["Location"] == "/account/"
    fresh = reload(me)
    assert fresh.email == "alice@new.example.com"
    assert fresh.email_confirmed_at is not None
    page = text(client.get("/account/"))
    assert "Your email address is now alice@new.example.com." in flashes(page)
    assert '<span class="badge yes">Confirmed</span>' in page
    notice = mailbox.last("alice@example.com")
    assert notice["Subject"] == "Your email address was changed"
    assert "from alice@example.com to\nalice@new.example.com" in mailbox.body("alice@example.com")
    [event] = events("account.email_changed")
    assert event.before == {"email": "alice@example.com"}
    assert event.after == {"email": "alice@new.example.com"}

    # The link has done its work: following it again changes nothing.
    client.get(mailbox.link("alice@new.example.com"))
    assert len(events("account.email_changed")) == 1


def test_an_email_change_link_is_refused_once_the_address_is_taken(
    client: FlaskClient, me: User
) -> None:
    token = make_confirm_token(me, "wanted@example.com")
    UserFactory(email="wanted@example.com")
    response = client.get(f"/auth/confirm/{token}", follow_redirects=True)
    assert any("Another account now uses wanted@example.com" in f for f in flashes(text(response)))
    assert reload(me).email == "alice@example.com"


def test_an_email_change_race_is_decided_by_the_database(
    client: FlaskClient, me: User, monkeypatch: pytest.MonkeyPatch, mailbox: Mailbox
) -> None:
    token = make_confirm_token(me, "wanted@example.com")
    UserFactory(email="wanted@example.com")
    db.session.commit()
    monkeypatch.setattr(UserRepository, "email_taken", lambda *_a, **_k: False)
    response = client.get(f"/auth/confirm/{token}", follow_redirects=True)
    assert response.status_code == 200
    assert any("Another account now uses wanted@example.com" in f for f in flashes(text(response)))
    assert reload(me).email == "alice@example.com"
    assert mailbox.messages == []


def test_an_older_email_change_link_dies_with_the_address_it_started_from(
    client: FlaskClient, me: User
) -> None:
    first = make_confirm_token(me, "first@example.com")
    second = make_confirm_token(me, "second@example.com")
    client.get(f"/auth/confirm/{second}")
    assert reload(me).email == "second@example.com"
    client.get(f"/auth/confirm/{first}")
    assert reload(me).email == "second@example.com"


# -- Password --------------------------------------------------------------------------------


def change_password(client: FlaskClient, **values: str) -> Any:
    data = {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    return client.post("/account/password", data={**data, **values})


def test_changing_my_password_needs_the_current_one(client: FlaskClient, me: User) -> None:
    stored = me.hashed_password
    response = change_password(client, current_password="not it")
    assert field_errors(text(response)) == {"current_password": WRONG_PASSWORD}
    assert reload(me).hashed_password == stored


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"password": "alice@example.com", "confirm": "alice@example.com"}, "password", "differ"),
        ({"password": "123456789012", "confirm": "123456789012"}, "password", "digits"),
        ({"confirm": "a-different-passphrase"}, "confirm", "The two passwords differ."),
    ],
)
def test_a_new_password_follows_the_rules(
    client: FlaskClient, me: User, values: dict[str, str], field: str, message: str
) -> None:
    stored = me.hashed_password
    response = change_password(client, **values)
    assert message in field_errors(text(response))[field]
    assert reload(me).hashed_password == stored


def test_changing_my_password_ends_my_other_sessions_but_not_this_one(
    app: Flask, client: FlaskClient, me: User, mailbox: Mailbox
) -> None:
    elsewhere = app.test_client()
    AuthActions(elsewhere).login(me)
    assert is_signed_in(elsewhere)

    response = change_password(client)
    assert response.status_code == 302
    fresh = reload(me)
    assert fresh.check_password(NEW_PASSWORD)
    assert session_count(me.id) == 1
    assert session_user(client) == me.id
    assert is_signed_in(client)
    assert not is_signed_in(elsewhere)
    assert mailbox.last("alice@example.com")["Subject"] == "Your password was changed"
    assert len(events("account.password_changed")) == 1


def test_a_password_change_keeps_this_browsers_remember_cookie_only(app: Flask, user: User) -> None:
    browser, other = app.test_client(), app.test_client()
    sign_in(browser, "alice", remember="y")
    sign_in(other, "alice", remember="y")
    mine, theirs = browser.get_cookie("remember_token"), other.get_cookie("remember_token")
    assert mine is not None and theirs is not None
    assert change_password(browser).status_code == 302
    for value, works in ((mine.value, True), (theirs.value, False)):
        reopened = app.test_client()  # the session cookie gone: the browser was closed
        reopened.set_cookie("remember_token", value)
        assert is_signed_in(reopened) is works


# -- Sessions --------------------------------------------------------------------------------


def test_sign_out_everywhere_else(app: Flask, client: FlaskClient, me: User) -> None:
    elsewhere = app.test_client()
    AuthActions(elsewhere).login(me)
    response = client.post("/account/sessions/revoke", data={})
    assert response.status_code == 302
    assert "You are now signed out everywhere else." in flashes(text(client.get("/account/")))
    assert is_signed_in(client)
    assert not is_signed_in(elsewhere)
    assert session_count(me.id) == 1
    (event,) = events("account.sessions_revoked")
    assert event.after == {"sessions_ended": 1}


def test_sign_out_everywhere_else_is_a_post_behind_csrf(client: FlaskClient, me: User) -> None:
    assert client.get("/account/sessions/revoke").status_code == 405
    assert client.post("/account/sessions/revoke", data={}, csrf=False).status_code == 400
    assert session_count(me.id) == 1


# -- Deleting my account ---------------------------------------------------------------------


def test_the_delete_page_says_what_goes(client: FlaskClient, me: User) -> None:
    ItemFactory.create_batch(3, owner=me)
    PostFactory(author=me)
    page = text(client.get("/account/delete"))
    assert "your 3 items and your 1 post" in page
    assert 'type="password"' in page


def test_deleting_needs_my_password(client: FlaskClient, me: User) -> None:
    response = client.post("/account/delete", data={"password": "not it"})
    assert field_errors(text(response)) == {"password": WRONG_PASSWORD}
    assert reload(me).is_active
    assert events("account.deleted") == []


def test_deleting_my_account_removes_my_items_and_posts_and_leaves_an_audit_event(
    client: FlaskClient, me: User
) -> None:
    tag = TagFactory(name="shared")
    ItemFactory.create_batch(2, owner=me)
    PostFactory.create_batch(2, author=me, tags=[tag])
    other_item = ItemFactory()
    other_post = PostFactory(tags=[tag])
    my_id = me.id

    response = client.post("/account/delete", data={"password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    db.session.expire_all()
    assert db.session.get(User, my_id) is None
    assert db.session.scalars(select(Item.id)).all() == [other_item.id]
    assert db.session.scalars(select(Post.id)).all() == [other_post.id]
    assert db.session.execute(select(post_tags.c.post_id)).scalars().all() == [other_post.id]
    [event] = events("account.deleted")
    assert event.actor_id is None  # the row is gone; the name it had stays
    assert event.actor_name == "alice"
    assert event.target_id == my_id
    assert event.before == {"username": "alice", "items": 2, "posts": 2}
    page = text(client.get("/"))
    assert "Your account, items and posts have been deleted. Goodbye." in flashes(page)
    assert session_user(client) is None
    assert not is_signed_in(client)


def test_the_last_admin_cannot_delete_their_account(
    client: FlaskClient, auth: AuthActions, admin_user: User
) -> None:
    auth.login(admin_user)
    response = client.post("/account/delete", data={"password": PASSWORD})
    assert "You are the last administrator" in field_errors(text(response))["password"]
    assert reload(admin_user).is_admin

    UserFactory(is_admin=True)
    assert client.post("/account/delete", data={"password": PASSWORD}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, admin_user.id) is None


# -- My data ---------------------------------------------------------------------------------


def test_download_my_data_as_json(client: FlaskClient, me: User) -> None:
    me.last_login_ip = "198.51.100.7"
    tag = TagFactory(name="notes")
    item = ItemFactory(owner=me, title="Bike", description="Red, with a bell")
    post = PostFactory(author=me, title="Hello", body="First post", tags=[tag])
    ItemFactory(title="Not mine")
    response = client.get("/account/export")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="webapp-alice.json"'
    assert response.headers["Cache-Control"] == "private, no-store"
    data = json.loads(response.get_data(as_text=True))
    assert data["account"] == {
        "id": me.id,
        "email": "alice@example.com",
        "username": "alice",
        "created_at": me.created_at.isoformat(),
        "email_confirmed_at": None,
        "last_login_at": None,
        "last_login_ip": "198.51.100.7",
        "is_admin": False,
    }
    assert data["items"] == [
        {
            "id": item.id,
            "title": "Bike",
            "description": "Red, with a bell",
            "created_at": item.created_at.isoformat(),
            "updated_at": item.updated_at.isoformat(),
        }
    ]
    assert [(p["id"], p["title"], p["body"], p["tags"]) for p in data["posts"]] == [
        (post.id, "Hello", "First post", ["notes"])
    ]
    assert "hashed_password" not in response.get_data(as_text=True)


def test_download_my_items_as_csv_with_formulas_escaped(client: FlaskClient, me: User) -> None:
    ItemFactory(owner=me, title='=HYPERLINK("http://evil.example")', description="+1")
    ItemFactory(owner=me, title="Plain, with a comma", description=None)
    response = client.get("/account/export/items.csv")
    assert response.mimetype == "text/csv"
    assert 'filename="webapp-alice-items.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["id", "title", "description", "created_at", "updated_at"]
    assert [row[1:3] for row in rows[1:]] == [
        ['\'=HYPERLINK("http://evil.example")', "'+1"],
        ["Plain, with a comma", ""],
    ]


@pytest.mark.parametrize("url", ["/account/export", "/account/export/items.csv"])
def test_exports_run_a_fixed_number_of_queries(
    client: FlaskClient, me: User, count_queries: QueryCounter, url: str
) -> None:
    def queries() -> int:
        with count_queries() as statements:
            assert client.get(url).status_code == 200
        return len(statements)

    def add(n: int) -> None:
        for _ in range(n):
            ItemFactory(owner=me)
            PostFactory(author=me, tags=[TagFactory(), TagFactory()])

    add(3)
    few = queries()
    add(3)
    assert queries() == few <= 4


def test_my_account_pages_need_me_signed_in(client: FlaskClient, user: User) -> None:
    for url in ("/account/", "/account/edit", "/account/export", "/account/delete"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/auth/login?next=")


# -- Bad input on every account form ---------------------------------------------------------

FORMS: dict[str, tuple[str, dict[str, str], bool]] = {
    # name: (url, valid data, signed in as alice?)
    "login": ("/auth/login", {"login": "alice", "password": PASSWORD}, False),
    "register": (
        "/auth/register",
        {
            "email": "new@example.com",
            "username": "newbie",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
        False,
    ),
    "forgot": ("/auth/forgot", {"email": "alice@example.com"}, False),
    "reset": ("<reset link>", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, False),
    "edit": ("/account/edit", {"email": "alice@new.example.com", "username": "alice2"}, True),
    "password": (
        "/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        True,
    ),
    "delete": ("/account/delete", {"password": PASSWORD}, True),
}
FIELDS = [(form, field) for form, (_, data, _) in FORMS.items() for field in data]


def corrupt_nul(value: str) -> str:
    return value[:2] + "\x00" + value[2:]


def corrupt_control(value: str) -> str:
    return value[:2] + "\x1b[2J" + value[2:]


def corrupt_length(value: str) -> str:
    return "x" * 300 + value


def form_url(form: str, user: User) -> str:
    url = FORMS[form][0]
    return f"/auth/reset/{make_reset_token(user)}" if url == "<reset link>" else url


def post_bad(client: FlaskClient, url: str, data: dict[str, str], field: str, kind: str) -> Any:
    if kind == "invalid-utf8":
        # Bytes that are not UTF-8, percent-encoded, as a form post would carry them.
        others = {k: v for k, v in data.items() if k != field}
        others["csrf_token"] = client.csrf_token()  # type: ignore[attr-defined]
        value = data[field]
        body = f"{urlencode(others)}&{field}={quote(value[:2])}%FF%FE{quote(value[2:])}"
        return client.post(url, data=body, content_type="application/x-www-form-urlencoded")
    if kind == "raw-invalid-utf8":
        others = {k: v for k, v in data.items() if k != field}
        others["csrf_token"] = client.csrf_token()  # type: ignore[attr-defined]
        raw = f"{urlencode(others)}&{field}=".encode() + b"\xff\xfe" + data[field].encode()
        return client.post(url, data=raw, content_type="application/x-www-form-urlencoded")
    if kind == "file-instead-of-text":
        upload = (io.BytesIO(data[field].encode()), "value.txt")
        return client.post(url, data={**data, field: upload}, content_type="multipart/form-data")
    corrupt = {"nul": corrupt_nul, "control": corrupt_control, "too-long": corrupt_length}[kind]
    return client.post(url, data={**data, field: corrupt(data[field])})


@pytest.mark.parametrize(
    "kind",
    ["nul", "control", "too-long", "invalid-utf8", "raw-invalid-utf8", "file-instead-of-text"],
)
@pytest.mark.parametrize(("form", "field"), FIELDS)
def test_bad_input_shows_the_form_again_with_the_error_beside_the_field(
    client: FlaskClient,
    auth: AuthActions,
    user: User,
    mailbox: Mailbox,
    form: str,
    field: str,
    kind: str,
) -> None:
    url, data, signed_in = FORMS[form]
    if signed_in:
        auth.login(user)
    url = form_url(form, user)
    before, session_before = users_snapshot(), session_user(client)

    response = post_bad(client, url, data, field, kind)
    assert response.status_code == 422
    page = text(response)
    errors = field_errors(page)
    assert field in errors, errors
    assert users_snapshot() == before
    assert session_user(client) == session_before
    assert mailbox.messages == []


@pytest.mark.parametrize("token", [None, "not-a-valid-token"], ids=["missing", "wrong"])
@pytest.mark.parametrize(
    "form", [*FORMS, "logout", "revoke", "resend"], ids=lambda name: f"csrf-{name}"
)
def test_every_account_form_needs_its_csrf_token(
    client: FlaskClient,
    auth: AuthActions,
    user: User,
    mailbox: Mailbox,
    form: str,
    token: str | None,
) -> None:
    other_posts = {
        "logout": "/auth/logout",
        "revoke": "/account/sessions/revoke",
        "resend": "/auth/confirm/resend",
    }
    if form in other_posts:
        url, data, signed_in = other_posts[form], {}, True
    else:
        url, data, signed_in = FORMS[form]
        url = form_url(form, user)
    if signed_in:
        auth.login(user)
    before, session_before = users_snapshot(), session_user(client)
    if token is not None:
        data = {**data, "csrf_token": token}
    response = client.post(url, data=data, csrf=False)  # type: ignore[call-arg]
    assert response.status_code == 400
    assert "Bad request" in text(response)
    assert users_snapshot() == before
    assert session_user(client) == session_before
    assert mailbox.messages == []


def test_a_json_body_is_not_a_form(client: FlaskClient, me: User) -> None:
    response = client.post("/account/edit", json={"username": "json-user"})
    assert response.status_code == 400
    assert reload(me).username == "alice"


def test_an_account_form_is_refused_when_the_body_is_not_text_at_all(
    client: FlaskClient, me: User
) -> None:
    """Raw bytes that are not UTF-8 anywhere, the CSRF token included: nothing is readable."""
    response = client.post(
        "/account/edit", data=b"\xff\xfe\xfd=\xfc", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert reload(me).username == "alice"


@pytest.mark.parametrize(
    ("url", "body", "fields"),
    [
        ("/account/edit", {"email": 5, "username": ["x", 1], "current_password": {}}, {"email"}),
        (
            "/auth/register",
            {"email": 1, "username": True, "password": 1234567890123, "confirm": None},
            {"email", "username", "password", "confirm"},
        ),
        ("/auth/login", {"login": ["alice"], "password": {"p": PASSWORD}}, {"login", "password"}),
    ],
)
def test_wrong_types_in_a_json_body_are_errors_beside_the_fields(
    client: FlaskClient,
    user: User,
    url: str,
    body: dict[str, Any],
    fields: set[str],
) -> None:
    """Flask-WTF would read a JSON body (with the CSRF token in a header) into the form."""
    if url.startswith("/account/"):
        AuthActions(client).login(user)
    before = users_snapshot()
    token = client.csrf_token()  # type: ignore[attr-defined]
    response = client.post(url, json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 422
    assert fields <= set(field_errors(text(response)))
    assert users_snapshot() == before


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address"),
        ({"email": ""}, "email", "This field is required."),
        ({"username": "ab"}, "username", "Use 3 to 50 characters"),
        ({"username": "has space"}, "username", "Use 3 to 50 characters"),
        ({"username": "y" * 51}, "username", "longer than 50 characters"),
    ],
)
def test_editing_follows_the_registration_rules(
    client: FlaskClient, me: User, values: dict[str, str], field: str, message: str
) -> None:
    before = users_snapshot()
    response = edit(client, **values)
    assert response.status_code == 422
    assert message in field_errors(text(response))[field]
    assert users_snapshot() == before


LIMITED: dict[str, Any] = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_ACCOUNT_USER": "2 per hour",
    "RATELIMIT_CONFIRM_RESEND_USER": "1 per hour",
}


@pytest.mark.parametrize("app_config", [LIMITED])
@pytest.mark.parametrize("url", ["/account/delete", "/account/password", "/account/edit"])
def test_forms_that_check_my_password_are_limited_per_account(
    app: Flask, client: FlaskClient, me: User, url: str
) -> None:
    for _ in range(2):
        assert client.post(url, data={}).status_code == 422  # refused before any hashing
    response = client.post(url, data={})
    assert response.status_code == 429
    assert "You can try again in" in text(response)
    assert client.get(url).status_code == 200  # looking is not limited

    # Per account, not per address: another account from the same address goes on.
    other = app.test_client()
    AuthActions(other).login(UserFactory())
    assert other.post(url, data={}).status_code == 422


@pytest.mark.parametrize("app_config", [LIMITED])
def test_resending_the_confirmation_is_limited(client: FlaskClient, me: User) -> None:
    assert client.post("/auth/confirm/resend", data={}).status_code == 302
    assert client.post("/auth/confirm/resend", data={}).status_code == 429
