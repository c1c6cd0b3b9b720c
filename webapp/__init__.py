"""webapp: accounts, items and tagged posts in the browser, with an HTML admin console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from webapp.config import load_config
from webapp.web import FormRequest

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: configuration, extensions, blueprints, error pages, commands."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.request_class = FormRequest
    app.config.from_mapping(load_config(Path(app.instance_path), test_config))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_template_helpers(app)
    return app


def register_extensions(app: Flask) -> None:
    from webapp import database, models  # noqa: F401 - listeners and mappings must be in place
    from webapp.extensions import csrf, db, limiter, login_manager, migrate
    from webapp.security import configure_login

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    configure_login(app)


def register_blueprints(app: Flask) -> None:
    from webapp.account.views import bp as account_bp
    from webapp.auth.views import bp as auth_bp
    from webapp.cli import bp as cli_bp
    from webapp.main.views import bp as main_bp
    from webapp.users.views import bp as users_bp

    for bp in (main_bp, auth_bp, account_bp, users_bp, cli_bp):
        app.register_blueprint(bp)


def register_error_handlers(app: Flask) -> None:
    from webapp.errors import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from webapp.templating import register

    register(app)
