"""Public profiles: a user's name, when they joined and their posts."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue

from webapp.extensions import db
from webapp.repositories import PostRepository, UserRepository
from webapp.web.requests import page_arg

bp = Blueprint("profiles", __name__, url_prefix="/users")

POSTS_PER_PAGE = 10


@bp.get("/<string(maxlength=50):username>")
def detail(username: str) -> ResponseReturnValue:
    user = UserRepository(db.session).get_public(username)
    if user is None:
        abort(404)
    posts = PostRepository(db.session).feed(
        author_id=user.id, page=page_arg(), per_page=POSTS_PER_PAGE
    )
    return render_template("profiles/detail.html", user=user, posts=posts)
