"""Delivering the outbox: each due message in a transaction of its own, retried with backoff.

A message is claimed (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), handed to the SMTP server,
and its new state committed. A deliverer that dies between the server's acceptance and that
commit leaves the row pending, so it is sent again (with the same ``Message-ID``): at most
once while the deliverer and the server behave, at least once always.

Every attempt is one JSON line on the ``webapp.mail`` logger (stdout): the row, its
``Message-ID``, the outcome and the error, never the body, a link or a token.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, g
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.mail.messages import QUEUED
from webapp.mail.smtp import MailError, Transport, build_message
from webapp.models.mail import FAILED, SENT, OutboxMessage
from webapp.repositories.base import SessionLike
from webapp.repositories.outbox import OutboxRepository
from webapp.web.request_log import configure_logger

logger = logging.getLogger("webapp.mail")


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def attempts(self) -> int:
        return self.sent + self.retried + self.failed


def backoff_seconds(
    attempts: int, config: Mapping[str, Any], rand: Callable[[], float] = random.random
) -> float:
    """How long to wait after the ``attempts``-th failure: doubling from
    ``MAIL_RETRY_BASE_SECONDS`` up to ``MAIL_RETRY_MAX_SECONDS``, with "equal jitter" (half
    fixed, half random), so messages that failed together do not all come back together."""
    base = float(config["MAIL_RETRY_BASE_SECONDS"])
    ceiling = float(config["MAIL_RETRY_MAX_SECONDS"])
    delay = min(base * 2 ** max(attempts - 1, 0), ceiling)
    return delay / 2 + rand() * delay / 2


def as_email(message: OutboxMessage) -> Any:
    return build_message(
        message.recipient,
        message.subject,
        message.body_text,
        html=message.body_html,
        message_id=message.message_id,
        date=message.created_at,
    )


def _log_attempt(message: OutboxMessage, outcome: str, started: float, error: str | None) -> None:
    logger.info(
        json.dumps(
            {
                "ts": utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "event": "mail",
                "outcome": outcome,
                "message": message.id,
                "message_id": message.message_id,
                "attempt": message.attempts,
                "error": error,
                "next_attempt_at": message.next_attempt_at.isoformat()
                if outcome == "retry"
                else None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "pid": os.getpid(),
            }
        )
    )


def deliver_one(
    outbox: OutboxRepository,
    message: OutboxMessage,
    transport: Transport,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Try to send the claimed ``message`` once and record the outcome on its row (the caller
    commits)."""
    config = current_app.config
    started = time.perf_counter()
    attempts = message.attempts + 1
    try:
        transport.send(as_email(message))
    except MailError as failure:
        error = str(failure)
        if failure.permanent or attempts >= int(config["MAIL_MAX_ATTEMPTS"]):
            outbox.update(message, attempts=attempts, last_error=error, status=FAILED)
            report.failed += 1
            outcome = "failed"
        else:
            due = now + timedelta(seconds=backoff_seconds(attempts, config))
            outbox.update(message, attempts=attempts, last_error=error, next_attempt_at=due)
            report.retried += 1
            outcome = "retry"
        _log_attempt(message, outcome, started, error)
        return
    outbox.update(message, attempts=attempts, status=SENT, sent_at=utcnow())
    report.sent += 1
    _log_attempt(message, "sent", started, None)


def deliver_due(
    session: SessionLike | None = None,
    *,
    transport: Transport | None = None,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] = utcnow,
) -> DeliveryReport:
    """Send every pending message due now, oldest first, one transaction per message, until
    none is due or ``stop()`` says so (checked between messages: the one in hand is finished).
    """
    session = session if session is not None else db.session
    outbox = OutboxRepository(session)
    report = DeliveryReport()
    own_transport = transport is None
    transport = transport or Transport(current_app.config)
    try:
        while not stop():
            now = clock()
            message = outbox.claim_due(now)
            if message is None:
                session.rollback()  # end the claim's transaction (nothing was locked)
                break
            try:
                deliver_one(outbox, message, transport, now, report)
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        if own_transport:
            transport.close()
    return report


def deliver_queued_to_log(response: Response) -> Response:
    """Development without a mail server: after a request that queued mail (and committed),
    write what is due to the log, so a newcomer finds the link without a second process."""
    config = current_app.config
    if not g.pop(QUEUED, False) or not config.get("MAIL_DELIVER_TO_LOG"):
        return response
    transport = Transport(config)
    if not transport.to_log:  # a mail server is set: the deliverer's job
        return response
    # A session of its own: whatever the view left uncommitted in ``db.session`` stays out.
    with Session(db.engine, join_transaction_mode="create_savepoint") as session:
        try:
            deliver_due(session, transport=transport)
        except SQLAlchemyError:
            current_app.logger.exception("Could not write the queued mail to the log")
    return response


def register(app: Flask) -> None:
    configure_logger(logger)
    app.after_request(deliver_queued_to_log)
