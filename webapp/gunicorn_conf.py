"""Gunicorn settings: ``gunicorn -c python:webapp.gunicorn_conf wsgi:app`` (``make serve``).

Each setting can be changed by the environment variable named beside it, or on the command
line (``--bind``, ``--workers``, ...), which wins over this file.
"""

from __future__ import annotations

import os


def _count(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name} must be a whole number >= 1, not {value!r}.")
    return int(value)


def cores() -> int:
    """The CPU cores this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


wsgi_app = "wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")

# Workers are processes and share nothing (sessions are signed cookies, state lives in
# PostgreSQL and Redis); threads let one worker wait on the database for several requests.
# Two, not more: a request here is mostly Python (the database answers in a fraction of a
# millisecond), and a worker's threads share one GIL.
workers = _count("WEB_CONCURRENCY", 2 * cores() + 1)
# gthread, spreading new connections over the workers (webapp/gunicorn_worker.py): plain
# gthread lets one worker take a whole burst of keep-alive connections and serve them all on
# one core while the others idle.
worker_class = "webapp.gunicorn_worker.BalancedThreadWorker"
threads = _count("GUNICORN_THREADS", 2)
# Restart a worker after this many requests (jittered so they do not restart together).
max_requests = _count("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10

# A worker silent for `timeout` seconds is killed and replaced; on a restart or SIGTERM the
# workers get `graceful_timeout` seconds to finish the requests they have.
timeout = _count("GUNICORN_TIMEOUT", 30)
graceful_timeout = _count("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive connections: longer than the proxy's own idle timeout (nginx upstream and
# most cloud load balancers: 60 s), so the proxy always closes first and never sends a request
# down a connection gunicorn is closing. gthread waits on idle connections without a thread.
keepalive = _count("GUNICORN_KEEPALIVE", 75)

# Access log on stdout. The application writes it (webapp/web/request_log.py): one JSON line
# per request with the SQL query count, request id and user that gunicorn cannot see. So
# gunicorn's own access line is off by default; GUNICORN_ACCESS_LOG=- adds it anyway.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# Gunicorn's own messages (start, worker restarts, timeouts) on stderr.
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Proxy headers are the application's business (PROXY_FIX_HOPS, Werkzeug's ProxyFix): gunicorn
# must not act on them too, or a client could set the scheme through a header nginx passes on.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""

proc_name = "webapp"
# The workers' heartbeat files: in memory, so a slow or full disk cannot get workers killed.
# (gunicorn makes them with mkstemp and unlinks them at once.)
SHARED_MEMORY = "/dev/shm"  # noqa: S108
if os.path.isdir(SHARED_MEMORY):
    worker_tmp_dir = SHARED_MEMORY
