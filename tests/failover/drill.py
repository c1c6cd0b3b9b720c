"""Failover drill: writes through gunicorn while the primary dies and its standby is promoted.

    python -m tests.failover.drill                      # both modes, as `make failover-drill`
    python -m tests.failover.drill --mode sync --before 5 --after 5

Per mode: a private primary (``wal_log_hints`` on and ``wal_keep_size``, for ``pg_rewind``)
and one streaming
standby named in its ``primary_conninfo``; with ``--mode sync`` the primary's
``synchronous_standby_names`` names it. gunicorn serves the app on the multi-host URL
``postgresql+psycopg2://postgres@/db?host=A&host=B&target_session_attrs=read-write``.
Clients, each signed in, create items with unique titles and record every one the app
acknowledged (a redirect to the new item). Then:

1. the standby's link breaks for ``--cut`` seconds (the primary refuses replication in
   ``pg_hba.conf`` and ends its WAL sender; the standby retries only every
   ``wal_retrieve_retry_interval``, here a minute) while the
   writes go on: with synchronous replication they wait, with asynchronous they are
   acknowledged and exist on the primary alone;
2. the primary is killed (``pg_ctl stop -m immediate``: a crash, no WAL sent at shutdown);
3. after ``--detect`` seconds (what a monitor takes to notice) the standby is promoted
   (``pg_ctl promote``), and the writes go on for ``--after`` seconds;
4. every acknowledged title is looked up on the new primary: lost, doubled;
5. the old primary is re-attached as a standby of the new one (``pg_rewind -R``) and must
   replay the new primary's writes.

Exits non-zero on any 5xx other than 503, a 503 without ``Retry-After``, a transport error,
no write after the promotion within ``RECOVERY_LIMIT`` seconds, a doubled write, a write the
old primary does not replay once re-attached, or (sync mode) any lost acknowledged write.
"""

from __future__ import annotations

import argparse
import os
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

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.pgcluster import PrivateCluster, free_port, postgres_bin, replayed
from tests.soak.http import Browser, Result, hidden_fields
from webapp.models import User
from webapp.models.user import PASSWORD_METHOD

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "webapp_drill"
STANDBY_NAME = "drill_standby"  # application_name in the standby's primary_conninfo
PASSWORD = "drill-password-1"
TITLE_PREFIX = "Drill"
RECOVERY_LIMIT = 10.0  # seconds from the promotion to the first acknowledged write


# ---------------------------------------------------------------- what clients record


@dataclass
class Attempt:
    title: str  # "" for a read
    sent: float  # time.monotonic()
    answered: float
    status: int  # 0: transport error
    retry_after: str | None = None
    acked: bool = False


@dataclass
class Timeline:
    started: float = 0.0
    cut: float | None = None
    stopped: float = 0.0
    promoted: float = 0.0


