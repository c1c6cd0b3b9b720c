"""The admin console's forms.

An admin edits what its owner edits with the owner's forms (``ItemEditForm``,
``PostEditForm``), and accounts with the fields and rules of the account forms: this module
adds only what is the console's own.
"""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from webapp.auth.forms import (
    AccountNamesForm,
    NewAccountForm,
    NewPasswordForm,
    email_field,
    username_field,
)
from webapp.validation import TAG_MAX_LENGTH, normalise_tag
from webapp.web.forms import Check, Form, strip


class UserEditForm(AccountNamesForm):
    # Someone else's address and name: the browser should not offer the admin's own.
    email = email_field(autocomplete="off")
    username = username_field(autocomplete="off")
    is_active = BooleanField("Active (may sign in)")
    is_admin = BooleanField("Admin (may use this console)")
    submit = SubmitField("Save changes")


class UserCreateForm(UserEditForm, NewAccountForm):
    is_active = BooleanField("Active (may sign in)", default=True)
    submit = SubmitField("Create user")


class PasswordSetForm(NewPasswordForm):
    """An admin sets a user's new password (the user's sessions end); set ``account``."""

    submit = SubmitField("Set password")


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


class ImportForm(Form):
    """A CSV file to check before importing it (``webapp.admin.imports``). The view passes
    the uploaded files as ``formdata``: the base form reads only the posted text."""

    file = FileField(
        "CSV file",
        validators=[FileRequired("Choose a CSV file to import.")],
        render_kw={"accept": ".csv,text/csv"},
    )
    allow_admins = BooleanField("Rows may make admins (the file's admin column)")
    submit = SubmitField("Check the file")


class ImportConfirmForm(Form):
    """Import the file the preview showed: named by a signed token, never sent again."""

    token = HiddenField()
    submit = SubmitField("Import")
