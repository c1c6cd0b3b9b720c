"""Open redirects: every parameter that drives a redirect keeps the visitor on this site.

The redirecting endpoints are found in the views' source (``redirect_next`` or a ``next``
read from the request); each must have an entry in ``REDIRECTS`` saying how to drive it.
The sign-in guard (anonymous visitors of a protected page, the admin console included) is
followed through to the redirect after signing in.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

import pyotp
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.conftest import BASE_TEST_CONFIG
from tests.factories import PASSWORD, UserFactory
from tests.helpers import AuthActions, CSRFClient
from webapp import create_app
from webapp.auth import two_factor
from webapp.extensions import db
from webapp.models import User, utcnow
from webapp.repositories import UserRepository

NEW_PASSWORD = "a-brand-new-passphrase"
PAYLOADS = [
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "http://localhost@evil.example/",
    "https:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    "/ok\r\nLocation: https://evil.example",
    "/ok%0d%0aSet-Cookie:%20x=y",
    " //evil.example",
    "/\x00//evil.example",
    "data:text/html,<script>alert(1)</script>",
]
SAFE = "/items/?page=2"

APP = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def _redirecting_endpoints() -> set[str]:
    """Endpoints whose view redirects to a target taken from the request."""
    found = set()
    for endpoint, view in APP.view_functions.items():
        try:
            source = inspect.getsource(view)
        except (OSError, TypeError):
            continue
        markers = ("redirect_next(", 'get("next"', "request.referrer", "return_to")
        if any(marker in source for marker in markers):
            found.add(endpoint)
    return found


def stays_on_site(location: str) -> None:
    parts = urlsplit(location)
    assert parts.scheme in {"", "http", "https"}, location
    assert parts.netloc in {"", "localhost"}, location
    relative = location if not parts.netloc else location.split(parts.netloc, 1)[1]
    assert relative.startswith("/") and not relative.startswith("//"), location
    assert "\\" not in relative, location
    assert not any(ord(char) < 32 for char in location), location
    assert "evil.example" not in parts.netloc


def sign_in(client: CSRFClient, next_value: str, *, in_query: bool) -> TestResponse:
    data = {"login": "alice", "password": PASSWORD}
    if in_query:
        return client.post(f"/auth/login?next={quote(next_value, safe='')}", data=data)
    return client.post("/auth/login", data={**data, "next": next_value})


def register(client: CSRFClient, next_value: str, *, in_query: bool) -> TestResponse:
    data = {
        "email": "new.person@example.com",
        "username": "newperson",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }
    if in_query:
        return client.post(f"/auth/register?next={quote(next_value, safe='')}", data=data)
    return client.post("/auth/register", data={**data, "next": next_value})


def resend(client: CSRFClient, next_value: str, *, in_query: bool) -> TestResponse:
    if in_query:
        return client.post(f"/auth/confirm/resend?next={quote(next_value, safe='')}", data={})
    return client.post("/auth/confirm/resend", data={"next": next_value})


def signed_in_login_page(client: CSRFClient, next_value: str, *, in_query: bool) -> TestResponse:
    """The sign-in page, visited while signed in, sends the visitor on to ``next``."""
    return client.get(f"/auth/login?next={quote(next_value, safe='')}")


Driver = Callable[..., TestResponse]


def post_with_next(path: str, data: dict[str, str]) -> Driver:
    def drive(client: CSRFClient, next_value: str, *, in_query: bool) -> TestResponse:
        if in_query:
            return client.post(f"{path}?next={quote(next_value, safe='')}", data=data)
        return client.post(path, data={**data, "next": next_value})

    return drive


def two_factor_code(client: CSRFClient, next_value: str, *, in_query: bool) -> TestResponse:
    """alice has two-factor on; her password is accepted; the code page sends her on."""
    user = UserRepository(db.session).get_by_username("alice")
    assert user is not None
    secret = two_factor.begin_setup(user)
    user.totp_enabled_at = utcnow()
    db.session.commit()
    client.post("/auth/login", data={"login": "alice", "password": PASSWORD})
    code = {"code": pyotp.TOTP(secret).now()}
    return post_with_next("/auth/two-factor", code)(client, next_value, in_query=in_query)


def signed_in_code_page(client: CSRFClient, next_value: str, *, in_query: bool) -> TestResponse:
    return client.get(f"/auth/two-factor?next={quote(next_value, safe='')}")


# endpoint -> (signed in first?, how to drive its redirect with a ``next`` value)
REDIRECTS: dict[str, list[tuple[bool, Driver]]] = {
    "auth.login": [(False, sign_in), (True, signed_in_login_page)],
    "auth.register": [(False, register)],
    "auth.confirm_resend": [(True, resend)],
    "auth.two_factor": [(False, two_factor_code), (True, signed_in_code_page)],
    "auth.reauthenticate": [(True, post_with_next("/auth/reauthenticate", {"password": PASSWORD}))],
    "account.revoke_sessions": [(True, post_with_next("/account/sessions/revoke", {}))],
}


def test_every_redirecting_endpoint_is_driven() -> None:
    found = _redirecting_endpoints()
    assert {"auth.login", "auth.register"} <= found
    missing = sorted(found - REDIRECTS.keys())
    assert not missing, f"views redirecting to a target from the request, not tested: {missing}"


CASES = [
    pytest.param(endpoint, n, payload, where, id=f"{endpoint}-{n}-{where}-{payload!r}")
    for endpoint, drivers in sorted(REDIRECTS.items())
    for n in range(len(drivers))
    for payload in [*PAYLOADS, SAFE]
    for where in ("form", "query")
]


@pytest.fixture
def alice(app: Flask) -> User:
    user = UserFactory(username="alice", email="alice@example.com")
    db.session.commit()
    return user


@pytest.mark.parametrize(("endpoint", "n", "payload", "where"), CASES)
def test_a_redirect_stays_on_this_site(
    client: CSRFClient,
    auth: AuthActions,
    alice: User,
    endpoint: str,
    n: int,
    payload: str,
    where: str,
) -> None:
    signed_in, drive = REDIRECTS[endpoint][n]
    if signed_in:
        auth.login(alice)
    response = drive(client, payload, in_query=where == "query")
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    stays_on_site(location)
    if payload == SAFE:  # the check lets a path on this site through unchanged
        assert location == SAFE
    for name, value in response.headers:
        assert name.lower() != "location" or value == location  # one Location, not injected
        assert name.lower() != "set-cookie" or "x=y" not in value


# -- The sign-in guard: a protected page sends anonymous visitors to sign in, then back ------

PROTECTED = ["/admin/", "/admin/users", "/items/", "/account/", "/posts/new"]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("path", PROTECTED)
def test_the_sign_in_guard_brings_visitors_back_to_this_site_only(
    app: Flask, client: CSRFClient, alice: User, path: str, payload: str
) -> None:
    alice.is_admin = True
    db.session.commit()
    response = client.get(f"{path}?q={quote(payload, safe='')}&next={quote(payload, safe='')}")
    assert response.status_code == 302
    guard = response.headers["Location"]
    stays_on_site(guard)
    assert urlsplit(guard).path == "/auth/login"
    (next_value,) = parse_qs(urlsplit(guard).query)["next"]
    assert next_value.startswith(path)
    signed_in = sign_in(client, next_value, in_query=True)
    assert signed_in.status_code == 302
    stays_on_site(signed_in.headers["Location"])
    assert urlsplit(signed_in.headers["Location"]).path == path


def test_payloads_in_the_path_do_not_leave_the_site(client: CSRFClient, alice: User) -> None:
    for payload in ("//evil.example", "/\\evil.example", "/%2F%2Fevil.example"):
        for prefix in ("", "/admin", "/items"):
            # Sent as the raw path: the test client would read "//host" as another host.
            response = client.get("/", environ_overrides={"PATH_INFO": f"{prefix}{payload}"})
            assert response.status_code in {302, 308, 404}, f"{prefix}{payload}"
            if response.status_code != 404:
                stays_on_site(response.headers["Location"])
