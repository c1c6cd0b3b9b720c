"""Import users or items from a CSV file: upload, check, preview, import.

The upload is checked at once and the preview shows what is wrong with which row. A file with
no errors is kept on the server (``IMPORT_FOLDER``, by default ``<instance>/imports``) under a
random name, and the preview's Import button sends back only a signed token naming it (bound
to the admin, good for ``STORED_MAX_AGE`` seconds): the browser never sends the file twice,
and the session cookie never holds it. Import reads the file again, checks every row again in
the transaction that writes them (another admin may have taken an address meanwhile), and
writes all rows or none. Stored files go once imported, or after ``STORED_MAX_AGE``.

With several machines behind a load balancer, ``IMPORT_FOLDER`` must be a folder they share.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from webapp.admin.forms import ImportConfirmForm, ImportForm
from webapp.admin.import_rows import (
    KINDS,
    MAX_BYTES,
    Checked,
    ImportKind,
    ImportRefused,
    check_file,
    write_rows,
)
from webapp.admin.pages import actor
from webapp.admin.views import bp
from webapp.audit import audit
from webapp.auth.tokens import INVITE_MAX_AGE_SECONDS
from webapp.extensions import db
from webapp.validation import without_control_chars
from webapp.web.requests import larger_body

STORED_MAX_AGE = 3600  # seconds a checked file waits for its Import button
SALT = "webapp.admin.import"  # the stored-file tokens' own: no other token reads as one
STORED_NAME = re.compile(r"[A-Za-z0-9_-]{20,64}\.csv")
PROBLEMS_SHOWN = 1_000  # rows of the error table; the count above it says how many in all
UNPROCESSABLE = 422


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file that passed its checks, waiting on the server for Import."""

    path: Path
    data: bytes
    filename: str
    digest: str
    allow_admins: bool


def import_folder() -> Path:
    configured = current_app.config.get("IMPORT_FOLDER")
    folder = Path(configured) if configured else Path(current_app.instance_path) / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def sweep(folder: Path, *, now: float | None = None) -> int:
    """Delete stored files older than ``STORED_MAX_AGE`` (their tokens have expired)."""
    cutoff = (time.time() if now is None else now) - STORED_MAX_AGE
    removed = 0
    for path in folder.glob("*.csv"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another worker swept it first
            continue
    return removed


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)  # type: ignore[arg-type]


def store(kind: ImportKind, data: bytes, filename: str, *, allow_admins: bool) -> str:
    """Keep ``data`` on the server; the token that names it, for this admin and ``kind``."""
    folder = import_folder()
    sweep(folder)
    name = f"{secrets.token_urlsafe(24)}.csv"
    path = folder / name
    with path.open("xb") as out:  # a new file, never one that is there
        out.write(data)
    payload = {
        "file": name,
        "kind": kind.name,
        "admin": current_user.id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "filename": filename,
        "admins": allow_admins,
    }
    return str(_serializer().dumps(payload))


def load(token: str, kind: ImportKind) -> StoredFile | None:
    """The stored file ``token`` names, if the token is genuine, fresh, this admin's, for
    this kind of import, and the file is there unchanged."""
    try:
        data = _serializer().loads(token, max_age=STORED_MAX_AGE)
    except BadData:
        return None
    if (
        not isinstance(data, dict)
        or data.get("kind") != kind.name
        or data.get("admin") != current_user.id
        or not STORED_NAME.fullmatch(str(data.get("file")))
    ):
        return None
    path = import_folder() / str(data["file"])
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(content).hexdigest()
    if digest != data.get("sha256"):
        return None
    return StoredFile(
        path, content, str(data.get("filename", "")), digest, data.get("admins") is True
    )


def shown_filename(name: str | None) -> str:
    """The uploaded file's name as the pages and the audit log show it: its own text, no
    path, no control characters, bounded."""
    base = re.split(r"[\\/]", name or "")[-1]
    return without_control_chars(base).strip()[:100] or "the file"


def _is_admin() -> bool:
    return bool(current_user.is_authenticated and current_user.is_admin)


