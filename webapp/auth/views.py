"""Signing in and out, registering, forgotten passwords and email confirmation."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, logout_user
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from webapp.audit import audit
from webapp.auth import services
from webapp.auth.emails import (
    queue_confirmation,
    queue_email_changed,
    queue_password_changed,
    queue_reset_request,
)
from webapp.auth.forms import (
    ForgotForm,
    LoginForm,
    ReauthForm,
    RegisterForm,
    ResetForm,
    TwoFactorForm,
)
from webapp.auth.limits import (
    configured,
    failed_form,
    form_value,
    from_last_sign_in_address,
    login_account,
    login_account_at_address,
    signed_in_user,
    two_factor_account,
)
from webapp.auth.login import signed_in_row
from webapp.auth.reauth import CARRIED_MAX, KEEP_PREFIX, mark_signed_in_now
from webapp.auth.tokens import (
    RESET_MAX_AGE_SECONDS,
    TOKEN_MAX_LENGTH,
    read_confirm_token,
    user_for_reset_token,
)
from webapp.auth.two_factor import check_second_factor
from webapp.db.session import changes_data
from webapp.extensions import db, limiter
from webapp.repositories import UserRepository
from webapp.web.forms import keep_form_for
from webapp.web.requests import is_safe_next, redirect_next

bp = Blueprint("auth", __name__, url_prefix="/auth")

LOGIN_FAILED = "That email or username and password do not match an active account."
RESET_SENT = (
    "If an account uses that address, we have emailed it a link to set a new password. "
    f"The link works once, within {RESET_MAX_AGE_SECONDS // 60} minutes."
)
RESET_LINK_INVALID = "That link is invalid, has expired or was already used. Ask for a new one."
CONFIRM_LINK_INVALID = (
    "That confirmation link is invalid or has expired. Sign in to have a new one sent."
)
CODE_FAILED = "That code is not right, or was already used. Try the newest code in your app."
RECOVERY_CODE_USED = (
    "You signed in with a recovery code; it will not work again. Make new recovery codes on "
    "your two-factor page if you are running low."
)
WRONG_PASSWORD = "That is not your current password."  # noqa: S105 - a message


def _without_referrer(response: Response) -> Response:
    """Pages whose address holds a token must not pass it on to the next site visited."""
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_LOGIN_ADDRESS"), methods=["POST"])
@limiter.limit(
    configured("RATELIMIT_LOGIN_ACCOUNT_ADDRESS"),
    key_func=login_account_at_address,
    methods=["POST"],
    deduct_when=failed_form,
)
@limiter.limit(
    configured("RATELIMIT_LOGIN_ACCOUNT"),
    key_func=login_account,
    methods=["POST"],
    deduct_when=failed_form,
    exempt_when=from_last_sign_in_address,
)
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect_next()
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = services.authenticate(form.login.data, form.password.data)
        if user is None:
            services.record_failed_login(form.login.data)
            db.session.commit()
            form.password.errors.append(LOGIN_FAILED)
        elif user.two_factor_enabled:
            services.await_second_factor(user, remember=form.remember.data)
            db.session.commit()  # a rehashed password, if any
            return redirect(url_for("auth.two_factor", next=form.next.data or None))
        else:
            services.start_session(user, remember=form.remember.data)
            db.session.commit()
            flash(f"Welcome back, {user.username}.", "success")
            return redirect_next()
    return render_template("auth/login.html", form=form)


@bp.route("/two-factor", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_TWO_FACTOR_ADDRESS"), methods=["POST"])
@limiter.limit(
    configured("RATELIMIT_TWO_FACTOR_ACCOUNT"),
    key_func=two_factor_account,
    methods=["POST"],
    deduct_when=failed_form,
)
def two_factor() -> ResponseReturnValue:
    """The sign-in's second step: only a right code (once) signs the session in."""
    if current_user.is_authenticated:
        return redirect_next()
    pending = services.pending_second_factor()
    if pending is None:
        flash("Sign in with your password first (it waits five minutes for the code).", "info")
        return redirect(url_for("auth.login", next=request.args.get("next") or None))
    user, remember = pending
    form = TwoFactorForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        method = check_second_factor(user, form.code.data)
        if method is None:
            audit("auth.two_factor_failed", None, user)
            db.session.commit()
            form.code.errors.append(CODE_FAILED)
        else:
            services.start_session(user, remember=remember)
            audit("auth.two_factor_passed", user, user, after={"method": method})
            db.session.commit()
            flash(f"Welcome back, {user.username}.", "success")
            if method == "recovery code":
                flash(RECOVERY_CODE_USED, "info")
            return redirect_next()
    return render_template("auth/two_factor.html", form=form)


