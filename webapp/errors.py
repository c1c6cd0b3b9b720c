"""Error pages in the site's layout, for the browser; never a bare traceback."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Flask, Response, current_app, g, make_response, render_template
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, SecurityError

from webapp.db.replicas import retry_on_primary
from webapp.extensions import db, limiter, login_manager
from webapp.repositories.versioned import AlreadyDeleted

MESSAGES: dict[int, tuple[str, str]] = {
    400: (
        "Bad request",
        "The request could not be understood. If you sent a form, reload it and try again.",
    ),
    403: ("Forbidden", "You do not have permission to see this page."),
    404: ("Page not found", "There is nothing at this address. It may have moved or been deleted."),
    405: ("Method not allowed", "This page does not accept that kind of request."),
    413: ("Too large", "What you sent is larger than this site accepts. Send less and try again."),
    429: ("Too many requests", "You have tried this too often. Please wait and try again."),
    500: (
        "Something went wrong",
        "An unexpected error happened on our side. Nothing was saved; please try again.",
    ),
    503: (
        "Temporarily unavailable",
        "The site cannot reach its database just now. Please try again in a moment.",
    ),
}
UNTRUSTED_HOST = "This site does not answer to that host name. Check the address and try again."
# Headers of the original error response that the rendered page must keep.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
RETRY_AFTER_SECONDS = 5
ALREADY_DELETED = "Someone else deleted this a moment ago: there is nothing left to delete."


def rollback_quietly() -> None:
    """Roll the request's transaction back; on a dead connection, just drop the session."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        db.session.close()


def render_error(code: int, message: str | None = None) -> Response:
    title, default = MESSAGES.get(code, ("Error", "Something went wrong."))
    html = render_template("errors/error.html", code=code, title=title, message=message or default)
    return make_response(html, code)


def _wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"


def rate_limit_message(limit_text: str | None) -> str:
    """Which limit was hit and when the next attempt will be accepted."""
    hit = f" (limit: {limit_text})" if limit_text else ""
    current = limiter.current_limit
    if current is None:
        return f"You have tried this too often{hit}. Please wait a minute and try again."
    seconds = max(int(current.reset_at - time.time()), 1)
    until = datetime.fromtimestamp(current.reset_at, UTC).strftime("%H:%M:%S UTC")
    return (
        f"You have tried this too often{hit}. "
        f"You can try again in {_wait_words(seconds)}, at {until}."
    )


def handle_http_exception(error: HTTPException) -> Response | HTTPException:
    if error.code is None or error.code < 400:
        return error
    message = rate_limit_message(error.description) if error.code == 429 else None
    if isinstance(error, SecurityError):
        # A Host outside TRUSTED_HOSTS: Flask builds no URLs for it, so no page in the
        # layout; one that stands alone.
        page = render_template("errors/untrusted_host.html", message=UNTRUSTED_HOST)
        return make_response(page, 400)
    if error.code >= 500:
        # Nothing half-written survives an error: the request's transaction goes.
        rollback_quietly()
    response = render_error(error.code, message)
    original = error.get_response()
    for name in KEPT_HEADERS:
        if name in original.headers:
            response.headers[name] = original.headers[name]
    return response


def is_database_unavailable(error: DBAPIError) -> bool:
    """True when the database, not our SQL, is at fault (gone, restarting, locked)."""
    if error.connection_invalidated:
        return True
    text = str(error.orig).lower()
    markers = (
        "database is locked",
        "server closed the connection",
        "could not connect",
        "connection refused",
        "terminating connection",
        "the database system is",
        "connection already closed",
        "ssl connection has been closed",
    )
    return any(marker in text for marker in markers)


def handle_database_error(error: DBAPIError) -> Response:
    rollback_quietly()
    if retry_on_primary(error):  # a replica failed a read: it runs again on the primary
        return Response(status=503)
    if not is_database_unavailable(error):
        raise error
    current_app.logger.warning("database unavailable, answered 503: %s", str(error.orig).strip())
    # The rollback expired the signed-in user's row and the database cannot reload it:
    # the error page is drawn as for a visitor rather than touch the database again.
    g._login_user = login_manager.anonymous_user()
    response = render_error(503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handle_already_deleted(error: AlreadyDeleted) -> Response:
    """A delete whose row another request deleted first, where its view did not say so itself:
    nothing of this request is kept, and the answer is that the row is not there (404)."""
    rollback_quietly()
    return render_error(404, ALREADY_DELETED)


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(AlreadyDeleted, handle_already_deleted)
    app.register_error_handler(DBAPIError, handle_database_error)
