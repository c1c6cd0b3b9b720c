"""``flask --app webapp mail deliver``: the outbox's deliverer, a process beside gunicorn."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from types import FrameType

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from webapp.audit import audit
from webapp.cli.batches import erase_with_progress
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.mail import DeliveryReport, Transport, deliver_due
from webapp.repositories.outbox import OutboxRepository

mail = AppGroup("mail", help="The mail outbox.")


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (and Ctrl-C) ask the deliverer to stop once the message in hand is done."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


@mail.command("deliver")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.05, 3600),
    help="Seconds between looks at the outbox when nothing is due.",
)
def deliver(once: bool, interval: float) -> None:
    """Send the outbox's due messages over SMTP, retrying failures with backoff.

    Runs until SIGTERM (or Ctrl-C), which lets the message in hand finish. Several deliverers
    may run at once on PostgreSQL; on SQLite run one.
    """
    transport = Transport(current_app.config)
    if not transport.server and not transport.to_log:
        raise click.ClickException("MAIL_SERVER is not set: there is nowhere to deliver mail.")
    stop = threading.Event()
    _stop_on_signals(stop)
    total = DeliveryReport()
    with transport:
        while not stop.is_set():
            try:
                report = deliver_due(db.session, transport=transport, stop=stop.is_set)
            except SQLAlchemyError:
                db.session.rollback()
                if once:
                    raise
                current_app.logger.exception("The outbox could not be read; trying again")
                report = DeliveryReport()
            total.sent += report.sent
            total.retried += report.retried
            total.failed += report.failed
            if once:
                break
            if not report.attempts:
                transport.close()  # idle: do not hold a connection the server will drop
                stop.wait(interval)
    click.echo(
        f"mail deliver: {total.sent} sent, {total.retried} to retry, {total.failed} failed",
        err=True,
    )


@mail.command("prune")
@click.option(
    "--days",
    type=click.IntRange(0, 36_500),
    default=None,
    help="Erase messages sent more than this many days ago [default: MAIL_KEEP_SENT_DAYS].",
)
def prune(days: int | None) -> None:
    """Erase the sent messages older than ``MAIL_KEEP_SENT_DAYS``; pending and failed ones stay.

    In batches, each committed, with a progress bar; one audit event records how many went.
    """
    days = current_app.config["MAIL_KEEP_SENT_DAYS"] if days is None else days
    repository = OutboxRepository(db.session)
    old = repository.sent_before(utcnow() - timedelta(days=days))
    erased = erase_with_progress(
        "Erasing sent mail",
        repository.count_where(old),
        lambda advance: repository.delete_in_batches(old, after_batch=advance),
    )
    audit("mail.prune", None, after={"older_than_days": days, "erased": erased})
    db.session.commit()
    click.echo(f"Erased {erased} message(s) sent more than {days} days ago.")
