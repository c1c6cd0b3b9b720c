from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from webapp import create_app
from webapp.config import ConfigError
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
