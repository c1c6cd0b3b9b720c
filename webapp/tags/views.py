"""Tags: every tag with its post count, and the posts that carry one tag."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from webapp.extensions import db
from webapp.repositories import PostRepository, TagRepository
from webapp.validation import ValidationError, normalise_tag
from webapp.web.requests import page_arg

bp = Blueprint("tags", __name__, url_prefix="/tags")

TAGS_PER_PAGE = 60


@bp.get("/")
def index() -> ResponseReturnValue:
    page = TagRepository(db.session).page_with_counts(page=page_arg(), per_page=TAGS_PER_PAGE)
    return render_template("tags/index.html", page=page)


@bp.get("/<name>")
def detail(name: str) -> ResponseReturnValue:
    """The posts with tag ``name``; ``/tags/Web Dev`` leads to ``/tags/web-dev``."""
    try:
        normal = normalise_tag(name)
    except ValidationError:
        abort(404)
    if normal != name:
        return redirect(url_for("tags.detail", name=normal), 301)
    tag = TagRepository(db.session).get_by_name(name)
    if tag is None:
        abort(404)
    page = PostRepository(db.session).feed(
        tag=tag.name, page=page_arg(), per_page=current_app.config["PER_PAGE"]
    )
    return render_template("tags/detail.html", tag=tag, page=page)
