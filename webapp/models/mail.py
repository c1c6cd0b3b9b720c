"""The mail outbox: every email the app sends, written in the transaction that causes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db.types import utcnow
from webapp.extensions import Base

PENDING, SENT, FAILED = "pending", "sent", "failed"
MAIL_STATUSES = (PENDING, SENT, FAILED)


class OutboxMessage(Base):
    """One email: what it says, and where its delivery stands.

    ``message_id`` is made when the row is written and sent with every attempt, so a receiver
    can tell a repeated delivery (a deliverer that died after the server accepted) from a new
    message.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        # The deliverer's query: the pending messages that are due, oldest due first.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        # The admin list, newest first (filtered by status or not).
        Index("ix_outbox_messages_status_created_at", "status", "created_at", "id"),
    )

    # Bigint: an outbox only grows (sent rows stay for the admin page). SQLite's row id must
    # be its INTEGER PRIMARY KEY, which is 64-bit there anyway.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), Identity(), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(Text, unique=True)
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(Text, default=PENDING, server_default=PENDING)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.status}>"
