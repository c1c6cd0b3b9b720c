"""Two-factor sign-in (TOTP), its recovery codes, and admins who must use it."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.account_helpers import field_errors, flashes, is_signed_in, sign_in, text
from tests.factories import PASSWORD, UserFactory
from tests.helpers import AuthActions, QueryCounter, redirect_target
from webapp.auth import two_factor
from webapp.extensions import db
from webapp.models import AuditEvent, RecoveryCode, User, utcnow
from webapp.repositories import SessionRepository, UserRepository

CODE_IN_LIST = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")

# RFC 6238, appendix B: the SHA-1 key "12345678901234567890", 8 digits, 30-second steps.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


def events(action: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(db.session.scalars(stmt))


def code_at(user: User, offset_steps: int = 0) -> str:
    """The code ``user``'s app shows now (``offset_steps`` 30-second steps later)."""
    secret = two_factor.secret_of(db.session.get(User, user.id) or user)
    assert secret is not None
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def turn_on(client: FlaskClient, user: User) -> list[str]:
    """Set two-factor up through the pages (``user`` signed in on ``client``); its codes."""
    assert client.post("/account/two-factor/setup", data={}).status_code == 302
    response = client.post("/account/two-factor", data={"code": code_at(user)})
    assert redirect_target(response).startswith("/account/two-factor/recovery-codes")
    codes = CODE_IN_LIST.findall(text(client.get(redirect_target(response))))
    assert len(codes) == 10
    return codes


@pytest.fixture
def me(app: Flask, client: FlaskClient, auth: AuthActions) -> User:
    user = UserFactory(username="alice", email="alice@example.com")
    return auth.login(user)


@pytest.fixture
def protected(me: User, client: FlaskClient) -> tuple[User, list[str]]:
    """``me`` with two-factor on, signed out again; and the recovery codes."""
    codes = turn_on(client, me)
    client.post("/auth/logout", data={})
    return me, codes


# -- The library and the stored secret --------------------------------------------------------


@pytest.mark.parametrize(("at", "expected"), RFC_VECTORS)
def test_rfc_6238_vectors_through_the_library(at: int, expected: str) -> None:
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(at) == expected
    # Ours are six digits of the same value: RFC 6238 truncates modulo 10^digits.
    assert two_factor.totp(RFC_SECRET).at(at) == expected[-6:]


def test_the_secret_is_stored_encrypted_and_only_this_key_opens_it(app: Flask) -> None:
    user = UserFactory()
    secret = two_factor.begin_setup(user)
    db.session.commit()
    stored = db.session.scalar(select(User.totp_secret).where(User.id == user.id))
    assert stored is not None and secret not in stored
    assert two_factor.decrypt_secret(stored) == secret
    app.config["SECRET_KEY"] = "another-secret-key-that-is-long-enough-0123456789"
    assert two_factor.decrypt_secret(stored) is None  # a dump with another key: nothing


def test_an_own_encryption_key_is_used_when_set(app: Flask) -> None:
    from cryptography.fernet import Fernet

    own = Fernet.generate_key().decode()
    app.config["TOTP_ENCRYPTION_KEY"] = own
    token = two_factor.encrypt_secret("JBSWY3DPEHPK3PXP")
    assert Fernet(own).decrypt(token.encode()) == b"JBSWY3DPEHPK3PXP"
    # Rotation: a new key first, the old one after it, still opens what the old one sealed.
    app.config["TOTP_ENCRYPTION_KEY"] = f"{Fernet.generate_key().decode()},{own}"
    assert two_factor.decrypt_secret(token) == "JBSWY3DPEHPK3PXP"


# -- Switching it on ------------------------------------------------------------------------


def test_the_page_offers_setup_then_shows_a_qr_code_and_the_key(
    client: FlaskClient, me: User
) -> None:
    page = text(client.get("/account/two-factor"))
    assert "It is off" in page and "Set up two-factor sign-in" in page
    assert client.post("/account/two-factor/setup", data={}).status_code == 302
    page = text(client.get("/account/two-factor"))
    secret = two_factor.secret_of(UserRepository(db.session).get(me.id) or me)
    assert secret is not None
    assert "<svg" in page and "<script" not in page
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in page
    assert UserRepository(db.session).get(me.id).totp_enabled_at is None  # type: ignore[union-attr]


def test_a_wrong_code_does_not_switch_it_on(client: FlaskClient, me: User) -> None:
    client.post("/account/two-factor/setup", data={})
    wrong = "000000" if code_at(me) != "000000" else "111111"
    response = client.post("/account/two-factor", data={"code": wrong})
    assert response.status_code == 422
    assert "That code is not right" in field_errors(text(response))["code"]
    assert not db.session.get(User, me.id).two_factor_enabled  # type: ignore[union-attr]
    assert client.post("/account/two-factor", data={"code": "12ab"}).status_code == 422


