"""The admin lists' URL format: query-string arguments to ``ListParams`` and back.

``parse_params`` reads what a request asks of a list, checked against the table's
``ListSpec`` (odd values are ignored, never an error); ``query_args`` writes a list's filters
and sort back as the arguments of its links and forms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp.repositories.keyset import DEFAULT_PER_PAGE, Cursor, ListParams, ListSpec
from webapp.validation import without_control_chars
from webapp.web.requests import parse_int

PER_PAGE_CHOICES = (DEFAULT_PER_PAGE, 50, 100)
MAX_TEXT_ARG = 100


def clean_text(value: str | None, limit: int = MAX_TEXT_ARG) -> str:
    """Query-string text made safe for SQL: control characters dropped, trimmed, bounded."""
    text = without_control_chars(value or "")
    return text.strip()[:limit]


def _default_desc(spec: ListSpec, sort: str | None = None) -> bool:
    return spec.sort_keys[sort or spec.default_sort].descending_first


def parse_params(spec: ListSpec, args: Mapping[str, str]) -> ListParams:
    """Read a list's parameters from query-string (or form) arguments; odd values are ignored."""
    sort = args.get("sort", "")
    if sort not in spec.sort_keys:
        sort = spec.default_sort
    direction = args.get("dir", "")
    desc = direction == "desc" if direction in {"asc", "desc"} else _default_desc(spec, sort)
    per_page = parse_int(args.get("per_page"))
    if per_page not in PER_PAGE_CHOICES:
        per_page = DEFAULT_PER_PAGE
    filters = {}
    for name, spec_filter in spec.filters.items():
        value = clean_text(args.get(name))
        if value and spec_filter.accepts(value):
            filters[name] = value
    key = spec.sort_keys[sort]
    after = Cursor.decode(args.get("after", ""), key)
    before = None if after else Cursor.decode(args.get("before", ""), key)
    last = not (after or before) and args.get("last") == "1"
    return ListParams(
        q=clean_text(args.get("q")) if spec.search else "",
        filters=filters,
        sort=sort,
        desc=desc,
        per_page=per_page,
        after=after,
        before=before,
        last=last,
    )


def query_args(spec: ListSpec, params: ListParams, *, with_sort: bool = True) -> dict[str, Any]:
    """The filters (and sort) as query-string arguments, without a cursor."""
    args: dict[str, Any] = {}
    if params.q:
        args["q"] = params.q
    args.update(params.filters)
    if with_sort and (params.sort != spec.default_sort or params.desc != _default_desc(spec)):
        args["sort"] = params.sort
        args["dir"] = "desc" if params.desc else "asc"
    if params.per_page != DEFAULT_PER_PAGE:
        args["per_page"] = str(params.per_page)
    return args
