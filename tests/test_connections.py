"""How requests use database connections: liveness pings, reads without a transaction.

The PostgreSQL tests run on the app's own engine and pool (not the rolled-back test
transaction), because pings, autocommit and dropped connections live in the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, event, func, select, text, update
from sqlalchemy.engine import make_url

from tests.conftest import BASE_TEST_CONFIG, postgres_url
from tests.helpers import CSRFClient
from webapp import create_app
from webapp.config import ConfigError, load_config
from webapp.db.session import WriteInReadRequest, changes_data
from webapp.extensions import db
from webapp.models import Tag

APPLICATION_NAME = "webapp-connection-tests"


@pytest.fixture
def make_pooled_app(postgres_engine: Engine) -> Iterator[Callable[..., Flask]]:
    """Apps on PostgreSQL with a real pool whose connections carry a name we can find."""
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        app = create_app(
            {
                **BASE_TEST_CONFIG,
                "SQLALCHEMY_DATABASE_URI": postgres_url(),
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
    for app in made:
        with app.app_context():
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.engine.dispose()


def drop_app_connections(postgres_engine: Engine) -> int:
    """Terminate the app's idle pooled connections, as a database restart would."""
    with postgres_engine.connect() as conn:
        dropped = conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": APPLICATION_NAME},
        )
    return int(dropped or 0)


def record_autocommit(app: Flask) -> list[bool]:
    """Whether each statement the app runs from now on runs in autocommit mode."""
    seen: list[bool] = []
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn: Any, _cursor: Any, _stmt: str, *_args: Any) -> None:
        seen.append(bool(conn.connection.dbapi_connection.autocommit))

    return seen


# --- liveness ---------------------------------------------------------------------------


def test_a_connection_dropped_while_idle_is_replaced_before_a_request_uses_it(
    make_pooled_app: Callable[..., Flask], postgres_engine: Engine
) -> None:
    app = make_pooled_app(DB_PING_AFTER_IDLE=0.0)  # ping on every checkout
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert drop_app_connections(postgres_engine) >= 1
    assert client.get("/").status_code == 200


def test_a_connection_used_moments_ago_is_not_pinged_and_its_loss_costs_one_request(
    make_pooled_app: Callable[..., Flask], postgres_engine: Engine
) -> None:
    app = make_pooled_app(DB_PING_AFTER_IDLE=3600.0)  # never idle long enough for a ping
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert drop_app_connections(postgres_engine) >= 1
    lost = client.get("/")
    assert lost.status_code == 503
    assert lost.headers["Retry-After"]
    # The failure invalidated the pool: the next request gets a fresh connection.
    assert client.get("/").status_code == 200


def test_no_ping_round_trip_for_a_connection_checked_in_moments_ago(
    make_pooled_app: Callable[..., Flask],
) -> None:
    app = make_pooled_app(DB_PING_AFTER_IDLE=3600.0)
    with app.app_context():
        dialect = db.engine.dialect
    pings: list[int] = []
    original = dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(1)
        return original(dbapi_connection)

    dialect.do_ping = counting_ping  # type: ignore[method-assign]
    client = app.test_client()
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert pings == []
    app.config["DB_PING_AFTER_IDLE"] = 0.0  # read at start-up: this changes nothing
    assert client.get("/").status_code == 200
    assert pings == []


# --- reads without a transaction --------------------------------------------------------


def test_a_get_reads_in_autocommit_and_a_post_writes_in_a_transaction(
    make_pooled_app: Callable[..., Flask],
) -> None:
    app = make_pooled_app()
    client = app.test_client()
    seen = record_autocommit(app)
    assert client.get("/posts/").status_code == 200
    assert seen and all(seen), seen

    seen.clear()
    response = client.post(
        "/auth/register",
        data={
            "email": "reader@example.com",
            "username": "reader",
            "password": "correct horse battery staple",
            "confirm": "correct horse battery staple",
        },
    )
    assert response.status_code == 302
    # The same pooled connection went back to transactions after the GET.
    assert seen and not any(seen), seen
    seen.clear()
    assert client.get("/account/").status_code == 200
    assert seen and all(seen), seen


