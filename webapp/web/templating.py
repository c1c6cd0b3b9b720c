"""Filters and globals the templates share (``webapp.web.rendering`` adds the row helpers)."""

from __future__ import annotations

from flask import Flask, request

from webapp.web import rendering


def query_args_without(*names: str) -> dict[str, str]:
    """The current query string as a dict, without ``names`` (for pagination links)."""
    return {k: v for k, v in request.args.items() if k not in names}


def register(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.do")
    app.add_template_global(query_args_without)
    rendering.register(app)
