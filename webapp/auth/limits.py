"""Rate limits on the account forms: per client address and per account.

Each limit string may be overridden in the configuration under its name, e.g.
``RATELIMIT_LOGIN_ACCOUNT_ADDRESS = "3 per minute"``. The registration and reset limits key on
the email typed, whether or not such an account exists, so they say nothing about which
accounts exist.

Sign-in has three limits (README, "Sign-in limits"):

- every attempt from one client address (``RATELIMIT_LOGIN_ADDRESS``): one machine trying
  many accounts;
- failed attempts at one account from one address (``RATELIMIT_LOGIN_ACCOUNT_ADDRESS``): the
  strict one, against guessing one person's password. Keyed on the account and the address
  together, so it holds the guesser back and never the owner signing in from elsewhere;
- failed attempts at one account from all addresses together (``RATELIMIT_LOGIN_ACCOUNT``):
  looser, it caps guessing spread over many addresses. The address the account last signed
  in from is not held back by it, so such an attack cannot lock the owner out there.

The account is the one the typed email or username names (both count as one); a name no
account has counts on its own, exactly as an account would, so the limits tell nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, request, session
from flask_login import current_user

from webapp.auth.services import PENDING_KEY, account_named
from webapp.web.requests import client_ip

DEFAULT_LIMITS: dict[str, str] = {
    # Sign-in: every attempt counts per address; per account only the failed ones.
    "RATELIMIT_LOGIN_ADDRESS": "20 per minute;200 per day",
    "RATELIMIT_LOGIN_ACCOUNT_ADDRESS": "5 per minute;30 per hour",
    # Over three addresses' worth of the strict limit: only many addresses together reach it.
    "RATELIMIT_LOGIN_ACCOUNT": "100 per hour;1000 per day",
    "RATELIMIT_REGISTER_ADDRESS": "10 per hour",
    "RATELIMIT_REGISTER_ACCOUNT": "3 per hour",
    "RATELIMIT_RESET_ADDRESS": "10 per hour",
    "RATELIMIT_RESET_ACCOUNT": "3 per hour",
    # Two-factor codes: every attempt per address; failed ones per account (the account whose
    # password was just accepted, or the signed-in one).
    "RATELIMIT_TWO_FACTOR_ADDRESS": "20 per minute;100 per hour",
    "RATELIMIT_TWO_FACTOR_ACCOUNT": "5 per minute;20 per hour",
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


def login_account() -> str:
    """A key on the account the sign-in form names: its id, else the name as typed."""
    typed = request.form.get("login", "")
    user = account_named(typed)
    if user is not None:
        return f"account:{user.id}"
    return f"login:{typed.strip().lower()[:KEY_MAX_LENGTH]}"


def login_account_at_address() -> str:
    """A key on the account the sign-in form names and the client's address together."""
    return f"{login_account()} from:{client_ip()}"


def from_last_sign_in_address() -> bool:
    """True when the client is at the address the named account last signed in from."""
    user = account_named(request.form.get("login", ""))
    address = client_ip()
    return user is not None and address is not None and user.last_login_ip == address


def two_factor_account() -> str:
    """A key on the account a code is for: the one waiting for its code, else the signed-in one."""
    pending = session.get(PENDING_KEY)
    user_id = pending.get("user_id") if isinstance(pending, dict) else None
    if isinstance(user_id, int):
        return f"account:{user_id}"
    return signed_in_user()


def signed_in_user() -> str:
    return f"user:{current_user.id}" if current_user.is_authenticated else "user:anonymous"


def failed_form(response: Response) -> bool:
    """True when the form came back (it did not redirect): a failed attempt.

    A failed submission is answered 422 (see ``webapp.web.forms``); 200 is kept in case the
    limiter looks before that hook has run.
    """
    return response.status_code in {200, 422}
