"""Scale-out: two gunicorn instances on one PostgreSQL and one Redis behave as one site.

Two separate gunicorn masters (two workers each) serve the app on two ports, as two machines
would behind a load balancer. The test plays the browser and the TLS-terminating proxy in
front of them (``X-Forwarded-For``/``-Proto`` with ``PROXY_FIX_HOPS=1``) and proves over real
HTTP that sessions, sign-outs and rate limits hold across both, and that writes made through
both all land in the one database.

It runs once, not once per database: it is about PostgreSQL and Redis shared by processes.
Locally a missing PostgreSQL, Redis or gunicorn skips it; with ``CI`` set that fails the run.
If nothing answers on 127.0.0.1:6379 the test starts its own ``redis-server``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any, NoReturn
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pytest
import redis
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import BASE_TEST_CONFIG, postgres_url
from tests.factories import PASSWORD, PASSWORD_HASH
from webapp import ROOT, create_app
from webapp.extensions import db
from webapp.models import AuditEvent, User, UserSession

pytestmark = pytest.mark.postgresql_only

GUNICORN = Path(sys.executable).with_name("gunicorn")
SECRET_KEY = secrets.token_urlsafe(48)  # one key shared by both instances, as by all machines
REDIS_DB = 13  # a Redis database of its own, and a key prefix of its own per run
WORKERS_PER_INSTANCE = 2
USERS = 12
START_TIMEOUT = 90
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


def unavailable(what: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"the scale-out test needs {what}, and in CI that is required", pytrace=False)
    pytest.skip(f"scale-out test: {what} is not available")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_answers(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# --- the shared services: Redis and a scratch PostgreSQL database --------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """Redis on 127.0.0.1:6379 if it answers, else a ``redis-server`` started for this test."""
    server = None
    port = 6379
    if not redis_answers(port):
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("Redis (nothing on 127.0.0.1:6379 and no redis-server to start)")
        port = free_port()
        server = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not redis_answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                unavailable(f"Redis (redis-server on port {port} did not start)")
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/{REDIS_DB}"
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def key_prefix(redis_url: str) -> Iterator[str]:
    """This run's rate-limit key prefix; its keys are removed afterwards."""
    prefix = f"scaleout-{secrets.token_hex(4)}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A scratch PostgreSQL database, migrated with ``flask db upgrade`` as ``make serve`` does."""
    base = make_url(postgres_url())
    url = base.set(database=f"{base.database}_scaleout")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    except OperationalError as error:
        admin.dispose()
        unavailable(f"PostgreSQL ({str(error.orig).strip().splitlines()[0]})")
    rendered = url.render_as_string(hide_password=False)
    upgrade = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "webapp", "db", "upgrade"],
        env={**os.environ, **production_env(rendered)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    try:
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "WEBAPP_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        # The instances are reached as 127.0.0.1:<port>; production answers no other host.
        "SITE_URL": "https://127.0.0.1",
        "TRUSTED_HOSTS": "127.0.0.1",
        **extra,
    }


@pytest.fixture(scope="module")
def database(database_url: str) -> Iterator[Engine]:
    """The test's own view of the shared database, with ``USERS`` accounts to sign in with."""
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        for n in range(USERS):
            db.session.add(
                User(
                    email=f"scale{n}@example.com",
                    username=f"scale{n}",
                    hashed_password=PASSWORD_HASH,
                )
            )
        db.session.commit()
        db.engine.dispose()
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


# --- the two instances --------------------------------------------------------------------


