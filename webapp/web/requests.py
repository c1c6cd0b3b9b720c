"""Small helpers the blueprints share: safe redirects, paging arguments, client address."""

from __future__ import annotations

import re
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from flask import Request, redirect, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import FormDataParser
from werkzeug.wrappers import Response

from webapp.validation import has_control_chars, without_control_chars


def is_safe_next(target: str | None) -> bool:
    """True only for a path on this site (``/items/?page=2``), never another host or scheme.

    Browsers read a backslash in the path as a slash (``/\\evil.example`` is another host);
    in the query string it is only text, so a page whose search held one can still be
    returned to.
    """
    if not target or has_control_chars(target):
        return False
    path = re.split(r"[?#]", target, maxsplit=1)[0]
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
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
    value = without_control_chars(value)
    return value.strip()[:max_length]


class Utf8FormDataParser(FormDataParser):
    """Urlencoded bodies decoded as multipart ones are: bytes that are not UTF-8 become U+FFFD.

    Werkzeug otherwise keeps an undecodable ``%FF`` as the literal text ``"%FF"`` (which a
    form would then store) and drops the whole form when raw bytes are not UTF-8. With U+FFFD
    in their place, the forms can refuse the field and say so beside it.
    """

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, Any]]:
        if mimetype != "application/x-www-form-urlencoded":
            return super().parse(stream, mimetype, content_length, options)
        text = stream.read().decode("utf-8", "replace")
        items = parse_qsl(text, keep_blank_values=True, errors="replace")
        return stream, self.cls(items), self.cls()


class FormRequest(Request):
    form_data_parser_class = Utf8FormDataParser
