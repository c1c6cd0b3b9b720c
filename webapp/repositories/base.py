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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Row, Select, delete, func, select
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.interfaces import ORMOption

from webapp.extensions import Base
from webapp.repositories.counting import (
    COUNT_CAP,
    Total,
    TotalColumns,
    count_total,
    total_columns,
)

M = TypeVar("M", bound=Base)
T = TypeVar("T")

MAX_PER_PAGE = 100

# A plain Session or Flask-SQLAlchemy's request-scoped ``db.session``.
SessionLike = Session | scoped_session[Any]


def in_batches(values: Iterable[T], size: int) -> Iterator[list[T]]:
    """``values`` in lists of ``size`` (the last one shorter): multi-row writes and ``IN``
    lookups of a bounded size, in flat memory (``itertools.batched`` is Python 3.12's)."""
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def like_pattern(text: str) -> str:
    """A ``LIKE`` pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(column: Any, text: str | BindParameter[str]) -> ColumnElement[bool]:
    """Case-insensitive substring match on the bare column (index-friendly on PostgreSQL).

    ``text`` may be a bound parameter standing for a ``like_pattern`` given at execution (a
    statement built once and run for many searches).
    """
    pattern = text if isinstance(text, BindParameter) else like_pattern(text)
    return column.ilike(pattern, escape="\\")


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
        pages = self.pages
        shown = {
            *range(1, min(edge, pages) + 1),
            *range(max(self.page - around, 1), min(self.page + around, pages) + 1),
            *range(max(pages - edge + 1, 1), pages + 1),
        }
        last_shown = 0
        for number in sorted(shown):  # a handful of numbers, however many pages there are
            if last_shown and number - last_shown > 1:
                yield None
            yield number
            last_shown = number


# Rows per DELETE of ``delete_in_batches``.
DELETE_BATCH = 1_000


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
        page_: Page[M] = self.paginate(stmt, page=page, per_page=per_page, whole=whole)
        return page_

    def paginate(
        self,
        stmt: Select[Any],
        *,
        ids: Select[Any] | None = None,
        page: int | None = 1,
        per_page: int | None = None,
        whole: str | None = None,
        rows: bool = False,
        params: Mapping[str, Any] | None = None,
    ) -> Page[Any]:
        """Run ``stmt`` for one page, and find the list's size.

        ``ids``: the listed rows' ids, filtered and ordered as ``stmt`` but with none of the
        joins it needs only for showing them (by default ``stmt`` with the id alone).
        ``whole``: the table's name, when ``stmt`` lists all of it unfiltered: its size (the
        planner's estimate once it is large, on PostgreSQL) then comes in the page's own
        statement. A filtered list is counted (up to the cap, in a second statement) only when
        its rows do not all fit on page 1. ``rows``: the page holds ``stmt``'s rows, not the
        entities in their first column. ``params``: values for ``stmt``'s bound parameters
        (``bindparam``), so that a statement built once at import serves every request and
        SQLAlchemy's compiled cache finds it. A page past the end shows the last page; pages
        stop at ``COUNT_CAP`` rows.
        """
        page, per_page = clamp_page(page, per_page, 20)
        page = min(page, deepest_page(per_page))
        if ids is None:
            ids = stmt.with_only_columns(self.model.id)
        totals = total_columns(self.session, ids, whole=whole) if whole is not None else None
        found = self._page_rows(stmt, ids, totals, page, per_page, params)
        more = len(found) > per_page
        found = found[:per_page]
        if totals is not None and (found or totals.known is not None):
            size = totals.read(found[0] if found else None)
        elif page == 1 and not more:
            size = Total(len(found))  # every row is on this page
        else:
            size = count_total(self.session, ids, params=params)
        if not found and page > 1:  # past the end: show the last page
            page = Page([], 1, per_page, size.value, size.capped, size.estimated).pages
            if size.value:
                found = self._page_rows(stmt, ids, totals, page, per_page, params)[:per_page]
        return Page(
            items=list(found) if rows else [row[0] for row in found],
            page=page,
            per_page=per_page,
            total=size.value,
            capped=size.capped,
            estimated=size.estimated,
        )

    def _page_rows(
        self,
        stmt: Select[Any],
        ids: Select[Any],
        totals: TotalColumns | None,
        page: int,
        per_page: int,
        params: Mapping[str, Any] | None = None,
    ) -> Sequence[Row[Any]]:
        """Up to ``per_page + 1`` rows from page ``page`` on (with ``totals``, the table's size
        in a column beside them, unless it is known), the extra one telling whether more follow.

        Past page 1 the skipped rows are walked by id alone (an index scan), and only the
        page's own rows are joined and loaded.
        """
        offset = (page - 1) * per_page
        if offset:
            chosen = ids.limit(per_page + 1).offset(offset).scalar_subquery()
            stmt = stmt.where(self.model.id.in_(chosen))
        if totals is not None:
            stmt = stmt.add_columns(*totals.labelled())
        return self.session.execute(stmt.limit(per_page + 1), params).unique().all()

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

    def count_where(self, where: ColumnElement[bool]) -> int:
        return self.session.scalar(select(func.count()).select_from(self.model).where(where)) or 0

    def delete_in_batches(
        self,
        where: ColumnElement[bool],
        *,
        batch: int = DELETE_BATCH,
        after_batch: Callable[[int], None] | None = None,
    ) -> int:
        """DELETE the rows ``where`` picks, ``batch`` at a time, so that no statement holds its
        locks for long on a busy table; ``after_batch`` is told each batch's size (a command
        commits there and moves its progress bar). Returns how many rows went."""
        id_column = self.model.id
        deleted = 0
        while ids := list(self.session.scalars(select(id_column).where(where).limit(batch))):
            self.session.execute(
                delete(self.model)
                .where(id_column.in_(ids))
                .execution_options(synchronize_session=False)
            )
            deleted += len(ids)
            if after_batch is not None:
                after_batch(len(ids))
        return deleted
