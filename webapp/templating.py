"""Filters and globals the templates share."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, request


def format_datetime(value: datetime | None, fmt: str = "%d %b %Y, %H:%M UTC") -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime(fmt)


def format_date(value: datetime | None) -> str:
    return format_datetime(value, "%d %b %Y")


def query_args_without(*names: str) -> dict[str, str]:
    """The current query string as a dict, without ``names`` (for pagination links)."""
    return {k: v for k, v in request.args.items() if k not in names}


def register(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.do")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(format_date, "date")
    app.add_template_global(query_args_without)
