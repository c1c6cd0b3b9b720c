"""``make bench``: every page's throughput beside a raw-driver floor, measured in one run.

1. The database (``BENCH_DATABASE_URL``, default the ``webapp_bench`` database on the local
   PostgreSQL) is migrated, seeded once at the benchmark's size (100,000 users, 1,000,000
   items, 100,000 posts, 1,000 tags, 300,000 post-tag links) and reused while its row counts
   say it holds that data set; a never-vacuumed table is vacuumed and analysed.
2. The app is served by gunicorn (the project's settings, 2 workers) on 127.0.0.1, and so is
   the floor (``tests/bench/floor.py``: one raw psycopg2 query, 50 rows, one template).
3. An admin and a seeded user sign in through the real sign-in form.
4. ``wrk`` measures every page for 10 s after a warm-up, in three interleaved rounds:
   (a) the floor, (b)-(h) the app's pages. The table gives requests/s, p50, p99 and
   non-2xx answers per page (medians over the rounds), each page's ratio to the floor, and
   the resident memory of the app's workers after the run.
5. Rows (i) and (j): the public feed on a private primary (seeded smaller) served without and
   with its streaming standby as the replica: the share of reads on the replica and the
   routing's cost (``--no-replica`` skips them).

Exit status 0 when every target holds (every page >= 1/3 of the floor, the deep page >= 0.8
of page 1, no non-2xx, workers under 150 MB, (j) reads on the replica at >= 0.95 of (i)), 1
when one does not, 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tests.soak.http import Browser, hidden_fields
from webapp.cli.seed import DEMO_PASSWORD, SeedSizes
from webapp.config import normalise_database_url
from webapp.models import Item, Post, Tag, User, post_tags
from webapp.repositories.keyset import Cursor

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/webapp_bench"
SIZES = SeedSizes(users=100_000, items=1_000_000, posts=100_000, tags=1_000, post_tags=300_000)
TABLES = {"users": User, "items": Item, "posts": Post, "tags": Tag, "post_tags": post_tags}
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_USERNAME = "bench-admin"
ROWS_PER_PAGE = 50  # the floor's rows, and the admin lists' page size in the benchmark
DEEP_ROWS_BEFORE = 500_000  # page (e) shows rows 500,001-500,050
WORKERS = 2
TARGET_RATIO = 1 / 3
TARGET_DEEP_RATIO = 0.8
TARGET_WORKER_MB = 150.0
# Pages (i) and (j): the public feed on a private primary, without and with its streaming
# standby as the replica (a standby of the shared server's webapp_bench cannot be made
# without touching that server). The routing may cost at most 5% of the feed's requests/s.
REPLICA_DATABASE = "webapp_bench_replica"
REPLICA_SIZES = SeedSizes(users=10_000, items=0, posts=20_000, tags=200, post_tags=60_000)
TARGET_ROUTING_RATIO = 0.95


class BenchError(RuntimeError):
    """The benchmark cannot run (missing tool, a database holding other data, ...)."""


# ------------------------------------------------------------------------ the database


def ensure_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            )
            if not found:
                print(f"Creating database {target.database}")
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def flask_command(url: str, *args: str, quiet: bool = False) -> None:
    env = {**os.environ, "DATABASE_URL": url, "WEBAPP_ENV": "development"}
    command = [sys.executable, "-m", "flask", "--app", "webapp", *args]
    output = subprocess.DEVNULL if quiet else None
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=output)


def row_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in TABLES.items()
        }


def prepare_database(url: str, engine: Engine) -> None:
    """Migrate; seed once at the benchmark's size; vacuum and analyse what never was."""
    ensure_database(url)
    flask_command(url, "db", "upgrade", quiet=True)
    wanted = {name: getattr(SIZES, name) for name in TABLES}
    counts = row_counts(engine)
    if all(counts[name] >= wanted[name] for name in TABLES):
        print("Database already seeded: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    elif counts["users"] <= 1 and not any(counts[t] for t in ("items", "posts", "tags")):
        print("Seeding the benchmark's data set (a few minutes)")
        flask_command(
            url,
            "seed",
            *("--users", str(SIZES.users), "--items", str(SIZES.items)),
            *("--posts", str(SIZES.posts), "--tags", str(SIZES.tags)),
            *("--post-tags", str(SIZES.post_tags)),
        )
    else:
        raise BenchError(
            f"{make_url(url).database} holds another data set ({counts}); drop it or set "
            "BENCH_DATABASE_URL to another database."
        )
    vacuum_if_needed(engine)


def vacuum_if_needed(engine: Engine) -> None:
    """VACUUM ANALYZE the tables never vacuumed or analysed (autovacuum may be off).

    Planner statistics and row estimates come from ANALYZE, the visibility map that lets
    index-only scans skip the table from VACUUM.
    """
    names = [*TABLES, "audit_events"]
    with engine.connect() as conn:
        stale = conn.scalars(
            text(
                "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:names) AND ("
                "(last_analyze IS NULL AND last_autoanalyze IS NULL) OR "
                "(last_vacuum IS NULL AND last_autovacuum IS NULL))"
            ),
            {"names": names},
        ).all()
    if not stale:
        return
    print(f"VACUUM ANALYZE {', '.join(stale)}")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in stale:
            conn.execute(text(f'VACUUM (ANALYZE) "{name}"'))


def ensure_admin(url: str, engine: Engine) -> None:
    with Session(engine) as session:
        exists = session.scalar(select(User.id).where(User.username == ADMIN_USERNAME))
    if exists is None:
        flask_command(
            url,
            "create-admin",
            *("--email", ADMIN_EMAIL, "--username", ADMIN_USERNAME),
            *("--password", DEMO_PASSWORD),
        )


@dataclass(frozen=True)
class Targets:
    """The rows the measured pages show, picked from the data set."""

    member: str  # a seeded user with items: signs in for /items/
    member_items: int
    search: str  # the text of the admin user search (one user's username)
    post_id: int  # a post with tags
    deep_cursor: str  # ?after= for the items list's rows 500,001-500,050
    deep_ids: list[int]  # the ids those rows have


def pick_targets(engine: Engine) -> Targets:
    with Session(engine) as session:
        owners = (
            select(Item.owner_id, func.count().label("n"))
            .where(Item.owner_id.in_(select(User.id).order_by(User.id).limit(200)))
            .group_by(Item.owner_id)
            .having(func.count() >= 10)
            .order_by(Item.owner_id)
            .limit(1)
        )
        owner_id, owned = session.execute(owners).one()
        member = session.get_one(User, owner_id)
        post_id = session.scalar(
            select(post_tags.c.post_id)
            .group_by(post_tags.c.post_id)
            .having(func.count() >= 3)
            .order_by(post_tags.c.post_id)
            .limit(1)
        )
        if post_id is None:
            raise BenchError("no post with three tags in the data set")
        # The items list's default order; its "next" link after row 500,000 carries that
        # row's sort value and id.
        newest_first = (Item.created_at.desc(), Item.id.desc())
        boundary = session.execute(
            select(Item.created_at, Item.id)
            .order_by(*newest_first)
            .offset(DEEP_ROWS_BEFORE - 1)
            .limit(1)
        ).one_or_none()
        if boundary is None:
            raise BenchError("fewer items than the deep page needs")
        cursor = Cursor(boundary.created_at, boundary.id).encode()
        deep_ids = list(
            session.scalars(
                select(Item.id)
                .order_by(*newest_first)
                .offset(DEEP_ROWS_BEFORE)
                .limit(ROWS_PER_PAGE)
            )
        )
        return Targets(
            member=member.username,
            member_items=int(owned),
            search=member.username,
            post_id=int(post_id),
            deep_cursor=cursor,
            deep_ids=deep_ids,
        )


# ------------------------------------------------------------------------ the servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def log_size(self) -> int:
        return self.log_path.stat().st_size


@contextmanager
def replica_pair() -> Iterator[tuple[str, str]]:
    """URLs of a private primary, seeded with a feed's worth of posts, and of its streaming
    standby (``pg_basebackup -R``), both on free ports in temporary folders."""
    from tests.pgcluster import PrivateCluster, replayed

    primary = PrivateCluster(REPLICA_DATABASE)
    standby = None
    try:
        print("Starting a private primary and standby for the replica rows (i), (j)")
        primary.start()
        primary.create_database()
        flask_command(primary.url, "db", "upgrade", quiet=True)
        sizes = REPLICA_SIZES
        flask_command(
            primary.url,
            "seed",
            *("--users", str(sizes.users), "--items", str(sizes.items)),
            *("--posts", str(sizes.posts), "--tags", str(sizes.tags)),
            *("--post-tags", str(sizes.post_tags)),
            quiet=True,
        )
        engine = create_engine(primary.url)
        vacuum_if_needed(engine)
        engine.dispose()
        standby = primary.standby()
        replayed(primary, standby, timeout=60)
        yield primary.url, standby.url
    finally:
        if standby is not None:
            standby.remove()
        primary.remove()


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """``ref`` (a commit, branch or tag) checked out beside this tree, for ``--compare``."""
    folder = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    git = ["git", "-C", str(ROOT)]
    done = subprocess.run(
        [*git, "worktree", "add", "--detach", str(folder), ref], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BenchError(f"cannot check out {ref!r}: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], check=False)


@contextmanager
def gunicorn(
    name: str, app: str, database_url: str, root: Path = ROOT, **extra_env: str
) -> Iterator[Server]:
    """``app`` of the checkout at ``root`` served with its gunicorn settings and 2 workers;
    output to a log."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DATABASE_URL": database_url,
        "WEBAPP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "SITE_URL": f"http://127.0.0.1:{port}",
        "TRUSTED_HOSTS": "127.0.0.1",
        "RATELIMIT_ENABLED": "false",
        # The bench admin signs in with a password alone. The requirement itself costs no
        # query (a column of the user row every request loads), so the pages measure the same.
        "ADMIN_REQUIRE_TWO_FACTOR": "false",
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        # Workers are not recycled mid-run: the figures measure serving, not restarts, and
        # the memory read after the run is that of a worker that served the whole run.
        "GUNICORN_MAX_REQUESTS": "100000000",
        "GUNICORN_LOG_LEVEL": "warning",
        **extra_env,
    }
    log_path = ROOT / "instance" / f"bench-{name}.log"
    log_path.parent.mkdir(exist_ok=True)
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            # This tree's server settings for every server, the baseline's included: a
            # comparison is of the app's code, on the same server.
            [gunicorn_bin, "-c", str(ROOT / "webapp" / "gunicorn_conf.py"), app],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = Server(name, port, process, log_path)
        try:
            wait_for_port(port, process)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"gunicorn on port {port} did not start")


def sign_in(port: int, login: str) -> str:
    """Sign in through the real form; the ``Cookie`` header the session then needs."""
    browser = Browser("127.0.0.1", port)
    form = browser.get("/auth/login")
    fields = hidden_fields(form.body)
    answer = browser.post(
        "/auth/login", {**fields, "login": login, "password": DEMO_PASSWORD, "next": ""}
    )
    if answer.status != 302 or "session" not in browser.cookies:
        raise BenchError(f"signing in as {login} failed: {answer.status}")
    # Land where the sign-in leads, as a browser does: that shows (and so clears) the
    # "welcome" flash, leaving the cookie a signed-in browser then keeps sending unchanged.
    browser.get(answer.location)
    browser.close()
    return f"session={browser.cookies['session']}"


# ------------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class PageSpec:
    key: str
    label: str
    server: str  # "floor" or "app"
    path: str
    cookie: str | None = None


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    on_replica: float | None = None  # share of logged requests whose reads went to a replica


@dataclass
class PageResult:
    page: PageSpec
    rounds: list[Measurement] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(m.rps for m in self.rounds)

    @property
    def p50_ms(self) -> float:
        return statistics.median(m.p50_ms for m in self.rounds)

    @property
    def p99_ms(self) -> float:
        return statistics.median(m.p99_ms for m in self.rounds)

    @property
    def non_2xx(self) -> int:
        return sum(m.non_2xx for m in self.rounds)

    @property
    def on_replica(self) -> float:
        return statistics.median(m.on_replica or 0.0 for m in self.rounds)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing the Debian package")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*prefix, "apt-get", "install", "-y", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed and could not be installed (apt-get install wrk)")
    return found


def run_wrk(
    wrk: str, url: str, cookie: str | None, seconds: float, args: argparse.Namespace
) -> dict[str, Any]:
    command = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "report.lua"),
    ]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(
        [*command, url], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    report = next((line for line in reversed(output) if line.startswith("{")), None)
    if report is None:
        raise BenchError(f"wrk gave no report for {url}")
    result: dict[str, Any] = json.loads(report)
    return result


def app_lines(server: Server, start: int, end: int) -> list[dict[str, Any]]:
    """The app's request log lines between two offsets of its log file."""
    with server.log_path.open("rb") as log:
        log.seek(start)
        chunk = log.read(end - start)
    lines = []
    for line in chunk.splitlines():
        if line.startswith(b"{"):
            try:
                lines.append(dict(json.loads(line)))
            except ValueError:
                continue
    return lines


def app_statuses(server: Server, start: int, end: int) -> list[int]:
    """The statuses the app's request log recorded between two offsets of its log file."""
    return [int(line["status"]) for line in app_lines(server, start, end) if "status" in line]


def measure(
    wrk: str, server: Server, page: PageSpec, seconds: float, args: argparse.Namespace
) -> Measurement:
    start = server.log_size()
    report = run_wrk(wrk, f"http://127.0.0.1:{server.port}{page.path}", page.cookie, seconds, args)
    failures = sum(report[k] for k in ("connect", "read", "write", "status", "timeout"))
    on_replica = None
    if server.name != "floor":
        time.sleep(0.2)  # the last requests' log lines
        lines = app_lines(server, start, server.log_size())
        logged = [int(line["status"]) for line in lines if "status" in line]
        failures = max(failures, sum(1 for s in logged if not 200 <= s < 300))
        if lines:
            on_replica = sum(1 for line in lines if line.get("db") == "replica") / len(lines)
    seconds_run = report["duration_us"] / 1e6
    return Measurement(
        rps=report["requests"] / seconds_run,
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        non_2xx=failures,
        requests=report["requests"],
        on_replica=on_replica,
    )


def check_page(server: Server, page: PageSpec, targets: Targets) -> None:
    """One request per page before measuring: a 200 (no redirect) showing what it should."""
    browser = Browser("127.0.0.1", server.port)
    if page.cookie:
        name, _, value = page.cookie.partition("=")
        browser.cookies[name] = value
    answer = browser.get(page.path)
    browser.close()
    if answer.status != 200:
        raise BenchError(f"({page.key}) {page.path} answered {answer.status}, not 200")
    key = page.key.rstrip("'")  # a baseline's page is checked as this tree's
    rows = len(re.findall(r"<tr>", answer.body))
    if key in {"a", "b", "d", "e"} and rows < ROWS_PER_PAGE:
        raise BenchError(f"({page.key}) shows {rows} table rows, not {ROWS_PER_PAGE}")
    if key == "c" and targets.search not in answer.body:
        raise BenchError(f"(c) the search does not find {targets.search}")
    if key == "e":
        shown = [int(v) for v in re.findall(r'name="ids" value="(\d+)"', answer.body)]
        if shown != targets.deep_ids:
            raise BenchError("(e) does not show rows 500,001-500,050 of the items list")
    if key == "g" and answer.body.count('class="card item-card"') < 10:
        raise BenchError("(g) shows fewer than 10 of the member's items")


def pages(targets: Targets, floor_cookie: None, admin: str, member: str) -> list[PageSpec]:
    per_page = {"per_page": str(ROWS_PER_PAGE)}
    deep = urlencode({**per_page, "after": targets.deep_cursor})
    return [
        PageSpec("a", "floor: 50 newest users, raw psycopg2", "floor", "/", floor_cookie),
        PageSpec("b", "admin users, page 1", "app", f"/admin/users?{urlencode(per_page)}", admin),
        PageSpec(
            "c",
            "admin user search, one user",
            "app",
            f"/admin/users?{urlencode({'q': targets.search, **per_page})}",
            admin,
        ),
        PageSpec(
            "d",
            "admin items with owners, page 1",
            "app",
            f"/admin/items?{urlencode(per_page)}",
            admin,
        ),
        PageSpec("e", "admin items, rows 500,001-500,050", "app", f"/admin/items?{deep}", admin),
        PageSpec("f", "public feed with authors and tags", "app", "/posts/"),
        PageSpec("g", "signed-in user's /items/", "app", "/items/", member),
        PageSpec("h", "a post's page", "app", f"/posts/{targets.post_id}"),
        PageSpec("i", "public feed, private primary, no replica", "feed", "/posts/"),
        PageSpec("j", "public feed, same primary + 1 replica", "feed-replica", "/posts/"),
    ]


def replica_checks(results: list[PageResult]) -> list[tuple[str, bool]]:
    """Rows (i) and (j): reads on the replica, and what the routing costs."""
    by_key = {r.page.key: r for r in results}
    if "i" not in by_key or "j" not in by_key:
        return []
    alone, routed = by_key["i"], by_key["j"]
    ratio = routed.rps / alone.rps if alone.rps else 0.0
    return [
        (f"(j) reads on the replica: {routed.on_replica:.1%}", routed.on_replica >= 0.99),
        (
            f"(j) routing costs <= 5% of (i)'s req/s: {ratio:.3f} x (i), {ratio - 1:+.1%}",
            ratio >= TARGET_ROUTING_RATIO,
        ),
    ]


# ------------------------------------------------------------------------ the report


def report(results: list[PageResult], memory: list[float], args: argparse.Namespace) -> bool:
    floor = results[0].rps
    header = f"{'page':<42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'x floor':>8}"
    print()
    print(
        f"wrk -t{args.threads} -c{args.connections}, {args.duration:g} s per page, "
        f"{args.rounds} rounds interleaved (medians); gunicorn {WORKERS} workers"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        page = result.page
        ratio = result.rps / floor if floor else 0.0
        print(
            f"({page.key}) {page.label:<38} {result.rps:>8.0f} {result.p50_ms:>8.2f} "
            f"{result.p99_ms:>8.2f} {result.non_2xx:>8d} {ratio:>8.2f}"
        )
    by_key = {r.page.key: r for r in results}
    deep_ratio = by_key["e"].rps / by_key["d"].rps if by_key["d"].rps else 0.0
    # (i) and (j) serve another database: they are measured against each other, not the floor.
    worst = min((r for r in results[1:] if r.page.server == "app"), key=lambda r: r.rps)
    worst_ratio = worst.rps / floor if floor else 0.0
    failures = sum(r.non_2xx for r in results)
    peak = max(memory, default=0.0)
    print()
    print(f"app workers' resident memory after the run: {', '.join(f'{m:.0f} MB' for m in memory)}")
    checks = [
        (
            f"every page >= 1/3 of the floor (lowest: ({worst.page.key}) {worst_ratio:.2f})",
            worst_ratio >= TARGET_RATIO,
        ),
        (f"deep page (e) >= 0.8 x page 1 (d): {deep_ratio:.2f}", deep_ratio >= TARGET_DEEP_RATIO),
        (f"no non-2xx answers: {failures}", failures == 0),
        (f"worker memory < 150 MB: {peak:.0f} MB", peak < TARGET_WORKER_MB),
        *replica_checks(results),
    ]
    for label, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {label}")
    return all(ok for _, ok in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the pages beside a raw floor.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per page")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per page")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--only", default="", help="measure only these pages, e.g. 'abd'")
    parser.add_argument(
        "--no-replica", action="store_true", help="skip the replica rows (i) and (j)"
    )
    parser.add_argument(
        "--compare",
        metavar="REF",
        default="",
        help="also serve the git commit REF (same database) and measure its pages in the same "
        "rounds, to decide between two versions of the code",
    )
    args = parser.parse_args(argv)
    url = normalise_database_url(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    try:
        wrk = ensure_wrk()
        engine = create_engine(url)
        prepare_database(url, engine)
        ensure_admin(url, engine)
        targets = pick_targets(engine)
        engine.dispose()
        with ExitStack() as stack:
            app = stack.enter_context(gunicorn("app", "wsgi:app", url))
            floor = stack.enter_context(gunicorn("floor", "tests.bench.floor:app", url))
            servers = {"app": app, "floor": floor}
            admin = sign_in(app.port, ADMIN_USERNAME)
            member = sign_in(app.port, targets.member)
            measured = pages(targets, None, admin, member)
            if args.no_replica:
                measured = [p for p in measured if p.key not in "ij"]
            elif not args.only or set(args.only) & set("ij"):
                primary_url, standby_url = stack.enter_context(replica_pair())
                servers["feed"] = stack.enter_context(gunicorn("feed", "wsgi:app", primary_url))
                servers["feed-replica"] = stack.enter_context(
                    gunicorn(
                        "feed-replica", "wsgi:app", primary_url, DATABASE_REPLICA_URLS=standby_url
                    )
                )
            if args.only:
                measured = [p for p in measured if p.key == "a" or p.key in args.only]
            if args.compare:
                root = stack.enter_context(checkout(args.compare))
                base = stack.enter_context(gunicorn("base", "wsgi:app", url, root))
                servers["base"] = base
                measured = with_baseline(measured, base, targets)
            for page in measured:
                check_page(servers[page.server], page, targets)
            print(f"Warming up ({args.warmup:g} s a page)")
            for page in measured:
                server = servers[page.server]
                run_wrk(
                    wrk,
                    f"http://127.0.0.1:{server.port}{page.path}",
                    page.cookie,
                    args.warmup,
                    args,
                )
            results = [PageResult(page) for page in measured]
            for number in range(1, args.rounds + 1):
                print(f"Round {number} of {args.rounds}")
                for result in results:
                    page = result.page
                    m = measure(wrk, servers[page.server], page, args.duration, args)
                    result.rounds.append(m)
                    print(
                        f"  ({page.key}) {m.rps:8.0f} req/s  p50 {m.p50_ms:6.2f} ms  "
                        f"p99 {m.p99_ms:6.2f} ms  non-2xx {m.non_2xx}"
                    )
            memory = app.worker_rss_mb()
    except BenchError as error:
        print(f"make bench: {error}", file=sys.stderr)
        return 2
    if args.compare:
        report_comparison(results, args.compare)
    if args.only:
        report_partial(results)
        return 0
    return 0 if report([r for r in results if r.page.server != "base"], memory, args) else 1


def with_baseline(measured: list[PageSpec], base: Server, targets: Targets) -> list[PageSpec]:
    """Each app page followed by the same page of the baseline server, signed in there as the
    same person (its cookies are its own: another secret key signs them)."""
    admin = sign_in(base.port, ADMIN_USERNAME)
    member = sign_in(base.port, targets.member)
    both: list[PageSpec] = []
    for page in measured:
        both.append(page)
        if page.server == "app":
            cookie = None if page.cookie is None else member if page.key == "g" else admin
            both.append(replace(page, key=f"{page.key}'", server="base", cookie=cookie))
    return both


def report_comparison(results: list[PageResult], ref: str) -> None:
    """This tree's pages beside the same pages of ``ref``, measured in the same rounds."""
    by_key = {r.page.key: r for r in results}
    header = f"{'page':<42} {'this req/s':>10} {ref[:12] + ' req/s':>20} {'change':>8}"
    print()
    print(f"This tree beside {ref} (same database, same rounds; medians)")
    print(header)
    print("-" * len(header))
    for result in results:
        other = by_key.get(f"{result.page.key}'")
        if result.page.server != "app" or other is None:
            continue
        change = result.rps / other.rps - 1 if other.rps else 0.0
        print(
            f"({result.page.key}) {result.page.label:<38} {result.rps:>10.0f} "
            f"{other.rps:>20.0f} {change:>+8.1%}"
        )


def report_partial(results: list[PageResult]) -> None:
    floor = results[0].rps
    for result in results:
        print(f"({result.page.key}) {result.rps:8.0f} req/s  x floor {result.rps / floor:.2f}")
    for label, ok in replica_checks(results):
        print(f"  [{'met' if ok else 'MISSED'}] {label}")


if __name__ == "__main__":
    sys.exit(main())
