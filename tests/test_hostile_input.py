"""Hostile input on every form and every page, generated from the app's URL map.

Every rule that accepts POST must have an entry in ``FORMS`` saying how to reach it (who is
signed in, which URL arguments, which valid values its text fields take). Each form then gets
every payload kind: a missing or forged CSRF token, NUL and other control characters, 10 kB
strings, bytes that are not UTF-8 (``%FF`` and raw), a field sent twice, a JSON body, a file
where text belongs, a submission with its fields left out, and its integers (row versions,
selected ids) written in digits that are not ASCII. The answer must be a 4xx (400 for CSRF,
422 for a bad form, or the route's documented answer), never a 500, with the error shown (for
a 422: beside the field), and NOTHING stored: every table's rows are the same after.

Every rule that answers GET must have an entry in ``PAGES`` likewise. Each page is sent every
query argument the app reads holding bytes that are not UTF-8 (``%FF`` and raw, as a proxy
passes them on), and its integer arguments written in other digits. The answer must be the
page's answer to odd text, or to no integer at all: the same status, never a 500.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from flask import Flask, url_for
from flask_wtf import FlaskForm
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request as WsgiRequest
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length

from tests.conftest import BASE_TEST_CONFIG
from tests.factories import (
    PASSWORD,
    ItemFactory,
    OutboxMessageFactory,
    PostFactory,
    TagFactory,
    UserFactory,
)
from tests.helpers import AuthActions, CSRFClient
from webapp import create_app
from webapp.admin.tables import TABLES
from webapp.auth import two_factor
from webapp.auth.tokens import make_confirm_token, make_reset_token
from webapp.extensions import db
from webapp.models import POST_BODY_MAX
from webapp.repositories import AuditRepository, SessionRepository
from webapp.validation import has_control_chars
from webapp.web.forms import Form

NEW_PASSWORD = "a-brand-new-passphrase"
# Fields that may hold more than 10 kB: their long payload is one character over the limit.
LONGER_ALLOWED = {"body": POST_BODY_MAX}
BAD_REQUEST = "Bad request"
FIELD_ERROR = re.compile(r'<p class="field-error" id="([^"]+)-error">')

Rows = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """How to reach one form: who signs in, its URL arguments, valid values for its fields."""

    role: str  # "anonymous", "alice" (owns the rows) or "admin"
    args: Callable[[Rows], dict[str, Any]] = lambda rows: {}
    # Valid values for the text fields a person fills in (each is attacked in turn).
    fields: Callable[[Rows], dict[str, str]] = lambda rows: {}
    # Other values the form needs to be valid (hidden versions, checkboxes).
    hidden: Callable[[Rows], dict[str, str]] = lambda rows: {}
    # The answer to a bad submission: 422 with the form, or a documented other answer.
    invalid_status: int = 422
    # Payload kinds that are not hostile for this route, each with its reason.
    not_hostile: frozenset[str] = frozenset()


def _item_version(rows: Rows) -> dict[str, str]:
    return {"version": str(rows["item"].version)}


def _post_version(rows: Rows) -> dict[str, str]:
    return {"version": str(rows["post"].version)}


ITEM_FIELDS = {"title": "A lamp", "description": "Bright\nand warm"}
POST_FIELDS = {"title": "A post", "body": "Some text\nover lines", "tags": "python, web"}
BULK = 302  # back to the list; nothing changes without a valid choice and rows
# Bulk parameters are read with ``.get`` and ``.getlist``: a repeated value is a selection.
REPEATS_ALLOWED = frozenset({"repeated"})

# endpoint -> how to reach it. A POST route missing here fails the test.
FORMS: dict[str, Target] = {
    "auth.login": Target("anonymous", fields=lambda r: {"login": "alice", "password": PASSWORD}),
    "auth.logout": Target("alice"),
    "auth.register": Target(
        "anonymous",
        fields=lambda r: {
            "email": "new.person@example.com",
            "username": "newperson",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    ),
    "auth.forgot": Target("anonymous", fields=lambda r: {"email": "alice@example.com"}),
    "auth.reset": Target(
        "anonymous",
        args=lambda r: {"token": make_reset_token(r["alice"])},
        fields=lambda r: {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    ),
    "auth.confirm_resend": Target("alice"),
    "account.edit": Target(
        "alice",
        fields=lambda r: {
            "email": "alice.new@example.com",
            "username": "alice2",
            "current_password": PASSWORD,
        },
    ),
    "account.password": Target(
        "alice",
        fields=lambda r: {
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    ),
    "account.delete": Target("alice", fields=lambda r: {"password": PASSWORD}),
    "account.revoke_sessions": Target("alice"),
    "account.end_session": Target("alice", args=lambda r: {"session_id": r["laptop"].id}),
    "account.two_factor_setup": Target("alice"),
    # alice is setting two-factor up (a secret waits for its first code).
    "account.two_factor_enable": Target("alice", fields=lambda r: {"code": "123456"}),
    "account.recovery_codes_renew": Target("alice"),
    # Two-factor is not on for alice: every submission goes back to its page.
    "account.two_factor_disable": Target(
        "alice", fields=lambda r: {"password": PASSWORD, "code": "123456"}, invalid_status=302
    ),
    # Without two-factor, the page has no code field (the code is attacked on the pages above).
    "auth.reauthenticate": Target("alice", fields=lambda r: {"password": PASSWORD}),
    # No password waits for a code in this browser: every submission goes to the sign-in page.
    "auth.two_factor": Target("anonymous", fields=lambda r: {"code": "123456"}, invalid_status=302),
    "items.create": Target("alice", fields=lambda r: dict(ITEM_FIELDS)),
    "items.edit": Target(
        "alice",
        args=lambda r: {"item_id": r["item"].id},
        fields=lambda r: dict(ITEM_FIELDS),
        hidden=_item_version,
    ),
    "items.delete": Target("alice", args=lambda r: {"item_id": r["item"].id}),
    "posts.create": Target("alice", fields=lambda r: dict(POST_FIELDS)),
    "posts.edit": Target(
        "alice",
        args=lambda r: {"post_id": r["post"].id},
        fields=lambda r: dict(POST_FIELDS),
        hidden=_post_version,
    ),
    "posts.delete": Target("alice", args=lambda r: {"post_id": r["post"].id}),
    "admin.user_create": Target(
        "admin",
        fields=lambda r: {
            "email": "made@example.com",
            "username": "made",
            "password": NEW_PASSWORD,
        },
        hidden=lambda r: {"is_active": "y"},
    ),
    "admin.user_edit": Target(
        "admin",
        args=lambda r: {"user_id": r["bob"].id},
        fields=lambda r: {"email": "bob.new@example.com", "username": "bobby"},
        hidden=lambda r: {"is_active": "y"},
    ),
    "admin.user_password": Target(
        "admin",
        args=lambda r: {"user_id": r["bob"].id},
        fields=lambda r: {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    ),
    "admin.user_delete": Target("admin", args=lambda r: {"user_id": r["bob"].id}),
    "admin.user_end_session": Target(
        "admin", args=lambda r: {"user_id": r["alice"].id, "session_id": r["laptop"].id}
    ),
    "admin.user_end_sessions": Target("admin", args=lambda r: {"user_id": r["alice"].id}),
    "admin.user_two_factor_reset": Target("admin", args=lambda r: {"user_id": r["alice"].id}),
    "admin.item_edit": Target(
        "admin",
        args=lambda r: {"item_id": r["item"].id},
        fields=lambda r: dict(ITEM_FIELDS),
        hidden=_item_version,
    ),
    "admin.item_delete": Target("admin", args=lambda r: {"item_id": r["item"].id}),
    "admin.post_edit": Target(
        "admin",
        args=lambda r: {"post_id": r["post"].id},
        fields=lambda r: dict(POST_FIELDS),
        hidden=_post_version,
    ),
    "admin.post_delete": Target("admin", args=lambda r: {"post_id": r["post"].id}),
    "admin.tag_edit": Target(
        "admin", args=lambda r: {"tag_id": r["tag"].id}, fields=lambda r: {"name": "renamed"}
    ),
    "admin.tag_merge": Target(
        "admin", args=lambda r: {"tag_id": r["tag"].id}, fields=lambda r: {"target": "other"}
    ),
    "admin.tag_delete": Target("admin", args=lambda r: {"tag_id": r["tag"].id}),
    "admin.mail_retry": Target("admin", args=lambda r: {"message_id": r["mail"].id}),
    # A restore reads only hidden values (the log's newest event and the row version the
    # history page showed): a bad one sends the admin back to the history, and nothing changes.
    **{
        f"admin.{kind}_restore": Target(
            "admin",
            args=lambda r, kind=kind, row=row: {
                f"{kind}_id": r[row].id,
                "event_id": r[f"{kind}_event"].id,
            },
            hidden=lambda r, kind=kind, row=row: {
                "as_of": str(r[f"{kind}_event"].id),
                **({"version": str(r[row].version)} if kind != "user" else {}),
            },
            invalid_status=302,
        )
        for kind, row in (("user", "bob"), ("item", "item"), ("post", "post"))
    },
    # Bulk actions read their own parameters (no text is stored): a bad one sends the admin
    # back to the list, and nothing changes.
    "admin.users_bulk": Target(
        "admin",
        fields=lambda r: {"bulk": "delete", "ids": str(r["bob"].id)},
        invalid_status=BULK,
        not_hostile=REPEATS_ALLOWED,
    ),
    "admin.items_bulk": Target(
        "admin",
        fields=lambda r: {"bulk": "delete", "ids": str(r["item"].id)},
        invalid_status=BULK,
        not_hostile=REPEATS_ALLOWED,
    ),
    "admin.posts_bulk": Target(
        "admin",
        fields=lambda r: {"bulk": "delete", "ids": str(r["post"].id)},
        invalid_status=BULK,
        not_hostile=REPEATS_ALLOWED,
    ),
    "admin.tags_bulk": Target(
        "admin",
        fields=lambda r: {"bulk": "delete", "ids": str(r["tag"].id)},
        invalid_status=BULK,
        not_hostile=REPEATS_ALLOWED,
    ),
    # An import takes a file, not text (its own hostile files are in test_admin_import.py):
    # without one, the form comes back asking for it; its confirmation reads only a signed
    # token, and a bad one sends the admin back to the upload.
    **{
        f"admin.{kind}_import": Target("admin", hidden=lambda r: {"allow_admins": "y"})
        for kind in ("users", "items")
    },
    **{
        f"admin.{kind}_import_confirm": Target(
            "admin", hidden=lambda r: {"token": "not-a-token"}, invalid_status=302
        )
        for kind in ("users", "items")
    },
    # The trash's bulk actions: on rows that are not in the trash, nothing changes.
    "admin.trash_bulk": Target(
        "admin",
        fields=lambda r: {"bulk": "purge", "kind": "items", "ids": str(r["item"].id)},
        invalid_status=BULK,
        not_hostile=REPEATS_ALLOWED,
    ),
    "account.trash_bulk": Target(
        "alice",
        fields=lambda r: {"bulk": "purge", "kind": "items", "ids": str(r["item"].id)},
        invalid_status=BULK,
        not_hostile=REPEATS_ALLOWED,
    ),
}


APP = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def _post_routes() -> dict[str, str]:
    """endpoint -> rule, for every rule that accepts POST in a freshly built app."""
    return {
        rule.endpoint: rule.rule
        for rule in APP.url_map.iter_rules()
        if "POST" in (rule.methods or set())
    }


POST_ROUTES = _post_routes()


def test_every_post_route_has_an_entry() -> None:
    missing = sorted(POST_ROUTES.keys() - FORMS.keys())
    stale = sorted(FORMS.keys() - POST_ROUTES.keys())
    assert not missing, f"POST routes without an entry in FORMS: {missing}"
    assert not stale, f"entries in FORMS for routes that no longer exist: {stale}"
    assert len(POST_ROUTES) >= 30


# -- Payloads ---------------------------------------------------------------------------------


@dataclass
class Request:
    """One request to send: a urlencoded body (pairs or raw bytes), multipart, or JSON."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes | None = None
    files: dict[str, Any] | None = None
    json_body: Any = None
    csrf: str | None = "valid"  # "valid", a forged token, or None (no token)


