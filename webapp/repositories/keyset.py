"""One list machinery for every admin table: search, filters, sort, keyset pages, export.

A table is described once by a ``ListSpec`` (the columns a page shows, its joins, sort keys,
search and filters); ``ListRepository`` turns a spec and the request's ``ListParams`` into SQL.
A page selects just the columns it shows, as plain rows: no ORM objects are built for a list,
and related values (an owner's name, a post's tags) come in the same statement.

Pages are keyset (cursor) pages: a page is "the rows after (or before) this sort value and
id", so a deep page costs what page 1 costs. Counts stop at a cap instead of scanning a huge
table, and an unfiltered large table is not counted at all on PostgreSQL (the planner's
estimate stands in): rows and count come back in one statement. Exports stream one query's
rows in batches, so memory stays flat whatever the size.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Executable,
    Integer,
    Row,
    Select,
    SQLColumnExpression,
    String,
    TypeDecorator,
    and_,
    bindparam,
    false,
    lambda_stmt,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import QueryableAttribute

from webapp.db.trash import without_trash
from webapp.repositories.base import SessionLike, like_pattern
from webapp.repositories.counting import (
    COUNT_CAP,
    Total,
    TotalColumns,
    capped_count,
    count_total,
    total_columns,
)
from webapp.validation import has_control_chars

DEFAULT_PER_PAGE = 20
EXPORT_BATCH = 1_000
MAX_CURSOR_LENGTH = 400

# A column, a mapped attribute (``User.email``) or any SQL expression standing for one.
Expr = SQLColumnExpression[Any]


def as_column(expr: Expr) -> ColumnElement[Any]:
    """The Core column expression behind ``expr``."""
    if isinstance(expr, QueryableAttribute):
        return expr.expression
    assert isinstance(expr, ColumnElement)
    return expr


@dataclass(frozen=True)
class SortKey:
    """A column (or expression) a list can be ordered by; ties are broken by the row id."""

    expr: Expr
    descending_first: bool = False
    nullable: bool = False
    # The key is a column of a joined table (the spec's ``joins``): pages sorted by it join.
    joined: bool = False

    @cached_property
    def column(self) -> ColumnElement[Any]:
        return as_column(self.expr)

    @cached_property
    def python_type(self) -> type:
        """The Python type of the key's values (what a cursor must carry); read per cursor."""
        sql_type = self.column.type
        if isinstance(sql_type, TypeDecorator):
            sql_type = sql_type.impl_instance
        try:
            return sql_type.python_type
        except NotImplementedError:  # a key without a type cannot carry a cursor
            return object


@dataclass(frozen=True)
class FilterSpec:
    """A filter: the condition for a value; ``choices`` lists the allowed values (else text)."""

    build: Callable[[str], ColumnElement[bool]]
    choices: tuple[str, ...] | None = None

    def accepts(self, value: str) -> bool:
        return self.choices is None or value in self.choices


def _no_joins(stmt: Select[Any]) -> Select[Any]:
    return stmt


@dataclass(frozen=True, eq=False)
class ListSpec:
    """Everything the machinery needs to know about one table's list.

    Compared (and hashed) by identity: it names its list in a page's ``PageShape``.
    """

    name: str
    entity: type[Any]
    id_column: Expr
    sort_keys: Mapping[str, SortKey]
    default_sort: str
    export_columns: Sequence[tuple[str, Expr]]
    # What a page shows of each row, labelled: related values through ``joins`` or a
    # correlated subquery, so one statement gives the whole page.
    columns: Sequence[Expr] = ()
    joins: Callable[[Select[Any]], Select[Any]] = _no_joins
    # The search condition for a text (or a bound parameter holding its ``like_pattern``).
    search: Callable[[str | BindParameter[str]], ColumnElement[bool]] | None = None
    filters: Mapping[str, FilterSpec] = field(default_factory=dict)
    # What every row of the list meets besides the search and filters (the trash lists:
    # trashed rows only); such a list is never "the whole table".
    where: ColumnElement[bool] | None = None
    # Execution options of every statement the list runs (the trash lists: ``WITH_TRASHED``).
    execution_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.default_sort not in self.sort_keys:
            raise ValueError(f"{self.name}: default sort {self.default_sort!r} is not a sort key")

    def column_at(self, expr: Expr) -> int | None:
        """Where ``expr`` stands among ``columns``, if it is one of them."""
        column = as_column(expr)
        return next((i for i, c in enumerate(self.columns) if as_column(c) is column), None)