def test_switching_on_shows_ten_recovery_codes_once_and_stores_only_hashes(
    client: FlaskClient, me: User
) -> None:
    codes = turn_on(client, me)
    user = db.session.get(User, me.id)
    assert user is not None and user.two_factor_enabled
    stored = set(db.session.scalars(select(RecoveryCode.code_hash)))
    assert len(stored) == 10
    assert not stored & {c.replace("-", "") for c in codes}
    assert stored == {two_factor.hash_recovery_code(c) for c in codes}
    again = client.get("/account/two-factor/recovery-codes")
    assert redirect_target(again) == "/account/two-factor"  # shown once
    page = text(client.get("/account/two-factor"))
    assert "It is on" in page and "10 of 10" in page
    assert len(events("account.two_factor_enabled")) == 1


def test_new_recovery_codes_void_the_old_ones(
    client: FlaskClient, protected: tuple[User, list[str]]
) -> None:
    user, old = protected
    sign_in(client, "alice")
    client.post("/auth/two-factor", data={"code": code_at(user, 1)})
    response = client.post("/account/two-factor/recovery-codes", data={})
    new = CODE_IN_LIST.findall(text(client.get(redirect_target(response))))
    assert len(new) == 10 and not set(new) & set(old)
    assert not two_factor.use_recovery_code(user, old[0])
    assert two_factor.use_recovery_code(user, new[0])
    assert len(events("account.recovery_codes_renewed")) == 1


# -- Signing in with it on ---------------------------------------------------------------------


def test_the_password_alone_does_not_sign_in(
    client: FlaskClient, protected: tuple[User, list[str]]
) -> None:
    response = sign_in(client, "alice", next="/items/")
    assert redirect_target(response) == "/auth/two-factor?next=/items/"
    assert not is_signed_in(client)
    assert client.get("/items/").status_code == 302  # still the sign-in page


def test_a_code_signs_in_once_and_a_replay_is_refused(
    app: Flask, client: FlaskClient, protected: tuple[User, list[str]]
) -> None:
    user, _codes = protected
    code = code_at(user, 1)  # the current step was spent switching it on
    sign_in(client, "alice")
    response = client.post("/auth/two-factor?next=/items/", data={"code": code, "next": "/items/"})
    assert redirect_target(response) == "/items/"
    assert is_signed_in(client)
    (passed,) = events("auth.two_factor_passed")
    assert passed.after == {"method": "totp"}

    thief = app.test_client()
    sign_in(thief, "alice")
    replay = thief.post("/auth/two-factor", data={"code": code})
    assert replay.status_code == 422
    assert "already used" in field_errors(text(replay))["code"]
    assert not is_signed_in(thief)
    assert len(events("auth.two_factor_failed")) == 1


def test_a_recovery_code_works_once(
    app: Flask, client: FlaskClient, protected: tuple[User, list[str]]
) -> None:
    _user, codes = protected
    sign_in(client, "alice")
    response = client.post("/auth/two-factor", data={"code": codes[3].upper()})
    assert response.status_code == 302
    assert "You signed in with a recovery code" in " ".join(flashes(text(client.get("/"))))
    assert is_signed_in(client)
    other = app.test_client()
    sign_in(other, "alice")
    assert other.post("/auth/two-factor", data={"code": codes[3]}).status_code == 422
    assert not is_signed_in(other)
    page = text(client.get("/account/two-factor"))
    assert "9 of 10" in page


def test_remember_me_outlives_the_browser_after_the_code(
    app: Flask, client: FlaskClient, protected: tuple[User, list[str]]
) -> None:
    user, _ = protected
    sign_in(client, "alice", remember="y")
    assert client.get_cookie("remember_token") is None  # not before the code
    client.post("/auth/two-factor", data={"code": code_at(user, 1)})
    remember = client.get_cookie("remember_token")
    assert remember is not None
    reopened = app.test_client()
    reopened.set_cookie("remember_token", remember.value)
    assert is_signed_in(reopened)


def test_the_code_page_needs_a_password_first_and_forgets_it_after_five_minutes(
    client: FlaskClient, protected: tuple[User, list[str]]
) -> None:
    user, _ = protected
    assert redirect_target(client.get("/auth/two-factor")).startswith("/auth/login")
    sign_in(client, "alice")
    with client.session_transaction() as session:
        pending = dict(session["two_factor_pending"])
        session["two_factor_pending"] = {**pending, "at": pending["at"] - 301}
    response = client.post("/auth/two-factor", data={"code": code_at(user, 1)})
    assert redirect_target(response).startswith("/auth/login")
    assert not is_signed_in(client)


