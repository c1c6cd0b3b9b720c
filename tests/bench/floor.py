"""The floor: a bare Flask page rendering the 50 newest users from one raw psycopg2 query.

No ORM, no sessions, no sign-in, no middleware: what one query and one small template cost
in this process model. ``make bench`` serves it with the same gunicorn settings as the app
and reports every page as a fraction of this one's requests per second.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg2
from flask import Flask

NEWEST_USERS = (
    "SELECT id, username, email, is_active, is_admin, created_at "
    "FROM users ORDER BY created_at DESC, id DESC LIMIT 50"
)
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Users</title></head>
<body>
<h1>Users</h1>
<table>
  <thead><tr><th>Username</th><th>Email</th><th>Active</th><th>Admin</th><th>Joined</th></tr></thead>
  <tbody>
  {% for id, username, email, active, admin, created in rows %}
    <tr>
      <td><a href="/users/{{ id }}">{{ username }}</a></td>
      <td>{{ email }}</td>
      <td>{{ "Yes" if active else "No" }}</td>
      <td>{{ "Yes" if admin else "No" }}</td>
      <td>{{ created.strftime("%d %b %Y, %H:%M") }}</td>
    </tr>
  {% endfor %}
  </tbody>
</table>
</body>
</html>
"""

app = Flask(__name__)
# Compiled once: the floor pays for rendering, not for compiling the template per request.
TEMPLATE = app.jinja_env.from_string(PAGE)
_local = threading.local()


def _dsn() -> str:
    url = os.environ["DATABASE_URL"]
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def connection() -> Any:
    """One connection per server thread, opened on first use and kept."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg2.connect(_dsn())
        conn.autocommit = True
        _local.conn = conn
    return conn


@app.get("/")
def newest_users() -> str:
    with connection().cursor() as cursor:
        cursor.execute(NEWEST_USERS)
        rows = cursor.fetchall()
    return TEMPLATE.render(rows=rows)
