"""Fixtures: every test that uses ``app`` runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.helpers import AuthActions, CSRFClient, QueryCounter
from tests.pgcluster import PgBouncer, run_pgbouncer, via_pgbouncer
from webapp import create_app
from webapp.config import normalise_database_url
from webapp.extensions import db
from webapp.mail import DeliveryReport, deliver_due
from webapp.models import User
from webapp.repositories.counting import ESTIMATES

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/webapp_test"
BACKENDS = ("sqlite", "postgresql")

BASE_TEST_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "RATELIMIT_ENABLED": False,
    "RATELIMIT_STORAGE_URI": "memory://",
    "MAIL_SERVER": None,
    # Not the test client's host (localhost): an emailed link shows where it was built.
    "SITE_URL": "https://webapp.test",
    # The admin console's own tests sign in without a second factor; the requirement (on by
    # default) is tested on its own, with it on (tests/test_two_factor.py).
    "ADMIN_REQUIRE_TWO_FACTOR": False,
}


def postgres_url() -> str:
    """The test database; with ``TEST_VIA_PGBOUNCER=1``, through a PgBouncer of the run's own
    (``pool_mode = transaction``) in front of that server."""
    url = normalise_database_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL))
    if not via_pgbouncer():
        return url
    if not PgBouncer.available():
        postgres_unavailable(f"TEST_VIA_PGBOUNCER is set and {PgBouncer.BINARY} is missing")
    parsed = make_url(url)
    bouncer = run_pgbouncer(f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}")
    return parsed.set(host="127.0.0.1", port=bouncer.port).render_as_string(hide_password=False)


def ensure_database(url: str) -> None:
    """Create the database ``url`` names if it does not exist yet."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def postgres_unavailable(reason: str) -> None:
    """Outside CI a missing PostgreSQL skips its half of the suite; in CI it fails the run."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI and is not usable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not reachable ({reason}); set TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """The PostgreSQL test database with the models' schema, made once per run."""
    url = postgres_url()
    try:
        ensure_database(url)
        engine = create_engine(url)
        with engine.connect():
            pass
    except OperationalError as error:
        postgres_unavailable(str(error.orig).strip().splitlines()[0])
    with engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        # The trigram search indexes need pg_trgm (migration 0002 creates it likewise).
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.metadata.create_all(conn)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def sqlite_file() -> Path:
    """A new SQLite database file for one test, in memory-backed storage where there is one.

    A file, not ``sqlite://``: each request opens its own connection, as in production, and
    an in-memory database is private to one connection.
    """
    shared_memory = Path("/dev/shm")  # noqa: S108 - a file of our own, with a random name
    folder = shared_memory if shared_memory.is_dir() else Path(tempfile.gettempdir())
    return folder / f"webapp-test-{os.getpid()}-{uuid.uuid4().hex}.sqlite"


def make_app(backend: str, request: pytest.FixtureRequest, **overrides: Any) -> Flask:
    config = dict(BASE_TEST_CONFIG)
    if backend == "sqlite":
        path = sqlite_file()
        request.addfinalizer(lambda: [f.unlink(missing_ok=True) for f in sqlite_files(path)])
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    else:
        request.getfixturevalue("postgres_engine")
        config["SQLALCHEMY_DATABASE_URI"] = postgres_url()
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = CSRFClient
    return app


def sqlite_files(path: Path) -> list[Path]:
    """The database file and the WAL files SQLite keeps beside it."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test configuration overrides (a test module may redefine this fixture)."""
    return {}


