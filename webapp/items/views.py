"""My items: only their owner sees or changes them (anyone else gets a 404)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from webapp.audit import audit
from webapp.auth.login import signed_in_row
from webapp.changes import item_values, update_item
from webapp.extensions import db, login_manager
from webapp.items.forms import ItemEditForm, ItemForm
from webapp.models import Item
from webapp.repositories import ItemRepository
from webapp.web.deletes import trash_and_redirect
from webapp.web.edits import save_edit
from webapp.web.requests import page_arg, search_arg

bp = Blueprint("items", __name__, url_prefix="/items")

ITEM_ID = "<int(max=2147483647):item_id>"


@bp.before_request
def require_sign_in() -> ResponseReturnValue | None:
    """Every items page is personal: anonymous visitors are sent to sign in."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def owned_item_or_404(item_id: int) -> Item:
    """The signed-in user's item; someone else's looks exactly like a missing one."""
    item = ItemRepository(db.session).get_for_owner(item_id, current_user.id)
    if item is None:
        abort(404)
    return item


@bp.get("/")
def index() -> ResponseReturnValue:
    q = search_arg()
    page = ItemRepository(db.session).for_owner(
        current_user.id, q=q, page=page_arg(), per_page=current_app.config["PER_PAGE"]
    )
    return render_template("items/index.html", page=page, q=q)


@bp.route("/new", methods=["GET", "POST"])
def create() -> ResponseReturnValue:
    form = ItemForm()
    if form.validate_on_submit():
        item = ItemRepository(db.session).create_for(
            current_user.id, title=form.title.data, description=form.description.data
        )
        audit("item.create", signed_in_row(), item, after=item_values(item))
        db.session.commit()
        flash(f"Item “{item.title}” created.", "success")
        return redirect(url_for("items.detail", item_id=item.id))
    return render_template("items/form.html", form=form, item=None)


@bp.get(f"/{ITEM_ID}")
def detail(item_id: int) -> ResponseReturnValue:
    return render_template("items/detail.html", item=owned_item_or_404(item_id))


@bp.route(f"/{ITEM_ID}/edit", methods=["GET", "POST"])
def edit(item_id: int) -> ResponseReturnValue:
    items = ItemRepository(db.session)
    item = owned_item_or_404(item_id)
    form = ItemEditForm.for_item(item)
    if form.validate_on_submit():
        saved = save_edit(
            form,
            "item",
            lambda version: update_item(
                signed_in_row(),
                item,
                version,
                {"title": form.title.data, "description": form.description.data or None},
                action="item.update",
            ),
            lambda: items.get_for_owner(item_id, current_user.id),
            saved=f"Item “{form.title.data}” saved.",
            done=url_for("items.detail", item_id=item.id),
            gone=url_for("items.index"),
        )
        if saved is not None:
            return saved
    return render_template("items/form.html", form=form, item=item, conflict=form.conflicted)


@bp.route(f"/{ITEM_ID}/delete", methods=["GET", "POST"])
def delete(item_id: int) -> ResponseReturnValue:
    """GET asks "Delete X?"; only the POST from that page deletes."""
    item = owned_item_or_404(item_id)
    if request.method == "POST":
        return trash_and_redirect(
            item,
            name=f"Item “{item.title}”",
            done=url_for("items.index"),
        )
    return render_template("items/delete.html", item=item)
