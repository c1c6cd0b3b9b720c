"""``make online-migration``: a migration at the benchmark's size while clients use the site.

    python -m tests.online_migration.run            # the safe revision (the rules' way)
    python -m tests.online_migration.run --naive    # the same change, written the naive way
    python -m tests.online_migration.run --both     # one after the other, reports side by side

1. The database is the benchmark's (``BENCH_DATABASE_URL``, default ``webapp_bench``): migrated,
   seeded once with its code (1,000,000 items), vacuumed (tests/bench/bench.py).
2. Two gunicorn instances of this tree serve it (the project's settings, 2 workers each).
3. Clients (threads, each a seeded user with its own cookies, alternating between the two
   instances) sign in through the real form, then read (their items list, an item) and write
   (edit one of their items, add one), and sign in again every so often.
4. After a warm-up and a "before" window, a demonstration revision kept out of the real chain
   (tests/online_migration/safe or naive, applied through Alembic's version locations on top
   of the real head) adds ``items.title_key``, fills it for every item and indexes it; the
   "during" window is the migration's run. It is then undone (not measured) and the table
   vacuumed, so the database is the benchmark's again.
5. Measured: requests and statuses per window, p50/p99 of all requests and of item writes,
   the migration's duration, /readyz of both instances (polled; the old code must stay ready),
   and lock waits: every 50 ms ``pg_locks`` is read for the instances' backends waiting on a
   lock (``now() - waitstart``); the longest seen is the "longest lock wait" (sampled, so up
   to 50 ms short). The slowest item write as the clients timed it is given beside it.

Targets (exit status 1 when the safe revision misses one): no 5xx, no client waiting on a lock
for 1 s or more.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from tests.bench.bench import DEFAULT_DATABASE_URL, Server, gunicorn, prepare_database
from tests.migration_lint import alembic_config
from tests.soak.http import Browser, Result, hidden_fields
from webapp import create_app
from webapp.cli.seed import DEMO_PASSWORD
from webapp.config import normalise_database_url
from webapp.db.migrations import code_head
from webapp.models import Item, User

HERE = Path(__file__).resolve().parent
VARIANTS = {"safe": "demo_safe", "naive": "demo_naive"}
MIGRATION_APP_NAME = "online-migration"
LOCK_TARGET = 1.0
SAMPLE_EVERY = 0.05
WARM_UP = 5.0


# ---------------------------------------------------------------------------- measuring


@dataclass
class Request:
    started: float
    seconds: float
    status: int  # 0: no answer (connection error or client timeout)
    kind: str  # "read", "write" (an item written), "sign-in"


@dataclass
class Record:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Request] = field(default_factory=list)
    readyz: list[tuple[float, str, int]] = field(default_factory=list)
    lock_waits: list[tuple[float, float, str]] = field(default_factory=list)  # at, s, query

    def add(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)


class Client(threading.Thread):
    def __init__(
        self, login: str, item_ids: list[int], server: Server, record: Record, stop: threading.Event
    ) -> None:
        super().__init__(name=f"client-{login}", daemon=True)
        self.login, self.item_ids, self.server = login, item_ids, server
        self.record, self.stop = record, stop
        self.rng = random.Random(login)
        self.browser = Browser("127.0.0.1", server.port, timeout=300)

    def call(self, method: str, path: str, kind: str, form: dict[str, str] | None = None) -> Result:
        started = time.monotonic()
        try:
            result = self.browser.request(method, path, form)
        except Exception:  # any transport failure is counted, never raised
            self.record.add(Request(started, time.monotonic() - started, 0, kind))
            return Result(0, "", "", 0.0)
        self.record.add(Request(started, result.seconds, result.status, kind))
        return result

    def sign_in(self) -> bool:
        self.browser.close()
        self.browser = Browser("127.0.0.1", self.server.port, timeout=300)
        page = self.call("GET", "/auth/login", "sign-in")
        if page.status != 200:
            return False
        form = {**hidden_fields(page.body), "login": self.login, "password": DEMO_PASSWORD}
        return self.call("POST", "/auth/login", "sign-in", form).status == 302

    def run(self) -> None:
        signed_in, steps = False, 0
        while not self.stop.is_set():
            if not signed_in or steps % 40 == 39:
                signed_in = self.sign_in()
                if not signed_in:
                    time.sleep(0.2)
                steps += 1
                continue
            steps += 1
            roll = self.rng.random()
            item = self.rng.choice(self.item_ids)
            if roll < 0.4:
                self.call("GET", "/items/", "read")
            elif roll < 0.6:
                self.call("GET", f"/items/{item}", "read")
            elif roll < 0.9:
                fields = hidden_fields(self.call("GET", f"/items/{item}/edit", "read").body)
                form = {**fields, "title": f"Edited {self.rng.randrange(10**6)}"}
                self.call("POST", f"/items/{item}/edit", "write", form)
            else:
                fields = hidden_fields(self.call("GET", "/items/new", "read").body)
                form = {**fields, "title": f"New {self.rng.randrange(10**6)}"}
                self.call("POST", "/items/new", "write", form)
        self.browser.close()


def poll_readyz(servers: list[Server], record: Record, stop: threading.Event) -> None:
    browsers = {s.name: Browser("127.0.0.1", s.port, timeout=30) for s in servers}
    while not stop.wait(0.5):
        for name, browser in browsers.items():
            try:
                status = browser.get("/readyz").status
            except Exception:
                status = 0
            record.readyz.append((time.monotonic(), name, status))


def sample_lock_waits(engine: Engine, record: Record, stop: threading.Event) -> None:
    """The instances' backends waiting on a lock, every SAMPLE_EVERY seconds."""
    query = text(
        "SELECT EXTRACT(EPOCH FROM now() - coalesce(l.waitstart, now())), left(a.query, 80) "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND a.datname = current_database() "
        "AND a.backend_type = 'client backend' AND a.application_name <> :migration "
        "AND a.pid <> pg_backend_pid()"
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while not stop.wait(SAMPLE_EVERY):
            now = time.monotonic()
            for seconds, statement in conn.execute(query, {"migration": MIGRATION_APP_NAME}):
                record.lock_waits.append((now, float(seconds), " ".join(statement.split())))


# ---------------------------------------------------------------------------- the run


@dataclass
class Window:
    name: str
    start: float
    end: float


@dataclass
class Outcome:
    variant: str
    settings: str
    windows: list[Window]
    record: Record
    migration_seconds: float
    migration_error: str | None
    clients: int


def pick_clients(engine: Engine, count: int) -> list[tuple[str, list[int]]]:
    """Seeded users with at least five items each, and five of their items."""
    with Session(engine) as session:
        owners = session.execute(
            select(Item.owner_id)
            .where(Item.owner_id.in_(select(User.id).order_by(User.id).limit(2000)))
            .group_by(Item.owner_id)
            .having(func.count() >= 5)
            .order_by(Item.owner_id)
            .limit(count)
        ).scalars()
        clients = []
        for owner in owners:
            username = session.get_one(User, owner).username
            items = session.scalars(
                select(Item.id).where(Item.owner_id == owner).order_by(Item.id).limit(5)
            )
            clients.append((username, list(items)))
    if len(clients) < count:
        raise SystemExit(f"only {len(clients)} seeded users with items; the bench seeds more")
    return clients


def migration_app(url: str, statement_timeout: float | None) -> Flask:
    target = make_url(url).update_query_dict({"application_name": MIGRATION_APP_NAME})
    config: dict[str, object] = {
        "SQLALCHEMY_DATABASE_URI": target.render_as_string(hide_password=False),
        "SECRET_KEY": "online-migration",
        "SITE_URL": "http://127.0.0.1",
    }
    if statement_timeout is not None:
        config["MIGRATION_STATEMENT_TIMEOUT"] = statement_timeout
    return create_app(config)


def demo_applied(engine: Engine) -> str | None:
    with engine.connect() as conn:
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    return version if version in VARIANTS.values() else None


def undo_demo(url: str, engine: Engine) -> None:
    """Take the demonstration revision off again and vacuum what it left behind."""
    applied = demo_applied(engine)
    if applied is not None:
        variant = next(v for v, r in VARIANTS.items() if r == applied)
        app = migration_app(url, None)
        with app.app_context():
            command.downgrade(alembic_config(app, [HERE / variant]), code_head())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) items"))


