from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.conftest import BASE_TEST_CONFIG
from tests.factories import PostFactory, TagFactory
from webapp import ROOT, create_app
from webapp.db.migrations import REVISION_PARENTS_TABLE
from webapp.extensions import db


def test_home_shows_newest_posts_with_authors_and_tags(client: FlaskClient) -> None:
    tag = TagFactory(name="gardening")
    PostFactory(title="Tomatoes in November", tags=[tag])
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Tomatoes in November" in html
    assert "gardening" in html
    assert "/static/css/site.css" in html


def test_home_without_posts_says_so(client: FlaskClient) -> None:
    assert "No posts yet" in client.get("/").get_data(as_text=True)


def test_home_query_count_does_not_grow_with_posts(client: FlaskClient, count_queries) -> None:
    counts = []
    for _ in range(2):
        for _ in range(5):
            PostFactory(tags=[TagFactory(), TagFactory()])
        with count_queries() as statements:
            assert client.get("/").status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]
    assert counts[0] <= 3


def test_healthz_is_liveness_and_runs_no_sql(client: FlaskClient, count_queries) -> None:
    with count_queries() as statements:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert statements == []


UNREACHABLE_DATABASES = [
    pytest.param("sqlite:////nonexistent-directory/webapp.sqlite", id="sqlite"),
    # Port 1 on this machine: nothing listens there, the connection is refused at once.
    pytest.param("postgresql://postgres@127.0.0.1:1/webapp", id="postgresql"),
]


@pytest.mark.parametrize("url", UNREACHABLE_DATABASES)
def test_without_a_database_the_process_is_live_but_not_ready(url: str) -> None:
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "unavailable",
        "database": "unavailable",
        "reason": "the database does not answer",
    }
    assert response.headers["Cache-Control"] == "no-store"


def stamp(*revisions: str) -> None:
    """Record ``revisions`` as applied, in Alembic's own table (the test's transaction)."""
    db.session.execute(
        text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    for revision in revisions:
        db.session.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    db.session.commit()


def code_head() -> str:
    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    assert head
    return head


def test_readyz_is_ready_when_the_database_is_at_the_code_head(client: FlaskClient) -> None:
    stamp(code_head())
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "database": "ok",
        "migrations": "ok",
        "revision": code_head(),
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_503_while_migrations_are_pending(client: FlaskClient) -> None:
    stamp("0000_older")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["migrations"] == "pending"
    assert response.json["revision"] == "0000_older"
    assert response.json["head"] == code_head()
    assert response.json["reason"] == (
        f"the database is at revision 0000_older, the code needs {code_head()}"
    )


def record_parents(*edges: tuple[str, str]) -> None:
    """Record (revision, parent) pairs as the migration environment does for each step."""
    db.session.execute(
        text(f"CREATE TABLE {REVISION_PARENTS_TABLE} (revision VARCHAR(32), parent VARCHAR(32))")
    )
    for revision, parent in edges:
        db.session.execute(
            text(f"INSERT INTO {REVISION_PARENTS_TABLE} VALUES (:r, :p)"),
            {"r": revision, "p": parent},
        )
    db.session.commit()


def code_parent() -> str:
    parent = ScriptDirectory(str(ROOT / "migrations")).get_revision(code_head()).down_revision
    assert isinstance(parent, str)
    return parent


def test_readyz_is_ready_when_the_database_is_ahead_of_the_code_head(
    client: FlaskClient, count_queries
) -> None:
    """Rolling deploys: a newer release migrated the database; this (older) code keeps
    serving, because the new revisions descend from its head."""
    stamp("0102_newer")
    record_parents(("0102_newer", "0101_new"), ("0101_new", code_head()), ("0009_other", "0008"))
    with count_queries() as statements:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "database": "ok",
        "migrations": "ahead",
        "revision": "0102_newer",
        "head": code_head(),
    }
    assert len(statements) <= 5  # one recursive query walks the recorded parents


def test_readyz_is_503_when_the_database_is_behind_the_code_head(client: FlaskClient) -> None:
    stamp(code_parent())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["migrations"] == "pending"
    assert response.json["revision"] == code_parent()
    assert response.json["head"] == code_head()


def test_readyz_is_503_on_a_revision_that_does_not_descend_from_the_code_head(
    client: FlaskClient,
) -> None:
    """A revision this code does not know, whose recorded parents never reach its head
    (another line of revisions, or one branched off before the head), is not ready."""
    stamp("0102_elsewhere")
    record_parents(("0102_elsewhere", "0101_elsewhere"), ("0101_elsewhere", code_parent()))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["migrations"] == "pending"
    assert response.json["revision"] == "0102_elsewhere"


def test_readyz_is_503_for_a_database_never_migrated(client: FlaskClient) -> None:
    response = client.get("/readyz")  # the test schema is made without Alembic
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["database"] == "ok"
    assert response.json["revision"] == "none"


def test_unknown_page_is_a_404_in_the_site_layout(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Page not found" in html
    assert 'class="site-header"' in html


def test_wrong_method_is_a_405_page_that_keeps_allow(client: FlaskClient) -> None:
    response = client.post("/healthz", data={})
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "Method not allowed" in response.get_data(as_text=True)


def test_oversized_body_is_a_413_page(app: Flask, client: FlaskClient) -> None:
    app.add_url_rule("/echo", "echo", lambda: dict(request.form), methods=["POST"])
    response = client.post("/echo", data={"x": "a" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    assert "Too large" in response.get_data(as_text=True)


@pytest.mark.parametrize("code", [400, 403, 404, 405, 413, 429, 500, 503])
def test_every_error_code_renders_a_page(app: Flask, code: int) -> None:
    from webapp.errors import render_error

    with app.test_request_context("/"):
        response = render_error(code)
    assert response.status_code == code
    html = response.get_data(as_text=True)
    assert f'<p class="error-code">{code}</p>' in html
    assert "Back to the home page" in html


def test_database_outage_during_a_page_is_a_503_with_retry_after(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp.repositories import PostRepository

    def fail(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(PostRepository, "newest", fail)
    response = client.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Temporarily unavailable" in response.get_data(as_text=True)


def test_a_bug_in_our_sql_is_not_disguised_as_an_outage(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp.repositories import PostRepository

    def fail(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELEC", {}, Exception('syntax error at or near "SELEC"'))

    monkeypatch.setattr(PostRepository, "newest", fail)
    with pytest.raises(OperationalError):
        client.get("/")


def test_an_outage_while_loading_the_signed_in_user_is_a_503_page(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.factories import UserFactory

    user = UserFactory()
    user.signed_in_under("any-key")  # never looked up: the loader fails first
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()

    def fail(_token: str) -> None:
        raise OperationalError("SELECT", {}, Exception("the database system is shutting down"))

    monkeypatch.setattr(app.login_manager, "_user_callback", fail)
    response = client.get("/items/")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "Temporarily unavailable" in html
    assert "Sign in" in html  # the page renders as for a visitor
