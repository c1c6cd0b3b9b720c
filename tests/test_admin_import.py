"""CSV import of users and items: preview errors, all or nothing, the round trip, limits."""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from tests.factories import PASSWORD, ItemFactory, UserFactory
from tests.helpers import AuthActions
from webapp.admin.import_rows import MAX_BYTES
from webapp.admin.imports import STORED_MAX_AGE, sweep
from webapp.auth.tokens import invite_tokens, make_reset_token, user_for_reset_token
from webapp.extensions import db
from webapp.models import AuditEvent, Item, OutboxMessage, User

USER_HEADER = "id,email,username,active,admin,created_at,email_confirmed_at,last_login_at"
ITEM_HEADER = "id,title,description,owner,created_at,updated_at"
WHEN = "2024-03-01T10:00:00+00:00"


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    return {"IMPORT_FOLDER": str(tmp_path / "imports")}


@pytest.fixture
def admin(client: FlaskClient, auth: AuthActions, admin_user: User) -> User:
    return auth.login(admin_user)


def user_line(email: str, username: str, *, id: str = "", active: str = "true") -> str:
    return f"{id},{email},{username},{active},false,{WHEN},,"


def users_csv(*lines: str) -> bytes:
    return "\n".join([USER_HEADER, *lines]).encode() + b"\n"


def items_csv(*lines: str) -> bytes:
    return "\n".join([ITEM_HEADER, *lines]).encode() + b"\n"


def upload(
    client: FlaskClient, kind: str, data: bytes, *, name: str = "people.csv", **fields: str
) -> Any:
    return client.post(
        f"/admin/{kind}/import",
        data={"file": (io.BytesIO(data), name), **fields},
        content_type="multipart/form-data",
    )


def confirm_token(page: str) -> str:
    match = re.search(r'name="token" type="hidden" value="([^"]+)"', page) or re.search(
        r'type="hidden" name="token" value="([^"]+)"', page
    )
    assert match, "no Import button on the preview"
    return match.group(1)


def import_file(client: FlaskClient, kind: str, data: bytes, **fields: str) -> Any:
    preview = upload(client, kind, data, **fields)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    token = confirm_token(preview.get_data(as_text=True))
    return client.post(f"/admin/{kind}/import/confirm", data={"token": token})


def errors_shown(page: str) -> list[tuple[int, str, str]]:
    """(line, column, problem) of every row of the preview's error table."""
    table = re.search(r'<table[^>]*id="import-errors".*?</table>', page, re.S)
    if table is None:
        return []
    rows = re.findall(
        r'<td class="num" data-label="Line">(\d+)</td><td data-label="Column"><code>([^<]*)'
        r'</code></td><td data-label="Problem">([^<]*)</td>',
        table.group(0),
    )
    return [(int(line), column, reason) for line, column, reason in rows]


def count(model: Any) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


# -- The pages ----------------------------------------------------------------------------------


def test_the_lists_link_to_their_import_page(client: FlaskClient, admin: User) -> None:
    for kind in ("users", "items"):
        page = client.get(f"/admin/{kind}").get_data(as_text=True)
        assert f'href="/admin/{kind}/import"' in page
        form = client.get(f"/admin/{kind}/import")
        assert form.status_code == 200
        assert 'enctype="multipart/form-data"' in form.get_data(as_text=True)


def test_a_clean_file_is_previewed_then_imported_with_emails_and_one_audit_event(
    app: Flask, client: FlaskClient, admin: User
) -> None:
    lines = [user_line(f"new{n}@example.com", f"new{n}") for n in range(25)]
    lines.append(user_line("asleep@example.com", "asleep", active="false"))
    data = users_csv(*lines)
    preview = upload(client, "users", data)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "Import 26 users" in page
    assert page.count("@example.com</td>") == 20  # the first 20 rows
    assert count(User) == 1  # nothing written yet
    stored = list(Path(app.config["IMPORT_FOLDER"]).glob("*.csv"))
    assert [path.read_bytes() for path in stored] == [data]

    done = client.post("/admin/users/import/confirm", data={"token": confirm_token(page)})
    assert done.status_code == 302 and done.headers["Location"] == "/admin/users"
    assert count(User) == 27
    new = db.session.scalars(select(User).where(User.username == "new3")).one()
    assert new.email == "new3@example.com" and new.is_active and not new.is_admin
    assert new.created_at == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert not new.check_password("") and not new.check_password(new.hashed_password)
    # One invitation per user who may sign in; none for the inactive one.
    recipients = set(db.session.scalars(select(OutboxMessage.recipient)))
    assert len(recipients) == 25 and "asleep@example.com" not in recipients
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("%import"))).all()
    assert len(events) == 1
    assert events[0].action == "admin.user.import" and events[0].actor_id == admin.id
    assert events[0].after == {
        "rows": 26,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "file": "people.csv",
        "emails": 25,
    }
    assert not list(Path(app.config["IMPORT_FOLDER"]).glob("*.csv"))  # the file went
    followed = client.get("/admin/users")
    assert "Imported 26 users from people.csv; 25 emails" not in followed.get_data(as_text=True)
    assert "Imported 26 users from people.csv. 25 emails are on the way" in followed.get_data(
        as_text=True
    )


