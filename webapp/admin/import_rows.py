"""Reading an uploaded CSV of users or items, checking every row, and writing them all.

A file has the columns of the list's CSV export (``export_columns``), in any order; the header
is line 1. Each row's text goes through the fields of the site's own forms (``UserEditForm``'s
email and username, ``ItemForm``'s title and description), so a row is refused for exactly what
those forms refuse; the other columns (ids, yes/no, dates) are read here. Then what no single
row shows: a value twice in the file, a value an account already has, an owner who is no
account, each found for the whole file at once (``ImportRepository``).

``check_file`` reads and checks; ``write_rows`` writes what passed, in the caller's
transaction (the view commits once, or rolls back and writes nothing).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict
from wtforms import Form as PlainForm

from webapp.admin.forms import UserEditForm
from webapp.auth.emails import queue_invitations
from webapp.auth.forms import TAKEN
from webapp.db.types import utcnow
from webapp.extensions import db
from webapp.items.forms import ItemForm
from webapp.models import Item, User
from webapp.repositories.admin import ITEM_LIST, USER_LIST
from webapp.repositories.imports import ImportRepository
from webapp.web.csv_import import (
    Record,
    UnreadableFile,
    decode_utf8,
    looks_like_formula,
    read_records,
    unescape_cell,
)
from webapp.web.forms import Form
from webapp.web.requests import INT_MAX, parse_int

MAX_BYTES = 20 * 1024 * 1024  # an upload on the import pages (the site's limit is 1 MiB)
PREVIEW_ROWS = 20
# An account imported has no password until its owner sets one through the emailed link: the
# hash column holds this marker and random text, which no password can match (it is no hash).
UNUSABLE_PASSWORD = "!imported$"  # noqa: S105 - a marker that no password can match
TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})


class RowForm(PlainForm):
    """A row of a file, checked by fields borrowed from the site's forms.

    A plain WTForms form (no CSRF, no request): one instance is filled with each row in turn
    (``process``), which is what keeps 100,000 rows fast. ``Form.Meta`` adds the checks every
    text field of the site runs first (no control characters, no U+FFFD).
    """

    Meta = Form.Meta

    def errors_of(self, row: dict[str, str]) -> dict[str, list[str]]:
        """Fill the form with ``row`` and validate it: the errors by field (none: valid)."""
        self.process(MultiDict({name: row.get(name, "") for name in self._fields}))
        self.validate()
        return {name: list(errors) for name, errors in self.errors.items() if errors}


class UserRowForm(RowForm):
    email = UserEditForm.email
    username = UserEditForm.username


class ItemRowForm(RowForm):
    title = ItemForm.title
    description = ItemForm.description


class ImportRefused(ValueError):
    """The file as a whole cannot be read (encoding, header, no rows); the text says why."""


@dataclass(frozen=True)
class Problem:
    line: int
    column: str
    reason: str


@dataclass
class Checked:
    """A file, read and checked: the rows to write, and what is wrong with which."""

    kind: ImportKind
    header: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    total: int = 0  # the file's rows (the header and blank lines not counted)

    @property
    def error_lines(self) -> int:
        """How many rows hold at least one error."""
        return len({problem.line for problem in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors


class RowChecker:
    """What one kind of file's rows must satisfy; ``check`` fills ``checked``."""

    form: RowForm
    text_columns: tuple[str, ...] = ()

    def __init__(self, checked: Checked, *, allow_admins: bool) -> None:
        self.checked = checked
        self.allow_admins = allow_admins
        self.now = utcnow()

    def error(self, line: int, column: str, reason: str) -> None:
        self.checked.errors.append(Problem(line, column, reason))

    def check(self, line: int, values: dict[str, str]) -> dict[str, Any] | None:
        raise NotImplementedError

    def check_together(self) -> None:
        """Checks over the whole file (duplicates, the database), once every row is read."""

    # -- One cell ---------------------------------------------------------------------------

    def form_values(self, line: int, values: dict[str, str]) -> dict[str, Any] | None:
        """The form's fields, checked and normalised; None when one is refused."""
        errors = self.form.errors_of(values)
        for name, messages in errors.items():
            self.error(line, name, " ".join(messages))
        if errors:
            return None
        return {name: self.form[name].data for name in self.form._fields}

    def row_id(self, line: int, text: str) -> int | None:
        if not text.strip():
            return None
        number = parse_int(text.strip(), minimum=1)
        if number is None:
            self.error(line, "id", f"Not a whole number from 1 to {INT_MAX:,}; or leave it empty.")
        return number

    def yes_no(self, line: int, column: str, text: str, default: bool) -> bool:
        word = text.strip().lower()
        if not word:
            return default
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        self.error(line, column, "Write true or false (or leave it empty).")
        return default

    def moment(self, line: int, column: str, text: str) -> datetime | None:
        """A date and time (ISO 8601, as the export writes it); without a zone it is UTC."""
        if not text.strip():
            return None
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            self.error(line, column, "Not a date and time: write it as 2024-05-31T14:30:00+00:00.")
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def once(self, seen: dict[Any, int], value: Any, line: int, column: str, what: str) -> bool:
        """True the first time ``value`` is seen in the file; an error on later lines."""
        first = seen.setdefault(value, line)
        if first != line:
            self.error(line, column, f"Also on line {first}: each {what} may appear once.")
            return False
        return True