def run_variant(args: argparse.Namespace, variant: str, url: str, engine: Engine) -> Outcome:
    statement_timeout = 0.0 if variant == "naive" else None
    settings = (
        "lock_timeout 5 s, statement_timeout off (one UPDATE of every row would pass 60 s)"
        if variant == "naive"
        else f"lock_timeout 5 s, statement_timeout 60 s, batches of {args.batch_size} ids"
    )
    os.environ["ONLINE_MIGRATION_BATCH_SIZE"] = str(args.batch_size)
    undo_demo(url, engine)
    record, stop = Record(), threading.Event()
    clients = pick_clients(engine, args.clients)
    windows: list[Window] = []
    with ExitStack() as stack:
        servers = [
            stack.enter_context(gunicorn(f"online-{name}", "wsgi:app", url)) for name in "ab"
        ]
        threads = [
            Client(login, items, servers[n % 2], record, stop)
            for n, (login, items) in enumerate(clients)
        ]
        threads.append(
            threading.Thread(target=poll_readyz, args=(servers, record, stop), daemon=True)
        )
        threads.append(
            threading.Thread(target=sample_lock_waits, args=(engine, record, stop), daemon=True)
        )
        for thread in threads:
            thread.start()
        time.sleep(WARM_UP)
        start = time.monotonic()
        time.sleep(args.before)
        windows.append(Window("before", start, time.monotonic()))
        print(f"[{variant}] migrating ({settings})", flush=True)
        app = migration_app(url, statement_timeout)
        error = None
        start = time.monotonic()
        try:
            with app.app_context():
                config = alembic_config(app, [HERE / variant])
                command.upgrade(config, VARIANTS[variant])
        except Exception as failure:
            error = f"{type(failure).__name__}: {str(failure).splitlines()[0]}"
        migration_seconds = time.monotonic() - start
        windows.append(Window("during", start, time.monotonic()))
        start = time.monotonic()
        time.sleep(args.after)
        windows.append(Window("after", start, time.monotonic()))
        stop.set()
        for thread in threads:
            thread.join(timeout=330)
    print(f"[{variant}] undoing the demonstration revision and vacuuming items", flush=True)
    undo_demo(url, engine)
    return Outcome(variant, settings, windows, record, migration_seconds, error, len(clients))