@pytest.mark.parametrize("code", ["", "x" * 500, "12345\x00", "١٢٣٤٥٦"])
def test_bad_codes_are_form_errors(
    client: FlaskClient, protected: tuple[User, list[str]], code: str
) -> None:
    sign_in(client, "alice")
    assert client.post("/auth/two-factor", data={"code": code}).status_code == 422
    assert not is_signed_in(client)


class TestCodeAttemptsAreLimitedPerAccount:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"RATELIMIT_ENABLED": True, "RATELIMIT_TWO_FACTOR_ACCOUNT": "3 per minute"}

    def test_failed_codes_count_against_the_account(
        self, app: Flask, client: FlaskClient, protected: tuple[User, list[str]]
    ) -> None:
        user, _ = protected
        wrong = "000000" if code_at(user, 1) != "000000" else "111111"
        sign_in(client, "alice")
        statuses = [client.post("/auth/two-factor", data={"code": wrong}).status_code]
        statuses += [client.post("/auth/two-factor", data={"code": wrong}).status_code]
        statuses += [client.post("/auth/two-factor", data={"code": wrong}).status_code]
        statuses += [client.post("/auth/two-factor", data={"code": code_at(user, 1)}).status_code]
        assert statuses == [422, 422, 422, 429]  # even the right code, for this account
        assert not is_signed_in(client)

        # Another account, from the same address, is not held back by alice's limit.
        bob = UserFactory(username="bob", email="bob@example.com")
        two_factor.begin_setup(bob)
        bob.totp_enabled_at = bob.created_at
        other = app.test_client()
        sign_in(other, "bob")
        assert other.post("/auth/two-factor", data={"code": wrong}).status_code == 422


class TestCodeAttemptsAreLimitedPerAddress:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"RATELIMIT_ENABLED": True, "RATELIMIT_TWO_FACTOR_ADDRESS": "2 per minute"}

    def test_every_attempt_counts_against_the_address(
        self, client: FlaskClient, protected: tuple[User, list[str]]
    ) -> None:
        user, _ = protected
        sign_in(client, "alice")
        assert client.post("/auth/two-factor", data={"code": "000001"}).status_code == 422
        assert client.post("/auth/two-factor", data={"code": "000002"}).status_code == 422
        response = client.post("/auth/two-factor", data={"code": code_at(user, 1)})
        assert response.status_code == 429
        assert not is_signed_in(client)


# -- Switching it off ------------------------------------------------------------------------


def test_switching_off_needs_the_password_and_a_code(
    client: FlaskClient, protected: tuple[User, list[str]]
) -> None:
    user, codes = protected
    sign_in(client, "alice")
    client.post("/auth/two-factor", data={"code": codes[0]})
    code = code_at(user, 1)
    wrong_password = client.post(
        "/account/two-factor/disable", data={"password": "not it", "code": code}
    )
    assert "not your current password" in field_errors(text(wrong_password))["password"]
    no_code = client.post("/account/two-factor/disable", data={"password": PASSWORD, "code": ""})
    assert no_code.status_code == 422
    assert db.session.get(User, user.id).two_factor_enabled  # type: ignore[union-attr]

    response = client.post("/account/two-factor/disable", data={"password": PASSWORD, "code": code})
    assert redirect_target(response) == "/account/two-factor"
    off = db.session.get(User, user.id)
    assert off is not None and not off.two_factor_enabled and off.totp_secret is None
    assert db.session.scalars(select(RecoveryCode)).all() == []
    assert len(events("account.two_factor_disabled")) == 1
    client.post("/auth/logout", data={})
    assert sign_in(client, "alice").headers["Location"] == "/"  # the password alone again


# -- An admin turns it off for someone who lost their phone and their codes ------------------


@pytest.fixture
def desk(app: Flask, admin_user: User) -> FlaskClient:
    """The admin's browser, signed in."""
    browser = app.test_client()
    AuthActions(browser).login(admin_user)
    return browser


def test_an_admin_turns_off_two_factor_for_someone_who_lost_it(
    client: FlaskClient, desk: FlaskClient, admin_user: User, protected: tuple[User, list[str]]
) -> None:
    user, _ = protected
    page = text(desk.get(f"/admin/users/{user.id}"))
    assert "Turn off two-factor for alice" in page

    response = desk.post(f"/admin/users/{user.id}/two-factor/reset", data={})
    assert redirect_target(response) == f"/admin/users/{user.id}"
    assert "Two-factor sign-in is off for alice" in " ".join(flashes(text(desk.get("/admin/"))))
    off = db.session.get(User, user.id)
    assert off is not None and not off.two_factor_enabled and off.totp_secret is None
    assert db.session.scalars(select(RecoveryCode)).all() == []
    (event,) = events("admin.user.two_factor_reset")
    assert (event.actor_id, event.target_id) == (admin_user.id, user.id)
    assert "Off: their password alone signs them in." in text(desk.get(f"/admin/users/{user.id}"))
    assert redirect_target(sign_in(client, "alice")) == "/"  # no code asked for any more


