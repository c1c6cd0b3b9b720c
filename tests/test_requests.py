"""How the app reads what a request carries: integers (one parser for all of them) and query
strings whose bytes are not UTF-8."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, request
from werkzeug.test import EnvironBuilder

from tests.factories import UserFactory
from webapp.admin.params import parse_params
from webapp.auth.login import load_user
from webapp.extensions import db
from webapp.repositories import SessionRepository
from webapp.repositories.admin import USER_LIST
from webapp.repositories.keyset import DEFAULT_PER_PAGE
from webapp.web.requests import INT_MAX, FormRequest, int_arg, page_arg, parse_int

# Digits that are not ASCII: ``str.isdigit`` is true for all of them, ``int`` takes the last
# three (and refuses the first two with a ValueError).
NON_ASCII_DIGITS = [
    "\u00b2",  # superscript two
    "1\u00b2",  # "1" then a superscript two
    "\u0663",  # Arabic-Indic three
    "\uff13",  # full-width three
    "\U0001d7d9",  # mathematical double-struck one
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("7", 7),
        ("0012", 12),
        (str(INT_MAX), INT_MAX),
        (str(INT_MAX + 1), None),
        ("9" * 10_000, None),
        ("", None),
        (None, None),
        (12, None),  # not text: never from a request
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1 ", None),
        ("1_000", None),
        ("1e3", None),
        ("0x10", None),
        ("1.0", None),
        *[(digits, None) for digits in NON_ASCII_DIGITS],
    ],
)
def test_parse_int_takes_only_ascii_digits_within_bounds(text: Any, expected: int | None) -> None:
    assert parse_int(text) == expected


def test_parse_int_keeps_to_its_range() -> None:
    assert parse_int("0", minimum=1) is None
    assert parse_int("1", minimum=1) == 1
    assert parse_int("100", maximum=99) is None
    assert parse_int("99", maximum=99) == 99


@pytest.mark.parametrize("value", ["", "abc", "0", "-3", *NON_ASCII_DIGITS, "9" * 20])
def test_page_arg_is_page_one_for_anything_odd(value: str) -> None:
    app = Flask(__name__)
    with app.test_request_context(query_string={"page": value}):
        assert page_arg() == 1
        assert int_arg("page", 5, minimum=1) == 5


def test_int_arg_reads_the_query_string_or_the_given_arguments() -> None:
    app = Flask(__name__)
    with app.test_request_context(query_string={"page": "3", "size": "40"}):
        assert page_arg() == 3
        assert int_arg("size", 20, maximum=100) == 40
        assert int_arg("size", 20, maximum=30) == 20
        assert int_arg("size", 20, args={"size": "\uff14"}) == 20
        assert int_arg("size", 20, args={"size": "25"}) == 25


@pytest.mark.parametrize("value", NON_ASCII_DIGITS)
def test_admin_page_size_in_other_digits_is_the_default(value: str) -> None:
    assert parse_params(USER_LIST, {"per_page": value}).per_page == DEFAULT_PER_PAGE
    assert parse_params(USER_LIST, {"per_page": "50"}).per_page == 50


ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + n) for n in range(10)))
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10)))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda uid, key: f"{uid.translate(ARABIC_INDIC)}:{key}",
        lambda uid, key: f"{uid}:{key.translate(ARABIC_INDIC)}",
        lambda uid, key: f"{uid.translate(FULL_WIDTH)}:{key.translate(FULL_WIDTH)}",
        lambda uid, key: f"{uid}:\u00b9",
        lambda uid, key: f":{key}",
        lambda uid, key: f"{uid}:",
    ],
    ids=["id-arabic-indic", "key-arabic-indic", "full-width", "superscript", "no-id", "no-key"],
)
def test_a_session_token_in_other_digits_names_no_one(
    app: Flask, spoil: Callable[[str, str], str]
) -> None:
    user = UserFactory()
    key = "2718281828"  # digits, which the spoilers turn into others
    SessionRepository(db.session).create(user_id=user.id, key=key)
    uid = str(user.id)
    with app.test_request_context(method="POST"):
        assert load_user(f"{uid}:{key}") is user
        assert load_user(spoil(uid, key)) is None


# -- Query strings that are not UTF-8 -----------------------------------------------------------


def _request(raw_query: bytes) -> FormRequest:
    """A request whose query string holds ``raw_query`` as it came (WSGI: bytes as latin-1)."""
    environ = EnvironBuilder(path="/posts/").get_environ()
    environ["QUERY_STRING"] = raw_query.decode("latin-1")
    return FormRequest(environ)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"q=%FF%FE", {"q": ["\ufffd\ufffd"]}),
        (b"q=\xff\xfe", {"q": ["\ufffd\ufffd"]}),
        (b"q=ab%FFcd&page=2", {"q": ["ab\ufffdcd"], "page": ["2"]}),
        (b"q=ab\xffcd&page=2", {"q": ["ab\ufffdcd"], "page": ["2"]}),
        (b"%FF=1", {"\ufffd": ["1"]}),
        (b"\xff=1", {"\ufffd": ["1"]}),
        (b"q=%E2%82", {"q": ["\ufffd"]}),  # a character cut short
        # UTF-8, raw or percent-encoded, reads as it always did.
        (b"q=caf%C3%A9+cr%C3%A8me", {"q": ["caf\u00e9 cr\u00e8me"]}),
        (b"q=caf\xc3\xa9", {"q": ["caf\u00e9"]}),
        (b"q=&tag=a&tag=b", {"q": [""], "tag": ["a", "b"]}),
    ],
)
def test_query_string_bytes_that_are_not_utf8_read_as_replacement_characters(
    raw: bytes, expected: dict[str, list[str]]
) -> None:
    assert _request(raw).args.to_dict(flat=False) == expected


def test_the_app_reads_requests_with_its_request_class(app: Flask) -> None:
    with app.test_request_context("/posts/?q=%FF"):
        assert isinstance(request._get_current_object(), FormRequest)  # type: ignore[attr-defined]
        assert request.args["q"] == "\ufffd"
