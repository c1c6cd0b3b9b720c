"""Read replicas for real: a private primary and a streaming standby (``pg_basebackup -R``).

The pair is started once per run on free ports; each test builds apps on it with real
pools, and leaves both servers as it found them (running, replaying, tables empty).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import Engine, create_engine, event, select, text, update
from werkzeug.test import TestResponse

from tests.conftest import BASE_TEST_CONFIG, postgres_unavailable
from tests.helpers import AuthActions, CSRFClient
from tests.pgcluster import PgBouncer, PrivateCluster, postgres_bin, replayed, via_pgbouncer
from webapp import ROOT, create_app
from webapp.config import ConfigError, load_config
from webapp.db.replicas import EXTENSION, SESSION_LSN, ReplicaRetry, ReplicaSet
from webapp.db.session import WriteInReadRequest
from webapp.db.types import as_utc, utcnow
from webapp.extensions import db
from webapp.models import Post, Tag, User, UserSession
from webapp.web.request_log import logger as request_logger

APPLICATION_NAME = "webapp-replica-tests"


# -- the servers ----------------------------------------------------------------------------


@dataclass
class Replication:
    """The pair, and how the app reaches it: directly, or (``TEST_VIA_PGBOUNCER=1``) through
    one PgBouncer in transaction mode in front of both."""

    primary: PrivateCluster
    standby: PrivateCluster
    bouncer: PgBouncer | None = None

    @property
    def primary_url(self) -> str:
        return self.bouncer.url("primary") if self.bouncer else self.primary.url

    @property
    def standby_url(self) -> str:
        return self.bouncer.url("standby") if self.bouncer else self.standby.url

    @property
    def standby_address(self) -> str:
        """What the log line and ``/readyz`` call the replica."""
        return f"127.0.0.1:{self.bouncer.port}" if self.bouncer else self.standby.address

    def drop_standby_connections(self) -> None:
        """The app's connections to the standby die (through PgBouncer: its clients do)."""
        if self.bouncer:
            self.bouncer.admin("KILL standby")
            self.bouncer.admin("RESUME standby")
        else:
            assert self.drop_app_connections(self.standby) >= 1

    def pause(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        if not self.standby.is_running():
            self.standby.start()
            if self.bouncer:  # it retries a server it failed to reach only after a pause
                self.bouncer.wait_reachable("standby")
        self.standby.sql("SELECT pg_wal_replay_resume()")

    def caught_up(self) -> None:
        replayed(self.primary, self.standby)

    def drop_app_connections(self, server: PrivateCluster) -> int:
        return int(
            server.sql(  # type: ignore[call-overload]
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE application_name = '{APPLICATION_NAME}'"
            )
        )


def make_schema(url: str) -> None:
    """The models' tables, stamped with the migrations' head (as ``/readyz`` expects)."""
    heads = ScriptDirectory(str(ROOT / "migrations")).get_heads()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.metadata.create_all(conn)
        conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
        for head in heads:
            conn.execute(text("INSERT INTO alembic_version VALUES (:head)"), {"head": head})
    engine.dispose()


@pytest.fixture(scope="session")
def replication() -> Iterator[Replication]:
    try:
        postgres_bin()
    except FileNotFoundError as error:
        postgres_unavailable(str(error))
    if via_pgbouncer() and not PgBouncer.available():
        postgres_unavailable(f"TEST_VIA_PGBOUNCER is set and {PgBouncer.BINARY} is missing")
    primary = PrivateCluster("webapp_replicas")
    standby = pair = None
    try:
        primary.start()
        primary.create_database()
        make_schema(primary.url)
        standby = primary.standby()
        pair = Replication(primary, standby)
        if via_pgbouncer():
            database = primary.database
            pair.bouncer = PgBouncer(
                {
                    "primary": f"{primary.address}/{database}",
                    "standby": f"{standby.address}/{database}",
                }
            )
            pair.bouncer.start()
        pair.caught_up()
        yield pair
    finally:
        if pair is not None and pair.bouncer is not None:
            pair.bouncer.stop()
        if standby is not None:
            standby.remove()
        primary.remove()


@pytest.fixture
def make_app(replication: Replication) -> Iterator[Callable[..., Flask]]:
    """Apps on the primary with the standby as their replica, with real pools."""
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        app = create_app(
            {
                **BASE_TEST_CONFIG,
                "SQLALCHEMY_DATABASE_URI": replication.primary_url,
                "DATABASE_REPLICA_URLS": [replication.standby_url],
                "SQLALCHEMY_ENGINE_OPTIONS": {
                    "connect_args": {"application_name": APPLICATION_NAME}
                },
                **config,
            }
        )
        app.test_client_class = CSRFClient
        made.append(app)
        return app

    yield make
    replication.resume()
    for app in made:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    replication.primary.sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    replication.caught_up()


# -- what the tests look at -----------------------------------------------------------------


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(record.getMessage()))

    @property
    def last(self) -> dict[str, Any]:
        return self.records[-1]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    collector = LogLines()
    request_logger.addHandler(collector)
    try:
        yield collector
    finally:
        request_logger.removeHandler(collector)


