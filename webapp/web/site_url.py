"""Links built on ``SITE_URL``, the site's public address, never on the request's ``Host``.

A request's ``Host`` header (and, behind a proxy, ``X-Forwarded-Host``) is whatever the
client sent. A link built on it and emailed to someone else (a password reset) would send
that person, and the token in the link, to the sender's host. So every link that leaves the
site in an email is built here, on the configured address.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from werkzeug.routing import MapAdapter


def site_adapter() -> MapAdapter:
    """The app's URL map bound to ``SITE_URL`` (its host, scheme and path)."""
    site = urlsplit(current_app.config["SITE_URL"])
    return current_app.url_map.bind(
        site.netloc, script_name=site.path or "/", url_scheme=site.scheme
    )


def external_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of ``endpoint`` on ``SITE_URL``, as ``url_for(..., _external=True)``
    would build it on a trusted host (URL defaults applied)."""
    current_app.inject_url_defaults(endpoint, values)
    return site_adapter().build(endpoint, values, force_external=True)