def test_turning_it_off_for_someone_needs_the_admins_recent_sign_in(
    desk: FlaskClient, admin_user: User, protected: tuple[User, list[str]]
) -> None:
    user, _ = protected
    for record in SessionRepository(db.session).of_user(admin_user.id):
        record.authenticated_at = utcnow() - timedelta(minutes=11)
    db.session.commit()
    response = desk.post(f"/admin/users/{user.id}/two-factor/reset", data={})
    assert response.status_code == 200
    assert 'action="/auth/reauthenticate"' in text(response)
    assert db.session.get(User, user.id).two_factor_enabled  # type: ignore[union-attr]
    assert events("admin.user.two_factor_reset") == []


def test_an_admin_turns_their_own_off_with_a_code_not_here(
    app: Flask, client: FlaskClient, me: User
) -> None:
    me.is_admin = True
    db.session.commit()
    turn_on(client, me)
    assert "your two-factor page" in text(client.get(f"/admin/users/{me.id}"))
    response = client.post(f"/admin/users/{me.id}/two-factor/reset", data={})
    assert redirect_target(response) == f"/admin/users/{me.id}"
    assert "on your account's two-factor page" in " ".join(flashes(text(client.get("/admin/"))))
    assert db.session.get(User, me.id).two_factor_enabled  # type: ignore[union-attr]


def test_turning_off_what_is_already_off_says_so(
    desk: FlaskClient, admin_user: User, me: User
) -> None:
    response = desk.post(f"/admin/users/{me.id}/two-factor/reset", data={})
    assert redirect_target(response) == f"/admin/users/{me.id}"
    assert "already off for alice" in " ".join(flashes(text(desk.get("/admin/"))))
    assert events("admin.user.two_factor_reset") == []


# -- Admins ----------------------------------------------------------------------------------


class TestAdminsMustUseIt:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"ADMIN_REQUIRE_TWO_FACTOR": True}

    def test_the_setting_is_on_by_default(self) -> None:
        from webapp.config import Config

        assert Config.ADMIN_REQUIRE_TWO_FACTOR is True

    def test_an_admin_without_it_is_sent_to_set_it_up_and_back(
        self, client: FlaskClient, auth: AuthActions, admin_user: User
    ) -> None:
        auth.login(admin_user)
        response = client.get("/admin/users?q=ali")
        target = redirect_target(response)
        assert target == "/account/two-factor?next=/admin/users?q%3Dali"
        page = text(client.get(target))
        assert "Administrators must use two-factor sign-in" in page
        setup = client.post("/account/two-factor/setup", data={"next": "/admin/users?q=ali"})
        assert redirect_target(setup) == "/account/two-factor?next=/admin/users?q%3Dali"
        assert 'value="/admin/users?q=ali"' in text(client.get(redirect_target(setup)))
        enabled = client.post(
            "/account/two-factor", data={"code": code_at(admin_user), "next": "/admin/users?q=ali"}
        )
        codes_page = text(client.get(redirect_target(enabled)))
        assert 'href="/admin/users?q=ali"' in codes_page
        assert client.get("/admin/users?q=ali").status_code == 200

    def test_a_post_to_the_console_is_refused_the_same_way(
        self, client: FlaskClient, auth: AuthActions, admin_user: User, user: User
    ) -> None:
        auth.login(admin_user)
        response = client.post(f"/admin/users/{user.id}/delete", data={})
        assert redirect_target(response) == "/account/two-factor?next=/admin/"
        assert db.session.get(User, user.id) is not None

    def test_an_admin_with_it_pays_no_query_for_the_check(
        self,
        client: FlaskClient,
        auth: AuthActions,
        admin_user: User,
        count_queries: QueryCounter,
    ) -> None:
        auth.login(admin_user)
        turn_on(client, admin_user)
        client.get("/admin/users?per_page=20")  # reads the table's estimate, kept for seconds
        with count_queries() as statements:
            assert client.get("/admin/users?per_page=20").status_code == 200
        assert len(statements) == 2  # me (with my session), the users with the table's size

    def test_other_people_are_not_asked(
        self, client: FlaskClient, auth: AuthActions, user: User
    ) -> None:
        auth.login(user)
        assert client.get("/account/").status_code == 200
        assert client.get("/admin/").status_code == 403
