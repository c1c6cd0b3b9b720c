"""Rules for what users type, shared by the forms and the command line.

Each check returns the normalised value or raises ``ValidationError`` with a message that
can be shown beside the field.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,50}$")
TAG_RE = re.compile(r"^[a-z0-9-]+$")
EMAIL_MAX = 255
PASSWORD_MIN = 10
PASSWORD_MAX = 128
TAG_MAX_LENGTH = 50
TAGS_PER_POST = 10


class ValidationError(ValueError):
    """A value a user typed breaks a rule; the message says which."""


# Unicode's control characters (category Cc: U+0000-U+001F, U+007F-U+009F) and lone
# surrogates (Cs: U+D800-U+DFFF), with or without tab, line feed and carriage return.
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_CHARS_BUT_NEWLINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_chars(text: str, *, allow_newlines: bool = False) -> bool:
    """True if ``text`` holds NUL or another control character (tabs and newlines optional)."""
    pattern = CONTROL_CHARS_BUT_NEWLINES if allow_newlines else CONTROL_CHARS
    return pattern.search(text) is not None


def without_control_chars(text: str) -> str:
    """``text`` with every control character (``has_control_chars``) removed."""
    return CONTROL_CHARS.sub("", text)


def normalise_email(value: str) -> str:
    value = (value or "").strip()
    if has_control_chars(value) or len(value) > EMAIL_MAX:
        raise ValidationError("Enter a valid email address.")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValidationError(f"Enter a valid email address: {error}") from error
    return result.normalized.lower()


def validate_username(value: str) -> str:
    value = (value or "").strip()
    if not USERNAME_RE.fullmatch(value):
        raise ValidationError("Use 3 to 50 characters: letters, digits, underscore, dot or hyphen.")
    return value


def validate_password(value: str, *, email: str | None = None, username: str | None = None) -> str:
    if len(value) < PASSWORD_MIN:
        raise ValidationError(f"Use at least {PASSWORD_MIN} characters.")
    if len(value) > PASSWORD_MAX:
        raise ValidationError(f"Use at most {PASSWORD_MAX} characters.")
    if value.isdigit():
        raise ValidationError("Use more than digits alone.")
    if has_control_chars(value):
        raise ValidationError("Control characters are not allowed in a password.")
    lowered = value.lower()
    if (email and lowered == email.lower()) or (username and lowered == username.lower()):
        raise ValidationError("Your password must differ from your email and username.")
    return value


def normalise_tag(raw: str) -> str:
    """`` Web  Dev `` -> ``web-dev``; raises, naming the tag, if it cannot be a tag.

    Trimmed and lower-cased; runs of white space and hyphens become one hyphen, and hyphens
    at either end go. What is left may hold only letters a-z, digits and hyphens.
    """
    shown = (raw or "").strip()
    name = re.sub(r"[\s-]+", "-", shown.lower()).strip("-")
    if len(shown) > 30:
        shown = shown[:30] + "…"
    if not name:
        if shown:
            raise ValidationError(f'Tag "{shown}" needs at least one letter or digit.')
        raise ValidationError("A tag cannot be empty.")
    if len(name) > TAG_MAX_LENGTH:
        raise ValidationError(f'Tag "{name[:20]}…" is longer than {TAG_MAX_LENGTH} characters.')
    if not TAG_RE.fullmatch(name):
        raise ValidationError(f'Tag "{shown}" may only use letters, digits and hyphens.')
    return name


def parse_tags(text: str) -> list[str]:
    """A comma-separated list of tags, normalised, duplicates dropped, order kept."""
    names: list[str] = []
    for raw in (text or "").split(","):
        if not raw.strip():
            continue
        name = normalise_tag(raw)
        if name not in names:
            names.append(name)
    if len(names) > TAGS_PER_POST:
        raise ValidationError(f"Use at most {TAGS_PER_POST} tags (there are {len(names)}).")
    return names