class UserRows(RowChecker):
    text_columns = ("email", "username")

    def __init__(self, checked: Checked, *, allow_admins: bool) -> None:
        super().__init__(checked, allow_admins=allow_admins)
        self.form = UserRowForm()
        self.lines: dict[str, dict[Any, int]] = {"id": {}, "email": {}, "username": {}}

    def check(self, line: int, values: dict[str, str]) -> dict[str, Any] | None:
        texts = self.form_values(line, values)
        row_id = self.row_id(line, values["id"])
        is_admin = self.yes_no(line, "admin", values["admin"], False)
        if is_admin and not self.allow_admins:
            self.error(
                line,
                "admin",
                'An admin account: tick "Rows may make admins" to import it, '
                "or write false and make them admin on their page afterwards.",
            )
        row = {
            "is_active": self.yes_no(line, "active", values["active"], True),
            "is_admin": is_admin,
            "created_at": self.moment(line, "created_at", values["created_at"]) or self.now,
            "email_confirmed_at": self.moment(
                line, "email_confirmed_at", values["email_confirmed_at"]
            ),
            "last_login_at": self.moment(line, "last_login_at", values["last_login_at"]),
            # No password matches it: the owner chooses one through the emailed link.
            "hashed_password": UNUSABLE_PASSWORD + secrets.token_urlsafe(18),
        }
        if row_id is not None:
            row["id"] = row_id
        if texts is not None:
            row.update(email=texts["email"], username=texts["username"])
            self.once(self.lines["email"], texts["email"], line, "email", "email address")
            lowered = texts["username"].lower()
            self.once(self.lines["username"], lowered, line, "username", "username")
        if row_id is not None:
            self.once(self.lines["id"], row_id, line, "id", "id")
        return row if texts is not None else None

    def check_together(self) -> None:
        found = ImportRepository(db.session)
        taken: dict[str, set[Any]] = {
            "email": found.taken_emails(self.lines["email"]),
            "username": found.taken_usernames(self.lines["username"]),
            "id": found.taken_ids(User, self.lines["id"]),
        }
        reasons = {
            "email": TAKEN["email"],
            "username": TAKEN["username"],
            "id": "Another user has this id: leave it empty to give the row a new one.",
        }
        for column, values in taken.items():
            for value in values:
                self.error(self.lines[column][value], column, reasons[column])


class ItemRows(RowChecker):
    text_columns = ("title", "description", "owner")

    def __init__(self, checked: Checked, *, allow_admins: bool) -> None:
        super().__init__(checked, allow_admins=allow_admins)
        self.form = ItemRowForm()
        self.ids: dict[Any, int] = {}
        # lower(owner) -> the lines that name them, and the rows to give their id.
        self.owners: dict[str, list[tuple[int, dict[str, Any]]]] = {}

    def check(self, line: int, values: dict[str, str]) -> dict[str, Any] | None:
        texts = self.form_values(line, values)
        row_id = self.row_id(line, values["id"])
        owner = values["owner"].strip()
        if not owner:
            self.error(line, "owner", "Name the item's owner: a username.")
        created = self.moment(line, "created_at", values["created_at"]) or self.now
        row = {
            "created_at": created,
            "updated_at": self.moment(line, "updated_at", values["updated_at"]) or created,
            "version": 1,
        }
        if row_id is not None:
            row["id"] = row_id
            self.once(self.ids, row_id, line, "id", "id")
        if owner:
            self.owners.setdefault(owner.lower(), []).append((line, row))
        if texts is None:
            return None
        row.update(title=texts["title"], description=texts["description"] or None)
        return row

    def check_together(self) -> None:
        found = ImportRepository(db.session)
        for row_id in found.taken_ids(Item, self.ids):
            self.error(
                self.ids[row_id],
                "id",
                "Another item has this id: leave it empty to give the row a new one.",
            )
        owner_ids = found.user_ids_by_username(self.owners)
        for name, uses in self.owners.items():
            owner_id = owner_ids.get(name)
            for line, row in uses:
                if owner_id is None:
                    self.error(line, "owner", "No user has this username.")
                else:
                    row["owner_id"] = owner_id


