"""The admin trash: deleted items, posts and users, one kind at a time, with Restore and
Delete forever (each behind a confirmation page)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import ColumnElement

from webapp.admin import services
from webapp.admin.forms import ConfirmForm
from webapp.admin.lists import _no_selection, _selected_ids, show_list
from webapp.admin.pages import actor
from webapp.admin.params import parse_params
from webapp.admin.tables import TRASH_TABLES, TrashTable
from webapp.admin.views import bp
from webapp.extensions import db
from webapp.repositories.keyset import ListRepository
from webapp.repositories.trash import KINDS, Restored, TrashRepository

DEFAULT_KIND = "items"


def _table(kind: str | None) -> TrashTable:
    return TRASH_TABLES.get(kind or "", TRASH_TABLES[DEFAULT_KIND])


@bp.get("/trash")
def trash() -> ResponseReturnValue:
    return show_list(_table(request.args.get("kind")))


def _restored_message(table: TrashTable, restored: Restored) -> str:
    message = f"Restored {table.describe(restored.restored)}"
    if table.kind == "users":
        items, posts = restored.items, restored.posts
        message += f", with {items} item{'s'[: items != 1]} and {posts} post{'s'[: posts != 1]}"
    message += "."
    if restored.refused:
        stayed = table.describe(restored.refused).capitalize()
        message += f" {stayed} stayed in the trash: their owners are there; restore them first."
    return message


@bp.route("/trash/bulk", methods=["GET", "POST"])
def trash_bulk() -> ResponseReturnValue:
    """GET: what will be restored or erased. POST: do it, and go back to the list."""
    args = request.form if request.method == "POST" else request.args
    table = _table(args.get("kind"))
    params = parse_params(table.spec, args)
    back = url_for("admin.trash", **table.query_args(params))
    choice = table.bulk_choice(args.get("bulk", ""))
    if choice is None:
        flash("Choose Restore or Delete forever.", "error")
        return redirect(back)
    scope = "all" if args.get("scope") == "all" else "selected"
    ids = _selected_ids(args.getlist("ids")) if scope == "selected" else []
    if scope == "selected" and not ids:
        flash(_no_selection(table, args.getlist("ids")), "error")
        return redirect(back)
    model, _ = KINDS[table.kind]
    target: ColumnElement[bool]
    if scope == "all":
        target = ListRepository(db.session, table.spec).matching(params)
    else:
        target = model.id.in_(ids)
    trash = TrashRepository(db.session)
    count = trash.count_where(model, target)
    if not count:
        flash(f"Nothing changed: none of those {table.plural} are in the trash now.", "info")
        return redirect(back)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        if choice.name == "restore":
            restored = services.restore_from_trash(table.kind, target, actor())
            done = _restored_message(table, restored)
        else:
            erased = services.delete_forever(table.kind, target, actor())
            done = f"Deleted forever: {table.describe(erased)}."
        db.session.commit()
        flash(done, "success")
        return redirect(back)
    refused = trash.refused_restores(model, target) if choice.name == "restore" else 0
    items = posts = 0
    if table.kind == "users" and choice.name == "purge":
        items, posts = trash.content_of_users(target)
    return render_template(
        "admin/trash_confirm.html",
        table=table,
        choice=choice,
        scope=scope,
        ids=ids,
        params=params,
        count=count,
        refused=refused,
        names=trash.names_where(model, target),
        content_items=items,
        content_posts=posts,
        form=form,
        back=back,
    )
