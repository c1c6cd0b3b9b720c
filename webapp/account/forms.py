"""Forms of the signed-in user's own account."""

from __future__ import annotations

from wtforms import SubmitField

from webapp.auth.forms import AccountNamesForm, NewPasswordForm, current_password_field
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
