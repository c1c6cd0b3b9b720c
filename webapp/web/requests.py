"""Small helpers the blueprints share: safe redirects, integer and search arguments, client
address; and the app's request class, which reads query strings and forms as UTF-8."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from flask import Flask, Request, current_app, redirect, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import FormDataParser
from werkzeug.routing import IntegerConverter, ValidationError
from werkzeug.utils import cached_property
from werkzeug.wrappers import Response

from webapp.validation import has_control_chars, without_control_chars

View = TypeVar("View", bound=Callable[..., Any])


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


# PostgreSQL's ``integer``, which every id column is: no number we read goes past it.
INT_MAX = 2_147_483_647
_ASCII_DIGITS = re.compile(r"[0-9]+")


def parse_int(text: Any, *, minimum: int = 0, maximum: int = INT_MAX) -> int | None:
    """``text`` as a whole number from ``minimum`` to ``maximum``, else ``None``.

    The one parser for every integer a request carries. Only ASCII digits count:
    ``str.isdigit`` also says yes to ``"²"`` (which ``int`` then refuses) and ``int`` takes
    Arabic-Indic or full-width digits, none of which any page of ours writes. The length is
    checked before the conversion, so a megabyte of digits costs nothing.
    """
    if not isinstance(text, str) or len(text) > len(str(maximum)):
        return None
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def int_arg(
    name: str,
    default: int,
    *,
    minimum: int = 0,
    maximum: int = INT_MAX,
    args: Mapping[str, Any] | None = None,
) -> int:
    """An integer from the query string (or ``args``, e.g. a form); anything odd is ``default``."""
    source = request.args if args is None else args
    value = parse_int(source.get(name), minimum=minimum, maximum=maximum)
    return default if value is None else value


def page_arg(name: str = "page") -> int:
    """The page number from the query string; anything odd is page 1."""
    return int_arg(name, 1, minimum=1)


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
        return stream, self.cls(parse_utf8_pairs(stream.read())), self.cls()


def parse_utf8_pairs(data: bytes) -> list[tuple[str, str]]:
    """``a=1&b=2`` (a query string or an urlencoded body) as pairs of text; bytes that are not
    UTF-8, raw or percent-encoded, become U+FFFD."""
    text = data.decode("utf-8", "replace")
    return parse_qsl(text, keep_blank_values=True, errors="replace")


class FormRequest(Request):
    """The app's request: query strings and urlencoded forms read as UTF-8, U+FFFD for the rest.

    Werkzeug's ``args`` fails (a 500) on raw bytes that are not UTF-8, as a client or proxy
    may pass them, and keeps ``%FF`` as the text ``"%FF"``. Here both read as forms do.
    """

    form_data_parser_class = Utf8FormDataParser

    @cached_property
    def args(self) -> MultiDict[str, str]:
        return self.parameter_storage_class(parse_utf8_pairs(self.query_string))


class AsciiIntegerConverter(IntegerConverter):
    """``<int:...>`` in a route: ASCII digits only, read by ``parse_int``.

    Werkzeug's own matches ``\\d+``, which takes ``/items/`` and an Arabic-Indic three for
    item 3.
    """

    regex = r"[0-9]+"

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        if self.signed:
            raise ValueError("route integers are ids and page numbers: never signed")

    def to_python(self, value: str) -> int:
        maximum = INT_MAX if self.max is None else self.max
        number = parse_int(value, minimum=self.min or 0, maximum=maximum)
        if number is None or (self.fixed_digits and len(value) != self.fixed_digits):
            raise ValidationError()
        return number


def larger_body(limit: int, *, when: Callable[[], bool]) -> Callable[[View], View]:
    """Let a view take bodies up to ``limit`` bytes (the site's ``MAX_CONTENT_LENGTH``
    elsewhere), for requests where ``when()`` is true (an admin's upload): everyone else is
    held to the site's limit, so an anonymous client cannot make the app read more.

    Flask 3.1's documented way: ``request.max_content_length`` set for one request, before
    anything reads the body (``apply_body_limit`` runs first of every ``before_request``,
    ahead of the CSRF check that reads the form).
    """

    def mark(view: View) -> View:
        view.max_content_length = limit  # type: ignore[attr-defined]
        view.larger_body_when = when  # type: ignore[attr-defined]
        return view

    return mark


def apply_body_limit() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, "max_content_length", None)
    if limit is not None and view.larger_body_when():  # type: ignore[union-attr]
        request.max_content_length = limit


def register(app: Flask) -> None:
    """Before any route is added: the app's request class and its ``int`` converter; before
    any other ``before_request``: the body limit of views marked ``larger_body``."""
    app.request_class = FormRequest
    app.url_map.converters["int"] = AsciiIntegerConverter
    app.before_request(apply_body_limit)
