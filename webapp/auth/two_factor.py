"""Two-factor sign-in with TOTP (RFC 6238: 6 digits, 30 seconds), through pyotp and segno.

The secret is encrypted with Fernet (``cryptography``) before it is stored, so a database
dump alone does not give it away. The key is ``TOTP_ENCRYPTION_KEY`` when set (one or more
Fernet keys, comma-separated, the first encrypting: keys can be rotated), else one derived
from ``SECRET_KEY`` with HKDF. A key of its own is the production choice: ``SECRET_KEY`` can
then be rotated (which signs everyone out) without making every two-factor secret unreadable.

Recovery codes are random (50 bits each) and single-use; each is kept as its SHA-256, looked
up directly. A slow password hash guards a guessable secret; a random code has nothing to
guess from, and the sign-in code limits cap the attempts.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from markupsafe import Markup

from webapp.audit import audit
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models import User
from webapp.repositories import RecoveryCodeRepository, UserRepository

ISSUER = "webapp"
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
RECOVERY_CODE_LENGTH = 10
# Codes of the step before and after the current one are accepted too (clock drift).
VALID_WINDOW = 1


def cipher() -> MultiFernet:
    """The Fernet keys of this configuration: ``TOTP_ENCRYPTION_KEY``, else from ``SECRET_KEY``."""
    configured = current_app.config.get("TOTP_ENCRYPTION_KEY") or ""
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    if not keys:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"webapp totp secrets"
        ).derive(str(current_app.config["SECRET_KEY"]).encode())
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_secret(secret: str) -> str:
    return cipher().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    """The secret ``token`` holds; None when no configured key opens it."""
    try:
        return cipher().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def secret_of(user: User) -> str | None:
    return decrypt_secret(user.totp_secret) if user.totp_secret else None


def totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret)  # RFC 6238's defaults: SHA-1, 6 digits, 30 s


def provisioning_uri(user: User, secret: str) -> str:
    return totp(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> Markup:
    """The QR code of ``uri`` as inline SVG, drawn here (segno): no script, no other site."""
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=5, border=2, dark="#111827", light="#ffffff", title="QR code")
    return Markup(svg)  # noqa: S704 - segno's own SVG of a URI it encoded


def grouped(secret: str) -> str:
    """The secret as people type it: groups of four."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def normalise_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def check_totp(user: User, secret: str, code: str) -> bool:
    """True when ``code`` is a valid code of ``secret`` now, of a time step later than the last
    one accepted for ``user`` (a code works once); records its step."""
    code = normalise_code(code)
    if len(code) != 6 or not code.isdigit():
        return False
    generator = totp(secret)
    now = utcnow()
    for offset in range(VALID_WINDOW, -VALID_WINDOW - 1, -1):  # newest step first
        step = generator.timecode(now) + offset
        if generator.verify(code, for_time=step * generator.interval):
            return UserRepository(db.session).claim_totp_step(user, step)
    return False


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def use_recovery_code(user: User, code: str) -> bool:
    code = normalise_code(code)
    if len(code) != RECOVERY_CODE_LENGTH or not set(code) <= set(RECOVERY_ALPHABET):
        return False
    return RecoveryCodeRepository(db.session).use(user.id, hash_recovery_code(code), utcnow())


def check_second_factor(user: User, code: str) -> str | None:
    """How ``code`` proves ``user``'s second factor: ``"totp"``, ``"recovery code"``, or None."""
    secret = secret_of(user)
    if not user.two_factor_enabled or secret is None:
        return None
    if check_totp(user, secret, code):
        return "totp"
    if use_recovery_code(user, code):
        return "recovery code"
    return None


def new_recovery_codes(user: User) -> list[str]:
    """Ten new codes for ``user`` (shown once); every earlier code stops working."""
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    RecoveryCodeRepository(db.session).replace(user.id, [hash_recovery_code(c) for c in codes])
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def begin_setup(user: User) -> str:
    """A new secret for ``user``, stored encrypted; two-factor stays off until a code of it
    is entered (``enable``)."""
    secret = pyotp.random_base32()
    UserRepository(db.session).update(
        user, totp_secret=encrypt_secret(secret), totp_enabled_at=None, totp_last_step=None
    )
    return secret


def enable(user: User, code: str) -> list[str] | None:
    """Switch two-factor on if ``code`` is valid for the secret being set up; returns the new
    recovery codes, or None (wrong code)."""
    secret = secret_of(user)
    if user.two_factor_enabled or secret is None or not check_totp(user, secret, code):
        return None
    UserRepository(db.session).update(user, totp_enabled_at=utcnow())
    codes = new_recovery_codes(user)
    audit("account.two_factor_enabled", user, user)
    return codes


def renew_recovery_codes(user: User) -> list[str]:
    codes = new_recovery_codes(user)
    audit("account.recovery_codes_renewed", user, user)
    return codes


def turn_off(user: User) -> None:
    """Forget ``user``'s secret and recovery codes: their password alone signs them in."""
    UserRepository(db.session).update(
        user, totp_secret=None, totp_enabled_at=None, totp_last_step=None
    )
    RecoveryCodeRepository(db.session).clear(user.id)


def disable(user: User) -> None:
    """``user`` turns their own two-factor off (their password and a code were checked)."""
    turn_off(user)
    audit("account.two_factor_disabled", user, user)


def recovery_codes_left(user: User) -> int:
    return RecoveryCodeRepository(db.session).unused_count(user.id)
