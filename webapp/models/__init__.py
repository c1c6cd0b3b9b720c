"""Declarative models: columns, relationships and one-row invariants; no queries."""

from webapp.db.types import utcnow
from webapp.models.audit import AuditEvent
from webapp.models.item import Item
from webapp.models.mail import OutboxMessage
from webapp.models.post import POST_BODY_MAX, Post, Tag, post_tags
from webapp.models.security import RecoveryCode, UserSession
from webapp.models.user import User

__all__ = [
    "POST_BODY_MAX",
    "AuditEvent",
    "Item",
    "OutboxMessage",
    "Post",
    "RecoveryCode",
    "Tag",
    "User",
    "UserSession",
    "post_tags",
    "utcnow",
]
