"""Erasing many rows from the command line: batch by batch, each committed, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable

import click

from webapp.extensions import db

# ``erase(after_batch)`` erases rows and calls ``after_batch(n)`` after each batch of ``n``.
Erase = Callable[[Callable[[int], None]], int]


def erase_with_progress(label: str, total: int, erase: Erase) -> int:
    """Run ``erase`` under a progress bar of ``total`` rows, committing each batch for good (a
    long run holds no lock for long, and what went stays gone if it is stopped). Returns how
    many rows went."""
    if not total:
        return 0
    with click.progressbar(length=total, label=label) as bar:

        def advance(done: int) -> None:
            db.session.commit()
            bar.update(done)

        return erase(advance)
