"""Fault and load run: gunicorn on PostgreSQL, concurrent writers, killed connections and a
PostgreSQL restart; then every acknowledged write is checked in the database.

    python -m tests.soak.soak --duration 60 --clients 32

Exits non-zero on any 500, any 503 outside a fault window, or any lost, duplicated or
half-written row.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, selectinload

from tests.pgcluster import PrivateCluster
from tests.soak.http import Browser, Result, hidden_fields
from webapp.models import Item, Post, User
from webapp.models.user import PASSWORD_METHOD

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "soak-password-1"
FAULT_GRACE = 3.0  # after a fault, requests may still meet a dead connection for this long


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- what clients remember


@dataclass
class Write:
    """One write a client sent, and whether the server acknowledged it (a redirect)."""

    kind: str  # create / edit / delete
    token: str
    acked: bool
    tags: tuple[str, ...] = ()


@dataclass
class Tracked:
    table: str  # "items" or "posts"
    row_id: int | None
    writes: list[Write] = field(default_factory=list)


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    # (sent, answered, status, path) of every failed request
    bad: list[tuple[float, float, int, str]] = field(default_factory=list)

    def add(self, result: Result, path: str, started_at: float) -> None:
        with self.lock:
            self.statuses[result.status] += 1
            self.latencies.append(result.seconds)
            if result.status >= 500:
                self.bad.append((started_at, time.monotonic(), result.status, path))

    def error(self, kind: str, started_at: float, path: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            self.bad.append((started_at, time.monotonic(), 0, path))


@dataclass
class FaultLog:
    windows: list[tuple[float, float, str]] = field(default_factory=list)

    @contextmanager
    def window(self, label: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.windows.append((start, time.monotonic() + FAULT_GRACE, label))

    def covers(self, sent: float, answered: float) -> bool:
        """True if a request in flight from ``sent`` to ``answered`` overlapped a fault."""
        return any(sent <= end and answered >= start for start, end, _ in self.windows)


# ---------------------------------------------------------------- one simulated user


class Client(threading.Thread):
    def __init__(self, number: int, port: int, deadline: float, stats: Stats, seed: int) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.number = number
        self.browser = Browser("127.0.0.1", port)
        self.deadline = deadline
        self.stats = stats
        self.rng = random.Random(seed)
        self.tracked: list[Tracked] = []
        self.signed_in = False

    def call(self, method: str, path: str, form: dict[str, str] | None = None) -> Result | None:
        started = time.monotonic()
        try:
            result = self.browser.request(method, path, form)
        except Exception as error:  # any transport failure is counted, never raised
            self.stats.error(type(error).__name__, started, path)
            return None
        self.stats.add(result, path, started)
        return result

    def form_page(self, path: str) -> dict[str, str] | None:
        page = self.call("GET", path)
        if page is None or page.status != 200:
            if page is not None and page.status in (302, 401):
                self.signed_in = False
            return None
        return hidden_fields(page.body)

    def sign_in(self) -> None:
        page = self.call("GET", "/auth/login")
        if page is not None and page.status == 302:  # an earlier attempt did sign us in
            self.signed_in = True
            return
        if page is None or page.status != 200:
            return
        fields = hidden_fields(page.body)
        fields.update(login=f"soak{self.number}", password=PASSWORD)
        result = self.call("POST", "/auth/login", fields)
        self.signed_in = result is not None and result.status == 302

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            if not self.signed_in:
                self.sign_in()
                if not self.signed_in:
                    time.sleep(0.2)
                    continue
            self.step()
        self.browser.close()

    def step(self) -> None:
        live = [t for t in self.tracked if t.row_id is not None and not self.deleted(t)]
        roll = self.rng.random()
        if roll < 0.35 or not live:
            self.create(self.rng.choice(("items", "posts")))
        elif roll < 0.8:
            self.edit(self.rng.choice(live))
        elif roll < 0.95:
            self.delete(self.rng.choice(live))
        else:
            self.call("GET", self.rng.choice(("/", "/items/", "/posts/", "/tags/")))

    @staticmethod
    def deleted(tracked: Tracked) -> bool:
        return any(w.kind == "delete" and w.acked for w in tracked.writes)

    def payload(self, table: str, token: str) -> tuple[dict[str, str], tuple[str, ...]]:
        if table == "items":
            return {"title": f"Soak item {token}", "description": f"about {token}"}, ()
        tags = tuple(sorted({f"soak-{self.rng.randrange(20)}" for _ in range(2)}))
        form = {"title": f"Soak post {token}", "body": f"body {token}", "tags": ", ".join(tags)}
        return form, tags

    def create(self, table: str) -> None:
        fields = self.form_page(f"/{table}/new")
        if fields is None:
            return
        token = secrets.token_hex(6)
        form, tags = self.payload(table, token)
        result = self.call("POST", f"/{table}/new", {**fields, **form})
        acked = result is not None and result.status == 302 and f"/{table}/" in result.location
        row_id = int(result.location.rstrip("/").rsplit("/", 1)[1]) if acked and result else None
        self.tracked.append(Tracked(table, row_id, [Write("create", token, acked, tags)]))

    def edit(self, tracked: Tracked) -> None:
        fields = self.form_page(f"/{tracked.table}/{tracked.row_id}/edit")
        if fields is None:
            return
        token = secrets.token_hex(6)
        form, tags = self.payload(tracked.table, token)
        result = self.call("POST", f"/{tracked.table}/{tracked.row_id}/edit", {**fields, **form})
        acked = result is not None and result.status == 302
        tracked.writes.append(Write("edit", token, acked, tags))

    def delete(self, tracked: Tracked) -> None:
        fields = self.form_page(f"/{tracked.table}/{tracked.row_id}/delete")
        if fields is None:
            return
        result = self.call("POST", f"/{tracked.table}/{tracked.row_id}/delete", fields)
        acked = result is not None and result.status == 302
        tracked.writes.append(Write("delete", "", acked))


# ---------------------------------------------------------------- faults


def inject_faults(
    cluster: PrivateCluster, deadline: float, duration: float, faults: FaultLog, restart: bool
) -> None:
    db_url = cluster.url
    admin = create_engine(make_url(db_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = make_url(db_url).database
    start = time.monotonic()
    kill_times = [start + duration * f for f in (0.15, 0.3, 0.7, 0.85)]
    restart_at = start + duration * 0.5
    events = sorted(
        [(t, "kill") for t in kill_times] + ([(restart_at, "restart")] if restart else [])
    )
    for moment, kind in events:
        time.sleep(max(0.0, moment - time.monotonic()))
        if time.monotonic() >= deadline:
            break
        with faults.window(kind):
            if kind == "kill":
                with admin.connect() as conn:
                    killed = conn.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = :name AND pid <> pg_backend_pid()"
                        ),
                        {"name": name},
                    ).scalar()
                print(f"  fault: killed {killed} PostgreSQL connections", flush=True)
            else:
                admin.dispose()
                cluster.restart()
                print("  fault: PostgreSQL restarted", flush=True)
    admin.dispose()


# ---------------------------------------------------------------- checking the database


def check_database(db_url: str, clients: list[Client]) -> tuple[int, list[str]]:
    engine = create_engine(db_url)
    problems: list[str] = []
    checked = 0
    with Session(engine) as session:
        for client in clients:
            for tracked in client.tracked:
                checked += len(tracked.writes)
                problems.extend(check_tracked(session, tracked))
    engine.dispose()
    return checked, problems


def row_state(
    session: Session, tracked: Tracked, token_hint: str
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(title token, second-field token, tags) of the rows this record may refer to.

    A deleted item or post goes to the trash (``deleted_at`` set), so a trashed row counts
    as absent, as it is on every page.
    """
    if tracked.table == "items":
        if tracked.row_id is not None:
            items = [session.get(Item, tracked.row_id)]
        else:
            items = list(session.scalars(select(Item).where(Item.title.contains(token_hint))))
        return [
            (i.title.rsplit(" ", 1)[-1], (i.description or "").rsplit(" ", 1)[-1], ())
            for i in items
            if i is not None and i.deleted_at is None
        ]
    stmt = select(Post).where(Post.deleted_at.is_(None)).options(selectinload(Post.tags))
    if tracked.row_id is not None:
        posts = list(session.scalars(stmt.where(Post.id == tracked.row_id)))
    else:
        posts = list(session.scalars(stmt.where(Post.title.contains(token_hint))))
    return [
        (
            p.title.rsplit(" ", 1)[-1],
            (p.body or "").rsplit(" ", 1)[-1],
            tuple(sorted(t.name for t in p.tags)),
        )
        for p in posts
    ]


