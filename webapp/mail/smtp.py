"""Handing a message to the SMTP server named by the ``MAIL_*`` settings (or to the log).

With no ``MAIL_SERVER`` in development or testing, a message is written to the log instead
(so a developer can follow a reset link from the console); in production it is an error.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, make_msgid, parseaddr
from types import TracebackType
from typing import Any

from flask import current_app

SMTP_TIMEOUT_SECONDS = 10
LOG_ONLY_ENVS = frozenset({"development", "testing"})


class MailError(Exception):
    """The message was not handed over; the text says why (never the message's body).

    ``permanent``: the server refused this message for good (a 5xx answer about its recipient
    or its content), so sending it again would be refused again.
    """

    def __init__(self, text: str, *, permanent: bool = False) -> None:
        super().__init__(text)
        self.permanent = permanent


def sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def new_message_id(sender: str) -> str:
    # An explicit domain: the default asks the resolver for this host's name, which can stall.
    return make_msgid(domain=sender_domain(sender))


def build_message(
    to: str,
    subject: str,
    body: str,
    *,
    html: str | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The message as sent: ``message_id`` and ``date`` are the outbox row's, so every attempt
    to send one row carries the same ``Message-ID``."""
    sender = current_app.config["MAIL_FROM"]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date, usegmt=True) if date else formatdate(usegmt=True)
    message["Message-ID"] = message_id or new_message_id(sender)
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def logs_instead(config: Mapping[str, Any]) -> bool:
    """Whether, with no ``MAIL_SERVER``, messages go to the log (development and tests)."""
    return config.get("ENV") in LOG_ONLY_ENVS or bool(config.get("TESTING"))


class Transport:
    """One SMTP connection, opened on the first message and kept for the next ones.

    ``send`` raises ``MailError`` when the server (or the network) refused; the connection is
    then dropped, and the next message opens a new one. With no ``MAIL_SERVER``, development
    and tests write each message to the log; elsewhere ``send`` refuses.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.server: str | None = config.get("MAIL_SERVER")
        self._smtp: smtplib.SMTP | None = None

    @property
    def to_log(self) -> bool:
        return not self.server and logs_instead(self.config)

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        assert self.server
        smtp = smtplib.SMTP(self.server, int(config["MAIL_PORT"]), timeout=SMTP_TIMEOUT_SECONDS)
        try:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        if not self.server:
            if not self.to_log:
                raise MailError("MAIL_SERVER is not set")
            current_app.logger.warning(
                "MAIL_SERVER is not set; this message was not sent:\n%s", message.as_string()
            )
            return
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise MailError(describe(error), permanent=refused_for_good(error)) from error


def refused_for_good(error: BaseException) -> bool:
    """A 5xx answer about the message itself: every recipient refused, or its content. A 5xx
    about the server or our account (a bad password, a refused sender) is not: fixing the
    settings lets every waiting message through, so those are retried."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return 500 <= error.smtp_code < 600
    return False


def describe(error: BaseException) -> str:
    """A short account of an SMTP failure, for the outbox row and the log."""
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return f"{error.smtp_code} {text}"[:500]
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = {code for code, _ in error.recipients.values()}
        return f"recipient refused ({', '.join(map(str, sorted(codes)))})"
    return f"{type(error).__name__}: {error}"[:500]


def send_message(message: EmailMessage) -> bool:
    """Hand ``message`` to the SMTP server now; True when it was accepted (or logged).

    For the deliverer and for tests of the SMTP settings: the app's own mail goes through the
    outbox (``queue_mail``). A failure is logged, not raised.
    """
    config = current_app.config
    with Transport(config) as transport:
        try:
            transport.send(message)
        except MailError as error:
            if not config.get("MAIL_SERVER"):
                current_app.logger.error(
                    "MAIL_SERVER is not set: the message %r to %s was not sent.",
                    message["Subject"],
                    message["To"],
                )
            else:
                current_app.logger.error(
                    "Could not send the message %r to %s through %s:%s: %s",
                    message["Subject"],
                    message["To"],
                    config["MAIL_SERVER"],
                    config["MAIL_PORT"],
                    error,
                )
            return False
    return True
