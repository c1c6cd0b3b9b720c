"""The generic repository: get, list with pagination, create, partial update, delete.

Repositories add and flush; they never commit. The view (or the command line) commits once,
after the whole action succeeded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.interfaces import ORMOption

from webapp.extensions import Base

M = TypeVar("M", bound=Base)
T = TypeVar("T")

MAX_PER_PAGE = 100

# A plain Session or Flask-SQLAlchemy's request-scoped ``db.session``.
SessionLike = Session | scoped_session[Any]


def like_pattern(text: str) -> str:
    """A ``LIKE`` pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match on the bare column (index-friendly on PostgreSQL)."""
    return column.ilike(like_pattern(text), escape="\\")


def clamp_page(page: int | None, per_page: int | None, default_per_page: int) -> tuple[int, int]:
    """Any page number or size a URL may carry, made sensible."""
    per_page = default_per_page if per_page is None else per_page
    return max(page or 1, 1), min(max(per_page, 1), MAX_PER_PAGE)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and what a pagination control needs to know about the others."""

    items: Sequence[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(math.ceil(self.total / self.per_page), 1)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None

    @property
    def first_index(self) -> int:
        """1-based position of the first row shown (0 when there are none)."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.items) - 1 if self.items else 0

    def iter_pages(self, edge: int = 1, around: int = 2) -> Iterator[int | None]:
        """Page numbers to link, with ``None`` where a run of pages is elided."""
        last_shown = 0
        for number in range(1, self.pages + 1):
            near_edge = number <= edge or number > self.pages - edge
            if near_edge or abs(number - self.page) <= around:
                if last_shown and number - last_shown > 1:
                    yield None
                yield number
                last_shown = number


class BaseRepository(Generic[M]):
    """Thin generic data access for one model."""

    model: ClassVar[type[Any]]
    default_order: ClassVar[tuple[Any, ...]] = ()

    def __init__(self, session: SessionLike) -> None:
        self.session = session

    def get(self, id_: int, *, options: Iterable[ORMOption] = ()) -> M | None:
        return self.session.get(self.model, id_, options=list(options))

    def list(
        self,
        *,
        filters: Iterable[ColumnElement[bool]] = (),
        order_by: Iterable[Any] = (),
        options: Iterable[ORMOption] = (),
        page: int | None = 1,
        per_page: int | None = None,
    ) -> Page[M]:
        stmt = select(self.model).where(*filters).options(*options)
        stmt = stmt.order_by(*(tuple(order_by) or self.default_order or (self.model.id,)))
        return self.paginate(stmt, page=page, per_page=per_page)

    def paginate(
        self, stmt: Select[Any], *, page: int | None = 1, per_page: int | None = None
    ) -> Page[M]:
        """Run ``stmt`` for one page; a page past the end shows the last page."""
        page, per_page = clamp_page(page, per_page, 20)
        total = self.count(stmt)
        last_page = max(math.ceil(total / per_page), 1)
        page = min(page, last_page)
        rows = self.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page))
        return Page(items=list(rows.unique()), page=page, per_page=per_page, total=total)

    def count(self, stmt: Select[Any]) -> int:
        counted = select(func.count()).select_from(stmt.order_by(None).subquery())
        return self.session.scalar(counted) or 0

    def create(self, **values: Any) -> M:
        obj: M = self.model(**values)
        self.session.add(obj)
        self.session.flush()
        return obj

    def update(self, obj: M, **changes: Any) -> M:
        """Set only the fields given, then flush (a stale version raises StaleDataError)."""
        for name, value in changes.items():
            if not hasattr(type(obj), name):
                raise AttributeError(f"{type(obj).__name__} has no field {name!r}")
            setattr(obj, name, value)
        self.session.flush()
        return obj

    def delete(self, obj: M) -> None:
        self.session.delete(obj)
        self.session.flush()
