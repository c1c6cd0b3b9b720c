"""Request logging: one JSON line per request on stdout, and a request id on every response.

The line carries the method, the path (tokens in it redacted, no query string), the status,
the duration in milliseconds (until the last byte was handed to the server), the number of
SQL statements run, the request id, the client address, the signed-in user's id and where
the request's reads went (``"db": "primary"``, or ``"db": "replica"`` and its ``host:port``).
It never carries headers, cookies, form fields or query strings, so no password, session
cookie or token can reach the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request
from sqlalchemy import Engine, event
from werkzeug.wsgi import ClosingIterator

from webapp.db.replicas import ENVIRON_DB, ENVIRON_REPLICA

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REQUEST_ID_HEADER = "X-Request-ID"
# What we accept from a client or proxy as a request id; anything else is replaced by our own.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MAX_LOGGED_PATH = 512
REDACTED = "[redacted]"

ENVIRON_REQUEST_ID = "webapp.request_id"
ENVIRON_USER_ID = "webapp.user_id"
ENVIRON_LOG_PATH = "webapp.log_path"

logger = logging.getLogger("webapp.requests")

# The statements counter of the request this thread is serving (None outside a request).
_statements: ContextVar[list[int] | None] = ContextVar("webapp_request_statements", default=None)


@event.listens_for(Engine, "before_cursor_execute")
def _count_statement(*_args: Any) -> None:
    counter = _statements.get()
    if counter is not None:
        counter[0] += 1


def request_id_from(value: str | None) -> str:
    """The incoming request id if it is a sane token, else a new random one."""
    if value and VALID_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """WSGI middleware: times the request, counts its SQL, sets the id header, logs one line.

    It sits inside ProxyFix (when a proxy is trusted), so the address it logs is the client's.
    """

    def __init__(self, app: WSGIApplication, log: logging.Logger = logger) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        environ[ENVIRON_REQUEST_ID] = request_id
        counter = [0]
        _statements.set(counter)
        status: list[int] = []

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[:] = [int(status_line.split(" ", 1)[0])]
            headers = [(k, v) for k, v in headers if k.lower() != REQUEST_ID_HEADER.lower()]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status_line, headers, exc_info)

        def finish() -> None:
            _statements.set(None)
            self.log.info(
                json.dumps(
                    log_record(environ, status[0] if status else 500, started, counter[0]),
                    separators=(",", ":"),
                )
            )

        try:
            body = self.app(environ, start)
        except BaseException:
            finish()  # the server answers 500; the line still says so
            raise
        # Logged when the server closes the body: streamed responses are timed to their end.
        return ClosingIterator(body, [finish])


def log_record(
    environ: WSGIEnvironment, status: int, started: float, statements: int
) -> dict[str, Any]:
    path = environ.get(ENVIRON_LOG_PATH) or environ.get("PATH_INFO") or "/"
    return {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": "request",
        "request_id": environ[ENVIRON_REQUEST_ID],
        "method": environ.get("REQUEST_METHOD", ""),
        "path": path[:MAX_LOGGED_PATH],
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "queries": statements,
        "remote_addr": environ.get("REMOTE_ADDR"),
        "user_id": environ.get(ENVIRON_USER_ID),
        **where_reads_went(environ),
    }


def where_reads_went(environ: WSGIEnvironment) -> dict[str, str]:
    """``{"db": "primary"}``, or ``{"db": "replica", "replica": "host:port"}``."""
    replica = environ.get(ENVIRON_REPLICA)
    if environ.get(ENVIRON_DB) == "replica" and replica:
        return {"db": "replica", "replica": replica}
    return {"db": "primary"}


def redacted_path() -> str:
    """The request path with every URL part named like ``*token*`` replaced (reset links)."""
    path = request.path
    for name, value in (request.view_args or {}).items():
        if "token" in name and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    return path


def note_request_facts(response: Response) -> Response:
    """Hand the middleware what only the application knows: who, and the loggable path."""
    # Flask-Login keeps the user it loaded in ``g._login_user``; reading it there (rather than
    # ``current_user``) logs who was signed in without a query on requests that never asked.
    user = g.get("_login_user")
    if user is not None and getattr(user, "is_authenticated", False):
        request.environ[ENVIRON_USER_ID] = user.id
    request.environ[ENVIRON_LOG_PATH] = redacted_path()
    return response


def configure_logger(log: logging.Logger = logger) -> None:
    """Plain lines (the message is the JSON) on stdout, set up once per process."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def register(app: Flask) -> None:
    configure_logger()
    app.after_request(note_request_facts)
    app.wsgi_app = RequestLogMiddleware(app.wsgi_app)  # type: ignore[method-assign]
