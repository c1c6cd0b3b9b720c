"""My two-factor sign-in and my signed-in browsers (routes on the account blueprint)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from webapp.account.devices import describe
from webapp.account.forms import ActionForm, TwoFactorDisableForm, TwoFactorEnableForm
from webapp.account.views import WRONG_PASSWORD, bp, per_user_limit
from webapp.audit import audit
from webapp.auth import services, two_factor
from webapp.auth.limits import configured, failed_form, two_factor_account
from webapp.auth.login import signed_in_row
from webapp.auth.reauth import recent_sign_in_required
from webapp.extensions import db, limiter
from webapp.models import User
from webapp.repositories import SessionRepository
from webapp.web.requests import is_safe_next

# Session key: the recovery codes just made, shown once on the next page and then forgotten.
FRESH_CODES_KEY = "fresh_recovery_codes"
WRONG_CODE = "That code is not right, or was already used. Enter the newest code in your app."

per_account_code_limit = limiter.limit(
    configured("RATELIMIT_TWO_FACTOR_ACCOUNT"),
    key_func=two_factor_account,
    methods=["POST"],
    deduct_when=failed_form,
)


def _next() -> str:
    """The page to return to afterwards (an admin page that asked for two-factor), if safe."""
    target = request.values.get("next", "")
    return target if is_safe_next(target) else ""


def _render_two_factor(
    user: User,
    enable_form: TwoFactorEnableForm | None = None,
    disable_form: TwoFactorDisableForm | None = None,
) -> str:
    secret = two_factor.secret_of(user)
    setup = None
    if not user.two_factor_enabled and secret is not None:
        uri = two_factor.provisioning_uri(user, secret)
        setup = {"qr": two_factor.qr_svg(uri), "secret": two_factor.grouped(secret)}
    return render_template(
        "account/two_factor.html",
        user=user,
        setup=setup,
        next=_next(),
        enable_form=enable_form or TwoFactorEnableForm(next=_next()),
        disable_form=disable_form or TwoFactorDisableForm(),
        action_form=ActionForm(next=_next()),
        codes_left=two_factor.recovery_codes_left(user) if user.two_factor_enabled else None,
    )


def _show_codes(codes: list[str]) -> ResponseReturnValue:
    session[FRESH_CODES_KEY] = codes
    return redirect(url_for("account.recovery_codes", next=_next() or None))


@bp.get("/two-factor")
def two_factor_page() -> ResponseReturnValue:
    return _render_two_factor(signed_in_row())


@bp.post("/two-factor/setup")
@recent_sign_in_required
def two_factor_setup() -> ResponseReturnValue:
    """Make a new secret to scan; two-factor stays off until a code of it is entered."""
    user = signed_in_row()
    if user.two_factor_enabled:
        flash("Two-factor sign-in is already on.", "info")
    elif ActionForm().validate_on_submit():
        two_factor.begin_setup(user)
        db.session.commit()
    return redirect(url_for("account.two_factor_page", next=_next() or None))


@bp.post("/two-factor")
@per_user_limit
@per_account_code_limit
@recent_sign_in_required
def two_factor_enable() -> ResponseReturnValue:
    user = signed_in_row()
    if user.two_factor_enabled or two_factor.secret_of(user) is None:
        # Already on, or nothing being set up (another tab started again or switched it off).
        return redirect(url_for("account.two_factor_page", next=_next() or None))
    form = TwoFactorEnableForm()
    if form.validate_on_submit():
        codes = two_factor.enable(user, form.code.data)
        if codes is not None:
            db.session.commit()
            flash("Two-factor sign-in is on. Keep your recovery codes somewhere safe.", "success")
            return _show_codes(codes)
        form.code.errors.append(WRONG_CODE)
    return _render_two_factor(user, enable_form=form)


@bp.get("/two-factor/recovery-codes")
def recovery_codes() -> ResponseReturnValue:
    """The codes just made, once: a reload shows them no more."""
    codes = session.pop(FRESH_CODES_KEY, None)
    if not isinstance(codes, list) or not codes:
        return redirect(url_for("account.two_factor_page"))
    return render_template("account/recovery_codes.html", codes=codes, next=_next())


@bp.post("/two-factor/recovery-codes")
@recent_sign_in_required
def recovery_codes_renew() -> ResponseReturnValue:
    user = signed_in_row()
    if not user.two_factor_enabled or not ActionForm().validate_on_submit():
        return redirect(url_for("account.two_factor_page"))
    codes = two_factor.renew_recovery_codes(user)
    db.session.commit()
    flash("New recovery codes made; the old ones no longer work.", "success")
    return _show_codes(codes)


@bp.post("/two-factor/disable")
@per_user_limit
@per_account_code_limit
def two_factor_disable() -> ResponseReturnValue:
    user = signed_in_row()
    if not user.two_factor_enabled:
        return redirect(url_for("account.two_factor_page"))
    form = TwoFactorDisableForm()
    if form.validate_on_submit():
        if not user.check_password(form.password.data):
            form.password.errors.append(WRONG_PASSWORD)
        elif two_factor.check_second_factor(user, form.code.data) is None:
            form.code.errors.append(WRONG_CODE)
        else:
            two_factor.disable(user)
            db.session.commit()
            flash("Two-factor sign-in is off. Your password alone signs you in now.", "success")
            return redirect(url_for("account.two_factor_page"))
    return _render_two_factor(user, disable_form=form)


@bp.get("/sessions")
def sessions() -> ResponseReturnValue:
    user = signed_in_row()
    current = services.current_session()
    rows = [
        {"record": record, "device": describe(record.user_agent)}
        for record in SessionRepository(db.session).of_user(user.id)
    ]
    return render_template(
        "account/sessions.html",
        rows=rows,
        current_id=current.id if current is not None else None,
        form=ActionForm(),
    )


@bp.post("/sessions/<int(max=2147483647):session_id>/end")
def end_session(session_id: int) -> ResponseReturnValue:
    user = signed_in_row()
    sessions = SessionRepository(db.session)
    record = sessions.get_of_user(user.id, session_id)
    if record is None:
        abort(404)
    current = services.current_session()
    if current is not None and record.id == current.id:
        flash("That is this browser: use Sign out to end it.", "info")
        return redirect(url_for("account.sessions"))
    if ActionForm().validate_on_submit():
        device = describe(record.user_agent)
        sessions.end_one(record)
        audit("account.session_ended", user, user, after={"session": record.id, "device": device})
        db.session.commit()
        flash(f"Signed out {device}.", "success")
    return redirect(url_for("account.sessions"))
