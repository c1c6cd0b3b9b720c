"""A row's history: every audited change of a user, an item or a post, newest first, and
"Restore these values" on any of them.

The audit log keeps, for each change, the fields it changed with their values before and
after. The state a row had just after a change is its state now with every newer change
undone (each newer event's "before" values put back, newest first). A restore saves that
state as a new change, through the edit forms' validation, the version check and the
audit log, like an edit made by hand. Fields a row no longer has are shown, never restored;
passwords and hashes are never in the log (``repositories.audit.SECRET_FIELDS``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.datastructures import MultiDict

from webapp.admin import services
from webapp.admin.forms import ConfirmForm, UserEditForm
from webapp.admin.pages import actor, get_or_404
from webapp.admin.views import bp
from webapp.changes import update_item, update_post
from webapp.extensions import db
from webapp.items.forms import ItemEditForm
from webapp.models import AuditEvent, Item, Post, User
from webapp.posts.forms import PostEditForm
from webapp.repositories import AuditRepository, ItemRepository, PostRepository, UserRepository
from webapp.web.forms import Form
from webapp.web.requests import parse_int

PER_PAGE = 50
# Text this long, or on several lines, is shown as a word diff rather than before → after.
LONG_TEXT = 80
# The key of an event's "after" naming the event a restore took its values from.
RESTORED_FROM = "restored_from"

LABELS = {"is_active": "Active", "is_admin": "Admin", "owner_id": "Owner", "author_id": "Author"}
ACTIONS = {
    "create": "Created",
    "registered": "Registered",
    "update": "Edited",
    "restore": "Restored earlier values",
    "email_changed": "Changed their email",
    "username_changed": "Changed their username",
    "email_confirmed": "Confirmed their email",
    "password_changed": "Changed their password",
    "password_reset": "Reset their password",
    "password_set": "Password set by an admin",
    "sessions_revoked": "Signed out everywhere else",
    "activate": "Activated",
    "deactivate": "Deactivated",
}


@dataclass(frozen=True)
class Segment:
    """A run of words in a word diff: the same in both, removed, or added."""

    kind: str  # "same", "removed", "added"
    text: str


@dataclass(frozen=True)
class FieldChange:
    label: str
    before: str
    after: str
    diff: Sequence[Segment] | None  # long text: the words removed and added


@dataclass(frozen=True)
class Entry:
    event: AuditEvent
    what: str
    changes: Sequence[FieldChange]
    restored_from: int | None
    restorable: bool  # the row's state after this change differs from its state now


@dataclass(frozen=True)
class Kind:
    """What a history page needs to know about one kind of row."""

    noun: str  # "item": the audit log's target type
    fields: tuple[str, ...]  # what a restore may set
    repository: Callable[[], Any]
    title: Callable[[Any], str]
    # Validate ``values`` (the state to restore) with the row's edit form and save them
    # as a new audited change; a message saying why not, or None when saved.
    restore: Callable[[Any, dict[str, Any], int, AuditEvent], str | None]

    @property
    def plural(self) -> str:
        return f"{self.noun}s"

    @property
    def edit_endpoint(self) -> str:
        return f"admin.{self.noun}_edit"

    @property
    def id_arg(self) -> str:
        """The row's URL argument, as on its edit page: ``item_id``."""
        return f"{self.noun}_id"

    def history_url(self, row_id: int, **args: Any) -> str:
        values: dict[str, Any] = {self.id_arg: row_id, **args}
        return url_for(f"admin.{self.noun}_history", **values)

    def values(self, row: Any) -> dict[str, Any]:
        """The row's restorable fields now, as the audit log holds them."""
        values = {name: getattr(row, name) for name in self.fields if name != "tags"}
        if "tags" in self.fields:
            values["tags"] = [tag.name for tag in row.tags]
        return values


# ------------------------------------------------------------------ reading the log


def undo(state: dict[str, Any], before: dict[str, Any] | None, fields: Sequence[str]) -> None:
    """Put back in ``state`` the values a change had before it (its restorable fields)."""
    for name, value in (before or {}).items():
        if name in fields:
            state[name] = value


def shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(part) for part in value)
    return str(value)


def word_diff(before: str, after: str) -> list[Segment]:
    """The words of ``before`` and ``after``, marked as kept, removed or added."""
    old, new = re.split(r"(\s+)", before), re.split(r"(\s+)", after)
    segments: list[Segment] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            segments.append(Segment("same", "".join(old[a1:a2])))
            continue
        if a2 > a1:
            segments.append(Segment("removed", "".join(old[a1:a2])))
        if b2 > b1:
            segments.append(Segment("added", "".join(new[b1:b2])))
    return segments


