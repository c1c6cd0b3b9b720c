"""Forms of the signed-in user's own account."""

from __future__ import annotations

from wtforms import HiddenField, SubmitField

from webapp.auth.forms import (
    AccountNamesForm,
    NewPasswordForm,
    code_field,
    current_password_field,
)
from webapp.web.forms import Form


class AccountForm(AccountNamesForm):
    # Asked for only when the email address changes (see the view).
    current_password = current_password_field(required=False)
    submit = SubmitField("Save changes")


class PasswordChangeForm(NewPasswordForm):
    current_password = current_password_field()
    submit = SubmitField("Change password")


class DeleteAccountForm(Form):
    password = current_password_field("Your password")
    submit = SubmitField("Delete my account")


class TwoFactorEnableForm(Form):
    code = code_field("Code from your app", inputmode="numeric", autofocus=True)
    next = HiddenField()
    submit = SubmitField("Turn on two-factor sign-in")


class TwoFactorDisableForm(Form):
    password = current_password_field("Your password")
    code = code_field("A code from your app, or a recovery code")
    submit = SubmitField("Turn off two-factor sign-in")


class ActionForm(Form):
    """A button that changes something: nothing to fill in but the CSRF token."""

    next = HiddenField()
    submit = SubmitField("Go ahead")
