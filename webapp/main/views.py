"""The home page, and the liveness and readiness checks for load balancers."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue

from webapp.db.replicas import reads_from_primary, replica_report
from webapp.extensions import db
from webapp.main.health import check_readiness
from webapp.repositories import PostRepository

bp = Blueprint("main", __name__)

HOME_POSTS = 10
NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/")
def index() -> ResponseReturnValue:
    posts = PostRepository(db.session).newest(HOME_POSTS)
    return render_template("main/index.html", posts=posts)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: this process answers HTTP. No database, so a database outage restarts nothing."""
    return jsonify(status="ok"), 200, NO_STORE


@bp.get("/readyz")
@reads_from_primary
def readyz() -> ResponseReturnValue:
    """Readiness: 200 when the database answers and is migrated to the code's head, else 503.

    Replicas are listed with their state and lag; they never make an instance unready."""
    readiness = check_readiness(db.session)
    body: dict[str, object] = {**readiness.as_json(), **replica_report()}
    return jsonify(body), 200 if readiness.ready else 503, NO_STORE
