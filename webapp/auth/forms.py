"""Forms for signing in, registering and resetting a password; field helpers the account
forms share."""

from __future__ import annotations

from typing import Any

from wtforms import (
    BooleanField,
    EmailField,
    Field,
    HiddenField,
    PasswordField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, EqualTo, Length, StopValidation

from webapp.models import User
from webapp.validation import (
    EMAIL_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    ValidationError,
    normalise_email,
    validate_username,
)
from webapp.validation import validate_password as password_rule
from webapp.web.forms import Check, Form, strip

USERNAME_MAX = 50
TAKEN = {
    "email": "An account already uses this email address.",
    "username": "This username is taken. Choose another one.",
}


def email_field(label: str = "Email address", **render_kw: Any) -> EmailField:
    return EmailField(
        label,
        filters=[strip],
        validators=[
            DataRequired(),
            Length(max=EMAIL_MAX),
            Check(normalise_email),
        ],
        render_kw={"autocomplete": "email", "maxlength": EMAIL_MAX, **render_kw},
    )


def username_field(**render_kw: Any) -> StringField:
    return StringField(
        "Username",
        filters=[strip],
        validators=[
            DataRequired(),
            Length(max=USERNAME_MAX),
            Check(validate_username),
        ],
        render_kw={"autocomplete": "username", "maxlength": USERNAME_MAX, **render_kw},
    )


def current_password_field(label: str = "Current password", *, required: bool = True) -> Any:
    validators: list[Any] = [Length(max=PASSWORD_MAX)]
    if required:
        validators.insert(0, DataRequired())
    return PasswordField(
        label, validators=validators, render_kw={"autocomplete": "current-password"}
    )


class NewPasswordForm(Form):
    """A new password and its repetition, checked against the password rules."""

    password = PasswordField(
        "New password",
        validators=[DataRequired()],
        render_kw={"autocomplete": "new-password", "minlength": PASSWORD_MIN},
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )

    #: The account the password is for (its email and username may not be the password).
    account: User | None = None

    def identity(self) -> tuple[str | None, str | None]:
        return (self.account.email, self.account.username) if self.account else (None, None)

    def validate_password(self, field: Field) -> None:
        email, username = self.identity()
        try:
            password_rule(field.data, email=email, username=username)
        except ValidationError as error:
            raise StopValidation(str(error)) from error


class LoginForm(Form):
    login = StringField(
        "Email or username",
        filters=[strip],
        validators=[DataRequired(), Length(max=EMAIL_MAX)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in on this device")
    next = HiddenField()
    submit = SubmitField("Sign in")


class RegisterForm(NewPasswordForm):
    email = email_field(autofocus=True)
    username = username_field()
    next = HiddenField()
    submit = SubmitField("Create account")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.password.label.text = "Password"
        self.confirm.label.text = "Repeat the password"

    def identity(self) -> tuple[str | None, str | None]:
        return self.email.data, self.username.data


class ForgotForm(Form):
    email = email_field(autofocus=True)
    submit = SubmitField("Email me a link")


class ResetForm(NewPasswordForm):
    submit = SubmitField("Set the new password")
