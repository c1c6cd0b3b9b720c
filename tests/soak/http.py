"""A small HTTP client for load and fault runs: keep-alive, cookies, CSRF, no redirects."""

from __future__ import annotations

import http.client
import re
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
HIDDEN_RE = re.compile(r'<input[^>]*type="hidden"[^>]*>')
NAME_RE = re.compile(r'name="([^"]+)"')
VALUE_RE = re.compile(r'value="([^"]*)"')


@dataclass
class Result:
    status: int
    body: str
    location: str
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)  # the last of each name, as sent


@dataclass
class Browser:
    """One simulated user: its own connection and cookies."""

    host: str
    port: int
    timeout: float = 15.0
    cookies: dict[str, str] = field(default_factory=dict)
    _conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Result:
        headers = {"Connection": "keep-alive"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            conn = self._connection()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        elapsed = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return Result(
            response.status,
            data,
            response.getheader("Location", ""),
            elapsed,
            dict(response.getheaders()),
        )

    def get(self, path: str) -> Result:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str]) -> Result:
        return self.request("POST", path, form)


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the page's forms (CSRF token, version, next)."""
    fields: dict[str, str] = {}
    for tag in HIDDEN_RE.findall(html):
        name, value = NAME_RE.search(tag), VALUE_RE.search(tag)
        if name and value and name.group(1) not in fields:
            fields[name.group(1)] = value.group(1).replace("&#34;", '"').replace("&amp;", "&")
    return fields
