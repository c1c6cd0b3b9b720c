"""The admin console's blueprint: the guard every page passes, and the dashboard.

The pages of each table are in their own modules, which add their routes to ``bp``:
``lists`` (every table's list, bulk actions and export), ``users``, ``content`` (items and
posts) and ``tags``. Importing ``webapp.admin`` imports them all, so ``bp`` always has them.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from webapp.admin.charts import line_chart
from webapp.extensions import db, login_manager
from webapp.repositories import AuditRepository, UserRepository
from webapp.repositories.stats import StatsRepository

bp = Blueprint("admin", __name__, url_prefix="/admin")

DASHBOARD_NEWEST_USERS = 5
DASHBOARD_EVENTS = 8
CHART_DAYS = 30
NARROW_CHART = (360, 260)  # drawn for phones, where the wide one would shrink its labels


@bp.before_request
def require_admin() -> ResponseReturnValue | None:
    """The whole console: anonymous → the sign-in page, signed-in non-admin → 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    if current_app.config["ADMIN_REQUIRE_TWO_FACTOR"] and not current_user.two_factor_enabled:
        flash("Administrators must use two-factor sign-in: turn it on to carry on.", "warning")
        target = request.full_path if request.method == "GET" else url_for("admin.dashboard")
        return redirect(url_for("account.two_factor_page", next=target.rstrip("?")))
    return None


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    stats = StatsRepository(db.session)
    daily = stats.daily(days=CHART_DAYS)
    series = [
        ("users", "Sign-ups", daily.series["users"]),
        ("items", "New items", daily.series["items"]),
        ("posts", "New posts", daily.series["posts"]),
    ]
    charts = {
        "wide": line_chart(daily.days, series),
        "narrow": line_chart(daily.days, series, width=NARROW_CHART[0], height=NARROW_CHART[1]),
    }
    return render_template(
        "admin/dashboard.html",
        counts=stats.counts(),
        chart=charts["wide"],
        charts=charts,
        newest=UserRepository(db.session).newest(DASHBOARD_NEWEST_USERS),
        events=AuditRepository(db.session).latest(DASHBOARD_EVENTS),
    )