# ---------------------------------------------------------------------------- the report


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def report(outcome: Outcome) -> bool:
    record = outcome.record
    lines = [
        f"== online migration: {outcome.variant} revision ({VARIANTS[outcome.variant]}) ==",
        f"settings: {outcome.settings}",
        f"clients: {outcome.clients} (sign in, read and write items) on 2 gunicorn instances",
        f"migration: {outcome.migration_seconds:,.1f} s"
        + (f", FAILED: {outcome.migration_error}" if outcome.migration_error else ", completed"),
        "",
        f"{'window':<8}{'secs':>6}{'requests':>10}{'req/s':>8}{'5xx':>6}{'no answer':>10}"
        f"{'p50':>9}{'p99':>10}{'write p99':>11}{'max write':>11}  statuses",
    ]
    total_5xx = 0
    for window in outcome.windows:
        inside = [r for r in record.requests if window.start <= r.started < window.end]
        writes = [r.seconds for r in inside if r.kind == "write"]
        statuses = Counter(r.status for r in inside)
        server_errors = sum(n for s, n in statuses.items() if s >= 500)
        total_5xx += server_errors
        seconds = window.end - window.start
        lines.append(
            f"{window.name:<8}{seconds:>6.1f}{len(inside):>10,}{len(inside) / seconds:>8.1f}"
            f"{server_errors:>6}{statuses.get(0, 0):>10}"
            f"{ms(percentile([r.seconds for r in inside], 0.5)):>9}"
            f"{ms(percentile([r.seconds for r in inside], 0.99)):>10}"
            f"{ms(percentile(writes, 0.99)):>11}{ms(max(writes, default=0.0)):>11}  "
            + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        )
    during = next(w for w in outcome.windows if w.name == "during")
    waits = [w for w in record.lock_waits if during.start <= w[0] <= during.end]
    longest = max(waits, default=(0.0, 0.0, ""), key=lambda w: w[1])
    writes_during = [
        r.seconds
        for r in record.requests
        if r.kind == "write" and during.start <= r.started < during.end
    ]
    readyz = Counter(status for _at, _name, status in record.readyz)
    lines += [
        "",
        f"longest lock wait of a client backend (pg_locks sampled every "
        f"{SAMPLE_EVERY * 1000:.0f} ms during the migration): {longest[1]:.2f} s"
        + (f" on: {longest[2]}" if longest[2] else ""),
        f"client backends seen waiting on a lock: {len(waits)} samples",
        f"slowest item write during the migration, as the clients timed it: "
        f"{max(writes_during, default=0.0):.2f} s",
        "/readyz of the two instances, polled every 0.5 s (their code's head is "
        f"{code_head()}): " + ", ".join(f"{s}: {n}" for s, n in sorted(readyz.items())),
    ]
    met = total_5xx == 0 and longest[1] < LOCK_TARGET and outcome.migration_error is None
    lines.append(
        f"targets (no 5xx, no lock wait >= {LOCK_TARGET:.0f} s, migration done): "
        + ("MET" if met else "MISSED")
    )
    print("\n".join(lines) + "\n", flush=True)
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--naive", action="store_true", help="the naive revision only")
    which.add_argument("--both", action="store_true", help="safe, then naive")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=20.0, help="seconds measured before")
    parser.add_argument("--after", type=float, default=5.0, help="seconds measured after")
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args(argv)
    url = normalise_database_url(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    engine = create_engine(url)
    prepare_database(url, engine)
    variants = ["safe", "naive"] if args.both else ["naive"] if args.naive else ["safe"]
    outcomes = [run_variant(args, variant, url, engine) for variant in variants]
    print()
    results = {outcome.variant: report(outcome) for outcome in outcomes}
    engine.dispose()
    return 0 if results.get("safe", True) else 1


if __name__ == "__main__":
    sys.exit(main())
