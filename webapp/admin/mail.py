"""The outbox's admin page: its list is the common one (``tables.MAIL``); here, Retry."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from webapp.admin.forms import ConfirmForm
from webapp.admin.pages import actor, get_or_404
from webapp.admin.views import bp
from webapp.audit import audit
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.models.mail import FAILED, MAIL_STATUSES
from webapp.repositories.outbox import OutboxRepository


@bp.post("/mail/<int(max=2147483647):message_id>/retry")
def mail_retry(message_id: int) -> ResponseReturnValue:
    """Make a failed message due at once, with its attempts counted afresh (audited)."""
    status = request.form.get("status", "")
    back = (
        url_for("admin.mail", status=status) if status in MAIL_STATUSES else url_for("admin.mail")
    )
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("That form had expired; please try again.", "error")
        return redirect(back)
    outbox = OutboxRepository(db.session)
    message = get_or_404(outbox, message_id)
    if message.status != FAILED:
        flash(f"The message to {message.recipient} has not failed: nothing to retry.", "info")
        return redirect(back)
    before = {"status": message.status, "attempts": message.attempts}
    outbox.retry(message, utcnow())
    audit(
        "admin.mail.retry",
        actor(),
        message,
        before=before,
        after={"status": message.status, "recipient": message.recipient},
    )
    db.session.commit()
    flash(f"The message to {message.recipient} will be sent again shortly.", "success")
    return redirect(back)
