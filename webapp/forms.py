"""WTForms validators shared by every blueprint's forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wtforms import Field, Form, IntegerField
from wtforms.validators import InputRequired, NumberRange
from wtforms.validators import ValidationError as WTFormsValidationError
from wtforms.widgets import HiddenInput

from webapp.validation import ValidationError, has_control_chars


class NoControlCharacters:
    """Refuse NUL and other control characters (newlines allowed where text is multi-line)."""

    def __init__(self, *, allow_newlines: bool = False) -> None:
        self.allow_newlines = allow_newlines

    def __call__(self, form: Form, field: Field) -> None:
        if isinstance(field.data, str) and has_control_chars(
            field.data, allow_newlines=self.allow_newlines
        ):
            raise WTFormsValidationError("Remove the control characters from this field.")


class Check:
    """Run a rule from ``webapp.validation`` and keep the value it normalised."""

    def __init__(self, rule: Callable[[str], Any]) -> None:
        self.rule = rule

    def __call__(self, form: Form, field: Field) -> None:
        if not field.data:
            return
        try:
            field.data = self.rule(field.data)
        except ValidationError as error:
            raise WTFormsValidationError(str(error)) from error


def strip(value: Any) -> Any:
    """A filter: trim surrounding white space from text input."""
    return value.strip() if isinstance(value, str) else value


def normalise_newlines(value: Any) -> Any:
    """A filter: browsers send CRLF line breaks; store LF so lengths count what users see."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


STALE_FORM = "This form is incomplete or out of date: reload the page and make your change again."


class VersionField(IntegerField):
    """The row version an edit form was opened at, carried in a hidden input.

    The view compares it with the saved row's version to catch edit conflicts.
    """

    widget = HiddenInput()

    def __init__(self, label: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault(
            "validators", [InputRequired(STALE_FORM), NumberRange(min=1, message=STALE_FORM)]
        )
        kwargs.setdefault("invalid_value_message", STALE_FORM)
        super().__init__(label, **kwargs)

    def carry(self, version: int) -> None:
        """Carry ``version`` from now on (after a conflict: the version that was saved)."""
        self.data = version
        self.raw_data = [str(version)]
