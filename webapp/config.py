"""Configuration: safe laptop defaults, overridden by the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEV_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 - refused outside development


class ConfigError(RuntimeError):
    """Raised when the application cannot start with the configuration it was given."""


def normalise_database_url(url: str) -> str:
    """Point PostgreSQL URLs at psycopg2 (SQLAlchemy 2.1 defaults to psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class Config:
    """Defaults for a laptop; every value may be overridden by the environment."""

    ENV = "development"
    TESTING = False
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}
    MAX_CONTENT_LENGTH = 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    MAIL_SERVER: str | None = None
    MAIL_PORT = 25
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_USE_TLS = False
    MAIL_FROM = "webapp <no-reply@localhost>"
    PER_PAGE = 20


def load_config(instance_path: Path, test_config: dict[str, Any] | None) -> dict[str, Any]:
    """Build the configuration mapping from the defaults, the environment and ``test_config``."""
    config = {key: getattr(Config, key) for key in dir(Config) if key.isupper()}
    env = os.environ
    config["ENV"] = env.get("WEBAPP_ENV", env.get("FLASK_ENV", "development"))
    config["SECRET_KEY"] = env.get("SECRET_KEY")
    config["SQLALCHEMY_DATABASE_URI"] = env.get(
        "DATABASE_URL", f"sqlite:///{instance_path / 'webapp.sqlite'}"
    )
    config["RATELIMIT_STORAGE_URI"] = env.get("RATELIMIT_STORAGE_URI", "memory://")
    config["MAIL_SERVER"] = env.get("MAIL_SERVER") or None
    config["MAIL_PORT"] = _env_int("MAIL_PORT", 25)
    config["MAIL_USERNAME"] = env.get("MAIL_USERNAME") or None
    config["MAIL_PASSWORD"] = env.get("MAIL_PASSWORD") or None
    config["MAIL_USE_TLS"] = _env_bool("MAIL_USE_TLS", False)
    config["MAIL_FROM"] = env.get("MAIL_FROM", Config.MAIL_FROM)
    # The host names this site answers to. Links in emails are built from the request's Host
    # header; set this in production so that a forged header is refused, not mailed out.
    if env.get("TRUSTED_HOSTS"):
        config["TRUSTED_HOSTS"] = [h.strip() for h in env["TRUSTED_HOSTS"].split(",") if h.strip()]
    if test_config:
        config.update(test_config)
        config.setdefault("ENV", "testing")

    if config["ENV"] == "production":
        config["SESSION_COOKIE_SECURE"] = True
        config["REMEMBER_COOKIE_SECURE"] = True
    if not config.get("SECRET_KEY"):
        if config["ENV"] in {"development", "testing"} or config.get("TESTING"):
            config["SECRET_KEY"] = DEV_SECRET_KEY
        else:
            raise ConfigError(
                "SECRET_KEY is not set. Outside development the application refuses to start "
                "without one: export SECRET_KEY to a long random value, e.g. "
                '`python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
            )
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
    return config
