"""Rate limits on the account forms: per client address and per account.

Each limit string may be overridden in the configuration under its name, e.g.
``RATELIMIT_LOGIN_ACCOUNT = "3 per minute"``. The per-account limits key on what was typed
(the login or the email), whether or not such an account exists, so they say nothing about
which accounts exist.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, request
from flask_login import current_user

DEFAULT_LIMITS: dict[str, str] = {
    # Sign-in: every attempt counts per address; per account only the failed ones.
    "RATELIMIT_LOGIN_ADDRESS": "20 per minute;200 per day",
    "RATELIMIT_LOGIN_ACCOUNT": "5 per minute;30 per hour",
    "RATELIMIT_REGISTER_ADDRESS": "10 per hour",
    "RATELIMIT_REGISTER_ACCOUNT": "3 per hour",
    "RATELIMIT_RESET_ADDRESS": "10 per hour",
    "RATELIMIT_RESET_ACCOUNT": "3 per hour",
    # Forms of a signed-in user that check a password or send mail.
    "RATELIMIT_ACCOUNT_USER": "10 per hour",
    "RATELIMIT_CONFIRM_RESEND_USER": "3 per hour",
}
KEY_MAX_LENGTH = 255


def configured(name: str) -> Callable[[], str]:
    """The limit called ``name``: from the configuration, else its default."""

    def limit() -> str:
        return str(current_app.config.get(name) or DEFAULT_LIMITS[name])

    return limit


def form_value(field: str) -> Callable[[], str]:
    """A key on the account a form names: the submitted ``field``, trimmed and lower-cased."""

    def key() -> str:
        value = request.form.get(field, "").strip().lower()[:KEY_MAX_LENGTH]
        return f"{field}:{value}"

    return key


def signed_in_user() -> str:
    return f"user:{current_user.id}" if current_user.is_authenticated else "user:anonymous"


def failed_form(response: Response) -> bool:
    """True when the form came back (it did not redirect): a failed attempt.

    A failed submission is answered 422 (see ``webapp.web.forms``); 200 is kept in case the
    limiter looks before that hook has run.
    """
    return response.status_code in {200, 422}
