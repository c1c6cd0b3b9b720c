"""Items and posts: edit (with their owners' forms and edit-conflict check) and delete."""

from __future__ import annotations

from flask import abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from webapp.admin import services
from webapp.admin.pages import actor, confirm_delete, flash_saved, get_or_404
from webapp.admin.views import bp
from webapp.extensions import db
from webapp.items.forms import ItemEditForm
from webapp.models import Item, Post
from webapp.posts.forms import PostEditForm
from webapp.repositories import ItemRepository, PostRepository, UserRepository
from webapp.web.conflicts import save_edit


@bp.route("/items/<int(max=2147483647):item_id>", methods=["GET", "POST"])
def item_edit(item_id: int) -> ResponseReturnValue:
    items = ItemRepository(db.session)
    item: Item = get_or_404(items, item_id)
    form = ItemEditForm.for_item(item)
    if form.validate_on_submit():
        values = {"title": form.title.data, "description": form.description.data or None}
        edit = save_edit(
            form,
            "item",
            lambda version: services.update_item(actor(), item, version, values),
            lambda: items.get(item_id),
        )
        if edit.saved:
            flash_saved("Item saved.", edit.changes)
            return redirect(url_for("admin.item_edit", item_id=item.id))
        if edit.current is None:
            return redirect(url_for("admin.items"))
    owner = UserRepository(db.session).get(item.owner_id)
    return render_template(
        "admin/item_form.html", form=form, item=item, owner=owner, conflict=form.conflicted
    )


@bp.route("/items/<int(max=2147483647):item_id>/delete", methods=["GET", "POST"])
def item_delete(item_id: int) -> ResponseReturnValue:
    item: Item = get_or_404(ItemRepository(db.session), item_id)
    title = item.title
    return confirm_delete(
        title=f"Delete the item “{title}”?",
        consequences=[f"The item “{title}”"],
        perform=lambda: services.delete_item(actor(), item),
        done=url_for("admin.items"),
        back=url_for("admin.item_edit", item_id=item.id),
        message=f"Item “{title}” deleted.",
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
        edit = save_edit(
            form,
            "post",
            lambda version: services.update_post(actor(), post, version, values, form.tag_names),
            lambda: posts.get_with_relations(post_id),
        )
        if edit.saved:
            flash_saved("Post saved.", edit.changes)
            return redirect(url_for("admin.post_edit", post_id=post.id))
        if edit.current is None:
            return redirect(url_for("admin.posts"))
    return render_template(
        "admin/post_form.html", form=form, post=post, author=post.author, conflict=form.conflicted
    )


@bp.route("/posts/<int(max=2147483647):post_id>/delete", methods=["GET", "POST"])
def post_delete(post_id: int) -> ResponseReturnValue:
    post: Post = get_or_404(PostRepository(db.session), post_id)
    title = post.title
    return confirm_delete(
        title=f"Delete the post “{title}”?",
        consequences=[f"The post “{title}” and its tag links (the tags stay)"],
        perform=lambda: services.delete_post(actor(), post),
        done=url_for("admin.posts"),
        back=url_for("admin.post_edit", post_id=post.id),
        message=f"Post “{title}” deleted.",
    )
