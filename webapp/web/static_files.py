"""Static files under versioned URLs, cached for a year by browsers and proxies.

``url_for("static", filename="css/site.css")`` gives ``/static/css/site.css?v=<hash>``, the
hash taken from the file's content. A request carrying the file's current hash may be cached
for good (``Cache-Control: public, max-age=31536000, immutable``): a changed file gets a new
URL. Any other request for the file (no ``v``, or the hash of an older copy during a rolling
deploy) is answered with ``no-cache``, so it is revalidated by ETag and never goes stale.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Any

from flask import Flask, Response, current_app, request, send_from_directory
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer
from werkzeug.security import safe_join

from webapp.web.headers import keep_out_of_caches

VERSION_ARG = "v"
VERSION_LENGTH = 12


@lru_cache(maxsize=512)
def _content_hash(path: str, _mtime_ns: int, _size: int) -> str:
    """The content hash of ``path``; the modification time and size key the cache."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()[:VERSION_LENGTH]


def file_version(folder: str, filename: str) -> str | None:
    """The version of ``folder/filename`` (its content hash), or None if it is not a file."""
    path = safe_join(folder, filename)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return _content_hash(path, stat.st_mtime_ns, stat.st_size)


def static_version(filename: str) -> str | None:
    folder = current_app.static_folder
    return file_version(folder, filename) if folder else None


def add_static_version(endpoint: str, values: dict[str, Any]) -> None:
    """``url_defaults`` hook: every static URL carries its file's version."""
    if endpoint != "static" or VERSION_ARG in values:
        return
    filename = values.get("filename")
    if isinstance(filename, str):
        version = static_version(filename)
        if version:
            values[VERSION_ARG] = version


def serve_static(filename: str) -> Response:
    """Flask's static view, with a long cache life for requests that name the current version."""
    folder = current_app.static_folder
    assert folder is not None
    requested = request.args.get(VERSION_ARG)
    current = requested is not None and requested == static_version(filename)
    max_age = current_app.config["STATIC_MAX_AGE"] if current else None
    response = send_from_directory(folder, filename, max_age=max_age)
    if current:
        response.cache_control.immutable = True
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions, except that a static file's response never depends on them.

    Flask adds ``Vary: Cookie`` whenever the session was looked at (Flask-Login looks on
    every request). On a static file that would make browsers and proxies fetch it again
    each time the session cookie changes, which defeats the year-long cache.

    The signing serializer is built once per set of keys, not on every request (building
    one serializes an empty dict to learn the serializer's kind).

    A response that sets or clears a cookie (this session's, or Flask-Login's "remember me",
    set just before) is kept out of every cache: a shared cache that stored it would hand the
    cookie, and with it the session, to the next visitor. This runs after every
    ``after_request`` hook, so it is the first place that sees all of a response's cookies.
    """

    def __init__(self) -> None:
        self.serializers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        try:
            return self.serializers[keys]
        except KeyError:
            serializer = super().get_signing_serializer(app)
            self.serializers[keys] = serializer
            return serializer

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if request.endpoint == "static" and not session.modified:
            return
        super().save_session(app, session, response)
        if "Set-Cookie" in response.headers:
            keep_out_of_caches(response)


def register(app: Flask) -> None:
    app.url_defaults(add_static_version)
    app.view_functions["static"] = serve_static
    app.session_interface = SessionInterface()
