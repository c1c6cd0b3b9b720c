"""Items and posts: edit (with their owners' forms and edit-conflict check) and delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, render_template, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from webapp.admin import services
from webapp.admin.pages import actor, confirm_delete, get_or_404, trash_lead
from webapp.admin.views import bp
from webapp.changes import update_item, update_post
from webapp.extensions import db
from webapp.items.forms import ItemEditForm
from webapp.models import Item, Post
from webapp.posts.forms import PostEditForm
from webapp.repositories import ItemRepository, PostRepository, UserRepository
from webapp.web.edits import save_edit
from webapp.web.forms import Form


@bp.route("/items/<int(max=2147483647):item_id>", methods=["GET", "POST"])
def item_edit(item_id: int) -> ResponseReturnValue:
    items = ItemRepository(db.session)
    item: Item = get_or_404(items, item_id)
    form = ItemEditForm.for_item(item)
    if form.validate_on_submit():
        values = {"title": form.title.data, "description": form.description.data or None}
        saved = _save(
            form,
            "item",
            item_id,
            lambda version: update_item(actor(), item, version, values, action="admin.item.update"),
            lambda: items.get(item_id),
        )
        if saved is not None:
            return saved
    owner = UserRepository(db.session).get(item.owner_id)
    return render_template(
        "admin/item_form.html", form=form, item=item, owner=owner, conflict=form.conflicted
    )


@bp.route("/items/<int(max=2147483647):item_id>/delete", methods=["GET", "POST"])
def item_delete(item_id: int) -> ResponseReturnValue:
    item: Item = get_or_404(ItemRepository(db.session), item_id)
    return _confirm_delete(
        "item", item, f"The item “{item.title}”", lambda: services.delete_item(actor(), item)
    )


@bp.route("/posts/<int(max=2147483647):post_id>", methods=["GET", "POST"])
def post_edit(post_id: int) -> ResponseReturnValue:
    posts = PostRepository(db.session)
    post = posts.get_with_relations(post_id)
    if post is None:
        abort(404)
    form = PostEditForm.for_post(post)
    if form.validate_on_submit():
        values = {"title": form.title.data, "body": form.body.data or None}
        saved = _save(
            form,
            "post",
            post_id,
            lambda version: update_post(
                actor(), post, version, values, form.tag_names, action="admin.post.update"
            ),
            lambda: posts.get_with_relations(post_id),
        )
        if saved is not None:
            return saved
    return render_template(
        "admin/post_form.html", form=form, post=post, author=post.author, conflict=form.conflicted
    )


@bp.route("/posts/<int(max=2147483647):post_id>/delete", methods=["GET", "POST"])
def post_delete(post_id: int) -> ResponseReturnValue:
    post: Post = get_or_404(PostRepository(db.session), post_id)
    return _confirm_delete(
        "post",
        post,
        f"The post “{post.title}”",
        lambda: services.delete_post(actor(), post),
    )


def _edit_url(noun: str, row_id: int) -> str:
    ids: dict[str, Any] = {f"{noun}_id": row_id}
    return url_for(f"admin.{noun}_edit", **ids)


def _save(
    form: Form, noun: str, row_id: int, save: Callable[[int], Any], reload: Callable[[], Any]
) -> Response | None:
    """Save an item's or a post's edit form (see ``save_edit``): back to its page, or to its
    list if it went meanwhile; ``None`` after an edit conflict."""
    return save_edit(
        form,
        noun,
        save,
        reload,
        saved=f"{noun.capitalize()} saved.",
        done=_edit_url(noun, row_id),
        gone=url_for(f"admin.{noun}s"),
    )


def _confirm_delete(
    noun: str, row: Item | Post, consequence: str, perform: Callable[[], None]
) -> ResponseReturnValue:
    """An item's or a post's delete page: back to its edit page, or on to its list."""
    return confirm_delete(
        title=f"Delete the {noun} “{row.title}”?",
        consequences=[consequence],
        perform=perform,
        done=url_for(f"admin.{noun}s"),
        back=_edit_url(noun, row.id),
        message=f"{noun.capitalize()} “{row.title}” moved to the trash.",
        lead=trash_lead(),
    )
