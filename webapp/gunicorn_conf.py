"""Gunicorn settings: ``gunicorn -c python:webapp.gunicorn_conf wsgi:app`` (``make serve``).

Each setting can be changed by the environment variable named beside it, or on the command
line (``--bind``, ``--workers``, ...), which wins over this file.
"""

from __future__ import annotations

import os


def _count(name: str, default: int, minimum: int = 1) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < minimum:
        raise SystemExit(f"{name} must be a whole number >= {minimum}, not {value!r}.")
    return int(value)


def _switch(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be 1 or 0 (true or false), not {value!r}.")


def cores() -> int:
    """The CPU cores this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


wsgi_app = "wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
# Every worker listens on a socket of its own (SO_REUSEPORT; gunicorn 23 set the flag on the
# one socket its workers shared, which changed nothing), and the kernel gives each new
# connection to one of them by a hash of its addresses and ports, whatever the workers are
# doing. A burst of keep-alive connections (nginx's upstream pool, a load balancer's) splits as
# coin tosses do: of 8 connections to 2 workers the busier took 5.0 on average, all 8 in 2
# bursts of 250. On one shared socket (gunicorn's default) whichever worker wakes first
# accepts what it can: it took 7 or 8 of the 8 in 210 bursts of 250, all 8 in 99. Gunicorn
# has no setting that weighs the workers' load (issues #908, #3433).
# The cost: a worker that stops (recycled after max_requests, reloaded, killed) closes its
# socket with the connections the kernel had queued on it, and those are reset (gunicorn PR
# #3612, open); while every worker restarts at once, new connections are refused. Measured:
# 2 resets per worker restart with 2 workers, 0.6 with 5. On Linux 5.14+ the host setting
# net.ipv4.tcp_migrate_req=1 hands the queued connections to another worker instead.
# GUNICORN_REUSE_PORT=0 goes back to the one shared socket: nothing lost on restarts, bursts on
# one worker. (With it on, a second gunicorn of the same user on the same port does not fail
# with "address already in use": the two share the connections.) README "Serving" has the
# figures; tests/bench/connection_split.py measures them.
reuse_port = _switch("GUNICORN_REUSE_PORT", True)

# Workers are processes and share nothing (sessions are signed cookies, state lives in
# PostgreSQL and Redis); threads let one worker wait on the database for several requests.
workers = _count("WEB_CONCURRENCY", 2 * cores() + 1)
# gthread as gunicorn ships it: an event loop accepts connections and waits on idle
# keep-alive ones, a pool of threads serves requests.
worker_class = "gthread"
# Two threads, not more: a request here is mostly Python (the database answers in a
# fraction of a millisecond), and a worker's threads share one GIL.
threads = _count("GUNICORN_THREADS", 2)
# Restart a worker after this many requests (jittered so they do not restart together); 0, the
# default, never. Workers hold flat memory (about 80 MB after a million requests of
# `make bench`), and with reuse_port every restart resets the connections queued on it.
max_requests = _count("GUNICORN_MAX_REQUESTS", 0, minimum=0)
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

# Gunicorn 25.1+ opens a control socket for `gunicornc` (worker count, reload, shutdown) by
# default at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl):
# each instance a user starts takes that path over from the one before, and unlinks it when it
# stops. Off here; GUNICORN_CONTROL_SOCKET=/run/webapp/gunicorn.ctl (a path for this instance
# alone) turns it on.
if control_path := os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip():
    control_socket = control_path
else:
    control_socket_disable = True