@dataclass
class Instance:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def __call__(self, path: str = "/") -> str:
        return self.url + path

    def log_records(self) -> list[dict[str, Any]]:
        """The request lines written so far (a line still being written is left out)."""
        text = self.stdout.read_text()
        lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        return [json.loads(line) for line in lines if line.startswith("{")]

    def logged(self, request_id_prefix: str, count: int = 1) -> list[dict[str, Any]]:
        """The lines of ``count`` requests whose id starts with the prefix, once all are written.

        A request's line is written when the server closes the response body, which is after
        the client has read the last byte, so a line can lag its response by a moment.
        """
        deadline = time.monotonic() + 10
        while True:
            found = [r for r in self.log_records() if r["request_id"].startswith(request_id_prefix)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_instance(name: str, tmp: Path, env: dict[str, str]) -> Instance:
    port = free_port()
    stdout, stderr = tmp / f"{name}.stdout", tmp / f"{name}.stderr"
    command = [
        str(GUNICORN),
        "-c",
        "python:webapp.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS_PER_INSTANCE),
        "wsgi:app",
    ]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
    return Instance(name, f"http://127.0.0.1:{port}", process, stdout, stderr)


def wait_until_ready(instance: Instance) -> None:
    """Poll ``/readyz`` (database reachable, migrations at head) as a load balancer would."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            pytest.fail(f"gunicorn {instance.name} exited:\n{instance.stderr.read_text()}")
        try:
            if Browser("127.0.0.1").get(instance("/readyz")).status == 200:
                return
        except (URLError, ConnectionError):
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn {instance.name} not ready:\n{instance.stderr.read_text()}")


@pytest.fixture(scope="module")
def instances(
    database: Engine, redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Instance, Instance]]:
    if not GUNICORN.exists():
        unavailable(f"gunicorn ({GUNICORN} is missing: make install)")
    tmp = tmp_path_factory.mktemp("scaleout")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "WEB_"))}
    env = {
        **environ,
        **production_env(
            database.url.render_as_string(hide_password=False),
            RATELIMIT_STORAGE_URI=redis_url,
            # Every sign-in limit at 10 a minute (one client, one account), so the count is easy
            # to follow in X-RateLimit-Remaining.
            RATELIMIT_LOGIN_ADDRESS="10 per minute",
            RATELIMIT_LOGIN_ACCOUNT_ADDRESS="10 per minute",
            RATELIMIT_LOGIN_ACCOUNT="10 per minute",
            RATELIMIT_KEY_PREFIX=key_prefix,
            PROXY_FIX_HOPS="1",
            DB_POOL_SIZE="4",
            DB_MAX_OVERFLOW="2",
            GUNICORN_THREADS="4",
        ),
    }
    started = [start_instance(name, tmp, env) for name in ("A", "B")]
    try:
        for instance in started:
            wait_until_ready(instance)
        yield started[0], started[1]
    finally:
        for instance in started:
            instance.stop()


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Lines for the run's summary: what the scale-out test measured."""
    lines: list[str] = []
    yield lines
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not lines:
        return
    with capture.global_and_fixture_disabled():  # shown in the run's output, not captured
        reporter.write_line("")
        for line in lines:
            reporter.write_line(f"scale-out: {line}")


# --- a browser behind the proxy -------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: HTTPMessage
    text: str


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # a 302 is an answer to look at, not to follow


@dataclass
class Browser:
    """One browser with its own cookie jar, seen by the app at ``address``.

    It also plays the TLS-terminating proxy: it says the scheme was https and which client
    address it saw. (Production cookies are Secure; the jar sends them over this plain hop.)
    """

    address: str
    jar: CookieJar = field(
        default_factory=lambda: CookieJar(DefaultCookiePolicy(secure_protocols=("http", "https")))
    )

    def request(
        self, method: str, url: str, data: dict[str, str] | None = None, **headers: str
    ) -> Reply:
        opener = build_opener(HTTPCookieProcessor(self.jar), _NoRedirects())
        origin = url.split("/", 3)[2]
        request = Request(  # noqa: S310 - plain http URLs of the instances this test started
            url,
            data=urlencode(data).encode() if data is not None else None,
            method=method,
            headers={
                "X-Forwarded-For": self.address,
                "X-Forwarded-Proto": "https",
                "Referer": f"https://{origin}/",
                **{name.replace("_", "-"): value for name, value in headers.items()},
            },
        )
        try:
            with opener.open(request, timeout=60) as response:
                return Reply(response.status, response.headers, response.read().decode())
        except HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read().decode())

    def get(self, url: str, **headers: str) -> Reply:
        return self.request("GET", url, **headers)

    def post(self, url: str, data: dict[str, str], **headers: str) -> Reply:
        return self.request("POST", url, data, **headers)

    def copy(self, address: str | None = None) -> Browser:
        """Another device holding the same cookies (a copied or stolen session cookie)."""
        other = Browser(address or self.address)
        for cookie in self.jar:
            other.jar.set_cookie(copy.copy(cookie))
        return other

    def cookie_values(self) -> list[str]:
        return [cookie.value for cookie in self.jar if cookie.value]


def csrf_token(page: Reply) -> str:
    match = CSRF_INPUT.search(page.text)
    assert match, f"no CSRF token in the page ({page.status})"
    return match.group(1)


