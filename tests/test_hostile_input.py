"""Hostile input on every form, generated from the app's URL map.

Every rule that accepts POST must have an entry in ``FORMS`` saying how to reach it (who is
signed in, which URL arguments, which valid values its text fields take). Each form then gets
every payload kind: a missing or forged CSRF token, NUL and other control characters, 10 kB
strings, bytes that are not UTF-8 (``%FF`` and raw), a field sent twice, a JSON body, a file
where text belongs, and a submission with its fields left out. The answer must be a 4xx (400
for CSRF, 422 for a bad form, or the route's documented answer), never a 500, with the error
shown (for a 422: beside the field), and NOTHING stored: every table's rows are the same after.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, url_for
from flask_wtf import FlaskForm
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import TestResponse
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length

from tests.conftest import BASE_TEST_CONFIG
from tests.factories import PASSWORD, ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions, CSRFClient
from webapp import create_app
from webapp.auth.tokens import make_reset_token
from webapp.extensions import db
from webapp.models import POST_BODY_MAX
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


def _field_names(endpoint: str) -> list[str]:
    anything = _Anything()
    rows = dict.fromkeys(("alice", "bob", "admin", "item", "post", "tag", "other"), anything)
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
    }
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
