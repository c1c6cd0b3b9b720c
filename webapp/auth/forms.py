"""Forms for signing in, registering and resetting a password; the fields and rules every
form about an account shares (the account and admin forms build on them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
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

from webapp.extensions import db
from webapp.models import User
from webapp.repositories import UserRepository
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


def new_password_field(label: str = "New password") -> PasswordField:
    """A password someone chooses (checked by ``ChosenPasswordForm.validate_password``)."""
    return PasswordField(
        label,
        validators=[DataRequired()],
        render_kw={"autocomplete": "new-password", "minlength": PASSWORD_MIN},
    )


def repeat_password_field(label: str = "Repeat the new password") -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class AccountNamesForm(Form):
    """An account's email address and username: each belongs to one account only."""

    email = email_field()
    username = username_field()

    def check_unique(self, *, exclude_id: int | None = None) -> bool:
        """Say beside each field whose value another account uses (``exclude_id``: the account
        being edited); True when neither is taken."""
        users = UserRepository(db.session)
        if users.email_taken(self.email.data, exclude_id=exclude_id):
            self.email.errors.append(TAKEN["email"])
        if users.username_taken(self.username.data, exclude_id=exclude_id):
            self.username.errors.append(TAKEN["username"])
        return not (self.email.errors or self.username.errors)

    def report_taken(self, error: IntegrityError) -> None:
        """Another request took the email or username after ``check_unique`` and before the
        write (the database refused it): say so beside that field. Re-raises any other error.
        """
        field = UserRepository(db.session).unique_field(error)
        if field is None:
            raise error
        self[field].errors.append(TAKEN[field])


class ChosenPasswordForm(Form):
    """A password someone chooses, checked against the password rules."""

    password = new_password_field()

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


class NewPasswordForm(ChosenPasswordForm):
    """A new password and its repetition."""

    confirm = repeat_password_field()


class NewAccountForm(AccountNamesForm, ChosenPasswordForm):
    """A new account: an email address, a username and a password that may be neither."""

    password = new_password_field("Password")

    def identity(self) -> tuple[str | None, str | None]:
        return self.email.data, self.username.data


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


class RegisterForm(NewAccountForm):
    email = email_field(autofocus=True)
    confirm = repeat_password_field("Repeat the password")
    next = HiddenField()
    submit = SubmitField("Create account")


class ForgotForm(Form):
    email = email_field(autofocus=True)
    submit = SubmitField("Email me a link")


class ResetForm(NewPasswordForm):
    submit = SubmitField("Set the new password")


CODE_MAX = 32


def code_field(label: str = "Code", **render_kw: Any) -> StringField:
    """A six-digit code from an authenticator app, or (where allowed) a recovery code."""
    return StringField(
        label,
        filters=[strip],
        validators=[DataRequired(), Length(max=CODE_MAX)],
        render_kw={
            "autocomplete": "one-time-code",
            "spellcheck": "false",
            "autocapitalize": "off",
            "maxlength": CODE_MAX,
            **render_kw,
        },
    )


class TwoFactorForm(Form):
    """The sign-in's second step: a code from the app, or a recovery code."""

    code = code_field("Code from your authenticator app, or a recovery code", autofocus=True)
    next = HiddenField()
    submit = SubmitField("Verify and sign in")


class ReauthForm(Form):
    """Sign in again, for what matters: the password, and a code where two-factor is on."""

    password = current_password_field("Your password")
    code = StringField(
        "Code from your authenticator app, or a recovery code",
        filters=[strip],
        validators=[Length(max=CODE_MAX)],
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", "maxlength": CODE_MAX},
    )
    next = HiddenField()
    submit = SubmitField("Confirm it is you")