def sign_in(browser: Browser, instance: Instance, login: str, password: str = PASSWORD) -> Reply:
    token = csrf_token(browser.get(instance("/auth/login")))
    data = {"login": login, "password": password, "csrf_token": token}
    return browser.post(instance("/auth/login"), data)


def signed_in_as(browser: Browser, instance: Instance) -> str | None:
    page = browser.get(instance("/"))
    assert page.status == 200
    match = re.search(r'<span class="nav-user">([^<]+)</span>', page.text)
    return match.group(1) if match and "Sign out" in page.text else None


def user_row(database: Engine, username: str) -> User:
    with Session(database) as session:
        return session.scalars(select(User).where(User.username == username)).one()


# --- the proofs -----------------------------------------------------------------------------


def test_a_session_made_on_one_instance_is_valid_on_the_other(
    instances: tuple[Instance, Instance], database: Engine, figures: list[str]
) -> None:
    a, b = instances
    browser = Browser("198.51.100.11")
    # The form comes from B, the sign-in goes to A: the CSRF token is signed with the shared key.
    token = csrf_token(browser.get(b("/auth/login")))
    reply = browser.post(
        a("/auth/login"), {"login": "scale0", "password": PASSWORD, "csrf_token": token}
    )
    assert reply.status == 302
    assert reply.headers["Location"] == "/"
    assert signed_in_as(browser, b) == "scale0"
    assert signed_in_as(browser, a) == "scale0"
    row = user_row(database, "scale0")
    assert row.last_login_ip == "198.51.100.11"
    assert row.last_login_at is not None
    figures.append("form from B, sign-in on A: signed in as scale0 on A and on B")


def test_signing_out_on_one_instance_ends_the_session_on_both(
    instances: tuple[Instance, Instance], database: Engine, figures: list[str]
) -> None:
    a, b = instances
    browser = Browser("198.51.100.12")
    assert sign_in(browser, a, "scale1").status == 302
    other_device = browser.copy()  # the same session cookie, kept elsewhere
    assert signed_in_as(other_device, b) == "scale1"

    home_on_b = browser.get(b("/"))
    reply = browser.post(b("/auth/logout"), {"csrf_token": csrf_token(home_on_b)})
    assert reply.status == 302

    assert signed_in_as(browser, a) is None
    assert signed_in_as(browser, b) is None
    # The copied cookie is refused too, on either instance: the session ended in the database.
    assert signed_in_as(other_device, a) is None
    assert signed_in_as(other_device, b) is None
    with Session(database) as session:
        records = session.scalars(
            select(UserSession).where(UserSession.user_id == user_row(database, "scale1").id)
        ).all()
    assert records == []
    figures.append(
        "sign-in on A, sign-out on B: signed out on A and B, and a copy of the old cookie "
        "is refused on both (its session record is gone)"
    )


def test_the_sign_in_rate_limit_counts_across_both_instances(
    instances: tuple[Instance, Instance],
    database: Engine,
    redis_url: str,
    key_prefix: str,
    figures: list[str],
) -> None:
    a, b = instances
    address = "198.51.100.13"
    browser = Browser(address)
    token = csrf_token(browser.get(a("/auth/login")))
    data = {"login": "scale2", "password": "not the password", "csrf_token": token}

    answers = []
    for attempt in range(12):
        instance = (a, b)[attempt % 2]
        reply = browser.post(instance("/auth/login"), data)
        answers.append((instance.name, reply.status, reply.headers.get("X-RateLimit-Remaining")))
    assert answers[:10] == [
        (("A", "B")[n % 2], 422, str(remaining)) for n, remaining in enumerate(range(9, -1, -1))
    ]
    # Five tries on each instance: only a shared count reaches the limit of 10.
    assert [status for _, status, _ in answers[10:]] == [429, 429]
    assert "Too many requests" in browser.post(b("/auth/login"), data).text

    # Another client, trying another account, is let through on either instance.
    other = Browser("198.51.100.14")
    assert sign_in(other, b, "scale3", "not the password either").status == 422

    with database.connect() as conn:
        failures = conn.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.ip_address == address)
        )
    assert failures == 10  # the refused attempts wrote nothing
    store = redis.Redis.from_url(redis_url)
    keys = [key.decode() for key in store.scan_iter(match=f"*{key_prefix}*{address}*")]
    store.close()
    assert keys, "the limiter's counter is not in Redis"
    figures.append(
        "rate limit 10/min on POST /auth/login, one client alternating A and B: "
        + ", ".join(f"{name}:{status}/{left or '-'}" for name, status, left in answers)
        + " (instance:status/X-RateLimit-Remaining)"
    )