def _urlencoded(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()


def field_payloads(name: str, valid: str) -> dict[str, Callable[[Request], None]]:
    """Ways to spoil one text field, each editing a request that is otherwise valid."""

    def replace(value: str) -> Callable[[Request], None]:
        def apply(request: Request) -> None:
            request.pairs = [(k, value if k == name else v) for k, v in request.pairs]

        return apply

    def raw(encoded: bytes) -> Callable[[Request], None]:
        def apply(request: Request) -> None:
            parts = [
                quote(k, safe="").encode() + b"=" + (encoded if k == name else quote(v).encode())
                for k, v in request.pairs
            ]
            request.raw = b"&".join(parts)

        return apply

    def repeated(request: Request) -> None:
        request.pairs = [*request.pairs, (name, valid)]

    def as_file(request: Request) -> None:
        request.files = {
            **{k: v for k, v in request.pairs if k != name},
            name: (io.BytesIO(valid.encode()), "value.txt"),
        }

    return {
        "nul": replace(f"{valid[:3]}\x00{valid[3:]}"),
        "control": replace(f"{valid[:3]}\x1b[31m\x07{valid[3:]}"),
        "10kB": replace("x" * max(10_240, LONGER_ALLOWED.get(name, 0) + 1)),
        "percent-FF": raw(b"ab%FF%FEcd"),
        "raw-bytes": raw(b"ab\xff\xfecd"),
        "repeated": repeated,
        "file": as_file,
    }


def form_payloads() -> dict[str, Callable[[Request], None]]:
    """Ways to spoil a whole submission."""

    def no_token(request: Request) -> None:
        request.csrf = None

    def forged_token(request: Request) -> None:
        request.csrf = "IjEyMzQ1Njc4OTAi.forged.signature"

    def json_body(request: Request) -> None:
        # Wrong types everywhere: numbers, lists and objects where text belongs.
        wrong: list[Any] = [12345, ["a", "b"], {"x": 1}, None, True]
        request.json_body = {k: wrong[n % len(wrong)] for n, (k, _) in enumerate(request.pairs)}

    def fields_missing(request: Request) -> None:
        request.pairs = [(k, v) for k, v in request.pairs if k == "version"]

    return {
        "csrf-missing": no_token,
        "csrf-forged": forged_token,
        "json-body": json_body,
        "fields-missing": fields_missing,
    }


CSRF_KINDS = {"csrf-missing", "csrf-forged"}


class _Anything:
    """Stands in for every row when only a form's field names are wanted."""

    id = 1
    version = 1
    name = "x"


# Every key of the ``rows`` fixture: what a form's values may be taken from.
ROW_NAMES = ("alice", "bob", "admin", "item", "post", "tag", "other")
ROW_NAMES += tuple(f"{kind}_event" for kind in ("user", "item", "post"))


def _field_names(endpoint: str) -> list[str]:
    anything = _Anything()
    rows = dict.fromkeys(ROW_NAMES, anything)
    return list(FORMS[endpoint].fields(rows))


def _cases() -> list[Any]:
    cases = []
    for endpoint in sorted(POST_ROUTES):
        if endpoint not in FORMS:
            cases.append(pytest.param(endpoint, "csrf-missing", None, id=f"{endpoint}-unlisted"))
            continue
        names = _field_names(endpoint)
        kinds = list(form_payloads()) if names else sorted(CSRF_KINDS)
        cases += [pytest.param(endpoint, kind, None, id=f"{endpoint}-{kind}") for kind in kinds]
        cases += [
            pytest.param(endpoint, kind, name, id=f"{endpoint}-{name}-{kind}")
            for name in names
            for kind in field_payloads(name, "valid")
            if kind not in FORMS[endpoint].not_hostile
        ]
    return cases


CASES = _cases()


@pytest.fixture
def rows(app: Flask) -> Rows:
    """alice owns an item and a tagged post; bob is another user; root is the admin."""
    alice = UserFactory(username="alice", email="alice@example.com")
    tag = TagFactory(name="grid")
    world = {
        "alice": alice,
        "bob": UserFactory(username="bob", email="bob@example.com"),
        "admin": UserFactory(username="root", email="root@example.com", is_admin=True),
        "item": ItemFactory(owner=alice, title="Old lamp", description="Dim"),
        "post": PostFactory(author=alice, tags=[tag]),
        "tag": tag,
        "other": TagFactory(name="other"),
        "mail": OutboxMessageFactory(status="failed", attempts=8),
    }
    audit = AuditRepository(db.session)
    for kind, row in (("user", "bob"), ("item", "item"), ("post", "post")):
        world[f"{kind}_event"] = audit.record(
            f"admin.{kind}.update",
            target_type=kind,
            target_id=world[row].id,
            before={"title" if kind != "user" else "username": "earlier"},
            after={"title" if kind != "user" else "username": "now"},
        )
    world["laptop"] = SessionRepository(db.session).create(user_id=alice.id, key="alice-laptop")
    two_factor.begin_setup(alice)
    db.session.commit()
    return world


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    db.session.expire_all()
    return {
        table.name: sorted((tuple(row) for row in db.session.execute(select(table))), key=repr)
        for table in db.metadata.sorted_tables
    }


def send(client: CSRFClient, url: str, request: Request) -> TestResponse:
    token = {"valid": client.csrf_token(), None: None}.get(request.csrf, request.csrf)
    if request.json_body is not None:
        headers = {"X-CSRFToken": token} if token else {}
        return client.post(
            url,
            data=json.dumps(request.json_body),
            headers=headers,
            content_type="application/json",
            csrf=False,
        )
    if request.files is not None:
        data = {**request.files, **({"csrf_token": token} if token else {})}
        return client.post(url, data=data, content_type="multipart/form-data", csrf=False)
    if request.raw is not None:
        body = request.raw + (b"&csrf_token=" + quote(token).encode() if token else b"")
    else:
        body = _urlencoded([*request.pairs, *([("csrf_token", token)] if token else [])])
    return client.post(url, data=body, content_type="application/x-www-form-urlencoded", csrf=False)


@pytest.mark.parametrize(("endpoint", "kind", "field_name"), CASES)
def test_hostile_input_is_refused_and_nothing_is_stored(
    app: Flask,
    client: CSRFClient,
    auth: AuthActions,
    rows: Rows,
    endpoint: str,
    kind: str,
    field_name: str | None,
) -> None:
    target = FORMS.get(endpoint)
    if target is None:
        pytest.fail(f"POST {POST_ROUTES[endpoint]} ({endpoint}) has no entry in FORMS")
    if target.role != "anonymous":
        auth.login(rows[target.role])
    with app.test_request_context():
        url = url_for(endpoint, **target.args(rows))
    values = target.fields(rows)
    request = Request(pairs=[*values.items(), *target.hidden(rows).items()])
    if field_name is None:
        form_payloads()[kind](request)
    else:
        field_payloads(field_name, values[field_name])[kind](request)

    before = snapshot()
    response = send(client, url, request)
    page = response.get_data(as_text=True)
    after = snapshot()

    assert response.status_code < 500, page
    assert after == before, f"{kind} on {endpoint} changed the database"
    if kind in CSRF_KINDS:
        assert response.status_code == 400
        assert BAD_REQUEST in page
        return
    assert response.status_code == target.invalid_status, page
    if target.invalid_status != 422:
        return
    shown = FIELD_ERROR.findall(page)
    assert shown, f"no error beside a field for {kind} on {endpoint}"
    if field_name is not None:
        assert field_name in shown, f"{kind} in {field_name}: errors shown beside {shown}"
    # The form is the same page, values kept, passwords never sent back.
    assert "<form" in page
    assert NEW_PASSWORD not in page and PASSWORD not in page


# -- Integers in digits that are not ASCII ------------------------------------------------------

# Each maps ASCII digits to another script's. ``str.isdigit`` is true for all of them; ``int``
# refuses superscripts (a ValueError, once a 500) and reads the others as the number they show.
OTHER_DIGITS: dict[str, dict[int, str]] = {
    "superscript": str.maketrans(
        "0123456789", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
    ),
    "arabic-indic": str.maketrans("0123456789", "".join(chr(0x0660 + n) for n in range(10))),
    "full-width": str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10))),
}
# The integers forms and query strings carry: row versions, selected rows, page numbers, sizes.
INTEGER_FIELDS = frozenset({"version", "ids"})
INTEGER_ARGS = ("page", "per_page", "ids")


