from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.repositories.base import SessionLike


def database_answers(session: SessionLike) -> bool:
    """True when a trivial query succeeds; the session is left clean either way."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        session.rollback()
        return False
    return True
