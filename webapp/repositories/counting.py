"""Counts that never scan a large table.

- A filtered list is counted exactly while that is cheap: the count stops at ``COUNT_CAP``
  and past it the page says "10,000+".
- A whole large table is not counted at all on PostgreSQL: its size comes from the planner's
  own estimate (``pg_class.reltuples``, scaled to the table's current size as the planner
  does). A small table, or one never analysed, is counted instead. SQLite always counts.

The estimate is read by a statement of its own at most every ``ESTIMATE_MAX_AGE`` seconds per
process and database (it costs the server more than the page of rows beside it, and changes
only as fast as the table grows). A count is a scalar subquery a page adds beside its rows
(``TotalColumns``), so rows and count come back in one statement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
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

from webapp.extensions import Base

if TYPE_CHECKING:
    from webapp.repositories.base import SessionLike

# Counting stops here: past it a list says "10,000+" instead of scanning the whole table.
COUNT_CAP = 10_000
# Below this estimate a table is small enough to count exactly.
ESTIMATE_FROM = COUNT_CAP
# Seconds a process reuses a table's estimate before reading it again.
ESTIMATE_MAX_AGE = 10.0

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


def estimated_rows(table_name: str) -> ColumnElement[Any]:
    """PostgreSQL's estimate of the rows of table ``table_name`` (NULL if never analysed).

    ``reltuples / relpages`` is the density ANALYZE last saw; times the pages the table has
    now, it follows the table's growth between analyses, as the planner's own estimate does.
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


def live_rows(table_name: str) -> ColumnElement[Any]:
    """``estimated_rows`` less the rows in the trash, for a table that has a trash.

    A whole list (users, items, posts) leaves trashed rows out, so its "about N" must too.
    The trashed rows are counted exactly: their partial index (``deleted_at IS NOT NULL``)
    holds only them, and this statement runs at most every ``ESTIMATE_MAX_AGE`` seconds.
    """
    estimate = estimated_rows(table_name)
    table_ = Base.metadata.tables.get(table_name)
    if table_ is None or "deleted_at" not in table_.c:
        return estimate
    # A Core statement on the table: the ORM's trash filter does not apply to it.
    trashed = (
        select(func.count()).select_from(table_).where(table_.c.deleted_at.is_not(None))
    ).scalar_subquery()
    return estimate - trashed


def capped_count(ids: Select[Any], cap: int) -> ColumnElement[Any]:
    """How many rows ``ids`` gives, counting no further than ``cap + 1``."""
    limited = ids.order_by(None).limit(cap + 1).subquery()
    return select(func.count()).select_from(limited).scalar_subquery()


class _Estimates:
    """Each database's recent table estimates, in this process (engines are weakly held).

    A process-wide cache, kept because the estimate is a count the pages would otherwise make
    on every request (the reason for this module). Key: the engine and the table's name.
    It goes stale by design, for at most ``ESTIMATE_MAX_AGE`` seconds: it only ever stands in
    for "about N rows" of a table of 10,000 rows or more, where a few seconds' growth shows in
    no rounded figure.
    """

    def __init__(self) -> None:
        self.by_engine: WeakKeyDictionary[Engine, dict[str, tuple[float | None, float]]] = (
            WeakKeyDictionary()
        )
        self.lock = threading.Lock()

    def get(self, session: SessionLike, table_name: str) -> float | None:
        """``table_name``'s estimate; a stale or missing one is read again, in one statement
        with every other table's (the dashboard shows four)."""
        bind = session.get_bind()
        engine = bind.engine if isinstance(bind, Connection) else bind
        now = time.monotonic()
        with self.lock:
            found = self.by_engine.get(engine, {}).get(table_name)
        if found is not None and now - found[1] < ESTIMATE_MAX_AGE:
            return found[0]
        names = sorted({table_name, *Base.metadata.tables})
        row = session.execute(select(*(live_rows(n).label(n) for n in names))).one()
        fresh = {n: (None if v is None else float(v), now) for n, v in zip(names, row, strict=True)}
        with self.lock:
            self.by_engine.setdefault(engine, {}).update(fresh)
        return fresh[table_name][0]

    def forget(self) -> None:
        with self.lock:
            self.by_engine.clear()


ESTIMATES = _Estimates()


def whole_table_total(session: SessionLike, table_name: str) -> Total | None:
    """A whole table's size when the planner's estimate stands in for a count, else None.

    On PostgreSQL a table estimated at ``ESTIMATE_FROM`` rows or more is not counted;
    anything smaller, never analysed, or on SQLite is (``None``: count it).
    """
    if not on_postgresql(session):
        return None
    estimate = ESTIMATES.get(session, table_name)
    if estimate is None or estimate < ESTIMATE_FROM:
        return None
    return Total(round_estimate(estimate), estimated=True)


@dataclass(frozen=True)
class TotalColumns:
    """A list's size: known already (a large table's estimate), or a capped count column."""

    count: ColumnElement[Any] | None
    cap: int
    known: Total | None = None

    def labelled(self, prefix: str = "total") -> tuple[ColumnElement[Any], ...]:
        """The column(s) a statement adds for this size (none when it is known)."""
        return () if self.count is None else (self.count.label(f"{prefix}_count"),)

    def read(self, row: Any, prefix: str = "total") -> Total:
        if self.known is not None:
            return self.known
        count = int(getattr(row, f"{prefix}_count") or 0)
        return Total(self.cap, capped=True) if count > self.cap else Total(count)


def total_columns(
    session: SessionLike,
    ids: Select[Any] | Callable[[], Select[Any]],
    *,
    cap: int = COUNT_CAP,
    whole: str | None = None,
) -> TotalColumns:
    """The size of the list ``ids`` selects: a count column, or a known estimate.

    ``whole``: the table's name, when ``ids`` lists that whole table unfiltered; on
    PostgreSQL its estimate then stands in for a count once it is large. ``ids`` may be a
    function that builds the statement: it is then built only when a count is needed (a
    list page asks on every request, and the estimate usually answers).
    """
    known = whole_table_total(session, whole) if whole is not None else None
    if known is not None:
        return TotalColumns(None, cap, known)
    return TotalColumns(capped_count(ids if isinstance(ids, Select) else ids(), cap), cap)


def count_total(
    session: SessionLike,
    ids: Select[Any],
    *,
    cap: int = COUNT_CAP,
    params: Mapping[str, Any] | None = None,
    execution_options: Mapping[str, Any] | None = None,
) -> Total:
    """How many rows ``ids`` selects, counted no further than ``cap``, in a statement of its own
    (``params``: the values of the bound parameters in ``ids``; ``execution_options``: the
    counting statement's, such as ``WITH_TRASHED``)."""
    columns = TotalColumns(capped_count(ids, cap), cap)
    stmt = select(*columns.labelled())
    found = session.execute(stmt, params or {}, execution_options=execution_options or {})
    return columns.read(found.one())


def round_estimate(value: float) -> int:
    """An estimate to three significant digits (1,000,000 rather than 999,873)."""
    number = round(value)
    if number < 1000:
        return number
    scale = 10 ** (len(str(number)) - 3)
    return round(number / scale) * scale