def _hidden_names(endpoint: str) -> list[str]:
    anything = _Anything()
    rows = dict.fromkeys(ROW_NAMES, anything)
    return list(FORMS[endpoint].hidden(rows))


def _integer_cases() -> list[Any]:
    cases = []
    for endpoint in sorted(FORMS):
        names = [
            n for n in (*_field_names(endpoint), *_hidden_names(endpoint)) if n in INTEGER_FIELDS
        ]
        cases += [
            pytest.param(endpoint, name, digits, id=f"{endpoint}-{name}-{digits}")
            for name in names
            for digits in OTHER_DIGITS
        ]
    return cases


INTEGER_CASES = _integer_cases()


def test_integer_fields_are_found() -> None:
    assert {case.values[:2] for case in INTEGER_CASES} >= {
        ("items.edit", "version"),
        ("posts.edit", "version"),
        ("admin.item_edit", "version"),
        ("admin.items_bulk", "ids"),
    }


@pytest.mark.parametrize(("endpoint", "field_name", "digits"), INTEGER_CASES)
def test_an_integer_in_other_digits_is_refused_and_nothing_is_stored(
    app: Flask,
    client: CSRFClient,
    auth: AuthActions,
    rows: Rows,
    endpoint: str,
    field_name: str,
    digits: str,
) -> None:
    """A row version or a selected id is ASCII digits as our pages write it, or nothing:
    an Arabic-Indic one is not version 1, and selects no row."""
    target = FORMS[endpoint]
    if target.role != "anonymous":
        auth.login(rows[target.role])
    with app.test_request_context():
        url = url_for(endpoint, **target.args(rows))
    values = {**target.fields(rows), **target.hidden(rows)}
    values[field_name] = values[field_name].translate(OTHER_DIGITS[digits])

    before = snapshot()
    response = client.post(url, data=values)
    page = response.get_data(as_text=True)
    after = snapshot()

    assert response.status_code < 500, page
    assert after == before, (
        f"{field_name}={values[field_name]!r} on {endpoint} changed the database"
    )
    if target.invalid_status == 422:
        # Our own edit forms refuse the version (422); the admin's find it is not the row's (409).
        assert response.status_code in {409, 422}, page
        assert "out of date" in page or "changed this since you opened it" in page
    else:
        assert response.status_code == target.invalid_status, page


