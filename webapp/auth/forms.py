from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from webapp.forms import NoControlCharacters, strip
from webapp.validation import EMAIL_MAX, PASSWORD_MAX


class LoginForm(FlaskForm):
    login = StringField(
        "Email or username",
        filters=[strip],
        validators=[DataRequired(), Length(max=EMAIL_MAX), NoControlCharacters()],
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
