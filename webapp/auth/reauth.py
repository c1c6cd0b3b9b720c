"""Recent sign-in for what matters: changing the password, email or two-factor, deleting the
account, and an admin's role change or deletion of a user.

Each needs this browser's sign-in (password, and code where two-factor is on) to be at most
``REAUTH_SECONDS`` old (the session record's ``authenticated_at``). Otherwise the person is
asked for it again (``auth.reauthenticate``) and then carried on: a page they were opening
opens; a form they had sent comes back filled in as they left it (passwords excepted, which
are never kept), for them to send again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webapp.auth.services import current_session
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.repositories import SessionRepository

View = TypeVar("View", bound=Callable[..., Any])

# Fields never carried through the sign-in page: the CSRF token is made anew; passwords and
# codes are not written into a page or a cookie.
NOT_CARRIED = frozenset({"csrf_token", "password", "confirm", "current_password", "code"})
CARRIED_MAX = 20  # fields; a form of ours has fewer
# Carried fields' names on the sign-in page, apart from its own fields.
KEEP_PREFIX = "keep."


def signed_in_recently() -> bool:
    record = current_session()
    if record is None:
        return False
    limit = timedelta(seconds=current_app.config["REAUTH_SECONDS"])
    return utcnow() - record.authenticated_at <= limit


def mark_signed_in_now() -> None:
    record = current_session()
    if record is not None:
        SessionRepository(db.session).update(record, authenticated_at=utcnow())


def ask_for_sign_in(target: str | None = None) -> ResponseReturnValue:
    """The sign-in page, asked on the way to this request's page (or ``target``), or with
    its form."""
    if target is None:
        target = request.full_path.rstrip("?") if request.query_string else request.path
    if request.method != "POST":
        return redirect(url_for("auth.reauthenticate", next=target))
    from webapp.auth.forms import ReauthForm

    carried = [
        (name, value)
        for name, value in request.form.items(multi=True)
        if name not in NOT_CARRIED and isinstance(value, str)
    ][:CARRIED_MAX]
    form = ReauthForm(formdata=None, next=target)
    return render_template("auth/reauthenticate.html", form=form, carried=carried)


def recent_sign_in_required(view: View) -> View:
    """The whole view (its page and its form) needs a recent sign-in."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not signed_in_recently():
            return ask_for_sign_in()
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]