def field_changes(event: AuditEvent) -> list[FieldChange]:
    """Each field an event names, with its value before and after (either may be absent)."""
    before, after = event.before or {}, event.after or {}
    names = [*before, *(name for name in after if name not in before)]
    changes = []
    for name in names:
        if name == RESTORED_FROM:
            continue
        old, new = before.get(name), after.get(name)
        long = any(isinstance(v, str) and (len(v) > LONG_TEXT or "\n" in v) for v in (old, new))
        diff = word_diff(old or "", new or "") if long else None
        label = LABELS.get(name, name.replace("_", " ").capitalize())
        changes.append(FieldChange(label, shown(old), shown(new), diff))
    return changes


def describe(action: str) -> str:
    """``admin.item.update`` → "Edited" (an unknown action: its last word)."""
    verb = action.rsplit(".", 1)[-1]
    return ACTIONS.get(verb, verb.replace("_", " ").capitalize())


def entries(
    kind: Kind, current: dict[str, Any], events: Sequence[AuditEvent], newer: Sequence[Any]
) -> list[Entry]:
    """The page's entries; ``newer``: the "before" values of the row's events newer than the
    page (newest first), to work out each entry's state from the row's state now."""
    state = dict(current)
    for before in newer:
        undo(state, before, kind.fields)
    result = []
    for event in events:  # newest first: ``state`` is the row just after ``event``
        named = {**(event.before or {}), **(event.after or {})}
        records = any(name in kind.fields for name in named)
        restored = (event.after or {}).get(RESTORED_FROM)
        result.append(
            Entry(
                event=event,
                what=describe(event.action),
                changes=field_changes(event),
                restored_from=restored if isinstance(restored, int) else None,
                restorable=records and state != current,
            )
        )
        undo(state, event.before, kind.fields)
    return result


def state_after(kind: Kind, row: Any, event: AuditEvent) -> dict[str, Any]:
    """The row's restorable fields as they were just after ``event``."""
    state = kind.values(row)
    for before in AuditRepository(db.session).befores_since(kind.noun, row.id, event.id):
        undo(state, before, kind.fields)
    return state


# ------------------------------------------------------------------ restoring


def _form_problem(form: Form) -> str | None:
    """What a form built from restored values refuses, field by field; None if nothing."""
    if form.validate():
        return None
    return _problems(form)


def _problems(form: Form) -> str:
    said = [
        f"{form[name].label.text}: {' '.join(str(e) for e in errors)}"
        for name, errors in form.errors.items()
        if name != "version"
    ]
    return "; ".join(said) or "the values are no longer valid."


def _restored(event: AuditEvent) -> dict[str, Any]:
    return {RESTORED_FROM: event.id}


def _restore_item(
    item: Item, values: dict[str, Any], version: int, event: AuditEvent
) -> str | None:
    data = {"title": values["title"] or "", "description": values["description"] or ""}
    form = ItemEditForm(formdata=MultiDict({**data, "version": str(version)}), meta={"csrf": False})
    if problem := _form_problem(form):
        return problem
    update_item(
        actor(),
        item,
        version,
        {"title": form.title.data, "description": form.description.data or None},
        action="admin.item.restore",
        context=_restored(event),
    )
    return None


def _restore_post(
    post: Post, values: dict[str, Any], version: int, event: AuditEvent
) -> str | None:
    data = {
        "title": values["title"] or "",
        "body": values["body"] or "",
        "tags": ", ".join(values["tags"] or []),
        "version": str(version),
    }
    form = PostEditForm(formdata=MultiDict(data), meta={"csrf": False})
    if problem := _form_problem(form):
        return problem
    update_post(
        actor(),
        post,
        version,
        {"title": form.title.data, "body": form.body.data or None},
        form.tag_names,
        action="admin.post.restore",
        context=_restored(event),
    )
    return None