def test_the_confirmation_link_is_a_get_that_writes_in_one_transaction(
    make_pooled_app: Callable[..., Flask],
) -> None:
    from tests.factories import UserFactory
    from webapp.auth.tokens import make_confirm_token
    from webapp.models import User

    app = make_pooled_app()
    client = app.test_client()
    with app.app_context():
        user = UserFactory(username="linda", email_confirmed_at=None)
        db.session.commit()
        assert not user.is_confirmed
        token = make_confirm_token(user)
        db.session.remove()
    seen = record_autocommit(app)
    seen.clear()
    assert client.get(f"/auth/confirm/{token}").status_code == 302
    assert seen and not any(seen), seen
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "linda"))
        assert user is not None and user.is_confirmed


def test_an_export_reads_its_server_side_cursor_inside_a_transaction(
    make_pooled_app: Callable[..., Flask],
) -> None:
    from tests.factories import ItemFactory, UserFactory
    from tests.helpers import AuthActions

    app = make_pooled_app()
    with app.app_context():
        admin = UserFactory(username="exporter", is_admin=True)
        for n in range(30):
            ItemFactory(owner=admin, title=f"Exported {n}")
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    with app.app_context():
        AuthActions(client).login(admin)
    seen = record_autocommit(app)
    response = client.get("/admin/items/export")
    assert response.status_code == 200
    assert response.get_data(as_text=True).count("Exported ") == 30
    assert seen and not any(seen), seen  # a named cursor needs a transaction
    seen.clear()
    assert client.get("/admin/items").status_code == 200
    assert seen and all(seen), seen


# --- a GET may not write unless its view says so (both databases) -----------------------


def _add_writing_views(app: Flask) -> None:
    def tag_on_get() -> str:
        db.session.add(Tag(name="made-by-a-get"))
        db.session.commit()
        return "saved"

    @changes_data
    def marked_tag_on_get() -> str:
        return tag_on_get()

    def rename_on_get() -> str:
        db.session.execute(update(Tag).values(name="renamed-by-a-get"))
        db.session.commit()
        return "saved"

    def lock_on_get() -> str:
        db.session.scalars(select(Tag).with_for_update()).all()
        return "locked"

    app.add_url_rule("/test/tag-on-get", "tag_on_get", tag_on_get)
    app.add_url_rule("/test/lock-on-get", "lock_on_get", lock_on_get)
    app.add_url_rule("/test/rename-on-get", "rename_on_get", rename_on_get)
    app.add_url_rule("/test/marked-tag-on-get", "marked", marked_tag_on_get)


def _tags(app: Flask) -> list[str]:
    return list(db.session.scalars(select(Tag.name).order_by(Tag.name)))


def test_a_get_that_writes_without_saying_so_is_refused_and_saves_nothing(
    app: Flask, client: CSRFClient
) -> None:
    _add_writing_views(app)
    db.session.add(Tag(name="kept"))
    db.session.commit()
    with pytest.raises(WriteInReadRequest, match="GET /test/tag-on-get"):
        client.get("/test/tag-on-get")
    db.session.rollback()
    with pytest.raises(WriteInReadRequest, match="UPDATE"):
        client.get("/test/rename-on-get")
    db.session.rollback()
    with pytest.raises(WriteInReadRequest, match="FOR UPDATE"):
        client.get("/test/lock-on-get")
    db.session.rollback()
    assert _tags(app) == ["kept"]


def test_a_get_view_marked_changes_data_writes(app: Flask, client: CSRFClient) -> None:
    _add_writing_views(app)
    response = client.get("/test/marked-tag-on-get")
    assert response.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 1


def test_outside_a_request_writes_are_not_refused(app: Flask) -> None:
    db.session.add(Tag(name="from-a-command"))
    db.session.commit()
    assert _tags(app) == ["from-a-command"]


# --- configuration ----------------------------------------------------------------------


def test_the_idle_ping_threshold_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_config(tmp_path, None)["DB_PING_AFTER_IDLE"] == 1.0
    monkeypatch.setenv("DB_PING_AFTER_IDLE", "0.25")
    assert load_config(tmp_path, None)["DB_PING_AFTER_IDLE"] == 0.25


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_a_bad_idle_ping_threshold_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DB_PING_AFTER_IDLE", value)
    with pytest.raises(ConfigError, match="DB_PING_AFTER_IDLE must be a number of seconds"):
        load_config(tmp_path, None)


def test_the_pooled_connections_are_named_as_the_tests_expect(
    make_pooled_app: Callable[..., Flask],
) -> None:
    """Guards the tests above: they find the app's connections by application_name."""
    app = make_pooled_app()
    with app.app_context():
        name = db.session.scalar(text("SELECT current_setting('application_name')"))
        db.session.remove()
    assert name == APPLICATION_NAME
    assert make_url(postgres_url()).get_backend_name() == "postgresql"
