"""The mail module against a real SMTP server (aiosmtpd), and its fallbacks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.conftest import BASE_TEST_CONFIG, Mailbox, _Collector, free_port
from webapp import create_app
from webapp.mail import build_message, send_message


def make_mail_app(**overrides: Any) -> Flask:
    return create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://", **overrides})


def message_to(app: Flask, to: str = "bob@example.com") -> bool:
    with app.app_context():
        return send_message(build_message(to, "Greetings", "Hello Bob,\nhttp://x.test/a\n"))


def test_a_message_goes_out_over_smtp(mailbox: Mailbox) -> None:
    app = make_mail_app(**mailbox.config)
    assert message_to(app) is True
    [message] = mailbox.messages
    assert message["To"] == "bob@example.com"
    assert message["From"] == "webapp <no-reply@webapp.test>"
    assert message["Subject"] == "Greetings"
    assert message["Date"]
    assert message["Message-ID"].endswith("@webapp.test>")
    assert mailbox.body("bob@example.com") == "Hello Bob,\nhttp://x.test/a\n"


class _Credentials:
    def __init__(self, login: str, password: str) -> None:
        self.expected = (login.encode(), password.encode())
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        given = (auth_data.login, auth_data.password)
        self.seen.append(given)
        return AuthResult(success=given == self.expected, handled=False)


@pytest.fixture
def auth_smtp() -> Iterator[tuple[Mailbox, _Credentials]]:
    """An SMTP server that requires a user name and password (over plain text, for the test)."""
    from aiosmtpd.controller import Controller

    credentials = _Credentials("mailer", "s3cret-pass")
    collector = _Collector()
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=credentials,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield Mailbox(controller.hostname, controller.port, collector), credentials
    finally:
        controller.stop()


def test_smtp_login_uses_the_configured_credentials(
    auth_smtp: tuple[Mailbox, _Credentials],
) -> None:
    box, credentials = auth_smtp
    app = make_mail_app(**box.config, MAIL_USERNAME="mailer", MAIL_PASSWORD="s3cret-pass")
    assert message_to(app) is True
    assert credentials.seen == [(b"mailer", b"s3cret-pass")]
    assert [m["To"] for m in box.messages] == ["bob@example.com"]


def test_refused_credentials_are_logged_not_raised(
    auth_smtp: tuple[Mailbox, _Credentials], caplog: pytest.LogCaptureFixture
) -> None:
    box, _ = auth_smtp
    app = make_mail_app(**box.config, MAIL_USERNAME="mailer", MAIL_PASSWORD="wrong")
    assert message_to(app) is False
    assert box.messages == []
    assert "Could not send the message 'Greetings' to bob@example.com" in caplog.text


def test_tls_is_required_when_asked_for(mailbox: Mailbox, caplog: pytest.LogCaptureFixture) -> None:
    """With MAIL_USE_TLS the client insists on STARTTLS; this server offers none, so nothing
    goes out in clear text."""
    app = make_mail_app(**mailbox.config, MAIL_USE_TLS=True)
    assert message_to(app) is False
    assert mailbox.messages == []
    assert "STARTTLS extension not supported" in caplog.text


def test_an_unreachable_server_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    app = make_mail_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())  # nobody listens
    assert message_to(app) is False
    assert "Could not send the message" in caplog.text


@pytest.mark.parametrize("env", ["development", "testing"])
def test_without_a_server_development_logs_the_message(
    env: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_mail_app(ENV=env, TESTING=env == "testing")
    with caplog.at_level(logging.WARNING):
        assert message_to(app) is True
    assert "MAIL_SERVER is not set; this message was not sent" in caplog.text
    assert "Hello Bob," in caplog.text
    assert "http://x.test/a" in caplog.text


def test_without_a_server_production_refuses_and_keeps_links_out_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_mail_app(ENV="production", TESTING=False, TRUSTED_HOSTS=["webapp.test"])
    assert message_to(app) is False
    assert "MAIL_SERVER is not set: the message 'Greetings' to bob@example.com" in caplog.text
    assert "http://x.test/a" not in caplog.text