@dataclass(frozen=True)
class Cursor:
    """A position in a sorted list: the sort value and the id of a boundary row."""

    value: Any
    id: int

    def encode(self) -> str:
        value = self.value
        if isinstance(value, datetime):
            value = {"dt": value.isoformat()}
        raw = json.dumps([value, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, key: SortKey) -> Cursor | None:
        """The cursor ``text`` encodes, or ``None`` if it is not one for ``key``."""
        if not text or len(text) > MAX_CURSOR_LENGTH:
            return None
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            value, row_id = json.loads(raw)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            return None
        if not isinstance(row_id, int) or isinstance(row_id, bool) or abs(row_id) > 2**31:
            return None
        value = _decode_value(value, key)
        if value is _INVALID:
            return None
        return cls(value=value, id=row_id)


_INVALID = object()


def _decode_value(value: Any, key: SortKey) -> Any:
    expected = key.python_type
    if value is None:
        return None if key.nullable else _INVALID
    if expected is datetime:
        if not (isinstance(value, dict) and isinstance(value.get("dt"), str)):
            return _INVALID
        try:
            parsed = datetime.fromisoformat(value["dt"])
        except ValueError:
            return _INVALID
        return parsed if parsed.tzinfo is not None else _INVALID
    if expected is bool:
        return value if isinstance(value, bool) else _INVALID
    if expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
        return value if ok else _INVALID
    if expected is str:
        ok = isinstance(value, str) and len(value) <= 1000 and not has_control_chars(value)
        return value if ok else _INVALID
    return _INVALID


@dataclass(frozen=True)
class ListParams:
    """What a request asks of a list, already checked against the table's spec."""

    q: str = ""
    filters: Mapping[str, str] = field(default_factory=dict)
    sort: str = ""
    desc: bool = False
    per_page: int = DEFAULT_PER_PAGE
    after: Cursor | None = None
    before: Cursor | None = None
    last: bool = False


@dataclass(frozen=True)
class KeysetPage:
    """One page of a keyset-paginated list and the cursors to the pages around it (``None``
    where there is no such page)."""

    rows: Sequence[Row[Any]]
    params: ListParams
    has_prev: bool
    has_next: bool
    first_cursor: str | None
    last_cursor: str | None
    size: Total

    @property
    def total(self) -> int:
        return self.size.value

    @property
    def items(self) -> Sequence[Row[Any]]:
        return self.rows


def _order(key: SortKey, id_column: Expr, desc: bool) -> list[Any]:
    expr = key.column
    if desc:
        primary = expr.desc().nulls_first() if key.nullable else expr.desc()
        return [primary, id_column.desc()]
    primary = expr.asc().nulls_last() if key.nullable else expr.asc()
    return [primary, id_column.asc()]


def _after(
    key: SortKey, id_column: Expr, cursor: Cursor | None, desc: bool, *, null: bool = False
) -> ColumnElement[bool]:
    """Rows strictly after a cursor in the order ``_order(key, desc)`` gives.

    NULLs come last going up and first going down, so either direction is the exact
    reverse of the other and "previous" pages are "next" pages read backwards.

    With ``cursor`` None the condition takes the cursor's sort value and id as the bound
    parameters ``cursor_value`` and ``cursor_id`` (``null``: the value is NULL), so that one
    statement serves every cursor.
    """
    expr = key.column
    value: Any
    row_id: Any
    if cursor is None:
        value = None if null else bindparam("cursor_value", type_=expr.type)
        row_id = bindparam("cursor_id", type_=Integer())
    else:
        value, row_id = cursor.value, cursor.id
    if not key.nullable:
        # The row comparison is exact; the plain bound on the sort key beside it lets an index
        # on that key alone start at the cursor too (a key from a joined table, like an
        # item's owner name, cannot share a composite index with the id).
        if key.python_type is bool:  # flags take only =, and their index has the id anyway
            bound: ColumnElement[bool] = true()
        else:
            bound = expr <= value if desc else expr >= value
        if desc:
            return and_(bound, tuple_(expr, id_column) < tuple_(value, row_id))
        return and_(bound, tuple_(expr, id_column) > tuple_(value, row_id))
    if value is None:
        if desc:
            return or_(and_(expr.is_(None), id_column < row_id), expr.is_not(None))
        return and_(expr.is_(None), id_column > row_id)
    if desc:
        return or_(expr < value, and_(expr == value, id_column < row_id))
    return or_(expr > value, and_(expr == value, id_column > row_id), expr.is_(None))


def _cursor_of(row: Row[Any], at: tuple[int, int]) -> str:
    """The cursor of ``row``: its sort value and id, at the positions ``at``."""
    return Cursor(row[at[0]], row[at[1]]).encode()


def _filtered(
    spec: ListSpec,
    search: str | BindParameter[str] | None,
    filters: Iterable[tuple[str, str]],
    columns: Sequence[Any],
    *,
    joined: bool,
) -> Select[Any]:
    """``columns`` from ``spec``'s rows that match ``search`` (a text, or a bound parameter
    holding its ``like_pattern``) and ``filters``; with the spec's joins if ``joined``."""
    stmt = select(*columns).select_from(spec.entity)
    if spec.execution_options:
        stmt = stmt.execution_options(**spec.execution_options)
    if spec.where is not None:
        stmt = stmt.where(spec.where)
    if joined:
        stmt = spec.joins(stmt)
    if search is not None and spec.search is not None:
        stmt = stmt.where(spec.search(search))
    for name, value in filters:
        stmt = stmt.where(spec.filters[name].build(value))
    return stmt


def _whole_ids(spec: ListSpec) -> Select[Any]:
    """The ids of every row of the list (no search, no filter)."""
    return _filtered(spec, None, (), (spec.id_column,), joined=False)


def _whole_count(spec: ListSpec, cap: int) -> TotalColumns:
    """A capped count of the whole table, a column beside a page's rows."""
    return TotalColumns(capped_count(_whole_ids(spec), cap), cap)


@dataclass(frozen=True)
class PageShape:
    """Everything a page's statement depends on but its bound values (the search pattern and
    the cursor): the list, its sort and the direction the rows are read in, whether it
    searches, its filters (their values are part of the SQL), whether a cursor bounds it (and
    whether the cursor's sort value is NULL), the cap of a count beside the rows (None: no
    count column) and the page size. Two requests with one shape run one statement."""

    spec: ListSpec
    sort: str
    desc: bool
    search: bool
    filters: tuple[tuple[str, str], ...]
    cursor: str  # "", "value" or "null"
    count_cap: int | None
    per_page: int


def _cursor_positions(spec: ListSpec, key: SortKey) -> tuple[int, int]:
    """Where a page's rows hold the sort value and the id (the cursors of the links).

    They are read from the page's own columns when it shows them (most lists sort by one);
    a key the page does not show is selected after them, then the id (``_page_select``
    selects what these positions say).
    Each timestamp a row fetches costs the driver and the ORM about as much as drawing it.
    """
    extra = len(spec.columns)
    at = []
    for expr in (key.column, spec.id_column):
        position = spec.column_at(expr)
        if position is None:
            position, extra = extra, extra + 1
        at.append(position)
    return at[0], at[1]


def _page_select(shape: PageShape) -> Select[Any]:
    """The statement for every page of one shape (see ``PageShape``), with trashed rows left
    out (unless the list is of the trash); the search pattern and the cursor are the bound
    parameters ``q_pattern``, ``cursor_value`` and ``cursor_id``."""
    spec = shape.spec
    key = spec.sort_keys[shape.sort]
    pattern = bindparam("q_pattern", type_=String()) if shape.search else None
    stmt = _filtered(spec, pattern, shape.filters, spec.columns, joined=key.joined)
    sort_at, id_at = _cursor_positions(spec, key)
    shown = len(spec.columns)
    if sort_at >= shown:  # not shown: selected after the shown columns, then the id
        stmt = stmt.add_columns(as_column(key.column).label("sort_value"))
    if id_at >= shown:
        stmt = stmt.add_columns(as_column(spec.id_column).label("row_id"))
    if shape.count_cap is not None:
        stmt = stmt.add_columns(*_whole_count(spec, shape.count_cap).labelled())
    if shape.cursor:
        stmt = stmt.where(
            _after(key, spec.id_column, None, shape.desc, null=shape.cursor == "null")
        )
    stmt = stmt.order_by(*_order(key, spec.id_column, shape.desc)).limit(shape.per_page + 1)
    return without_trash(stmt)


class ListRepository:
    """Runs one table's list: a page, a capped count, the ids for a bulk action, an export."""

    count_cap: ClassVar[int] = COUNT_CAP

    def __init__(self, session: SessionLike, spec: ListSpec) -> None:
        self.session = session
        self.spec = spec

    def filtered(
        self,
        params: ListParams,
        *columns: Any,
        joined: bool = True,
    ) -> Select[Any]:
        """``columns`` from the table's rows that match the search and the filters.

        Search and filters never need the spec's joins (they exist for sorting and eager
        loading), so counts and bulk targets leave them out: ``joined=False``.
        """
        return _filtered(
            self.spec, params.q or None, params.filters.items(), columns, joined=joined
        )

    def matching(self, params: ListParams) -> ColumnElement[bool]:
        """A condition on the table's id: the rows the list shows, over all its pages."""
        return self.spec.id_column.in_(self.filtered(params, self.spec.id_column, joined=False))

    def page(self, params: ListParams) -> KeysetPage:
        """One page of rows and the list's size.

        A whole table's size comes in the page's own statement (its estimate on PostgreSQL);
        a filtered list's is the number of rows when they all fit on the first page, and a
        capped count (a second statement) only when they do not.
        """
        backwards = params.before is not None or params.last
        cursor = params.before or params.after
        totals = self.total_columns(params)
        stmt, values = self._page_statement(params, cursor, backwards, totals)
        at = _cursor_positions(self.spec, self.spec.sort_keys[params.sort])
        rows = list(self.session.execute(stmt, values).all())
        more = len(rows) > params.per_page
        rows = rows[: params.per_page]
        if backwards:
            rows.reverse()

        if cursor is not None and not rows:
            # The rows around the cursor went (deleted, filtered out): start again.
            last = params.after is not None
            return self.page(replace(params, after=None, before=None, last=last))

        if not rows:
            size = Total(0)  # no rows without a cursor: the list is empty
        elif totals is not None:
            size = totals.read(rows[0])
        elif cursor is None and not more:
            size = Total(len(rows))  # every matching row is on this page
        else:
            size = self.size(params)

        if params.before is not None:
            has_prev, has_next = more, True
        elif params.after is not None:
            has_prev, has_next = True, more
        elif params.last:
            has_prev, has_next = more, False
        else:
            has_prev, has_next = False, more
        return KeysetPage(
            rows=rows,
            params=params,
            has_prev=has_prev,
            has_next=has_next,
            # Only the links that exist carry a cursor (each costs an encoding).
            first_cursor=_cursor_of(rows[0], at) if rows and has_prev else None,
            last_cursor=_cursor_of(rows[-1], at) if rows and has_next else None,
            size=size,
        )

    def _page_statement(
        self,
        params: ListParams,
        cursor: Cursor | None,
        backwards: bool,
        totals: TotalColumns | None,
    ) -> tuple[Executable, dict[str, Any]]:
        """The statement for one page and its parameter values.

        The statement is a function of the page's ``PageShape`` alone, and SQLAlchemy
        remembers the one built for each shape (``lambda_stmt``, ``track_on``): a request
        names its shape and passes the search pattern and the cursor as bound values, and
        neither builds the statement nor computes its cache key again. On the admin items
        list that is 0.42 -> 0.26 ms of CPU for the page's statement, rows included.
        """
        search = bool(params.q and self.spec.search is not None)
        values: dict[str, Any] = {}
        if search:
            values["q_pattern"] = like_pattern(params.q)
        if cursor is not None:
            values["cursor_id"] = cursor.id
            if cursor.value is not None:
                values["cursor_value"] = cursor.value
        shape = PageShape(
            spec=self.spec,
            sort=params.sort,
            desc=params.desc != backwards,
            search=search,
            filters=tuple(sorted(params.filters.items())),
            cursor="" if cursor is None else "value" if cursor.value is not None else "null",
            count_cap=totals.cap if totals is not None and totals.count is not None else None,
            per_page=params.per_page,
        )
        if any(self.spec.filters[name].choices is None for name in params.filters):
            # A free-text filter's value (an owner's name) is in its SQL: remembering a
            # statement per value would fill SQLAlchemy's caches with one-off statements.
            return _page_select(shape), values

        # The shape is a default argument, not a closure variable: SQLAlchemy watches a
        # lambda's closure for Python values to bind, and every value that varies here is in
        # the shape or a named bound value already.
        def build(shape: PageShape = shape) -> Select[Any]:
            return _page_select(shape)

        return lambda_stmt(build, track_on=[shape]), values

    def _whole_table(self, params: ListParams) -> str | None:
        """The table's name when the list is all of it (no search, no filter)."""
        spec = self.spec
        if (params.q and spec.search is not None) or params.filters or spec.where is not None:
            return None
        return str(spec.entity.__tablename__)

    def total_columns(self, params: ListParams) -> TotalColumns | None:
        """For a whole table, its size (known, or a column beside the page's rows); else None."""
        whole = self._whole_table(params)
        if whole is None:
            return None
        return total_columns(
            self.session, lambda: _whole_ids(self.spec), cap=self.count_cap, whole=whole
        )

    def size(self, params: ListParams, cap: int | None = None) -> Total:
        """How many rows match, counted no further than the cap, in a statement of its own."""
        ids = self.filtered(params, self.spec.id_column, joined=False)
        return count_total(
            self.session,
            ids,
            cap=self.count_cap if cap is None else cap,
            execution_options=self.spec.execution_options,
        )

    def export_rows(self, params: ListParams, batch: int = EXPORT_BATCH) -> Iterator[Row[Any]]:
        """Every matching row's export columns, in the list's order, fetched ``batch`` at a time.

        One query, read through a server-side cursor on PostgreSQL (``yield_per``), so a
        million rows pass through in flat memory and are sorted once.
        """
        spec = self.spec
        key = spec.sort_keys[params.sort]
        columns = [as_column(c).label(f"c{i}") for i, (_, c) in enumerate(spec.export_columns)]
        stmt = self.filtered(params, *columns).order_by(*_order(key, spec.id_column, params.desc))
        result = self.session.execute(stmt, execution_options={"yield_per": batch})
        try:
            yield from result
        finally:
            result.close()

    @property
    def export_header(self) -> list[str]:
        return [header for header, _ in self.spec.export_columns]


def nothing() -> ColumnElement[bool]:
    """A condition no row meets (an empty selection)."""
    return false()
