"""``flask sessions prune``: erase the records of sessions no cookie can name any more."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.audit import audit
from webapp.cli.batches import erase_with_progress
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.repositories import SessionRepository

sessions = AppGroup("sessions", help="The records of signed-in browsers.")


def longest_idle() -> timedelta:
    """How long a session record can sit idle and still be used: a "remember me" cookie
    lasts ``REMEMBER_COOKIE_DURATION`` from the sign-in, Flask's session cookie
    ``PERMANENT_SESSION_LIFETIME`` from its last change, and "last active" is written at most
    every ``SESSION_ACTIVITY_SECONDS``."""
    config = current_app.config
    return max(config["REMEMBER_COOKIE_DURATION"], config["PERMANENT_SESSION_LIFETIME"]) + (
        timedelta(seconds=config["SESSION_ACTIVITY_SECONDS"])
    )


@sessions.command("prune")
@click.option(
    "--days",
    type=click.IntRange(1, 36_500),
    default=None,
    help="Erase sessions idle for more than this many days, signing those browsers out "
    "[default: as long as a cookie can last, so no one is signed out].",
)
def prune(days: int | None) -> None:
    """Erase the session records of browsers closed without signing out.

    By default only records no cookie can name any more (idle longer than "remember me"
    lasts): nobody is signed out. In batches, each committed, with a progress bar; one audit
    event records how many went.
    """
    idle = longest_idle() if days is None else timedelta(days=days)
    repository = SessionRepository(db.session)
    old = repository.idle_before(utcnow() - idle)
    erased = erase_with_progress(
        "Erasing idle sessions",
        repository.count_where(old),
        lambda advance: repository.delete_in_batches(old, after_batch=advance),
    )
    audit("sessions.prune", None, after={"idle_days": idle.days, "erased": erased})
    db.session.commit()
    click.echo(f"Erased {erased} session record(s) idle for more than {idle.days} days.")
