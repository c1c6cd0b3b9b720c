"""``flask trash purge``: erase what has been in the trash longer than its retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.audit import audit
from webapp.cli.batches import erase_with_progress
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.repositories.trash import KINDS, TrashRepository

trash = AppGroup("trash", help="The trash of deleted items, posts and users.")


@trash.command("purge")
@click.option(
    "--days",
    type=click.IntRange(0, 36_500),
    default=None,
    help="Erase what was deleted more than this many days ago [default: TRASH_RETENTION_DAYS].",
)
def purge(days: int | None) -> None:
    """Erase the items, posts and users in the trash for longer than the retention.

    In batches by id, each committed on its own, with a progress bar; a user goes with all
    they own. One audit event records what went.
    """
    days = current_app.config["TRASH_RETENTION_DAYS"] if days is None else days
    cutoff = utcnow() - timedelta(days=days)
    repository = TrashRepository(db.session)
    erased: dict[str, int] = {}
    for kind, (model, _) in KINDS.items():
        old = model.deleted_at < cutoff

        def erase(advance: Callable[[int], None], kind: str = kind, old: Any = old) -> int:
            return repository.delete_forever(
                kind, old, actor=None, ip_address=None, progress=advance
            )

        erased[kind] = erase_with_progress(
            f"Erasing {kind}", repository.count_where(model, old), erase
        )
    audit("trash.purge", None, after={"older_than_days": days, **erased})
    db.session.commit()
    click.echo(
        f"Erased {erased['items']} items, {erased['posts']} posts and {erased['users']} users "
        f"deleted more than {days} days ago."
    )
