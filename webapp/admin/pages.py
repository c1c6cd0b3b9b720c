"""What the console's pages share: the acting admin, a row or a 404, a delete's confirmation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request
from flask.typing import ResponseReturnValue

from webapp.admin import services
from webapp.admin.forms import ConfirmForm
from webapp.auth.login import signed_in_row
from webapp.extensions import db
from webapp.models import User


def actor() -> User:
    """The signed-in admin, for the services and the audit rows."""
    return signed_in_row()


def get_or_404(repository: Any, row_id: int, **kwargs: Any) -> Any:
    row = repository.get(row_id, **kwargs)
    if row is None:
        abort(404)
    return row


def trash_lead() -> str:
    """What a delete page says happens: the rows go to the trash, for so many days."""
    days = current_app.config["TRASH_RETENTION_DAYS"]
    return (
        f"These go to the trash, where they are kept for {days} days and can be restored "
        "(Admin → Trash) until then:"
    )


def confirm_delete(
    *,
    title: str,
    consequences: list[str],
    perform: Callable[[], None],
    done: str,
    back: str,
    message: str,
    refused: str | None = None,
    lead: str | None = None,
) -> ResponseReturnValue:
    """GET: what will go, and a button. POST: delete, commit, and go to ``done``."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        if refused:
            flash(refused, "error")
            return redirect(back)
        try:
            perform()
        except services.RuleError as error:
            db.session.rollback()
            flash(str(error), "error")
            return redirect(back)
        db.session.commit()
        flash(message, "success")
        return redirect(done)
    return render_template(
        "admin/confirm_delete.html",
        title=title,
        consequences=consequences,
        form=form,
        back=back,
        refused=refused,
        lead=lead,
    )
