from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from webapp.extensions import db
from webapp.models import Item, Post, User, post_tags
from webapp.models.post import split_tag_names as tag_names
from webapp.repositories import (
    AuditRepository,
    ItemRepository,
    Page,
    PostRepository,
    TagRepository,
    UserRepository,
    like_pattern,
)
from webapp.repositories.versioned import AlreadyDeleted


def test_get_returns_the_row_or_none(app: Flask) -> None:
    user = UserFactory()
    users = UserRepository(db.session)
    assert users.get(user.id) is user
    assert users.get(999_999) is None


def test_create_adds_and_flushes_without_committing(app: Flask) -> None:
    users = UserRepository(db.session)
    user = users.create(email="new@example.com", username="newbie", hashed_password="x")
    assert user.id is not None
    db.session.rollback()
    assert users.get_by_email("new@example.com") is None


def test_create_user_hashes_the_password(app: Flask) -> None:
    user = UserRepository(db.session).create_user(
        email="Hash@Example.com", username="hasher", password="a good long one"
    )
    assert user.email == "hash@example.com"
    assert user.check_password("a good long one")
    assert "a good long one" not in user.hashed_password


def test_update_changes_only_the_fields_given(app: Flask) -> None:
    item = ItemFactory(title="Old", description="Keep me")
    ItemRepository(db.session).update(item, title="New")
    db.session.expire_all()
    loaded = db.session.get(Item, item.id)
    assert loaded is not None
    assert (loaded.title, loaded.description, loaded.version) == ("New", "Keep me", 2)


def test_update_refuses_unknown_fields(app: Flask) -> None:
    with pytest.raises(AttributeError, match="no field 'colour'"):
        ItemRepository(db.session).update(ItemFactory(), colour="red")


def test_update_with_a_stale_version_raises(app: Flask) -> None:
    item = ItemFactory()
    db.session.execute(
        Item.__table__.update().where(Item.id == item.id).values(version=Item.version + 1)
    )
    with pytest.raises(StaleDataError):
        ItemRepository(db.session).update(item, title="Mine")
    db.session.rollback()


def test_delete_removes_the_row(app: Flask) -> None:
    item = ItemFactory()
    items = ItemRepository(db.session)
    items.delete(item)
    assert items.get(item.id) is None


def test_list_paginates_filters_and_orders(app: Flask) -> None:
    owner = UserFactory()
    for n in range(25):
        ItemFactory(owner=owner, title=f"Thing {n:02d}")
    ItemFactory(title="Someone else's")
    items = ItemRepository(db.session)
    page = items.list(
        filters=[Item.owner_id == owner.id], order_by=[Item.title], page=2, per_page=10
    )
    assert isinstance(page, Page)
    assert [i.title for i in page.items] == [f"Thing {n:02d}" for n in range(10, 20)]
    assert (page.total, page.pages, page.has_prev, page.has_next) == (25, 3, True, True)
    assert (page.first_index, page.last_index) == (11, 20)


@pytest.mark.parametrize(("asked", "shown"), [(0, 1), (-5, 1), (None, 1), (3, 3), (10**9, 3)])
def test_page_numbers_out_of_range_show_a_sensible_page(
    app: Flask, asked: int | None, shown: int
) -> None:
    for _ in range(25):
        ItemFactory()
    page = ItemRepository(db.session).list(page=asked, per_page=10)
    assert page.page == shown
    assert page.items


@pytest.mark.parametrize(("asked", "used"), [(0, 1), (-1, 1), (10_000, 100), (7, 7)])
def test_page_sizes_are_clamped(app: Flask, asked: int, used: int) -> None:
    assert ItemRepository(db.session).list(per_page=asked).per_page == used


def test_empty_list_is_one_empty_page(app: Flask) -> None:
    page = ItemRepository(db.session).list(page=4)
    assert (page.page, page.pages, page.total, list(page.items)) == (1, 1, 0, [])


def test_iter_pages_elides_long_runs() -> None:
    page: Page[int] = Page(items=[1], page=10, per_page=1, total=20)
    assert list(page.iter_pages()) == [1, None, 8, 9, 10, 11, 12, None, 20]


