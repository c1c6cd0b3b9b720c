"""Figures for the admin dashboard: how many of everything, and what was new each day.

The counts never scan a large table: a whole table's size is the planner's estimate on
PostgreSQL once it is large (see ``counting``), and the user flags are counted through their
indexes, stopping at the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, literal, select, union_all

from webapp.models import Item, OutboxMessage, Post, Tag, User
from webapp.models.mail import FAILED, PENDING
from webapp.repositories.base import SessionLike
from webapp.repositories.counting import Total, total_columns

DAILY_SERIES: dict[str, type[User] | type[Item] | type[Post]] = {
    "users": User,
    "items": Item,
    "posts": Post,
}


@dataclass(frozen=True)
class SiteCounts:
    users_active: Total
    users_inactive: Total
    admins: Total
    items: Total
    posts: Total
    tags: Total
    mail_pending: Total
    mail_failed: Total


@dataclass(frozen=True)
class DailyCounts:
    """New rows per day for the days given, oldest first, one list per series."""

    days: list[date]
    series: dict[str, list[int]]


class StatsRepository:
    def __init__(self, session: SessionLike) -> None:
        self.session = session

    def counts(self) -> SiteCounts:
        """Every dashboard count, in one statement (large tables' estimates need none)."""
        sizes = {
            "users": total_columns(self.session, select(User.id), whole=User.__tablename__),
            "inactive": total_columns(self.session, select(User.id).where(~User.is_active)),
            "admins": total_columns(
                self.session, select(User.id).where(User.is_admin, User.is_active)
            ),
            "items": total_columns(self.session, select(Item.id), whole=Item.__tablename__),
            "posts": total_columns(self.session, select(Post.id), whole=Post.__tablename__),
            "tags": total_columns(self.session, select(Tag.id), whole=Tag.__tablename__),
            "mail_pending": total_columns(
                self.session, select(OutboxMessage.id).where(OutboxMessage.status == PENDING)
            ),
            "mail_failed": total_columns(
                self.session, select(OutboxMessage.id).where(OutboxMessage.status == FAILED)
            ),
        }
        columns = [column for name, size in sizes.items() for column in size.labelled(name)]
        row = self.session.execute(select(*columns)).one() if columns else None
        found = {name: size.read(row, name) for name, size in sizes.items()}
        users, inactive = found["users"], found["inactive"]
        active_value = max(users.value - inactive.value, 0)
        active = Total(active_value, estimated=not (users.exact and inactive.exact))
        return SiteCounts(
            users_active=active,
            users_inactive=inactive,
            admins=found["admins"],
            items=found["items"],
            posts=found["posts"],
            tags=found["tags"],
            mail_pending=found["mail_pending"],
            mail_failed=found["mail_failed"],
        )

    def _day(self, column: Any) -> Any:
        """The UTC calendar day of a timestamp column, on either database."""
        if self.session.get_bind().dialect.name == "postgresql":
            return cast(func.timezone("UTC", column), Date)
        return func.date(column)  # SQLite stores UTC text: its date part is the UTC day

    def daily(self, *, days: int = 30, today: date | None = None) -> DailyCounts:
        """Sign-ups, new items and new posts per UTC day over the last ``days`` days."""
        today = today or datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        since = datetime.combine(first, time.min, tzinfo=UTC)
        parts = []
        for name, model in DAILY_SERIES.items():
            day = self._day(model.created_at)
            parts.append(
                select(literal(name).label("series"), day.label("day"), func.count())
                .where(model.created_at >= since)
                .group_by(day)
            )
        found: dict[tuple[str, date], int] = {}
        for series, day, count in self.session.execute(union_all(*parts)):
            key_day = day if isinstance(day, date) else date.fromisoformat(str(day))
            found[(series, key_day)] = int(count)
        all_days = [first + timedelta(days=offset) for offset in range(days)]
        return DailyCounts(
            days=all_days,
            series={name: [found.get((name, day), 0) for day in all_days] for name in DAILY_SERIES},
        )
