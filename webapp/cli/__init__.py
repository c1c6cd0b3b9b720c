"""Command line: ``flask --app webapp create-admin``, ``seed``, ``mail deliver``,
``mail prune``, ``sessions prune`` and ``trash purge``."""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import Blueprint
from sqlalchemy.exc import IntegrityError

from webapp.admin import services as admin_services
from webapp.cli.mail import mail
from webapp.cli.seed import SeedSizes, seed_database
from webapp.cli.sessions import sessions
from webapp.cli.trash import trash
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.repositories import UserRepository
from webapp.validation import (
    ValidationError,
    normalise_email,
    validate_password,
    validate_username,
)

bp = Blueprint("cli", __name__, cli_group=None)
bp.cli.add_command(mail)
bp.cli.add_command(sessions)
bp.cli.add_command(trash)


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """Wrap a validator as a click ``value_proc`` that re-asks on a bad value."""

    def convert(value: str) -> str:
        try:
            return check(value)
        except ValidationError as error:
            raise click.BadParameter(str(error)) from error

    return convert


@bp.cli.command("create-admin")
@click.option("--email", help="The admin's email address.")
@click.option("--username", help="3-50 letters, digits, _ . -")
@click.option("--password", help="At least 10 characters. Prompted (hidden) when omitted.")
def create_admin(email: str | None, username: str | None, password: str | None) -> None:
    """Create an administrator account (asks for what is not given)."""
    try:
        email = normalise_email(email) if email else None
        username = validate_username(username) if username else None
    except ValidationError as error:
        raise click.BadParameter(str(error)) from error
    if email is None:
        email = click.prompt("Email", value_proc=_checked(normalise_email))
    if username is None:
        username = click.prompt("Username", value_proc=_checked(validate_username))
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        validate_password(password, email=email, username=username)
    except ValidationError as error:
        raise click.BadParameter(str(error), param_hint="password") from error

    users = UserRepository(db.session)
    if users.email_taken(email) or users.username_taken(username):
        raise click.ClickException("A user with that email or username already exists.")
    # Through the admin console's own code, so that it is audited as the console's changes are.
    admin_services.create_user(
        None,
        email=email,
        username=username,
        password=password,
        is_admin=True,
        email_confirmed_at=utcnow(),
    )
    try:
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        raise click.ClickException("A user with that email or username already exists.") from error
    click.echo(f"Admin {username} <{email}> created.")


@bp.cli.command("seed")
@click.option("--users", default=50, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--items", default=500, show_default=True, type=click.IntRange(0, 100_000_000))
@click.option("--posts", default=200, show_default=True, type=click.IntRange(0, 10_000_000))
@click.option("--tags", default=30, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--post-tags", default=500, show_default=True, type=click.IntRange(0, 100_000_000))
@click.option("--batch-size", default=10_000, show_default=True, type=click.IntRange(100, 100_000))
@click.option("--seed", "random_seed", default=1, show_default=True, help="Random seed.")
def seed(
    users: int, items: int, posts: int, tags: int, post_tags: int, batch_size: int, random_seed: int
) -> None:
    """Fill the database with realistic demo data (password of every demo user: demo-password)."""
    sizes = SeedSizes(users=users, items=items, posts=posts, tags=tags, post_tags=post_tags)
    seed_database(db.session, sizes, batch_size=batch_size, random_seed=random_seed)
    click.echo(
        f"Seeded {users} users, {items} items, {posts} posts, {tags} tags, "
        f"{post_tags} post-tag links."
    )