def _restore_user(
    user: User, values: dict[str, Any], _version: int, event: AuditEvent
) -> str | None:
    data = {"email": values["email"] or "", "username": values["username"] or ""}
    data.update({name: "y" for name in ("is_active", "is_admin") if values[name]})
    form = UserEditForm(formdata=MultiDict(data), meta={"csrf": False})
    if not form.validate() or not form.check_unique(exclude_id=user.id):
        return _problems(form)
    restored = {name: getattr(form, name).data for name in services.USER_FIELDS}
    try:
        services.update_user(
            actor(), user, restored, action="admin.user.restore", context=_restored(event)
        )
        db.session.flush()
    except services.RuleError as error:
        return str(error)
    except IntegrityError as error:
        db.session.rollback()
        form.report_taken(error)
        return _problems(form)
    return None


KINDS: dict[str, Kind] = {
    "users": Kind(
        noun="user",
        fields=services.USER_FIELDS,
        repository=lambda: UserRepository(db.session),
        title=lambda user: str(user.username),
        restore=_restore_user,
    ),
    "items": Kind(
        noun="item",
        fields=("title", "description"),
        repository=lambda: ItemRepository(db.session),
        title=lambda item: str(item.title),
        restore=_restore_item,
    ),
    "posts": Kind(
        noun="post",
        fields=("title", "body", "tags"),
        repository=lambda: PostRepository(db.session),
        title=lambda post: str(post.title),
        restore=_restore_post,
    ),
}


# ------------------------------------------------------------------ the pages


def show_history(kind: Kind, row_id: int) -> ResponseReturnValue:
    row = get_or_404(kind.repository(), row_id)
    audit = AuditRepository(db.session)
    before_id = parse_int(request.args.get("before", ""), minimum=1)
    events = audit.for_row(kind.noun, row_id, before_id=before_id, limit=PER_PAGE + 1)
    more, events = len(events) > PER_PAGE, events[:PER_PAGE]
    newer = audit.befores_since(kind.noun, row_id, events[0].id) if events and before_id else []
    current = kind.values(row)
    return render_template(
        "admin/history.html",
        kind=kind,
        row=row,
        title=kind.title(row),
        entries=entries(kind, current, events, newer),
        newest_id=audit.newest_id(kind.noun, row_id),
        older=kind.history_url(row_id, before=events[-1].id) if more else None,
        newest=kind.history_url(row_id) if before_id else None,
        form=ConfirmForm(),
    )


def restore(kind: Kind, row_id: int, event_id: int) -> ResponseReturnValue:
    row = get_or_404(kind.repository(), row_id)
    event = db.session.get(AuditEvent, event_id)
    if event is None or event.target_type != kind.noun or event.target_id != row_id:
        abort(404)
    back = kind.history_url(row_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The form had expired: nothing was restored. Try again.", "error")
        return redirect(back)
    seen = parse_int(request.form.get("as_of", ""), minimum=0)
    version = parse_int(request.form.get("version", ""), minimum=1) or 0
    if seen != AuditRepository(db.session).newest_id(kind.noun, row_id):
        flash(
            f"This {kind.noun} changed since you opened its history: nothing was restored. "
            "Look at the newest change, then restore again if you still want to.",
            "warning",
        )
        return redirect(back)
    values = state_after(kind, row, event)
    try:
        problem = kind.restore(row, values, version, event)
    except StaleDataError:
        db.session.rollback()
        problem = f"someone saved this {kind.noun} meanwhile. Look at the newest change first."
    if problem is not None:
        db.session.rollback()
        flash(f"Not restored: {problem}", "error")
        return redirect(back)
    if AuditRepository(db.session).newest_id(kind.noun, row_id) == seen:
        flash(f"Nothing changed: the {kind.noun} already has these values.", "info")
    else:
        db.session.commit()
        flash("Restored the values this change left.", "success")
    return redirect(back)


def _register(name: str, kind: Kind) -> None:
    """``/admin/items/<item_id>/history`` and its entries' restore buttons (likewise for
    users and posts)."""
    id_arg = kind.id_arg

    def history(**args: int) -> ResponseReturnValue:
        return show_history(kind, args[id_arg])

    def restore_view(event_id: int, **args: int) -> ResponseReturnValue:
        return restore(kind, args[id_arg], event_id)

    row = f"<int(max=2147483647):{id_arg}>"
    event = "<int(max=2147483647):event_id>"
    bp.add_url_rule(f"/{name}/{row}/history", f"{kind.noun}_history", history)
    bp.add_url_rule(
        f"/{name}/{row}/history/{event}/restore",
        f"{kind.noun}_restore",
        restore_view,
        methods=["POST"],
    )


for _name, _kind in KINDS.items():
    _register(_name, _kind)