def render_preview(
    kind: ImportKind,
    checked: Checked,
    *,
    filename: str,
    size: int,
    token: str | None,
    changed: bool = False,
) -> ResponseReturnValue:
    html = render_template(
        "admin/import_preview.html",
        kind=kind,
        checked=checked,
        filename=filename,
        size=size,
        token=token,
        changed=changed,
        errors=checked.errors[:PROBLEMS_SHOWN],
        notes=checked.notes[:PROBLEMS_SHOWN],
        form=ImportConfirmForm(formdata=None, token=token),
        section=kind.name,
    )
    return html, 200 if checked.ok else UNPROCESSABLE


def upload(kind: ImportKind) -> ResponseReturnValue:
    """GET: the form. POST: check the file and show the preview (422 when a row is wrong)."""
    posted: list[MultiDict[str, Any]] = [request.files, request.form]
    form = ImportForm(formdata=CombinedMultiDict(posted) if request.method == "POST" else None)
    if form.validate_on_submit():
        sent = form.file.data
        data = sent.read()
        filename = shown_filename(sent.filename)
        allow_admins = bool(form.allow_admins.data) and kind.may_make_admins
        try:
            checked = check_file(kind, data, allow_admins=allow_admins)
        except ImportRefused as error:
            form.file.errors.append(str(error))
        else:
            token = store(kind, data, filename, allow_admins=allow_admins) if checked.ok else None
            return render_preview(kind, checked, filename=filename, size=len(data), token=token)
        finally:
            db.session.rollback()  # the checks only read
    return render_template(
        "admin/import_form.html",
        kind=kind,
        form=form,
        section=kind.name,
        max_mib=MAX_BYTES // (1024 * 1024),
        invite_days=INVITE_MAX_AGE_SECONDS // 86400,
    )


def confirm(kind: ImportKind) -> ResponseReturnValue:
    """Check the stored file again and write every row, in one transaction; or show the
    preview again with what changed since."""
    again = url_for(f"admin.{kind.name}_import")
    form = ImportConfirmForm()
    stored = load(form.token.data or "", kind) if form.validate_on_submit() else None
    if stored is None:
        flash("This preview has expired or is not yours: choose the file again.", "error")
        return redirect(again)

    def preview(checked: Checked) -> ResponseReturnValue:
        db.session.rollback()
        size = len(stored.data)
        return render_preview(
            kind, checked, filename=stored.filename, size=size, token=None, changed=True
        )

    checked = check_file(kind, stored.data, allow_admins=stored.allow_admins)
    if not checked.ok:
        return preview(checked)
    try:
        emails = write_rows(checked)
        audit(
            f"admin.{kind.noun}.import",
            actor(),
            after={
                "rows": checked.total,
                "bytes": len(stored.data),
                "sha256": stored.digest,
                "file": stored.filename,
                "emails": emails,
            },
        )
        db.session.commit()
    except IntegrityError:
        # Someone took a value between the checks and the write: say which, write nothing.
        db.session.rollback()
        rechecked = check_file(kind, stored.data, allow_admins=stored.allow_admins)
        if rechecked.ok:
            raise
        return preview(rechecked)
    stored.path.unlink(missing_ok=True)
    message = f"Imported {kind.describe(checked.total)} from {stored.filename}."
    if emails:
        plural = "email is" if emails == 1 else "emails are"
        message += f" {emails:,} {plural} on the way with a link to choose a password."
    flash(message, "success")
    return redirect(url_for(f"admin.{kind.name}"))


def _view(function: Callable[[ImportKind], ResponseReturnValue], kind: ImportKind) -> Any:
    def view() -> ResponseReturnValue:
        return function(kind)

    view.__name__ = f"{kind.name}_{function.__name__}"
    return view


for _kind in KINDS.values():
    bp.add_url_rule(
        f"/{_kind.name}/import",
        f"{_kind.name}_import",
        larger_body(MAX_BYTES, when=_is_admin)(_view(upload, _kind)),
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        f"/{_kind.name}/import/confirm",
        f"{_kind.name}_import_confirm",
        _view(confirm, _kind),
        methods=["POST"],
    )
