"""WTForms validators shared by every blueprint's forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wtforms import Field, Form
from wtforms.validators import ValidationError as WTFormsValidationError

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
