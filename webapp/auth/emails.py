"""The messages accounts send: confirmation and reset links, and notices of changes.

Sent after the request's commit, so a link never refers to state that was rolled back. Every
link is built on ``SITE_URL`` (``external_url``), whatever host the request named.
"""

from __future__ import annotations

from webapp.auth.tokens import (
    CONFIRM_MAX_AGE_SECONDS,
    RESET_MAX_AGE_SECONDS,
    make_confirm_token,
    make_reset_token,
)
from webapp.mail import send_mail
from webapp.models import User
from webapp.web.site_url import external_url


def send_confirmation(user: User, email: str | None = None) -> bool:
    """Ask ``email`` (by default the account's address) to confirm that it belongs to ``user``."""
    token = make_confirm_token(user, email)
    return send_mail(
        email or user.email,
        "Confirm your email address",
        "auth/email/confirm.txt",
        user=user,
        is_change=email is not None and email != user.email,
        link=external_url("auth.confirm", token=token),
        hours=CONFIRM_MAX_AGE_SECONDS // 3600,
    )


def send_reset(user: User) -> bool:
    token = make_reset_token(user)
    return send_mail(
        user.email,
        "Reset your password",
        "auth/email/reset.txt",
        user=user,
        link=external_url("auth.reset", token=token),
        minutes=RESET_MAX_AGE_SECONDS // 60,
    )


def send_email_changed(user: User, previous: str) -> bool:
    """Tell the old address that the account's email is now another one."""
    return send_mail(
        previous,
        "Your email address was changed",
        "auth/email/email_changed.txt",
        user=user,
        previous=previous,
        forgot=external_url("auth.forgot"),
    )


def send_password_changed(user: User) -> bool:
    return send_mail(
        user.email,
        "Your password was changed",
        "auth/email/password_changed.txt",
        user=user,
        forgot=external_url("auth.forgot"),
    )
