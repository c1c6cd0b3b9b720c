"""Route parameters are bounded: ids never overflow the database, odd page numbers and page
sizes give a sensible page. Generated from the app's URL map where possible."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, url_for
from werkzeug.routing.converters import NumberConverter

from tests.conftest import BASE_TEST_CONFIG
from tests.factories import (
    ItemFactory,
    OutboxMessageFactory,
    PostFactory,
    TagFactory,
    UserFactory,
)
from tests.helpers import AuthActions, CSRFClient
from webapp import create_app
from webapp.extensions import db
from webapp.repositories import AuditRepository, SessionRepository, UserRepository

INT_MAX = 2_147_483_647  # PostgreSQL's integer, which the id columns are
MARK = "rowmark"  # in every listed row's text, so a test can see that rows are shown
ROWS = 45  # more than one page on every list (public lists: 10-20 a page; admin: 20)

APP = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
RULES = list(APP.url_map.iter_rules())


def _int_rules() -> list[tuple[str, str, str]]:
    found = []
    for rule in RULES:
        if any(isinstance(c, NumberConverter) for c in rule._converters.values()):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((rule.endpoint, method, rule.rule))
    return found


INT_RULES = _int_rules()


def test_every_integer_route_parameter_has_a_max() -> None:
    unbounded = [
        f"{rule.rule} <{name}>"
        for rule in RULES
        for name, converter in rule._converters.items()
        if isinstance(converter, NumberConverter)
        and (converter.max is None or converter.max > INT_MAX)
    ]
    assert not unbounded, f"integer parameters without max={INT_MAX}: {unbounded}"
    assert len(INT_RULES) >= 15  # items, posts and the admin's rows


def _fill(rule: str, value: int) -> str:
    """``rule`` with every integer argument set to ``value`` (there are no others in these)."""

    def fill(match: re.Match[str]) -> str:
        assert match.group(1).startswith("int"), f"{rule}: fill in its other arguments here"
        return str(value)

    return re.sub(r"<([^<>]+):[^<>]+>", fill, rule)


@pytest.mark.parametrize("value", [INT_MAX, INT_MAX + 1, 10**20])
@pytest.mark.parametrize(("endpoint", "method", "rule"), INT_RULES)
def test_a_huge_id_is_a_404_not_a_500(
    client: CSRFClient,
    auth: AuthActions,
    endpoint: str,
    method: str,
    rule: str,
    value: int,
) -> None:
    # An admin may open every row there is, so only "no such row" can answer here.
    auth.login(UserFactory(username="root", email="root@example.com", is_admin=True))
    db.session.commit()
    url = _fill(rule, value)
    response = client.open(url, method=method, data={} if method == "POST" else None)
    assert response.status_code == 404, url
    assert "Page not found" in response.get_data(as_text=True)


# Each maps ASCII digits to another script's: ``int`` reads all of these as the number they show.
OTHER_DIGITS = {
    "arabic-indic": str.maketrans("0123456789", "".join(chr(0x0660 + n) for n in range(10))),
    "full-width": str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10))),
}


@pytest.mark.parametrize("digits", sorted(OTHER_DIGITS))
@pytest.mark.parametrize(("endpoint", "method", "rule"), INT_RULES)
def test_an_id_in_other_digits_is_a_404(
    client: CSRFClient, auth: AuthActions, endpoint: str, method: str, rule: str, digits: str
) -> None:
    """``/items/`` and an Arabic-Indic three is not item 3: no page of ours writes that URL."""
    admin = auth.login(UserFactory(username="root", email="root@example.com", is_admin=True))
    rows = {
        "user_id": admin,
        "item_id": ItemFactory(owner=admin),
        "post_id": PostFactory(author=admin),
        "tag_id": TagFactory(),
        "session_id": SessionRepository(db.session).create(user_id=admin.id, key="spare"),
        "message_id": OutboxMessageFactory(),
    }
    db.session.commit()
    rows["event_id"] = AuditRepository(db.session).record(
        "admin.item.update",
        target_type="item",
        target_id=rows["item_id"].id,
        before={"title": "Before"},
        after={"title": rows["item_id"].title},
    )
    db.session.commit()

    def url_with(spell: Callable[[str], str]) -> str:
        return re.sub(r"<int[^:]*:(\w+)>", lambda m: spell(str(rows[m.group(1)].id)), rule)

    ascii_url = url_with(str)
    url = url_with(lambda row_id: row_id.translate(OTHER_DIGITS[digits]))
    if method == "GET":  # the row is there: its own URL finds it
        assert client.get(ascii_url).status_code in {200, 302}, ascii_url
    response = client.open(url, method=method, data={} if method == "POST" else None)
    assert response.status_code == 404, url
    assert "Page not found" in response.get_data(as_text=True)


# -- Page numbers and page sizes ----------------------------------------------------------------


def _reads_paging(view: Callable[..., Any]) -> bool:
    """True when a view (or the list function an admin view wraps) reads paging arguments."""
    functions = [view] + [
        cell.cell_contents
        for cell in (view.__closure__ or ())
        if inspect.isfunction(cell.cell_contents)
    ]
    return any(
        "page_arg(" in source or "parse_params(" in source
        for source in (inspect.getsource(function) for function in functions)
    )


# endpoint -> URL arguments. Every GET page that reads paging arguments must be here or in
# NOT_LISTS (which says why not).
LIST_PAGES: dict[str, dict[str, str]] = {
    "items.index": {},
    "posts.index": {},
    "tags.index": {},
    "tags.detail": {"name": f"{MARK}-0"},
    "profiles.detail": {"username": MARK},
    "admin.users": {},
    "admin.items": {},
    "admin.posts": {},
    "admin.tags": {},
    "admin.audit": {},
    "admin.mail": {},
    "admin.trash": {},
    "account.trash": {},
}
NOT_LISTS = {
    # Exports stream every matching row (no pages); bulk pages read the list's filters.
    *(f"admin.{name}_export" for name in ("users", "items", "posts", "tags", "audit", "mail")),
    *(f"admin.{name}_bulk" for name in ("users", "items", "posts", "tags", "trash")),
    "account.trash_bulk",
}


def test_every_paged_list_is_checked() -> None:
    paged = {
        rule.endpoint
        for rule in RULES
        if "GET" in (rule.methods or set()) and _reads_paging(APP.view_functions[rule.endpoint])
    }
    assert paged, "no view reads page arguments: has page_arg moved?"
    unchecked = sorted(paged - LIST_PAGES.keys() - NOT_LISTS)
    assert not unchecked, f"paged lists missing from LIST_PAGES: {unchecked}"


@pytest.fixture
def listed(app: Flask) -> None:
    """More than a page of everything, by an admin (who may see every list)."""
    author = UserFactory(username=MARK, email="rows@example.com", is_admin=True)
    for n in range(ROWS):
        tag = TagFactory(name=f"{MARK}-{n}")
        PostFactory(author=author, title=f"{MARK} post {n}", tags=[tag])
        ItemFactory(owner=author, title=f"{MARK} item {n}")
        UserFactory(username=f"{MARK}{n}", email=f"{MARK}{n}@example.com")
        OutboxMessageFactory(recipient=f"{MARK}{n}@example.com")
    db.session.commit()


PAGE_ARGS = [
    {"page": "0"},
    {"page": "-1"},
    {"page": str(10**12)},
    {"page": "999999999"},  # past the end: the last page
    {"page": "abc"},
    {"page": "1e3"},
    # Digits that are not ASCII are nonsense too: isdigit() says yes to all of them, int()
    # refuses a superscript (once a 500) and reads the others as the number they show.
    {"page": "\u00b2"},  # superscript two
    {"page": "\u0662"},  # Arabic-Indic two
    {"page": "\uff12"},  # full-width two
    {"per_page": "\u00b9\u2070\u2070"},  # superscript 100
    {"per_page": "\u0665\u0660"},  # Arabic-Indic 50
    {"per_page": str(10**9)},
    {"per_page": "-5"},
    {"per_page": "abc"},
    {"page": "2", "per_page": "0"},
]


def _rows_shown(page: str) -> list[str]:
    return re.findall(rf"{MARK}[\w@.-]*", page)


@pytest.mark.usefixtures("listed")
@pytest.mark.parametrize(
    "args", PAGE_ARGS, ids=lambda a: "&".join(f"{k}={v}" for k, v in a.items())
)
@pytest.mark.parametrize("endpoint", sorted(LIST_PAGES))
def test_odd_page_numbers_and_sizes_give_a_sensible_page(
    app: Flask, client: CSRFClient, auth: AuthActions, endpoint: str, args: dict[str, str]
) -> None:
    admin = UserRepository(db.session).get_by_username(MARK)
    assert admin is not None
    auth.login(admin)
    with app.test_request_context():
        first_url = url_for(endpoint, **LIST_PAGES[endpoint])
        url = url_for(endpoint, **LIST_PAGES[endpoint], **args)
    first = client.get(first_url)
    response = client.get(url)
    assert (first.status_code, response.status_code) == (200, 200), url
    shown = _rows_shown(response.get_data(as_text=True))
    if endpoint == "admin.audit":  # no admin actions here: the log is empty, but it answers
        return
    assert shown, f"{url} shows no rows"
    if args.get("page") not in {"999999999", "2"}:
        # Nonsense is page 1 at the usual size: the same rows as the list's first page.
        assert shown == _rows_shown(first.get_data(as_text=True)), url


# -- Oversized bodies ---------------------------------------------------------------------------

POST_RULES = sorted(
    (rule.endpoint, rule.rule) for rule in RULES if "POST" in (rule.methods or set())
)


def _any_url(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "1", rule)


@pytest.mark.parametrize("kind", ["urlencoded", "multipart"])
@pytest.mark.parametrize(("endpoint", "rule"), POST_RULES)
def test_an_oversized_body_is_a_413_page_on_every_form(
    app: Flask, client: CSRFClient, auth: AuthActions, endpoint: str, rule: str, kind: str
) -> None:
    auth.login(UserFactory(username="root", email="root@example.com", is_admin=True))
    db.session.commit()
    # A view may take more (an import: ``larger_body``); one byte over its own limit is a 413.
    view = app.view_functions[endpoint]
    big = "a" * (getattr(view, "max_content_length", app.config["MAX_CONTENT_LENGTH"]) + 1)
    token = client.csrf_token()
    # Bodies built here as bytes: the test client would spool a large dict into a temporary
    # file that it never closes (a ResourceWarning, an error in this suite).
    if kind == "multipart":
        boundary = "----limit"
        parts = [("csrf_token", token), ("title", big)]
        body = (
            "".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                for name, value in parts
            )
            + f"--{boundary}--\r\n"
        )
        content_type = f"multipart/form-data; boundary={boundary}"
    else:
        body = f"csrf_token={token}&title={big}"
        content_type = "application/x-www-form-urlencoded"
    response = client.post(
        _any_url(rule), data=body.encode(), content_type=content_type, csrf=False
    )
    assert response.status_code == 413, endpoint
    assert "Too large" in response.get_data(as_text=True)
