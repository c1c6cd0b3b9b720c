"""Concurrent requests racing for the same row, on real PostgreSQL connections."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from tests.conftest import BASE_TEST_CONFIG, postgres_url
from tests.helpers import CSRFClient
from webapp import create_app
from webapp.extensions import db
from webapp.models import Item, Tag
from webapp.repositories import TagRepository


@pytest.fixture
def committed_app(postgres_engine: Engine) -> Iterator[Flask]:
    """An app whose sessions commit for real (races need separate transactions)."""
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": postgres_url()})
    app.test_client_class = CSRFClient
    yield app
    with app.app_context():
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


def race(workers: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(n)`` in ``workers`` threads released at the same instant."""
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = action(n)
        except Exception as error:  # reported to the test, not swallowed
            results[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_tag_creation_makes_one_tag(committed_app: Flask) -> None:
    def create(_n: int) -> int:
        with committed_app.app_context():
            engine = db.engine
        with Session(engine) as session:
            tags = TagRepository(session).get_or_create(["race-tag", "other"])
            session.commit()
            return tags[0].id

    ids = race(6, create)
    assert all(isinstance(i, int) for i in ids), ids
    assert len(set(ids)) == 1
    with committed_app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Tag).where(Tag.name == "race-tag")
        )
    assert count == 1


def test_concurrent_edits_of_one_item_never_fail(committed_app: Flask) -> None:
    from tests.factories import ItemFactory, UserFactory
    from tests.helpers import AuthActions

    with committed_app.app_context():
        owner = UserFactory()
        item = ItemFactory(owner=owner, title="Original")
        db.session.commit()
        item_id = item.id

    def edit(n: int) -> tuple[int, str]:
        with committed_app.app_context():
            client = committed_app.test_client()
            AuthActions(client).login(owner)
            response = client.post(
                f"/items/{item_id}/edit",
                data={"title": f"Edit {n}", "description": f"by {n}", "version": "1"},
            )
            return response.status_code, response.get_data(as_text=True)

    results = race(4, edit)
    statuses = sorted(status for status, _ in results)
    assert set(statuses) <= {302, 409}, statuses
    assert statuses.count(302) == 1  # exactly one save wins; the others are told
    for status, html in results:
        if status == 409:
            assert "changed since you opened it" in html
    with committed_app.app_context():
        saved = db.session.get(Item, item_id)
        assert saved is not None
        assert saved.version == 2
        assert saved.title.startswith("Edit ")
        assert saved.description == "by " + saved.title.removeprefix("Edit ")
