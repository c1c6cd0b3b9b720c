from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from tests.factories import UserFactory
from tests.helpers import AuthActions
from webapp.extensions import db
from webapp.models import AuditEvent, Item, Post, Tag, User, post_tags
from webapp.repositories import UserRepository


def audit_events() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_create_admin_with_options(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "Boss@Example.com",
            "--username",
            "boss",
            "--password",
            "a-strong-password",
        ]
    )
    assert result.exit_code == 0, result.output
    user = UserRepository(db.session).get_by_email("boss@example.com")
    assert user is not None
    assert user.is_admin and user.is_active and user.is_confirmed
    assert user.check_password("a-strong-password")


def test_create_admin_is_audited_as_the_command_line(runner: FlaskCliRunner) -> None:
    """The same event the admin console writes when it makes a user, by the command line."""
    args = ["create-admin", "--email", "boss@example.com", "--username", "boss"]
    result = runner.invoke(args=[*args, "--password", "a-strong-password"])
    assert result.exit_code == 0, result.output
    user = UserRepository(db.session).get_by_username("boss")
    assert user is not None
    [event] = audit_events()
    assert event.action == "admin.user.create"
    assert (event.actor_id, event.actor_name) == (None, "command line")
    assert (event.target_type, event.target_id) == ("user", user.id)
    assert event.before is None
    assert event.after == {
        "email": "boss@example.com",
        "username": "boss",
        "is_active": True,
        "is_admin": True,
    }
    assert event.ip_address is None
    recorded = json.dumps([event.before, event.after])
    assert "a-strong-password" not in recorded
    assert user.hashed_password not in recorded


def test_the_audit_log_shows_the_command_lines_admin(
    client: FlaskClient, runner: FlaskCliRunner, auth: AuthActions, admin_user: User
) -> None:
    args = ["create-admin", "--email", "boss@example.com", "--username", "boss"]
    assert runner.invoke(args=[*args, "--password", "a-strong-password"]).exit_code == 0
    auth.login(admin_user)
    page = client.get("/admin/audit?actor=command+line")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "command line" in html
    assert "admin.user.create" in html


def test_a_refused_create_admin_records_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    UserFactory(username="Boss")
    args = ["create-admin", "--email", "new@example.com", "--username", "boss"]
    result = runner.invoke(args=[*args, "--password", "a-strong-password"])
    assert result.exit_code != 0
    assert audit_events() == []


def test_create_admin_prompts_and_hides_the_password(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["create-admin"],
        input="boss@example.com\nboss\nsecret-passphrase\nsecret-passphrase\n",
    )
    assert result.exit_code == 0, result.output
    assert "secret-passphrase" not in result.output
    assert "Admin boss <boss@example.com> created." in result.output
    assert UserRepository(db.session).get_by_username("boss") is not None


def test_create_admin_reasks_a_bad_email(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["create-admin", "--username", "boss", "--password", "a-strong-password"],
        input="not-an-email\nboss@example.com\n",
    )
    assert result.exit_code == 0, result.output
    assert "valid email" in result.output


def test_create_admin_refuses_a_weak_password(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "b@example.com",
            "--username",
            "boss",
            "--password",
            "1234567890",
        ]
    )
    assert result.exit_code != 0
    assert "more than digits" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_create_admin_refuses_a_taken_username(app: Flask, runner: FlaskCliRunner) -> None:
    UserFactory(username="Boss")
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "new@example.com",
            "--username",
            "boss",
            "--password",
            "a-strong-password",
        ]
    )
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_seed_fills_every_table(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "seed",
            "--users",
            "20",
            "--items",
            "300",
            "--posts",
            "40",
            "--tags",
            "15",
            "--post-tags",
            "60",
            "--batch-size",
            "100",
        ]
    )
    assert result.exit_code == 0, result.output
    counts = {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (User, Item, Post, Tag)
    }
    assert counts == {"User": 20, "Item": 300, "Post": 40, "Tag": 15}
    assert db.session.scalar(select(func.count()).select_from(post_tags)) == 60
    assert "Seeded 20 users" in result.output
    demo = db.session.scalars(select(User)).first()
    assert demo is not None and demo.check_password("demo-password")


def test_seed_twice_adds_beside_the_first_run(runner: FlaskCliRunner) -> None:
    args = [
        "seed",
        "--users",
        "5",
        "--items",
        "5",
        "--posts",
        "5",
        "--tags",
        "5",
        "--post-tags",
        "5",
    ]
    assert runner.invoke(args=args).exit_code == 0
    second = runner.invoke(args=[*args, "--seed", "2"])
    assert second.exit_code == 0, second.output
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 10
    assert db.session.scalar(select(func.count()).select_from(User)) == 10
