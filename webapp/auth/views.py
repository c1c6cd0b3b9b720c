"""Signing in and out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from webapp.auth.forms import LoginForm
from webapp.auth.services import authenticate, record_failed_login, sign_out, start_session
from webapp.extensions import db, limiter
from webapp.web import redirect_next

bp = Blueprint("auth", __name__, url_prefix="/auth")

LOGIN_FAILED = "That email or username and password do not match an active account."


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect_next()
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = authenticate(form.login.data, form.password.data)
        if user is None:
            record_failed_login(form.login.data)
            db.session.commit()
            form.password.errors.append(LOGIN_FAILED)
        else:
            start_session(user, remember=form.remember.data)
            db.session.commit()
            flash(f"Welcome back, {user.username}.", "success")
            return redirect_next()
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    sign_out(current_user._get_current_object())
    db.session.commit()
    flash("You have been signed out.", "info")
    return redirect(url_for("main.index"))