@bp.route("/reauthenticate", methods=["GET", "POST"])
@login_required
@limiter.limit(configured("RATELIMIT_ACCOUNT_USER"), key_func=signed_in_user, methods=["POST"])
@limiter.limit(
    configured("RATELIMIT_TWO_FACTOR_ACCOUNT"),
    key_func=two_factor_account,
    methods=["POST"],
    deduct_when=failed_form,
)
def reauthenticate() -> ResponseReturnValue:
    """Sign in again (password, and code where two-factor is on), then carry on."""
    user = signed_in_row()
    form = ReauthForm(next=request.args.get("next", ""))
    if not user.two_factor_enabled:
        del form.code  # a password alone signs this account in
    carried = [
        (name.removeprefix(KEEP_PREFIX), value)
        for name, value in request.form.items(multi=True)
        if name.startswith(KEEP_PREFIX)
    ][:CARRIED_MAX]
    if form.validate_on_submit():
        if not user.check_password(form.password.data):
            form.password.errors.append(WRONG_PASSWORD)
        elif "code" in form and not form.code.data:
            form.code.errors.append("Enter a code from your app, or a recovery code.")
        elif "code" in form and check_second_factor(user, form.code.data) is None:
            form.code.errors.append(CODE_FAILED)
        else:
            mark_signed_in_now()
            audit("auth.reauthenticated", user, user)
            db.session.commit()
            wanted = form.next.data or request.args.get("next", "")
            target = wanted if is_safe_next(wanted) else url_for("account.index")
            if carried:
                keep_form_for(urlsplit(target).path, carried)
            return redirect(target)
    return render_template("auth/reauthenticate.html", form=form, carried=carried)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    services.sign_out(signed_in_row())
    db.session.commit()
    flash("You have been signed out.", "info")
    return redirect(url_for("main.index"))


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_REGISTER_ADDRESS"), methods=["POST"])
@limiter.limit(
    configured("RATELIMIT_REGISTER_ACCOUNT"), key_func=form_value("email"), methods=["POST"]
)
def register() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("account.index"))
    form = RegisterForm(next=request.args.get("next", ""))
    if form.validate_on_submit() and form.check_unique():
        try:
            user = services.register(
                email=form.email.data, username=form.username.data, password=form.password.data
            )
            services.start_session(user)
            queue_confirmation(user)
            db.session.commit()
        except IntegrityError as error:
            db.session.rollback()
            form.report_taken(error)  # someone took the email or username just now
            logout_user()
            session.clear()
        else:
            flash(f"Welcome, {user.username}! Your account is ready.", "success")
            flash(f"We sent a link to {user.email}: follow it to confirm it.", "info")
            return redirect_next("account.index")
    return render_template("auth/register.html", form=form)


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_RESET_ADDRESS"), methods=["POST"])
@limiter.limit(
    configured("RATELIMIT_RESET_ACCOUNT"), key_func=form_value("email"), methods=["POST"]
)
def forgot() -> ResponseReturnValue:
    form = ForgotForm()
    if form.validate_on_submit():
        queue_reset_request(form.email.data)  # the same work whether or not it is an account's
        db.session.commit()
        flash(RESET_SENT, "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form)


@bp.route(f"/reset/<string(maxlength={TOKEN_MAX_LENGTH}):token>", methods=["GET", "POST"])
def reset(token: str) -> ResponseReturnValue:
    user = user_for_reset_token(token)
    if user is None:
        flash(RESET_LINK_INVALID, "error")
        return redirect(url_for("auth.forgot"))
    form = ResetForm()
    form.account = user
    if form.validate_on_submit():
        services.reset_password(user, form.password.data)
        queue_password_changed(user)
        logout_user()
        session.clear()
        db.session.commit()
        flash("Your new password is set. Sign in with it now.", "success")
        return redirect(url_for("auth.login"))
    html = render_template("auth/reset.html", form=form, user=user, token=token)
    return _without_referrer(make_response(html))


@bp.get(f"/confirm/<string(maxlength={TOKEN_MAX_LENGTH}):token>")
@changes_data
def confirm(token: str) -> ResponseReturnValue:
    target = url_for("account.index" if current_user.is_authenticated else "auth.login")
    confirmation = read_confirm_token(token)
    if confirmation is None:
        flash(CONFIRM_LINK_INVALID, "error")
        return _without_referrer(redirect(target))
    user = confirmation.user
    if not confirmation.is_change:
        if user.is_confirmed:
            flash(f"{user.email} was already confirmed.", "info")
        else:
            services.confirm_email(user)
            db.session.commit()
            flash(f"Thank you: {user.email} is confirmed.", "success")
        return _without_referrer(redirect(target))

    users = UserRepository(db.session)
    taken = f"Another account now uses {confirmation.email}; your address stays {user.email}."
    if users.email_taken(confirmation.email, exclude_id=user.id):
        flash(taken, "error")
        return _without_referrer(redirect(target))
    try:
        previous = services.change_email(user, confirmation.email)
        queue_email_changed(user, previous)
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        if users.unique_field(error) != "email":
            raise
        flash(taken, "error")
        return _without_referrer(redirect(target))
    flash(f"Your email address is now {user.email}.", "success")
    return _without_referrer(redirect(target))


@bp.post("/confirm/resend")
@login_required
@limiter.limit(configured("RATELIMIT_CONFIRM_RESEND_USER"), key_func=signed_in_user)
def confirm_resend() -> ResponseReturnValue:
    user = signed_in_row()
    if user.is_confirmed:
        flash("Your email address is already confirmed.", "info")
    else:
        queue_confirmation(user)
        db.session.commit()
        flash(f"We sent a new confirmation link to {user.email}.", "success")
    return redirect_next("account.index")
