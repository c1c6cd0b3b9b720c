"""Property-based tests of the input rules every form relies on."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.validation import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    TAG_MAX_LENGTH,
    TAG_RE,
    TAGS_PER_POST,
    USERNAME_RE,
    ValidationError,
    has_control_chars,
    normalise_email,
    normalise_tag,
    parse_tags,
    validate_password,
    validate_username,
    without_control_chars,
)

any_text = st.text(max_size=300)
control = st.sampled_from(["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85"])


@given(any_text)
def test_a_normalised_tag_is_valid_and_stable(raw: str) -> None:
    try:
        name = normalise_tag(raw)
    except ValidationError as error:
        message = str(error)  # there is always a message to show beside the field
        assert message, raw
        return
    assert TAG_RE.fullmatch(name)
    assert len(name) <= TAG_MAX_LENGTH
    assert normalise_tag(name) == name


@given(st.lists(st.text(alphabet="abcXYZ019- _", max_size=12), max_size=15))
def test_parsed_tags_are_unique_bounded_and_valid(parts: list[str]) -> None:
    try:
        names = parse_tags(",".join(parts))
    except ValidationError:
        return
    assert len(names) == len(set(names)) <= TAGS_PER_POST
    assert all(TAG_RE.fullmatch(name) for name in names)


@given(any_text)
def test_usernames_are_accepted_exactly_when_they_follow_the_rule(raw: str) -> None:
    try:
        name = validate_username(raw)
    except ValidationError:
        assert not USERNAME_RE.fullmatch(raw.strip())
        return
    assert USERNAME_RE.fullmatch(name)
    assert name == raw.strip()


@given(any_text, control, any_text)
def test_control_characters_are_always_found(before: str, char: str, after: str) -> None:
    assert has_control_chars(before + char + after)
    assert has_control_chars(before + char + after, allow_newlines=True)


def test_control_characters_are_exactly_unicodes_cc_and_cs() -> None:
    """Every code point, checked against Unicode's own categories (the check is a pattern)."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        control = unicodedata.category(char) in {"Cc", "Cs"}
        assert has_control_chars(char) is control, hex(code)
        assert has_control_chars(char, allow_newlines=True) is (control and char not in "\n\r\t")
        assert without_control_chars(f"a{char}b") == ("ab" if control else f"a{char}b")


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), max_size=200))
def test_printable_text_has_no_control_characters(text: str) -> None:
    assert not has_control_chars(text)


@given(st.emails())
def test_valid_emails_normalise_to_a_stable_lower_case_form(email: str) -> None:
    try:
        normalised = normalise_email(email)
    except ValidationError:
        return  # email-validator is stricter than hypothesis about some domains
    assert normalised == normalised.lower()
    assert normalise_email(normalised) == normalised


@given(any_text)
def test_anything_with_a_nul_is_not_an_email(text: str) -> None:
    with pytest.raises(ValidationError):
        normalise_email(text[:20] + "\x00@example.com")


@given(st.text(max_size=PASSWORD_MAX + 20))
def test_accepted_passwords_meet_every_rule(password: str) -> None:
    try:
        validate_password(password, email="me@example.com", username="me")
    except ValidationError:
        return
    assert PASSWORD_MIN <= len(password) <= PASSWORD_MAX
    assert not password.isdigit()
    assert not has_control_chars(password)
    assert password.lower() not in {"me@example.com", "me"}