def check_tracked(session: Session, tracked: Tracked) -> list[str]:
    create = tracked.writes[0]
    label = f"{tracked.table} {tracked.row_id or create.token}"
    rows = row_state(session, tracked, create.token)
    if len(rows) > 1:
        return [f"{label}: {len(rows)} rows for one create"]
    # Allowed: the state after the last acknowledged write, or after any later unacknowledged one.
    last_acked = max((i for i, w in enumerate(tracked.writes) if w.acked), default=None)
    allowed: list[Write | None] = []
    if last_acked is None:
        allowed.append(None)  # nothing acknowledged: absent is fine
        candidates = tracked.writes
    else:
        candidates = tracked.writes[last_acked:]
    for write in candidates:
        allowed.append(None if write.kind == "delete" else write)
    if not rows:
        return [] if None in allowed else [f"{label}: acknowledged row missing"]
    title_token, other_token, tags = rows[0]
    if title_token != other_token:
        return [f"{label}: half-written row ({title_token} / {other_token})"]
    for write in allowed:
        if (
            write is not None
            and write.token == title_token
            and (tracked.table == "items" or write.tags == tags)
        ):
            return []
    return [
        f"{label}: holds {title_token} {tags}, expected one of {[w and w.token for w in allowed]}"
    ]


# ---------------------------------------------------------------- set-up and the run


