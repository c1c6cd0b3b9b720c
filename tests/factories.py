"""factory_boy factories bound to the current test's session."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory
from werkzeug.security import generate_password_hash

from webapp.extensions import db
from webapp.models import Item, OutboxMessage, Post, Tag, User
from webapp.models.user import PASSWORD_METHOD

PASSWORD = "correct-horse-battery"
# Hashing with production parameters takes a noticeable time: do it once per run.
PASSWORD_HASH = generate_password_hash(PASSWORD, method=PASSWORD_METHOD)


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.Sequence(lambda n: f"user{n}")
    hashed_password = PASSWORD_HASH
    is_active = True
    is_admin = False


class ItemFactory(BaseFactory):
    class Meta:
        model = Item

    title = factory.Sequence(lambda n: f"Item {n}")
    description = "Something worth keeping."
    owner = factory.SubFactory(UserFactory)


class TagFactory(BaseFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"tag-{n}")


class PostFactory(BaseFactory):
    class Meta:
        model = Post

    title = factory.Sequence(lambda n: f"Post {n}")
    body = "A few words."
    author = factory.SubFactory(UserFactory)

    @factory.post_generation
    def tags(self, create: bool, extracted: list[Tag] | None, **kwargs: object) -> None:
        if extracted:
            self.tags.extend(extracted)
            if create:
                db.session.flush()


class OutboxMessageFactory(BaseFactory):
    class Meta:
        model = OutboxMessage

    message_id = factory.Sequence(lambda n: f"<{n}.factory@webapp.test>")
    recipient = factory.Sequence(lambda n: f"reader{n}@example.com")
    subject = "Confirm your email address"
    body_text = "Hello,\n\nhttps://webapp.test/auth/confirm/secret-token\n"
    body_html = None
