"""Queueing a message: rendered now, written to the outbox in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask import current_app, g, has_app_context, render_template

from webapp.extensions import db
from webapp.mail.smtp import new_message_id
from webapp.models import OutboxMessage
from webapp.repositories.outbox import OutboxRepository

# ``g`` key: this request queued a message (development then writes it to the log at the end).
QUEUED = "mail_queued"
HTML_TEMPLATE = "auth/email/message.html"


def _rendered(to: str, subject: str, body: str, html: str, sender: str) -> dict[str, str]:
    return {
        "message_id": new_message_id(sender),
        "recipient": to,
        "subject": subject,
        "body_text": body,
        "body_html": html,
    }


def _mark_queued() -> None:
    if has_app_context():
        g.setdefault(QUEUED, True)


def queue_mail(to: str, subject: str, template: str, **context: object) -> OutboxMessage:
    """Render the plain-text ``template`` with ``context`` (and its HTML twin) and add the
    message to the outbox. It is sent once the caller commits, and never if it rolls back."""
    body = render_template(template, **context)
    html = render_template(HTML_TEMPLATE, subject=subject, body=body)
    sender = current_app.config["MAIL_FROM"]
    message = OutboxRepository(db.session).add(**_rendered(to, subject, body, html, sender))
    _mark_queued()
    return message


def queue_mails(
    subject: str, template: str, messages: Iterable[tuple[str, Mapping[str, object]]]
) -> int:
    """``queue_mail`` for many messages of one kind at once (an import's thousands), each
    ``(to, context)``; returns how many were queued.

    ``template`` names a pair: ``<template>.txt`` defines the macro ``text`` and
    ``<template>.html`` the macro ``html`` (which also takes ``subject``). A macro call costs
    about a tenth of a render (no new context from the app's globals per message), and the
    rows go in with one multi-row insert per batch.
    """
    env = current_app.jinja_env
    text = env.get_template(f"{template}.txt").module.text  # type: ignore[attr-defined]
    html = env.get_template(f"{template}.html").module.html  # type: ignore[attr-defined]
    sender = current_app.config["MAIL_FROM"]
    rows = (
        _rendered(to, subject, str(text(**context)), str(html(subject=subject, **context)), sender)
        for to, context in messages
    )
    count = OutboxRepository(db.session).add_many(rows)
    if count:
        _mark_queued()
    return count
