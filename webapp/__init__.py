"""webapp: accounts, items and tagged posts in the browser, with an HTML admin console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from webapp.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: configuration, extensions, blueprints, error pages, commands."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(load_config(Path(app.instance_path), test_config))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    register_requests(app)  # before the blueprints: their routes use its converters
    register_security(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_forms(app)
    register_template_helpers(app)
    register_static_files(app)
    register_request_log(app)
    register_mail(app)
    register_proxy_fix(app)  # after the request log: the proxy fix must wrap it from outside
    return app


def register_requests(app: Flask) -> None:
    from webapp.web.requests import register

    register(app)


def register_security(app: Flask) -> None:
    from webapp.web.headers import register

    register(app)


def register_extensions(app: Flask) -> None:
    from webapp import models  # noqa: F401 - the mappings must be in place
    from webapp.auth.login import configure_login
    from webapp.db import (
        replicas,
        trash,  # noqa: F401 - trashed rows leave every query from here on
    )
    from webapp.db import session as db_session
    from webapp.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    db_session.register(app)
    replicas.register(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    configure_login(app)


def register_blueprints(app: Flask) -> None:
    from webapp.account.views import bp as account_bp
    from webapp.admin.views import bp as admin_bp
    from webapp.auth.views import bp as auth_bp
    from webapp.cli import bp as cli_bp
    from webapp.items.views import bp as items_bp
    from webapp.main.views import bp as main_bp
    from webapp.posts.views import bp as posts_bp
    from webapp.profiles.views import bp as profiles_bp
    from webapp.tags.views import bp as tags_bp

    blueprints = (main_bp, auth_bp, account_bp, profiles_bp, items_bp, posts_bp, tags_bp, admin_bp)
    for bp in (*blueprints, cli_bp):
        app.register_blueprint(bp)


def register_error_handlers(app: Flask) -> None:
    from webapp.errors import register

    register(app)


def register_forms(app: Flask) -> None:
    from webapp.web.forms import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from webapp.web.templating import register

    register(app)


def register_static_files(app: Flask) -> None:
    from webapp.web.static_files import register

    register(app)


def register_request_log(app: Flask) -> None:
    from webapp.web.request_log import register

    register(app)


def register_mail(app: Flask) -> None:
    from webapp.mail import register

    register(app)


def register_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-For/-Proto from exactly ``PROXY_FIX_HOPS`` proxies, else from none.

    With 0 (the default) those headers are ignored and the client address is the peer's, so a
    client cannot forge it; behind nginx it is 1, and one more per proxy in front of nginx.
    """
    from werkzeug.middleware.proxy_fix import ProxyFix

    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
