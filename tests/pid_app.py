"""A WSGI app answering with the id of the process that served it (gunicorn worker tests)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any


def app(_environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
