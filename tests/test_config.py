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


def test_production_uses_secure_cookies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 50)
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
