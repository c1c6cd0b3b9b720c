"""Configuration: safe laptop defaults, overridden by the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEV_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 - refused outside development
DEV_SITE_URL = "http://127.0.0.1:5000"  # where ``make run`` serves
LAPTOP_ENVS = frozenset({"development", "testing"})


class ConfigError(RuntimeError):
    """Raised when the application cannot start with the configuration it was given."""


def normalise_database_url(url: str) -> str:
    """Point PostgreSQL URLs at psycopg2 (SQLAlchemy 2.1 defaults to psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def normalise_site_url(value: str) -> str:
    """``SITE_URL`` as links are built on it: ``scheme://host[:port][/prefix]``, no final slash."""
    parts = urlsplit(value.strip())
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or not port_ok
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            "SITE_URL must be the site's public address, such as https://example.com or "
            f"https://example.com/prefix, not {value!r}."
        )
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_count(name: str, default: int) -> int:
    """A whole number >= 0 from the environment; anything else stops the start with its name."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number >= 0, not {value!r}.")
    return int(value)


def _env_seconds(name: str, default: float) -> float:
    """A number of seconds >= 0 from the environment (e.g. ``0.5``)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"{name} must be a number of seconds >= 0, not {value!r}.")
    return seconds


def engine_options(database_url: str) -> dict[str, Any]:
    """SQLAlchemy engine options: pool sizes for a server database (liveness: webapp.db.session).

    Each gunicorn worker has its own pool; a request holds one connection at a time, so a
    worker needs about as many as it has threads. SQLite (a file or memory) takes no sizes.
    """
    options: dict[str, Any] = dict(Config.SQLALCHEMY_ENGINE_OPTIONS)
    if database_url.startswith("sqlite"):
        return options
    options["pool_size"] = _env_count("DB_POOL_SIZE", 5)
    options["max_overflow"] = _env_count("DB_MAX_OVERFLOW", 10)
    options["pool_timeout"] = _env_count("DB_POOL_TIMEOUT", 30)
    options["pool_recycle"] = _env_count("DB_POOL_RECYCLE", 1800)
    return options


class Config:
    """Defaults for a laptop; every value may be overridden by the environment."""

    ENV = "development"
    TESTING = False
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}
    # Seconds a pooled connection may sit idle before it is pinged on its next use.
    DB_PING_AFTER_IDLE = 1.0
    MAX_CONTENT_LENGTH = 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    # Flask-Login's own default, stated: "remember me" lasts a year from the sign-in. A session
    # record idle for longer than this (and than Flask's PERMANENT_SESSION_LIFETIME) can never
    # be used again: ``flask sessions prune`` erases it.
    REMEMBER_COOKIE_DURATION = timedelta(days=365)
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_KEY_PREFIX = "webapp"
    RATELIMIT_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    # If Redis goes away, limits hold per process until it is back, instead of a 500 per request.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # How many proxies in front of the app set X-Forwarded-For/-Proto (0: trust no such header).
    PROXY_FIX_HOPS = 0
    # Cache lifetime of a static file requested with its current content version (?v=...).
    STATIC_MAX_AGE = 365 * 24 * 3600
    MAIL_SERVER: str | None = None
    MAIL_PORT = 25
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_USE_TLS = False
    MAIL_FROM = "webapp <no-reply@localhost>"
    # The outbox's deliverer (``flask mail deliver``): attempts before a message is marked
    # failed, and the backoff between them (doubling from the base, up to the max, jittered).
    MAIL_MAX_ATTEMPTS = 8
    MAIL_RETRY_BASE_SECONDS = 30.0
    MAIL_RETRY_MAX_SECONDS = 3600.0
    # Days a sent message stays listed at /admin/mail before ``flask mail prune`` erases it
    # (failed and pending ones stay until they are dealt with).
    MAIL_KEEP_SENT_DAYS = 30
    # With no MAIL_SERVER (development and tests only), the app writes the mail a request
    # queued to the log itself, after the request: no deliverer process needed on a laptop.
    MAIL_DELIVER_TO_LOG = True
    # The site's public address (scheme, host, optional path prefix): links in emails.
    SITE_URL: str | None = None
    # The host names the site answers to; None answers any (development and testing only).
    TRUSTED_HOSTS: list[str] | None = None
    PER_PAGE = 20
    # Days a deleted item, post or user stays in the trash before ``flask trash purge``
    # erases it.
    TRASH_RETENTION_DAYS = 30
    # Migrations on PostgreSQL (DESIGN §8): how long a migration may wait for a lock before it
    # gives up (so it never queues every client behind it), and how long one statement may run.
    MIGRATION_LOCK_TIMEOUT = 5.0
    MIGRATION_STATEMENT_TIMEOUT = 60.0
    # Hot standbys that carry reads (webapp.db.replicas); empty: everything on DATABASE_URL.
    MIGRATIONS_DATABASE_URL: str | None = None
    DATABASE_REPLICA_URLS: list[str] = []
    REPLICA_MAX_LAG_SECONDS = 10.0
    REPLICA_RETRY_SECONDS = 5.0
    # How old a replica's cached replayed position may be before a read checks it again.
    REPLICA_POSITION_MAX_AGE = 0.25
    # A session record's "last active" is written at most this often (a page view rarely writes).
    SESSION_ACTIVITY_SECONDS = 60
    # Two-factor secrets' Fernet key(s), comma-separated; unset: derived from SECRET_KEY.
    TOTP_ENCRYPTION_KEY: str | None = None
    # Admins must have two-factor sign-in on before any /admin page opens.
    ADMIN_REQUIRE_TWO_FACTOR = True
    # What matters (password, email, two-factor, deletion, admin role changes) needs a
    # sign-in at most this many seconds old.
    REAUTH_SECONDS = 600
    # A password accepted on the sign-in page waits this long for its two-factor code.
    TWO_FACTOR_PENDING_SECONDS = 300


