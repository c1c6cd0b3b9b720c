"""Concurrent requests racing for the same row: on real PostgreSQL connections, and simulated
(the other request's work done between two steps of this one) on both databases."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, request
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

from tests.conftest import BASE_TEST_CONFIG, postgres_url
from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from tests.helpers import AuthActions, CSRFClient
from webapp import create_app
from webapp.errors import ALREADY_DELETED
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, Tag, User, post_tags
from webapp.repositories import ItemRepository, PostRepository, TagRepository


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


# -- Two deletes of one row ----------------------------------------------------------------------


@dataclass(frozen=True)
class Deleter:
    """One way to delete a row: who, at which URL, and what the views load it with."""

    role: str  # "owner" or "admin"
    url: str  # with {id}
    loader: tuple[type, str]  # (repository class, method) that loads the row for the delete
    done: str  # where a delete (or a delete that found the row gone) leads
    deleted: str  # the flash of the one that deletes, "{title}" for the row's title
    # The second's answer: a redirect with this flash, or (None) the 404 page saying so.
    already: str | None


ITEM_BY_OWNER = Deleter(
    role="owner",
    url="/items/{id}/delete",
    loader=(ItemRepository, "get_for_owner"),
    done="/items/",
    deleted="Item “{title}” moved to your trash",
    already="Item “{title}” had already been deleted.",
)
POST_BY_AUTHOR = Deleter(
    role="owner",
    url="/posts/{id}/delete",
    loader=(PostRepository, "get_with_relations"),
    done="/posts/",
    deleted="Post “{title}” moved to your trash",
    already="Post “{title}” had already been deleted.",
)
ITEM_BY_ADMIN = Deleter(
    role="admin",
    url="/admin/items/{id}/delete",
    loader=(ItemRepository, "get"),
    done="/admin/items",
    deleted="Item “{title}” moved to the trash.",
    already=None,
)
POST_BY_ADMIN = Deleter(
    role="admin",
    url="/admin/posts/{id}/delete",
    loader=(PostRepository, "get"),
    done="/admin/posts",
    deleted="Post “{title}” moved to the trash.",
    already=None,
)
MODELS = {ItemRepository: Item, PostRepository: Post}


def make_row(model: type, owner: User, title: str) -> Item | Post:
    if model is Item:
        return ItemFactory(owner=owner, title=title)
    return PostFactory(author=owner, title=title, tags=[TagFactory(), TagFactory()])


def after_loading(
    monkeypatch: pytest.MonkeyPatch, deleters: list[Deleter], then: Callable[[Any, Any], None]
) -> None:
    """Run ``then(repository, row)`` in every delete request, just after its view loaded the
    row and before it deletes it."""
    for repository, method in {deleter.loader for deleter in deleters}:
        original = getattr(repository, method)

        def load(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            row = _original(self, *args, **kwargs)
            if row is not None and request.method == "POST":
                then(self, row)
            return row

        monkeypatch.setattr(repository, method, load)


def check_answers(results: list[Any], deleters: list[Deleter], title: str) -> None:
    """One request deleted the row; the other was told it was gone already, never a 500.

    ``results``: (status, where it led, the page it led to or showed), per deleter.
    """
    assert all(isinstance(result, tuple) for result in results), results
    won = [
        n
        for n, (status, _, page) in enumerate(results)
        if status == 302
        and deleters[n].deleted.format(title=title) in page
        and "already" not in page
    ]
    assert len(won) == 1, results
    (loser,) = {0, 1} - set(won)
    status, location, page = results[loser]
    expected = deleters[loser]
    if expected.already is None:
        assert status == 404, results
        assert ALREADY_DELETED in page
    else:
        assert (status, location) == (302, expected.done), results
        assert expected.already.format(title=title) in page


def send_delete(client: CSRFClient, url: str) -> tuple[int, str | None, str]:
    response = client.post(url, data={})
    if response.status_code != 302:
        return response.status_code, None, response.get_data(as_text=True)
    location = response.headers["Location"]
    return 302, location, client.get(location).get_data(as_text=True)


PAIRS = {
    "item-twice": [ITEM_BY_OWNER, ITEM_BY_OWNER],
    "post-twice": [POST_BY_AUTHOR, POST_BY_AUTHOR],
    "post-author-and-admin": [POST_BY_AUTHOR, POST_BY_ADMIN],
    "item-owner-and-admin": [ITEM_BY_OWNER, ITEM_BY_ADMIN],
}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_two_deletes_of_one_row_at_once_delete_it_once_and_say_so(
    committed_app: Flask, monkeypatch: pytest.MonkeyPatch, pair: str
) -> None:
    """Both requests have loaded the row before either deletes it: the second's delete waits
    for the first to commit, then finds the row gone."""
    deleters = PAIRS[pair]
    model = MODELS[deleters[0].loader[0]]
    with committed_app.app_context():
        owner = UserFactory(is_admin=False)
        admin = UserFactory(is_admin=True)
        row = make_row(model, owner, "Twice deleted")
        db.session.commit()
        row_id, users = row.id, {"owner": owner, "admin": admin}

    loaded = threading.Barrier(2, timeout=15)
    after_loading(monkeypatch, deleters, lambda repository, row: loaded.wait())

    def delete_it(n: int) -> tuple[int, str | None, str]:
        with committed_app.app_context():
            client = committed_app.test_client()
            AuthActions(client).login(users[deleters[n].role])
            return send_delete(client, deleters[n].url.format(id=row_id))

    results = race(2, delete_it)
    check_answers(results, deleters, "Twice deleted")
    with committed_app.app_context():
        assert db.session.get(model, row_id) is None  # in the trash: out of every query
        # Its tag links stay for a restore, but no live post has them.
        live_links = select(func.count()).select_from(post_tags).join(Post)
        assert db.session.scalar(live_links) == 0
        # An admin's delete is in the audit log only if it happened.
        admin_deletes = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.like("admin.%.trash"))
        )
        assert admin_deletes == sum(
            1
            for n, deleter in enumerate(deleters)
            if deleter.role == "admin" and results[n][0] == 302
        )


@pytest.mark.parametrize(
    "deleter",
    [ITEM_BY_OWNER, POST_BY_AUTHOR, ITEM_BY_ADMIN, POST_BY_ADMIN],
    ids=["item", "post", "admin-item", "admin-post"],
)
def test_a_delete_that_finds_its_row_gone_says_so(
    app: Flask,
    client: CSRFClient,
    auth: AuthActions,
    monkeypatch: pytest.MonkeyPatch,
    deleter: Deleter,
) -> None:
    """Simulated on either database: another request deletes the row (and commits) between
    this one loading it and deleting it."""
    model = MODELS[deleter.loader[0]]
    owner = UserFactory(is_admin=deleter.role == "admin")
    row = make_row(model, owner, "Gone already")
    db.session.commit()
    row_id = row.id
    auth.login(owner)

    def deleted_elsewhere(repository: Any, row: Any) -> None:
        table = type(row).__table__  # Core: this session learns nothing of it
        repository.session.execute(delete(table).where(table.c.id == row.id))
        repository.session.commit()

    after_loading(monkeypatch, [deleter], deleted_elsewhere)
    status, location, page = send_delete(client, deleter.url.format(id=row_id))

    if deleter.already is None:
        assert status == 404, page
        assert ALREADY_DELETED in page
    else:
        assert (status, location) == (302, deleter.done), page
        assert deleter.already.format(title="Gone already") in page
    db.session.expire_all()
    assert db.session.get(model, row_id) is None
    # Nothing of the failed delete was kept (an admin's audit entry included).
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0