def test_get_by_email_ignores_case_and_spaces(app: Flask) -> None:
    user = UserFactory(email="bob@example.com")
    assert UserRepository(db.session).get_by_email("  BOB@example.com ") is user


def test_get_by_username_ignores_case(app: Flask) -> None:
    user = UserFactory(username="Bob.Smith")
    users = UserRepository(db.session)
    assert users.get_by_username("bob.smith") is user
    assert users.get_by_username("bob") is None


def test_get_by_login_takes_email_or_username(app: Flask) -> None:
    user = UserFactory(username="carol", email="carol@example.com")
    users = UserRepository(db.session)
    assert users.get_by_login("Carol") is user
    assert users.get_by_login("CAROL@example.com") is user
    assert users.get_by_login("nobody") is None


def test_user_unique_violation_names_its_constraint(app: Flask) -> None:
    UserFactory(email="taken@example.com", username="taken")
    users = UserRepository(db.session)
    for values in (
        {"email": "taken@example.com", "username": "free"},
        {"email": "free@example.com", "username": "TAKEN"},
    ):
        with pytest.raises(IntegrityError) as caught, db.session.begin_nested():
            users.create(hashed_password="x", **values)
        constraint = "uq_users_email" if values["username"] == "free" else "uq_users_username_lower"
        message = str(caught.value.orig)
        # PostgreSQL names the constraint; SQLite names the column(s) instead.
        assert constraint in message or "users.email" in message or "lower" in message.lower()


def test_user_search_matches_email_and_username_with_wildcards_escaped(app: Flask) -> None:
    a = UserFactory(username="dora_100", email="d@example.com")
    UserFactory(username="dorax100", email="x@example.com")
    b = UserFactory(username="eve", email="dora_100@mail.example")
    users = UserRepository(db.session)
    found = {u.id for u in users.search("DORA_1").items}
    assert found == {a.id, b.id}
    assert users.search("100%").items == []


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%"


def test_count_admins(app: Flask) -> None:
    UserFactory(is_admin=True)
    UserFactory(is_admin=True, is_active=False)
    UserFactory()
    users = UserRepository(db.session)
    assert users.count_admins() == 1
    assert users.count_admins(active_only=False) == 2


def test_newest_users_first(app: Flask) -> None:
    first, second = UserFactory(), UserFactory()
    assert [u.id for u in UserRepository(db.session).newest(2)] == [second.id, first.id]


def test_owner_items_only_and_search(app: Flask) -> None:
    owner, other = UserFactory(), UserFactory()
    lamp = ItemFactory(owner=owner, title="Desk lamp", description="brass")
    chair = ItemFactory(owner=owner, title="Chair", description="Oak, with a brass plate")
    ItemFactory(owner=other, title="Desk lamp")
    items = ItemRepository(db.session)
    assert [i.id for i in items.for_owner(owner.id).items] == [chair.id, lamp.id]
    assert [i.id for i in items.for_owner(owner.id, q="LAMP").items] == [lamp.id]
    assert {i.id for i in items.for_owner(owner.id, q="brass").items} == {lamp.id, chair.id}


def test_get_for_owner_hides_other_peoples_items(app: Flask) -> None:
    owner, other = UserFactory(), UserFactory()
    item = ItemFactory(owner=owner)
    items = ItemRepository(db.session)
    assert items.get_for_owner(item.id, owner.id) is item
    assert items.get_for_owner(item.id, other.id) is None


def test_feed_reads_posts_authors_and_tags_in_one_query(app: Flask, count_queries) -> None:
    posts = PostRepository(db.session)
    counts = []
    for size in (5, 10):
        while (made := len(posts.feed(per_page=100).items)) < size:
            PostFactory(tags=[TagFactory(name=f"t{made}b"), TagFactory(name=f"t{made}a")])
        db.session.expire_all()
        with count_queries() as statements:
            page = posts.feed(per_page=100)
        counts.append(len(statements))
        newest = page.items[0]
        author = db.session.get(User, newest.author_id)
        assert author is not None and newest.author_username == author.username
        assert tag_names(newest.tag_names) == [f"t{size - 1}a", f"t{size - 1}b"]
    assert counts[0] == counts[1] == 1  # posts, their authors and tags (and their count)


