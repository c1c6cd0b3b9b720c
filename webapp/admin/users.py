"""Users: create, edit, set a password, delete."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from webapp.account.devices import describe
from webapp.admin import services
from webapp.admin.forms import ConfirmForm, PasswordSetForm, UserCreateForm, UserEditForm
from webapp.admin.pages import actor, confirm_delete, get_or_404, trash_lead
from webapp.admin.tables import ITEMS, POSTS
from webapp.admin.views import bp
from webapp.auth.reauth import ask_for_sign_in, recent_sign_in_required, signed_in_recently
from webapp.auth.services import current_session
from webapp.extensions import db
from webapp.models import User
from webapp.repositories import SessionRepository, UserRepository
from webapp.web.edits import flash_saved


@bp.route("/users/new", methods=["GET", "POST"])
def user_create() -> ResponseReturnValue:
    form = UserCreateForm()
    if form.validate_on_submit() and form.check_unique():
        try:
            user = services.create_user(
                actor(),
                email=form.email.data,
                username=form.username.data,
                password=form.password.data,
                is_active=form.is_active.data,
                is_admin=form.is_admin.data,
            )
            db.session.commit()
        except IntegrityError as error:
            db.session.rollback()
            form.report_taken(error)
        else:
            flash(f"User {user.username} created.", "success")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_template("admin/user_form.html", form=form, user=None, is_self=False)


def _render_user(
    user: User, form: UserEditForm | None = None, password_form: PasswordSetForm | None = None
) -> str:
    items, posts = UserRepository(db.session).content_counts(user.id)
    current = current_session()
    return render_template(
        "admin/user_form.html",
        user=user,
        sessions=[
            {"record": record, "device": describe(record.user_agent)}
            for record in SessionRepository(db.session).of_user(user.id)
        ],
        current_session_id=current.id if current is not None else None,
        session_form=ConfirmForm(),
        form=form or UserEditForm(obj=user),
        password_form=password_form or PasswordSetForm(),
        items=items,
        posts=posts,
        is_self=user.id == current_user.id,
    )


@bp.route("/users/<int(max=2147483647):user_id>", methods=["GET", "POST"])
def user_edit(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    form = UserEditForm(obj=user)
    if form.validate_on_submit() and form.check_unique(exclude_id=user.id):
        values = {name: getattr(form, name).data for name in services.USER_FIELDS}
        if values["is_admin"] != user.is_admin and not signed_in_recently():
            return ask_for_sign_in()
        try:
            changed = services.update_user(actor(), user, values)
            db.session.commit()
        except services.RuleError as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        except IntegrityError as error:
            db.session.rollback()
            form.report_taken(error)
        else:
            flash_saved(f"Saved {user.username}.", changed)
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return _render_user(user, form=form)


@bp.post("/users/<int(max=2147483647):user_id>/password")
def user_password(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    form = PasswordSetForm()
    form.account = user
    if form.validate_on_submit():
        services.set_password(actor(), user, form.password.data)
        db.session.commit()
        flash(f"New password set for {user.username}; their sessions have ended.", "success")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    return _render_user(user, password_form=form)


@bp.route("/users/<int(max=2147483647):user_id>/delete", methods=["GET", "POST"])
@recent_sign_in_required
def user_delete(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    items, posts = UserRepository(db.session).content_counts(user.id)
    name = user.username
    return confirm_delete(
        title=f"Delete the user {name}?",
        consequences=[
            f"The account {name} <{user.email}>",
            ITEMS.describe(items),
            POSTS.describe(posts),
        ],
        perform=lambda: _trash_user(user),
        done=url_for("admin.users"),
        back=url_for("admin.user_edit", user_id=user.id),
        message=(
            f"User {name} moved to the trash, with {ITEMS.describe(items)} and "
            f"{POSTS.describe(posts)}; their sessions have ended."
        ),
        lead=trash_lead(),
        refused="You cannot delete your own account here." if user.id == current_user.id else None,
    )


@bp.post("/users/<int(max=2147483647):user_id>/sessions/<int(max=2147483647):session_id>/end")
def user_end_session(user_id: int, session_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    record = SessionRepository(db.session).get_of_user(user.id, session_id)
    if record is None:
        abort(404)
    if ConfirmForm().validate_on_submit():
        services.end_session(actor(), user, record)
        db.session.commit()
        flash(f"Signed {user.username} out of {describe(record.user_agent)}.", "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.post("/users/<int(max=2147483647):user_id>/sessions/end")
def user_end_sessions(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    if ConfirmForm().validate_on_submit():
        ended = services.end_sessions(actor(), user)
        db.session.commit()
        flash(f"Signed {user.username} out of {ended} session(s).", "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.post("/users/<int(max=2147483647):user_id>/two-factor/reset")
@recent_sign_in_required
def user_two_factor_reset(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    back = redirect(url_for("admin.user_edit", user_id=user.id))
    if not ConfirmForm().validate_on_submit():
        return back
    if not user.two_factor_enabled:
        flash(f"Two-factor sign-in was already off for {user.username}.", "info")
        return back
    try:
        services.reset_two_factor(actor(), user)
    except services.RuleError as error:
        db.session.rollback()
        flash(str(error), "error")
        return back
    db.session.commit()
    flash(
        f"Two-factor sign-in is off for {user.username}: their password alone signs them in "
        "until they turn it on again.",
        "success",
    )
    return back


def _trash_user(user: User) -> None:
    services.delete_user(actor(), user)