class Writer(threading.Thread):
    """One signed-in user creating items with unique titles (and now and then a list read)."""

    def __init__(self, number: int, port: int, mode: str, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{number}", daemon=True)
        self.number = number
        self.browser = Browser("127.0.0.1", port, timeout=30.0)
        self.mode = mode
        self.stop_event = stop
        self.attempts: list[Attempt] = []
        self.errors: Counter[str] = Counter()
        self.fields: dict[str, str] | None = None

    def prepare(self) -> None:
        """Sign in and fetch the item form's CSRF token (it stays valid: one per session)."""
        page = self.browser.get("/auth/login")
        form = {**hidden_fields(page.body), "login": f"drill{self.number}", "password": PASSWORD}
        signed_in = self.browser.post("/auth/login", form)
        if signed_in.status != 302:
            raise RuntimeError(f"drill{self.number} could not sign in: {signed_in.status}")
        page = self.browser.get("/items/new")
        if page.status != 200:
            raise RuntimeError(f"drill{self.number}: /items/new answered {page.status}")
        self.fields = hidden_fields(page.body)

    def call(self, method: str, path: str, title: str, form: dict[str, str] | None) -> Attempt:
        sent = time.monotonic()
        try:
            result: Result | None = self.browser.request(method, path, form)
        except Exception as error:  # a transport failure is recorded, never raised
            self.errors[type(error).__name__] += 1
            result = None
        attempt = Attempt(title, sent, time.monotonic(), result.status if result else 0)
        if result is not None:
            attempt.retry_after = result.headers.get("Retry-After")
            attempt.acked = bool(title) and result.status == 302 and "/items/" in result.location
        self.attempts.append(attempt)
        return attempt

    def run(self) -> None:
        assert self.fields is not None
        sequence = 0
        while not self.stop_event.is_set():
            sequence += 1
            if sequence % 5 == 0:
                attempt = self.call("GET", "/items/", "", None)
            else:
                title = f"{TITLE_PREFIX} {self.mode} {self.number}-{sequence}"
                form = {**self.fields, "title": title, "description": "failover drill"}
                attempt = self.call("POST", "/items/new", title, form)
            if attempt.status not in (200, 302):
                time.sleep(0.05)  # a real browser would wait Retry-After; the drill measures
        self.browser.close()


# ---------------------------------------------------------------- the report


@dataclass
class DrillReport:
    mode: str
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    without_retry_after: int = 0  # 503s that did not say when to come back
    window: tuple[float, float] | None = None  # first and last 503 answered, from the stop
    cut_to_stop: float = 0.0
    stop_to_promote: float = 0.0
    stop_to_first_write: float | None = None  # first acknowledged write sent after the stop
    promote_to_first_write: float | None = None
    acked: int = 0
    acked_during_cut: int = 0
    found: int = 0  # acknowledged titles found on the new primary (once or more)
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    unacked_present: int = 0  # sent, not acknowledged (503, cut off), committed all the same
    unacked: int = 0
    rejoined: str = ""  # how the old primary came back as a standby, or why not
    problems: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        """5xx answers other than 503 (the drill allows none)."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    def check(self) -> None:
        if self.server_errors:
            self.problems.append(f"{self.server_errors} answers were 5xx other than 503")
        if self.without_retry_after:
            self.problems.append(f"{self.without_retry_after} 503s without Retry-After")
        if self.transport_errors:
            self.problems.append(f"transport errors: {dict(self.transport_errors)}")
        if self.promote_to_first_write is None or self.promote_to_first_write > RECOVERY_LIMIT:
            self.problems.append(
                f"no acknowledged write within {RECOVERY_LIMIT:.0f} s of promotion"
            )
        if self.doubled:
            self.problems.append(f"{len(self.doubled)} writes doubled: {self.doubled[:5]}")
        if self.mode == "sync" and self.lost:
            self.problems.append(f"{len(self.lost)} acknowledged writes lost: {self.lost[:5]}")
        if not self.rejoined.startswith("yes"):
            self.problems.append(f"old primary not re-attached: {self.rejoined}")

    def text(self) -> str:
        total = sum(self.statuses.values())
        window = (
            f"{self.window[0]:+.2f} s to {self.window[1]:+.2f} s after the primary stopped"
            if self.window
            else "none"
        )

        def seconds(value: float | None) -> str:
            return f"{value:.2f} s" if value is not None else "never"

        lines = [
            f"failover drill, {self.mode}hronous replication",
            f"requests          {total} in {self.seconds:.1f} s",
            "statuses          " + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())),
            f"5xx other than 503 {self.server_errors}; 503 without Retry-After "
            f"{self.without_retry_after}; transport errors {sum(self.transport_errors.values())}",
            f"503 window        {window}",
            f"standby cut off   {self.cut_to_stop:.2f} s before the stop; promoted "
            f"{self.stop_to_promote:.2f} s after it",
            f"first write       {seconds(self.stop_to_first_write)} after the primary stopped, "
            f"{seconds(self.promote_to_first_write)} after the promotion",
            f"acknowledged      {self.acked} writes ({self.acked_during_cut} while the standby "
            f"was cut off); found {self.found}, lost {len(self.lost)}, doubled {len(self.doubled)}",
            f"unacknowledged    {self.unacked} writes, of which {self.unacked_present} committed "
            "all the same",
            f"old primary       re-attached as a standby: {self.rejoined}",
        ]
        if self.problems:
            lines.append("FAILED")
            lines.extend(f"  - {problem}" for problem in self.problems)
        else:
            lines.append("OK")
        return "\n".join(lines)


def build_report(
    mode: str, writers: list[Writer], timeline: Timeline, titles: Counter[str]
) -> DrillReport:
    attempts = [a for w in writers for a in w.attempts]
    report = DrillReport(mode, seconds=max(a.answered for a in attempts) - timeline.started)
    for writer in writers:
        report.transport_errors.update(writer.errors)
    report.statuses.update(a.status for a in attempts if a.status)
    unavailable = [a for a in attempts if a.status == 503]
    report.without_retry_after = sum(1 for a in unavailable if not a.retry_after)
    if unavailable:
        report.window = (
            min(a.answered for a in unavailable) - timeline.stopped,
            max(a.answered for a in unavailable) - timeline.stopped,
        )
    cut = timeline.cut if timeline.cut is not None else timeline.stopped
    report.cut_to_stop = timeline.stopped - cut
    report.stop_to_promote = timeline.promoted - timeline.stopped
    after_stop = [a.answered for a in attempts if a.acked and a.sent >= timeline.stopped]
    if after_stop:
        report.stop_to_first_write = min(after_stop) - timeline.stopped
        report.promote_to_first_write = min(after_stop) - timeline.promoted
    writes = [a for a in attempts if a.title]
    acked = [a for a in writes if a.acked]
    report.acked = len(acked)
    report.acked_during_cut = sum(
        1 for a in acked if cut <= a.answered and a.sent < timeline.stopped
    )
    report.found = sum(1 for a in acked if titles[a.title])
    report.lost = [a.title for a in acked if not titles[a.title]]
    report.doubled = sorted(t for t, n in titles.items() if n > 1)
    report.unacked = len(writes) - len(acked)
    report.unacked_present = sum(1 for a in writes if not a.acked and titles[a.title])
    return report


# ---------------------------------------------------------------- servers


def multi_host_url(*servers: PrivateCluster) -> str:
    """SQLAlchemy's multi-host form for psycopg2: libpq tries each host in turn and keeps
    the first that accepts writes; ``connect_timeout`` bounds each attempt."""
    hosts = "&".join(f"host={server.address}" for server in servers)
    return (
        f"postgresql+psycopg2://postgres@/{DATABASE}?{hosts}"
        "&target_session_attrs=read-write&connect_timeout=2"
    )


def prepare_primary(primary: PrivateCluster, clients: int) -> None:
    primary.start({"wal_log_hints": "on", "wal_keep_size": "256MB"})
    primary.create_database()
    env = {**os.environ, "DATABASE_URL": primary.url, "WEBAPP_ENV": "development"}
    flask = [sys.executable, "-m", "flask", "--app", "webapp"]
    subprocess.run([*flask, "db", "upgrade"], check=True, cwd=ROOT, env=env, capture_output=True)
    from werkzeug.security import generate_password_hash

    hashed = generate_password_hash(PASSWORD, method=PASSWORD_METHOD)
    engine = create_engine(primary.url)
    with Session(engine) as session:
        session.add_all(
            User(email=f"drill{n}@example.com", username=f"drill{n}", hashed_password=hashed)
            for n in range(clients)
        )
        session.commit()
    engine.dispose()


def replicate(primary: PrivateCluster, standby: PrivateCluster, mode: str) -> None:
    """Wait until ``standby`` streams from ``primary`` (as its synchronous standby in sync
    mode: set only now, so the set-up's writes did not wait for a standby not yet there)."""
    if mode == "sync":
        primary.sql(f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
        primary.sql("SELECT pg_reload_conf()")
    wanted = "sync" if mode == "sync" else "async"
    primary.wait_until(
        "SELECT count(*) = 1 FROM pg_stat_replication "
        f"WHERE application_name = '{STANDBY_NAME}' AND state = 'streaming' "
        f"AND sync_state = '{wanted}'",
        timeout=20,
    )


@contextmanager
def gunicorn(database_url: str, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEBAPP_ENV": "development",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RATELIMIT_ENABLED": "false",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_LOG_LEVEL": "warning",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "-c",
        "python:webapp.gunicorn_conf",
        "wsgi:app",
    ]
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"gunicorn did not start: see {log_path}") from None
                time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def titles_on(server: PrivateCluster) -> Counter[str]:
    engine = create_engine(server.url)
    try:
        with engine.connect() as conn:
            rows = conn.scalars(
                text("SELECT title FROM items WHERE title LIKE :prefix"),
                {"prefix": f"{TITLE_PREFIX} %"},
            )
            return Counter(rows)
    finally:
        engine.dispose()


def rejoin(old: PrivateCluster, new: PrivateCluster) -> str:
    """The runbook's re-attachment: ``pg_rewind -R`` the old primary from the new one, start
    it as a standby, and check it replays what the new primary wrote since the promotion."""
    try:
        # pg_rewind reads the new timeline from the control file, which a promotion updates
        # only at its next checkpoint: without one it answers "no rewind required".
        new.sql("CHECKPOINT")
        old.rewind_from(new)
        old.start()
        old.wait_until("SELECT pg_is_in_recovery()", timeout=20)
        replayed(new, old, timeout=20)
    except (subprocess.CalledProcessError, TimeoutError) as error:
        detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace").strip()
        log = old.folder / "server.log"
        tail = log.read_text(errors="replace").splitlines()[-8:] if log.exists() else []
        return f"no: {error} {detail[-300:]} | server log: " + " / ".join(tail)
    if titles_on(old) != titles_on(new):
        return "no: it does not hold what the new primary holds"
    return "yes (pg_rewind -R; it replays the new primary's writes)"


# ---------------------------------------------------------------- the run


def drill(
    mode: str,
    *,
    clients: int = 8,
    before: float = 5.0,
    cut: float = 1.0,
    detect: float = 1.0,
    after: float = 5.0,
    log: bool = True,
) -> DrillReport:
    """One drill in ``mode`` ("sync" or "async") on servers of its own; the report."""
    say = print if log else (lambda *_args, **_kw: None)
    primary = PrivateCluster(DATABASE)
    standby: PrivateCluster | None = None
    try:
        say(f"drill ({mode}): primary on port {primary.port}")
        prepare_primary(primary, clients)
        # Once cut off, the standby stays so until the primary is gone (it retries late).
        standby = primary.standby(
            {"wal_retrieve_retry_interval": "60s"}, application_name=STANDBY_NAME
        )
        replicate(primary, standby, mode)
        say(f"drill ({mode}): standby on port {standby.port}, {mode}hronous")
        port = free_port()
        timeline = Timeline()
        stop = threading.Event()
        log_path = ROOT / "instance" / f"failover-drill-{mode}.log"
        with gunicorn(multi_host_url(primary, standby), port, log_path):
            writers = [Writer(n, port, mode, stop) for n in range(clients)]
            for writer in writers:
                writer.prepare()
            timeline.started = time.monotonic()
            for writer in writers:
                writer.start()
            time.sleep(before)
            if cut > 0:
                primary.cut_off_standbys()
                timeline.cut = time.monotonic()  # from now on nothing reaches the standby
                say(f"drill ({mode}): standby cut off for {cut:.1f} s")
                time.sleep(cut)
            primary.stop("immediate")
            timeline.stopped = time.monotonic()  # down: nothing sent from now on reaches it
            say(f"drill ({mode}): primary stopped (immediate)")
            time.sleep(detect)
            timeline.promoted = time.monotonic()  # asked for: pg_ctl -w returns a poll later
            standby.promote()
            say(f"drill ({mode}): standby promoted")
            time.sleep(after)
            stop.set()
            for writer in writers:
                writer.join(timeout=60)
        report = build_report(mode, writers, timeline, titles_on(standby))
        report.rejoined = rejoin(primary, standby)
        report.check()
        return report
    finally:
        if standby is not None:
            standby.remove()
        primary.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("sync", "async", "both"), default="both")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load first")
    parser.add_argument("--cut", type=float, default=1.0, help="seconds the standby is cut off")
    parser.add_argument("--detect", type=float, default=1.0, help="seconds to promotion")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after it")
    args = parser.parse_args(argv)
    try:
        postgres_bin()
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from error
    modes = ("sync", "async") if args.mode == "both" else (args.mode,)
    failed = False
    for mode in modes:
        report = drill(
            mode,
            clients=args.clients,
            before=args.before,
            cut=args.cut,
            detect=args.detect,
            after=args.after,
        )
        print()
        print(report.text())
        print()
        failed = failed or bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
