"""Small helpers the blueprints share: safe redirects, paging arguments, client address."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.validation import has_control_chars


def is_safe_next(target: str | None) -> bool:
    """True only for a path on this site (``/items/?page=2``), never another host or scheme."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or has_control_chars(target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def redirect_next(default_endpoint: str = "main.index") -> Response:
    """Redirect to a safe ``next`` (from the form or the query string), else to the default."""
    target = request.form.get("next") or request.args.get("next") or ""
    return redirect(target if is_safe_next(target) else url_for(default_endpoint))


def client_ip() -> str | None:
    """The client's address (behind a trusted proxy, ProxyFix has already set it)."""
    return request.remote_addr


def page_arg(name: str = "page") -> int:
    """The page number from the query string; anything odd is page 1."""
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else 1


def search_arg(name: str = "q", max_length: int = 100) -> str:
    """Search text from the query string: trimmed, control characters dropped, bounded."""
    value = request.args.get(name, "")
    value = "".join(char for char in value if not has_control_chars(char))
    return value.strip()[:max_length]
