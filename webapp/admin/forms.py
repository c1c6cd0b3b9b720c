from __future__ import annotations

from typing import Any

from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.validators import ValidationError as WTFormsValidationError

from webapp.models import POST_BODY_MAX
from webapp.validation import (
    EMAIL_MAX,
    PASSWORD_MAX,
    TAG_MAX_LENGTH,
    ValidationError,
    normalise_email,
    normalise_tag,
    parse_tags,
    validate_password,
    validate_username,
)
from webapp.web.forms import Check, Form, normalise_newlines, strip


def _email_field() -> StringField:
    return StringField(
        "Email",
        filters=[strip],
        validators=[
            DataRequired(),
            Length(max=EMAIL_MAX),
            Check(normalise_email),
        ],
        render_kw={"autocomplete": "off", "type": "email"},
    )


def _username_field() -> StringField:
    return StringField(
        "Username",
        filters=[strip],
        validators=[
            DataRequired(),
            Length(max=50),
            Check(validate_username),
        ],
        render_kw={"autocomplete": "off"},
    )


def _new_password_field(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "new-password"},
    )


def _check_password(form: Any, field: Any, email: str | None, username: str | None) -> None:
    try:
        validate_password(field.data or "", email=email, username=username)
    except ValidationError as error:
        raise WTFormsValidationError(str(error)) from error


class UserCreateForm(Form):
    email = _email_field()
    username = _username_field()
    password = _new_password_field()
    is_active = BooleanField("Active (may sign in)", default=True)
    is_admin = BooleanField("Admin (may use this console)")
    submit = SubmitField("Create user")

    def validate_password(self, field: PasswordField) -> None:
        _check_password(self, field, self.email.data, self.username.data)


class UserEditForm(Form):
    email = _email_field()
    username = _username_field()
    is_active = BooleanField("Active (may sign in)")
    is_admin = BooleanField("Admin (may use this console)")
    submit = SubmitField("Save changes")


class PasswordSetForm(Form):
    """An admin sets a user's new password (the user's sessions end)."""

    password = _new_password_field("New password")
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Set password")

    def __init__(self, *args: Any, email: str = "", username: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._email, self._username = email, username

    def validate_password(self, field: PasswordField) -> None:
        _check_password(self, field, self._email, self._username)


class ItemForm(Form):
    title = StringField(
        "Title",
        filters=[strip],
        validators=[DataRequired(), Length(max=100)],
    )
    description = TextAreaField(
        "Description",
        filters=[strip],
        validators=[Optional(), Length(max=500)],
    )
    version = HiddenField()
    submit = SubmitField("Save item")


class PostForm(Form):
    title = StringField(
        "Title",
        filters=[strip],
        validators=[DataRequired(), Length(max=200)],
    )
    body = TextAreaField(
        "Body",
        filters=[normalise_newlines, strip],  # as the author's own form stores it
        validators=[
            Optional(),
            Length(max=POST_BODY_MAX),
        ],
    )
    tags = StringField(
        "Tags",
        filters=[strip],
        validators=[Length(max=1000)],
        description="Comma-separated, e.g. python, web-dev",
    )
    version = HiddenField()
    submit = SubmitField("Save post")

    def validate_tags(self, field: StringField) -> None:
        try:
            parse_tags(field.data or "")
        except ValidationError as error:
            raise WTFormsValidationError(str(error)) from error


def _tag_field(label: str) -> StringField:
    return StringField(
        label,
        filters=[strip],
        validators=[
            DataRequired(),
            Length(max=TAG_MAX_LENGTH),
            Check(normalise_tag),
        ],
        render_kw={"autocomplete": "off"},
    )


class TagRenameForm(Form):
    name = _tag_field("Name")
    submit = SubmitField("Rename tag")


class TagMergeForm(Form):
    target = _tag_field("Merge into the tag")
    submit = SubmitField("Merge tags")


class ConfirmForm(Form):
    """A confirmation: nothing to fill in but the CSRF token."""

    submit = SubmitField("Yes, go ahead")