def test_post_view_is_one_query_with_author_and_tags(app: Flask, count_queries) -> None:
    post = PostFactory(tags=[TagFactory(name="b"), TagFactory(name="a")], body="Body")
    post_id = post.id
    db.session.expire_all()
    with count_queries() as statements:
        shown = PostRepository(db.session).view(post_id)
    assert len(statements) == 1
    assert shown is not None
    assert (shown.title, shown.body, shown.author_username) == (
        post.title,
        "Body",
        post.author.username,
    )
    assert tag_names(shown.tag_names) == ["a", "b"]
    assert PostRepository(db.session).view(123456) is None


def test_feed_filters_by_title_tag_and_author(app: Flask) -> None:
    python = TagFactory(name="python")
    author = UserFactory()
    a = PostFactory(title="Python tips", tags=[python], author=author)
    b = PostFactory(title="Gardening tips")
    posts = PostRepository(db.session)
    assert {p.id for p in posts.feed(q="tips").items} == {a.id, b.id}
    assert [p.id for p in posts.feed(tag="python").items] == [a.id]
    assert [p.id for p in posts.feed(author_id=author.id).items] == [a.id]
    assert posts.feed(tag="nope").items == []


def test_get_with_relations(app: Flask) -> None:
    post = PostFactory(tags=[TagFactory(name="b"), TagFactory(name="a")])
    db.session.expire_all()
    loaded = PostRepository(db.session).get_with_relations(post.id)
    assert loaded is not None
    assert [t.name for t in loaded.tags] == ["a", "b"]
    assert PostRepository(db.session).get_with_relations(123456) is None


def test_tags_get_or_create_reuses_and_creates(app: Flask) -> None:
    existing = TagFactory(name="old")
    tags = TagRepository(db.session)
    result = tags.get_or_create(["new", "old", "new"])
    assert [t.name for t in result] == ["new", "old"]
    assert result[1] is existing
    assert tags.get_by_name("new") is not None
    assert tags.get_or_create([]) == []


def test_tags_with_counts(app: Flask) -> None:
    popular, rare, unused = (
        TagFactory(name="popular"),
        TagFactory(name="rare"),
        TagFactory(name="unused"),
    )
    PostFactory(tags=[popular, rare])
    PostFactory(tags=[popular])
    page = TagRepository(db.session).page_with_counts(page=1, per_page=2)
    assert [(t.name, n) for t, n in page.items] == [("popular", 2), ("rare", 1)]
    assert (page.total, page.pages) == (3, 2)
    assert TagRepository(db.session).names() == ["popular", "rare", "unused"]
    assert unused.id


def test_audit_record_never_keeps_secrets(app: Flask) -> None:
    actor = UserFactory(username="boss")
    event = AuditRepository(db.session).record(
        "user.update",
        actor=actor,
        target_type="user",
        target_id=7,
        before={"email": "a@example.com", "hashed_password": "scrypt$..."},
        after={"email": "b@example.com", "password": "hunter2hunter2"},
        ip_address="127.0.0.1",
    )
    db.session.expire_all()
    assert event.before == {"email": "a@example.com"}
    assert event.after == {"email": "b@example.com"}
    assert event.actor_name == "boss"
    assert [e.id for e in AuditRepository(db.session).latest()] == [event.id]


def test_delete_of_a_row_someone_deleted_raises_already_deleted(app: Flask) -> None:
    item = ItemFactory()
    db.session.execute(delete(Item.__table__).where(Item.id == item.id))
    with pytest.raises(AlreadyDeleted):
        ItemRepository(db.session).delete(item)
    db.session.rollback()


def test_delete_of_a_row_edited_since_it_was_read_still_deletes(app: Flask) -> None:
    """A delete asks "delete this?", not "delete this version": a newer version goes too."""
    post = PostFactory(tags=[TagFactory()])
    db.session.execute(
        Post.__table__.update().where(Post.id == post.id).values(version=Post.version + 1)
    )
    PostRepository(db.session).delete(post)
    db.session.expire_all()
    assert db.session.get(Post, post.id) is None
    assert db.session.scalar(select(func.count()).select_from(post_tags)) == 0
