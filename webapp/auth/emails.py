"""The messages accounts send: confirmation and reset links, and notices of changes.

Each is queued in the outbox (``queue_mail``) in the transaction of the change it tells of,
so a link never refers to state that was rolled back, and a committed change's message is
never lost. Every link is built on ``SITE_URL`` (``external_url``), whatever host the request
named.
"""

from __future__ import annotations

from collections.abc import Iterable

from webapp.auth.tokens import (
    CONFIRM_MAX_AGE_SECONDS,
    INVITE_MAX_AGE_SECONDS,
    RESET_MAX_AGE_SECONDS,
    invite_tokens,
    make_confirm_token,
    make_reset_token,
    make_unused_reset_token,
)
from webapp.extensions import db
from webapp.mail import queue_mail
from webapp.mail.messages import queue_mails
from webapp.models import OutboxMessage, User
from webapp.repositories import UserRepository
from webapp.web.site_url import external_url


def queue_confirmation(user: User, email: str | None = None) -> OutboxMessage:
    """Ask ``email`` (by default the account's address) to confirm that it belongs to ``user``."""
    token = make_confirm_token(user, email)
    return queue_mail(
        email or user.email,
        "Confirm your email address",
        "auth/email/confirm.txt",
        user=user,
        is_change=email is not None and email != user.email,
        link=external_url("auth.confirm", token=token),
        hours=CONFIRM_MAX_AGE_SECONDS // 3600,
    )


def queue_reset(user: User) -> OutboxMessage:
    token = make_reset_token(user)
    return queue_mail(
        user.email,
        "Reset your password",
        "auth/email/reset.txt",
        user=user,
        link=external_url("auth.reset", token=token),
        minutes=RESET_MAX_AGE_SECONDS // 60,
    )


def queue_reset_request(email: str) -> OutboxMessage:
    """Answer a forgotten-password request for ``email``, with equal work either way.

    An active account gets its reset link. Any other address gets a notice that no active
    account uses it (what large sites send): one lookup, one signed token, one rendered
    message and one outbox row in both cases, so neither the time taken nor the writes tell
    whether the address has an account.
    """
    user = UserRepository(db.session).get_by_email(email)
    if user is not None and user.is_active:
        return queue_reset(user)
    # Made and dropped: the token costs what a real one does (signing and the fingerprint).
    external_url("auth.reset", token=make_unused_reset_token())
    return queue_mail(
        email,
        "Reset your password",
        "auth/email/no_account.txt",
        email=email,
        forgot=external_url("auth.forgot"),
    )


def queue_email_changed(user: User, previous: str) -> OutboxMessage:
    """Tell the old address that the account's email is now another one."""
    return queue_mail(
        previous,
        "Your email address was changed",
        "auth/email/email_changed.txt",
        user=user,
        previous=previous,
        forgot=external_url("auth.forgot"),
    )


def queue_password_changed(user: User) -> OutboxMessage:
    return queue_mail(
        user.email,
        "Your password was changed",
        "auth/email/password_changed.txt",
        user=user,
        forgot=external_url("auth.forgot"),
    )


def queue_invitations(accounts: Iterable[tuple[int, str, str, str]]) -> int:
    """Send each imported account (id, email, username, password hash) a link to choose its
    password: a reset link that lasts ``INVITE_MAX_AGE_SECONDS``. Returns how many."""
    forgot = external_url("auth.forgot")
    days = INVITE_MAX_AGE_SECONDS // 86400
    tokens = invite_tokens()
    return queue_mails(
        "Your webapp account: choose your password",
        "auth/email/invite",
        (
            (
                email,
                {
                    "username": username,
                    "link": external_url("auth.reset", token=tokens(user_id, hashed)),
                    "days": days,
                    "forgot": forgot,
                },
            )
            for user_id, email, username, hashed in accounts
        ),
    )