def fetch(client: CSRFClient, path: str, **kwargs: Any) -> tuple[int, str]:
    """Status and text of a request whose body is read and closed (then its line is logged)."""
    with client.open(path, **kwargs) as response:
        assert isinstance(response, TestResponse)
        return response.status_code, response.get_data(as_text=True)


def replica_engine(app: Flask) -> Engine:
    with app.app_context():
        return db.engines["replica-0"]


def statements_on(engine: Engine) -> list[str]:
    """Every statement ``engine`` runs from now on."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    return seen


def add_user(app: Flask, username: str, **values: Any) -> User:
    from tests.factories import UserFactory

    with app.app_context():
        user = UserFactory(username=username, email=f"{username}@example.com", **values)
        db.session.commit()
        db.session.remove()
    return user


def add_post(app: Flask, author: User, title: str) -> int:
    with app.app_context():
        post = Post(author_id=author.id, title=title, body="A few words.")
        db.session.add(post)
        db.session.commit()
        post_id = post.id
        db.session.remove()
    return post_id


def signed_in(app: Flask, user: User) -> CSRFClient:
    client = app.test_client()
    assert isinstance(client, CSRFClient)
    with app.app_context():  # the session record is written on the primary
        row = db.session.get(User, user.id)
        assert row is not None
        AuthActions(client).login(row)
        db.session.remove()
    return client


def edit_title(client: CSRFClient, post_id: int, title: str) -> None:
    status, _ = fetch(client, f"/posts/{post_id}/edit")
    assert status == 200
    status, _ = fetch(
        client,
        f"/posts/{post_id}/edit",
        method="POST",
        data={"title": title, "body": "A few words.", "tags": "", "version": "1"},
    )
    assert status == 302


# -- routing --------------------------------------------------------------------------------


def test_a_read_request_reads_from_the_replica_and_its_log_line_says_which(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    app = make_app()
    author = add_user(app, "alice")
    post_id = add_post(app, author, "As replicated")
    replication.caught_up()
    replication.pause()
    replication.primary.sql(f"UPDATE posts SET title = 'Only on the primary' WHERE id = {post_id}")

    status, html = fetch(app.test_client(), f"/posts/{post_id}")
    assert status == 200
    assert "As replicated" in html and "Only on the primary" not in html
    line = log_lines.last
    assert (line["path"], line["db"], line["replica"]) == (
        f"/posts/{post_id}",
        "replica",
        replication.standby_address,
    )


def test_a_request_that_writes_runs_wholly_on_the_primary(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    app = make_app()
    client = signed_in(app, add_user(app, "alice"))
    replication.caught_up()
    on_replica = statements_on(replica_engine(app))
    status, _ = fetch(
        client, "/posts/new", method="POST", data={"title": "New", "body": "Words", "tags": "x"}
    )
    assert status == 302
    assert on_replica == []
    assert log_lines.last["db"] == "primary" and "replica" not in log_lines.last
    with app.app_context():
        assert db.session.scalar(select(Post.title)) == "New"


def test_a_get_marked_changes_data_runs_on_the_primary(
    make_app: Callable[..., Flask], replication: Replication
) -> None:
    from webapp.auth.tokens import make_confirm_token

    app = make_app()
    user = add_user(app, "linda", email_confirmed_at=None)
    replication.caught_up()
    with app.app_context():
        token = make_confirm_token(db.session.merge(user))
    on_replica = statements_on(replica_engine(app))
    status, _ = fetch(app.test_client(), f"/auth/confirm/{token}")
    assert status == 302
    assert on_replica == []
    with app.app_context():
        assert db.session.scalar(select(User.email_confirmed_at)) is not None


def test_a_get_that_writes_unmarked_is_refused_before_it_reaches_either_server(
    make_app: Callable[..., Flask], replication: Replication
) -> None:
    app = make_app()

    def tag_on_get() -> str:
        db.session.add(Tag(name="made-by-a-get"))
        db.session.commit()
        return "saved"

    app.add_url_rule("/test/tag-on-get", "tag_on_get", tag_on_get)
    with pytest.raises(WriteInReadRequest):
        app.test_client().get("/test/tag-on-get")
    with app.app_context():
        assert db.session.scalars(select(Tag)).all() == []


# -- read-your-writes -----------------------------------------------------------------------


def test_a_person_sees_their_change_at_once_and_others_once_the_replica_replays_it(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    app = make_app()
    alice, bob = add_user(app, "alice"), add_user(app, "bob")
    post_id = add_post(app, alice, "First title")
    replication.caught_up()
    author, other = signed_in(app, alice), signed_in(app, bob)
    replication.pause()

    edit_title(author, post_id, "Second title")
    with author.session_transaction() as cookie:
        assert isinstance(cookie[SESSION_LSN], int)
    status, html = fetch(author, f"/posts/{post_id}")
    assert status == 200 and "Second title" in html
    assert log_lines.last["db"] == "primary"
    status, html = fetch(other, f"/posts/{post_id}")
    assert status == 200 and "First title" in html
    assert log_lines.last["db"] == "replica"

    replication.resume()
    replication.caught_up()
    for client in (author, other):
        status, html = fetch(client, f"/posts/{post_id}")
        assert status == 200 and "Second title" in html
        assert log_lines.last["db"] == "replica"


def test_replica_positions_are_cached_and_checked_only_when_a_browser_is_ahead(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    app = make_app(REPLICA_POSITION_MAX_AGE=3600.0)
    alice = add_user(app, "alice")
    post_id = add_post(app, alice, "First title")
    replication.caught_up()
    on_replica = statements_on(replica_engine(app))

    def position_checks() -> int:
        return sum("pg_last_wal_replay_lsn" in s for s in on_replica)

    reader = app.test_client()
    for _ in range(4):
        assert fetch(reader, "/posts/")[0] == 200
    assert position_checks() == 1  # the first request learned it; the others reused it
    assert log_lines.last["db"] == "replica"

    author = signed_in(app, alice)
    replication.pause()
    edit_title(author, post_id, "Second title")
    on_replica.clear()
    assert "Second title" in fetch(author, f"/posts/{post_id}")[1]
    assert (position_checks(), log_lines.last["db"]) == (1, "primary")  # looked: still behind
    assert "First title" in fetch(reader, f"/posts/{post_id}")[1]
    assert (position_checks(), log_lines.last["db"]) == (1, "replica")  # no look for others

    replication.resume()
    replication.caught_up()
    assert "Second title" in fetch(author, f"/posts/{post_id}")[1]
    assert (position_checks(), log_lines.last["db"]) == (2, "replica")  # looked: caught up


# -- replica faults -------------------------------------------------------------------------


def test_killed_replica_connections_cost_no_request_and_the_replica_is_skipped_a_while(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    app = make_app(DB_PING_AFTER_IDLE=3600.0, REPLICA_RETRY_SECONDS=1.0)
    client = app.test_client()
    assert fetch(client, "/posts/")[0] == 200
    assert log_lines.last["db"] == "replica"
    replication.drop_standby_connections()

    assert fetch(client, "/posts/")[0] == 200  # the dead connection failed; the primary answered
    assert log_lines.last["db"] == "primary"
    assert fetch(client, "/posts/")[0] == 200
    assert log_lines.last["db"] == "primary"  # skipped for REPLICA_RETRY_SECONDS
    time.sleep(1.1)
    assert fetch(client, "/posts/")[0] == 200
    assert log_lines.last["db"] == "replica"


def test_a_replica_that_errors_in_mid_request_is_answered_by_the_primary(
    make_app: Callable[..., Flask], log_lines: LogLines
) -> None:
    app = make_app()

    def two_reads() -> str:
        first = db.session.scalar(text("SELECT pg_is_in_recovery()"))
        # On the standby its own connection dies between the request's two reads.
        db.session.execute(
            text(
                "SELECT CASE WHEN pg_is_in_recovery() "
                "THEN pg_terminate_backend(pg_backend_pid()) END"
            )
        )
        return f"first read on a standby: {first}"

    app.add_url_rule("/test/two-reads", "two_reads", two_reads)
    status, body = fetch(app.test_client(), "/test/two-reads")
    assert (status, body) == (200, "first read on a standby: False")
    assert log_lines.last["db"] == "primary"
    assert fetch(app.test_client(), "/posts/")[0] == 200
    assert log_lines.last["db"] == "primary"  # the replica is skipped for a while


def test_a_stopped_replica_costs_no_request_and_readyz_shows_it(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    app = make_app(REPLICA_RETRY_SECONDS=0.5)
    alice = add_user(app, "alice")
    client = signed_in(app, alice)
    pages = ["/", "/posts/", "/items/", "/tags/", "/account/", "/posts/new"]
    for page in pages:
        assert fetch(client, page)[0] == 200
    assert log_lines.last["db"] == "replica"
    replication.standby.stop()
    statuses = [fetch(client, page)[0] for page in pages * 2]
    assert set(statuses) == {200}
    assert {line["db"] for line in log_lines.records[-len(statuses) :]} == {"primary"}
    status, body = fetch(client, "/readyz")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ok"
    assert report["replicas"][0]["replica"] == replication.standby_address
    assert report["replicas"][0]["state"] == "skipped"
    assert report["replicas"][0]["reason"]  # its connections failed, or it refused a new one
    time.sleep(0.6)  # tried again: now it refuses new connections
    assert fetch(client, "/posts/")[0] == 200
    assert log_lines.last["db"] == "primary"
    report = json.loads(fetch(client, "/readyz")[1])
    assert "unreachable" in report["replicas"][0]["reason"]

    replication.resume()
    time.sleep(0.6)
    assert fetch(client, "/posts/")[0] == 200
    assert log_lines.last["db"] == "replica"


def test_a_replica_lagging_too_far_is_skipped_and_used_again_once_it_catches_up(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    app = make_app(REPLICA_MAX_LAG_SECONDS=1.0, REPLICA_RETRY_SECONDS=0.5)
    alice = add_user(app, "alice")
    replication.caught_up()
    author, reader = signed_in(app, alice), app.test_client()
    replication.pause()
    status, _ = fetch(
        author, "/posts/new", method="POST", data={"title": "New", "body": "W", "tags": ""}
    )
    assert status == 302
    assert fetch(reader, "/posts/")[0] == 200
    assert log_lines.last["db"] == "replica"  # behind, but not for long yet
    time.sleep(1.2)
    assert fetch(reader, "/posts/")[0] == 200
    assert log_lines.last["db"] == "primary"
    report = json.loads(fetch(reader, "/readyz")[1])["replicas"][0]
    assert report["state"] in {"skipped", "lagging"}, report

    replication.resume()
    replication.caught_up()
    time.sleep(0.6)
    assert "New" in fetch(reader, "/posts/")[1]
    assert log_lines.last["db"] == "replica"
    report = json.loads(fetch(reader, "/readyz")[1])["replicas"][0]
    assert (report["state"], report["lag_seconds"]) == ("ok", 0.0)


def test_a_paused_replica_of_an_idle_primary_is_not_lagging(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    """The age of the last replayed transaction grows on an idle primary; that is no lag."""
    app = make_app(REPLICA_MAX_LAG_SECONDS=0.5)
    reader = app.test_client()
    replication.caught_up()
    replication.pause()
    for _attempt in range(3):
        assert fetch(reader, "/posts/")[0] == 200
        time.sleep(1.0)
        assert fetch(reader, "/posts/")[0] == 200
        idle = replication.standby.sql(
            "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
        )
        if idle:  # else the primary wrote WAL of its own meanwhile (a standby snapshot): again
            break
        replication.resume()
        replication.caught_up()
        replication.pause()
    assert idle
    assert log_lines.last["db"] == "replica"
    old = replication.standby.sql("SELECT now() - pg_last_xact_replay_timestamp() > '0.5 s'")
    assert old  # by the naive measure the replica would have been skipped


def test_a_write_on_a_connection_to_a_standby_answers_503_and_the_pool_lets_it_go(
    make_app: Callable[..., Flask], replication: Replication
) -> None:
    """After a failover a proxy (or a URL without target_session_attrs) can hand the app a
    connection to a server that is now a standby: its write is refused (SQLSTATE 25006).
    That is an unavailable database (503, Retry-After), not a bug (500), and the connection
    is dropped so the next one is made afresh."""
    primary = make_app()
    user = add_user(primary, "alice")
    app = make_app(SQLALCHEMY_DATABASE_URI=replication.standby_url, DATABASE_REPLICA_URLS=[])
    with app.app_context():
        invalidated: list[object] = []
        event.listen(db.engine, "invalidate", lambda *args: invalidated.append(args[2]))
    client = app.test_client()
    with primary.app_context():  # signing in writes a session record: on the primary
        row = db.session.get(User, user.id)
        assert row is not None
        AuthActions(client).login(row)
        db.session.remove()
    replication.caught_up()
    with client.open(
        "/items/new", method="POST", data={"title": "Refused", "description": ""}
    ) as response:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
    assert len(invalidated) == 1 and "read-only transaction" in str(invalidated[0])
    status, _ = fetch(client, "/items/")  # reads still work on a fresh connection
    assert status == 200


# -- readiness ------------------------------------------------------------------------------


def test_readyz_lists_the_replica_and_answers_for_the_primary_alone(
    make_app: Callable[..., Flask], replication: Replication
) -> None:
    app = make_app()
    status, body = fetch(app.test_client(), "/readyz")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ok"
    assert report["replicas"] == [
        {"replica": replication.standby_address, "state": "ok", "lag_seconds": 0.0}
    ]

    from tests.pgcluster import free_port

    gone = make_app(SQLALCHEMY_DATABASE_URI=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    status, body = fetch(gone.test_client(), "/readyz")
    report = json.loads(body)
    assert status == 503 and report["database"] == "unavailable"
    assert report["replicas"][0]["state"] == "ok"  # a healthy replica does not make it ready


# -- configuration --------------------------------------------------------------------------


def test_replica_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(tmp_path, None)
    assert config["DATABASE_REPLICA_URLS"] == []
    assert (config["REPLICA_MAX_LAG_SECONDS"], config["REPLICA_RETRY_SECONDS"]) == (10.0, 5.0)
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/app")
    monkeypatch.setenv("DATABASE_REPLICA_URLS", "postgresql://r1/app, postgres://r2:6432/app")
    monkeypatch.setenv("REPLICA_MAX_LAG_SECONDS", "3")
    monkeypatch.setenv("REPLICA_RETRY_SECONDS", "0.5")
    config = load_config(tmp_path, None)
    assert config["DATABASE_REPLICA_URLS"] == [
        "postgresql+psycopg2://r1/app",
        "postgresql+psycopg2://r2:6432/app",
    ]
    assert (config["REPLICA_MAX_LAG_SECONDS"], config["REPLICA_RETRY_SECONDS"]) == (3.0, 0.5)
    assert config["SQLALCHEMY_BINDS"]["replica-1"]["url"] == "postgresql+psycopg2://r2:6432/app"
    assert config["SQLALCHEMY_BINDS"]["replica-1"]["connect_args"] == {"connect_timeout": 2}


def test_replicas_of_sqlite_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_REPLICA_URLS", "postgresql://r1/app")
    with pytest.raises(ConfigError, match="DATABASE_REPLICA_URLS"):
        load_config(tmp_path, None)


def test_without_replicas_nothing_routes(tmp_path: Path) -> None:
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert EXTENSION not in app.extensions
    assert not isinstance(app.wsgi_app, ReplicaRetry)
    with app.app_context():
        assert list(db.engines) == [None]
    with app.test_request_context("/posts/"):
        assert db.session.get_bind() is db.engines[None]


def test_the_lag_is_timed_from_when_unreplayed_wal_was_first_known() -> None:
    """Unit check of the bookkeeping the fault tests rely on (a fake clock, no server)."""
    from webapp.db.replicas import Replica

    now = [100.0]
    replica = Replica("r:5432", engine=None)  # type: ignore[arg-type]
    replicas = ReplicaSet(
        [replica], max_lag=10, retry_after=5, position_max_age=0.25, clock=lambda: now[0]
    )
    replica.observe(received=50, replayed=50, now=now[0])
    assert replica.lag(now[0]) == 0.0
    replicas.committed(80)  # the primary wrote more, not yet received
    now[0] = 103.0
    replica.observe(received=90, replayed=60, now=now[0])
    assert replica.lag(now[0]) == 3.0
    now[0] = 104.0
    replica.observe(received=90, replayed=85, now=now[0])
    assert replica.lag(now[0]) == 1.0  # 80 is replayed; 90 was first seen at 103
    replica.observe(received=90, replayed=90, now=now[0])
    assert replica.lag(now[0]) == 0.0


def test_a_page_view_notes_the_sessions_activity_on_the_primary_and_reads_on_the_replica(
    make_app: Callable[..., Flask], replication: Replication, log_lines: LogLines
) -> None:
    """The once-a-minute "last active" write of a read request goes to the primary; the
    page's reads stay on the replica (a standby refuses the UPDATE)."""
    app = make_app()
    alice = add_user(app, "alice")
    client = signed_in(app, alice)
    long_ago = utcnow() - timedelta(hours=1)
    with app.app_context():
        db.session.execute(update(UserSession).values(last_active_at=long_ago))
        db.session.commit()
        db.session.remove()
    replication.caught_up()

    status, _ = fetch(client, "/posts/")
    assert status == 200
    assert (log_lines.last["db"], log_lines.last["replica"]) == (
        "replica",
        replication.standby_address,
    )
    with app.app_context():
        noted = db.session.scalar(select(UserSession.last_active_at))
        db.session.remove()
    assert noted is not None and as_utc(noted) > long_ago + timedelta(minutes=59)