def prepare_database(db_url: str, clients: int) -> None:
    url = make_url(db_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    env = {**os.environ, "DATABASE_URL": db_url}
    flask = [sys.executable, "-m", "flask", "--app", "webapp"]
    subprocess.run([*flask, "db", "upgrade"], check=True, cwd=ROOT, env=env, capture_output=True)
    from werkzeug.security import generate_password_hash

    hashed = generate_password_hash(PASSWORD, method=PASSWORD_METHOD)
    engine = create_engine(db_url)
    with Session(engine) as session:
        session.add_all(
            User(email=f"soak{n}@example.com", username=f"soak{n}", hashed_password=hashed)
            for n in range(clients)
        )
        session.commit()
    engine.dispose()


@contextmanager
def gunicorn(db_url: str, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "WEBAPP_ENV": "development",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RATELIMIT_ENABLED": "false",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--timeout",
        "30",
        "--log-level",
        "warning",
        "wsgi:app",
    ]
    log_path = Path(os.environ.get("SOAK_LOG", ROOT / "instance" / "soak-gunicorn.log"))
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-restart", action="store_true", help="skip the PostgreSQL restart")
    args = parser.parse_args(argv)
    # A server of the soak's own: the run restarts it, and nothing else on the machine (other
    # test databases) is disturbed.
    cluster = PrivateCluster("webapp_soak")
    cluster.start()
    try:
        return soak(args, cluster)
    finally:
        cluster.remove()


def soak(args: argparse.Namespace, cluster: PrivateCluster) -> int:
    db_url = cluster.url
    print(
        f"soak: {args.clients} clients, {args.duration:.0f} s, gunicorn {args.workers} workers, "
        f"PostgreSQL on port {cluster.port}"
    )
    prepare_database(db_url, args.clients)
    port = free_port()
    stats, faults = Stats(), FaultLog()
    with gunicorn(db_url, port, args.workers):
        run_started = time.monotonic()
        deadline = run_started + args.duration
        clients = [Client(n, port, deadline, stats, seed=n) for n in range(args.clients)]
        for client in clients:
            client.start()
        injector = threading.Thread(
            target=inject_faults,
            args=(cluster, deadline, args.duration, faults, not args.no_restart),
            daemon=True,
        )
        injector.start()
        for client in clients:
            client.join(timeout=args.duration + 60)
        injector.join(timeout=60)

    checked, problems = check_database(db_url, clients)
    total = sum(stats.statuses.values())
    outside = [
        (round(sent - run_started, 2), round(answered - run_started, 2), status, path)
        for sent, answered, status, path in stats.bad
        if not faults.covers(sent, answered)
    ]
    server_errors = stats.statuses.get(500, 0)
    print()
    print(f"requests        {total} in {args.duration:.0f} s ({total / args.duration:.0f}/s)")
    print("statuses        " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.statuses.items())))
    if stats.errors:
        print("transport errors " + ", ".join(f"{k}: {v}" for k, v in stats.errors.items()))
    print(
        "latency         p50 {:.1f} ms, p95 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms".format(
            *(1000 * percentile(stats.latencies, f) for f in (0.5, 0.95, 0.99, 1.0))
        )
    )
    print(
        "faults          "
        + ", ".join(
            f"{label} {start - run_started:.1f}-{end - run_started:.1f} s"
            for start, end, label in faults.windows
        )
    )
    print(f"writes checked  {checked} ({sum(len(c.tracked) for c in clients)} rows)")
    failures = []
    if server_errors:
        failures.append(f"{server_errors} responses were 500")
    if outside:
        failures.append(f"{len(outside)} failures outside fault windows: {outside[:5]}")
    failures.extend(problems[:20])
    if len(problems) > 20:
        failures.append(f"... and {len(problems) - 20} more database problems")
    if not any(label == "restart" for _, _, label in faults.windows) and not args.no_restart:
        failures.append("PostgreSQL was never restarted (run too short?)")
    if failures:
        print("FAILED")
        for failure in failures:
            print("  - " + failure)
        return 1
    print(f"OK: zero 500s, 503s only inside fault windows, {checked} writes verified")
    print(f"soak: {checked} passed, 0 failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
