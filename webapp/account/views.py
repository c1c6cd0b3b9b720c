"""My account: overview, email and username, password, sessions, my data, deletion."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from webapp.account.forms import AccountForm, DeleteAccountForm, PasswordChangeForm
from webapp.audit import audit
from webapp.auth import services
from webapp.auth.emails import queue_confirmation, queue_password_changed
from webapp.auth.limits import configured, signed_in_user
from webapp.auth.login import signed_in_row
from webapp.auth.reauth import ask_for_sign_in, recent_sign_in_required, signed_in_recently
from webapp.db.types import utcnow
from webapp.extensions import db, limiter, login_manager
from webapp.models import Item, Post
from webapp.repositories import UserRepository
from webapp.web.csv_export import iter_csv
from webapp.web.requests import redirect_next

bp = Blueprint("account", __name__, url_prefix="/account")

WRONG_PASSWORD = "That is not your current password."  # noqa: S105 - a message
ITEM_CSV_HEADER = ("id", "title", "description", "created_at", "updated_at")

# Forms that check the password or send mail are limited per account, too.
per_user_limit = limiter.limit(
    configured("RATELIMIT_ACCOUNT_USER"), key_func=signed_in_user, methods=["POST"]
)


@bp.before_request
def require_sign_in() -> ResponseReturnValue | None:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


@bp.get("/")
def index() -> ResponseReturnValue:
    user = signed_in_row()
    items, posts = UserRepository(db.session).content_counts(user.id)
    return render_template("account/index.html", user=user, items=items, posts=posts)


@bp.route("/edit", methods=["GET", "POST"])
@per_user_limit
def edit() -> ResponseReturnValue:
    user = signed_in_row()
    # Filled from the account to start with; a POST is judged on what it sent alone.
    form = AccountForm(obj=user if request.method == "GET" else None)
    if not form.validate_on_submit():
        return render_template("account/edit.html", form=form, user=user)

    email, username = form.email.data, form.username.data
    email_changes, username_changes = email != user.email, username != user.username
    if email_changes and not signed_in_recently():
        return ask_for_sign_in()
    if email_changes:
        if not form.current_password.data:
            form.current_password.errors.append(
                "Enter your current password to change your email address."
            )
        elif not user.check_password(form.current_password.data):
            form.current_password.errors.append(WRONG_PASSWORD)
    if not form.check_unique(exclude_id=user.id) or form.current_password.errors:
        return render_template("account/edit.html", form=form, user=user)

    if username_changes:
        try:
            services.rename(user, username)
            db.session.commit()
        except IntegrityError as error:
            db.session.rollback()
            form.report_taken(error)
            return render_template("account/edit.html", form=form, user=user)
        flash(f"Your username is now {username}.", "success")
    if email_changes:
        # The address changes only once the new one is confirmed, from the link sent to it.
        queue_confirmation(user, email)
        db.session.commit()
        flash(
            f"We sent a link to {email}. Your email address changes to it once you follow "
            f"the link; until then it stays {user.email}.",
            "info",
        )
    if not (email_changes or username_changes):
        flash("Nothing changed.", "info")
    return redirect(url_for("account.index"))


@bp.route("/password", methods=["GET", "POST"])
@per_user_limit
@recent_sign_in_required
def password() -> ResponseReturnValue:
    user = signed_in_row()
    form = PasswordChangeForm()
    form.account = user
    if form.validate_on_submit():
        if not user.check_password(form.current_password.data):
            form.current_password.errors.append(WRONG_PASSWORD)
        else:
            services.change_password(user, form.password.data)
            queue_password_changed(user)
            db.session.commit()
            flash("Your password has been changed. Your other sessions were signed out.", "success")
            return redirect(url_for("account.index"))
    return render_template("account/password.html", form=form)


@bp.post("/sessions/revoke")
def revoke_sessions() -> ResponseReturnValue:
    user = signed_in_row()
    ended = services.end_other_sessions(user)
    audit("account.sessions_revoked", user, user, after={"sessions_ended": ended})
    db.session.commit()
    flash("You are now signed out everywhere else.", "success")
    return redirect_next("account.index")


@bp.route("/delete", methods=["GET", "POST"])
@per_user_limit
@recent_sign_in_required
def delete() -> ResponseReturnValue:
    user = signed_in_row()
    users = UserRepository(db.session)
    form = DeleteAccountForm()
    if form.validate_on_submit():
        if not user.check_password(form.password.data):
            form.password.errors.append(WRONG_PASSWORD)
        elif user.is_admin and user.is_active and users.count_admins() <= 1:
            form.password.errors.append(
                "You are the last administrator. Make someone else an administrator first."
            )
        else:
            services.delete_account(user)
            db.session.commit()
            flash("Your account, items and posts have been deleted. Goodbye.", "success")
            return redirect(url_for("main.index"))
    items, posts = users.content_counts(user.id)
    return render_template("account/delete.html", form=form, items=items, posts=posts)


def _download(body: str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"  # personal data: not for shared caches
    return response


def _item_data(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "description": item.description,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


def _post_data(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "title": post.title,
        "body": post.body,
        "tags": [tag.name for tag in post.tags],
        "created_at": post.created_at.isoformat(),
        "updated_at": post.updated_at.isoformat(),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@bp.get("/export")
def export() -> ResponseReturnValue:
    """Everything we hold about me: account details, items and posts, as one JSON file."""
    user = signed_in_row()
    users = UserRepository(db.session)
    data = {
        "exported_at": utcnow().isoformat(),
        "account": {
            "id": user.id,
            "email": user.email,
            "username": user.username,
            "created_at": _iso(user.created_at),
            "email_confirmed_at": _iso(user.email_confirmed_at),
            "last_login_at": _iso(user.last_login_at),
            "last_login_ip": user.last_login_ip,
            "is_admin": user.is_admin,
        },
        "items": [_item_data(item) for item in users.items_of(user.id)],
        "posts": [_post_data(post) for post in users.posts_of(user.id)],
    }
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return _download(body, "application/json", f"webapp-{user.username}.json")


@bp.get("/export/items.csv")
def export_items() -> ResponseReturnValue:
    user = signed_in_row()
    rows = (
        (item.id, item.title, item.description, item.created_at, item.updated_at)
        for item in UserRepository(db.session).items_of(user.id)
    )
    body = "".join(iter_csv(ITEM_CSV_HEADER, rows))
    return _download(body, "text/csv", f"webapp-{user.username}-items.csv")
