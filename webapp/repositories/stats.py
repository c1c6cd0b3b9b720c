"""Figures for the admin dashboard: how many of everything, and what was new each day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, literal, select, union_all

from webapp.models import Item, Post, Tag, User
from webapp.repositories.base import SessionLike

DAILY_SERIES: dict[str, type[User] | type[Item] | type[Post]] = {
    "users": User,
    "items": Item,
    "posts": Post,
}


@dataclass(frozen=True)
class SiteCounts:
    users_active: int
    users_inactive: int
    admins: int
    items: int
    posts: int
    tags: int


@dataclass(frozen=True)
class DailyCounts:
    """New rows per day for the days given, oldest first, one list per series."""

    days: list[date]
    series: dict[str, list[int]]


def _count(model: type[Any], *conditions: Any) -> Any:
    return select(func.count()).select_from(model).where(*conditions).scalar_subquery()


class StatsRepository:
    def __init__(self, session: SessionLike) -> None:
        self.session = session

    def counts(self) -> SiteCounts:
        """Every dashboard count, in one statement."""
        row = self.session.execute(
            select(
                _count(User, User.is_active.is_(True)),
                _count(User, User.is_active.is_(False)),
                _count(User, User.is_admin.is_(True), User.is_active.is_(True)),
                _count(Item),
                _count(Post),
                _count(Tag),
            )
        ).one()
        return SiteCounts(*(int(value) for value in row))

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
