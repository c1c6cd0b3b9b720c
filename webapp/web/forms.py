"""The base form every blueprint's forms subclass, and the validators they share.

``Form`` holds what every form needs against hostile input, so no form can forget it:

- its fields take text from the posted form alone (never an uploaded file or a JSON body);
- every text field refuses a file, a value sent more than once, text that was not UTF-8,
  and NUL or other control characters, before its own validators run;
- a field missing from a submission is empty, not the row's old value;
- a failed submission re-rendered with its errors is answered 422, not 200 (``register``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request, session
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import Field, HiddenField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, StopValidation
from wtforms.validators import ValidationError as WTFormsValidationError
from wtforms.widgets import HiddenInput

from webapp.validation import ValidationError, has_control_chars
from webapp.web.requests import parse_int

UNPROCESSABLE = 422
HTTP_CONFLICT = 409
# The forms a request made, kept with the request (not in ``g``, which can outlive it).
FORMS_KEY = "webapp.web.forms"


class NoControlCharacters:
    """Refuse NUL and other control characters (newlines allowed where text is multi-line).

    It stops the field's checks: a later ``Optional`` would otherwise clear this error when
    the text is blank to ``str.strip`` (a lone form feed), and the field would keep it.
    """

    def __init__(self, *, allow_newlines: bool = False) -> None:
        self.allow_newlines = allow_newlines

    def __call__(self, form: Any, field: Field) -> None:
        if isinstance(field.data, str) and has_control_chars(
            field.data, allow_newlines=self.allow_newlines
        ):
            raise StopValidation("Remove the control characters from this field.")


class Check:
    """Run a rule from ``webapp.validation`` and keep the value it normalised."""

    def __init__(self, rule: Callable[[str], Any]) -> None:
        self.rule = rule

    def __call__(self, form: Any, field: Field) -> None:
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

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Only ASCII digits, as the form wrote them (``int`` would also take other scripts')."""
        if not valuelist:
            return
        version = parse_int(valuelist[0], minimum=1)
        if version is None:
            raise ValueError(STALE_FORM)
        self.data = version

    def carry(self, version: int) -> None:
        """Carry ``version`` from now on (after a conflict: the version that was saved)."""
        self.data = version
        self.raw_data = [str(version)]


class ReadableText:
    """Refuse text holding U+FFFD: what bytes that were not UTF-8 became when decoded.

    See ``webapp.web.Utf8FormDataParser``, which makes them so.
    """

    def __call__(self, form: Any, field: Field) -> None:
        if isinstance(field.data, str) and "\ufffd" in field.data:
            raise StopValidation("This field holds characters that could not be read.")


class MissingIsEmpty:
    """A field the submission left out is empty (``None``), not the value the form was filled
    with (a row's old value), so that ``DataRequired`` or ``Optional`` decide."""

    def __call__(self, form: Any, field: Field) -> None:
        if getattr(form, "submitted", False) and not field.raw_data:
            field.data = None


class SentAsText:
    """Refuse what a browser's form never sends for a text field: a file, or several values."""

    def __call__(self, form: Any, field: Field) -> None:
        if not getattr(form, "submitted", False):
            return
        if field.name in request.files:
            raise StopValidation("This field takes text, not a file.")
        if field.raw_data is not None and len(field.raw_data) > 1:
            raise StopValidation("This field was sent more than once: send it once.")


def text_checks(field: Field) -> list[Any]:
    """The checks every text field runs before its own (newlines allowed in multi-line text).

    Hidden fields (``next``, a row version) are never shown with an error nor stored as text:
    the views check their values; here they only count as empty when left out.
    """
    if isinstance(field, HiddenField):
        return [MissingIsEmpty()]
    return [
        MissingIsEmpty(),
        SentAsText(),
        ReadableText(),
        NoControlCharacters(allow_newlines=isinstance(field, TextAreaField)),
    ]


class Form(FlaskForm):
    """The project's base form (see the module docstring)."""

    class Meta:
        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Field:
            field: Field = super().bind_field(form, unbound_field, options)  # type: ignore[misc]
            if isinstance(field, StringField) and field.short_name != "csrf_token":
                field.validators = [*text_checks(field), *field.validators]
            return field

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        submitted = bool(request) and self.is_submitted()
        if not args and "formdata" not in kwargs:
            # Flask-WTF would feed uploaded files and JSON bodies into the fields, where a
            # file object or a number breaks the length checks (a 500). Only the posted
            # form counts here, even when empty: a missing field is then missing. A page
            # shown again with a form kept for it (``keep_form_for``) starts from that.
            kwargs["formdata"] = request.form if submitted else (kept_form() if request else None)
        super().__init__(*args, **kwargs)
        self.submitted = submitted
        self.conflicted = False
        if request:
            request.environ.setdefault(FORMS_KEY, []).append(self)

    def report_conflict(self, message: str) -> None:
        """Someone saved the row since this form was opened: say so (the answer is a 409)."""
        self.form_errors.append(message)
        self.conflicted = True

    @property
    def failed(self) -> bool:
        """True when this form was submitted and holds an error (from validation or a view)."""
        return bool(self.submitted and self.errors)


def mark_failed_submission(response: Response) -> Response:
    """A POST whose form came back with its errors is answered 422 Unprocessable Content
    (409 Conflict when the error is an edit conflict).

    The page itself is the same: the form with the errors beside its fields. Other answers
    (redirects, 409s set by a view, 400 CSRF failures, error pages) are left as they are.
    """
    if request.method != "POST" or response.status_code != 200:
        return response
    failed = [form for form in request.environ.get(FORMS_KEY, ()) if form.failed]
    if failed:
        conflicted = any(form.conflicted for form in failed)
        response.status_code = HTTP_CONFLICT if conflicted else UNPROCESSABLE
    return response


# Session key: a form kept to be shown again filled in (after a recent sign-in was asked for).
KEPT_FORM_KEY = "kept_form"
KEPT_FORM_ENVIRON = "webapp.web.forms.kept"


def keep_form_for(path: str, fields: list[tuple[str, str]]) -> None:
    """Fill the forms of the page at ``path`` with ``fields`` the next time it is shown."""
    session[KEPT_FORM_KEY] = {"path": path, "fields": fields}


def kept_form() -> MultiDict[str, str] | None:
    """The fields kept for this page: taken from the session once, then every form of this
    request sees them."""
    if KEPT_FORM_ENVIRON in request.environ:
        kept: MultiDict[str, str] | None = request.environ[KEPT_FORM_ENVIRON]
        return kept
    stored = session.get(KEPT_FORM_KEY)
    kept = None
    if isinstance(stored, dict) and stored.get("path") == request.path:
        session.pop(KEPT_FORM_KEY)
        fields = stored.get("fields")
        if isinstance(fields, list):
            kept = MultiDict(
                [
                    (str(f[0]), str(f[1]))
                    for f in fields
                    if isinstance(f, list | tuple) and len(f) == 2
                ]
            )
    request.environ[KEPT_FORM_ENVIRON] = kept
    return kept


def register(app: Flask) -> None:
    app.after_request(mark_failed_submission)
