"""Realistic demo data in bulk: batched multi-row inserts, one commit per batch."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import click
from sqlalchemy import insert, select
from werkzeug.security import generate_password_hash

from webapp.db.types import utcnow
from webapp.models import Item, Post, Tag, User, post_tags
from webapp.repositories.base import SessionLike

DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented in the README
WORDS = (
    "apple amber anchor arrow atlas autumn badge bamboo basil beacon birch blossom "
    "breeze bridge cactus candle canvas cedar cherry cinder citrus clover cobalt "
    "comet copper coral cotton crystal dahlia delta desert dune echo ember falcon "
    "fern fjord forest fossil garnet glacier granite harbor hazel horizon indigo "
    "iris island ivory jade jasmine juniper kelp lagoon lantern lava lemon lilac "
    "linen lotus maple marble meadow mercury mint mosaic nectar nickel north oak "
    "oasis olive onyx opal orchid pebble pepper pine plum prairie quartz quill rain "
    "raven reef river ruby saffron sage sand sapphire shadow silver slate spruce "
    "storm summit sunset thistle thunder topaz tulip tundra valley velvet willow "
    "winter wren zephyr "
).split()
ITEM_NOUNS = (
    "notebook lamp chair bicycle kettle camera guitar backpack jacket blender drill "
    "tent monitor keyboard bookshelf radio telescope skateboard umbrella suitcase "
).split()
FIRST_NAMES = (
    "ada alan anna ben carla dan eva finn grace hugo ida jack kim leo mia nina omar "
    "paula quinn rosa sam tara uma vic wen xavi yara zoe "
).split()


@dataclass(frozen=True)
class SeedSizes:
    users: int
    items: int
    posts: int
    tags: int
    post_tags: int


def _batches(total: int, size: int) -> Iterator[int]:
    done = 0
    while done < total:
        step = min(size, total - done)
        yield step
        done += step


def _insert_in_batches(
    session: SessionLike,
    label: str,
    total: int,
    batch_size: int,
    make_row: Callable[[int], dict[str, Any]],
    statement: Any,
    *,
    returning: bool = False,
) -> list[int]:
    ids: list[int] = []
    counter = 0
    with click.progressbar(length=total, label=f"{label:<10}", show_pos=True) as bar:
        for step in _batches(total, batch_size):
            rows = [make_row(counter + i) for i in range(step)]
            counter += step
            if returning:
                ids.extend(session.scalars(statement, rows))
            else:
                session.execute(statement, rows)
            session.commit()
            bar.update(step)
    return ids


def seed_database(
    session: SessionLike, sizes: SeedSizes, *, batch_size: int = 10_000, random_seed: int = 1
) -> None:
    rng = random.Random(random_seed)
    now = utcnow()
    year = 365 * 24 * 3600
    # On an empty database names are "first.word<n>"; a second run adds rows beside the first
    # with a random infix of its own. (Not one shared by every row: search indexes would then
    # meet it in every name, which real names never do.)
    suffix = f"{rng.randrange(10**6)}x" if session.scalar(select(User.id).limit(1)) else ""
    password_hash = generate_password_hash(DEMO_PASSWORD, method="scrypt:131072:8:1")

    def when() -> Any:
        return now - timedelta(seconds=rng.randrange(year))

    def user_row(n: int) -> dict[str, Any]:
        name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(WORDS)}{suffix}{n}"
        created = when()
        return {
            "email": f"{name}@example.com",
            "username": name[:50],
            "hashed_password": password_hash,
            "created_at": created,
            "email_confirmed_at": created,
        }

    user_ids = _insert_in_batches(
        session,
        "users",
        sizes.users,
        batch_size,
        user_row,
        insert(User).returning(User.id),
        returning=True,
    )

    def item_row(_n: int) -> dict[str, Any]:
        noun = rng.choice(ITEM_NOUNS)
        created = when()
        return {
            "title": f"{rng.choice(WORDS).capitalize()} {noun}",
            "description": f"A {rng.choice(WORDS)} {noun}, kept in the {rng.choice(WORDS)} box.",
            "owner_id": rng.choice(user_ids),
            "created_at": created,
            "updated_at": created,
        }

    _insert_in_batches(session, "items", sizes.items, batch_size, item_row, insert(Item))

    def post_row(_n: int) -> dict[str, Any]:
        created = when()
        words = rng.sample(WORDS, 4)
        return {
            "title": f"Notes on {words[0]} and {words[1]}",
            "body": f"Thoughts about {words[2]}.\n\nAnd a few more about {words[3]}.",
            "author_id": rng.choice(user_ids),
            "created_at": created,
            "updated_at": created,
        }

    post_ids = _insert_in_batches(
        session,
        "posts",
        sizes.posts,
        batch_size,
        post_row,
        insert(Post).returning(Post.id),
        returning=True,
    )

    existing = set(session.scalars(select(Tag.name)))
    names: list[str] = []
    candidates = (f"{a}-{b}" if b else a for b in ("", *WORDS) for a in WORDS)
    for candidate in candidates:
        if len(names) == sizes.tags:
            break
        if candidate not in existing:
            names.append(candidate)
    while len(names) < sizes.tags:
        names.append(f"tag-{suffix}{len(names)}")
    tag_ids = _insert_in_batches(
        session,
        "tags",
        len(names),
        batch_size,
        lambda n: {"name": names[n]},
        insert(Tag).returning(Tag.id),
        returning=True,
    )

    links = min(sizes.post_tags, len(post_ids) * len(tag_ids))
    seen: set[tuple[int, int]] = set()

    def link_row(_n: int) -> dict[str, Any]:
        while True:
            pair = (rng.choice(post_ids), rng.choice(tag_ids))
            if pair not in seen:
                seen.add(pair)
                return {"post_id": pair[0], "tag_id": pair[1]}

    _insert_in_batches(session, "post tags", links, batch_size, link_row, insert(post_tags))
