from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from tests.account_helpers import sign_in
from tests.factories import ItemFactory
from tests.helpers import AuthActions
from webapp import create_app
from webapp.config import ConfigError
from webapp.models import User
from webapp.web.headers import deployment_problems

STRONG_KEY = "kJ3n9Qx7Vw2pLz8Rt5Ym4Hc6Bd1Fg0Se-AaUuIiOo"


@pytest.mark.parametrize("path", ["/", "/healthz", "/auth/login", "/no-such-page"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers  # only in production


def test_pages_use_no_inline_script_or_style(client: FlaskClient) -> None:
    for path in ("/", "/auth/login", "/missing"):
        html = client.get(path).get_data(as_text=True)
        assert "<script" not in html
        assert "style=" not in html
        assert "<style" not in html


def production_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str) -> None:
    monkeypatch.setenv("WEBAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", key)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite'}")
    monkeypatch.setenv("SITE_URL", "https://webapp.example.com")
    monkeypatch.setenv("TRUSTED_HOSTS", "webapp.example.com")


def test_production_sends_hsts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    production_env(monkeypatch, tmp_path, STRONG_KEY)
    response = create_app().test_client().get("/healthz", headers={"Host": "webapp.example.com"})
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize("key", ["short", "a" * 64, "dev-only-insecure-secret-key"])
def test_production_refuses_a_weak_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str
) -> None:
    production_env(monkeypatch, tmp_path, key)
    with pytest.raises(ConfigError, match="SECRET_KEY must be a random value"):
        create_app()


def test_production_refuses_debug_and_insecure_cookies() -> None:
    problems = deployment_problems(
        {
            "SECRET_KEY": STRONG_KEY,
            "DEBUG": True,
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": True,
            "SESSION_COOKIE_HTTPONLY": True,
            "SITE_URL": "https://webapp.example.com",
            "TRUSTED_HOSTS": ["webapp.example.com"],
        }
    )
    assert problems == [
        "DEBUG must be off in production.",
        "SESSION_COOKIE_SECURE must be on in production (cookies only over HTTPS).",
    ]


def test_a_good_production_configuration_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    production_env(monkeypatch, tmp_path, STRONG_KEY)
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert deployment_problems(app.config) == []


@pytest.mark.parametrize(
    ("trusted", "problem"),
    [
        ("webapp.example.com", False),
        ("www.webapp.example.com,webapp.example.com", False),
        (".example.com", False),  # a leading dot trusts every subdomain
        ("www.webapp.example.com", True),
        ("example.com", True),
    ],
)
def test_production_refuses_a_site_url_outside_trusted_hosts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trusted: str, problem: bool
) -> None:
    production_env(monkeypatch, tmp_path, STRONG_KEY)
    monkeypatch.setenv("TRUSTED_HOSTS", trusted)
    if not problem:
        assert create_app().config["SITE_URL"] == "https://webapp.example.com"
        return
    with pytest.raises(ConfigError, match=r"TRUSTED_HOSTS must include the host of SITE_URL"):
        create_app()


def test_a_production_app_answers_only_its_trusted_hosts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    production_env(monkeypatch, tmp_path, STRONG_KEY)
    client = create_app().test_client()
    assert client.get("/healthz", headers={"Host": "webapp.example.com"}).status_code == 200
    refused = client.get("/healthz", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert "does not answer to that host name" in refused.get_data(as_text=True)
    assert refused.headers["Strict-Transport-Security"].startswith("max-age=31536000")


# --- caches -----------------------------------------------------------------------------------

PRIVATE = "private, no-store"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/posts/",
        "/account/",
        "/account/edit",
        "/account/export",
        "/items/",
        "/items/1",
        "/users/alice",
        "/admin/",
        "/admin/users",
        "/admin/audit",
        "/no-such-page",
    ],
)
def test_every_answer_to_a_signed_in_user_is_kept_out_of_caches(
    client: FlaskClient, auth: AuthActions, user: User, admin_user: User, path: str
) -> None:
    ItemFactory(owner=user)
    auth.login(admin_user if path.startswith("/admin/") else user)
    response = client.get(path)
    assert response.status_code in {200, 404}
    assert response.headers["Cache-Control"] == PRIVATE
    assert response.headers.getlist("Cache-Control") == [PRIVATE]


@pytest.mark.parametrize("path", ["/", "/posts/", "/tags/", "/users/alice", "/no-such-page"])
def test_public_pages_for_anonymous_visitors_keep_their_headers(
    client: FlaskClient, user: User, path: str
) -> None:
    response = client.get(path)
    assert "Cache-Control" not in response.headers
    assert "Set-Cookie" not in response.headers


def test_static_files_keep_their_long_cache_for_signed_in_users(
    app: Flask, client: FlaskClient, auth: AuthActions, user: User
) -> None:
    auth.login(user)
    with app.test_request_context():
        stylesheet = url_for("static", filename="css/site.css")
    response = client.get(stylesheet)
    response.close()
    assert response.status_code == 200
    cache = response.cache_control
    assert (cache.public, cache.max_age, cache.immutable, cache.no_store) == (
        True,
        365 * 24 * 3600,
        True,
        False,
    )
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("remember", ["", "y"])
def test_signing_in_and_out_is_not_cached(client: FlaskClient, user: User, remember: str) -> None:
    signed_in = (
        sign_in(client, "alice", remember=remember) if remember else sign_in(client, "alice")
    )
    assert signed_in.status_code == 302
    assert signed_in.headers.getlist("Set-Cookie")
    assert signed_in.headers["Cache-Control"] == PRIVATE

    signed_out = client.post("/auth/logout", data={})
    assert signed_out.status_code == 302
    assert signed_out.headers.getlist("Set-Cookie")  # a new, signed-out session
    assert signed_out.headers["Cache-Control"] == PRIVATE


def test_an_anonymous_page_that_sets_a_cookie_is_not_cached(client: FlaskClient) -> None:
    """The sign-in form starts a session for its CSRF token: a shared cache must not hand
    that cookie to the next visitor. Once the session is settled, nothing is set any more."""
    responses = [client.get("/auth/login") for _ in range(3)]
    assert responses[0].headers.getlist("Set-Cookie")
    assert "Set-Cookie" not in responses[-1].headers
    for response in responses:
        if "Set-Cookie" in response.headers:
            assert response.headers["Cache-Control"] == PRIVATE
        else:
            assert "Cache-Control" not in response.headers
