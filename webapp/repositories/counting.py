"""Counts that never scan a large table.

- A filtered list is counted exactly while that is cheap: the count stops at ``COUNT_CAP``
  and past it the page says "10,000+".
- A whole large table is not counted at all on PostgreSQL: its size comes from the planner's
  own estimate (``pg_class.reltuples``, scaled to the table's current size as the planner
  does). A small table, or one never analysed, is counted instead. SQLite always counts.

The count is a pair of scalar subqueries a page adds beside its rows (``TotalColumns``), so
rows and count come back in one statement; PostgreSQL evaluates the capped count only when
the estimate is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    case,
    cast,
    column,
    func,
    literal,
    null,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import REGCLASS

if TYPE_CHECKING:
    from webapp.repositories.base import SessionLike

# Counting stops here: past it a list says "10,000+" instead of scanning the whole table.
COUNT_CAP = 10_000
# Below this estimate a table is small enough to count exactly.
ESTIMATE_FROM = COUNT_CAP

_pg_class = table("pg_class", column("oid"), column("reltuples"), column("relpages"))


@dataclass(frozen=True)
class Total:
    """How many rows a list has: exact, "more than" a cap, or "about" an estimate."""

    value: int
    capped: bool = False
    estimated: bool = False

    @property
    def exact(self) -> bool:
        return not (self.capped or self.estimated)

    def __str__(self) -> str:
        if self.estimated:
            return f"about {self.value:,}"
        return f"{self.value:,}{'+' if self.capped else ''}"


def on_postgresql(session: SessionLike) -> bool:
    return bool(session.get_bind().dialect.name == "postgresql")


@lru_cache(maxsize=64)
def estimated_rows(table_name: str) -> ColumnElement[Any]:
    """PostgreSQL's estimate of the rows of table ``table_name`` (NULL if never analysed).

    ``reltuples / relpages`` is the density ANALYZE last saw; times the pages the table has
    now, it follows the table's growth between analyses, as the planner's own estimate does.
    Built once per table (it has no parameters): a statement is costly to build per request.
    """
    oid = cast(literal(table_name), REGCLASS)
    pages_now = func.pg_relation_size(_pg_class.c.oid) / cast(
        func.current_setting("block_size"), Float
    )
    tuples = cast(_pg_class.c.reltuples, Float)
    density = tuples / func.nullif(cast(_pg_class.c.relpages, Float), 0.0)
    estimate = case(
        (tuples < 0, null()),
        (_pg_class.c.relpages == 0, tuples),
        else_=density * pages_now,
    )
    return select(estimate).where(_pg_class.c.oid == oid).scalar_subquery()


def capped_count(ids: Select[Any], cap: int) -> ColumnElement[Any]:
    """How many rows ``ids`` gives, counting no further than ``cap + 1``."""
    limited = ids.order_by(None).limit(cap + 1).subquery()
    return select(func.count()).select_from(limited).scalar_subquery()


@dataclass(frozen=True)
class TotalColumns:
    """The two scalar columns a page adds beside its rows, and how to read them back."""

    estimate: ColumnElement[Any]
    count: ColumnElement[Any]
    cap: int

    def labelled(self) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        return self.estimate.label("total_estimate"), self.count.label("total_count")

    def read(self, row: Any) -> Total:
        return read_total(row.total_estimate, row.total_count, self.cap)

    def read_values(self, estimate: float | None, count: int | None) -> Total:
        return read_total(estimate, count, self.cap)


def total_columns(
    session: SessionLike, ids: Select[Any], *, cap: int = COUNT_CAP, whole: str | None = None
) -> TotalColumns:
    """Columns giving the size of the list ``ids`` selects.

    ``whole``: the table's name, when ``ids`` lists that whole table unfiltered; on
    PostgreSQL its estimate then stands in for a count once it is large.
    """
    counted = capped_count(ids, cap)
    if whole is None or not on_postgresql(session):
        return TotalColumns(cast(null(), Integer), counted, cap)
    estimate = estimated_rows(whole)
    count = case((estimate >= ESTIMATE_FROM, null()), else_=counted)
    return TotalColumns(estimate, count, cap)


def read_total(estimate: float | None, count: int | None, cap: int) -> Total:
    if count is None and estimate is not None:
        return Total(round_estimate(estimate), estimated=True)
    count = int(count or 0)
    return Total(cap, capped=True) if count > cap else Total(count)


def count_total(
    session: SessionLike, ids: Select[Any], *, cap: int = COUNT_CAP, whole: str | None = None
) -> Total:
    """The size of the list ``ids`` selects, in a statement of its own."""
    columns = total_columns(session, ids, cap=cap, whole=whole)
    row = session.execute(select(*columns.labelled())).one()
    return columns.read(row)


def round_estimate(value: float) -> int:
    """An estimate to three significant digits (1,000,000 rather than 999,873)."""
    number = round(value)
    if number < 1000:
        return number
    scale = 10 ** (len(str(number)) - 3)
    return round(number / scale) * scale
