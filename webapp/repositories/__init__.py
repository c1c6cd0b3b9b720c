"""The data-access layer: every query lives here. Repositories add and flush, never commit."""

from webapp.repositories.audit import AuditRepository
from webapp.repositories.base import BaseRepository, Page, clamp_page, contains, like_pattern
from webapp.repositories.items import ItemRepository
from webapp.repositories.posts import PostRepository
from webapp.repositories.security import RecoveryCodeRepository, SessionRepository
from webapp.repositories.tags import TagRepository
from webapp.repositories.users import UserRepository

__all__ = [
    "AuditRepository",
    "BaseRepository",
    "ItemRepository",
    "Page",
    "PostRepository",
    "RecoveryCodeRepository",
    "SessionRepository",
    "TagRepository",
    "UserRepository",
    "clamp_page",
    "contains",
    "like_pattern",
]
