"""Outgoing mail through an outbox (DESIGN §9).

A view never talks to the mail server: ``queue_mail`` renders a message and adds it to the
outbox in the view's transaction, so a change that rolls back sends nothing and one that
commits loses nothing. ``flask --app webapp mail deliver`` (``webapp.mail.delivery``) sends
what is due over SMTP (``webapp.mail.smtp``), retrying with backoff. In development, with no
``MAIL_SERVER``, the app itself writes each queued message to the log after the request.
"""

from webapp.mail.delivery import DeliveryReport, deliver_due, register
from webapp.mail.messages import queue_mail
from webapp.mail.smtp import MailError, Transport, build_message, send_message

__all__ = [
    "DeliveryReport",
    "MailError",
    "Transport",
    "build_message",
    "deliver_due",
    "queue_mail",
    "register",
    "send_message",
]
