"""The generic repository: get, list with pagination, create, partial update, delete.

Repositories add and flush; they never commit. The view (or the command line) commits once,
after the whole action succeeded.

Numbered pages (``Page``) never count or skip more than ``COUNT_CAP`` rows: the count stops
there ("10,000+", or the planner's estimate for a whole large table on PostgreSQL, see
``counting``), and so do the pages one can reach. A page's rows and its count come back in one
statement, and a deeper page picks its rows' ids before it joins anything, so no join runs
for a skipped row. Lists that must reach any depth use keyset pages (``listing``).
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
from webapp.repositories.counting import COUNT_CAP, Total, count_total, total_columns

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


def deepest_page(per_page: int) -> int:
    """The last page number a numbered list offers: its rows stay within ``COUNT_CAP``."""
    return max(math.ceil(COUNT_CAP / per_page), 1)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and what a pagination control needs to know about the others."""

    items: Sequence[T]
    page: int
    per_page: int
    total: int
    # "More than ``total``" (a count stopped at the cap), or "about ``total``" (an estimate).
    capped: bool = False
    estimated: bool = False

    @property
    def size(self) -> Total:
        return Total(self.total, capped=self.capped, estimated=self.estimated)

    @property
    def pages(self) -> int:
        pages = max(math.ceil(self.total / self.per_page), 1)
        return pages if self.size.exact else min(pages, deepest_page(self.per_page))

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
        filters = list(filters)
        stmt = select(self.model).where(*filters).options(*options)
        stmt = stmt.order_by(*(tuple(order_by) or self.default_order or (self.model.id,)))
        whole = None if filters else self.model.__tablename__
        return self.paginate(stmt, page=page, per_page=per_page, whole=whole)

    def paginate(
        self,
        stmt: Select[Any],
        *,
        page: int | None = 1,
        per_page: int | None = None,
        whole: str | None = None,
    ) -> Page[M]:
        """Run ``stmt`` for one page, with the list's size, in one statement.

        ``whole``: the table's name, when ``stmt`` lists all of it unfiltered (its size may then be
        the planner's estimate). A page past the end shows the last page; pages stop at
        ``COUNT_CAP`` rows.
        """
        page, per_page = clamp_page(page, per_page, 20)
        page = min(page, deepest_page(per_page))
        ids = stmt.with_only_columns(self.model.id)
        totals = total_columns(self.session, ids, whole=whole)
        rows = self._page_rows(stmt, totals.labelled(), page, per_page)
        if rows:
            size = totals.read(rows[0])
        elif page == 1:
            size = Total(0)
        else:  # past the end: count, then show the last page
            size = count_total(self.session, ids, whole=whole)
            last = Page([], 1, per_page, size.value, size.capped, size.estimated).pages
            page = min(page, last)
            rows = self._page_rows(stmt, totals.labelled(), page, per_page) if size.value else []
        return Page(
            items=[row[0] for row in rows],
            page=page,
            per_page=per_page,
            total=size.value,
            capped=size.capped,
            estimated=size.estimated,
        )

    def _page_rows(
        self, stmt: Select[Any], totals: Iterable[Any], page: int, per_page: int
    ) -> Sequence[Any]:
        """The rows of page ``page`` (entity first), beside the ``totals`` columns.

        Past page 1 the skipped rows are walked by id alone (an index scan), and only the
        page's own rows are joined and loaded.
        """
        offset = (page - 1) * per_page
        if offset:
            chosen = stmt.with_only_columns(self.model.id).limit(per_page).offset(offset)
            stmt = stmt.where(self.model.id.in_(chosen.scalar_subquery()))
        result = self.session.execute(stmt.add_columns(*totals).limit(per_page))
        return result.unique().all()

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