@pytest.fixture
def app(
    backend: str, request: pytest.FixtureRequest, app_config: dict[str, Any]
) -> Iterator[Flask]:
    """The application on a clean database, with an app context for the test's own code
    (factories, assertions); each request the test client makes has its own.

    SQLite: a fresh database file per test. PostgreSQL: the schema made once per run; each
    test runs inside an outer transaction that is rolled back at the end, and every
    session's commits (the test's and the requests') become savepoints inside it.
    """
    app = make_app(backend, request, **app_config)
    ESTIMATES.forget()  # table estimates are kept per database for seconds: start afresh
    with app.app_context():
        if backend == "sqlite":
            db.create_all(bind_key=None)  # the primary only: replica binds are read-only standbys
            yield app
            db.session.remove()
            db.engine.dispose()
            return
        engine: Engine = request.getfixturevalue("postgres_engine")
        connection = engine.connect()
        transaction = connection.begin()
        engines = db.engines  # the app's own mapping: swap the connection in for its engine
        own_engine = engines[None]
        engines[None] = connection  # type: ignore[index]
        try:
            yield app
        finally:
            db.session.remove()
            transaction.rollback()
            connection.close()
            engines[None] = own_engine  # type: ignore[index]
            own_engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def count_queries(app: Flask) -> QueryCounter:
    return QueryCounter(db)


@pytest.fixture
def user(app: Flask) -> User:
    from tests.factories import UserFactory

    return UserFactory(username="alice", email="alice@example.com")


@pytest.fixture
def admin_user(app: Flask) -> User:
    from tests.factories import UserFactory

    return UserFactory(username="root", email="root@example.com", is_admin=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI nothing may be skipped: the PostgreSQL and browser halves must really run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) were skipped; in CI that is a failure.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- Mail: a real SMTP server (aiosmtpd) on a free local port ----------------------------------


class _Collector:
    """aiosmtpd handler: keeps every message it receives, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        """``...@bounce.test`` does not exist (refused for good); ``...@busy.test`` is busy
        (refused for now); any other recipient is taken."""
        if address.endswith("@bounce.test"):
            return "550 5.1.1 No such user here"
        if address.endswith("@busy.test"):
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=email_policy)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


@dataclass
class Mailbox:
    """What the test SMTP server received, and the settings that point the app at it.

    The app only queues mail: before it is read, the mailbox runs the deliverer (``deliver``,
    set by the ``mailbox`` fixture for the test's app), as ``flask mail deliver`` would.
    """

    host: str
    port: int
    collector: _Collector
    deliver: Callable[[], object] | None = None

    @property
    def config(self) -> dict[str, Any]:
        return {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": self.port,
            "MAIL_FROM": "webapp <no-reply@webapp.test>",
        }

    @property
    def messages(self) -> list[EmailMessage]:
        if self.deliver is not None:
            self.deliver()
        with self.collector.lock:
            return list(self.collector.messages)

    def clear(self) -> None:
        with self.collector.lock:
            self.collector.messages.clear()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def last(self, address: str) -> EmailMessage:
        received = self.to(address)
        assert received, f"no message to {address}; received: {[m['To'] for m in self.messages]}"
        return received[-1]

    def body(self, address: str) -> str:
        """The text of the last message to ``address``, with plain newlines."""
        part = self.last(address).get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")

    def html(self, address: str) -> str:
        """The HTML part of the last message to ``address``."""
        part = self.last(address).get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())

    def link(self, address: str, *, path_only: bool = True) -> str:
        """The one link in the last message to ``address`` (its path, to follow in a client)."""
        links = re.findall(r"https?://\S+", self.body(address))
        assert len(links) == 1, links
        if not path_only:
            return links[0]
        parts = urlsplit(links[0])
        return parts.path + (f"?{parts.query}" if parts.query else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield Mailbox(controller.hostname, controller.port, collector)
    finally:
        controller.stop()


def deliver_outbox(app: Flask) -> DeliveryReport:
    """``flask mail deliver --once`` for ``app``, in an app context of its own (as a
    deliverer process has)."""
    with app.app_context():
        return deliver_due()


@pytest.fixture
def mailbox(smtp_server: Mailbox, request: pytest.FixtureRequest) -> Iterator[Mailbox]:
    """The test SMTP server, emptied for this test. Point the app at it with ``.config``.

    Reading it first delivers the outbox of the test's app (``app`` or the browser tests'
    ``live_server``), if the test has one.
    """
    smtp_server.clear()

    def deliver() -> None:
        for name in ("live_server", "app"):
            if name in request.fixturenames:
                served = request.getfixturevalue(name)
                deliver_outbox(getattr(served, "app", served))
                return

    smtp_server.deliver = deliver
    yield smtp_server
    smtp_server.deliver = None
