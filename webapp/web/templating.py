"""Filters and globals the templates share."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, request

from webapp.db.types import as_utc


def format_datetime(value: datetime | None, fmt: str = "%d %b %Y, %H:%M UTC") -> str:
    """A timestamp as text, in UTC (a naive value is taken to be UTC already)."""
    value = as_utc(value)
    return "" if value is None else value.strftime(fmt)


def isoformat(value: datetime | None) -> str:
    """A timestamp for a ``<time datetime>`` attribute, in UTC."""
    value = as_utc(value)
    return "" if value is None else value.isoformat()


def query_args_without(*names: str) -> dict[str, str]:
    """The current query string as a dict, without ``names`` (for pagination links)."""
    return {k: v for k, v in request.args.items() if k not in names}


def register(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.do")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(isoformat)
    app.add_template_global(query_args_without)
