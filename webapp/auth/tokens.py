"""Signed, time-limited tokens for the links we email: password reset and email confirmation.

Each kind has its own salt, so a token made for one purpose is worthless for the other.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.models import User
from webapp.repositories import UserRepository

RESET_SALT = "webapp.auth.password-reset"
CONFIRM_SALT = "webapp.auth.email-confirm"
RESET_MAX_AGE_SECONDS = 30 * 60
# A reset link sent to an account an admin imported ("set your password"): it waits longer in
# an inbox than a reset someone just asked for, and it too works once.
INVITE_MAX_AGE_SECONDS = 7 * 24 * 60 * 60
CONFIRM_MAX_AGE_SECONDS = 3 * 24 * 60 * 60
TOKEN_MAX_LENGTH = 512  # what the routes accept; real tokens are well under half of it


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=salt)  # type: ignore[arg-type]


def _load(salt: str, token: str, max_age: int) -> dict[str, Any] | None:
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
    except BadData:
        return None
    return data if isinstance(data, dict) else None


def _active_user(data: dict[str, Any]) -> User | None:
    user_id = data.get("uid")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    user = UserRepository(db.session).get(user_id)
    return user if user is not None and user.is_active else None


def password_fingerprint(user: User) -> str:
    """Changes whenever the password hash does, so a reset link works once.

    Derived with the secret key: the token's payload is readable, and must say nothing
    about the hash.
    """
    return hash_fingerprint(user.hashed_password)


def hash_fingerprint(hashed_password: str) -> str:
    """``password_fingerprint`` of the account whose password hash is ``hashed_password``."""
    key = str(current_app.secret_key).encode()
    digest = hmac.new(key, hashed_password.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def make_reset_token(user: User) -> str:
    return str(_serializer(RESET_SALT).dumps({"uid": user.id, "pw": password_fingerprint(user)}))


def invite_tokens() -> Callable[[int, str], str]:
    """Make reset tokens for imported accounts (``INVITE_MAX_AGE_SECONDS``) from the row's
    id and password hash: an import makes thousands at once, with one serializer and no
    user loaded."""
    serializer = _serializer(RESET_SALT)

    def make(user_id: int, hashed_password: str) -> str:
        payload = {"uid": user_id, "pw": hash_fingerprint(hashed_password), "inv": 1}
        return str(serializer.dumps(payload))

    return make


def make_unused_reset_token() -> str:
    """A reset token for no account, made at the cost of a real one (``queue_reset_request``
    makes one when the address has no account, so that both answers take as long)."""
    stand_in = User(id=0, hashed_password=_STAND_IN_HASH)
    return make_reset_token(stand_in)


# Any text of a real hash's length: only its fingerprint is computed, never checked.
_STAND_IN_HASH = "scrypt:131072:8:1$" + "0" * 16 + "$" + "0" * 128


def user_for_reset_token(token: str) -> User | None:
    """The active user a reset token was made for, if it is genuine, fresh and unused.

    Fresh: younger than ``RESET_MAX_AGE_SECONDS``, or ``INVITE_MAX_AGE_SECONDS`` for an
    imported account's link (the signed payload says which it is).
    """
    data = _load(RESET_SALT, token, INVITE_MAX_AGE_SECONDS)
    if data is None:
        return None
    if data.get("inv") != 1 and _load(RESET_SALT, token, RESET_MAX_AGE_SECONDS) is None:
        return None  # a reset someone asked for: half an hour
    user = _active_user(data)
    fingerprint = data.get("pw")
    if user is None or not isinstance(fingerprint, str):
        return None
    if not hmac.compare_digest(fingerprint, password_fingerprint(user)):
        return None  # the password changed since: the link was used (or superseded)
    return user


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation link asks for: ``user``'s address ``email`` is theirs.

    ``previous`` is set when the link confirms a change of address: it only applies while
    the account still has that address.
    """

    user: User
    email: str
    previous: str | None = None

    @property
    def is_change(self) -> bool:
        return self.previous is not None


def make_confirm_token(user: User, email: str | None = None) -> str:
    """A link confirming ``email`` (by default the account's current address) for ``user``."""
    payload: dict[str, Any] = {"uid": user.id, "email": email or user.email}
    if email is not None and email != user.email:
        payload["from"] = user.email
    return str(_serializer(CONFIRM_SALT).dumps(payload))


def read_confirm_token(token: str) -> Confirmation | None:
    data = _load(CONFIRM_SALT, token, CONFIRM_MAX_AGE_SECONDS)
    if data is None:
        return None
    user = _active_user(data)
    email, previous = data.get("email"), data.get("from")
    if user is None or not isinstance(email, str):
        return None
    if previous is None:
        return Confirmation(user, email) if email == user.email else None
    if not isinstance(previous, str) or previous != user.email:
        return None  # the address changed since the link was sent
    return Confirmation(user, email, previous)
