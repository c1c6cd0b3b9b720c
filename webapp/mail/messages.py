"""Queueing a message: rendered now, written to the outbox in the caller's transaction."""

from __future__ import annotations

from flask import current_app, g, has_app_context, render_template

from webapp.extensions import db
from webapp.mail.smtp import new_message_id
from webapp.models import OutboxMessage
from webapp.repositories.outbox import OutboxRepository

# ``g`` key: this request queued a message (development then writes it to the log at the end).
QUEUED = "mail_queued"
HTML_TEMPLATE = "auth/email/message.html"


def queue_mail(to: str, subject: str, template: str, **context: object) -> OutboxMessage:
    """Render the plain-text ``template`` with ``context`` (and its HTML twin) and add the
    message to the outbox. It is sent once the caller commits, and never if it rolls back."""
    body = render_template(template, **context)
    html = render_template(HTML_TEMPLATE, subject=subject, body=body)
    message = OutboxRepository(db.session).add(
        message_id=new_message_id(current_app.config["MAIL_FROM"]),
        recipient=to,
        subject=subject,
        body_text=body,
        body_html=html,
    )
    if has_app_context():
        g.setdefault(QUEUED, True)
    return message