# -- Every page: query strings that are not UTF-8, integers in other digits ---------------------


@dataclass(frozen=True)
class Page:
    """How to reach one page: who signs in, its URL arguments, the query it acts on."""

    role: str  # "anonymous", "alice" (owns the rows) or "admin"
    args: Callable[[Rows], dict[str, Any]] = lambda rows: {}
    # Query arguments the page needs to do its work (a bulk action and its rows); the hostile
    # payload goes into every other argument the app reads.
    query: Callable[[Rows], dict[str, str]] = lambda rows: {}


def _admin_bulk(row: str) -> Page:
    return Page("admin", query=lambda r: {"bulk": "delete", "ids": str(r[row].id)})


# endpoint -> how to reach it. A GET route missing here fails the test.
PAGES: dict[str, Page] = {
    "static": Page("anonymous", args=lambda r: {"filename": "css/site.css"}),
    "main.index": Page("anonymous"),
    "main.healthz": Page("anonymous"),
    "main.readyz": Page("anonymous"),
    "auth.login": Page("anonymous"),
    "auth.register": Page("anonymous"),
    "auth.forgot": Page("anonymous"),
    "auth.reset": Page("anonymous", args=lambda r: {"token": make_reset_token(r["alice"])}),
    "auth.confirm": Page("anonymous", args=lambda r: {"token": make_confirm_token(r["alice"])}),
    "posts.index": Page("anonymous"),
    "posts.detail": Page("anonymous", args=lambda r: {"post_id": r["post"].id}),
    "tags.index": Page("anonymous"),
    "tags.detail": Page("anonymous", args=lambda r: {"name": r["tag"].name}),
    "profiles.detail": Page("anonymous", args=lambda r: {"username": "alice"}),
    "account.index": Page("alice"),
    "account.edit": Page("alice"),
    "account.password": Page("alice"),
    "account.delete": Page("alice"),
    "account.export": Page("alice"),
    "account.export_items": Page("alice"),
    "account.sessions": Page("alice"),
    "account.two_factor_page": Page("alice"),
    "account.recovery_codes": Page("alice"),
    "auth.two_factor": Page("anonymous"),
    "auth.reauthenticate": Page("alice"),
    "items.index": Page("alice"),
    "items.create": Page("alice"),
    "items.detail": Page("alice", args=lambda r: {"item_id": r["item"].id}),
    "items.edit": Page("alice", args=lambda r: {"item_id": r["item"].id}),
    "items.delete": Page("alice", args=lambda r: {"item_id": r["item"].id}),
    "posts.create": Page("alice"),
    "posts.edit": Page("alice", args=lambda r: {"post_id": r["post"].id}),
    "posts.delete": Page("alice", args=lambda r: {"post_id": r["post"].id}),
    "admin.dashboard": Page("admin"),
    **{f"admin.{name}": Page("admin") for name in TABLES},
    **{f"admin.{name}_export": Page("admin") for name in TABLES},
    "admin.users_bulk": _admin_bulk("bob"),
    "admin.items_bulk": _admin_bulk("item"),
    "admin.posts_bulk": _admin_bulk("post"),
    "admin.tags_bulk": _admin_bulk("tag"),
    "admin.trash": Page("admin"),
    "admin.trash_bulk": Page(
        "admin", query=lambda r: {"bulk": "restore", "kind": "items", "ids": str(r["item"].id)}
    ),
    "account.trash": Page("alice"),
    "account.trash_bulk": Page(
        "alice", query=lambda r: {"bulk": "restore", "kind": "items", "ids": str(r["item"].id)}
    ),
    "admin.user_create": Page("admin"),
    "admin.user_edit": Page("admin", args=lambda r: {"user_id": r["bob"].id}),
    "admin.user_delete": Page("admin", args=lambda r: {"user_id": r["bob"].id}),
    "admin.item_edit": Page("admin", args=lambda r: {"item_id": r["item"].id}),
    "admin.item_history": Page("admin", args=lambda r: {"item_id": r["item"].id}),
    "admin.post_history": Page("admin", args=lambda r: {"post_id": r["post"].id}),
    "admin.user_history": Page("admin", args=lambda r: {"user_id": r["bob"].id}),
    "admin.item_delete": Page("admin", args=lambda r: {"item_id": r["item"].id}),
    "admin.post_edit": Page("admin", args=lambda r: {"post_id": r["post"].id}),
    "admin.post_delete": Page("admin", args=lambda r: {"post_id": r["post"].id}),
    "admin.tag_edit": Page("admin", args=lambda r: {"tag_id": r["tag"].id}),
    "admin.tag_delete": Page("admin", args=lambda r: {"tag_id": r["tag"].id}),
    "admin.users_import": Page("admin"),
    "admin.items_import": Page("admin"),
}
# Every query argument any page reads: lists, searches, keyset cursors, bulk actions, sign-in
# redirects, static file versions, and each admin list's filters.
QUERY_NAMES = sorted(
    {"q", "tag", "page", "per_page", "sort", "dir", "after", "before", "last", "next"}
    | {"scope", "bulk", "ids", "v", "kind"}
    | {spec_filter.name for table in TABLES.values() for spec_filter in table.filters}
)
# Not UTF-8, percent-encoded and raw; and the same text with ASCII in their place, which is
# how the page must treat it (odd text).
BYTE_PAYLOADS = {"percent-FF": b"ab%FF%FEcd", "raw-bytes": b"ab\xff\xfecd"}
ODD_TEXT = b"abXYcd"