def missing_settings(config: dict[str, Any]) -> list[str]:
    """What the application refuses to start without, one message per missing setting."""
    missing = []
    if not config.get("SECRET_KEY"):
        missing.append(
            "SECRET_KEY is not set. Outside development the application refuses to start "
            "without one: export SECRET_KEY to a long random value, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
        )
    if not config.get("SITE_URL"):
        missing.append(
            "SITE_URL is not set. Outside development the application refuses to start "
            "without it, as every link in an email is built on it: export SITE_URL to the "
            "site's public address, e.g. SITE_URL=https://example.com."
        )
    if config.get("ENV") == "production" and not config.get("TRUSTED_HOSTS"):
        missing.append(
            "TRUSTED_HOSTS is not set. In production the application refuses to start "
            "without it (as Django does without ALLOWED_HOSTS): export TRUSTED_HOSTS to the "
            "comma-separated host names the site answers to, e.g. "
            "TRUSTED_HOSTS=example.com,www.example.com."
        )
    return missing


def check_totp_keys(value: str | None) -> None:
    """Refuse to start with a ``TOTP_ENCRYPTION_KEY`` that is not Fernet keys, rather than
    fail on the first two-factor page."""
    from cryptography.fernet import Fernet

    for key in (value or "").split(","):
        if not key.strip():
            continue
        try:
            Fernet(key.strip())
        except ValueError as error:
            raise ConfigError(
                "TOTP_ENCRYPTION_KEY must be one or more Fernet keys, comma-separated: make "
                'one with `python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`.'
            ) from error


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
    config["RATELIMIT_ENABLED"] = _env_bool("RATELIMIT_ENABLED", True)
    # Individual limits (RATELIMIT_LOGIN_ADDRESS="20 per minute", ...; see webapp/auth/limits.py).
    for name, value in env.items():
        if name.startswith("RATELIMIT_") and name.endswith(("_ADDRESS", "_ACCOUNT", "_USER")):
            config[name] = value
    config["RATELIMIT_KEY_PREFIX"] = env.get("RATELIMIT_KEY_PREFIX", Config.RATELIMIT_KEY_PREFIX)
    config["PROXY_FIX_HOPS"] = _env_count("PROXY_FIX_HOPS", 0)
    config["DB_PING_AFTER_IDLE"] = _env_seconds("DB_PING_AFTER_IDLE", Config.DB_PING_AFTER_IDLE)
    for name in ("MIGRATION_LOCK_TIMEOUT", "MIGRATION_STATEMENT_TIMEOUT"):
        config[name] = _env_seconds(name, getattr(Config, name))
    config["MAIL_SERVER"] = env.get("MAIL_SERVER") or None
    config["MAIL_PORT"] = _env_int("MAIL_PORT", 25)
    config["MAIL_USERNAME"] = env.get("MAIL_USERNAME") or None
    config["MAIL_PASSWORD"] = env.get("MAIL_PASSWORD") or None
    config["MAIL_USE_TLS"] = _env_bool("MAIL_USE_TLS", False)
    config["MAIL_FROM"] = env.get("MAIL_FROM", Config.MAIL_FROM)
    config["TRASH_RETENTION_DAYS"] = max(
        _env_count("TRASH_RETENTION_DAYS", Config.TRASH_RETENTION_DAYS), 1
    )
    config["MAIL_KEEP_SENT_DAYS"] = max(
        _env_count("MAIL_KEEP_SENT_DAYS", Config.MAIL_KEEP_SENT_DAYS), 1
    )
    config["MAIL_MAX_ATTEMPTS"] = max(_env_count("MAIL_MAX_ATTEMPTS", Config.MAIL_MAX_ATTEMPTS), 1)
    for name in ("MAIL_RETRY_BASE_SECONDS", "MAIL_RETRY_MAX_SECONDS"):
        config[name] = _env_seconds(name, getattr(Config, name))
    config["TOTP_ENCRYPTION_KEY"] = env.get("TOTP_ENCRYPTION_KEY") or None
    config["ADMIN_REQUIRE_TWO_FACTOR"] = _env_bool(
        "ADMIN_REQUIRE_TWO_FACTOR", Config.ADMIN_REQUIRE_TWO_FACTOR
    )
    config["REAUTH_SECONDS"] = _env_count("REAUTH_SECONDS", Config.REAUTH_SECONDS)
    # The site's public address: every link in an email is built on it, never on the Host
    # header of the request that caused the email.
    config["SITE_URL"] = env.get("SITE_URL") or None
    # The host names this site answers to (Flask's own setting): any other Host is refused.
    if env.get("TRUSTED_HOSTS"):
        config["TRUSTED_HOSTS"] = [h.strip() for h in env["TRUSTED_HOSTS"].split(",") if h.strip()]
    # What `flask db upgrade` connects to (the primary directly, when DATABASE_URL is PgBouncer).
    config["MIGRATIONS_DATABASE_URL"] = env.get("MIGRATIONS_DATABASE_URL") or None
    config["DATABASE_REPLICA_URLS"] = env.get("DATABASE_REPLICA_URLS", "")
    for name in ("REPLICA_MAX_LAG_SECONDS", "REPLICA_RETRY_SECONDS", "REPLICA_POSITION_MAX_AGE"):
        config[name] = _env_seconds(name, getattr(Config, name))
    if test_config:
        config.update(test_config)
        config.setdefault("ENV", "testing")

    if config["ENV"] == "production":
        config["SESSION_COOKIE_SECURE"] = True
        config["REMEMBER_COOKIE_SECURE"] = True
    if config["ENV"] in LAPTOP_ENVS or config.get("TESTING"):
        config["SECRET_KEY"] = config.get("SECRET_KEY") or DEV_SECRET_KEY
        config["SITE_URL"] = config.get("SITE_URL") or DEV_SITE_URL
    check_totp_keys(config.get("TOTP_ENCRYPTION_KEY"))
    missing = missing_settings(config)
    if missing:
        raise ConfigError("\n".join(missing))
    config["SITE_URL"] = normalise_site_url(config["SITE_URL"])
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
    if not (test_config and "SQLALCHEMY_ENGINE_OPTIONS" in test_config):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(config["SQLALCHEMY_DATABASE_URI"])
    if migrations_url := config.get("MIGRATIONS_DATABASE_URL"):
        config["MIGRATIONS_DATABASE_URL"] = normalise_database_url(migrations_url)
    config["DATABASE_REPLICA_URLS"] = replica_urls(config)
    if config["DATABASE_REPLICA_URLS"]:
        from webapp.db.replicas import bind_options

        config["SQLALCHEMY_BINDS"] = {
            **config.get("SQLALCHEMY_BINDS", {}),
            **bind_options(config["DATABASE_REPLICA_URLS"], config["SQLALCHEMY_ENGINE_OPTIONS"]),
        }
    return config


def replica_urls(config: dict[str, Any]) -> list[str]:
    """``DATABASE_REPLICA_URLS`` (comma-separated, or a list in a test's configuration) as
    psycopg2 URLs; replicas are PostgreSQL standbys of a PostgreSQL primary."""
    value = config.get("DATABASE_REPLICA_URLS") or []
    parts = value.split(",") if isinstance(value, str) else list(value)
    urls = [normalise_database_url(part.strip()) for part in parts if part.strip()]
    if not urls:
        return []
    if not all(u.startswith("postgresql") for u in [config["SQLALCHEMY_DATABASE_URI"], *urls]):
        raise ConfigError(
            "DATABASE_REPLICA_URLS names PostgreSQL hot standbys of a PostgreSQL DATABASE_URL; "
            "both must be postgresql:// URLs."
        )
    return urls
