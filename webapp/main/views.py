"""The home page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue

from webapp.extensions import db
from webapp.repositories import PostRepository
from webapp.repositories.health import database_answers

bp = Blueprint("main", __name__)

HOME_POSTS = 10


@bp.get("/")
def index() -> ResponseReturnValue:
    posts = PostRepository(db.session).newest(HOME_POSTS)
    return render_template("main/index.html", posts=posts)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """200 when the database answers, 503 when it does not (for load balancers)."""
    if not database_answers(db.session):
        return jsonify(status="error", database="unavailable"), 503
    return jsonify(status="ok", database="ok")
