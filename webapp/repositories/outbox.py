"""The mail outbox: messages added in the caller's transaction, claimed one at a time to send.

Claiming takes the oldest due pending row ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
deliverers never hold the same row; the lock lasts until the deliverer commits the row's new
state, after the SMTP server answered. SQLite has no row locks: run one deliverer there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, insert, select

from webapp.models.mail import FAILED, PENDING, SENT, OutboxMessage
from webapp.repositories.base import BaseRepository, in_batches
from webapp.repositories.counting import Total, total_columns


@dataclass(frozen=True)
class OutboxCounts:
    pending: Total
    sent: Total
    failed: Total


# Rows per multi-row INSERT (SQLAlchemy's insertmanyvalues sends 1,000 per statement anyway).
INSERT_BATCH = 1_000


class OutboxRepository(BaseRepository[OutboxMessage]):
    model = OutboxMessage

    def add(
        self,
        *,
        message_id: str,
        recipient: str,
        subject: str,
        body_text: str,
        body_html: str | None,
    ) -> OutboxMessage:
        """A pending message, due now; written when the caller's transaction commits."""
        return self.create(
            message_id=message_id,
            recipient=recipient,
            subject=subject,
            body_text=body_text,
            body_html=body_html,
        )

    def add_many(self, messages: Iterable[Mapping[str, str | None]]) -> int:
        """Pending messages (each the keyword arguments of ``add``), due now, inserted in
        batches of ``INSERT_BATCH`` rows; returns how many."""
        count = 0
        for batch in in_batches(messages, INSERT_BATCH):
            self.session.execute(insert(OutboxMessage), batch)
            count += len(batch)
        return count

    def claim_due(self, now: datetime) -> OutboxMessage | None:
        """The oldest pending message due by ``now`` that no other deliverer holds, locked."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(stmt).first()

    def counts(self) -> OutboxCounts:
        """How many messages are pending, sent and failed (each counted up to the cap), in
        one statement: the sent ones grow without end."""
        sizes = {
            status: total_columns(
                self.session, select(OutboxMessage.id).where(OutboxMessage.status == status)
            )
            for status in (PENDING, SENT, FAILED)
        }
        columns = [column for name, size in sizes.items() for column in size.labelled(name)]
        row = self.session.execute(select(*columns)).one()
        found = {name: size.read(row, name) for name, size in sizes.items()}
        return OutboxCounts(pending=found[PENDING], sent=found[SENT], failed=found[FAILED])

    def retry(self, message: OutboxMessage, now: datetime) -> OutboxMessage:
        """Make a failed message due at once, with its full count of attempts again."""
        return self.update(message, status=PENDING, attempts=0, next_attempt_at=now)

    @staticmethod
    def sent_before(when: datetime) -> ColumnElement[bool]:
        """The messages sent before ``when`` (pending and failed ones are never picked)."""
        return (OutboxMessage.status == SENT) & (OutboxMessage.sent_at < when)