@dataclass(frozen=True)
class ImportKind:
    """One kind of import: the list it fills, its file's columns and its rules."""

    name: str  # the admin list: "users", "items"
    noun: str
    plural: str
    columns: tuple[str, ...]
    checker: Callable[..., RowChecker]
    may_make_admins: bool = False

    def describe(self, count: int) -> str:
        return f"{count:,} {self.noun if count == 1 else self.plural}"


def _export_header(spec: Any) -> tuple[str, ...]:
    return tuple(name for name, _column in spec.export_columns)


KINDS: dict[str, ImportKind] = {
    "users": ImportKind(
        "users", "user", "users", _export_header(USER_LIST), UserRows, may_make_admins=True
    ),
    "items": ImportKind("items", "item", "items", _export_header(ITEM_LIST), ItemRows),
}


def _column_order(kind: ImportKind, header: list[str]) -> list[str]:
    """The header's column names, checked: each of ``kind.columns`` once, nothing else."""
    names = [name.strip().lower() for name in header]
    expected = ", ".join(kind.columns)
    missing = [name for name in kind.columns if name not in names]
    unknown = [name for name in names if name not in kind.columns]
    twice = sorted({name for name in names if names.count(name) > 1})
    reasons = []
    if missing:
        reasons.append(f"missing: {', '.join(missing)}")
    if unknown:
        shown = ", ".join(name or "(empty)" for name in unknown)
        reasons.append(f"not a column of {kind.plural}: {shown}")
    if twice:
        reasons.append(f"named twice: {', '.join(twice)}")
    if reasons:
        raise ImportRefused(
            f"Line 1 must name the columns of the {kind.plural} export ({expected}), in any "
            f"order; {'; '.join(reasons)}."
        )
    return names


def _records(data: bytes) -> Iterator[Record]:
    try:
        yield from read_records(decode_utf8(data))
    except UnreadableFile as error:
        raise ImportRefused(str(error)) from error


def check_file(kind: ImportKind, data: bytes, *, allow_admins: bool = False) -> Checked:
    """Read ``data`` and check every row, in the caller's transaction (so that a check made
    again just before writing sees what is there then). Raises ``ImportRefused`` when the
    file cannot be read at all."""
    records = _records(data)
    first = next(records, None)
    if first is None:
        raise ImportRefused("The file is empty: it needs a header line and at least one row.")
    names = _column_order(kind, first.cells)
    checked = Checked(kind=kind, header=list(kind.columns))
    checker = kind.checker(checked, allow_admins=allow_admins and kind.may_make_admins)
    seen = 0
    for record in records:
        seen += 1
        values = _row_values(checker, record, names)
        if values is None:
            continue
        if len(checked.preview) < PREVIEW_ROWS:
            checked.preview.append([values[name] for name in kind.columns])
        row = checker.check(record.line, values)
        if row is not None:
            checked.rows.append(row)
    if not seen:
        raise ImportRefused("The file has a header line but no rows.")
    checked.total = seen
    checker.check_together()
    checked.errors = sorted_columns(kind, checked.errors)
    if checked.errors:
        checked.rows = []  # nothing is written while any row is wrong
    return checked


def _row_values(checker: RowChecker, record: Record, names: list[str]) -> dict[str, str] | None:
    """A record's cells by column name, read back as exported; None if it has too few or
    too many cells to tell which is which."""
    if len(record.cells) != len(names):
        checker.error(
            record.line,
            "(row)",
            f"{len(record.cells)} cells, but the header names {len(names)} columns.",
        )
        return None
    values = dict(zip(names, map(unescape_cell, record.cells), strict=True))
    for column in checker.text_columns:
        if looks_like_formula(values[column]):
            checker.checked.notes.append(
                Problem(
                    record.line,
                    column,
                    f"Starts like a spreadsheet formula ({values[column][:1]!r}): "
                    "imported as this text, never calculated.",
                )
            )
    return values


def write_rows(checked: Checked) -> int:
    """Write every row of a file that passed ``check_file``, in the caller's transaction; an
    imported user who may sign in gets an email with a link to choose a password. Returns
    how many emails were queued."""
    assert checked.ok, "a file with errors is never written"
    found = ImportRepository(db.session)
    if checked.kind.name == "items":
        found.insert_items(checked.rows)
        return 0
    written = found.insert_users(checked.rows)
    return queue_invitations(row[:4] for row in written if row[4])


def sorted_columns(kind: ImportKind, problems: Iterable[Problem]) -> list[Problem]:
    """By line, and within a line in the file's column order (a whole row's problem first)."""
    order = {name: n for n, name in enumerate(kind.columns)}
    return sorted(problems, key=lambda p: (p.line, order.get(p.column, -1)))
