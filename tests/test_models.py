from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tests.factories import ItemFactory, PostFactory, TagFactory, UserFactory
from webapp.db.types import as_utc
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, Tag, User, post_tags
from webapp.models.user import PASSWORD_METHOD


def test_timestamps_are_aware_utc_after_a_round_trip(app: Flask) -> None:
    user = UserFactory()
    db.session.expire_all()
    loaded = db.session.get(User, user.id)
    assert loaded is not None
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - loaded.created_at).total_seconds()) < 60


def test_timestamps_read_as_plain_rows_are_aware_utc_to_the_microsecond(app: Flask) -> None:
    """Core rows (the admin lists) get the same values as loaded objects, on both databases."""
    moment = datetime(2026, 3, 7, 16, 25, 27, 219999, tzinfo=timezone(timedelta(hours=5)))
    user = UserFactory(created_at=moment)
    stored = db.session.connection().execute(
        select(User.__table__.c.created_at).where(User.__table__.c.id == user.id)
    )
    value = stored.scalar_one()
    assert value == moment
    assert value.tzinfo is UTC
    assert (value.hour, value.microsecond) == (11, 219999)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-2))),
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=UTC),
        ),
    ],
)
def test_as_utc_gives_aware_utc(value: datetime | None, expected: datetime | None) -> None:
    result = as_utc(value)
    assert result == expected
    assert result is None or result.tzinfo is UTC


def test_naive_datetimes_are_refused(app: Flask) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        UserFactory(created_at=datetime(2020, 1, 1))


def test_each_row_gets_its_own_created_at(app: Flask) -> None:
    first, second = UserFactory(), UserFactory()
    assert first.created_at <= second.created_at
    assert first.created_at is not second.created_at


def test_email_is_stored_lower_case(app: Flask) -> None:
    user = UserFactory(email="  Mixed.Case@Example.COM ")
    db.session.expire_all()
    assert db.session.get(User, user.id).email == "mixed.case@example.com"  # type: ignore[union-attr]


def test_email_is_unique(app: Flask) -> None:
    UserFactory(email="same@example.com")
    with pytest.raises(IntegrityError, match="uq_users_email|UNIQUE"):
        UserFactory(email="SAME@example.com")
    db.session.rollback()


def test_username_is_unique_ignoring_case(app: Flask) -> None:
    UserFactory(username="Alice")
    with pytest.raises(IntegrityError):
        UserFactory(username="alice")
    db.session.rollback()


def test_password_is_hashed_with_scrypt_and_checked(app: Flask) -> None:
    user = UserFactory()
    user.set_password("a long passphrase")
    assert user.hashed_password.startswith(PASSWORD_METHOD + "$")
    assert "a long passphrase" not in user.hashed_password
    assert user.check_password("a long passphrase")
    assert not user.check_password("wrong")
    assert not user.password_needs_rehash


def test_malformed_stored_hash_fails_cleanly(app: Flask) -> None:
    user = UserFactory(hashed_password="not-a-hash")
    assert user.check_password("anything") is False
    assert user.password_needs_rehash


def test_session_id_carries_the_session_key(app: Flask) -> None:
    user = UserFactory()
    user.signed_in_under("a-random-key")
    assert user.get_id() == f"{user.id}:a-random-key"


def test_relationships_both_ways(app: Flask) -> None:
    owner = UserFactory()
    item = ItemFactory(owner=owner)
    tag = TagFactory(name="python")
    post = PostFactory(author=owner, tags=[tag])
    db.session.expire_all()
    owner = db.session.get(User, owner.id)
    assert owner is not None
    assert [i.id for i in owner.items] == [item.id]
    assert [p.id for p in owner.posts] == [post.id]
    assert db.session.get(Item, item.id).owner.id == owner.id  # type: ignore[union-attr]
    assert [p.id for p in db.session.get(Tag, tag.id).posts] == [post.id]  # type: ignore[union-attr]


def test_deleting_a_user_removes_their_items_posts_and_links(app: Flask) -> None:
    owner = UserFactory()
    other = UserFactory()
    tag = TagFactory()
    ItemFactory(owner=owner)
    ItemFactory(owner=other)
    PostFactory(author=owner, tags=[tag])
    db.session.delete(owner)
    db.session.flush()
    assert db.session.scalars(select(Item)).all()[0].owner_id == other.id
    assert db.session.scalars(select(Post)).all() == []
    assert db.session.execute(select(post_tags)).all() == []
    assert db.session.get(Tag, tag.id) is not None


def test_deleting_a_post_or_tag_removes_only_links(app: Flask) -> None:
    tag_a, tag_b = TagFactory(), TagFactory()
    post = PostFactory(tags=[tag_a, tag_b])
    db.session.delete(tag_a)
    db.session.flush()
    db.session.expire_all()
    assert [t.id for t in db.session.get(Post, post.id).tags] == [tag_b.id]  # type: ignore[union-attr]
    db.session.delete(db.session.get(Post, post.id))
    db.session.flush()
    assert db.session.execute(select(post_tags)).all() == []
    assert db.session.get(Tag, tag_b.id) is not None


def test_audit_actor_deletion_keeps_the_event(app: Flask) -> None:
    actor = UserFactory(username="admin1")
    event = AuditEvent(action="user.update", actor_id=actor.id, actor_name=actor.username)
    db.session.add(event)
    db.session.flush()
    db.session.delete(actor)
    db.session.flush()
    db.session.expire_all()
    kept = db.session.get(AuditEvent, event.id)
    assert kept is not None
    assert kept.actor_id is None
    assert kept.actor_name == "admin1"


def test_version_increments_on_update(app: Flask) -> None:
    item = ItemFactory()
    assert item.version == 1
    item.title = "Changed"
    db.session.flush()
    assert item.version == 2