def test_the_emailed_link_sets_the_imported_users_password(
    client: FlaskClient, auth: AuthActions, admin: User
) -> None:
    import_file(client, "users", users_csv(user_line("ivy@example.com", "ivy")))
    message = db.session.scalars(select(OutboxMessage)).one()
    assert message.recipient == "ivy@example.com"
    assert "choose your password" in message.subject
    link = re.search(r"https://webapp\.test(/auth/reset/\S+)", message.body_text)
    assert link and link.group(0) in (message.body_html or "")
    auth.logout()
    assert "Set a new password" in client.get(link.group(1)).get_data(as_text=True)
    new_password = "a-long-new-passphrase"
    client.post(link.group(1), data={"password": new_password, "confirm": new_password})
    db.session.expire_all()
    ivy = db.session.scalars(select(User).where(User.username == "ivy")).one()
    assert ivy.check_password(new_password) and ivy.email_confirmed_at is not None
    assert client.get(link.group(1)).status_code != 200  # the link worked once


# -- Every kind of error, each named with its line and column ------------------------------------

LONG_TITLE = "x" * 101


@pytest.mark.parametrize(
    ("kind", "lines", "expected"),
    [
        ("users", [user_line("not-an-email", "bad")], (2, "email", "valid email")),
        ("users", [user_line("", "nobody")], (2, "email", "required")),
        ("users", [user_line("a@example.com", "no spaces")], (2, "username", "3 to 50")),
        ("users", [user_line("a@example.com", "u" * 51)], (2, "username", "longer than 50")),
        ("users", [user_line("a@example.com", "a\x1bb")], (2, "username", "control")),
        (
            "users",
            [user_line("a@example.com", "first"), user_line("A@example.com", "second")],
            (3, "email", "Also on line 2"),
        ),
        (
            "users",
            [user_line("a@example.com", "Twin"), user_line("b@example.com", "twin")],
            (3, "username", "Also on line 2"),
        ),
        ("users", [user_line("root@example.com", "fresh")], (2, "email", "already uses")),
        ("users", [user_line("fresh@example.com", "ROOT")], (2, "username", "taken")),
        ("users", [user_line("a@example.com", "abc", id="x7")], (2, "id", "whole number")),
        ("users", [user_line("a@example.com", "abc", active="maybe")], (2, "active", "true")),
        ("users", ["1x,a@example.com,abc,true,true,now,,"], (2, "id", "whole number")),
        ("users", [",a@example.com,abc,true,true,,,"], (2, "admin", "Rows may make admins")),
        ("users", [",a@example.com,abc,true,false,yesterday,,"], (2, "created_at", "date")),
        ("users", [",a@example.com,abc,true,false"], (2, "(row)", "5 cells")),
        ("items", ["", ",A lamp,,nobody-here,,"], (3, "owner", "No user has this username")),
        ("items", [",A lamp,,,,"], (2, "owner", "Name the item")),
        ("items", [f",{LONG_TITLE},,root,,"], (2, "title", "longer than 100")),
        ("items", [",,,root,,"], (2, "title", "Give the item a title")),
        ("items", [f',Lamp,"{"d" * 501}",root,,'], (2, "description", "longer than 500")),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_the_preview_names_each_bad_row_its_column_and_why(
    client: FlaskClient, admin: User, kind: str, lines: list[str], expected: tuple[int, str, str]
) -> None:
    data = (users_csv if kind == "users" else items_csv)(*lines)
    before = count(User), count(Item)
    response = upload(client, kind, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing can be imported yet" in page
    assert "Import 1" not in page and 'name="token"' not in page
    line, column, fragment = expected
    shown = errors_shown(page)
    assert any(
        (n, c) == (line, column) and fragment in reason.replace("&#39;", "'").replace("&#34;", '"')
        for n, c, reason in shown
    ), shown
    assert (count(User), count(Item)) == before


def test_an_id_already_taken_and_a_repeated_id_are_errors(client: FlaskClient, admin: User) -> None:
    data = users_csv(
        user_line("a@example.com", "aaa", id=str(admin.id)),
        user_line("b@example.com", "bbb", id="777"),
        user_line("c@example.com", "ccc", id="777"),
    )
    shown = errors_shown(upload(client, "users", data).get_data(as_text=True))
    assert [(line, column) for line, column, _ in shown] == [(2, "id"), (4, "id")]


def test_formula_looking_cells_are_notes_and_imported_as_text(
    client: FlaskClient, admin: User
) -> None:
    # The export's escaped form ('=...) and a bare formula both arrive as the same text.
    data = items_csv(",'=HYPERLINK(\"x\"),'-1,root,,", ",+SUM(A1),@cmd,root,,")
    preview = upload(client, "items", data)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    notes = re.search(r'id="import-notes".*?</table>', page, re.S)
    assert notes and notes.group(0).count("<tr>") == 5  # the header row and 4 cells
    assert "never calculated" in notes.group(0)
    client.post("/admin/items/import/confirm", data={"token": confirm_token(page)})
    db.session.expire_all()
    rows = set(db.session.execute(select(Item.title, Item.description)).all())
    assert rows == {('=HYPERLINK("x")', "-1"), ("+SUM(A1)", "@cmd")}


def test_a_quote_that_is_not_the_exports_escape_stays(client: FlaskClient, admin: User) -> None:
    import_file(client, "items", items_csv(",'tis the season,'quoted,root,,"))
    db.session.expire_all()
    assert db.session.execute(select(Item.title, Item.description)).one() == (
        "'tis the season",
        "'quoted",
    )


# -- All or nothing -----------------------------------------------------------------------------


def test_one_bad_row_imports_nothing(client: FlaskClient, admin: User) -> None:
    lines = [user_line(f"ok{n}@example.com", f"ok{n}") for n in range(30)]
    lines.insert(17, user_line("broken", "broken"))
    response = upload(client, "users", users_csv(*lines))
    assert response.status_code == 422
    assert [(n, c) for n, c, _ in errors_shown(response.get_data(as_text=True))] == [(19, "email")]
    assert count(User) == 1 and count(OutboxMessage) == 0 and count(AuditEvent) == 0


def test_a_row_taken_after_the_preview_stops_the_whole_import(
    client: FlaskClient, admin: User
) -> None:
    data = users_csv(user_line("one@example.com", "one"), user_line("two@example.com", "two"))
    page = upload(client, "users", data).get_data(as_text=True)
    UserFactory(email="two@example.com", username="someone-else")  # another admin, meanwhile
    response = client.post("/admin/users/import/confirm", data={"token": confirm_token(page)})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Nothing was imported" in text
    assert [(n, c) for n, c, _ in errors_shown(text)] == [(3, "email")]
    assert count(User) == 2 and count(OutboxMessage) == 0


def test_a_value_taken_between_the_check_and_the_write_is_explained(
    client: FlaskClient, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique index catches what the checks could not see (a rival's insert committed
    between them and the write): nothing is written, and the preview says which row."""
    from webapp.repositories.imports import ImportRepository

    data = users_csv(user_line("race@example.com", "race"), user_line("calm@example.com", "calm"))
    page = upload(client, "users", data).get_data(as_text=True)
    UserFactory(email="race@example.com", username="rival")
    real = ImportRepository.taken_emails
    blind = iter([set()])  # the confirm's check misses the rival once, as in a race

    def taken_emails(self: ImportRepository, emails: Any) -> set[str]:
        return next(blind, None) or real(self, emails)

    monkeypatch.setattr(ImportRepository, "taken_emails", taken_emails)
    response = client.post("/admin/users/import/confirm", data={"token": confirm_token(page)})
    assert response.status_code == 422
    assert [(n, c) for n, c, _ in errors_shown(response.get_data(as_text=True))] == [(2, "email")]
    assert count(User) == 2 and count(OutboxMessage) == 0 and count(AuditEvent) == 0


def test_a_token_from_another_admin_or_another_list_imports_nothing(
    client: FlaskClient, auth: AuthActions, admin: User
) -> None:
    page = upload(client, "users", users_csv(user_line("x@example.com", "xxx"))).get_data(
        as_text=True
    )
    token = confirm_token(page)
    wrong_list = client.post("/admin/items/import/confirm", data={"token": token})
    assert wrong_list.status_code == 302 and wrong_list.headers["Location"] == "/admin/items/import"
    other = UserFactory(username="other-admin", email="other@example.com", is_admin=True)
    auth.logout()
    auth.login(other)
    response = client.post(
        "/admin/users/import/confirm", data={"token": token}, follow_redirects=True
    )
    assert "expired or is not yours" in response.get_data(as_text=True)
    forged = client.post("/admin/users/import/confirm", data={"token": token[:-3] + "abc"})
    assert forged.status_code == 302
    assert count(User) == 2


def test_stored_files_go_after_an_hour(tmp_path: Path) -> None:
    old, fresh = tmp_path / "old.csv", tmp_path / "fresh.csv"
    old.write_text("x")
    fresh.write_text("x")
    an_hour_ago = time.time() - STORED_MAX_AGE - 5
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert sweep(tmp_path) == 1
    assert not old.exists() and fresh.exists()


# -- The round trip -----------------------------------------------------------------------------


def test_export_then_import_into_an_empty_database_reproduces_the_rows(
    client: FlaskClient, admin: User
) -> None:
    when = datetime(2023, 7, 14, 9, 30, 15, 123456, tzinfo=UTC)
    alice = UserFactory(
        username="alice", email="alice@example.com", created_at=when, email_confirmed_at=when
    )
    boss = UserFactory(username="-boss", email="boss@example.com", is_admin=True)
    UserFactory(username="Sleepy", email="sleepy@example.com", is_active=False, last_login_at=when)
    ItemFactory(owner=alice, title="=1+1", description="Line one\nline, two")
    ItemFactory(owner=boss, title="Lamp", description=None, created_at=when)
    ItemFactory(owner=alice, title="'quoted", description="+x")
    db.session.commit()
    user_columns = (
        User.id, User.email, User.username, User.is_active, User.is_admin,
        User.created_at, User.email_confirmed_at, User.last_login_at,
    )  # fmt: skip
    item_columns = (Item.id, Item.title, Item.description, Item.owner_id, Item.created_at,
                    Item.updated_at)  # fmt: skip
    others = User.id != admin.id
    users_before = set(db.session.execute(select(*user_columns).where(others)).all())
    items_before = set(db.session.execute(select(*item_columns)).all())

    users_file = client.get("/admin/users/export").get_data()
    items_file = client.get("/admin/items/export").get_data()
    # The admin who imports is the one row the empty database already has.
    users_file = b"".join(
        line for line in users_file.splitlines(keepends=True) if b"root@example.com" not in line
    )
    db.session.execute(User.__table__.delete().where(others))
    db.session.commit()
    assert count(User) == 1 and count(Item) == 0

    assert import_file(client, "users", users_file, allow_admins="y").status_code == 302
    assert import_file(client, "items", items_file).status_code == 302
    db.session.expire_all()
    assert set(db.session.execute(select(*user_columns).where(others)).all()) == users_before
    assert set(db.session.execute(select(*item_columns)).all()) == items_before
    # The ids came from the file: new rows made afterwards get ids of their own.
    later = UserFactory(username="later", email="later@example.com")
    db.session.commit()
    assert later.id > max(row[0] for row in users_before)
    assert ItemFactory(owner=later).id > max(row[0] for row in items_before)


# -- Encodings and sizes ------------------------------------------------------------------------


def test_utf8_with_a_byte_order_mark_is_read(client: FlaskClient, admin: User) -> None:
    data = "\ufeff".encode() + users_csv(user_line("zoë@example.com", "zoe"))
    assert import_file(client, "users", data).status_code == 302
    assert db.session.scalar(select(User.email).where(User.username == "zoe")) == "zoë@example.com"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (users_csv(user_line("zoë@example.com", "zoe")).decode().encode("latin-1"), "line 2"),
        (users_csv(user_line("a@example.com", "abc")).decode().encode("utf-16"), "UTF-16"),
        (b"", "empty"),
        (USER_HEADER.encode() + b"\n", "no rows"),
        (b"email,username\nx@example.com,xx\n", "missing: id"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
    ],
    ids=["latin-1", "utf-16", "empty", "header-only", "wrong-columns", "binary"],
)
def test_a_file_that_cannot_be_read_is_refused_beside_the_field(
    client: FlaskClient, admin: User, data: bytes, message: str
) -> None:
    response = upload(client, "users", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(r'<p class="field-error" id="file-error">([^<]*)</p>', page)
    assert error and message in error.group(1), page
    assert count(User) == 1


def multipart(token: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body built as bytes (the test client would spool a large one into a
    temporary file it never closes)."""
    boundary = "----import"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def big_users_file(size: int) -> bytes:
    lines, total, n = [USER_HEADER.encode()], 0, 0
    while total < size:
        line = user_line(f"bulk{n}@example.com", f"bulk{n}").encode()
        lines.append(line)
        total += len(line) + 1
        n += 1
    return b"\n".join(lines) + b"\n"


def test_more_than_the_sites_1_mib_is_taken_here_and_refused_elsewhere(
    app: Flask, client: FlaskClient, admin: User
) -> None:
    data = big_users_file(app.config["MAX_CONTENT_LENGTH"] + 100_000)
    body, content_type = multipart(client.csrf_token(), data)
    response = client.post("/admin/users/import", data=body, content_type=content_type, csrf=False)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert re.search(r"Import [\d,]{5,} users", response.get_data(as_text=True))
    elsewhere = client.post("/admin/users/new", data=body, content_type=content_type, csrf=False)
    assert elsewhere.status_code == 413


def test_more_than_20_mib_is_a_413_page(client: FlaskClient, admin: User) -> None:
    body, content_type = multipart(client.csrf_token(), b"x" * (MAX_BYTES + 1))
    response = client.post("/admin/users/import", data=body, content_type=content_type, csrf=False)
    assert response.status_code == 413
    assert "Too large" in response.get_data(as_text=True)


def test_someone_not_an_admin_is_held_to_the_sites_limit(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login(UserFactory(username="member", email="member@example.com"))
    body, content_type = multipart(client.csrf_token(), b"x" * app.config["MAX_CONTENT_LENGTH"])
    response = client.post("/admin/users/import", data=body, content_type=content_type, csrf=False)
    assert response.status_code == 413


# -- Invitation links ---------------------------------------------------------------------------


def test_an_invitation_link_lasts_days_where_a_reset_link_lasts_half_an_hour(
    app: Flask, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.test_request_context():
        signed_at = int((datetime.now(UTC) - timedelta(days=1)).timestamp())
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
        reset = make_reset_token(user)
        invite = invite_tokens()(user.id, user.hashed_password)
        monkeypatch.undo()
        assert user_for_reset_token(reset) is None
        assert user_for_reset_token(invite) == user
        assert user_for_reset_token(make_reset_token(user)) == user


def test_the_password_is_never_in_the_file_and_cannot_sign_in(
    client: FlaskClient, auth: AuthActions, admin: User
) -> None:
    import_file(client, "users", users_csv(user_line("pat@example.com", "pat")))
    auth.logout()
    response = client.post("/auth/login", data={"login": "pat", "password": PASSWORD})
    assert response.status_code == 422
    assert "Sign out" not in client.get("/").get_data(as_text=True)


def test_the_import_page_of_a_non_admin_is_forbidden(
    client: FlaskClient, auth: AuthActions
) -> None:
    auth.login(UserFactory(username="member", email="member@example.com"))
    assert client.get("/admin/users/import").status_code == 403
    assert upload(client, "users", users_csv(user_line("q@example.com", "qqq"))).status_code == 403
    assert count(User) == 1


def test_reading_rows_costs_a_fixed_number_of_queries(
    client: FlaskClient, admin: User, count_queries: Any
) -> None:
    small = users_csv(*(user_line(f"s{n}@example.com", f"small{n}") for n in range(10)))
    large = users_csv(*(user_line(f"l{n}@example.com", f"large{n}") for n in range(200)))
    client.csrf_token()  # fetched once, outside the counts
    with count_queries() as few:
        assert upload(client, "users", small).status_code == 200
    with count_queries() as many:
        assert upload(client, "users", large).status_code == 200
    assert len(few) == len(many) <= 5, many
