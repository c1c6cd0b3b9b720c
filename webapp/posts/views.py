"""Posts: the public feed and post pages; writing for the signed-in, changes by author or admin."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import Row

from webapp.audit import audit
from webapp.auth.login import signed_in_row
from webapp.changes import post_values, update_post
from webapp.extensions import db
from webapp.models import Post
from webapp.posts.forms import TAG_SUGGESTIONS_ID, PostEditForm, PostForm
from webapp.repositories import PostRepository, TagRepository
from webapp.validation import TAG_MAX_LENGTH, ValidationError, normalise_tag
from webapp.web.deletes import trash_and_redirect
from webapp.web.edits import save_edit
from webapp.web.requests import page_arg, search_arg

bp = Blueprint("posts", __name__, url_prefix="/posts")

POST_ID = "<int(max=2147483647):post_id>"


def can_change(post: Post | Row[Any]) -> bool:
    """The author and admins may edit and delete a post."""
    return bool(
        current_user.is_authenticated
        and (current_user.is_admin or post.author_id == current_user.id)
    )


def post_or_404(post_id: int) -> Post:
    post = PostRepository(db.session).get_with_relations(post_id)
    if post is None:
        abort(404)
    return post


def changeable_post(post_id: int) -> Post:
    """The post, if the signed-in user may change it: 404 when missing, 403 when not theirs."""
    post = post_or_404(post_id)
    if not can_change(post):
        abort(403)
    return post


def render_form(form: PostForm, post: Post | None, **context: Any) -> ResponseReturnValue:
    """The write/edit page, with the existing tags offered as suggestions (a datalist)."""
    return render_template(
        "posts/form.html",
        form=form,
        post=post,
        tag_suggestions=TagRepository(db.session).names(),
        tag_suggestions_id=TAG_SUGGESTIONS_ID,
        **context,
    )


def tag_filter() -> str:
    """``?tag=`` as a tag name (``Web Dev`` finds ``web-dev``); odd text matches nothing."""
    raw = search_arg("tag", TAG_MAX_LENGTH * 2)
    try:
        return normalise_tag(raw) if raw else ""
    except ValidationError:
        return raw


@bp.get("/")
def index() -> ResponseReturnValue:
    q, tag = search_arg(), tag_filter()
    page = PostRepository(db.session).feed(
        q=q, tag=tag, page=page_arg(), per_page=current_app.config["PER_PAGE"]
    )
    return render_template("posts/index.html", page=page, q=q, tag=tag)


@bp.get(f"/{POST_ID}")
def detail(post_id: int) -> ResponseReturnValue:
    post = PostRepository(db.session).view(post_id)
    if post is None:
        abort(404)
    return render_template("posts/detail.html", post=post, can_change=can_change(post))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def create() -> ResponseReturnValue:
    form = PostForm()
    if form.validate_on_submit():
        post = PostRepository(db.session).create_post(
            current_user.id,
            title=form.title.data,
            body=form.body.data,
            tag_names=form.tag_names,
        )
        audit("post.create", signed_in_row(), post, after=post_values(post))
        db.session.commit()
        flash(f"Post “{post.title}” published.", "success")
        return redirect(url_for("posts.detail", post_id=post.id))
    return render_form(form, None)


@bp.route(f"/{POST_ID}/edit", methods=["GET", "POST"])
@login_required
def edit(post_id: int) -> ResponseReturnValue:
    posts = PostRepository(db.session)
    post = changeable_post(post_id)
    form = PostEditForm.for_post(post)
    if form.validate_on_submit():
        saved = save_edit(
            form,
            "post",
            lambda version: update_post(
                signed_in_row(),
                post,
                version,
                {"title": form.title.data, "body": form.body.data or None},
                form.tag_names,
                action="post.update",
            ),
            lambda: posts.get_with_relations(post_id),
            saved=f"Post “{form.title.data}” saved.",
            done=url_for("posts.detail", post_id=post.id),
            gone=url_for("posts.index"),
        )
        if saved is not None:
            return saved
    return render_form(form, post, conflict=form.conflicted)


@bp.route(f"/{POST_ID}/delete", methods=["GET", "POST"])
@login_required
def delete(post_id: int) -> ResponseReturnValue:
    """GET asks "Delete X?"; only the POST from that page deletes."""
    post = changeable_post(post_id)
    if request.method == "POST":
        return trash_and_redirect(
            post,
            name=f"Post “{post.title}”",
            done=url_for("posts.index"),
        )
    return render_template("posts/delete.html", post=post)