def _get_routes() -> dict[str, str]:
    """endpoint -> rule, for every rule that answers GET in a freshly built app."""
    return {
        rule.endpoint: rule.rule
        for rule in APP.url_map.iter_rules()
        if "GET" in (rule.methods or set())
    }


GET_ROUTES = _get_routes()


def test_every_get_route_has_an_entry() -> None:
    missing = sorted(GET_ROUTES.keys() - PAGES.keys())
    stale = sorted(PAGES.keys() - GET_ROUTES.keys())
    assert not missing, f"GET routes without an entry in PAGES: {missing}"
    assert not stale, f"entries in PAGES for routes that no longer exist: {stale}"
    assert len(GET_ROUTES) >= 40
    assert {"page", "per_page", "q", "after", "owner", "used"} <= set(QUERY_NAMES)


def _page_cases() -> list[Any]:
    cases = []
    for endpoint in sorted(GET_ROUTES):
        cases += [pytest.param(endpoint, kind, id=f"{endpoint}-{kind}") for kind in BYTE_PAYLOADS]
        cases += [
            pytest.param(endpoint, digits, id=f"{endpoint}-{digits}-digits")
            for digits in OTHER_DIGITS
        ]
    return cases


def raw_query(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A query string of ``pairs`` as they are: the values are not quoted again."""
    return b"&".join(name + b"=" + value for name, value in pairs)


def get_raw(client: CSRFClient, path: str, query: bytes) -> TestResponse:
    """GET ``path?query`` with the query string's bytes exactly as given.

    The test client's own URL handling would decode and quote them again (raw bytes that are
    not UTF-8 never reach the app that way); a request made from an environ keeps them, as a
    server passes them on (WSGI carries them as latin-1 text).
    """
    environ = EnvironBuilder(path=path).get_environ()
    environ["QUERY_STRING"] = query.decode("latin-1")
    return client.open(WsgiRequest(environ), buffered=True)


@pytest.mark.parametrize(("endpoint", "kind"), _page_cases())
def test_a_hostile_query_string_gets_the_page_never_a_500(
    app: Flask, client: CSRFClient, auth: AuthActions, rows: Rows, endpoint: str, kind: str
) -> None:
    target = PAGES[endpoint]
    if target.role != "anonymous":
        auth.login(rows[target.role])
    with app.test_request_context():
        url = urlsplit(url_for(endpoint, **target.args(rows)))
    # The page's own arguments (a static file's version, a bulk action) stay valid.
    valid = [*parse_qsl(url.query), *target.query(rows).items()]
    own = {name for name, _ in valid}
    encoded = [(quote(k, safe="").encode(), quote(v, safe="").encode()) for k, v in valid]

    if kind in BYTE_PAYLOADS:
        # Every other argument, and one argument's name, not UTF-8; compared with odd text.
        def query(payload: bytes) -> bytes:
            spoiled = [(name.encode(), payload) for name in QUERY_NAMES if name not in own]
            return raw_query([*encoded, *spoiled, (payload, b"1")])

        hostile, expected = query(BYTE_PAYLOADS[kind]), query(ODD_TEXT)
    else:
        # Every integer argument in other digits; compared with no such argument at all.
        values = {"page": "2", "per_page": "50", **{k: v for k, v in valid if k in INTEGER_ARGS}}
        kept = [(k, v) for k, v in encoded if k.decode() not in INTEGER_ARGS]
        others = [
            (name.encode(), quote(values[name].translate(OTHER_DIGITS[kind])).encode())
            for name in INTEGER_ARGS
            if name in values
        ]
        hostile, expected = raw_query([*kept, *others]), raw_query(kept)

    response = get_raw(client, url.path, hostile)
    baseline = get_raw(client, url.path, expected)
    page = response.get_data(as_text=True)

    # /readyz answers 503 here (the test database was not made by the migrations): the same
    # answer as to the plain request is what counts.
    assert response.status_code != 500, page
    assert response.status_code == baseline.status_code, (hostile, page)
    assert "Something went wrong" not in page


# -- Property-based: every form's text fields, whatever text they are sent ---------------------


def _all_forms() -> list[type[Form]]:
    """Every form class of every blueprint (the app imports them all)."""
    found: list[type[Form]] = []
    pending = list(Form.__subclasses__())
    while pending:
        form_class = pending.pop()
        found.append(form_class)
        pending.extend(form_class.__subclasses__())
    return sorted(set(found), key=lambda form_class: form_class.__qualname__)


ALL_FORMS = _all_forms()
# Text with the awkward parts over-represented: control characters, U+FFFD, long runs and
# white space. Lone surrogates are left out: they cannot be encoded, so no request carries one
# (undecodable bytes arrive as U+FFFD, which is here).
awkward_text = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ufffd", "\n", "\r", "\t", " "]),
    ),
    max_size=600,
)


def test_every_form_subclasses_the_base_form() -> None:
    names = {form_class.__name__ for form_class in ALL_FORMS}
    assert {"LoginForm", "ItemForm", "PostForm", "UserEditForm", "TagMergeForm"} <= names
    modules = {form_class.__module__ for form_class in ALL_FORMS}
    for blueprint in ("auth", "account", "items", "posts", "admin"):
        assert f"webapp.{blueprint}.forms" in modules
    flask_forms = {
        cls.__name__
        for module in sorted(modules)
        for cls in vars(sys.modules[module]).values()
        if isinstance(cls, type) and issubclass(cls, FlaskForm) and not issubclass(cls, Form)
    }
    assert not flask_forms, f"forms not built on webapp.web.forms.Form: {flask_forms}"


@pytest.mark.parametrize("form_class", ALL_FORMS, ids=lambda cls: cls.__qualname__)
@settings(max_examples=40, deadline=None)
@given(values=st.lists(awkward_text, min_size=1, max_size=8))
def test_a_field_that_accepts_text_holds_only_clean_bounded_text(
    form_class: type[Form], values: list[str]
) -> None:
    assert_text_fields_clean(form_class, values)


@pytest.mark.parametrize("form_class", ALL_FORMS, ids=lambda cls: cls.__qualname__)
@pytest.mark.parametrize("value", ["\x0c", " \x0b ", "\x1c\x1d", "\x85"])
def test_control_characters_that_look_like_white_space_are_refused_too(
    form_class: type[Form], value: str
) -> None:
    """Found by the property test above: an optional field sent only a form feed kept it.

    ``Optional`` clears the errors before it when the text is blank to ``str.strip``; the
    control-character check stops the chain, so nothing later can clear its error.
    """
    assert_text_fields_clean(form_class, [value])


def assert_text_fields_clean(form_class: type[Form], values: list[str]) -> None:
    """Each of the form's text fields, sent ``values`` in turn, ends with an error or clean,
    bounded text."""
    with APP.test_request_context():
        names = [
            field.name
            for field in form_class()
            if isinstance(field, StringField) and field.name != "csrf_token"
        ]
    data = {name: values[n % len(values)] for n, name in enumerate(names)}
    with APP.test_request_context(method="POST", data=data):
        form = form_class()
        form.validate()  # never raises, whatever the text
        for name in names:
            field = form[name]
            if field.errors or isinstance(field, HiddenField) or field.data is None:
                continue
            text = field.data
            assert isinstance(text, str)
            multi_line = isinstance(field, TextAreaField)
            assert not has_control_chars(text, allow_newlines=multi_line), (name, text)
            assert "\ufffd" not in text
            limits = [v.max for v in field.validators if isinstance(v, Length) and v.max > 0]
            assert all(len(text) <= limit for limit in limits), (name, len(text))
