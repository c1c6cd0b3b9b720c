from __future__ import annotations

from pathlib import Path

import pytest

from webapp import create_app
from webapp.config import ConfigError, load_config, normalise_database_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_are_normalised_to_psycopg2(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


def test_default_database_is_sqlite_in_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("WEBAPP_ENV", raising=False)
    monkeypatch.delenv("FLASK_ENV", raising=False)
    config = load_config(tmp_path, None)
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'webapp.sqlite'}"


def test_database_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db/prod")
    assert load_config(tmp_path, None)["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg2://app@db/prod"
    )


def test_production_refuses_to_start_without_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBAPP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app()


PRODUCTION_ENV = {
    "WEBAPP_ENV": "production",
    "SECRET_KEY": "kJ3n9Qx7Vw2pLz8Rt5Ym4Hc6Bd1Fg0Se-AaUuIiOo",
    "SITE_URL": "https://webapp.example.com",
    "TRUSTED_HOSTS": "webapp.example.com",
}


@pytest.mark.parametrize("name", ["SITE_URL", "TRUSTED_HOSTS"])
def test_production_refuses_to_start_without_site_url_or_trusted_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """As Django refuses to serve without ALLOWED_HOSTS; the message names the variable."""
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite'}")
    create_app()  # complete: it starts
    monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match=f"^{name} is not set.") as refused:
        create_app()
    assert f"export {name}" in str(refused.value)


def test_every_missing_setting_is_named_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBAPP_ENV", "production")
    for name in ("SECRET_KEY", "SITE_URL", "TRUSTED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, None)
    lines = str(refused.value).splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["SECRET_KEY", "SITE_URL", "TRUSTED_HOSTS"]


def test_site_url_is_required_outside_development_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBAPP_ENV", "staging")
    monkeypatch.setenv("SECRET_KEY", "x" * 50)
    monkeypatch.delenv("SITE_URL", raising=False)
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    with pytest.raises(ConfigError, match="^SITE_URL is not set.*$"):
        load_config(tmp_path, None)
    monkeypatch.setenv("SITE_URL", "https://staging.example.com")
    assert load_config(tmp_path, None)["TRUSTED_HOSTS"] is None  # required in production only


def test_production_uses_secure_cookies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    config = load_config(tmp_path, None)
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_development_runs_with_a_development_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBAPP_ENV", raising=False)
    monkeypatch.delenv("FLASK_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert load_config(tmp_path, None)["SECRET_KEY"]


def test_a_malformed_totp_encryption_key_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOTP_ENCRYPTION_KEY", "not-a-fernet-key")
    with pytest.raises(ConfigError, match="TOTP_ENCRYPTION_KEY must be one or more Fernet keys"):
        load_config(tmp_path, None)
    good = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
    monkeypatch.setenv("TOTP_ENCRYPTION_KEY", f"{good}, {good}")
    assert load_config(tmp_path, None)["TOTP_ENCRYPTION_KEY"] == f"{good}, {good}"


def test_admins_need_two_factor_unless_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADMIN_REQUIRE_TWO_FACTOR", raising=False)
    assert load_config(tmp_path, None)["ADMIN_REQUIRE_TWO_FACTOR"] is True
    monkeypatch.setenv("ADMIN_REQUIRE_TWO_FACTOR", "0")
    assert load_config(tmp_path, None)["ADMIN_REQUIRE_TWO_FACTOR"] is False
