"""Host names: emailed links are built on SITE_URL, and hosts outside TRUSTED_HOSTS are refused.

Mail goes to a real local SMTP server; the test client's own host is ``localhost`` and the
tests' SITE_URL is ``https://webapp.test``, so a link shows which of the two it was built on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.account_helpers import NEW_PASSWORD, text
from tests.conftest import Mailbox
from tests.helpers import csrf_token_from
from webapp.config import DEV_SITE_URL, ConfigError, load_config
from webapp.models import User

SITE = "https://webapp.test"
FORGED = "evil.example"


@pytest.fixture
def app_config(mailbox: Mailbox, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Mail to the test server, and the test's own settings (``indirect`` parameters)."""
    return {**mailbox.config, **getattr(request, "param", {})}


def submit(client: FlaskClient, path: str, data: dict[str, str], **request: Any) -> Any:
    """Fetch the form at ``path`` and send it, both with ``request``'s headers or base URL (as
    a forger would: the session cookie and its CSRF token then belong to the forged host)."""
    form = client.get(path, **request)
    assert form.status_code == 200
    token = csrf_token_from(text(form))
    return client.post(path, data={**data, "csrf_token": token}, **request)


def forgot(client: FlaskClient, **headers: str) -> Any:
    return submit(client, "/auth/forgot", {"email": "alice@example.com"}, headers=headers)


def assert_all_links_on(mailbox: Mailbox, address: str, site: str) -> None:
    body = mailbox.body(address)
    assert FORGED not in body
    links = [word for word in body.split() if "://" in word]
    assert links
    assert all(link.startswith(f"{site}/auth/") for link in links), links


FORGED_HEADERS = [
    pytest.param({"Host": FORGED}, {}, id="host"),
    pytest.param({"X-Forwarded-Host": FORGED}, {}, id="x-forwarded-host"),
    pytest.param(
        {"X-Forwarded-Host": FORGED, "X-Forwarded-For": "203.0.113.9"},
        {"PROXY_FIX_HOPS": 1},
        id="x-forwarded-host-behind-a-trusted-proxy",
    ),
]


@pytest.mark.parametrize(("headers", "app_config"), FORGED_HEADERS, indirect=["app_config"])
def test_a_reset_link_points_at_site_url_whatever_host_the_request_named(
    client: FlaskClient, user: User, mailbox: Mailbox, headers: dict[str, str]
) -> None:
    """Without TRUSTED_HOSTS (as in development) the forged request is served, but the link
    it has mailed still leads to the site."""
    assert forgot(client, **headers).status_code == 302
    assert mailbox.link("alice@example.com", path_only=False).startswith(f"{SITE}/auth/reset/")
    assert_all_links_on(mailbox, "alice@example.com", SITE)

    # The link works, and the notice of the new password points at the site too.
    new_password = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    link = mailbox.link("alice@example.com")
    assert submit(client, link, new_password, headers=headers).status_code == 302
    assert mailbox.last("alice@example.com")["Subject"] == "Your password was changed"
    assert_all_links_on(mailbox, "alice@example.com", SITE)


@pytest.mark.parametrize(("headers", "app_config"), FORGED_HEADERS, indirect=["app_config"])
def test_a_confirmation_link_points_at_site_url_whatever_host_the_request_named(
    client: FlaskClient, mailbox: Mailbox, headers: dict[str, str]
) -> None:
    values = {
        "email": "new.person@example.com",
        "username": "NewPerson",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }
    response = submit(client, "/auth/register", values, headers=headers)
    assert response.status_code == 302
    link = mailbox.link("new.person@example.com", path_only=False)
    assert link.startswith(f"{SITE}/auth/confirm/")
    assert_all_links_on(mailbox, "new.person@example.com", SITE)


@pytest.mark.parametrize("app_config", [{"SITE_URL": "https://example.com/webapp/"}], indirect=True)
def test_links_carry_the_path_of_site_url_not_the_mount_point_of_the_request(
    client: FlaskClient, mailbox: Mailbox, user: User
) -> None:
    mounted = f"http://{FORGED}/other"  # the request's own host and mount point
    email = {"email": "alice@example.com"}
    assert submit(client, "/auth/forgot", email, base_url=mounted).status_code == 302
    link = mailbox.link("alice@example.com", path_only=False)
    assert link.startswith("https://example.com/webapp/auth/reset/")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_host_outside_trusted_hosts_gets_a_400_page(
    app: Flask, client: FlaskClient, user: User, mailbox: Mailbox, method: str
) -> None:
    app.config["TRUSTED_HOSTS"] = ["localhost", "webapp.test"]
    email = {"email": "alice@example.com"}
    response = client.open("/auth/forgot", method=method, data=email, headers={"Host": FORGED})
    assert response.status_code == 400
    page = text(response)
    assert "does not answer to that host name" in page
    assert 'href="/static/css/site.css"' in page  # the site's look, its links relative
    assert FORGED not in page
    assert response.headers["Content-Security-Policy"]
    assert mailbox.messages == []

    # Trusted names (the port does not matter) are served; X-Forwarded-Host is not trusted
    # (ProxyFix is not told to), so a forged one changes nothing.
    for host in ("localhost", "webapp.test:8443"):
        assert client.get("/auth/forgot", headers={"Host": host}).status_code == 200
    assert forgot(client, **{"X-Forwarded-Host": FORGED}).status_code == 302
    assert mailbox.link("alice@example.com", path_only=False).startswith(f"{SITE}/auth/reset/")


# --- the settings -----------------------------------------------------------------------------


def test_trusted_hosts_and_site_url_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTED_HOSTS", "webapp.example.com, www.webapp.example.com")
    monkeypatch.setenv("SITE_URL", "HTTPS://WebApp.Example.com/")
    config = load_config(tmp_path, None)
    assert config["TRUSTED_HOSTS"] == ["webapp.example.com", "www.webapp.example.com"]
    assert config["SITE_URL"] == "https://webapp.example.com"


def test_development_has_a_site_url_and_answers_any_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WEBAPP_ENV", "FLASK_ENV", "SITE_URL", "TRUSTED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(tmp_path, None)
    assert config["SITE_URL"] == DEV_SITE_URL == "http://127.0.0.1:5000"
    assert config["TRUSTED_HOSTS"] is None


@pytest.mark.parametrize(
    "value",
    [
        "example.com",
        "ftp://example.com",
        "https://",
        "https://example.com/?a=b",
        "https://example.com/#top",
        "https://user:pw@example.com",
        "https://example.com:0",
        "https://example.com:99999",
    ],
)
def test_a_malformed_site_url_stops_the_start_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SITE_URL", value)
    with pytest.raises(ConfigError, match="SITE_URL must be the site's public address"):
        load_config(tmp_path, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com", "https://example.com"),
        ("https://example.com/", "https://example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://example.com/shop/", "https://example.com/shop"),
    ],
)
def test_site_url_is_normalised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("SITE_URL", value)
    assert load_config(tmp_path, None)["SITE_URL"] == expected