def test_writes_through_both_instances_all_reach_the_database(
    instances: tuple[Instance, Instance], database: Engine, figures: list[str]
) -> None:
    a, b = instances
    addresses = [f"203.0.113.{n}" for n in range(1, 7)]  # six clients, four tries each
    failed = [(n, addresses[n % 6], (a, b)[n % 2]) for n in range(24)]
    users = [(f"scale{n}", f"192.0.2.{n}", (a, b)[n % 2]) for n in range(3, USERS)]

    def fail_once(job: tuple[int, str, Instance]) -> int:
        n, address, instance = job
        browser = Browser(address)
        token = csrf_token(browser.get(instance("/auth/login")))
        data = {"login": f"ghost-{n}", "password": "wrong", "csrf_token": token}
        return browser.post(instance("/auth/login"), data, X_Request_ID=f"write-{n}").status

    def sign_in_once(job: tuple[str, str, Instance]) -> int:
        username, address, instance = job
        return sign_in(Browser(address), instance, username).status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=6) as pool:
        failed_statuses = list(pool.map(fail_once, failed))
        signed_in_statuses = list(pool.map(sign_in_once, users))
    elapsed = time.perf_counter() - started
    assert failed_statuses == [422] * len(failed)
    assert signed_in_statuses == [302] * len(users)

    with database.connect() as conn:
        events = conn.execute(
            select(AuditEvent.after, AuditEvent.ip_address).where(
                AuditEvent.action == "auth.login_failed", AuditEvent.ip_address.in_(addresses)
            )
        ).all()
        signed_in = conn.execute(
            select(User.username, User.last_login_ip).where(User.last_login_at.is_not(None))
        ).all()
    assert sorted(after["login"] for after, _ in events) == sorted(
        f"ghost-{n}" for n, _, _ in failed
    )
    assert {(username, ip) for username, ip, _ in users} <= set(map(tuple, signed_in))

    served = {instance.name: len(instance.logged("write-", 12)) for instance in (a, b)}
    assert served == {"A": 12, "B": 12}
    requests = 2 * len(failed) + 2 * len(users)  # each sign-in is a GET and a POST
    figures.append(
        f"{len(failed)} failed sign-ins (6 clients) and {len(users)} sign-ins, 6 at a time, "
        f"through A and B: {len(events)} audit rows and {len(users)} last_login_at rows in "
        f"PostgreSQL; {requests} requests in {elapsed:.2f} s ({requests / elapsed:.1f}/s, "
        "scrypt-bound)"
    )


def test_each_request_is_one_json_log_line_without_secrets(
    instances: tuple[Instance, Instance], figures: list[str]
) -> None:
    a, b = instances
    browser = Browser("198.51.100.15")
    token = csrf_token(browser.get(a("/auth/login")))
    data = {"login": "scale0", "password": PASSWORD, "csrf_token": token}
    reply = browser.post(a("/auth/login"), data, X_Request_ID="scaleout-sign-in")
    assert reply.status == 302
    assert reply.headers["X-Request-ID"] == "scaleout-sign-in"
    assert browser.get(b("/"), X_Request_ID="scaleout-home").headers["X-Request-ID"] == (
        "scaleout-home"
    )

    (sign_in_line,) = a.logged("scaleout-sign-in")
    (home_line,) = b.logged("scaleout-home")
    user_id = sign_in_line["user_id"]
    assert isinstance(user_id, int)
    assert sign_in_line["method"] == "POST"
    assert sign_in_line["path"] == "/auth/login"
    assert sign_in_line["status"] == 302
    assert sign_in_line["remote_addr"] == "198.51.100.15"
    assert sign_in_line["queries"] >= 2
    assert (home_line["path"], home_line["status"], home_line["user_id"]) == ("/", 200, user_id)

    everything = a.stdout.read_text() + b.stdout.read_text()
    assert PASSWORD not in everything
    for value in browser.cookie_values():
        assert value not in everything
    assert len(everything.splitlines()) == len(a.log_records()) + len(b.log_records())
    figures.append("log line of one request: " + json.dumps(sign_in_line, separators=(",", ":")))
