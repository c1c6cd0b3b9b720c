"""Security headers on every response, and the production configuration check.

What one person may see stays out of shared caches (a proxy's, a CDN's) and out of the
browser's store (the back button on a shared computer): every answer to a signed-in visitor,
and every answer that sets or clears a cookie, is ``Cache-Control: private, no-store``.
Anonymous visitors' pages keep their headers; static files keep their year-long cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request, session
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wrappers import Response

from webapp.config import DEV_SECRET_KEY, ConfigError

# No inline script or style anywhere: everything comes from our own static files.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000; includeSubDomains"
PRIVATE = "private, no-store"
# Where Flask-Login keeps the signed-in user's id in the session.
SESSION_USER_KEY = "_user_id"
MIN_SECRET_KEY_LENGTH = 32


def deployment_problems(config: Mapping[str, Any]) -> list[str]:
    """What a production configuration gets wrong (like Django's ``check --deploy``)."""
    problems = []
    key = config.get("SECRET_KEY") or ""
    if key == DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 8:
        problems.append(
            f"SECRET_KEY must be a random value of at least {MIN_SECRET_KEY_LENGTH} characters."
        )
    if config.get("DEBUG"):
        problems.append("DEBUG must be off in production.")
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if not config.get(name):
            problems.append(f"{name} must be on in production (cookies only over HTTPS).")
    if not config.get("SESSION_COOKIE_HTTPONLY"):
        problems.append("SESSION_COOKIE_HTTPONLY must be on.")
    if not config.get("WTF_CSRF_ENABLED", True):
        problems.append("CSRF protection must be on.")
    site_host = urlsplit(config.get("SITE_URL") or "").netloc
    trusted = config.get("TRUSTED_HOSTS")
    if site_host and trusted and not host_is_trusted(site_host, trusted):
        problems.append(
            f"TRUSTED_HOSTS must include the host of SITE_URL ({site_host}): the links the "
            "site emails would be refused."
        )
    return problems


def keep_out_of_caches(response: Response) -> None:
    """No cache may keep ``response`` or show it to anyone else (it is one person's)."""
    response.headers["Cache-Control"] = PRIVATE


def is_personal(response: Response) -> bool:
    """True for a response to a signed-in visitor, other than a static file.

    The session says who is signed in, so no user is loaded for this (a page that showed
    the user has loaded them; one that did not, such as /healthz, needs no query for it).
    """
    return request.endpoint != "static" and SESSION_USER_KEY in session


def check_deployment(app: Flask) -> None:
    """Refuse to start a production app with an unsafe setting."""
    if app.config.get("ENV") != "production":
        return
    problems = deployment_problems(app.config)
    if problems:
        raise ConfigError("Unsafe production configuration:\n- " + "\n- ".join(problems))


def register(app: Flask) -> None:
    check_deployment(app)
    production = app.config.get("ENV") == "production"

    defaults = [*HEADERS.items(), *([("Strict-Transport-Security", HSTS)] if production else [])]
    keyed = [(name.lower(), (name, value)) for name, value in defaults]

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        # One pass over the response's headers, then append what it lacks (a view may set its
        # own, e.g. a looser CSP): setdefault per header would walk them once per header.
        present = {name.lower() for name, _ in response.headers}
        response.headers.extend([header for key, header in keyed if key not in present])
        if is_personal(response):
            keep_out_of_caches(response)
        return response
