"""Outgoing mail over SMTP, from the ``MAIL_*`` settings.

With no ``MAIL_SERVER`` in development or testing, a message is written to the log instead
(so a developer can follow a reset link from the console); in production it is an error.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from flask import current_app, render_template

SMTP_TIMEOUT_SECONDS = 10
LOG_ONLY_ENVS = frozenset({"development", "testing"})


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    sender = current_app.config["MAIL_FROM"]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # An explicit domain: the default asks the resolver for this host's name, which can stall.
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body)
    return message


def _logs_instead(config: dict[str, object]) -> bool:
    return config.get("ENV") in LOG_ONLY_ENVS or bool(config.get("TESTING"))


def send_message(message: EmailMessage) -> bool:
    """Hand ``message`` to the SMTP server; True when it was accepted (or logged in development).

    A failure is logged and reported as False, never raised: the page the user sees must not
    depend on whether the mail server answered.
    """
    config = current_app.config
    server = config.get("MAIL_SERVER")
    if not server:
        if _logs_instead(config):
            current_app.logger.warning(
                "MAIL_SERVER is not set; this message was not sent:\n%s", message.as_string()
            )
            return True
        current_app.logger.error(
            "MAIL_SERVER is not set: the message %r to %s was not sent.",
            message["Subject"],
            message["To"],
        )
        return False
    try:
        with smtplib.SMTP(server, int(config["MAIL_PORT"]), timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError):
        current_app.logger.exception(
            "Could not send the message %r to %s through %s:%s",
            message["Subject"],
            message["To"],
            server,
            config["MAIL_PORT"],
        )
        return False
    return True


def send_mail(to: str, subject: str, template: str, **context: object) -> bool:
    """Render the plain-text ``template`` with ``context`` and send it to ``to``."""
    body = render_template(template, **context)
    return send_message(build_message(to, subject, body))
